/**
 * `deno task experiment NAME`: small-scale reproductions of the paper's Table 2 (every
 * sparse-training method on the stacked LSTM) and Table 3 (methods × optimizers). The
 * experiments are plain data ({@linkcode EXPERIMENTS}); {@linkcode planExperiment} turns one into
 * the list of run configs (pure), {@linkcode runExperiment} trains them one after another on one
 * GPU, recording a failing run's error in its row instead of stopping, and the renderers
 * ({@linkcode resultsCsv}, {@linkcode resultsMarkdown}) are pure.
 *
 * Every run of an experiment shares the model size, data, seed, plan and density; only the
 * method and the optimizer (with that optimizer's own learning rate and clipping) change, so
 * rows are comparable with each other — not with the paper's numbers, which come from a
 * 1500-unit model trained for 100 epochs.
 *
 * The protocol mirrors the paper's at a size that runs on a CPU (spec §14.5): an "epoch" is a
 * fixed number of steps (`epochSteps`, default 100), the run has several of them, each epoch
 * ends with a validation (on a prefix of the validation set), NT-ASGD's trigger counts these
 * epochs, one connectivity update follows each epoch's validation (none after the last one),
 * the removal rate anneals over the whole run to p_min at the last update, and the test
 * measures the best weights.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import { DEFAULTS, type OptimizerName, type TrainConfig } from "./config.ts";
import { type CsvValue, toCsv } from "./csv.ts";
import { batchify, bpttWindows } from "./data/batches.ts";
import { type ProgressInfo, progressLine, ProgressPrinter } from "./progress.ts";
import { METHOD_NAMES, type MethodName } from "./sparsity/method.ts";
import { csrUnsupported, type Storage } from "./sparsity/storage.ts";
import { train, type TrainingData, type TrainSummary } from "./train.ts";
import { sparsitySettings } from "./run/settings.ts";
import { epochLengthText, planEpochs, planRun, type RunPlan, updateSteps } from "./plan.ts";
import { removalRateAt, sparsityPlanProblem } from "./sparsity/stage.ts";
import { summaryJson } from "./run/finish.ts";
import { writeAtomic } from "./atomic.ts";
import { runModelConfig } from "./run/setup.ts";
import { forwardFlops } from "./sparsity/flops.ts";
export { writeAtomic };

/** Bad experiment name or option; the CLI prints the message and exits with code 2. */
export class ExperimentError extends Error {
  override name = "ExperimentError";
}

/** Learning rate and gradient clipping of one optimizer in the experiments. */
export interface OptimizerSetting {
  lr: number;
  /** Gradient-norm clip; 0 = none. */
  clip: number;
}

/**
 * Settings of one method in every experiment, over the run's defaults. ISS's group Lasso at the
 * train default (λ 0.002, sized for the 64-unit default model) shrinks every unit of the
 * experiments' 2×200 LSTM under Adam alike and none is removed (synthetic table2-small: val
 * ppl 104.0); λ 2e-4 removed 48 and 2 of the 200 units in 400 steps at val ppl 6.66, 5e-5 none
 * (6.41) (`bench/results/iss-runs.md`).
 */
export const METHOD_SETTINGS: Readonly<Partial<Record<MethodName, Partial<TrainConfig>>>> = {
  iss: { issLambda: 2e-4 },
};

/**
 * Per-optimizer settings for the small stacked LSTM (200 units, 2 layers, batch 20, bptt 35),
 * chosen by 120-step runs on the synthetic corpus (optimal ppl 5.46) on llvmpipe:
 * Adam (β1 = 0, as in the Selfish-RNN code) at lr 2e-3 reached val ppl 19.5 (dense) / 47.8
 * (selfish), at 1e-2 8.1 / 9.4, at 2e-2 39.7 (dense diverged partly) / 8.5 — so 1e-2. The SGD
 * family follows the PyTorch word-LM recipe (clip 0.25, SGD lr 20; momentum 0.9 at a tenth of
 * that, the same effective step): dense val ppl 41.3 (SGD/NT-ASGD) and 35.5 (momentum) after
 * 120 steps — slower than Adam at this budget, as expected.
 */
export const OPTIMIZER_SETTINGS: Readonly<Record<OptimizerName, OptimizerSetting>> = {
  adam: { lr: 1e-2, clip: 0 },
  momentum: { lr: 2, clip: 0.25 },
  sgd: { lr: 20, clip: 0.25 },
  ntasgd: { lr: 20, clip: 0.25 },
};

/** One experiment: a grid of methods × optimizers and what the paper found, as context. */
export interface ExperimentDef {
  name: string;
  /** One line for `--help` and the markdown title. */
  title: string;
  /** The model family every run trains (`--model`). */
  model: string;
  /** Methods, in the paper's table order. */
  methods: readonly MethodName[];
  optimizers: readonly OptimizerName[];
  /** The paper's qualitative finding for this table (printed as context, never checked). */
  paperContext: string;
}

/** The experiments by name. */
export const EXPERIMENTS: Readonly<Record<string, ExperimentDef>> = {
  "table2-small": {
    name: "table2-small",
    title: "Table 2 at small scale: every sparse-training method on the stacked LSTM",
    model: "lstm",
    methods: METHOD_NAMES,
    optimizers: ["adam"],
    paperContext: "In the paper (PTB, 1500-unit 2-layer stacked LSTM, density 33%, 100 epochs of " +
      "SNT-ASGD), Selfish-RNN reaches a lower test perplexity than every other sparse method and " +
      "than the dense model itself; the other dynamic sparse methods (SET, DSR, SNFS, RigL) and " +
      "GMP fall between it and the static sparse models, and the small dense model with the same " +
      "parameter count is among the weakest. A few hundred steps on a small model need not " +
      "reproduce that ordering.",
  },
  "table3-small": {
    name: "table3-small",
    title: "Table 3 at small scale: sparse-training methods × optimizers",
    model: "lstm",
    methods: ["selfish", "rigl", "set", "static-uniform", "dense"],
    optimizers: ["adam", "momentum", "ntasgd"],
    paperContext: "In the paper (PTB stacked LSTM, density 33%), SNT-ASGD — NT-ASGD whose " +
      "averaging respects the masks — improves every sparse method by a wide margin over Adam " +
      "and momentum SGD, and Selfish-RNN with SNT-ASGD is the best combination. NT-ASGD only " +
      "starts averaging after `nonmono` (5) epochs without validation improvement, so in a " +
      "run shorter than that it is plain SGD.",
  },
};

/** The options every run of an experiment shares (CLI flags). */
export interface ExperimentOptions {
  /** Planned length of every run when shorter than its epochs (`--max-steps`); `null` = all. */
  steps: number | null;
  /** Epochs of every run. */
  epochs: number;
  /** Steps per epoch; `null` = one pass over the training data (the paper's epoch). */
  epochSteps: number | null;
  /** NT-ASGD's non-monotone interval, in these epochs. */
  nonmono: number;
  /** Epoch-end validations on this many validation tokens (`null` = all). */
  validTokens: number | null;
  emsize: number;
  nhid: number;
  nlayers: number;
  density: number;
  seed: number;
  /** Runs per method and optimizer, with seeds `seed`, `seed + 1`, ... */
  seeds: number;
  data: string | null;
  adapter: string | null;
  variant: string | null;
  /** Subset of the experiment's methods; `null` = all. */
  methods: readonly MethodName[] | null;
  /** Subset of the experiment's optimizers; `null` = all. */
  optimizers: readonly OptimizerName[] | null;
  /** Steps between connectivity updates; 0 = once per epoch, after its validation. */
  updateEvery: number;
  /** Overrides every optimizer's learning rate. */
  lr: number | null;
  batchSize: number;
  bptt: number;
  /**
   * Storage of the sparse weights (`--storage`): `csr` runs every method that supports it
   * truly sparse; RigL, SNFS and the dense baselines stay `masked` (see `csrUnsupported`).
   */
  storage: Storage;
}

/**
 * Defaults of {@linkcode ExperimentOptions}: the stacked LSTM sized for a 2-core CPU, 8 epochs
 * of 100 steps (7 connectivity updates, after epochs 1–7), nonmono 2 (spec §14.5: 2–3 for such
 * short runs), epoch-end validation on the first 20,000 validation tokens.
 */
export const EXPERIMENT_DEFAULTS: Readonly<ExperimentOptions> = {
  steps: null,
  epochs: 8,
  epochSteps: 100,
  nonmono: 2,
  validTokens: 20_000,
  emsize: 200,
  nhid: 200,
  nlayers: 2,
  density: 0.33,
  seed: 1111,
  seeds: 1,
  data: null,
  adapter: null,
  variant: null,
  methods: null,
  optimizers: null,
  updateEvery: 0,
  lr: null,
  batchSize: 20,
  bptt: 35,
  storage: "masked",
};

/** One run of an experiment. */
export interface PlannedRun {
  method: MethodName;
  optimizer: OptimizerName;
  config: TrainConfig;
}

/** Steps per epoch of `corpus.train` at the experiment's batch size and bptt. */
export function windowsPerEpoch(train: Uint32Array, batchSize: number, bptt: number): number {
  return bpttWindows(batchify(train, batchSize, "train"), bptt).length;
}

/**
 * The plan every run of an experiment follows. `epochWindows` is the number of training windows
 * in one pass over the data.
 *
 * @example
 * ```ts
 * import { EXPERIMENT_DEFAULTS, experimentPlan } from "./experiment.ts";
 * experimentPlan(EXPERIMENT_DEFAULTS, 286); // { totalSteps: 800, epochSteps: 100, updateEvery: 0 }
 * ```
 */
export function experimentPlan(options: ExperimentOptions, epochWindows: number): RunPlan {
  return planRun({
    passLength: () => Math.max(1, epochWindows),
    epochs: options.epochs,
    epochSteps: options.epochSteps,
    maxSteps: options.steps,
    updateEvery: options.updateEvery,
  });
}

/** What an experiment costs under some options: its runs, their steps and training FLOPs. */
export interface ExperimentCost {
  runs: number;
  stepsPerRun: number;
  /** Dense-equivalent training FLOPs of all runs (3 × forward per token, spec §9): a bound. */
  trainFlops: number;
}

/**
 * The size of `def` under `options` over a vocabulary of `vocab` words and passes of
 * `epochWindows` windows (PTB's by default). Pure.
 *
 * @example
 * ```ts
 * import { EXPERIMENT_DEFAULTS, EXPERIMENTS, experimentCost } from "./experiment.ts";
 * experimentCost(EXPERIMENTS["table3-small"], EXPERIMENT_DEFAULTS).runs; // 15
 * ```
 */
export function experimentCost(
  def: ExperimentDef,
  options: ExperimentOptions,
  vocab = 10000,
  epochWindows = 1328,
): ExperimentCost {
  const runs = planExperiment(def, options, epochWindows);
  const plan = experimentPlan(options, epochWindows);
  let trainFlops = 0;
  for (const r of runs) {
    const { family, trained } = runModelConfig(r.config, vocab);
    const tokens = plan.totalSteps * r.config.batchSize * r.config.bptt;
    trainFlops += 3 * forwardFlops(family.weightMacs(trained)) * tokens;
  }
  return { runs: runs.length, stepsPerRun: plan.totalSteps, trainFlops };
}

/** The experiment's own entries that `chosen` keeps, in the experiment's order; throws on strays. */
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

/**
 * The runs of `def` under `options`, in table order (methods outer, optimizers inner). Pure.
 * `epochWindows` is the number of training windows in one pass over the data.
 *
 * @example
 * ```ts
 * import { EXPERIMENT_DEFAULTS, EXPERIMENTS, planExperiment } from "./experiment.ts";
 * const runs = planExperiment(EXPERIMENTS["table3-small"], EXPERIMENT_DEFAULTS, 285);
 * runs.length; // 15
 * ```
 */
export function planExperiment(
  def: ExperimentDef,
  options: ExperimentOptions,
  epochWindows: number,
): PlannedRun[] {
  const methods = chosenSubset("methods", options.methods, def.methods, def.name);
  const optimizers = chosenSubset("optimizers", options.optimizers, def.optimizers, def.name);
  const plan = experimentPlan(options, epochWindows);
  const runs: PlannedRun[] = [];
  const seeds = Array.from({ length: options.seeds }, (_, k) => options.seed + k);
  for (const method of methods) {
    for (const optimizer of optimizers) {
      for (const seed of seeds) {
        const o = OPTIMIZER_SETTINGS[optimizer];
        runs.push({
          method,
          optimizer,
          config: {
            ...DEFAULTS,
            model: def.model,
            data: options.data,
            emsize: options.emsize,
            nhid: options.nhid,
            nlayers: options.nlayers,
            batchSize: options.batchSize,
            evalBatchSize: options.batchSize,
            bptt: options.bptt,
            dropout: 0,
            seed,
            optimizer,
            lr: options.lr ?? o.lr,
            clip: o.clip,
            // the Selfish-RNN code's Table 3 Adam: betas (0, 0.999) (spec §5.5)
            adamBeta1: 0,
            epochs: options.epochs,
            epochSteps: options.epochSteps,
            maxSteps: options.steps,
            nonmono: options.nonmono,
            validTokens: options.validTokens,
            logInterval: Math.max(1, Math.min(50, Math.floor(plan.epochEnds[0] / 2))),
            adapter: options.adapter,
            variant: options.variant,
            method,
            density: options.density,
            updateEvery: options.updateEvery,
            denseTensors: [...DEFAULTS.denseTensors],
            storage: options.storage === "csr" && !csrUnsupported(method) ? "csr" : "masked",
            ...METHOD_SETTINGS[method],
          },
        });
      }
    }
  }
  return runs;
}

/**
 * Why a planned run cannot follow its plan (e.g. gradual pruning whose window ends after the
 * last update), one message per such run; empty when every run can.
 *
 * @example
 * ```ts ignore
 * const problems = planProblems(runs, plan); // ["gmp/adam: gmp prunes to its final density ..."]
 * ```
 */
export function planProblems(runs: readonly PlannedRun[], plan: RunPlan): string[] {
  return runs.flatMap((r) => {
    const why = sparsityPlanProblem(sparsitySettings(r.config), plan);
    return why ? [`${r.method}/${r.optimizer}: ${why}`] : [];
  });
}

/**
 * The facts of the plan for the results header: steps and epochs, and for dynamic methods the
 * update steps and the removal rate p_t at the first and last update (from the same functions
 * the runs use).
 *
 * @example
 * ```ts ignore
 * const { steps, updates } = planSummary(plan, runs[0].config, 286);
 * ```
 */
export function planSummary(
  plan: RunPlan,
  config: TrainConfig,
  epochWindows: number,
): { steps: string; updates: string } {
  const ups = updateSteps(plan);
  const s = sparsitySettings(config);
  const p = (step: number) => removalRateAt(s, step, plan).toFixed(4);
  const epochs = planEpochs(plan);
  const prefix = config.validTokens !== null;
  const steps = `${plan.totalSteps} per run: ${epochs} epochs of ${epochLengthText(plan)} steps ` +
    `(one pass over the training data is ${epochWindows} steps); validation at each epoch end` +
    (prefix ? ` on the first ${config.validTokens} validation tokens` : "") +
    `; test of the best weights` + (prefix ? " (and their validation on the whole set)" : "");
  const every = plan.updateEvery > 0
    ? `every ${plan.updateEvery} steps`
    : "after each epoch's validation";
  const updates = ups.length === 0
    ? "none fall inside the run (the dynamic methods stay static)"
    : `${ups.length} per dynamic run, after steps ${ups.join(", ")} (${every}; none after ` +
      `the last step); removal rate p_t cosine from ${config.deathRate} at step 0 to ` +
      `${config.deathRateMin} at step ${ups[ups.length - 1]}: p_t = ${p(ups[0])} at the ` +
      `first update, ${p(ups[ups.length - 1])} at the last`;
  return { steps, updates };
}

/** One row of the results: a finished, failed or skipped run. */
export interface ExperimentResult {
  method: string;
  optimizer: string;
  seed: number;
  data: string;
  steps: number | null;
  valPpl: number | null;
  testPpl: number | null;
  parameters: number | null;
  activeParameters: number | null;
  trainFlopsXDense: number | null;
  inferenceFlopsXDense: number | null;
  /** Wall-clock seconds of the run, training and evaluation. */
  elapsedSec: number | null;
  /** Connectivity updates the run did, and p_t at its first and last one. */
  updates: number | null;
  firstRemovalRate: number | null;
  lastRemovalRate: number | null;
  /** Validation perplexity at each epoch end. */
  epochValPpl: number[];
  status: "ok" | "failed" | "skipped" | "interrupted" | "missing";
  /** Error message of a failed run, reason of a skipped one, else empty. */
  note: string;
}

/** Columns of `results.csv`. */
export const RESULT_COLUMNS = [
  "method",
  "optimizer",
  "seed",
  "data",
  "steps",
  "val_ppl",
  "test_ppl",
  "parameters",
  "active_parameters",
  "train_flops_x_dense",
  "inference_flops_x_dense",
  "elapsed_sec",
  "updates",
  "first_removal_rate",
  "last_removal_rate",
  "epoch_val_ppl",
  "note",
] as const;

/**
 * The row of a finished run.
 *
 * @example
 * ```ts ignore
 * const row = resultFromSummary("rigl", "adam", summary, 83.2);
 * ```
 */
export function resultFromSummary(
  method: string,
  optimizer: string,
  seed: number,
  s: TrainSummary,
  wallSec: number,
): ExperimentResult {
  return {
    method,
    optimizer,
    seed,
    data: s.data,
    steps: s.steps,
    valPpl: s.valPpl,
    testPpl: s.testPpl,
    parameters: s.parameters,
    activeParameters: s.activeParameters,
    trainFlopsXDense: s.trainFlops / Math.max(1e-30, s.denseTrainFlops),
    inferenceFlopsXDense: s.inferenceFlops / Math.max(1e-30, s.denseInferenceFlops),
    elapsedSec: wallSec,
    updates: s.updates.length,
    firstRemovalRate: s.updates[0]?.removalRate ?? null,
    lastRemovalRate: s.updates[s.updates.length - 1]?.removalRate ?? null,
    epochValPpl: s.epochValPpl,
    status: "ok",
    note: "",
  };
}

/**
 * `results.csv`: one row per run, RFC 4180 quoting (errors may hold commas and quotes).
 *
 * @example
 * ```ts
 * import { resultsCsv } from "./experiment.ts";
 * resultsCsv([]).split("\n")[0]; // "method,optimizer,data,steps,val_ppl,test_ppl,parameters,..."
 * ```
 */
export function resultsCsv(rows: readonly ExperimentResult[]): string {
  return toCsv(
    RESULT_COLUMNS,
    rows.map((r): Record<string, CsvValue> => ({
      method: r.method,
      optimizer: r.optimizer,
      seed: r.seed,
      data: r.data,
      steps: r.steps,
      "val_ppl": r.valPpl,
      "test_ppl": r.testPpl,
      parameters: r.parameters,
      "active_parameters": r.activeParameters,
      "train_flops_x_dense": r.trainFlopsXDense,
      "inference_flops_x_dense": r.inferenceFlopsXDense,
      "elapsed_sec": r.elapsedSec === null ? null : Math.round(r.elapsedSec * 10) / 10,
      updates: r.updates,
      "first_removal_rate": r.firstRemovalRate,
      "last_removal_rate": r.lastRemovalRate,
      "epoch_val_ppl": r.epochValPpl.map((v) => v.toFixed(2)).join(" "),
      note: r.status === "ok" ? r.note : `${r.status}: ${r.note}`,
    })),
  );
}

/** The facts printed above the markdown table. */
export interface ResultsHeader {
  experiment: ExperimentDef;
  /** Data description (corpus path or synthetic corpus), with the optimal ppl if known. */
  data: string;
  steps: string;
  /** The seed, or the range of seeds (`1111..1113`). */
  seed: number | string;
  adapter: string;
  /** ISO date-time of the start. */
  date: string;
  /** Further `- key: value` lines (model, density, optimizers, ...). */
  settings: readonly string[];
}

function mdCell(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll("|", "\\|").replace(/\s*[\r\n]+\s*/g, " ");
}

function fmt(v: number | null, digits: number): string {
  return v === null || !Number.isFinite(v) ? (v === null ? "" : String(v)) : v.toFixed(digits);
}

/**
 * `results.md`: a header (data, steps, seed, adapter, date, settings), the table, the skipped
 * and failed runs, and the paper's finding as context.
 *
 * @example
 * ```ts ignore
 * const md = resultsMarkdown(header, rows);
 * ```
 */
export function resultsMarkdown(header: ResultsHeader, rows: readonly ExperimentResult[]): string {
  const lines = [
    `# ${header.experiment.name}: ${header.experiment.title}`,
    "",
    `- data: ${header.data}`,
    `- steps: ${header.steps}`,
    `- seed: ${header.seed}`,
    `- adapter: ${header.adapter}`,
    `- date: ${header.date}`,
    ...header.settings.map((s) => `- ${s}`),
    "",
    "| method | optimizer | seed | val ppl | test ppl | active / total params | " +
    "train FLOPs × dense | inference FLOPs × dense | updates | p_t first → last | time (s) | note |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
  ];
  for (const r of rows) {
    const params = r.parameters === null ? "" : `${r.activeParameters ?? "?"} / ${r.parameters}`;
    const note = r.status === "ok" ? r.note : `${r.status}: ${r.note}`;
    lines.push(
      "| " + [
        r.method,
        r.optimizer,
        String(r.seed),
        fmt(r.valPpl, 2),
        fmt(r.testPpl, 2),
        params,
        fmt(r.trainFlopsXDense, 3),
        fmt(r.inferenceFlopsXDense, 3),
        r.updates === null ? "" : String(r.updates),
        r.firstRemovalRate === null
          ? ""
          : `${fmt(r.firstRemovalRate, 4)} → ${fmt(r.lastRemovalRate, 4)}`,
        fmt(r.elapsedSec, 0),
        note,
      ].map(mdCell).join(" | ") + " |",
    );
  }
  const skipped = [...new Set(rows.filter((r) => r.status === "skipped").map((r) => r.method))];
  const failed = rows.filter((r) => r.status === "failed");
  lines.push("");
  const curves = rows.filter((r) => r.epochValPpl.length > 0);
  const epochs = Math.max(0, ...curves.map((r) => r.epochValPpl.length));
  if (epochs > 0) {
    const cols = Array.from({ length: epochs }, (_, e) => String(e + 1));
    lines.push(
      "Validation perplexity at each epoch end (the prefix the epochs validate on):",
      "",
      `| method | optimizer | ${cols.join(" | ")} |`,
      `|---|---|${cols.map(() => "--:").join("|")}|`,
      ...curves.map((r) =>
        `| ${mdCell(r.method)} | ${mdCell(r.optimizer)} | ` +
        cols.map((_, e) => fmt(r.epochValPpl[e] ?? null, 2)).join(" | ") + " |"
      ),
      "",
    );
  }
  if (skipped.length) lines.push(`Skipped (not registered): ${skipped.join(", ")}.`, "");
  if (failed.length) {
    lines.push(
      `Failed: ${failed.map((r) => `${r.method}/${r.optimizer}`).join(", ")} (see note).`,
      "",
    );
  }
  lines.push(`Paper context (not a test): ${header.experiment.paperContext}`, "");
  return lines.join("\n");
}

/** A progress printer whose lines carry the run's name; silent when `quiet`. */
export class PrefixedPrinter extends ProgressPrinter {
  #start = performance.now();

  constructor(readonly prefix: string, readonly quiet = false) {
    super(false);
  }

  override update(p: ProgressInfo): void {
    if (!this.quiet) {
      console.log(
        `  [${this.prefix}] ${progressLine(p, (performance.now() - this.#start) / 1000)}`,
      );
    }
  }

  override say(message: string): void {
    if (!this.quiet) console.log(`  [${this.prefix}] ${message}`);
  }

  override end(): void {}
}

/** How {@linkcode runExperiment} reports and where it writes. */
export interface RunnerOptions {
  /** Output directory (must exist); results and per-run summaries are rewritten after each run. */
  outDir: string;
  /** Is `method` registered? Unregistered methods are skipped with a note. */
  available: (method: MethodName) => boolean;
  header: ResultsHeader;
  /** Suppress the per-step progress lines of each run. */
  quiet?: boolean;
  /** Where the one-line-per-run progress goes. */
  log?: (line: string) => void;
  /** Injectable trainer (tests); defaults to {@linkcode train}. */
  trainFn?: typeof train;
  /**
   * Write `results.csv` and `results.md` (default); an executor's worker, which runs one of
   * many runs, writes only its run's directory.
   */
  tables?: boolean;
}

/** A run's directory in the experiment's: its config, log, checkpoint, summary and result. */
export function runDir(outDir: string, run: PlannedRun): string {
  return `${outDir}/${run.method}-${run.optimizer}-seed${run.config.seed}`;
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** The row of a run that has no figures (yet): its names and nothing measured. */
function emptyResult(run: PlannedRun, data: string) {
  return {
    method: run.method,
    optimizer: run.optimizer,
    seed: run.config.seed,
    data,
    steps: null,
    valPpl: null,
    testPpl: null,
    parameters: null,
    activeParameters: null,
    trainFlopsXDense: null,
    inferenceFlopsXDense: null,
    updates: null,
    firstRemovalRate: null,
    lastRemovalRate: null,
    epochValPpl: [],
  };
}

/** Writes `results.csv` and `results.md` of `rows` into `outDir`. */
export async function writeResultTables(
  outDir: string,
  header: ResultsHeader,
  rows: readonly ExperimentResult[],
): Promise<void> {
  await writeAtomic(`${outDir}/results.csv`, resultsCsv(rows));
  await writeAtomic(`${outDir}/results.md`, resultsMarkdown(header, rows));
}

/**
 * The rows of `runs` as their directories hold them (an executor's workers wrote them): a
 * finished run's `result.json`, a failed one's note, else `missing`.
 *
 * @example
 * ```ts ignore
 * await writeResultTables(outDir, header, await collectResults(runs, outDir, data.description));
 * ```
 */
export async function collectResults(
  runs: readonly PlannedRun[],
  outDir: string,
  data: string,
): Promise<ExperimentResult[]> {
  return await Promise.all(runs.map(async (run) => {
    const dir = runDir(outDir, run);
    const done = await readIfExists(`${dir}/result.json`);
    if (done !== null) return JSON.parse(done) as ExperimentResult;
    const failed = await readIfExists(`${dir}/failed.json`);
    return {
      ...emptyResult(run, data),
      elapsedSec: null,
      status: failed !== null ? "failed" : "missing",
      note: failed !== null ? (JSON.parse(failed) as { note: string }).note : "not run yet",
    } satisfies ExperimentResult;
  }));
}

/**
 * Trains `runs` one after another on `gpu` and `data`. Each run has its directory
 * (`runDir`) holding `config.json`, `log.csv`, `run.ckpt` (saved at every epoch end),
 * `summary.json` and `result.json`; `results.csv` and `results.md` are rewritten after every
 * run. Rerunning the same command continues: a run with a `result.json` of the same config is
 * taken as done, one with a checkpoint resumes from it, the rest start; a run directory of
 * another config is refused. A run that throws is recorded with its error and the next one
 * starts; an interrupted one (Ctrl-C) is saved and ends the sweep; an unregistered method is
 * recorded as skipped.
 *
 * @example
 * ```ts ignore
 * const rows = await runExperiment(gpu, runs, data, { outDir, available, header });
 * ```
 */
export async function runExperiment(
  gpu: Gpu,
  runs: readonly PlannedRun[],
  data: TrainingData,
  options: RunnerOptions,
): Promise<ExperimentResult[]> {
  const log = options.log ?? ((s: string) => console.log(s));
  const trainFn = options.trainFn ?? train;
  const rows: ExperimentResult[] = [];
  const flush = async () => {
    if (options.tables === false) return;
    await writeResultTables(options.outDir, options.header, rows);
  };
  const empty = (run: PlannedRun) => emptyResult(run, data.description);
  for (const [i, run] of runs.entries()) {
    const name = `${run.method}/${run.optimizer}` +
      (runs.some((r) => r.config.seed !== run.config.seed) ? ` seed ${run.config.seed}` : "");
    const tag = `[${i + 1}/${runs.length}] ${name}`;
    if (!options.available(run.method)) {
      const note = `method ${run.method} is not registered in pipeline/sparsity/methods/mod.ts`;
      rows.push({ ...empty(run), elapsedSec: null, status: "skipped", note });
      log(`${tag}: skipped (${note})`);
      await flush();
      continue;
    }
    const dir = runDir(options.outDir, run);
    await Deno.mkdir(dir, { recursive: true });
    const config = JSON.stringify(run.config, null, 2) + "\n";
    const before = await readIfExists(`${dir}/config.json`);
    if (before !== null && before !== config) {
      throw new ExperimentError(
        `${dir} holds a run of another configuration: rerun with the same flags, or another --out`,
      );
    }
    const done = await readIfExists(`${dir}/result.json`);
    if (done !== null) {
      const row = JSON.parse(done) as ExperimentResult;
      rows.push(row);
      log(`${tag}: done earlier (val ppl ${row.valPpl?.toFixed(2)}), kept`);
      await flush();
      continue;
    }
    await writeAtomic(`${dir}/config.json`, config);
    const ckpt = `${dir}/run.ckpt`;
    const resume = await Deno.stat(ckpt).then(() => ckpt, () => null);
    log(
      `${tag}: lr ${run.config.lr}, clip ${run.config.clip}` +
        (resume ? `; resuming from ${ckpt}` : ""),
    );
    const t0 = performance.now();
    try {
      const printer = new PrefixedPrinter(name, options.quiet ?? false);
      const s = await trainFn(
        gpu,
        { ...run.config, summary: null, save: ckpt, log: `${dir}/log.csv`, resume },
        data,
        printer,
      );
      const wall = (performance.now() - t0) / 1000;
      if (s.interrupted) {
        rows.push({
          ...empty(run),
          elapsedSec: wall,
          status: "interrupted",
          note: `at step ${s.steps}`,
        });
        log(`${tag}: interrupted at step ${s.steps}, saved; the same command continues it`);
        await flush();
        break;
      }
      const row = resultFromSummary(run.method, run.optimizer, run.config.seed, s, wall);
      if (s.averagedAfterEpoch !== null) {
        row.note = `averaged weights from epoch ${s.averagedAfterEpoch + 1}`;
      }
      rows.push(row);
      await writeAtomic(
        `${dir}/summary.json`,
        JSON.stringify({ ...summaryJson(s), "wall_sec": wall, config: run.config }, null, 2) +
          "\n",
      );
      await writeAtomic(`${dir}/result.json`, JSON.stringify(row, null, 2) + "\n");
      await Deno.remove(`${dir}/failed.json`).catch(() => {}); // an earlier attempt's
      log(
        `${tag}: val ppl ${s.valPpl.toFixed(2)}, test ppl ${s.testPpl.toFixed(2)}, ` +
          `${s.activeParameters}/${s.parameters} params, ${wall.toFixed(0)} s`,
      );
    } catch (e) {
      const wall = (performance.now() - t0) / 1000;
      const note = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      rows.push({ ...empty(run), elapsedSec: wall, status: "failed", note });
      await writeAtomic(`${dir}/failed.json`, JSON.stringify({ note }) + "\n");
      log(`${tag}: FAILED after ${wall.toFixed(0)} s: ${note}`);
    }
    await flush();
  }
  if (runs.length === 0) await flush();
  return rows;
}
