/**
 * CPU reference of `dropout.ts`: the keep mask and the scaled output, bit-for-bit what the GPU
 * computes (same Philox element scheme, same f32 threshold and scale, one correctly rounded f32
 * multiply).
 *
 * @module
 */

import { bitsToUniform, philoxBits } from "../random/philox_ref.ts";

/**
 * Keep mask of `n` elements: `1` where `uniform(i) >= fround(p)`, else `0`.
 *
 * @example
 * ```ts
 * import { dropoutMaskRef } from "./dropout_ref.ts";
 * const keep = dropoutMaskRef(1000, 0.5, 1, 0); // about 500 ones
 * ```
 */
export function dropoutMaskRef(n: number, p: number, seed: number, offset: number): Uint8Array {
  const pf = Math.fround(p);
  const bits = philoxBits(n, seed, offset);
  const keep = new Uint8Array(n);
  for (let i = 0; i < n; i++) keep[i] = bitsToUniform(bits[i]) >= pf ? 1 : 0;
  return keep;
}

/**
 * Inverted dropout of `x` (any shape, flattened): `y[i] = keep[i] ? fround(x[i] * s) : 0` with
 * `s = fround(1 / (1 - p))`. The backward pass is the same map applied to `dy`.
 *
 * @example
 * ```ts
 * import { dropoutRef } from "./dropout_ref.ts";
 * const y = dropoutRef(new Float32Array([1, 2, 3]), 0.5, 7, 0); // entries 0 or 2x
 * ```
 */
export function dropoutRef(
  x: Float32Array,
  p: number,
  seed: number,
  offset: number,
): Float32Array {
  const keep = dropoutMaskRef(x.length, p, seed, offset);
  const s = Math.fround(1 / (1 - p));
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = keep[i] ? Math.fround(x[i] * s) : 0;
  return y;
}

/**
 * Reference of `sharedMaskDropout`: element `i` uses mask element `i % period` (locked) or
 * `ids[floor(i / rowLen)]` (embedding rows) of `dropoutMaskRef`.
 *
 * @example
 * ```ts
 * import { sharedMaskDropoutRef } from "./dropout_ref.ts";
 * const y = sharedMaskDropoutRef(new Float32Array(6).fill(1), 0.5, 3, 0, { period: 3 });
 * y[0] === y[3]; // true: one mask per period
 * ```
 */
export function sharedMaskDropoutRef(
  x: Float32Array,
  p: number,
  seed: number,
  offset: number,
  share: { period: number } | { ids: Uint32Array; rowLen: number; maskSize: number },
): Float32Array {
  const s = Math.fround(1 / (1 - p));
  const maskSize = "period" in share ? share.period : share.maskSize;
  const keep = dropoutMaskRef(maskSize, p, seed, offset);
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const j = "period" in share ? i % share.period : share.ids[Math.floor(i / share.rowLen)];
    y[i] = keep[j] ? Math.fround(x[i] * s) : 0;
  }
  return y;
}
