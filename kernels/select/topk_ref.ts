/**
 * CPU references of `topk.ts` (test oracles, never production): a sort-based top-k selection
 * with the same tie rule, and the magnitude and random keys.
 *
 * @module
 */

import type { TopKOrder } from "./topk.ts";
import { philoxBits } from "../random/philox_ref.ts";

/**
 * Flags of the `min(k, #eligible)` eligible positions with the smallest (or largest) keys, ties
 * broken by lower index first for both orders. `keys: [n]`; `eligible: [n]` (truthy = eligible),
 * all positions when omitted. Returns `[n]` flags (1 = selected).
 *
 * @example
 * ```ts
 * import { topkRef } from "./topk_ref.ts";
 * topkRef(Uint32Array.of(5, 1, 5, 3), 2, "largest"); // Uint8Array [1, 0, 1, 0]
 * ```
 */
export function topkRef(
  keys: Uint32Array,
  k: number,
  order: TopKOrder,
  eligible?: Uint8Array | boolean[],
): Uint8Array {
  const n = keys.length;
  const idx: number[] = [];
  for (let i = 0; i < n; i++) if (!eligible || eligible[i]) idx.push(i);
  const sign = order === "smallest" ? 1 : -1;
  idx.sort((a, b) => (keys[a] !== keys[b] ? sign * (keys[a] - keys[b]) : a - b));
  const out = new Uint8Array(n);
  for (let j = 0; j < Math.min(k, idx.length); j++) out[idx[j]] = 1;
  return out;
}

/**
 * Reference of `magnitudeKeys`: the f32 bits of `|x[i]|`, and 0xFFFFFFFF for every NaN.
 *
 * @example
 * ```ts
 * import { magnitudeKeysRef } from "./topk_ref.ts";
 * magnitudeKeysRef(Float32Array.of(-1, 0, NaN)); // Uint32Array [0x3f800000, 0, 0xffffffff]
 * ```
 */
export function magnitudeKeysRef(x: Float32Array): Uint32Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const b = (bits[i] & 0x7fffffff) >>> 0;
    out[i] = b > 0x7f800000 ? 0xffffffff : b;
  }
  return out;
}

/**
 * Reference of `randomKeys`: the Philox word of each position `i < n` under `(seed, stream)`.
 *
 * @example
 * ```ts
 * import { randomKeysRef } from "./topk_ref.ts";
 * const keys = randomKeysRef(64, 1, 0); // Uint32Array(64)
 * ```
 */
export function randomKeysRef(n: number, seed: number, stream: number): Uint32Array {
  return philoxBits(n, seed, stream);
}
