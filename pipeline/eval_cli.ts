/**
 * `deno task eval (RUN.ckpt | model.safetensors) [--data DIR] [--split valid|test]
 * [--batch-size N] [--bptt N] [--summary FILE.json]`: the perplexity of a saved model on one
 * split, the model rebuilt from the checkpoint or the file's metadata with no training state.
 * Batch size and window length default to the run's own (recorded in both files), so the test
 * split repeats the run's test figure. Bad input: one message, exit 2.
 *
 * @module
 */

import { writeAtomic } from "./atomic.ts";
import { runCommand, UsageError } from "./command.ts";
import { DEFAULTS } from "./config.ts";
import { batchify } from "./data/batches.ts";
import { GPU_FLAG_OPTIONS, GPU_FLAG_USAGE, openGpuFromFlags } from "./gpu_flags.ts";
import { evaluate } from "./run/evaluation.ts";
import { evaluationProgress } from "./progress.ts";
import { loadModelFile, modelData, uploadWeights } from "./saved_model.ts";

const USAGE = `usage: deno task eval (RUN.ckpt | FILE.safetensors) [flags]

The perplexity of a saved model on one split of its data.

  --data DIR         the data (default: where the run's data was; the synthetic corpus if so)
  --split valid|test (default test)
  --batch-size N     (default: the run's test or validation batch size)
  --bptt N           window length (default: the run's)
  --summary FILE     write the figures as JSON
  ${GPU_FLAG_USAGE}`;

function positiveInt(flag: string, raw: string | undefined): number | null {
  if (raw === undefined) return null;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isInteger(v) || v <= 0) {
    throw new UsageError(`--${flag}: expected an integer > 0, got ${JSON.stringify(raw)}`);
  }
  return v;
}

/** Runs the CLI; returns the process exit code. */
export function main(argv: string[]): Promise<number> {
  const flags = {
    ...GPU_FLAG_OPTIONS,
    data: { type: "string" },
    split: { type: "string" },
    "batch-size": { type: "string" },
    bptt: { type: "string" },
    summary: { type: "string" },
  } as const;
  return runCommand("eval", USAGE, argv, flags, async (v, positionals) => {
    if (positionals.length !== 1) {
      throw new UsageError(
        `expected one model file (.ckpt or .safetensors), got ${positionals.length}`,
      );
    }
    const split = v.str("split") ?? "test";
    if (split !== "valid" && split !== "test") {
      throw new UsageError(`--split: expected valid or test, got ${JSON.stringify(split)}`);
    }
    const path = positionals[0];
    const loaded = await loadModelFile(path);
    if (loaded.note) console.log(`note: ${loaded.note}`);
    const run = loaded.meta.evaluation;
    const B = positiveInt("batch-size", v.str("batch-size")) ??
      (split === "test" ? run?.testBatchSize : run?.evalBatchSize) ?? DEFAULTS.evalBatchSize;
    const bptt = positiveInt("bptt", v.str("bptt")) ?? run?.bptt ?? DEFAULTS.bptt;
    const data = await modelData(loaded.meta, v.str("data") ?? null, path);
    const matrix = batchify(data.corpus[split], B, split);
    const gpu = await openGpuFromFlags("eval", {
      adapter: v.str("adapter"),
      variant: v.str("variant"),
    });
    if (typeof gpu === "number") return gpu;
    const { family, meta } = loaded;
    const model = family.create(gpu, meta.config, 0);
    uploadWeights(gpu, model, loaded.weights);
    const session = model.session({ maxT: bptt, B, training: false });
    const loss = await evaluate(
      gpu,
      session,
      matrix,
      bptt,
      family.evalNormalisation,
      evaluationProgress(console.log, split),
    );
    const ppl = Math.exp(loss);
    console.log(
      `${split} ppl ${ppl.toFixed(2)} (loss ${loss.toFixed(4)}) on ${data.description}: ` +
        `${family.name}, ${meta.method}, batch ${B}, bptt ${bptt}`,
    );
    if (v.str("summary")) {
      const summary = {
        file: path,
        source: loaded.source,
        model: { family: family.name, config: meta.config },
        method: meta.method,
        data: data.description,
        split,
        "batch_size": B,
        bptt,
        loss,
        ppl,
        adapter: gpu.report.description,
      };
      await writeAtomic(v.str("summary")!, JSON.stringify(summary, null, 2) + "\n");
    }
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
