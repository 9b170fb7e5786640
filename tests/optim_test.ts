import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { adamStep, asgdAverage, momentumStep, sgdStep } from "../kernels/optim/optim.ts";
import {
  adamStepRef,
  asgdAverageRef,
  momentumStepRef,
  sgdStepRef,
} from "../kernels/optim/optim_ref.ts";
import { clipCoefficient, reduce } from "../kernels/dense/reduce.ts";
import { clipCoefficientRef, reduceRef } from "../kernels/dense/reduce_ref.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { ShapeError, type Tensor } from "../kernels/runtime/tensor.ts";
import { assertClose, bernoulliMask, GPU_TEST, testGpu, type Tolerance, uniform } from "./_util.ts";

const SIZES = [1, 17, 1000, 100_003];
const DENSITIES: (number | null)[] = [null, 0, 0.33, 1]; // null: no mask
const STEPS = 5;
const SCALE = 0.37; // gradScale when used (any value in (0, 1) a clip factor could take)

/**
 * Each step is a handful of f32 operations on O(1) values (w, g ∈ [-1, 1], lr ≤ 0.1); the
 * reference does the same in f64 and stores f32, so per step the two differ by a few ulps of
 * O(1), i.e. ~1e-7, and 5 steps of mild compounding stay well below 1e-5. Adam's v is
 * (1−β2)·g² ~ 1e-3 and positive, so only a relative bound is meaningful for it.
 */
const W_TOL: Tolerance = { atol: 1e-5, rtol: 1e-5 };
const V_TOL: Tolerance = { atol: 1e-12, rtol: 1e-5 };

type Host = Float32Array | Uint32Array;

/** A state tensor of an optimizer: its initial contents and how to compare it. */
interface StateDecl {
  name: string;
  init: (n: number, seed: number) => Host;
  tol: Tolerance | "exact";
}

interface StepCtx {
  step: number;
  /** Selects one of two hyper-parameter sets, alternating over the test matrix. */
  alt: boolean;
  gradScale?: Tensor;
  mask?: Tensor;
}

interface HostCtx {
  step: number;
  alt: boolean;
  gradScale?: number;
  mask?: Float32Array;
}

interface OptimCase {
  name: string;
  state: StateDecl[];
  gpuStep(gpu: Gpu, w: Tensor, g: Tensor, s: Tensor[], c: StepCtx): void;
  refStep(w: Float32Array, g: Float32Array, s: Host[], c: HostCtx): void;
}

const randomState = (lo: number, hi: number) => (n: number, seed: number) =>
  uniform(n, seed, lo, hi);

const momentumHyper = (c: { alt: boolean; step: number }) => ({
  lr: 0.05,
  momentum: 0.9,
  wd: 0.01,
  dampening: c.alt ? 0.1 : 0,
  nesterov: c.alt,
  firstStep: c.alt && c.step === 1,
});

// Selfish-RNN's Table 3 Adam (β1 = 0, eps = 1e-9) and PyTorch's defaults.
const adamHyper = (c: { alt: boolean; step: number }) => ({
  lr: 0.01,
  beta1: c.alt ? 0 : 0.9,
  beta2: 0.999,
  eps: c.alt ? 1e-9 : 1e-8,
  wd: c.alt ? 1.2e-6 : 0.01,
  step: c.step,
});

const CASES: OptimCase[] = [
  {
    name: "sgdStep",
    state: [],
    gpuStep: (gpu, w, g, _s, c) =>
      sgdStep(gpu, { w, g, lr: 0.1, wd: 0.01, gradScale: c.gradScale, mask: c.mask }),
    refStep: (w, g, _s, c) =>
      sgdStepRef(w, g, { lr: 0.1, wd: 0.01, gradScale: c.gradScale, mask: c.mask }),
  },
  {
    name: "momentumStep",
    state: [{ name: "buf", init: randomState(-1, 1), tol: W_TOL }],
    gpuStep: (gpu, w, g, [buf], c) =>
      momentumStep(gpu, { w, g, buf, ...momentumHyper(c), gradScale: c.gradScale, mask: c.mask }),
    refStep: (w, g, [buf], c) =>
      momentumStepRef(w, g, buf as Float32Array, {
        ...momentumHyper(c),
        gradScale: c.gradScale,
        mask: c.mask,
      }),
  },
  {
    name: "adamStep",
    state: [
      { name: "m", init: randomState(-0.5, 0.5), tol: W_TOL },
      { name: "v", init: randomState(0, 0.5), tol: V_TOL },
    ],
    gpuStep: (gpu, w, g, [m, v], c) =>
      adamStep(gpu, { w, g, m, v, ...adamHyper(c), gradScale: c.gradScale, mask: c.mask }),
    refStep: (w, g, [m, v], c) =>
      adamStepRef(w, g, m as Float32Array, v as Float32Array, {
        ...adamHyper(c),
        gradScale: c.gradScale,
        mask: c.mask,
      }),
  },
  {
    // Per-weight moment ages (sparse training): ages 0..9, so some weights take a fresh Adam's
    // first step while others are corrected as after up to 10 steps, whatever `step` says.
    name: "adamStep with per-weight ages",
    state: [
      { name: "m", init: randomState(-0.5, 0.5), tol: W_TOL },
      { name: "v", init: randomState(0, 0.5), tol: V_TOL },
      {
        name: "age",
        init: (n, seed) => Uint32Array.from(uniform(n, seed, 0, 10), Math.floor),
        tol: "exact",
      },
    ],
    gpuStep: (gpu, w, g, [m, v, age], c) =>
      adamStep(gpu, {
        w,
        g,
        m,
        v,
        age,
        ...adamHyper(c),
        step: 1000 + c.step,
        gradScale: c.gradScale,
        mask: c.mask,
      }),
    refStep: (w, g, [m, v, age], c) =>
      adamStepRef(w, g, m as Float32Array, v as Float32Array, {
        ...adamHyper(c),
        step: 1000 + c.step,
        age: age as Uint32Array,
        gradScale: c.gradScale,
        mask: c.mask,
      }),
  },
  {
    // SNT-ASGD as used in training: an SGD step, then the averaging kernel.
    name: "sgdStep + asgdAverage",
    state: [
      { name: "ax", init: randomState(-1, 1), tol: W_TOL },
      {
        name: "count",
        init: (n, seed) => Uint32Array.from(uniform(n, seed, 0, 4), Math.floor),
        tol: "exact",
      },
    ],
    gpuStep: (gpu, w, g, [ax, count], c) => {
      sgdStep(gpu, { w, g, lr: 0.1, wd: 0.01, gradScale: c.gradScale, mask: c.mask });
      asgdAverage(gpu, { w, ax, count, mask: c.mask });
    },
    refStep: (w, g, [ax, count], c) => {
      sgdStepRef(w, g, { lr: 0.1, wd: 0.01, gradScale: c.gradScale, mask: c.mask });
      asgdAverageRef(w, ax as Float32Array, count as Uint32Array, c.mask);
    },
  },
];

function upload(gpu: Gpu, data: Host): Tensor {
  return data instanceof Uint32Array
    ? gpu.upload([data.length], data, "u32")
    : gpu.upload([data.length], data);
}

/** Every inactive entry of `w` and of each state array must be exactly 0. */
function assertInactiveZero(mask: Float32Array, arrays: [string, Host][], label: string): void {
  for (const [name, a] of arrays) {
    for (let i = 0; i < mask.length; i++) {
      if (mask[i] === 0 && a[i] !== 0) {
        throw new Error(`${label}: inactive ${name}[${i}] = ${a[i]}, expected exactly 0`);
      }
    }
  }
}

async function runMatrix(oc: OptimCase): Promise<void> {
  const gpu = await testGpu();
  let config = 0;
  for (const n of SIZES) {
    for (const density of DENSITIES) {
      for (const scaled of [false, true]) {
        const alt = config++ % 2 === 1;
        const seed = 1000 * config + n;
        // Random weights and state even where the mask is 0: the update itself must clear them.
        const hw = uniform(n, seed, -1, 1);
        const hs = oc.state.map((d, k) => d.init(n, seed + 10 + k));
        const w = gpu.upload([n], hw);
        const g = gpu.tensor([n]);
        const s = hs.map((h) => upload(gpu, h));
        const gradScale = scaled ? gpu.upload([1], [SCALE]) : undefined;
        const mask = density === null ? undefined : gpu.tensor([n]);
        for (let step = 1; step <= STEPS; step++) {
          const hg = uniform(n, seed + 100 * step, -1, 1);
          gpu.write(g, hg);
          // The mask changes at step 3 (removal and regrowth in one go).
          const hm = density === null
            ? undefined
            : bernoulliMask(n, density, seed + (step >= 3 ? 7 : 0));
          if (mask && hm) gpu.write(mask, hm);
          oc.gpuStep(gpu, w, g, s, { step, alt, gradScale, mask });
          oc.refStep(hw, hg, hs, {
            step,
            alt,
            gradScale: scaled ? Math.fround(SCALE) : undefined,
            mask: hm,
          });
          const label = `${oc.name} n=${n} density=${density} scaled=${scaled} alt=${alt} ` +
            `step=${step}`;
          const gw = await gpu.read(w);
          assertClose(gw, hw, W_TOL, `${label} w`);
          const got: [string, Host][] = [["w", gw]];
          for (let k = 0; k < s.length; k++) {
            const d = oc.state[k];
            const gs = (await gpu.read(s[k])) as Host;
            if (d.tol === "exact") assertEquals([...gs], [...hs[k]], `${label} ${d.name}`);
            else assertClose(gs, hs[k], d.tol, `${label} ${d.name}`);
            got.push([d.name, gs]);
          }
          if (hm) assertInactiveZero(hm, got, label);
        }
        [w, g, ...s].forEach((t) => gpu.release(t));
        if (gradScale) gpu.release(gradScale);
        if (mask) gpu.release(mask);
      }
    }
  }
}

for (const oc of CASES) {
  Deno.test({
    name: `optim: ${oc.name} vs CPU reference, 5 steps, sizes 1..100003, masks, gradScale`,
    ...GPU_TEST,
    fn: () => runMatrix(oc),
  });
}

/** Mean of `xs[from..to]` (inclusive, 0-based) in f64. */
function mean(xs: number[], from: number, to: number): number {
  let s = 0;
  for (let i = from; i <= to; i++) s += xs[i];
  return s / (to - from + 1);
}

Deno.test({
  name: "asgdAverage: dense ax = mean of iterates 2..k; removed-then-regrown weight restarts",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // Element 0 always active; element 1 removed at step 4 and regrown at step 5; element 2
    // inactive throughout.
    const pattern = [
      [1, 1, 0],
      [1, 1, 0],
      [1, 1, 0],
      [1, 0, 0],
      [1, 1, 0],
      [1, 1, 0],
      [1, 1, 0],
    ];
    const w = gpu.upload([3], [0.5, -0.25, 0.75]);
    const g = gpu.tensor([3]);
    const mask = gpu.tensor([3]);
    const ax = gpu.zeros([3]);
    const count = gpu.zeros([3], "u32");
    // The dense path on its own tensor: same iterates as element 0, no mask.
    const wd = gpu.upload([1], [0.5]);
    const axd = gpu.zeros([1]);
    const countd = gpu.zeros([1], "u32");
    const iter0: number[] = [], iter1: number[] = [];
    for (let k = 1; k <= pattern.length; k++) {
      const hg = uniform(3, 40 + k, -1, 1);
      gpu.write(g, hg);
      gpu.write(mask, pattern[k - 1]);
      sgdStep(gpu, { w, g, lr: 0.3, mask });
      asgdAverage(gpu, { w, ax, count, mask });
      sgdStep(gpu, { w: wd, g: g.view(0, [1]), lr: 0.3 });
      asgdAverage(gpu, { w: wd, ax: axd, count: countd });
      const hw = await gpu.read(w);
      iter0.push(hw[0]);
      iter1.push(hw[1]);
      const hax = await gpu.read(ax);
      const hc = await gpu.read(count);
      const label = `step ${k}`;
      // Dense ASGD (PyTorch, t0 = 0): step 1 copies, then the mean of iterates 2..k.
      const want0 = k === 1 ? iter0[0] : mean(iter0, 1, k - 1);
      // Element 1: life 1 is steps 1-3, removed at 4, life 2 starts at step 5 (its iterate 1);
      // within a life the average covers iterates 2..s, so after step 7 it is mean(w6, w7).
      const want1 = k === 4
        ? 0
        : k <= 3
        ? (k === 1 ? iter1[0] : mean(iter1, 1, k - 1))
        : k === 5
        ? iter1[4]
        : mean(iter1, 5, k - 1);
      // Running f32 mean over ≤ 7 values of O(1): a few ulps.
      const tol = { atol: 1e-6, rtol: 1e-6 };
      assertClose([hax[0], hax[1]], [want0, want1], tol, `${label} ax`);
      assertEquals(hax[2], 0, `${label} never-active ax`);
      assertEquals([...hc], [k, k <= 3 ? k : k - 4, 0], `${label} count`);
      if (k === 4) assertEquals(hw[1], 0, "removed weight is 0");
      // The masked kernel with an always-active weight equals the dense kernel bit for bit.
      assertEquals((await gpu.read(wd))[0], hw[0], `${label} dense w`);
      assertEquals((await gpu.read(axd))[0], hax[0], `${label} dense ax`);
      assertEquals((await gpu.read(countd))[0], k, `${label} dense count`);
    }
    [w, g, mask, ax, count, wd, axd, countd].forEach((t) => gpu.release(t));
  },
});

Deno.test({
  name: "optim: clip factor from reduce + clipCoefficient scales the SGD update on the GPU",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const sizes = [1000, 17, 100_003];
    const hw = sizes.map((n, i) => uniform(n, 60 + i, -1, 1));
    const hg = sizes.map((n, i) => uniform(n, 70 + i, -1, 1));
    const w = hw.map((h) => gpu.upload([h.length], h));
    const g = hg.map((h) => gpu.upload([h.length], h));
    const sq = gpu.zeros([sizes.length]);
    const coef = gpu.zeros([1]);
    g.forEach((t, i) => reduce(gpu, { op: "sumsq", x: t, out: sq, outIndex: i }));
    clipCoefficient(gpu, { sumsq: sq, maxNorm: 5, out: coef });
    w.forEach((t, i) => sgdStep(gpu, { w: t, g: g[i], lr: 0.5, gradScale: coef }));
    const { coef: c } = clipCoefficientRef(hg.map((h) => reduceRef("sumsq", h)), 5);
    if (!(c < 0.1)) throw new Error(`test data should clip, coef ${c}`);
    for (let i = 0; i < sizes.length; i++) {
      sgdStepRef(hw[i], hg[i], { lr: 0.5, gradScale: c });
      // The GPU clip factor is within ~3e-5 relative of the f64 one (see reduce_test); times
      // lr·|g| ≤ 0.5 that is ≤ 2e-5 absolute.
      assertClose(await gpu.read(w[i]), hw[i], { atol: 3e-5, rtol: 1e-5 }, `w${i}`);
    }
    [...w, ...g, sq, coef].forEach((t) => gpu.release(t));
  },
});

Deno.test({
  name: "optim: state packed as views of one buffer, nonzero offsets",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const n = 1001;
    const hw = uniform(n, 90, -1, 1), hg = uniform(n, 91, -1, 1);
    const hm = uniform(n, 92, -0.5, 0.5), hv = uniform(n, 93, 0, 0.5);
    const mask = bernoulliMask(n, 0.5, 94);
    // w, m, v in one buffer after 3 padding elements; g and mask share another.
    const packed = new Float32Array(3 + 3 * n);
    packed.set(hw, 3);
    packed.set(hm, 3 + n);
    packed.set(hv, 3 + 2 * n);
    const big = gpu.upload([packed.length], packed);
    const other = gpu.upload([1 + 2 * n], new Float32Array([0, ...hg, ...mask]));
    const args = {
      w: big.view(3, [n]),
      m: big.view(3 + n, [n]),
      v: big.view(3 + 2 * n, [n]),
      g: other.view(1, [n]),
      mask: other.view(1 + n, [n]),
      lr: 0.01,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      step: 3,
    };
    adamStep(gpu, args);
    adamStepRef(hw, hg, hm, hv, { ...args, mask });
    const got = await gpu.read(big);
    assertEquals([...got.subarray(0, 3)], [0, 0, 0], "padding untouched");
    assertClose(got.subarray(3, 3 + n), hw, W_TOL, "w");
    assertClose(got.subarray(3 + n, 3 + 2 * n), hm, W_TOL, "m");
    assertClose(got.subarray(3 + 2 * n), hv, V_TOL, "v");
    assertInactiveZero(mask, [["w", got.subarray(3, 3 + n)]], "packed");
    gpu.release(big);
    gpu.release(other);
  },
});

Deno.test({
  name: "optim: bad shapes, dtypes and overlapping operands throw before dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const w = gpu.zeros([4, 5]);
    const g = gpu.zeros([20]); // same size, other shape: allowed
    const g19 = gpu.zeros([19]);
    const s = gpu.zeros([20]);
    const s2 = gpu.zeros([20]);
    const u = gpu.zeros([20], "u32");
    const one = gpu.zeros([1]);
    const two = gpu.zeros([2]);
    const before = gpu.dispatchCount;
    const adam = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 };
    const bad: [string, () => void][] = [
      ["sgd g size", () => sgdStep(gpu, { w, g: g19, lr: 1 })],
      ["sgd w dtype", () => sgdStep(gpu, { w: u, g, lr: 1 })],
      ["sgd g dtype", () => sgdStep(gpu, { w, g: u, lr: 1 })],
      ["sgd gradScale [2]", () => sgdStep(gpu, { w, g, lr: 1, gradScale: two })],
      ["sgd mask size", () => sgdStep(gpu, { w, g, lr: 1, mask: g19 })],
      ["sgd mask dtype", () => sgdStep(gpu, { w, g, lr: 1, mask: u })],
      ["sgd w = g", () => sgdStep(gpu, { w, g: w, lr: 1 })],
      ["momentum buf size", () => momentumStep(gpu, { w, g, buf: g19, lr: 1, momentum: 0.9 })],
      ["momentum buf dtype", () => momentumStep(gpu, { w, g, buf: u, lr: 1, momentum: 0.9 })],
      ["adam m size", () => adamStep(gpu, { w, g, m: g19, v: s2, ...adam })],
      ["adam v dtype", () => adamStep(gpu, { w, g, m: s, v: u, ...adam })],
      ["adam m = v", () => adamStep(gpu, { w, g, m: s, v: s, ...adam })],
      ["asgd ax size", () => asgdAverage(gpu, { w, ax: g19, count: u })],
      ["asgd count dtype", () => asgdAverage(gpu, { w, ax: s, count: s2 })],
      ["asgd mask size", () => asgdAverage(gpu, { w, ax: s, count: u, mask: g19 })],
      ["asgd ax = w", () => asgdAverage(gpu, { w, ax: w.reshape([20]), count: u })],
    ];
    for (const [label, f] of bad) assertThrows(f, ShapeError, label);
    assertThrows(() => adamStep(gpu, { w, g, m: s, v: s2, ...adam, step: 0 }), RangeError);
    assertThrows(() => adamStep(gpu, { w, g, m: s, v: s2, ...adam, beta2: 1 }), RangeError);
    assertEquals(gpu.dispatchCount, before, "nothing may be recorded");
    // The valid forms of the same calls do record.
    sgdStep(gpu, { w, g, lr: 1, gradScale: one, mask: s });
    asgdAverage(gpu, { w, ax: s, count: u });
    assertEquals(gpu.dispatchCount, before + 2);
    await gpu.sync();
    [w, g, g19, s, s2, u, one, two].forEach((t) => gpu.release(t));
  },
});

Deno.test({
  name: "optim: maskState false keeps momentum and Adam moments dense (SNFS), weights masked",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const n = 257;
    const w0 = uniform(n, 91), g = uniform(n, 92), mask = bernoulliMask(n, 0.4, 93);
    const masked = w0.map((x, i) => (mask[i] ? x : 0));
    for (const kind of ["momentum", "adam"] as const) {
      const w = gpu.upload([n], masked), gT = gpu.upload([n], g), m = gpu.upload([n], mask);
      const s1 = gpu.zeros([n]), s2 = gpu.zeros([n]);
      for (let step = 1; step <= 2; step++) {
        if (kind === "momentum") {
          momentumStep(gpu, {
            w,
            g: gT,
            buf: s1,
            lr: 0.1,
            momentum: 0.9,
            mask: m,
            maskState: false,
          });
        } else {
          adamStep(gpu, {
            w,
            g: gT,
            m: s1,
            v: s2,
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step,
            mask: m,
            maskState: false,
          });
        }
      }
      const wv = await gpu.read(w), sv = await gpu.read(s1);
      for (let i = 0; i < n; i++) {
        if (!mask[i] && wv[i] !== 0) throw new Error(`${kind}: inactive weight ${i} = ${wv[i]}`);
        // momentum after two steps of a constant gradient: 1.9·g; Adam m: (0.1 + 0.09)·g
        const want = kind === "momentum" ? 1.9 * g[i] : 0.19 * g[i];
        if (Math.abs(sv[i] - want) > 1e-6 * (1 + Math.abs(want))) {
          throw new Error(`${kind}: state ${i} = ${sv[i]}, expected ${want} (active ${mask[i]})`);
        }
      }
    }
  },
});

Deno.test({
  name: "adamStep: a weight whose moments restarted takes a fresh Adam's first step, not 25× it",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // Step 1000 of a run; weights 0..3 were just regrown (moments and age 0), 4..7 are old.
    const n = 8, lr = 0.01, step = 1000;
    const g = Float32Array.from([0.3, -0.02, 1.5, -0.7, 0.3, -0.02, 1.5, -0.7]);
    const run = async (aged: boolean) => {
      const w = gpu.zeros([n]), m = gpu.zeros([n]), v = gpu.zeros([n]);
      const age = gpu.upload([n], Uint32Array.from([0, 0, 0, 0, 999, 999, 999, 999]), "u32");
      // 999 steps of the same gradient from zero: v = (1 − β2^999)·g² before this step
      const vOld = g.map((x) => (1 - 0.999 ** 999) * x * x);
      gpu.write(v.view(4, [4]), vOld.subarray(4));
      const hyper = { lr, beta1: 0, beta2: 0.999, eps: 1e-9, step };
      adamStep(gpu, { w, g: gpu.upload([n], g), m, v, ...hyper, age: aged ? age : undefined });
      return await gpu.read(w);
    };
    const aged = await run(true);
    for (let i = 0; i < n; i++) {
      // fresh: m = g, v = (1 − β2)g², corrected by 1 − β2: |Δw| = lr; old ones likewise
      if (Math.abs(Math.abs(aged[i]) - lr) > 1e-6) throw new Error(`weight ${i}: Δw ${aged[i]}`);
    }
    // corrected by the run's step instead, the fresh weights jump by √((1−β2^t)/(1−β2)) ≈ 25 lr
    const global = await run(false);
    const jolt = Math.abs(global[0]) / lr;
    if (!(Math.abs(jolt - Math.sqrt((1 - 0.999 ** step) / 0.001)) < 1e-3)) {
      throw new Error(`global-step correction of a fresh weight: ${jolt}× lr`);
    }
  },
});
