/**
 * Shared test helpers: one GPU per test process, deterministic random data, tolerance checks
 * that name the first offending index, and a loop over both kernel variants.
 *
 * @module
 */

import { Gpu } from "../kernels/runtime/runtime.ts";
import type { KernelVariant } from "../kernels/runtime/device.ts";

let shared: Promise<Gpu> | null = null;

/**
 * The process-wide test GPU. Devices are never destroyed in tests: wgpu's GL backend can panic
 * on device destruction, and the process exit frees everything.
 */
export function testGpu(): Promise<Gpu> {
  shared ??= Gpu.create();
  return shared;
}

/** GPU tests keep pipelines and pooled buffers alive across tests by design. */
export const GPU_TEST = { sanitizeResources: false, sanitizeOps: false } as const;

/** Both kernel families; every kernel with variants is tested under each. */
export const VARIANTS: readonly KernelVariant[] = ["regblock", "tiled"];

/** Runs `fn` on a view of `gpu` for each kernel variant in turn (`Gpu.withVariant`). */
export async function forEachVariant(
  gpu: Gpu,
  fn: (gpu: Gpu, variant: KernelVariant) => Promise<void>,
): Promise<void> {
  for (const v of VARIANTS) await fn(gpu.withVariant(v), v);
}

/**
 * Deterministic uniform generator (mulberry32) for test data.
 *
 * @example
 * ```ts
 * import { rng } from "./_util.ts";
 * const r = rng(1);
 * r() === rng(1)(); // true
 * ```
 */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` uniform values in [lo, hi) from `seed`. */
export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** A 0/1 mask of `n` entries with each entry 1 with probability `density`. */
export function bernoulliMask(n: number, density: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r() < density ? 1 : 0;
  return out;
}

/** Tolerances: `|a - e| <= atol + rtol * |e|` element-wise. */
export interface Tolerance {
  atol: number;
  rtol: number;
}

/**
 * Asserts element-wise closeness; the error names the first bad index, both values and the
 * worst error, so a failure says where to look.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  label: string,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${label}: length ${actual.length}, expected ${expected.length}`);
  }
  let firstBad = -1;
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const err = Math.abs(a - e);
    const ok = err <= tol.atol + tol.rtol * Math.abs(e) || (Number.isNaN(a) && Number.isNaN(e));
    if (!ok || Number.isNaN(err)) {
      if (firstBad < 0) firstBad = i;
      worst = Math.max(worst, Number.isNaN(err) ? Infinity : err);
    }
  }
  if (firstBad >= 0) {
    throw new Error(
      `${label}: index ${firstBad}: got ${actual[firstBad]}, expected ${expected[firstBad]} ` +
        `(atol ${tol.atol}, rtol ${tol.rtol}, worst abs error ${worst})`,
    );
  }
}

/**
 * Tolerance for a float32 sum of `n` products of magnitude ~`scale`. Each addition rounds by up
 * to u·|partial sum| (u = 2⁻²⁴), and with random signs the partial sums themselves grow like
 * sqrt(j)·scale/3, so the accumulated error has a standard deviation of about u·n·scale/7.3:
 * linear in n, not sqrt(n) (at n = 2000 one output in 34k erred by 4.6e-5, past a sqrt(n)
 * bound). The n·eps/2 term is ~5 such deviations; 8·sqrt(n)·eps covers short sums. Both stay
 * orders of magnitude below the error of any indexing or transpose bug (which is O(scale)).
 */
export function sumTolerance(n: number, scale = 1): Tolerance {
  const eps = 1.2e-7;
  const m = Math.max(1, n);
  return { atol: (8 * Math.sqrt(m) + m / 2) * eps * scale + 1e-6, rtol: 1e-5 };
}

/** The sparse-kernel test densities named by the sparse-compute issue: dense to empty. */
export const SPARSE_TEST_DENSITIES: readonly number[] = [1, 0.5, 0.33, 0.1, 0.01, 0];
