/**
 * The epoch-end stage: the pending losses, the validation (best weights), NT-ASGD's
 * non-monotone trigger (spec §5.1; never at the run's last step, where no averaged step would
 * follow), the loss history and the epoch's log row; and, after the epoch's connectivity
 * update, SNT-ASGD's fine-tuning restarts.
 *
 * @module
 */

import { nonmonoTrigger } from "../ntasgd.ts";
import { restartAveraging, startAveraging } from "../optimizer.ts";
import { validate } from "./evaluation.ts";
import { flushLoss, logEpoch } from "./log_stage.ts";
import type { RunContext, RunState } from "./types.ts";

/**
 * Runs the epoch-end events and returns the state of the next epoch.
 *
 * @example
 * ```ts ignore
 * if (isEpochEnd(ctx.plan, state.meta.step)) state = await endEpoch(ctx, state);
 * ```
 */
export async function endEpoch(ctx: RunContext, state: RunState): Promise<RunState> {
  let s = await flushLoss(ctx, state);
  const r = await validate(ctx, s);
  s = r.state;
  const v = r.loss;
  let { opt } = s;
  let averagedAfterEpoch = s.meta.averagedAfterEpoch;
  if (
    s.meta.step < ctx.plan.totalSteps && opt.kind === "ntasgd" && !opt.averaging &&
    nonmonoTrigger(s.meta.history, v, ctx.config.nonmono)
  ) {
    opt = startAveraging(ctx.gpu, ctx.model.params, opt);
    averagedAfterEpoch = s.meta.epoch + 1;
    ctx.printer.say(
      `epoch ${s.meta.epoch + 1}: validation stopped improving; switching to averaged SGD`,
    );
  }
  s = { ...s, opt, meta: { ...s.meta, history: [...s.meta.history, v], averagedAfterEpoch } };
  const prefix = ctx.rd.valid !== ctx.rd.validFull;
  const optimal = ctx.data.optimalPerplexity;
  ctx.printer.say(
    `epoch ${s.meta.epoch + 1} done: valid ppl ${Math.exp(v).toFixed(2)}` +
      (prefix ? ` (first ${ctx.config.validTokens} tokens)` : "") +
      (optimal ? ` (optimal ${optimal.toFixed(2)})` : ""),
  );
  await logEpoch(ctx, s, v);
  return { ...s, meta: { ...s.meta, epoch: s.meta.epoch + 1 } };
}

/**
 * SNT-ASGD's fine-tuning restart after the epoch just ended, when `--asgd-restarts` names it
 * and averaging has started (spec §5.4, §14.2): run after that epoch's connectivity update.
 *
 * @example
 * ```ts ignore
 * if (epochEnd) state = restartAveragingIfDue(ctx, state);
 * ```
 */
export function restartAveragingIfDue(ctx: RunContext, state: RunState): RunState {
  const done = state.meta.epoch; // endEpoch has advanced it: the epoch just ended, 1-based
  if (!state.opt.averaging || !ctx.config.asgdRestarts.includes(done)) return state;
  ctx.printer.say(`epoch ${done}: restarting SNT-ASGD's averaging (fine-tuning)`);
  return {
    ...state,
    opt: restartAveraging(ctx.gpu, state.opt),
    meta: { ...state.meta, restartedAfterEpochs: [...state.meta.restartedAfterEpochs, done] },
  };
}
