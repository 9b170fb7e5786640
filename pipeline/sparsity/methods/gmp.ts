/**
 * Gradual magnitude pruning (Zhu & Gupta 2017, spec §7.8): dense to sparse. Training starts
 * dense (all masks ones, budget = numel); at every update at step t ≥ t0 each tensor is pruned
 * by magnitude to the target sparsity
 *
 *   s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n·Δt))³,   s_i = 0, s_f = 1 − density,
 *
 * i.e. its `nnz` drops to `round((1 − s_t) · numel)` by removing the smallest-|w| active weights
 * (never below; pruned weights never regrow, the masked optimizer keeps them at 0). Budgets
 * follow `nnz`. Every tensor gets the same sparsity (the Zhu & Gupta per-layer rule;
 * `settings.init` does not apply).
 *
 * Window: t0 = ⌊pruneStart · T⌋, t0 + n·Δt = ⌊pruneEnd · T⌋ (T = the run's planned length,
 * `pipeline/plan.ts`, wherever the run is stopped). The formula
 * depends on Δt and n only through n·Δt, so this file passes Δt = 1, n = the window length:
 * the real Δt is the stage's update interval (`--update-every`, or once per epoch), and every
 * update in the window prunes to the schedule's value at its step. Updates after the window
 * prune to s_f (a no-op once reached), so the final density is met even when no update lands
 * exactly on the window's end; a plan with no update at or after the window's end is refused
 * before training (`planProblem`), and only models at the final density may become the run's
 * best (`mayBeBest`). The paper's t0, Δt and n are unknown (spec §7.8).
 *
 * @module
 */

import type { SparsityMethod, UpdateInput, UpdateReport } from "../method.ts";
import { flatView, removeByMagnitude } from "../ops.ts";
import { gmpSparsity } from "../schedule.ts";
import { epochLengthText, lastUpdateStep, type RunPlan } from "../../plan.ts";

/**
 * The density every tensor is pruned to at `step` of `totalSteps` (1 before the window,
 * `density` after it). Host-only.
 *
 * @example
 * ```ts
 * import { gmpDensity } from "./gmp.ts";
 * gmpDensity(0, 100, { density: 0.33, pruneStart: 0.1, pruneEnd: 0.6 }); // 1
 * gmpDensity(80, 100, { density: 0.33, pruneStart: 0.1, pruneEnd: 0.6 }); // 0.33
 * ```
 */
export function gmpDensity(
  step: number,
  totalSteps: number,
  s: { density: number; pruneStart: number; pruneEnd: number },
): number {
  if (!(s.pruneStart >= 0 && s.pruneStart < s.pruneEnd && s.pruneEnd <= 1)) {
    throw new RangeError(
      `gmp: need 0 <= pruneStart < pruneEnd <= 1, got ${s.pruneStart}, ${s.pruneEnd}`,
    );
  }
  const t0 = Math.floor(s.pruneStart * totalSteps);
  const span = gmpEndStep(totalSteps, s) - t0;
  if (step >= t0 + span) return s.density;
  return 1 - gmpSparsity(step, { sInit: 0, sFinal: 1 - s.density, t0, dt: 1, n: span });
}

/**
 * The step from which gradual pruning's target is the final density: `⌊pruneEnd · T⌋`, at least
 * one step after the window's start. Host-only.
 *
 * @example
 * ```ts
 * import { gmpEndStep } from "./gmp.ts";
 * gmpEndStep(800, { pruneStart: 0.1, pruneEnd: 0.75 }); // 600
 * ```
 */
export function gmpEndStep(
  totalSteps: number,
  s: { pruneStart: number; pruneEnd: number },
): number {
  const t0 = Math.floor(s.pruneStart * totalSteps);
  return t0 + Math.max(1, Math.floor(s.pruneEnd * totalSteps) - t0);
}

/** Pruning reaches its density only at an update at or after the window's end. */
function planProblem(
  s: { pruneStart: number; pruneEnd: number },
  plan: RunPlan,
): string | null {
  const end = gmpEndStep(plan.totalSteps, s);
  const last = lastUpdateStep(plan);
  if (last >= end) return null;
  const when = plan.updateEvery > 0
    ? `every ${plan.updateEvery} steps`
    : `once per epoch of ${epochLengthText(plan)} steps`;
  return `gmp prunes to its final density at step ${end} (--prune-end ${s.pruneEnd} of ` +
    `${plan.totalSteps} steps), but with updates ${when} the last update inside the run is ` +
    (last < 0 ? "none" : `at step ${last}`) +
    ": lower --prune-end, or update more often (--update-every, --epoch-steps)";
}

async function update(input: UpdateInput): Promise<UpdateReport> {
  const { ops, settings } = input;
  const d = gmpDensity(input.step, input.totalSteps, settings);
  let removed = 0;
  for (const t of input.tensors.map(flatView)) {
    const keep = Math.round(d * t.param.value.size);
    const k = Math.max(0, t.nnz - keep);
    removeByMagnitude(ops, t, k);
    removed += k;
    t.budget = t.nnz;
  }
  return await Promise.resolve({ removed, grown: 0 });
}

/**
 * Gradual magnitude pruning: dense start, cubic sparsity schedule, no regrowth.
 *
 * @example
 * ```ts ignore
 * const report = await gmp.update!(input); // input: UpdateInput from the stage
 * ```
 */
export const gmp: SparsityMethod = {
  name: "gmp",
  summary: "starts dense, prunes by magnitude on a cubic schedule to the target density",
  sparse: true,
  startsDense: true,
  dynamic: true,
  flops: "pruning",
  update,
  // only a model at the final density may be tested (the budget of the comparison)
  mayBeBest: (tensors, settings) =>
    tensors.every((t) => t.nnz <= Math.round(settings.density * t.numel)),
  planProblem,
};
