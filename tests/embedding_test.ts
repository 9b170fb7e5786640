import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import {
  buildEmbeddingIndex,
  embeddingBackward,
  embeddingForward,
  releaseEmbeddingIndex,
  uploadEmbeddingIndex,
} from "../kernels/cells/embedding.ts";
import { embeddingBackwardRef, embeddingForwardRef } from "../kernels/cells/embedding_ref.ts";
import { ShapeError, type Tensor } from "../kernels/runtime/tensor.ts";
import { assertClose, GPU_TEST, rng, testGpu, uniform } from "./_util.ts";

const NS = [1, 7, 700];
const VS = [1, 10, 10000];
const DS = [1, 3, 200];

/** `n` ids in `[0, range)`; a small range forces many repeats. */
function randomIds(n: number, range: number, seed: number): Uint32Array {
  const r = rng(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(r() * range));
}

/** Naive grouping, the oracle for the counting sort. */
function naiveIndex(ids: Uint32Array) {
  const uniqueIds = [...new Set(ids)].sort((a, b) => a - b);
  const positions: number[] = [];
  const starts = [0];
  for (const u of uniqueIds) {
    ids.forEach((id, p) => id === u && positions.push(p));
    starts.push(positions.length);
  }
  return { uniqueIds, starts, positions };
}

Deno.test("buildEmbeddingIndex groups positions by ascending id, stably", () => {
  // Both counting paths: dense (V small next to N) and sparse (V large, few ids).
  for (
    const [n, v, range] of [[0, 5, 5], [1, 1, 1], [9, 4, 4], [700, 10, 10], [7, 1e6, 1e6], [
      700,
      1e7,
      30,
    ], [50, 1e7, 1e7]]
  ) {
    const ids = randomIds(n, range, n + v);
    const got = buildEmbeddingIndex(ids, v);
    const want = naiveIndex(ids);
    assertEquals([...got.uniqueIds], want.uniqueIds, `uniqueIds n=${n} v=${v}`);
    assertEquals([...got.starts], want.starts, `starts n=${n} v=${v}`);
    assertEquals([...got.positions], want.positions, `positions n=${n} v=${v}`);
    assertEquals(got.vocabSize, v);
  }
});

Deno.test("buildEmbeddingIndex rejects an id >= vocabSize naming position and id", () => {
  const ids = new Uint32Array([3, 9, 10, 12]);
  assertThrows(() => buildEmbeddingIndex(ids, 10), (e: Error) => {
    return e instanceof RangeError && /ids\[2\] = 10\b/.test(e.message) &&
      /vocabulary size 10\b/.test(e.message);
  });
  assertThrows(() => buildEmbeddingIndex(new Uint32Array([0]), 0), RangeError);
  assertThrows(() => buildEmbeddingIndex(new Uint32Array([0]), 2.5), RangeError);
});

Deno.test({
  name: "embeddingForward gathers rows like the CPU reference",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    let seed = 1;
    for (const n of NS) {
      for (const v of VS) {
        for (const d of DS) {
          const ids = randomIds(n, v, seed++);
          const table = uniform(v * d, seed++);
          const tIds = gpu.upload([n], ids, "u32");
          const tTable = gpu.upload([v, d], table);
          const tOut = gpu.tensor([n, d]);
          embeddingForward(gpu, { ids: tIds, table: tTable, out: tOut });
          // A gather copies values, so the result must be exact.
          assertClose(
            await gpu.read(tOut),
            embeddingForwardRef(ids, table, v, d),
            { atol: 0, rtol: 0 },
            `forward N=${n} V=${v} D=${d}`,
          );
          for (const t of [tIds, tTable, tOut]) gpu.release(t);
        }
      }
    }
  },
});

Deno.test({
  name: "embeddingForward clamps out-of-range ids to the last row and honours view offsets",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const [v, d] = [5, 3];
    const ids = new Uint32Array([0, 4, 5, 0xffffffff, 2]);
    const table = uniform(v * d, 7);
    // Views at nonzero offsets: every index must add its binding's offset.
    const idsBase = gpu.upload([ids.length + 3], [9, 9, 9, ...ids], "u32");
    const tableBase = gpu.upload([v * d + 2], [0, 0, ...table]);
    const outBase = gpu.zeros([ids.length * d + 1]);
    const out = outBase.view(1, [ids.length, d]);
    embeddingForward(gpu, {
      ids: idsBase.view(3, [ids.length]),
      table: tableBase.view(2, [v, d]),
      out,
    });
    const want = embeddingForwardRef(ids, table, v, d);
    assertClose(await gpu.read(out), want, { atol: 0, rtol: 0 }, "clamped gather");
    assertEquals((await gpu.read(outBase))[0], 0, "write before the out view");
    assertEquals([...want.subarray(2 * d, 4 * d)], [
      ...table.subarray(4 * d),
      ...table.subarray(4 * d),
    ]);
  },
});

Deno.test({
  name: "embeddingBackward accumulates grouped sums like the CPU reference",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    let seed = 100;
    for (const n of NS) {
      for (const v of VS) {
        for (const d of DS) {
          // Small range: many repeats per id; full range: mostly distinct ids.
          for (const range of [Math.min(v, 4), v]) {
            const ids = randomIds(n, range, seed++);
            const dOut = uniform(n * d, seed++);
            const dTable0 = uniform(v * d, seed++);
            const index = uploadEmbeddingIndex(gpu, buildEmbeddingIndex(ids, v));
            const tdOut = gpu.upload([n, d], dOut);
            const tdTable = gpu.upload([v, d], dTable0);
            embeddingBackward(gpu, { index, dOut: tdOut, dTable: tdTable });
            // WGSL f32 addition is correctly rounded and the reference adds in the kernel's
            // order, so results must match bit for bit; the 1e-30 only forgives a backend that
            // flushes denormals.
            assertClose(
              await gpu.read(tdTable),
              embeddingBackwardRef(ids, dOut, dTable0, d),
              { atol: 1e-30, rtol: 0 },
              `backward N=${n} V=${v} D=${d} range=${range}`,
            );
            releaseEmbeddingIndex(gpu, index);
            gpu.release(tdOut);
            gpu.release(tdTable);
          }
        }
      }
    }
  },
});

Deno.test({
  name: "embeddingBackward is bit-identical across runs",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const [n, v, d] = [700, 10, 200];
    const ids = randomIds(n, 3, 5);
    // Mixed magnitudes make the sum order-sensitive, so a nondeterministic order would show.
    const dOut = uniform(n * d, 6).map((x, i) => x * 10 ** ((i % 7) - 3));
    const index = uploadEmbeddingIndex(gpu, buildEmbeddingIndex(ids, v));
    const tdOut = gpu.upload([n, d], dOut);
    const runs: Uint32Array[] = [];
    for (let r = 0; r < 2; r++) {
      const dTable = gpu.zeros([v, d]);
      embeddingBackward(gpu, { index, dOut: tdOut, dTable });
      const got = await gpu.read(dTable);
      runs.push(new Uint32Array(got.buffer));
      gpu.release(dTable);
    }
    assertEquals(runs[0], runs[1]);
    // And the order is the documented one (ascending positions), matched bit for bit.
    assertClose(
      new Float32Array(runs[0].buffer),
      embeddingBackwardRef(ids, dOut, new Float32Array(v * d), d),
      { atol: 1e-30, rtol: 0 },
      "mixed magnitudes",
    );
    // Sanity: the order matters for this data (else the check above could not fail).
    const reversed = new Float32Array(d);
    const forward = new Float32Array(d);
    const group = [...ids.keys()].filter((p) => ids[p] === ids[0]);
    for (const p of group) {
      for (let c = 0; c < d; c++) forward[c] = Math.fround(forward[c] + dOut[p * d + c]);
    }
    for (const p of group.reverse()) {
      for (let c = 0; c < d; c++) reversed[c] = Math.fround(reversed[c] + dOut[p * d + c]);
    }
    assertEquals(forward.some((x, c) => x !== reversed[c]), true);
    releaseEmbeddingIndex(gpu, index);
    gpu.release(tdOut);
  },
});

Deno.test({
  name: "embeddingBackward with an empty batch leaves dTable unchanged",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const index = uploadEmbeddingIndex(gpu, buildEmbeddingIndex(new Uint32Array(0), 4));
    const dTable0 = uniform(8, 3);
    const dTable = gpu.upload([4, 2], dTable0);
    embeddingBackward(gpu, { index, dOut: gpu.tensor([0, 2]), dTable });
    assertClose(await gpu.read(dTable), dTable0, { atol: 0, rtol: 0 }, "empty batch");
  },
});

Deno.test({
  name: "embeddingBackward refuses groups past llvmpipe's loop budget on software adapters",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // 70000 copies of one id: one thread would loop 70000 times, past llvmpipe's 65535.
    const n = 70000;
    const ids = new Uint32Array(n).fill(1);
    ids[5] = 0;
    const index = uploadEmbeddingIndex(gpu, buildEmbeddingIndex(ids, 3));
    assertEquals(index.maxGroupSize, n - 1);
    const dOut = gpu.upload([n, 1], new Float32Array(n).fill(1));
    const dTable = gpu.zeros([3, 1]);
    const call = () => embeddingBackward(gpu, { index, dOut, dTable });
    if (gpu.report.isFallback) {
      assertThrows(call, /occurs 69999 times/);
    } else {
      call();
      assertEquals([...await gpu.read(dTable)], [1, n - 1, 0]);
    }
    releaseEmbeddingIndex(gpu, index);
  },
});

Deno.test({
  name: "embedding launchers reject bad shapes and dtypes before dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const ids = gpu.upload([4], [0, 1, 2, 3], "u32");
    const table = gpu.zeros([5, 3]);
    const out = gpu.tensor([4, 3]);
    const before = gpu.dispatchCount;
    const fwd = (a: Partial<Parameters<typeof embeddingForward>[1]>) => () =>
      embeddingForward(gpu, { ids, table, out, ...a });
    assertThrows(fwd({ ids: gpu.tensor([4], "f32") }), ShapeError);
    assertThrows(fwd({ ids: gpu.tensor([4, 1], "u32") }), ShapeError);
    assertThrows(fwd({ table: gpu.tensor([15]) }), ShapeError);
    assertThrows(fwd({ table: gpu.tensor([0, 3]), out: gpu.tensor([4, 3]) }), ShapeError);
    assertThrows(fwd({ table: gpu.tensor([5, 3], "u32") }), ShapeError);
    assertThrows(fwd({ out: gpu.tensor([4, 2]) }), /out: expected shape \[4, 3\], got \[4, 2\]/);
    assertThrows(fwd({ out: gpu.tensor([3, 3]) }), ShapeError);
    assertThrows(fwd({ out: table.reshape([5, 3]).view(0, [4, 3]) }), ShapeError);

    const index = uploadEmbeddingIndex(gpu, buildEmbeddingIndex(new Uint32Array([1, 1, 4, 0]), 5));
    const dOut = gpu.zeros([4, 3]);
    const dTable = gpu.zeros([5, 3]);
    const bwd = (a: Partial<Parameters<typeof embeddingBackward>[1]>) => () =>
      embeddingBackward(gpu, { index, dOut, dTable, ...a });
    assertThrows(bwd({ dOut: gpu.tensor([3, 3]) }), /dOut: expected shape \[4, 3\], got \[3, 3\]/);
    assertThrows(bwd({ dOut: gpu.tensor([4, 2]) }), ShapeError);
    assertThrows(bwd({ dOut: gpu.tensor([4, 3], "u32") }), ShapeError);
    assertThrows(bwd({ dTable: gpu.tensor([6, 3]) }), /dTable: expected shape \[5, 3\]/);
    assertThrows(bwd({ dTable: gpu.tensor([15]) }), ShapeError);
    assertThrows(bwd({ index: { ...index, starts: gpu.tensor([3], "u32") } }), ShapeError);
    assertThrows(
      bwd({ index: { ...index, positions: gpu.tensor([4], "i32") as unknown as Tensor<"u32"> } }),
      ShapeError,
    );
    const shared = gpu.zeros([27]);
    assertThrows(
      bwd({ dOut: shared.view(0, [4, 3]), dTable: shared.view(12, [5, 3]) }),
      /must not share a GPU buffer/,
    );
    assertThrows(
      () =>
        uploadEmbeddingIndex(gpu, {
          uniqueIds: new Uint32Array([1]),
          starts: new Uint32Array([0, 3]),
          positions: new Uint32Array(2),
          vocabSize: 2,
        }),
      ShapeError,
    );
    assertEquals(gpu.dispatchCount, before, "nothing was dispatched");
  },
});
