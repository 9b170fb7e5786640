/**
 * Schedules of the sparse-training methods, as pure functions of the optimizer step.
 *
 * @module
 */

/**
 * Selfish-RNN's cosine-annealed removal rate (spec §4.2):
 * `p_t = p_min + ½(p0 − p_min)(1 + cos(π·t/T_max))`, held at `p_min` after `T_max`.
 * The same schedule drives SET, DSR, SNFS and RigL's removal fraction as realised in the
 * Selfish-RNN code (spec §7).
 *
 * @example
 * ```ts
 * import { cosineRemovalRate } from "./schedule.ts";
 * cosineRemovalRate(0, { p0: 0.5, pMin: 0.005, tMax: 100 }); // 0.5
 * cosineRemovalRate(50, { p0: 0.5, pMin: 0.005, tMax: 100 }); // 0.2525
 * ```
 */
export function cosineRemovalRate(
  t: number,
  opts: { p0: number; pMin: number; tMax: number },
): number {
  const { p0, pMin, tMax } = opts;
  if (!(tMax > 0)) throw new RangeError(`cosineRemovalRate: tMax must be > 0, got ${tMax}`);
  const x = Math.min(Math.max(t, 0), tMax) / tMax;
  return pMin + 0.5 * (p0 - pMin) * (1 + Math.cos(Math.PI * x));
}

/**
 * Gradual magnitude pruning target sparsity (Zhu & Gupta 2017, spec §7.8):
 * `s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n·Δt))³` for `t0 ≤ t ≤ t0 + n·Δt`, `s_i` before and
 * `s_f` after.
 *
 * @example
 * ```ts
 * import { gmpSparsity } from "./schedule.ts";
 * gmpSparsity(150, { sInit: 0, sFinal: 0.67, t0: 100, dt: 10, n: 10 }); // 0.67·(1 − 0.5³)
 * ```
 */
export function gmpSparsity(
  t: number,
  opts: { sInit: number; sFinal: number; t0: number; dt: number; n: number },
): number {
  const { sInit, sFinal, t0, dt, n } = opts;
  if (!(dt > 0 && n > 0)) throw new RangeError(`gmpSparsity: dt and n must be > 0`);
  if (t <= t0) return sInit;
  const span = n * dt;
  if (t >= t0 + span) return sFinal;
  return sFinal + (sInit - sFinal) * (1 - (t - t0) / span) ** 3;
}
