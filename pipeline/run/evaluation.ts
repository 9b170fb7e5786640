/**
 * The evaluation stage: mean cross-entropy of a model session over a batchified split, from a
 * fresh carried state, dropout off (one readback); and the epoch-end validation that keeps the
 * best weights (of the averaged weights during NT-ASGD's averaging, spec §5.3).
 *
 * @module
 */

import { lastUpdateStep } from "../plan.ts";
import type { Gpu } from "../../kernels/runtime/runtime.ts";
import { reduce } from "../../kernels/dense/reduce.ts";
import type { EvalNormalisation, ModelSession } from "../../models/model.ts";
import { bpttWindows, type TokenMatrix, windowTokens } from "../data/batches.ts";
import { swapAveraged } from "../optimizer.ts";
import { inMaskedForm } from "./storage_switch.ts";
import type { RunContext, RunState } from "./types.ts";

/**
 * Cross-entropy (nats per token) of `session` over `matrix`, the state carried across windows
 * of `bptt` steps: the sum over every target divided by the targets' count (`"targets"`, the
 * stacked LSTM's and RHN's `main.py`: rows − 1 per column) or by the matrix's rows·columns
 * (`"rows"`, the ON-LSTM script's `total_loss / len(data_source)`; spec §1). Reads back once.
 *
 * `progress`, when given, hears after each twentieth of the windows, once the device has done
 * them (a sync each: long evaluations, such as the paper's batch-1 test, show how far they are).
 *
 * @example
 * ```ts ignore
 * const loss = await evaluate(gpu, ctx.evaluation, ctx.rd.test, 35);
 * ```
 */
export async function evaluate(
  gpu: Gpu,
  session: ModelSession,
  matrix: TokenMatrix,
  bptt: number,
  per: EvalNormalisation = "targets",
  progress?: (windowsDone: number, windows: number) => void,
): Promise<number> {
  session.resetState();
  const windows = bpttWindows(matrix, bptt);
  const sums = gpu.zeros([Math.max(1, windows.length)]);
  const chunk = Math.ceil(windows.length / 20);
  let tokens = 0;
  for (let i = 0; i < windows.length; i++) {
    const w = windows[i];
    const { input, target } = windowTokens(matrix, w);
    const batch = session.writeBatch({ T: w.length, input, target });
    reduce(gpu, { op: "sum", x: session.evalLoss(batch), out: sums, outIndex: i });
    tokens += w.length * matrix.cols;
    if (progress && (i + 1) % chunk === 0 && i + 1 < windows.length) {
      await gpu.sync();
      progress(i + 1, windows.length);
    }
  }
  const host = await gpu.read(sums);
  gpu.release(sums);
  let total = 0;
  for (let i = 0; i < windows.length; i++) total += host[i];
  const count = per === "rows" ? matrix.rows * matrix.cols : tokens;
  return total / Math.max(1, count);
}

/**
 * Validates the current weights (averaged ones during averaging) on the epochs' validation set
 * and keeps them as the best when they improve and the method allows (gradual pruning: only at
 * its final density). `force` skips that allowance (the last resort of a run whose epochs never
 * produced an allowed model).
 *
 * @example
 * ```ts ignore
 * const { state: next, loss } = await validate(ctx, state);
 * ```
 */
export async function validate(
  ctx: RunContext,
  state: RunState,
  force = false,
): Promise<{ state: RunState; loss: number }> {
  const { gpu, model } = ctx;
  swapAveraged(gpu, model.params, state.opt);
  const per = ctx.family.evalNormalisation;
  const v = await evaluate(gpu, ctx.evaluation, ctx.rd.valid, ctx.config.bptt, per);
  const at = { step: state.meta.step, lastUpdate: lastUpdateStep(ctx.plan) };
  const allowed = ctx.method.mayBeBest?.(state.sparsity.tensors, ctx.settings, at) ?? true;
  const improved = v < state.meta.bestVal && (force || allowed);
  let next = state;
  if (improved) {
    next = await inMaskedForm(ctx, state, (s) => {
      model.params.forEach((p, i) => {
        gpu.copy(p.value, ctx.best.values[i]);
        const m = ctx.best.masks[i];
        if (p.mask && m) gpu.copy(p.mask, m);
      });
      return s;
    });
  }
  swapAveraged(gpu, model.params, next.opt);
  return { state: improved ? { ...next, meta: { ...next.meta, bestVal: v } } : next, loss: v };
}
