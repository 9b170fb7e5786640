import { checkGrads, maxAbs, maxDiff, tokens } from "./_grad_util.ts";
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { bernoulliMask, forEachVariant, GPU_TEST, testGpu, uniform } from "./_util.ts";
import { createMos, type MosConfig, type MosLm, mosParamSpecs } from "../models/mos/mos_lm.ts";
import { mosRef } from "../models/mos/mos_ref.ts";
import {
  createGatedStackState,
  createGatedStackWorkspace,
  gatedStackEvalLoss,
  gatedStackStep,
  writeGatedStackBatch,
} from "../models/parts/gated_stack.ts";
import { sparsifyParam } from "../models/sparse_params.ts";
import { hostCsrFromMask } from "../kernels/sparse/sparse_matrix.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { numel } from "../kernels/runtime/tensor.ts";

// layers 6 → 5 (nhidlast), 3 experts of width E = 4
const V = 11, T = 4, B = 3;
const cfg = (tied: boolean, over: Partial<MosConfig> = {}): MosConfig => ({
  vocab: V,
  embed: 4,
  hidden: 6,
  hiddenLast: 5,
  layers: 2,
  experts: 3,
  tied,
  dropout: 0.3,
  dropouth: 0.2,
  dropouti: 0.25,
  dropoute: 0.1,
  dropoutl: 0.2,
  wdrop: 0.3,
  wdropConvention: "inverted",
  alpha: 2,
  beta: 1,
  ...over,
});

const PAPER: MosConfig = {
  ...cfg(true),
  vocab: 33278,
  embed: 300,
  hidden: 1150,
  hiddenLast: 650,
  layers: 3,
  experts: 15,
  dropout: 0.4,
  dropouth: 0.2,
  dropouti: 0.55,
  dropoute: 0.1,
  dropoutl: 0.29,
  wdrop: 0.5,
};

async function readAll(gpu: Gpu, model: MosLm, what: "value" | "grad") {
  const out: Record<string, Float64Array> = {};
  for (const p of model.params) out[p.name] = Float64Array.from(await gpu.read(p[what]));
  return out;
}

Deno.test("mos: the paper's model has 34,909,528 parameters, 34,848,150 in sparse tensors", () => {
  const specs = mosParamSpecs(PAPER);
  equal(specs.reduce((n, s) => n + numel(s.shape), 0), 34_909_528);
  equal(specs.filter((s) => s.sparse).reduce((n, s) => n + numel(s.shape), 0), 34_848_150);
  const by = new Map(specs.map((s) => [s.name, s]));
  deepEqual(by.get("rnns.2.weight_hh_l0")!.shape, [2600, 650]);
  deepEqual(by.get("rnns.2.weight_ih_l0")!.blocks, [650, 650, 650, 650]);
  deepEqual(by.get("latent.0.weight")!.shape, [4500, 650]);
  deepEqual(by.get("prior.weight")!.blocks, [15]);
  ok(!by.get("latent.0.bias")!.sparse && by.get("prior.weight")!.sparse);
  ok(!by.has("decoder.weight"), "tied");
  throws(() => mosParamSpecs({ ...PAPER, experts: 65 }), /at most 64/);
});

Deno.test("mos ref: every gradient equals f64 central differences, with every device", () => {
  for (const tied of [false, true]) {
    const config = cfg(tied);
    const weights: Record<string, Float64Array> = {};
    mosParamSpecs(config).forEach((s, k) => {
      weights[s.name] = Float64Array.from(uniform(numel(s.shape), 100 + k, -0.5, 0.5));
    });
    const input = tokens(T * B, 1, V), target = tokens(T * B, 2, V);
    const dropout = { seed: 77, step: 3 };
    const run = (grad: boolean) => mosRef({ config, weights, input, target, T, B, dropout, grad });
    const { grads } = run(true);
    const h = 1e-6;
    for (const [name, w] of Object.entries(weights)) {
      const fd = new Float64Array(w.length);
      for (let i = 0; i < w.length; i++) {
        const save = w[i];
        w[i] = save + h;
        const up = run(false).loss;
        w[i] = save - h;
        const dn = run(false).loss;
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

async function stepBoth(gpu: Gpu, config: MosConfig, seed: number) {
  const model = createMos(gpu, config, seed);
  const ws = createGatedStackWorkspace(gpu, model, { maxT: T, B, training: true });
  const state = createGatedStackState(gpu, model, B);
  const input = tokens(T * B, seed + 1, V), target = tokens(T * B, seed + 2, V);
  const batch = writeGatedStackBatch(gpu, ws, { T, input, target });
  const rows = gatedStackStep(gpu, model, ws, state, batch, { seed: 99, step: 5 });
  const gpuLoss = await gpu.read(rows);
  const got = await readAll(gpu, model, "grad");
  const weights = await readAll(gpu, model, "value");
  const args = { config, weights, input, target, T, B, dropout: { seed: 99, step: 5 } };
  return { model, ws, batch, gpuLoss, got, weights, args, ref: mosRef(args) };
}

Deno.test({
  name: "mos: GPU loss and every gradient equal the f64 reference (untied, tied, variants)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      for (const tied of [false, true]) {
        const { gpuLoss, got, ref, args } = await stepBoth(gpu, cfg(tied), tied ? 7 : 3);
        const label = `${variant} tied=${tied}`;
        for (let n = 0; n < T * B; n++) {
          ok(
            Math.abs(gpuLoss[n] - ref.rowLoss[n]) <= 2e-5 * ref.rowLoss[n],
            `${label} row ${n}: loss ${gpuLoss[n]} vs ${ref.rowLoss[n]}`,
          );
        }
        checkGrads(got, ref.grads, label);
        // the latent's dropout is part of what the GPU did
        const noL = mosRef({ ...args, config: { ...args.config, dropoutl: 0 } });
        throws(() => checkGrads(got, noL.grads, "dropoutl 0"), /max abs error/);
      }
    });
  },
});

Deno.test({
  name: "mos: eval loss and true sparse storage match (masked-dense vs CSR)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const config = cfg(true);
    const model = createMos(gpu, config, 21);
    const weights = await readAll(gpu, model, "value");
    const ews = createGatedStackWorkspace(gpu, model, { maxT: T, B, training: false });
    const input = tokens(T * B, 22, V), target = tokens(T * B, 23, V);
    const eb = writeGatedStackBatch(gpu, ews, { T, input, target });
    const rows = await gpu.read(
      gatedStackEvalLoss(gpu, model, ews, createGatedStackState(gpu, model, B), eb),
    );
    const ref = mosRef({ config, weights, input, target, T, B, grad: false });
    for (let n = 0; n < T * B; n++) {
      ok(Math.abs(rows[n] - ref.rowLoss[n]) <= 2e-5 * ref.rowLoss[n], `eval row ${n}`);
    }
    const masks = new Map<string, Float32Array>();
    model.params.forEach((p, k) => {
      if (!p.sparse) return;
      const m = bernoulliMask(p.value.size, 0.45, 700 + k);
      masks.set(p.name, m);
      p.mask = gpu.upload(p.shape, m);
    });
    const ws = createGatedStackWorkspace(gpu, model, { maxT: T, B, training: true });
    const run = async () => {
      const batch = writeGatedStackBatch(gpu, ws, { T, input, target });
      const state = createGatedStackState(gpu, model, B);
      const loss = await gpu.read(
        gatedStackStep(gpu, model, ws, state, batch, { seed: 3, step: 9 }),
      );
      const grads = new Map<string, Float32Array>();
      for (const p of model.params) grads.set(p.name, Float32Array.from(await gpu.read(p.grad)));
      return { loss, grads };
    };
    const dense = await run();
    for (const p of model.params) {
      const m = masks.get(p.name);
      if (m) sparsifyParam(gpu, p, { nnz: m.reduce((s, x) => s + x, 0) });
    }
    const sparse = await run();
    for (let n = 0; n < T * B; n++) {
      ok(Math.abs(dense.loss[n] - sparse.loss[n]) <= 1e-5 * dense.loss[n], `row ${n}`);
    }
    for (const p of model.params) {
      const m = masks.get(p.name);
      const g = dense.grads.get(p.name)!;
      const want = m ? hostCsrFromMask(p.shape[0], p.shape[1], g, m).values : g;
      const got = sparse.grads.get(p.name)!.subarray(0, want.length);
      const scale = maxAbs(want);
      ok(scale > 1e-7, `${p.name}: gradient ~0`);
      ok(maxDiff(got, want) <= 1e-4 * scale, `${p.name}: CSR gradient ${maxDiff(got, want)}`);
    }
  },
});
