/**
 * CPU reference of the fused LSTM cell (`lstm_cell.ts`), PyTorch conventions: gate blocks
 * `[i, f, g, o]`, i/f/o sigmoid, g tanh, `c' = f⊙c + i⊙g`, `h' = o⊙tanh(c')`. Computed in f64;
 * the `...Ref` functions round the results to f32 once, the `...Ref64` ones keep f64 for
 * finite-difference checks of the backward formulas.
 *
 * @module
 */

import { sigmoid64 } from "../dense/elementwise_ref.ts";

/** Forward inputs. `gates: [B, 4H]` pre-activations, `bias: [4H]` (optional), `cPrev: [B, H]`. */
export interface LstmForwardRefArgs {
  B: number;
  H: number;
  gates: ArrayLike<number>;
  bias?: ArrayLike<number>;
  cPrev: ArrayLike<number>;
}

/** Forward outputs: `c, h: [B, H]`, `act: [B, 4H]` (activated gates, blocks i, f, g, o). */
export interface LstmForwardRefOut<A> {
  c: A;
  h: A;
  act: A;
}

/** Backward inputs: `act: [B, 4H]`, `cPrev, c, dh: [B, H]`, `dcNext: [B, H]` (optional = 0). */
export interface LstmBackwardRefArgs {
  B: number;
  H: number;
  act: ArrayLike<number>;
  cPrev: ArrayLike<number>;
  c: ArrayLike<number>;
  dh: ArrayLike<number>;
  dcNext?: ArrayLike<number>;
}

/** Backward outputs: `dgates: [B, 4H]` (w.r.t. pre-activations), `dcPrev: [B, H]`. */
export interface LstmBackwardRefOut<A> {
  dgates: A;
  dcPrev: A;
}

type F = Float32Array | Float64Array;

function forwardInto<A extends F>(a: LstmForwardRefArgs, out: LstmForwardRefOut<A>): void {
  const { B, H, gates, bias, cPrev } = a;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) {
      const z = (k: number) => gates[b * 4 * H + k * H + j] + (bias ? bias[k * H + j] : 0);
      const i = sigmoid64(z(0)), f = sigmoid64(z(1)), g = Math.tanh(z(2)), o = sigmoid64(z(3));
      const c = f * cPrev[b * H + j] + i * g;
      out.c[b * H + j] = c;
      out.h[b * H + j] = o * Math.tanh(c);
      [i, f, g, o].forEach((v, k) => out.act[b * 4 * H + k * H + j] = v);
    }
  }
}

function backwardInto<A extends F>(a: LstmBackwardRefArgs, out: LstmBackwardRefOut<A>): void {
  const { B, H, act, cPrev, c, dh, dcNext } = a;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) {
      const at = (k: number) => act[b * 4 * H + k * H + j];
      const i = at(0), f = at(1), g = at(2), o = at(3);
      const e = b * H + j;
      const tc = Math.tanh(c[e]);
      const dc = (dcNext ? dcNext[e] : 0) + dh[e] * o * (1 - tc * tc);
      const d = [
        dc * g * i * (1 - i),
        dc * cPrev[e] * f * (1 - f),
        dc * i * (1 - g * g),
        dh[e] * tc * o * (1 - o),
      ];
      d.forEach((v, k) => out.dgates[b * 4 * H + k * H + j] = v);
      out.dcPrev[e] = dc * f;
    }
  }
}

/**
 * LSTM cell forward, rounded to f32.
 *
 * @example
 * ```ts
 * import { lstmCellForwardRef } from "./lstm_cell_ref.ts";
 * const { c, h, act } = lstmCellForwardRef({
 *   B: 1, H: 1, gates: new Float32Array([0, 0, 0, 0]), cPrev: new Float32Array([1]),
 * }); // c = [0.5], h = [0.5 * tanh(0.5)], act = [0.5, 0.5, 0, 0.5]
 * ```
 */
export function lstmCellForwardRef(a: LstmForwardRefArgs): LstmForwardRefOut<Float32Array> {
  const out = {
    c: new Float32Array(a.B * a.H),
    h: new Float32Array(a.B * a.H),
    act: new Float32Array(4 * a.B * a.H),
  };
  forwardInto(a, out);
  return out;
}

/**
 * LSTM cell forward in f64 (for gradient checks).
 *
 * @example
 * ```ts
 * import { lstmCellForwardRef64 } from "./lstm_cell_ref.ts";
 * const { h } = lstmCellForwardRef64({ B: 1, H: 1, gates: [0, 0, 0, 0], cPrev: [1] });
 * ```
 */
export function lstmCellForwardRef64(a: LstmForwardRefArgs): LstmForwardRefOut<Float64Array> {
  const out = {
    c: new Float64Array(a.B * a.H),
    h: new Float64Array(a.B * a.H),
    act: new Float64Array(4 * a.B * a.H),
  };
  forwardInto(a, out);
  return out;
}

/**
 * LSTM cell backward, rounded to f32 (formulas in `lstm_cell.ts`'s `lstmCellBackward`).
 *
 * @example
 * ```ts
 * import { lstmCellBackwardRef, lstmCellForwardRef } from "./lstm_cell_ref.ts";
 * const cPrev = new Float32Array([1]);
 * const f = lstmCellForwardRef({ B: 1, H: 1, gates: new Float32Array(4), cPrev });
 * const { dgates, dcPrev } = lstmCellBackwardRef({
 *   B: 1, H: 1, act: f.act, cPrev, c: f.c, dh: new Float32Array([1]),
 * });
 * ```
 */
export function lstmCellBackwardRef(a: LstmBackwardRefArgs): LstmBackwardRefOut<Float32Array> {
  const out = { dgates: new Float32Array(4 * a.B * a.H), dcPrev: new Float32Array(a.B * a.H) };
  backwardInto(a, out);
  return out;
}

/**
 * LSTM cell backward in f64 (for gradient checks).
 *
 * @example
 * ```ts
 * import { lstmCellBackwardRef64 } from "./lstm_cell_ref.ts";
 * const { dgates } = lstmCellBackwardRef64({
 *   B: 1, H: 1, act: [0.5, 0.5, 0, 0.5], cPrev: [1], c: [0.5], dh: [1],
 * });
 * ```
 */
export function lstmCellBackwardRef64(a: LstmBackwardRefArgs): LstmBackwardRefOut<Float64Array> {
  const out = { dgates: new Float64Array(4 * a.B * a.H), dcPrev: new Float64Array(a.B * a.H) };
  backwardInto(a, out);
  return out;
}
