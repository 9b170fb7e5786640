/**
 * Token embeddings: a row gather forward and a deterministic, atomic-free backward.
 *
 * Backward scheme. WebGPU has no float atomics, and scatter-adding with a thread per token
 * position would race whenever an id repeats. The data pipeline already holds the ids on the
 * host, so the grouping is done there once per batch by a counting sort
 * ({@linkcode buildEmbeddingIndex}): the distinct ids in ascending order, and for each one the
 * run of positions where it occurs (ascending). The GPU then runs one thread per
 * (distinct id, column); each thread owns exactly one `dTable` element, sums its group's
 * `dOut[p, d]` in ascending `p` from zero and adds the sum to `dTable` once. No two threads
 * write the same address and every sum has a fixed order, so results are bit-identical across
 * runs and adapters that round f32 adds the same way. Cost: a very frequent id serialises its
 * group in one thread per column, which is fine for batch sizes of a few thousand positions.
 * On software adapters (llvmpipe caps a shader invocation at 65535 loop iterations) one id may
 * occur at most 65000 times per batch; {@linkcode embeddingBackward} throws past that.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { SOFTWARE_LOOP_BUDGET } from "../runtime/device.ts";
import { expectShape, fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";

const WG = 64;

/**
 * Host-side grouping of token positions by id, input to {@linkcode embeddingBackward}.
 * Group `k` is id `uniqueIds[k]` at positions `positions[starts[k] .. starts[k + 1])`.
 */
export interface EmbeddingIndex {
  /** Distinct ids, ascending: `[U]`. */
  uniqueIds: Uint32Array;
  /** Group boundaries into `positions`: `[U + 1]`, `starts[0] = 0`, `starts[U] = N`. */
  starts: Uint32Array;
  /** Token positions grouped by id, ascending within each group: `[N]`. */
  positions: Uint32Array;
  /** The vocabulary size the ids were validated against. */
  vocabSize: number;
}

/** {@linkcode EmbeddingIndex} on the GPU (u32 tensors of the same shapes). */
export interface EmbeddingIndexTensors {
  uniqueIds: Tensor<"u32">;
  starts: Tensor<"u32">;
  positions: Tensor<"u32">;
  vocabSize: number;
  /** Largest group (most frequent id's count); bounds one backward thread's loop. */
  maxGroupSize: number;
}

/**
 * Groups positions by id with a counting sort: O(N + U) time plus either a dense count array
 * over the vocabulary (when `V` is small next to `N`, scanning it is cheaper than sorting) or a
 * map with a sort of the U distinct ids (large vocabularies, small batches). Throws a
 * `RangeError` naming the first position whose id is `>= vocabSize`.
 *
 * @example
 * ```ts
 * import { buildEmbeddingIndex } from "./embedding.ts";
 * const idx = buildEmbeddingIndex(new Uint32Array([5, 2, 5]), 10);
 * // idx.uniqueIds = [2, 5], idx.starts = [0, 1, 3], idx.positions = [1, 0, 2]
 * ```
 */
export function buildEmbeddingIndex(ids: Uint32Array, vocabSize: number): EmbeddingIndex {
  if (!Number.isInteger(vocabSize) || vocabSize < 1 || vocabSize > 0xffffffff) {
    throw new RangeError(
      `buildEmbeddingIndex: vocabSize must be an integer >= 1, got ${vocabSize}`,
    );
  }
  const n = ids.length;
  for (let p = 0; p < n; p++) {
    if (ids[p] >= vocabSize) {
      throw new RangeError(
        `buildEmbeddingIndex: ids[${p}] = ${
          ids[p]
        } is out of range for vocabulary size ${vocabSize}`,
      );
    }
  }
  let uniqueIds: Uint32Array;
  let counts: Uint32Array;
  // slot(id) → group number, filled below from whichever counter is in use.
  let slotOf: (id: number) => number;
  if (vocabSize <= 8 * n + 4096) {
    const dense = new Uint32Array(vocabSize);
    for (let p = 0; p < n; p++) dense[ids[p]]++;
    let u = 0;
    for (let v = 0; v < vocabSize; v++) if (dense[v]) u++;
    uniqueIds = new Uint32Array(u);
    counts = new Uint32Array(u);
    const slots = new Uint32Array(vocabSize);
    for (let v = 0, k = 0; v < vocabSize; v++) {
      if (!dense[v]) continue;
      uniqueIds[k] = v;
      counts[k] = dense[v];
      slots[v] = k++;
    }
    slotOf = (id) => slots[id];
  } else {
    const map = new Map<number, number>();
    for (let p = 0; p < n; p++) map.set(ids[p], (map.get(ids[p]) ?? 0) + 1);
    uniqueIds = Uint32Array.from(map.keys()).sort();
    counts = new Uint32Array(uniqueIds.length);
    const slots = new Map<number, number>();
    uniqueIds.forEach((id, k) => {
      counts[k] = map.get(id)!;
      slots.set(id, k);
    });
    slotOf = (id) => slots.get(id)!;
  }
  const u = uniqueIds.length;
  const starts = new Uint32Array(u + 1);
  for (let k = 0; k < u; k++) starts[k + 1] = starts[k] + counts[k];
  const cursor = starts.slice(0, u);
  const positions = new Uint32Array(n);
  // Visiting positions in ascending order keeps each group ascending (a stable sort).
  for (let p = 0; p < n; p++) positions[cursor[slotOf(ids[p])]++] = p;
  return { uniqueIds, starts, positions, vocabSize };
}

/**
 * Uploads an {@linkcode EmbeddingIndex} (three u32 tensors). Release them with
 * {@linkcode releaseEmbeddingIndex} when the batch is done.
 *
 * @example
 * ```ts ignore
 * const idx = uploadEmbeddingIndex(gpu, buildEmbeddingIndex(ids, vocab));
 * ```
 */
export function uploadEmbeddingIndex(gpu: Gpu, index: EmbeddingIndex): EmbeddingIndexTensors {
  const u = index.uniqueIds.length;
  const n = index.positions.length;
  if (index.starts.length !== u + 1 || index.starts[0] !== 0 || index.starts[u] !== n) {
    throw new ShapeError(
      `uploadEmbeddingIndex: starts must have ${u + 1} entries from 0 to ${n}, got ` +
        `${index.starts.length} entries from ${index.starts[0]} to ${index.starts[u]}`,
    );
  }
  // Deno 2.9 panics on a zero-length queue.writeBuffer, so an empty batch uploads nothing.
  const up = (a: Uint32Array) =>
    a.length ? gpu.upload([a.length], a, "u32") : gpu.tensor([0], "u32");
  return {
    uniqueIds: up(index.uniqueIds),
    starts: up(index.starts),
    positions: up(index.positions),
    vocabSize: index.vocabSize,
    maxGroupSize: index.starts.reduce(
      (m, st, k) => k ? Math.max(m, st - index.starts[k - 1]) : m,
      0,
    ),
  };
}

/**
 * Returns the tensors of an uploaded index to the pool.
 *
 * @example
 * ```ts ignore
 * releaseEmbeddingIndex(gpu, idx);
 * ```
 */
export function releaseEmbeddingIndex(gpu: Gpu, index: EmbeddingIndexTensors): void {
  gpu.release(index.uniqueIds);
  gpu.release(index.starts);
  gpu.release(index.positions);
}

const FORWARD: KernelSpec = {
  name: "embedding_forward",
  bindings: [
    { name: "ids", dtype: "u32", access: "read" },
    { name: "table", dtype: "f32", access: "read" },
    { name: "out", dtype: "f32", access: "read_write" },
  ],
  params: [["total", "u32"], ["vocab", "u32"], ["dim", "u32"]],
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, ${WG}u);
  if (i >= P.total) { return; }
  let n = i / P.dim;
  let d = i - n * P.dim;
  // The launcher cannot see ids on the GPU; clamping keeps a bad id inside the table.
  let id = min(ids[P.off_ids + n], P.vocab - 1u);
  out[P.off_out + i] = table[P.off_table + id * P.dim + d];
}`,
};

const BACKWARD: KernelSpec = {
  name: "embedding_backward",
  bindings: [
    { name: "unique_ids", dtype: "u32", access: "read" },
    { name: "starts", dtype: "u32", access: "read" },
    { name: "positions", dtype: "u32", access: "read" },
    { name: "d_out", dtype: "f32", access: "read" },
    { name: "d_table", dtype: "f32", access: "read_write" },
  ],
  params: [["total", "u32"], ["vocab", "u32"], ["rows", "u32"], ["dim", "u32"]],
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, ${WG}u);
  if (i >= P.total) { return; }
  let k = i / P.dim;
  let d = i - k * P.dim;
  let id = unique_ids[P.off_unique_ids + k];
  // A hand-made index could hold bad entries; skipping them keeps every access in bounds.
  if (id >= P.vocab) { return; }
  let end = starts[P.off_starts + k + 1u];
  var s: f32 = 0.0;
  for (var j: u32 = starts[P.off_starts + k]; j < end; j = j + 1u) {
    let p = positions[P.off_positions + j];
    if (p < P.rows) { s = s + d_out[P.off_d_out + p * P.dim + d]; }
  }
  let o = P.off_d_table + id * P.dim + d;
  d_table[o] = d_table[o] + s;
}`,
};

function sameBuffer(what: string, a: Tensor, b: Tensor, aName: string, bName: string): void {
  if (a.buffer === b.buffer) {
    throw new ShapeError(`${what}: ${aName} ${a} and ${bName} ${b} must not share a GPU buffer`);
  }
}

/**
 * Gathers embedding rows: `out[n, :] = table[ids[n], :]`.
 *
 * `ids: [N]` u32, `table: [V, D]` f32 (V >= 1), `out: [N, D]` f32, in a buffer of its own.
 * Ids are not checked on the host (they live on the GPU); an id `>= V` reads row `V - 1` instead
 * of out of bounds. Validate ids where they are made ({@linkcode buildEmbeddingIndex} does).
 *
 * @example
 * ```ts ignore
 * const out = gpu.tensor([N, D]);
 * embeddingForward(gpu, { ids, table, out });
 * ```
 */
export function embeddingForward(
  gpu: Gpu,
  args: { ids: Tensor; table: Tensor; out: Tensor },
): void {
  const { ids, table, out } = args;
  if (table.shape.length !== 2 || table.shape[0] < 1) {
    throw new ShapeError(
      `embeddingForward table: expected [V >= 1, D], got ${fmtShape(table.shape)}`,
    );
  }
  if (ids.shape.length !== 1) {
    throw new ShapeError(`embeddingForward ids: expected [N], got ${fmtShape(ids.shape)}`);
  }
  const [v, d] = table.shape;
  const n = ids.shape[0];
  expectShape("embeddingForward ids", ids, [n], "u32");
  expectShape("embeddingForward table", table, [v, d], "f32");
  expectShape("embeddingForward out", out, [n, d], "f32");
  sameBuffer("embeddingForward", out, table, "out", "table");
  sameBuffer("embeddingForward", out, ids, "out", "ids");
  const total = n * d;
  gpu.run(FORWARD, { ids, table, out }, { total, vocab: v, dim: d }, gridFor(total, WG));
}

/**
 * Accumulates embedding gradients: for each distinct id `u` of the batch and column `d`,
 * `dTable[u, d] += Σ dOut[p, d]` over the positions `p` of `u`, ascending (the module doc
 * describes the deterministic scheme). Rows of ids absent from the batch are untouched; zero
 * `dTable` first when it should hold only this batch.
 *
 * `index`: from {@linkcode uploadEmbeddingIndex} (N positions, vocabulary V), `dOut: [N, D]`,
 * `dTable: [V, D]` in a buffer of its own. Throws a `RangeError` on a software adapter when one
 * id occurs more than 65000 times (see the module doc).
 *
 * @example
 * ```ts ignore
 * const index = uploadEmbeddingIndex(gpu, buildEmbeddingIndex(ids, V));
 * gpu.fill(dTable, 0);
 * embeddingBackward(gpu, { index, dOut, dTable });
 * ```
 */
export function embeddingBackward(
  gpu: Gpu,
  args: { index: EmbeddingIndexTensors; dOut: Tensor; dTable: Tensor },
): void {
  const { index, dOut, dTable } = args;
  const { uniqueIds, starts, positions, vocabSize } = index;
  if (uniqueIds.shape.length !== 1 || positions.shape.length !== 1) {
    throw new ShapeError(
      `embeddingBackward index: uniqueIds and positions must be 1-D, got ` +
        `${fmtShape(uniqueIds.shape)} and ${fmtShape(positions.shape)}`,
    );
  }
  if (dTable.shape.length !== 2) {
    throw new ShapeError(
      `embeddingBackward dTable: expected [V, D], got ${fmtShape(dTable.shape)}`,
    );
  }
  const u = uniqueIds.shape[0];
  const n = positions.shape[0];
  const d = dTable.shape[1];
  expectShape("embeddingBackward index.uniqueIds", uniqueIds, [u], "u32");
  expectShape("embeddingBackward index.starts", starts, [u + 1], "u32");
  expectShape("embeddingBackward index.positions", positions, [n], "u32");
  expectShape("embeddingBackward dOut", dOut, [n, d], "f32");
  expectShape("embeddingBackward dTable", dTable, [vocabSize, d], "f32");
  const reads = {
    dOut,
    "index.uniqueIds": uniqueIds,
    "index.starts": starts,
    "index.positions": positions,
  };
  for (const [name, t] of Object.entries(reads)) {
    sameBuffer("embeddingBackward", dTable, t, "dTable", name);
  }
  if (gpu.report.isFallback && index.maxGroupSize > SOFTWARE_LOOP_BUDGET) {
    throw new RangeError(
      `embeddingBackward: an id occurs ${index.maxGroupSize} times in this batch; software ` +
        `adapters (llvmpipe) run at most ${SOFTWARE_LOOP_BUDGET} loop iterations per thread`,
    );
  }
  const total = u * d;
  gpu.run(
    BACKWARD,
    { unique_ids: uniqueIds, starts, positions, d_out: dOut, d_table: dTable },
    { total, vocab: vocabSize, rows: n, dim: d },
    gridFor(total, WG),
  );
}
