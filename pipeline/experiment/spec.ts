/**
 * An experiment as data: a table of the paper is a list of blocks, each a model (as the table
 * trains it at each scale) and the grid run on it, methods × row variants × optimizers ×
 * densities (× seeds, a command-line choice). Settings are written with the flag names of
 * `deno task train` (as the families' presets are), so a block reads like the command a
 * researcher would type, and every run's config goes through `trainConfig`'s checks.
 * {@linkcode planSpec} turns a spec, a scale and the command line's overrides into the runs
 * (pure); `tables.ts` holds the paper's tables.
 *
 * @module
 */

import type { FlagValue } from "../../models/model.ts";
import { type OptimizerName, type TrainConfig, trainConfig } from "../config.ts";
import type { MethodName } from "../sparsity/method.ts";
import { METHODS } from "../sparsity/methods/mod.ts";
import { csrUnsupported, type Storage } from "../sparsity/storage.ts";

/** `paper`: the paper's configuration (for a GPU); `small`: sizes and lengths that run here. */
export type Scale = "paper" | "small";
export const SCALES: readonly Scale[] = ["paper", "small"];

/** The corpus a block trains on; `--data DIR` holds it (or `DIR/<corpus>/`). */
export type CorpusName = "ptb" | "wikitext-2";

/** Settings by flag name (`"death-rate": 0.8`), as presets and `--config` files write them. */
export type Settings = Readonly<Record<string, FlagValue | readonly number[]>>;

/** A model as a table trains it at one scale. */
export interface ModelSetup {
  /** The table's name for it ("stacked LSTM"). */
  label: string;
  corpus: CorpusName;
  /** A family preset and the settings over it (model, sizes, schedule, protocol). */
  settings: Settings;
  /** Settings of each optimizer this model is trained with (lr, clip, ...), over `settings`. */
  optimizers: Readonly<Partial<Record<OptimizerName, Settings>>>;
  /** Settings of a method on this model (ISS's λ), over the optimizer's. */
  methods?: Readonly<Partial<Record<MethodName, Settings>>>;
  /** Where the settings come from and which are inferred (spec sections). */
  source: string;
}

/** A named change of a row's settings: an ablation, a regrowth split. */
export interface RowVariant {
  /** Directory-safe name (`no-redistribution`). */
  key: string;
  /** The table's row label ("w/o cell-weight redistribution"). */
  label: string;
  settings: Settings;
  /** The row's optimizer instead of the block's (Table 4's "w/o SNT-ASGD"). */
  optimizer?: OptimizerName;
}

/** One block of a table: a model and the grid trained on it. */
export interface TableBlock {
  /** The block's name in run directories (`lstm`, `onlstm-1300`). */
  key: string;
  model: Readonly<Record<Scale, ModelSetup>>;
  methods: readonly MethodName[];
  /** Optimizers of the block at each scale. */
  optimizers: Readonly<Record<Scale, readonly OptimizerName[]>>;
  /** Densities of the sparse rows; default: the model's. */
  densities?: readonly number[];
  /** Row variants; default: the method's plain row. */
  variants?: readonly RowVariant[];
}

/** A table of the paper. */
export interface ExperimentSpec {
  name: string;
  /** One line for `list` and the results' title. */
  title: string;
  blocks: readonly TableBlock[];
  /** What the paper found (printed as context, never checked). */
  paperContext: string;
  /** A table that trains nothing (Table 1): its page. */
  page?: string;
}

/** What the command line changes in every run (absent = the spec's). */
export interface SpecOverrides {
  /** Config fields over every run's (e.g. `{ epochs: 2, maxSteps: 40 }`). */
  config: Partial<TrainConfig>;
  /** Runs per row, seeds `seed`, `seed + 1`, ... (`seed` from `config` or the model's). */
  seeds: number;
  /** Subsets of the spec's methods, optimizers and blocks (`null` = all). */
  methods: readonly MethodName[] | null;
  optimizers: readonly OptimizerName[] | null;
  blocks: readonly string[] | null;
  /** Sparse weights truly sparse where the method allows it (else masked). */
  storage: Storage | null;
  /** The corpus directory of each corpus (`null` = the synthetic corpus). */
  data: (corpus: CorpusName) => string | null;
}

/** The overrides of a plain command line: none. */
export const NO_OVERRIDES: SpecOverrides = {
  config: {},
  seeds: 1,
  methods: null,
  optimizers: null,
  blocks: null,
  storage: null,
  data: () => null,
};

/** One run of an experiment and its place in the table. */
export interface PlannedRun {
  /** Its position in the table's grid (what `--run-index` names). */
  index: number;
  /** Its directory name in the experiment's (`lstm-selfish-ntasgd-seed1111`). */
  key: string;
  block: string;
  /** The model's label in the table. */
  model: string;
  corpus: CorpusName;
  method: MethodName;
  /** The row variant's key and label (`null`: the method's plain row). */
  variant: { key: string; label: string } | null;
  optimizer: OptimizerName;
  /**
   * The row's density: the sparse methods' target, which small dense matches in parameters,
   * and 1 for the dense model (whose config still carries the table's target, unused).
   */
  density: number;
  config: TrainConfig;
}

function rowDensity(method: MethodName, density: number): number {
  const m = METHODS[method];
  return m.sparse || m.matchesSparseCount ? density : 1;
}

/** Bad experiment name, scale or option; the CLI prints the message and exits with code 2. */
export class ExperimentError extends Error {
  override name = "ExperimentError";
}

/** The entries of `all` that `chosen` keeps, in `all`'s order; throws on strays. */
function chosenSubset<T extends string>(
  flag: string,
  chosen: readonly T[] | null,
  all: readonly T[],
  experiment: string,
): T[] {
  if (chosen === null) return [...all];
  const stray = chosen.filter((m) => !all.includes(m));
  if (stray.length) {
    throw new ExperimentError(
      `--${flag}: ${stray.join(", ")} not part of ${experiment} (its ${flag}: ${all.join(", ")})`,
    );
  }
  return all.filter((m) => chosen.includes(m));
}

const union = <T>(lists: readonly (readonly T[])[]) => [...new Set(lists.flat())];

/**
 * The run config of one cell of a block: the model's settings < the optimizer's < the method's
 * < the variant's < the cell's method, optimizer, density and seed (through `trainConfig`'s
 * checks) < the command line's config fields.
 */
function cellConfig(
  setup: ModelSetup,
  cell: {
    method: MethodName;
    optimizer: OptimizerName;
    variant: RowVariant | null;
    density: number | null;
    seed: number | null;
  },
  overrides: SpecOverrides,
  where: string,
): TrainConfig {
  const opt = setup.optimizers[cell.optimizer];
  if (!opt) throw new ExperimentError(`${where}: no settings for optimizer ${cell.optimizer}`);
  let config: TrainConfig;
  try {
    config = trainConfig({
      ...setup.settings,
      optimizer: cell.optimizer,
      ...opt,
      ...setup.methods?.[cell.method],
      ...cell.variant?.settings,
      method: cell.method,
      ...(cell.density !== null ? { density: cell.density } : {}),
      ...(cell.seed !== null ? { seed: cell.seed } : {}),
    });
  } catch (e) {
    throw new ExperimentError(`${where}: ${(e as Error).message}`);
  }
  return {
    ...config,
    ...overrides.config,
    ...(cell.seed !== null ? { seed: cell.seed } : {}),
    data: overrides.data(setup.corpus),
    storage: overrides.storage === "csr" && !csrUnsupported(cell.method, config.growth)
      ? "csr"
      : "masked",
    summary: null,
    save: null,
    log: null,
    resume: null,
  };
}

/**
 * The runs of `spec` at `scale` under `overrides`, in table order (blocks, methods, variants,
 * optimizers, densities, seeds). Pure.
 *
 * @example
 * ```ts
 * import { NO_OVERRIDES, planSpec } from "./spec.ts";
 * import { TABLES } from "./tables.ts";
 * planSpec(TABLES.table3, "small", NO_OVERRIDES).length; // 15
 * ```
 */
export function planSpec(
  spec: ExperimentSpec,
  scale: Scale,
  overrides: SpecOverrides,
): PlannedRun[] {
  const keys = chosenSubset(
    "models",
    overrides.blocks,
    union([spec.blocks.map((b) => b.key)]),
    spec.name,
  );
  const blocks = spec.blocks.filter((b) => keys.includes(b.key));
  const methods = chosenSubset(
    "methods",
    overrides.methods,
    union(spec.blocks.map((b) => b.methods)),
    spec.name,
  );
  const optimizers = chosenSubset(
    "optimizers",
    overrides.optimizers,
    union(spec.blocks.map((b) => [
      ...b.optimizers[scale],
      ...(b.variants ?? []).flatMap((v) => v.optimizer ? [v.optimizer] : []),
    ])),
    spec.name,
  );
  const runs: PlannedRun[] = [];
  for (const block of blocks) {
    const setup = block.model[scale];
    const variants: (RowVariant | null)[] = block.variants ? [...block.variants] : [null];
    const densities: (number | null)[] = block.densities ? [...block.densities] : [null];
    for (const method of block.methods.filter((m) => methods.includes(m))) {
      for (const variant of variants) {
        const rowOptimizers = variant?.optimizer ? [variant.optimizer] : block.optimizers[scale];
        for (const optimizer of rowOptimizers.filter((o) => optimizers.includes(o))) {
          for (const density of densities) {
            const where = `${spec.name} --scale ${scale}, ${block.key} ${method}` +
              (variant ? ` (${variant.key})` : "") + ` ${optimizer}`;
            const base = cellConfig(
              setup,
              { method, optimizer, variant, density, seed: null },
              overrides,
              where,
            );
            const seed0 = overrides.config.seed ?? base.seed;
            for (let s = 0; s < overrides.seeds; s++) {
              const config = s === 0 && overrides.config.seed === undefined
                ? base
                : { ...base, seed: seed0 + s };
              const key = [
                block.key,
                method,
                ...(variant ? [variant.key] : []),
                optimizer,
                ...(density !== null ? [`d${density}`] : []),
                `seed${config.seed}`,
              ].join("-");
              runs.push({
                index: runs.length,
                key,
                block: block.key,
                model: setup.label,
                corpus: setup.corpus,
                method,
                variant: variant ? { key: variant.key, label: variant.label } : null,
                optimizer,
                density: rowDensity(method, config.density),
                config,
              });
            }
          }
        }
      }
    }
  }
  const seen = new Set<string>();
  for (const r of runs) {
    if (seen.has(r.key)) throw new Error(`${spec.name}: two runs share the directory ${r.key}`);
    seen.add(r.key);
  }
  return runs;
}
