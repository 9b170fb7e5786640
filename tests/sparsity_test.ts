import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import {
  layerDensities,
  splitEqualCapped,
  splitProportionalCapped,
  tensorBudgets,
} from "../pipeline/sparsity/budget.ts";
import { cosineRemovalRate, gmpSparsity } from "../pipeline/sparsity/schedule.ts";
import { addTrainFlops, forwardFlops, trainFlopsPerToken } from "../pipeline/sparsity/flops.ts";
import {
  initSparsity,
  removalRateAt,
  runMethod,
  smallDenseConfig,
  sparseParameterCount,
  sparsityDue,
  sparsityPlanProblem,
  type SparsityState,
  sparsityUpdate,
} from "../pipeline/sparsity/stage.ts";
import type { SparsitySettings } from "../pipeline/sparsity/method.ts";
import { csrUnsupported } from "../pipeline/sparsity/storage.ts";
import { METHODS } from "../pipeline/sparsity/methods/mod.ts";
import { evenPlan, type RunPlan } from "../pipeline/plan.ts";
import {
  createOptimizer,
  type OptimizerSettings,
  optimizerStep,
  startAveraging,
} from "../pipeline/optimizer.ts";
import { lstmLmParamSpecs } from "../models/lstm/lstm_lm.ts";
import { lstmFamily, lstmWeightMacs } from "../models/lstm/family.ts";
import type { Param } from "../models/params.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { GPU_TEST, rng, testGpu, uniform } from "./_util.ts";

// ---------------------------------------------------------------- pure parts

Deno.test("sparsity schedules: cosine removal rate at 0, T/2, T and beyond; GMP cubic", () => {
  const o = { p0: 0.5, pMin: 0.005, tMax: 1000 };
  ok(cosineRemovalRate(0, o) === 0.5);
  ok(Math.abs(cosineRemovalRate(500, o) - (0.005 + 0.5 * 0.495)) < 1e-15);
  ok(Math.abs(cosineRemovalRate(1000, o) - 0.005) < 1e-15);
  ok(Math.abs(cosineRemovalRate(5000, o) - 0.005) < 1e-15, "held at p_min after T_max");
  const g = { sInit: 0, sFinal: 0.67, t0: 100, dt: 10, n: 20 };
  ok(gmpSparsity(50, g) === 0 && gmpSparsity(100, g) === 0);
  ok(Math.abs(gmpSparsity(200, g) - 0.67 * (1 - 0.5 ** 3)) < 1e-12);
  ok(gmpSparsity(300, g) === 0.67 && gmpSparsity(1e6, g) === 0.67);
});

Deno.test("sparsity budgets: uniform and ER densities, exact counts, capped splits", () => {
  const shapes = [
    { name: "emb", rows: 10000, cols: 1500 },
    { name: "ih", rows: 6000, cols: 1500 },
    { name: "hh", rows: 6000, cols: 1500 },
    { name: "dec", rows: 10000, cols: 1500 },
  ];
  assertEquals(layerDensities("uniform", shapes, 0.33), [0.33, 0.33, 0.33, 0.33]);
  const er = layerDensities("er", shapes, 0.33);
  // spec §3.2: embedding/softmax ≈ 0.315, LSTM matrices ≈ 0.342 (its numbers are for the
  // 2-layer model; the ratio (r + c)/(r·c) fixes the ordering here too), total preserved
  ok(er[0] < 0.33 && er[1] > 0.33 && Math.abs(er[0] - er[3]) < 1e-12);
  const numel = shapes.map((s) => s.rows * s.cols);
  const total = er.reduce((s, d, i) => s + d * numel[i], 0);
  ok(Math.abs(total - 0.33 * numel.reduce((a, b) => a + b)) < 1e-3);
  // a tiny tensor would get density > 1: capped, the rest re-spread, total kept
  const capped = layerDensities("er", [{ name: "a", rows: 2, cols: 2 }, ...shapes], 0.5);
  ok(capped[0] === 1 && capped.every((d) => d <= 1));
  assertEquals(tensorBudgets([{ name: "w", rows: 3, cols: 7 }], [0.33]), [7]);
  assertEquals(splitEqualCapped(10, [100, 1, 100, 100]), [5, 1, 2, 2]);
  assertEquals(splitEqualCapped(8, [2, 2, 2, 2]), [2, 2, 2, 2]);
  throws(() => splitEqualCapped(9, [2, 2, 2, 2]), RangeError);
  assertEquals(splitProportionalCapped(10, [1, 3], [100, 100]), [3, 7]);
  assertEquals(splitProportionalCapped(10, [1, 3], [100, 4]), [6, 4]);
  assertEquals(splitProportionalCapped(6, [0, 0, 0], [5, 5, 5]), [2, 2, 2]);
});

Deno.test("sparsity flops: the paper's stacked LSTM numbers (spec §9) and the method models", () => {
  const w = lstmWeightMacs({
    vocab: 10000,
    embed: 1500,
    hidden: 1500,
    layers: 2,
    dropout: 0,
    tied: false,
  });
  const fD = forwardFlops(w);
  ok(fD === 2 * 51e6, `f_D = ${fD}`);
  const d = Object.fromEntries(w.map((x) => [x.name, 0.33]));
  const fS = forwardFlops(w, d);
  ok(Math.abs(fS / fD - 0.33) < 1e-12);
  ok(Math.abs(trainFlopsPerToken("snfs", fS, fD, false) / (3 * fD) - (2 * 0.33 + 1) / 3) < 1e-12);
  ok(trainFlopsPerToken("rigl", fS, fD, true) === 2 * fS + fD);
  ok(trainFlopsPerToken("rigl", fS, fD, false) === 3 * fS);
  ok(trainFlopsPerToken("dense", fS, fD, false) === 3 * fD);
  let t = { tokens: 0, train: 0, denseTrain: 0 };
  t = addTrainFlops(t, { tokens: 700, model: "sparse", fS, fD, fRef: fD });
  ok(Math.abs(t.train / t.denseTrain - 0.33) < 1e-12 && t.tokens === 700);
  // Selfish-RNN's gradient growth pays RigL's dense gradient at updates and cannot run on CSR
  const g = runMethod({ method: "selfish", growth: "gradient" });
  ok(g.flops === "rigl" && runMethod({ method: "selfish" }).flops === "sparse");
  ok(csrUnsupported("selfish", "gradient") && !csrUnsupported("selfish"));
  ok(runMethod({ method: "set", growth: "gradient" }) === METHODS.set, "set keeps its own rule");
});

Deno.test("small dense: the narrowed model does not exceed the sparse parameter count", () => {
  const cfg = { vocab: 10000, embed: 1500, hidden: 1500, layers: 2, dropout: 0, tied: false };
  const target = sparseParameterCount(lstmLmParamSpecs(cfg), 0.33, "uniform");
  // spec §7: the paper's sparse stacked LSTM keeps 21.8M parameters at density 0.33
  ok(Math.abs(target - 21.8e6) < 0.1e6, `target ${target}`);
  const small = smallDenseConfig(lstmFamily, cfg, target);
  const count = (h: number) =>
    lstmLmParamSpecs({ ...cfg, embed: h, hidden: h }).reduce(
      (s, p) => s + p.shape.reduce((a, b) => a * b, 1),
      0,
    );
  ok(count(small.hidden) <= target && count(small.hidden + 1) > target, `h = ${small.hidden}`);
  ok(small.hidden > 600 && small.hidden < 800, "spec §7.2: h ≈ 700");
});

// ---------------------------------------------------------------- GPU: masks and updates

const SETTINGS: SparsitySettings = {
  method: "selfish",
  density: 0.4,
  init: "uniform",
  deathRate: 0.5,
  deathRateMin: 0.005,
  redistribution: "uniform",
  pruneStart: 0.1,
  pruneEnd: 0.75,
  seed: 7,
};

/** Plain SGD, for updates that read no optimizer state. */
const PLAIN_SGD: OptimizerSettings = {
  kind: "sgd",
  lr: 0.1,
  weightDecay: 0,
  momentum: 0,
  clip: 0,
  adam: { beta1: 0, beta2: 0.999, eps: 1e-9 },
};

/** A one-epoch plan of `n` steps: no update inside it, so the schedule spans all `n` steps. */
const ONE_EPOCH = (n: number): RunPlan => evenPlan(n, n, 0);

/** Two sparse tensors (gates 4 and 1) and a dense bias, like an LSTM layer plus decoder. */
function makeParams(gpu: Gpu, seed: number): Param[] {
  const specs: [string, number[], number, boolean][] = [
    ["rnn.weight_hh_l0", [16, 9], 4, true],
    ["decoder.weight", [11, 7], 1, true],
    ["decoder.bias", [11], 1, false],
  ];
  return specs.map(([name, shape, gates, sparse], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return {
      name,
      shape,
      blocks: Array.from({ length: gates }, () => shape[0] / gates),
      sparse,
      init: { kind: "zeros" as const },
      value: gpu.upload(shape, uniform(n, seed + i)),
      grad: gpu.upload(shape, uniform(n, seed + 10 + i)),
    };
  });
}

const f32 = async (gpu: Gpu, p: { size: number } & Parameters<Gpu["read"]>[0]) =>
  Float32Array.from(await gpu.read(p));

async function readMasks(gpu: Gpu, params: Param[]): Promise<Float32Array[]> {
  return await Promise.all(params.filter((p) => p.mask).map((p) => f32(gpu, p.mask!)));
}

Deno.test({
  name: "sparsity init: exact budgets, zeroed inactive weights, same seed same masks",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const a = makeParams(gpu, 1), b = makeParams(gpu, 1);
    const sa = initSparsity(gpu, a, SETTINGS);
    initSparsity(gpu, b, SETTINGS);
    assertEquals(sa.tensors.map((t) => [t.name, t.budget, t.nnz]), [
      ["rnn.weight_hh_l0", Math.round(0.4 * 144), Math.round(0.4 * 144)],
      ["decoder.weight", Math.round(0.4 * 77), Math.round(0.4 * 77)],
    ]);
    ok(!a[2].mask, "biases stay dense");
    const ma = await readMasks(gpu, a), mb = await readMasks(gpu, b);
    assertEquals(ma, mb);
    for (const [i, m] of ma.entries()) {
      ok(m.reduce((s, x) => s + x, 0) === sa.tensors[i].budget, "exact count");
      const w = await f32(gpu, a[i].value);
      ok(w.every((x, j) => m[j] === 1 || x === 0), "inactive weights are 0");
    }
    const other = makeParams(gpu, 1);
    initSparsity(gpu, other, { ...SETTINGS, seed: 8 });
    ok(JSON.stringify(await readMasks(gpu, other)) !== JSON.stringify(ma), "seed changes masks");
    const gmp = makeParams(gpu, 1);
    const sg = initSparsity(gpu, gmp, { ...SETTINGS, method: "static-er" });
    ok(
      sg.tensors[0].budget !== sa.tensors[0].budget ||
        sg.tensors[1].budget !== sa.tensors[1].budget,
    );
    const dense = makeParams(gpu, 1);
    ok(initSparsity(gpu, dense, { ...SETTINGS, method: "dense" }).tensors.length === 0);
    ok(dense.every((p) => !p.mask));
  },
});

/**
 * Host oracle of one Selfish-RNN update on one tensor: the k smallest |w| among active entries
 * (joint over gates, ties to the lower index) are removed.
 */
function expectedRemoval(w: Float32Array, m: Float32Array, k: number): Set<number> {
  const active = [...m.keys()].filter((i) => m[i] === 1);
  active.sort((i, j) => Math.abs(w[i]) - Math.abs(w[j]) || i - j);
  return new Set(active.slice(0, k));
}

const UPDATE_CASES = [
  ["momentum", "clear"],
  ["adam", "clear"],
  ["ntasgd", "clear"],
  ["adam", "keep"],
] as const;
for (const [kind, inactiveState] of UPDATE_CASES) {
  const keep = inactiveState === "keep";
  Deno.test({
    name: `selfish update (${kind}, ${inactiveState}): exact removal, per-gate equal regrowth, ${
      keep ? "moments kept" : "fresh state"
    }`,
    ...GPU_TEST,
    fn: async () => {
      const gpu = await testGpu();
      const params = makeParams(gpu, 3);
      let state: SparsityState = initSparsity(gpu, params, SETTINGS);
      const os: OptimizerSettings = {
        kind,
        lr: 0.1,
        weightDecay: 0,
        momentum: 0.9,
        clip: 0,
        adam: { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        inactiveState,
      };
      let opt = createOptimizer(gpu, params, os);
      if (kind === "ntasgd") opt = startAveraging(gpu, params, opt);
      for (let s = 0; s < 3; s++) opt = optimizerStep(gpu, params, opt, os);
      ok((kind === "adam" && !keep) === !!opt.perParam[0].age, "Adam ages where moments restart");
      const momentsBefore = await Promise.all(
        params.slice(0, 2).map((_, i) =>
          Promise.all([opt.perParam[i].m, opt.perParam[i].v].map((t) => t && gpu.read(t)))
        ),
      );
      const before = await readMasks(gpu, params);
      const wBefore = await Promise.all(params.slice(0, 2).map((p) => f32(gpu, p.value)));
      const rate = 0.5; // step 0 of the cosine schedule: p0
      const r = await sparsityUpdate(gpu, state, params, {
        optimizer: opt,
        step: 0,
        plan: ONE_EPOCH(100),
      });
      state = r.state;
      const after = await readMasks(gpu, params);
      for (let i = 0; i < 2; i++) {
        const t = state.tensors[i];
        const k = Math.ceil(rate * t.budget);
        const removed = expectedRemoval(wBefore[i], before[i], k);
        ok(after[i].reduce((s, x) => s + x, 0) === t.budget, `${t.name}: budget kept exactly`);
        ok(t.nnz === t.budget, `${t.name}: host count`);
        const w = await f32(gpu, params[i].value);
        const grown = [...after[i].keys()].filter((j) =>
          after[i][j] === 1 && (before[i][j] === 0 || removed.has(j))
        );
        const kept = [...before[i].keys()].filter((j) => before[i][j] === 1 && !removed.has(j));
        ok(kept.every((j) => after[i][j] === 1), `${t.name}: survivors stay`);
        ok(kept.every((j) => w[j] === wBefore[i][j]), `${t.name}: survivors keep their values`);
        ok(grown.length === k, `${t.name}: regrew ${grown.length}, expected ${k}`);
        ok(grown.every((j) => w[j] === 0), `${t.name}: grown weights start at 0`);
        ok(w.every((x, j) => after[i][j] === 1 || x === 0), `${t.name}: inactive weights are 0`);
        if (t.blocks.length === 4) {
          // equal regrowth per gate (k split as evenly as integers allow; no block is full)
          const block = after[i].length / 4;
          const per = [0, 1, 2, 3].map((g) =>
            grown.filter((j) => Math.floor(j / block) === g).length
          );
          ok(Math.max(...per) - Math.min(...per) <= 1, `per-gate regrowth ${per}`);
        }
        const s = opt.perParam[i];
        if (keep) {
          // the released code's Adam: moments persist through removal and regrowth
          const [m, v] = await Promise.all([s.m!, s.v!].map((t) => gpu.read(t)));
          assertEquals([m, v], momentsBefore[i]);
          ok(m.some((x, j) => before[i][j] === 0 && x !== 0), "inactive moments accumulated");
          continue;
        }
        // the optimizer state of grown and removed positions is exactly 0
        for (const st of [s.buf, s.m, s.v, s.age, s.ax, s.count]) {
          if (!st) continue;
          const v = await gpu.read(st);
          ok(grown.every((j) => v[j] === 0), `${t.name}: state reset at grown positions`);
          ok(
            [...removed].filter((j) => after[i][j] === 0).every((j) => v[j] === 0),
            "removed state 0",
          );
        }
      }
      // a step after the update keeps inactive weights and their state at exactly 0
      opt = optimizerStep(gpu, params, opt, os);
      for (let i = 0; i < 2; i++) {
        const w = await f32(gpu, params[i].value);
        ok(w.every((x, j) => after[i][j] === 1 || x === 0), "inactive weights 0 after a step");
        const s = opt.perParam[i];
        for (const st of keep ? [] : [s.buf, s.m, s.v, s.ax]) {
          if (!st) continue;
          const v = await gpu.read(st);
          ok(v.every((x, j) => after[i][j] === 1 || x === 0), "inactive state 0 after a step");
        }
      }
    },
  });
}

Deno.test({
  name: "selfish update: same seed gives identical masks; RigL grows at the largest |grad|",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const run = async (method: "selfish" | "rigl") => {
      const params = makeParams(gpu, 5);
      const st = initSparsity(gpu, params, { ...SETTINGS, method });
      const opt = createOptimizer(gpu, params, PLAIN_SGD);
      const before = await readMasks(gpu, params);
      const grads = await Promise.all(params.slice(0, 2).map((p) => f32(gpu, p.grad)));
      await sparsityUpdate(gpu, st, params, { optimizer: opt, step: 40, plan: ONE_EPOCH(100) });
      return { before, after: await readMasks(gpu, params), grads, st };
    };
    const a = await run("selfish"), b = await run("selfish");
    assertEquals(a.after, b.after);
    const r = await run("rigl");
    const rate = cosineRemovalRate(40, { p0: 0.5, pMin: 0.005, tMax: 100 });
    for (let i = 0; i < 2; i++) {
      const k = Math.ceil(rate * r.st.tensors[i].budget);
      const grown = [...r.after[i].keys()].filter((j) =>
        r.after[i][j] === 1 && r.before[i][j] === 0
      );
      // every newly active position beats every position left inactive by |grad|
      // (just-removed positions may also come back; they are candidates too)
      const left = [...r.after[i].keys()].filter((j) => r.after[i][j] === 0);
      const minGrown = Math.min(...grown.map((j) => Math.abs(r.grads[i][j])));
      const maxLeft = Math.max(...left.map((j) => Math.abs(r.grads[i][j])));
      ok(
        grown.length <= k && minGrown >= maxLeft,
        `rigl growth by |grad| (${minGrown} vs ${maxLeft})`,
      );
    }
  },
});

/**
 * Initialises `settings`' masks and runs the update at step 0 (p = 0.5) of a 100-step epoch;
 * what tensor 0 held before and after, and which of its weights the removal must have kept.
 */
async function firstUpdate(gpu: Gpu, params: Param[], settings: SparsitySettings) {
  const st = initSparsity(gpu, params, settings);
  const opt = createOptimizer(gpu, params, PLAIN_SGD);
  const before = (await readMasks(gpu, params))[0];
  const w = await f32(gpu, params[0].value);
  const grad = await f32(gpu, params[0].grad);
  const r = await sparsityUpdate(gpu, st, params, {
    optimizer: opt,
    step: 0,
    plan: ONE_EPOCH(100),
  });
  const after = (await readMasks(gpu, params))[0];
  const t = r.state.tensors[0];
  const k = Math.ceil(0.5 * t.budget);
  const removed = expectedRemoval(w, before, k);
  const kept = before.map((m, j) => (m === 1 && !removed.has(j) ? 1 : 0));
  return { w, grad, after, t, k, kept };
}

for (const mode of ["magnitude", "gradient"] as const) {
  Deno.test({
    name: `selfish update (${mode} redistribution): each gate regrows its share of the ` +
      "block statistic over active weights, capped at its free slots",
    ...GPU_TEST,
    fn: async () => {
      const gpu = await testGpu();
      const params = makeParams(gpu, 9);
      // gate 2 of the 4-gate tensor gets 10x the gradient (and the weights 3x): the largest share
      const n = 16 * 9, gate = n / 4;
      const scale = (x: number, j: number, f: number) => Math.floor(j / gate) === 2 ? x * f : x;
      const g0 = uniform(n, 31).map((x, j) => scale(x, j, 10));
      gpu.write(params[0].grad, g0);
      const w0 = uniform(n, 32).map((x, j) => scale(x, j, 3));
      gpu.write(params[0].value, w0);
      const { w, grad, after, t, k, kept } = await firstUpdate(gpu, params, {
        ...SETTINGS,
        redistribution: mode,
      });
      const stat = mode === "gradient" ? grad : w;
      const means = [0, 1, 2, 3].map((g) => {
        let sum = 0, count = 0;
        for (let j = g * gate; j < (g + 1) * gate; j++) {
          if (kept[j]) (sum += Math.abs(stat[j]), count++);
        }
        return count ? sum / count : 0;
      });
      const free = [0, 1, 2, 3].map((g) =>
        gate - kept.slice(g * gate, (g + 1) * gate).reduce((a, b) => a + b, 0)
      );
      const want = splitProportionalCapped(k, means, free);
      const grown = [0, 1, 2, 3].map((g) => {
        let c = 0;
        for (let j = g * gate; j < (g + 1) * gate; j++) if (after[j] === 1 && !kept[j]) c++;
        return c;
      });
      assertEquals(grown, want);
      ok(grown[2] === Math.max(...grown), `gate 2 regrows most: ${grown}`);
      ok(after.reduce((a, b) => a + b, 0) === t.budget, "budget kept");
    },
  });
}

Deno.test({
  name: "selfish update (--growth gradient): each gate regrows its equal share at its largest " +
    "dense |grad| (the growth ablation)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const params = makeParams(gpu, 11);
    const n = 16 * 9, gate = n / 4;
    // gate 1 holds every large gradient: RigL's tensor-wide rule would grow there only
    gpu.write(
      params[0].grad,
      uniform(n, 41).map((x, j) => Math.floor(j / gate) === 1 ? x * 50 : x),
    );
    const { grad, after, t, k, kept } = await firstUpdate(gpu, params, {
      ...SETTINGS,
      growth: "gradient",
    });
    const gates = [0, 1, 2, 3].map((g) => [...Array(gate).keys()].map((j) => g * gate + j));
    const free = gates.map((js) => js.filter((j) => !kept[j]).length);
    const grown = gates.map((js) => js.filter((j) => after[j] === 1 && !kept[j]));
    assertEquals(grown.map((js) => js.length), splitEqualCapped(k, free));
    gates.forEach((js, g) => {
      const left = js.filter((j) => after[j] === 0);
      const minGrown = Math.min(...grown[g].map((j) => Math.abs(grad[j])));
      const maxLeft = Math.max(...left.map((j) => Math.abs(grad[j])));
      ok(minGrown >= maxLeft, `gate ${g}: grown |grad| ${minGrown} < left ${maxLeft}`);
    });
    ok(after.reduce((a, b) => a + b, 0) === t.budget, "budget kept");
  },
});

Deno.test({
  name: "SNT-ASGD: a weight's average restarts on regrowth and is dropped on removal",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // one tensor of 4 weights, all active; plain SGD with a constant gradient, lr 1
    const shape = [2, 2];
    const p: Param = {
      name: "w",
      shape,
      blocks: [shape[0]],
      sparse: true,
      init: { kind: "zeros" },
      value: gpu.upload(shape, [5, 2, 6, 7]),
      grad: gpu.upload(shape, [1, 1, 1, 1]),
      mask: gpu.upload(shape, [1, 1, 1, 1]),
    };
    const os: OptimizerSettings = {
      kind: "ntasgd",
      lr: 1,
      weightDecay: 0,
      momentum: 0,
      clip: 0,
      adam: { beta1: 0, beta2: 0.999, eps: 1e-9 },
    };
    let opt = startAveraging(gpu, [p], createOptimizer(gpu, [p], os));
    // steps 1..4: w_i goes x0 − s; the average covers steps 2..s (spec §5.2/5.3)
    for (let s = 0; s < 4; s++) opt = optimizerStep(gpu, [p], opt, os);
    const avg = (x0: number, from: number, to: number) => {
      let sum = 0;
      for (let s = from; s <= to; s++) sum += x0 - s;
      return sum / (to - from + 1);
    };
    const ax0 = await gpu.read(opt.perParam[0].ax!);
    assertEquals(Array.from(ax0), [5, 2, 6, 7].map((x0) => avg(x0, 2, 4)));
    // Selfish update at rate 0.25 (k = 1): w = [1, −2, 2, 3] after 4 steps, so index 0 (|w| = 1)
    // is removed; the one regrowth must pick the only inactive position, index 0 again: the
    // removed-and-regrown weight restarts at 0 with a fresh average
    const state = initSparsity(gpu, [p], { ...SETTINGS, density: 1, deathRate: 0.25 });
    await sparsityUpdate(gpu, state, [p], { optimizer: opt, step: 0, plan: ONE_EPOCH(10) });
    assertEquals(Array.from(await gpu.read(p.value)), [0, -2, 2, 3]);
    assertEquals(Array.from(await gpu.read(opt.perParam[0].ax!)), [
      0,
      avg(2, 2, 4),
      avg(6, 2, 4),
      avg(7, 2, 4),
    ]);
    for (let s = 0; s < 3; s++) opt = optimizerStep(gpu, [p], opt, os);
    const ax = await gpu.read(opt.perParam[0].ax!);
    // untouched weights: mean over steps 2..7; the regrown one's iterates are −1, −2, −3 and
    // its average covers its own steps 2..3
    assertEquals(Array.from(ax), [(-2 + -3) / 2, avg(2, 2, 7), avg(6, 2, 7), avg(7, 2, 7)]);
  },
});

Deno.test("sparsity due: at the plan's update steps, never at its end, never for static", () => {
  const base: SparsityState = {
    settings: SETTINGS,
    tensors: [{ name: "w", blocks: [10], numel: 10, budget: 4, nnz: 4 }],
    updates: 0,
    lastUpdateStep: -1,
    scalars: {},
    history: [],
  };
  const perEpoch: RunPlan = evenPlan(30, 10, 0);
  const due = (st: SparsityState, plan: RunPlan) =>
    Array.from({ length: plan.totalSteps + 1 }, (_, s) => s).filter((s) =>
      sparsityDue(st, s, plan)
    );
  assertEquals(due(base, perEpoch), [10, 20]); // not at 30, the run's last step
  const every: RunPlan = evenPlan(200, 1328, 25);
  assertEquals(due(base, every), [25, 50, 75, 100, 125, 150, 175]); // not at 200
  ok(!sparsityDue({ ...base, lastUpdateStep: 10 }, 10, perEpoch), "not twice at one step");
  ok(!sparsityDue({ ...base, settings: { ...SETTINGS, method: "static-uniform" } }, 10, perEpoch));
  // p_t anneals over the plan to p_min at its last update, whatever the plan
  for (const plan of [perEpoch, every, evenPlan(801, 100, 0)]) {
    const steps = due(base, plan);
    const p = steps.map((s) => removalRateAt(SETTINGS, s, plan));
    ok(p.every((x, i) => i === 0 || x < p[i - 1]), `decreasing: ${p}`);
    assertEquals(p[p.length - 1], SETTINGS.deathRateMin);
    ok(removalRateAt(SETTINGS, 0, plan) === SETTINGS.deathRate);
  }
  // gradual pruning must reach its density at an update inside the run
  const gmpSettings = { ...SETTINGS, method: "gmp" as const, pruneEnd: 0.75 };
  ok(
    sparsityPlanProblem(gmpSettings, evenPlan(400, 100, 0)) === null,
  );
  const why = sparsityPlanProblem(gmpSettings, evenPlan(200, 100, 0));
  ok(why !== null && why.includes("step 150") && why.includes("at step 100"), String(why));
  ok(sparsityPlanProblem(SETTINGS, evenPlan(200, 100, 0)) === null);
  const r = rng(1);
  ok(r() !== r());
});
