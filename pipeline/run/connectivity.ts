/**
 * The connectivity-update stage of the loop: one update of the run's method
 * (`sparsity/stage.ts`) on masked form, its extra FLOPs (RigL's dense gradient) and its log
 * line with the removal rate it used.
 *
 * @module
 */

import { addUpdateFlops, forwardFlops } from "../sparsity/flops.ts";
import { sparsityDensities, sparsityUpdate } from "../sparsity/stage.ts";
import { overallDensity } from "./log_stage.ts";
import { inMaskedForm } from "./storage_switch.ts";
import type { RunContext, RunState } from "./types.ts";

/**
 * Runs the update due after the state's step and returns the new state.
 *
 * @example
 * ```ts ignore
 * if (sparsityDue(state.sparsity, state.meta.step, ctx.plan)) state = await connectivityStep(ctx, state);
 * ```
 */
export async function connectivityStep(ctx: RunContext, state: RunState): Promise<RunState> {
  const fS = forwardFlops(ctx.costs.weights, sparsityDensities(state.sparsity));
  // e.g. RigL's dense gradient (spec §9): the masked-dense path already has it, but the
  // accounting charges what a sparse implementation would spend
  const flops = addUpdateFlops(state.meta.flops, {
    tokens: state.lastTokens,
    model: ctx.method.flops,
    fS,
    fD: ctx.costs.fDense,
  });
  let report = { removed: 0, grown: 0 };
  const next = await inMaskedForm(ctx, state, async (s) => {
    const u = await sparsityUpdate(ctx.gpu, s.sparsity, ctx.model.params, {
      optimizer: s.opt,
      step: s.meta.step,
      plan: ctx.plan,
      units: ctx.units ?? undefined,
    });
    report = u;
    return { ...s, sparsity: u.state };
  });
  const p = next.sparsity.history[next.sparsity.history.length - 1]?.removalRate ?? NaN;
  ctx.printer.say(
    `step ${next.meta.step}: ${ctx.settings.method} update at p ${p.toFixed(4)} removed ` +
      `${report.removed}, grew ${report.grown} (density ${overallDensity(next).toFixed(4)})`,
  );
  return { ...next, meta: { ...next.meta, flops, sparsity: next.sparsity } };
}
