/**
 * The four baselines as connectivity methods (SET, DSR, SNFS, gradual magnitude pruning), run
 * on hand-made masked tensors and checked against CPU references of their rules: exact counts,
 * exactly the right weights removed, growth exactly where the rule puts it (random growth
 * through the Philox reference), grown weights and their optimizer state at 0, inactive weights
 * at 0, and the method's bookkeeping (budgets, DSR's threshold, GMP's schedule).
 */

import { deepStrictEqual, equal, ok, throws } from "node:assert/strict";
import { GPU_TEST, rng, testGpu } from "./_util.ts";
import type { Param } from "../models/params.ts";
import {
  createOptimizer,
  type OptimizerSettings,
  type OptimizerState,
  releaseOptimizer,
} from "../pipeline/optimizer.ts";
import type { OptimizerName } from "../pipeline/config.ts";
import {
  createOpsContext,
  type OpsContext,
  releaseOpsContext,
  type SparseTensor,
} from "../pipeline/sparsity/ops.ts";
import {
  growthStream,
  type SparsitySettings,
  type UpdateInput,
  type UpdateReport,
} from "../pipeline/sparsity/method.ts";
import { splitProportionalCapped } from "../pipeline/sparsity/budget.ts";
import { set, setRemovalSplit } from "../pipeline/sparsity/methods/set.ts";
import { adaptThreshold, dsr } from "../pipeline/sparsity/methods/dsr.ts";
import { snfs, snfsRegrowth } from "../pipeline/sparsity/methods/snfs.ts";
import { gmp, gmpDensity } from "../pipeline/sparsity/methods/gmp.ts";
import { magnitudeKeysRef, randomKeysRef, topkRef } from "../kernels/select/topk_ref.ts";
import { adamMomentumScoreRef } from "../kernels/select/momentum_score_ref.ts";

const gpu = await testGpu();

// ------------------------------------------------------------------------------------ fixtures

type StateName = "buf" | "m" | "v";

/** Host picture of one sparse tensor: weights (0 where inactive), mask, grad, optimizer state. */
interface HostTensor {
  name: string;
  shape: [number, number];
  blocks: number[];
  value: Float32Array;
  mask: Float32Array;
  grad: Float32Array;
  state: Partial<Record<StateName, Float32Array>>;
}

interface Setup {
  params: Param[];
  opt: OptimizerState;
  ctx: OpsContext;
  tensors: SparseTensor[];
  host: HostTensor[];
}

const SETTINGS: SparsitySettings = {
  method: "set",
  density: 0.3,
  init: "uniform",
  deathRate: 0.5,
  deathRateMin: 0.005,
  redistribution: "none",
  pruneStart: 0.2,
  pruneEnd: 0.7,
  seed: 1234,
};

function optSettings(kind: OptimizerName): OptimizerSettings {
  return {
    kind,
    lr: 1,
    weightDecay: 0,
    momentum: 0.9,
    clip: 0,
    adam: { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
  };
}

const count = (m: ArrayLike<number>) => Array.from(m).reduce((s, x) => s + (x !== 0 ? 1 : 0), 0);

/**
 * A host tensor: mask Bernoulli(density) (or all ones), weights from `draw(i, r)` at active
 * positions and exactly 0 elsewhere, grad uniform(−1, 1) everywhere (dense, as the model
 * writes it), optimizer state from `stateDraw` (given per name).
 */
function hostTensor(
  name: string,
  shape: [number, number],
  gates: number,
  seed: number,
  opts: {
    density: number;
    draw: (i: number, r: () => number) => number;
    states?: readonly StateName[];
    /** State at INACTIVE positions too (the unmasked momentum SNFS needs); default 0 there. */
    denseState?: boolean;
    stateScale?: number;
  },
): HostTensor {
  const n = shape[0] * shape[1];
  const r = rng(seed);
  const mask = Float32Array.from({ length: n }, () => (r() < opts.density ? 1 : 0));
  const value = Float32Array.from({ length: n }, (_, i) => (mask[i] ? opts.draw(i, r) : 0));
  const grad = Float32Array.from({ length: n }, () => 2 * r() - 1);
  const state: HostTensor["state"] = {};
  for (const s of opts.states ?? []) {
    state[s] = Float32Array.from({ length: n }, (_, i) => {
      const x = (opts.stateScale ?? 1) * (s === "v" ? 0.01 * r() + 1e-4 : 2 * r() - 1);
      return mask[i] || opts.denseState ? x : 0;
    });
  }
  const blocks = Array.from({ length: gates }, () => shape[0] / gates);
  return { name, shape, blocks, value, mask, grad, state };
}

/**
 * Params on the GPU: a dense bias first (so tensor `index` differs from its list position, as
 * in a real model), then the sparse tensors; the optimizer state is written from the host.
 */
function setup(host: HostTensor[], kind: OptimizerName): Setup {
  const bias: Param = {
    name: "bias",
    shape: [4],
    blocks: [4],
    sparse: false,
    init: { kind: "zeros" },
    value: gpu.zeros([4]),
    grad: gpu.zeros([4]),
  };
  const params: Param[] = [
    bias,
    ...host.map((h): Param => ({
      name: h.name,
      shape: h.shape,
      blocks: h.blocks,
      sparse: true,
      init: { kind: "zeros" },
      value: gpu.upload(h.shape, h.value),
      grad: gpu.upload(h.shape, h.grad),
      mask: gpu.upload(h.shape, h.mask),
    })),
  ];
  const opt = createOptimizer(gpu, params, optSettings(kind));
  host.forEach((h, i) => {
    for (const [name, data] of Object.entries(h.state)) {
      const t = opt.perParam[i + 1][name as StateName];
      if (!t) throw new Error(`optimizer ${kind} has no ${name}`);
      gpu.write(t, data);
    }
  });
  const tensors = host.map((h, i): SparseTensor => ({
    param: params[i + 1],
    index: i + 1,
    blocks: h.blocks,
    budget: count(h.mask),
    nnz: count(h.mask),
  }));
  const ctx = createOpsContext(gpu, opt, Math.max(...host.map((h) => h.value.length)));
  return { params, opt, ctx, tensors, host };
}

function teardown(s: Setup): void {
  releaseOpsContext(s.ctx);
  releaseOptimizer(gpu, s.opt);
  for (const p of s.params) {
    gpu.release(p.value);
    gpu.release(p.grad);
    if (p.mask) gpu.release(p.mask);
  }
}

interface Readback {
  value: Float32Array;
  mask: Float32Array;
  state: Partial<Record<StateName, Float32Array>>;
}

async function readBack(s: Setup): Promise<Readback[]> {
  const out: Readback[] = [];
  for (const [i, t] of s.tensors.entries()) {
    const state: Readback["state"] = {};
    for (const name of Object.keys(s.host[i].state) as StateName[]) {
      state[name] = (await gpu.read(s.opt.perParam[t.index][name]!)) as Float32Array;
    }
    out.push({
      value: (await gpu.read(t.param.value)) as Float32Array,
      mask: (await gpu.read(t.param.mask!)) as Float32Array,
      state,
    });
  }
  return out;
}

function input(s: Setup, over: Partial<UpdateInput>): UpdateInput {
  return {
    ops: s.ctx,
    tensors: s.tensors,
    step: 10,
    totalSteps: 100,
    removalRate: 0.5,
    settings: SETTINGS,
    update: 0,
    scalars: {},
    optimizer: s.opt,
    ...over,
  };
}

/**
 * The invariants of every update, given the reference's kept set (active before, not removed)
 * and grown set (switched on): mask = kept ∪ grown exactly; kept weights and their state
 * unchanged; removed and grown positions at exactly 0 with state 0; never-active positions
 * keep value 0 and whatever state they had.
 */
function checkUpdate(
  label: string,
  before: HostTensor,
  after: Readback,
  kept: Uint8Array,
  grown: Uint8Array,
): void {
  const n = before.value.length;
  for (let i = 0; i < n; i++) {
    const where = `${label}: ${before.name}[${i}]`;
    ok(!(kept[i] && grown[i]), `${where}: grown at a kept position`);
    equal(after.mask[i], kept[i] || grown[i] ? 1 : 0, `${where}: mask`);
    const touched = !kept[i] && (before.mask[i] !== 0 || grown[i]);
    equal(after.value[i], kept[i] ? before.value[i] : 0, `${where}: value`);
    for (const [name, data] of Object.entries(before.state)) {
      const got = after.state[name as StateName]![i];
      equal(got, touched ? 0 : data[i], `${where}: ${name}`);
    }
  }
}

/** Positions of a flag vector that are set, and the flag vector of "mask on and not removed". */
function keptOf(mask: Float32Array, removed: Uint8Array): Uint8Array {
  return Uint8Array.from(mask, (m, i) => (m !== 0 && !removed[i] ? 1 : 0));
}

/** The `k` active weights of smallest |w| (ties to the lower index): magnitude removal. */
function magnitudeRemovalRef(value: Float32Array, mask: Float32Array, k: number): Uint8Array {
  const active = Uint8Array.from(mask, (m) => (m !== 0 ? 1 : 0));
  return topkRef(magnitudeKeysRef(value), k, "smallest", active);
}

/** Uniform random growth of `k` among `eligible`, the Philox way of `growRandom`. */
function randomGrowthRef(n: number, k: number, eligible: Uint8Array, stream: number): Uint8Array {
  return topkRef(randomKeysRef(n, SETTINGS.seed, stream), k, "smallest", eligible);
}

const or = (a: Uint8Array, b: Uint8Array) => a.map((x, i) => x | b[i]);
const inactive = (kept: Uint8Array) => kept.map((x) => 1 - x);
const sum = (a: ArrayLike<number>) => Array.from(a).reduce((s, x) => s + x, 0);

// ------------------------------------------------------------------------------------------ SET

/** SET's removal rule on the host: ⌈k/2⌉ smallest positive, the rest negatives nearest zero. */
function setRemovalRef(value: Float32Array, mask: Float32Array, k: number): Uint8Array {
  const bits = new Uint32Array(value.buffer, value.byteOffset, value.length);
  const side = (neg: boolean) =>
    Array.from(value.keys())
      .filter((i) => mask[i] !== 0 && (bits[i] >>> 31 === 1) === neg)
      .sort((a, b) => Math.abs(value[a]) - Math.abs(value[b]) || a - b);
  const pos = side(false), neg = side(true);
  let kPos = Math.min(Math.ceil(k / 2), pos.length);
  const kNeg = Math.min(k - kPos, neg.length);
  kPos = k - kNeg;
  const out = new Uint8Array(value.length);
  for (const i of [...pos.slice(0, kPos), ...neg.slice(0, kNeg)]) out[i] = 1;
  return out;
}

/** Three tensors: few positives (the positive side runs short), few negatives, balanced. */
function setTensors(): HostTensor[] {
  return [
    hostTensor("w_ih", [8, 12], 4, 1, {
      density: 0.5,
      draw: (i, r) => (i % 16 === 3 ? 0.1 + r() : -(0.01 + r())),
      states: ["buf"],
    }),
    hostTensor("w_hh", [5, 7], 1, 2, {
      density: 0.6,
      draw: (i, r) => (i === 4 || i === 9 ? -0.5 * r() - 0.01 : 0.01 + r()),
      states: ["buf"],
    }),
    hostTensor("decoder", [6, 10], 1, 3, {
      density: 0.4,
      draw: (_, r) => 2 * r() - 1,
      states: ["buf"],
    }),
  ];
}

Deno.test({
  name:
    "set: removes the smallest positive and the negatives nearest zero (short sides refilled), " +
    "regrows the budget at random, grown weights and momentum at 0",
  ...GPU_TEST,
  fn: async () => {
    const host = setTensors();
    // An active +0 (a weight grown last update) is the smallest positive: removed first.
    host[2].mask[5] = 1;
    host[2].value[5] = 0;
    const s = setup(host, "momentum");
    const p = 0.45;
    const report = await set.update!(input(s, { removalRate: p, update: 3 }));
    const after = await readBack(s);
    let removedTotal = 0;
    host.forEach((h, i) => {
      const nnz = count(h.mask);
      const k = Math.ceil(p * nnz);
      removedTotal += k;
      const removed = setRemovalRef(h.value, h.mask, k);
      equal(sum(removed), k, `${h.name}: reference removes k`);
      if (i === 2) equal(removed[5], 1, "the active +0 is removed first");
      const kept = keptOf(h.mask, removed);
      const grown = randomGrowthRef(
        h.value.length,
        k,
        inactive(kept),
        growthStream(3, s.tensors[i].index),
      );
      checkUpdate("set", h, after[i], kept, grown);
      equal(count(after[i].mask), nnz, `${h.name}: budget restored exactly`);
      equal(s.tensors[i].nnz, nnz);
      equal(s.tensors[i].budget, nnz);
    });
    // The fixture really exercises both short sides and the balanced case.
    const pos = (h: HostTensor) => h.value.filter((x, i) => h.mask[i] && !(x < 0)).length;
    ok(pos(host[0]) < Math.ceil(Math.ceil(p * count(host[0].mask)) / 2), "w_ih: positives short");
    ok(
      count(host[1].mask) - pos(host[1]) < Math.floor(Math.ceil(p * count(host[1].mask)) / 2),
      "w_hh: negatives short",
    );
    deepStrictEqual(report, { removed: removedTotal, grown: removedTotal });
    teardown(s);
  },
});

Deno.test({
  name: "set: removal split by sign, exact totals",
  fn: () => {
    deepStrictEqual(setRemovalSplit(7, 10, 10), [4, 3]);
    deepStrictEqual(setRemovalSplit(8, 10, 10), [4, 4]);
    deepStrictEqual(setRemovalSplit(7, 2, 10), [2, 5]);
    deepStrictEqual(setRemovalSplit(7, 10, 1), [6, 1]);
    deepStrictEqual(setRemovalSplit(5, 2, 3), [2, 3]);
    deepStrictEqual(setRemovalSplit(0, 0, 0), [0, 0]);
    throws(() => setRemovalSplit(6, 2, 3), RangeError);
  },
});

Deno.test({
  name: "set and dsr: the same seed gives identical masks, another seed different ones",
  ...GPU_TEST,
  fn: async () => {
    const run = async (method: typeof set, seed: number) => {
      const s = setup(setTensors(), "momentum");
      await method.update!(
        input(s, { settings: { ...SETTINGS, seed }, scalars: { threshold: 0.3 } }),
      );
      const masks = (await readBack(s)).map((r) => Array.from(r.mask));
      teardown(s);
      return masks;
    };
    for (const method of [set, dsr]) {
      const a = await run(method, 7), b = await run(method, 7), c = await run(method, 8);
      deepStrictEqual(a, b, `${method.name}: same seed`);
      ok(JSON.stringify(a) !== JSON.stringify(c), `${method.name}: other seed`);
    }
  },
});

// ------------------------------------------------------------------------------------------ DSR

/** DSR on the host: counts below H (f32), keep-one, survivors' split, two growth rounds. */
function dsrRef(host: HostTensor[], h: number, indices: number[], update: number) {
  const hf = Math.fround(h);
  const before = host.map((t) => count(t.mask));
  const pruned = host.map((t, l) => {
    const below = t.value.filter((x, i) => t.mask[i] && Math.abs(x) < hf).length;
    return Math.min(below, Math.max(0, before[l] - 1));
  });
  const total = sum(pruned);
  const survivors = before.map((n, l) => n - pruned[l]);
  const fresh = host.map((t, l) => t.value.length - before[l]);
  const first = splitProportionalCapped(Math.min(total, sum(fresh)), survivors, fresh);
  const rest = total - sum(first);
  const second = rest > 0 ? splitProportionalCapped(rest, survivors, pruned) : pruned.map(() => 0);
  return host.map((t, l) => {
    const removed = magnitudeRemovalRef(t.value, t.mask, pruned[l]);
    const kept = keptOf(t.mask, removed);
    const stream = growthStream(update, indices[l]);
    const n = t.value.length;
    const g1 = randomGrowthRef(n, first[l], Uint8Array.from(t.mask, (m) => (m ? 0 : 1)), stream);
    const g2 = randomGrowthRef(n, second[l], inactive(or(kept, g1)), stream);
    return { pruned: pruned[l], kept, grown: or(g1, g2), nnz: survivors[l] + first[l] + second[l] };
  });
}

async function dsrCase(
  label: string,
  host: HostTensor[],
  h: number,
  p: number,
): Promise<
  { removed: number; expected: number; threshold: number; ref: ReturnType<typeof dsrRef> }
> {
  const s = setup(host, "adam");
  const totalBefore = sum(host.map((t) => count(t.mask)));
  const report: UpdateReport = await dsr.update!(
    input(s, { removalRate: p, update: 2, scalars: { threshold: h, other: 5 } }),
  );
  const after = await readBack(s);
  const ref = dsrRef(host, h, s.tensors.map((t) => t.index), 2);
  host.forEach((t, l) => {
    checkUpdate(`dsr ${label}`, t, after[l], ref[l].kept, ref[l].grown);
    equal(s.tensors[l].nnz, ref[l].nnz, `${label} ${t.name}: nnz`);
    equal(count(after[l].mask), ref[l].nnz, `${label} ${t.name}: active count`);
    equal(s.tensors[l].budget, ref[l].nnz, `${label} ${t.name}: budget follows`);
  });
  equal(sum(s.tensors.map((t) => t.nnz)), totalBefore, `${label}: total constant`);
  const removed = sum(ref.map((r) => r.pruned));
  deepStrictEqual([report.removed, report.grown], [removed, removed]);
  equal(report.scalars?.other, 5, "other scalars carried");
  const expected = sum(host.map((t) => Math.ceil(p * count(t.mask))));
  teardown(s);
  return { removed, expected, threshold: report.scalars!.threshold, ref };
}

Deno.test({
  name:
    "dsr: prunes every |w| < H, reallocates by survivors without re-picking, adapts H both ways",
  ...GPU_TEST,
  fn: async () => {
    const small = (seed: number, shape: [number, number], gates: number) =>
      hostTensor(`t${seed}`, shape, gates, seed, {
        density: 0.4,
        draw: (_, r) => (r() < 0.5 ? -1 : 1) * 0.01 * r(),
        states: ["m", "v"],
      });
    // Few weights below H = 0.001 against a large expected removal: H doubles.
    const low = await dsrCase("low", [small(11, [8, 12], 4), small(12, [5, 7], 1)], 0.001, 0.5);
    ok(
      low.removed > 0 && low.removed < 0.98 * low.expected,
      `low: ${low.removed} vs ${low.expected}`,
    );
    equal(low.threshold, 0.002);
    // Most weights below H = 0.008 against a small expected removal: H halves.
    const high = await dsrCase("high", [small(13, [8, 12], 4), small(14, [5, 7], 1)], 0.008, 0.05);
    ok(high.removed > 1.02 * high.expected, `high: ${high.removed} vs ${high.expected}`);
    equal(high.threshold, 0.004);
    // In between: unchanged (the band is ±2% of E).
    equal(adaptThreshold(0.004, 100, 101), 0.004);
    equal(adaptThreshold(0.004, 102, 100), 0.004);
    equal(adaptThreshold(0.004, 97, 100), 0.008);
    equal(adaptThreshold(0.004, 103, 100), 0.002);
  },
});

Deno.test({
  name: "dsr: a tensor below H everywhere keeps its largest weight; dense tensors overflow " +
    "into just-pruned slots with the total still exact",
  ...GPU_TEST,
  fn: async () => {
    const tiny = hostTensor("tiny", [5, 7], 1, 21, {
      density: 0.5,
      draw: (_, r) => 0.0009 * (r() - 0.5),
      states: ["m", "v"],
    });
    const big = hostTensor("big", [8, 12], 4, 22, {
      density: 0.5,
      draw: (_, r) => (r() < 0.5 ? -1 : 1) * (0.0005 + r()),
      states: ["m", "v"],
    });
    const a = await dsrCase("keep-one", [tiny, big], 0.001, 0.3);
    equal(a.ref[0].pruned, count(tiny.mask) - 1, "tiny loses all but one");
    const largest = Array.from(tiny.value.keys()).filter((i) => tiny.mask[i])
      .sort((x, y) => Math.abs(tiny.value[y]) - Math.abs(tiny.value[x]))[0];
    equal(a.ref[0].kept[largest], 1, "the largest survives");
    equal(sum(a.ref[0].kept), 1);
    // 90% dense, half of it below H: the fresh slots cannot take everything back.
    const dense = (seed: number, shape: [number, number]) =>
      hostTensor(`dense${seed}`, shape, 1, seed, {
        density: 0.9,
        draw: (i, r) => (i % 2 ? 0.0005 : 0.5) * (1 + r()),
        states: ["m", "v"],
      });
    const host = [dense(23, [8, 12]), dense(24, [5, 7])];
    const fresh = sum(host.map((t) => t.value.length - count(t.mask)));
    const b = await dsrCase("overflow", host, 0.001, 0.3);
    ok(b.removed > fresh, `overflow case: ${b.removed} pruned, ${fresh} fresh slots`);
  },
});

// ----------------------------------------------------------------------------------------- SNFS

/**
 * SNFS on the host: shares = mean |score| over active weights before the removal, magnitude
 * removal, split with 0.99 caps and the residual spread, growth at the largest |score|.
 */
function snfsRef(host: HostTensor[], scores: Float32Array[], p: number) {
  const removedCounts = host.map((t) => Math.ceil(p * count(t.mask)));
  const total = sum(removedCounts);
  const shares = host.map((t, l) => {
    let s = 0;
    t.mask.forEach((m, i) => (s += m ? Math.abs(scores[l][i]) : 0));
    return s / count(t.mask);
  });
  const free = host.map((t, l) => t.value.length - count(t.mask) + removedCounts[l]);
  const caps99 = free.map((f) => Math.floor(0.99 * f));
  const regrow = snfsRegrowth(total, shares, sum(caps99) >= total ? caps99 : free);
  return host.map((t, l) => {
    const removed = magnitudeRemovalRef(t.value, t.mask, removedCounts[l]);
    const kept = keptOf(t.mask, removed);
    const grown = topkRef(magnitudeKeysRef(scores[l]), regrow[l], "largest", inactive(kept));
    const cap = sum(caps99) >= total ? caps99[l] : free[l];
    return {
      kept,
      grown,
      nnz: count(t.mask) - removedCounts[l] + regrow[l],
      regrow: regrow[l],
      cap,
    };
  });
}

async function snfsCase(
  kind: OptimizerName,
  states: StateName[],
  score: (h: HostTensor) => Float32Array,
): Promise<{ regrow: number; cap: number }[]> {
  const weights = (_: number, r: () => number) => 2 * r() - 1;
  // Unmasked momentum (dense state): what SNFS needs. The second tensor's momentum is 30x
  // larger, so it claims most of the regrowth and hits its 0.99 cap.
  const host = [
    hostTensor("a", [8, 12], 4, 31, { density: 0.5, draw: weights, states, denseState: true }),
    hostTensor("b", [5, 7], 1, 32, {
      density: 0.6,
      draw: weights,
      states,
      denseState: true,
      stateScale: kind === "adam" ? 1 : 30,
    }),
  ];
  if (kind === "sgd") host[1].grad.forEach((_, i, g) => (g[i] *= 30));
  const s = setup(host, kind);
  const p = 0.5;
  const totalBefore = sum(host.map((t) => count(t.mask)));
  const report = await snfs.update!(input(s, { removalRate: p }));
  const after = await readBack(s);
  const ref = snfsRef(host, host.map(score), p);
  host.forEach((t, l) => {
    checkUpdate(`snfs ${kind}`, t, after[l], ref[l].kept, ref[l].grown);
    equal(s.tensors[l].nnz, ref[l].nnz, `${kind} ${t.name}: nnz`);
    equal(s.tensors[l].budget, ref[l].nnz, `${kind} ${t.name}: budget follows`);
  });
  equal(sum(s.tensors.map((t) => t.nnz)), totalBefore, `${kind}: total constant`);
  equal(report.removed, report.grown);
  teardown(s);
  return ref;
}

Deno.test({
  name: "snfs: momentum shares with 0.99 caps, growth at the largest momentum " +
    "(momentum SGD buffer, Adam m/(√v+1e-8), plain SGD |grad|)",
  ...GPU_TEST,
  fn: async () => {
    const mom = await snfsCase("momentum", ["buf"], (h) => h.state.buf!);
    equal(mom[1].regrow, mom[1].cap, "the high-momentum tensor is capped");
    ok(mom[1].cap < mom[0].cap, "caps: 0.99 of the free slots");
    await snfsCase("adam", ["m", "v"], (h) => adamMomentumScoreRef(h.state.m!, h.state.v!, 1e-8));
    const sgd = await snfsCase("sgd", [], (h) => h.grad);
    equal(sgd[1].regrow, sgd[1].cap, "the high-gradient tensor is capped");
  },
});

Deno.test({
  name: "snfs: regrowth split with caps and the residual spread evenly",
  fn: () => {
    deepStrictEqual(snfsRegrowth(10, [8, 1, 1], [4, 100, 100]), [4, 3, 3]);
    deepStrictEqual(snfsRegrowth(10, [1, 1], [100, 100]), [5, 5]);
    deepStrictEqual(snfsRegrowth(9, [1, 0, 0], [2, 3, 4]), [2, 3, 4]);
    deepStrictEqual(snfsRegrowth(7, [0, 0], [5, 5]), [4, 3]);
    deepStrictEqual(snfsRegrowth(0, [1, 2], [0, 0]), [0, 0]);
    throws(() => snfsRegrowth(10, [1, 1], [4, 5]), RangeError);
  },
});

// ------------------------------------------------------------------------------------------ GMP

Deno.test({
  name: "gmp: starts dense, follows the cubic schedule by magnitude, never regrows",
  ...GPU_TEST,
  fn: async () => {
    const draw = (_: number, r: () => number) => 2 * r() - 1;
    const host = [
      hostTensor("a", [8, 12], 4, 41, { density: 1, draw, states: ["buf"] }),
      hostTensor("b", [5, 7], 1, 42, { density: 1, draw, states: ["buf"] }),
    ];
    ok(gmp.startsDense && gmp.update);
    const s = setup(host, "momentum");
    const T = 100, t0 = 20, span = 50, sFinal = 1 - SETTINGS.density;
    let prev: HostTensor[] = host.map((h) => ({
      ...h,
      mask: h.mask.slice(),
      value: h.value.slice(),
    }));
    for (const [u, step] of [5, 20, 21, 35, 50, 69, 70, 90].entries()) {
      const x = Math.min(1, Math.max(0, (step - t0) / span));
      const density = step >= t0 + span ? SETTINGS.density : 1 - sFinal * (1 - (1 - x) ** 3);
      const report = await gmp.update!(input(s, { step, totalSteps: T, update: u }));
      const after = await readBack(s);
      let removed = 0;
      prev.forEach((h, l) => {
        const n = h.value.length;
        const keep = Math.round(density * n);
        const k = count(h.mask) - keep;
        ok(k >= 0, `step ${step}: schedule never rises`);
        removed += k;
        const kept = keptOf(h.mask, magnitudeRemovalRef(h.value, h.mask, k));
        checkUpdate(`gmp step ${step}`, h, after[l], kept, new Uint8Array(n));
        equal(s.tensors[l].nnz, keep);
        equal(s.tensors[l].budget, keep);
      });
      deepStrictEqual(report, { removed, grown: 0 });
      prev = prev.map((h, l) => ({
        ...h,
        mask: after[l].mask,
        value: after[l].value,
        state: { buf: after[l].state.buf! },
      }));
    }
    deepStrictEqual(s.tensors.map((t) => t.nnz), [Math.round(0.3 * 96), Math.round(0.3 * 35)]);
    teardown(s);
    equal(gmpDensity(0, 100, SETTINGS), 1);
    ok(Math.abs(gmpDensity(45, 100, SETTINGS) - (1 - 0.7 * (1 - 0.5 ** 3))) < 1e-12);
    equal(gmpDensity(100, 100, SETTINGS), 0.3);
    throws(() => gmpDensity(1, 100, { ...SETTINGS, pruneStart: 0.8, pruneEnd: 0.5 }), RangeError);
  },
});
