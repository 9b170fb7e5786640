/**
 * The data stage of a run: the corpus (a directory or the synthetic default), batchified for
 * training, validation (optionally a prefix, spec §14.5) and test, and the training windows of
 * each pass over the data: fixed BPTT windows, or AWD's variable windows (`--variable-bptt`),
 * which are a pure function of the run's seed and the pass, so a resumed run sees the same ones.
 * Pure host data.
 *
 * @module
 */

import type { TrainConfig } from "../config.ts";
import { type Corpus, loadCorpus } from "../data/corpus.ts";
import {
  awdWindows,
  batchify,
  bpttWindows,
  type TokenMatrix,
  type Window,
} from "../data/batches.ts";
import { Rng } from "../data/rng.ts";
import { syntheticCorpus } from "../data/synthetic.ts";

/** A corpus with, for synthetic data, the perplexity of the true generating process. */
export interface TrainingData {
  corpus: Corpus;
  /** exp(entropy rate) of the synthetic language; absent for real corpora. */
  optimalPerplexity?: number;
  /** Human-readable origin, for logs and the summary. */
  description: string;
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

/** The cap of `config`'s variable windows: `--bptt-cap`, else bptt + 40 (AWD's default). */
function windowCap(config: Pick<TrainConfig, "bptt" | "bpttCap">): number {
  return config.bpttCap ?? config.bptt + 40;
}

/**
 * The longest training window of `config`: `--bptt`, or with `--variable-bptt` the windows' cap
 * (what a session's buffers are sized for).
 *
 * @example
 * ```ts
 * import { longestWindow } from "./data.ts";
 * longestWindow({ bptt: 70, bpttCap: 90, variableBptt: true }); // 90
 * ```
 */
export function longestWindow(
  config: Pick<TrainConfig, "bptt" | "bpttCap" | "variableBptt">,
): number {
  return config.variableBptt ? windowCap(config) : config.bptt;
}

/** Random streams of the passes' variable windows start here (`Rng(seed, stream)`). */
const PASS_STREAM = 0x5000_0000;

/** The batchified splits of a run and its training windows. */
export interface RunData {
  train: TokenMatrix;
  /** Windows of pass `p` over `train` (the same every pass unless they vary). */
  passWindows(p: number): Window[];
  /** The longest window a pass can hold (what a training session must fit). */
  maxWindow: number;
  /** What epoch ends validate on: `validFull`, or its first `--valid-tokens` tokens. */
  valid: TokenMatrix;
  validFull: TokenMatrix;
  test: TokenMatrix;
}

/**
 * Batchifies `data` for `config` (training batch, evaluation batch, BPTT length, validation
 * prefix). Pure.
 *
 * @example
 * ```ts ignore
 * const d = runData(config, data); d.windows.length; // 1328 on PTB, B = 20, bptt = 35
 * ```
 */
export function runData(config: TrainConfig, data: TrainingData): RunData {
  const { corpus } = data;
  const train = batchify(corpus.train, config.batchSize, "train");
  const validFull = batchify(corpus.valid, config.evalBatchSize, "valid");
  const valid = config.validTokens !== null && config.validTokens < corpus.valid.length
    ? batchify(corpus.valid.subarray(0, config.validTokens), config.evalBatchSize, "valid prefix")
    : validFull;
  const fixed = bpttWindows(train, config.bptt);
  const cap = windowCap(config);
  let cached: { pass: number; windows: Window[] } | null = null;
  const passWindows = (p: number): Window[] => {
    if (!config.variableBptt) return fixed;
    if (cached?.pass !== p) {
      // a stream per pass, apart from any other use of the seed
      const rng = new Rng(config.seed >>> 0, PASS_STREAM + p);
      cached = { pass: p, windows: awdWindows(train, config.bptt, rng, { maxLength: cap }) };
    }
    return cached.windows;
  };
  return {
    train,
    passWindows,
    maxWindow: longestWindow(config),
    valid,
    validFull,
    test: batchify(corpus.test, config.testBatchSize ?? config.evalBatchSize, "test"),
  };
}
