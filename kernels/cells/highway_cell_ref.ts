/**
 * CPU reference of the fused highway micro-layer (`highway_cell.ts`), coupled carry gate:
 * blocks `[H; T]`, `h = tanh(a_H)`, `t = σ(a_T)`, `s' = h⊙t + s⊙(1 − t)`. In f64 (the tests
 * round or compare with tolerances).
 *
 * @module
 */

import { sigmoid64 } from "../dense/elementwise_ref.ts";

/**
 * Forward of `B` rows: `pre: [B, 2H]`, `sPrev: [B, H]` → `act: [B, 2H]` (h, t), `s: [B, H]`.
 *
 * @example
 * ```ts
 * import { highwayForwardRef } from "./highway_cell_ref.ts";
 * const r = highwayForwardRef(1, 1, [0, 0], [1]); // h = 0, t = 0.5
 * r.s[0]; // 0.5
 * ```
 */
export function highwayForwardRef(
  B: number,
  H: number,
  pre: ArrayLike<number>,
  sPrev: ArrayLike<number>,
): { act: Float64Array; s: Float64Array } {
  const act = new Float64Array(B * 2 * H), s = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) {
      const h = Math.tanh(pre[b * 2 * H + j]), t = sigmoid64(pre[b * 2 * H + H + j]);
      act[b * 2 * H + j] = h;
      act[b * 2 * H + H + j] = t;
      s[b * H + j] = h * t + sPrev[b * H + j] * (1 - t);
    }
  }
  return { act, s };
}

/**
 * Backward: from `act` (forward), `sPrev` and `ds` (gradient w.r.t. `s'`) → `dpre: [B, 2H]` and
 * the carry path of `dsPrev: [B, H]`.
 *
 * @example
 * ```ts
 * import { highwayBackwardRef } from "./highway_cell_ref.ts";
 * highwayBackwardRef(1, 1, [0, 0.5], [1], [1]).dsPrev[0]; // 0.5
 * ```
 */
export function highwayBackwardRef(
  B: number,
  H: number,
  act: ArrayLike<number>,
  sPrev: ArrayLike<number>,
  ds: ArrayLike<number>,
): { dpre: Float64Array; dsPrev: Float64Array } {
  const dpre = new Float64Array(B * 2 * H), dsPrev = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) {
      const h = act[b * 2 * H + j], t = act[b * 2 * H + H + j], d = ds[b * H + j];
      dpre[b * 2 * H + j] = d * t * (1 - h * h);
      dpre[b * 2 * H + H + j] = d * (h - sPrev[b * H + j]) * t * (1 - t);
      dsPrev[b * H + j] = d * (1 - t);
    }
  }
  return { dpre, dsPrev };
}
