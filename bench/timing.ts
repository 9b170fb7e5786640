/**
 * Benchmark timing. Deno polls the device with ~10 ms sleeps while waiting, so one dispatch
 * per wait would measure the poll period; each sample therefore records the operation `inner`
 * times into one submission (sized from the warm-up to last ≥ 100 ms) and is timed around
 * `onSubmittedWorkDone`. Reported: the median per-operation time over the samples.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";

/** Timing of one benchmarked operation. */
export interface Timing {
  /** Median milliseconds per operation. */
  ms: number;
  /** Per-operation milliseconds of each sample. */
  samples: number[];
  /** Operations per sample. */
  inner: number;
}

/**
 * Times `record` (which records GPU work) over `reps` samples after a warm-up run that also
 * compiles the pipelines.
 *
 * @example
 * ```ts ignore
 * const t = await timeGpu(gpu, () => matmul(gpu, args), { reps: 5 });
 * ```
 */
export async function timeGpu(
  gpu: Gpu,
  record: () => void,
  opts: { reps?: number; minSampleMs?: number } = {},
): Promise<Timing> {
  const { reps = 5, minSampleMs = 100 } = opts;
  record();
  await gpu.sync();
  let t0 = performance.now();
  record();
  await gpu.sync();
  const once = performance.now() - t0;
  const inner = Math.max(1, Math.min(200, Math.ceil(minSampleMs / Math.max(once, 0.01))));
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) {
    t0 = performance.now();
    for (let j = 0; j < inner; j++) record();
    gpu.submit();
    await gpu.device.queue.onSubmittedWorkDone();
    samples.push((performance.now() - t0) / inner);
  }
  await gpu.sync();
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const ms = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { ms, samples, inner };
}
