/**
 * `deno task bench memory [--model NAME] [--preset NAME]`: the tensor memory a family's training
 * step holds, from the runtime's allocation counts (`Gpu.memory`), at the preset's settings
 * (optimizer, density, batch or `--small-batch-size` slice, the longest window): parameters
 * with their gradients, sparsity masks, optimizer state, the training session's buffers, and the
 * peak while one step and its optimizer update are recorded (the step's own transients on top).
 * Nothing is timed; the rows are bytes.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import { modelFamily } from "../models/families.ts";
import { modelSettings, parseTrainArgs } from "../pipeline/config.ts";
import { createOptimizer, optimizerStep } from "../pipeline/optimizer.ts";
import { initSparsity } from "../pipeline/sparsity/stage.ts";
import { optimizerSettings, sparsitySettings } from "../pipeline/run/settings.ts";
import { longestWindow } from "../pipeline/run/data.ts";

/** One row of the memory suite. */
export interface MemoryRow extends Record<string, string | number> {
  suite: "memory";
  part: string;
  bytes: number;
  mib: number;
  adapter: string;
  config: string;
}

/** Columns of the memory suite's CSV. */
export const MEMORY_COLUMNS = ["suite", "part", "bytes", "mib", "adapter", "config"] as const;

/**
 * Measures the memory rows for `--model model --preset preset` over `vocab` words (default the
 * family's bench vocabulary).
 *
 * @example
 * ```ts ignore
 * const rows = await benchMemory(gpu, { model: "awd-mos", preset: "wt2-mos", log: console.log });
 * ```
 */
export async function benchMemory(
  gpu: Gpu,
  opts: { model?: string; preset?: string; log: (s: string) => void },
): Promise<MemoryRow[]> {
  const name = opts.model ?? "lstm";
  const family = modelFamily(name);
  const preset = opts.preset ?? family.benchPreset;
  const config = await parseTrainArgs(["--model", name, "--preset", preset]);
  const vocab = family.benchVocab ?? 10000;
  const c = family.config(modelSettings(config, vocab));
  const B = config.smallBatchSize ?? config.batchSize;
  const T = longestWindow(config);
  const text = `${family.name} --preset ${preset} V=${vocab} B=${B} T=${T} ` +
    `${config.method} d=${config.density} ${config.optimizer}`;
  const rows: MemoryRow[] = [];
  const held = () => gpu.memory().live;
  const row = (part: string, bytes: number) => {
    const mib = Math.round((bytes / 2 ** 20) * 10) / 10;
    rows.push({ suite: "memory", part, bytes, mib, adapter: gpu.report.description, config: text });
    opts.log(`${part}: ${mib} MiB`);
  };
  let mark = held();
  const step = (part: string) => {
    const now = held();
    row(part, now - mark);
    mark = now;
  };
  const model = family.create(gpu, c, config.seed);
  step("parameters and gradients");
  initSparsity(gpu, model.params, sparsitySettings(config), config.denseTensors);
  step("sparsity masks");
  let opt = createOptimizer(gpu, model.params, optimizerSettings(config));
  step("optimizer state");
  const session = model.session({ maxT: T, B, training: true });
  step("training session buffers");
  const before = held();
  const ids = () => Uint32Array.from({ length: T * B }, (_, i) => (i * 7919) % vocab);
  const batch = session.writeBatch({ T, input: ids(), target: ids() });
  gpu.resetPeakBytes();
  session.step(batch, { seed: 1, step: 0 });
  opt = optimizerStep(gpu, model.params, opt, optimizerSettings(config));
  await gpu.sync();
  const peak = gpu.memory().peak;
  row("step transients (peak above the held tensors)", peak - before);
  row("peak during a step, everything held", peak);
  session.release();
  return rows;
}
