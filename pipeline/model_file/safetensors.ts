/**
 * The safetensors format (huggingface/safetensors), the subset this project reads and writes:
 * F32 and U8 tensors and a string `__metadata__` map.
 *
 * ```text
 * N            u64 little-endian: the header's byte length
 * header       N bytes of UTF-8 JSON (padded with spaces to 8-byte alignment when written):
 *              { "<name>": { "dtype": "F32" | "U8", "shape": [...], "data_offsets": [begin, end] },
 *                ..., "__metadata__": { "<key>": "<string>" } }
 * data         the tensors' little-endian bytes, row-major, at [begin, end) from the data start
 * ```
 *
 * Reading validates like the reference implementation: the header lies inside the file, parses
 * as a JSON object, every offset pair matches its dtype and shape, lies inside the data and
 * neither overlaps nor leaves a gap with its neighbours, and the tensors cover the data exactly.
 * Written by hand: the one npm package named `safetensors` is an unmaintained 0.0.1, and the
 * Hugging Face hub client parses remote headers only and brings dependencies.
 *
 * @module
 */

/** The element types this project stores: weights (F32) and masks (U8). */
export type SafetensorsDtype = "F32" | "U8";

/** One tensor of a safetensors file. */
export type SafeTensor =
  | { dtype: "F32"; shape: readonly number[]; data: Float32Array }
  | { dtype: "U8"; shape: readonly number[]; data: Uint8Array };

/** A file's tensors in their header order, and its metadata. */
export interface SafetensorsContents {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** A malformed or unsupported safetensors file; the message names the file and the tensor. */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

const BYTES: Record<SafetensorsDtype, number> = { F32: 4, U8: 1 };
/** The reference implementation's cap on the header (a guard against hostile lengths). */
const MAX_HEADER = 100_000_000;

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Serialises tensors (in the map's order) and string metadata to safetensors bytes.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors({
 *   tensors: new Map([["w", { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) }]]),
 *   metadata: { family: "lstm" },
 * });
 * decodeSafetensors(bytes, "mem").tensors.get("w")!.data; // Float32Array [1, 2]
 * ```
 */
export function encodeSafetensors(contents: SafetensorsContents): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(contents.metadata).length) header.__metadata__ = contents.metadata;
  let offset = 0;
  for (const [name, t] of contents.tensors) {
    if (name === "__metadata__") throw new SafetensorsError(`tensor name ${name} is reserved`);
    if (t.data.length !== numel(t.shape)) {
      throw new SafetensorsError(
        `tensor ${name}: ${t.data.length} values for shape [${t.shape.join(", ")}]`,
      );
    }
    const end = offset + t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, "data_offsets": [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.fill(0x20, 8, 8 + n);
  out.set(json, 8);
  let at = 8 + n;
  for (const t of contents.tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Parses and validates safetensors bytes; `path` only names the file in errors.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors({ tensors: new Map(), metadata: { a: "1" } });
 * decodeSafetensors(bytes, "mem").metadata.a; // "1"
 * ```
 */
export function decodeSafetensors(bytes: Uint8Array, path: string): SafetensorsContents {
  const fail = (why: string): never => {
    throw new SafetensorsError(`${path}: ${why}`);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, a file starts with 8`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) {
    fail(`header length ${n} runs past the end of the file (${bytes.length} bytes)`);
  }
  if (n > BigInt(MAX_HEADER)) fail(`header length ${n} exceeds ${MAX_HEADER} bytes`);
  const headerEnd = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, headerEnd)),
    );
  } catch (e) {
    return fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("header is not a JSON object");
  }
  const dataLength = bytes.length - headerEnd;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        fail("__metadata__ is not an object of strings");
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const bad = (why: string): never => fail(`tensor ${name}: ${why}`);
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== "object" || e === null) bad("entry is not an object");
    if (e.dtype !== "F32" && e.dtype !== "U8") {
      bad(`dtype ${JSON.stringify(e.dtype)} is not supported (F32 weights and U8 masks only)`);
    }
    const dtype = e.dtype as SafetensorsDtype;
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`shape ${JSON.stringify(shape)} is not a list of sizes`);
    }
    const off = e.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 ||
      !off.every((o) => Number.isSafeInteger(o) && o >= 0) || off[1] < off[0]
    ) {
      bad(`data_offsets ${JSON.stringify(off)} is not a [begin, end] pair`);
    }
    const [begin, end] = off as number[];
    const want = numel(shape as number[]) * BYTES[dtype];
    if (end - begin !== want) {
      bad(
        `data_offsets [${begin}, ${end}] hold ${end - begin} bytes, ${dtype} [${
          (shape as number[]).join(", ")
        }] needs ${want}`,
      );
    }
    if (end > dataLength) {
      bad(`data_offsets [${begin}, ${end}] lie outside the ${dataLength} data bytes`);
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin < at) {
      fail(`tensor ${e.name}: data_offsets [${e.begin}, ${e.end}] overlap another tensor's`);
    }
    if (e.begin > at) {
      fail(`tensor ${e.name}: data_offsets start at ${e.begin}, leaving a gap after ${at}`);
    }
    at = e.end;
  }
  if (at !== dataLength) fail(`the tensors cover ${at} of the ${dataLength} data bytes`);
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    const copy = bytes.slice(headerEnd + e.begin, headerEnd + e.end).buffer;
    tensors.set(
      e.name,
      e.dtype === "F32"
        ? { dtype: "F32", shape: e.shape, data: new Float32Array(copy) }
        : { dtype: "U8", shape: e.shape, data: new Uint8Array(copy) },
    );
  }
  return { tensors, metadata };
}

/**
 * Reads and validates a safetensors file; throws {@linkcode SafetensorsError} naming it.
 *
 * @example
 * ```ts ignore
 * const { tensors, metadata } = await readSafetensors("model.safetensors");
 * ```
 */
export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  return decodeSafetensors(await readModelBytes(path), path);
}

/**
 * A model file's bytes; an unreadable file is a {@linkcode SafetensorsError} naming it.
 *
 * @example
 * ```ts ignore
 * const bytes = await readModelBytes("model.safetensors");
 * ```
 */
export async function readModelBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new SafetensorsError(`${path}: ${(e as Error).message}`);
  }
}
