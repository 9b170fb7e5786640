import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { softmaxCrossEntropy } from "../kernels/cells/softmax_ce.ts";
import { softmaxCrossEntropyRef } from "../kernels/cells/softmax_ce_ref.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { ShapeError, type Tensor } from "../kernels/runtime/tensor.ts";
import { assertClose, forEachVariant, GPU_TEST, rng, testGpu, uniform } from "./_util.ts";

const EPS = 1.2e-7; // f32 unit roundoff (2^-23), rounded up

/**
 * Relative error bound of the f32 sum `S = Σ exp(x - m)`: `8·sqrt(V)` for the rounding of V
 * positive terms (random-sign growth, 8x headroom), plus the merges — up to ~ln V online
 * rescales and 8 tree levels, each an `exp` allowed `3 + 2|d|` ulp by WGSL; a merge only matters
 * when its partial sum is within a factor V of the total, i.e. `|d| <= ln V`.
 */
function sumRelErr(v: number): number {
  const lnV = Math.log(v + 1);
  return EPS * (8 * Math.sqrt(v) + (lnV + 9) * (4 + 2 * lnV));
}

interface Result {
  loss: Float32Array;
  dLogits?: Float32Array;
}

/**
 * Compares a kernel result with the f64 reference. Per element, the gradient error is the
 * relative error of S plus that of `exp(x - m)` (WGSL: 3 + 2|d| ulp, plus the rounding of
 * `x - m`) times p, plus two roundings of the result; the loss adds the error of `log`
 * (2^-21 absolute near 1) and two roundings.
 */
function check(
  label: string,
  got: Result,
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  n: number,
  v: number,
  scale: number,
): void {
  const ref = softmaxCrossEntropyRef(logits, targets, n, v, scale);
  const rel = sumRelErr(v);
  for (let r = 0; r < n; r++) {
    let m = -Infinity;
    for (let j = 0; j < v; j++) m = Math.max(m, logits[r * v + j]);
    const t = Math.min(targets[r], v - 1);
    const lossTol = rel + 1e-6 + 2 * EPS * ((m - logits[r * v + t]) + Math.abs(ref.loss[r]));
    const lossErr = Math.abs(got.loss[r] - ref.loss[r]);
    if (!(lossErr <= lossTol)) {
      throw new Error(
        `${label}: loss[${r}] = ${got.loss[r]}, expected ${ref.loss[r]} (tol ${lossTol})`,
      );
    }
    if (!got.dLogits) continue;
    let rowSum = 0;
    let rowSumTol = 0;
    for (let j = 0; j < v; j++) {
      const i = r * v + j;
      const p = ref.probs[i];
      const d = Math.abs(logits[i] - m);
      const tol = Math.abs(scale) *
        (p * (rel + (6 + 3 * d) * EPS) + 2 * EPS * Math.abs(p - (j === t ? 1 : 0)) + 1e-30);
      const err = Math.abs(got.dLogits[i] - ref.dLogits[i]);
      if (!(err <= tol)) {
        throw new Error(
          `${label}: dLogits[${r}, ${j}] = ${got.dLogits[i]}, expected ${
            ref.dLogits[i]
          } (tol ${tol}, target ${t})`,
        );
      }
      rowSum += got.dLogits[i];
      rowSumTol += tol;
    }
    // Σ_v softmax = 1, so each gradient row sums to 0 within the summed element tolerances.
    if (!(Math.abs(rowSum) <= rowSumTol)) {
      throw new Error(`${label}: gradient row ${r} sums to ${rowSum} (tol ${rowSumTol})`);
    }
  }
}

type Mode = "loss" | "separate" | "inplace";

/** Runs the kernel in `mode` on fresh tensors and reads back its outputs. */
async function run(
  gpu: Gpu,
  logits: Float32Array,
  targets: Uint32Array,
  n: number,
  v: number,
  mode: Mode,
  gradScale?: number,
): Promise<Result & { logitsAfter?: Float32Array }> {
  const tLogits = gpu.upload([n, v], logits);
  const tTargets = gpu.upload([n], targets, "u32");
  const tLoss = gpu.tensor([n]);
  const tGrad = mode === "separate" ? gpu.tensor([n, v]) : mode === "inplace" ? tLogits : undefined;
  softmaxCrossEntropy(gpu, {
    logits: tLogits,
    targets: tTargets,
    loss: tLoss,
    dLogits: tGrad,
    gradScale,
  });
  const out: Result & { logitsAfter?: Float32Array } = { loss: await gpu.read(tLoss) };
  if (tGrad) out.dLogits = await gpu.read(tGrad);
  if (mode !== "inplace") out.logitsAfter = await gpu.read(tLogits);
  for (const t of new Set([tLogits, tTargets, tLoss, tGrad])) if (t) gpu.release(t);
  return out;
}

function randomTargets(n: number, v: number, seed: number): Uint32Array {
  const r = rng(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(r() * v));
}

Deno.test("softmaxCrossEntropyRef gradient matches central finite differences (f64)", () => {
  const [n, v, scale] = [3, 5, 0.7];
  const r = rng(11);
  const logits = Float64Array.from({ length: n * v }, () => 4 * r() - 2);
  const targets = [4, 0, 2];
  const total = (x: Float64Array) =>
    softmaxCrossEntropyRef(x, targets, n, v).loss.reduce((a, b) => a + b, 0);
  const { dLogits } = softmaxCrossEntropyRef(logits, targets, n, v, scale);
  const h = 1e-5;
  for (let i = 0; i < n * v; i++) {
    const plus = Float64Array.from(logits);
    const minus = Float64Array.from(logits);
    plus[i] += h;
    minus[i] -= h;
    const fd = scale * (total(plus) - total(minus)) / (2 * h);
    // Central differences: truncation O(h^2) ~ 1e-10, cancellation ~ 1e-16 / h ~ 1e-11.
    ok(Math.abs(fd - dLogits[i]) < 1e-8, `element ${i}: fd ${fd} vs analytic ${dLogits[i]}`);
  }
});

Deno.test({
  name: "softmaxCrossEntropy matches the f64 reference (both variants, loss/separate/in-place)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      let seed = 1;
      for (const v of [1, 3, 17, 1000, 10000, 33278]) {
        // N = 35 at V = 33278 adds seconds on llvmpipe and no coverage over N = 20.
        for (const n of v === 33278 ? [1, 20] : [1, 20, 35]) {
          const logits = uniform(n * v, seed++, -4, 4);
          const targets = randomTargets(n, v, seed++);
          const label = `${variant} N=${n} V=${v}`;
          const lossOnly = await run(gpu, logits, targets, n, v, "loss");
          check(`${label} loss only`, lossOnly, logits, targets, n, v, 1);
          const scale = 1 / n + 0.25;
          const sep = await run(gpu, logits, targets, n, v, "separate", scale);
          check(`${label} separate`, sep, logits, targets, n, v, scale);
          assertClose(sep.logitsAfter!, logits, { atol: 0, rtol: 0 }, `${label} logits kept`);
          const inplace = await run(gpu, logits, targets, n, v, "inplace");
          check(`${label} in-place`, inplace, logits, targets, n, v, 1);
        }
      }
    });
  },
});

Deno.test({
  name: "softmaxCrossEntropy is finite and exact on extreme logits; targets >= V clamp to V - 1",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      for (const v of [1, 3, 1000]) {
        const r = rng(v);
        const rows: number[][] = [
          Array.from({ length: v }, () => (r() < 0.5 ? -80 : 80)), // ±80 at random
          Array.from({ length: v }, () => 80), // all equal, large
          Array.from({ length: v }, () => -80), // all equal, very negative
          Array.from({ length: v }, (_, j) => (j === 0 ? -80 : 80)), // target far below the rest
          Array.from({ length: v }, () => 160 * r() - 80), // spread over [-80, 80)
          Array.from({ length: v }, () => 0.5), // all equal, target clamped
        ];
        const n = rows.length;
        const logits = Float32Array.from(rows.flat());
        const targets = new Uint32Array([v - 1, 0, Math.floor(v / 2), 0, 1 % v, v + 7]);
        if (v > 1) targets[5] = 0xffffffff;
        for (const mode of ["separate", "inplace"] as const) {
          const scale = mode === "separate" ? -3 : 0.5;
          const got = await run(gpu, logits, targets, n, v, mode, scale);
          const label = `${variant} V=${v} ${mode}`;
          ok(got.loss.every(Number.isFinite), `${label}: loss finite ${got.loss}`);
          ok(got.dLogits!.every(Number.isFinite), `${label}: gradient finite`);
          check(label, got, logits, targets, n, v, scale);
          // All-equal rows: loss log V, whatever the common value.
          for (const row of [1, 2, 5]) {
            ok(Math.abs(got.loss[row] - Math.log(v)) <= 1e-5, `${label} row ${row}`);
          }
          // Out-of-range target behaves exactly as target V - 1.
          const clamped = Uint32Array.from(targets, (t) => Math.min(t, v - 1));
          const want = await run(gpu, logits, clamped, n, v, mode, scale);
          assertClose(got.loss, want.loss, { atol: 0, rtol: 0 }, `${label} clamp loss`);
          assertClose(got.dLogits!, want.dLogits!, { atol: 0, rtol: 0 }, `${label} clamp grad`);
        }
      }
    });
  },
});

Deno.test({
  name: "softmaxCrossEntropy honours view offsets and a disjoint gradient in the logits buffer",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const [n, v] = [5, 37];
    const logits = uniform(n * v, 21, -3, 3);
    const targets = randomTargets(n, v, 22);
    await forEachVariant(gpu, async (gpu, variant) => {
      // One buffer: [pad 3 | logits n·v | loss n | pad 1 | dLogits n·v | pad 2]; loss and the
      // gradient share the logits buffer, so logits is bound read_write once.
      const size = 3 + n * v + n + 1 + n * v + 2;
      const buf = gpu.zeros([size]);
      const tLogits = buf.view(3, [n, v]);
      const tLoss = buf.view(3 + n * v, [n]);
      const tGrad = buf.view(3 + n * v + n + 1, [n, v]);
      gpu.write(tLogits, logits);
      const tTargets = gpu.upload([n + 2], [7, 7, ...targets], "u32").view(2, [n]);
      softmaxCrossEntropy(gpu, {
        logits: tLogits,
        targets: tTargets,
        loss: tLoss,
        dLogits: tGrad,
        gradScale: 0.5,
      });
      const all = await gpu.read(buf);
      const got = {
        loss: all.slice(3 + n * v, 3 + n * v + n),
        dLogits: all.slice(3 + n * v + n + 1, 3 + n * v + n + 1 + n * v),
      };
      check(`${variant} shared buffer`, got, logits, targets, n, v, 0.5);
      assertClose(all.slice(3, 3 + n * v), logits, { atol: 0, rtol: 0 }, "logits kept");
      deepStrictEqual([...all.slice(0, 3), all[3 + n * v + n], ...all.slice(size - 2)], [
        0,
        0,
        0,
        0,
        0,
        0,
      ]);
      gpu.release(buf);
    });
  },
});

Deno.test({
  name: "softmaxCrossEntropy tiled folds more than 65535 rows into a 2-D grid",
  ...GPU_TEST,
  fn: async () => {
    const gpu = (await testGpu()).withVariant("tiled");
    const [n, v] = [65537 + 300, 2];
    const logits = uniform(n * v, 31, -2, 2);
    const targets = randomTargets(n, v, 32);
    const got = await run(gpu, logits, targets, n, v, "separate", 1);
    check("tiled folded grid", got, logits, targets, n, v, 1);
  },
});

Deno.test({
  name: "softmaxCrossEntropy stays correct past llvmpipe's loop budget (V = 300000)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // One regblock thread would need 2·300000/8 = 75000 loop iterations, over llvmpipe's 65535
    // per invocation; software adapters must switch to the tiled kernel instead of truncating.
    const [n, v] = [2, 300000];
    const logits = uniform(n * v, 41, -4, 4);
    const targets = new Uint32Array([v - 1, 123457]);
    await forEachVariant(gpu, async (gpu, variant) => {
      const got = await run(gpu, logits, targets, n, v, "separate", 1);
      check(`${variant} V=${v}`, got, logits, targets, n, v, 1);
    });
    if (gpu.report.isFallback) {
      // Past even the tiled kernel's budget the launcher refuses rather than truncating.
      const huge = gpu.tensor([1, 8_400_000]);
      throws(
        () =>
          softmaxCrossEntropy(gpu, {
            logits: huge,
            targets: gpu.zeros([1], "u32"),
            loss: gpu.tensor([1]),
          }),
        /loop iterations/,
      );
      gpu.release(huge);
    }
  },
});

Deno.test({
  name: "softmaxCrossEntropy rejects bad shapes, dtypes and overlaps before dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const [n, v] = [4, 6];
    const logits = gpu.zeros([n, v]);
    const targets = gpu.zeros([n], "u32");
    const loss = gpu.tensor([n]);
    const dLogits = gpu.tensor([n, v]);
    const before = gpu.dispatchCount;
    type Args = Parameters<typeof softmaxCrossEntropy>[1];
    const call = (a: Partial<Args>) => () =>
      softmaxCrossEntropy(gpu, { logits, targets, loss, dLogits, ...a });
    throws(call({ logits: gpu.tensor([n * v]) }), ShapeError);
    throws(call({ logits: gpu.tensor([n, 0]), dLogits: undefined }), ShapeError);
    throws(call({ logits: gpu.tensor([n, v], "u32") as unknown as Tensor }), ShapeError);
    throws(call({ targets: gpu.tensor([n]) }), /targets: expected dtype u32/);
    throws(call({ targets: gpu.tensor([n + 1], "u32") }), ShapeError);
    throws(call({ loss: gpu.tensor([n, 1]) }), /loss: expected shape \[4\], got \[4, 1\]/);
    throws(call({ loss: gpu.tensor([n], "i32") }), ShapeError);
    throws(call({ dLogits: gpu.tensor([n, v + 1]) }), /dLogits: expected shape \[4, 6\]/);
    throws(call({ dLogits: gpu.tensor([n, v], "u32") }), ShapeError);
    throws(call({ gradScale: NaN }), RangeError);
    const big = gpu.zeros([2 * n * v + n]);
    const l0 = big.view(0, [n, v]);
    throws(call({ logits: l0, dLogits: big.view(v, [n, v]) }), /partially overlaps/);
    throws(call({ logits: l0, loss: big.view(n * v - 1, [n]) }), /loss .* overlaps logits/);
    throws(
      call({ dLogits: big.view(n, [n, v]), loss: big.view(2, [n]) }),
      /loss .* overlaps dLogits/,
    );
    deepStrictEqual(gpu.dispatchCount, before, "nothing was dispatched");
    // The allowed aliases pass validation: in place, and disjoint views of one buffer.
    softmaxCrossEntropy(gpu, { logits: l0, targets, loss, dLogits: l0 });
    softmaxCrossEntropy(gpu, {
      logits: l0,
      targets,
      loss: big.view(2 * n * v, [n]),
      dLogits: big.view(n * v, [n, v]),
    });
    await gpu.sync();
  },
});
