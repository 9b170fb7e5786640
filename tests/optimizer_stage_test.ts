import {
  createOptimizer,
  type OptimizerSettings,
  optimizerStep,
  restartAveraging,
  startAveraging,
  swapAveraged,
} from "../pipeline/optimizer.ts";
import type { Param } from "../models/params.ts";
import { assertClose, bernoulliMask, GPU_TEST, testGpu, uniform } from "./_util.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";

function makeParams(
  gpu: Gpu,
  seed: number,
): { params: Param[]; host: { w: Float32Array; g: Float32Array; m?: Float32Array }[] } {
  const shapes = [[7, 5], [13]];
  const host = shapes.map((shape, i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return {
      w: uniform(n, seed + 3 * i),
      g: uniform(n, seed + 3 * i + 1, -3, 3),
      m: i === 0 ? bernoulliMask(n, 0.5, seed + 3 * i + 2) : undefined,
    };
  });
  const params = shapes.map((shape, i): Param => ({
    name: `p${i}`,
    shape,
    blocks: [shape[0]],
    sparse: i === 0,
    init: { kind: "zeros" },
    value: gpu.upload(shape, host[i].m ? host[i].w.map((v, j) => v * host[i].m![j]) : host[i].w),
    grad: gpu.upload(shape, host[i].g),
    mask: host[i].m ? gpu.upload(shape, host[i].m!) : undefined,
  }));
  return { params, host };
}

const SETTINGS: OptimizerSettings = {
  kind: "sgd",
  lr: 0.5,
  weightDecay: 0.01,
  momentum: 0.9,
  clip: 0.25,
  adam: { beta1: 0, beta2: 0.999, eps: 1e-9 },
};

Deno.test({
  name:
    "optimizer stage clips by the global norm of all gradients, then updates every tensor (masked)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const { params, host } = makeParams(gpu, 5);
    let opt = createOptimizer(gpu, params, SETTINGS);
    opt = optimizerStep(gpu, params, opt, SETTINGS);
    if (opt.step !== 1) throw new Error("step not advanced");
    // The norm includes inactive positions of the masked tensor's gradient (spec §6).
    const norm = Math.sqrt(host.reduce((s, h) => s + h.g.reduce((a, v) => a + v * v, 0), 0));
    const f = Math.min(1, SETTINGS.clip / (norm + 1e-6));
    if (f >= 1) throw new Error("test data should make the clip active");
    for (const [i, p] of params.entries()) {
      const h = host[i];
      const want = h.w.map((w, j) => {
        const w0 = h.m ? w * h.m[j] : w;
        const w1 = w0 - SETTINGS.lr * (f * h.g[j] + SETTINGS.weightDecay * w0);
        return h.m ? (h.m[j] ? w1 : 0) : w1;
      });
      const got = await gpu.read(p.value);
      assertClose(got, want, { atol: 1e-6, rtol: 1e-5 }, p.name);
      if (h.m && got.some((v, j) => !h.m![j] && v !== 0)) {
        throw new Error("inactive weight not exactly 0");
      }
    }
  },
});

Deno.test({
  name: "NT-ASGD stage averages iterates after the switch and swaps averaged weights in and out",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const { params } = makeParams(gpu, 9);
    const settings = { ...SETTINGS, kind: "ntasgd" as const, clip: 0 };
    let opt = createOptimizer(gpu, params, settings);
    opt = optimizerStep(gpu, params, opt, settings); // plain SGD before the trigger
    opt = startAveraging(gpu, params, opt);
    const iterates: Float32Array[] = [];
    for (let k = 0; k < 4; k++) {
      opt = optimizerStep(gpu, params, opt, settings);
      iterates.push(await gpu.read(params[1].value) as Float32Array);
    }
    // Counter rule (spec §5.3): steps 1 and 2 of the averaging phase copy, then running mean,
    // so after 4 averaged steps ax = mean of iterates 2..4.
    const want = iterates[1].map((_, j) => (iterates[1][j] + iterates[2][j] + iterates[3][j]) / 3);
    const raw = await gpu.read(params[1].value) as Float32Array;
    swapAveraged(gpu, params, opt);
    assertClose(await gpu.read(params[1].value), want, { atol: 1e-6, rtol: 1e-5 }, "averaged");
    swapAveraged(gpu, params, opt);
    assertClose(await gpu.read(params[1].value), raw, { atol: 0, rtol: 0 }, "restored");
  },
});

Deno.test({
  name: "SNT-ASGD step sizes: per-step, or lagging (masked: first averaged lr; dense: one late)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // no weight decay and a zero-free gradient: each step moves w by exactly -lr·g, so the lr
    // every tensor took is read off its weight change
    const base = { ...SETTINGS, kind: "ntasgd" as const, clip: 0, weightDecay: 0 };
    const lrs = [0.5, 0.25, 0.125];
    for (const asgdEta of ["per-step", "lagging"] as const) {
      const { params, host } = makeParams(gpu, 13);
      let opt = startAveraging(gpu, params, createOptimizer(gpu, params, base));
      const taken: number[][] = [[], []];
      for (const lr of lrs) {
        const before = await Promise.all(params.map((p) => gpu.read(p.value)));
        opt = optimizerStep(gpu, params, opt, { ...base, lr, asgdEta });
        for (const [i, p] of params.entries()) {
          const after = await gpu.read(p.value);
          const j = host[i].m ? host[i].m!.indexOf(1) : 0;
          taken[i].push(Math.fround((before[i][j] - after[j]) / host[i].g[j]));
        }
      }
      const want = asgdEta === "per-step" ? [lrs, lrs] : [[0.5, 0.5, 0.5], [0.5, 0.5, 0.25]];
      for (const i of [0, 1]) {
        assertClose(taken[i], want[i], { atol: 0, rtol: 1e-5 }, `${asgdEta} p${i} lrs`);
      }
      if (asgdEta === "lagging") {
        // a restart sets them again: the masked tensor takes the next step's lr from now on
        opt = restartAveraging(gpu, opt);
        if (opt.eta.sparse !== null || opt.eta.dense !== null) throw new Error("eta not reset");
        opt = optimizerStep(gpu, params, opt, { ...base, lr: 0.0625, asgdEta });
        if (opt.eta.sparse !== 0.0625 || opt.eta.dense !== 0.0625) {
          throw new Error(`eta after restart ${JSON.stringify(opt.eta)}`);
        }
      }
    }
  },
});

Deno.test({
  name: "SNT-ASGD restart: averages and counters start again from the current weights",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const { params } = makeParams(gpu, 17);
    const settings = { ...SETTINGS, kind: "ntasgd" as const, clip: 0 };
    let opt = startAveraging(gpu, params, createOptimizer(gpu, params, settings));
    for (let k = 0; k < 3; k++) opt = optimizerStep(gpu, params, opt, settings);
    opt = restartAveraging(gpu, opt);
    const iterates: Float32Array[] = [];
    for (let k = 0; k < 3; k++) {
      opt = optimizerStep(gpu, params, opt, settings);
      iterates.push(await gpu.read(params[1].value) as Float32Array);
    }
    // as after a fresh start: steps 1 and 2 copy, so ax = mean of iterates 2..3 of the restart
    const want = iterates[1].map((v, j) => (v + iterates[2][j]) / 2);
    swapAveraged(gpu, params, opt);
    assertClose(await gpu.read(params[1].value), want, { atol: 1e-6, rtol: 1e-5 }, "averaged");
    swapAveraged(gpu, params, opt);
    let threw = false;
    try {
      restartAveraging(gpu, createOptimizer(gpu, params, settings));
    } catch {
      threw = true;
    }
    if (!threw) throw new Error("a restart before averaging was accepted");
  },
});
