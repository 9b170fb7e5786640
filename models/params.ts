/**
 * Model parameters as the training loop, the optimizers and the sparse-training methods see them:
 * one {@linkcode Param} record per tensor, holding its value, its gradient, an optional 0/1 mask
 * and the metadata the sparse methods need (row blocks, whether the tensor is sparse).
 *
 * Masks are read by the model code at record time (`param.mask` present → masked products), so
 * sparse methods attach, replace or drop masks without touching any model code.
 *
 * Initialisation is reproducible across adapters: values are drawn by the Philox
 * `randomUniform` kernel under `(seed, offset = tensor index)`, which is bit-exact everywhere
 * (see `philox.ts`), then mapped to `[lo, hi)` by one f32 multiply and one f32 add, both
 * correctly rounded in WGSL. So the same seed gives the same weights on every adapter.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import { fmtShape, type Shape, ShapeError, type Tensor } from "../kernels/runtime/tensor.ts";
import { randomUniform } from "../kernels/random/random.ts";
import { add, scale } from "../kernels/dense/elementwise.ts";
import { releaseSparse, type SparseMatrix, storedLength } from "../kernels/sparse/sparse_matrix.ts";

/** How a tensor is initialised: `U(lo, hi)` or all zeros. */
export type ParamInit = { kind: "uniform"; lo: number; hi: number } | { kind: "zeros" };

/** Static description of one parameter tensor (no GPU memory). */
export interface ParamSpec {
  /** PyTorch-style name, e.g. `rnn.weight_ih_l0`. */
  name: string;
  shape: Shape;
  /**
   * Rows of each row block, summing to `shape[0]`: LSTM weights `[H, H, H, H]` (gates i, f, g,
   * o), RHN `[H, H]` (H and T), ON-LSTM `[n, n, H, H, H, H]`, plain tensors `[rows]`.
   * Selfish-RNN's per-gate regrowth, per-gate densities and NNSTD read them.
   */
  blocks: readonly number[];
  /**
   * What each row block is, in order (`["i", "f", "g", "o"]` for LSTM weights), for reports;
   * absent where the blocks are not gates (a vocabulary's rows, ON-LSTM's `chunk4` blocks).
   */
  blockNames?: readonly string[];
  /** True for every tensor whose name does not contain "bias" (the Selfish-RNN rule, spec §2). */
  sparse: boolean;
  init: ParamInit;
}

/**
 * One parameter tensor on the GPU.
 *
 * - `value`, `grad`: f32 in `shape`. Model programs overwrite `grad` every step (they do not
 *   accumulate), and the gradient is dense even for masked tensors: it is ∂loss/∂(W⊙M) at every
 *   position, active or not, which is what the optimizer (masked update) and gradient-based
 *   growth (RigL, SNFS) need.
 * - `mask`: optional f32 0/1 in `shape`. When present, forward products and data gradients use
 *   `value ⊙ mask`.
 *
 * @example
 * ```ts ignore
 * for (const p of model.params) if (p.sparse) p.mask = gpu.upload(p.shape, myMask(p));
 * ```
 */
export interface Param extends ParamSpec {
  value: Tensor;
  grad: Tensor;
  mask?: Tensor;
  /**
   * True sparse storage (`sparse_params.ts`): when set, `value` is `csr.values` and `grad`
   * (and every optimizer state) is an `[storedLength(nnz)]` array aligned with it, so memory is
   * O(density); `mask` is absent (every stored entry is active). `shape` stays the dense shape.
   */
  csr?: SparseMatrix;
}

/**
 * Allocates `specs` on the GPU and records their initialisation: tensor `k` of the list draws
 * `randomUniform(seed, offset = k)` and maps it to `[lo, hi)` as `u·(hi − lo) + lo` in f32.
 * Gradients start at zero.
 *
 * @example
 * ```ts ignore
 * const params = createParams(gpu, lstmLmParamSpecs(config), 1111);
 * ```
 */
export function createParams(gpu: Gpu, specs: readonly ParamSpec[], seed: number): Param[] {
  return specs.map((spec, k) => {
    const value = gpu.tensor(spec.shape);
    const grad = gpu.tensor(spec.shape);
    if (spec.init.kind === "zeros") {
      gpu.fill(value, 0);
    } else {
      const { lo, hi } = spec.init;
      if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi)) {
        throw new RangeError(`createParams ${spec.name}: bad init range [${lo}, ${hi})`);
      }
      randomUniform(gpu, { out: value, seed, offset: k });
      scale(gpu, { x: value, alpha: hi - lo, out: value });
      // grad is a scratch for the constant here; it is cleared right after
      gpu.fill(grad, lo);
      add(gpu, { a: value, b: grad, out: value });
    }
    gpu.fill(grad, 0);
    return { ...spec, value, grad };
  });
}

/**
 * Checks that a mask attached to `p` matches its shape and dtype, and that a sparse (`csr`)
 * parameter's arrays agree with it; throws {@linkcode ShapeError}.
 *
 * @example
 * ```ts ignore
 * checkParamMask(param);
 * ```
 */
export function checkParamMask(p: Param): void {
  if (p.csr) {
    const { csr } = p;
    const len = storedLength(csr.nnz);
    if (p.mask) throw new ShapeError(`${p.name}: a sparse (csr) parameter cannot have a mask`);
    if (csr.rows !== p.shape[0] || csr.cols !== (p.shape[1] ?? 1) || p.shape.length !== 2) {
      throw new ShapeError(
        `${p.name}: csr is [${csr.rows}, ${csr.cols}], parameter shape ${fmtShape(p.shape)}`,
      );
    }
    if (p.value !== csr.values || p.grad.size !== len) {
      throw new ShapeError(
        `${p.name}: a csr parameter's value must be csr.values and its grad [${len}], got ` +
          `grad ${fmtShape(p.grad.shape)}`,
      );
    }
    return;
  }
  const m = p.mask;
  if (!m) return;
  if (
    m.dtype !== "f32" || m.shape.length !== p.shape.length ||
    m.shape.some((d, i) => d !== p.shape[i])
  ) {
    throw new ShapeError(
      `${p.name} mask: expected f32 ${fmtShape(p.shape)}, got ${m.dtype} ${fmtShape(m.shape)}`,
    );
  }
}

/**
 * Releases the value, gradient and mask tensors of `params` to the pool.
 *
 * @example
 * ```ts ignore
 * releaseParams(gpu, model.params);
 * ```
 */
export function releaseParams(gpu: Gpu, params: readonly Param[]): void {
  for (const p of params) {
    if (p.csr) releaseSparse(gpu, p.csr); // includes value
    else gpu.release(p.value);
    gpu.release(p.grad);
    if (p.mask) gpu.release(p.mask);
  }
}

/**
 * The flat element ranges of a tensor's row blocks (row-major: block k covers its rows times
 * the row length).
 *
 * @example
 * ```ts
 * import { blockSpans } from "./params.ts";
 * blockSpans({ shape: [6, 3], blocks: [2, 4] }); // [{ start: 0, size: 6 }, { start: 6, size: 12 }]
 * ```
 */
export function blockSpans(
  p: { shape: Shape; blocks: readonly number[] },
): { start: number; size: number }[] {
  const rowLen = p.shape.slice(1).reduce((a, b) => a * b, 1);
  let start = 0;
  return p.blocks.map((rows) => {
    const span = { start, size: rows * rowLen };
    start += span.size;
    return span;
  });
}
