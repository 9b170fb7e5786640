/**
 * CPU reference of the mixture-of-softmaxes kernels (`mos.ts`), in f64, written from the
 * definitions (π = softmax(u), P = Σ_k π_k·exp(−nll_k), loss = −log(P + ε)) rather than from the
 * kernels' log-space form; the gradients are the module doc's formulas.
 *
 * @module
 */

import { MOS_EPSILON } from "./mos.ts";

/** Outputs of {@linkcode mosMixtureRef}: `loss [N]`, `w [K, N]`, `dPrior [N, K]`. */
export interface MosMixtureRefOut {
  loss: Float64Array;
  w: Float64Array;
  dPrior: Float64Array;
}

/**
 * The mixture's loss rows and gradients (times `scale`) from `u: [N, K]` and `nll: [K, N]`.
 * P is formed directly (it only underflows below ~1e-300, far under the clamp).
 *
 * @example
 * ```ts
 * import { mosMixtureRef } from "./mos_ref.ts";
 * const r = mosMixtureRef({ u: [0, 0], nll: [1, 1], N: 1, K: 2 });
 * r.loss[0]; // ≈ 1
 * ```
 */
export function mosMixtureRef(
  a: { u: ArrayLike<number>; nll: ArrayLike<number>; N: number; K: number; scale?: number },
): MosMixtureRefOut {
  const { u, nll, N, K, scale = 1 } = a;
  const loss = new Float64Array(N), w = new Float64Array(K * N), dPrior = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    const m = Math.max(...Array.from({ length: K }, (_, k) => u[n * K + k]));
    const e = Array.from({ length: K }, (_, k) => Math.exp(u[n * K + k] - m));
    const z = e.reduce((s, v) => s + v, 0);
    const pi = e.map((v) => v / z);
    const parts = pi.map((p, k) => p * Math.exp(-nll[k * N + n]));
    const P = parts.reduce((s, v) => s + v, 0);
    loss[n] = -Math.log(P + MOS_EPSILON);
    const s = (P / (P + MOS_EPSILON)) * scale;
    for (let k = 0; k < K; k++) {
      const r = P > 0 ? parts[k] / P : pi[k];
      w[k * N + n] = s * r;
      dPrior[n * K + k] = s * (pi[k] - r);
    }
  }
  return { loss, w, dPrior };
}
