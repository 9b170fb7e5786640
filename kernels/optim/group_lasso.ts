/**
 * Group Lasso over hidden units (ISS, Wen et al. 2018; spec §7.7): the kernels that measure
 * each unit's group of weights, add the penalty's gradient, and cut removed units out of the
 * masks. A weight matrix `w: [R, C]` (row-major) belongs to units by its rows (`r mod U`: the
 * gate blocks of an LSTM weight, `R = G·U`) and/or by its columns (`c`: the unit whose output the
 * column reads); a unit's group spans several matrices, so the squares accumulate per unit over
 * them before the norms are taken. References: `group_lasso_ref.ts`.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { expectSize, ShapeError, type Tensor } from "../runtime/tensor.ts";

const WG = 256;
const UNIT_WG = 64;

const UNIT_SQUARES: KernelSpec = {
  name: "unit_squares",
  bindings: [
    { name: "w", dtype: "f32", access: "read" },
    { name: "out", dtype: "f32", access: "read_write" },
  ],
  params: [["R", "u32"], ["C", "u32"], ["U", "u32"], ["mode", "u32"], ["acc", "u32"]],
  constants: { UNIT_WG },
  body: `
@compute @workgroup_size(UNIT_WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k = gid.x;
  if (k >= P.U) { return; }
  var s = 0.0f;
  if (P.mode == 0u) {
    let blocks = P.R / P.U;
    for (var g = 0u; g < blocks; g = g + 1u) {
      let base = P.off_w + (g * P.U + k) * P.C;
      for (var c = 0u; c < P.C; c = c + 1u) { let v = w[base + c]; s = s + v * v; }
    }
  } else {
    for (var r = 0u; r < P.R; r = r + 1u) { let v = w[P.off_w + r * P.C + k]; s = s + v * v; }
  }
  if (P.acc == 1u) { s = s + out[P.off_out + k]; }
  out[P.off_out + k] = s;
}`,
};

const GROUP_LASSO_GRAD: KernelSpec = {
  name: "group_lasso_grad",
  bindings: [
    { name: "w", dtype: "f32", access: "read" },
    { name: "row_sq", dtype: "f32", access: "read" },
    { name: "col_sq", dtype: "f32", access: "read" },
    { name: "grad", dtype: "f32", access: "read_write" },
  ],
  params: [
    ["n", "u32"],
    ["C", "u32"],
    ["U", "u32"],
    ["has_row", "u32"],
    ["has_col", "u32"],
    ["lambda", "f32"],
  ],
  constants: { WG },
  body: `${LINEAR_INDEX_WGSL}
fn inv_norm(s: f32) -> f32 { return select(0.0f, inverseSqrt(s), s > 0.0f); }
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.n) { return; }
  let r = i / P.C;
  let c = i - r * P.C;
  var inv = 0.0f;
  if (P.has_row == 1u) { inv = inv + inv_norm(row_sq[P.off_row_sq + r % P.U]); }
  if (P.has_col == 1u) { inv = inv + inv_norm(col_sq[P.off_col_sq + c]); }
  grad[P.off_grad + i] = grad[P.off_grad + i] + P.lambda * w[P.off_w + i] * inv;
}`,
};

const MASK_DEAD_UNITS: KernelSpec = {
  name: "mask_dead_units",
  bindings: [
    { name: "row_dead", dtype: "f32", access: "read" },
    { name: "col_dead", dtype: "f32", access: "read" },
    { name: "mask", dtype: "f32", access: "read_write" },
  ],
  params: [["n", "u32"], ["C", "u32"], ["U", "u32"], ["has_row", "u32"], ["has_col", "u32"]],
  constants: { WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.n) { return; }
  let r = i / P.C;
  let c = i - r * P.C;
  var dead = false;
  if (P.has_row == 1u) { dead = dead || row_dead[P.off_row_dead + r % P.U] > 0.0f; }
  if (P.has_col == 1u) { dead = dead || col_dead[P.off_col_dead + c] > 0.0f; }
  if (dead) { mask[P.off_mask + i] = 0.0f; }
}`,
};

function matrix(what: string, t: Tensor): [number, number] {
  if (t.shape.length !== 2 || t.dtype !== "f32") {
    throw new ShapeError(`${what}: expected an f32 matrix, got ${t.dtype} [${t.shape.join(", ")}]`);
  }
  return [t.shape[0], t.shape[1]];
}

/** How a matrix's rows and columns map to units: rows by `r mod rowUnits`, columns one each. */
export interface UnitAxes {
  /** Per-unit vector over the row groups (`[U]`, `R` a multiple of U), if rows belong to units. */
  rows?: Tensor;
  /** Per-unit vector over the columns (`[C]`), if columns belong to units. */
  cols?: Tensor;
}

function axes(what: string, R: number, C: number, a: UnitAxes): number {
  const U = a.rows?.size ?? 1;
  if (a.rows && R % U !== 0) {
    throw new ShapeError(`${what}: ${R} rows do not split into blocks of ${U} units`);
  }
  if (a.rows) expectSize(`${what} rows`, a.rows, U, "f32");
  if (a.cols) expectSize(`${what} cols`, a.cols, C, "f32");
  return U;
}

/**
 * Records per-unit sums of squares of `w: [R, C]` into `out`: over its row groups (`axis:
 * "rows"`, `out: [U]`, unit `r mod U`) or its columns (`"cols"`, `out: [C]`); added to `out`'s
 * values when `accumulate` (a unit's group spans several matrices).
 *
 * @example
 * ```ts ignore
 * unitSquares(gpu, { w: wIh, axis: "rows", out: sq });               // rows of the 4 gates
 * unitSquares(gpu, { w: wHh, axis: "cols", out: sq, accumulate: true });
 * ```
 */
export function unitSquares(
  gpu: Gpu,
  a: { w: Tensor; axis: "rows" | "cols"; out: Tensor; accumulate?: boolean },
): void {
  const [R, C] = matrix("unitSquares w", a.w);
  const U = a.out.size;
  if (a.axis === "rows" && R % U !== 0) {
    throw new ShapeError(`unitSquares: ${R} rows do not split into blocks of ${U} units`);
  }
  if (a.axis === "cols" && C !== U) {
    throw new ShapeError(`unitSquares: ${C} columns, out has ${U} units`);
  }
  const params = { R, C, U, mode: a.axis === "rows" ? 0 : 1, acc: a.accumulate ? 1 : 0 };
  gpu.run(UNIT_SQUARES, { w: a.w, out: a.out }, params, [Math.ceil(U / UNIT_WG), 1, 1]);
}

/**
 * The two per-unit vectors to bind: an absent one is bound to the present one, which the kernel
 * never reads through it (its flag is 0), so no stand-in is allocated or filled per call.
 */
function bindAxes(what: string, a: UnitAxes): [Tensor, Tensor] {
  const any = a.rows ?? a.cols;
  if (!any) throw new ShapeError(`${what}: neither row nor column units given`);
  return [a.rows ?? any, a.cols ?? any];
}

/**
 * Records `grad += λ·w·(1/‖row group‖ + 1/‖column group‖)` for `w: [R, C]`, from the groups'
 * sums of squares (`sq.rows: [U]`, `sq.cols: [C]`; either may be absent; a zero sum adds
 * nothing; at least one must be given): the gradient of `λ·Σ_k ‖g_k‖₂` with respect to `w`.
 *
 * @example
 * ```ts ignore
 * groupLassoGrad(gpu, { w: p.value, grad: p.grad, lambda: 1e-3, sq: { rows: sqL, cols: sqL } });
 * ```
 */
export function groupLassoGrad(
  gpu: Gpu,
  a: { w: Tensor; grad: Tensor; lambda: number; sq: UnitAxes },
): void {
  const [R, C] = matrix("groupLassoGrad w", a.w);
  expectSize("groupLassoGrad grad", a.grad, R * C, "f32");
  if (!Number.isFinite(a.lambda)) throw new RangeError(`groupLassoGrad: lambda ${a.lambda}`);
  const U = axes("groupLassoGrad", R, C, a.sq);
  const [rowSq, colSq] = bindAxes("groupLassoGrad", a.sq);
  gpu.run(
    GROUP_LASSO_GRAD,
    { w: a.w, row_sq: rowSq, col_sq: colSq, grad: a.grad },
    { n: R * C, C, U, has_row: a.sq.rows ? 1 : 0, has_col: a.sq.cols ? 1 : 0, lambda: a.lambda },
    gridFor(R * C, WG),
  );
}

/**
 * Records `mask[r, c] = 0` wherever row unit `r mod U` or column unit `c` is dead (`dead.rows:
 * [U]`, `dead.cols: [C]`: > 0 for a removed unit).
 *
 * @example
 * ```ts ignore
 * maskDeadUnits(gpu, { mask: p.mask, dead: { rows: deadL, cols: deadPrev } });
 * ```
 */
export function maskDeadUnits(gpu: Gpu, a: { mask: Tensor; dead: UnitAxes }): void {
  const [R, C] = matrix("maskDeadUnits mask", a.mask);
  const U = axes("maskDeadUnits", R, C, a.dead);
  const [rowDead, colDead] = bindAxes("maskDeadUnits", a.dead);
  gpu.run(
    MASK_DEAD_UNITS,
    { row_dead: rowDead, col_dead: colDead, mask: a.mask },
    { n: R * C, C, U, has_row: a.dead.rows ? 1 : 0, has_col: a.dead.cols ? 1 : 0 },
    gridFor(R * C, WG),
  );
}
