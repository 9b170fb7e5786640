/**
 * CPU reference of `activation_reg.ts`: the value of AR + TAR on `y: [T·B, D]` and its
 * gradient, in f64.
 *
 * @module
 */

/**
 * `α·mean(y²) + β·mean((y_t − y_{t−1})²)` and its gradient w.r.t. `y`.
 *
 * @example
 * ```ts
 * import { activationRegRef } from "./activation_reg_ref.ts";
 * activationRegRef([1, 3], 2, 1, 1, 1, 1).value; // (1 + 9)/2 + (3 − 1)² = 9
 * ```
 */
export function activationRegRef(
  y: ArrayLike<number>,
  T: number,
  B: number,
  D: number,
  alpha: number,
  beta: number,
): { value: number; grad: Float64Array } {
  const row = B * D, n = T * row;
  const grad = new Float64Array(n);
  let ar = 0, tar = 0;
  for (let i = 0; i < n; i++) {
    ar += y[i] * y[i];
    grad[i] += (2 * alpha * y[i]) / n;
  }
  if (T > 1) {
    const m = (T - 1) * row;
    for (let i = row; i < n; i++) {
      const d = y[i] - y[i - row];
      tar += d * d;
      grad[i] += (2 * beta * d) / m;
      grad[i - row] -= (2 * beta * d) / m;
    }
    tar /= m;
  }
  return { value: (alpha * ar) / n + beta * tar, grad };
}
