/**
 * The training run: data → model step → optimizer → evaluation → log, composed from the
 * pipeline's stages. Losses stay on the GPU and are read back every `logInterval` steps and
 * once per evaluation; nothing else crosses to the CPU inside the loop.
 *
 * The run follows a plan (`plan.ts`): its length, epoch ends and connectivity-update steps are
 * fixed before the first step, every schedule spans the planned length, no update follows the
 * last step, and at an epoch end that is also an update step the validation comes first.
 *
 * Run state (weights, masks, optimizer tensors, hidden state, data position, step counter,
 * trigger history, best weights, the plan) round-trips through a checkpoint, so a straight run
 * and the same run stopped after k steps (`--stop-after`, Ctrl-C), saved and resumed give
 * identical losses: dropout masks are a pure function of (seed, step), and the data order is
 * fixed.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import type { Tensor } from "../kernels/runtime/tensor.ts";
import { reduce } from "../kernels/dense/reduce.ts";
import {
  createLstmLm,
  createLstmLmState,
  createLstmLmWorkspace,
  type LstmLm,
  lstmLmEvalLoss,
  type LstmLmState,
  lstmLmStep,
  type LstmLmWorkspace,
  resetLstmLmState,
  writeLstmLmBatch,
} from "../models/lstm_lm.ts";
import { ConfigError, type TrainConfig } from "./config.ts";
import { type Corpus, loadCorpus } from "./data/corpus.ts";
import { batchify, bpttWindows, type TokenMatrix, windowTokens } from "./data/batches.ts";
import { syntheticCorpus } from "./data/synthetic.ts";
import {
  createOptimizer,
  type InactiveState,
  type OptimizerSettings,
  type OptimizerState,
  optimizerStep,
  type ParamState,
  startAveraging,
  swapAveraged,
} from "./optimizer.ts";
import { nonmonoTrigger } from "./ntasgd.ts";
import { CheckpointError, type HostTensor, readCheckpoint, writeCheckpoint } from "./checkpoint.ts";
import { CsvLog, ProgressPrinter } from "./progress.ts";
import type { SparsitySettings } from "./sparsity/method.ts";
import {
  gateDensities,
  initSparsity,
  smallDenseConfig,
  sparseParameterCount,
  sparsityDensities,
  sparsityDue,
  sparsityMethod,
  sparsityPlanProblem,
  type SparsityState,
  sparsityUpdate,
  type UpdateRecord,
} from "./sparsity/stage.ts";
import {
  addTrainFlops,
  addUpdateFlops,
  type FlopsTotals,
  forwardFlops,
  lstmLmWeightFlops,
} from "./sparsity/flops.ts";
import { lstmLmParamSpecs } from "../models/lstm_lm.ts";
import { toCsrStorage, toMaskedStorage } from "./sparsity/storage.ts";
import {
  isEpochEnd,
  lastUpdateStep,
  planDifference,
  planEpochs,
  planRun,
  type RunPlan,
  updateSteps,
} from "./plan.ts";

/** A corpus with, for synthetic data, the perplexity of the true generating process. */
export interface TrainingData {
  corpus: Corpus;
  /** exp(entropy rate) of the synthetic language; absent for real corpora. */
  optimalPerplexity?: number;
  /** Human-readable origin, for logs and the summary. */
  description: string;
}

/** Final figures of a run (`--summary FILE.json`). */
export interface TrainSummary {
  data: string;
  valPpl: number;
  testPpl: number;
  optimalPpl: number | null;
  steps: number;
  epochs: number;
  tokensPerSec: number;
  parameters: number;
  adapter: string;
  variant: string;
  averaged: boolean;
  /** Epoch after whose validation NT-ASGD started averaging, or `null`. */
  averagedAfterEpoch: number | null;
  /** The run stopped before its planned end (Ctrl-C or `--stop-after`); no test was run. */
  interrupted: boolean;
  /** Why it stopped early, or `null` when it ran its plan. */
  stopReason: "signal" | "stop-after" | null;
  /** The plan the run followed. */
  plan: RunPlan;
  /** Validation perplexity at each epoch end (of the `--valid-tokens` prefix when given). */
  epochValPpl: number[];
  /** Every connectivity update: step, removal rate p_t, weights removed and grown. */
  updates: UpdateRecord[];
  elapsedSec: number;
  /** Sparse-training method and the topology it ended with. */
  method: string;
  /** Weights in use: active entries of sparse tensors plus every dense tensor. */
  activeParameters: number;
  /** Density of each sparse tensor and of each of its gate blocks, in the tested (best) model. */
  densities: Record<string, number>;
  gateDensities: Record<string, number[]>;
  /** Training FLOPs of the run (spec §9) and the dense model's for the same tokens. */
  trainFlops: number;
  denseTrainFlops: number;
  /** Forward FLOPs per token of the final model, and of the dense one. */
  inferenceFlops: number;
  denseInferenceFlops: number;
}

/**
 * Version of the run state below. 2: runs record their plan, which every schedule spans; a
 * version-1 run (schedules over epochs × windows, stopped by `--max-steps`) cannot continue on
 * the same schedule and is refused.
 */
export const RUN_STATE_VERSION = 2;

/** Host-side run position, stored in checkpoints. */
interface RunMeta {
  format: "selfish-rnn/lstm-lm";
  version: number;
  plan: RunPlan;
  model: { vocab: number; embed: number; hidden: number; layers: number; tied: boolean };
  data: string;
  seed: number;
  /** Training steps taken. */
  step: number;
  /** 0-based epoch in progress and the next window of it. */
  epoch: number;
  window: number;
  history: number[];
  /** Epoch (1-based) after whose validation NT-ASGD started averaging; `null` = not yet. */
  averagedAfterEpoch: number | null;
  bestVal: number;
  optimizer: { kind: string; step: number; averaging: boolean };
  trainTokens: number;
  trainSeconds: number;
  sparsity: SparsityState;
  flops: FlopsTotals;
}

/**
 * Loads the corpus of `config.data`, or generates the synthetic default.
 *
 * @example
 * ```ts ignore
 * const data = await loadTrainingData(config);
 * ```
 */
export async function loadTrainingData(config: TrainConfig): Promise<TrainingData> {
  if (config.data) {
    return { corpus: await loadCorpus(config.data, { unk: config.unk }), description: config.data };
  }
  // The corpus is fixed (its own seed), so runs with different model seeds see the same data.
  const s = syntheticCorpus();
  return {
    corpus: s,
    optimalPerplexity: s.optimalPerplexity,
    description: `synthetic Markov corpus (seed ${s.seed}, ${s.vocab.size} words)`,
  };
}

/** The connectivity stage's settings from a run config. */
export function sparsitySettings(config: TrainConfig): SparsitySettings {
  return {
    method: config.method,
    density: config.density,
    init: config.sparseInit,
    deathRate: config.deathRate,
    deathRateMin: config.deathRateMin,
    redistribution: config.redistribution,
    pruneStart: config.pruneStart,
    pruneEnd: config.pruneEnd,
    seed: config.seed >>> 0,
  };
}

function optimizerSettings(config: TrainConfig, lr = config.lr): OptimizerSettings {
  return {
    kind: config.optimizer,
    lr,
    weightDecay: config.weightDecay,
    momentum: config.momentum,
    clip: config.clip,
    adam: { beta1: 0, beta2: 0.999, eps: 1e-9 },
    inactiveState: inactiveStatePolicy(config),
  };
}

/**
 * The optimizer-state policy of a run (`optimizer.ts`): `--inactive-state`, or by default what
 * the released code does where the storage allows it: Adam's moments `keep` in masked storage
 * (measured on PTB, 2×200 LSTM, 200 steps, two seeds: Selfish-RNN 1.07× and 1.09× static's
 * validation perplexity with kept moments, 1.20–1.25× with fresh ones); true sparse storage has
 * no inactive gradients, so `clear`; methods that grow by dense momentum (SNFS) `accumulate`.
 */
export function inactiveStatePolicy(config: TrainConfig): InactiveState {
  if (config.inactiveState !== "auto") return config.inactiveState;
  if (config.storage === "csr") return "clear";
  if (config.optimizer === "adam") return "keep";
  return sparsityMethod(config.method).denseOptimizerState ? "accumulate" : "clear";
}

/**
 * Mean cross-entropy (nats per token) of `model` over `matrix`, from a fresh hidden state
 * carried across windows, dropout off. Reads back once.
 */
async function evaluate(
  gpu: Gpu,
  model: LstmLm,
  ws: LstmLmWorkspace,
  state: LstmLmState,
  matrix: TokenMatrix,
  bptt: number,
): Promise<number> {
  resetLstmLmState(gpu, state);
  const windows = bpttWindows(matrix, bptt);
  const sums = gpu.zeros([Math.max(1, windows.length)]);
  let tokens = 0;
  windows.forEach((w, i) => {
    const { input, target } = windowTokens(matrix, w);
    const batch = writeLstmLmBatch(gpu, ws, { T: w.length, input, target });
    const rows = lstmLmEvalLoss(gpu, model, ws, state, batch);
    reduce(gpu, { op: "sum", x: rows, out: sums, outIndex: i });
    tokens += w.length * matrix.cols;
  });
  const host = await gpu.read(sums);
  gpu.release(sums);
  let total = 0;
  for (let i = 0; i < windows.length; i++) total += host[i];
  return total / Math.max(1, tokens);
}

function paramCount(model: LstmLm): number {
  return model.params.reduce((n, p) => n + p.value.size, 0);
}

async function toHost(gpu: Gpu, t: Tensor): Promise<HostTensor> {
  const data = await gpu.read(t);
  return t.dtype === "u32"
    ? { dtype: "u32", shape: t.shape, data: data as Uint32Array }
    : { dtype: "f32", shape: t.shape, data: data as Float32Array };
}

const STATE_KEYS = ["buf", "m", "v", "age", "ax", "count"] as const;

/** Everything a run holds on the GPU, named as in checkpoints. */
function runTensors(
  model: LstmLm,
  opt: OptimizerState,
  state: LstmLmState,
  best: Tensor[],
  bestMasks: (Tensor | null)[],
): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  model.params.forEach((p, i) => {
    out[p.name] = p.value;
    if (p.mask) out[`${p.name}#mask`] = p.mask;
    const bm = bestMasks[i];
    if (bm) out[`${p.name}#bestmask`] = bm;
    const s: ParamState = opt.perParam[i];
    for (const k of STATE_KEYS) if (s[k]) out[`${p.name}#${k}`] = s[k]!;
    out[`${p.name}#best`] = best[i];
  });
  state.h.forEach((t, l) => (out[`state.h${l}`] = t));
  state.c.forEach((t, l) => (out[`state.c${l}`] = t));
  return out;
}

/**
 * Trains the stacked LSTM of `config` on `data` and returns the summary. Progress goes to
 * `printer`; `--log`, `--save`, `--resume` and `--summary` are honoured; SIGINT saves (to
 * `--save`, else `selfish-rnn-interrupted.ckpt`) and returns with `interrupted: true`.
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
  const { corpus } = data;
  const trainM = batchify(corpus.train, config.batchSize, "train");
  const validFullM = batchify(corpus.valid, config.evalBatchSize, "valid");
  // epoch-end validations on a prefix (spec §14.5); the best weights see all of it at the end
  const validM = config.validTokens !== null && config.validTokens < corpus.valid.length
    ? batchify(corpus.valid.subarray(0, config.validTokens), config.evalBatchSize, "valid prefix")
    : validFullM;
  const testM = batchify(corpus.test, config.evalBatchSize, "test");
  const windows = bpttWindows(trainM, config.bptt);
  const plan = planRun({
    windowsPerPass: windows.length,
    epochs: config.epochs,
    epochSteps: config.epochSteps,
    maxSteps: config.maxSteps,
    updateEvery: config.updateEvery,
  });
  const fullConfig = {
    vocab: corpus.vocab.size,
    embed: config.emsize,
    hidden: config.nhid,
    layers: config.nlayers,
    dropout: config.dropout,
    tied: config.tied,
  };
  const settings = sparsitySettings(config);
  const method = sparsityMethod(settings.method);
  const problem = sparsityPlanProblem(settings, plan);
  if (problem) throw new ConfigError(problem);
  // small dense: the width whose dense count matches the sparse model's (spec §7.2)
  const modelConfig = method.matchesSparseCount
    ? smallDenseConfig(
      fullConfig,
      sparseParameterCount(
        lstmLmParamSpecs(fullConfig),
        settings.density,
        settings.init,
        config.denseTensors,
      ),
    )
    : fullConfig;
  const model = createLstmLm(gpu, modelConfig, config.seed);
  let sparsity = initSparsity(gpu, model.params, settings, config.denseTensors);
  const weightFlops = lstmLmWeightFlops(modelConfig);
  const fDense = forwardFlops(weightFlops);
  const fRef = forwardFlops(lstmLmWeightFlops(fullConfig));
  const ws = createLstmLmWorkspace(gpu, model, {
    maxT: config.bptt,
    B: config.batchSize,
    training: true,
  });
  const wsEval = createLstmLmWorkspace(gpu, model, {
    maxT: config.bptt,
    B: config.evalBatchSize,
    training: false,
  });
  const state = createLstmLmState(gpu, model, config.batchSize);
  const evalState = createLstmLmState(gpu, model, config.evalBatchSize);
  let opt = createOptimizer(gpu, model.params, optimizerSettings(config));
  const best = model.params.map((p) => gpu.tensor(p.value.shape));
  model.params.forEach((p, i) => gpu.copy(p.value, best[i]));
  // the best weights' masks: evaluating best values under later masks would be wrong
  const bestMasks = model.params.map((p) => (p.mask ? gpu.tensor(p.shape) : null));
  const copyMasks = (toBest: boolean) =>
    model.params.forEach((p, i) => {
      const b = bestMasks[i];
      if (p.mask && b) toBest ? gpu.copy(p.mask, b) : gpu.copy(b, p.mask);
    });
  copyMasks(true);

  const meta: RunMeta = {
    format: "selfish-rnn/lstm-lm",
    version: RUN_STATE_VERSION,
    plan,
    model: {
      vocab: corpus.vocab.size,
      embed: modelConfig.embed,
      hidden: modelConfig.hidden,
      layers: config.nlayers,
      tied: config.tied,
    },
    data: data.description,
    seed: config.seed,
    step: 0,
    epoch: 0,
    window: 0,
    history: [],
    averagedAfterEpoch: null,
    bestVal: Infinity,
    optimizer: { kind: config.optimizer, step: 0, averaging: false },
    trainTokens: 0,
    trainSeconds: 0,
    sparsity,
    flops: { tokens: 0, train: 0, denseTrain: 0 },
  };

  if (config.resume) {
    const ckpt = await readCheckpoint(config.resume);
    const m = ckpt.meta as RunMeta;
    if (
      m?.format !== meta.format || JSON.stringify(m.model) !== JSON.stringify(meta.model) ||
      m.data !== meta.data || m.seed !== meta.seed ||
      m.sparsity?.settings.method !== settings.method
    ) {
      throw new CheckpointError(
        `checkpoint ${config.resume}: made for model ${JSON.stringify(m?.model)} on "${m?.data}" ` +
          `(seed ${m?.seed}, method ${m?.sparsity?.settings.method}), but this run is ${
            JSON.stringify(meta.model)
          } on "${meta.data}" (seed ${meta.seed}, method ${settings.method})`,
      );
    }
    if (m.version !== RUN_STATE_VERSION) {
      throw new CheckpointError(
        `checkpoint ${config.resume}: run-state version ${m.version ?? 1}, but this build ` +
          `resumes version ${RUN_STATE_VERSION} (runs now record the plan their schedules ` +
          `span; an older run cannot continue on its schedule: start it again)`,
      );
    }
    const diff = planDifference(m.plan, plan);
    if (diff) {
      throw new CheckpointError(
        `checkpoint ${config.resume}: planned as ${JSON.stringify(m.plan)}, this run plans ` +
          `${JSON.stringify(plan)} (${diff}): resume with the saved run's --epochs, ` +
          `--max-steps, --epoch-steps and --update-every (--stop-after may differ)`,
      );
    }
    if (m.optimizer.averaging) opt = startAveraging(gpu, model.params, opt);
    opt = { ...opt, step: m.optimizer.step };
    for (const p of model.params) {
      if (ckpt.tensors[`${p.name}#mask`] && !p.mask) p.mask = gpu.tensor(p.shape);
    }
    const targets = runTensors(model, opt, state, best, bestMasks);
    for (const [name, t] of Object.entries(targets)) {
      const src = ckpt.tensors[name];
      if (!src || src.data.length !== t.size || src.dtype !== t.dtype) {
        throw new CheckpointError(
          `checkpoint ${config.resume}: tensor ${name} is missing or has the wrong shape`,
        );
      }
      gpu.write(t, src.data);
    }
    Object.assign(meta, m);
    // JSON has no Infinity: a run saved before its first validation stored bestVal as null
    if (typeof meta.bestVal !== "number") meta.bestVal = Infinity;
    sparsity = meta.sparsity;
    printer.say(
      `resumed from ${config.resume} at step ${meta.step} (epoch ${
        meta.epoch + 1
      }, window ${meta.window})`,
    );
  }

  // CSR storage: training steps and evaluation run sparse; the events below are written for
  // masked form and switch to it and back (pipeline/sparsity/storage.ts)
  const csr = config.storage === "csr";
  if (csr) opt = toCsrStorage(gpu, model.params, opt, sparsity);
  const masked = async (fn: () => Promise<void> | void) => {
    if (csr) opt = toMaskedStorage(gpu, model.params, opt);
    try {
      await fn();
    } finally {
      if (csr) opt = toCsrStorage(gpu, model.params, opt, sparsity);
    }
  };

  const save = async (path: string) => {
    const tensors: Record<string, HostTensor> = {};
    meta.sparsity = sparsity;
    await masked(async () => {
      for (const [name, t] of Object.entries(runTensors(model, opt, state, best, bestMasks))) {
        tensors[name] = await toHost(gpu, t);
      }
    });
    meta.optimizer = { kind: opt.kind, step: opt.step, averaging: opt.averaging };
    await writeCheckpoint(path, { meta, tensors });
  };

  const overallDensity = () => {
    const t = sparsity.tensors;
    return t.length ? t.reduce((s, x) => s + x.nnz, 0) / t.reduce((s, x) => s + x.numel, 0) : 1;
  };
  const chargeFlops = (tokens: number) => {
    meta.flops = addTrainFlops(meta.flops, {
      tokens,
      model: method.flops,
      fS: forwardFlops(weightFlops, sparsityDensities(sparsity)),
      fD: fDense,
      fRef,
    });
  };
  const connectivityUpdate = async (lastTokens: number) => {
    const fS = forwardFlops(weightFlops, sparsityDensities(sparsity));
    // e.g. RigL's dense gradient (spec §9): the masked-dense path already has it, but the
    // accounting charges what a sparse implementation would spend
    meta.flops = addUpdateFlops(meta.flops, {
      tokens: lastTokens,
      model: method.flops,
      fS,
      fD: fDense,
    });
    let r = { removed: 0, grown: 0 };
    await masked(async () => {
      const u = await sparsityUpdate(gpu, sparsity, model.params, {
        optimizer: opt,
        step: meta.step,
        plan,
      });
      sparsity = u.state;
      r = u;
    });
    meta.sparsity = sparsity;
    const p = sparsity.history[sparsity.history.length - 1]?.removalRate ?? NaN;
    printer.say(
      `step ${meta.step}: ${settings.method} update at p ${p.toFixed(4)} removed ${r.removed}, ` +
        `grew ${r.grown} (density ${overallDensity().toFixed(4)})`,
    );
  };

  let interrupted = false;
  const onSigint = () => (interrupted = true);
  try {
    Deno.addSignalListener("SIGINT", onSigint);
  } catch {
    // no signal support (e.g. Windows without console): Ctrl-C ends the process as usual
  }
  const log = config.log ? await CsvLog.open(config.log) : null;
  const totalSteps = plan.totalSteps;
  const ups = method.dynamic ? updateSteps(plan) : [];
  printer.say(
    `plan: ${totalSteps} steps, ${planEpochs(plan)} epoch(s) of ${plan.epochSteps} steps` +
      (ups.length
        ? `, ${ups.length} ${settings.method} update(s) at steps ${ups[0]}` +
          (ups.length > 1 ? `..${ups[ups.length - 1]}` : "")
        : ""),
  );
  if (method.dynamic && lastUpdateStep(plan) < 0) {
    printer.say(
      `note: no ${settings.method} update falls inside this run's ${totalSteps} steps ` +
        `(updates ${
          plan.updateEvery > 0 ? `every ${plan.updateEvery} steps` : `once per epoch of ` +
            `${plan.epochSteps} steps`
        }, none after the last step): the topology stays as initialised`,
    );
  }
  const lossSums = gpu.zeros([config.logInterval]);
  let pending = 0, pendingTokens = 0, lastTrainLoss = NaN;
  let runStart = performance.now();
  const secondsSoFar = () => meta.trainSeconds + (performance.now() - runStart) / 1000;

  const flushLoss = async () => {
    if (pending === 0) return;
    const host = await gpu.read(lossSums.view(0, [pending]));
    lastTrainLoss = host.reduce((a, b) => a + b, 0) / pendingTokens;
    pending = 0;
    pendingTokens = 0;
    printer.update({
      epoch: meta.epoch + 1,
      step: meta.step,
      totalSteps,
      loss: lastTrainLoss,
      lr: config.lr,
      tokensPerSec: meta.trainTokens / Math.max(1e-9, secondsSoFar()),
    });
  };

  // e.g. gradual pruning's denser models must not be tested (method record's `mayBeBest`)
  const mayBeBest = () => method.mayBeBest?.(sparsity.tensors, settings) ?? true;
  const evaluateValid = async (force = false) => {
    swapAveraged(gpu, model.params, opt);
    const v = await evaluate(gpu, model, wsEval, evalState, validM, config.bptt);
    const improved = v < meta.bestVal && (force || mayBeBest());
    if (improved) {
      await masked(() => {
        model.params.forEach((p, i) => gpu.copy(p.value, best[i]));
        copyMasks(true);
      });
    }
    swapAveraged(gpu, model.params, opt);
    if (improved) meta.bestVal = v;
    return v;
  };

  // The epoch-end events: validation (best weights), NT-ASGD's trigger, history and log. The
  // trigger never fires at the run's end, where no averaged step would follow.
  const endEpoch = async () => {
    await flushLoss();
    const v = await evaluateValid();
    if (
      meta.step < plan.totalSteps && opt.kind === "ntasgd" && !opt.averaging &&
      nonmonoTrigger(meta.history, v, config.nonmono)
    ) {
      opt = startAveraging(gpu, model.params, opt);
      meta.averagedAfterEpoch = meta.epoch + 1;
      printer.say(
        `epoch ${meta.epoch + 1}: validation stopped improving; switching to averaged SGD`,
      );
    }
    meta.history.push(v);
    printer.say(
      `epoch ${meta.epoch + 1} done: valid ppl ${Math.exp(v).toFixed(2)}` +
        (validM !== validFullM ? ` (first ${config.validTokens} tokens)` : "") +
        (data.optimalPerplexity ? ` (optimal ${data.optimalPerplexity.toFixed(2)})` : ""),
    );
    await log?.append({
      step: meta.step,
      epoch: meta.epoch + 1,
      lr: config.lr,
      "train_loss": lastTrainLoss,
      "val_ppl": Math.exp(v),
      "tokens_per_sec": meta.trainTokens / Math.max(1e-9, secondsSoFar()),
      "elapsed_sec": secondsSoFar(),
      "density": overallDensity(),
      "train_flops": meta.flops.train,
      "train_flops_x_dense": meta.flops.train / Math.max(1e-30, meta.flops.denseTrain),
    });
    meta.epoch++;
  };

  let stopReason: TrainSummary["stopReason"] = null;
  try {
    while (meta.step < plan.totalSteps) {
      if (interrupted) {
        stopReason = "signal";
        break;
      }
      if (config.stopAfter !== null && meta.step >= config.stopAfter) {
        stopReason = "stop-after";
        break;
      }
      // the hidden state carries across windows within a pass over the data
      if (meta.window === 0) resetLstmLmState(gpu, state);
      const w = windows[meta.window];
      const { input, target } = windowTokens(trainM, w);
      const batch = writeLstmLmBatch(gpu, ws, { T: w.length, input, target });
      const rows = lstmLmStep(gpu, model, ws, state, batch, {
        seed: config.seed,
        step: meta.step,
      });
      reduce(gpu, { op: "sum", x: rows, out: lossSums, outIndex: pending });
      opt = optimizerStep(
        gpu,
        model.params,
        opt,
        optimizerSettings(config, config.lr * w.lrScale),
      );
      meta.step++;
      meta.window = (meta.window + 1) % windows.length;
      pending++;
      const tokens = w.length * trainM.cols;
      pendingTokens += tokens;
      meta.trainTokens += tokens;
      chargeFlops(tokens);
      if (pending === config.logInterval) await flushLoss();
      // evaluate, then update (plan.ts): an epoch's best weights never follow its update
      const epochEnd = isEpochEnd(plan, meta.step);
      if (epochEnd) await endEpoch();
      if (sparsityDue(sparsity, meta.step, plan)) await connectivityUpdate(tokens);
      if (epochEnd && config.save) await save(config.save);
    }
    await flushLoss();
    meta.trainSeconds = secondsSoFar();
    runStart = performance.now();
    if (stopReason) {
      const path = config.save ?? "selfish-rnn-interrupted.ckpt";
      await save(path);
      printer.say(
        `${stopReason === "signal" ? "interrupted: " : ""}saved run state to ${path} at step ` +
          `${meta.step} of ${plan.totalSteps}`,
      );
    }
  } finally {
    try {
      Deno.removeSignalListener("SIGINT", onSigint);
    } catch { /* see addSignalListener */ }
    printer.end();
  }

  // Test of the best weights (and their validation on the whole set when epochs saw a prefix);
  // a stopped run exits promptly instead (its state is saved; resume to finish it). The last
  // epoch end validated the final weights, so a best exists unless every loss was NaN or no
  // model qualified; then the final weights are tested.
  let testLoss = NaN, valLoss = meta.bestVal;
  if (!stopReason && meta.bestVal === Infinity) valLoss = await evaluateValid(true);
  // the test and the topology figures below read masked form
  if (csr) opt = toMaskedStorage(gpu, model.params, opt);
  if (!stopReason) {
    model.params.forEach((p, i) => gpu.copy(best[i], p.value));
    copyMasks(false);
    if (validM !== validFullM) {
      valLoss = await evaluate(gpu, model, wsEval, evalState, validFullM, config.bptt);
    }
    testLoss = await evaluate(gpu, model, wsEval, evalState, testM, config.bptt);
  }
  // the topology figures describe the model the test measured (the best one's masks)
  const perGate = await gateDensities(gpu, sparsity, model.params);
  const densities = Object.fromEntries(
    Object.entries(perGate).map(([k, g]) => [k, g.reduce((a, b) => a + b, 0) / g.length]),
  );
  const sparseNames = new Set(Object.keys(densities));
  const active = model.params.reduce(
    (n, p) =>
      n + (sparseNames.has(p.name) ? Math.round(densities[p.name] * p.value.size) : p.value.size),
    0,
  );
  return {
    data: data.description,
    valPpl: Math.exp(valLoss),
    testPpl: Math.exp(testLoss),
    optimalPpl: data.optimalPerplexity ?? null,
    steps: meta.step,
    epochs: meta.epoch,
    tokensPerSec: meta.trainTokens / Math.max(1e-9, meta.trainSeconds),
    parameters: paramCount(model),
    adapter: gpu.report.description,
    variant: gpu.variant,
    averaged: opt.averaging,
    averagedAfterEpoch: meta.averagedAfterEpoch,
    interrupted: stopReason !== null,
    stopReason,
    plan,
    epochValPpl: meta.history.map(Math.exp),
    updates: sparsity.history,
    elapsedSec: meta.trainSeconds,
    method: settings.method,
    activeParameters: active,
    densities,
    gateDensities: perGate,
    trainFlops: meta.flops.train,
    denseTrainFlops: meta.flops.denseTrain,
    inferenceFlops: forwardFlops(weightFlops, densities),
    denseInferenceFlops: fRef,
  };
}
