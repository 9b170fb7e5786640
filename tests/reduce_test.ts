import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { clipCoefficient, reduce, type ReduceOp } from "../kernels/dense/reduce.ts";
import { clipCoefficientRef, reduceRef } from "../kernels/dense/reduce_ref.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { ShapeError, type Tensor } from "../kernels/runtime/tensor.ts";
import { assertClose, forEachVariant, GPU_TEST, testGpu, uniform } from "./_util.ts";

/** Uploads `data`; empty data gets an unwritten tensor (a zero-byte queue write panics Deno). */
function put(gpu: Gpu, data: Float32Array): Tensor {
  return data.length ? gpu.upload([data.length], data) : gpu.tensor([0]);
}

const OPS: readonly ReduceOp[] = ["sum", "sumsq", "max"];
const SIZES = [0, 1, 3, 17, 1000, 1025, 4097, 100_003, 1_000_003];
const U = 2 ** -24; // f32 unit roundoff

/**
 * Tolerance of a blocked f32 sum. Each addition in a chain of length L rounds by at most
 * u·|running value|; running values are ~√k·rms for random signs and at most ~|total| for
 * same-sign terms, and the independent roundings add like a random walk, giving about
 * u·√L·(√n·rms + |S|). L, the longest addition chain of either variant, is ≤ min(n, 4096) for
 * these sizes (one thread sums ≤ 1024 alone; otherwise ≤ 4096 partials of ≤ 4096 terms). 8x
 * headroom. `max` is exact. Indexing bugs are caught exactly by the integer-data test below.
 */
function reduceTol(op: ReduceOp, x: Float32Array): number {
  if (op === "max") return 0;
  const n = x.length;
  const mapped = op === "sumsq" ? x.map((v) => v * v) : x;
  const rms = Math.sqrt(reduceRef("sumsq", mapped) / Math.max(1, n));
  const L = Math.min(Math.max(n, 1), 4096);
  return 8 * U * Math.sqrt(L) * (Math.sqrt(n) * rms + Math.abs(reduceRef("sum", mapped)));
}

Deno.test({
  name: "reduce: sum/sumsq/max of random data vs f64 reference, sizes 0..1e6+, both variants",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      for (const n of SIZES) {
        const data = uniform(n, 1000 + n, -1, 1);
        // A view 5 elements into its buffer, so a kernel that ignores off_x reads wrong data.
        const padded = new Float32Array(n + 5).fill(1e3);
        padded.set(data, 5);
        const base = gpu.upload([n + 5], padded);
        const x = base.view(5, [n]);
        const out = gpu.zeros([4]);
        OPS.forEach((op, k) => reduce(gpu, { op, x, out, outIndex: k + 1 }));
        const got = await gpu.read(out);
        assertEquals(got[0], 0, `${variant} n=${n}: out[0] must stay untouched`);
        OPS.forEach((op, k) => {
          const want = reduceRef(op, data);
          if (op === "max") assertEquals(got[k + 1], want, `${variant} max n=${n}`);
          else {
            const tol = reduceTol(op, data);
            assertClose([got[k + 1]], [want], { atol: tol, rtol: 0 }, `${variant} ${op} n=${n}`);
          }
        });
        gpu.release(base);
        gpu.release(out);
      }
    });
  },
});

Deno.test({
  name: "reduce: exact results on integer data (every element counted once), empty tensor",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      for (const n of SIZES) {
        // Values in [-3, 3]: every partial sum and sum of squares stays an integer below 2^24,
        // so f32 is exact and a dropped or doubled element changes the result.
        const data = new Float32Array(n);
        for (let i = 0; i < n; i++) data[i] = ((i * 5) % 7) - 3;
        // All-negative data with one spike: max must not come from a 0 identity.
        const neg = data.map((v) => v - 10);
        if (n > 0) neg[Math.floor(n * 0.77)] = -1.5;
        const x = put(gpu, data);
        const xn = put(gpu, neg);
        const out = gpu.zeros([4]);
        reduce(gpu, { op: "sum", x, out });
        reduce(gpu, { op: "sumsq", x, out, outIndex: 1 });
        reduce(gpu, { op: "max", x, out, outIndex: 2 });
        reduce(gpu, { op: "max", x: xn, out, outIndex: 3 });
        const got = await gpu.read(out);
        const want = [
          reduceRef("sum", data),
          reduceRef("sumsq", data),
          reduceRef("max", data),
          reduceRef("max", neg),
        ];
        assertEquals([...got], want, `${variant} n=${n}`);
        if (n === 0) assertEquals([...got], [0, 0, -Infinity, -Infinity]);
        gpu.release(x);
        gpu.release(xn);
        gpu.release(out);
      }
    });
  },
});

Deno.test({
  name: "reduce: bit-identical results on repeated runs (deterministic order)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      for (const n of [1000, 100_003, 1_000_003]) {
        const x = gpu.upload([n], uniform(n, 77 + n, -1, 1));
        const runs: Uint32Array[] = [];
        for (let r = 0; r < 3; r++) {
          // Churn the pool so each run gets different scratch buffers.
          const junk = Array.from({ length: r }, () => gpu.tensor([4096]));
          const out = gpu.zeros([3]);
          OPS.forEach((op, k) => reduce(gpu, { op, x, out, outIndex: k }));
          runs.push(new Uint32Array((await gpu.read(out)).buffer));
          junk.forEach((t) => gpu.release(t));
          gpu.release(out);
        }
        assertEquals([...runs[1]], [...runs[0]], `${variant} n=${n} run 2`);
        assertEquals([...runs[2]], [...runs[0]], `${variant} n=${n} run 3`);
        gpu.release(x);
      }
    });
  },
});

Deno.test({
  name: "reduce + clipCoefficient: global gradient norm gathered on the GPU",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      const sizes = [17, 1000, 100_003, 3];
      const grads = sizes.map((n, i) => uniform(n, 500 + i, -0.1, 0.1));
      const k = sizes.length;
      // Slots 0..k-1: per-tensor sums of squares; slot k: their sum, reduced from a view of the
      // same buffer (exercises the shared-buffer path).
      const sq = gpu.zeros([k + 1]);
      grads.forEach((g, i) => {
        const t = gpu.upload([g.length], g);
        reduce(gpu, { op: "sumsq", x: t, out: sq, outIndex: i });
        gpu.release(t);
      });
      reduce(gpu, { op: "sum", x: sq.view(0, [k]), out: sq, outIndex: k });
      const coef = gpu.zeros([1]);
      const norm = gpu.zeros([1]);
      const maxNorm = 0.25;
      clipCoefficient(gpu, { sumsq: sq.view(0, [k]), maxNorm, out: coef, norm });
      const gotSq = await gpu.read(sq);
      const gotCoef = (await gpu.read(coef))[0];
      const gotNorm = (await gpu.read(norm))[0];

      const wantSq = grads.map((g) => reduceRef("sumsq", g));
      const ref = clipCoefficientRef(wantSq, maxNorm);
      // Same-sign sums of ≤ 1e5 terms: relative error ≲ 8·u·√4096 ≈ 3e-5 (see reduceTol).
      assertClose(gotSq.slice(0, k), wantSq, { atol: 0, rtol: 3e-5 }, `${variant} sumsq`);
      assertClose([gotSq[k]], [reduceRef("sum", wantSq)], { atol: 0, rtol: 3e-5 }, "sum");
      // sqrt halves the relative error; the division adds ~u.
      assertClose([gotNorm], [ref.norm], { atol: 0, rtol: 3e-5 }, `${variant} norm`);
      assertClose([gotCoef], [ref.coef], { atol: 0, rtol: 3e-5 }, `${variant} coef`);
      if (!(ref.coef < 0.5)) throw new Error(`test data should clip hard, coef ${ref.coef}`);
      [sq, coef, norm].forEach((t) => gpu.release(t));
    });
  },
});

Deno.test({
  name: "clipCoefficient: no clipping below maxNorm, empty input, f64 reference",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const cases: [number[], number][] = [
      [[], 1], // norm 0: coef = min(1, 1/1e-6) = 1
      [[0.04, 0.09], 1], // norm 0.3622: no clipping, exactly 1
      [[9, 16], 1], // norm 5: coef 1/(5 + 1e-6)
      [[1e4, 2e4, 3e4, 4e4, 5e4], 2.5],
      [[0.01], 0.1], // norm 0.1 = maxNorm: coef just below 1 because of the 1e-6
    ];
    for (const [sumsq, maxNorm] of cases) {
      const s = put(gpu, new Float32Array(sumsq));
      const coef = gpu.zeros([1]);
      const norm = gpu.zeros([1]);
      const coefOnly = gpu.zeros([1]);
      clipCoefficient(gpu, { sumsq: s, maxNorm, out: coef, norm });
      clipCoefficient(gpu, { sumsq: s, maxNorm, out: coefOnly });
      const ref = clipCoefficientRef(new Float32Array(sumsq), maxNorm);
      const c = (await gpu.read(coef))[0];
      // A handful of f32 operations: a few ulps.
      assertClose([c], [ref.coef], { atol: 0, rtol: 1e-6 }, `coef ${sumsq}`);
      assertClose([(await gpu.read(norm))[0]], [ref.norm], { atol: 0, rtol: 1e-6 }, "norm");
      assertEquals((await gpu.read(coefOnly))[0], c, "without norm output");
      if (ref.coef === 1) assertEquals(c, 1, "no clipping must give exactly 1");
      [s, coef, norm, coefOnly].forEach((t) => gpu.release(t));
    }
  },
});

Deno.test({
  name: "reduce/clipCoefficient: bad shapes and dtypes throw ShapeError before dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const x = gpu.zeros([10]);
    const out = gpu.zeros([2]);
    const xu = gpu.zeros([10], "u32");
    const outi = gpu.zeros([2], "i32");
    const before = gpu.dispatchCount;
    assertThrows(() => reduce(gpu, { op: "sum", x: xu, out }), ShapeError);
    assertThrows(() => reduce(gpu, { op: "max", x, out: outi }), ShapeError);
    assertThrows(() => reduce(gpu, { op: "sum", x, out, outIndex: 2 }), ShapeError);
    assertThrows(() => reduce(gpu, { op: "sum", x, out, outIndex: -1 }), ShapeError);
    assertThrows(() => reduce(gpu, { op: "sum", x, out, outIndex: 0.5 }), ShapeError);
    assertThrows(() => reduce(gpu, { op: "sum", x, out: x, outIndex: 3 }), ShapeError);
    assertThrows(
      () => reduce(gpu, { op: "mean" as ReduceOp, x, out }),
      RangeError,
    );
    const one = gpu.zeros([1]);
    assertThrows(() => clipCoefficient(gpu, { sumsq: xu, maxNorm: 1, out: one }), ShapeError);
    assertThrows(() => clipCoefficient(gpu, { sumsq: x, maxNorm: 1, out }), ShapeError);
    assertThrows(
      () => clipCoefficient(gpu, { sumsq: x, maxNorm: 1, out: one, norm: outi.view(0, [1]) }),
      ShapeError,
    );
    assertThrows(
      () => clipCoefficient(gpu, { sumsq: x, maxNorm: 1, out: x.view(4, [1]) }),
      ShapeError,
    );
    assertThrows(() => clipCoefficient(gpu, { sumsq: x, maxNorm: 0, out: one }), RangeError);
    assertEquals(gpu.dispatchCount, before, "nothing may be recorded");
    [x, out, xu, outi, one].forEach((t) => gpu.release(t));
  },
});
