/**
 * `deno task bench train`: throughput of the stacked-LSTM LM (training step and evaluation) and
 * a per-phase breakdown of the training step, with achieved GFLOP/s from an analytic FLOP count.
 *
 * Timing methods (also written into each row's `config` field):
 *
 * - whole step (`train_step`, `eval_forward`): the step is recorded, then awaited with
 *   `gpu.sync()`. The batch upload (`writeLstmLmBatch`, host index build) happens before the
 *   clock starts.
 * - phases: a step can only record work, so it cannot be stopped between phases to wait for
 *   the GPU, and completion callbacks of separate submissions arrive bunched together on Deno
 *   (several submissions report done at the same poll), so they cannot time phases either. The
 *   device is also opened without `timestamp-query`. Instead, one real step is recorded with
 *   `LstmLmStepOptions.onPhase` marking the phase boundaries while `gpu.run`/`fill`/`copy` are
 *   wrapped to capture every recorded operation with its arguments; each phase's operations are
 *   then replayed alone (same kernels, tensors, parameters and grids) and awaited with
 *   `gpu.sync()`, short phases several times per submission. A `phase_sum` row adds the phases
 *   up and a `step_replayed` row replays the whole captured step in one go, both for comparison
 *   with `train_step`.
 * - every row is the median over `reps` rounds after 2 warm-up steps; each round measures every
 *   row once (interleaved), because this machine's speed drifts by up to 2x within a minute.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import {
  createLstmLm,
  createLstmLmState,
  createLstmLmWorkspace,
  type LstmLmBatch,
  type LstmLmConfig,
  lstmLmEvalLoss,
  type LstmLmPhase,
  type LstmLmState,
  lstmLmStep,
  type LstmLmWorkspace,
  releaseLstmLmWorkspace,
  writeLstmLmBatch,
} from "../models/lstm_lm.ts";
import {
  createOptimizer,
  type OptimizerSettings,
  type OptimizerState,
  optimizerStep,
} from "../pipeline/optimizer.ts";

/** One row of the train suite. Empty cells are `""` (not applicable). */
export interface TrainRow {
  suite: string;
  phase: string;
  ms: number;
  "tokens_per_sec": number | "";
  gflops: number | "";
  adapter: string;
  config: string;
  [key: string]: string | number;
}

/** Columns of {@linkcode TrainRow}, in CSV order. */
export const TRAIN_COLUMNS = [
  "suite",
  "phase",
  "ms",
  "tokens_per_sec",
  "gflops",
  "adapter",
  "config",
];

/** Model and window of the benchmark. */
export interface TrainBenchConfig {
  vocab: number;
  embed: number;
  hidden: number;
  layers: number;
  /** Batch size B (parallel streams). */
  batch: number;
  /** BPTT window T. */
  bptt: number;
  /** SGD learning rate (does not affect the timing). */
  lr: number;
  /** Global gradient-norm clip. */
  clip: number;
}

/**
 * The configuration: PTB-sized vocabulary, the small 200/200/2 LSTM, batch 20, bptt 35,
 * SGD with clip 0.25. Dropout is fixed at 0 (see {@linkcode benchTrain}).
 *
 * @example
 * ```ts
 * import { TRAIN_BENCH_CONFIG } from "./train.ts";
 * TRAIN_BENCH_CONFIG.bptt * TRAIN_BENCH_CONFIG.batch; // 700 tokens per step
 * ```
 */
export const TRAIN_BENCH_CONFIG: TrainBenchConfig = {
  vocab: 10000,
  embed: 200,
  hidden: 200,
  layers: 2,
  batch: 20,
  bptt: 35,
  lr: 20,
  clip: 0.25,
};

/** Analytic FLOPs of one training step by phase (0 where the phase has no arithmetic to count). */
export interface StepFlops {
  embedding: number;
  lstmForward: number;
  lstmBackward: number;
  decoderLoss: number;
  optimizer: number;
  /** Whole training step (sum of the phases). */
  step: number;
  /** Evaluation forward pass: LSTM forward + decoder forward. */
  eval: number;
}

/**
 * FLOPs of one step, counting each multiply-add as 2 and only products (matmuls) and the
 * optimizer; gathers, the LSTM cell nonlinearities and softmax-CE are not counted. N = T·B,
 * in_l = E for layer 0, else H, P = parameter count:
 *
 * - LSTM forward: Σ_l 2·N·4H·(in_l + H) (input projection for all T·B rows, plus one recurrent
 *   product per step).
 * - LSTM backward: Σ_l [2·(T−1)·B·4H·H (recurrent dH) + 2·N·4H·H (dW_hh) + 2·N·4H·in_l (dW_ih)
 *   + 2·N·4H·in_l (dX) + 2·N·4H (bias)], about 2× the forward.
 * - decoder + loss: forward 2·N·H·V; backward dW 2·N·H·V, dY 2·N·H·V, bias 2·N·V.
 * - optimizer: 6·P (sum of squares for the clip 2, update w − lr·(s·g + wd·w) 4).
 * - embedding: 0 (memory only).
 *
 * @example
 * ```ts
 * import { TRAIN_BENCH_CONFIG, trainStepFlops } from "./train.ts";
 * trainStepFlops(TRAIN_BENCH_CONFIG).decoderLoss; // 3·2·700·200·10000 + 2·700·10000
 * ```
 */
export function trainStepFlops(c: TrainBenchConfig): StepFlops {
  const { vocab: V, embed: E, hidden: H, layers: L, batch: B, bptt: T } = c;
  const N = T * B;
  let lstmForward = 0, lstmBackward = 0, params = V * E + V * H + V;
  for (let l = 0; l < L; l++) {
    const inSize = l === 0 ? E : H;
    lstmForward += 2 * N * 4 * H * (inSize + H);
    lstmBackward += 2 * (T - 1) * B * 4 * H * H + 2 * N * 4 * H * H + 4 * N * 4 * H * inSize +
      2 * N * 4 * H;
    params += 4 * H * (inSize + H) + 8 * H;
  }
  const decoderLoss = 3 * 2 * N * H * V + 2 * N * V;
  const optimizer = 6 * params;
  return {
    embedding: 0,
    lstmForward,
    lstmBackward,
    decoderLoss,
    optimizer,
    step: lstmForward + lstmBackward + decoderLoss + optimizer,
    eval: lstmForward + 2 * N * H * V,
  };
}

/** Phases of the breakdown, each the union of some captured step phases. */
const BREAKDOWN: readonly { phase: string; parts: readonly string[]; flops: keyof StepFlops }[] = [
  {
    phase: "embedding",
    parts: ["embedding_forward", "embedding_backward"],
    flops: "embedding",
  },
  { phase: "lstm_forward", parts: ["lstm_forward"], flops: "lstmForward" },
  {
    phase: "decoder_loss",
    parts: ["decoder_forward", "decoder_backward"],
    flops: "decoderLoss",
  },
  { phase: "lstm_backward", parts: ["lstm_backward"], flops: "lstmBackward" },
  { phase: "optimizer", parts: ["optimizer"], flops: "optimizer" },
];

type Replay = () => void;

/**
 * Runs `record` while capturing every operation it records through `gpu.run`, `gpu.fill` and
 * `gpu.copy` (nested calls, e.g. a nonzero fill's dispatch, count once), grouped by the label of
 * the last `mark` call. Returns replays of the captured operations, by label.
 */
function capturePhases(
  gpu: Gpu,
  record: (mark: (label: string) => void) => void,
): Map<string, Replay[]> {
  const phases = new Map<string, Replay[]>();
  let current: Replay[] | null = null;
  let depth = 0;
  const g = gpu as unknown as Record<string, (...args: unknown[]) => void>;
  const methods = ["run", "fill", "copy"] as const;
  for (const m of methods) {
    const orig = g[m];
    g[m] = (...args: unknown[]) => {
      if (depth === 0) {
        if (!current) throw new Error(`capturePhases: ${m} recorded before the first mark`);
        current.push(() => orig.apply(gpu, args));
      }
      depth++;
      try {
        orig.apply(gpu, args);
      } finally {
        depth--;
      }
    };
  }
  try {
    record((label) => {
      current = phases.get(label) ?? [];
      phases.set(label, current);
    });
  } finally {
    for (const m of methods) delete g[m];
  }
  return phases;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const round = (x: number, digits: number) => +x.toFixed(digits);

/**
 * Runs the train suite on `gpu`: 2 warm-up steps, the capture of one step, then `reps` (≥ 5)
 * rounds that each time one training step, one evaluation pass, every phase replay and the
 * whole-step replay. Dropout is 0 so that every step does
 * the same work (dropout adds a few elementwise kernels, not counted); token ids are synthetic
 * uniform random ids, which give the embedding scatter realistic (mostly distinct) rows.
 *
 * @example
 * ```ts ignore
 * const rows = await benchTrain(gpu, { reps: 5, log: console.log });
 * ```
 */
export async function benchTrain(
  gpu: Gpu,
  opts: { reps: number; log: (s: string) => void; config?: TrainBenchConfig },
): Promise<TrainRow[]> {
  const c = opts.config ?? TRAIN_BENCH_CONFIG;
  const { bptt: T, batch: B } = c;
  const N = T * B;
  const warmup = 2;
  const lm: LstmLmConfig = {
    vocab: c.vocab,
    embed: c.embed,
    hidden: c.hidden,
    layers: c.layers,
    dropout: 0,
    tied: false,
  };
  const settings: OptimizerSettings = {
    kind: "sgd",
    lr: c.lr,
    weightDecay: 0,
    momentum: 0,
    clip: c.clip,
    adam: { beta1: 0, beta2: 0.999, eps: 1e-9 },
  };
  const adapter = gpu.report.description;
  const configText = `V=${c.vocab} E=${c.embed} H=${c.hidden} L=${c.layers} B=${B} T=${T} ` +
    `dropout=0 sgd lr=${c.lr} clip=${c.clip} synthetic-uniform-ids variant=${gpu.variant}`;
  const flops = trainStepFlops(c);
  opts.log(`train suite: ${configText}`);
  opts.log(
    "dropout 0 (fixed work per step); token ids are synthetic uniform random ids; " +
      "GFLOP/s counts matmul and optimizer FLOPs only (bench/train.ts, trainStepFlops)",
  );

  const model = createLstmLm(gpu, lm, 1111);
  const ws = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: true });
  const state = createLstmLmState(gpu, model, B);
  const evalWs = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: false });
  const evalState = createLstmLmState(gpu, model, B);
  // The captured step gets its own workspace so the timed steps never overwrite its batch.
  const capWs = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: true });
  const capState = createLstmLmState(gpu, model, B);
  let opt: OptimizerState = createOptimizer(gpu, model.params, settings);
  let s = 12345;
  const ids = () =>
    new Uint32Array(N).map(() => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return Math.floor((s / 4294967296) * c.vocab);
    });
  const newBatch = (w: LstmLmWorkspace) =>
    writeLstmLmBatch(gpu, w, { T, input: ids(), target: ids() });
  let step = 0;
  const recordStep = (
    w: LstmLmWorkspace,
    st: LstmLmState,
    batch: LstmLmBatch,
    onPhase?: (p: LstmLmPhase | "optimizer") => void,
  ) => {
    lstmLmStep(gpu, model, w, st, batch, { seed: 1, step: step++, onPhase });
    onPhase?.("optimizer");
    opt = optimizerStep(gpu, model.params, opt, settings);
  };
  const syncedMs = async (record: () => void) => {
    await gpu.sync();
    const t0 = performance.now();
    record();
    await gpu.sync();
    return performance.now() - t0;
  };
  const trainMs = () => {
    const batch = newBatch(ws);
    return syncedMs(() => recordStep(ws, state, batch));
  };
  const evalMs = () => {
    const batch = newBatch(evalWs);
    return syncedMs(() => lstmLmEvalLoss(gpu, model, evalWs, evalState, batch));
  };

  const rows: TrainRow[] = [];
  const row = (phase: string, ms: number, f: number | null, tokens: boolean, method: string) => {
    const r: TrainRow = {
      suite: "train",
      phase,
      ms: round(ms, 2),
      "tokens_per_sec": tokens ? round(N / (ms / 1000), 1) : "",
      gflops: f === null ? "" : round(f / ms / 1e6, 3),
      adapter,
      config: `${configText}; ${method}`,
    };
    rows.push(r);
    opts.log(
      `${phase}: ${r.ms} ms` + (tokens ? `, ${r.tokens_per_sec} tokens/s` : "") +
        (f === null ? "" : `, ${r.gflops} GFLOP/s`),
    );
    return r;
  };

  // Warm-up (pipeline compilation, pool), then the capture of one real step.
  for (let i = 0; i < warmup; i++) await trainMs(), await evalMs();
  const capBatch = newBatch(capWs);
  await gpu.sync();
  const d0 = gpu.dispatchCount;
  const captured = capturePhases(gpu, (mark) => recordStep(capWs, capState, capBatch, mark));
  await gpu.sync();
  opts.log(`captured step: ${gpu.dispatchCount - d0} dispatches`);
  const replays = BREAKDOWN.map((b) => ({
    ...b,
    ops: b.parts.flatMap((p) => {
      const got = captured.get(p);
      if (!got?.length) throw new Error(`bench train: step phase ${p} recorded nothing`);
      return got;
    }),
    inner: 1,
    ms: [] as number[],
  }));
  const whole = { ops: [...captured.values()].flat(), inner: 1, ms: [] as number[] };
  // Short phases are replayed `inner` times per submission so that each sample lasts ≥ 100 ms,
  // well above the ~10 ms with which Deno notices finished work (as in timing.ts).
  const replayMs = async (r: { ops: Replay[]; inner: number }) => {
    const ms = await syncedMs(() => {
      for (let j = 0; j < r.inner; j++) r.ops.forEach((op) => op());
    });
    return ms / r.inner;
  };
  for (const r of [...replays, whole]) {
    await replayMs(r);
    r.inner = Math.max(1, Math.min(200, Math.ceil(100 / Math.max(await replayMs(r), 0.01))));
  }

  // Interleaved rounds: the machine's speed drifts (other load, clocks), so every round
  // measures every row once and the rows' medians come from the same stretches of time.
  const stepMs: number[] = [], evalMsList: number[] = [];
  for (let i = 0; i < opts.reps; i++) {
    stepMs.push(await trainMs());
    evalMsList.push(await evalMs());
    for (const r of replays) r.ms.push(await replayMs(r));
    whole.ms.push(await replayMs(whole));
  }
  const rounds = `median of ${opts.reps} interleaved rounds after ${warmup} warm-up steps`;
  const synced = `timing: recorded then awaited with gpu.sync(), batch upload not timed; ${rounds}`;
  row("train_step", median(stepMs), flops.step, true, `lstmLmStep + optimizerStep; ${synced}`);
  row("eval_forward", median(evalMsList), flops.eval, true, `lstmLmEvalLoss; ${synced}`);
  let sum = 0;
  for (const r of replays) {
    const ms = median(r.ms);
    sum += ms;
    const f = flops[r.flops];
    row(
      r.phase,
      ms,
      f > 0 ? f : null,
      false,
      `${r.parts.join(" + ")}; timing: the phase's operations captured from one step ` +
        `(onPhase marks) replayed alone ${r.inner}x per submission; ${rounds}`,
    );
  }
  row(
    "phase_sum",
    sum,
    flops.step,
    true,
    "timing: sum of the phase rows (compare with train_step)",
  );
  // The whole captured step replayed in one go separates the replay method's own bias (vs
  // train_step) from the cost of splitting the step into phases (vs phase_sum).
  row(
    "step_replayed",
    median(whole.ms),
    flops.step,
    true,
    `all operations captured from the step replayed together; timing: ${rounds}`,
  );
  for (const w of [ws, evalWs, capWs]) releaseLstmLmWorkspace(gpu, w);
  return rows;
}
