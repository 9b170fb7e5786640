/**
 * Where an experiment's runs execute (`deno task experiment ... --executor`): `local` runs them
 * in this process one after another, or with `--jobs N` as N concurrent worker processes;
 * `slurm` writes an sbatch job-array script (one array task per run) and submits it. A worker is
 * the same command with `--run-index K`: it trains run K alone into its directory (resuming
 * its checkpoint, or keeping it when finished), so a requeued task continues where it stopped.
 *
 * @module
 */

/** The worker command of run `index`: this process's Deno and script, the experiment's flags. */
export function workerArgs(script: string, flags: readonly string[], index: number): string[] {
  return [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    script,
    ...flags,
    "--run-index",
    String(index),
  ];
}

/**
 * A worker's flags: the sweep's without the executor's own (the workers run plainly), writing
 * into `outDir` (the sweep's `--out` replaced: a default one carries a timestamp).
 *
 * @example
 * ```ts
 * import { sweepFlags } from "./executor.ts";
 * sweepFlags(["t2", "--jobs", "2", "--out", "o"], "/abs/o"); // ["t2", "--out", "/abs/o"]
 * ```
 */
export function sweepFlags(argv: readonly string[], outDir: string): string[] {
  const own = new Set([
    "--executor",
    "--jobs",
    "--partition",
    "--time",
    "--gpus-per-task",
    "--sbatch-arg",
    "--run-index",
    "--out",
  ]);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.includes("=") ? a.slice(0, a.indexOf("=")) : a;
    if (own.has(name)) {
      if (!a.includes("=")) i++;
      continue;
    }
    if (a === "--dry-run") continue;
    out.push(a);
  }
  return [...out, "--out", outDir];
}

/** What a finished worker left: its exit code and the tail of its output. */
export interface WorkerResult {
  index: number;
  code: number;
  tail: string;
}

/**
 * Runs the workers of `indices` with at most `jobs` at once; each one's output goes to
 * `logOf(index)`. Returns when all have ended.
 *
 * @example
 * ```ts ignore
 * const results = await runLocalJobs(Deno.execPath(), (k) => workerArgs(script, flags, k), [0, 1], 2, logOf);
 * ```
 */
export async function runLocalJobs(
  exe: string,
  argsOf: (index: number) => string[],
  indices: readonly number[],
  jobs: number,
  logOf: (index: number) => string,
  say: (line: string) => void = console.log,
): Promise<WorkerResult[]> {
  const results: WorkerResult[] = [];
  const queue = [...indices];
  const worker = async () => {
    for (let k = queue.shift(); k !== undefined; k = queue.shift()) {
      const log = logOf(k);
      const file = await Deno.open(log, { write: true, create: true, truncate: true });
      const child = new Deno.Command(exe, {
        args: argsOf(k),
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const pipes = [child.stdout, child.stderr].map((s) =>
        s.pipeTo(new WritableStream({ write: (chunk) => file.write(chunk).then(() => {}) }))
      );
      const { code } = await child.status;
      await Promise.all(pipes);
      file.close();
      const text = await Deno.readTextFile(log);
      const tail = text.trimEnd().split("\n").slice(-8).join("\n");
      results.push({ index: k, code, tail });
      say(`  worker ${k}: exit ${code}`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, worker));
  return results.sort((a, b) => a.index - b.index);
}

/** Options of the sbatch script. */
export interface SlurmOptions {
  jobName: string;
  /** Directory the tasks run in (where the sweep was started: relative paths hold). */
  cwd: string;
  /** One command per array task: `$SLURM_ARRAY_TASK_ID` selects the run. */
  command: string[];
  tasks: number;
  /** Where each task's output goes (`%A` job, `%a` task). */
  output: string;
  partition?: string;
  time?: string;
  gpusPerTask?: string;
  /** Further `#SBATCH` options, verbatim (`--mem=16G`). */
  extra: readonly string[];
}

const shellQuote = (
  s: string,
) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

/**
 * The sbatch job-array script of a sweep.
 *
 * @example
 * ```ts
 * import { slurmScript } from "./executor.ts";
 * slurmScript({
 *   jobName: "t2", cwd: "/w", command: ["deno", "x", "--run-index", "$SLURM_ARRAY_TASK_ID"],
 *   tasks: 3, output: "/w/o/slurm-%A_%a.out", extra: [],
 * }).includes("#SBATCH --array=0-2"); // true
 * ```
 */
export function slurmScript(o: SlurmOptions): string {
  const lines = [
    "#!/bin/bash",
    `#SBATCH --job-name=${shellQuote(o.jobName)}`,
    `#SBATCH --array=0-${o.tasks - 1}`,
    `#SBATCH --output=${shellQuote(o.output)}`,
    ...(o.partition ? [`#SBATCH --partition=${shellQuote(o.partition)}`] : []),
    ...(o.time ? [`#SBATCH --time=${shellQuote(o.time)}`] : []),
    ...(o.gpusPerTask ? [`#SBATCH --gpus-per-task=${shellQuote(o.gpusPerTask)}`] : []),
    ...o.extra.map((x) => `#SBATCH ${x}`),
    "#SBATCH --requeue",
    "# one array task per run: the same command with --run-index; a requeued or resubmitted",
    "# task resumes its run's checkpoint, and a finished run is kept",
    "set -euo pipefail",
    `cd ${shellQuote(o.cwd)}`,
    `exec ${
      o.command.map((
        a,
      ) => (a === "$SLURM_ARRAY_TASK_ID" ? '"$SLURM_ARRAY_TASK_ID"' : shellQuote(a))).join(" ")
    }`,
    "",
  ];
  return lines.join("\n");
}

/**
 * Submits `script` with `sbatch --parsable`; returns the job id. Throws with sbatch's message
 * when it fails or is missing.
 *
 * @example
 * ```ts ignore
 * const id = await submitSlurm("runs/t2/sbatch.sh");
 * ```
 */
export async function submitSlurm(script: string): Promise<string> {
  let out;
  try {
    out = await new Deno.Command("sbatch", {
      args: ["--parsable", script],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
  } catch (e) {
    throw new Error(`sbatch: ${(e as Error).message} (is Slurm installed here?)`);
  }
  const dec = new TextDecoder();
  if (out.code !== 0) throw new Error(`sbatch failed: ${dec.decode(out.stderr).trim()}`);
  return dec.decode(out.stdout).trim().split(";")[0];
}
