/**
 * SNFS's momentum under Adam (spec §7.5): the sparse-momentum rule ranks tensors and grows
 * weights by |momentum|, and with Adam the reference code (Dettmers' `sparse_learning`) uses the
 * Adam step direction instead of the SGD momentum buffer:
 *
 * ```text
 * out[i] = m[i] / (sqrt(v[i]) + eps)        (raw moments, no bias correction; eps = 1e-8 there)
 * ```
 *
 * One thread per element, no barriers: no variant difference, one version.
 *
 * @module
 */

import { checkOverlap } from "../runtime/alias.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { type Gpu, gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import { expectSize, type Tensor } from "../runtime/tensor.ts";

const WG = 256;

const ADAM_SCORE: KernelSpec = {
  name: "adam_momentum_score",
  bindings: [
    { name: "m", dtype: "f32", access: "read" },
    { name: "v", dtype: "f32", access: "read" },
    { name: "out", dtype: "f32", access: "read_write" },
  ],
  params: [["n", "u32"], ["eps", "f32"]],
  constants: { WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.n) { return; }
  out[P.off_out + i] = m[P.off_m + i] / (sqrt(v[P.off_v + i]) + P.eps);
}`,
};

/**
 * Records `out = m / (√v + eps)` element-wise (Adam's first moment over the root of its second
 * moment: SNFS's momentum under Adam). `m`, `v`, `out`: f32 of equal size, any shapes; `out`
 * may not overlap `m` or `v`; `eps` > 0 (1e-8 in the reference code) keeps `v = 0` finite
 * (`0 / eps = 0` at never-updated positions).
 *
 * @example
 * ```ts ignore
 * adamMomentumScore(gpu, { m: state.m, v: state.v, out: score, eps: 1e-8 });
 * ```
 */
export function adamMomentumScore(
  gpu: Gpu,
  args: { m: Tensor; v: Tensor; out: Tensor; eps: number },
): void {
  const { m, v, out, eps } = args;
  const n = out.size;
  expectSize("adamMomentumScore m", m, n, "f32");
  expectSize("adamMomentumScore v", v, n, "f32");
  expectSize("adamMomentumScore out", out, n, "f32");
  if (!(eps > 0 && Number.isFinite(eps))) {
    throw new RangeError(`adamMomentumScore: eps must be finite and > 0, got ${eps}`);
  }
  checkOverlap("adamMomentumScore", { out }, { m, v });
  gpu.run(ADAM_SCORE, { m, v, out }, { n, eps }, gridFor(n, WG));
}
