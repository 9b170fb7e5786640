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
import { sliceColumns, windowTokens } from "../data/batches.ts";
import { axpy, scale } from "../../kernels/dense/elementwise.ts";
import { optimizerStep } from "../optimizer.ts";
import { addTrainFlops, forwardFlops } from "../sparsity/flops.ts";
import { sparsityDensities } from "../sparsity/stage.ts";
import { epochLr, optimizerSettings } from "./settings.ts";
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
  const windows = rd.passWindows(meta.pass);
  const w = windows[meta.window];
  const { input, target } = windowTokens(rd.train, w);
  if (!ctx.slices) {
    if (meta.window === 0) ctx.train.resetState();
    const batch = ctx.train.writeBatch({ T: w.length, input, target });
    const rows = ctx.train.step(batch, { seed: config.seed, step: meta.step });
    reduce(gpu, { op: "sum", x: rows, out: ctx.lossSums, outIndex: state.loss.pending });
  } else {
    accumulatedStep(ctx, state, w.length, input, target);
  }
  if (ctx.method.penalty && ctx.units) {
    ctx.method.penalty({ gpu, params: ctx.model.params, units: ctx.units, settings: ctx.settings });
  }
  const opt = optimizerStep(
    gpu,
    ctx.model.params,
    state.opt,
    optimizerSettings(config, epochLr(config, meta.history) * w.lrScale),
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

/**
 * The window as `batchSize / width` column slices (`--small-batch-size`): each runs from its own
 * carried state (copied into the session's and back) with its own dropout stream (step counter
 * `step·slices + k`), and `param.grad` ends as `Σ_k (width / batchSize)·grad_k`, the gradient of
 * the whole batch's mean loss, before the one clip and optimizer step. The loss slot gets the
 * sum over every row.
 */
function accumulatedStep(
  ctx: RunContext,
  state: RunState,
  T: number,
  input: Uint32Array,
  target: Uint32Array,
): void {
  const { gpu, config, rd } = ctx;
  const { width, states } = ctx.slices!;
  const cols = rd.train.cols, share = width / cols, n = states.length;
  const live = ctx.train.stateTensors();
  if (state.meta.window === 0) {
    for (const s of states) for (const t of Object.values(s)) gpu.fill(t, 0);
  }
  const params = ctx.model.params;
  const acc = params.map((p) => gpu.tensor(p.grad.shape));
  const sums = gpu.tensor([n]);
  for (let k = 0; k < n; k++) {
    for (const [name, t] of Object.entries(states[k])) gpu.copy(t, live[name]);
    const batch = ctx.train.writeBatch({
      T,
      input: sliceColumns(input, cols, k * width, width),
      target: sliceColumns(target, cols, k * width, width),
    });
    const rows = ctx.train.step(batch, { seed: config.seed, step: state.meta.step * n + k });
    reduce(gpu, { op: "sum", x: rows, out: sums, outIndex: k });
    for (const [name, t] of Object.entries(states[k])) gpu.copy(live[name], t);
    params.forEach((p, i) => {
      if (k === 0) scale(gpu, { x: p.grad, alpha: share, out: acc[i] });
      else axpy(gpu, { alpha: share, x: p.grad, y: acc[i] });
    });
  }
  params.forEach((p, i) => {
    gpu.copy(acc[i], p.grad);
    gpu.release(acc[i]);
  });
  reduce(gpu, { op: "sum", x: sums, out: ctx.lossSums, outIndex: state.loss.pending });
  gpu.release(sums);
}
