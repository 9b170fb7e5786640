import { deepEqual, equal, ok } from "node:assert/strict";
import { GPU_TEST, rng, testGpu } from "./_util.ts";
import {
  createLstmLm,
  createLstmLmState,
  createLstmLmWorkspace,
  type LstmLmConfig,
  type LstmLmPhase,
  lstmLmStep,
  writeLstmLmBatch,
} from "../models/lstm/lstm_lm.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { benchTrain, TRAIN_COLUMNS, trainBenchSetup, trainStepFlops } from "../bench/train.ts";
import { modelFamily } from "../models/families.ts";
import { lstmFamily } from "../models/lstm/family.ts";
import { modelSettings } from "../pipeline/config.ts";

const lm: LstmLmConfig = { vocab: 11, embed: 6, hidden: 6, layers: 2, dropout: 0.3, tied: false };
const T = 4, B = 3;

/** One training step of a fresh seeded model; returns the hook's calls and every gradient. */
async function stepOnce(gpu: Gpu, hook: boolean) {
  const model = createLstmLm(gpu, lm, 77);
  const ws = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: true });
  const state = createLstmLmState(gpu, model, B);
  const r = rng(5);
  const ids = () => Uint32Array.from({ length: T * B }, () => Math.floor(r() * lm.vocab));
  const batch = writeLstmLmBatch(gpu, ws, { T, input: ids(), target: ids() });
  await gpu.sync();
  const calls: [LstmLmPhase, number][] = [];
  const d0 = gpu.dispatchCount;
  const onPhase = hook ? (p: LstmLmPhase) => calls.push([p, gpu.dispatchCount]) : undefined;
  const loss = lstmLmStep(gpu, model, ws, state, batch, { seed: 9, step: 2, onPhase });
  const end = gpu.dispatchCount;
  const grads = [];
  for (const p of model.params) grads.push(Array.from(await gpu.read(p.grad)));
  return { calls, d0, end, grads, loss: Array.from(await gpu.read(loss)) };
}

Deno.test({
  name: "lstmLmStep onPhase: six phases in order, each records work, results unchanged",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const plain = await stepOnce(gpu, false);
    const hooked = await stepOnce(gpu, true);
    deepEqual(hooked.calls.map(([p]) => p), [
      "embedding_forward",
      "lstm_forward",
      "decoder_forward",
      "decoder_backward",
      "lstm_backward",
      "embedding_backward",
    ]);
    equal(hooked.calls[0][1], hooked.d0, "nothing is recorded before the first phase");
    const marks = [...hooked.calls.map(([, d]) => d), hooked.end];
    for (let i = 0; i < hooked.calls.length; i++) {
      ok(marks[i + 1] > marks[i], `phase ${hooked.calls[i][0]} recorded no dispatch`);
    }
    // Same seeds and data: the hook must not change anything (bit-exact).
    deepEqual(hooked.loss, plain.loss);
    deepEqual(hooked.grads, plain.grads);
  },
});

Deno.test("trainStepFlops: the family's costs, 6 per multiply-add and token", async () => {
  // the 200/200/2 LSTM of the bench: N = 700, 4H = 800, in = H = 200, V = 10000
  const { config, vocab } = await trainBenchSetup("lstm");
  const family = modelFamily(config.model);
  const cfg = family.config(modelSettings(config, vocab));
  const macs = 2 * (800 * 200 + 800 * 200) + 10000 * 200;
  const params = family.paramSpecs(cfg).reduce(
    (s, p) => s + p.shape.reduce((a, b) => a * b, 1),
    0,
  );
  const f = trainStepFlops(family.weightMacs(cfg), params, 700);
  equal(f.forward, 2 * macs * 700);
  equal(f.step, 3 * 2 * macs * 700 + 6 * params);
  equal(f.eval, f.forward);
  deepEqual([config.batchSize, config.bptt, config.dropout, config.optimizer], [20, 35, 0, "sgd"]);
});

Deno.test({
  name: "benchTrain on a tiny model: every row, consistent columns, gpu methods restored",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const setup = await trainBenchSetup("lstm", undefined, [
      ...["--emsize", "8", "--nhid", "8", "--batch-size", "3", "--bptt", "5", "--lr", "1"],
    ]);
    setup.vocab = 37;
    const logs: string[] = [];
    const rows = await benchTrain(gpu, { reps: 5, log: (s) => logs.push(s), setup });
    const phases = [...lstmFamily.phases, "optimizer"];
    deepEqual(rows.map((r) => r.phase), [
      "train_step",
      "eval_forward",
      ...phases,
      "phase_sum",
      "step_replayed",
    ]);
    for (const r of rows) {
      deepEqual(Object.keys(r).sort(), [...TRAIN_COLUMNS].sort());
      ok(r.ms > 0, `${r.phase}: ms ${r.ms}`);
      ok(r.config.includes("dropout=0") && r.config.includes("timing"), r.config);
      equal(r.adapter, gpu.report.description);
    }
    const byPhase = new Map(rows.map((r) => [r.phase, r]));
    const step = byPhase.get("train_step")!;
    ok(/host RSS [+−]\d+\.\d\d MiB per step over 10 more steps/.test(step.config), step.config);
    const N = 15;
    // ms is rounded to 0.01 and tokens/s (from the unrounded time) to 0.1: on a fast step the
    // first rounding alone moves N / ms by more than any fixed tolerance
    const rate = Number(step["tokens_per_sec"]);
    ok(
      rate >= 1000 * N / (step.ms + 0.005) - 0.05 && rate <= 1000 * N / (step.ms - 0.005) + 0.05,
      `tokens/s ${rate} vs ${N} tokens in ${step.ms} ms`,
    );
    equal(byPhase.get("embedding_forward")!.gflops, "");
    equal(byPhase.get("lstm_forward")!["tokens_per_sec"], "");
    const sum = phases.reduce((s, p) => s + byPhase.get(p)!.ms, 0);
    ok(Math.abs(byPhase.get("phase_sum")!.ms - sum) < 0.05, "phase_sum is the sum of the phases");
    ok(logs.some((l) => l.includes("synthetic")), "the output says the ids are synthetic");
    for (const m of ["run", "fill", "copy"]) ok(!Object.hasOwn(gpu, m), `gpu.${m} left wrapped`);
  },
});
