/**
 * Test helpers of the model gradient checks: random token ids, and the per-tensor comparison of
 * GPU (f32) gradients with an f64 reference.
 *
 * @module
 */

import { ok } from "node:assert/strict";
import { rng } from "./_util.ts";

/** `n` token ids below `vocab` from a seeded generator. */
export function tokens(n: number, seed: number, vocab: number): Uint32Array {
  const r = rng(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(r() * vocab));
}

/** Largest |x|. */
export const maxAbs = (a: ArrayLike<number>): number =>
  Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Largest |a − b| elementwise. */
export const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/**
 * GPU gradients vs the f64 reference, per tensor: max abs error <= 1e-4·max|g| + 1e-9. The
 * models checked with it chain a few steps of products of a few dozen terms, ~1e-6 relative
 * rounding in f32, so 1e-4 leaves 100× headroom, while a sign, transpose, block-order or mask
 * bug moves entries by O(max|g|). A reference gradient of ~0 fails (the check could not fail).
 */
export function checkGrads(
  got: Record<string, Float64Array>,
  want: Record<string, Float64Array>,
  label: string,
): void {
  for (const [name, w] of Object.entries(want)) {
    const g = got[name];
    ok(g && g.length === w.length, `${label} ${name}: missing or wrong length`);
    const scale = maxAbs(w);
    ok(scale > 1e-6, `${label} ${name}: reference gradient is all ~0 (test cannot fail)`);
    const err = maxDiff(g, w);
    ok(
      err <= 1e-4 * scale + 1e-9,
      `${label} ${name}: max abs error ${err.toExponential(2)} vs max|g| ${scale.toExponential(2)}`,
    );
  }
}
