/**
 * The training run: data → model step → optimizer → evaluation → log, composed from the
 * pipeline's stages. Losses stay on the GPU and are read back every `logInterval` steps and
 * once per evaluation; nothing else crosses to the CPU inside the loop.
 *
 * Run state (weights, masks, optimizer tensors, hidden state, data position, step counter,
 * trigger history, best weights) round-trips through a checkpoint, so N straight steps and
 * k steps + save + resume + N−k steps give identical losses: dropout masks are a pure function
 * of (seed, step), and the data order is fixed.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime.ts";
import type { Tensor } from "../kernels/tensor.ts";
import { reduce } from "../kernels/reduce.ts";
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
import type { TrainConfig } from "./config.ts";
import { type Corpus, loadCorpus } from "./data/corpus.ts";
import { batchify, bpttWindows, type TokenMatrix, windowTokens } from "./data/batches.ts";
import { syntheticCorpus } from "./data/synthetic.ts";
import {
  createOptimizer,
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
  type SparsityState,
  sparsityUpdate,
} from "./sparsity/stage.ts";
import {
  addTrainFlops,
  type FlopsTotals,
  forwardFlops,
  lstmLmWeightFlops,
} from "./sparsity/flops.ts";
import { lstmLmParamSpecs } from "../models/lstm_lm.ts";
import { toCsrStorage, toMaskedStorage } from "./sparsity/storage.ts";

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
  interrupted: boolean;
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

/** Host-side run position, stored in checkpoints. */
interface RunMeta {
  format: "selfish-rnn/lstm-lm";
  model: { vocab: number; embed: number; hidden: number; layers: number; tied: boolean };
  data: string;
  seed: number;
  /** Training steps taken. */
  step: number;
  /** 0-based epoch in progress and the next window of it. */
  epoch: number;
  window: number;
  history: number[];
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
    updateEvery: config.updateEvery,
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
    // SNFS grows by the dense momentum of inactive weights (spec §7.5)
    maskState: config.method !== "snfs",
  };
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

const STATE_KEYS = ["buf", "m", "v", "ax", "count"] as const;

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
  const validM = batchify(corpus.valid, config.evalBatchSize, "valid");
  const testM = batchify(corpus.test, config.evalBatchSize, "test");
  const windows = bpttWindows(trainM, config.bptt);
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
  // small dense: the width whose dense count matches the sparse model's (spec §7.2)
  const modelConfig = settings.method === "small-dense"
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
    // RigL's update step computes the dense gradient (spec §9); the masked-dense path already
    // has it, but the accounting charges what a sparse implementation would spend
    if (method.flops === "rigl") {
      meta.flops = { ...meta.flops, train: meta.flops.train + (fDense - fS) * lastTokens };
    }
    let r = { removed: 0, grown: 0 };
    await masked(async () => {
      const u = await sparsityUpdate(gpu, sparsity, model.params, {
        optimizer: opt,
        step: meta.step,
        // the schedules span the planned run (epochs × windows, spec §4.2), not where
        // --max-steps stops it, so a run stopped and resumed follows the same schedule
        totalSteps: config.epochs * windows.length,
      });
      sparsity = u.state;
      r = u;
    });
    meta.sparsity = sparsity;
    printer.say(
      `step ${meta.step}: ${settings.method} update removed ${r.removed}, grew ${r.grown} ` +
        `(density ${overallDensity().toFixed(4)})`,
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
  const totalSteps = config.maxSteps ?? config.epochs * windows.length;
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

  // Gradual pruning passes through denser models than its budget; only models at the final
  // density may become "best" (else the test would measure a model over budget).
  const pruneDone = () =>
    settings.method !== "gmp" || meta.step >= settings.pruneEnd * config.epochs * windows.length;
  const evaluateValid = async (force = false) => {
    swapAveraged(gpu, model.params, opt);
    const v = await evaluate(gpu, model, wsEval, evalState, validM, config.bptt);
    const improved = v < meta.bestVal && (force || pruneDone());
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

  try {
    outer: while (meta.epoch < config.epochs) {
      if (meta.window === 0) resetLstmLmState(gpu, state);
      for (; meta.window < windows.length; meta.window++) {
        if (config.maxSteps !== null && meta.step >= config.maxSteps) break outer;
        if (interrupted) break outer;
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
        pending++;
        const tokens = w.length * trainM.cols;
        pendingTokens += tokens;
        meta.trainTokens += tokens;
        chargeFlops(tokens);
        if (sparsityDue(sparsity, meta.step, false)) await connectivityUpdate(tokens);
        if (pending === config.logInterval) await flushLoss();
      }
      await flushLoss();
      const v = await evaluateValid();
      if (
        opt.kind === "ntasgd" && !opt.averaging && nonmonoTrigger(meta.history, v, config.nonmono)
      ) {
        opt = startAveraging(gpu, model.params, opt);
        printer.say(
          `epoch ${meta.epoch + 1}: validation stopped improving; switching to averaged SGD`,
        );
      }
      if (sparsityDue(sparsity, meta.step, true)) {
        await connectivityUpdate(windows[windows.length - 1].length * trainM.cols);
      }
      meta.history.push(v);
      printer.say(
        `epoch ${meta.epoch + 1} done: valid ppl ${Math.exp(v).toFixed(2)}` +
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
      meta.window = 0;
      if (config.save) await save(config.save);
    }
    await flushLoss();
    meta.trainSeconds = secondsSoFar();
    runStart = performance.now();
    if (
      interrupted || (config.save && (config.maxSteps !== null && meta.step >= config.maxSteps))
    ) {
      const path = config.save ?? "selfish-rnn-interrupted.ckpt";
      await save(path);
      printer.say(
        `${interrupted ? "interrupted: " : ""}saved run state to ${path} at step ${meta.step}`,
      );
    }
  } finally {
    try {
      Deno.removeSignalListener("SIGINT", onSigint);
    } catch { /* see addSignalListener */ }
    printer.end();
  }

  // Validation of the final weights when no epoch finished, then test of the best weights; an
  // interrupted run exits promptly instead (its state is saved; resume to finish it).
  let testLoss = NaN;
  if (!interrupted) {
    if (meta.bestVal === Infinity) await evaluateValid(true);
    if (csr) opt = toMaskedStorage(gpu, model.params, opt);
    model.params.forEach((p, i) => gpu.copy(best[i], p.value));
    copyMasks(false);
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
    valPpl: Math.exp(meta.bestVal),
    testPpl: Math.exp(testLoss),
    optimalPpl: data.optimalPerplexity ?? null,
    steps: meta.step,
    epochs: meta.epoch,
    tokensPerSec: meta.trainTokens / Math.max(1e-9, meta.trainSeconds),
    parameters: paramCount(model),
    adapter: gpu.report.description,
    variant: gpu.variant,
    averaged: opt.averaging,
    interrupted,
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
