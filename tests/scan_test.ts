import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { exclusiveScanU32, SCAN_CHUNK_REGBLOCK, SCAN_TILE } from "../kernels/sparse/scan.ts";
import { exclusiveScanRef } from "../kernels/sparse/scan_ref.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";
import { forEachVariant, GPU_TEST, rng, testGpu } from "./_util.ts";

/** `n` random u32 values below `limit` (deterministic). */
function randomU32(n: number, seed: number, limit: number): Uint32Array {
  const r = rng(seed);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * limit);
  return out;
}

/** Index of the first difference of two arrays, or -1 (keeps failure messages short). */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

const GUARD = 3;
const SENTINEL = 0xdeadbeef;

/**
 * Scans `data` on the GPU through views GUARD elements into their buffers (a kernel that
 * ignores the view offsets reads or writes the wrong elements) and checks the result exactly,
 * plus that the guard elements before the output view are untouched.
 */
async function checkScan(gpu: Gpu, data: Uint32Array, label: string): Promise<void> {
  const n = data.length;
  const inBuf = new Uint32Array(n + GUARD).fill(7);
  inBuf.set(data, GUARD);
  const inBase = gpu.upload([n + GUARD], inBuf, "u32");
  const outBase = gpu.upload([n + 1 + GUARD], new Uint32Array(n + 1 + GUARD).fill(SENTINEL), "u32");
  exclusiveScanU32(gpu, {
    input: inBase.view(GUARD, [n]),
    output: outBase.view(GUARD, [n + 1]),
  });
  const got = await gpu.read(outBase);
  gpu.release(inBase);
  gpu.release(outBase);
  for (let i = 0; i < GUARD; i++) assertEquals(got[i], SENTINEL, `${label}: guard ${i} written`);
  const want = exclusiveScanRef(data);
  const res = got.subarray(GUARD);
  const d = firstDiff(res, want);
  if (d >= 0) {
    throw new Error(`${label}: output[${d}] = ${res[d]}, expected ${want[d]} (n = ${n})`);
  }
}

// Sizes around both variants' chunk lengths (256 per regblock thread, 2048 per tiled workgroup)
// and their squares, where another level of recursion starts.
const SIZES = [
  0,
  1,
  3,
  17,
  255,
  256,
  257,
  1000,
  SCAN_TILE - 1,
  SCAN_TILE,
  SCAN_TILE + 1,
  SCAN_CHUNK_REGBLOCK ** 2,
  65537,
  3_000_001,
];

Deno.test({
  name: "scan: exclusive prefix sums match the CPU exactly, n = 0 .. 3M, both variants",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      for (const n of SIZES) {
        await checkScan(gpu, randomU32(n, 100 + n, 1000), `${variant} n=${n}`);
      }
    });
  },
});

Deno.test({
  name: "scan: sums wrap modulo 2^32 identically to the CPU (full-range u32 values)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      for (const n of [5, 70_001]) {
        await checkScan(gpu, randomU32(n, 7 + n, 2 ** 32), `${variant} wrap n=${n}`);
      }
    });
  },
});

Deno.test({
  name: "scan: n > 2^24 (4 regblock levels, 3 tiled levels) matches the CPU",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // 2^24 + 2^20 + 3 elements (68 MB): above 256^3 and 2048^2, so both variants recurse down to
    // a single-chunk level through every intermediate level; small values keep the CPU fast.
    const n = 2 ** 24 + 2 ** 20 + 3;
    const data = randomU32(n, 42, 4);
    await forEachVariant(gpu, (gpu, variant) => checkScan(gpu, data, `${variant} n=${n}`));
  },
});

Deno.test({
  name: "scan: bad inputs throw ShapeError before any dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const u = gpu.zeros([10], "u32");
    const f = gpu.zeros([10], "f32");
    const out = gpu.zeros([11], "u32");
    const outF = gpu.zeros([11], "f32");
    const big = gpu.zeros([30], "u32");
    const before = gpu.dispatchCount;
    assertThrows(() => exclusiveScanU32(gpu, { input: f as never, output: out }), ShapeError);
    assertThrows(() => exclusiveScanU32(gpu, { input: u, output: outF as never }), ShapeError);
    assertThrows(() => exclusiveScanU32(gpu, { input: u, output: u }), /expected 11 elements/);
    // Overlapping input and output (an in-place scan is not supported).
    assertThrows(
      () => exclusiveScanU32(gpu, { input: big.view(0, [10]), output: big.view(5, [11]) }),
      /overlaps/,
    );
    assertEquals(gpu.dispatchCount, before);
    for (const t of [u, f, out, outF, big]) gpu.release(t);
  },
});
