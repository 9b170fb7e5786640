/**
 * `deno task bench sparse`: the true-sparse path against our dense kernels on the same shapes.
 *
 * - SpMM forward `Y = X·Wᵀ`, transposed SpMM `dX = dY·W` and SDDMM `dW = dYᵀ·X` (active entries)
 *   on the recurrent step (20×1500)·(1500×6000)ᵀ and the decoder (700×1500)·(1500×10000)ᵀ at
 *   densities 1, 0.5, 0.33, 0.1, 0.05, each next to the dense matmul computing the same
 *   product (NT, NN, TN). `speedup` = dense ms / sparse ms, the dense time (`dense_ms`)
 *   re-measured just before each density's rows; effective GFLOP/s counts the sparse work only
 *   (2·M·nnz).
 * - `spmm load floor`: the per-lane vec4 loads an unstructured SpMM of the shape cannot avoid
 *   (`ceil(M/4)·nnz` of the activations, `nnz/2` of the entries), timed by the probe of
 *   `load_floor.ts`; its `speedup` over `matmul NT` is the most any such kernel can reach here
 *   (both best of 3 alternating rounds, taken moments apart).
 * - Top-k: magnitude keys plus the radix select of the k = n/10 smallest, over 1M, 10M and 66M
 *   weights (66M is skipped with a note where it exceeds the adapter's storage binding limit).
 * - One full training step (forward, backward, SGD update with clipping) of the stacked LSTM
 *   (V = 10000, L = 2, B = 20, T = 35, no dropout) at H = 650 and 1500, true sparse against
 *   masked-dense at density 0.33 and 0.1, every non-bias tensor sparse: `csr` as training runs
 *   it (`weight_ops.ts` may compute dense-enough products of many rows with dense kernels on a
 *   CPU rasteriser) and `csr-kernels` with the sparse kernels only.
 *
 * Timing: `timeGpu` (median of `reps` samples after warm-up, around `onSubmittedWorkDone`).
 * Rows of the decoder shape (over 10^9 multiply-adds dense) and training-step rows use 3
 * samples (`max(3, reps / 2)` for steps), and sparse decoder rows at density >= 0.5 one sample
 * (after the two warm-up runs): one such run takes seconds to tens of seconds on a CPU
 * rasteriser.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import { matmul } from "../kernels/dense/matmul.ts";
import { spmm, spmmT } from "../kernels/sparse/spmm.ts";
import { sddmm } from "../kernels/sparse/sddmm.ts";
import { magnitudeKeys, selectTopK } from "../kernels/select/topk.ts";
import {
  type HostCsr,
  releaseSparse,
  type SparseMatrix,
  storedLength,
  uploadSparse,
} from "../kernels/sparse/sparse_matrix.ts";
import { modelFamily } from "../models/families.ts";
import { modelSettings, trainConfig } from "../pipeline/config.ts";
import { type Param, releaseParams } from "../models/params.ts";
import { DEFAULT_SPARSE_ROUTE, SPARSE_KERNELS_ONLY } from "../models/weight_ops.ts";
import { sparsifyParam } from "../models/sparse_params.ts";
import {
  createOptimizer,
  type OptimizerSettings,
  optimizerStep,
  releaseOptimizer,
} from "../pipeline/optimizer.ts";
import { timeGpu } from "./timing.ts";
import { loadFloorMs } from "./load_floor.ts";

/** One row of the sparse suite; `""` where a column does not apply. */
export interface SparseRow {
  kernel: string;
  layout: string;
  M: number | "";
  N: number | "";
  K: number | "";
  density: number | "";
  adapter: string;
  ms: number;
  "eff_gflops": number | "";
  speedup: number | "";
  /** The dense time `speedup` divides by, re-measured just before the row's density group. */
  "dense_ms": number | "";
  [key: string]: string | number;
}

/** Columns of {@linkcode SparseRow}, in CSV order. */
export const SPARSE_COLUMNS = [
  "kernel",
  "layout",
  "M",
  "N",
  "K",
  "density",
  "adapter",
  "ms",
  "eff_gflops",
  "speedup",
  "dense_ms",
];

const DENSITIES = [1, 0.5, 0.33, 0.1, 0.05];
const SHAPES = [
  { label: "recurrent", m: 20, n: 6000, k: 1500 },
  { label: "decoder", m: 700, n: 10000, k: 1500 },
];

/** Deterministic LCG stream in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function randomData(n: number, seed: number): Float32Array {
  const r = lcg(seed);
  return Float32Array.from({ length: n }, () => r() - 0.5);
}

/** A `rows × cols` CSR whose entries are active independently with probability `density`. */
function randomCsr(rows: number, cols: number, density: number, seed: number): HostCsr {
  const r = lcg(seed);
  const rowPtr = new Uint32Array(rows + 1);
  const cap = Math.ceil(rows * cols * Math.min(1, density * 1.05 + 0.01)) + 16;
  let colIdx = new Uint32Array(cap);
  let nnz = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      if (density >= 1 || r() < density) {
        if (nnz === colIdx.length) {
          const grown = new Uint32Array(colIdx.length * 2);
          grown.set(colIdx);
          colIdx = grown;
        }
        colIdx[nnz++] = j;
      }
    }
    rowPtr[i + 1] = nnz;
  }
  return { rows, cols, rowPtr, colIdx: colIdx.slice(0, nnz), values: randomData(nnz, seed + 1) };
}

const round = (x: number, d = 3) => +x.toFixed(d);

async function benchProducts(
  gpu: Gpu,
  reps: number,
  filter: string | undefined,
  log: (s: string) => void,
): Promise<SparseRow[]> {
  const rows: SparseRow[] = [];
  const adapter = gpu.report.description;
  for (const s of SHAPES) {
    if (filter && !`spmm spmmT sddmm ${s.label}`.includes(filter)) continue;
    const x = gpu.upload([s.m, s.k], randomData(s.m * s.k, 1));
    const dy = gpu.upload([s.m, s.n], randomData(s.m * s.n, 2));
    const wDense = gpu.upload([s.n, s.k], randomData(s.n * s.k, 3));
    const xT = gpu.upload([s.k, s.m], randomData(s.m * s.k, 1));
    const dyT = gpu.upload([s.n, s.m], randomData(s.m * s.n, 2));
    const y = gpu.tensor([s.m, s.n]);
    const dx = gpu.tensor([s.m, s.k]);
    const dW = gpu.tensor([s.n, s.k]);
    const ops: [string, string, () => void][] = [
      ["fwd", "matmul NT", () => matmul(gpu, { a: x, b: wDense, c: y, transB: true })],
      ["dx", "matmul NN", () => matmul(gpu, { a: dy, b: wDense, c: dx })],
      ["dw", "matmul TN", () => matmul(gpu, { a: dy, b: x, c: dW, transA: true })],
    ];
    const flops = 2 * s.m * s.n * s.k;
    // the decoder shape's high-density sparse rows take tens of seconds each on a CPU
    // rasteriser: 3 samples there (after the warm-up runs), `reps` elsewhere
    const shapeReps = s.m * s.n * s.k > 1e9 ? Math.min(reps, 3) : reps;
    for (const [, name, record] of ops) {
      const t = await timeGpu(gpu, record, { reps: shapeReps });
      rows.push({
        kernel: `${name} (${s.label})`,
        layout: "dense",
        M: s.m,
        N: s.n,
        K: s.k,
        density: 1,
        adapter,
        ms: round(t.ms),
        "eff_gflops": round(flops / t.ms / 1e6, 2),
        speedup: 1,
        "dense_ms": round(t.ms),
      });
      log(`${name} ${s.label}: ${round(t.ms)} ms`);
    }
    for (const d of DENSITIES) {
      // a CPU rasteriser's speed drifts by up to 2x within minutes: each density's speedups
      // divide by the dense times re-measured just before its rows
      const ref: Record<string, number> = {};
      for (const [key, , record] of ops) {
        ref[key] = (await timeGpu(gpu, record, { reps: shapeReps })).ms;
      }
      const w: SparseMatrix = uploadSparse(gpu, randomCsr(s.n, s.k, d, 10 + Math.round(d * 100)));
      const grad = gpu.tensor([storedLength(w.nnz)]);
      // row-major operands, and the transposed-operand forms weight_ops uses on CPU
      // rasterisers (vec4 loads along M; the transposes themselves are not timed here:
      // ~12 ms for dy [700, 6000] on llvmpipe)
      const sparseOps: [string, string, () => void][] = [
        ["fwd", "spmm", () => spmm(gpu, { x, w, y })],
        ["fwd", "spmm transX", () => spmm(gpu, { x: xT, w, y, transX: true })],
        ["dx", "spmmT", () => spmmT(gpu, { dy, w, dx })],
        ["dx", "spmmT transDy", () => spmmT(gpu, { dy: dyT, w, dx, transDy: true })],
        ["dw", "sddmm", () => sddmm(gpu, { dy, x, w, out: grad })],
        [
          "dw",
          "sddmm transposed",
          () => sddmm(gpu, { dy: dyT, x: xT, w, out: grad, transposed: true }),
        ],
      ];
      // a decoder-shape row at density >= 0.5 runs 10-40 s on a CPU rasteriser: one sample
      // after the two warm-up runs there
      const rowReps = shapeReps < reps && d >= 0.5 ? 1 : shapeReps;
      for (const [key, name, record] of sparseOps) {
        const t = await timeGpu(gpu, record, { reps: rowReps });
        const work = 2 * s.m * w.nnz;
        rows.push({
          kernel: `${name} (${s.label})`,
          layout: "csr",
          M: s.m,
          N: s.n,
          K: s.k,
          density: d,
          adapter,
          ms: round(t.ms),
          "eff_gflops": round(work / t.ms / 1e6, 2),
          speedup: round(ref[key] / t.ms, 2),
          "dense_ms": round(ref[key]),
        });
        log(`${name} ${s.label} d=${d}: ${round(t.ms)} ms (${round(ref[key] / t.ms, 2)}x)`);
      }
      // the loads no unstructured SpMM of this shape can avoid, issued as cheaply as we know:
      // its speedup bounds what any such kernel can reach over the dense one here. The probe
      // and the dense product alternate, best of 3 rounds each, so the bound compares times
      // taken moments apart (a drifting machine can otherwise put the floor above a real kernel)
      const loads = Math.ceil(s.m / 4) * w.nnz + w.nnz / 2;
      let floorMs = Infinity, denseMs = Infinity;
      for (let round = 0; round < 3; round++) {
        denseMs = Math.min(denseMs, (await timeGpu(gpu, ops[0][2], { reps: rowReps })).ms);
        floorMs = Math.min(floorMs, await loadFloorMs(gpu, loads, rowReps));
      }
      rows.push({
        kernel: `spmm load floor (${s.label})`,
        layout: "probe",
        M: s.m,
        N: s.n,
        K: s.k,
        density: d,
        adapter,
        ms: round(floorMs),
        "eff_gflops": round((2 * s.m * w.nnz) / floorMs / 1e6, 2),
        speedup: round(denseMs / floorMs, 2),
        "dense_ms": round(denseMs),
      });
      log(
        `spmm load floor ${s.label} d=${d}: ${round(floorMs)} ms (${round(denseMs / floorMs, 2)}x)`,
      );
      gpu.release(grad);
      releaseSparse(gpu, w);
    }
    for (const t of [x, dy, xT, dyT, wDense, y, dx, dW]) gpu.release(t);
  }
  return rows;
}

async function benchTopK(
  gpu: Gpu,
  reps: number,
  log: (s: string) => void,
): Promise<SparseRow[]> {
  const rows: SparseRow[] = [];
  const adapter = gpu.report.description;
  const limit = Math.min(
    gpu.report.limits.maxStorageBufferBindingSize,
    gpu.report.limits.maxBufferSize,
  );
  for (const n of [1_000_000, 10_000_000, 66_000_000]) {
    if (n * 4 > limit) {
      log(`topk n=${n}: skipped, ${n * 4} bytes exceed this adapter's binding limit ${limit}`);
      rows.push({
        kernel: "topk magnitude (skipped: over the binding limit)",
        layout: "dense",
        M: "",
        N: n,
        K: "",
        density: "",
        adapter,
        ms: 0,
        "eff_gflops": "",
        speedup: "",
        "dense_ms": "",
      });
      continue;
    }
    const x = gpu.upload([n], randomData(n, 5));
    const keys = gpu.tensor([n], "u32");
    const selected = gpu.tensor([n], "u32");
    const k = Math.floor(n / 10);
    const t = await timeGpu(gpu, () => {
      magnitudeKeys(gpu, { x, keys });
      selectTopK(gpu, { keys, k, order: "smallest", selected });
    }, { reps: Math.max(3, Math.ceil(reps / 2)) });
    rows.push({
      kernel: "topk magnitude k=n/10",
      layout: "dense",
      M: "",
      N: n,
      K: "",
      density: "",
      adapter,
      ms: round(t.ms),
      "eff_gflops": "",
      speedup: "",
      "dense_ms": "",
    });
    log(`topk n=${n}: ${round(t.ms)} ms`);
    for (const a of [x, keys, selected]) gpu.release(a);
  }
  return rows;
}

/** Random masks of `density` on every non-bias tensor, then optionally true sparse storage. */
function sparsifyModel(gpu: Gpu, params: Param[], density: number, trueSparse: boolean): void {
  params.forEach((p, i) => {
    if (!p.sparse) return;
    const r = lcg(100 + i);
    const mask = new Float32Array(p.value.size);
    let nnz = 0;
    for (let j = 0; j < mask.length; j++) if (r() < density) mask[j] = 1, nnz++;
    p.mask = gpu.upload(p.shape, mask);
    if (trueSparse) sparsifyParam(gpu, p, { nnz });
  });
}

async function benchSteps(
  gpu: Gpu,
  reps: number,
  filter: string | undefined,
  log: (s: string) => void,
): Promise<SparseRow[]> {
  const rows: SparseRow[] = [];
  const adapter = gpu.report.description;
  const T = 35, B = 20, V = 10000;
  for (const H of [650, 1500]) {
    for (const density of [0.33, 0.1]) {
      const ms: Record<string, number> = {};
      // csr: what training runs (weight_ops may route dense products through dense kernels on
      // CPU rasterisers, see SparseRoute); csr-kernels: sparse kernels only (SPARSE_KERNELS_ONLY)
      for (const layout of ["masked-dense", "csr", "csr-kernels"]) {
        const name = `train step H=${H}`;
        if (filter && !`${name} ${layout}`.includes(filter)) continue;
        // the stacked LSTM of the paper's shapes, through the model contract
        const family = modelFamily("lstm");
        const config = family.config(
          modelSettings(trainConfig({ emsize: H, nhid: H, nlayers: 2 }), V),
        );
        const model = family.create(gpu, config, 1);
        sparsifyModel(gpu, model.params, density, layout !== "masked-dense");
        const session = model.session({ maxT: T, B, training: true });
        const r = lcg(7);
        const ids = () => Uint32Array.from({ length: T * B }, () => Math.floor(r() * V));
        const batch = session.writeBatch({ T, input: ids(), target: ids() });
        const settings: OptimizerSettings = {
          kind: "sgd",
          lr: 20,
          clip: 0.25,
          weightDecay: 0,
          momentum: 0,
          adam: { beta1: 0, beta2: 0.999, eps: 1e-9 },
        };
        let opt = createOptimizer(gpu, model.params, settings);
        let step = 0;
        const route = layout === "csr-kernels" ? SPARSE_KERNELS_ONLY : DEFAULT_SPARSE_ROUTE;
        const t = await timeGpu(gpu, () => {
          session.step(batch, { seed: 1, step: step++, route });
          opt = optimizerStep(gpu, model.params, opt, settings);
        }, { reps: Math.max(3, Math.ceil(reps / 2)), minSampleMs: 0 });
        ms[layout] = t.ms;
        rows.push({
          kernel: name,
          layout,
          M: B,
          N: V,
          K: H,
          density,
          adapter,
          ms: round(t.ms, 1),
          "eff_gflops": "",
          speedup: layout !== "masked-dense" && ms["masked-dense"]
            ? round(ms["masked-dense"] / t.ms, 2)
            : "",
          "dense_ms": "",
        });
        log(`${name} ${layout} d=${density}: ${round(t.ms, 1)} ms`);
        releaseOptimizer(gpu, opt);
        session.release();
        releaseParams(gpu, model.params);
      }
    }
  }
  return rows;
}

/**
 * Runs the sparse suite. `filter` selects rows by kernel name (`spmm`, `topk`, `train step`,
 * a shape label such as `recurrent`).
 *
 * @example
 * ```ts ignore
 * const rows = await benchSparse(gpu, { reps: 5, log: console.log });
 * ```
 */
export async function benchSparse(
  gpu: Gpu,
  opts: { reps: number; filter?: string; log: (s: string) => void },
): Promise<SparseRow[]> {
  const { reps, filter, log } = opts;
  log(`adapter: ${gpu.report.description} (variant ${gpu.variant})`);
  const rows = await benchProducts(gpu, reps, filter, log);
  if (!filter || "topk".includes(filter)) rows.push(...await benchTopK(gpu, reps, log));
  rows.push(...await benchSteps(gpu, reps, filter, log));
  return rows;
}
