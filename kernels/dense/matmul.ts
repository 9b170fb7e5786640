/**
 * Dense and masked matmul: C = α·op(A)·op(B ⊙ mask) + β·C + bias, op ∈ {N, T} on each side.
 * Picks the kernel family from `gpu.variant` ({@linkcode regblockMatmulSpec} for CPU
 * rasterisers, {@linkcode tiledMatmulSpec} for GPUs) and the tile from the shape. On the
 * register-blocked family `transA` is a transpose of A into scratch followed by A·B.
 *
 * RNN usage: the input and recurrent projections are `Y = X·Wᵀ` with `W: [4H, in]` (transB),
 * the data gradient is `dX = dY·W` (NN) and the weight gradient is `dW = dYᵀ·X` (transA).
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { type MatmulConfig, regblockMatmulSpec } from "./matmul_regblock.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { tiledMatmulSpec } from "./matmul_tiled.ts";
import { fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";
import { checkOverlap } from "../runtime/alias.ts";
import { SOFTWARE_LOOP_BUDGET } from "../runtime/device.ts";
import { transposed } from "./transpose.ts";

/** Arguments of {@linkcode matmul}. All tensors are f32 and 2-D (bias 1-D). */
export interface MatmulArgs {
  /** `[M, K]`, or `[K, M]` when `transA`. */
  a: Tensor;
  /** `[K, N]`, or `[N, K]` when `transB`. The weight operand of masked products. */
  b: Tensor;
  /** `[M, N]` output; also read when `beta` ≠ 0. Must not overlap `a`, `b`, `bias`, `mask`. */
  c: Tensor;
  transA?: boolean;
  transB?: boolean;
  /** Default 1. */
  alpha?: number;
  /** Default 0: C is not read, so stale NaNs in C never leak into the result. */
  beta?: number;
  /** `[N]`, broadcast over rows. */
  bias?: Tensor;
  /** 0/1 values in `b`'s shape and layout, applied on the fly (masked-dense sparse path). */
  mask?: Tensor;
}

function dims2(what: string, t: Tensor): [number, number] {
  if (t.dtype !== "f32" || t.shape.length !== 2) {
    throw new ShapeError(`matmul: ${what} must be a 2-D f32 tensor, got ${t}`);
  }
  return [t.shape[0], t.shape[1]];
}

/**
 * Thread tile for the register-blocked kernel. Loads, not FMAs, bound it on llvmpipe, so bigger
 * tiles win until register spills and compile time take over. Measured at 512³ (best of
 * three, one run): 64×32 28 GFLOP/s, 64×16 25, 32×16 21.5, 128×32 22.6 (and 165 s to compile);
 * 64×32 compiles in ~15 s cold on llvmpipe (Mesa caches it afterwards), so it is used only for
 * products big enough to repay that.
 */
function regblockTile(
  m: number,
  n: number,
  k: number,
  vecC: boolean,
): Pick<MatmulConfig, "tm" | "tn" | "wx" | "wy"> {
  // Small products are dispatch-bound, not load-bound: an 8×8 tile compiles in a fraction of
  // the time of the big ones (llvmpipe compiles each tile shape once per process, seconds each).
  if (m * n * k < 1 << 21) {
    const tm = Math.min(8, Math.ceil(m / 4) * 4), tn = n > 4 ? 8 : 4;
    const wy = Math.min(8, Math.ceil(m / tm));
    return { tm, tn, wx: wy >= 4 ? 8 : 16, wy };
  }
  const tn = n >= 16 ? 16 : n > 4 ? 8 : 4;
  if (m <= 32) {
    // Skinny RNN batches: one thread covers every row (1.29× over 8-row tiles at 20×6000×1500).
    // Rounded up to a multiple of 4 so at most 8 tile shapes are ever compiled for small M.
    return { tm: Math.ceil(m / 4) * 4, tn, wx: 16, wy: 1 };
  }
  // Only with vec4 stores of C: 2048 guarded scalar stores would add ~20 s of compile.
  // Also for N between 192 and 256, where part of a workgroup's 256 columns idles: 64×32 still
  // ran 1.5× faster than 32×16 at N = 200 (the decoder's dW and dH products at H = 200).
  if (vecC && m >= 128 && n >= 192 && m * n * k >= 1 << 26) {
    return { tm: 64, tn: 32, wx: 8, wy: 1 };
  }
  const tm = m >= 128 ? 32 : 16;
  const wy = Math.min(8, Math.ceil(m / tm));
  // At least 8 lanes along x, so one SIMD batch shares its A rows (wx = 4 measured 1.7× slower).
  return { tm, tn, wx: wy >= 4 ? 8 : 16, wy };
}

const specCache = new Map<string, KernelSpec>();

/** One spec object per configuration: generating the source costs ~1 ms, a lookup nothing. */
function cachedSpec(make: (cfg: MatmulConfig) => KernelSpec, cfg: MatmulConfig): KernelSpec {
  const key = `${make.name}:${JSON.stringify(cfg)}`;
  let spec = specCache.get(key);
  if (!spec) specCache.set(key, spec = make(cfg));
  return spec;
}

/** Widest aligned load (4, 2 or 1 elements) for rows of `inner` elements starting at `offset`. */
function loadWidth(inner: number, offset: number): 1 | 2 | 4 {
  const g = inner | offset;
  return g % 4 === 0 ? 4 : g % 2 === 0 ? 2 : 1;
}

/** Rows per thread of the tiled kernel: skinny batches get shorter tiles. */
function tiledRows(m: number): number {
  return m <= 16 ? 1 : m <= 32 ? 2 : 4;
}

/**
 * The tiled kernel when `gpu.variant` asks for it, except on software adapters when its loop
 * count per thread (K/16 slices of staging and 16 inner steps) would pass llvmpipe's budget:
 * the loop-light register-blocked kernel gives the same product there.
 */
function useTiled(gpu: Gpu, m: number, k: number): boolean {
  if (gpu.variant !== "tiled") return false;
  const rm = tiledRows(m);
  return !gpu.report.isFallback || Math.ceil(k / 16) * (5 + 17 * rm) + 8 <= SOFTWARE_LOOP_BUDGET;
}

/**
 * Records C = α·op(A)·op(B ⊙ mask) + β·C + bias. Throws {@linkcode ShapeError} naming the
 * shapes before anything is recorded.
 *
 * @example
 * ```ts ignore
 * // gates[B, 4H] = x[B, in] · W_ih[4H, in]ᵀ + b[4H]
 * matmul(gpu, { a: x, b: wIh, c: gates, transB: true, bias: b });
 * ```
 */
export function matmul(gpu: Gpu, args: MatmulArgs): void {
  const { a, b, c, transA = false, transB = false, alpha = 1, beta = 0 } = args;
  const [a0, a1] = dims2("a", a);
  const [b0, b1] = dims2("b", b);
  const [m, n] = dims2("c", c);
  const [am, k] = transA ? [a1, a0] : [a0, a1];
  const [bk, bn] = transB ? [b1, b0] : [b0, b1];
  if (am !== m || bn !== n || bk !== k) {
    throw new ShapeError(
      `matmul: op(a)${transA ? "ᵀ" : ""} ${fmtShape(a.shape)} · op(b)${transB ? "ᵀ" : ""} ` +
        `${fmtShape(b.shape)} does not give c ${fmtShape(c.shape)} ` +
        `(need [M, K]·[K, N] = [M, N], got [${am}, ${k}]·[${bk}, ${bn}] vs [${m}, ${n}])`,
    );
  }
  if (args.bias && (args.bias.dtype !== "f32" || args.bias.size !== n)) {
    throw new ShapeError(`matmul: bias must be f32 with N = ${n} elements, got ${args.bias}`);
  }
  if (args.mask) {
    const ms = args.mask.shape;
    if (args.mask.dtype !== "f32" || ms.length !== 2 || ms[0] !== b0 || ms[1] !== b1) {
      throw new ShapeError(
        `matmul: mask must be f32 ${fmtShape(b.shape)} like b, got ${args.mask}`,
      );
    }
  }
  // Every output element reads whole rows/columns of the inputs: no aliasing is safe.
  checkOverlap("matmul", { c }, { a, b, bias: args.bias, mask: args.mask });
  if (m === 0 || n === 0) return;
  if (transA && !useTiled(gpu, m, k)) {
    // On llvmpipe a register-blocked Aᵀ kernel ran ~4.5× slower than A·B at LSTM weight-gradient
    // shapes and its dispatches leaked host memory (MBs each: a sweep's RSS grew to 24 GB); a
    // transpose pass into scratch and the plain kernel cost a fraction of that.
    const at = transposed(gpu, a);
    matmul(gpu, { ...args, a: at, transA: false });
    gpu.release(at);
    return;
  }

  const widthB = Math.min(loadWidth(b1, b.offset), args.mask ? loadWidth(b1, args.mask.offset) : 4);
  const base = {
    transA,
    transB,
    widthA: loadWidth(a1, a.offset),
    widthB: widthB as 1 | 2 | 4,
    widthC: (loadWidth(n, c.offset) === 4 ? 4 : 1) as 1 | 4,
    hasBias: args.bias !== undefined,
    hasMask: args.mask !== undefined,
    readC: beta !== 0,
  };
  let spec: KernelSpec;
  let grid: [number, number, number];
  if (useTiled(gpu, m, k)) {
    const tm = tiledRows(m);
    spec = cachedSpec(tiledMatmulSpec, { ...base, widthC: 1, tm, tn: 4, wx: 16, wy: 16 });
    grid = [Math.ceil(n / 64), Math.ceil(m / (16 * tm)), 1];
  } else {
    const tile = regblockTile(m, n, k, base.widthC === 4);
    if (gpu.report.isFallback && k / 4 + 4 > SOFTWARE_LOOP_BUDGET) {
      throw new RangeError(
        `matmul: K = ${k} needs more loop iterations per thread than software adapters ` +
          `execute (${SOFTWARE_LOOP_BUDGET}); split K into chunks accumulated with beta = 1`,
      );
    }
    spec = cachedSpec(regblockMatmulSpec, { ...base, ...tile, kTail: k % 4 !== 0 });
    grid = [Math.ceil(n / (tile.tn * tile.wx)), Math.ceil(m / (tile.tm * tile.wy)), 1];
  }
  const tensors: Record<string, Tensor> = { A: a, B: b, C: c };
  if (args.bias) tensors.bias = args.bias;
  if (args.mask) tensors.mask = args.mask;
  gpu.run(spec, tensors, { M: m, N: n, K: k, alpha, beta }, grid);
}
