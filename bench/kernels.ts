/**
 * `deno task bench kernels`: dense matmul at square and RNN shapes, masked matmul, and the fused
 * softmax + cross-entropy over a PTB-sized vocabulary. One row per kernel and shape.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import { matmul } from "../kernels/dense/matmul.ts";
import { softmaxCrossEntropy } from "../kernels/cells/softmax_ce.ts";
import type { KernelSpec } from "../kernels/runtime/kernel.ts";
import { timeGpu } from "./timing.ts";

/** One benchmark row. */
export interface KernelRow {
  kernel: string;
  variant: string;
  M: number;
  N: number;
  K: number;
  adapter: string;
  ms: number;
  gflops: number;
  [key: string]: string | number;
}

/** Columns of {@linkcode KernelRow}, in CSV order. */
export const KERNEL_COLUMNS = [
  "kernel",
  "variant",
  "M",
  "N",
  "K",
  "adapter",
  "ms",
  "gflops",
  "vs_peak",
];

/**
 * ALU-only probe: 16 independent vec4 FMA chains per thread, no memory traffic in the loop.
 * Its rate is the adapter's arithmetic ceiling as measured now; every row reports `vs_peak`
 * against it, a ratio that stays meaningful on machines whose speed drifts between runs.
 */
const FMA_PEAK: KernelSpec = {
  name: "bench_fma_peak",
  bindings: [{ name: "out", dtype: "f32", access: "read_write", width: 4 }],
  params: [["iters", "u32"]],
  body: `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let b = vec4<f32>(f32(g.x) * 1e-3, 0.5, 0.25, 0.125);
${Array.from({ length: 16 }, (_, i) => `  var a${i} = vec4<f32>(f32(g.x + ${i}u));`).join("\n")}
  for (var k = 0u; k < P.iters; k = k + 1u) {
    let x = vec4<f32>(f32(k) * 1e-6);
${Array.from({ length: 16 }, (_, i) => `    a${i} = fma(x, b, a${i});`).join("\n")}
  }
  out[P.off_out + g.x] = ${Array.from({ length: 16 }, (_, i) => `a${i}`).join(" + ")};
}`,
};

async function fmaPeak(gpu: Gpu, reps: number): Promise<number> {
  const groups = 256, iters = 2048;
  const out = gpu.tensor([groups * 64 * 4]);
  const t = await timeGpu(gpu, () => gpu.run(FMA_PEAK, { out }, { iters }, [groups, 1, 1]), {
    reps,
  });
  gpu.release(out);
  return (groups * 64 * iters * 16 * 4 * 2) / t.ms / 1e6;
}

interface MatmulShape {
  label: string;
  m: number;
  n: number;
  k: number;
  transB: boolean;
  density?: number;
}

/** The shapes of the issue: square, the recurrent step, and the decoder at H = 650 and 1500. */
export const MATMUL_SHAPES: readonly MatmulShape[] = [
  { label: "square", m: 512, n: 512, k: 512, transB: false },
  { label: "square", m: 1024, n: 1024, k: 1024, transB: false },
  { label: "recurrent H=1500", m: 20, n: 6000, k: 1500, transB: true },
  { label: "decoder H=650", m: 700, n: 10000, k: 650, transB: true },
  { label: "decoder H=1500", m: 700, n: 10000, k: 1500, transB: true },
  { label: "masked recurrent H=1500", m: 20, n: 6000, k: 1500, transB: true, density: 0.33 },
];

function fillRandom(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

/**
 * Runs the kernel benchmarks on `gpu` with its current variant.
 *
 * @example
 * ```ts ignore
 * const rows = await benchKernels(gpu, { reps: 5, log: console.log });
 * ```
 */
export async function benchKernels(
  gpu: Gpu,
  opts: { reps: number; filter?: string; log: (s: string) => void },
): Promise<KernelRow[]> {
  const rows: KernelRow[] = [];
  const adapter = gpu.report.description;
  const peak = await fmaPeak(gpu, opts.reps);
  rows.push({
    kernel: "fma peak (ALU only)",
    variant: "-",
    M: 0,
    N: 0,
    K: 0,
    adapter,
    ms: 0,
    gflops: +peak.toFixed(2),
    "vs_peak": 1,
  });
  opts.log(`ALU-only FMA peak: ${peak.toFixed(1)} GFLOP/s`);
  for (const s of MATMUL_SHAPES) {
    const name = s.density ? "matmul masked" : "matmul";
    if (opts.filter && !`${name} ${s.label}`.includes(opts.filter)) continue;
    const a = gpu.upload([s.m, s.k], fillRandom(s.m * s.k, 1));
    const b = gpu.upload(s.transB ? [s.n, s.k] : [s.k, s.n], fillRandom(s.k * s.n, 2));
    const c = gpu.tensor([s.m, s.n]);
    const mask = s.density
      ? gpu.upload(b.shape, fillRandom(b.size, 3).map((v) => (v + 0.5 < s.density! ? 1 : 0)))
      : undefined;
    const t = await timeGpu(gpu, () => matmul(gpu, { a, b, c, transB: s.transB, mask }), {
      reps: opts.reps,
    });
    const flops = 2 * s.m * s.n * s.k;
    const row: KernelRow = {
      kernel: `${name} ${s.transB ? "NT" : "NN"}${s.density ? ` d=${s.density}` : ""}`,
      variant: gpu.variant,
      M: s.m,
      N: s.n,
      K: s.k,
      adapter,
      ms: +t.ms.toFixed(3),
      gflops: +(flops / t.ms / 1e6).toFixed(2),
      "vs_peak": +(flops / t.ms / 1e6 / peak).toFixed(3),
    };
    rows.push(row);
    opts.log(`${row.kernel} ${s.m}x${s.n}x${s.k}: ${row.ms} ms, ${row.gflops} GFLOP/s`);
    for (const x of [a, b, c, mask]) if (x) gpu.release(x);
  }
  if (!opts.filter || "softmax_ce".includes(opts.filter)) {
    const n = 700, v = 10000;
    const logits = gpu.upload([n, v], fillRandom(n * v, 4));
    const targets = gpu.upload(
      [n],
      Uint32Array.from({ length: n }, (_, i) => (i * 7919) % v),
      "u32",
    );
    const loss = gpu.tensor([n]);
    const dLogits = gpu.tensor([n, v]);
    const t = await timeGpu(
      gpu,
      () => softmaxCrossEntropy(gpu, { logits, targets, loss, dLogits, gradScale: 1 / n }),
      { reps: opts.reps },
    );
    // exp + max + sum + gradient: ~5 flops per logit, reported for scale only.
    const row: KernelRow = {
      kernel: "softmax_ce fwd+bwd",
      variant: gpu.variant,
      M: n,
      N: v,
      K: 1,
      adapter,
      ms: +t.ms.toFixed(3),
      gflops: +((5 * n * v) / t.ms / 1e6).toFixed(2),
      "vs_peak": +((5 * n * v) / t.ms / 1e6 / peak).toFixed(3),
    };
    rows.push(row);
    opts.log(`${row.kernel} ${n}x${v}: ${row.ms} ms`);
    for (const x of [logits, targets, loss, dLogits]) gpu.release(x);
  }
  return rows;
}
