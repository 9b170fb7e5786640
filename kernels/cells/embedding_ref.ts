/**
 * CPU references for the embedding kernels (test oracles, never production). The backward
 * reference sums in exactly the order the GPU kernel does (positions ascending within each id,
 * f32 rounding after every add), so the two agree to the last bit on normal numbers.
 *
 * @module
 */

/**
 * Gathers rows: `out[n, :] = table[min(ids[n], V - 1), :]` (the shader's clamp).
 *
 * `ids: [N]`, `table: [V, D]` row-major → `out: [N, D]`.
 *
 * @example
 * ```ts
 * import { embeddingForwardRef } from "./embedding_ref.ts";
 * embeddingForwardRef(new Uint32Array([1, 0]), new Float32Array([1, 2, 3, 4]), 2, 2);
 * // Float32Array [3, 4, 1, 2]
 * ```
 */
export function embeddingForwardRef(
  ids: Uint32Array,
  table: Float32Array,
  vocabSize: number,
  dim: number,
): Float32Array {
  const out = new Float32Array(ids.length * dim);
  for (let n = 0; n < ids.length; n++) {
    const id = Math.min(ids[n], vocabSize - 1);
    out.set(table.subarray(id * dim, (id + 1) * dim), n * dim);
  }
  return out;
}

/**
 * Scatter-adds output gradients into a copy of `dTable`: for each id `u`,
 * `dTable[u, :] += (((dOut[p0, :] + dOut[p1, :]) + ...)` over the positions `p0 < p1 < ...` where
 * `ids[p] == u`, the group sum formed first (starting from 0) and added to `dTable` once, in f32.
 *
 * `ids: [N]` (all `< V`), `dOut: [N, D]`, `dTable: [V, D]` → new `[V, D]`.
 *
 * @example
 * ```ts
 * import { embeddingBackwardRef } from "./embedding_ref.ts";
 * embeddingBackwardRef(new Uint32Array([1, 1]), new Float32Array([1, 2]), new Float32Array(2), 1);
 * // Float32Array [0, 3]
 * ```
 */
export function embeddingBackwardRef(
  ids: Uint32Array,
  dOut: Float32Array,
  dTable: Float32Array,
  dim: number,
): Float32Array {
  const vocabSize = dTable.length / dim;
  const sums = new Float32Array(vocabSize * dim);
  const seen = new Uint8Array(vocabSize);
  for (let p = 0; p < ids.length; p++) {
    const u = ids[p];
    if (u >= vocabSize) throw new RangeError(`ids[${p}] = ${u} >= ${vocabSize}`);
    seen[u] = 1;
    for (let d = 0; d < dim; d++) {
      sums[u * dim + d] = Math.fround(sums[u * dim + d] + dOut[p * dim + d]);
    }
  }
  const out = Float32Array.from(dTable);
  for (let u = 0; u < vocabSize; u++) {
    if (!seen[u]) continue;
    for (let d = 0; d < dim; d++) {
      out[u * dim + d] = Math.fround(out[u * dim + d] + sums[u * dim + d]);
    }
  }
  return out;
}
