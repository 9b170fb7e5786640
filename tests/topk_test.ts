import { deepStrictEqual, equal, notDeepStrictEqual, ok, throws } from "node:assert/strict";
import { GPU_TEST, rng, testGpu } from "./_util.ts";
import {
  magnitudeKeys,
  randomKeys,
  selectTopK,
  topkChunks,
  type TopKOrder,
} from "../kernels/select/topk.ts";
import { magnitudeKeysRef, randomKeysRef, topkRef } from "../kernels/select/topk_ref.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";

const gpu = await testGpu();

/** Candidate filter of a case: none, or (mask, active). */
interface Cand {
  mask: Float32Array;
  active: boolean;
}

function eligibleOf(n: number, cand?: Cand): Uint8Array | undefined {
  if (!cand) return undefined;
  const e = new Uint8Array(n);
  for (let i = 0; i < n; i++) e[i] = (cand.mask[i] !== 0) === cand.active ? 1 : 0;
  return e;
}

function randomKeysHost(n: number, seed: number): Uint32Array {
  const r = rng(seed);
  const out = new Uint32Array(n);
  // Full 32-bit range, so the top digit (and the "largest" bit flip) is exercised.
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 4294967296) >>> 0;
  return out;
}

function maskHost(n: number, density: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r() < density ? 1 : 0;
  return out;
}

/**
 * Runs selectTopK on fresh tensors and compares with topkRef flag by flag; also checks the
 * count is exactly min(k, #eligible) (implied by equality, asserted separately for a clear message).
 */
async function checkCase(
  keys: Uint32Array,
  k: number,
  order: TopKOrder,
  cand: Cand | undefined,
  label: string,
): Promise<void> {
  const n = keys.length;
  const kt = gpu.upload([n], keys, "u32");
  const sel = gpu.upload([n], new Uint32Array(n).fill(7), "u32"); // every entry must be rewritten
  const mt = cand ? gpu.upload([n], cand.mask) : undefined;
  selectTopK(gpu, {
    keys: kt,
    k,
    order,
    selected: sel,
    candidates: mt && cand ? { mask: mt, active: cand.active } : undefined,
  });
  const got = await gpu.read(sel);
  const elig = eligibleOf(n, cand);
  const exp = topkRef(keys, k, order, elig);
  const nElig = elig ? elig.reduce((a, b) => a + b, 0) : n;
  let count = 0;
  for (let i = 0; i < n; i++) count += got[i];
  equal(count, Math.min(k, nElig), `${label}: selected count`);
  for (let i = 0; i < n; i++) {
    if (got[i] !== exp[i]) {
      throw new Error(`${label}: index ${i}: got ${got[i]}, expected ${exp[i]} (key ${keys[i]})`);
    }
  }
  gpu.release(kt);
  gpu.release(sel);
  if (mt) gpu.release(mt);
}

function candidateCases(n: number, seed: number): [string, Cand | undefined][] {
  const mask = maskHost(n, 0.4, seed);
  return [
    ["all", undefined],
    ["active", { mask, active: true }],
    ["inactive", { mask, active: false }],
  ];
}

Deno.test({
  name: "selectTopK matches topkRef on random keys (odd sizes, both orders, candidates)",
  ...GPU_TEST,
  async fn() {
    // 300007 spans several chunks (topkChunks), so per-chunk partials and ties are exercised.
    ok(topkChunks(300_007).chunks > 1);
    for (const n of [1, 3, 17, 127, 1000, 1001, 300_007]) {
      const keys = randomKeysHost(n, n);
      const r = rng(n + 1);
      for (const order of ["smallest", "largest"] as const) {
        for (const [cname, cand] of candidateCases(n, n + 2)) {
          const k = Math.floor(r() * (n + 1));
          await checkCase(keys, k, order, cand, `n=${n} k=${k} ${order} ${cname}`);
        }
      }
    }
  },
});

Deno.test({
  name: "selectTopK breaks heavy ties by index, with ties straddling k",
  ...GPU_TEST,
  async fn() {
    for (const n of [1000, 300_007]) {
      // 3 distinct values, including the extremes, so every digit pass sees a single bin.
      const values = [7, 100, 0xffffffff];
      const r = rng(n);
      const keys = new Uint32Array(n);
      for (let i = 0; i < n; i++) keys[i] = values[Math.floor(r() * 3)];
      const c7 = keys.filter((v) => v === 7).length;
      const cMax = keys.filter((v) => v === 0xffffffff).length;
      for (const [cname, cand] of candidateCases(n, n + 5)) {
        // k inside the run of the smallest value, just past it, mid-way through the second value.
        for (const k of [Math.floor(c7 / 2), c7 + 1, c7 + Math.floor((n - c7 - cMax) / 2)]) {
          await checkCase(keys, k, "smallest", cand, `ties n=${n} k=${k} smallest ${cname}`);
        }
        for (const k of [Math.floor(cMax / 3), cMax + 17]) {
          await checkCase(keys, k, "largest", cand, `ties n=${n} k=${k} largest ${cname}`);
        }
      }
      // One value everywhere: the selection is exactly the first k eligible positions.
      const same = new Uint32Array(n).fill(12345);
      await checkCase(same, Math.floor(n / 2) + 1, "smallest", undefined, `single value n=${n}`);
      await checkCase(same, 3, "largest", candidateCases(n, 9)[2][1], `single value n=${n}`);
    }
  },
});

Deno.test({
  name: "selectTopK edge cases: k = 0, k = n, k > candidates, n = 1, no candidates",
  ...GPU_TEST,
  async fn() {
    const n = 1001;
    const keys = randomKeysHost(n, 3);
    const some = { mask: maskHost(n, 0.1, 4), active: true };
    const none = { mask: new Float32Array(n), active: true };
    const all = { mask: new Float32Array(n), active: false };
    for (const order of ["smallest", "largest"] as const) {
      await checkCase(keys, 0, order, undefined, `k=0 ${order}`);
      await checkCase(keys, 0, order, some, `k=0 candidates ${order}`);
      await checkCase(keys, n, order, undefined, `k=n ${order}`);
      await checkCase(keys, n, order, some, `k=n > candidates ${order}`);
      await checkCase(keys, 500, order, some, `k=500 > candidates ${order}`);
      await checkCase(keys, 10, order, none, `no candidates ${order}`);
      await checkCase(keys, 10, order, all, `all candidates via active=false ${order}`);
      await checkCase(keys, 1e12, order, undefined, `k far above n ${order}`);
      await checkCase(Uint32Array.of(42), 1, order, undefined, `n=1 k=1 ${order}`);
      await checkCase(Uint32Array.of(42), 0, order, undefined, `n=1 k=0 ${order}`);
      await checkCase(Uint32Array.of(0xffffffff), 1, order, undefined, `n=1 max key ${order}`);
    }
    // Extreme keys only: the first/last bins of every digit.
    const ext = Uint32Array.from({ length: 257 }, (_, i) => (i % 2 ? 0 : 0xffffffff));
    await checkCase(ext, 128, "smallest", undefined, "extremes smallest");
    await checkCase(ext, 130, "largest", undefined, "extremes largest");
  },
});

Deno.test({
  name: "selectTopK on offset views writes only its view",
  ...GPU_TEST,
  async fn() {
    const n = 3001;
    const keys = randomKeysHost(n, 11);
    for (let i = 0; i < n; i += 3) keys[i] = keys[0]; // ties too
    const mask = maskHost(n, 0.5, 12);
    const SENTINEL = 0xdeadbeef;
    const kBuf = gpu.upload(
      [n + 9],
      Uint32Array.from([...Array(5).fill(1), ...keys, 1, 2, 3, 4]),
      "u32",
    );
    const mBuf = gpu.upload([n + 7], Float32Array.from([...Array(7).fill(1), ...mask]));
    const sBuf = gpu.upload([n + 6], new Uint32Array(n + 6).fill(SENTINEL), "u32");
    const kv = kBuf.view(5, [n]);
    const mv = mBuf.view(7, [n]);
    const sv = sBuf.view(3, [n]);
    for (const order of ["smallest", "largest"] as const) {
      selectTopK(gpu, {
        keys: kv,
        k: 700,
        order,
        selected: sv,
        candidates: { mask: mv, active: false },
      });
      const got = await gpu.read(sBuf);
      const exp = topkRef(keys, 700, order, eligibleOf(n, { mask, active: false }));
      deepStrictEqual(Array.from(got.subarray(0, 3)), [SENTINEL, SENTINEL, SENTINEL]);
      deepStrictEqual(Array.from(got.subarray(n + 3)), [SENTINEL, SENTINEL, SENTINEL]);
      deepStrictEqual(Array.from(got.subarray(3, n + 3)), Array.from(exp), `view ${order}`);
    }
    // keys and selected as disjoint views of one buffer (bindings get promoted to read_write).
    const both = gpu.upload([2 * n + 1], new Uint32Array(2 * n + 1), "u32");
    gpu.write(both, Uint32Array.from([9, ...keys, ...new Uint32Array(n)]));
    selectTopK(gpu, {
      keys: both.view(1, [n]),
      k: 100,
      order: "smallest",
      selected: both.view(n + 1, [n]),
    });
    const got = await gpu.read(both);
    deepStrictEqual(Array.from(got.subarray(n + 1)), Array.from(topkRef(keys, 100, "smallest")));
    for (const t of [kBuf, mBuf, sBuf, both]) gpu.release(t);
  },
});

Deno.test({
  name: "selectTopK rejects bad shapes, dtypes, k, order and overlaps before dispatch",
  ...GPU_TEST,
  fn() {
    const keys = gpu.tensor([10], "u32");
    const sel = gpu.tensor([10], "u32");
    const mask = gpu.tensor([10]);
    const before = gpu.dispatchCount;
    const sk = (a: Partial<Parameters<typeof selectTopK>[1]>) => () =>
      selectTopK(gpu, { keys, k: 3, order: "smallest", selected: sel, ...a });
    throws(sk({ keys: gpu.tensor([10]) as never }), ShapeError);
    throws(sk({ keys: gpu.tensor([2, 5], "u32") }), ShapeError);
    throws(sk({ selected: gpu.tensor([11], "u32") }), ShapeError);
    throws(sk({ selected: gpu.tensor([10]) as never }), ShapeError);
    throws(sk({ candidates: { mask: gpu.tensor([9]), active: true } }), ShapeError);
    throws(
      sk({ candidates: { mask: gpu.tensor([10], "u32") as never, active: true } }),
      ShapeError,
    );
    throws(sk({ k: -1 }), RangeError);
    throws(sk({ k: 1.5 }), RangeError);
    throws(sk({ order: "biggest" as never }), RangeError);
    throws(sk({ selected: keys }), ShapeError);
    const buf = gpu.tensor([20], "u32");
    throws(sk({ keys: buf.view(0, [10]), selected: buf.view(5, [10]) }), ShapeError);
    throws(() => magnitudeKeys(gpu, { x: mask, keys: gpu.tensor([9], "u32") }), ShapeError);
    throws(() => magnitudeKeys(gpu, { x: keys as never, keys }), ShapeError);
    throws(() => randomKeys(gpu, { keys: mask as never, seed: 1, stream: 0 }), ShapeError);
    throws(() => randomKeys(gpu, { keys, seed: -1, stream: 0 }), RangeError);
    equal(gpu.dispatchCount, before, "nothing was dispatched");
    selectTopK(gpu, {
      keys,
      k: 3,
      order: "smallest",
      selected: sel,
      candidates: { mask, active: true },
    });
    ok(gpu.dispatchCount > before, "the valid call dispatched");
  },
});

const f32 = (bits: number) => new Float32Array(Uint32Array.of(bits).buffer)[0];

Deno.test({
  name: "magnitudeKeys orders like |x| (signed zeros, subnormals, large values, NaN last)",
  ...GPU_TEST,
  async fn() {
    const special = [
      0,
      -0,
      f32(1),
      -f32(1),
      f32(0x007fffff),
      -f32(0x007fffff),
      f32(0x00800000),
      1e-30,
      -1e-30,
      0.5,
      -0.5,
      1,
      -1,
      1.0000001,
      3.4028235e38,
      -3.4028235e38,
      Infinity,
      -Infinity,
      65504,
      -7,
    ];
    const r = rng(5);
    const finite = [...special];
    for (let i = 0; i < 981; i++) finite.push((r() - 0.5) * 10 ** Math.floor(r() * 20 - 10));
    const x = new Float32Array(finite.length + 4);
    x.set(finite);
    const bits = new Uint32Array(x.buffer);
    // NaNs with both signs and payloads (quiet and signalling patterns).
    bits.set([0x7fc00000, 0xffc00001, 0x7f800001, 0xffffffff], finite.length);
    const n = x.length;
    const xt = gpu.upload([n + 2], Float32Array.from([0, 0, ...x]));
    const kt = gpu.tensor([n + 1], "u32");
    magnitudeKeys(gpu, { x: xt.view(2, [n]), keys: kt.view(1, [n]) });
    const keys = (await gpu.read(kt)).subarray(1);
    deepStrictEqual(Array.from(keys), Array.from(magnitudeKeysRef(x)), "bits vs reference");
    for (let i = 0; i < finite.length; i++) {
      for (let j = 0; j < finite.length; j++) {
        const a = Math.abs(x[i]), b = Math.abs(x[j]);
        const want = a < b ? -1 : a > b ? 1 : 0, got = Math.sign(keys[i] - keys[j]);
        if (want !== got) throw new Error(`|${x[i]}| vs |${x[j]}|: key order ${got}, want ${want}`);
      }
    }
    for (let i = finite.length; i < n; i++) {
      equal(keys[i], 0xffffffff, `NaN ${i} is the largest key`);
    }
    equal(keys[0], keys[1], "-0 and +0 tie");
    // Pruning the 40 smallest |x| with the keys equals pruning by |x| (ties by index).
    const sel = gpu.tensor([n], "u32");
    selectTopK(gpu, { keys: kt.view(1, [n]), k: 40, order: "smallest", selected: sel });
    const got = await gpu.read(sel);
    const order = Array.from(x.keys()).sort((a, b) => {
      const fa = Number.isNaN(x[a]) ? Infinity : Math.abs(x[a]);
      const fb = Number.isNaN(x[b]) ? Infinity : Math.abs(x[b]);
      return fa !== fb ? fa - fb : a - b;
    });
    const want = new Uint32Array(n);
    for (const i of order.slice(0, 40)) want[i] = 1;
    deepStrictEqual(Array.from(got), Array.from(want));
    for (const t of [xt, kt, sel]) gpu.release(t);
  },
});

Deno.test({
  name: "randomKeys is the Philox element stream: bit-exact, reproducible, seed/stream dependent",
  ...GPU_TEST,
  async fn() {
    const n = 1003;
    const kt = gpu.tensor([n + 4], "u32");
    const view = kt.view(4, [n]);
    const draw = async (seed: number, stream: number) => {
      randomKeys(gpu, { keys: view, seed, stream });
      return (await gpu.read(kt)).slice(4);
    };
    const a = await draw(7, 3);
    deepStrictEqual(Array.from(a), Array.from(randomKeysRef(n, 7, 3)), "vs CPU Philox");
    deepStrictEqual(Array.from(await draw(7, 3)), Array.from(a), "same seed and stream twice");
    notDeepStrictEqual(Array.from(await draw(8, 3)), Array.from(a), "another seed");
    notDeepStrictEqual(Array.from(await draw(7, 4)), Array.from(a), "another stream");
    gpu.release(kt);
  },
});

/** Wilson–Hilferty upper quantile of chi-square(df) at standard-normal quantile z. */
function chiSquareQuantile(df: number, z: number): number {
  const c = 2 / (9 * df);
  return df * (1 - c + z * Math.sqrt(c)) ** 3;
}

/**
 * Uniformity statistic of `draws` k-subsets of N positions: counts O_j per position, E = draws k/N.
 * Sampling k of N without replacement gives Var(O_j) = draws p(1-p) and covariances
 * -draws p(1-p)/(N-1), so sum (O_j - E)^2 / (draws p (1-p) N/(N-1)) is asymptotically
 * chi-square with N - 1 degrees of freedom (the counts always sum to draws k).
 */
function uniformityStat(counts: number[], draws: number, k: number): number {
  const N = counts.length, p = k / N, e = draws * p;
  const v = draws * p * (1 - p) * N / (N - 1);
  return counts.reduce((s, o) => s + (o - e) ** 2, 0) / v;
}

async function growthDraws(g: Gpu, n: number, mask: Float32Array, k: number, draws: number) {
  // All draws in one buffer: draw d uses views at offset d*n and stream d (one readback).
  const keys = g.tensor([draws * n], "u32");
  const sel = g.tensor([draws * n], "u32");
  const mt = g.upload([n], mask);
  for (let d = 0; d < draws; d++) {
    const kv = keys.view(d * n, [n]);
    randomKeys(g, { keys: kv, seed: 2024, stream: d });
    const candidates = { mask: mt, active: false };
    selectTopK(g, { keys: kv, k, order: "smallest", selected: sel.view(d * n, [n]), candidates });
  }
  const out = await g.read(sel);
  for (const t of [keys, sel, mt]) g.release(t);
  return out;
}

Deno.test({
  name:
    "random growth picks only inactive positions, uniformly (chi-square; a biased sampler fails)",
  ...GPU_TEST,
  async fn() {
    const n = 64, k = 8, draws = 2000;
    const mask = new Float32Array(n);
    // i -> 37 i mod 64 is a bijection, so exactly half the positions are inactive, scattered.
    for (let i = 0; i < n; i++) mask[i] = (i * 37) % 64 < 32 ? 1 : 0;
    const inactive = Array.from(mask.keys()).filter((i) => mask[i] === 0);
    const N = inactive.length;
    equal(N, 32);
    const out = await growthDraws(gpu, n, mask, k, draws);
    const counts = new Array(N).fill(0);
    for (let d = 0; d < draws; d++) {
      let c = 0;
      for (let i = 0; i < n; i++) {
        if (!out[d * n + i]) continue;
        ok(mask[i] === 0, `draw ${d}: grew active position ${i}`);
        c++;
      }
      equal(c, k, `draw ${d}: exactly k grown`);
      inactive.forEach((pos, j) => (counts[j] += out[d * n + pos]));
    }
    // False-alarm probability ~1e-6 (z = 4.753); Wilson–Hilferty is accurate to a few percent of
    // the quantile at this df, which moves the false-alarm rate within the same order.
    const bound = chiSquareQuantile(N - 1, 4.753);
    const stat = uniformityStat(counts, draws, k);
    ok(
      stat < bound,
      `GPU growth: stat ${stat.toFixed(1)} >= bound ${bound.toFixed(1)} (df ${N - 1})`,
    );

    // Power: the same statistic on a sampler favouring the lower half of the inactive positions
    // by weight 1.25 (Efraimidis–Spirakis weighted sampling without replacement) must fail.
    const r = rng(77);
    const biased = new Array(N).fill(0);
    for (let d = 0; d < draws; d++) {
      const keyed = inactive.map((_, j) => ({ j, key: r() ** (1 / (j < N / 2 ? 1.25 : 1)) }));
      keyed.sort((a, b) => b.key - a.key);
      for (const { j } of keyed.slice(0, k)) biased[j]++;
    }
    const bstat = uniformityStat(biased, draws, k);
    ok(bstat > bound, `biased sampler: stat ${bstat.toFixed(1)} <= bound ${bound.toFixed(1)}`);
  },
});

Deno.test({
  name: "selectTopK: a NaN mask entry is active, -0 inactive (bit test, not a float compare)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const mask = gpu.upload([4], new Float32Array([NaN, 1, 0, -0]));
    const keys = gpu.upload([4], new Uint32Array([5, 5, 5, 5]), "u32");
    for (const [active, want] of [[true, [1, 1, 0, 0]], [false, [0, 0, 1, 1]]] as const) {
      const selected = gpu.tensor([4], "u32");
      selectTopK(gpu, { keys, k: 4, order: "smallest", selected, candidates: { mask, active } });
      const got = Array.from(await gpu.read(selected));
      if (got.join() !== want.join()) throw new Error(`active=${active}: ${got} vs ${want}`);
    }
  },
});
