/**
 * A trained model from either file a run leaves: its checkpoint (`RUN.ckpt`, the tested best
 * weights and their masks) or an exported safetensors file (`model_file/model_file.ts`), as
 * the family, config, metadata and host weights; those weights put on the GPU; and the corpus
 * it was trained on, checked against its vocabulary (size, and the SHA-256 of the words when
 * the file records it).
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import { modelFamily } from "../models/families.ts";
import type { AnyModelFamily, Model } from "../models/model.ts";
import { type CheckpointContents, CheckpointError, decodeCheckpoint } from "./checkpoint.ts";
import { DEFAULTS } from "./config.ts";
import { DataError } from "./data/errors.ts";
import { loadTrainingData, type TrainingData } from "./run/data.ts";
import type { RunMeta } from "./run/types.ts";
import {
  type ModelFileMeta,
  modelFileMeta,
  type ModelWeights,
  modelWeightsFromFile,
  vocabularyHash,
} from "./model_file/model_file.ts";
import { decodeSafetensors, readModelBytes, SafetensorsError } from "./model_file/safetensors.ts";

/** A model read from a file. */
export interface LoadedModel {
  source: "checkpoint" | "safetensors";
  family: AnyModelFamily;
  meta: ModelFileMeta;
  weights: ModelWeights;
  /** Set when a checkpoint had not validated yet: its current weights stand in for the best. */
  note: string | null;
}

const CHECKPOINT_MAGIC = "SRNNCKPT";

function familyOf(name: string, path: string): AnyModelFamily {
  try {
    return modelFamily(name);
  } catch (e) {
    throw new SafetensorsError(`${path}: ${(e as Error).message}`);
  }
}

/**
 * The tested weights of a run's checkpoint: its best weights and their masks once it has
 * validated, else its current ones (said in `note`).
 *
 * @example
 * ```ts ignore
 * const m = modelFromCheckpoint(await readCheckpoint("run.ckpt"), "run.ckpt");
 * ```
 */
export function modelFromCheckpoint(ckpt: CheckpointContents, path: string): LoadedModel {
  const meta = ckpt.meta as Partial<RunMeta>;
  if (meta?.format !== "selfish-rnn/run" || !meta.model) {
    throw new CheckpointError(`checkpoint ${path}: not a training run's checkpoint`);
  }
  const family = familyOf(meta.model.family, path);
  const config = meta.model.config;
  const validated = typeof meta.bestVal === "number" && Number.isFinite(meta.bestVal);
  const weights: ModelWeights = { values: new Map(), masks: new Map() };
  const densities: Record<string, number> = {};
  for (const spec of family.paramSpecs(config)) {
    const take = (names: string[]) => names.map((n) => ckpt.tensors[n]).find((t) => t);
    const value = take(validated ? [`${spec.name}#best`] : [spec.name]);
    if (!value || value.dtype !== "f32") {
      throw new CheckpointError(`checkpoint ${path}: tensor ${spec.name} is missing`);
    }
    weights.values.set(spec.name, value.data);
    const mask = take(validated ? [`${spec.name}#bestmask`] : [`${spec.name}#mask`]);
    if (mask && mask.dtype === "f32") {
      weights.masks.set(spec.name, mask.data);
      densities[spec.name] = mask.data.reduce((n, m) => n + (m !== 0 ? 1 : 0), 0) /
        mask.data.length;
    }
  }
  return {
    source: "checkpoint",
    family,
    meta: {
      family: family.name,
      config,
      method: meta.sparsity?.settings.method ?? "unknown",
      densities,
      vocab: { size: (config as { vocab: number }).vocab, sha256: "" },
      data: meta.data ?? "",
      step: meta.step ?? 0,
      evaluation: meta.evaluation ?? null,
    },
    weights,
    note: validated ? null : `${path} has not validated yet: its current weights are used`,
  };
}

/**
 * Reads a checkpoint or a safetensors model file (told apart by the checkpoint's magic).
 *
 * @example
 * ```ts ignore
 * const { family, meta, weights } = await loadModelFile("model.safetensors");
 * ```
 */
export async function loadModelFile(path: string): Promise<LoadedModel> {
  const bytes = await readModelBytes(path);
  if (new TextDecoder().decode(bytes.subarray(0, 8)) === CHECKPOINT_MAGIC) {
    return modelFromCheckpoint(decodeCheckpoint(bytes, path), path);
  }
  const contents = decodeSafetensors(bytes, path);
  const meta = modelFileMeta(contents.metadata, path);
  const family = familyOf(meta.family, path);
  return {
    source: "safetensors",
    family,
    meta,
    weights: modelWeightsFromFile(contents, family, meta.config, path),
    note: null,
  };
}

/**
 * Writes host weights into a model's parameters and masks (creating masks as needed).
 *
 * @example
 * ```ts ignore
 * uploadWeights(gpu, family.create(gpu, config, 0), loaded.weights);
 * ```
 */
export function uploadWeights(gpu: Gpu, model: Model, weights: ModelWeights): void {
  for (const p of model.params) {
    const v = weights.values.get(p.name);
    if (v) gpu.write(p.value, v);
    const m = weights.masks.get(p.name);
    if (m) {
      p.mask ??= gpu.tensor(p.shape);
      gpu.write(p.mask, m);
    }
  }
}

/**
 * Loads `dir` (or the model's recorded data) and checks its vocabulary is the model's.
 *
 * @example
 * ```ts ignore
 * const data = await modelData(loaded.meta, "../shared/data/ptb", "run.ckpt");
 * ```
 */
export async function modelData(
  meta: ModelFileMeta,
  dir: string | null,
  path: string,
): Promise<TrainingData> {
  const data = dir ?? (meta.data.startsWith("synthetic") || meta.data === "" ? null : meta.data);
  const loaded = await loadTrainingData({
    ...DEFAULTS,
    data,
    unk: meta.evaluation?.unk ?? false,
  });
  const words = loaded.corpus.vocab.words;
  const where = data ?? "the synthetic corpus";
  if (words.length !== meta.vocab.size) {
    throw new DataError(
      `${where} has a vocabulary of ${words.length} words, the model in ${path} ` +
        `${meta.vocab.size}: pass the run's data with --data`,
    );
  }
  if (meta.vocab.sha256 && (await vocabularyHash(words)) !== meta.vocab.sha256) {
    throw new DataError(
      `the vocabulary of ${where} differs from the model's in ${path} (same size, other ` +
        "words or order): pass the run's data with --data",
    );
  }
  return loaded;
}
