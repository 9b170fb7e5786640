import { deepStrictEqual, equal, notDeepStrictEqual, ok, throws } from "node:assert/strict";
import { GPU_TEST, rng, testGpu, uniform } from "./_util.ts";
import {
  philox4x32,
  PHILOX_M0,
  PHILOX_M1,
  philoxBits,
  uniformRef,
} from "../kernels/random/philox_ref.ts";
import { philoxBlocks } from "../kernels/random/philox.ts";
import {
  dropoutBackward,
  dropoutForward,
  dropoutScale,
  sharedMaskDropout,
} from "../kernels/cells/dropout.ts";
import { randomBits, randomUniform } from "../kernels/random/random.ts";
import { dropoutMaskRef, dropoutRef, sharedMaskDropoutRef } from "../kernels/cells/dropout_ref.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";

/** Published Random123 known answers for Philox4x32-10 (kat_vectors): counter, key, output. */
const KATS: [number[], number[], number[]][] = [
  [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
  [
    [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    [0xffffffff, 0xffffffff],
    [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
  ],
  [
    [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    [0xa4093822, 0x299f31d0],
    [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  ],
];

const hex = (a: ArrayLike<number>) =>
  Array.from(a, (v) => (v >>> 0).toString(16).padStart(8, "0")).join(" ");

/** Exact equality of the bit patterns (so -0 vs 0 or a 1-ulp difference fails). */
function assertBitsEqual(
  actual: Float32Array | Uint32Array,
  expected: Float32Array | Uint32Array,
  label: string,
): void {
  equal(actual.length, expected.length, `${label}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) {
      throw new Error(
        `${label}: index ${i}: got ${actual[i]} (0x${hex([a[i]])}), ` +
          `expected ${expected[i]} (0x${hex([e[i]])})`,
      );
    }
  }
}

/** Straightforward BigInt Philox4x32-10, independent of the 16-bit split in the reference. */
function philoxBigInt(ctr: number[], key: number[]): number[] {
  const M = 0xffffffffn;
  let c = ctr.map(BigInt);
  let k = key.map(BigInt);
  for (let r = 0; r < 10; r++) {
    const p0 = BigInt(PHILOX_M0) * c[0], p1 = BigInt(PHILOX_M1) * c[2];
    c = [(p1 >> 32n) ^ c[1] ^ k[0], p1 & M, (p0 >> 32n) ^ c[3] ^ k[1], p0 & M];
    k = [(k[0] + 0x9E3779B9n) & M, (k[1] + 0xBB67AE85n) & M];
  }
  return c.map(Number);
}

Deno.test("philox ref: Random123 known answers", () => {
  for (const [ctr, key, want] of KATS) {
    equal(hex(philox4x32(ctr, key)), hex(want), `ctr ${hex(ctr)} key ${hex(key)}`);
  }
});

Deno.test("philox ref: 16-bit-split mulhi agrees with a BigInt Philox on random blocks", () => {
  const r = rng(11);
  const word = () => Math.floor(r() * 4294967296) >>> 0;
  // extreme words exercise every carry of the split multiply
  const edge = [0, 1, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
  for (let t = 0; t < 2000; t++) {
    const pick = () => t % 4 === 0 ? edge[Math.floor(r() * edge.length)] : word();
    const ctr = [pick(), pick(), pick(), pick()], key = [pick(), pick()];
    deepStrictEqual(Array.from(philox4x32(ctr, key)), philoxBigInt(ctr, key), hex(ctr));
  }
});

Deno.test({
  name: "philox GPU: Random123 known answers and random blocks equal the reference",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const r = rng(12);
    const word = () => Math.floor(r() * 4294967296) >>> 0;
    const n = KATS.length + 1000;
    const ctr = new Uint32Array(4 * n), key = new Uint32Array(2 * n);
    KATS.forEach(([c, k], b) => {
      ctr.set(c, 4 * b);
      key.set(k, 2 * b);
    });
    for (let i = 4 * KATS.length; i < ctr.length; i++) ctr[i] = word();
    for (let i = 2 * KATS.length; i < key.length; i++) key[i] = word();
    const out = gpu.tensor([n, 4], "u32");
    philoxBlocks(gpu, {
      ctr: gpu.upload([n, 4], ctr, "u32"),
      key: gpu.upload([n, 2], key, "u32"),
      out,
    });
    const got = await gpu.read(out);
    KATS.forEach(([c, k, want], b) => {
      equal(hex(got.subarray(4 * b, 4 * b + 4)), hex(want), `GPU KAT ctr ${hex(c)} key ${hex(k)}`);
    });
    for (let b = KATS.length; b < n; b++) {
      const want = philox4x32(ctr.subarray(4 * b, 4 * b + 4), key.subarray(2 * b, 2 * b + 2));
      equal(hex(got.subarray(4 * b, 4 * b + 4)), hex(want), `block ${b}`);
    }
  },
});

Deno.test("philox ref: element scheme is word i%4 of counter (i/4, offset, 0, 0), key (seed, 0)", () => {
  const bits = philoxBits(9, 5, 77);
  const b0 = philox4x32([0, 77, 0, 0], [5, 0]), b2 = philox4x32([2, 77, 0, 0], [5, 0]);
  deepStrictEqual(Array.from(bits.subarray(0, 4)), Array.from(b0));
  equal(bits[8], b2[0]);
});

Deno.test({
  name: "randomBits/randomUniform GPU: bit-exact vs reference, odd sizes, through views",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    for (const n of [1, 3, 4, 17, 127, 1001, 70001]) {
      for (const [seed, offset] of [[0, 0], [12345, 7], [0xffffffff, 0xfffffffe]]) {
        const what = `n=${n} seed=${seed} offset=${offset}`;
        // an odd view offset proves the stream depends on the logical index only,
        // and the sentinels around the view prove nothing outside it is written
        const base = gpu.upload([n + 6], new Float32Array(n + 6).fill(-7));
        const u = base.view(5, [n]);
        randomUniform(gpu, { out: u, seed, offset });
        const got = await gpu.read(base);
        assertBitsEqual(got.subarray(5, 5 + n), uniformRef(n, seed, offset), `uniform ${what}`);
        deepStrictEqual(Array.from(got.subarray(0, 5)), [-7, -7, -7, -7, -7], what);
        equal(got[5 + n], -7, what);

        const bits = gpu.tensor([n], "u32");
        randomBits(gpu, { out: bits, seed, offset });
        assertBitsEqual(await gpu.read(bits), philoxBits(n, seed, offset), `bits ${what}`);
        gpu.release(base);
        gpu.release(bits);
      }
    }
  },
});

Deno.test({
  name: "randomUniform GPU: same (seed, offset) repeats; other offset or seed differs",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const n = 4096;
    const draw = async (seed: number, offset: number) => {
      const t = gpu.tensor([n]);
      randomUniform(gpu, { out: t, seed, offset });
      const v = await gpu.read(t);
      gpu.release(t);
      return v;
    };
    const a = await draw(3, 10);
    assertBitsEqual(await draw(3, 10), a, "repeat");
    const agree = (x: Float32Array, y: Float32Array) => x.filter((v, i) => v === y[i]).length;
    // independent 24-bit uniforms coincide with probability 2^-24; 4096 draws → expect ~0
    ok(agree(a, await draw(3, 11)) < 5, "offset 11 should give a different stream");
    ok(agree(a, await draw(4, 10)) < 5, "seed 4 should give a different stream");
  },
});

Deno.test({
  name: "randomUniform GPU: n = 1e6 mean, variance and range",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const n = 1_000_000;
    const t = gpu.tensor([n]);
    randomUniform(gpu, { out: t, seed: 2024, offset: 1 });
    const u = await gpu.read(t);
    gpu.release(t);
    let sum = 0, sq = 0, lo = Infinity, hi = -Infinity;
    for (const v of u) {
      sum += v;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const mean = sum / n;
    for (const v of u) sq += (v - mean) ** 2;
    const variance = sq / (n - 1);
    ok(lo >= 0 && hi < 1, `range [${lo}, ${hi}]`);
    // sd of the mean: sqrt(1/12 / n) = 2.9e-4; the 24-bit grid shifts the true mean by only
    // 2^-25 = 3e-8
    const sdMean = Math.sqrt(1 / 12 / n);
    ok(Math.abs(mean - 0.5) <= 6 * sdMean, `mean ${mean}, allowed 0.5 ± ${6 * sdMean}`);
    // sd of the sample variance: sqrt((mu4 - sigma^4) / n) with mu4 = 1/80, sigma^4 = 1/144 for
    // U(0,1), i.e. sqrt(1/180/n) = 7.5e-5; 6 sd = 4.5e-4 (the grid changes 1/12 by 2^-48/12).
    const sdVar = Math.sqrt((1 / 80 - 1 / 144) / n);
    ok(
      Math.abs(variance - 1 / 12) <= 6 * sdVar,
      `variance ${variance}, allowed 1/12 ± ${6 * sdVar}`,
    );
  },
});

Deno.test({
  name: "dropout GPU: forward and backward bit-exact vs reference, in place, p = 0 identity",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    for (const n of [1, 3, 17, 127, 1000, 4099]) {
      for (const p of [0, 0.1, 0.5, 0.65, 0.999]) {
        const seed = 1000 + n, offset = 3;
        const what = `n=${n} p=${p}`;
        const xh = uniform(n, n, -3, 3);
        const x = gpu.upload([n], xh);
        const y = gpu.tensor([n]);
        dropoutForward(gpu, { x, y, p, seed, offset });
        const yh = await gpu.read(y);
        assertBitsEqual(yh, dropoutRef(xh, p, seed, offset), `forward ${what}`);
        if (p === 0) assertBitsEqual(yh, xh, `identity ${what}`);

        const dyh = uniform(n, n + 1, -2, 2);
        const dy = gpu.upload([n], dyh);
        const dx = gpu.tensor([n]);
        dropoutBackward(gpu, { dy, dx, p, seed, offset });
        assertBitsEqual(await gpu.read(dx), dropoutRef(dyh, p, seed, offset), `backward ${what}`);

        // in place (y = x) through a view at an odd offset of a bigger buffer
        const base = gpu.upload([n + 2], new Float32Array([9, ...xh, 9]));
        const v = base.view(1, [n]);
        dropoutForward(gpu, { x: v, y: v, p, seed, offset });
        const inPlace = await gpu.read(base);
        assertBitsEqual(inPlace.subarray(1, n + 1), yh, `in place ${what}`);
        ok(inPlace[0] === 9 && inPlace[n + 1] === 9, `in place ${what}: wrote outside the view`);
        for (const t of [x, y, dy, dx, base]) gpu.release(t);
      }
    }
  },
});

Deno.test({
  name: "dropout GPU: backward mask equals forward mask",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const n = 100_003, p = 0.4, seed = 99, offset = 12;
    // nonzero inputs, so a zero output means "dropped" and nothing else
    const ones = gpu.upload([n], new Float32Array(n).fill(1));
    const y = gpu.tensor([n]), dx = gpu.tensor([n]);
    dropoutForward(gpu, { x: ones, y, p, seed, offset });
    dropoutBackward(gpu, { dy: ones, dx, p, seed, offset });
    const fwd = await gpu.read(y), bwd = await gpu.read(dx);
    const s = dropoutScale(p);
    const ref = dropoutMaskRef(n, p, seed, offset);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      equal(fwd[i] !== 0, bwd[i] !== 0, `mask differs at ${i}`);
      equal(fwd[i] !== 0, ref[i] === 1, `mask differs from reference at ${i}`);
      if (fwd[i] !== 0) equal(fwd[i], s);
      kept += ref[i];
    }
    ok(kept > 0 && kept < n, "mask must not be constant");
    // a different offset must give a different mask (at p = 0.4, masks of independent streams
    // agree on about 52% of elements; identical masks are impossible in practice)
    const other = dropoutMaskRef(n, p, seed, offset + 1);
    notDeepStrictEqual(other, ref);
    for (const t of [ones, y, dx]) gpu.release(t);
  },
});

/**
 * Whether the kept fraction of `n` draws is within 6 standard deviations of 1 − p, with
 * sd = sqrt(p(1 − p)/n).
 */
function keptFractionOk(kept: number, n: number, p: number): { ok: boolean; msg: string } {
  const sd = Math.sqrt(p * (1 - p) / n);
  const frac = kept / n;
  return {
    ok: Math.abs(frac - (1 - p)) <= 6 * sd,
    msg: `kept ${frac}, expected ${1 - p} ± ${6 * sd} (6 sd)`,
  };
}

Deno.test({
  name: "dropout GPU: kept fraction at n = 1e6 within 6 sd of 1 - p; a 0.005 bias is caught",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const n = 1_000_000;
    const x = gpu.upload([n], new Float32Array(n).fill(1));
    const y = gpu.tensor([n]);
    // At n = 1e6, 6 sd is 1.8e-3 (p = 0.1), 3.0e-3 (p = 0.5) and 2.9e-3 (p = 0.65). A sampler
    // whose keep probability is off by 0.005 is 16.7, 10 and 10.5 sd away from 1 - p, so it
    // passes only if noise pulls it back by more than 4 sd (probability < 4e-5): the check
    // below fails for it, as the biased-reference runs at the end of this test demonstrate.
    for (const [i, p] of [0.1, 0.5, 0.65].entries()) {
      dropoutForward(gpu, { x, y, p, seed: 31337, offset: i });
      const yh = await gpu.read(y);
      let kept = 0;
      for (const v of yh) if (v !== 0) kept++;
      const r = keptFractionOk(kept, n, p);
      ok(r.ok, `p=${p}: ${r.msg}`);
    }
    // The same check on a sampler biased by ±0.005 (the reference mask at p ± 0.005) must fail.
    for (const p of [0.1, 0.5, 0.65]) {
      for (const bias of [-0.005, 0.005]) {
        const mask = dropoutMaskRef(n, p + bias, 31337, 5);
        let kept = 0;
        for (const m of mask) kept += m;
        const r = keptFractionOk(kept, n, p);
        ok(!r.ok, `p=${p} bias ${bias}: the check should reject ${r.msg}`);
      }
    }
    gpu.release(x);
    gpu.release(y);
  },
});

Deno.test({
  name: "dropout/random: bad inputs throw before dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const x = gpu.tensor([2, 5]), y = gpu.tensor([10]), short = gpu.tensor([9]);
    const xu = gpu.tensor([10], "u32");
    const before = gpu.dispatchCount;
    const args = { x, y, p: 0.5, seed: 1, offset: 0 };
    for (const p of [1, -0.1, 1.5, NaN, Infinity]) {
      throws(() => dropoutForward(gpu, { ...args, p }), RangeError, `p=${p}`);
      throws(() => dropoutBackward(gpu, { dy: x, dx: y, p, seed: 1, offset: 0 }), RangeError);
    }
    throws(() => dropoutForward(gpu, { ...args, y: short }), ShapeError);
    throws(() => dropoutForward(gpu, { ...args, x: xu }), ShapeError);
    throws(
      () => dropoutBackward(gpu, { dy: x, dx: short, p: 0.5, seed: 1, offset: 0 }),
      ShapeError,
    );
    for (const seed of [-1, 1.5, 2 ** 32, NaN]) {
      throws(() => dropoutForward(gpu, { ...args, seed }), RangeError, `seed=${seed}`);
      throws(() => randomUniform(gpu, { out: y, seed, offset: 0 }), RangeError);
    }
    throws(() => randomUniform(gpu, { out: y, seed: 0, offset: -1 }), RangeError);
    throws(() => randomUniform(gpu, { out: xu, seed: 0, offset: 0 }), ShapeError);
    throws(() => randomBits(gpu, { out: y, seed: 0, offset: 0 }), ShapeError);
    const c = gpu.tensor([3, 4], "u32"),
      k = gpu.tensor([2, 2], "u32"),
      o = gpu.tensor([3, 4], "u32");
    throws(() => philoxBlocks(gpu, { ctr: c, key: k, out: o }), ShapeError);
    throws(() => philoxBlocks(gpu, { ctr: x, key: k, out: o }), ShapeError);
    // y shifted one element over x would read values another thread already dropped
    const both = gpu.tensor([11]);
    throws(
      () => dropoutForward(gpu, { ...args, x: both.view(0, [10]), y: both.view(1, [10]) }),
      ShapeError,
    );
    equal(gpu.dispatchCount, before, "nothing may be dispatched");
    // the shape-checked launchers are ShapeErrors, which are RangeErrors too: make sure p errors
    // are not ShapeErrors, so callers can tell them apart
    throws(() => dropoutForward(gpu, { ...args, p: 1 }), (e) => !(e instanceof ShapeError));
    for (const t of [x, y, short, xu, c, k, o, both]) gpu.release(t);
  },
});

Deno.test({
  name: "shared-mask dropout: locked masks repeat per period, row masks follow the ids, bit-exact",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const T = 5, B = 3, D = 7, p = 0.4, seed = 11, offset = 9;
    const x = uniform(T * B * D, 21);
    const tx = gpu.upload([T, B, D], x);
    const ty = gpu.tensor([T, B, D]);
    sharedMaskDropout(gpu, { x: tx, y: ty, p, seed, offset, period: B * D });
    const locked = await gpu.read(ty);
    deepStrictEqual(locked, sharedMaskDropoutRef(x, p, seed, offset, { period: B * D }));
    // one mask per sequence: the same elements are dropped at every time step
    for (let i = 0; i < x.length; i++) equal(locked[i] === 0, locked[i % (B * D)] === 0);
    ok(locked.some((v) => v === 0) && locked.some((v) => v !== 0), "some kept, some dropped");
    // the backward is the same map: it must reproduce the forward mask on a gradient of ones
    const ones = gpu.upload([T, B, D], new Float32Array(T * B * D).fill(1));
    sharedMaskDropout(gpu, { x: ones, y: ones, p, seed, offset, period: B * D });
    const g = await gpu.read(ones);
    for (let i = 0; i < x.length; i++) equal(g[i] === 0, locked[i] === 0);
    // embedding rows: rows with the same id share their fate; others differ somewhere
    const V = 50, N = 40, E = 4;
    const r = rng(5);
    const ids = Uint32Array.from({ length: N }, () => Math.floor(r() * V));
    const rowsX = uniform(N * E, 22);
    const trx = gpu.upload([N, E], rowsX);
    const tids = gpu.upload([N], ids, "u32");
    sharedMaskDropout(gpu, { x: trx, y: trx, p, seed, offset, rows: { ids: tids, rowLen: E } });
    const got = await gpu.read(trx);
    deepStrictEqual(
      got,
      sharedMaskDropoutRef(rowsX, p, seed, offset, { ids, rowLen: E, maskSize: V }),
    );
    const keep = dropoutMaskRef(V, p, seed, offset);
    for (let n = 0; n < N; n++) {
      for (let e = 0; e < E; e++) equal(got[n * E + e] === 0, keep[ids[n]] === 0);
    }
    throws(() => sharedMaskDropout(gpu, { x: tx, y: ty, p, seed, offset }), RangeError);
    throws(() => sharedMaskDropout(gpu, { x: tx, y: ty, p, seed, offset, period: 4 }), RangeError);
  },
});
