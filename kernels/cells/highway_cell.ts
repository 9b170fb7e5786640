/**
 * Fused highway micro-layer of a Recurrent Highway Network with a coupled carry gate (Zilly et
 * al. 2017; Selfish-RNN's `HighwayBlock` with `couple=True`, spec §2.2 and §14.1). The `2H`
 * pre-activation columns are blocks `[H; T]`:
 *
 * ```text
 * h = tanh(a_H),  t = σ(a_T),  s' = h ⊙ t + s ⊙ (1 − t)
 * ```
 *
 * The products producing `a` (`W·x + b_W` for the first micro-layer, `R_l·(s ⊙ m) + b_R` for
 * every one) are the caller's; this fuses everything after them, one thread per `(b, j)`
 * element reading its two gates. The forward also writes `s' ⊙ m` (the hidden-state dropout
 * mask `m`, or a plain copy) where the next micro-layer's recurrent product reads it, so the
 * inputs of each depth's products stay contiguous over time for its weight gradient.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { expectShape, type Tensor } from "../runtime/tensor.ts";
import { batchHidden, CELL_WG, f32Binding } from "./cell_common.ts";
import { checkOverlap } from "../runtime/alias.ts";
import { ACTIVATIONS_WGSL } from "../dense/elementwise.ts";

const WG = CELL_WG;
const f32 = f32Binding;

function forwardSpec(masked: boolean): KernelSpec {
  return {
    name: masked ? "highway_fwd_masked" : "highway_fwd",
    bindings: [
      f32("pre", "read"),
      f32("sPrev", "read"),
      ...(masked ? [f32("mask", "read")] : []),
      f32("act", "read_write"),
      f32("s", "read_write"),
      f32("sNext", "read_write"),
    ],
    params: [["n", "u32"], ["H", "u32"]],
    constants: { WG },
    body: `${LINEAR_INDEX_WGSL}
${ACTIVATIONS_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = linear_index(wg, nwg, lid, WG);
  if (e >= P.n) { return; }
  let b = e / P.H;
  let j = e - b * P.H;
  let row = b * 2u * P.H + j;
  // inputs read before outputs are written: act may be pre (in place)
  let hg = tanh_s(pre[P.off_pre + row]);
  let tg = sigmoid_s(pre[P.off_pre + row + P.H]);
  let sp = sPrev[P.off_sPrev + e];
  let sn = hg * tg + sp * (1.0f - tg);
  act[P.off_act + row] = hg;
  act[P.off_act + row + P.H] = tg;
  s[P.off_s + e] = sn;
  sNext[P.off_sNext + e] = ${masked ? "sn * mask[P.off_mask + e]" : "sn"};
}`,
  };
}

const BACKWARD: KernelSpec = {
  name: "highway_bwd",
  bindings: [
    f32("act", "read"),
    f32("sPrev", "read"),
    f32("ds", "read"),
    f32("dpre", "read_write"),
    f32("dsPrev", "read_write"),
  ],
  params: [["n", "u32"], ["H", "u32"]],
  constants: { WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = linear_index(wg, nwg, lid, WG);
  if (e >= P.n) { return; }
  let b = e / P.H;
  let j = e - b * P.H;
  let row = b * 2u * P.H + j;
  let hg = act[P.off_act + row];
  let tg = act[P.off_act + row + P.H];
  let sp = sPrev[P.off_sPrev + e];
  // read before dsPrev is written: dsPrev may be ds (in place)
  let dsv = ds[P.off_ds + e];
  dpre[P.off_dpre + row] = dsv * tg * (1.0f - hg * hg);
  dpre[P.off_dpre + row + P.H] = dsv * (hg - sp) * tg * (1.0f - tg);
  dsPrev[P.off_dsPrev + e] = dsv * (1.0f - tg);
}`,
};

const MASKED_ADD: KernelSpec = {
  name: "highway_masked_add",
  bindings: [f32("mask", "read"), f32("x", "read"), f32("acc", "read_write")],
  params: [["n", "u32"]],
  constants: { WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = linear_index(wg, nwg, lid, WG);
  if (e >= P.n) { return; }
  acc[P.off_acc + e] = acc[P.off_acc + e] + mask[P.off_mask + e] * x[P.off_x + e];
}`,
};

const FWD = [forwardSpec(false), forwardSpec(true)];

/**
 * Highway micro-layer forward: from `pre: [B, 2H]` (blocks H, T) and `sPrev: [B, H]`, writes
 * `act: [B, 2H]` (`h`, `t`, kept for {@linkcode highwayCellBackward}), `s: [B, H]` (the new
 * state) and `sNext: [B, H] = s ⊙ mask` (or `s` without a mask), the next recurrent product's
 * input. `act` may be `pre` (in place); other overlaps, wrong shapes or dtypes throw
 * ShapeError before anything is recorded.
 *
 * @example
 * ```ts ignore
 * highwayCellForward(gpu, { pre: a, sPrev, mask, act: a, s: sNew, sNext: rInput });
 * ```
 */
export function highwayCellForward(
  gpu: Gpu,
  args: { pre: Tensor; sPrev: Tensor; mask?: Tensor; act: Tensor; s: Tensor; sNext: Tensor },
): void {
  const { pre, sPrev, mask, act, s, sNext } = args;
  const what = "highwayCellForward";
  const [B, H] = batchHidden(`${what} sPrev`, sPrev);
  expectShape(`${what} sPrev`, sPrev, [B, H], "f32");
  expectShape(`${what} pre`, pre, [B, 2 * H], "f32");
  if (mask) expectShape(`${what} mask`, mask, [B, H], "f32");
  expectShape(`${what} act`, act, [B, 2 * H], "f32");
  expectShape(`${what} s`, s, [B, H], "f32");
  expectShape(`${what} sNext`, sNext, [B, H], "f32");
  checkOverlap(what, { act, s, sNext }, { pre, sPrev, mask }, [["act", "pre"]]);
  const tensors: Record<string, Tensor> = { pre, sPrev, act, s, sNext };
  if (mask) tensors.mask = mask;
  gpu.run(FWD[mask ? 1 : 0], tensors, { n: B * H, H }, gridFor(B * H, WG));
}

/**
 * Highway micro-layer backward. With `(h, t) = act` and `ds` the gradient w.r.t. `s'`:
 *
 * ```text
 * d a_H  = ds ⊙ t ⊙ (1 − h²)
 * d a_T  = ds ⊙ (h − sPrev) ⊙ t(1 − t)
 * dsPrev = ds ⊙ (1 − t)          (the carry path; the recurrent product's path is added by
 *                                 the caller, through R and the mask: highwayMaskedAdd)
 * ```
 *
 * `dsPrev` may be `ds` (in place); `dpre: [B, 2H]` overlaps nothing else.
 *
 * @example
 * ```ts ignore
 * highwayCellBackward(gpu, { act, sPrev, ds, dpre, dsPrev: ds });
 * ```
 */
export function highwayCellBackward(
  gpu: Gpu,
  args: { act: Tensor; sPrev: Tensor; ds: Tensor; dpre: Tensor; dsPrev: Tensor },
): void {
  const { act, sPrev, ds, dpre, dsPrev } = args;
  const what = "highwayCellBackward";
  const [B, H] = batchHidden(`${what} sPrev`, sPrev);
  expectShape(`${what} sPrev`, sPrev, [B, H], "f32");
  expectShape(`${what} act`, act, [B, 2 * H], "f32");
  expectShape(`${what} ds`, ds, [B, H], "f32");
  expectShape(`${what} dpre`, dpre, [B, 2 * H], "f32");
  expectShape(`${what} dsPrev`, dsPrev, [B, H], "f32");
  checkOverlap(what, { dpre, dsPrev }, { act, sPrev, ds }, [["dsPrev", "ds"]]);
  gpu.run(BACKWARD, { act, sPrev, ds, dpre, dsPrev }, { n: B * H, H }, gridFor(B * H, WG));
}

/**
 * `acc += mask ⊙ x` (the gradient of a masked recurrent input: `x = dsm`, the product's data
 * gradient w.r.t. `s ⊙ m`). All f32 of one size; `acc` overlaps neither input.
 *
 * @example
 * ```ts ignore
 * highwayMaskedAdd(gpu, { mask, x: dsm, acc: ds });
 * ```
 */
export function highwayMaskedAdd(
  gpu: Gpu,
  args: { mask: Tensor; x: Tensor; acc: Tensor },
): void {
  const { mask, x, acc } = args;
  const n = acc.size;
  expectShape("highwayMaskedAdd mask", mask, acc.shape, "f32");
  expectShape("highwayMaskedAdd x", x, acc.shape, "f32");
  expectShape("highwayMaskedAdd acc", acc, acc.shape, "f32");
  checkOverlap("highwayMaskedAdd", { acc }, { mask, x });
  gpu.run(MASKED_ADD, { mask, x, acc }, { n }, gridFor(n, WG));
}
