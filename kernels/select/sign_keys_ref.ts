/**
 * CPU references of `sign_keys.ts` (test oracles, never production): SET's signed magnitude
 * keys and the active-below-key indicator.
 *
 * @module
 */

import type { SignSide } from "./sign_keys.ts";

/**
 * Reference of `signedMagnitudeKeys`: the f32 bits of `|x[i]|` where the sign bit of `x[i]` is
 * on `side` (0xFFFFFFFE for a NaN of that side), 0xFFFFFFFF elsewhere. `x: [n]`; returns `[n]`.
 *
 * @example
 * ```ts
 * import { signedMagnitudeKeysRef } from "./sign_keys_ref.ts";
 * signedMagnitudeKeysRef(Float32Array.of(-1, 2, -0), "negative"); // [0x3f800000, 0xffffffff, 0]
 * ```
 */
export function signedMagnitudeKeysRef(x: Float32Array, side: SignSide): Uint32Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint32Array(x.length);
  const want = side === "negative" ? 1 : 0;
  for (let i = 0; i < x.length; i++) {
    const mag = (bits[i] & 0x7fffffff) >>> 0;
    out[i] = bits[i] >>> 31 !== want ? 0xffffffff : mag > 0x7f800000 ? 0xfffffffe : mag;
  }
  return out;
}

/**
 * Reference of `keyBelowIndicator`: `1` where `mask[i] != 0` (NaN counts as active) and
 * `keys[i] < below`, else `0`. `keys`, `mask`: `[n]`; returns `[n]` f32.
 *
 * @example
 * ```ts
 * import { keyBelowIndicatorRef } from "./sign_keys_ref.ts";
 * keyBelowIndicatorRef(Uint32Array.of(1, 5, 1), Float32Array.of(1, 1, 0), 3); // [1, 0, 0]
 * ```
 */
export function keyBelowIndicatorRef(
  keys: Uint32Array,
  mask: Float32Array,
  below: number,
): Float32Array {
  const out = new Float32Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    // `!(m == 0)` keeps NaN active, as the kernel's `!=` does.
    out[i] = !(mask[i] === 0) && keys[i] < below ? 1 : 0;
  }
  return out;
}
