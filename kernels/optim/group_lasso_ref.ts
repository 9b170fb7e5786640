/**
 * CPU references of `group_lasso.ts` (the tests' oracle). A weight matrix `w: [R, C]`
 * (row-major) has its rows grouped by hidden unit `r mod U` (the gate blocks of an LSTM weight,
 * `R = G·U`) and its columns by unit `c` (the unit whose output the column reads).
 *
 * @module
 */

/**
 * Per-unit sums of squares: `rows` → `out[k] = Σ_{r ≡ k (mod U), c} w[r, c]²`, `cols` →
 * `out[c] = Σ_r w[r, c]²`; added to `out` when `accumulate`.
 *
 * @example
 * ```ts
 * import { unitSquaresRef } from "./group_lasso_ref.ts";
 * unitSquaresRef(new Float64Array([1, 2, 3, 4]), 2, 2, "rows", 1); // Float64Array [30]
 * ```
 */
export function unitSquaresRef(
  w: ArrayLike<number>,
  R: number,
  C: number,
  axis: "rows" | "cols",
  U: number,
  out: Float64Array = new Float64Array(U),
  accumulate = false,
): Float64Array {
  if (!accumulate) out.fill(0);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      const v = w[r * C + c];
      out[axis === "rows" ? r % U : c] += v * v;
    }
  }
  return out;
}

/** `1/√s`, and 0 for a group whose norm is 0 (a removed unit has no gradient). */
export function inverseNorm(s: number): number {
  return s > 0 ? 1 / Math.sqrt(s) : 0;
}

/**
 * The group-Lasso gradient `λ·∂Σ_k‖g_k‖₂/∂w` added to `grad`: `grad[r, c] += λ·w[r, c]·(1/‖row
 * group r mod U‖ + 1/‖column group c‖)`, each part only when its squares are given.
 *
 * @example
 * ```ts
 * import { groupLassoGradRef } from "./group_lasso_ref.ts";
 * const g = new Float64Array(2);
 * groupLassoGradRef({ w: [3, 4], grad: g, R: 1, C: 2, lambda: 1, rowSq: [25], U: 1 });
 * g; // Float64Array [0.6, 0.8]
 * ```
 */
export function groupLassoGradRef(a: {
  w: ArrayLike<number>;
  grad: Float64Array;
  R: number;
  C: number;
  lambda: number;
  rowSq?: ArrayLike<number>;
  U?: number;
  colSq?: ArrayLike<number>;
}): Float64Array {
  const { w, grad, R, C, lambda } = a;
  for (let r = 0; r < R; r++) {
    const rowInv = a.rowSq ? inverseNorm(a.rowSq[r % a.U!]) : 0;
    for (let c = 0; c < C; c++) {
      const colInv = a.colSq ? inverseNorm(a.colSq[c]) : 0;
      grad[r * C + c] += lambda * w[r * C + c] * (rowInv + colInv);
    }
  }
  return grad;
}

/**
 * Zeroes the mask entries of removed units: `mask[r, c] = 0` where `rowDead[r mod U] > 0` or
 * `colDead[c] > 0`.
 *
 * @example
 * ```ts
 * import { maskDeadUnitsRef } from "./group_lasso_ref.ts";
 * maskDeadUnitsRef({ mask: new Float64Array([1, 1, 1, 1]), R: 2, C: 2, colDead: [0, 1] });
 * // Float64Array [1, 0, 1, 0]
 * ```
 */
export function maskDeadUnitsRef(a: {
  mask: Float64Array;
  R: number;
  C: number;
  rowDead?: ArrayLike<number>;
  U?: number;
  colDead?: ArrayLike<number>;
}): Float64Array {
  for (let r = 0; r < a.R; r++) {
    for (let c = 0; c < a.C; c++) {
      if ((a.rowDead && a.rowDead[r % a.U!] > 0) || (a.colDead && a.colDead[c] > 0)) {
        a.mask[r * a.C + c] = 0;
      }
    }
  }
  return a.mask;
}
