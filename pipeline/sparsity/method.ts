/**
 * The connectivity-update stage's contract. A method is one file in `methods/` exporting a
 * {@linkcode SparsityMethod}: its initial topology rule and its update rule, written with the
 * ops of `ops.ts` so it reads like the spec. The stage (`stage.ts`) owns when updates run, the
 * scratch, the schedule value and the bookkeeping; methods own only their rule.
 *
 * @module
 */

import type { OptimizerState } from "../optimizer.ts";
import type { OpsContext, SparseTensor } from "./ops.ts";
import type { RunPlan } from "../plan.ts";
import type { Gpu } from "../../kernels/runtime/runtime.ts";
import type { Param } from "../../models/params.ts";
import type { UnitLayer } from "../../models/model.ts";

/** Every method of the paper's tables (spec §4, §7). */
export type MethodName =
  | "selfish"
  | "set"
  | "dsr"
  | "snfs"
  | "rigl"
  | "static-uniform"
  | "static-er"
  | "small-dense"
  | "dense"
  | "gmp"
  | "iss";

/** All method names, in the order of the paper's Table 2. */
export const METHOD_NAMES: readonly MethodName[] = [
  "dense",
  "small-dense",
  "static-er",
  "static-uniform",
  "gmp",
  "iss",
  "set",
  "dsr",
  "snfs",
  "rigl",
  "selfish",
];

/** How Selfish-RNN splits its regrowth over an LSTM tensor's gates (spec §4.4, §8). */
export type Redistribution = "uniform" | "none" | "magnitude" | "momentum" | "gradient";

/**
 * Where Selfish-RNN regrows inside each gate's share: uniformly at random (the paper's rule) or
 * at the largest dense |∇W| (RigL's rule; the random-vs-gradient growth ablation, spec §10.2).
 */
export type Growth = "random" | "gradient";

/** Settings of the sparse-training stage (from `TrainConfig`). */
export interface SparsitySettings {
  method: MethodName;
  /** Global density of the sparse tensors (fraction of weights kept). */
  density: number;
  /** How the density is spread over tensors at initialisation. */
  init: "uniform" | "er";
  /** Initial removal rate p0 of the cosine schedule (spec §4.2). */
  deathRate: number;
  /** Final removal rate p_min (spec §4.2: 0.005). */
  deathRateMin: number;
  /** Selfish-RNN's cell-weight redistribution (spec §4.4, Table 5). */
  redistribution: Redistribution;
  /** Selfish-RNN's growth rule; optional: checkpoints written before it lack it (random). */
  growth?: Growth;
  /** Gradual pruning window as fractions of training (spec §7.8). */
  pruneStart: number;
  pruneEnd: number;
  /**
   * ISS (spec §7.7): the group-Lasso strength λ, and the removal threshold: a unit goes when its
   * group norm falls below this fraction of the median norm of its layer's live units.
   * Optional: checkpoints written before ISS lack them.
   */
  issLambda?: number;
  issThreshold?: number;
  /** Seed of the topology randomness (initial masks, random growth). */
  seed: number;
}

/** What an update rule sees. */
export interface UpdateInput {
  ops: OpsContext;
  tensors: SparseTensor[];
  /** Optimizer steps taken so far, and the run's planned length (`plan.ts`). */
  step: number;
  totalSteps: number;
  /** The cosine removal rate at `step`. */
  removalRate: number;
  settings: SparsitySettings;
  /** 0-based index of this update (random streams are derived from it). */
  update: number;
  /** Method scalars carried between updates (DSR's threshold, SNFS's adjustment, ...). */
  scalars: Record<string, number>;
  optimizer: OptimizerState;
  /** The model's hidden units by layer, for structured methods (ISS); else absent. */
  units?: readonly UnitLayer[];
}

/** What a training-objective term sees (ISS's group Lasso): the model and its units. */
export interface PenaltyInput {
  gpu: Gpu;
  params: readonly Param[];
  units: readonly UnitLayer[];
  settings: SparsitySettings;
}

/** What an update did, for logs and tests. */
export interface UpdateReport {
  removed: number;
  grown: number;
  /** Scalars to carry to the next update (replaces `UpdateInput.scalars`). */
  scalars?: Record<string, number>;
}

/** One sparse-training method. */
export interface SparsityMethod {
  name: MethodName;
  /** One line for `--help` and the docs. */
  summary: string;
  /** Masks at all? (`dense` and `small-dense`: no.) */
  sparse: boolean;
  /** Initial density of every sparse tensor: the target (sparse from scratch) or 1 (gmp). */
  startsDense: boolean;
  /** Does the topology ever change? */
  dynamic: boolean;
  /**
   * Does the method read the optimizer state of inactive weights (SNFS's momentum growth)? Then
   * that state must keep accumulating while they are inactive (`optimizer.ts` InactiveState).
   */
  denseOptimizerState?: boolean;
  /** Initial distribution over tensors, when the method fixes it (static-er); else `--sparse-init`. */
  init?: "uniform" | "er";
  /** A dense model narrowed to the sparse models' parameter count (small-dense, spec §7.2). */
  matchesSparseCount?: boolean;
  /** Why the method cannot train with true sparse (CSR) storage; absent when it can. */
  csrUnsupported?: string;
  /** Does `--growth` choose where it regrows (Selfish-RNN)? Others have their rule built in. */
  growthChoice?: boolean;
  /** Training FLOPs model of spec §9 (Table 8). */
  flops: "sparse" | "dense" | "snfs" | "rigl" | "pruning";
  /**
   * Structured: the method removes whole hidden units, so it needs the family's
   * `hiddenUnits` (ISS). Checked before training.
   */
  structured?: boolean;
  /**
   * A term of the training objective: records its gradient into the parameters' gradients
   * after each step's backward pass, before clipping and the optimizer step (ISS's group Lasso).
   */
  penalty?: (input: PenaltyInput) => void;
  /** The update rule; absent for static methods. */
  update?: (input: UpdateInput) => Promise<UpdateReport>;
  /**
   * May a model whose sparse tensors hold these counts, validated after `at.step` steps, be the
   * run's best (the one tested)? Absent: always. Gradual pruning passes through denser models
   * than its budget; ISS only has its final structure after its last update (`at.lastUpdate`).
   */
  mayBeBest?: (
    tensors: readonly { nnz: number; numel: number }[],
    settings: SparsitySettings,
    at: { step: number; lastUpdate: number },
  ) => boolean;
  /** Why the method cannot follow `plan` (a sentence naming the fix), or `null`. */
  planProblem?: (settings: SparsitySettings, plan: RunPlan) => string | null;
}

/**
 * Random stream of growth in tensor `tensorIndex` at update `update` (distinct for every pair,
 * and disjoint from the initial masks' streams, which use `update = -1`).
 *
 * @example
 * ```ts
 * import { growthStream } from "./method.ts";
 * growthStream(0, 3); // 1027
 * ```
 */
export function growthStream(update: number, tensorIndex: number): number {
  if (tensorIndex < 0 || tensorIndex >= 1024 || update < -1) {
    throw new RangeError(`growthStream: update ${update}, tensor ${tensorIndex} out of range`);
  }
  return (update + 1) * 1024 + tensorIndex;
}
