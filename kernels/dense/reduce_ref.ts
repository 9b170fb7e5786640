/**
 * CPU references for `reduce.ts`, in f64 (the test oracle, never production).
 *
 * @module
 */

import type { ReduceOp } from "./reduce.ts";

/**
 * `op` over all of `x` in f64: Σx, Σx² or max x; empty input gives 0, 0 and −∞.
 *
 * @example
 * ```ts
 * import { reduceRef } from "./reduce_ref.ts";
 * reduceRef("sumsq", new Float32Array([3, 4])); // 25
 * ```
 */
export function reduceRef(op: ReduceOp, x: ArrayLike<number>): number {
  let acc = op === "max" ? -Infinity : 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (op === "sum") acc += v;
    else if (op === "sumsq") acc += v * v;
    else acc = Math.max(acc, v);
  }
  return acc;
}

/**
 * PyTorch `clip_grad_norm_` from per-tensor sums of squares `sumsq: [k]`, in f64:
 * `norm = √Σ sumsq`, `coef = min(1, maxNorm / (norm + 1e-6))`.
 *
 * @example
 * ```ts
 * import { clipCoefficientRef } from "./reduce_ref.ts";
 * clipCoefficientRef([9, 16], 1).norm; // 5
 * ```
 */
export function clipCoefficientRef(
  sumsq: ArrayLike<number>,
  maxNorm: number,
): { coef: number; norm: number } {
  const norm = Math.sqrt(reduceRef("sum", sumsq));
  return { coef: Math.min(1, maxNorm / (norm + 1e-6)), norm };
}
