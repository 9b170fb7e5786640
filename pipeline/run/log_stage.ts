/**
 * The log stage: training losses read back every `--log-interval` steps (the only readback of
 * the loop outside evaluation) and shown by the progress printer, and one CSV row per epoch.
 *
 * @module
 */

import type { RunContext, RunState } from "./types.ts";
import { epochLr } from "./settings.ts";

/**
 * Seconds of training so far, across resumed processes.
 *
 * @example
 * ```ts ignore
 * trainSeconds(ctx, state); // 12.5
 * ```
 */
export function trainSeconds(ctx: RunContext, state: RunState): number {
  return state.meta.trainSeconds + (performance.now() - ctx.startedAt) / 1000;
}

/** Fraction of the sparse tensors' weights that are active (1 with none). */
export function overallDensity(state: RunState): number {
  const t = state.sparsity.tensors;
  return t.length ? t.reduce((s, x) => s + x.nnz, 0) / t.reduce((s, x) => s + x.numel, 0) : 1;
}

/**
 * Reads back the pending losses, reports their mean and clears them.
 *
 * @example
 * ```ts ignore
 * if (state.loss.pending === config.logInterval) state = await flushLoss(ctx, state);
 * ```
 */
export async function flushLoss(ctx: RunContext, state: RunState): Promise<RunState> {
  const { pending, tokens } = state.loss;
  if (pending === 0) return state;
  const host = (await ctx.gpu.read(ctx.lossSums.view(0, [pending]))) as Float32Array;
  const last = host.reduce((a, b) => a + b, 0) / tokens;
  const seconds = trainSeconds(ctx, state);
  ctx.printer.update({
    epoch: state.meta.epoch + 1,
    step: state.meta.step,
    totalSteps: ctx.plan.totalSteps,
    loss: last,
    lr: epochLr(ctx.config, state.meta.history),
    tokensPerSec: state.meta.trainTokens / Math.max(1e-9, seconds),
    seconds,
  });
  return { ...state, loss: { pending: 0, tokens: 0, last } };
}

/**
 * Appends the epoch's CSV row (`--log`).
 *
 * @example
 * ```ts ignore
 * await logEpoch(ctx, state, validLoss);
 * ```
 */
export async function logEpoch(ctx: RunContext, state: RunState, valLoss: number): Promise<void> {
  const { meta } = state;
  const secs = trainSeconds(ctx, state);
  await ctx.log?.append({
    step: meta.step,
    epoch: meta.epoch + 1,
    // the rate the epoch trained at (the history now holds its own validation too)
    lr: epochLr(ctx.config, meta.history.slice(0, -1)),
    "train_loss": state.loss.last,
    "val_ppl": Math.exp(valLoss),
    "tokens_per_sec": meta.trainTokens / Math.max(1e-9, secs),
    "elapsed_sec": secs,
    "density": overallDensity(state),
    "train_flops": meta.flops.train,
    "train_flops_x_dense": meta.flops.train / Math.max(1e-30, meta.flops.denseTrain),
  });
}
