/**
 * Optimizer updates as element-wise kernels over one parameter tensor: SGD, momentum SGD
 * (PyTorch `SGD`), Adam (PyTorch `Adam`, L2 weight decay) and the averaging half of
 * (S)NT-ASGD. Each update reads its hyper-parameters as uniforms and, optionally, the gradient
 * scale (the clip factor from `clipCoefficient` in `reduce.ts`) from a `[1]` GPU tensor, so a
 * clipped training step never reads back to the CPU.
 *
 * Masks (`f32` 0/1, same size as `w`; any nonzero value counts as active): after a masked update
 * the inactive weights and all of their optimizer state are exactly +0, so sparsity is kept by
 * the optimizer itself and no separate re-masking pass is needed. (Selfish-RNN's own code leaves
 * Adam moments unmasked; here they are cleared, so a regrown weight starts from fresh moments,
 * and Adam's per-weight `age` counts the steps of those moments, so that their bias correction
 * is that of a fresh Adam: corrected with the run's step count instead, fresh moments would
 * inflate a regrown weight's first steps by up to √((1 − β2^t)/(1 − β2)), 31× for β2 = 0.999.)
 *
 * The gradient seen by every update is `g' = gradScale·g + wd·w` (PyTorch's coupled L2 weight
 * decay, applied after clipping as in `clip_grad_norm_` followed by `optimizer.step()`).
 *
 * No variants: these kernels are one thread per element without barriers, which suits both
 * llvmpipe and real GPUs.
 *
 * @module
 */

import type { BindingDecl, KernelSpec, ParamType } from "../runtime/kernel.ts";
import { checkOverlap } from "../runtime/alias.ts";
import { type Gpu, gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import { expectSize, fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";

const WG = 256;

function expectWeights(kernel: string, w: Tensor): void {
  if (w.dtype !== "f32") {
    throw new ShapeError(`${kernel} w: expected dtype f32, got ${w.dtype} ${fmtShape(w.shape)}`);
  }
}

function expectOptional(kernel: string, gradScale?: Tensor, mask?: Tensor, n = 0): void {
  if (gradScale) expectSize(`${kernel} gradScale`, gradScale, 1, "f32");
  if (mask) expectSize(`${kernel} mask`, mask, n, "f32");
}

/**
 * One thread per element. `core` sees `i` (element index), `live: bool` (mask; `active` is a
 * WGSL reserved word) and `scale: f32` (gradient scale), and writes every output through
 * `select(0.0, v, live)`, which gives an exact +0 even where `v` is NaN or ∞.
 */
function elementwiseSpec(
  name: string,
  state: readonly BindingDecl[],
  params: readonly (readonly [string, ParamType])[],
  core: string,
  opts: { scale: boolean; mask: boolean },
): KernelSpec {
  const bindings: BindingDecl[] = [...state];
  if (opts.scale) bindings.push({ name: "grad_scale", dtype: "f32", access: "read" });
  if (opts.mask) bindings.push({ name: "mask", dtype: "f32", access: "read" });
  return {
    name: `${name}${opts.scale ? "_scaled" : ""}${opts.mask ? "_masked" : ""}`,
    bindings,
    params: [["n", "u32"], ...params],
    body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, ${WG}u);
  if (i >= P.n) { return; }
  let live: bool = ${opts.mask ? "mask[P.off_mask + i] != 0.0" : "true"};
  let scale: f32 = ${opts.scale ? "grad_scale[P.off_grad_scale]" : "1.0"};
${core}
}`,
  };
}

const specCache = new Map<string, KernelSpec>();

function cachedSpec(key: string, make: () => KernelSpec): KernelSpec {
  let spec = specCache.get(key);
  if (!spec) specCache.set(key, spec = make());
  return spec;
}

function launch(
  gpu: Gpu,
  spec: KernelSpec,
  tensors: Record<string, Tensor | undefined>,
  params: Record<string, number>,
  n: number,
): void {
  const bound: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(tensors)) if (t) bound[k] = t;
  gpu.run(spec, bound, { n, ...params }, gridFor(n, WG));
}

/** WGSL of a state write: masked like the weight (default) or kept dense. */
function stateWrite(maskState = true): (v: string) => string {
  return (v) => (maskState ? `select(0.0, ${v}, live)` : v);
}

const F32_RW = (name: string): BindingDecl => ({ name, dtype: "f32", access: "read_write" });
const F32_R = (name: string): BindingDecl => ({ name, dtype: "f32", access: "read" });

// ------------------------------------------------------------------------------------------ SGD

/** Arguments of {@linkcode sgdStep}. */
export interface SgdArgs {
  /** Parameters, any shape, f32; updated in place. */
  w: Tensor;
  /** Gradient, same size as `w`, f32. */
  g: Tensor;
  lr: number;
  /** L2 weight decay; default 0. */
  wd?: number;
  /** Gradient multiplier (clip factor), `[1]` f32. */
  gradScale?: Tensor;
  /** 0/1 mask, same size as `w`, f32; inactive weights end at exactly 0. */
  mask?: Tensor;
  /**
   * With a mask: also clear the optimizer state (momentum, Adam moments) of inactive weights.
   * Default true. SNFS sets it false: it grows where the dense momentum of inactive weights is
   * largest (spec §7.5), so that momentum must keep accumulating their gradients.
   */
  maskState?: boolean;
}

/**
 * Records plain SGD: `w ← w − lr·(gradScale·g + wd·w)`, then `w ← 0` where `mask` is 0.
 *
 * @example
 * ```ts ignore
 * sgdStep(gpu, { w, g, lr: 20, wd: 1.2e-6, gradScale: clip, mask });
 * ```
 */
export function sgdStep(gpu: Gpu, args: SgdArgs): void {
  const { w, g, gradScale, mask } = args;
  const k = "sgdStep";
  expectWeights(k, w);
  expectSize(`${k} g`, g, w.size, "f32");
  expectOptional(k, gradScale, mask, w.size);
  // Disjoint views of one buffer are fine; an overlap would read what the update wrote.
  checkOverlap(k, { w }, { g, gradScale, mask });
  const opts = { scale: !!gradScale, mask: !!mask };
  const spec = cachedSpec(`sgd:${opts.scale}:${opts.mask}`, () =>
    elementwiseSpec(
      "sgd_step",
      [F32_RW("w"), F32_R("g")],
      [["lr", "f32"], ["wd", "f32"]],
      `  let wi = w[P.off_w + i];
  let gi = scale * g[P.off_g + i] + P.wd * wi;
  w[P.off_w + i] = select(0.0, wi - P.lr * gi, live);`,
      opts,
    ));
  launch(
    gpu,
    spec,
    { w, g, grad_scale: gradScale, mask },
    { lr: args.lr, wd: args.wd ?? 0 },
    w.size,
  );
}

// --------------------------------------------------------------------------------- momentum SGD

/** Arguments of {@linkcode momentumStep}. */
export interface MomentumArgs extends SgdArgs {
  /** Momentum buffer, same size as `w`, f32; updated in place. */
  buf: Tensor;
  momentum: number;
  /** Default 0. */
  dampening?: number;
  /** Default false. */
  nesterov?: boolean;
  /**
   * PyTorch's first step sets `buf = g'` (no dampening). Default false; with `dampening = 0` a
   * zero-initialised `buf` gives the same first step, so the flag only matters with dampening.
   */
  firstStep?: boolean;
}

/**
 * Records PyTorch `SGD` with momentum: `buf ← momentum·buf + (1 − dampening)·g'` (`buf ← g'` on
 * `firstStep`), `w ← w − lr·(nesterov ? g' + momentum·buf : buf)`, where
 * `g' = gradScale·g + wd·w`; then `w` and `buf` are 0 where `mask` is 0 (Selfish-RNN's
 * `apply_mask` also zeros the momentum buffer).
 *
 * @example
 * ```ts ignore
 * const buf = gpu.zeros(w.shape);
 * momentumStep(gpu, { w, g, buf, lr: 0.1, momentum: 0.9, mask });
 * ```
 */
export function momentumStep(gpu: Gpu, args: MomentumArgs): void {
  const { w, g, buf, gradScale, mask } = args;
  const k = "momentumStep";
  expectWeights(k, w);
  expectSize(`${k} g`, g, w.size, "f32");
  expectSize(`${k} buf`, buf, w.size, "f32");
  expectOptional(k, gradScale, mask, w.size);
  // Disjoint views of one buffer are fine; an overlap would read what the update wrote.
  checkOverlap(k, { w, buf }, { g, gradScale, mask });
  const opts = { scale: !!gradScale, mask: !!mask };
  const state = stateWrite(args.maskState);
  const spec = cachedSpec(`momentum:${opts.scale}:${opts.mask}:${state("")}`, () =>
    elementwiseSpec(
      "momentum_step",
      [F32_RW("w"), F32_R("g"), F32_RW("buf")],
      [
        ["lr", "f32"],
        ["wd", "f32"],
        ["momentum", "f32"],
        ["one_minus_dampening", "f32"],
        ["nesterov", "u32"],
        ["first", "u32"],
      ],
      `  let wi = w[P.off_w + i];
  let gi = scale * g[P.off_g + i] + P.wd * wi;
  var b: f32 = gi;
  if (P.first == 0u) { b = P.momentum * buf[P.off_buf + i] + P.one_minus_dampening * gi; }
  var d: f32 = b;
  if (P.nesterov != 0u) { d = gi + P.momentum * b; }
  w[P.off_w + i] = select(0.0, wi - P.lr * d, live);
  buf[P.off_buf + i] = ${state("b")};`,
      opts,
    ));
  launch(gpu, spec, { w, g, buf, grad_scale: gradScale, mask }, {
    lr: args.lr,
    wd: args.wd ?? 0,
    momentum: args.momentum,
    one_minus_dampening: 1 - (args.dampening ?? 0),
    nesterov: args.nesterov ? 1 : 0,
    first: args.firstStep ? 1 : 0,
  }, w.size);
}

// ----------------------------------------------------------------------------------------- Adam

/** Arguments of {@linkcode adamStep}. */
export interface AdamArgs extends SgdArgs {
  /** First moment, same size as `w`, f32; updated in place. */
  m: Tensor;
  /** Second moment, same size as `w`, f32; updated in place. */
  v: Tensor;
  beta1: number;
  beta2: number;
  eps: number;
  /** 1-based step number t, for the bias corrections 1 − β^t (when `age` is not given). */
  step: number;
  /**
   * Per-weight step counts of the moments, same size as `w`, u32; updated in place. Given, each
   * weight's bias corrections use its own count a (`a ← a + 1` where the state is written,
   * `a ← 0` where it is cleared), so a weight whose moments restarted (a regrown one) takes
   * the steps of a fresh Adam. Omitted, every weight uses `step`.
   */
  age?: Tensor;
}

/**
 * Records PyTorch `Adam` (L2 weight decay added to the gradient, not AdamW):
 * `m ← β1·m + (1−β1)·g'`, `v ← β2·v + (1−β2)·g'²`,
 * `w ← w − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + eps)`, with `g' = gradScale·g + wd·w`; then
 * `w`, `m`, `v` are 0 where `mask` is 0. The bias corrections are computed here in f64 and passed
 * as uniforms, as PyTorch computes them in Python floats.
 *
 * @example
 * ```ts ignore
 * adamStep(gpu, { w, g, m, v, lr: 1e-3, beta1: 0, beta2: 0.999, eps: 1e-9, wd: 1.2e-6, step: t });
 * ```
 */
export function adamStep(gpu: Gpu, args: AdamArgs): void {
  const { w, g, m, v, gradScale, mask, beta1, beta2, step, age } = args;
  const k = "adamStep";
  expectWeights(k, w);
  expectSize(`${k} g`, g, w.size, "f32");
  expectSize(`${k} m`, m, w.size, "f32");
  expectSize(`${k} v`, v, w.size, "f32");
  expectOptional(k, gradScale, mask, w.size);
  if (age) expectSize(`${k} age`, age, w.size, "u32");
  if (!Number.isInteger(step) || step < 1) {
    throw new RangeError(`${k}: step must be an integer >= 1, got ${step}`);
  }
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) {
    throw new RangeError(`${k}: betas must lie in [0, 1), got (${beta1}, ${beta2})`);
  }
  // Disjoint views of one buffer are fine; an overlap would read what the update wrote.
  checkOverlap(k, { w, m, v, age }, { g, gradScale, mask });
  const opts = { scale: !!gradScale, mask: !!mask };
  const masked = args.maskState ?? true;
  const state = stateWrite(masked);
  const key = `adam:${opts.scale}:${opts.mask}:${masked}:${!!age}`;
  // With ages, the corrections 1 − β^a are per weight: -expm1(a·ln β) by its Taylor series
  // where a·ln β is small (1 − exp would cancel to ~1e-4 relative at a = 1, β2 = 0.999).
  const corrections = age
    ? `  let a = ${
      masked ? "select(0u, age[P.off_age + i] + 1u, live)" : "age[P.off_age + i] + 1u"
    };
  age[P.off_age + i] = a;
  let bc1 = one_minus_pow(P.ln_beta1, a);
  let step_size = P.lr / bc1;
  let bc2_sqrt = sqrt(one_minus_pow(P.ln_beta2, a));`
    : `  let step_size = P.step_size;
  let bc2_sqrt = P.bc2_sqrt;`;
  const spec = cachedSpec(key, () => {
    const base = elementwiseSpec(
      age ? "adam_step_aged" : "adam_step",
      [
        F32_RW("w"),
        F32_R("g"),
        F32_RW("m"),
        F32_RW("v"),
        ...(age ? [{ name: "age", dtype: "u32", access: "read_write" } as BindingDecl] : []),
      ],
      [
        ["step_size", "f32"],
        ["bc2_sqrt", "f32"],
        ["lr", "f32"],
        ["ln_beta1", "f32"],
        ["ln_beta2", "f32"],
        ["beta1", "f32"],
        ["beta2", "f32"],
        ["one_minus_beta1", "f32"],
        ["one_minus_beta2", "f32"],
        ["eps", "f32"],
        ["wd", "f32"],
      ],
      `  let wi = w[P.off_w + i];
  let gi = scale * g[P.off_g + i] + P.wd * wi;
  let mi = P.beta1 * m[P.off_m + i] + P.one_minus_beta1 * gi;
  let vi = P.beta2 * v[P.off_v + i] + P.one_minus_beta2 * gi * gi;
${corrections}
  let denom = sqrt(vi) / bc2_sqrt + P.eps;
  w[P.off_w + i] = select(0.0, wi - step_size * mi / denom, live);
  m[P.off_m + i] = ${state("mi")};
  v[P.off_v + i] = ${state("vi")};`,
      opts,
    );
    return age ? { ...base, body: `${ONE_MINUS_POW_WGSL}\n${base.body}` } : base;
  });
  launch(gpu, spec, { w, g, m, v, age, grad_scale: gradScale, mask }, {
    step_size: args.lr / (1 - beta1 ** step),
    bc2_sqrt: Math.sqrt(1 - beta2 ** step),
    lr: args.lr,
    ln_beta1: lnBeta(beta1),
    ln_beta2: lnBeta(beta2),
    beta1,
    beta2,
    one_minus_beta1: 1 - beta1,
    one_minus_beta2: 1 - beta2,
    eps: args.eps,
    wd: args.wd ?? 0,
  }, w.size);
}

/** ln β for the per-weight corrections; β = 0 becomes −1000, whose powers underflow to 0. */
function lnBeta(beta: number): number {
  return beta > 0 ? Math.max(-1000, Math.log(beta)) : -1000;
}

/**
 * `1 − β^a = −expm1(a·ln β)` in f32: the Taylor series to x⁸/8! where |x| < 0.5 (relative error
 * below 1e-7 there), `1 − exp(x)` beyond, where no cancellation occurs.
 */
const ONE_MINUS_POW_WGSL = `fn one_minus_pow(ln_beta: f32, a: u32) -> f32 {
  let x = ln_beta * f32(a);
  if (x > -0.5) {
    var s = 1.0 / 40320.0;
    s = s * x + 1.0 / 5040.0;
    s = s * x + 1.0 / 720.0;
    s = s * x + 1.0 / 120.0;
    s = s * x + 1.0 / 24.0;
    s = s * x + 1.0 / 6.0;
    s = s * x + 0.5;
    s = s * x + 1.0;
    return -(s * x);
  }
  return 1.0 - exp(x);
}`;

// ------------------------------------------------------------------------------- ASGD averaging

/** Arguments of {@linkcode asgdAverage}. */
export interface AsgdAverageArgs {
  /** Parameters after this step's SGD update, any shape, f32; only read. */
  w: Tensor;
  /** Running average, same size as `w`, f32; updated in place. Start from zeros. */
  ax: Tensor;
  /** Per-element step counter s, same size as `w`, u32; updated in place. Start from zeros. */
  count: Tensor;
  /** 0/1 mask, same size as `w`, f32; omitted means every element is active. */
  mask?: Tensor;
}

/**
 * Records the averaging half of (S)NT-ASGD, run right after each {@linkcode sgdStep} (spec
 * `selfish-rnn-spec.md` §5.3 SNT-ASGD, reducing to §5.2 dense PyTorch ASGD with λ = 0, t0 = 0
 * when there is no mask):
 * `s ← 0` where `mask` = 0, `s ← s + 1` where active; `μ = 1` if `s ∈ {0, 1, 2}`, else
 * `μ = 1/(s − 1)`; `ax ← w` where `μ = 1`, else `ax ← ax + μ·(w − ax)`; finally `ax ← ax ⊙ mask`.
 *
 * So each weight is averaged only over its current life: after step k of a weight active since
 * step T, `ax` is the mean of its iterates T+1..k (the first iterate is dropped, as in PyTorch's
 * ASGD); a removed weight's average and counter are 0 at the next step.
 *
 * @example
 * ```ts ignore
 * const ax = gpu.zeros(w.shape), s = gpu.zeros(w.shape, "u32");
 * sgdStep(gpu, { w, g, lr, wd, mask });
 * asgdAverage(gpu, { w, ax, count: s, mask });
 * ```
 */
export function asgdAverage(gpu: Gpu, args: AsgdAverageArgs): void {
  const { w, ax, count, mask } = args;
  const k = "asgdAverage";
  expectWeights(k, w);
  expectSize(`${k} ax`, ax, w.size, "f32");
  expectSize(`${k} count`, count, w.size, "u32");
  expectOptional(k, undefined, mask, w.size);
  // Disjoint views of one buffer are fine; an overlap would read what the update wrote.
  checkOverlap(k, { ax, count }, { w, mask });
  const opts = { scale: false, mask: !!mask };
  const spec = cachedSpec(`asgd:${opts.mask}`, () =>
    elementwiseSpec(
      "asgd_average",
      [F32_R("w"), F32_RW("ax"), { name: "count", dtype: "u32", access: "read_write" }],
      [],
      `  let s = select(0u, count[P.off_count + i] + 1u, live);
  count[P.off_count + i] = s;
  let wi = w[P.off_w + i];
  var a: f32 = wi;
  if (s > 2u) {
    let a0 = ax[P.off_ax + i];
    a = a0 + (1.0 / f32(s - 1u)) * (wi - a0);
  }
  ax[P.off_ax + i] = select(0.0, a, live);
  _ = scale;`,
      opts,
    ));
  launch(gpu, spec, { w, ax, count, mask }, {}, w.size);
}
