/**
 * Fused LSTM cell, PyTorch conventions: the `4H` gate columns are blocks `[i, f, g, o]`
 * (`[0,H)` input, `[H,2H)` forget, `[2H,3H)` cell candidate, `[3H,4H)` output); i, f, o use the
 * sigmoid and g tanh; `c' = f⊙c + i⊙g`, `h' = o⊙tanh(c')`. The matrix products producing the
 * pre-activations (x·W_ihᵀ + h·W_hhᵀ) are done by the caller; this fuses everything after them
 * into one pass, one thread per `(b, j)` element reading its four gates. No reduction, so there
 * is a single kernel for both variants.
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

function forwardSpec(hasBias: boolean): KernelSpec {
  const z = (k: number) =>
    `gates[g0 + ${k}u * P.H]` + (hasBias ? ` + bias[P.off_bias + ${k}u * P.H + j]` : "");
  return {
    name: hasBias ? "lstm_cell_fwd_bias" : "lstm_cell_fwd",
    bindings: [
      f32("gates", "read"),
      ...(hasBias ? [f32("bias", "read")] : []),
      f32("cPrev", "read"),
      f32("act", "read_write"),
      f32("c", "read_write"),
      f32("h", "read_write"),
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
  let row = b * 4u * P.H + j;
  // every input of this element is read before any output is written: act may be gates and
  // c may be cPrev (in place)
  let g0 = P.off_gates + row;
  let ig = sigmoid_s(${z(0)});
  let fg = sigmoid_s(${z(1)});
  let gg = tanh_s(${z(2)});
  let og = sigmoid_s(${z(3)});
  let cn = fg * cPrev[P.off_cPrev + e] + ig * gg;
  let a0 = P.off_act + row;
  act[a0] = ig;
  act[a0 + P.H] = fg;
  act[a0 + 2u * P.H] = gg;
  act[a0 + 3u * P.H] = og;
  c[P.off_c + e] = cn;
  h[P.off_h + e] = og * tanh_s(cn);
}`,
  };
}

function backwardSpec(hasDcNext: boolean): KernelSpec {
  return {
    name: hasDcNext ? "lstm_cell_bwd_dcnext" : "lstm_cell_bwd",
    bindings: [
      f32("act", "read"),
      f32("cPrev", "read"),
      f32("c", "read"),
      f32("dh", "read"),
      ...(hasDcNext ? [f32("dcNext", "read")] : []),
      f32("dgates", "read_write"),
      f32("dcPrev", "read_write"),
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
  let row = b * 4u * P.H + j;
  let a0 = P.off_act + row;
  let ig = act[a0];
  let fg = act[a0 + P.H];
  let gg = act[a0 + 2u * P.H];
  let og = act[a0 + 3u * P.H];
  let dhv = dh[P.off_dh + e];
  let cp = cPrev[P.off_cPrev + e];
  let tc = tanh_s(c[P.off_c + e]);
  // read before dcPrev is written: dcPrev may be dcNext or dh (in place)
  let dc = ${hasDcNext ? "dcNext[P.off_dcNext + e]" : "0.0f"} + dhv * og * (1.0f - tc * tc);
  let d0 = P.off_dgates + row;
  dgates[d0] = dc * gg * ig * (1.0f - ig);
  dgates[d0 + P.H] = dc * cp * fg * (1.0f - fg);
  dgates[d0 + 2u * P.H] = dc * ig * (1.0f - gg * gg);
  dgates[d0 + 3u * P.H] = dhv * tc * og * (1.0f - og);
  dcPrev[P.off_dcPrev + e] = dc * fg;
}`,
  };
}

const FWD = [forwardSpec(false), forwardSpec(true)];
const BWD = [backwardSpec(false), backwardSpec(true)];

/**
 * LSTM cell forward: `z = gates + bias` (bias broadcast over rows), `i = σ(z_i)`, `f = σ(z_f)`,
 * `g = tanh(z_g)`, `o = σ(z_o)`, `c = f⊙cPrev + i⊙g`, `h = o⊙tanh(c)`.
 *
 * - `gates: [B, 4H]` pre-activations, column blocks i, f, g, o.
 * - `bias: [4H]` optional (b_ih + b_hh, already summed by the caller).
 * - `cPrev: [B, H]` → `c: [B, H]`, `h: [B, H]`, `act: [B, 4H]` (activated gates, blocks i, f, g,
 *   o; kept for {@linkcode lstmCellBackward}).
 *
 * `act` may be `gates` itself and `c` may be `cPrev` (in place); other overlaps throw
 * ShapeError, as do wrong shapes or dtypes (all f32), before anything is recorded.
 *
 * @example
 * ```ts ignore
 * // time step t of a [T, B, 4H] pre-activation buffer, states in [T + 1, B, H] buffers
 * lstmCellForward(gpu, {
 *   gates: pre.view(t * B * 4 * H, [B, 4 * H]), bias,
 *   cPrev: cs.view(t * B * H, [B, H]), c: cs.view((t + 1) * B * H, [B, H]),
 *   h: hs.view((t + 1) * B * H, [B, H]), act: acts.view(t * B * 4 * H, [B, 4 * H]),
 * });
 * ```
 */
export function lstmCellForward(
  gpu: Gpu,
  args: { gates: Tensor; bias?: Tensor; cPrev: Tensor; c: Tensor; h: Tensor; act: Tensor },
): void {
  const { gates, bias, cPrev, c, h, act } = args;
  const [B, H] = batchHidden("lstmCellForward cPrev", cPrev);
  expectShape("lstmCellForward cPrev", cPrev, [B, H], "f32");
  expectShape("lstmCellForward gates", gates, [B, 4 * H], "f32");
  if (bias) expectShape("lstmCellForward bias", bias, [4 * H], "f32");
  expectShape("lstmCellForward c", c, [B, H], "f32");
  expectShape("lstmCellForward h", h, [B, H], "f32");
  expectShape("lstmCellForward act", act, [B, 4 * H], "f32");
  checkOverlap("lstmCellForward", { act, c, h }, { gates, bias, cPrev }, [
    ["act", "gates"],
    ["c", "cPrev"],
  ]);
  const tensors: Record<string, Tensor> = { gates, cPrev, act, c, h };
  if (bias) tensors.bias = bias;
  const spec = FWD[bias ? 1 : 0];
  gpu.run(spec, tensors, { n: B * H, H }, gridFor(B * H, WG));
}

/**
 * LSTM cell backward. With `(i, f, g, o) = act`, `c = c'` the forward output and `tc = tanh(c')`:
 *
 * ```text
 * dc     = dcNext + dh ⊙ o ⊙ (1 − tc²)
 * d z_o  = dh ⊙ tc ⊙ o(1 − o)
 * d z_i  = dc ⊙ g ⊙ i(1 − i)
 * d z_g  = dc ⊙ i ⊙ (1 − g²)
 * d z_f  = dc ⊙ cPrev ⊙ f(1 − f)
 * dcPrev = dc ⊙ f
 * ```
 *
 * - `act: [B, 4H]` from {@linkcode lstmCellForward}; `cPrev, c: [B, H]` its cell input and output.
 * - `dh: [B, H]` total gradient w.r.t. h' (the caller sums the gradient from above and from step
 *   t+1); `dcNext: [B, H]` optional gradient w.r.t. c' from step t+1 (absent = 0).
 * - → `dgates: [B, 4H]` gradient w.r.t. the pre-activations (blocks i, f, g, o; also the bias
 *   gradient once summed over rows), `dcPrev: [B, H]`.
 *
 * `dgates` may overlap nothing else; `dcPrev` may be `dcNext` or `dh` (in place). Wrong shapes,
 * dtypes or overlaps throw ShapeError before anything is recorded.
 *
 * @example
 * ```ts ignore
 * lstmCellBackward(gpu, { act, cPrev, c, dh, dcNext: dc, dgates, dcPrev: dc }); // dc in place
 * ```
 */
export function lstmCellBackward(
  gpu: Gpu,
  args: {
    act: Tensor;
    cPrev: Tensor;
    c: Tensor;
    dh: Tensor;
    dcNext?: Tensor;
    dgates: Tensor;
    dcPrev: Tensor;
  },
): void {
  const { act, cPrev, c, dh, dcNext, dgates, dcPrev } = args;
  const [B, H] = batchHidden("lstmCellBackward cPrev", cPrev);
  expectShape("lstmCellBackward cPrev", cPrev, [B, H], "f32");
  expectShape("lstmCellBackward act", act, [B, 4 * H], "f32");
  expectShape("lstmCellBackward c", c, [B, H], "f32");
  expectShape("lstmCellBackward dh", dh, [B, H], "f32");
  if (dcNext) expectShape("lstmCellBackward dcNext", dcNext, [B, H], "f32");
  expectShape("lstmCellBackward dgates", dgates, [B, 4 * H], "f32");
  expectShape("lstmCellBackward dcPrev", dcPrev, [B, H], "f32");
  checkOverlap("lstmCellBackward", { dgates, dcPrev }, { act, cPrev, c, dh, dcNext }, [
    ["dcPrev", "dcNext"],
    ["dcPrev", "dh"],
  ]);
  const tensors: Record<string, Tensor> = { act, cPrev, c, dh, dgates, dcPrev };
  if (dcNext) tensors.dcNext = dcNext;
  const spec = BWD[dcNext ? 1 : 0];
  gpu.run(spec, tensors, { n: B * H, H }, gridFor(B * H, WG));
}
