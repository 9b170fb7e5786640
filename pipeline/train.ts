/**
 * The training run, composed from the pipeline's stages (`pipeline/run/`):
 *
 * ```text
 * createRun (data, plan, model, optimizer, connectivity)   [resumeRun]
 * per step:   trainStep ─▶ flushLoss (every --log-interval)
 *             ─▶ endEpoch (validation, best, NT-ASGD trigger, log)   at an epoch end
 *             ─▶ connectivityStep                                     at an update step
 *             ─▶ restartAveragingIfDue (SNT-ASGD fine-tuning)          at an epoch end
 *             ─▶ saveRun                                              at an epoch end (--save)
 * finishRun (test of the best weights, summary)
 * ```
 *
 * Each stage takes the run's state and returns the new one; the GPU tensors inside are
 * handles the stages update in place. The run follows its plan (`plan.ts`): the length, epoch
 * ends and update steps are fixed before the first step, no update follows the last step, and
 * at an epoch end that is also an update step the validation comes first. Losses stay on the
 * GPU and are read back every `--log-interval` steps and once per evaluation.
 *
 * A straight run and the same run stopped after k steps (`--stop-after`, Ctrl-C), saved and
 * resumed give identical losses: dropout masks are a pure function of (seed, step), the data
 * order is fixed, and the checkpoint holds every tensor and counter of the run.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import type { TrainConfig } from "./config.ts";
import { epochLengthText, isEpochEnd, lastUpdateStep, planEpochs, updateSteps } from "./plan.ts";
import { CsvLog, ProgressPrinter } from "./progress.ts";
import { sparsityDue } from "./sparsity/stage.ts";
import { toCsrStorage } from "./sparsity/storage.ts";
import { createRun } from "./run/setup.ts";
import { readInitWeights } from "./run/init_from.ts";
import { resumeRun, saveRun } from "./run/checkpoint_stage.ts";
import { trainStep } from "./run/step.ts";
import { flushLoss, trainSeconds } from "./run/log_stage.ts";
import { endEpoch, restartAveragingIfDue } from "./run/epoch.ts";
import { connectivityStep } from "./run/connectivity.ts";
import { finishRun } from "./run/finish.ts";
import type { RunContext, TrainSummary } from "./run/types.ts";
import type { TrainingData } from "./run/data.ts";

export { loadTrainingData, type TrainingData } from "./run/data.ts";
export type { TrainSummary } from "./run/types.ts";
export { RUN_STATE_VERSION } from "./run/setup.ts";

/** The plan's outline, and a note when a dynamic method gets no update at all. */
function announcePlan(ctx: RunContext): void {
  const { plan, method, settings, printer } = ctx;
  const ups = method.dynamic ? updateSteps(plan) : [];
  printer.say(
    `plan: ${plan.totalSteps} steps, ${planEpochs(plan)} epoch(s) of ${
      epochLengthText(plan)
    } steps` +
      (ups.length
        ? `, ${ups.length} ${settings.method} update(s) at steps ${ups[0]}` +
          (ups.length > 1 ? `..${ups[ups.length - 1]}` : "")
        : ""),
  );
  if (method.dynamic && lastUpdateStep(plan) < 0) {
    const every = plan.updateEvery > 0
      ? `every ${plan.updateEvery} steps`
      : `once per epoch of ${epochLengthText(plan)} steps`;
    printer.say(
      `note: no ${settings.method} update falls inside this run's ${plan.totalSteps} steps ` +
        `(updates ${every}, none after the last step): the topology stays as initialised`,
    );
  }
}

/**
 * Trains the model of `config` on `data` and returns the summary. Progress goes to `printer`;
 * `--log`, `--save`, `--resume` and `--stop-after` are honoured; SIGINT saves (to `--save`, else
 * `selfish-rnn-interrupted.ckpt`) and returns with `interrupted: true`.
 *
 * @example
 * ```ts ignore
 * const summary = await train(gpu, config, await loadTrainingData(config));
 * ```
 */
export async function train(
  gpu: Gpu,
  config: TrainConfig,
  data: TrainingData,
  printer: ProgressPrinter = new ProgressPrinter(),
): Promise<TrainSummary> {
  const init = config.initFrom ? await readInitWeights(config.initFrom) : null;
  let { ctx, state } = createRun(gpu, config, data, printer, null, init);
  if (config.resume) state = await resumeRun(ctx, state, config.resume);
  // opened once the run is known to start: a refused resume writes nothing
  ctx.log = config.log
    ? await CsvLog.open(config.log, config.resume ? state.meta.step : null)
    : null;
  if (ctx.csr) {
    state = { ...state, opt: toCsrStorage(gpu, ctx.model.params, state.opt, state.sparsity) };
  }
  announcePlan(ctx);

  let interrupted = false;
  const onSigint = () => (interrupted = true);
  try {
    Deno.addSignalListener("SIGINT", onSigint);
  } catch {
    // no signal support (e.g. Windows without console): Ctrl-C ends the process as usual
  }
  let stopReason: TrainSummary["stopReason"] = null;
  try {
    while (state.meta.step < ctx.plan.totalSteps) {
      if (interrupted) {
        stopReason = "signal";
        break;
      }
      if (config.stopAfter !== null && state.meta.step >= config.stopAfter) {
        stopReason = "stop-after";
        break;
      }
      state = trainStep(ctx, state);
      if (state.loss.pending === config.logInterval) state = await flushLoss(ctx, state);
      // evaluate, then update (plan.ts): an epoch's best weights never follow its update
      const epochEnd = isEpochEnd(ctx.plan, state.meta.step);
      if (epochEnd) state = await endEpoch(ctx, state);
      if (sparsityDue(state.sparsity, state.meta.step, ctx.plan)) {
        state = await connectivityStep(ctx, state);
      }
      if (epochEnd) state = restartAveragingIfDue(ctx, state);
      if (epochEnd && config.save) state = await saveRun(ctx, state, config.save);
    }
    state = await flushLoss(ctx, state);
    if (stopReason) {
      const path = config.save ?? "selfish-rnn-interrupted.ckpt";
      state = await saveRun(ctx, state, path);
      printer.say(
        `${stopReason === "signal" ? "interrupted: " : ""}saved run state to ${path} at step ` +
          `${state.meta.step} of ${ctx.plan.totalSteps}`,
      );
    }
  } finally {
    try {
      Deno.removeSignalListener("SIGINT", onSigint);
    } catch { /* see addSignalListener */ }
    printer.end();
  }
  // the saves above wrote this total into the checkpoint; the summary reports it
  state = { ...state, meta: { ...state.meta, trainSeconds: trainSeconds(ctx, state) } };
  return await finishRun(ctx, state, stopReason);
}
