/**
 * FLOPs accounting of spec §9 (the RigL Appendix H convention of the paper's Table 8): a
 * backward pass costs twice the forward (activation gradients + weight gradients), the
 * embedding lookup costs nothing, a multiply-add is 2 FLOPs.
 *
 * Per token, with f_S the forward FLOPs at the current densities and f_D the dense ones:
 *
 * | flops model | training FLOPs per token                                  |
 * |-------------|-----------------------------------------------------------|
 * | dense       | 3·f_D                                                     |
 * | sparse      | 3·f_S (static, SET, DSR, Selfish-RNN; updates negligible) |
 * | snfs        | 2·f_S + f_D (dense weight gradient for the momentum)      |
 * | rigl        | 3·f_S, plus f_D − f_S on an update step (dense gradient)  |
 * | pruning     | 3·f_S(t), f_S following the pruning schedule              |
 *
 * The meter accumulates these over the run from the densities actually in force at each step,
 * so the totals are exact sums, not the table's closed-form averages. Everything is also
 * reported normalised to the dense model's training cost over the same tokens ("× f_D"); for
 * small-dense the reference is the full-width dense model.
 *
 * @module
 */

import type { WeightMacs } from "../../models/model.ts";

/**
 * One weight tensor's contribution to the forward pass (the model family's costs,
 * `ModelFamily.weightMacs`).
 */
export type WeightFlops = WeightMacs;

/**
 * Forward FLOPs per token at the given per-tensor densities (missing names count as dense).
 *
 * @example
 * ```ts
 * import { forwardFlops } from "./flops.ts";
 * forwardFlops([{ name: "w", macs: 100 }], { w: 0.5 }); // 100
 * ```
 */
export function forwardFlops(
  weights: readonly WeightFlops[],
  density: Readonly<Record<string, number>> = {},
): number {
  return weights.reduce((s, w) => s + 2 * w.macs * (density[w.name] ?? 1), 0);
}

/** Training-FLOPs model of a method (spec §9). */
export type FlopsModel = "dense" | "sparse" | "snfs" | "rigl" | "pruning";

/**
 * Training FLOPs of one token at forward costs `fS` (current densities) and `fD` (dense), for
 * a step that is (`updateStep`) or is not a connectivity update.
 *
 * @example
 * ```ts
 * import { trainFlopsPerToken } from "./flops.ts";
 * trainFlopsPerToken("snfs", 33, 100, false); // 166
 * ```
 */
export function trainFlopsPerToken(
  model: FlopsModel,
  fS: number,
  fD: number,
  updateStep: boolean,
): number {
  switch (model) {
    case "dense":
      return 3 * fD;
    case "snfs":
      return 2 * fS + fD;
    case "rigl":
      return 3 * fS + (updateStep ? fD - fS : 0);
    case "sparse":
    case "pruning":
      return 3 * fS;
  }
}

/**
 * Adds what a connectivity update costs beyond the step it follows, for `tokens` tokens of that
 * step (RigL's dense gradient: f_D − f_S per token; nothing for the other models); pure.
 *
 * @example
 * ```ts
 * import { addUpdateFlops } from "./flops.ts";
 * const t = { tokens: 10, train: 990, denseTrain: 3000 };
 * addUpdateFlops(t, { tokens: 10, model: "rigl", fS: 33, fD: 100 }).train; // 1660
 * ```
 */
export function addUpdateFlops(
  totals: FlopsTotals,
  step: { tokens: number; model: FlopsModel; fS: number; fD: number },
): FlopsTotals {
  const extra = trainFlopsPerToken(step.model, step.fS, step.fD, true) -
    trainFlopsPerToken(step.model, step.fS, step.fD, false);
  return { ...totals, train: totals.train + extra * step.tokens };
}

/** Accumulated FLOPs of a run; plain data, stored in checkpoints. */
export interface FlopsTotals {
  tokens: number;
  /** Training FLOPs of the method. */
  train: number;
  /** Training FLOPs the full dense model would have spent on the same tokens (3·f_D each). */
  denseTrain: number;
}

/**
 * Adds `tokens` trained at the given costs; returns the new totals (pure).
 *
 * @example
 * ```ts
 * import { addTrainFlops } from "./flops.ts";
 * let t = { tokens: 0, train: 0, denseTrain: 0 };
 * t = addTrainFlops(t, { tokens: 10, model: "sparse", fS: 33, fD: 100, fRef: 100 });
 * t.train / t.denseTrain; // 0.33
 * ```
 */
export function addTrainFlops(
  totals: FlopsTotals,
  step: {
    tokens: number;
    model: FlopsModel;
    fS: number;
    fD: number;
    /** Dense forward FLOPs of the reference (full-width) model. */
    fRef: number;
    updateStep?: boolean;
  },
): FlopsTotals {
  const per = trainFlopsPerToken(step.model, step.fS, step.fD, step.updateStep ?? false);
  return {
    tokens: totals.tokens + step.tokens,
    train: totals.train + per * step.tokens,
    denseTrain: totals.denseTrain + 3 * step.fRef * step.tokens,
  };
}
