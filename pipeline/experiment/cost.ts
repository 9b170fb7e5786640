/**
 * What an experiment costs before it runs: its runs, their steps, their dense-equivalent
 * training FLOPs on the paper's corpora, and the time that takes at a stated rate. Pure: the
 * corpora's sizes are known facts (spec §1, `../shared/data/README.md`), not read.
 *
 * @module
 */

import { runModelConfig, runPlan } from "../run/setup.ts";
import { forwardFlops } from "../sparsity/flops.ts";
import {
  type CorpusName,
  type ExperimentSpec,
  planSpec,
  type Scale,
  type SpecOverrides,
} from "./spec.ts";
import type { TrainConfig } from "../config.ts";

/** A corpus's vocabulary and its splits' tokens (with `<eos>`). */
export interface CorpusFacts {
  vocab: number;
  trainTokens: number;
  validTokens: number;
  testTokens: number;
}

/** The paper's corpora's facts. */
export const CORPUS_FACTS: Readonly<Record<CorpusName, CorpusFacts>> = {
  ptb: { vocab: 10_000, trainTokens: 929_589, validTokens: 73_760, testTokens: 82_430 },
  "wikitext-2": {
    vocab: 33_278,
    trainTokens: 2_088_628,
    validTokens: 217_646,
    testTokens: 245_569,
  },
};

/**
 * What the estimates know of a device: the FLOP rate its kernels sustain, and what a training
 * step pays per cell and time step when launches, not arithmetic, bound it (small models on
 * llvmpipe, where every launch synchronises its thread pool). A step costs the larger of the two;
 * an evaluation window, forward only, the larger of its FLOPs and `evalCellFraction` of the
 * launch cost.
 */
export interface DeviceRate {
  /** FLOP/s. */
  flops: number;
  /** Seconds per cell per time step of a training step (forward, backward, update). */
  cellSeconds: number;
  /** An evaluation window's launch cost per cell and time step, as a fraction of training's. */
  evalCellFraction: number;
}

/**
 * llvmpipe on this project's machine: the stacked LSTM's training step at 2 × 200, vocabulary
 * 10,000 (`bench/results/train-llvmpipe.csv`: 15.9 GFLOP/s), and the launch cost fitted to the
 * small-scale LSTM runs of `bench/results/table2-small-synthetic-v2.md` (2 × 128, vocabulary
 * 201: ~150 s a run, 148 s estimated). Fitted to the LSTM, not to the sweep's total, so the
 * estimate errs long: an RHN micro-layer costs ~0.6 of an LSTM layer there, and that table's RHN
 * runs (~178 s) are estimated at ~295 s.
 */
export const LLVMPIPE: Readonly<DeviceRate> = {
  flops: 15.9e9,
  cellSeconds: 2.5e-3,
  evalCellFraction: 0.15,
};

/** Windows of one pass over a corpus of `tokens` at `config`'s batch and (mean) window length. */
export function passWindows(tokens: number, config: TrainConfig): number {
  const rows = Math.floor(tokens / config.batchSize);
  // AWD's variable windows: base bptt with probability 0.95, else bptt / 2
  const mean = config.variableBptt ? 0.95 * config.bptt + 0.05 * (config.bptt / 2) : config.bptt;
  return Math.max(1, Math.ceil((rows - 1) / mean));
}

/** The size of an experiment at one scale. */
export interface ExperimentCost {
  runs: number;
  /** The shortest and the longest run, in steps. */
  minSteps: number;
  maxSteps: number;
  /** Dense-equivalent training FLOPs of every run (3 × forward per token, spec §9): a bound. */
  trainFlops: number;
  /** Training and evaluation (every validation and the test) on the device, in seconds. */
  seconds: number;
}

/** Seconds of `windows` windows of `tokens` tokens each at `flopsPerToken`, or their launches. */
function windowSeconds(
  windows: number,
  tokens: number,
  flopsPerToken: number,
  launchSeconds: number,
  device: DeviceRate,
): number {
  return windows * Math.max((tokens * flopsPerToken) / device.flops, launchSeconds);
}

/**
 * The cost of `spec` at `scale` on the paper's corpora (or `corpusFacts`'), on `device`.
 *
 * @example
 * ```ts
 * import { experimentCost } from "./cost.ts";
 * import { NO_OVERRIDES } from "./spec.ts";
 * import { TABLES } from "./tables.ts";
 * experimentCost(TABLES.table3, "small", NO_OVERRIDES).runs; // 15
 * ```
 */
export function experimentCost(
  spec: ExperimentSpec,
  scale: Scale,
  overrides: SpecOverrides,
  device: DeviceRate = LLVMPIPE,
  corpusFacts: (corpus: CorpusName) => CorpusFacts = (c) => CORPUS_FACTS[c],
): ExperimentCost {
  const runs = planSpec(spec, scale, overrides);
  let trainFlops = 0, seconds = 0, minSteps = Infinity, maxSteps = 0;
  for (const r of runs) {
    const facts = corpusFacts(r.corpus);
    const c = r.config;
    const plan = runPlan(c, () => passWindows(facts.trainTokens, c));
    const { family, trained } = runModelConfig(c, facts.vocab);
    const forward = forwardFlops(family.weightMacs(trained));
    const cellSteps = family.cellsPerTimestep(trained) * c.bptt;
    const windowTokens = c.batchSize * c.bptt;
    trainFlops += 3 * forward * windowTokens * plan.totalSteps;
    seconds += windowSeconds(
      plan.totalSteps,
      windowTokens,
      3 * forward,
      cellSteps * device.cellSeconds,
      device,
    );
    const evalLaunch = cellSteps * device.cellSeconds * device.evalCellFraction;
    const evaluation = (tokens: number, batch: number, times: number) =>
      times * windowSeconds(
        Math.ceil(tokens / (batch * c.bptt)),
        batch * c.bptt,
        forward,
        evalLaunch,
        device,
      );
    // each epoch's validation (on its first --valid-tokens), the best weights' full one, the test
    const valid = Math.min(c.validTokens ?? Infinity, facts.validTokens);
    seconds += evaluation(valid, c.evalBatchSize, plan.epochEnds.length);
    if (c.validTokens !== null) seconds += evaluation(facts.validTokens, c.evalBatchSize, 1);
    seconds += evaluation(facts.testTokens, c.testBatchSize ?? c.evalBatchSize, 1);
    minSteps = Math.min(minSteps, plan.totalSteps);
    maxSteps = Math.max(maxSteps, plan.totalSteps);
  }
  return { runs: runs.length, minSteps: runs.length ? minSteps : 0, maxSteps, trainFlops, seconds };
}

/**
 * A duration as the largest sensible unit (`42 s`, `3.5 min`, `2.1 h`, `4.3 days`).
 *
 * @example
 * ```ts
 * import { durationText } from "./cost.ts";
 * durationText(5400); // "1.5 h"
 * ```
 */
export function durationText(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400 - 1e-9) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 3 * 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}
