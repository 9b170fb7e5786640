/**
 * The growth rules a method with `growthChoice` picks from (`--growth`), as data: where a
 * tensor regrows its per-block counts, and what the rule costs (its training-FLOPs model, and
 * whether true sparse storage can run it). Selfish-RNN grows at random (the paper); `gradient`
 * grows at the largest dense |∇W| of the last minibatch inside each gate's share, RigL's rule,
 * for the random-vs-gradient growth ablation (spec §10.2).
 *
 * @module
 */

import type { Growth, SparsityMethod } from "./method.ts";
import { growByScore, growRandom, type OpsContext, type SparseTensor } from "./ops.ts";
import type { FlopsModel } from "./flops.ts";

/** One growth rule. */
export interface GrowthRule {
  /** Grows `perBlock[g]` inactive positions of block g (one entry: the whole tensor). */
  grow(
    ops: OpsContext,
    t: SparseTensor,
    perBlock: readonly number[],
    seed: number,
    stream: number,
  ): void;
  /** The training-FLOPs model the rule imposes (spec §9), replacing the method's. */
  flops?: FlopsModel;
  /** Why true sparse (CSR) storage cannot run the rule; absent when it can. */
  csrUnsupported?: string;
}

/** Every growth rule, by `--growth` name. */
export const GROWTH_RULES: Readonly<Record<Growth, GrowthRule>> = {
  random: {
    grow: (ops, t, perBlock, seed, stream) => growRandom(ops, t, perBlock, seed, stream),
  },
  gradient: {
    grow: (ops, t, perBlock) => growByScore(ops, t, perBlock, t.param.grad),
    // the dense gradient at an update step costs what RigL's does
    flops: "rigl",
    csrUnsupported: "gradient growth reads the dense gradient, which true sparse training " +
      "never computes",
  },
};

/** The `--growth` names. */
export const GROWTHS: readonly Growth[] = Object.keys(GROWTH_RULES) as Growth[];

/**
 * `method` as it runs with `growth`: a chosen rule's costs replace the method's own. Methods
 * without `growthChoice` are returned as they are (their rule is built in).
 *
 * @example
 * ```ts ignore
 * withGrowth(METHODS.selfish, "gradient").flops; // "rigl"
 * ```
 */
export function withGrowth(method: SparsityMethod, growth: Growth = "random"): SparsityMethod {
  if (!method.growthChoice) return method;
  const rule = GROWTH_RULES[growth];
  return {
    ...method,
    flops: rule.flops ?? method.flops,
    csrUnsupported: rule.csrUnsupported ?? method.csrUnsupported,
  };
}
