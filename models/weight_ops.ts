/**
 * The three products every weight matrix takes part in, dispatched on how the weight is stored:
 * dense (optionally masked, `matmul`) or truly sparse (`param.csr`: SpMM, transposed SpMM and
 * SDDMM). Model programs call these and never branch on storage themselves, so a model runs
 * sparse or masked-dense unchanged.
 *
 * For `W: [out, in]` (PyTorch layout), activations row-major `[M, ·]`:
 *
 * ```text
 * forward         y  = x·Wᵀ (+ β·y) (+ bias)      x: [M, in],  y: [M, out]
 * data gradient   dx = dy·W (+ β·dx)              dy: [M, out], dx: [M, in]
 * weight gradient dW = dyᵀ·x                      dense: [out, in] (all positions);
 *                                                 sparse: [nnz], active entries only
 * ```
 *
 * How the sparse products run depends on the adapter (`gpu.variant`):
 *
 * - `tiled` (real GPUs): the SpMM / SDDMM kernels on the row-major activations.
 * - `regblock` (CPU rasterisers, where every storage load costs ~1-2 ns and FMAs are ~50x
 *   cheaper): with many batch rows (`M ≥ minRows`, the all-steps products) and a density above
 *   {@linkcode SparseRoute}'s thresholds, the dense kernels win even though they waste the
 *   `1 - d` zero products, since they need ~8x fewer loads per FMA than any gather: the weight
 *   is expanded into pooled `[out, in]` scratch (`sparseToDense`) for `y`/`dx`, and `dW` is the
 *   dense `dyᵀ·x` sampled at the pattern (`sampleDense`). Otherwise the sparse kernels read
 *   activations transposed into pooled scratch (`[·, M]`, vec4 loads along M). Scratch is
 *   released right after recording (the pool is stream-ordered), so only the transient dense
 *   buffer of one weight exists at a time.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import type { Tensor } from "../kernels/runtime/tensor.ts";
import { matmul } from "../kernels/dense/matmul.ts";
import { spmm, spmmT } from "../kernels/sparse/spmm.ts";
import { sampleDense, sddmm } from "../kernels/sparse/sddmm.ts";
import { transposed } from "../kernels/dense/transpose.ts";
import { sparseToDense } from "../kernels/sparse/sparse_convert.ts";
import type { SparseMatrix } from "../kernels/sparse/sparse_matrix.ts";
import { embeddingBackward, embeddingForward } from "../kernels/cells/embedding.ts";
import type { EmbeddingIndexTensors } from "../kernels/cells/embedding.ts";
import {
  sparseEmbeddingBackward,
  sparseEmbeddingForward,
} from "../kernels/sparse/sparse_embedding.ts";
import { mul } from "../kernels/dense/elementwise.ts";
import type { Param } from "./params.ts";

/** Model tensors are typed `Tensor`; the sparse launchers check the dtype at run time too. */
const f32 = (t: Tensor) => t as Tensor<"f32">;
const f32opt = (t: Tensor | undefined) => t as Tensor<"f32"> | undefined;

/**
 * When a sparse product on a `regblock` adapter goes through the dense kernels (see the module
 * doc): batch rows `M ≥ minRows` and density `nnz / (out·in)` above the product's threshold. A
 * value passed down with each product (model steps take it in their options), never a global.
 */
export interface SparseRoute {
  /** Batch rows from which a product may take the dense route. */
  minRows: number;
  /**
   * {@linkcode reusedWeight}: a sparse weight read by at least `minReuses` products with
   * unchanged values (the recurrent products of a BPTT window) above density `reuseAbove` is
   * expanded once for all of them.
   */
  minReuses: number;
  reuseAbove: number;
  /** Forward `y = x·Wᵀ`. */
  forwardAbove: number;
  /** Data gradient `dx = dy·W`. */
  dataAbove: number;
  /** Weight gradient `dW = dyᵀ·x` at the pattern. */
  weightAbove: number;
}

/**
 * The route training uses. Measured on llvmpipe at M = 700, [6000, 1500]: dense NT/NN/TN ≈
 * 1.3/1.6/0.9 s against sparse ≈ 3.2/7.4/1.4 s at d = 0.33 and 1.7/1.4/0.5 s at d = 0.1
 * (transposed-operand kernels). For `reusedWeight` at d = 0.33, [6000, 1500], one expansion
 * (`sparseToDense`, ~16 ms) is repaid after 2-3 products of 20 rows (dense ~17 ms against sparse
 * ~26-45 ms each); 16 keeps the route to real BPTT windows.
 *
 * @example
 * ```ts
 * import { DEFAULT_SPARSE_ROUTE } from "./weight_ops.ts";
 * DEFAULT_SPARSE_ROUTE.minRows > 20; // true: the per-step recurrent products stay sparse
 * ```
 */
export const DEFAULT_SPARSE_ROUTE: Readonly<SparseRoute> = Object.freeze({
  minRows: 64,
  minReuses: 16,
  reuseAbove: 0.2,
  forwardAbove: 0.2,
  dataAbove: 0.2,
  weightAbove: 0.2,
});

/**
 * The route that keeps every sparse product on the sparse kernels (benchmarks compare it).
 *
 * @example
 * ```ts ignore
 * lstmLmStep(gpu, model, ws, state, batch, { seed, step, route: SPARSE_KERNELS_ONLY });
 * ```
 */
export const SPARSE_KERNELS_ONLY: Readonly<SparseRoute> = Object.freeze({
  ...DEFAULT_SPARSE_ROUTE,
  forwardAbove: 1,
  dataAbove: 1,
  weightAbove: 1,
  reuseAbove: 1,
});

function density(w: SparseMatrix): number {
  return w.nnz / Math.max(1, w.rows * w.cols);
}

/** A weight as one loop of products reads it: see {@linkcode reusedWeight}. */
export interface ReusedWeight {
  /** Pass this to {@linkcode weightForward} / {@linkcode weightBackwardData} in the loop. */
  param: Param;
  /** Releases the dense scratch, if any; call after recording the loop. */
  release(): void;
}

/**
 * The weight for `uses` products that all see the same values, such as the per-time-step
 * recurrent products of one window (forward, or data gradients backward). On CPU rasterisers a
 * sparse weight above {@linkcode SparseRoute}`.reuseAbove` is expanded once into pooled
 * dense scratch and the loop's products run the dense kernels on it (inactive entries are 0
 * there); everywhere else the weight is returned as is. Values must not change before
 * `release()`.
 *
 * @example
 * ```ts ignore
 * const w = reusedWeight(gpu, wHh, T);
 * for (let t = 0; t < T; t++) weightForward(gpu, w.param, { x: h[t], y: gates[t], beta: 1 });
 * w.release();
 * ```
 */
export function reusedWeight(
  gpu: Gpu,
  param: Param,
  uses: number,
  route: SparseRoute = DEFAULT_SPARSE_ROUTE,
): ReusedWeight {
  const w = param.csr;
  if (
    !w || gpu.variant !== "regblock" || uses < route.minReuses || density(w) <= route.reuseAbove
  ) {
    return { param, release: () => {} };
  }
  const dense = densified(gpu, w);
  return {
    param: { ...param, value: dense, csr: undefined, mask: undefined },
    release: () => gpu.release(dense),
  };
}

/** The weight expanded into pooled scratch `[out, in]`; the caller releases it after recording. */
function densified(gpu: Gpu, w: SparseMatrix): Tensor<"f32"> {
  const out = gpu.tensor([w.rows, w.cols]);
  sparseToDense(gpu, { w, out });
  return out;
}

/**
 * `y = x·Wᵀ + β·y + bias` with `W = param` (masked when `param.mask` is set).
 *
 * @example
 * ```ts ignore
 * weightForward(gpu, wIh, { x, y: gates, bias: bIh.value });
 * ```
 */
export function weightForward(
  gpu: Gpu,
  param: Param,
  args: { x: Tensor; y: Tensor; beta?: number; bias?: Tensor; route?: SparseRoute },
): void {
  const { x, y, beta = 0, bias, route = DEFAULT_SPARSE_ROUTE } = args;
  const w = param.csr;
  if (!w) {
    matmul(gpu, { a: x, b: param.value, c: y, transB: true, beta, bias, mask: param.mask });
  } else if (gpu.variant !== "regblock") {
    spmm(gpu, { x: f32(x), w, y: f32(y), beta, bias: f32opt(bias) });
  } else if (x.shape[0] >= route.minRows && density(w) > route.forwardAbove) {
    const dense = densified(gpu, w);
    matmul(gpu, { a: x, b: dense, c: y, transB: true, beta, bias });
    gpu.release(dense);
  } else {
    const xT = transposed(gpu, x);
    spmm(gpu, { x: xT, transX: true, w, y: f32(y), beta, bias: f32opt(bias) });
    gpu.release(xT);
  }
}

/**
 * `dx = dy·W + β·dx` (the data gradient of {@linkcode weightForward}).
 *
 * @example
 * ```ts ignore
 * weightBackwardData(gpu, wHh, { dy: dGatesT, dx: dHPrev, beta: 1 });
 * ```
 */
export function weightBackwardData(
  gpu: Gpu,
  param: Param,
  args: { dy: Tensor; dx: Tensor; beta?: number; route?: SparseRoute },
): void {
  const { dy, dx, beta = 0, route = DEFAULT_SPARSE_ROUTE } = args;
  const w = param.csr;
  if (!w) {
    matmul(gpu, { a: dy, b: param.value, c: dx, beta, mask: param.mask });
  } else if (gpu.variant !== "regblock") {
    spmmT(gpu, { dy: f32(dy), w, dx: f32(dx), beta });
  } else if (dy.shape[0] >= route.minRows && density(w) > route.dataAbove) {
    const dense = densified(gpu, w);
    matmul(gpu, { a: dy, b: dense, c: dx, beta });
    gpu.release(dense);
  } else {
    const dyT = transposed(gpu, dy);
    spmmT(gpu, { dy: dyT, transDy: true, w, dx: f32(dx), beta });
    gpu.release(dyT);
  }
}

/**
 * `param.grad = dyᵀ·x` (overwritten), or `param.grad += dyᵀ·x` with `accumulate` (a weight used
 * several times in a step, as the MoS decoder by every expert): dense at every position
 * (∂loss/∂(W⊙M), what gradient-based growth reads), or at the active entries only for a sparse
 * weight.
 *
 * @example
 * ```ts ignore
 * weightBackwardWeight(gpu, wHh, { dy: dGates, x: hPrev });
 * ```
 */
export function weightBackwardWeight(
  gpu: Gpu,
  param: Param,
  args: { dy: Tensor; x: Tensor; route?: SparseRoute; accumulate?: boolean },
): void {
  const { dy, x, route = DEFAULT_SPARSE_ROUTE } = args;
  const beta = args.accumulate ? 1 : 0;
  const w = param.csr;
  const out = f32(param.grad);
  if (!w) {
    matmul(gpu, { a: dy, b: x, c: param.grad, transA: true, beta });
  } else if (gpu.variant !== "regblock") {
    sddmm(gpu, { dy: f32(dy), x: f32(x), w, out, beta });
  } else if (dy.shape[0] >= route.minRows && density(w) > route.weightAbove) {
    const dense = gpu.tensor([w.rows, w.cols]);
    matmul(gpu, { a: dy, b: x, c: dense, transA: true });
    sampleDense(gpu, { dense, w, out, beta });
    gpu.release(dense);
  } else {
    const dyT = transposed(gpu, dy);
    const xT = transposed(gpu, x);
    sddmm(gpu, { dy: dyT, x: xT, transposed: true, w, out, beta });
    gpu.release(dyT);
    gpu.release(xT);
  }
}

/**
 * Embedding gather `out[n] = (W ⊙ M)[ids[n]]`. `maskRows: [N, E]` is scratch for the masked
 * dense path (the gathered mask rows).
 *
 * @example
 * ```ts ignore
 * embedForward(gpu, model.encoder, { ids: batch.input, out: emb, maskRows: ws.embMask });
 * ```
 */
export function embedForward(
  gpu: Gpu,
  param: Param,
  args: { ids: Tensor; out: Tensor; maskRows?: Tensor },
): void {
  const { ids, out, maskRows } = args;
  if (param.csr) {
    sparseEmbeddingForward(gpu, { ids, table: param.csr, out });
    return;
  }
  embeddingForward(gpu, { ids, table: param.value, out });
  if (param.mask) {
    if (!maskRows) throw new RangeError(`embedForward ${param.name}: maskRows scratch is required`);
    embeddingForward(gpu, { ids, table: param.mask, out: maskRows });
    mul(gpu, { a: out, b: maskRows, out });
  }
}

/**
 * Adds the embedding gradient of a batch onto `param.grad` (clear it first for a fresh one).
 *
 * @example
 * ```ts ignore
 * embedBackward(gpu, model.encoder, { index: batch.index, dOut: dEmb });
 * ```
 */
export function embedBackward(
  gpu: Gpu,
  param: Param,
  args: { index: EmbeddingIndexTensors; dOut: Tensor },
): void {
  const { index, dOut } = args;
  if (param.csr) {
    sparseEmbeddingBackward(gpu, { index, dOut, table: param.csr, dValues: param.grad });
  } else {
    embeddingBackward(gpu, { index, dOut, dTable: param.grad });
  }
}
