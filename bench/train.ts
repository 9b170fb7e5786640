/**
 * `deno task bench train [--model NAME] [--preset NAME]`: throughput of a model family's
 * training step and evaluation pass, and a per-phase breakdown of the step, with achieved
 * GFLOP/s from the family's costs (the FLOPs accounting of spec §9, the same formula the runs
 * use). Only the model contract is used (`models/model.ts`), so every family gets the same
 * rows; the configuration is the family's `benchPreset` (a size that runs on a CPU) unless
 * `--preset` names another, on a PTB-sized vocabulary.
 *
 * Timing methods (also written into each row's `config` field):
 *
 * - whole step (`train_step`, `eval_forward`): the step is recorded, then awaited with
 *   `gpu.sync()`. The batch upload (host index build) happens before the clock starts.
 * - phases: a step can only record work, so it cannot be stopped between phases to wait for
 *   the GPU, and completion callbacks of separate submissions arrive bunched together on Deno
 *   (several submissions report done at the same poll), so they cannot time phases either. The
 *   device is also opened without `timestamp-query`. Instead, one real step is recorded with
 *   `StepContext.onPhase` marking the family's phase boundaries while `gpu.run`/`fill`/`copy`
 *   are wrapped to capture every recorded operation with its arguments; each phase's operations
 *   are then replayed alone (same kernels, tensors, parameters and grids) and awaited with
 *   `gpu.sync()`, short phases several times per submission. A `phase_sum` row adds the phases
 *   up and a `step_replayed` row replays the whole captured step in one go, both for comparison
 *   with `train_step`.
 * - every row is the median over `reps` rounds after 2 warm-up steps; each round measures every
 *   row once (interleaved), because this machine's speed drifts by up to 2x within a minute.
 *
 * Memory (in `train_step`'s `config`): the peak tensor bytes of one step, from the runtime's
 * allocation counts, and the host RSS that 10 further steps keep per step, which catches
 * memory a driver holds outside our buffers.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import type { ModelBatch, ModelSession, WeightMacs } from "../models/model.ts";
import { modelFamily } from "../models/families.ts";
import { modelSettings, parseTrainArgs, type TrainConfig } from "../pipeline/config.ts";
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

/** What a train benchmark runs: a run config (family, sizes, batch, bptt, SGD) and a vocabulary. */
export interface TrainBenchSetup {
  config: TrainConfig;
  vocab: number;
}

/**
 * The benchmark's setup for `--model model`: the family's `benchPreset` (or `preset`), every
 * dropout 0 (fixed work per step), SGD at lr 20 with clip 0.25 (the optimizer does not change
 * the timing much), the family's data's vocabulary (PTB's 10,000 words unless it says otherwise); `args` are further train flags.
 *
 * @example
 * ```ts ignore
 * const setup = await trainBenchSetup("lstm"); // 200/200/2 LSTM, B = 20, T = 35
 * ```
 */
export async function trainBenchSetup(
  model = "lstm",
  preset?: string,
  args: readonly string[] = [],
): Promise<TrainBenchSetup> {
  const family = modelFamily(model);
  const config = await parseTrainArgs([
    "--model",
    model,
    "--preset",
    preset ?? family.benchPreset,
    ...["--dropout", "0", "--dropouth", "0", "--dropouti", "0", "--dropoute", "0"],
    ...["--optimizer", "sgd", "--lr", "20", "--clip", "0.25"],
    ...args,
  ]);
  return { config, vocab: family.benchVocab ?? 10000 };
}

/** FLOPs of one training step and one evaluation pass of the same window. */
export interface StepFlops {
  /** Forward of N tokens: 2 per multiply-accumulate of every weight (spec §9). */
  forward: number;
  /** Training step: forward + backward (2× forward) + optimizer (6 per parameter). */
  step: number;
  /** Evaluation: the forward. */
  eval: number;
}

/**
 * FLOPs of a step on `tokens` tokens from the family's per-token costs (`weightMacs`, dense),
 * the convention of the run's accounting (spec §9: backward = 2× forward, multiply-add = 2),
 * plus the optimizer's 6 per parameter (sum of squares for the clip 2, update 4).
 *
 * @example
 * ```ts
 * import { trainStepFlops } from "./train.ts";
 * trainStepFlops([{ name: "w", macs: 10 }], 100, 7).step; // 3 · 2 · 10 · 7 + 6 · 100
 * ```
 */
export function trainStepFlops(
  weights: readonly WeightMacs[],
  parameters: number,
  tokens: number,
): StepFlops {
  const forward = 2 * weights.reduce((s, w) => s + w.macs, 0) * tokens;
  return { forward, step: 3 * forward + 6 * parameters, eval: forward };
}

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
 * whole-step replay. Token ids are synthetic uniform random ids, which give the embedding
 * scatter realistic (mostly distinct) rows.
 *
 * @example
 * ```ts ignore
 * const rows = await benchTrain(gpu, { reps: 5, log: console.log });
 * ```
 */
export async function benchTrain(
  gpu: Gpu,
  opts: { reps: number; log: (s: string) => void; setup?: TrainBenchSetup },
): Promise<TrainRow[]> {
  const { config: c, vocab } = opts.setup ?? await trainBenchSetup();
  const family = modelFamily(c.model);
  const modelConfig = family.config(modelSettings(c, vocab));
  const { bptt: T, batchSize: B } = c;
  const N = T * B;
  const warmup = 2;
  const settings: OptimizerSettings = {
    kind: "sgd",
    lr: c.lr,
    weightDecay: 0,
    momentum: 0,
    clip: c.clip,
    adam: { beta1: 0, beta2: 0.999, eps: 1e-9 },
  };
  const adapter = gpu.report.description;
  const configText = `${family.name} ${JSON.stringify(modelConfig)} B=${B} T=${T} ` +
    `dropout=0 sgd lr=${c.lr} clip=${c.clip} synthetic-uniform-ids variant=${gpu.variant}`;
  opts.log(`train suite: ${configText}`);
  opts.log(
    "dropout 0 (fixed work per step); token ids are synthetic uniform random ids; " +
      "GFLOP/s from the family's costs (spec §9: 6 per weight multiply-add and token, " +
      "6 per parameter for the optimizer; bench/train.ts, trainStepFlops)",
  );

  const model = family.create(gpu, modelConfig, 1111);
  const parameters = model.params.reduce((n, p) => n + p.value.size, 0);
  const flops = trainStepFlops(family.weightMacs(modelConfig), parameters, N);
  const heldBefore = gpu.memory().live;
  const session = model.session({ maxT: T, B, training: true });
  const sessionBytes = gpu.memory().live - heldBefore;
  const evalSession = model.session({ maxT: T, B, training: false });
  // The captured step gets its own session so the timed steps never overwrite its batch.
  const capSession = model.session({ maxT: T, B, training: true });
  let opt: OptimizerState = createOptimizer(gpu, model.params, settings);
  let s = 12345;
  const ids = () =>
    new Uint32Array(N).map(() => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return Math.floor((s / 4294967296) * vocab);
    });
  const newBatch = (w: ModelSession) => w.writeBatch({ T, input: ids(), target: ids() });
  let step = 0;
  const recordStep = (w: ModelSession, batch: ModelBatch, onPhase?: (p: string) => void) => {
    w.step(batch, { seed: 1, step: step++, onPhase });
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
    const batch = newBatch(session);
    return syncedMs(() => recordStep(session, batch));
  };
  const evalMs = () => {
    const batch = newBatch(evalSession);
    return syncedMs(() => evalSession.evalLoss(batch));
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
  const capBatch = newBatch(capSession);
  await gpu.sync();
  const d0 = gpu.dispatchCount;
  const captured = capturePhases(gpu, (mark) => recordStep(capSession, capBatch, mark));
  await gpu.sync();
  opts.log(`captured step: ${gpu.dispatchCount - d0} dispatches`);
  const replays = [...family.phases, "optimizer"].map((phase) => {
    const ops = captured.get(phase);
    if (!ops?.length) throw new Error(`bench train: step phase ${phase} recorded nothing`);
    return { phase, ops, inner: 1, ms: [] as number[] };
  });
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
  // tensor memory: everything held during one more step, and the training session's share
  gpu.resetPeakBytes();
  await trainMs();
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  // Host memory that steps keep: the driver's, invisible to the tensor counts (a software
  // adapter once leaked MBs per weight-gradient dispatch and a long run ran out of memory).
  const rssSteps = 10;
  const rss0 = Deno.memoryUsage().rss;
  for (let i = 0; i < rssSteps; i++) await trainMs();
  const rssPerStep = (Deno.memoryUsage().rss - rss0) / rssSteps;
  const memory = `peak tensor memory during a step ${mb(gpu.memory().peak)} (the training ` +
    `session's buffers ${mb(sessionBytes)}; from the allocations); host RSS ` +
    `${rssPerStep >= 0 ? "+" : "−"}${(Math.abs(rssPerStep) / 2 ** 20).toFixed(2)} MiB per step ` +
    `over ${rssSteps} more steps`;
  opts.log(memory);
  const rounds = `median of ${opts.reps} interleaved rounds after ${warmup} warm-up steps`;
  const synced = `timing: recorded then awaited with gpu.sync(), batch upload not timed; ${rounds}`;
  row(
    "train_step",
    median(stepMs),
    flops.step,
    true,
    `session.step + optimizerStep; ${synced}; ${memory}`,
  );
  row("eval_forward", median(evalMsList), flops.eval, true, `session.evalLoss; ${synced}`);
  let sum = 0;
  for (const r of replays) {
    const ms = median(r.ms);
    sum += ms;
    row(
      r.phase,
      ms,
      null,
      false,
      `timing: the phase's operations captured from one step (onPhase marks) replayed alone ` +
        `${r.inner}x per submission; ${rounds}`,
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
  for (const w of [session, evalSession, capSession]) w.release();
  return rows;
}
