/**
 * Setting a run up: its data, plan, model (small-dense: narrowed to the sparse parameter count),
 * sessions, connectivity and optimizer state, the best-weights copy and the cost model. Records
 * GPU work only; nothing is read back.
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import { modelFamily } from "../../models/families.ts";
import { ModelConfigError } from "../../models/model.ts";
import { ConfigError, modelSettings, type TrainConfig } from "../config.ts";
import { createOptimizer } from "../optimizer.ts";
import { planRun, type RunPlan } from "../plan.ts";
import type { CsvLog, ProgressPrinter } from "../progress.ts";
import { forwardFlops } from "../sparsity/flops.ts";
import {
  initSparsity,
  runMethod,
  smallDenseConfig,
  sparseParameterCount,
  sparsityMethod,
  sparsityPlanProblem,
} from "../sparsity/stage.ts";
import { runData, type TrainingData } from "./data.ts";
import { applyInitWeights, type InitWeights } from "./init_from.ts";
import { optimizerSettings, sparsitySettings } from "./settings.ts";
import type { RunContext, RunMeta, RunState } from "./types.ts";

/**
 * Version of the run state in checkpoints. 2: runs record their plan, which every schedule
 * spans. 3: the model is named by its family and config (`format: "selfish-rnn/run"`). 4: the
 * plan lists its epoch ends (variable windows make passes differ) and the position its pass
 * over the data. 5: the optimizer's stored SNT-ASGD step sizes and the epochs after which
 * averaging restarted. Earlier versions and the `selfish-rnn/lstm-lm` format are refused, named.
 */
export const RUN_STATE_VERSION = 5;

/** The family config of a run, with the family's own errors as config errors. */
function familyConfig(config: TrainConfig, vocab: number) {
  const family = modelFamily(config.model);
  try {
    return { family, full: family.config(modelSettings(config, vocab)) };
  } catch (e) {
    if (e instanceof ModelConfigError) throw new ConfigError(e.message);
    throw e;
  }
}

/**
 * The model config a run trains: the family's, narrowed for small-dense to the width whose
 * dense count matches the sparse model's (spec §7.2); and the full one (the FLOPs reference).
 *
 * @example
 * ```ts ignore
 * const { family, trained, full } = runModelConfig(config, 10000);
 * ```
 */
export function runModelConfig(config: TrainConfig, vocab: number) {
  const { family, full } = familyConfig(config, vocab);
  const settings = sparsitySettings(config);
  const trained = sparsityMethod(settings.method).matchesSparseCount
    ? smallDenseConfig(
      family,
      full,
      sparseParameterCount(
        family.paramSpecs(full),
        settings.density,
        settings.init,
        config.denseTensors,
      ),
    )
    : full;
  return { family, trained, full };
}

/**
 * The plan a run of `config` follows over passes of `passLength(p)` windows (its epochs,
 * updates, length).
 *
 * @example
 * ```ts ignore
 * const rd = runData(config, data);
 * const plan = runPlan(config, (p) => rd.passWindows(p).length); // plan.totalSteps
 * ```
 */
export function runPlan(config: TrainConfig, passLength: (pass: number) => number): RunPlan {
  return planRun({
    passLength,
    epochs: config.epochs,
    epochSteps: config.epochSteps,
    maxSteps: config.maxSteps,
    updateEvery: config.updateEvery,
  });
}

/**
 * Creates everything a run needs and its initial state (step 0).
 *
 * @example
 * ```ts ignore
 * let { ctx, state } = createRun(gpu, config, data, printer, log);
 * // --init-from: the file's weights replace the seed's initialisation (`init_from.ts`)
 * ```
 */
export function createRun(
  gpu: Gpu,
  config: TrainConfig,
  data: TrainingData,
  printer: ProgressPrinter,
  log: CsvLog | null,
  init: InitWeights | null = null,
): { ctx: RunContext; state: RunState } {
  const rd = runData(config, data);
  const plan = runPlan(config, (p) => rd.passWindows(p).length);
  const settings = sparsitySettings(config);
  const method = runMethod(settings);
  const problem = sparsityPlanProblem(settings, plan);
  if (problem) throw new ConfigError(problem);
  const { family, trained, full } = runModelConfig(config, data.corpus.vocab.size);
  if (method.structured && !family.hiddenUnits) {
    throw new ConfigError(
      `--method ${settings.method} removes hidden units, which --model ${family.name} does not ` +
        "define (ISS runs on --model lstm and rhn)",
    );
  }
  const units = method.structured ? family.hiddenUnits!(trained) : null;
  const model = family.create(gpu, trained, config.seed);
  const sparsity = initSparsity(gpu, model.params, settings, config.denseTensors);
  if (init) printer.say(applyInitWeights(gpu, model, family, trained, sparsity, init));
  const weights = family.weightMacs(trained);
  const maxT = rd.maxWindow;
  const sliceWidth = config.smallBatchSize ?? config.batchSize;
  const train = model.session({ maxT, B: sliceWidth, training: true });
  const slices = sliceWidth === config.batchSize ? null : {
    width: sliceWidth,
    states: Array.from({ length: config.batchSize / sliceWidth }, () => {
      const live = train.stateTensors();
      return Object.fromEntries(Object.entries(live).map(([k, t]) => [k, gpu.zeros(t.shape)]));
    }),
  };
  const evaluation = model.session({ maxT, B: config.evalBatchSize, training: false });
  const testB = config.testBatchSize ?? config.evalBatchSize;
  const testing = testB === config.evalBatchSize
    ? evaluation
    : model.session({ maxT, B: testB, training: false });
  const opt = createOptimizer(gpu, model.params, optimizerSettings(config));
  const best = {
    values: model.params.map((p) => gpu.tensor(p.value.shape)),
    masks: model.params.map((p) => (p.mask ? gpu.tensor(p.shape) : null)),
  };
  model.params.forEach((p, i) => {
    gpu.copy(p.value, best.values[i]);
    const m = best.masks[i];
    if (p.mask && m) gpu.copy(p.mask, m);
  });
  const meta: RunMeta = {
    format: "selfish-rnn/run",
    version: RUN_STATE_VERSION,
    plan,
    model: { family: family.name, config: trained },
    data: data.description,
    seed: config.seed,
    step: 0,
    epoch: 0,
    pass: 0,
    window: 0,
    history: [],
    averagedAfterEpoch: null,
    restartedAfterEpochs: [],
    bestVal: Infinity,
    optimizer: {
      kind: config.optimizer,
      step: 0,
      averaging: false,
      eta: { sparse: null, dense: null },
    },
    trainTokens: 0,
    trainSeconds: 0,
    sparsity,
    flops: { tokens: 0, train: 0, denseTrain: 0 },
    evaluation: {
      bptt: config.bptt,
      evalBatchSize: config.evalBatchSize,
      testBatchSize: testB,
      unk: config.unk,
    },
  };
  const ctx: RunContext = {
    gpu,
    config,
    data,
    rd,
    plan,
    family,
    model,
    train,
    evaluation,
    testing,
    slices,
    settings,
    method,
    units,
    csr: config.storage === "csr",
    best,
    costs: {
      weights,
      fDense: forwardFlops(weights),
      fRef: forwardFlops(family.weightMacs(full)),
    },
    printer,
    log,
    lossSums: gpu.zeros([config.logInterval]),
    startedAt: performance.now(),
  };
  return {
    ctx,
    state: { meta, opt, sparsity, loss: { pending: 0, tokens: 0, last: NaN }, lastTokens: 0 },
  };
}
