/**
 * Moving a parameter between masked-dense storage (`value` + 0/1 `mask`, dense gradient) and
 * true sparse storage (`csr`, values/gradient/optimizer state at the active entries only).
 *
 * Both conversions run on the GPU and are meant for setup, checkpoints and evaluation, not for
 * training steps; they allocate the new arrays and release the old ones.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import { ShapeError, type Tensor } from "../kernels/runtime/tensor.ts";
import { releaseSparse, storedLength } from "../kernels/sparse/sparse_matrix.ts";
import {
  sparseFromMask,
  sparseGather,
  sparseScatter,
  sparseToDense,
  sparseToMask,
} from "../kernels/sparse/sparse_convert.ts";
import type { Param } from "./params.ts";

/**
 * Converts a masked parameter to true sparse storage: `csr` built from `value` restricted to
 * `mask` (which must hold exactly `nnz` ones), a zeroed `[nnz]` gradient; the dense value,
 * gradient and mask are released. `budget` defaults to `nnz`. Each dense per-weight array of
 * `states` (optimizer state, f32 or u32, in the parameter's shape) is gathered at the active
 * entries into a new `[storedLength(nnz)]` array, returned in order; the dense ones are released.
 *
 * @example
 * ```ts ignore
 * const nnz = await countNonzero(gpu, p.mask!);
 * const [m, v] = sparsifyParam(gpu, p, { nnz }, [adamM, adamV]);
 * ```
 */
export function sparsifyParam(
  gpu: Gpu,
  p: Param,
  opts: { nnz: number; budget?: number },
  states: readonly Tensor[] = [],
): Tensor[] {
  if (p.csr) throw new ShapeError(`sparsifyParam ${p.name}: already sparse`);
  if (!p.mask) throw new ShapeError(`sparsifyParam ${p.name}: needs a mask`);
  if (p.shape.length !== 2) {
    throw new ShapeError(`sparsifyParam ${p.name}: only 2-D weights can be sparse`);
  }
  const csr = sparseFromMask(gpu, {
    dense: p.value as Tensor<"f32">,
    mask: p.mask as Tensor<"f32">,
    nnz: opts.nnz,
    blocks: p.blocks,
    budget: opts.budget,
  });
  const len = storedLength(csr.nnz);
  const out = states.map((s) => {
    const dense = s.reshape(p.shape) as Tensor<"f32">;
    const t = gpu.zeros([len], s.dtype === "u32" ? "u32" : "f32") as Tensor<"f32">;
    sparseGather(gpu, { w: csr, src: dense, dst: t });
    gpu.release(s);
    return t as Tensor;
  });
  gpu.release(p.value);
  gpu.release(p.grad);
  gpu.release(p.mask);
  p.mask = undefined;
  p.csr = csr;
  p.value = csr.values;
  p.grad = gpu.zeros([len]);
  return out;
}

/**
 * Converts a sparse parameter back to masked-dense storage (value with zeros at inactive
 * positions, its mask, a zeroed dense gradient); the sparse arrays are released. Each per-entry
 * array of `states` is scattered into a new dense array in the parameter's shape (0 at inactive
 * positions), returned in order; the per-entry ones are released.
 *
 * @example
 * ```ts ignore
 * const [m, v] = densifyParam(gpu, p, [adamM, adamV]); // e.g. before a topology update
 * ```
 */
export function densifyParam(gpu: Gpu, p: Param, states: readonly Tensor[] = []): Tensor[] {
  const csr = p.csr;
  if (!csr) throw new ShapeError(`densifyParam ${p.name}: not sparse`);
  const value = gpu.tensor(p.shape, "f32");
  const mask = gpu.tensor(p.shape, "f32");
  sparseToDense(gpu, { w: csr, out: value });
  sparseToMask(gpu, { w: csr, out: mask });
  const out = states.map((s) => {
    const t = gpu.tensor(p.shape, s.dtype === "u32" ? "u32" : "f32") as Tensor<"f32">;
    sparseScatter(gpu, { w: csr, src: s as Tensor<"f32">, dst: t });
    gpu.release(s);
    return t as Tensor;
  });
  releaseSparse(gpu, csr);
  gpu.release(p.grad);
  p.csr = undefined;
  p.value = value;
  p.mask = mask;
  p.grad = gpu.zeros(p.shape);
  return out;
}
