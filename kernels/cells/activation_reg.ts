/**
 * AWD-LSTM's activation regularisers (Merity et al. 2018; spec §2.3, §14.2–14.3) on a
 * recurrent output `y: [T, B, D]` (row-major, step t at rows t·B .. t·B + B − 1):
 *
 * ```text
 * AR  = α · mean(y²)                      over T·B·D elements
 * TAR = β · mean((y_t − y_{t−1})²)        over (T − 1)·B·D elements
 * ```
 *
 * Both are added to the loss; this records their gradient onto `g` (accumulate):
 * `g += 2α/(T·B·D) · y + 2β/((T−1)·B·D) · (2y_t − y_{t−1} − y_{t+1})`, with the missing
 * neighbour's term dropped at t = 0 and t = T − 1. The models call it once per tensor (AWD puts
 * AR on the dropped output and TAR on the raw one; ON-LSTM both on the raw one). The loss the
 * runs report is the cross-entropy alone, as AWD-LSTM's logs.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { expectShape, ShapeError, type Tensor } from "../runtime/tensor.ts";
import { checkOverlap } from "../runtime/alias.ts";

const WG = 64;

const GRAD: KernelSpec = {
  name: "activation_reg_grad",
  bindings: [
    { name: "y", dtype: "f32", access: "read" },
    { name: "g", dtype: "f32", access: "read_write" },
  ],
  params: [["n", "u32"], ["row", "u32"], ["ar", "f32"], ["tar", "f32"]],
  constants: { WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.n) { return; }
  let v = y[P.off_y + i];
  var d = P.ar * v;
  if (i >= P.row) { d = d + P.tar * (v - y[P.off_y + i - P.row]); }
  if (i + P.row < P.n) { d = d + P.tar * (v - y[P.off_y + i + P.row]); }
  g[P.off_g + i] = g[P.off_g + i] + d;
}`,
};

/**
 * Records `g += ∂(AR + TAR)/∂y` for `y: [T·B, D]` (`B` rows per step). `alpha`, `beta` >= 0;
 * `g` the same shape, not overlapping `y`.
 *
 * @example
 * ```ts ignore
 * activationRegGrad(gpu, { y: top, g: dTop, B, alpha: 2, beta: 0 }); // AR on the dropped output
 * ```
 */
export function activationRegGrad(
  gpu: Gpu,
  args: { y: Tensor; g: Tensor; B: number; alpha: number; beta: number },
): void {
  const { y, g, B, alpha, beta } = args;
  const what = "activationRegGrad";
  if (y.shape.length !== 2 || y.shape[0] % B !== 0) {
    throw new ShapeError(`${what} y: expected [T·B, D] with B = ${B}, got ${y}`);
  }
  expectShape(`${what} g`, g, y.shape, "f32");
  if (!(alpha >= 0 && beta >= 0)) throw new RangeError(`${what}: alpha, beta must be >= 0`);
  checkOverlap(what, { g }, { y });
  const [N, D] = y.shape;
  const T = N / B;
  const ar = (2 * alpha) / (N * D);
  const tar = T > 1 ? (2 * beta) / ((T - 1) * B * D) : 0;
  if (ar === 0 && tar === 0) return;
  gpu.run(GRAD, { y, g }, { n: N * D, row: B * D, ar, tar }, gridFor(N * D, WG));
}
