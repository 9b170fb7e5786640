/**
 * Load-floor probe: the time an adapter needs for a given number of per-lane vec4 loads, issued
 * the cheapest way we know (uniform control flow, 16 independent loads per loop iteration, a
 * 128 KiB cache-resident source, no other work).
 *
 * Why it exists: an SpMM `Y = X·Wᵀ` with unstructured sparse `W` must bring `X[m, k]` into the
 * registers of the lane computing `Y[m, n]` once per active entry `(n, k)`: a register cannot
 * be indexed by a data-dependent `k`, so a value loaded for one entry is reused by another only
 * if the lane walks several rows in step over every column of their union, i.e. computes on a
 * zero-padded dense block. With four batch rows per vec4 that is `nnz·M/4` loads of `X`, plus
 * `nnz/2` to read the entries `(col, value)` themselves. On CPU rasterisers (llvmpipe) every
 * per-lane load is a scalar load per lane while a dense register-blocked matmul needs about one
 * vec4 load per 20 multiply-adds, so this floor, not arithmetic, bounds what sparsity can buy
 * there. `deno task bench sparse` reports it next to each SpMM row as the largest speedup over
 * the dense kernel that any kernel issuing those loads could reach.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import type { KernelSpec } from "../kernels/runtime/kernel.ts";
import { timeGpu } from "./timing.ts";

/** Loads per loop iteration of the probe (unrolled, independent). */
const UNROLL = 16;
/** vec4 entries of the probe's source: 128 KiB, about the size of `Xᵀ` at M = 20, K = 1500. */
export const LOAD_FLOOR_SOURCE_VEC4 = 8192;
/** Most lanes the probe launches (1024 workgroups of 64). */
const MAX_THREADS = 65536;
/** Fewest lanes it spreads a large request over (128 workgroups keep every core busy). */
const MIN_THREADS = 8192;
/** Iterations per lane it aims for: with fewer, each lane's fixed cost (~30 ns on llvmpipe) shows. */
const MIN_ITERS = 32;

/**
 * The probe kernel. Lane `t` returns `Σ_it Σ_u src[(37·t + 7·it + 101·u) mod 8192]` (vec4s),
 * so a test can check that it issues the loads it is timed for.
 *
 * @example
 * ```ts
 * import { LOAD_FLOOR_KERNEL } from "./load_floor.ts";
 * LOAD_FLOOR_KERNEL.params; // [["iters", "u32"]]
 * ```
 */
export const LOAD_FLOOR_KERNEL: KernelSpec = {
  name: "bench_load_floor",
  bindings: [
    { name: "src", dtype: "f32", access: "read", width: 4 },
    { name: "out", dtype: "f32", access: "read_write", width: 4 },
  ],
  params: [["iters", "u32"]],
  body: `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  var s = vec4<f32>(0.0f);
  // neighbouring lanes and iterations touch nearby addresses: the cache-friendliest gather.
  // No view offset in the index: adding a uniform to every index costs up to 30% more per load
  // on llvmpipe (measured), and the probe always binds a whole tensor of its own.
  var base = g.x * 37u;
  for (var it = 0u; it < P.iters; it = it + 1u) {
${
    Array.from(
      { length: UNROLL },
      (_, u) => `    s = s + src[(base + ${u * 101}u) & ${LOAD_FLOOR_SOURCE_VEC4 - 1}u];`,
    ).join("\n")
  }
    base = base + 7u;
  }
  out[P.off_out + g.x] = s;
}`,
};

/** How the probe spreads `loads` vec4 loads: `threads` lanes × `iters` iterations × 16. */
export interface LoadFloorPlan {
  threads: number;
  iters: number;
  /** Loads actually issued (≥ the request; the measured time is scaled back to it). */
  issued: number;
}

/**
 * Splits `loads` over at most 65536 lanes (a multiple of 64) and whole iterations, at least 32
 * per lane where that still leaves 8192 lanes.
 *
 * @example
 * ```ts
 * import { loadFloorPlan } from "./load_floor.ts";
 * const p = loadFloorPlan(4_500_000);
 * p.threads * p.iters * 16 === p.issued; // true
 * p.issued >= 4_500_000; // true
 * ```
 */
export function loadFloorPlan(loads: number): LoadFloorPlan {
  if (!(loads >= 1) || !Number.isFinite(loads)) {
    throw new RangeError(`loadFloorPlan: loads must be a finite number ≥ 1, got ${loads}`);
  }
  let iters = Math.max(MIN_ITERS, Math.ceil(loads / (UNROLL * MAX_THREADS)));
  if (loads < UNROLL * MIN_ITERS * MIN_THREADS) {
    iters = Math.max(1, Math.floor(loads / (UNROLL * MIN_THREADS)));
  }
  const threads = Math.ceil(loads / (UNROLL * iters) / 64) * 64;
  return { threads, iters, issued: threads * iters * UNROLL };
}

/**
 * Measured milliseconds for `loads` per-lane vec4 loads on `gpu` (median of `reps` samples,
 * scaled from the loads issued to the loads requested).
 *
 * @example
 * ```ts ignore
 * // the least time an SpMM on x [20, 1500]ᵀ and W [6000, 1500] with nnz entries can take
 * const ms = await loadFloorMs(gpu, nnz * 20 / 4 + nnz / 2, 5);
 * ```
 */
export async function loadFloorMs(gpu: Gpu, loads: number, reps: number): Promise<number> {
  const plan = loadFloorPlan(loads);
  const src = gpu.upload(
    [LOAD_FLOOR_SOURCE_VEC4 * 4],
    Float32Array.from({ length: LOAD_FLOOR_SOURCE_VEC4 * 4 }, (_, i) => (i % 13) * 0.01),
  );
  const out = gpu.tensor([plan.threads * 4]);
  try {
    const grid: [number, number, number] = [plan.threads / 64, 1, 1];
    const t = await timeGpu(
      gpu,
      () => gpu.run(LOAD_FLOOR_KERNEL, { src, out }, { iters: plan.iters }, grid),
      { reps },
    );
    return t.ms * loads / plan.issued;
  } finally {
    gpu.release(src);
    gpu.release(out);
  }
}
