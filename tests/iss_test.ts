import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { ShrinkError, shrinkModel } from "../pipeline/model_file/shrink.ts";
import type { ModelWeights } from "../pipeline/model_file/model_file.ts";
import { DEFAULTS, type TrainConfig } from "../pipeline/config.ts";
import { train } from "../pipeline/train.ts";
import { deadUnits, issPenalty, unitGroupSquares } from "../pipeline/sparsity/methods/iss.ts";
import { unitSquaresRef } from "../kernels/optim/group_lasso_ref.ts";
import { modelFamily } from "../models/families.ts";
import type { UnitLayer } from "../models/model.ts";
import { sparsitySettings } from "../pipeline/run/settings.ts";
import { LossRecorder, tinyData } from "./_train_util.ts";
import { assertClose, GPU_TEST, testGpu, uniform } from "./_util.ts";

const LSTM = modelFamily("lstm");
const CONFIG = { vocab: 9, embed: 5, hidden: 4, layers: 2, dropout: 0, tied: false };

/** λ·Σ_layers Σ_k ‖g_k‖₂ on the host, in f64. */
function penaltyRef(
  weights: Map<string, Float64Array>,
  shapes: Map<string, number[]>,
  units: readonly UnitLayer[],
  lambda: number,
): number {
  let total = 0;
  for (const layer of units) {
    const sq = new Float64Array(layer.units);
    for (const [names, axis] of [[layer.rows, "rows"], [layer.cols, "cols"]] as const) {
      for (const n of names) {
        const [R, C] = shapes.get(n)!;
        unitSquaresRef(weights.get(n)!, R, C, axis, layer.units, sq, true);
      }
    }
    for (const s of sq) total += Math.sqrt(s);
  }
  return lambda * total;
}

async function tinyModel() {
  const gpu = await testGpu();
  const model = LSTM.create(gpu, CONFIG, 5);
  const units = LSTM.hiddenUnits!(CONFIG);
  const weights = new Map<string, Float64Array>();
  const shapes = new Map<string, number[]>();
  model.params.forEach((p, k) => {
    const w = uniform(p.value.size, 40 + k, -0.5, 0.5);
    gpu.write(p.value, w);
    weights.set(p.name, Float64Array.from(w));
    shapes.set(p.name, [...p.shape]);
  });
  return { gpu, model, units, weights, shapes };
}

Deno.test({
  name: "iss: an LSTM unit's group is its gate rows and the columns reading it; norms vs reference",
  ...GPU_TEST,
  fn: async () => {
    const { gpu, model, units, weights, shapes } = await tinyModel();
    deepEqual(units[1], {
      units: 4,
      rows: ["rnn.weight_ih_l1", "rnn.weight_hh_l1"],
      cols: ["rnn.weight_hh_l1", "decoder.weight"],
      biases: ["rnn.bias_ih_l1", "rnn.bias_hh_l1"],
    });
    deepEqual(units[0].cols, ["rnn.weight_hh_l0", "rnn.weight_ih_l1"]);
    deepEqual(LSTM.hiddenUnits!({ ...CONFIG, tied: true, embed: 4 })[1].cols[1], "encoder.weight");
    const sq = unitGroupSquares(gpu, model.params, units);
    for (let l = 0; l < units.length; l++) {
      const want = new Float64Array(units[l].units);
      for (const n of units[l].rows) {
        unitSquaresRef(
          weights.get(n)!,
          ...(shapes.get(n)! as [number, number]),
          "rows",
          4,
          want,
          true,
        );
      }
      for (const n of units[l].cols) {
        unitSquaresRef(
          weights.get(n)!,
          ...(shapes.get(n)! as [number, number]),
          "cols",
          4,
          want,
          true,
        );
      }
      assertClose(await gpu.read(sq[l]), want, { atol: 1e-5, rtol: 1e-5 }, `layer ${l}`);
    }
  },
});

Deno.test({
  name: "iss: the penalty's gradient equals finite differences of λ·Σ‖g_k‖ (f64)",
  ...GPU_TEST,
  fn: async () => {
    const { gpu, model, units, weights, shapes } = await tinyModel();
    const lambda = 0.3;
    for (const p of model.params) gpu.fill(p.grad, 0);
    issPenalty({
      gpu,
      params: model.params,
      units,
      settings: { ...sparsitySettings({ ...DEFAULTS, method: "iss" }), issLambda: lambda },
    });
    const h = 1e-6;
    let checked = 0;
    for (const p of model.params) {
      const got = await gpu.read(p.grad);
      const w = weights.get(p.name)!;
      const fd = new Float64Array(w.length);
      for (let i = 0; i < w.length; i++) {
        const save = w[i];
        w[i] = save + h;
        const up = penaltyRef(weights, shapes, units, lambda);
        w[i] = save - h;
        const dn = penaltyRef(weights, shapes, units, lambda);
        w[i] = save;
        fd[i] = (up - dn) / (2 * h);
      }
      assertClose(got, fd, { atol: 1e-5, rtol: 1e-4 }, p.name);
      if (fd.some((v) => v !== 0)) checked++;
    }
    // the group's tensors get gradients, the embedding and the biases none
    equal(checked, 5);
    deepEqual(
      [...await gpu.read(model.params.find((p) => p.name === "encoder.weight")!.grad)].every((v) =>
        v === 0
      ),
      true,
    );
  },
});

Deno.test("iss: units below the threshold × the live median go; removed stay removed; one stays", () => {
  deepEqual(deadUnits([1, 0.05, 0.9, 0, 1.1], 0.1), [false, true, false, true, false]);
  deepEqual(deadUnits([0, 0, 0.3], 0.5), [true, true, false]);
  deepEqual(deadUnits([0.2, 0.3], 2), [true, false]); // never the whole layer
  deepEqual(deadUnits([1, 1, 1], 0), [false, false, false]);
});

const ISS: TrainConfig = {
  ...DEFAULTS,
  method: "iss",
  emsize: 12,
  nhid: 12,
  nlayers: 2,
  batchSize: 4,
  evalBatchSize: 4,
  bptt: 8,
  epochs: 3,
  epochSteps: 6,
  logInterval: 1,
  lr: 0.02,
  issLambda: 0.2,
  issThreshold: 0.95,
};

Deno.test({
  name: "iss: trains, removes units for good through later steps, checkpoints and resume",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const dir = await Deno.makeTempDir();
    const straight = new LossRecorder();
    const summary = await train(gpu, ISS, data, straight);
    const [h0, h1] = summary.hiddenSizes!;
    ok(h0 < 12 && h1 < 12 && h0 > 0 && h1 > 0, `hidden sizes ${summary.hiddenSizes}`);
    // the masks are the live units' rows × columns: counts follow from the hidden sizes
    const near = (a: number, b: number, what: string) =>
      ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);
    near(summary.densities["rnn.weight_hh_l1"], (h1 * h1) / 144, "hh_l1");
    near(summary.densities["rnn.weight_ih_l1"], (h1 * h0) / 144, "ih_l1");
    near(summary.densities["rnn.weight_ih_l0"], h0 / 12, "ih_l0");
    near(summary.densities["decoder.weight"], h1 / 12, "decoder");
    near(summary.densities["encoder.weight"], 1, "encoder");
    ok(summary.inferenceFlops < summary.denseInferenceFlops);
    const updates = summary.updates.map((u) => u.removed);
    equal(updates.length, 2);
    ok(updates[0] > 0, `first update removed ${updates[0]}`);
    // stopped after the first removal, saved and resumed: the same run, bit for bit
    const ckpt = `${dir}/run.ckpt`;
    const first = new LossRecorder();
    await train(gpu, { ...ISS, stopAfter: 9, save: ckpt }, data, first);
    const second = new LossRecorder();
    const resumed = await train(gpu, { ...ISS, resume: ckpt }, data, second);
    deepEqual([...first.losses, ...second.losses], straight.losses);
    deepEqual(resumed.hiddenSizes, summary.hiddenSizes);
    equal(resumed.testPpl, summary.testPpl);
    // a removed unit's weights are zero at the end: the live units' counts are the model's
    deepEqual(resumed.updates.map((u) => u.removed), updates);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("iss: shrinking cuts a removed unit out of every tensor that holds it (RHN)", () => {
  const rhn = modelFamily("rhn");
  const config = {
    vocab: 5,
    embed: 3,
    hidden: 4,
    depth: 2,
    tied: false,
    dropout: 0,
    dropouth: 0,
    dropouti: 0,
    dropoute: 0,
  };
  const dead = 2; // unit 2 left the masks: its rows in both blocks, its columns
  const weights: ModelWeights = { values: new Map(), masks: new Map() };
  const units = rhn.hiddenUnits!(config)[0];
  for (const spec of rhn.paramSpecs(config)) {
    const [R, C = 1] = spec.shape;
    const v = Float32Array.from({ length: R * C }, (_, i) => i + 1);
    const rows = units.rows.includes(spec.name) || units.biases.includes(spec.name);
    const cols = units.cols.includes(spec.name);
    if (spec.shape.length === 2) {
      const m = Float32Array.from(
        { length: R * C },
        (_, i) => (rows && Math.floor(i / C) % 4 === dead) || (cols && i % C === dead) ? 0 : 1,
      );
      weights.masks.set(spec.name, m);
      v.forEach((_, i) => (v[i] *= m[i]));
    }
    weights.values.set(spec.name, v);
  }
  const { config: next, weights: small, sizes } = shrinkModel(rhn, config, weights);
  deepEqual(sizes, [3]);
  equal((next as typeof config).hidden, 3);
  const R1 = small.values.get("rnns.0.highways.1.R.weight")!;
  equal(R1.length, 6 * 3);
  // row 4 of the new [6, 3] R is block T's unit 1 (old row 4 + 1 = 5); its columns 0, 1, 3
  const old = weights.values.get("rnns.0.highways.1.R.weight")!;
  deepEqual([...R1.subarray(4 * 3, 5 * 3)], [old[5 * 4 + 0], old[5 * 4 + 1], old[5 * 4 + 3]]);
  deepEqual(small.values.get("fc1.weight")!.length, 5 * 3);
  deepEqual(small.values.get("rnns.0.highways.0.W.weight")!.length, 6 * 3);
  deepEqual(
    [...small.values.get("rnns.0.highways.0.W.bias")!],
    [1, 2, 4, 5, 6, 8].map(Number),
  );
  equal(small.masks.size, 0);
  throws(() => shrinkModel(rhn, { ...config, tied: true, embed: 4 }, weights), ShrinkError);
});
