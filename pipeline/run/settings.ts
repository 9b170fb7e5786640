/**
 * The policies a run config implies for its stages: the connectivity stage's settings and the
 * optimizer's (including what it keeps for inactive weights). Pure functions of the config.
 *
 * @module
 */

import type { TrainConfig } from "../config.ts";
import type { InactiveState, OptimizerSettings } from "../optimizer.ts";
import type { SparsitySettings } from "../sparsity/method.ts";
import { sparsityMethod } from "../sparsity/stage.ts";
import { plateauScale } from "../lr_plateau.ts";

/**
 * The connectivity stage's settings from a run config.
 *
 * @example
 * ```ts ignore
 * sparsitySettings(config).method; // "selfish"
 * ```
 */
export function sparsitySettings(config: TrainConfig): SparsitySettings {
  return {
    method: config.method,
    density: config.density,
    init: config.sparseInit,
    deathRate: config.deathRate,
    deathRateMin: config.deathRateMin,
    redistribution: config.redistribution,
    growth: config.growth,
    pruneStart: config.pruneStart,
    pruneEnd: config.pruneEnd,
    issLambda: config.issLambda,
    issThreshold: config.issThreshold,
    seed: config.seed >>> 0,
  };
}

/**
 * The learning rate of the epoch after those whose validation losses are `history`: `--lr`,
 * reduced on plateaus when `--lr-plateau` is set.
 *
 * @example
 * ```ts ignore
 * epochLr({ ...config, lr: 1e-3, lrPlateau: 0.5 }, [5, 4, 4, 4, 4]); // 5e-4
 * ```
 */
export function epochLr(
  config: Pick<TrainConfig, "lr" | "lrPlateau" | "lrPlateauPatience">,
  history: readonly number[],
): number {
  return config.lr *
    plateauScale(history, { factor: config.lrPlateau, patience: config.lrPlateauPatience });
}

/**
 * The optimizer's settings at learning rate `lr` (a window's scaled rate).
 *
 * @example
 * ```ts ignore
 * optimizerSettings(config, config.lr * window.lrScale);
 * ```
 */
export function optimizerSettings(config: TrainConfig, lr: number = config.lr): OptimizerSettings {
  return {
    kind: config.optimizer,
    lr,
    weightDecay: config.weightDecay,
    momentum: config.momentum,
    clip: config.clip,
    adam: { beta1: config.adamBeta1, beta2: 0.999, eps: 1e-9 },
    inactiveState: inactiveStatePolicy(config),
    asgdEta: config.asgdEta,
  };
}

/**
 * The optimizer-state policy of a run (`optimizer.ts`): `--inactive-state`, or by default what
 * the released code does where the storage allows it: Adam's moments `keep` in masked storage
 * (measured on PTB, 2×200 LSTM, 200 steps, two seeds: Selfish-RNN 1.07× and 1.09× static's
 * validation perplexity with kept moments, 1.20–1.25× with fresh ones); true sparse storage has
 * no inactive gradients, so `clear`; methods that grow by dense momentum (SNFS) `accumulate`.
 *
 * @example
 * ```ts ignore
 * inactiveStatePolicy({ ...DEFAULTS, optimizer: "adam" }); // "keep"
 * ```
 */
export function inactiveStatePolicy(config: TrainConfig): InactiveState {
  if (config.inactiveState !== "auto") return config.inactiveState;
  if (config.storage === "csr") return "clear";
  if (config.optimizer === "adam") return "keep";
  return sparsityMethod(config.method).denseOptimizerState ? "accumulate" : "clear";
}
