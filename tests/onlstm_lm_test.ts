import { checkGrads, maxAbs, maxDiff, tokens } from "./_grad_util.ts";
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { bernoulliMask, forEachVariant, GPU_TEST, testGpu, uniform } from "./_util.ts";
import {
  createOnLstm,
  type OnLstmConfig,
  type OnLstmLm,
  onLstmParamSpecs,
} from "../models/onlstm/onlstm_lm.ts";
import { onLstmRef } from "../models/onlstm/onlstm_ref.ts";
import { onLstmFamily, onLstmWeightMacs } from "../models/onlstm/family.ts";
import type { GatedCellRef } from "../models/parts/gated_stack_ref.ts";
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
import { sigmoid64 } from "../kernels/dense/elementwise_ref.ts";

// layers 12 → 8 (the last is the embedding size), chunk 4: n = 3 and 2 chunks
const V = 11, E = 8, NHID = 12, L = 2, C = 4, T = 4, B = 3;
const cfg = (tied: boolean, over: Partial<OnLstmConfig> = {}): OnLstmConfig => ({
  vocab: V,
  embed: E,
  hidden: NHID,
  layers: L,
  chunkSize: C,
  tied,
  dropout: 0.3,
  dropouth: 0.2,
  dropouti: 0.25,
  dropoute: 0.1,
  wdrop: 0.3,
  wdropConvention: "eval-scaled",
  alpha: 2,
  beta: 1,
  gateBlocks: "gates",
  ...over,
});

const PAPER: OnLstmConfig = {
  ...cfg(true),
  vocab: 10000,
  embed: 400,
  hidden: 1150,
  layers: 3,
  chunkSize: 10,
  dropout: 0.45,
  dropouth: 0.3,
  dropouti: 0.5,
  dropoute: 0.1,
  wdrop: 0.45,
};

async function readAll(gpu: Gpu, model: OnLstmLm, what: "value" | "grad") {
  const out: Record<string, Float64Array> = {};
  for (const p of model.params) out[p.name] = Float64Array.from(await gpu.read(p[what]));
  return out;
}

Deno.test("onlstm: the paper's model has 25,232,180 parameters, true gate blocks, costs", () => {
  const specs = onLstmParamSpecs(PAPER);
  equal(specs.reduce((n, s) => n + numel(s.shape), 0), 25_232_180);
  const sparse = specs.filter((s) => s.sparse);
  equal(sparse.reduce((n, s) => n + numel(s.shape), 0), 25_199_500);
  deepEqual(specs.map((s) => s.name).slice(0, 5), [
    "encoder.weight",
    "rnn.cells.0.ih.0.weight",
    "rnn.cells.0.ih.0.bias",
    "rnn.cells.0.hh.weight",
    "rnn.cells.0.hh.bias",
  ]);
  const by = new Map(specs.map((s) => [s.name, s]));
  deepEqual(by.get("rnn.cells.1.hh.weight")!.shape, [4830, 1150]);
  deepEqual(by.get("rnn.cells.2.ih.0.weight")!.shape, [1680, 1150]);
  deepEqual(by.get("rnn.cells.2.hh.weight")!.blocks, [40, 40, 400, 400, 400, 400]);
  deepEqual(by.get("rnn.cells.0.ih.0.bias")!.blocks, [115, 115, 1150, 1150, 1150, 1150]);
  ok(!by.has("decoder.weight"), "tied: no decoder weight");
  // Linear's default init: U(±1/√fan_in), for the weight and its bias alike
  const ih1 = by.get("rnn.cells.1.ih.0.bias")!.init, hh2 = by.get("rnn.cells.2.hh.weight")!.init;
  ok(ih1.kind === "uniform" && Math.abs(ih1.hi - 1 / Math.sqrt(1150)) < 1e-15);
  ok(hh2.kind === "uniform" && Math.abs(hh2.hi - 1 / Math.sqrt(400)) < 1e-15);
  // the released script's torch.chunk(4830, 4)
  const chunk4 = onLstmParamSpecs({ ...PAPER, gateBlocks: "chunk4" });
  deepEqual(chunk4[3].blocks, [1208, 1208, 1208, 1206]);
  // one product per token for every sparse tensor except the untied lookup
  const macs = onLstmWeightMacs(PAPER);
  equal(macs.reduce((s, w) => s + w.macs, 0), 25_199_500);
  const untied = onLstmWeightMacs({ ...PAPER, tied: false });
  equal(untied.find((w) => w.name === "encoder.weight")!.macs, 0);
});

Deno.test("onlstm family: settings are checked and name the flag", () => {
  const s = {
    vocab: 10000,
    emsize: 400,
    nhid: 1150,
    nlayers: 3,
    dropout: 0.45,
    dropouth: 0.3,
    dropouti: 0.5,
    dropoute: 0.1,
    tied: true,
    wdrop: 0.45,
    wdropConvention: "eval-scaled" as const,
    alpha: 2,
    beta: 1,
    flags: { "chunk-size": 10, "gate-blocks": "gates" },
  };
  deepEqual(onLstmFamily.config(s), PAPER);
  throws(
    () => onLstmFamily.config({ ...s, nhid: 1155 }),
    /--nhid 1155 is not a multiple of --chunk-size 10/,
  );
  throws(() => onLstmFamily.config({ ...s, emsize: 405 }), /--emsize .* 405/);
  throws(
    () => onLstmFamily.config({ ...s, flags: { ...s.flags, "gate-blocks": "equal" } }),
    /--gate-blocks: expected one of gates, chunk4/,
  );
  throws(
    () => onLstmFamily.config({ ...s, flags: { ...s.flags, "chunk-size": 1 } }),
    /at most 256 chunks/,
  );
  // small-dense's width is in chunks, so every width it tries is a model
  const c = onLstmFamily.withWidth(PAPER, 50);
  equal(c.hidden, 500);
  equal(c.embed, 400);
  equal(onLstmFamily.width(PAPER), 115);
});

Deno.test("onlstm ref: every gradient equals f64 central differences, with every device", () => {
  for (const tied of [false, true]) {
    const config = cfg(tied);
    const weights: Record<string, Float64Array> = {};
    onLstmParamSpecs(config).forEach((s, k) => {
      weights[s.name] = Float64Array.from(uniform(numel(s.shape), 100 + k, -0.5, 0.5));
    });
    const input = tokens(T * B, 1, V), target = tokens(T * B, 2, V);
    const h0 = [NHID, E].map((H, l) => Float64Array.from(uniform(B * H, 10 + l, -0.5, 0.5)));
    const c0 = [NHID, E].map((H, l) => Float64Array.from(uniform(B * H, 20 + l, -0.5, 0.5)));
    const dropout = { seed: 77, step: 3 };
    const run = (grad: boolean) =>
      onLstmRef({ config, weights, input, target, T, B, h0, c0, dropout, grad });
    const { grads } = run(true);
    // as the LSTM's check: h = 1e-6, relative error < 1e-6 of the tensor's largest gradient
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

/** One training step on the GPU and the reference on the same weights and batch. */
async function stepBoth(gpu: Gpu, config: OnLstmConfig, seed: number) {
  const model = createOnLstm(gpu, config, seed);
  const ws = createGatedStackWorkspace(gpu, model, { maxT: T, B, training: true });
  const state = createGatedStackState(gpu, model, B);
  const input = tokens(T * B, seed + 1, V), target = tokens(T * B, seed + 2, V);
  const batch = writeGatedStackBatch(gpu, ws, { T, input, target });
  const gpuLoss = await gpu.read(
    gatedStackStep(gpu, model, ws, state, batch, { seed: 99, step: 5 }),
  );
  const got = await readAll(gpu, model, "grad");
  const weights = await readAll(gpu, model, "value");
  const args = { config, weights, input, target, T, B, dropout: { seed: 99, step: 5 } };
  return { model, gpuLoss, got, weights, args, ref: onLstmRef(args) };
}

Deno.test({
  name: "onlstm: GPU loss and every gradient equal the f64 reference (untied, tied, variants)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      for (const tied of [false, true]) {
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

/** The ON-LSTM cell with the master gates' softmax used as is, without the cumulative sums. */
const NO_CUMAX: GatedCellRef = {
  width: (H) => 4 * H + (2 * H) / C,
  forward(z, cPrev, H) {
    const n = H / C;
    const soft = (o: number) => {
      const e = Array.from({ length: n }, (_, q) => Math.exp(z[o + q]));
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((v) => v / s);
    };
    const pin = soft(0), pf = soft(n);
    const c = new Float64Array(H), h = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const q = Math.floor(j / C), w = pf[q] * pin[q];
      const o = sigmoid64(z[2 * n + j]), g = Math.tanh(z[2 * n + H + j]);
      const i = sigmoid64(z[2 * n + 2 * H + j]), f = sigmoid64(z[2 * n + 3 * H + j]);
      c[j] = (f * w + pf[q] - w) * cPrev[j] + (i * w + pin[q] - w) * g;
      h[j] = o * Math.tanh(c[j]);
    }
    return { act: new Float64Array(4 * H + 2 * n), c, h };
  },
  backward() {
    throw new Error("forward only");
  },
};

Deno.test({
  name: "onlstm: the check fails on a swapped gate block, no cumax, or AR on the dropped output",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const { gpuLoss, got, ref, args } = await stepBoth(gpu, cfg(false), 3);
    checkGrads(got, ref.grads, "unchanged");
    // swap the i and f blocks of layer 0's hh gradient (rows 2n + 2H.. and 2n + 3H..)
    const n = NHID / C, g = got["rnn.cells.0.hh.weight"], row = NHID;
    const bad = Float64Array.from(g);
    bad.set(
      g.subarray((2 * n + 2 * NHID) * row, (2 * n + 3 * NHID) * row),
      (2 * n + 3 * NHID) * row,
    );
    bad.set(
      g.subarray((2 * n + 3 * NHID) * row, (2 * n + 4 * NHID) * row),
      (2 * n + 2 * NHID) * row,
    );
    throws(
      () => checkGrads({ ...got, "rnn.cells.0.hh.weight": bad }, ref.grads, "swap"),
      /max abs error/,
    );
    // the master gates without their cumulative sums: another loss
    const plain = onLstmRef({ ...args, grad: false, override: { cell: NO_CUMAX } });
    ok(
      plain.rowLoss.some((v, k) => Math.abs(v - gpuLoss[k]) > 1e-3 * v),
      "a cell without cumax gives the same loss: the check cannot see it",
    );
    // AR on the dropped output (AWD-LSTM's choice) is not ON-LSTM's
    const dropped = onLstmRef({ ...args, override: { arOn: "dropped" } });
    throws(() => checkGrads(got, dropped.grads, "AR on dropped"), /max abs error/);
    // each device matters
    for (const off of [{ dropouth: 0 }, { dropoute: 0 }, { beta: 0 }, { wdrop: 0 }]) {
      const wrong = onLstmRef({ ...args, config: { ...args.config, ...off } });
      throws(() => checkGrads(got, wrong.grads, JSON.stringify(off)), /max abs error/);
    }
  },
});

Deno.test({
  name: "onlstm: carried state over two windows, and eval loss with the scaled recurrent weight",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const config = cfg(true);
    const model = createOnLstm(gpu, config, 11);
    const weights = await readAll(gpu, model, "value");
    const ws = createGatedStackWorkspace(gpu, model, { maxT: T, B, training: false });
    const state = createGatedStackState(gpu, model, B);
    let h0: Float64Array[] | undefined, c0: Float64Array[] | undefined;
    for (const w of [0, 1]) {
      const input = tokens(T * B, 50 + w, V), target = tokens(T * B, 60 + w, V);
      const batch = writeGatedStackBatch(gpu, ws, { T, input, target });
      const rows = await gpu.read(gatedStackEvalLoss(gpu, model, ws, state, batch));
      const ref = onLstmRef({ config, weights, input, target, T, B, h0, c0, grad: false });
      for (let k = 0; k < T * B; k++) {
        ok(Math.abs(rows[k] - ref.rowLoss[k]) <= 2e-5 * ref.rowLoss[k], `window ${w} row ${k}`);
      }
      const unscaled = onLstmRef({
        config: { ...config, wdropConvention: "inverted" },
        weights,
        input,
        target,
        T,
        B,
        h0,
        c0,
        grad: false,
      });
      ok(unscaled.rowLoss.some((v, k) => Math.abs(v - ref.rowLoss[k]) > 1e-4), "scaling matters");
      h0 = ref.h;
      c0 = ref.c;
    }
  },
});

Deno.test({
  name: "onlstm: true sparse storage gives the masked-dense loss and gradients (active entries)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const model = createOnLstm(gpu, cfg(false), 77);
    const masks = new Map<string, Float32Array>();
    model.params.forEach((p, k) => {
      if (!p.sparse) return;
      const m = bernoulliMask(p.value.size, 0.45, 500 + k);
      masks.set(p.name, m);
      p.mask = gpu.upload(p.shape, m);
    });
    const ws = createGatedStackWorkspace(gpu, model, { maxT: T, B, training: true });
    const input = tokens(T * B, 41, V), target = tokens(T * B, 42, V);
    const run = async () => {
      const state = createGatedStackState(gpu, model, B);
      const batch = writeGatedStackBatch(gpu, ws, { T, input, target });
      const loss = await gpu.read(
        gatedStackStep(gpu, model, ws, state, batch, { seed: 3, step: 9 }),
      );
      const grads = new Map<string, Float32Array>();
      for (const p of model.params) grads.set(p.name, Float32Array.from(await gpu.read(p.grad)));
      const evalLoss = await gpu.read(
        gatedStackEvalLoss(gpu, model, ws, createGatedStackState(gpu, model, B), batch),
      );
      return { loss, grads, evalLoss };
    };
    const dense = await run();
    for (const p of model.params) {
      const m = masks.get(p.name);
      if (m) sparsifyParam(gpu, p, { nnz: m.reduce((s, x) => s + x, 0) });
    }
    const sparse = await run();
    // f32 programs over the same terms in another order (see lstm_lm_sparse_test.ts)
    for (let k = 0; k < T * B; k++) {
      ok(Math.abs(dense.loss[k] - sparse.loss[k]) <= 1e-5 * dense.loss[k], `row ${k}`);
      ok(Math.abs(dense.evalLoss[k] - sparse.evalLoss[k]) <= 1e-5 * dense.evalLoss[k], `eval ${k}`);
    }
    for (const p of model.params) {
      const m = masks.get(p.name);
      const g = dense.grads.get(p.name)!;
      const want = m ? hostCsrFromMask(p.shape[0], p.shape[1], g, m).values : g;
      const got = sparse.grads.get(p.name)!.subarray(0, want.length);
      const scale = maxAbs(want);
      ok(scale > 1e-7, `${p.name}: gradient ~0`);
      ok(maxDiff(got, want) <= 1e-4 * scale, `${p.name}: CSR gradient`);
    }
  },
});
