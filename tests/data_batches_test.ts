import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import {
  awdWindows,
  batchify,
  bpttWindows,
  type TokenMatrix,
  type Window,
  windowTokens,
} from "../pipeline/data/batches.ts";
import { loadCorpus } from "../pipeline/data/corpus.ts";
import { DataError } from "../pipeline/data/errors.ts";
import { Rng } from "../pipeline/data/rng.ts";
import { referenceCorpus } from "./_data_util.ts";

const iota = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);

/** Input rows of consecutive windows must tile rows 0 .. rows-2 exactly once, in order. */
function assertTiles(ws: Window[], rows: number, label: string): void {
  let next = 0;
  for (const w of ws) {
    assert(w.start === next, `${label}: window at ${w.start}, expected ${next}`);
    assert(
      w.length >= 1 && w.start + w.length <= rows - 1,
      `${label}: window ${JSON.stringify(w)}`,
    );
    next = w.start + w.length;
  }
  assertEquals(next, rows - 1, `${label}: windows end at row ${next}, expected ${rows - 1}`);
}

Deno.test("batchify: column j is stream chunk j, row-major [rows, B], tail cut", () => {
  for (const [n, B] of [[7, 2], [40, 20], [1000, 1], [1001, 17], [127, 3], [46, 23]]) {
    const m = batchify(iota(n), B);
    const rows = Math.floor(n / B);
    assertEquals([m.rows, m.cols, m.data.length], [rows, B, rows * B], `n=${n} B=${B}`);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < B; j++) {
        if (m.data[r * B + j] !== j * rows + r) {
          throw new Error(
            `n=${n} B=${B}: data[${r},${j}] = ${m.data[r * B + j]}, expected ${j * rows + r}`,
          );
        }
      }
    }
  }
  assertEquals(Array.from(batchify(iota(7), 2).data), [0, 3, 1, 4, 2, 5]);
});

Deno.test("batchify: too short a stream is a DataError, a bad batch size a RangeError", () => {
  assertThrows(() => batchify(iota(39), 20, "valid"), (e: Error) => {
    return e instanceof DataError && e.message.includes("valid has 39 tokens") &&
      e.message.includes("batch size 20") && e.message.includes("at least 40");
  });
  batchify(iota(40), 20); // exactly 2 rows is enough for one window
  for (const b of [0, -1, 1.5, NaN]) assertThrows(() => batchify(iota(10), b), RangeError);
});

Deno.test("bpttWindows: ceil((rows-1)/bptt) fixed windows tiling rows 0..rows-2, last one shorter", () => {
  for (const rows of [2, 3, 17, 36, 37, 71, 1000, 1001]) {
    for (const bptt of [1, 2, 5, 35, 70, 2000]) {
      const m: TokenMatrix = { data: new Uint32Array(rows), rows, cols: 1 };
      const ws = bpttWindows(m, bptt);
      const label = `rows=${rows} bptt=${bptt}`;
      assertEquals(ws.length, Math.ceil((rows - 1) / bptt), label);
      assertTiles(ws, rows, label);
      for (const w of ws.slice(0, -1)) assertEquals(w.length, bptt, label);
      assertEquals(ws[ws.length - 1].length, rows - 1 - (ws.length - 1) * bptt, label);
      assert(ws.every((w) => w.lrScale === 1), label);
    }
  }
  assertEquals(
    bpttWindows({ data: new Uint32Array(10), rows: 10, cols: 1 }, 4).map((
      w,
    ) => [w.start, w.length]),
    [[0, 4], [4, 4], [8, 1]],
  );
  assertThrows(() => bpttWindows({ data: new Uint32Array(4), rows: 4, cols: 1 }, 0), RangeError);
});

Deno.test("bpttWindows: a PTB-sized stream (929,589 tokens, B=20, bptt=35) gives 46,479 rows and 1,328 windows", () => {
  const m = batchify(new Uint32Array(929_589), 20);
  assertEquals(m.rows, 46_479);
  const ws = bpttWindows(m, 35);
  assertEquals(ws.length, 1_328);
  assertEquals(ws[ws.length - 1], { start: 1327 * 35, length: 46_478 - 1327 * 35, lrScale: 1 });
});

Deno.test("windowTokens: input rows start..start+L-1, targets shifted by one row, as views", () => {
  // Stream = 0..n-1, so every target must be its input + 1 (next token of the same column).
  const m = batchify(iota(20 * 13 + 5), 13);
  for (const w of bpttWindows(m, 6)) {
    const { input, target } = windowTokens(m, w);
    assertEquals([input.length, target.length], [w.length * 13, w.length * 13]);
    for (let t = 0; t < w.length; t++) {
      for (let b = 0; b < 13; b++) {
        assertEquals(input[t * 13 + b], b * m.rows + w.start + t);
        assertEquals(target[t * 13 + b], input[t * 13 + b] + 1);
      }
    }
    assert(input.buffer === m.data.buffer && target.buffer === m.data.buffer, "views, not copies");
  }
  const bad: Window[] = [
    { start: -1, length: 2, lrScale: 1 },
    { start: 0, length: 0, lrScale: 1 },
    { start: 0, length: 20, lrScale: 1 }, // needs 21 rows of targets, matrix has 20
    { start: 1.5, length: 2, lrScale: 1 },
  ];
  for (const w of bad) assertThrows(() => windowTokens(m, w), RangeError, JSON.stringify(w));
  windowTokens(m, { start: 0, length: 19, lrScale: 1 }); // the largest legal window
});

Deno.test("awdWindows: reproducible from the seed, tiles the data, lengths and lr scale follow the AWD rule", () => {
  const rows = 200_000, bptt = 70;
  const m: TokenMatrix = { data: new Uint32Array(rows), rows, cols: 1 };
  const ws = awdWindows(m, bptt, new Rng(141));
  assertEquals(awdWindows(m, bptt, new Rng(141)), ws, "same seed, same windows");
  const other = awdWindows(m, bptt, new Rng(142));
  assert(JSON.stringify(other) !== JSON.stringify(ws), "a different seed gives different windows");
  assertTiles(ws, rows, "awd");
  let half = 0, sum = 0;
  for (let k = 0; k < ws.length; k++) {
    // lrScale = sampled / bptt; recover the integer sampled length (exact up to f64 rounding).
    const sampled = Math.round(ws[k].lrScale * bptt);
    assert(
      Math.abs(ws[k].lrScale * bptt - sampled) < 1e-9,
      `window ${k}: lrScale ${ws[k].lrScale}`,
    );
    assert(
      sampled >= 5 && sampled <= bptt + 40,
      `window ${k}: ${sampled}`,
    );
    if (k < ws.length - 1) {
      assertEquals(ws[k].length, sampled, `window ${k}: only the last one is cut`);
      assertEquals(ws[k + 1].start, ws[k].start + sampled);
    }
    if (sampled < 52) half++; // 52.5 is halfway between the bases 35 and 70 (3.5 sd from each)
    sum += sampled;
  }
  // ~2,900 windows. Half-length share: binomial p = 0.05, sd = sqrt(.05*.95/2900) ≈ 0.004, so
  // ±0.02 is 5 sd. Mean: E floor(N(base, 5)) = base - 0.5, base mean 0.95*70 + 0.05*35 = 68.25,
  // so 67.75; per-window sd ≈ sqrt(5^2 + 0.05*0.95*35^2) ≈ 9.1, sd of the mean ≈ 0.17, ±0.85 is 5 sd.
  const share = half / ws.length, mean = sum / ws.length;
  assert(Math.abs(share - 0.05) < 0.02, `half-length share ${share}`);
  assert(Math.abs(mean - 67.75) < 0.85, `mean sampled length ${mean}`);
});

Deno.test("awdWindows: clamps, last window cut at the data end, no window starts at rows-2 or later", () => {
  const m: TokenMatrix = { data: new Uint32Array(1003), rows: 1003, cols: 1 };
  // sd 0 makes lengths deterministic: base 10 (fullProb 1) → exactly 10 each.
  const ws = awdWindows(m, 10, new Rng(1), { fullProb: 1, sd: 0 });
  assertEquals(ws.length, 101);
  assertEquals(ws[100], { start: 1000, length: 2, lrScale: 1 });
  // rows 1002: the reference loop stops at i < rows - 2 = 1000, so no 1-step tail window.
  const ws2 = awdWindows({ ...m, rows: 1002 }, 10, new Rng(1), { fullProb: 1, sd: 0 });
  assertEquals(ws2.length, 100);
  assertEquals(ws2[99], { start: 990, length: 10, lrScale: 1 });
  // Clamp both ways: huge sd hits minLength and maxLength.
  const wc = awdWindows(
    { data: new Uint32Array(100_000), rows: 100_000, cols: 1 },
    20,
    new Rng(3),
    { sd: 1000, minLength: 7, maxLength: 25 },
  );
  const lens = new Set(wc.slice(0, -1).map((w) => w.length));
  assert(
    lens.has(7) && lens.has(25) && [...lens].every((l) => l >= 7 && l <= 25),
    [...lens].join(),
  );
  assert(wc.every((w) => w.lrScale * 20 >= 7 && w.lrScale * 20 <= 25));
  for (
    const o of [{ fullProb: 1.5 }, { sd: -1 }, { minLength: 0 }, { maxLength: 3, minLength: 5 }]
  ) {
    assertThrows(() => awdWindows(m, 10, new Rng(1), o), RangeError, JSON.stringify(o));
  }
});

const PTB = referenceCorpus("ptb", "data_batches_test");

Deno.test({
  name: "bpttWindows: PTB train, B=20, bptt=35 gives 1,328 windows (needs ../shared/data/ptb)",
  ignore: !PTB.present,
  fn: async () => {
    const c = await loadCorpus(PTB.url);
    const m = batchify(c.train, 20, "train");
    assertEquals(m.rows, 46_479);
    const ws = bpttWindows(m, 35);
    assertEquals(ws.length, 1_328);
    // The first target row is the second token of every column.
    const { target } = windowTokens(m, ws[0]);
    for (let j = 0; j < 20; j++) assertEquals(target[j], c.train[j * m.rows + 1]);
  },
});
