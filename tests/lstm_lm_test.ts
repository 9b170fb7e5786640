import { checkGrads, maxAbs, maxDiff, tokens } from "./_grad_util.ts";
import { ok, throws } from "node:assert/strict";
import { bernoulliMask, forEachVariant, GPU_TEST, testGpu, uniform } from "./_util.ts";
import {
  createLstmLm,
  createLstmLmState,
  createLstmLmWorkspace,
  type LstmLm,
  type LstmLmConfig,
  lstmLmDropoutOffset,
  lstmLmEvalLoss,
  lstmLmParamSpecs,
  lstmLmStep,
  resetLstmLmState,
  writeLstmLmBatch,
} from "../models/lstm/lstm_lm.ts";
import { lstmLmRef } from "../models/lstm/lstm_lm_ref.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { uniformRef } from "../kernels/random/philox_ref.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";

const V = 11, E = 6, H = 6, L = 2, T = 4, B = 3;
const cfg = (tied: boolean, dropout = 0.3): LstmLmConfig => ({
  vocab: V,
  embed: E,
  hidden: H,
  layers: L,
  dropout,
  tied,
});

async function readAll(gpu: Gpu, model: LstmLm, what: "value" | "grad") {
  const out: Record<string, Float64Array> = {};
  for (const p of model.params) out[p.name] = Float64Array.from(await gpu.read(p[what]));
  return out;
}

Deno.test({
  name: "lstm lm: parameter layout and seeded init are bit-exact to the CPU Philox formula",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    for (const tied of [false, true]) {
      const config = cfg(tied);
      const model = createLstmLm(gpu, config, 1234);
      const names = model.params.map((p) => p.name);
      const want = [
        "encoder.weight",
        ...[0, 1].flatMap((l) =>
          ["weight_ih", "weight_hh", "bias_ih", "bias_hh"].map((k) => `rnn.${k}_l${l}`)
        ),
        ...(tied ? [] : ["decoder.weight"]),
        "decoder.bias",
      ];
      ok(names.join() === want.join(), `tied=${tied}: names ${names.join()}`);
      ok((model.decoderWeight === model.encoder) === tied, "tied decoder is the encoder tensor");
      const values = await readAll(gpu, model, "value");
      const grads = await readAll(gpu, model, "grad");
      model.params.forEach((p, k) => {
        ok(p.sparse === !p.name.includes("bias"), `${p.name}: sparse flag`);
        const rows = p.shape[0];
        const gates = p.name.startsWith("rnn.") ? [rows / 4, rows / 4, rows / 4, rows / 4] : [rows];
        ok(JSON.stringify(p.blocks) === JSON.stringify(gates), `${p.name}: row blocks`);
        ok(maxAbs(grads[p.name]) === 0, `${p.name}: gradient starts at 0`);
        const v = values[p.name];
        if (p.init.kind === "zeros") {
          ok(maxAbs(v) === 0, `${p.name}: zeros`);
          return;
        }
        const { lo, hi } = p.init;
        const r = p.name.startsWith("rnn.") ? 1 / Math.sqrt(H) : 0.1;
        ok(lo === -r && hi === r, `${p.name}: init range`);
        // value = fround(fround(u·fround(hi − lo)) + fround(lo)), u from Philox (seed, k)
        const u = uniformRef(v.length, 1234, k);
        const span = Math.fround(hi - lo);
        for (let i = 0; i < v.length; i++) {
          const e = Math.fround(Math.fround(u[i] * span) + Math.fround(lo));
          if (v[i] !== e) throw new Error(`${p.name}[${i}] = ${v[i]}, expected ${e}`);
        }
        ok(maxAbs(v) <= r * (1 + 1e-6) && maxAbs(v) > r / 2, `${p.name}: spread`);
      });
    }
  },
});

Deno.test("lstm lm ref: gradients equal f64 central differences (untied and tied)", () => {
  for (const tied of [false, true]) {
    const config = cfg(tied);
    const weights: Record<string, Float64Array> = {};
    lstmLmParamSpecs(config).forEach((s, k) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      // larger than the default init so every path carries a sizeable gradient
      weights[s.name] = Float64Array.from(uniform(n, 100 + k, -0.5, 0.5));
    });
    const input = tokens(T * B, 1, V), target = tokens(T * B, 2, V);
    const h0 = [0, 1].map((l) => Float64Array.from(uniform(B * H, 10 + l, -0.5, 0.5)));
    const c0 = [0, 1].map((l) => Float64Array.from(uniform(B * H, 20 + l, -0.5, 0.5)));
    const run = (grad: boolean) =>
      lstmLmRef({
        config,
        weights,
        input,
        target,
        T,
        B,
        h0,
        c0,
        dropout: { seed: 77, step: 3 },
        grad,
      });
    const { grads } = run(true);
    // Central differences, h = 1e-6: truncation O(h²·L''') ~ 1e-12; cancellation ~ 1e-16·|L|/h
    // ~ 3e-10. Gradients are ~1e-3..1e-1, so relative error < 1e-6 passes with margin while a
    // wrong formula (missing factor, swapped gate) is off by O(1) relative.
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

/** Runs one training step on the GPU and the reference on the same weights and batch. */
async function stepBoth(gpu: Gpu, tied: boolean, seed: number, config = cfg(tied)) {
  const model = createLstmLm(gpu, config, seed);
  const ws = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: true });
  const state = createLstmLmState(gpu, model, B);
  const input = tokens(T * B, seed + 1, V), target = tokens(T * B, seed + 2, V);
  const batch = writeLstmLmBatch(gpu, ws, { T, input, target });
  const lossRows = lstmLmStep(gpu, model, ws, state, batch, { seed: 99, step: 5 });
  const gpuLoss = await gpu.read(lossRows);
  const got = await readAll(gpu, model, "grad");
  const weights = await readAll(gpu, model, "value");
  const ref = lstmLmRef({ config, weights, input, target, T, B, dropout: { seed: 99, step: 5 } });
  return { model, gpuLoss, got, ref };
}

Deno.test({
  name: "lstm lm: GPU loss and every gradient equal the f64 reference (untied, tied, variants)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu, variant) => {
      for (const tied of [false, true]) {
        const { model, gpuLoss, got, ref } = await stepBoth(gpu, tied, tied ? 7 : 3);
        const label = `${variant} tied=${tied}`;
        ok(model.params.length === (tied ? 10 : 11), `${label}: parameter count`);
        // per-row loss: logsumexp over 11 logits from f32 products of length 6 and a 2-layer
        // LSTM; ~1e-6 relative, 2e-5 leaves margin
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
  name: "lstm lm: the gradient check fails on a swapped gate block (test sensitivity)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const { got, ref } = await stepBoth(gpu, false, 3);
    for (const name of ["rnn.weight_hh_l0", "rnn.bias_ih_l1"]) {
      const g = got[name];
      const rows = g.length / 4;
      // swap gate blocks f and g (rows [H, 2H) and [2H, 3H))
      const bad = Float64Array.from(g);
      bad.set(g.subarray(2 * rows, 3 * rows), rows);
      bad.set(g.subarray(rows, 2 * rows), 2 * rows);
      throws(() => checkGrads({ ...got, [name]: bad }, ref.grads, "mutated"), /max abs error/);
      const neg = Float64Array.from(g, (v, i) => (i === 0 ? -v - 1e-3 : v));
      throws(() => checkGrads({ ...got, [name]: neg }, ref.grads, "mutated"), /max abs error/);
    }
  },
});

Deno.test({
  name: "lstm lm: carried state over two windows and eval loss equal the reference",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const config = cfg(false);
    const model = createLstmLm(gpu, config, 11);
    const ws = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: true });
    const state = createLstmLmState(gpu, model, B);
    const weights = await readAll(gpu, model, "value");
    const ids = tokens(3 * T * B, 12, V);
    // window 1 full length, window 2 shorter (T = 3, like an epoch's last chunk)
    const w1 = { T, input: ids.subarray(0, T * B), target: ids.subarray(B, (T + 1) * B) };
    const T2 = 3;
    const w2 = {
      T: T2,
      input: ids.subarray(T * B, (T + T2) * B),
      target: ids.subarray((T + 1) * B, (T + T2 + 1) * B),
    };
    lstmLmStep(gpu, model, ws, state, writeLstmLmBatch(gpu, ws, w1), { seed: 4, step: 0 });
    await gpu.sync();
    // steady state: the second step (a shorter window, views of the same workspace) creates no
    // GPU buffer
    const device = gpu.device as { createBuffer: GPUDevice["createBuffer"] };
    let created = 0;
    const orig = device.createBuffer;
    device.createBuffer = function (this: GPUDevice, d: GPUBufferDescriptor) {
      created++;
      return orig.call(this, d);
    };
    let lossRows;
    try {
      lossRows = lstmLmStep(gpu, model, ws, state, writeLstmLmBatch(gpu, ws, w2), {
        seed: 4,
        step: 1,
      });
      await gpu.sync();
    } finally {
      delete (device as Partial<typeof device>).createBuffer;
    }
    ok(device.createBuffer === orig, "createBuffer restored");
    ok(created === 0, `a steady-state step created ${created} GPU buffers`);
    const loss2 = await gpu.read(lossRows);
    const got = await readAll(gpu, model, "grad");
    const r1 = lstmLmRef({ config, weights, ...w1, B, dropout: { seed: 4, step: 0 }, grad: false });
    const r2 = lstmLmRef({
      config,
      weights,
      ...w2,
      B,
      h0: r1.h,
      c0: r1.c,
      dropout: { seed: 4, step: 1 },
    });
    const r2fresh = lstmLmRef({ config, weights, ...w2, B, dropout: { seed: 4, step: 1 } });
    // the carried state must matter, or this test could not fail
    ok(Math.abs(r2.loss - r2fresh.loss) > 1e-4, "state carry has no effect on the loss");
    for (let n = 0; n < T2 * B; n++) {
      ok(Math.abs(loss2[n] - r2.rowLoss[n]) <= 2e-5 * r2.rowLoss[n], `window 2 row ${n}`);
    }
    checkGrads(got, r2.grads, "window 2");
    for (let l = 0; l < L; l++) {
      const h = await gpu.read(state.h[l]), c = await gpu.read(state.c[l]);
      ok(maxDiff(h, r2.h[l]) < 1e-5 && maxDiff(c, r2.c[l]) < 1e-5, `final state layer ${l}`);
    }

    // evaluation: no dropout, its own workspace and state, carried across two windows
    const ews = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: false });
    const est = createLstmLmState(gpu, model, B);
    lstmLmEvalLoss(gpu, model, ews, est, writeLstmLmBatch(gpu, ews, w1));
    const e2 = await gpu.read(lstmLmEvalLoss(gpu, model, ews, est, writeLstmLmBatch(gpu, ews, w2)));
    const q1 = lstmLmRef({ config, weights, ...w1, B, grad: false });
    const q2 = lstmLmRef({ config, weights, ...w2, B, h0: q1.h, c0: q1.c, grad: false });
    for (let n = 0; n < T2 * B; n++) {
      ok(Math.abs(e2[n] - q2.rowLoss[n]) <= 2e-5 * q2.rowLoss[n], `eval row ${n}`);
    }
  },
});

Deno.test({
  name: "lstm lm: masked weights (density 0.5) — forward and gradients equal the W⊙M reference",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    for (const tied of [false, true]) {
      const config = cfg(tied);
      const model = createLstmLm(gpu, config, 21);
      const masks: Record<string, Float32Array> = {};
      model.params.forEach((p, k) => {
        if (!p.sparse) return;
        masks[p.name] = bernoulliMask(p.value.size, 0.5, 300 + k);
        p.mask = gpu.upload(p.shape, masks[p.name]);
      });
      ok(Object.keys(masks).length === (tied ? 5 : 6), "every non-bias tensor is masked");
      const ws = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: true });
      const state = createLstmLmState(gpu, model, B);
      const input = tokens(T * B, 31, V), target = tokens(T * B, 32, V);
      const loss = await gpu.read(
        lstmLmStep(gpu, model, ws, state, writeLstmLmBatch(gpu, ws, { T, input, target }), {
          seed: 8,
          step: 2,
        }),
      );
      const got = await readAll(gpu, model, "grad");
      const weights = await readAll(gpu, model, "value");
      const args = { config, weights, input, target, T, B, dropout: { seed: 8, step: 2 } };
      const ref = lstmLmRef({ ...args, masks });
      const dense = lstmLmRef(args);
      for (let n = 0; n < T * B; n++) {
        ok(Math.abs(loss[n] - ref.rowLoss[n]) <= 2e-5 * ref.rowLoss[n], `tied=${tied} row ${n}`);
      }
      ok(Math.abs(ref.loss - dense.loss) > 1e-4, "masks must change the loss");
      checkGrads(got, ref.grads, `masked tied=${tied}`);
      // data-path gradients go through W⊙M: the embedding gradient (reached only through the
      // masked products) differs from the unmasked model's
      const enc = "encoder.weight";
      ok(
        maxDiff(got[enc], dense.grads[enc]) > 100 * maxDiff(got[enc], ref.grads[enc]),
        `tied=${tied}: embedding gradient ignores the masks`,
      );
      for (const p of model.params) if (p.mask) gpu.release(p.mask);
    }
  },
});

Deno.test({
  name: "lstm lm: bad shapes and ids throw before anything is recorded",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    throws(() => lstmLmParamSpecs({ ...cfg(true), embed: 5 }), RangeError);
    throws(() => lstmLmParamSpecs({ ...cfg(false), dropout: 1 }), RangeError);
    const model = createLstmLm(gpu, cfg(false), 1);
    const ws = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: true });
    const evalWs = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: false });
    const state = createLstmLmState(gpu, model, B);
    const good = { T, input: tokens(T * B, 1, V), target: tokens(T * B, 2, V) };
    await gpu.sync();
    const before = gpu.dispatchCount;
    throws(
      () => writeLstmLmBatch(gpu, ws, { ...good, input: tokens(T * B - 1, 1, V) }),
      (e: Error) => e instanceof ShapeError && /input: expected T·B = 4·3 = 12/.test(e.message),
    );
    throws(() => writeLstmLmBatch(gpu, ws, { ...good, T: T + 1 }), ShapeError);
    const badId = Uint32Array.from(good.input);
    badId[5] = V;
    throws(() => writeLstmLmBatch(gpu, ws, { ...good, input: badId }), /ids\[5\] = 11/);
    throws(() => writeLstmLmBatch(gpu, ws, { ...good, target: badId }), /target\[5\] = 11/);
    const batch = writeLstmLmBatch(gpu, ws, good);
    const opts = { seed: 1, step: 0 };
    throws(
      () =>
        lstmLmStep(
          gpu,
          model,
          ws,
          state,
          { ...batch, input: ws.tokens.input.view(0, [T * B - 1]) },
          opts,
        ),
      /batch\.input.*expected shape \[12\]/,
    );
    throws(
      () => lstmLmStep(gpu, model, ws, state, { ...batch, index: undefined }, opts),
      ShapeError,
    );
    throws(() => lstmLmStep(gpu, model, evalWs, state, batch, opts), /training: false/);
    const small = createLstmLmState(gpu, model, B - 1);
    throws(() => lstmLmStep(gpu, model, ws, small, batch, opts), ShapeError);
    const enc = model.encoder;
    enc.mask = gpu.tensor([E, V]);
    throws(() => lstmLmStep(gpu, model, ws, state, batch, opts), /encoder\.weight mask/);
    enc.mask = undefined;
    throws(() => lstmLmStep(gpu, model, ws, state, batch, { seed: -1, step: 0 }), RangeError);
    ok(gpu.dispatchCount === before, "a failed call recorded work");
    throws(() => lstmLmDropoutOffset(cfg(false), 2 ** 31, 0), RangeError);
  },
});

/**
 * AWD-LSTM's devices on the stacked LSTM: locked dropouts, embedding rows, AR and TAR, and
 * WeightDrop (inverted when untied, ON-LSTM's eval-scaled convention when tied, so both run).
 */
const AWD = (tied: boolean): LstmLmConfig => ({
  ...cfg(tied, 0.25),
  awd: {
    locked: true,
    dropouti: 0.3,
    dropouth: 0.2,
    dropoute: 0.15,
    alpha: 2,
    beta: 1,
    wdrop: { p: 0.4, convention: tied ? "eval-scaled" : "inverted" },
  },
});

Deno.test("lstm lm ref with AWD devices: every gradient equals f64 central differences", () => {
  for (const tied of [false, true]) {
    const config = AWD(tied);
    const weights: Record<string, Float64Array> = {};
    lstmLmParamSpecs(config).forEach((s, k) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      weights[s.name] = Float64Array.from(uniform(n, 300 + k, -0.5, 0.5));
    });
    const input = tokens(T * B, 1, V), target = tokens(T * B, 2, V);
    const run = (grad: boolean) =>
      lstmLmRef({ config, weights, input, target, T, B, dropout: { seed: 7, step: 2 }, grad });
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
      ok(rel < 1e-6, `awd tied=${tied} ${name}: relative error ${rel.toExponential(2)} vs FD`);
    }
  }
});

Deno.test({
  name: "lstm lm with AWD devices: GPU gradients equal the reference; each device matters",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    for (const tied of [false, true]) {
      const { gpuLoss, got, ref } = await stepBoth(gpu, tied, 21, AWD(tied));
      for (let n = 0; n < T * B; n++) {
        ok(Math.abs(gpuLoss[n] - ref.rowLoss[n]) <= 2e-5 * ref.rowLoss[n], `row ${n}`);
      }
      checkGrads(got, ref.grads, `awd tied=${tied}`);
    }
    // the reference without any one device does not match the GPU's step
    const awd = AWD(false).awd!;
    for (
      const off of [
        { locked: false },
        { dropouti: 0 },
        { dropouth: 0 },
        { dropoute: 0 },
        { alpha: 0 },
        { beta: 0 },
        { wdrop: undefined },
        { wdrop: { p: 0.4, convention: "eval-scaled" as const } },
      ]
    ) {
      const model = createLstmLm(gpu, AWD(false), 21);
      const ws = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: true });
      const state = createLstmLmState(gpu, model, B);
      const input = tokens(T * B, 22, V), target = tokens(T * B, 23, V);
      const batch = writeLstmLmBatch(gpu, ws, { T, input, target });
      lstmLmStep(gpu, model, ws, state, batch, { seed: 99, step: 5 });
      const grads = await readAll(gpu, model, "grad");
      const weights = await readAll(gpu, model, "value");
      const wrong = lstmLmRef({
        config: { ...AWD(false), awd: { ...awd, ...off } },
        weights,
        input,
        target,
        T,
        B,
        dropout: { seed: 99, step: 5 },
      });
      throws(() => checkGrads(grads, wrong.grads, JSON.stringify(off)), /max abs error/);
    }
  },
});

Deno.test({
  name: "lstm lm WeightDrop: one mask per step for every product, a new one each step, eval",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const config = AWD(false);
    const wd = config.awd!.wdrop!;
    const model = createLstmLm(gpu, config, 31);
    const ws = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: true });
    const state = createLstmLmState(gpu, model, B);
    const input = tokens(T * B, 32, V), target = tokens(T * B, 33, V);
    const weights = await readAll(gpu, model, "value");
    // steps 5 and 6 from the same weights and state: the reference with that step's one mask
    // (shared by all T recurrent products, and the h0 product) matches each, the other step's
    // does not, so the mask is redrawn per step and held within it
    const refs = [5, 6].map((step) =>
      lstmLmRef({ config, weights, input, target, T, B, dropout: { seed: 99, step } })
    );
    for (const [k, step] of [5, 6].entries()) {
      resetLstmLmState(gpu, state);
      const batch = writeLstmLmBatch(gpu, ws, { T, input, target });
      lstmLmStep(gpu, model, ws, state, batch, { seed: 99, step });
      const got = await readAll(gpu, model, "grad");
      checkGrads(got, refs[k].grads, `step ${step}`);
      throws(() => checkGrads(got, refs[1 - k].grads, "other step"), /max abs error/);
    }
    // evaluation: inverted reads W itself; eval-scaled reads W·(1 − p), and W is untouched
    for (const convention of ["inverted", "eval-scaled"] as const) {
      const c = { ...config, awd: { ...config.awd!, wdrop: { ...wd, convention } } };
      const m = createLstmLm(gpu, c, 31);
      const ews = createLstmLmWorkspace(gpu, m, { maxT: T, B, training: false });
      const st = createLstmLmState(gpu, m, B);
      const batch = writeLstmLmBatch(gpu, ews, { T, input, target });
      const rows = await gpu.read(lstmLmEvalLoss(gpu, m, ews, st, batch, {}));
      const ref = lstmLmRef({ config: c, weights, input, target, T, B, grad: false });
      const plain = lstmLmRef({
        config: { ...c, awd: { ...c.awd, wdrop: undefined } },
        weights,
        input,
        target,
        T,
        B,
        grad: false,
      });
      for (let n = 0; n < T * B; n++) {
        ok(Math.abs(rows[n] - ref.rowLoss[n]) <= 2e-5 * ref.rowLoss[n], `${convention} row ${n}`);
      }
      const differs = plain.rowLoss.some((v, n) => Math.abs(v - ref.rowLoss[n]) > 1e-4);
      ok(differs === (convention === "eval-scaled"), `${convention}: evaluation scaling`);
      const after = await readAll(gpu, m, "value");
      ok(after["rnn.weight_hh_l0"].every((v, i) => v === weights["rnn.weight_hh_l0"][i]));
    }
  },
});
