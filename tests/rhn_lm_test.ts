import { checkGrads, maxAbs, maxDiff, tokens } from "./_grad_util.ts";
import { ok, throws } from "node:assert/strict";
import { bernoulliMask, forEachVariant, GPU_TEST, testGpu, uniform } from "./_util.ts";
import {
  createRhn,
  createRhnWorkspace,
  type RhnConfig,
  rhnEvalLoss,
  type RhnLm,
  rhnParamSpecs,
  rhnStep,
  writeRhnBatch,
} from "../models/rhn/rhn_lm.ts";
import { rhnRef, type RhnRefArgs } from "../models/rhn/rhn_ref.ts";
import { rhnFamily, rhnWeightMacs } from "../models/rhn/family.ts";
import { sparsifyParam } from "../models/sparse_params.ts";
import { hostCsrFromMask } from "../kernels/sparse/sparse_matrix.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";

const V = 9, H = 4, L = 2, T = 3, B = 2;
const DROPS = { dropout: 0.3, dropouth: 0.25, dropouti: 0.35, dropoute: 0.2 };
const cfg = (tied: boolean, drops = DROPS): RhnConfig => ({
  vocab: V,
  embed: H,
  hidden: H,
  depth: L,
  tied,
  ...drops,
});

async function readAll(gpu: Gpu, model: RhnLm, what: "value" | "grad") {
  const out: Record<string, Float64Array> = {};
  for (const p of model.params) out[p.name] = Float64Array.from(await gpu.read(p[what]));
  return out;
}

Deno.test("rhn: the paper's model has 23,484,060 parameters, blocks [H; T], costs per token", () => {
  const paper = { ...cfg(true), vocab: 10000, embed: 830, hidden: 830, depth: 10 };
  const specs = rhnParamSpecs(paper);
  const count = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  ok(count === 23_484_060, `${count}`);
  const masked = specs.filter((s) => s.sparse).reduce((n, s) => n + s.shape[0] * s.shape[1], 0);
  ok(masked === 23_455_800, `masked ${masked} (spec §2.2)`);
  for (const s of specs.filter((s) => s.name.startsWith("rnns."))) {
    ok(s.blocks.join() === "830,830", `${s.name}: blocks ${s.blocks}`);
  }
  ok(!specs.some((s) => s.name === "fc1.weight"), "tied: no separate decoder weight");
  const macs = rhnWeightMacs(paper).reduce((n, w) => n + w.macs, 0);
  ok(macs === 11 * 1660 * 830 + 10000 * 830, `${macs}`);
  throws(() => rhnFamily.config({ ...settings(), nlayers: 2 }), /the RHN is one highway layer/);
  throws(() => rhnFamily.config({ ...settings(), tied: true, nhid: 8 }), /--tied needs --emsize/);
});

function settings() {
  return {
    vocab: V,
    emsize: H,
    nhid: H,
    nlayers: 1,
    dropout: 0,
    dropouth: 0,
    dropouti: 0,
    dropoute: 0,
    wdrop: 0,
    wdropConvention: "inverted" as const,
    alpha: 0,
    beta: 0,
    tied: true,
    flags: { depth: L },
  };
}

function refWeights(config: RhnConfig, seed: number): Record<string, Float64Array> {
  const weights: Record<string, Float64Array> = {};
  rhnParamSpecs(config).forEach((s, k) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    // larger than the default init so every path carries a sizeable gradient
    weights[s.name] = Float64Array.from(uniform(n, seed + k, -0.6, 0.6));
  });
  return weights;
}

Deno.test("rhn ref: every gradient equals f64 central differences, with every dropout", () => {
  for (const tied of [true, false]) {
    const config = cfg(tied);
    const weights = refWeights(config, 200);
    const input = tokens(T * B, 1, V), target = tokens(T * B, 2, V);
    const s0 = Float64Array.from(uniform(B * H, 10, -0.5, 0.5));
    const args: RhnRefArgs = { config, weights, input, target, T, B, s0 };
    const dropout = { seed: 77, step: 3 };
    const { grads } = rhnRef({ ...args, dropout });
    // h = 1e-6: truncation ~1e-12, cancellation ~1e-10; a wrong formula is O(1) relative
    const h = 1e-6;
    for (const [name, w] of Object.entries(weights)) {
      const fd = new Float64Array(w.length);
      for (let i = 0; i < w.length; i++) {
        const save = w[i];
        w[i] = save + h;
        const up = rhnRef({ ...args, dropout }).loss;
        w[i] = save - h;
        const dn = rhnRef({ ...args, dropout }).loss;
        w[i] = save;
        fd[i] = (up - dn) / (2 * h);
      }
      const scale = maxAbs(grads[name]);
      ok(scale > 1e-4, `${name}: gradient ~0, the check could not fail`);
      const rel = maxDiff(grads[name], fd) / scale;
      ok(rel < 1e-6, `tied=${tied} ${name}: relative error ${rel.toExponential(2)} vs FD`);
    }
  }
});

/** One training step on the GPU and the reference on the same weights and batch. */
async function stepBoth(gpu: Gpu, config: RhnConfig, seed: number, refConfig = config) {
  const model = createRhn(gpu, config, seed);
  const ws = createRhnWorkspace(gpu, model, { maxT: T, B, training: true });
  const input = tokens(T * B, seed + 1, V), target = tokens(T * B, seed + 2, V);
  const batch = writeRhnBatch(gpu, ws, { T, input, target });
  const gpuLoss = await gpu.read(rhnStep(gpu, model, ws, batch, { seed: 99, step: 5 }));
  const got = await readAll(gpu, model, "grad");
  const weights = await readAll(gpu, model, "value");
  const ref = rhnRef({
    config: refConfig,
    weights,
    input,
    target,
    T,
    B,
    dropout: { seed: 99, step: 5 },
  });
  return { model, gpuLoss, got, ref, ws, weights, input, target };
}

Deno.test({
  name: "rhn: GPU loss and every gradient equal the f64 reference (tied, untied, variants)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      for (const tied of [true, false]) {
        const { gpuLoss, got, ref } = await stepBoth(gpu, cfg(tied), tied ? 7 : 3);
        const label = `${variant} tied=${tied}`;
        for (let n = 0; n < T * B; n++) {
          ok(
            Math.abs(gpuLoss[n] - ref.rowLoss[n]) <= 2e-5 * ref.rowLoss[n],
            `${label} row ${n}: loss ${gpuLoss[n]} vs ${ref.rowLoss[n]}`,
          );
        }
        checkGrads(got, ref.grads, label);
      }
    });
  },
});

Deno.test({
  name: "rhn: the check fails on a swapped H/T block or any dropout left out (sensitivity)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const { got, ref } = await stepBoth(gpu, cfg(true), 7);
    const name = "rnns.0.highways.1.R.weight";
    const g = got[name], half = g.length / 2;
    const swapped = Float64Array.from(g);
    swapped.set(g.subarray(half), 0);
    swapped.set(g.subarray(0, half), half);
    throws(() => checkGrads({ ...got, [name]: swapped }, ref.grads, "swapped"), /max abs error/);
    // each dropout is applied: a reference without any one of them does not match the step
    for (const site of ["dropoute", "dropouti", "dropouth", "dropout"] as const) {
      const without = await stepBoth(gpu, cfg(true), 7, cfg(true, { ...DROPS, [site]: 0 }));
      throws(() => checkGrads(without.got, without.ref.grads, `no ${site}`), /max abs error/);
    }
  },
});

Deno.test({
  name: "rhn: carried state over two windows, eval loss, and masked or CSR weights",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // dropouts configured but off at evaluation: the reference without them is the oracle
    const config = cfg(false);
    const model = createRhn(gpu, config, 11);
    const weights = await readAll(gpu, model, "value");
    // weight masks at density 0.5 on every sparse tensor
    const masks: Record<string, Float32Array> = {};
    model.params.forEach((p, k) => {
      if (!p.sparse) return;
      const m = bernoulliMask(p.value.size, 0.5, 50 + k);
      masks[p.name] = m;
      p.mask = gpu.upload(p.shape, m);
    });
    const ws = createRhnWorkspace(gpu, model, { maxT: T, B, training: false });
    let s0: Float64Array | undefined;
    for (const w of [0, 1]) {
      const input = tokens(T * B, 30 + w, V), target = tokens(T * B, 40 + w, V);
      const batch = writeRhnBatch(gpu, ws, { T, input, target });
      const got = await gpu.read(rhnEvalLoss(gpu, model, ws, batch));
      const ref = rhnRef({ config, weights, masks, input, target, T, B, s0 });
      for (let n = 0; n < T * B; n++) {
        ok(Math.abs(got[n] - ref.rowLoss[n]) <= 2e-5 * ref.rowLoss[n], `window ${w} row ${n}`);
      }
      s0 = ref.s;
    }
    // the same step masked and CSR: the same losses and active gradients
    const train = createRhnWorkspace(gpu, model, { maxT: T, B, training: true });
    const input = tokens(T * B, 60, V), target = tokens(T * B, 61, V);
    const run = async () => {
      gpu.fill(train.state, 0);
      const batch = writeRhnBatch(gpu, train, { T, input, target });
      const loss = await gpu.read(rhnStep(gpu, model, train, batch, { seed: 1, step: 0 }));
      const grads = await readAll(gpu, model, "grad");
      return { loss, grads };
    };
    const masked = await run();
    const ref = rhnRef({
      config,
      weights,
      masks,
      input,
      target,
      T,
      B,
      dropout: { seed: 1, step: 0 },
    });
    checkGrads(masked.grads, ref.grads, "masked");
    for (const p of model.params) {
      const m = masks[p.name];
      if (m) sparsifyParam(gpu, p, { nnz: m.reduce((a, b) => a + b, 0) });
    }
    const csr = await run();
    for (let n = 0; n < T * B; n++) {
      ok(Math.abs(csr.loss[n] - masked.loss[n]) <= 1e-5 * masked.loss[n], `csr row ${n}`);
    }
    for (const p of model.params) {
      const m = masks[p.name];
      const want = m
        ? hostCsrFromMask(p.shape[0], p.shape[1], Float32Array.from(masked.grads[p.name]), m)
          .values
        : masked.grads[p.name];
      const got = csr.grads[p.name].subarray(0, want.length);
      const err = maxDiff(got, want);
      ok(err <= 1e-4 * maxAbs(want) + 1e-9, `csr ${p.name}: ${err}`);
    }
  },
});
