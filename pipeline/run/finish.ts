/**
 * The end of a run: the test of the best weights (and their validation on the whole set when
 * epochs validated a prefix), and the summary with the topology and FLOPs figures of the model
 * the test measured. A stopped run (Ctrl-C, `--stop-after`) skips the test: its state is saved
 * and a resume finishes it.
 *
 * @module
 */

import { toMaskedStorage } from "../sparsity/storage.ts";
import { gateDensities } from "../sparsity/stage.ts";
import { forwardFlops } from "../sparsity/flops.ts";
import { evaluate, validate } from "./evaluation.ts";
import { evaluationProgress } from "../progress.ts";
import { issHiddenSizes } from "../sparsity/methods/iss.ts";
import type { RunContext, RunState, TrainSummary } from "./types.ts";

/**
 * Tests the best weights (unless stopped) and returns the run's summary.
 *
 * @example
 * ```ts ignore
 * return await finishRun(ctx, state, stopReason);
 * ```
 */
export async function finishRun(
  ctx: RunContext,
  state: RunState,
  stopReason: TrainSummary["stopReason"],
): Promise<TrainSummary> {
  const { gpu, model, config } = ctx;
  let s = state;
  let testLoss = NaN, valLoss = s.meta.bestVal;
  const per = ctx.family.evalNormalisation;
  // The last epoch end validated the final weights, so a best exists unless every loss was
  // NaN or no model qualified; then the final weights are tested.
  if (!stopReason && s.meta.bestVal === Infinity) {
    const r = await validate(ctx, s, true);
    s = r.state;
    valLoss = r.loss;
  }
  // the test and the topology figures below read masked form
  if (ctx.csr) s = { ...s, opt: toMaskedStorage(gpu, model.params, s.opt) };
  if (!stopReason) {
    model.params.forEach((p, i) => {
      gpu.copy(ctx.best.values[i], p.value);
      const m = ctx.best.masks[i];
      if (p.mask && m) gpu.copy(m, p.mask);
    });
    const say = (label: string) => evaluationProgress((m) => ctx.printer.say(m), label);
    if (ctx.rd.valid !== ctx.rd.validFull) {
      valLoss = await evaluate(
        gpu,
        ctx.evaluation,
        ctx.rd.validFull,
        config.bptt,
        per,
        say("validation of the best weights"),
      );
    }
    testLoss = await evaluate(gpu, ctx.testing, ctx.rd.test, config.bptt, per, say("test"));
  }
  // the topology figures describe the model the test measured (the best one's masks)
  const perBlock = await gateDensities(gpu, s.sparsity, model.params);
  const densities = Object.fromEntries(
    Object.entries(perBlock).map(([k, g]) => {
      const t = s.sparsity.tensors.find((x) => x.name === k)!;
      const rows = t.blocks.reduce((a, b) => a + b, 0);
      return [k, g.reduce((a, d, i) => a + d * t.blocks[i], 0) / rows];
    }),
  );
  const sparseNames = new Set(Object.keys(densities));
  const active = model.params.reduce(
    (n, p) =>
      n + (sparseNames.has(p.name) ? Math.round(densities[p.name] * p.value.size) : p.value.size),
    0,
  );
  const hiddenSizes = ctx.units ? await issHiddenSizes(gpu, model.params, ctx.units) : null;
  const { meta } = s;
  return {
    data: ctx.data.description,
    model: meta.model,
    valPpl: Math.exp(valLoss),
    testPpl: Math.exp(testLoss),
    optimalPpl: ctx.data.optimalPerplexity ?? null,
    steps: meta.step,
    epochs: meta.epoch,
    tokensPerSec: meta.trainTokens / Math.max(1e-9, meta.trainSeconds),
    parameters: model.params.reduce((n, p) => n + p.value.size, 0),
    adapter: gpu.report.description,
    variant: gpu.variant,
    averaged: s.opt.averaging,
    averagedAfterEpoch: meta.averagedAfterEpoch,
    restartedAfterEpochs: meta.restartedAfterEpochs,
    asgdEta: config.asgdEta,
    interrupted: stopReason !== null,
    stopReason,
    plan: ctx.plan,
    epochValPpl: meta.history.map(Math.exp),
    updates: s.sparsity.history,
    elapsedSec: meta.trainSeconds,
    method: ctx.settings.method,
    activeParameters: active,
    densities,
    gateDensities: perBlock,
    gateNames: Object.fromEntries(
      model.params.flatMap((p) => p.blockNames && perBlock[p.name] ? [[p.name, p.blockNames]] : []),
    ),
    hiddenSizes,
    trainFlops: meta.flops.train,
    denseTrainFlops: meta.flops.denseTrain,
    inferenceFlops: forwardFlops(ctx.costs.weights, densities),
    denseInferenceFlops: ctx.costs.fRef,
  };
}

/**
 * The `--summary` file of a run: snake_case keys, as the other tools of the field write them.
 *
 * @example
 * ```ts ignore
 * await writeAtomic("run.json", JSON.stringify(summaryJson(summary), null, 2));
 * ```
 */
export function summaryJson(s: TrainSummary): Record<string, unknown> {
  return {
    "data": s.data,
    "model": s.model,
    "val_ppl": s.valPpl,
    "test_ppl": s.testPpl,
    "optimal_ppl": s.optimalPpl,
    "steps": s.steps,
    "epochs": s.epochs,
    "tokens_per_sec": s.tokensPerSec,
    "parameters": s.parameters,
    "adapter": s.adapter,
    "kernel_variant": s.variant,
    "averaged": s.averaged,
    "averaged_after_epoch": s.averagedAfterEpoch,
    "asgd_restarted_after_epochs": s.restartedAfterEpochs,
    "asgd_eta": s.asgdEta,
    "plan": {
      "total_steps": s.plan.totalSteps,
      "epoch_ends": s.plan.epochEnds,
      "update_every": s.plan.updateEvery,
    },
    "epoch_val_ppl": s.epochValPpl,
    "connectivity_updates": s.updates.map((u) => ({
      "step": u.step,
      "removal_rate": u.removalRate,
      "removed": u.removed,
      "grown": u.grown,
      "density_per_gate": u.gateDensities ?? null,
    })),
    "elapsed_sec": s.elapsedSec,
    "method": s.method,
    "active_parameters": s.activeParameters,
    "density_per_tensor": s.densities,
    "density_per_gate": s.gateDensities,
    "gate_names": s.gateNames,
    "hidden_sizes": s.hiddenSizes,
    "train_flops": s.trainFlops,
    "train_flops_x_dense": s.trainFlops / Math.max(1e-30, s.denseTrainFlops),
    "inference_flops_per_token": s.inferenceFlops,
    "inference_flops_x_dense": s.inferenceFlops / Math.max(1e-30, s.denseInferenceFlops),
  };
}
