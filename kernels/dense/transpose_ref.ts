/**
 * CPU reference of {@linkcode transpose} (transpose.ts): the test oracle, never the production
 * path.
 *
 * @module
 */

/**
 * `xᵀ` of a row-major `x: [r, c]`, returned as `[c, r]` row-major.
 *
 * @example
 * ```ts
 * import { transposeRef } from "./transpose_ref.ts";
 * Array.from(transposeRef(new Float32Array([1, 2, 3, 4, 5, 6]), 2, 3)); // [1, 4, 2, 5, 3, 6]
 * ```
 */
export function transposeRef(x: Float32Array, r: number, c: number): Float32Array {
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) out[j * r + i] = x[i * c + j];
  }
  return out;
}
