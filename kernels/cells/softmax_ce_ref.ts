/**
 * CPU reference for the fused softmax + cross-entropy kernel, in f64 (test oracle, never
 * production).
 *
 * @module
 */

/** Per-row losses and logit gradients from {@linkcode softmaxCrossEntropyRef}, in f64. */
export interface SoftmaxCrossEntropyRef {
  /** `[N]`: `logsumexp(logits[n]) - logits[n, t]`. */
  loss: Float64Array;
  /** `[N, V]`: `gradScale * (softmax(logits[n])[v] - [v == t])`. */
  dLogits: Float64Array;
  /** `[N, V]`: `softmax(logits[n])[v]`, for tolerance estimates. */
  probs: Float64Array;
}

/**
 * Softmax cross-entropy per row in f64, log-sum-exp stabilised by the row maximum. Targets
 * `>= V` are clamped to `V - 1`, as the shader does.
 *
 * `logits: [N, V]` row-major (f32 or f64 values), `targets: [N]`.
 *
 * @example
 * ```ts
 * import { softmaxCrossEntropyRef } from "./softmax_ce_ref.ts";
 * const { loss } = softmaxCrossEntropyRef(new Float32Array([0, 0]), [1], 1, 2);
 * // loss[0] = Math.log(2)
 * ```
 */
export function softmaxCrossEntropyRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  rows: number,
  vocab: number,
  gradScale = 1,
): SoftmaxCrossEntropyRef {
  const loss = new Float64Array(rows);
  const dLogits = new Float64Array(rows * vocab);
  const probs = new Float64Array(rows * vocab);
  for (let n = 0; n < rows; n++) {
    const base = n * vocab;
    const t = Math.min(targets[n], vocab - 1);
    let m = -Infinity;
    for (let v = 0; v < vocab; v++) m = Math.max(m, logits[base + v]);
    let s = 0;
    for (let v = 0; v < vocab; v++) s += Math.exp(logits[base + v] - m);
    loss[n] = m + Math.log(s) - logits[base + t];
    for (let v = 0; v < vocab; v++) {
      const p = Math.exp(logits[base + v] - m) / s;
      probs[base + v] = p;
      dLogits[base + v] = gradScale * (p - (v === t ? 1 : 0));
    }
  }
  return { loss, dLogits, probs };
}
