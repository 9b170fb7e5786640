import { ok, throws } from "node:assert/strict";
import { assertClose, GPU_TEST, testGpu, uniform } from "./_util.ts";
import { activationRegGrad } from "../kernels/cells/activation_reg.ts";
import { activationRegRef } from "../kernels/cells/activation_reg_ref.ts";

Deno.test("activation reg ref: the gradient equals central differences of AR + TAR", () => {
  const T = 4, B = 2, D = 3;
  const y = Array.from(uniform(T * B * D, 1));
  const { grad } = activationRegRef(y, T, B, D, 2, 1);
  const h = 1e-6;
  for (let i = 0; i < y.length; i++) {
    const up = [...y], dn = [...y];
    up[i] += h, dn[i] -= h;
    const fd =
      (activationRegRef(up, T, B, D, 2, 1).value - activationRegRef(dn, T, B, D, 2, 1).value) /
      (2 * h);
    ok(Math.abs(fd - grad[i]) < 1e-8, `grad[${i}] ${grad[i]} vs ${fd}`);
  }
});

Deno.test({
  name: "activation reg: the GPU gradient accumulates the reference's (AR, TAR, both, T = 1)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    for (const [T, B, D, alpha, beta] of [[5, 3, 7, 2, 1], [1, 4, 5, 2, 1], [6, 2, 33, 0, 1]]) {
      const y = uniform(T * B * D, 10 + T);
      const g0 = uniform(T * B * D, 20 + T);
      const ty = gpu.upload([T * B, D], y), tg = gpu.upload([T * B, D], g0);
      activationRegGrad(gpu, { y: ty, g: tg, B, alpha, beta });
      const { grad } = activationRegRef(y, T, B, D, alpha, beta);
      const want = Array.from(g0, (v, i) => v + grad[i]);
      assertClose(
        await gpu.read(tg),
        want,
        { atol: 1e-6, rtol: 1e-6 },
        `T=${T} a=${alpha} b=${beta}`,
      );
    }
    const t = gpu.tensor([6, 3]);
    throws(() => activationRegGrad(gpu, { y: t, g: t, B: 3, alpha: 1, beta: 1 }));
    throws(() => activationRegGrad(gpu, { y: t, g: gpu.tensor([6, 3]), B: 4, alpha: 1, beta: 1 }));
  },
});
