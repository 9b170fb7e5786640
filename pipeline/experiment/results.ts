/**
 * An experiment's results as data and text: one row per run ({@linkcode ExperimentResult},
 * from the run's summary), `results.csv` and `results.md` with the header's facts of the plan
 * ({@linkcode planSummary}). Pure.
 *
 * @module
 */

import { type CsvValue, toCsv } from "../csv.ts";
import type { TrainSummary } from "../train.ts";
import type { TrainConfig } from "../config.ts";
import { sparsitySettings } from "../run/settings.ts";
import { epochLengthText, planEpochs, type RunPlan, updateSteps } from "../plan.ts";
import { removalRateAt } from "../sparsity/stage.ts";
import type { ExperimentSpec, PlannedRun } from "./spec.ts";

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

/** The names of a run's row: its directory, block, model, method, variant, optimizer, density. */
export function runIdentity(run: PlannedRun) {
  return {
    index: run.index,
    key: run.key,
    block: run.block,
    model: run.model,
    method: run.method,
    variant: run.variant?.label ?? "",
    optimizer: run.optimizer,
    density: run.density,
    seed: run.config.seed,
  };
}

/** One row of the results: a finished, failed or skipped run. */
export interface ExperimentResult {
  /** The run's place in the grid, directory name, block and model label (absent in results of
   * earlier versions). */
  index?: number;
  key?: string;
  block?: string;
  model?: string;
  method: string;
  /** The row variant's label; empty for the method's plain row. */
  variant?: string;
  optimizer: string;
  density?: number;
  seed: number;
  data: string;
  steps: number | null;
  valPpl: number | null;
  testPpl: number | null;
  parameters: number | null;
  activeParameters: number | null;
  trainFlopsXDense: number | null;
  inferenceFlopsXDense: number | null;
  /**
   * Wall-clock seconds of the run, training and evaluation; a resumed run adds the time its
   * checkpoint recorded (`summary.elapsedSec`).
   */
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
  "model",
  "method",
  "variant",
  "optimizer",
  "density",
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
 * const row = resultFromSummary(run, summary, 83.2);
 * ```
 */
export function resultFromSummary(
  run: PlannedRun,
  s: TrainSummary,
  wallSec: number,
): ExperimentResult {
  return {
    ...runIdentity(run),
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
 * import { resultsCsv } from "./results.ts";
 * resultsCsv([]).split("\n")[0]; // "model,method,variant,optimizer,density,seed,data,steps,val_ppl,test_ppl,parameters,..."
 * ```
 */
export function resultsCsv(rows: readonly ExperimentResult[]): string {
  return toCsv(
    RESULT_COLUMNS,
    rows.map((r): Record<string, CsvValue> => ({
      model: r.model ?? "",
      method: r.method,
      variant: r.variant ?? "",
      optimizer: r.optimizer,
      density: r.density ?? null,
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
  experiment: Pick<ExperimentSpec, "name" | "title" | "paperContext">;
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
    "| model | method | variant | optimizer | density | seed | val ppl | test ppl | " +
    "active / total params | train FLOPs × dense | inference FLOPs × dense | updates | " +
    "p_t first → last | time (s) | note |",
    "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
  ];
  for (const r of rows) {
    const params = r.parameters === null ? "" : `${r.activeParameters ?? "?"} / ${r.parameters}`;
    const note = r.status === "ok" ? r.note : `${r.status}: ${r.note}`;
    lines.push(
      "| " + [
        r.model ?? "",
        r.method,
        r.variant ?? "",
        r.optimizer,
        r.density === undefined ? "" : String(r.density),
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
      `| run | ${cols.join(" | ")} |`,
      `|---|${cols.map(() => "--:").join("|")}|`,
      ...curves.map((r) =>
        `| ${mdCell(r.key ?? `${r.method}/${r.optimizer}`)} | ` +
        cols.map((_, e) => fmt(r.epochValPpl[e] ?? null, 2)).join(" | ") + " |"
      ),
      "",
    );
  }
  if (skipped.length) lines.push(`Skipped (not registered): ${skipped.join(", ")}.`, "");
  if (failed.length) {
    lines.push(
      `Failed: ${failed.map((r) => r.key ?? `${r.method}/${r.optimizer}`).join(", ")} (see note).`,
      "",
    );
  }
  lines.push(`Paper context (not a test): ${header.experiment.paperContext}`, "");
  return lines.join("\n");
}
