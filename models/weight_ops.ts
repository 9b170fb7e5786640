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
 * @module
 */

import type { Gpu } from "../kernels/runtime.ts";
import type { Tensor } from "../kernels/tensor.ts";
import { matmul } from "../kernels/matmul.ts";
import { spmm, spmmT } from "../kernels/spmm.ts";
import { sddmm } from "../kernels/sddmm.ts";
import { embeddingBackward, embeddingForward } from "../kernels/embedding.ts";
import type { EmbeddingIndexTensors } from "../kernels/embedding.ts";
import { sparseEmbeddingBackward, sparseEmbeddingForward } from "../kernels/sparse_embedding.ts";
import { mul } from "../kernels/elementwise.ts";
import type { Param } from "./params.ts";

/** Model tensors are typed `Tensor`; the sparse launchers check the dtype at run time too. */
const f32 = (t: Tensor) => t as Tensor<"f32">;
const f32opt = (t: Tensor | undefined) => t as Tensor<"f32"> | undefined;

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
  args: { x: Tensor; y: Tensor; beta?: number; bias?: Tensor },
): void {
  const { x, y, beta = 0, bias } = args;
  if (param.csr) spmm(gpu, { x: f32(x), w: param.csr, y: f32(y), beta, bias: f32opt(bias) });
  else matmul(gpu, { a: x, b: param.value, c: y, transB: true, beta, bias, mask: param.mask });
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
  args: { dy: Tensor; dx: Tensor; beta?: number },
): void {
  const { dy, dx, beta = 0 } = args;
  if (param.csr) spmmT(gpu, { dy: f32(dy), w: param.csr, dx: f32(dx), beta });
  else matmul(gpu, { a: dy, b: param.value, c: dx, beta, mask: param.mask });
}

/**
 * `param.grad = dyᵀ·x` (overwritten): dense at every position (∂loss/∂(W⊙M), what gradient-based
 * growth reads), or at the active entries only for a sparse weight.
 *
 * @example
 * ```ts ignore
 * weightBackwardWeight(gpu, wHh, { dy: dGates, x: hPrev });
 * ```
 */
export function weightBackwardWeight(
  gpu: Gpu,
  param: Param,
  args: { dy: Tensor; x: Tensor },
): void {
  const { dy, x } = args;
  if (param.csr) sddmm(gpu, { dy: f32(dy), x: f32(x), w: param.csr, out: f32(param.grad) });
  else matmul(gpu, { a: dy, b: x, c: param.grad, transA: true });
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
