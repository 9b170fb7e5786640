import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { Rng } from "../pipeline/data/rng.ts";

const draw = (r: Rng, n: number) => Array.from({ length: n }, () => r.nextU32());

Deno.test("rng: same seed and stream repeat; other seeds, streams and large seeds differ", () => {
  assertEquals(draw(new Rng(42), 100), draw(new Rng(42), 100));
  const base = JSON.stringify(draw(new Rng(42), 8));
  for (const r of [new Rng(43), new Rng(42, 1), new Rng(42 + 2 ** 32), new Rng(-42)]) {
    assert(JSON.stringify(draw(r, 8)) !== base);
  }
  // Known answer: pins the algorithm, so generated corpora stay identical across versions.
  assertEquals(draw(new Rng(0), 4), KNOWN_SEED0);
  for (const bad of [1.5, NaN, 2 ** 60]) assertThrows(() => new Rng(bad), RangeError);
});

// First four outputs of new Rng(0), recorded from this implementation (xoshiro128** seeded by
// splitmix32). A change here changes every synthetic corpus and AWD window sequence.
const KNOWN_SEED0 = [4187458251, 2444602982, 3872279642, 1301277917];

Deno.test("rng: the core is xoshiro128** (outputs from state [1, 2, 3, 4] match the reference)", () => {
  // Computed with an independent transcription of the reference C code (Blackman & Vigna).
  assertEquals(draw(Rng.fromState([1, 2, 3, 4]), 6), [
    11520,
    0,
    5927040,
    70819200,
    2031721883,
    1637235492,
  ]);
});

Deno.test("rng: state round-trips, so a resumed run continues the same sequence", () => {
  const r = new Rng(7, 3);
  draw(r, 13);
  const saved = r.state();
  const ahead = draw(r, 20);
  assertEquals(draw(Rng.fromState(JSON.parse(JSON.stringify(saved))), 20), ahead);
  assertThrows(() => Rng.fromState([1, 2, 3]), RangeError);
  assertThrows(() => Rng.fromState([1, 2, 3, -1]), RangeError);
});

Deno.test("rng: uniform, int, normal and gamma have the right range and moments", () => {
  const r = new Rng(2024);
  const n = 200_000;
  // Tolerances are 5 standard errors of the mean (sd/sqrt(n)) of each distribution.
  let s = 0, s2 = 0;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    assert(u >= 0 && u < 1);
    s += u;
    s2 += u * u;
  }
  assert(Math.abs(s / n - 0.5) < 5 * Math.sqrt(1 / 12 / n), `uniform mean ${s / n}`);
  assert(Math.abs(s2 / n - 1 / 3) < 5 * Math.sqrt(4 / 45 / n), `uniform E[u^2] ${s2 / n}`);

  const counts = new Array(7).fill(0);
  for (let i = 0; i < 70_000; i++) counts[r.int(7)]++;
  // Each count ~ Binomial(70000, 1/7): sd ≈ 92.6.
  for (const c of counts) assert(Math.abs(c - 10_000) < 5 * 92.6, `int(7) counts ${counts}`);
  assertEquals(r.int(1), 0);
  for (const bad of [0, 1.5, 2 ** 33]) assertThrows(() => r.int(bad), RangeError);

  s = 0;
  s2 = 0;
  for (let i = 0; i < n; i++) {
    const x = r.normal(3, 2);
    s += x;
    s2 += (x - 3) ** 2;
  }
  assert(Math.abs(s / n - 3) < 5 * 2 / Math.sqrt(n), `normal mean ${s / n}`);
  // Var of (x-3)^2 is 2*sd^4 = 32.
  assert(Math.abs(s2 / n - 4) < 5 * Math.sqrt(32 / n), `normal variance ${s2 / n}`);

  for (const shape of [0.3, 1, 2.5, 9]) {
    let g = 0;
    const m = 100_000;
    for (let i = 0; i < m; i++) {
      const x = r.gamma(shape);
      assert(x >= 0 && Number.isFinite(x));
      g += x;
    }
    // Gamma(k, 1): mean k, variance k.
    assert(Math.abs(g / m - shape) < 5 * Math.sqrt(shape / m), `gamma(${shape}) mean ${g / m}`);
  }
  assertThrows(() => r.gamma(0), RangeError);
});
