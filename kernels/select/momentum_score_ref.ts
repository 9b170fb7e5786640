/**
 * CPU reference of `momentum_score.ts` (test oracle, never production).
 *
 * @module
 */

/**
 * Reference of `adamMomentumScore`: `m[i] / (√v[i] + eps)` with every operation rounded to f32
 * (WGSL's `sqrt` and `/` may differ from these by a few ulp). `m`, `v`: `[n]`; returns `[n]`.
 *
 * @example
 * ```ts
 * import { adamMomentumScoreRef } from "./momentum_score_ref.ts";
 * adamMomentumScoreRef(Float32Array.of(2), Float32Array.of(4), 1e-8); // Float32Array [≈1]
 * ```
 */
export function adamMomentumScoreRef(m: Float32Array, v: Float32Array, eps: number): Float32Array {
  const f = Math.fround;
  const out = new Float32Array(m.length);
  for (let i = 0; i < m.length; i++) out[i] = f(m[i] / f(f(Math.sqrt(v[i])) + f(eps)));
  return out;
}
