/**
 * Run configuration of `deno task train`: defaults < the model family's defaults < `--preset` <
 * `--config FILE.json` < flags. Flags are named as in the PyTorch word-language-model example
 * and the Selfish-RNN code, in kebab-case; a config file and a family's presets use the same
 * names as keys. The family (`--model`, or the preset's) adds its own flags and validates its
 * settings (`models/model.ts`). Unknown names and bad values are errors that name the flag (or
 * file and key) and what was expected.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Growth,
  METHOD_NAMES,
  type MethodName,
  type Redistribution,
} from "./sparsity/method.ts";
import { GROWTHS } from "./sparsity/growth.ts";
import { csrUnsupported, type Storage } from "./sparsity/storage.ts";
import { METHODS } from "./sparsity/methods/mod.ts";

import type { AsgdEta, OptimizerName } from "./optimizer.ts";
import { MODEL_FAMILIES, modelFamily } from "../models/families.ts";
import { WEIGHT_DROP_CONVENTIONS, type WeightDropConvention } from "../models/parts/weight_drop.ts";
import {
  type AnyModelFamily,
  type FlagValue,
  ModelConfigError,
  type ModelSettings,
} from "../models/model.ts";
export type { OptimizerName };

/** Everything a training run needs to know. */
export interface TrainConfig {
  /** Directory with train.txt/valid.txt/test.txt; `null` trains on the synthetic corpus. */
  data: string | null;
  /** Map valid/test tokens missing from train to `<unk>` instead of failing. */
  unk: boolean;
  /** Model family (`--model`, `models/families.ts`). */
  model: string;
  /** The family's own flags by name (its defaults filled in). */
  modelFlags: Record<string, FlagValue>;
  emsize: number;
  nhid: number;
  nlayers: number;
  lr: number;
  clip: number;
  epochs: number;
  batchSize: number;
  bptt: number;
  /**
   * AWD-LSTM's variable-length windows (`--variable-bptt`, spec §2.3): per step a length around
   * `bptt` (or `bptt/2` with probability 0.05), the step's lr scaled by length / bptt.
   */
  variableBptt: boolean;
  /** Longest variable window (`--bptt-cap`; `null` = bptt + 40, AWD's default). */
  bpttCap: number | null;
  dropout: number;
  /** AWD/RHN dropouts: hidden, input (locked) and embedding rows (`models/model.ts`). */
  dropouth: number;
  dropouti: number;
  dropoute: number;
  /** AWD devices: DropConnect on recurrent weights, AR and TAR weights (`models/model.ts`). */
  wdrop: number;
  /** How WeightDrop scales the kept weights (`models/parts/weight_drop.ts`). */
  wdropConvention: WeightDropConvention;
  alpha: number;
  beta: number;
  tied: boolean;
  seed: number;
  optimizer: OptimizerName;
  momentum: number;
  /**
   * Adam's β1 (`--adam-beta1`): PyTorch's 0.9 by default; the Selfish-RNN code's Table 3 Adam
   * uses 0 (spec §5.5), as the experiment harness does.
   */
  adamBeta1: number;
  weightDecay: number;
  /**
   * ReduceLROnPlateau on the epoch-end validation loss (`--lr-plateau F`, patience
   * `--lr-plateau-patience N`): the Selfish-RNN code's Table 3 Adam halves its rate after 2
   * epochs without improvement (spec §5.5); 0 = a constant rate (`pipeline/lr_plateau.ts`).
   */
  lrPlateau: number;
  lrPlateauPatience: number;
  /** NT-ASGD's non-monotone interval n (spec §5.1). */
  nonmono: number;
  /** SNT-ASGD's step size when the lr changes per step (`optimizer.ts` AsgdEta). */
  asgdEta: AsgdEta;
  /**
   * Epochs (1-based) after which SNT-ASGD's averaging restarts, if it has started (the
   * ON-LSTM script's fine-tuning at 500 and 1000; spec §5.4).
   */
  asgdRestarts: number[];
  /** Batch size of the validation passes (and of the test, unless `testBatchSize` is set). */
  evalBatchSize: number;
  /**
   * Gradient accumulation (`--small-batch-size`, AWD-LSTM-MoS's `small_batch_size`): each batch
   * runs as `batchSize / smallBatchSize` column slices, each with its own carried state and
   * dropout masks, their gradients summed (each slice's mean loss scaled by its share) before
   * one clip and one optimizer step. `null` = the whole batch at once.
   */
  smallBatchSize: number | null;
  /** Batch size of the test pass (`--test-batch-size`; the ON-LSTM script's 1); `null` = eval's. */
  testBatchSize: number | null;
  /**
   * The run's planned length in steps when shorter than `epochs` epochs; every schedule spans
   * it (`pipeline/plan.ts`). `null` = all epochs.
   */
  maxSteps: number | null;
  /** Steps per epoch (validation, per-epoch updates, NT-ASGD's trigger); `null` = one pass. */
  epochSteps: number | null;
  /**
   * Stop after this many steps, save, and return; a resume continues on the same plan. It
   * interrupts the run without changing it (unlike `maxSteps`); 0 saves the initial state.
   * `null` = run to the end.
   */
  stopAfter: number | null;
  /**
   * Epoch-end validations use the first this many tokens of the validation set (the best
   * weights are validated on all of it at the end); `null` = all of it every time.
   */
  validTokens: number | null;
  /** Training steps between loss readbacks (each readback costs a GPU sync). */
  logInterval: number;
  log: string | null;
  summary: string | null;
  save: string | null;
  resume: string | null;
  /**
   * Start from the weights (and masks) of a model file (`--init-from`, safetensors as
   * `deno task export` writes them or with the same keys), instead of the seed's initialisation.
   */
  initFrom: string | null;
  adapter: string | null;
  variant: string | null;
  /** Sparse-training method (spec §4, §7); `dense` trains the dense model. */
  method: MethodName;
  /** Fraction of each sparse tensor's weights kept (`--density`, or `--sparsity` = 1 − it). */
  density: number;
  /** Initial distribution of the density over tensors (spec §3). */
  sparseInit: "uniform" | "er";
  /** Initial removal rate p0 of the cosine schedule (spec §4.2). */
  deathRate: number;
  /** Final removal rate p_min. */
  deathRateMin: number;
  /** Steps between connectivity updates; 0 = once per epoch (the paper). */
  updateEvery: number;
  /** Selfish-RNN's regrowth split over gates (spec §4.4; Table 5 variants). */
  redistribution: Redistribution;
  /** Where Selfish-RNN regrows inside each gate's share (spec §10.2; `sparsity/growth.ts`). */
  growth: Growth;
  /** Gradual-pruning window, fractions of training (spec §7.8). */
  pruneStart: number;
  pruneEnd: number;
  /** ISS's group-Lasso strength λ and its removal threshold (relative; spec §7.7). */
  issLambda: number;
  issThreshold: number;
  /** Parameters kept dense although sparse by default (names, e.g. `encoder.weight`). */
  denseTensors: string[];
  /** Sparse weights as masked-dense tensors or true sparse CSR (`pipeline/sparsity/storage.ts`). */
  storage: Storage;
  /**
   * Optimizer state of inactive weights (`pipeline/optimizer.ts`); `auto` = the released code's
   * behaviour where the storage allows it (`inactiveStatePolicy` in `train.ts`).
   */
  inactiveState: "auto" | "clear" | "accumulate" | "keep";
}

/** Bad flag, preset or config file; the CLI prints the message and exits with code 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Values used when neither the family, a preset, a config file nor a flag sets them: the
 * stacked LSTM's quick run on the synthetic corpus (the default family's defaults; other
 * families override what they need). Adam converges in far fewer steps there than SGD
 * (measured: 1.09× vs 1.22× the optimal perplexity after 234 steps on a 40-word corpus). On the
 * 201-word default corpus Adam's β1 decides it: 64 units at lr 0.02 reached 1.185× after 2
 * epochs with β1 = 0 (the Table 3 Adam) and 1.115× with β1 = 0.9 (43 s on a loaded 2-core
 * machine); 128 units at lr 0.01 and β1 = 0 needed 4 epochs for 1.136×.
 */
/** A family's own flags at their defaults. */
function flagDefaults(name: string): Record<string, FlagValue> {
  const flags = modelFamily(name).flags;
  return Object.fromEntries(Object.entries(flags).map(([k, f]) => [k, f.default]));
}

export const DEFAULTS: Readonly<TrainConfig> = {
  data: null,
  unk: false,
  model: "lstm",
  modelFlags: flagDefaults("lstm"),
  emsize: 64,
  nhid: 64,
  nlayers: 1,
  lr: 0.02,
  clip: 0,
  epochs: 2,
  batchSize: 32,
  bptt: 16,
  variableBptt: false,
  bpttCap: null,
  dropout: 0,
  dropouth: 0,
  dropouti: 0,
  dropoute: 0,
  wdrop: 0,
  wdropConvention: "inverted",
  alpha: 0,
  beta: 0,
  tied: false,
  seed: 1111,
  optimizer: "adam",
  momentum: 0.9,
  adamBeta1: 0.9,
  weightDecay: 0,
  lrPlateau: 0,
  lrPlateauPatience: 2,
  nonmono: 5,
  asgdEta: "per-step",
  asgdRestarts: [],
  evalBatchSize: 32,
  testBatchSize: null,
  smallBatchSize: null,
  maxSteps: null,
  epochSteps: null,
  stopAfter: null,
  validTokens: null,
  logInterval: 50,
  log: null,
  summary: null,
  save: null,
  resume: null,
  initFrom: null,
  adapter: null,
  variant: null,
  method: "dense",
  density: 0.33,
  sparseInit: "uniform",
  deathRate: 0.5,
  deathRateMin: 0.005,
  updateEvery: 0,
  redistribution: "uniform",
  growth: "random",
  pruneStart: 0.1,
  pruneEnd: 0.75,
  issLambda: 0.002,
  issThreshold: 0.1,
  denseTensors: [],
  storage: "masked",
  inactiveState: "auto",
};

/**
 * Every family's named configurations (`--preset`), with the family each belongs to. Presets
 * use flag names, like config files (e.g. `ptb-lstm-large`, the paper's stacked LSTM).
 */
export const PRESETS: Readonly<
  Record<string, { family: string; settings: Readonly<Record<string, FlagValue>> }>
> = Object.fromEntries(
  Object.values(MODEL_FAMILIES).flatMap((f) =>
    Object.entries(f.presets).map(([name, settings]) => [name, { family: f.name, settings }])
  ),
);

type Kind =
  | "int"
  | "posint"
  | "number"
  | "posnumber"
  | "prob"
  | "unit"
  | "bool"
  | "string"
  | "optimizer"
  | "method"
  | "init"
  | "redistribution"
  | "growth"
  | "list"
  | "sparsity"
  | "storage"
  | "inactive"
  | "model"
  | "wdropConvention"
  | "asgdEta"
  | "epochs";

/** Flag name → config key and value kind. */
const FLAGS: Readonly<Record<string, readonly [keyof TrainConfig, Kind]>> = {
  "data": ["data", "string"],
  "unk": ["unk", "bool"],
  "model": ["model", "model"],
  "emsize": ["emsize", "posint"],
  "nhid": ["nhid", "posint"],
  "nlayers": ["nlayers", "posint"],
  "lr": ["lr", "posnumber"],
  "clip": ["clip", "number"],
  "epochs": ["epochs", "posint"],
  "batch-size": ["batchSize", "posint"],
  "bptt": ["bptt", "posint"],
  "variable-bptt": ["variableBptt", "bool"],
  "bptt-cap": ["bpttCap", "posint"],
  "dropout": ["dropout", "prob"],
  "dropouth": ["dropouth", "prob"],
  "dropouti": ["dropouti", "prob"],
  "dropoute": ["dropoute", "prob"],
  "wdrop": ["wdrop", "prob"],
  "wdrop-convention": ["wdropConvention", "wdropConvention"],
  "alpha": ["alpha", "number"],
  "beta": ["beta", "number"],
  "tied": ["tied", "bool"],
  "seed": ["seed", "int"],
  "optimizer": ["optimizer", "optimizer"],
  "momentum": ["momentum", "prob"],
  "adam-beta1": ["adamBeta1", "prob"],
  "wdecay": ["weightDecay", "number"],
  "lr-plateau": ["lrPlateau", "prob"],
  "lr-plateau-patience": ["lrPlateauPatience", "int"],
  "nonmono": ["nonmono", "posint"],
  "asgd-eta": ["asgdEta", "asgdEta"],
  "asgd-restarts": ["asgdRestarts", "epochs"],
  "eval-batch-size": ["evalBatchSize", "posint"],
  "test-batch-size": ["testBatchSize", "posint"],
  "small-batch-size": ["smallBatchSize", "posint"],
  "max-steps": ["maxSteps", "posint"],
  "epoch-steps": ["epochSteps", "posint"],
  "stop-after": ["stopAfter", "int"],
  "valid-tokens": ["validTokens", "posint"],
  "log-interval": ["logInterval", "posint"],
  "log": ["log", "string"],
  "summary": ["summary", "string"],
  "save": ["save", "string"],
  "resume": ["resume", "string"],
  "init-from": ["initFrom", "string"],
  "adapter": ["adapter", "string"],
  "variant": ["variant", "string"],
  "method": ["method", "method"],
  "density": ["density", "unit"],
  "sparsity": ["density", "sparsity"],
  "sparse-init": ["sparseInit", "init"],
  "death-rate": ["deathRate", "unit"],
  "death-rate-min": ["deathRateMin", "unit"],
  "update-every": ["updateEvery", "int"],
  "redistribution": ["redistribution", "redistribution"],
  "growth": ["growth", "growth"],
  "prune-start": ["pruneStart", "unit"],
  "prune-end": ["pruneEnd", "unit"],
  "iss-lambda": ["issLambda", "number"],
  "iss-threshold": ["issThreshold", "unit"],
  "dense-tensors": ["denseTensors", "list"],
  "storage": ["storage", "storage"],
  "inactive-state": ["inactiveState", "inactive"],
};

const REDISTRIBUTIONS: readonly Redistribution[] = [
  "uniform",
  "none",
  "magnitude",
  "momentum",
  "gradient",
];

function oneOf<T extends string>(raw: unknown, known: readonly T[], fail: (e: string) => never): T {
  return known.includes(raw as T) ? raw as T : fail(`one of ${known.join(", ")}`);
}

const OPTIMIZERS: readonly OptimizerName[] = ["sgd", "momentum", "adam", "ntasgd"];

function convert(where: string, kind: Kind, raw: unknown): unknown {
  const fail = (expected: string): never => {
    throw new ConfigError(`${where}: expected ${expected}, got ${JSON.stringify(raw)}`);
  };
  if (kind === "bool") {
    if (typeof raw === "boolean") return raw;
    if (raw === "true") return true;
    if (raw === "false") return false;
    return fail("true or false");
  }
  if (kind === "string") return typeof raw === "string" && raw !== "" ? raw : fail("a string");
  if (kind === "optimizer") return oneOf(raw, OPTIMIZERS, fail);
  if (kind === "method") return oneOf(raw, METHOD_NAMES, fail);
  if (kind === "init") return oneOf(raw, ["uniform", "er"] as const, fail);
  if (kind === "redistribution") return oneOf(raw, REDISTRIBUTIONS, fail);
  if (kind === "growth") return oneOf(raw, GROWTHS, fail);
  if (kind === "storage") return oneOf(raw, ["masked", "csr"] as const, fail);
  if (kind === "model") return oneOf(raw, Object.keys(MODEL_FAMILIES), fail);
  if (kind === "wdropConvention") return oneOf(raw, WEIGHT_DROP_CONVENTIONS, fail);
  if (kind === "asgdEta") return oneOf(raw, ["per-step", "lagging"] as const, fail);
  if (kind === "epochs") {
    const list = Array.isArray(raw)
      ? raw
      : typeof raw === "string"
      ? raw.split(",").map((x) => x.trim()).filter((x) => x).map(Number)
      : typeof raw === "number"
      ? [raw]
      : null;
    if (!list || !list.every((x) => Number.isInteger(x) && x > 0)) {
      return fail("a comma-separated list of epoch numbers >= 1");
    }
    return [...new Set(list as number[])].sort((a, b) => a - b);
  }
  if (kind === "inactive") {
    return oneOf(raw, ["auto", "clear", "accumulate", "keep"] as const, fail);
  }
  if (kind === "list") {
    if (Array.isArray(raw) && raw.every((x) => typeof x === "string")) return raw;
    if (typeof raw === "string") return raw.split(",").map((x) => x.trim()).filter((x) => x);
    return fail("a comma-separated list of names");
  }
  const v = typeof raw === "number"
    ? raw
    : typeof raw === "string" && raw.trim() !== ""
    ? Number(raw)
    : NaN;
  if (!Number.isFinite(v)) return fail("a number");
  if (kind === "int" && !Number.isInteger(v)) return fail("an integer");
  if (kind === "posint" && !(Number.isInteger(v) && v > 0)) return fail("an integer > 0");
  if (kind === "posnumber" && !(v > 0)) return fail("a number > 0");
  if (kind === "prob" && !(v >= 0 && v < 1)) return fail("a number in [0, 1)");
  if (kind === "unit" && !(v >= 0 && v <= 1)) return fail("a number in [0, 1]");
  if (kind === "sparsity") return v >= 0 && v <= 1 ? 1 - v : fail("a number in [0, 1]");
  if (kind === "number" && !(v >= 0)) return fail("a number >= 0");
  return v;
}

function applyEntries(
  target: Record<string, unknown>,
  entries: Iterable<[string, unknown]>,
  where: (name: string) => string,
  family: AnyModelFamily,
): void {
  for (const [name, raw] of entries) {
    const spec = FLAGS[name];
    const own = family.flags[name];
    if (spec) {
      target[spec[0]] = convert(where(name), spec[1], raw);
    } else if (own) {
      const flags = target.modelFlags as Record<string, FlagValue>;
      target.modelFlags = { ...flags, [name]: convert(where(name), own.kind, raw) as FlagValue };
    } else {
      const owner = Object.values(MODEL_FAMILIES).find((f) => name in f.flags);
      throw new ConfigError(
        owner
          ? `${where(name)}: a setting of --model ${owner.name}, not of --model ${family.name}`
          : `${where(name)}: unknown setting (known: ${
            [...Object.keys(FLAGS), ...Object.keys(family.flags)].join(", ")
          })`,
      );
    }
  }
}

/**
 * The model settings a family reads from a run config (`vocab` from the data).
 *
 * @example
 * ```ts
 * import { DEFAULTS, modelSettings } from "./config.ts";
 * modelSettings(DEFAULTS, 10000).nhid; // 64
 * ```
 */
export function modelSettings(config: TrainConfig, vocab: number): ModelSettings {
  return {
    vocab,
    emsize: config.emsize,
    nhid: config.nhid,
    nlayers: config.nlayers,
    dropout: config.dropout,
    dropouth: config.dropouth,
    dropouti: config.dropouti,
    dropoute: config.dropoute,
    tied: config.tied,
    wdrop: config.wdrop,
    wdropConvention: config.wdropConvention,
    alpha: config.alpha,
    beta: config.beta,
    flags: config.modelFlags,
  };
}

/** The family a run names: `--model`, else its preset's, else the config file's, else lstm. */
function runFamily(
  flagModel: unknown,
  preset: { name: unknown; where: string } | null,
  fileModel: unknown,
): AnyModelFamily {
  const presetFamily = preset === null ? null : presetOf(preset.name, preset.where).family;
  const chosen = flagModel ?? fileModel;
  if (chosen !== undefined) {
    const name = convert(flagModel !== undefined ? "--model" : "model", "model", chosen) as string;
    if (presetFamily !== null && presetFamily !== name) {
      throw new ConfigError(
        `${preset!.where} ${String(preset!.name)} is a --model ${presetFamily} preset, ` +
          `but the run is --model ${name}`,
      );
    }
    return modelFamily(name);
  }
  return modelFamily(presetFamily ?? DEFAULTS.model);
}

function presetOf(name: unknown, where: string): (typeof PRESETS)[string] {
  if (typeof name !== "string" || !(name in PRESETS)) {
    throw new ConfigError(
      `${where}: unknown preset ${JSON.stringify(name)} (known: ${
        Object.keys(PRESETS).join(", ")
      })`,
    );
  }
  return PRESETS[name];
}

/**
 * Parses `deno task train` arguments (reading `--config` when given) into a full config.
 *
 * @example
 * ```ts
 * import { parseTrainArgs } from "./config.ts";
 * const c = await parseTrainArgs(["--preset", "ptb-lstm-small", "--lr", "10"]);
 * [c.nhid, c.lr]; // [200, 10]
 * ```
 */
export async function parseTrainArgs(argv: readonly string[]): Promise<TrainConfig> {
  const options: Record<string, { type: "string" | "boolean" }> = {
    preset: { type: "string" },
    config: { type: "string" },
  };
  for (const [flag, [, kind]] of Object.entries(FLAGS)) {
    options[flag] = { type: kind === "bool" ? "boolean" : "string" };
  }
  for (const f of Object.values(MODEL_FAMILIES)) {
    for (const [flag, spec] of Object.entries(f.flags)) {
      options[flag] = { type: spec.kind === "bool" ? "boolean" : "string" };
    }
  }
  let parsed;
  try {
    // `--no-tied` and the like turn off a boolean a preset or family default turned on
    parsed = parseArgs(
      {
        args: [...argv],
        options,
        strict: true,
        allowPositionals: false,
        allowNegative: true,
      } as Parameters<typeof parseArgs>[0],
    );
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  let fileEntries: [string, unknown][] = [];
  let filePreset: unknown;
  let fileModel: unknown;
  const path = values.config === undefined ? null : String(values.config);
  if (path !== null) {
    let json: unknown;
    try {
      json = JSON.parse(await Deno.readTextFile(path));
    } catch (e) {
      throw new ConfigError(`--config ${path}: ${(e as Error).message}`);
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      throw new ConfigError(`--config ${path}: expected a JSON object of settings`);
    }
    fileEntries = Object.entries(json).filter(([k]) => k !== "preset" && k !== "model");
    filePreset = (json as Record<string, unknown>).preset;
    fileModel = (json as Record<string, unknown>).model;
  }
  const flagEntries = Object.entries(values).filter(([k, v]) =>
    k !== "preset" && k !== "config" && k !== "model" && v !== undefined
  ) as [string, unknown][];
  return resolveConfig({
    flags: {
      entries: flagEntries,
      preset: values.preset,
      model: values.model,
      where: (k) => `--${k}`,
    },
    file: path === null ? null : {
      entries: fileEntries,
      preset: filePreset,
      model: fileModel,
      where: (k) => `${path}: ${k}`,
    },
  });
}

/** Settings of one source (flags, a config file, an object), by flag name. */
interface SettingsSource {
  entries: [string, unknown][];
  preset: unknown;
  model: unknown;
  where: (name: string) => string;
}

/** defaults < family defaults < preset < file < flags, validated by the family. */
function resolveConfig(src: { flags: SettingsSource; file: SettingsSource | null }): TrainConfig {
  const { flags, file } = src;
  const preset = flags.preset !== undefined
    ? { name: flags.preset, where: flags.where("preset") }
    : file?.preset !== undefined
    ? { name: file.preset, where: file.where("preset") }
    : null;
  const family = runFamily(flags.model, preset, file?.model);
  const cfg: Record<string, unknown> = {
    ...DEFAULTS,
    model: family.name,
    modelFlags: flagDefaults(family.name),
  };
  applyEntries(cfg, Object.entries(family.defaults), (k) => `${family.name} default ${k}`, family);
  if (preset) {
    applyEntries(
      cfg,
      Object.entries(presetOf(preset.name, preset.where).settings),
      (k) => `preset ${String(preset.name)}: ${k}`,
      family,
    );
  }
  if (file) applyEntries(cfg, file.entries, file.where, family);
  applyEntries(cfg, flags.entries, flags.where, family);
  const out = cfg as unknown as TrainConfig;
  try {
    // the data sets the vocabulary later; the family's checks do not depend on it
    family.config(modelSettings(out, 2));
  } catch (e) {
    if (e instanceof ModelConfigError) throw new ConfigError(e.message);
    throw e;
  }
  const densityGiven = flags.entries.some(([k]) => k === "density");
  const sparsityGiven = flags.entries.some(([k]) => k === "sparsity");
  if (densityGiven && sparsityGiven) {
    throw new ConfigError("--density and --sparsity set the same thing; give one of them");
  }
  checkConfig(out);
  return out;
}

/**
 * A full, validated run config from settings named as flags (`{ model: "rhn", preset:
 * "ptb-rhn-small", lr: 10, "max-steps": 200 }`): the same names, values, defaults and checks
 * as `deno task train` (what a script importing `mod.ts` uses instead of spreading `DEFAULTS`).
 *
 * @example
 * ```ts
 * import { trainConfig } from "./config.ts";
 * const c = trainConfig({ preset: "ptb-lstm-small", lr: 10 });
 * [c.nhid, c.lr]; // [200, 10]
 * ```
 */
export function trainConfig(settings: Readonly<Record<string, unknown>> = {}): TrainConfig {
  const entries = Object.entries(settings).filter(([k]) => k !== "preset" && k !== "model");
  return resolveConfig({
    flags: {
      entries,
      preset: settings.preset,
      model: settings.model,
      where: (k) => `setting ${k}`,
    },
    file: null,
  });
}

/** The cross-setting checks of a resolved config. */
function checkConfig(out: TrainConfig): void {
  if (out.stopAfter !== null && out.stopAfter < 0) {
    throw new ConfigError(`--stop-after: expected an integer >= 0, got ${out.stopAfter}`);
  }
  if (out.initFrom !== null && out.resume !== null) {
    throw new ConfigError(
      "--init-from and --resume: a resumed run continues from its checkpoint's weights",
    );
  }
  if (out.bpttCap !== null && out.bpttCap < out.bptt) {
    throw new ConfigError(`--bptt-cap (${out.bpttCap}) must be at least --bptt (${out.bptt})`);
  }
  if (out.pruneStart >= out.pruneEnd) {
    throw new ConfigError(
      `--prune-start (${out.pruneStart}) must be below --prune-end (${out.pruneEnd})`,
    );
  }
  if (out.growth !== "random" && !METHODS[out.method]?.growthChoice) {
    throw new ConfigError(
      `--growth ${out.growth} applies to --method selfish; ${out.method} has its own growth rule`,
    );
  }
  const why = out.storage === "csr" ? csrUnsupported(out.method, out.growth) : null;
  if (why) {
    throw new ConfigError(
      `--storage csr cannot train --method ${out.method}` +
        (out.growth !== "random" ? ` with --growth ${out.growth}` : "") + `: ${why}`,
    );
  }
  if (out.storage === "csr" && out.inactiveState !== "auto" && out.inactiveState !== "clear") {
    throw new ConfigError(
      `--inactive-state ${out.inactiveState} needs --storage masked: true sparse storage ` +
        "computes no gradients of inactive weights",
    );
  }
  if (
    out.inactiveState === "clear" && METHODS[out.method]?.denseOptimizerState &&
    (out.optimizer === "momentum" || out.optimizer === "adam")
  ) {
    throw new ConfigError(
      `--inactive-state clear cannot train --method ${out.method}: it grows by the momentum ` +
        "of inactive weights, which clear keeps at 0",
    );
  }
  if (out.asgdRestarts.length > 0 && out.optimizer !== "ntasgd") {
    throw new ConfigError(
      `--asgd-restarts ${out.asgdRestarts.join(",")} needs --optimizer ntasgd (got ` +
        `${out.optimizer})`,
    );
  }
  if (out.smallBatchSize !== null && out.batchSize % out.smallBatchSize !== 0) {
    throw new ConfigError(
      `--small-batch-size ${out.smallBatchSize} must divide --batch-size ${out.batchSize}`,
    );
  }
  if (out.updateEvery < 0) {
    throw new ConfigError(`--update-every: expected an integer >= 0, got ${out.updateEvery}`);
  }
}
