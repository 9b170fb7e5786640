/**
 * A trained model as a safetensors file (`safetensors.ts`) that PyTorch's `load_state_dict`
 * accepts: every tensor under the reference implementation's state-dict key
 * (`ModelFamily.stateDict`; a tied decoder is written under both keys), sparse tensors dense
 * with exact zeros at inactive positions and their masks beside them as `<key>.mask` (U8 0/1),
 * and string metadata naming the family, its config, the method, the densities, the
 * vocabulary (size and SHA-256 of its words, one a line in id order) and the run's evaluation
 * settings. Reading checks every name, shape, dtype and mask against the model it is loaded
 * into and names the tensor that does not fit.
 *
 * @module
 */

import type { AnyModelFamily } from "../../models/model.ts";
import { numel } from "../../kernels/runtime/tensor.ts";
import { type SafeTensor, type SafetensorsContents, SafetensorsError } from "./safetensors.ts";

/** How a run evaluates (what `deno task eval` repeats): window length, batch sizes, `--unk`. */
export interface EvaluationSettings {
  bptt: number;
  evalBatchSize: number;
  testBatchSize: number;
  unk: boolean;
}

/** The `format` metadata value of this project's model files. */
export const MODEL_FILE_FORMAT = "selfish-rnn/model";

/** Host weights by parameter name; `masks` holds the 0/1 masks of the masked tensors. */
export interface ModelWeights {
  values: Map<string, Float32Array>;
  masks: Map<string, Float32Array>;
}

/** What a model file says about its model besides the tensors. */
export interface ModelFileMeta {
  family: string;
  config: unknown;
  method: string;
  /** Density of each masked tensor. */
  densities: Record<string, number>;
  vocab: { size: number; sha256: string };
  /** The data it was trained on, as the run named it, and the training steps it had. */
  data: string;
  step: number;
  evaluation: EvaluationSettings | null;
}

/**
 * SHA-256 (hex) of the words joined by newlines, in id order: what `--vocab-out` writes.
 *
 * @example
 * ```ts ignore
 * await vocabularyHash(["<eos>", "the"]); // "…64 hex digits…"
 * ```
 */
export async function vocabularyHash(words: readonly string[]): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(words.join("\n") + "\n"),
  );
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The file's tensors and metadata for `weights` of `meta`'s model.
 *
 * @example
 * ```ts ignore
 * await writeAtomicBytes("m.safetensors", encodeSafetensors(modelFileContents(family, meta, w)));
 * ```
 */
export function modelFileContents(
  family: AnyModelFamily,
  meta: ModelFileMeta,
  weights: ModelWeights,
): SafetensorsContents {
  const tensors = new Map<string, SafeTensor>();
  const shapes = new Map(family.paramSpecs(meta.config).map((s) => [s.name, s.shape]));
  const canonical = new Set<string>();
  for (const { key, param } of family.stateDict(meta.config)) {
    const value = weights.values.get(param), shape = shapes.get(param);
    if (!value || !shape) throw new SafetensorsError(`no weights for parameter ${param}`);
    const mask = weights.masks.get(param);
    const data = mask ? value.map((v, i) => (mask[i] !== 0 ? v : 0)) : value;
    tensors.set(key, { dtype: "F32", shape, data });
    if (mask && !canonical.has(param)) {
      tensors.set(`${key}.mask`, { dtype: "U8", shape, data: Uint8Array.from(mask) });
    }
    canonical.add(param);
  }
  const metadata: Record<string, string> = {
    format: MODEL_FILE_FORMAT,
    family: meta.family,
    config: JSON.stringify(meta.config),
    method: meta.method,
    densities: JSON.stringify(meta.densities),
    "vocab_size": String(meta.vocab.size),
    "vocab_sha256": meta.vocab.sha256,
    data: meta.data,
    step: String(meta.step),
  };
  if (meta.evaluation) metadata.evaluation = JSON.stringify(meta.evaluation);
  return { tensors, metadata };
}

/**
 * The model a file describes, from its metadata; throws naming the file and the field.
 *
 * @example
 * ```ts ignore
 * const meta = modelFileMeta(contents.metadata, "m.safetensors");
 * ```
 */
export function modelFileMeta(metadata: Record<string, string>, path: string): ModelFileMeta {
  const fail = (why: string): never => {
    throw new SafetensorsError(`${path}: ${why}`);
  };
  if (metadata.format !== MODEL_FILE_FORMAT) {
    fail(
      `metadata format ${JSON.stringify(metadata.format ?? null)} is not ${MODEL_FILE_FORMAT} ` +
        "(a file from another tool: load it with --init-from into a model you choose)",
    );
  }
  const json = (key: string): unknown => {
    if (metadata[key] === undefined) fail(`metadata lacks ${key}`);
    try {
      return JSON.parse(metadata[key]);
    } catch {
      return fail(`metadata ${key} is not JSON`);
    }
  };
  const int = (key: string): number => {
    const v = Number(metadata[key]);
    if (!Number.isSafeInteger(v) || v < 0) fail(`metadata ${key} is not a count`);
    return v;
  };
  return {
    family: metadata.family ?? fail("metadata lacks family"),
    config: json("config"),
    method: metadata.method ?? "unknown",
    densities: json("densities") as Record<string, number>,
    vocab: { size: int("vocab_size"), sha256: metadata.vocab_sha256 ?? "" },
    data: metadata.data ?? "",
    step: int("step"),
    evaluation: metadata.evaluation === undefined ? null : json("evaluation") as EvaluationSettings,
  };
}

/**
 * The weights of `family`'s model at `config` from a file's tensors: every parameter under one
 * of its state-dict keys (F32, its shape), a tied decoder's second key equal to the first when
 * present, each `<key>.mask` U8 of 0/1 with zeros wherever the mask is 0; no other tensors.
 * Throws {@linkcode SafetensorsError} naming the file and the tensor.
 *
 * @example
 * ```ts ignore
 * const w = modelWeightsFromFile(contents, family, config, "m.safetensors");
 * ```
 */
export function modelWeightsFromFile(
  contents: SafetensorsContents,
  family: AnyModelFamily,
  config: unknown,
  path: string,
): ModelWeights {
  const fail = (key: string, why: string): never => {
    throw new SafetensorsError(`${path}: tensor ${key}: ${why}`);
  };
  const specs = new Map(family.paramSpecs(config).map((s) => [s.name, s]));
  const entries = family.stateDict(config);
  const known = new Set(entries.flatMap((e) => [e.key, `${e.key}.mask`]));
  for (const key of contents.tensors.keys()) {
    if (!known.has(key)) {
      fail(
        key,
        `not a tensor of the ${family.name} model (${entries.length} keys, e.g. ${
          entries[0]?.key
        })`,
      );
    }
  }
  const out: ModelWeights = { values: new Map(), masks: new Map() };
  for (const { key, param } of entries) {
    const spec = specs.get(param)!;
    const t = contents.tensors.get(key);
    if (!t) {
      if (out.values.has(param)) continue; // a tied decoder's second key may be left out
      fail(key, `missing (the ${family.name} model's ${param}, [${spec.shape.join(", ")}])`);
    }
    const shapeText = (s: readonly number[]) => `[${s.join(", ")}]`;
    if (t!.dtype !== "F32") fail(key, `dtype ${t!.dtype}, weights are F32`);
    if (shapeText(t!.shape) !== shapeText(spec.shape)) {
      fail(key, `shape ${shapeText(t!.shape)}, the model's ${param} is ${shapeText(spec.shape)}`);
    }
    const value = t!.data as Float32Array;
    const first = out.values.get(param);
    if (first) {
      if (value.some((v, i) => v !== first[i])) {
        fail(key, `differs from the tensor it is tied to (${param})`);
      }
      continue;
    }
    out.values.set(param, value);
    const m = contents.tensors.get(`${key}.mask`);
    if (!m) continue;
    if (m.dtype !== "U8") fail(`${key}.mask`, `dtype ${m.dtype}, masks are U8`);
    if (shapeText(m.shape) !== shapeText(spec.shape)) {
      fail(`${key}.mask`, `shape ${shapeText(m.shape)}, its tensor is ${shapeText(spec.shape)}`);
    }
    const mask = new Float32Array(numel(spec.shape));
    for (let i = 0; i < mask.length; i++) {
      const b = m.data[i];
      if (b > 1) fail(`${key}.mask`, `value ${b} at index ${i}: a mask holds 0 or 1`);
      if (b === 0 && value[i] !== 0) {
        fail(`${key}.mask`, `0 at index ${i} where ${key} is ${value[i]}: inactive weights are 0`);
      }
      mask[i] = b;
    }
    out.masks.set(param, mask);
  }
  return out;
}
