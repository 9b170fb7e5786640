/**
 * Moving a parameter between masked-dense storage (`value` + 0/1 `mask`, dense gradient) and
 * true sparse storage (`csr`, values/gradient/optimizer state at the active entries only).
 *
 * Both conversions run on the GPU and are meant for setup, checkpoints and evaluation, not for
 * training steps; they allocate the new arrays and release the old ones.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime.ts";
import { ShapeError, type Tensor } from "../kernels/tensor.ts";
import { releaseSparse, storedLength } from "../kernels/sparse_matrix.ts";
import { sparseFromMask, sparseToDense, sparseToMask } from "../kernels/sparse_convert.ts";
import type { Param } from "./params.ts";

/**
 * Converts a masked parameter to true sparse storage: `csr` built from `value` restricted to
 * `mask` (which must hold exactly `nnz` ones), a zeroed `[nnz]` gradient; the dense value,
 * gradient and mask are released. `budget` defaults to `nnz`.
 *
 * @example
 * ```ts ignore
 * const nnz = await countNonzero(gpu, p.mask!);
 * sparsifyParam(gpu, p, { nnz });
 * ```
 */
export function sparsifyParam(
  gpu: Gpu,
  p: Param,
  opts: { nnz: number; budget?: number },
): void {
  if (p.csr) throw new ShapeError(`sparsifyParam ${p.name}: already sparse`);
  if (!p.mask) throw new ShapeError(`sparsifyParam ${p.name}: needs a mask`);
  if (p.shape.length !== 2) {
    throw new ShapeError(`sparsifyParam ${p.name}: only 2-D weights can be sparse`);
  }
  const csr = sparseFromMask(gpu, {
    dense: p.value as Tensor<"f32">,
    mask: p.mask as Tensor<"f32">,
    nnz: opts.nnz,
    gates: p.gates,
    budget: opts.budget,
  });
  gpu.release(p.value);
  gpu.release(p.grad);
  gpu.release(p.mask);
  p.mask = undefined;
  p.csr = csr;
  p.value = csr.values;
  p.grad = gpu.zeros([storedLength(csr.nnz)]);
}

/**
 * Converts a sparse parameter back to masked-dense storage (value with zeros at inactive
 * positions, its mask, a zeroed dense gradient); the sparse arrays are released.
 *
 * @example
 * ```ts ignore
 * densifyParam(gpu, p); // e.g. before writing a dense checkpoint
 * ```
 */
export function densifyParam(gpu: Gpu, p: Param): void {
  const csr = p.csr;
  if (!csr) throw new ShapeError(`densifyParam ${p.name}: not sparse`);
  const value = gpu.tensor(p.shape, "f32");
  const mask = gpu.tensor(p.shape, "f32");
  sparseToDense(gpu, { w: csr, out: value });
  sparseToMask(gpu, { w: csr, out: mask });
  releaseSparse(gpu, csr);
  gpu.release(p.grad);
  p.csr = undefined;
  p.value = value;
  p.mask = mask;
  p.grad = gpu.zeros(p.shape);
}
