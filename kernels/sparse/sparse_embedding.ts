/**
 * Token embeddings from a sparse table (`SparseMatrix` `[V, E]`): row gather forward, and the
 * gradient at the table's active entries only.
 *
 * Forward: `out` is cleared, then one thread per token position copies the stored entries of
 * its row (`out[n, colIdx[p]] = values[p]`), so inactive columns read as 0 exactly as the
 * masked-dense gather `(W ⊙ M)[id]` does.
 *
 * Backward: the same deterministic, atomic-free grouping as the dense embedding
 * ({@linkcode buildEmbeddingIndex}, see embedding.ts): one thread per (distinct id, entry slot
 * j of that id's row) owns entry `p = rowPtr[id] + j` and sums `dOut[pos, colIdx[p]]` over the
 * id's positions in ascending order, then adds the sum to `dValues[p]` once. Entries of rows
 * absent from the batch are untouched (clear `dValues` first for a fresh gradient; with tied
 * weights the decoder's SDDMM writes it and this adds).
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { SOFTWARE_LOOP_BUDGET } from "../runtime/device.ts";
import { expectShape, ShapeError, type Tensor } from "../runtime/tensor.ts";
import { type SparseMatrix, storedLength } from "./sparse_matrix.ts";
import type { EmbeddingIndexTensors } from "../cells/embedding.ts";

const WG = 64;

const FORWARD: KernelSpec = {
  name: "sparse_embedding_forward",
  bindings: [
    { name: "ids", dtype: "u32", access: "read" },
    { name: "row_ptr", dtype: "u32", access: "read" },
    { name: "col_idx", dtype: "u32", access: "read" },
    { name: "values", dtype: "f32", access: "read" },
    { name: "out", dtype: "f32", access: "read_write" },
  ],
  params: [["n", "u32"], ["vocab", "u32"], ["dim", "u32"]],
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, ${WG}u);
  if (i >= P.n) { return; }
  // clamped like the dense gather: a bad id stays inside the table
  let id = min(ids[P.off_ids + i], P.vocab - 1u);
  let end = row_ptr[P.off_row_ptr + id + 1u];
  let o = P.off_out + i * P.dim;
  for (var p = row_ptr[P.off_row_ptr + id]; p < end; p = p + 1u) {
    out[o + col_idx[P.off_col_idx + p]] = values[P.off_values + p];
  }
}`,
};

const BACKWARD: KernelSpec = {
  name: "sparse_embedding_backward",
  bindings: [
    { name: "unique_ids", dtype: "u32", access: "read" },
    { name: "starts", dtype: "u32", access: "read" },
    { name: "positions", dtype: "u32", access: "read" },
    { name: "row_ptr", dtype: "u32", access: "read" },
    { name: "col_idx", dtype: "u32", access: "read" },
    { name: "d_out", dtype: "f32", access: "read" },
    { name: "d_values", dtype: "f32", access: "read_write" },
  ],
  params: [["total", "u32"], ["vocab", "u32"], ["rows", "u32"], ["dim", "u32"]],
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, ${WG}u);
  if (i >= P.total) { return; }
  let k = i / P.dim;
  let j = i - k * P.dim;
  let id = unique_ids[P.off_unique_ids + k];
  if (id >= P.vocab) { return; }
  let p = row_ptr[P.off_row_ptr + id] + j;
  if (p >= row_ptr[P.off_row_ptr + id + 1u]) { return; }
  let col = col_idx[P.off_col_idx + p];
  let end = starts[P.off_starts + k + 1u];
  var s: f32 = 0.0;
  for (var q: u32 = starts[P.off_starts + k]; q < end; q = q + 1u) {
    let pos = positions[P.off_positions + q];
    if (pos < P.rows) { s = s + d_out[P.off_d_out + pos * P.dim + col]; }
  }
  d_values[P.off_d_values + p] = d_values[P.off_d_values + p] + s;
}`,
};

function checkTable(what: string, table: SparseMatrix): void {
  if (table.rows < 1) throw new ShapeError(`${what} table: expected V >= 1 rows, got 0`);
}

/**
 * Gathers embedding rows from a sparse table: `out[n, :] = (W ⊙ M)[ids[n], :]` with the
 * inactive entries 0. `ids: [N]` u32, `table: SparseMatrix [V, D]`, `out: [N, D]` f32 (cleared
 * and written). Ids are clamped to `V - 1` on the GPU, as in `embeddingForward`.
 *
 * @example
 * ```ts ignore
 * sparseEmbeddingForward(gpu, { ids, table: encoderCsr, out: emb });
 * ```
 */
export function sparseEmbeddingForward(
  gpu: Gpu,
  args: { ids: Tensor; table: SparseMatrix; out: Tensor },
): void {
  const { ids, table, out } = args;
  checkTable("sparseEmbeddingForward", table);
  const n = ids.shape[0] ?? 0;
  expectShape("sparseEmbeddingForward ids", ids, [n], "u32");
  expectShape("sparseEmbeddingForward out", out, [n, table.cols], "f32");
  gpu.fill(out, 0);
  gpu.run(
    FORWARD,
    {
      ids,
      row_ptr: table.rowPtr,
      col_idx: table.colIdx,
      values: table.values,
      out,
    },
    { n, vocab: table.rows, dim: table.cols },
    gridFor(n, WG),
  );
}

/**
 * Adds the embedding gradient at the table's active entries: for each active entry `p` at
 * `(u, d)`, `dValues[p] += Σ dOut[pos, d]` over the batch positions `pos` of id `u`
 * (ascending; see the module doc). `index` from `uploadEmbeddingIndex` (N positions,
 * vocabulary V), `dOut: [N, D]`, `dValues: [storedLength(nnz)]` aligned with `table.values`.
 *
 * @example
 * ```ts ignore
 * gpu.fill(dValues, 0);
 * sparseEmbeddingBackward(gpu, { index, dOut, table: encoderCsr, dValues });
 * ```
 */
export function sparseEmbeddingBackward(
  gpu: Gpu,
  args: { index: EmbeddingIndexTensors; dOut: Tensor; table: SparseMatrix; dValues: Tensor },
): void {
  const { index, dOut, table, dValues } = args;
  checkTable("sparseEmbeddingBackward", table);
  const u = index.uniqueIds.shape[0] ?? 0;
  const n = index.positions.shape[0] ?? 0;
  const d = table.cols;
  if (index.vocabSize !== table.rows) {
    throw new ShapeError(
      `sparseEmbeddingBackward: index built for vocabulary ${index.vocabSize}, table has ` +
        `${table.rows} rows`,
    );
  }
  expectShape("sparseEmbeddingBackward index.uniqueIds", index.uniqueIds, [u], "u32");
  expectShape("sparseEmbeddingBackward index.starts", index.starts, [u + 1], "u32");
  expectShape("sparseEmbeddingBackward dOut", dOut, [n, d], "f32");
  expectShape("sparseEmbeddingBackward dValues", dValues, [storedLength(table.nnz)], "f32");
  if (dValues.buffer === dOut.buffer) {
    throw new ShapeError("sparseEmbeddingBackward: dValues and dOut must not share a GPU buffer");
  }
  if (gpu.report.isFallback && index.maxGroupSize > SOFTWARE_LOOP_BUDGET) {
    throw new RangeError(
      `sparseEmbeddingBackward: an id occurs ${index.maxGroupSize} times in this batch; ` +
        `software adapters (llvmpipe) run at most ${SOFTWARE_LOOP_BUDGET} loop iterations ` +
        `per thread`,
    );
  }
  if (table.nnz === 0) return;
  const total = u * d;
  gpu.run(
    BACKWARD,
    {
      unique_ids: index.uniqueIds,
      starts: index.starts,
      positions: index.positions,
      row_ptr: table.rowPtr,
      col_idx: table.colIdx,
      d_out: dOut,
      d_values: dValues,
    },
    { total, vocab: table.rows, rows: n, dim: d },
    gridFor(total, WG),
  );
}
