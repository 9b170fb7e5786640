/**
 * Checkpoint files: a versioned, checksummed container of named host tensors plus a JSON header
 * (config, step, RNG and data position, optimizer scalars, trigger history). Writes are atomic
 * (temporary file in the same directory, fsync, rename), so a crash or Ctrl-C never leaves a
 * half-written checkpoint in place of a good one; reads validate everything before returning and
 * never modify the file.
 *
 * Layout (little-endian):
 *
 * ```
 * "SRNNCKPT"            8 bytes magic
 * version               u32 (CHECKPOINT_VERSION)
 * headerBytes           u32
 * header                UTF-8 JSON: { meta, tensors: [{ name, dtype, shape, offset }] }
 * padding               to a multiple of 4
 * tensor data           4-byte elements, each tensor at its `offset` from the data start
 * crc32                 u32 over every byte before it
 * ```
 *
 * @module
 */

import { writeAtomicBytes } from "./atomic.ts";

/** Bumped whenever the layout or the meaning of the header changes. */
export const CHECKPOINT_VERSION = 1;

const MAGIC = new TextEncoder().encode("SRNNCKPT");

/** A tensor on the host, as stored in a checkpoint. Row-major. */
export type HostTensor =
  | { dtype: "f32"; shape: readonly number[]; data: Float32Array }
  | { dtype: "u32"; shape: readonly number[]; data: Uint32Array };

/** What a checkpoint holds: free-form JSON metadata and named tensors. */
export interface CheckpointContents<M = unknown> {
  meta: M;
  tensors: Record<string, HostTensor>;
}

/** A missing, corrupt, truncated or incompatible checkpoint. The message names the file. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * CRC-32 (IEEE 802.3) of `bytes`.
 *
 * @example
 * ```ts
 * import { crc32 } from "./checkpoint.ts";
 * crc32(new TextEncoder().encode("123456789")).toString(16); // "cbf43926"
 * ```
 */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Serialises contents to bytes (exposed for tests; use {@linkcode writeCheckpoint}).
 *
 * @example
 * ```ts
 * import { encodeCheckpoint } from "./checkpoint.ts";
 * const bytes = encodeCheckpoint({ meta: { step: 1 }, tensors: {} });
 * bytes.length > 16; // true
 * ```
 */
export function encodeCheckpoint(contents: CheckpointContents): Uint8Array {
  const entries: { name: string; dtype: string; shape: readonly number[]; offset: number }[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(contents.tensors)) {
    if (t.data.length !== numel(t.shape)) {
      throw new CheckpointError(
        `tensor ${name}: ${t.data.length} values for shape [${t.shape.join(", ")}]`,
      );
    }
    entries.push({ name, dtype: t.dtype, shape: t.shape, offset });
    offset += t.data.length * 4;
  }
  const header = new TextEncoder().encode(
    JSON.stringify({ meta: contents.meta, tensors: entries }),
  );
  const headerPadded = Math.ceil(header.length / 4) * 4;
  const dataStart = 16 + headerPadded;
  const total = dataStart + offset + 4;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(8, CHECKPOINT_VERSION, true);
  view.setUint32(12, header.length, true);
  out.set(header, 16);
  for (const e of entries) {
    const t = contents.tensors[e.name];
    out.set(
      new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      dataStart + e.offset,
    );
  }
  view.setUint32(total - 4, crc32(out.subarray(0, total - 4)), true);
  return out;
}

/**
 * Parses and validates checkpoint bytes; `path` only names the file in errors.
 *
 * @example
 * ```ts
 * import { decodeCheckpoint, encodeCheckpoint } from "./checkpoint.ts";
 * const c = decodeCheckpoint(encodeCheckpoint({ meta: { step: 3 }, tensors: {} }), "mem");
 * (c.meta as { step: number }).step; // 3
 * ```
 */
export function decodeCheckpoint(bytes: Uint8Array, path: string): CheckpointContents {
  const fail = (why: string): never => {
    throw new CheckpointError(`checkpoint ${path}: ${why}`);
  };
  if (bytes.length < 20 || MAGIC.some((b, i) => bytes[i] !== b)) {
    fail("not a selfish-rnn checkpoint (bad magic or too short)");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== CHECKPOINT_VERSION) {
    fail(`format version ${version}, this build reads version ${CHECKPOINT_VERSION}`);
  }
  const stored = view.getUint32(bytes.length - 4, true);
  if (crc32(bytes.subarray(0, bytes.length - 4)) !== stored) {
    fail("checksum mismatch (the file is truncated or corrupt)");
  }
  const headerLen = view.getUint32(12, true);
  if (16 + headerLen > bytes.length - 4) fail("header runs past the end of the file");
  let header: {
    meta: unknown;
    tensors: { name: string; dtype: string; shape: number[]; offset: number }[];
  };
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(16, 16 + headerLen)),
    );
  } catch (e) {
    return fail(`unreadable header: ${(e as Error).message}`);
  }
  const dataStart = 16 + Math.ceil(headerLen / 4) * 4;
  const dataEnd = bytes.length - 4;
  const tensors: Record<string, HostTensor> = {};
  for (const e of header.tensors ?? []) {
    const n = numel(e.shape);
    const start = dataStart + e.offset;
    if (e.offset % 4 !== 0 || start + 4 * n > dataEnd) {
      fail(`tensor ${e.name} lies outside the data`);
    }
    const copy = bytes.slice(start, start + 4 * n).buffer;
    if (e.dtype === "f32") {
      tensors[e.name] = { dtype: "f32", shape: e.shape, data: new Float32Array(copy) };
    } else if (e.dtype === "u32") {
      tensors[e.name] = { dtype: "u32", shape: e.shape, data: new Uint32Array(copy) };
    } else fail(`tensor ${e.name} has unknown dtype ${e.dtype}`);
  }
  return { meta: header.meta, tensors };
}

/**
 * Writes a checkpoint atomically: to `path.tmp-<pid>` in the same directory, fsync, rename.
 * On any failure the temporary file is removed and an existing `path` is left untouched.
 *
 * @example
 * ```ts ignore
 * await writeCheckpoint("run.ckpt", { meta: { step }, tensors: { "embedding.weight": emb } });
 * ```
 */
export async function writeCheckpoint(path: string, contents: CheckpointContents): Promise<void> {
  const bytes = encodeCheckpoint(contents);
  try {
    await writeAtomicBytes(path, bytes);
  } catch (e) {
    throw new CheckpointError(`checkpoint ${path}: write failed: ${(e as Error).message}`);
  }
}

/**
 * Reads and validates a checkpoint; throws {@linkcode CheckpointError} naming the file.
 *
 * @example
 * ```ts ignore
 * const { meta, tensors } = await readCheckpoint("run.ckpt");
 * ```
 */
export async function readCheckpoint(path: string): Promise<CheckpointContents> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new CheckpointError(`checkpoint ${path}: ${(e as Error).message}`);
  }
  return decodeCheckpoint(bytes, path);
}
