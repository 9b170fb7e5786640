import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import {
  countNonzero,
  rebuildTranspose,
  sparseFromMask,
  sparseGather,
  sparseScatter,
  sparseToDense,
  sparseToMask,
} from "../kernels/sparse/sparse_convert.ts";
import {
  type HostCsr,
  hostCsrFromMask,
  hostTranspose,
  releaseSparse,
  type SparseMatrix,
  storedLength,
  uploadSparse,
} from "../kernels/sparse/sparse_matrix.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { ShapeError, Tensor } from "../kernels/runtime/tensor.ts";
import {
  bernoulliMask,
  forEachVariant,
  GPU_TEST,
  SPARSE_TEST_DENSITIES,
  testGpu,
  uniform,
} from "./_util.ts";

// Every check here is exact: conversions only move values and integers, nothing is rounded.

/** Index of the first difference of two arrays (by bits for floats), or -1. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

function assertSame(got: ArrayLike<number>, want: ArrayLike<number>, label: string): void {
  const d = firstDiff(got, want);
  if (d >= 0) {
    throw new Error(
      `${label}: index ${d}: got ${got[d]}, expected ${want[d]} (lengths ${got.length}, ` +
        `${want.length})`,
    );
  }
}

/** Uploads `data` as `[rows, cols]` viewed 3 elements into its buffer (checks view offsets). */
function uploadView(gpu: Gpu, rows: number, cols: number, data: Float32Array): Tensor<"f32"> {
  const buf = new Float32Array(rows * cols + 3).fill(-9);
  buf.set(data, 3);
  return gpu.upload([rows * cols + 3], buf).view(3, [rows, cols]);
}

function releaseView(gpu: Gpu, t: Tensor): void {
  gpu.release(new Tensor(t.buffer, [t.buffer.size / 4], t.dtype));
}

/** Reads every array of `w` (first `nnz` entries of the per-entry ones). */
async function readSparse(gpu: Gpu, w: SparseMatrix) {
  const cut = <T extends Uint32Array | Float32Array>(a: T): T => {
    assertEquals(a.length, storedLength(w.nnz), "stored length");
    return a.subarray(0, w.nnz) as T;
  };
  return {
    rowPtr: await gpu.read(w.rowPtr),
    colIdx: cut(await gpu.read(w.colIdx)),
    values: cut(await gpu.read(w.values)),
    colPtr: await gpu.read(w.colPtr),
    rowIdxT: cut(await gpu.read(w.rowIdxT)),
    permT: cut(await gpu.read(w.permT)),
  };
}

async function checkAgainstHost(gpu: Gpu, w: SparseMatrix, csr: HostCsr, label: string) {
  const got = await readSparse(gpu, w);
  const t = hostTranspose(csr);
  assertSame(got.rowPtr, csr.rowPtr, `${label} rowPtr`);
  assertSame(got.colIdx, csr.colIdx, `${label} colIdx`);
  assertSame(got.values, csr.values, `${label} values`);
  assertSame(got.colPtr, t.colPtr, `${label} colPtr`);
  assertSame(got.rowIdxT, t.rowIdxT, `${label} rowIdxT`);
  assertSame(got.permT, t.permT, `${label} permT`);
}

const SHAPES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1],
  [3, 17, 1],
  [17, 3, 1],
  [127, 1000, 1],
  [800, 1500, 4],
];

/**
 * One shape and density: dense+mask → sparse (vs the host oracle), round trips to dense and
 * mask, scatter and gather of per-entry data.
 */
async function checkCase(
  gpu: Gpu,
  rows: number,
  cols: number,
  gates: number,
  density: number,
  seed: number,
  label: string,
): Promise<void> {
  const n = rows * cols;
  const denseHost = uniform(n, seed, -1, 1);
  // Active entries whose value is exactly 0 must stay entries.
  for (let i = 0; i < n; i += 7) denseHost[i] = 0;
  const maskHost = bernoulliMask(n, density, seed + 1);
  const csr = hostCsrFromMask(rows, cols, denseHost, maskHost);
  const nnz = csr.rowPtr[rows];
  const dense = uploadView(gpu, rows, cols, denseHost);
  const mask = uploadView(gpu, rows, cols, maskHost);
  assertEquals(await countNonzero(gpu, mask), nnz, `${label} countNonzero`);

  const blocks = Array.from({ length: gates }, () => rows / gates);
  const w = sparseFromMask(gpu, { dense, mask, nnz, blocks, budget: nnz + 5 });
  assertEquals([w.rows, w.cols, w.blocks, w.nnz, w.budget], [rows, cols, blocks, nnz, nnz + 5]);
  await checkAgainstHost(gpu, w, csr, label);

  // Round trips into outputs full of garbage, so every inactive position must be written 0.
  const garbage = new Float32Array(n).fill(5);
  const out = uploadView(gpu, rows, cols, garbage);
  sparseToDense(gpu, { w, out });
  assertSame(
    await gpu.read(out),
    denseHost.map((v, i) => maskHost[i] !== 0 ? v : 0),
    `${label} toDense`,
  );
  sparseToMask(gpu, { w, out });
  assertSame(await gpu.read(out), maskHost.map((m) => m !== 0 ? 1 : 0), `${label} toMask`);

  // Scatter per-entry data, then gather it back, and gather from unrelated dense data.
  const len = storedLength(nnz);
  const entryData = uniform(len, seed + 2, -3, 3);
  const src = gpu.upload([len], entryData);
  sparseScatter(gpu, { w, src, dst: out });
  const wantScatter = new Float32Array(n);
  for (let r = 0; r < rows; r++) {
    for (let p = csr.rowPtr[r]; p < csr.rowPtr[r + 1]; p++) {
      wantScatter[r * cols + csr.colIdx[p]] = entryData[p];
    }
  }
  assertSame(await gpu.read(out), wantScatter, `${label} scatter`);
  const back = gpu.upload([len], new Float32Array(len).fill(7));
  sparseGather(gpu, { w, src: out, dst: back });
  const wantBack = nnz === 0 ? new Float32Array([7]) : entryData;
  assertSame(await gpu.read(back), wantBack, `${label} scatter → gather`);
  sparseGather(gpu, { w, src: dense, dst: back });
  assertSame((await gpu.read(back)).subarray(0, nnz), csr.values, `${label} gather dense`);

  releaseSparse(gpu, w);
  for (const t of [dense, mask, out]) releaseView(gpu, t);
  gpu.release(src);
  gpu.release(back);
}

Deno.test({
  name: "sparse convert: dense+mask → sparse equals the host CSR/transpose; round trips, " +
    "scatter/gather; odd shapes × densities 1 .. 0, both scan variants",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      let seed = 1;
      for (const [rows, cols, gates] of SHAPES) {
        for (const density of SPARSE_TEST_DENSITIES) {
          await checkCase(
            gpu,
            rows,
            cols,
            gates,
            density,
            seed++ * 10,
            `${variant} ${rows}x${cols} d=${density}`,
          );
        }
      }
    });
  },
});

Deno.test({
  name: "sparse convert: any nonzero mask value (negative, fractional) marks an entry",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rows = 9, cols = 31, n = rows * cols;
    const maskHost = uniform(n, 3, -2, 2).map((v) => (v > -0.5 && v < 0.5 ? 0 : v));
    const denseHost = uniform(n, 4);
    const csr = hostCsrFromMask(rows, cols, denseHost, maskHost);
    const dense = gpu.upload([rows, cols], denseHost);
    const mask = gpu.upload([rows, cols], maskHost);
    const nnz = await countNonzero(gpu, mask);
    assertEquals(nnz, csr.rowPtr[rows]);
    const w = sparseFromMask(gpu, { dense, mask, nnz });
    await checkAgainstHost(gpu, w, csr, "signed mask");
    releaseSparse(gpu, w);
    gpu.release(dense);
    gpu.release(mask);
  },
});

Deno.test({
  name: "sparse convert: rebuildTranspose recomputes a clobbered transposed index",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    for (const [rows, cols, density] of [[1, 1, 1], [5, 300, 0.2], [300, 7, 0.6], [64, 64, 0]]) {
      const csr = hostCsrFromMask(
        rows,
        cols,
        uniform(rows * cols, rows),
        bernoulliMask(rows * cols, density, cols),
      );
      const w = uploadSparse(gpu, csr);
      gpu.write(w.colPtr, new Uint32Array(cols + 1).fill(99));
      gpu.write(w.rowIdxT, new Uint32Array(w.rowIdxT.size).fill(98));
      gpu.write(w.permT, new Uint32Array(w.permT.size).fill(97));
      rebuildTranspose(gpu, w);
      await checkAgainstHost(gpu, w, csr, `rebuild ${rows}x${cols}`);
      releaseSparse(gpu, w);
    }
  },
});

Deno.test({
  name: "sparse convert: bad inputs throw ShapeError before any dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const dense = gpu.zeros([4, 6]);
    const mask = gpu.zeros([4, 6]);
    const maskT = gpu.zeros([6, 4]);
    const maskU = gpu.zeros([4, 6], "u32");
    const flat = gpu.zeros([24]);
    const w = uploadSparse(
      gpu,
      hostCsrFromMask(4, 6, new Float32Array(24), bernoulliMask(24, 0.5, 1)),
    );
    const before = gpu.dispatchCount;
    const from = (args: Partial<Parameters<typeof sparseFromMask>[1]>) => () =>
      sparseFromMask(gpu, { dense, mask, nnz: 3, ...args });
    assertThrows(from({ mask: maskT }), /sparseFromMask mask: expected shape \[4, 6\]/);
    assertThrows(from({ mask: maskU as never }), /sparseFromMask mask: expected dtype f32/);
    assertThrows(from({ dense: maskU as never }), /sparseFromMask dense/);
    assertThrows(from({ dense: flat }), /sparseFromMask dense: expected an f32 matrix/);
    assertThrows(from({ nnz: -1 }), /sparseFromMask nnz/);
    assertThrows(from({ nnz: 2.5 }), /sparseFromMask nnz/);
    assertThrows(from({ nnz: 25 }), /sparseFromMask nnz/);
    assertThrows(from({ blocks: [1, 1] }), /row blocks \[1, 1\] do not split its 4 rows/);
    assertThrows(from({ blocks: [0, 4] }), ShapeError);
    assertThrows(from({ budget: -2 }), /budget/);
    // A matrix whose position map cannot be indexed in u32 (never allocated: a fake buffer).
    const huge = new Tensor({ size: 4 * 70000 * 70000 } as GPUBuffer, [70000, 70000], "f32");
    assertThrows(from({ dense: huge, mask: huge, nnz: 0 }), /position map/);
    assertThrows(() => sparseToDense(gpu, { w, out: maskT }), /sparseToDense out/);
    assertThrows(() => sparseToMask(gpu, { w, out: flat }), /sparseToMask out/);
    assertThrows(() => sparseScatter(gpu, { w, src: flat, dst: dense }), /sparseScatter src/);
    assertThrows(() => sparseScatter(gpu, { w, src: w.values, dst: maskT }), /sparseScatter dst/);
    assertThrows(() => sparseGather(gpu, { w, src: maskT, dst: w.values }), /sparseGather src/);
    assertThrows(() => sparseGather(gpu, { w, src: dense, dst: flat }), /sparseGather dst/);
    assertThrows(
      () => sparseToDense(gpu, { w: { ...w, nnz: w.nnz + 1 }, out: dense }),
      /w.colIdx must be u32 with at least 17 elements/,
    );
    assertThrows(() => rebuildTranspose(gpu, { ...w, colPtr: w.rowPtr }), /w.colPtr/);
    await assertRejects(() => countNonzero(gpu, maskU as never), ShapeError);
    assertEquals(gpu.dispatchCount, before);
    releaseSparse(gpu, w);
    for (const t of [dense, mask, maskT, maskU, flat]) gpu.release(t);
  },
});

async function assertRejects(fn: () => Promise<unknown>, cls: typeof ShapeError): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof cls) return;
    throw e;
  }
  throw new Error("expected a rejection");
}

Deno.test({
  name: "sparse convert: u32 per-entry data (step counters) scatters and gathers exactly",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rows = 17, cols = 13;
    const mask = bernoulliMask(rows * cols, 0.3, 41);
    const csr = hostCsrFromMask(rows, cols, new Float32Array(rows * cols), mask);
    const w = uploadSparse(gpu, csr);
    const nnz = csr.values.length;
    const counts = Uint32Array.from({ length: nnz }, (_, i) => (i * 2654435761) >>> 0);
    const src = gpu.upload([nnz], counts, "u32");
    const dense = gpu.tensor([rows, cols], "u32");
    sparseScatter(gpu, { w, src, dst: dense });
    const host = await gpu.read(dense);
    const want = new Uint32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let p = csr.rowPtr[r]; p < csr.rowPtr[r + 1]; p++) {
        want[r * cols + csr.colIdx[p]] = counts[p];
      }
    }
    if (host.some((v, i) => v !== want[i])) throw new Error("u32 scatter differs");
    const back = gpu.tensor([nnz], "u32");
    sparseGather(gpu, { w, src: dense, dst: back });
    const b = await gpu.read(back);
    if (b.some((v, i) => v !== counts[i])) throw new Error("u32 gather differs");
  },
});
