import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import {
  buildEmbeddingIndex,
  releaseEmbeddingIndex,
  uploadEmbeddingIndex,
} from "../kernels/cells/embedding.ts";
import { embeddingBackwardRef, embeddingForwardRef } from "../kernels/cells/embedding_ref.ts";
import {
  sparseEmbeddingBackward,
  sparseEmbeddingForward,
} from "../kernels/sparse/sparse_embedding.ts";
import {
  hostCsrFromMask,
  releaseSparse,
  storedLength,
  uploadSparse,
} from "../kernels/sparse/sparse_matrix.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";
import { bernoulliMask, GPU_TEST, rng, testGpu, uniform } from "./_util.ts";

function randomIds(n: number, range: number, seed: number): Uint32Array {
  const r = rng(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(r() * range));
}

// Both directions are exact: the forward copies values, and the backward adds in the order of
// the dense reference (positions ascending per id, group sum added once), so the sparse path
// must equal the masked-dense oracle bit for bit at every active entry.
Deno.test({
  name: "sparse embedding: forward and backward equal the masked-dense embedding exactly",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const cases: [number, number, number, number][] = [
      // [N, V, D, density]
      [1, 1, 1, 1],
      [7, 10, 3, 0.5],
      [700, 50, 17, 0.33],
      [300, 1000, 64, 0.1],
      [20, 30, 5, 0],
    ];
    for (const [n, v, d, density] of cases) {
      const label = `N=${n} V=${v} D=${d} density=${density}`;
      const table = uniform(v * d, 1 + n);
      const mask = bernoulliMask(v * d, density, 2 + n);
      const masked = table.map((x, i) => (mask[i] ? x : 0)); // +0, as the sparse gather writes
      const csr = hostCsrFromMask(v, d, table, mask);
      const w = uploadSparse(gpu, csr);
      const ids = randomIds(n, Math.min(v, 12), 3 + n); // repeats
      const idsT = gpu.upload([n], ids, "u32");
      const out = gpu.upload([n, d], uniform(n * d, 4)); // stale contents must be cleared
      sparseEmbeddingForward(gpu, { ids: idsT, table: w, out });
      assertEquals(await gpu.read(out), embeddingForwardRef(ids, masked, v, d), label);

      const dOut = uniform(n * d, 5 + n);
      const index = uploadEmbeddingIndex(gpu, buildEmbeddingIndex(ids, v));
      const dOutT = gpu.upload([n, d], dOut);
      const start = uniform(storedLength(w.nnz), 6);
      const dValues = gpu.upload([storedLength(w.nnz)], start);
      sparseEmbeddingBackward(gpu, { index, dOut: dOutT, table: w, dValues });
      // oracle: dense backward onto the scattered start values, gathered at active entries
      const denseStart = new Float32Array(v * d);
      for (let r = 0, p = 0; r < v; r++) {
        for (; p < csr.rowPtr[r + 1]; p++) denseStart[r * d + csr.colIdx[p]] = start[p];
      }
      const dense = embeddingBackwardRef(ids, dOut, denseStart, d);
      const expected = Float32Array.from(start);
      for (let r = 0, p = 0; r < v; r++) {
        for (; p < csr.rowPtr[r + 1]; p++) expected[p] = dense[r * d + csr.colIdx[p]];
      }
      assertEquals(await gpu.read(dValues), expected, label);
      releaseEmbeddingIndex(gpu, index);
      releaseSparse(gpu, w);
      for (const t of [idsT, out, dOutT, dValues]) gpu.release(t);
    }
  },
});

Deno.test({
  name: "sparse embedding: bad shapes throw ShapeError naming the argument",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const w = uploadSparse(gpu, hostCsrFromMask(4, 3, new Float32Array(12), new Float32Array(12)));
    const ids = gpu.upload([2], [0, 1], "u32");
    assertThrows(
      () => sparseEmbeddingForward(gpu, { ids, table: w, out: gpu.tensor([2, 4]) }),
      (e: Error) => e instanceof ShapeError && /out: expected shape \[2, 3\]/.test(e.message),
    );
    const index = uploadEmbeddingIndex(gpu, buildEmbeddingIndex(new Uint32Array([0, 1]), 5));
    assertThrows(
      () =>
        sparseEmbeddingBackward(gpu, {
          index,
          dOut: gpu.tensor([2, 3]),
          table: w,
          dValues: gpu.tensor([1]),
        }),
      (e: Error) => e instanceof ShapeError && /vocabulary 5, table has 4 rows/.test(e.message),
    );
  },
});
