/**
 * `deno task bench <suite> [--out FILE.csv] [--reps N] [--filter TEXT] [--adapter A] [--variant V]`.
 * Suites: `kernels` (matmul and softmax-CE kernels; `--filter` selects rows), `train` (a model
 * family's training step, evaluation and per-phase breakdown, `bench/train.ts`; `--model`,
 * `--preset`; `--reps` = timed steps)
 * `sparse` (SpMM / SDDMM against dense, top-k, sparse vs masked-dense training steps,
 * `bench/sparse.ts`; `--filter` selects rows) and `memory` (a preset's training-step tensor
 * memory, `bench/memory.ts`; `--model`, `--preset`).
 * Prints a markdown table with the adapter and writes CSV with `--out`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { GPU_FLAG_OPTIONS, GPU_FLAG_USAGE, openGpuFromFlags } from "../pipeline/gpu_flags.ts";
import { toCsv } from "../pipeline/csv.ts";
import { benchKernels, KERNEL_COLUMNS } from "./kernels.ts";
import { benchTrain, TRAIN_COLUMNS, trainBenchSetup } from "./train.ts";
import { ConfigError } from "../pipeline/config.ts";
import { benchSparse, SPARSE_COLUMNS } from "./sparse.ts";
import { benchMemory, MEMORY_COLUMNS } from "./memory.ts";

const SUITES = ["kernels", "train", "sparse", "memory"] as const;

function markdown(
  columns: readonly string[],
  rows: readonly Record<string, string | number>[],
): string {
  const out = [`| ${columns.join(" | ")} |`, `| ${columns.map(() => "---").join(" | ")} |`];
  for (const r of rows) out.push(`| ${columns.map((c) => String(r[c])).join(" | ")} |`);
  return out.join("\n");
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: "string" },
        reps: { type: "string", default: "5" },
        filter: { type: "string" },
        model: { type: "string" },
        preset: { type: "string" },
        ...GPU_FLAG_OPTIONS,
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    console.log(
      `usage: deno task bench <${SUITES.join("|")}> [--out FILE.csv] [--reps N] ` +
        `[--filter TEXT (kernels, sparse)] [--model NAME --preset NAME (train, memory)] ${GPU_FLAG_USAGE}`,
    );
    return values.help ? 0 : 2;
  }
  const suite = positionals[0];
  if (!(SUITES as readonly string[]).includes(suite)) {
    console.error(`bench: unknown suite "${suite}"; expected one of ${SUITES.join(", ")}`);
    return 2;
  }
  const reps = Number(values.reps);
  if (!Number.isInteger(reps) || reps < 5) {
    console.error(`bench: --reps must be an integer >= 5, got "${values.reps}"`);
    return 2;
  }
  const modelSuite = suite === "train" || suite === "memory";
  if (modelSuite && values.filter !== undefined) {
    console.error("bench: --filter applies to the kernels and sparse suites only");
    return 2;
  }
  if (!modelSuite && (values.model !== undefined || values.preset !== undefined)) {
    console.error("bench: --model and --preset apply to the train and memory suites only");
    return 2;
  }
  let setup;
  try {
    setup = suite === "train" ? await trainBenchSetup(values.model, values.preset) : undefined;
  } catch (e) {
    if (!(e instanceof ConfigError || e instanceof RangeError)) throw e;
    console.error(`bench: ${e.message}`);
    return 2;
  }
  const gpu = await openGpuFromFlags("bench", values);
  if (typeof gpu === "number") return gpu;
  const opts = { reps, filter: values.filter, log: console.log };
  const [columns, rows] = suite === "train"
    ? [TRAIN_COLUMNS, await benchTrain(gpu, { ...opts, setup })]
    : suite === "memory"
    ? [
      MEMORY_COLUMNS,
      await benchMemory(gpu, { ...opts, model: values.model, preset: values.preset }),
    ]
    : suite === "sparse"
    ? [SPARSE_COLUMNS, await benchSparse(gpu, opts)]
    : [KERNEL_COLUMNS, await benchKernels(gpu, opts)];
  console.log(`\n${markdown(columns, rows)}\n`);
  if (values.out) {
    const tmp = `${values.out}.tmp`;
    await Deno.writeTextFile(tmp, toCsv(columns, rows));
    await Deno.rename(tmp, values.out);
    console.log(`wrote ${values.out}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
