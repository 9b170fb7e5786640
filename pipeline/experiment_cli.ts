/**
 * `deno task experiment NAME [flags]`: runs one of the small-scale paper experiments
 * (`table2-small`, `table3-small`) and writes `results.csv`, `results.md` and one summary JSON
 * per run to `--out DIR` (default `experiments/<name>-<timestamp>`). Bad input exits with code 2
 * and one message; a run that fails is recorded in its row and the others still run (exit 1
 * at the end if any failed).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { GPU_FLAG_OPTIONS, GPU_FLAG_USAGE, openGpuFromFlags } from "./gpu_flags.ts";
import { DataError } from "./data/errors.ts";
import { DEFAULTS, type OptimizerName } from "./config.ts";
import { describeAdapter } from "../kernels/runtime/device.ts";
import { loadTrainingData } from "./train.ts";
import { modelFamily } from "../models/families.ts";
import { runModelConfig } from "./run/setup.ts";
import { METHODS } from "./sparsity/methods/mod.ts";
import { runLocalJobs, slurmScript, submitSlurm, sweepFlags, workerArgs } from "./executor.ts";
import { writeAtomic } from "./atomic.ts";
import { METHOD_NAMES } from "./sparsity/method.ts";
import {
  collectResults,
  EXPERIMENT_DEFAULTS,
  experimentCost,
  ExperimentError,
  type ExperimentOptions,
  experimentPlan,
  type ExperimentResult,
  EXPERIMENTS,
  OPTIMIZER_SETTINGS,
  planExperiment,
  planProblems,
  planSummary,
  type ResultsHeader,
  runDir,
  runExperiment,
  windowsPerEpoch,
  writeResultTables,
} from "./experiment.ts";

const d = EXPERIMENT_DEFAULTS;
const USAGE = `usage: deno task experiment NAME [flags]
       deno task experiment list      (the experiments, their runs and sizes)

Experiments:
${Object.values(EXPERIMENTS).map((e) => `  ${e.name.padEnd(14)} ${e.title}`).join("\n")}

Flags:
  --epochs N         epochs of every run (default ${d.epochs})
  --epoch-steps N    steps per epoch (default ${d.epochSteps}; 0 = one pass over the data):
                     each epoch ends with a validation and one connectivity update
  --steps N          cap the planned length of every run (default: all epochs)
  --nonmono N        NT-ASGD's non-monotone interval, in epochs (default ${d.nonmono})
  --valid-tokens N   epoch-end validations on the first N tokens (default ${d.validTokens};
                     0 = all); the best weights are validated on all of them at the end
  --methods a,b,...  run only these methods of the experiment
  --optimizers a,b,...  run only these optimizers of the experiment
  --nhid N --emsize N --nlayers N   model (default ${d.nhid}/${d.emsize}/${d.nlayers}; emsize follows nhid)
  --batch-size N --bptt N           (default ${d.batchSize}, ${d.bptt})
  --density D        density of the sparse models (default ${d.density})
  --seed N           seed of every run (default ${d.seed})
  --seeds N          runs per method and optimizer, seeds seed .. seed+N-1 (default 1)
  --data DIR         train.txt/valid.txt/test.txt (default: the synthetic corpus)
  --lr X             learning rate of every run (default per optimizer: ${
  Object.entries(OPTIMIZER_SETTINGS).map(([k, v]) => `${k} ${v.lr}`).join(", ")
})
  --update-every N   steps between connectivity updates (default 0: once per epoch)
  --storage masked|csr  sparse weights as masked-dense (default) or true sparse CSR (methods
                     that need dense gradients or momentum, RigL and SNFS, and ISS stay masked)
  --out DIR          output directory (default experiments/NAME-TIMESTAMP)
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

/** Parsed command line: the experiment, its options and the output choices. */
export interface ExperimentArgs {
  name: string;
  options: ExperimentOptions;
  out: string | null;
  quiet: boolean;
  /** Where the runs execute (`executor.ts`). */
  executor: ExecutorArgs;
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

/**
 * Parses and validates the command line (no I/O).
 *
 * @example
 * ```ts
 * import { parseExperimentArgs } from "./experiment_cli.ts";
 * parseExperimentArgs(["table2-small", "--steps", "40"]).options.steps; // 40
 * ```
 */
export function parseExperimentArgs(argv: readonly string[]): ExperimentArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        ...GPU_FLAG_OPTIONS,
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
  const known = Object.keys(EXPERIMENTS).join(", ");
  if (parsed.positionals.length !== 1) {
    throw new ExperimentError(
      `expected one experiment name (${known}), got ${
        parsed.positionals.length ? parsed.positionals.join(" ") : "none"
      }`,
    );
  }
  const name = parsed.positionals[0];
  if (!(name in EXPERIMENTS)) {
    throw new ExperimentError(`unknown experiment ${JSON.stringify(name)} (known: ${known})`);
  }
  const methods = nameList("methods", v.methods, METHOD_NAMES);
  const optimizers = nameList(
    "optimizers",
    v.optimizers,
    Object.keys(OPTIMIZER_SETTINGS) as OptimizerName[],
  );
  const steps = positiveInt("steps", v.steps);
  const epochs = positiveInt("epochs", v.epochs);
  const int0 = (flag: string, raw: string | undefined) =>
    number(flag, raw, (x) => Number.isInteger(x) && x >= 0, "an integer >= 0");
  const epochSteps = int0("epoch-steps", v["epoch-steps"]);
  const validTokens = int0("valid-tokens", v["valid-tokens"]);
  const nhid = positiveInt("nhid", v.nhid) ?? d.nhid;
  const seed = number("seed", v.seed, Number.isInteger, "an integer");
  const options: ExperimentOptions = {
    ...d,
    steps,
    epochs: epochs ?? d.epochs,
    epochSteps: epochSteps === null ? d.epochSteps : epochSteps === 0 ? null : epochSteps,
    nonmono: int0("nonmono", v.nonmono) ?? d.nonmono,
    validTokens: validTokens === null ? d.validTokens : validTokens === 0 ? null : validTokens,
    nhid,
    emsize: positiveInt("emsize", v.emsize) ?? (v.nhid !== undefined ? nhid : d.emsize),
    nlayers: positiveInt("nlayers", v.nlayers) ?? d.nlayers,
    batchSize: positiveInt("batch-size", v["batch-size"]) ?? d.batchSize,
    bptt: positiveInt("bptt", v.bptt) ?? d.bptt,
    density: number("density", v.density, (x) => x > 0 && x <= 1, "a number in (0, 1]") ??
      d.density,
    seed: seed ?? d.seed,
    seeds: positiveInt("seeds", v.seeds) ?? d.seeds,
    data: v.data === undefined ? null : v.data,
    adapter: v.adapter ?? null,
    variant: v.variant ?? null,
    methods,
    optimizers,
    updateEvery: int0("update-every", v["update-every"]) ?? d.updateEvery,
    lr: number("lr", v.lr, (x) => x > 0, "a number > 0"),
  };
  if (v.storage !== undefined && v.storage !== "masked" && v.storage !== "csr") {
    throw new ExperimentError(
      `--storage: expected masked or csr, got ${JSON.stringify(v.storage)}`,
    );
  }
  if (v.storage !== undefined) options.storage = v.storage;
  if (options.data === "") throw new ExperimentError("--data: expected a directory");
  if (v.out === "") throw new ExperimentError("--out: expected a directory");
  // catch --methods outside the experiment's grid before any data or GPU work
  planExperiment(EXPERIMENTS[name], options, 1);
  const kind = v.executor ?? "local";
  if (kind !== "local" && kind !== "slurm") {
    throw new ExperimentError(`--executor: expected local or slurm, got ${JSON.stringify(kind)}`);
  }
  const runIndex = number(
    "run-index",
    v["run-index"],
    (x) => Number.isInteger(x) && x >= 0,
    "an integer >= 0",
  );
  const executor: ExecutorArgs = {
    kind,
    jobs: positiveInt("jobs", v.jobs) ?? 1,
    runIndex,
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
  return { name, options, out: v.out ?? null, quiet: v.quiet ?? false, executor };
}

function timestamp(date: Date): string {
  return date.toISOString().slice(0, 19).replaceAll(":", "-");
}

/**
 * `deno task experiment list`: every experiment with its runs and their size at the defaults.
 *
 * @example
 * ```ts
 * import { experimentList } from "./experiment_cli.ts";
 * experimentList().includes("table2-small"); // true
 * ```
 */
export function experimentList(): string {
  const rows = Object.values(EXPERIMENTS).map((e) => {
    const c = experimentCost(e, EXPERIMENT_DEFAULTS);
    return `  ${e.name.padEnd(14)} ${String(c.runs).padStart(3)} runs × ${c.stepsPerRun} steps, ` +
      `≈ ${(c.trainFlops / 1e12).toFixed(1)} TFLOP  ${e.title}`;
  });
  return [
    "experiments (runs × steps at the defaults; training FLOPs dense-equivalent on PTB's " +
    "vocabulary, an upper bound for the sparse runs):",
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

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  if (argv[0] === "list") {
    console.log(experimentList());
    return 0;
  }
  try {
    const args = parseExperimentArgs(argv);
    const def = EXPERIMENTS[args.name];
    const o = args.options;
    const data = await loadTrainingData({ ...DEFAULTS, data: o.data });
    const perEpoch = windowsPerEpoch(data.corpus.train, o.batchSize, o.bptt);
    const runs = planExperiment(def, o, perEpoch);
    const plan = experimentPlan(o, perEpoch);
    const problems = planProblems(runs, plan);
    if (problems.length) throw new ExperimentError(problems.join("; "));
    const ex = args.executor;
    if (ex.runIndex !== null && ex.runIndex >= runs.length) {
      throw new ExperimentError(`--run-index ${ex.runIndex}: the grid has ${runs.length} runs`);
    }
    if (ex.kind === "slurm" && ex.runIndex === null) {
      const outDir = args.out ?? `experiments/${def.name}-${timestamp(new Date())}`;
      return await submitSweep(def.name, argv, outDir, runs.length, ex);
    }
    const gpu = await openGpuFromFlags("experiment", {
      adapter: o.adapter ?? undefined,
      variant: o.variant ?? undefined,
    });
    if (typeof gpu === "number") return gpu;
    const start = new Date();
    const outDir = args.out ?? `experiments/${def.name}-${timestamp(start)}`;
    await Deno.mkdir(outDir, { recursive: true });

    const c = runs[0].config;
    const family = modelFamily(c.model);
    const totalSteps = plan.totalSteps;
    const planned = planSummary(plan, c, perEpoch);
    const skipped = [...new Set(runs.map((r) => r.method).filter((m) => !METHODS[m]))];
    const settings = [
      `model: ${family.summary}: ${
        JSON.stringify(runModelConfig(c, data.corpus.vocab.size).full)
      }; batch ${c.batchSize}, bptt ${c.bptt}`,
      `density: ${c.density} (uniform over tensors; static-er uses Erdős–Rényi)`,
      o.storage === "csr"
        ? "storage: csr (true sparse) for every method but rigl, snfs, iss and the dense ones " +
          "(masked; they need dense gradients or momentum)"
        : "storage: masked-dense (dense tensors with 0/1 masks, dense gradients)",
      `connectivity updates: ${planned.updates}`,
      `optimizers: ${
        [...new Set(runs.map((r) => r.optimizer))].map((k) => {
          const s = OPTIMIZER_SETTINGS[k];
          return `${k} lr ${o.lr ?? s.lr}${s.clip ? ` clip ${s.clip}` : ""}`;
        }).join("; ")
      }` + (runs.some((r) =>
          r.optimizer === "ntasgd"
        )
        ? ` (ntasgd on a sparse model is SNT-ASGD: mask-aware averaging; nonmono ${c.nonmono} ` +
          "epochs; the note says where a run switched to averaging)"
        : ""),
      ...(skipped.length
        ? [`skipped (not registered in pipeline/sparsity/methods/mod.ts): ${skipped.join(", ")}`]
        : []),
    ];
    const header: ResultsHeader = {
      experiment: def,
      data: data.description +
        (data.optimalPerplexity ? ` (optimal ppl ${data.optimalPerplexity.toFixed(2)})` : ""),
      steps: planned.steps,
      seed: o.seeds > 1 ? `${o.seed}..${o.seed + o.seeds - 1}` : o.seed,
      adapter: describeAdapter(gpu.report),
      date: start.toISOString(),
      settings,
    };
    console.log(
      `experiment ${def.name}: ${runs.length} runs of ${totalSteps} steps on ${data.description}` +
        `; writing to ${outDir}`,
    );
    for (const s of settings) console.log(`  ${s}`);
    if (ex.runIndex !== null) {
      // a worker: its run alone, into its directory
      const rows = await runExperiment(gpu, [runs[ex.runIndex]], data, {
        outDir,
        available: (m) => METHODS[m] !== undefined,
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
      rows = await collectResults(runs, outDir, data.description);
      await writeResultTables(outDir, header, rows);
    } else {
      rows = await runExperiment(gpu, runs, data, {
        outDir,
        available: (m) => METHODS[m] !== undefined,
        header,
        quiet: args.quiet,
      });
    }
    console.log(`\n${await Deno.readTextFile(`${outDir}/results.md`)}`);
    console.log(`results: ${outDir}/results.csv, ${outDir}/results.md`);
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
