/**
 * CPU references for `optim.ts` (the test oracle, never production). Each function updates its
 * arrays in place, element by element in f64, storing back into f32 arrays as the GPU does. All
 * arrays are flat, of the parameter tensor's element count n.
 *
 * @module
 */

/** Options shared by the references: the scalar gradient scale and an optional 0/1 mask. */
export interface RefCommon {
  lr: number;
  wd?: number;
  /** Gradient multiplier (the clip factor), default 1. */
  gradScale?: number;
  /** 0/1 mask `[n]`; nonzero = active. */
  mask?: Float32Array;
}

function grad(w: Float32Array, g: Float32Array, o: RefCommon, i: number): number {
  return (o.gradScale ?? 1) * g[i] + (o.wd ?? 0) * w[i];
}

function active(o: { mask?: Float32Array }, i: number): boolean {
  return !o.mask || o.mask[i] !== 0;
}

/**
 * SGD: `w ← w − lr·(s·g + wd·w)`, 0 where inactive. `w, g: [n]`.
 *
 * @example
 * ```ts
 * import { sgdStepRef } from "./optim_ref.ts";
 * const w = new Float32Array([1, 2]);
 * sgdStepRef(w, new Float32Array([1, 1]), { lr: 0.5 }); // w = [0.5, 1.5]
 * ```
 */
export function sgdStepRef(w: Float32Array, g: Float32Array, o: RefCommon): void {
  for (let i = 0; i < w.length; i++) {
    const gi = grad(w, g, o, i);
    w[i] = active(o, i) ? w[i] - o.lr * gi : 0;
  }
}

/** Momentum options of {@linkcode momentumStepRef}. */
export interface MomentumRefOptions extends RefCommon {
  momentum: number;
  dampening?: number;
  nesterov?: boolean;
  firstStep?: boolean;
}

/**
 * PyTorch SGD with momentum; `w, g, buf: [n]`; `w` and `buf` are 0 where inactive.
 *
 * @example
 * ```ts
 * import { momentumStepRef } from "./optim_ref.ts";
 * const w = new Float32Array([1]), buf = new Float32Array([0]);
 * momentumStepRef(w, new Float32Array([1]), buf, { lr: 0.1, momentum: 0.9 }); // buf = [1]
 * ```
 */
export function momentumStepRef(
  w: Float32Array,
  g: Float32Array,
  buf: Float32Array,
  o: MomentumRefOptions,
): void {
  for (let i = 0; i < w.length; i++) {
    const gi = grad(w, g, o, i);
    const b = o.firstStep ? gi : o.momentum * buf[i] + (1 - (o.dampening ?? 0)) * gi;
    const d = o.nesterov ? gi + o.momentum * b : b;
    const on = active(o, i);
    w[i] = on ? w[i] - o.lr * d : 0;
    buf[i] = on ? b : 0;
  }
}

/** Adam options of {@linkcode adamStepRef}. */
export interface AdamRefOptions extends RefCommon {
  beta1: number;
  beta2: number;
  eps: number;
  /** 1-based step number (bias corrections when `age` is absent). */
  step: number;
  /** Per-weight moment step counts `[n]` (u32), updated in place: see `adamStep`. */
  age?: Uint32Array;
}

/**
 * PyTorch Adam with L2 weight decay; `w, g, m, v: [n]`; all 0 where inactive.
 *
 * @example
 * ```ts
 * import { adamStepRef } from "./optim_ref.ts";
 * const w = new Float32Array([1]), m = new Float32Array(1), v = new Float32Array(1);
 * adamStepRef(w, new Float32Array([2]), m, v, {
 *   lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1,
 * }); // w ≈ [0.9]: the first Adam step moves each weight by about lr
 * ```
 */
export function adamStepRef(
  w: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  o: AdamRefOptions,
): void {
  for (let i = 0; i < w.length; i++) {
    let t = o.step;
    if (o.age) {
      t = active(o, i) ? o.age[i] + 1 : 0;
      o.age[i] = t;
    }
    const bc1 = 1 - o.beta1 ** t;
    const bc2 = 1 - o.beta2 ** t;
    const gi = grad(w, g, o, i);
    const mi = o.beta1 * m[i] + (1 - o.beta1) * gi;
    const vi = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
    const denom = Math.sqrt(vi) / Math.sqrt(bc2) + o.eps;
    const on = active(o, i);
    w[i] = on ? w[i] - (o.lr / bc1) * mi / denom : 0;
    m[i] = on ? mi : 0;
    v[i] = on ? vi : 0;
  }
}

/**
 * SNT-ASGD averaging (spec §5.3; dense §5.2 without a mask); `w, ax: [n]`, `count: [n]` u32.
 *
 * @example
 * ```ts
 * import { asgdAverageRef } from "./optim_ref.ts";
 * const ax = new Float32Array(1), s = new Uint32Array(1);
 * for (const x of [5, 1, 3]) asgdAverageRef(new Float32Array([x]), ax, s); // ax = [2]
 * ```
 */
export function asgdAverageRef(
  w: Float32Array,
  ax: Float32Array,
  count: Uint32Array,
  mask?: Float32Array,
): void {
  for (let i = 0; i < w.length; i++) {
    const on = active({ mask }, i);
    const s = on ? count[i] + 1 : 0;
    count[i] = s;
    const a = s <= 2 ? w[i] : ax[i] + (w[i] - ax[i]) / (s - 1);
    ax[i] = on ? a : 0;
  }
}
