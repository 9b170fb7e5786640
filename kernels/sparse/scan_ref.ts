/**
 * CPU reference for `scan.ts` (the test oracle, never production).
 *
 * @module
 */

/**
 * Exclusive prefix sum modulo 2^32 of `input: [n]`, returned as `[n + 1]`: `out[0] = 0`,
 * `out[i + 1] = input[0] + … + input[i]`, so `out[n]` is the total.
 *
 * @example
 * ```ts
 * import { exclusiveScanRef } from "./scan_ref.ts";
 * Array.from(exclusiveScanRef([1, 0, 2])); // [0, 1, 1, 3]
 * ```
 */
export function exclusiveScanRef(input: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(input.length + 1);
  let run = 0;
  for (let i = 0; i < input.length; i++) {
    run = (run + input[i]) >>> 0;
    out[i + 1] = run;
  }
  return out;
}
