/**
 * The model contract: what the pipeline knows of a model family, and nothing more. A family
 * (stacked LSTM, RHN, ...) is one folder under `models/` exporting a {@linkcode ModelFamily};
 * the training loop, the connectivity stage, the FLOPs accounting, checkpoints, the experiment
 * harness and the benchmarks only ever use this interface, so adding a model adds files.
 *
 * - Settings: a run's shared model settings ({@linkcode ModelSettings}: sizes, dropouts, tying)
 *   plus the family's own flags. `config()` turns them into the family's JSON config, which is
 *   the model's identity in checkpoints (a resume compares it field by field).
 * - Parameters: `paramSpecs(config)` with PyTorch names and row blocks (`params.ts`).
 * - Costs: `weightMacs(config)`, forward multiply-accumulates per token of each weight tensor,
 *   from which the FLOPs accounting of spec §9 is computed.
 * - Width: the knob small-dense turns to match a parameter budget (spec §7.2).
 * - Programs: `create()` gives a {@linkcode Model} whose sessions hold the carried state and
 *   every buffer for one batch shape, and record training steps and evaluation passes.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import type { Tensor } from "../kernels/runtime/tensor.ts";
import type { Param, ParamSpec } from "./params.ts";
import type { SparseRoute } from "./weight_ops.ts";
import type { WeightDropConvention } from "./parts/weight_drop.ts";

/** A flag value of a family (`--depth 10`, ...). */
export type FlagValue = number | boolean | string;

/** The model settings every family reads (flags of the same names; each family validates them). */
export interface ModelSettings {
  /** Vocabulary size V (from the data). */
  vocab: number;
  /** Embedding size. */
  emsize: number;
  /** Hidden size (of every layer, unless the family says otherwise). */
  nhid: number;
  nlayers: number;
  /** Dropout on the recurrent stack's output (and, for the stacked LSTM, between layers). */
  dropout: number;
  /** Dropout on hidden states (RHN: the recurrent-input mask, AWD: between layers). */
  dropouth: number;
  /** Dropout on the embedding output (locked, AWD/RHN style). */
  dropouti: number;
  /** Embedding-row dropout: whole words of the embedding matrix, for the lookup only. */
  dropoute: number;
  /** Decoder weight is the embedding tensor. */
  tied: boolean;
  /** DropConnect on the recurrent weights (AWD's WeightDrop). */
  wdrop: number;
  /** How WeightDrop scales the kept weights (`parts/weight_drop.ts`). */
  wdropConvention: WeightDropConvention;
  /** AR and TAR weights of AWD-LSTM's activation regularisers. */
  alpha: number;
  beta: number;
  /** The family's own flags by name (their defaults filled in). */
  flags: Readonly<Record<string, FlagValue>>;
}

/** Kinds of a family flag (parsed and checked by the pipeline's config parser). */
export type FlagKind = "posint" | "int" | "prob" | "unit" | "number" | "bool" | "string";

/** One flag of a family. */
export interface FamilyFlag {
  kind: FlagKind;
  default: FlagValue;
  /** One line for `--help`. */
  help: string;
}

/** Forward multiply-accumulates per token of one weight tensor (spec §9). */
export interface WeightMacs {
  name: string;
  /** Multiply-adds per token when dense (0 for an embedding lookup). */
  macs: number;
}

/** A model setting that a family cannot accept; the message names the flag. */
export class ModelConfigError extends Error {
  override name = "ModelConfigError";
}

/** One window of token ids on the GPU, as a session's `writeBatch` made it. */
export interface ModelBatch {
  T: number;
  B: number;
  input: Tensor<"u32">;
  target: Tensor<"u32">;
}

/** What a training step needs besides the batch. */
export interface StepContext {
  /** Philox seed of the dropout masks (u32). */
  seed: number;
  /** Training steps taken before this one: the dropout masks are a pure function of it. */
  step: number;
  /** How sparse products run on CPU rasterisers (`weight_ops.ts`); default the training route. */
  route?: SparseRoute;
  /**
   * Instrumentation (`bench/train.ts`): called just before each phase's work is recorded. The
   * phases are the family's (`ModelFamily.phases`).
   */
  onPhase?: (phase: string) => void;
}

/**
 * The carried state and buffers of a model for windows of up to `maxT` steps of `B` sequences,
 * bound to one device. Steps record GPU work only; nothing is read back.
 */
export interface ModelSession {
  readonly B: number;
  readonly maxT: number;
  /** Validates a window on the host and writes it into the session's token buffers. */
  writeBatch(window: { T: number; input: Uint32Array; target: Uint32Array }): ModelBatch;
  /**
   * Records forward, mean cross-entropy and backward into every `param.grad` (overwritten);
   * the carried state advances to the end of the window. Returns the per-row loss `[T·B]`.
   */
  step(batch: ModelBatch, ctx: StepContext): Tensor;
  /** Records the forward pass without dropout; returns the per-row loss `[T·B]`. */
  evalLoss(batch: ModelBatch, opts?: { route?: SparseRoute }): Tensor;
  /** Records a reset of the carried state to zero. */
  resetState(): void;
  /** The carried state by checkpoint name (`state.h0`, ...). */
  stateTensors(): Record<string, Tensor>;
  /** Returns every buffer of the session to the pool. */
  release(): void;
}

/** A model on the GPU. */
export interface Model<C = unknown> {
  family: string;
  config: C;
  /** Every tensor once (a tied decoder weight is the embedding's record). */
  params: Param[];
  session(opts: { maxT: number; B: number; training: boolean }): ModelSession;
}

/**
 * The divisor of an evaluation's summed cross-entropy: the number of targets, or the
 * batchified split's rows × columns (one more row per column than there are targets; spec §1).
 */
export type EvalNormalisation = "targets" | "rows";

/**
 * One layer of hidden units, as structured pruning (ISS, spec §7.7) sees it: unit k's group is
 * row k of every gate block of the `rows` tensors (row r belongs to unit `r mod units`) and
 * column k of the `cols` tensors (the weights that read unit k's output); the `biases` follow
 * the rows (entry r to unit `r mod units`) but are not part of the group.
 */
export interface UnitLayer {
  units: number;
  rows: string[];
  cols: string[];
  biases: string[];
}

/** Where a tensor's rows and columns belong: the indices of their unit layers. */
export interface UnitMembership {
  rowsOf?: number;
  colsOf?: number;
}

/**
 * Each member tensor's unit layers, by name: the `rows` tensors (and with `biases`, the biases)
 * by their rows, the `cols` tensors by their columns.
 *
 * @example
 * ```ts
 * import { unitMemberships } from "./model.ts";
 * const layer = { units: 4, rows: ["w"], cols: ["w", "d"], biases: ["b"] };
 * unitMemberships([layer]).get("w"); // { rowsOf: 0, colsOf: 0 }
 * ```
 */
export function unitMemberships(
  units: readonly UnitLayer[],
  opts: { biases?: boolean } = {},
): Map<string, UnitMembership> {
  const out = new Map<string, UnitMembership>();
  units.forEach((layer, l) => {
    const rows = opts.biases ? [...layer.rows, ...layer.biases] : layer.rows;
    for (const name of rows) out.set(name, { ...out.get(name), rowsOf: l });
    for (const name of layer.cols) out.set(name, { ...out.get(name), colsOf: l });
  });
  return out;
}

/**
 * The live units of `layer`, in order, from the 0/1 mask `[R, C]` of its first rows tensor: the
 * units with a live entry in one of their rows (all of them when the tensor has no mask).
 *
 * @example
 * ```ts
 * import { liveUnits } from "./model.ts";
 * const layer = { units: 2, rows: ["w"], cols: [], biases: [] };
 * liveUnits(layer, new Float32Array([0, 0, 1, 0, 0, 0, 0, 1]), 2); // [1]
 * ```
 */
export function liveUnits(
  layer: UnitLayer,
  mask: ArrayLike<number> | undefined,
  cols: number,
): number[] {
  const live = new Array<boolean>(layer.units).fill(mask === undefined);
  if (mask) {
    for (let i = 0; i < mask.length; i++) {
      if (mask[i] !== 0) live[Math.floor(i / cols) % layer.units] = true;
    }
  }
  return live.flatMap((x, k) => (x ? [k] : []));
}

/** One key of a PyTorch state dict and the parameter (by this project's name) it holds. */
export interface StateDictEntry {
  key: string;
  param: string;
}

/**
 * The state dict of `specs` under their own names (`rename` applied), plus `aliases` (a tied
 * decoder's key on the embedding).
 *
 * @example
 * ```ts
 * import { namedStateDict } from "./model.ts";
 * const tied = { key: "decoder.weight", param: "encoder.weight" };
 * namedStateDict([{ name: "encoder.weight" }], [tied]).map((e) => e.key);
 * // ["encoder.weight", "decoder.weight"]
 * ```
 */
export function namedStateDict(
  specs: readonly { name: string }[],
  aliases: readonly StateDictEntry[] = [],
  rename: (name: string) => string = (n) => n,
): StateDictEntry[] {
  return [...specs.map((s) => ({ key: rename(s.name), param: s.name })), ...aliases];
}

/** One model family. */
export interface ModelFamily<C = unknown> {
  /** `--model` value. */
  name: string;
  /** One line for `--help`. */
  summary: string;
  /** Settings of this family's runs over the shared defaults, by flag name. */
  defaults: Readonly<Record<string, FlagValue>>;
  /** Named configurations (`--preset`), by flag name, like config files. */
  presets: Readonly<Record<string, Readonly<Record<string, FlagValue>>>>;
  /** The family's own flags. */
  flags: Readonly<Record<string, FamilyFlag>>;
  /** Phases of a training step, in recording order (for `StepContext.onPhase`). */
  phases: readonly string[];
  /** What an evaluation's summed cross-entropy is divided by (`pipeline/run/evaluation.ts`). */
  evalNormalisation: EvalNormalisation;
  /** The vocabulary size the bench's synthetic ids use (default PTB's 10,000). */
  benchVocab?: number;
  /** The preset `deno task bench train` times (a size that runs on a CPU). */
  benchPreset: string;
  /** The family's config from run settings; throws {@linkcode ModelConfigError}. */
  config(settings: ModelSettings): C;
  paramSpecs(config: C): ParamSpec[];
  weightMacs(config: C): WeightMacs[];
  /**
   * Cells run one after another per time step (stacked layers; the RHN's micro-layers): the
   * launches a step cannot batch over time, which bound small models on devices where a launch
   * costs more than its arithmetic (`pipeline/experiment/cost.ts`).
   */
  cellsPerTimestep(config: C): number;
  /**
   * The reference implementation's state-dict keys for `config` (spec §2, §14) and the parameter
   * each holds: every parameter once, a tied decoder once more under its own key.
   */
  stateDict(config: C): StateDictEntry[];
  /** The hidden units structured pruning (ISS) removes, by layer; absent where not defined. */
  hiddenUnits?(config: C): UnitLayer[];
  /**
   * The config of the same model with `sizes[l]` units in layer l (the smaller dense model ISS
   * leaves), or `null` when the family cannot hold those sizes; with `hiddenUnits`.
   */
  withHiddenSizes?(config: C, sizes: readonly number[]): C | null;
  /** Shapes of the output head's buffers for up to `rows` rows (the dry run reports their bytes). */
  headBuffers(config: C, rows: number, training: boolean): Record<string, number[]>;
  /** The width small-dense shrinks, and the config at another width. */
  width(config: C): number;
  withWidth(config: C, width: number): C;
  /** Allocates the model and records its initialisation from `seed`. */
  create(gpu: Gpu, config: C, seed: number): Model<C>;
}

/**
 * A family of any config type, as registries hold them (methods are bivariant in their
 * parameters, so every `ModelFamily<C>` is one).
 */
export type AnyModelFamily = ModelFamily<unknown>;

/**
 * Row blocks of `count` equal parts of `rows` (LSTM `[H, H, H, H]`, RHN `[H, H]`).
 *
 * @example
 * ```ts
 * import { equalBlocks } from "./model.ts";
 * equalBlocks(8, 4); // [2, 2, 2, 2]
 * ```
 */
export function equalBlocks(rows: number, count: number): number[] {
  if (!Number.isInteger(count) || count < 1 || rows % count !== 0) {
    throw new RangeError(`equalBlocks: ${rows} rows do not split into ${count} equal blocks`);
  }
  return Array.from({ length: count }, () => rows / count);
}
