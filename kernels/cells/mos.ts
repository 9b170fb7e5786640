/**
 * Kernels of the mixture-of-softmaxes head (Yang et al. 2018, AWD-LSTM-MoS; spec §2.4, §14.3)
 * besides the products and the fused softmax-CE it reuses. With K experts, rows n of N, the
 * prior logits `u: [N, K]` (π = softmax(u)) and each expert's negative log-likelihood
 * `nll_k[n] = LSE_v(z_{k,n,v}) − z_{k,n,y_n}` (the softmax-CE loss rows of expert k's logits):
 *
 * ```text
 * a_k    = log π_k − nll_k                       log P = LSE_k(a_k)
 * loss   = −log(P + ε),  ε = 1e-8                (the released code's clamp: loss ≤ 18.42)
 * r_k    = exp(a_k − log P)                      responsibilities, Σ_k r_k = 1
 * s      = P / (P + ε)                           the clamp's share of the gradient
 * ∂loss/∂nll_k = s·r_k        ∂loss/∂u_k = s·(π_k − r_k)
 * ```
 *
 * {@linkcode mosMixture} computes the loss rows and, for training, those two gradients times
 * `scale` (1/N for the mean loss): `w[k, n] = scale·s·r_k` multiplies expert k's softmax-CE
 * gradient row n ({@linkcode scaleRows}), `dPrior[n, k] = scale·s·(π_k − r_k)`. Everything is
 * per row, in log space; one thread per row loops over the K experts (K ≤ 64).
 *
 * {@linkcode expertMajor} reorders the latent `[N, K·E]` (row n holds expert k's E values at
 * columns kE..kE + E) into `[K, N, E]` so that each expert is one contiguous `[N, E]` matrix
 * for the decoder product, and back; {@linkcode tanhGrad} is the latent's `tanh` backward.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { expectShape, expectSize, ShapeError, type Tensor } from "../runtime/tensor.ts";
import { checkOverlap } from "../runtime/alias.ts";

const WG = 64;

/** Most experts {@linkcode mosMixture} takes (its per-thread loop). */
export const MOS_MAX_EXPERTS = 64;

/** The clamp of the released code's `−log(P + 1e-8)`. */
export const MOS_EPSILON = 1e-8;

const mixtureSpec = (grad: boolean): KernelSpec => ({
  name: grad ? "mos_mixture_grad" : "mos_mixture",
  bindings: [
    { name: "u", dtype: "f32", access: "read" },
    { name: "nll", dtype: "f32", access: "read" },
    { name: "loss", dtype: "f32", access: "read_write" },
    ...(grad
      ? [
        { name: "w", dtype: "f32" as const, access: "read_write" as const },
        { name: "dprior", dtype: "f32" as const, access: "read_write" as const },
      ]
      : []),
  ],
  params: [["n", "u32"], ["k", "u32"], ["scale", "f32"], ["log_eps", "f32"]],
  constants: { WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let n = linear_index(wg, nwg, lid, WG);
  if (n >= P.n) { return; }
  let K = P.k;
  let ub = P.off_u + n * K;
  // log-softmax of the prior logits
  var um = u[ub];
  for (var k = 1u; k < K; k++) { um = max(um, u[ub + k]); }
  var us = 0.0f;
  for (var k = 0u; k < K; k++) { us = us + exp(u[ub + k] - um); }
  let ulse = um + log(us);
  // log P = LSE_k(log π_k − nll_k)
  var am = -3.0e38f;
  for (var k = 0u; k < K; k++) { am = max(am, u[ub + k] - ulse - nll[P.off_nll + k * P.n + n]); }
  var asum = 0.0f;
  for (var k = 0u; k < K; k++) {
    asum = asum + exp(u[ub + k] - ulse - nll[P.off_nll + k * P.n + n] - am);
  }
  let logp = am + log(asum);
  // −log(P + ε) = −logaddexp(log P, log ε), without forming P
  let hi = max(logp, P.log_eps);
  let lo = min(logp, P.log_eps);
  loss[P.off_loss + n] = -(hi + log(1.0f + exp(lo - hi)));
${
    grad
      ? `  // s = P / (P + ε) = sigmoid(log P − log ε)
  let d = logp - P.log_eps;
  let e = exp(-abs(d));
  let s = select(e / (1.0f + e), 1.0f / (1.0f + e), d >= 0.0f) * P.scale;
  for (var k = 0u; k < K; k++) {
    let pk = exp(u[ub + k] - ulse);
    let a = u[ub + k] - ulse - nll[P.off_nll + k * P.n + n];
    let rk = exp(a - logp);
    w[P.off_w + k * P.n + n] = s * rk;
    dprior[P.off_dprior + n * K + k] = s * (pk - rk);
  }`
      : ""
  }
}`,
});

const MIXTURE = mixtureSpec(false);
const MIXTURE_GRAD = mixtureSpec(true);

/**
 * The mixture's loss rows `loss: [N]` from the prior logits `u: [N, K]` and the experts'
 * negative log-likelihoods `nll: [K, N]`; with `w: [K, N]` and `dPrior: [N, K]` also the
 * gradients (times `scale`) described in the module doc. Outputs may overlap no input.
 *
 * @example
 * ```ts ignore
 * mosMixture(gpu, { u: priorLogits, nll, loss, w, dPrior, scale: 1 / N });
 * ```
 */
export function mosMixture(
  gpu: Gpu,
  args: { u: Tensor; nll: Tensor; loss: Tensor; w?: Tensor; dPrior?: Tensor; scale?: number },
): void {
  const { u, nll, loss, w, dPrior, scale = 1 } = args;
  const what = "mosMixture";
  if (u.shape.length !== 2) throw new ShapeError(`${what} u: expected [N, K], got ${u}`);
  const [N, K] = u.shape;
  if (K < 1 || K > MOS_MAX_EXPERTS) {
    throw new ShapeError(`${what}: K = ${K} experts, expected 1..${MOS_MAX_EXPERTS}`);
  }
  expectShape(`${what} u`, u, [N, K], "f32");
  expectShape(`${what} nll`, nll, [K, N], "f32");
  expectShape(`${what} loss`, loss, [N], "f32");
  if (!w !== !dPrior) throw new ShapeError(`${what}: pass both w and dPrior, or neither`);
  if (w) expectShape(`${what} w`, w, [K, N], "f32");
  if (dPrior) expectShape(`${what} dPrior`, dPrior, [N, K], "f32");
  if (!Number.isFinite(scale)) throw new RangeError(`${what}: scale must be finite`);
  const outs: Record<string, Tensor> = { loss };
  if (w && dPrior) Object.assign(outs, { w, dprior: dPrior });
  checkOverlap(what, outs, { u, nll });
  checkOverlap(what, { loss }, w && dPrior ? { w, dPrior } : {});
  const tensors: Record<string, Tensor> = { u, nll, ...outs };
  const spec = w ? MIXTURE_GRAD : MIXTURE;
  gpu.run(spec, tensors, { n: N, k: K, scale, log_eps: Math.log(MOS_EPSILON) }, gridFor(N, WG));
}

const PERMUTE: KernelSpec = {
  name: "mos_expert_permute",
  bindings: [
    { name: "x", dtype: "f32", access: "read" },
    { name: "y", dtype: "f32", access: "read_write" },
  ],
  // y[b, a, e] = x[a, b, e] for x: [A, Bd, E]
  params: [["total", "u32"], ["a", "u32"], ["b", "u32"], ["e", "u32"]],
  constants: { WG: 256 },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.total) { return; }
  let e = i % P.e;
  let ab = i / P.e;
  let b = ab % P.b;
  let a = ab / P.b;
  y[P.off_y + (b * P.a + a) * P.e + e] = x[P.off_x + i];
}`,
};

/**
 * Reorders `x` viewed as `[A, Bd, E]` into `y: [Bd, A, E]`: with `(A, Bd) = (N, K)` the latent
 * `[N, K·E]` becomes expert-major `[K, N, E]`, with `(K, N)` it goes back. `x`, `y` must not
 * overlap.
 *
 * @example
 * ```ts ignore
 * expertMajor(gpu, { x: latent, y: experts, a: N, b: K, e: E });  // [N, K·E] → [K, N, E]
 * expertMajor(gpu, { x: dExperts, y: dLatent, a: K, b: N, e: E }); // and back
 * ```
 */
export function expertMajor(
  gpu: Gpu,
  args: { x: Tensor; y: Tensor; a: number; b: number; e: number },
): void {
  const { x, y, a, b, e } = args;
  const total = a * b * e;
  expectSize("expertMajor x", x, total, "f32");
  expectSize("expertMajor y", y, total, "f32");
  checkOverlap("expertMajor", { y }, { x });
  gpu.run(PERMUTE, { x, y }, { total, a, b, e }, gridFor(total, 256));
}

const SCALE_ROWS: KernelSpec = {
  name: "mos_scale_rows",
  bindings: [
    { name: "s", dtype: "f32", access: "read" },
    { name: "x", dtype: "f32", access: "read_write" },
  ],
  params: [["total", "u32"], ["cols", "u32"]],
  constants: { WG: 256 },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.total) { return; }
  x[P.off_x + i] = x[P.off_x + i] * s[P.off_s + i / P.cols];
}`,
};

/**
 * `x[n, :] *= s[n]` in place for `x: [N, C]`, `s: [N]` (not overlapping).
 *
 * @example
 * ```ts ignore
 * scaleRows(gpu, { x: dLogits, s: w.view(k * N, [N]) });
 * ```
 */
export function scaleRows(gpu: Gpu, args: { x: Tensor; s: Tensor }): void {
  const { x, s } = args;
  if (x.shape.length !== 2) throw new ShapeError(`scaleRows x: expected [N, C], got ${x}`);
  const [N, C] = x.shape;
  expectShape("scaleRows x", x, [N, C], "f32");
  expectShape("scaleRows s", s, [N], "f32");
  checkOverlap("scaleRows", { x }, { s });
  gpu.run(SCALE_ROWS, { s, x }, { total: N * C, cols: C }, gridFor(N * C, 256));
}

const TANH_GRAD: KernelSpec = {
  name: "mos_tanh_grad",
  bindings: [
    { name: "y", dtype: "f32", access: "read" },
    { name: "g", dtype: "f32", access: "read_write" },
  ],
  params: [["n", "u32"]],
  constants: { WG: 256 },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.n) { return; }
  let v = y[P.off_y + i];
  g[P.off_g + i] = g[P.off_g + i] * (1.0f - v * v);
}`,
};

/**
 * `g ⊙= 1 − y²` in place: the gradient through `y = tanh(x)` from `y` (same sizes, `g` not
 * overlapping `y`).
 *
 * @example
 * ```ts ignore
 * tanhGrad(gpu, { y: latent, g: dLatent });
 * ```
 */
export function tanhGrad(gpu: Gpu, args: { y: Tensor; g: Tensor }): void {
  const { y, g } = args;
  expectSize("tanhGrad g", g, y.size, "f32");
  expectSize("tanhGrad y", y, y.size, "f32");
  checkOverlap("tanhGrad", { g }, { y });
  gpu.run(TANH_GRAD, { y, g }, { n: y.size }, gridFor(y.size, 256));
}
