/**
 * The model step: one training window through the model (forward, loss, backward), its loss
 * summed into the run's loss buffer, the optimizer update, the FLOPs charged, and the run's
 * position advanced. Records GPU work only.
 *
 * The window is the current position of the pass over the training data; the hidden state
 * carries across the windows of a pass and restarts at zero with each pass.
 *
 * @module
 */

import { reduce } from "../../kernels/dense/reduce.ts";
import { windowTokens } from "../data/batches.ts";
import { optimizerStep } from "../optimizer.ts";
import { addTrainFlops, forwardFlops } from "../sparsity/flops.ts";
import { sparsityDensities } from "../sparsity/stage.ts";
import { optimizerSettings } from "./settings.ts";
import type { RunContext, RunState } from "./types.ts";

/**
 * Records one training step and returns the advanced state.
 *
 * @example
 * ```ts ignore
 * state = trainStep(ctx, state);
 * ```
 */
export function trainStep(ctx: RunContext, state: RunState): RunState {
  const { gpu, config, rd } = ctx;
  const { meta } = state;
  if (meta.window === 0) ctx.train.resetState();
  const windows = rd.passWindows(meta.pass);
  const w = windows[meta.window];
  const { input, target } = windowTokens(rd.train, w);
  const batch = ctx.train.writeBatch({ T: w.length, input, target });
  const rows = ctx.train.step(batch, { seed: config.seed, step: meta.step });
  reduce(gpu, { op: "sum", x: rows, out: ctx.lossSums, outIndex: state.loss.pending });
  const opt = optimizerStep(
    gpu,
    ctx.model.params,
    state.opt,
    optimizerSettings(config, config.lr * w.lrScale),
  );
  const tokens = w.length * rd.train.cols;
  const flops = addTrainFlops(meta.flops, {
    tokens,
    model: ctx.method.flops,
    fS: forwardFlops(ctx.costs.weights, sparsityDensities(state.sparsity)),
    fD: ctx.costs.fDense,
    fRef: ctx.costs.fRef,
  });
  return {
    ...state,
    opt,
    meta: {
      ...meta,
      step: meta.step + 1,
      ...(meta.window + 1 < windows.length
        ? { window: meta.window + 1 }
        : { window: 0, pass: meta.pass + 1 }),
      trainTokens: meta.trainTokens + tokens,
      flops,
    },
    loss: {
      ...state.loss,
      pending: state.loss.pending + 1,
      tokens: state.loss.tokens + tokens,
    },
    lastTokens: tokens,
  };
}
