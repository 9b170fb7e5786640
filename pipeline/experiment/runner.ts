/**
 * Running an experiment (`deno task experiment TABLE`): the runs `spec.ts` plans from a table
 * of `tables.ts`, trained one after another on one GPU (or one per worker process,
 * `../executor.ts`), each in its own directory, resumable, a failing run recorded in its row
 * instead of stopping the sweep.
 *
 * The small-scale protocol mirrors the paper's at a size that runs on a CPU (spec §14.5): an
 * "epoch" is a fixed number of steps, each epoch ends with a validation (on a prefix of the
 * validation set), NT-ASGD's trigger counts these epochs, one connectivity update follows each
 * epoch's validation (none after the last one), the removal rate anneals over the whole run to
 * p_min at the last update, and the test measures the best weights.
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import { type ProgressInfo, progressLine, ProgressPrinter } from "../progress.ts";
import type { MethodName } from "../sparsity/method.ts";
import { train, type TrainingData } from "../train.ts";
import { DEFAULTS, type TrainConfig } from "../config.ts";
import { sparsitySettings } from "../run/settings.ts";
import type { RunPlan } from "../plan.ts";
import { sparsityPlanProblem } from "../sparsity/stage.ts";
import { summaryJson } from "../run/finish.ts";
import { writeAtomic } from "../atomic.ts";
import { ExperimentError, type PlannedRun } from "./spec.ts";
import {
  type ExperimentResult,
  resultFromSummary,
  resultsCsv,
  type ResultsHeader,
  resultsMarkdown,
  runIdentity,
} from "./results.ts";

/**
 * Why a planned run cannot follow its plan (e.g. gradual pruning whose window ends after the
 * last update), one message per such run; empty when every run can.
 *
 * @example
 * ```ts ignore
 * const problems = planProblems(runs, planOf); // ["lstm-gmp-adam-seed1111: gmp prunes to its final density ..."]
 * ```
 */
export function planProblems(
  runs: readonly PlannedRun[],
  planOf: (run: PlannedRun) => RunPlan,
): string[] {
  return runs.flatMap((r) => {
    const why = sparsityPlanProblem(sparsitySettings(r.config), planOf(r));
    return why ? [`${r.key}: ${why}`] : [];
  });
}

/** A progress printer whose lines carry the run's name; silent when `quiet`. */
export class PrefixedPrinter extends ProgressPrinter {
  constructor(readonly prefix: string, readonly quiet = false) {
    super(false);
  }

  override update(p: ProgressInfo): void {
    if (!this.quiet) {
      console.log(`  [${this.prefix}] ${progressLine(p)}`);
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
  return `${outDir}/${run.key}`;
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Whether a run directory's `config.json` (`before`) is `config`: the same settings, where a
 * setting `before` lacks counts as the same when `config` has its default (a later version's
 * new setting does not orphan a sweep's runs).
 */
function sameConfig(before: Record<string, unknown>, config: TrainConfig): boolean {
  const json = (v: unknown) => JSON.stringify(v);
  const now = JSON.parse(json(config)) as Record<string, unknown>;
  const defaults = DEFAULTS as unknown as Record<string, unknown>;
  return Object.keys(before).every((k) => k in now) &&
    Object.entries(now).every(([k, v]) =>
      k in before ? json(before[k]) === json(v) : json(v) === json(defaults[k])
    );
}

/** The row of a run that has no figures (yet): its names and nothing measured. */
function emptyResult(run: PlannedRun) {
  return {
    ...runIdentity(run),
    data: run.config.data ?? "synthetic corpus",
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
 * await writeResultTables(outDir, header, await collectResults(runs, outDir));
 * ```
 */
export async function collectResults(
  runs: readonly PlannedRun[],
  outDir: string,
): Promise<ExperimentResult[]> {
  return await Promise.all(runs.map(async (run) => {
    const dir = runDir(outDir, run);
    const done = await readIfExists(`${dir}/result.json`);
    if (done !== null) return JSON.parse(done) as ExperimentResult;
    const failed = await readIfExists(`${dir}/failed.json`);
    return {
      ...emptyResult(run),
      elapsedSec: null,
      status: failed !== null ? "failed" : "missing",
      note: failed !== null ? (JSON.parse(failed) as { note: string }).note : "not run yet",
    } satisfies ExperimentResult;
  }));
}

/**
 * Trains `runs` one after another on `gpu`, each on `dataFor(run)`. Each run has its directory
 * (`runDir`) holding `run.json` (its place in the table), `config.json`, `log.csv`, `run.ckpt` (saved at every epoch end),
 * `summary.json` and `result.json`; `results.csv` and `results.md` are rewritten after every
 * run. Rerunning the same command continues: a run with a `result.json` of the same config is
 * taken as done, one with a checkpoint resumes from it, the rest start; a run directory of
 * another config is refused. A run that throws is recorded with its error and the next one
 * starts; an interrupted one (Ctrl-C) is saved and ends the sweep; an unregistered method is
 * recorded as skipped.
 *
 * @example
 * ```ts ignore
 * const rows = await runExperiment(gpu, runs, async () => data, { outDir, available, header });
 * ```
 */
export async function runExperiment(
  gpu: Gpu,
  runs: readonly PlannedRun[],
  dataFor: (run: PlannedRun) => Promise<TrainingData>,
  options: RunnerOptions,
): Promise<ExperimentResult[]> {
  const log = options.log ?? ((s: string) => console.log(s));
  const trainFn = options.trainFn ?? train;
  const rows: ExperimentResult[] = [];
  const flush = async () => {
    if (options.tables === false) return;
    await writeResultTables(options.outDir, options.header, rows);
  };
  const empty = emptyResult;
  for (const [i, run] of runs.entries()) {
    const name = run.key;
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
    if (before !== null && !sameConfig(JSON.parse(before), run.config)) {
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
    await writeAtomic(
      `${dir}/run.json`,
      JSON.stringify({ ...runIdentity(run), corpus: run.corpus }, null, 2) + "\n",
    );
    const ckpt = `${dir}/run.ckpt`;
    const resume = await Deno.stat(ckpt).then(() => ckpt, () => null);
    // without a checkpoint the run starts over, and so does its log
    if (!resume) await Deno.remove(`${dir}/log.csv`).catch(() => {});
    log(
      `${tag}: lr ${run.config.lr}, clip ${run.config.clip}` +
        (resume ? `; resuming from ${ckpt}` : ""),
    );
    const t0 = performance.now();
    try {
      const data = await dataFor(run);
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
      // a resumed run's clock holds the time its earlier processes trained (not their setup)
      const total = Math.max(wall, s.elapsedSec);
      const row = resultFromSummary(run, s, total);
      if (s.averagedAfterEpoch !== null) {
        row.note = `averaged weights from epoch ${s.averagedAfterEpoch + 1}`;
      }
      rows.push(row);
      await writeAtomic(
        `${dir}/summary.json`,
        JSON.stringify({ ...summaryJson(s), "wall_sec": total, config: run.config }, null, 2) +
          "\n",
      );
      await writeAtomic(`${dir}/result.json`, JSON.stringify(row, null, 2) + "\n");
      await Deno.remove(`${dir}/failed.json`).catch(() => {}); // an earlier attempt's
      log(
        `${tag}: val ppl ${s.valPpl.toFixed(2)}, test ppl ${s.testPpl.toFixed(2)}, ` +
          `${s.activeParameters}/${s.parameters} params, ${wall.toFixed(0)} s` +
          (resume ? ` (${total.toFixed(0)} s with the interrupted part)` : ""),
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
