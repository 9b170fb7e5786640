/**
 * WeightDrop (DropConnect on a recurrent weight, spec §2.3, §14.2–14.3) as model programs use
 * it: the dropped copy of a weight that every recurrent product of one training step reads,
 * the gradient mapped back to the raw weight, and the weight evaluation reads. The raw weight is
 * never modified, so magnitude removal, growth, clipping, averaging and checkpoints all see it.
 *
 * Two conventions (both in the paper's models):
 *
 * - `inverted` (AWD-LSTM, MoS `WeightDrop`): training reads `W ⊙ D / (1 − p)`, evaluation `W`.
 * - `eval-scaled` (ON-LSTM `LinearDropConnect`): training reads `W ⊙ D`, evaluation
 *   `W · (1 − p)`.
 *
 * `D` is one element-wise Bernoulli(1 − p) mask per training step (the caller gives the step's
 * Philox offset), composed with the sparsity mask: masked storage keeps `param.mask` on the
 * dropped copy, CSR storage drops the stored entries at their dense positions, so both storages
 * drop the same weights (`kernels/cells/weight_drop.ts`).
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import {
  weightDropDense,
  type WeightDropMask,
  weightDropSparse,
} from "../../kernels/cells/weight_drop.ts";
import { scale } from "../../kernels/dense/elementwise.ts";
import { storedLength } from "../../kernels/sparse/sparse_matrix.ts";
import type { Param } from "../params.ts";
import type { ReusedWeight } from "../weight_ops.ts";

/** How the kept weights are scaled (see the module doc). */
export type WeightDropConvention = "inverted" | "eval-scaled";

/** The conventions by name, for flags and checks. */
export const WEIGHT_DROP_CONVENTIONS: readonly WeightDropConvention[] = [
  "inverted",
  "eval-scaled",
];

/** WeightDrop of a model's recurrent weights. */
export interface WeightDrop {
  /** Drop probability in (0, 1). */
  p: number;
  convention: WeightDropConvention;
}

/**
 * The keep mask of one training step: `(seed, offset)` is the step's Philox stream for this
 * weight; kept weights are scaled `1 / (1 − p)` (inverted, rounded to f32) or 1.
 *
 * @example
 * ```ts
 * import { weightDropMask } from "./weight_drop.ts";
 * weightDropMask({ p: 0.5, convention: "inverted" }, 1, 7).scale; // 2
 * ```
 */
export function weightDropMask(wd: WeightDrop, seed: number, offset: number): WeightDropMask {
  const s = wd.convention === "inverted" ? Math.fround(1 / (1 - wd.p)) : 1;
  return { p: wd.p, scale: s, seed, offset };
}

/** A copy of `param` reading `values` instead of its own (same grad, mask and pattern). */
function withValues(param: Param, values: Param["value"]): Param {
  return param.csr
    ? { ...param, value: values, csr: { ...param.csr, values: values as typeof param.csr.values } }
    : { ...param, value: values };
}

/** `x` mapped through the keep mask into `y` (both aligned with `param.value`). */
function drop(gpu: Gpu, param: Param, x: Param["value"], y: Param["value"], m: WeightDropMask) {
  if (param.csr) weightDropSparse(gpu, { w: param.csr, x, y, mask: m });
  else weightDropDense(gpu, { x, y, mask: m });
}

function scratchLike(gpu: Gpu, param: Param): Param["value"] {
  return param.csr ? gpu.tensor([storedLength(param.csr.nnz)]) : gpu.tensor(param.value.shape);
}

/**
 * The weight one training step's products read: `param` dropped by `mask` into pooled scratch
 * (its gradient tensor is `param.grad`, so weight gradients land on the raw weight's; map them
 * with {@linkcode weightDropGrad}). Release after recording the step's backward pass.
 *
 * @example
 * ```ts ignore
 * const hh = droppedWeight(gpu, wHh, weightDropMask(wd, seed, offset));
 * // ... forward and backward products on hh.param ...
 * weightDropGrad(gpu, wHh, mask);
 * hh.release();
 * ```
 */
export function droppedWeight(gpu: Gpu, param: Param, mask: WeightDropMask): ReusedWeight {
  const values = scratchLike(gpu, param);
  drop(gpu, param, param.value, values, mask);
  return { param: withValues(param, values), release: () => gpu.release(values) };
}

/**
 * `param.grad ⊙= D · scale` in place: the gradient w.r.t. the dropped weight becomes the
 * gradient w.r.t. the raw one.
 *
 * @example
 * ```ts ignore
 * weightDropGrad(gpu, wHh, mask);
 * ```
 */
export function weightDropGrad(gpu: Gpu, param: Param, mask: WeightDropMask): void {
  drop(gpu, param, param.grad, param.grad, mask);
}

/**
 * The weight evaluation reads: `W · (1 − p)` in pooled scratch for `eval-scaled`, else `param`
 * itself. Release after recording the evaluation's products.
 *
 * @example
 * ```ts ignore
 * const hh = evalWeight(gpu, wHh, wd);
 * hh.release();
 * ```
 */
export function evalWeight(gpu: Gpu, param: Param, wd: WeightDrop): ReusedWeight {
  if (wd.convention === "inverted") return { param, release: () => {} };
  const values = scratchLike(gpu, param);
  scale(gpu, { x: param.value, alpha: 1 - wd.p, out: values });
  return { param: withValues(param, values), release: () => gpu.release(values) };
}
