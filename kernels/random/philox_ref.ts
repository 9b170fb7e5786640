/**
 * CPU reference of Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy
 * as 1, 2, 3", SC 2011) and of this project's element → counter scheme. Bit-for-bit equal to the
 * WGSL in `philox.ts`: the 32×32→64 multiply is built from 16-bit halves exactly as there.
 *
 * @module
 */

/** Philox4x32 round multipliers and Weyl key increments (Random123). */
export const PHILOX_M0 = 0xD2511F53;
/** Second round multiplier. */
export const PHILOX_M1 = 0xCD9E8D57;
/** First key increment (golden ratio). */
export const PHILOX_W0 = 0x9E3779B9;
/** Second key increment (sqrt(3) - 1). */
export const PHILOX_W1 = 0xBB67AE85;

/**
 * High 32 bits of the 64-bit product of two u32, from 16-bit halves (each partial product fits
 * in 32 bits; the middle carries are summed in a word that cannot overflow).
 */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = Math.imul(al, bl) >>> 0;
  const lh = Math.imul(al, bh) >>> 0;
  const hl = Math.imul(ah, bl) >>> 0;
  const hh = Math.imul(ah, bh) >>> 0;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

/**
 * Philox4x32-10 of one 128-bit counter under a 64-bit key: four u32 outputs.
 *
 * @example
 * ```ts
 * import { philox4x32 } from "./philox_ref.ts";
 * philox4x32([0, 0, 0, 0], [0, 0]); // Uint32Array [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
 * ```
 */
export function philox4x32(
  ctr: readonly [number, number, number, number] | ArrayLike<number>,
  key: readonly [number, number] | ArrayLike<number>,
): Uint32Array {
  let c0 = ctr[0] >>> 0, c1 = ctr[1] >>> 0, c2 = ctr[2] >>> 0, c3 = ctr[3] >>> 0;
  let k0 = key[0] >>> 0, k1 = key[1] >>> 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi(PHILOX_M0, c0), lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi(PHILOX_M1, c2), lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + PHILOX_W0) >>> 0;
    k1 = (k1 + PHILOX_W1) >>> 0;
  }
  return Uint32Array.of(c0, c1, c2, c3);
}

/**
 * The random u32 of each element `i` in `[0, n)` under `(seed, offset)`: element `i` is word
 * `i % 4` of Philox4x32-10 with counter `(floor(i / 4), offset, 0, 0)` and key `(seed, 0)`.
 * A pure function of `(seed, offset, i)`, independent of tensor views, launch shape and adapter.
 *
 * @example
 * ```ts
 * import { philoxBits } from "./philox_ref.ts";
 * const bits = philoxBits(10, 42, 0); // Uint32Array of 10 random words
 * ```
 */
export function philoxBits(n: number, seed: number, offset: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let blk = 0; 4 * blk < n; blk++) {
    const r = philox4x32([blk, offset, 0, 0], [seed, 0]);
    for (let l = 0; l < 4 && 4 * blk + l < n; l++) out[4 * blk + l] = r[l];
  }
  return out;
}

/** 2^-24: the 24-bit uniform grid step; exact in f32. */
export const UNIFORM_STEP = 5.9604644775390625e-8;

/**
 * u32 → uniform float in [0, 1) on a 24-bit grid: `(u >> 8) * 2^-24`, exact in f32.
 *
 * @example
 * ```ts
 * import { bitsToUniform } from "./philox_ref.ts";
 * bitsToUniform(0xffffffff); // 1 - 2 ** -24
 * ```
 */
export function bitsToUniform(u: number): number {
  return (u >>> 8) * UNIFORM_STEP;
}

/**
 * Reference of `randomUniform`: `n` uniforms in [0, 1) for `(seed, offset)`.
 *
 * @example
 * ```ts
 * import { uniformRef } from "./philox_ref.ts";
 * const u = uniformRef(1000, 1, 0); // Float32Array(1000), each in [0, 1)
 * ```
 */
export function uniformRef(n: number, seed: number, offset: number): Float32Array {
  const bits = philoxBits(n, seed, offset);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = bitsToUniform(bits[i]);
  return out;
}
