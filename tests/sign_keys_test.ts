import { deepStrictEqual, throws } from "node:assert/strict";
import { GPU_TEST, rng, testGpu, uniform } from "./_util.ts";
import { f32Bits, keyBelowIndicator, signedMagnitudeKeys } from "../kernels/select/sign_keys.ts";
import { keyBelowIndicatorRef, signedMagnitudeKeysRef } from "../kernels/select/sign_keys_ref.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";

const gpu = await testGpu();

/** Random weights with the special values every key rule must place: ±0, ±Inf, NaN of both signs. */
function weights(n: number, seed: number): Float32Array {
  const x = uniform(n, seed, -2, 2);
  const bits = new Uint32Array(x.buffer);
  const special = [0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001];
  const r = rng(seed + 1);
  for (let i = 0; i < Math.min(n, 12); i++) {
    bits[Math.floor(r() * n)] = special[i % special.length];
  }
  return x;
}

Deno.test({
  name: "signedMagnitudeKeys matches the reference on both sides (±0, ±Inf, NaN, odd sizes, views)",
  ...GPU_TEST,
  fn: async () => {
    for (const n of [1, 3, 17, 127, 1031]) {
      const x = weights(n, n);
      // Offset views: the kernel must add P.off_*.
      const xt = gpu.upload(
        [n + 5],
        new Float32Array(n + 5).fill(9).map((v, i) => i < 5 ? v : x[i - 5]),
      );
      const kt = gpu.upload([n + 3], new Uint32Array(n + 3).fill(7), "u32");
      for (const side of ["positive", "negative"] as const) {
        signedMagnitudeKeys(gpu, { x: xt.view(5, [n]), keys: kt.view(3, [n]), side });
        const got = await gpu.read(kt);
        deepStrictEqual(
          Array.from(got.slice(0, 3)),
          [7, 7, 7],
          `n=${n} ${side}: wrote before view`,
        );
        deepStrictEqual(
          Array.from(got.slice(3)),
          Array.from(signedMagnitudeKeysRef(x, side)),
          `n=${n} ${side}`,
        );
      }
      gpu.release(xt);
      gpu.release(kt);
    }
  },
});

Deno.test({
  name: "signed keys rank each side by closeness to zero and put the other side last",
  ...GPU_TEST,
  fn: async () => {
    const x = Float32Array.of(0.5, -0.25, 0, -0, 2, -3);
    const xt = gpu.upload([6], x);
    const kt = gpu.tensor([6], "u32");
    signedMagnitudeKeys(gpu, { x: xt, keys: kt, side: "positive" });
    const pos = await gpu.read(kt);
    const F = 0xffffffff;
    deepStrictEqual(Array.from(pos), [f32Bits(0.5), F, 0, F, f32Bits(2), F]);
    signedMagnitudeKeys(gpu, { x: xt, keys: kt, side: "negative" });
    const neg = await gpu.read(kt);
    deepStrictEqual(Array.from(neg), [F, f32Bits(0.25), F, 0, F, f32Bits(3)]);
    gpu.release(xt);
    gpu.release(kt);
  },
});

Deno.test({
  name: "keyBelowIndicator matches the reference (mask incl. NaN/-0, thresholds at a key, 0, max)",
  ...GPU_TEST,
  fn: async () => {
    for (const n of [1, 3, 17, 127, 1031]) {
      const r = rng(100 + n);
      const keys = Uint32Array.from({ length: n }, () => Math.floor(r() * 4294967296) >>> 0);
      const mask = Float32Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0));
      if (n > 3) {
        mask[1] = NaN;
        mask[2] = -0;
        keys[3] = 0xffffffff;
      }
      const kt = gpu.upload([n], keys, "u32");
      const mt = gpu.upload([n], mask);
      const out = gpu.upload([n], new Float32Array(n).fill(5));
      for (const below of [0, keys[0], keys[n - 1] + 1, 0x80000000, 0xffffffff]) {
        keyBelowIndicator(gpu, { keys: kt, mask: mt, below: below >>> 0, out });
        deepStrictEqual(
          Array.from(await gpu.read(out)),
          Array.from(keyBelowIndicatorRef(keys, mask, below >>> 0)),
          `n=${n} below=${below}`,
        );
      }
      gpu.release(kt);
      gpu.release(mt);
      gpu.release(out);
    }
  },
});

Deno.test({
  name: "sign_keys launchers reject wrong shapes and dtypes before dispatch",
  ...GPU_TEST,
  fn: () => {
    const x = gpu.tensor([8]);
    const x2 = gpu.tensor([2, 4]);
    const k = gpu.tensor([8], "u32");
    const k7 = gpu.tensor([7], "u32");
    const m = gpu.tensor([8]);
    const before = gpu.dispatchCount;
    throws(() => signedMagnitudeKeys(gpu, { x: x2, keys: k, side: "positive" }), ShapeError);
    throws(() => signedMagnitudeKeys(gpu, { x, keys: k7, side: "positive" }), ShapeError);
    throws(
      () => signedMagnitudeKeys(gpu, { x: k as never, keys: k, side: "positive" }),
      ShapeError,
    );
    throws(() => signedMagnitudeKeys(gpu, { x, keys: k, side: "zero" as never }), RangeError);
    throws(() => keyBelowIndicator(gpu, { keys: k7, mask: m, below: 1, out: x }), ShapeError);
    throws(() => keyBelowIndicator(gpu, { keys: k, mask: x2, below: 1, out: x }), ShapeError);
    throws(
      () => keyBelowIndicator(gpu, { keys: k, mask: m, below: 1, out: k as never }),
      ShapeError,
    );
    throws(() => keyBelowIndicator(gpu, { keys: k, mask: m, below: -1, out: x }), RangeError);
    throws(() => keyBelowIndicator(gpu, { keys: k, mask: m, below: 1, out: m }), ShapeError);
    deepStrictEqual(gpu.dispatchCount, before);
    for (const t of [x, x2, k, k7, m]) gpu.release(t);
  },
});
