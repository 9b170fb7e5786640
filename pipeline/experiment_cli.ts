/**
 * `deno task experiment TABLE [--scale paper|small] [flags]`: runs one of the paper's tables
 * (`experiment/tables.ts`) and writes one directory per run, `results.csv` and `results.md`
 * to `--out DIR` (default `experiments/<table>-<scale>-<timestamp>`); `list` shows every table
 * with its runs and estimated cost. Bad input exits with code 2 and one message; a run that
 * fails is recorded in its row and the others still run (exit 1 at the end if any failed).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { GPU_FLAG_OPTIONS, GPU_FLAG_USAGE, openGpuFromFlags } from "./gpu_flags.ts";
import { DataError } from "./data/errors.ts";
import { DEFAULTS, type OptimizerName, type TrainConfig } from "./config.ts";
import { describeAdapter } from "../kernels/runtime/device.ts";
import { loadTrainingData, type TrainingData } from "./train.ts";
import { modelFamily } from "../models/families.ts";
import { runModelConfig, runPlan } from "./run/setup.ts";
import { runData } from "./run/data.ts";
import { syntheticCorpus } from "./data/synthetic.ts";
import { METHODS } from "./sparsity/methods/mod.ts";
import { runLocalJobs, slurmScript, submitSlurm, sweepFlags, workerArgs } from "./executor.ts";
import { writeAtomic } from "./atomic.ts";
import { METHOD_NAMES } from "./sparsity/method.ts";
import type { RunPlan } from "./plan.ts";
import {
  collectResults,
  planProblems,
  runDir,
  runExperiment,
  writeResultTables,
} from "./experiment/runner.ts";
import {
  type ExperimentResult,
  planSummary,
  type ResultsHeader,
  runIdentity,
} from "./experiment/results.ts";
import {
  type CorpusName,
  ExperimentError,
  type ExperimentSpec,
  NO_OVERRIDES,
  type PlannedRun,
  planSpec,
  type Scale,
  SCALES,
  type SpecOverrides,
} from "./experiment/spec.ts";
import { TABLES } from "./experiment/tables.ts";
import { type DeviceRate, durationText, experimentCost, LLVMPIPE } from "./experiment/cost.ts";

const OPTIMIZERS: readonly OptimizerName[] = ["adam", "momentum", "sgd", "ntasgd"];

const USAGE = `usage: deno task experiment TABLE [--scale small|paper] [flags]
       deno task experiment list [--gflops R] [--cell-ms M]   (every table: runs, steps, estimated cost)

Tables:
${Object.values(TABLES).map((e) => `  ${e.name.padEnd(8)} ${e.title}`).join("\n")}

  --scale small (default) trains spec §14.5's small models on the small-scale protocol (8
  epochs of 100 steps, one connectivity update per epoch); --scale paper the paper's (a GPU's
  work: days per run). Every other flag overrides every run of the table:
  --data DIR         a corpus directory (train.txt, valid.txt, test.txt) or one holding ptb/
                     and wikitext-2/ (default: the synthetic corpus; --scale paper needs it)
  --models a,b,...   only these blocks of the table (lstm, rhn, onlstm, mos, ...)
  --methods a,b,...  only these methods      --optimizers a,b,...  only these optimizers
  --seed N           first seed (default: the model's)
  --seeds N          runs per row, seeds seed .. seed+N-1 (default 1)
  --epochs N  --epoch-steps N (0 = one pass)  --steps N (cap every run's length)
  --nonmono N  --valid-tokens N (0 = all)  --update-every N (0 = once per epoch)
  --nhid N --emsize N --nlayers N --batch-size N --bptt N --density D --lr X
  --storage masked|csr  sparse weights masked-dense (default) or true sparse CSR where the
                     method allows it (RigL, SNFS, ISS and the dense ones stay masked)
  --out DIR          output directory (default experiments/TABLE-SCALE-TIMESTAMP)
  --quiet            no per-step progress lines, one line per run
  --executor local|slurm  local (default): this process, or --jobs N worker processes at once;
                     slurm: an sbatch job array, one task per run (--partition P --time T
                     --gpus-per-task N --sbatch-arg=--mem=16G ...; --dry-run writes the
                     script into --out without submitting); rerunning continues a sweep
  --run-index K      run only run K of the grid (what the workers run)
  ${GPU_FLAG_USAGE}`;

function positiveInt(flag: string, raw: string | undefined): number | null {
  if (raw === undefined) return null;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(v) || v <= 0) {
    throw new ExperimentError(`--${flag}: expected an integer > 0, got ${JSON.stringify(raw)}`);
  }
  return v;
}

function number(
  flag: string,
  raw: string | undefined,
  ok: (v: number) => boolean,
  expected: string,
): number | null {
  if (raw === undefined) return null;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || !ok(v)) {
    throw new ExperimentError(`--${flag}: expected ${expected}, got ${JSON.stringify(raw)}`);
  }
  return v;
}

/** A comma-separated `--flag` of names from `known`; `null` when the flag is absent. */
function nameList<T extends string>(
  flag: string,
  raw: string | undefined,
  known: readonly T[],
): T[] | null {
  if (raw === undefined) return null;
  const names = raw.split(",").map((m) => m.trim()).filter((m) => m) as T[];
  const bad = names.filter((m) => !known.includes(m));
  if (bad.length || names.length === 0) {
    const what = flag.replace(/s$/, "");
    throw new ExperimentError(
      `--${flag}: unknown ${what} ${JSON.stringify(bad[0] ?? raw)} (known: ${known.join(", ")})`,
    );
  }
  return names;
}

/** The executor's flags. */
export interface ExecutorArgs {
  kind: "local" | "slurm";
  /** Concurrent worker processes of the local executor (1: this process, in turn). */
  jobs: number;
  /** A worker: run only this run of the grid (`--run-index`). */
  runIndex: number | null;
  /** Slurm: write the script without submitting it. */
  dryRun: boolean;
  partition: string | null;
  time: string | null;
  gpusPerTask: string | null;
  sbatchArgs: string[];
}

/** Parsed command line: the table, its scale and overrides, and the output choices. */
export interface ExperimentArgs {
  name: string;
  scale: Scale;
  overrides: SpecOverrides;
  /** `--data` as given (`null`: the synthetic corpus). */
  data: string | null;
  out: string | null;
  quiet: boolean;
  /** Where the runs execute (`executor.ts`). */
  executor: ExecutorArgs;
}

/** `--data DIR`'s corpus directory for `corpus`: DIR itself when it holds one, else DIR/<corpus>. */
function corpusDir(data: string | null, corpus: CorpusName): string | null {
  if (data === null) return null;
  try {
    Deno.statSync(`${data}/train.txt`);
    return data;
  } catch {
    return `${data}/${corpus}`;
  }
}

/**
 * Parses and validates the command line (no GPU work; `--data` is looked at, not read).
 *
 * @example
 * ```ts
 * import { parseExperimentArgs } from "./experiment_cli.ts";
 * parseExperimentArgs(["table2", "--steps", "40"]).overrides.config.maxSteps; // 40
 * ```
 */
export function parseExperimentArgs(argv: readonly string[]): ExperimentArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        ...GPU_FLAG_OPTIONS,
        scale: { type: "string" },
        models: { type: "string" },
        steps: { type: "string" },
        epochs: { type: "string" },
        "epoch-steps": { type: "string" },
        nonmono: { type: "string" },
        "valid-tokens": { type: "string" },
        methods: { type: "string" },
        optimizers: { type: "string" },
        nhid: { type: "string" },
        emsize: { type: "string" },
        nlayers: { type: "string" },
        "batch-size": { type: "string" },
        bptt: { type: "string" },
        density: { type: "string" },
        seed: { type: "string" },
        seeds: { type: "string" },
        data: { type: "string" },
        lr: { type: "string" },
        "update-every": { type: "string" },
        storage: { type: "string" },
        out: { type: "string" },
        quiet: { type: "boolean" },
        executor: { type: "string" },
        jobs: { type: "string" },
        "run-index": { type: "string" },
        "dry-run": { type: "boolean" },
        partition: { type: "string" },
        time: { type: "string" },
        "gpus-per-task": { type: "string" },
        "sbatch-arg": { type: "string", multiple: true },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    throw new ExperimentError((e as Error).message);
  }
  const v = parsed.values;
  const known = Object.keys(TABLES).join(", ");
  if (parsed.positionals.length !== 1) {
    throw new ExperimentError(
      `expected one table name (${known}), got ${
        parsed.positionals.length ? parsed.positionals.join(" ") : "none"
      }`,
    );
  }
  const name = parsed.positionals[0];
  if (!(name in TABLES)) {
    throw new ExperimentError(`unknown table ${JSON.stringify(name)} (known: ${known}, list)`);
  }
  const scale = (v.scale ?? "small") as Scale;
  if (!SCALES.includes(scale)) {
    throw new ExperimentError(
      `--scale: expected ${SCALES.join(" or ")}, got ${JSON.stringify(v.scale)}`,
    );
  }
  const int0 = (flag: string, raw: string | undefined) =>
    number(flag, raw, (x) => Number.isInteger(x) && x >= 0, "an integer >= 0");
  const config: Partial<TrainConfig> = {};
  const set = <K extends keyof TrainConfig>(key: K, value: TrainConfig[K] | null | undefined) => {
    if (value !== null && value !== undefined) config[key] = value;
  };
  set("maxSteps", positiveInt("steps", v.steps));
  set("epochs", positiveInt("epochs", v.epochs));
  const epochSteps = int0("epoch-steps", v["epoch-steps"]);
  if (epochSteps !== null) config.epochSteps = epochSteps === 0 ? null : epochSteps;
  set("nonmono", positiveInt("nonmono", v.nonmono));
  const validTokens = int0("valid-tokens", v["valid-tokens"]);
  if (validTokens !== null) config.validTokens = validTokens === 0 ? null : validTokens;
  const nhid = positiveInt("nhid", v.nhid);
  set("nhid", nhid);
  set("emsize", positiveInt("emsize", v.emsize) ?? nhid);
  set("nlayers", positiveInt("nlayers", v.nlayers));
  const batch = positiveInt("batch-size", v["batch-size"]);
  set("batchSize", batch);
  set("evalBatchSize", batch);
  set("bptt", positiveInt("bptt", v.bptt));
  set("density", number("density", v.density, (x) => x > 0 && x <= 1, "a number in (0, 1]"));
  set("seed", number("seed", v.seed, Number.isInteger, "an integer"));
  set("lr", number("lr", v.lr, (x) => x > 0, "a number > 0"));
  set("updateEvery", int0("update-every", v["update-every"]));
  set("adapter", v.adapter);
  set("variant", v.variant);
  if (v.storage !== undefined && v.storage !== "masked" && v.storage !== "csr") {
    throw new ExperimentError(
      `--storage: expected masked or csr, got ${JSON.stringify(v.storage)}`,
    );
  }
  if (v.data === "") throw new ExperimentError("--data: expected a directory");
  if (v.out === "") throw new ExperimentError("--out: expected a directory");
  const data = v.data ?? null;
  const spec = TABLES[name];
  const overrides: SpecOverrides = {
    config,
    seeds: positiveInt("seeds", v.seeds) ?? 1,
    methods: nameList("methods", v.methods, METHOD_NAMES),
    optimizers: nameList("optimizers", v.optimizers, OPTIMIZERS),
    blocks: nameList("models", v.models, [...new Set(spec.blocks.map((b) => b.key))]),
    storage: (v.storage as "masked" | "csr" | undefined) ?? null,
    data: (corpus) => corpusDir(data, corpus),
  };
  // catch --methods outside the table, and settings the runs refuse, before any work
  const runs = planSpec(spec, scale, overrides);
  if (data === null && scale === "paper" && runs.length > 0) {
    throw new ExperimentError(
      `--scale paper trains on ${[...new Set(runs.map((r) => r.corpus))].join(" and ")}: ` +
        "pass --data DIR (a corpus directory, or one holding ptb/ and wikitext-2/)",
    );
  }
  const corpora = [...new Set(runs.map((r) => r.corpus))];
  if (data !== null && corpora.length > 1 && corpusDir(data, "ptb") === data) {
    throw new ExperimentError(
      `--data ${data}: ${name} trains on ${corpora.join(" and ")}; pass a directory ` +
        "holding ptb/ and wikitext-2/ (or --models to train one of them)",
    );
  }
  const kind = v.executor ?? "local";
  if (kind !== "local" && kind !== "slurm") {
    throw new ExperimentError(`--executor: expected local or slurm, got ${JSON.stringify(kind)}`);
  }
  const executor: ExecutorArgs = {
    kind,
    jobs: positiveInt("jobs", v.jobs) ?? 1,
    runIndex: int0("run-index", v["run-index"]),
    dryRun: v["dry-run"] ?? false,
    partition: v.partition ?? null,
    time: v.time ?? null,
    gpusPerTask: v["gpus-per-task"] ?? null,
    sbatchArgs: v["sbatch-arg"] ?? [],
  };
  if (kind === "slurm" && executor.jobs > 1) {
    throw new ExperimentError("--jobs is the local executor's; Slurm runs one array task per run");
  }
  if (kind === "local" && (executor.dryRun || executor.partition || executor.time)) {
    throw new ExperimentError("--dry-run, --partition and --time are the slurm executor's");
  }
  return { name, scale, overrides, data, out: v.out ?? null, quiet: v.quiet ?? false, executor };
}

function timestamp(date: Date): string {
  return date.toISOString().slice(0, 19).replaceAll(":", "-");
}

/**
 * `deno task experiment list`: every table at both scales with its runs, their length, their
 * dense-equivalent training FLOPs on the paper's corpora and the time training and evaluation
 * take on `device` (`experiment/cost.ts`); small scale also on the synthetic corpus (the
 * default data).
 *
 * @example
 * ```ts
 * import { experimentList } from "./experiment_cli.ts";
 * experimentList().includes("table2"); // true
 * ```
 */
export function experimentList(device: DeviceRate = LLVMPIPE): string {
  const synth = syntheticCorpus();
  const synthetic = {
    vocab: synth.vocab.size,
    trainTokens: synth.train.length,
    validTokens: synth.valid.length,
    testTokens: synth.test.length,
  };
  const rows = Object.values(TABLES).flatMap((t) => {
    if (t.page) return [`  ${t.name.padEnd(8)} ${"".padEnd(6)} ${t.title}`];
    return SCALES.map((scale) => {
      const c = experimentCost(t, scale, NO_OVERRIDES, device);
      const steps = c.minSteps === c.maxSteps ? `${c.maxSteps}` : `${c.minSteps}–${c.maxSteps}`;
      const onSynthetic = scale === "small"
        ? `, ${
          durationText(experimentCost(t, scale, NO_OVERRIDES, device, () => synthetic).seconds)
        } ` +
          "on the synthetic corpus"
        : "";
      return `  ${t.name.padEnd(8)} ${scale.padEnd(6)} ${String(c.runs).padStart(3)} runs × ` +
        `${steps} steps, ≈ ${(c.trainFlops / 1e12).toFixed(1)} TFLOP, ` +
        `≈ ${durationText(c.seconds)}${onSynthetic}  ${t.title}`;
    });
  });
  const measured = device.flops === LLVMPIPE.flops && device.cellSeconds === LLVMPIPE.cellSeconds;
  return [
    `tables (runs × steps per run; training FLOPs dense-equivalent on the paper's corpora, an ` +
    `upper bound for the sparse runs; time of training and evaluation at ` +
    `${(device.flops / 1e9).toFixed(1)} GFLOP/s or ${+(device.cellSeconds * 1e3).toFixed(3)} ms ` +
    "per cell and time step of a training step, whichever bounds it" +
    (measured ? ", llvmpipe as measured here (bench/results/)" : "") +
    "; --gflops R and --cell-ms M for another device):",
    ...rows,
  ].join("\n");
}

const SCRIPT = new URL(import.meta.url).pathname;

/** Writes the sweep's sbatch script into `outDir` and submits it (unless `--dry-run`). */
async function submitSweep(
  name: string,
  argv: string[],
  outDir: string,
  tasks: number,
  ex: ExecutorArgs,
): Promise<number> {
  await Deno.mkdir(outDir, { recursive: true });
  const out = outDir.startsWith("/") ? outDir : `${Deno.cwd()}/${outDir}`;
  const flags = [...sweepFlags(argv, out), "--quiet"];
  const script = `${out}/sbatch.sh`;
  await writeAtomic(
    script,
    slurmScript({
      jobName: `selfish-${name}`,
      cwd: Deno.cwd(),
      command: [
        Deno.execPath(),
        ...workerArgs(SCRIPT, flags, 0).slice(0, -1),
        "$SLURM_ARRAY_TASK_ID",
      ],
      tasks,
      output: `${out}/slurm-%A_%a.out`,
      partition: ex.partition ?? undefined,
      time: ex.time ?? undefined,
      gpusPerTask: ex.gpusPerTask ?? undefined,
      extra: ex.sbatchArgs,
    }),
  );
  if (ex.dryRun) {
    console.log(`wrote ${script} (${tasks} array tasks); submit it with: sbatch ${script}`);
    return 0;
  }
  let id: string;
  try {
    id = await submitSlurm(script);
  } catch (e) {
    throw new ExperimentError((e as Error).message);
  }
  console.log(
    `submitted ${script} as Slurm job ${id} (${tasks} array tasks); when they end: ` +
      `deno task report ${outDir}`,
  );
  return 0;
}

/** Loads each corpus the runs use once (`null` directory: the synthetic corpus). */
function dataLoader(): (run: PlannedRun) => Promise<TrainingData> {
  const cache = new Map<string, Promise<TrainingData>>();
  return (run) => {
    const key = run.config.data ?? "";
    if (!cache.has(key)) cache.set(key, loadTrainingData({ ...DEFAULTS, data: run.config.data }));
    return cache.get(key)!;
  };
}

/** The results' header: the data, each block's model and plan, the optimizers. */
async function resultsHeader(
  spec: ExperimentSpec,
  scale: Scale,
  runs: readonly PlannedRun[],
  dataFor: (run: PlannedRun) => Promise<TrainingData>,
  planOf: (run: PlannedRun) => RunPlan,
  adapter: string,
  date: Date,
): Promise<ResultsHeader> {
  const blocks = [...new Map(runs.map((r) => [`${r.block}/${r.corpus}`, r])).values()];
  const data: string[] = [];
  const settings: string[] = [`scale: ${scale}`];
  const steps: string[] = [];
  for (const first of blocks) {
    const d = await dataFor(first);
    const c = first.config;
    const described = d.description +
      (d.optimalPerplexity ? ` (optimal ppl ${d.optimalPerplexity.toFixed(2)})` : "");
    if (!data.includes(described)) data.push(described);
    const setup = spec.blocks.find((b) => b.key === first.block)!.model[scale];
    const family = modelFamily(c.model);
    const mine = runs.filter((r) => r.block === first.block);
    const planned = planSummary(planOf(first), c, runData(c, d).passWindows(0).length);
    settings.push(
      `${first.block}: ${setup.label}, ${family.summary}: ${
        JSON.stringify(runModelConfig(c, d.corpus.vocab.size).full)
      }; batch ${c.batchSize}, bptt ${c.bptt}${c.variableBptt ? " (variable)" : ""}; density ` +
        `${[...new Set(mine.map((r) => r.density))].join(", ")}; optimizers ${
          [...new Map(mine.map((r) => [r.optimizer, r.config])).values()].map((k) =>
            `${k.optimizer} lr ${k.lr}${k.clip ? ` clip ${k.clip}` : ""}`
          ).join(", ")
        }; storage ${[...new Set(mine.map((r) => r.config.storage))].join(", ")}; ` +
        `connectivity updates: ${planned.updates}; source: ${setup.source}`,
    );
    steps.push(`${first.block}: ${planned.steps}`);
  }
  if (runs.some((r) => r.optimizer === "ntasgd")) {
    settings.push(
      "ntasgd on a sparse model is SNT-ASGD (mask-aware averaging); the note says where a " +
        "run switched to averaging",
    );
  }
  const skipped = [...new Set(runs.map((r) => r.method).filter((m) => !METHODS[m]))];
  if (skipped.length) {
    settings.push(`skipped (not registered in pipeline/sparsity/methods/mod.ts): ${skipped}`);
  }
  const seeds = [...new Set(runs.map((r) => r.config.seed))];
  return {
    experiment: spec,
    data: data.join("; "),
    steps: steps.join("; "),
    seed: seeds.join(", "),
    adapter,
    date: date.toISOString(),
    settings,
  };
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  try {
    if (argv[0] === "list") {
      const flag = (name: string, ok: (x: number) => boolean, what: string) => {
        const i = argv.indexOf(`--${name}`);
        return i < 0 ? null : number(name, argv[i + 1], ok, what);
      };
      const gflops = flag("gflops", (x) => x > 0, "a number > 0");
      const cellMs = flag("cell-ms", (x) => x >= 0, "a number >= 0");
      console.log(experimentList({
        ...LLVMPIPE,
        ...(gflops !== null ? { flops: gflops * 1e9 } : {}),
        ...(cellMs !== null ? { cellSeconds: cellMs / 1e3 } : {}),
      }));
      return 0;
    }
    const args = parseExperimentArgs(argv);
    const spec = TABLES[args.name];
    const start = new Date();
    const outDir = args.out ?? `experiments/${spec.name}-${args.scale}-${timestamp(start)}`;
    if (spec.page) {
      await Deno.mkdir(outDir, { recursive: true });
      await writeAtomic(`${outDir}/${spec.name}.md`, spec.page);
      console.log(`${spec.page}\nwrote ${outDir}/${spec.name}.md`);
      return 0;
    }
    const runs = planSpec(spec, args.scale, args.overrides);
    const ex = args.executor;
    if (ex.runIndex !== null && ex.runIndex >= runs.length) {
      throw new ExperimentError(`--run-index ${ex.runIndex}: the grid has ${runs.length} runs`);
    }
    const mine = ex.runIndex === null ? runs : [runs[ex.runIndex]];
    const dataFor = dataLoader();
    const plans = new Map<PlannedRun, RunPlan>();
    for (const r of mine) {
      const rd = runData(r.config, await dataFor(r));
      plans.set(r, runPlan(r.config, (p) => rd.passWindows(p).length));
    }
    const planOf = (r: PlannedRun) => plans.get(r)!;
    const problems = planProblems(mine, planOf);
    if (problems.length) throw new ExperimentError(problems.join("; "));
    if (ex.runIndex === null) {
      // the grid, for the report to mark the runs no process has started yet
      await Deno.mkdir(outDir, { recursive: true });
      await writeAtomic(
        `${outDir}/plan.json`,
        JSON.stringify(
          { experiment: spec.name, scale: args.scale, runs: runs.map(runIdentity) },
          null,
          2,
        ) + "\n",
      );
    }
    if (ex.kind === "slurm" && ex.runIndex === null) {
      return await submitSweep(spec.name, argv, outDir, runs.length, ex);
    }
    const gpu = await openGpuFromFlags("experiment", {
      adapter: args.overrides.config.adapter ?? undefined,
      variant: args.overrides.config.variant ?? undefined,
    });
    if (typeof gpu === "number") return gpu;
    await Deno.mkdir(outDir, { recursive: true });
    const header = await resultsHeader(
      spec,
      args.scale,
      mine,
      dataFor,
      planOf,
      describeAdapter(gpu.report),
      start,
    );
    console.log(
      `experiment ${spec.name} --scale ${args.scale}: ${runs.length} runs; writing to ${outDir}`,
    );
    for (const s of header.settings) console.log(`  ${s}`);
    const available = (m: string) => METHODS[m as keyof typeof METHODS] !== undefined;
    if (ex.runIndex !== null) {
      // a worker: its run alone, into its directory
      const rows = await runExperiment(gpu, mine, dataFor, {
        outDir,
        available,
        header,
        quiet: args.quiet,
        tables: false,
      });
      return rows.some((r) => r.status === "failed") ? 1 : 0;
    }
    let rows: ExperimentResult[];
    if (ex.jobs > 1) {
      const flags = sweepFlags(argv, outDir);
      const dirOf = (k: number) => runDir(outDir, runs[k]);
      for (const k of runs.keys()) await Deno.mkdir(dirOf(k), { recursive: true });
      const logOf = (k: number) => `${dirOf(k)}/worker.log`;
      console.log(
        `  local executor: ${ex.jobs} worker processes, each run's output in its worker.log`,
      );
      const ended = await runLocalJobs(
        Deno.execPath(),
        (k) => workerArgs(SCRIPT, flags, k),
        runs.map((_, k) => k),
        ex.jobs,
        logOf,
      );
      for (const w of ended.filter((w) => w.code !== 0)) {
        console.log(
          `run ${w.index} failed (exit ${w.code}); the end of ${logOf(w.index)}:\n${w.tail}`,
        );
      }
      rows = await collectResults(runs, outDir);
      await writeResultTables(outDir, header, rows);
    } else {
      rows = await runExperiment(gpu, runs, dataFor, {
        outDir,
        available,
        header,
        quiet: args.quiet,
      });
    }
    console.log(`\n${await Deno.readTextFile(`${outDir}/results.md`)}`);
    console.log(
      `results: ${outDir}/results.csv, ${outDir}/results.md; plots: deno task report ${outDir}`,
    );
    return rows.some((r) => r.status === "failed" || r.status === "missing") ? 1 : 0;
  } catch (e) {
    if (e instanceof ExperimentError || e instanceof DataError) {
      console.error(`experiment: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
