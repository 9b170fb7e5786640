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

function optimizerSettings(config: TrainConfig, lr = config.lr): OptimizerSettings {
  return {
    kind: config.optimizer,
    lr,
    weightDecay: config.weightDecay,
    momentum: config.momentum,
    clip: config.clip,
    adam: { beta1: 0, beta2: 0.999, eps: 1e-9 },
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
): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  model.params.forEach((p, i) => {
    out[p.name] = p.value;
    if (p.mask) out[`${p.name}#mask`] = p.mask;
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
  const model = createLstmLm(gpu, {
    vocab: corpus.vocab.size,
    embed: config.emsize,
    hidden: config.nhid,
    layers: config.nlayers,
    dropout: config.dropout,
    tied: config.tied,
  }, config.seed);
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

  const meta: RunMeta = {
    format: "selfish-rnn/lstm-lm",
    model: {
      vocab: corpus.vocab.size,
      embed: config.emsize,
      hidden: config.nhid,
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
  };

  if (config.resume) {
    const ckpt = await readCheckpoint(config.resume);
    const m = ckpt.meta as RunMeta;
    if (
      m?.format !== meta.format || JSON.stringify(m.model) !== JSON.stringify(meta.model) ||
      m.data !== meta.data || m.seed !== meta.seed
    ) {
      throw new CheckpointError(
        `checkpoint ${config.resume}: made for model ${JSON.stringify(m?.model)} on "${m?.data}" ` +
          `(seed ${m?.seed}), but this run is ${
            JSON.stringify(meta.model)
          } on "${meta.data}" (seed ${meta.seed})`,
      );
    }
    if (m.optimizer.averaging) opt = startAveraging(gpu, model.params, opt);
    opt = { ...opt, step: m.optimizer.step };
    for (const p of model.params) {
      if (ckpt.tensors[`${p.name}#mask`] && !p.mask) p.mask = gpu.tensor(p.shape);
    }
    const targets = runTensors(model, opt, state, best);
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
    printer.say(
      `resumed from ${config.resume} at step ${meta.step} (epoch ${
        meta.epoch + 1
      }, window ${meta.window})`,
    );
  }

  const save = async (path: string) => {
    const tensors: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(runTensors(model, opt, state, best))) {
      tensors[name] = await toHost(gpu, t);
    }
    meta.optimizer = { kind: opt.kind, step: opt.step, averaging: opt.averaging };
    await writeCheckpoint(path, { meta, tensors });
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

  const evaluateValid = async () => {
    swapAveraged(gpu, model.params, opt);
    const v = await evaluate(gpu, model, wsEval, evalState, validM, config.bptt);
    const improved = v < meta.bestVal;
    if (improved) model.params.forEach((p, i) => gpu.copy(p.value, best[i]));
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
        pendingTokens += w.length * trainM.cols;
        meta.trainTokens += w.length * trainM.cols;
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
    if (meta.bestVal === Infinity) await evaluateValid();
    model.params.forEach((p, i) => gpu.copy(best[i], p.value));
    testLoss = await evaluate(gpu, model, wsEval, evalState, testM, config.bptt);
  }
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
  };
}
