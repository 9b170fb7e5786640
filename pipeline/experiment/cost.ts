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

/** A corpus's vocabulary and training tokens (with `<eos>`). */
export interface CorpusFacts {
  vocab: number;
  trainTokens: number;
}

/** The paper's corpora's facts. */
export const CORPUS_FACTS: Readonly<Record<CorpusName, CorpusFacts>> = {
  ptb: { vocab: 10_000, trainTokens: 929_589 },
  "wikitext-2": { vocab: 33_278, trainTokens: 2_088_628 },
};

/**
 * The training rate the estimates assume by default: the stacked LSTM's measured training step
 * on llvmpipe (`bench/results/train-llvmpipe.csv`: 15.9 GFLOP/s), in FLOP/s.
 */
export const DEFAULT_RATE = 15.9e9;

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
  /** `trainFlops` at the given rate, in seconds (training only; evaluations come on top). */
  seconds: number;
}

/**
 * The cost of `spec` at `scale` on the paper's corpora (or `corpusFacts`'), at `rate` FLOP/s.
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
  rate = DEFAULT_RATE,
  corpusFacts: (corpus: CorpusName) => CorpusFacts = (c) => CORPUS_FACTS[c],
): ExperimentCost {
  const runs = planSpec(spec, scale, overrides);
  let trainFlops = 0, minSteps = Infinity, maxSteps = 0;
  for (const r of runs) {
    const facts = corpusFacts(r.corpus);
    const c = r.config;
    const plan = runPlan(c, () => passWindows(facts.trainTokens, c));
    const { family, trained } = runModelConfig(c, facts.vocab);
    const tokens = plan.totalSteps * c.batchSize * c.bptt;
    trainFlops += 3 * forwardFlops(family.weightMacs(trained)) * tokens;
    minSteps = Math.min(minSteps, plan.totalSteps);
    maxSteps = Math.max(maxSteps, plan.totalSteps);
  }
  return {
    runs: runs.length,
    minSteps: runs.length ? minSteps : 0,
    maxSteps,
    trainFlops,
    seconds: trainFlops / rate,
  };
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
