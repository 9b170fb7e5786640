/**
 * DropConnect on a weight matrix (Wan et al. 2013; AWD-LSTM's `WeightDrop`, ON-LSTM's
 * `LinearDropConnect`): element `(r, c)` of `W: [rows, cols]` is kept when
 * `uniform(seed, offset, r·cols + c) ≥ p` (the dropout element scheme of `dropout.ts` at the
 * element's dense position) and kept elements are multiplied by `scale` (1 in ON-LSTM's
 * convention, `1 / (1 − p)` in AWD-LSTM's). Dense and CSR storage draw the same decision for
 * the same position, so a masked run and a truly sparse run drop the same weights, and the CPU
 * reference is `dropoutMaskRef` over `rows·cols` elements.
 *
 * The gradient w.r.t. the raw weight is the same map applied to the gradient w.r.t. the dropped
 * one (call again on the gradient, in place).
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { expectShape, type Tensor } from "../runtime/tensor.ts";
import { checkOverlap } from "../runtime/alias.ts";
import { checkU32, RANDOM_HEAD, RANDOM_WG as WG } from "../random/random.ts";
import { checkSparse, type SparseMatrix, storedLength } from "../sparse/sparse_matrix.ts";
import { keepScaled } from "./dropout.ts";

/**
 * One thread per stored entry: its row by binary search of `rowPtr` (entries are row-major, so
 * a row's entries are contiguous), then one Philox block for its dense position.
 */
const WEIGHT_DROP_CSR: KernelSpec = {
  name: "weight_drop_csr",
  bindings: [
    { name: "rowPtr", dtype: "u32", access: "read" },
    { name: "colIdx", dtype: "u32", access: "read" },
    { name: "x", dtype: "f32", access: "read" },
    { name: "y", dtype: "f32", access: "read_write" },
  ],
  params: [
    ["nnz", "u32"],
    ["rows", "u32"],
    ["cols", "u32"],
    ["seed", "u32"],
    ["offset", "u32"],
    ["p", "f32"],
    ["scale", "f32"],
  ],
  constants: { WG },
  body: `${RANDOM_HEAD}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let k = linear_index(wg, nwg, lid, WG);
  if (k >= P.nnz) { return; }
  // the last row r with rowPtr[r] <= k
  var lo: u32 = 0u;
  var hi: u32 = P.rows;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (rowPtr[P.off_rowPtr + mid] <= k) { lo = mid; } else { hi = mid; }
  }
  let pos = lo * P.cols + colIdx[P.off_colIdx + k];
  let r = philox_block(pos / 4u, P.seed, P.offset);
  let keep = bits_to_uniform(r[pos % 4u]) >= P.p;
  y[P.off_y + k] = select(0.0f, x[P.off_x + k] * P.scale, keep);
}`,
};

/** The keep decision's parameters: drop probability, kept elements' multiplier, Philox stream. */
export interface WeightDropMask {
  /** Drop probability in [0, 1). */
  p: number;
  /** Multiplier of kept elements (rounded to f32). */
  scale: number;
  seed: number;
  offset: number;
}

function checkMask(what: string, m: WeightDropMask): void {
  if (!(m.p >= 0 && m.p < 1)) throw new RangeError(`${what}: p must be in [0, 1), got ${m.p}`);
  if (!Number.isFinite(m.scale)) throw new RangeError(`${what}: scale must be finite`);
  checkU32(`${what} seed`, m.seed);
  checkU32(`${what} offset`, m.offset);
}

/**
 * Dense DropConnect: `y = x ⊙ keep · scale` for `x, y: [rows, cols]` (`y` may be `x`).
 *
 * @example
 * ```ts ignore
 * weightDropDense(gpu, { x: wHh.value, y: scratch, mask: { p: 0.45, scale: 1, seed, offset } });
 * ```
 */
export function weightDropDense(
  gpu: Gpu,
  args: { x: Tensor; y: Tensor; mask: WeightDropMask },
): void {
  const { x, y, mask } = args;
  checkMask("weightDropDense", mask);
  expectShape("weightDropDense y", y, x.shape, "f32");
  keepScaled(gpu, { x, y, ...mask });
}

/**
 * CSR DropConnect on arrays aligned with `w.values` (the values, or their gradient):
 * `y[k] = x[k] · keep(row(k)·cols + colIdx[k]) · scale` for the `nnz` stored entries; `x, y:
 * [storedLength(nnz)]`, `y` may be `x`.
 *
 * @example
 * ```ts ignore
 * weightDropSparse(gpu, { w, x: w.values, y: dropped, mask });
 * ```
 */
export function weightDropSparse(
  gpu: Gpu,
  args: { w: SparseMatrix; x: Tensor; y: Tensor; mask: WeightDropMask },
): void {
  const { w, x, y, mask } = args;
  const what = "weightDropSparse";
  checkSparse(what, w);
  checkMask(what, mask);
  const len = storedLength(w.nnz);
  expectShape(`${what} x`, x, [len], "f32");
  expectShape(`${what} y`, y, [len], "f32");
  if (w.rows * w.cols > 0xffffffff) {
    throw new RangeError(`${what}: [${w.rows}, ${w.cols}] has more positions than a u32 counts`);
  }
  checkOverlap(what, { y }, { x, rowPtr: w.rowPtr, colIdx: w.colIdx }, [["y", "x"]]);
  if (w.nnz === 0) return;
  gpu.run(
    WEIGHT_DROP_CSR,
    { rowPtr: w.rowPtr, colIdx: w.colIdx, x, y },
    {
      nnz: w.nnz,
      rows: w.rows,
      cols: w.cols,
      seed: mask.seed,
      offset: mask.offset,
      p: Math.fround(mask.p),
      scale: Math.fround(mask.scale),
    },
    gridFor(w.nnz, WG),
  );
}
