import { equal, ok, throws } from "node:assert/strict";
import { assertClose, GPU_TEST, testGpu, type Tolerance, uniform } from "./_util.ts";
import { add, axpy, mul, scale, unary, type UnaryOp } from "../kernels/dense/elementwise.ts";
import { addRef, axpyRef, mulRef, scaleRef, unaryRef } from "../kernels/dense/elementwise_ref.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";

const SIZES = [1, 3, 17, 127, 1000, 70001];
const ULP1 = 2 ** -23; // f32 spacing at 1

/**
 * Tolerances for inputs in [-10, 10]. WGSL's accuracy table allows `exp` 3 + 2|x| ulp, i.e.
 * 23 ulp = 2.7e-6 relative at |x| = 10; plus 1 ulp for the reference's own rounding. sigmoid
 * divides by 1 + e (2.5 ulp) and damps exp's relative error by e/(1+e)^2 <= 1/4, and tanh is
 * specified "as (exp(2x)-1)/(exp(2x)+1)", whose cancellation near 0 costs absolute, not
 * relative, accuracy: an absolute 4 ulp(1) = 4.8e-7 floor covers both. Indexing bugs give
 * O(1) errors, far above these.
 */
const UNARY_TOL: Record<UnaryOp, Tolerance> = {
  sigmoid: { atol: 4 * ULP1, rtol: 27 * ULP1 },
  tanh: { atol: 4 * ULP1, rtol: 27 * ULP1 },
  exp: { atol: 0, rtol: 24 * ULP1 },
  relu: { atol: 0, rtol: 0 }, // exact
  neg: { atol: 0, rtol: 0 }, // exact
  abs: { atol: 0, rtol: 0 }, // exact
};

/** Exact equality of bit patterns (so -0 vs +0 or 1 ulp fails). */
function assertBitsEqual(actual: Float32Array, expected: Float32Array, label: string): void {
  equal(actual.length, expected.length, `${label}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) {
      throw new Error(`${label}: index ${i}: got ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

Deno.test({
  name: "elementwise unary: every op vs reference, odd sizes, in place through a view",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    for (const op of ["sigmoid", "tanh", "relu", "neg", "exp", "abs"] as const) {
      for (const n of SIZES) {
        const xh = uniform(n, 100 + n, -10, 10);
        const x = gpu.upload([n], xh);
        const y = gpu.tensor([n]);
        unary(gpu, { op, x, y });
        const want = unaryRef(op, xh);
        assertClose(await gpu.read(y), want, UNARY_TOL[op], `${op} n=${n}`);
        // in place, in a view at an odd offset, with sentinels on both sides
        const base = gpu.upload([n + 2], new Float32Array([5, ...xh, 5]));
        const v = base.view(1, [n]);
        unary(gpu, { op, x: v, y: v });
        const got = await gpu.read(base);
        assertClose(got.subarray(1, n + 1), want, UNARY_TOL[op], `${op} in place n=${n}`);
        ok(got[0] === 5 && got[n + 1] === 5, `${op} n=${n}: wrote outside the view`);
        for (const t of [x, y, base]) gpu.release(t);
      }
    }
  },
});

Deno.test({
  name: "elementwise unary: sigmoid and tanh stay finite and in range for huge inputs",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const xh = new Float32Array([
      100,
      -100,
      88.8,
      -88.8,
      1e4,
      -1e4,
      3.4e38,
      -3.4e38,
      Infinity,
      -Infinity,
      15,
      -15,
      44.5,
      -44.5,
    ]);
    const x = gpu.upload([xh.length], xh);
    const y = gpu.tensor([xh.length]);
    unary(gpu, { op: "sigmoid", x, y });
    const s = await gpu.read(y);
    unary(gpu, { op: "tanh", x, y });
    const t = await gpu.read(y);
    for (let i = 0; i < xh.length; i++) {
      const what = `x=${xh[i]}`;
      ok(Number.isFinite(s[i]) && s[i] >= 0 && s[i] <= 1, `sigmoid ${what} = ${s[i]}`);
      ok(Number.isFinite(t[i]) && Math.abs(t[i]) <= 1, `tanh ${what} = ${t[i]}`);
      // at |x| >= 15, f32 tanh is exactly ±1 and sigmoid is within 3.1e-7 of 1 (or of 0)
      if (xh[i] > 0) ok(s[i] >= 1 - 4e-7 && t[i] === 1, `${what}: sigmoid ${s[i]}, tanh ${t[i]}`);
      else ok(s[i] < 4e-7 && t[i] === -1, `${what}: sigmoid ${s[i]}, tanh ${t[i]}`);
      // from x = 17 on, 1 - sigmoid(x) < 2^-25 and rounds to exactly 1
      if (xh[i] >= 17) equal(s[i], 1, `sigmoid ${what}`);
    }
    gpu.release(x);
    gpu.release(y);
  },
});

Deno.test({
  name: "elementwise add/mul/scale bit-exact, axpy within 1 rounding, in place variants",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const alpha = -0.7310585;
    for (const n of SIZES) {
      const ah = uniform(n, 200 + n), bh = uniform(n, 300 + n);
      const a = gpu.upload([n], ah), b = gpu.upload([n], bh), out = gpu.tensor([n]);
      // + and * are correctly rounded in WGSL, like the f64-then-f32 reference: bit-exact.
      add(gpu, { a, b, out });
      assertBitsEqual(await gpu.read(out), addRef(ah, bh), `add n=${n}`);
      mul(gpu, { a, b, out });
      assertBitsEqual(await gpu.read(out), mulRef(ah, bh), `mul n=${n}`);
      scale(gpu, { x: a, alpha, out });
      assertBitsEqual(await gpu.read(out), scaleRef(ah, alpha), `scale n=${n}`);
      // axpy may be fused into an fma (one rounding instead of two): the results differ by at
      // most half an ulp of alpha*x (< 2^-24 for |alpha*x| < 1) plus one ulp of the result
      // (2^-23 for |result| < 2): 3e-7 absolute.
      const axpyTol = { atol: 3 * 2 ** -24 + 1e-9, rtol: 0 };
      const y = gpu.upload([n], bh);
      axpy(gpu, { alpha, x: a, y });
      assertClose(await gpu.read(y), axpyRef(alpha, ah, bh), axpyTol, `axpy n=${n}`);

      // in place: out = a, out = b, x = y
      const a2 = gpu.upload([n], ah), b2 = gpu.upload([n], bh);
      add(gpu, { a: a2, b, out: a2 });
      assertBitsEqual(await gpu.read(a2), addRef(ah, bh), `add out=a n=${n}`);
      mul(gpu, { a, b: b2, out: b2 });
      assertBitsEqual(await gpu.read(b2), mulRef(ah, bh), `mul out=b n=${n}`);
      scale(gpu, { x: a2, alpha: 2, out: a2 });
      assertBitsEqual(await gpu.read(a2), scaleRef(addRef(ah, bh), 2), `scale in place n=${n}`);
      const y2 = gpu.upload([n], ah);
      axpy(gpu, { alpha, x: y2, y: y2 });
      assertClose(await gpu.read(y2), axpyRef(alpha, ah, ah), axpyTol, `axpy x=y n=${n}`);
      for (const t of [a, b, out, y, a2, b2, y2]) gpu.release(t);
    }
  },
});

Deno.test({
  name: "elementwise: operands at different view offsets of one buffer, other shapes",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // a, b and out are disjoint views of one buffer ([3, 5, 7] as [35] views), so offsets and
    // the read/read_write aliasing path both matter
    const n = 35;
    const all = uniform(3 * n + 1, 7);
    const buf = gpu.upload([3 * n + 1], all);
    const a = buf.view(1, [5, 7]), b = buf.view(1 + n, [35]), out = buf.view(1 + 2 * n, [7, 5]);
    add(gpu, { a, b, out });
    const got = await gpu.read(buf);
    const want = addRef(all.subarray(1, 1 + n), all.subarray(1 + n, 1 + 2 * n));
    assertBitsEqual(got.subarray(1 + 2 * n), want, "add across views");
    equal(got[0], all[0], "element before the views must be untouched");
    gpu.release(buf);
  },
});

Deno.test({
  name: "elementwise: 1-D grid folding past 65535 workgroups",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // 65535 * 256 + 300 elements needs a second grid dimension
    // (filled on the GPU and checked by a loop: uploading random data this size costs seconds)
    const n = 65535 * 256 + 300;
    const x = gpu.tensor([n]);
    gpu.fill(x, 1.5);
    unary(gpu, { op: "neg", x, y: x });
    const got = await gpu.read(x);
    for (let i = 0; i < n; i++) {
      if (got[i] !== -1.5) throw new Error(`neg, folded grid: index ${i}: got ${got[i]}`);
    }
    gpu.release(x);
  },
});

Deno.test({
  name: "elementwise: bad inputs throw before dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const a = gpu.tensor([4, 3]), b = gpu.tensor([12]), c = gpu.tensor([11]);
    const u = gpu.tensor([12], "u32");
    const big = gpu.tensor([20]);
    const s1 = big.view(0, [12]), s2 = big.view(1, [12]);
    const before = gpu.dispatchCount;
    throws(() => add(gpu, { a, b: c, out: b }), ShapeError);
    throws(() => add(gpu, { a, b, out: c }), ShapeError);
    throws(() => mul(gpu, { a: u, b, out: a }), ShapeError);
    throws(() => unary(gpu, { op: "tanh", x: a, y: c }), ShapeError);
    throws(() => unary(gpu, { op: "relu", x: u, y: a }), ShapeError);
    throws(() => unary(gpu, { op: "gelu" as UnaryOp, x: a, y: b }), RangeError);
    throws(() => scale(gpu, { x: a, alpha: 1, out: c }), ShapeError);
    throws(() => scale(gpu, { x: a, alpha: NaN, out: b }), RangeError);
    throws(() => axpy(gpu, { alpha: 1, x: c, y: a }), ShapeError);
    throws(() => axpy(gpu, { alpha: Infinity, x: a, y: b }), RangeError);
    // shifted overlaps would read elements another thread already overwrote
    throws(() => unary(gpu, { op: "neg", x: s1, y: s2 }), ShapeError);
    throws(() => add(gpu, { a: s2, b, out: s1 }), ShapeError);
    throws(() => axpy(gpu, { alpha: 1, x: s1, y: s2 }), ShapeError);
    equal(gpu.dispatchCount, before, "nothing may be dispatched");
    for (const t of [a, b, c, u, big]) gpu.release(t);
  },
});
