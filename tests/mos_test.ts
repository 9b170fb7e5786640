import { ok, throws } from "node:assert/strict";
import { GPU_TEST, testGpu, uniform } from "./_util.ts";
import { maxAbs, maxDiff } from "./_grad_util.ts";
import { expertMajor, mosMixture, scaleRows, tanhGrad } from "../kernels/cells/mos.ts";
import { mosMixtureRef } from "../kernels/cells/mos_ref.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";

const N = 37, K = 5;

/** Prior logits and expert NLLs: ordinary, one expert dominating, and P under the clamp. */
function inputs(kind: "plain" | "dominant" | "clamped", seed: number) {
  const u = Float64Array.from(uniform(N * K, seed, -2, 2));
  const nll = Float64Array.from(uniform(K * N, seed + 1, 0.5, 6));
  if (kind === "dominant") { for (let n = 0; n < N; n++) u[n * K + 2] += 6; }
  // half the rows with every expert's likelihood below e^-25 ≈ 1.4e-11 < 1e-8
  if (kind === "clamped") { for (let i = 0; i < K * N; i++) if ((i % N) % 2 === 0) nll[i] += 25; }
  return { u, nll };
}

Deno.test("mos mixture ref: gradients are the central differences of the clamped loss", () => {
  for (const kind of ["plain", "dominant", "clamped"] as const) {
    const { u, nll } = inputs(kind, 3);
    const r = mosMixtureRef({ u, nll, N, K });
    const total = () => mosMixtureRef({ u, nll, N, K }).loss.reduce((s, v) => s + v, 0);
    const h = 1e-6;
    for (const [x, g, name] of [[u, r.dPrior, "u"], [nll, r.w, "nll"]] as const) {
      const fd = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const save = x[i];
        x[i] = save + h;
        const up = total();
        x[i] = save - h;
        const dn = total();
        x[i] = save;
        fd[i] = (up - dn) / (2 * h);
      }
      ok(maxAbs(g) > 1e-4, `${kind} ${name}: gradient ~0`);
      ok(maxDiff(g, fd) < 1e-6 * Math.max(1, maxAbs(g)), `${kind} ${name}: vs FD`);
    }
    if (kind === "clamped") {
      // −log(P + 1e-8) caps near 18.42 and the clamped rows pass almost no gradient
      ok(r.loss.every((v) => v <= -Math.log(1e-8) + 1e-9), "clamp");
      ok(Math.abs(r.w[0]) < 1e-2, `clamped row's weight ${r.w[0]}`);
    }
  }
});

Deno.test({
  name: "mos mixture: GPU loss rows and gradients equal the f64 reference (plain, dominant, clamp)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    for (const kind of ["plain", "dominant", "clamped"] as const) {
      const { u, nll } = inputs(kind, 11);
      const ref = mosMixtureRef({ u, nll, N, K, scale: 1 / N });
      const ut = gpu.upload([N, K], Float32Array.from(u));
      const nt = gpu.upload([K, N], Float32Array.from(nll));
      // the f32 inputs are what the GPU sees: compare with the reference on them
      const r32 = mosMixtureRef({
        u: Float32Array.from(u),
        nll: Float32Array.from(nll),
        N,
        K,
        scale: 1 / N,
      });
      const loss = gpu.tensor([N]), w = gpu.tensor([K, N]), dPrior = gpu.tensor([N, K]);
      mosMixture(gpu, { u: ut, nll: nt, loss, w, dPrior, scale: 1 / N });
      const [l, wv, dp] = [await gpu.read(loss), await gpu.read(w), await gpu.read(dPrior)];
      // log-space f32 over K = 5 terms of magnitude ≤ 40: ~1e-6 relative on the loss
      for (let n = 0; n < N; n++) {
        ok(Math.abs(l[n] - r32.loss[n]) <= 2e-5 * Math.max(1, r32.loss[n]), `${kind} loss ${n}`);
      }
      ok(maxDiff(wv, r32.w) <= 2e-5 / N, `${kind} w: ${maxDiff(wv, r32.w)}`);
      ok(maxDiff(dp, r32.dPrior) <= 2e-5 / N, `${kind} dPrior: ${maxDiff(dp, r32.dPrior)}`);
      ok(maxDiff(l, ref.loss) <= 1e-4 * 20, `${kind}: f32 rounding of the inputs only`);
      // the loss-only form gives the same rows
      const l2 = gpu.tensor([N]);
      mosMixture(gpu, { u: ut, nll: nt, loss: l2 });
      ok(maxDiff(await gpu.read(l2), l) === 0, `${kind}: loss-only form`);
    }
    const u = gpu.tensor([N, K]);
    throws(
      () => mosMixture(gpu, { u, nll: gpu.tensor([N, K]), loss: gpu.tensor([N]) }),
      ShapeError,
    );
    throws(
      () => mosMixture(gpu, { u, nll: gpu.tensor([K, N]), loss: gpu.tensor([N]), w: u }),
      /both w and dPrior/,
    );
  },
});

Deno.test({
  name: "mos: expert-major reorder and back, row scaling, tanh gradient",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const E = 3;
    const x = Float32Array.from({ length: N * K * E }, (_, i) => i);
    const xt = gpu.upload([N, K * E], x), yt = gpu.tensor([K, N, E]), back = gpu.tensor([N, K * E]);
    expertMajor(gpu, { x: xt, y: yt, a: N, b: K, e: E });
    const y = await gpu.read(yt);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        for (let e = 0; e < E; e++) {
          if (y[(k * N + n) * E + e] !== x[n * K * E + k * E + e]) {
            throw new Error(`${n} ${k} ${e}`);
          }
        }
      }
    }
    expertMajor(gpu, { x: yt, y: back, a: K, b: N, e: E });
    ok((await gpu.read(back)).every((v, i) => v === x[i]), "round trip");
    const m = Float32Array.from(uniform(N * 7, 5)), s = Float32Array.from(uniform(N, 6));
    const mt = gpu.upload([N, 7], m);
    scaleRows(gpu, { x: mt, s: gpu.upload([N], s) });
    const got = await gpu.read(mt);
    ok(got.every((v, i) => v === Math.fround(m[i] * s[Math.floor(i / 7)])), "scaleRows");
    const yv = Float32Array.from(uniform(50, 7)), gv = Float32Array.from(uniform(50, 8));
    const g = gpu.upload([50], gv);
    tanhGrad(gpu, { y: gpu.upload([50], yv), g });
    const tg = await gpu.read(g);
    ok(tg.every((v, i) => Math.abs(v - gv[i] * (1 - yv[i] * yv[i])) < 1e-7), "tanhGrad");
  },
});
