/**
 * The data stage of a run: the corpus (a directory or the synthetic default), batchified for
 * training, validation (optionally a prefix, spec §14.5) and test, and the training windows of
 * one pass over the data. Pure host data.
 *
 * @module
 */

import type { TrainConfig } from "../config.ts";
import { type Corpus, loadCorpus } from "../data/corpus.ts";
import { batchify, bpttWindows, type TokenMatrix, type Window } from "../data/batches.ts";
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

/** The batchified splits of a run and its training windows. */
export interface RunData {
  train: TokenMatrix;
  /** Windows of one pass over `train`. */
  windows: Window[];
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
  return {
    train,
    windows: bpttWindows(train, config.bptt),
    valid,
    validFull,
    test: batchify(corpus.test, config.evalBatchSize, "test"),
  };
}
