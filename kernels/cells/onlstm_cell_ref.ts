/**
 * CPU reference of the fused ON-LSTM cell (`onlstm_cell.ts`; Shen et al. 2019, "Ordered
 * Neurons", after yikangshen/Ordered-Neurons' `ON_LSTM.py`). Computed in f64; the `...Ref`
 * functions round the results to f32 once, the `...Ref64` ones keep f64 for finite-difference
 * checks of the backward formulas.
 *
 * A row of `gates`/`act` has {@linkcode onLstmActWidth}`(H, n) = 4H + 2n` columns: `[0, n)`
 * master-input, `[n, 2n)` master-forget, then blocks of H columns o, ĉ, i, f (`2n + k·H + j`).
 * Hidden element j belongs to chunk `q = floor(j / C)`, `H = n·C`. The master gates are kept in
 * the cancellation-free form: `c̃_in[q] = Σ_{r>q} p_in[r]` (an exclusive suffix sum, where
 * `1 − cumsum(p_in)[q]` would lose every digit once the tail is small) and
 * `c̃_f[q] = Σ_{r≤q} p_f[r]`.
 *
 * @module
 */

import { sigmoid64 } from "../dense/elementwise_ref.ts";

/**
 * Columns of one row of the ON-LSTM `gates`, `act` and `dgates`: `4H + 2n` (the four H-wide
 * blocks o, ĉ, i, f after the two n-wide master blocks).
 *
 * @example
 * ```ts
 * import { onLstmActWidth } from "./onlstm_cell_ref.ts";
 * onLstmActWidth(1150, 115); // 4830
 * ```
 */
export function onLstmActWidth(H: number, n: number): number {
  return 4 * H + 2 * n;
}

/**
 * Forward inputs. `chunks` = n (H = n·C); `gates: [B, 4H + 2n]` pre-activations,
 * `bias: [4H + 2n]` (optional), `cPrev: [B, H]`.
 */
export interface OnLstmForwardRefArgs {
  B: number;
  H: number;
  chunks: number;
  gates: ArrayLike<number>;
  bias?: ArrayLike<number>;
  cPrev: ArrayLike<number>;
}

/**
 * Forward outputs: `c, h: [B, H]`, `act: [B, 4H + 2n]` (softmax probabilities `p_in`, `p_f`,
 * then the activated o, g = tanh(z_ĉ), i, f).
 */
export interface OnLstmForwardRefOut<A> {
  c: A;
  h: A;
  act: A;
}

/** Backward inputs: `act: [B, 4H + 2n]`, `cPrev, c, dh: [B, H]`, `dcNext: [B, H]` (optional = 0). */
export interface OnLstmBackwardRefArgs {
  B: number;
  H: number;
  chunks: number;
  act: ArrayLike<number>;
  cPrev: ArrayLike<number>;
  c: ArrayLike<number>;
  dh: ArrayLike<number>;
  dcNext?: ArrayLike<number>;
}

/** Backward outputs: `dgates: [B, 4H + 2n]` (w.r.t. pre-activations), `dcPrev: [B, H]`. */
export interface OnLstmBackwardRefOut<A> {
  dgates: A;
  dcPrev: A;
}

type F = Float32Array | Float64Array;

function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / s);
}

/** `[c̃_in, c̃_f]` from the two softmaxes: exclusive suffix and inclusive prefix sums. */
function masterGates(pIn: ArrayLike<number>, pF: ArrayLike<number>, n: number): number[][] {
  const cin = new Array<number>(n), cf = new Array<number>(n);
  let acc = 0;
  for (let q = n - 1; q >= 0; q--) {
    cin[q] = acc;
    acc += pIn[q];
  }
  acc = 0;
  for (let q = 0; q < n; q++) {
    acc += pF[q];
    cf[q] = acc;
  }
  return [cin, cf];
}

function forwardInto<A extends F>(a: OnLstmForwardRefArgs, out: OnLstmForwardRefOut<A>): void {
  const { B, H, chunks: n, gates, bias, cPrev } = a;
  const C = H / n, W = onLstmActWidth(H, n);
  for (let b = 0; b < B; b++) {
    const z = (col: number) => gates[b * W + col] + (bias ? bias[col] : 0);
    const pIn = softmax(Array.from({ length: n }, (_, r) => z(r)));
    const pF = softmax(Array.from({ length: n }, (_, r) => z(n + r)));
    const [cin, cf] = masterGates(pIn, pF, n);
    for (let r = 0; r < n; r++) {
      out.act[b * W + r] = pIn[r];
      out.act[b * W + n + r] = pF[r];
    }
    for (let j = 0; j < H; j++) {
      const q = Math.floor(j / C);
      const col = (k: number) => 2 * n + k * H + j;
      const o = sigmoid64(z(col(0))), g = Math.tanh(z(col(1)));
      const i = sigmoid64(z(col(2))), f = sigmoid64(z(col(3)));
      const w = cf[q] * cin[q];
      const fh = f * w + (cf[q] - w), ih = i * w + (cin[q] - w);
      const c = fh * cPrev[b * H + j] + ih * g;
      out.c[b * H + j] = c;
      out.h[b * H + j] = o * Math.tanh(c);
      [o, g, i, f].forEach((v, k) => out.act[b * W + col(k)] = v);
    }
  }
}

function backwardInto<A extends F>(a: OnLstmBackwardRefArgs, out: OnLstmBackwardRefOut<A>): void {
  const { B, H, chunks: n, act, cPrev, c, dh, dcNext } = a;
  const C = H / n, W = onLstmActWidth(H, n);
  for (let b = 0; b < B; b++) {
    const at = (col: number) => act[b * W + col];
    const pIn = Array.from({ length: n }, (_, r) => at(r));
    const pF = Array.from({ length: n }, (_, r) => at(n + r));
    const [cin, cf] = masterGates(pIn, pF, n);
    const dcin = new Array<number>(n).fill(0), dcf = new Array<number>(n).fill(0);
    for (let j = 0; j < H; j++) {
      const q = Math.floor(j / C), e = b * H + j;
      const col = (k: number) => 2 * n + k * H + j;
      const o = at(col(0)), g = at(col(1)), i = at(col(2)), f = at(col(3));
      const w = cf[q] * cin[q];
      const fh = f * w + (cf[q] - w), ih = i * w + (cin[q] - w);
      const tc = Math.tanh(c[e]);
      const dc = (dcNext ? dcNext[e] : 0) + dh[e] * o * (1 - tc * tc);
      const dfh = dc * cPrev[e], dih = dc * g;
      const dw = dfh * (f - 1) + dih * (i - 1);
      const d = [
        dh[e] * tc * o * (1 - o),
        dc * ih * (1 - g * g),
        dih * w * i * (1 - i),
        dfh * w * f * (1 - f),
      ];
      d.forEach((v, k) => out.dgates[b * W + col(k)] = v);
      out.dcPrev[e] = dc * fh;
      dcf[q] += dfh + dw * cin[q];
      dcin[q] += dih + dw * cf[q];
    }
    // dp_in[r] = Σ_{q<r} dc̃_in[q], dp_f[r] = Σ_{q≥r} dc̃_f[q]: the transposes of the two scans
    const dpIn = new Array<number>(n), dpF = new Array<number>(n);
    let acc = 0;
    for (let r = 0; r < n; r++) {
      dpIn[r] = acc;
      acc += dcin[r];
    }
    acc = 0;
    for (let r = n - 1; r >= 0; r--) {
      acc += dcf[r];
      dpF[r] = acc;
    }
    for (const [p, dp, off] of [[pIn, dpIn, 0], [pF, dpF, n]] as const) {
      let dot = 0;
      for (let r = 0; r < n; r++) dot += p[r] * dp[r];
      for (let r = 0; r < n; r++) out.dgates[b * W + off + r] = p[r] * (dp[r] - dot);
    }
  }
}

/**
 * ON-LSTM cell forward, rounded to f32.
 *
 * @example
 * ```ts
 * import { onLstmCellForwardRef } from "./onlstm_cell_ref.ts";
 * // one chunk: c̃_in = 0 and c̃_f = 1, so f̂ = 1 and î = 0 and the cell only carries cPrev
 * const { c, h } = onLstmCellForwardRef({
 *   B: 1, H: 1, chunks: 1, gates: new Float32Array(6), cPrev: new Float32Array([1]),
 * }); // c = [1], h = [0.5 * tanh(1)]
 * ```
 */
export function onLstmCellForwardRef(a: OnLstmForwardRefArgs): OnLstmForwardRefOut<Float32Array> {
  const out = {
    c: new Float32Array(a.B * a.H),
    h: new Float32Array(a.B * a.H),
    act: new Float32Array(a.B * onLstmActWidth(a.H, a.chunks)),
  };
  forwardInto(a, out);
  return out;
}

/**
 * ON-LSTM cell forward in f64 (for gradient checks).
 *
 * @example
 * ```ts
 * import { onLstmCellForwardRef64 } from "./onlstm_cell_ref.ts";
 * const { h } = onLstmCellForwardRef64({
 *   B: 1, H: 2, chunks: 2, gates: new Array(12).fill(0), cPrev: [1, 1],
 * });
 * ```
 */
export function onLstmCellForwardRef64(
  a: OnLstmForwardRefArgs,
): OnLstmForwardRefOut<Float64Array> {
  const out = {
    c: new Float64Array(a.B * a.H),
    h: new Float64Array(a.B * a.H),
    act: new Float64Array(a.B * onLstmActWidth(a.H, a.chunks)),
  };
  forwardInto(a, out);
  return out;
}

/**
 * ON-LSTM cell backward, rounded to f32 (formulas in `onlstm_cell.ts`'s `onLstmCellBackward`).
 *
 * @example
 * ```ts
 * import { onLstmCellBackwardRef, onLstmCellForwardRef } from "./onlstm_cell_ref.ts";
 * const cPrev = new Float32Array([1, -1]);
 * const f = onLstmCellForwardRef({ B: 1, H: 2, chunks: 2, gates: new Float32Array(12), cPrev });
 * const { dgates, dcPrev } = onLstmCellBackwardRef({
 *   B: 1, H: 2, chunks: 2, act: f.act, cPrev, c: f.c, dh: new Float32Array([1, 1]),
 * });
 * ```
 */
export function onLstmCellBackwardRef(
  a: OnLstmBackwardRefArgs,
): OnLstmBackwardRefOut<Float32Array> {
  const out = {
    dgates: new Float32Array(a.B * onLstmActWidth(a.H, a.chunks)),
    dcPrev: new Float32Array(a.B * a.H),
  };
  backwardInto(a, out);
  return out;
}

/**
 * ON-LSTM cell backward in f64 (for gradient checks).
 *
 * @example
 * ```ts
 * import { onLstmCellBackwardRef64 } from "./onlstm_cell_ref.ts";
 * const { dgates } = onLstmCellBackwardRef64({
 *   B: 1, H: 1, chunks: 1, act: [1, 1, 0.5, 0, 0.5, 0.5], cPrev: [1], c: [1], dh: [1],
 * });
 * ```
 */
export function onLstmCellBackwardRef64(
  a: OnLstmBackwardRefArgs,
): OnLstmBackwardRefOut<Float64Array> {
  const out = {
    dgates: new Float64Array(a.B * onLstmActWidth(a.H, a.chunks)),
    dcPrev: new Float64Array(a.B * a.H),
  };
  backwardInto(a, out);
  return out;
}
