/**
 * PyTorch's `ReduceLROnPlateau(mode="min", factor, patience, threshold=0, cooldown=0)`, stepped
 * once per epoch on the validation loss, as the Selfish-RNN code's Table 3 Adam uses it
 * (factor 0.5, patience 2; spec §5.5). It is a pure function of the run's validation history,
 * so a resumed run's learning rate needs no state of its own.
 *
 * @module
 */

/** The schedule's settings; `factor` 0 = off. */
export interface PlateauSchedule {
  factor: number;
  patience: number;
}

/**
 * The learning-rate multiplier after the epochs whose validation losses are `history`: the
 * epoch-end losses seen so far; an epoch that does not beat the best one so far is a bad one,
 * and more than `patience` bad ones in a row multiply the rate by `factor` and start counting
 * again.
 *
 * @example
 * ```ts
 * import { plateauScale } from "./lr_plateau.ts";
 * plateauScale([5, 4, 4, 4, 4], { factor: 0.5, patience: 2 }); // 0.5
 * ```
 */
export function plateauScale(history: readonly number[], s: PlateauSchedule): number {
  if (s.factor === 0) return 1;
  let best = Infinity, bad = 0, scale = 1;
  for (const v of history) {
    if (v < best) {
      best = v;
      bad = 0;
    } else if (++bad > s.patience) {
      scale *= s.factor;
      bad = 0;
    }
  }
  return scale;
}
