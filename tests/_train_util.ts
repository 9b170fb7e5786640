/**
 * Test helpers of the training pipeline: a printer that records instead of printing, and the
 * tiny synthetic corpus the run tests train on.
 *
 * @module
 */

import type { TrainingData } from "../pipeline/train.ts";
import { syntheticCorpus } from "../pipeline/data/synthetic.ts";
import { type ProgressInfo, ProgressPrinter } from "../pipeline/progress.ts";

/** Records every reported training loss and message instead of printing. */
export class LossRecorder extends ProgressPrinter {
  losses: number[] = [];
  /** Each report's seconds trained so far (the ETA's base). */
  seconds: number[] = [];
  messages: string[] = [];
  constructor() {
    super(false);
  }
  override update(p: ProgressInfo): void {
    this.losses.push(p.loss);
    this.seconds.push(p.seconds);
  }
  override say(message: string): void {
    this.messages.push(message);
  }
}

/** A 30-word synthetic corpus of 1,200 / 300 / 300 tokens (epochs of a few dozen windows). */
export function tinyData(): TrainingData {
  const s = syntheticCorpus({
    seed: 3,
    words: 30,
    trainTokens: 1200,
    validTokens: 300,
    testTokens: 300,
  });
  return { corpus: s, optimalPerplexity: s.optimalPerplexity, description: "tiny synthetic" };
}

/** A table2 (stacked LSTM block) sweep small enough for the tests: 2 epochs of 2 steps, one 16-unit layer. */
export const TINY_SWEEP: readonly string[] = [
  "table2",
  "--models",
  "lstm",
  "--epochs",
  "2",
  "--epoch-steps",
  "2",
  "--nhid",
  "16",
  "--nlayers",
  "1",
];
