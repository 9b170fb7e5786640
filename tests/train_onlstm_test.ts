import { ConfigError, DEFAULTS, type TrainConfig, trainConfig } from "../pipeline/config.ts";
import * as assert from "node:assert/strict";
import { sparsityMethod } from "../pipeline/sparsity/stage.ts";
import { train } from "../pipeline/train.ts";
import { LossRecorder, tinyData } from "./_train_util.ts";
import { parameterTable } from "../pipeline/dry_run.ts";
import { METHOD_NAMES } from "../pipeline/sparsity/method.ts";
import { csrUnsupported } from "../pipeline/sparsity/storage.ts";
import { GPU_TEST, testGpu } from "./_util.ts";
import { runData } from "../pipeline/run/data.ts";
import { evaluate } from "../pipeline/run/evaluation.ts";
import { bpttWindows } from "../pipeline/data/batches.ts";
import { modelFamily } from "../models/families.ts";
import { runModelConfig } from "../pipeline/run/setup.ts";

/** A tiny ON-LSTM (8 → 8 → 4 units, chunk 2) with every AWD device on. */
const ONLSTM: TrainConfig = trainConfig({
  model: "onlstm",
  emsize: 4,
  nhid: 8,
  nlayers: 2,
  "chunk-size": 2,
  tied: true,
  dropout: 0.2,
  dropouth: 0.1,
  dropouti: 0.2,
  dropoute: 0.05,
  wdrop: 0.3,
  alpha: 2,
  beta: 1,
  "batch-size": 4,
  "eval-batch-size": 4,
  bptt: 6,
  "log-interval": 1,
});

Deno.test({
  name: "train onlstm: variable windows, DropConnect, SNT-ASGD restart; resume is bit-identical",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const cfg: TrainConfig = {
      ...ONLSTM,
      variableBptt: true,
      bpttCap: 12,
      method: "selfish",
      density: 0.45,
      optimizer: "ntasgd",
      lr: 3,
      clip: 0.25,
      nonmono: 0,
      epochs: 8,
      epochSteps: 5,
      asgdRestarts: [5],
    };
    const straight = new LossRecorder();
    const a = await train(gpu, cfg, data, straight);
    if (a.averagedAfterEpoch === null || a.averagedAfterEpoch >= 5) {
      throw new Error(`averaging must start before epoch 5: ${a.averagedAfterEpoch}`);
    }
    if (JSON.stringify(a.restartedAfterEpochs) !== "[5]") throw new Error("no restart");
    const dir = await Deno.makeTempDir();
    const ckpt = `${dir}/onlstm.ckpt`;
    const first = new LossRecorder(), second = new LossRecorder();
    // stopped inside the averaged phase before the restart, resumed through it
    await train(gpu, { ...cfg, stopAfter: 22, save: ckpt }, data, first);
    const b = await train(gpu, { ...cfg, resume: ckpt }, data, second);
    const resumed = [...first.losses, ...second.losses];
    if (resumed.length !== straight.losses.length) throw new Error(`${resumed.length} losses`);
    for (let i = 0; i < straight.losses.length; i++) {
      if (resumed[i] !== straight.losses[i]) {
        throw new Error(`step ${i + 1}: resumed ${resumed[i]} != straight ${straight.losses[i]}`);
      }
    }
    const same = JSON.stringify([a.epochValPpl, a.testPpl, a.updates, a.gateDensities]) ===
      JSON.stringify([b.epochValPpl, b.testPpl, b.updates, b.gateDensities]);
    if (!same) throw new Error(`results differ: ${a.testPpl} vs ${b.testPpl}`);
    // Selfish-RNN's per-block regrowth acts on the true gate blocks [n, n, H, H, H, H]
    const blocks = a.gateDensities["rnn.cells.0.hh.weight"];
    if (blocks?.length !== 6) throw new Error(`blocks ${JSON.stringify(a.gateDensities)}`);
    const names = a.gateNames["rnn.cells.0.hh.weight"]?.join();
    if (names !== "master i,master f,o,ĉ,i,f") throw new Error(`gate names ${names}`);
    if (a.model.family !== "onlstm") throw new Error(`family ${a.model.family}`);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "train onlstm: every method (masked and CSR) and every optimizer runs; budgets stay exact",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const base: TrainConfig = { ...ONLSTM, density: 0.45, maxSteps: 12, epochSteps: 4, epochs: 3 };
    const runs: TrainConfig[] = [];
    // ISS removes hidden units, which only the stacked LSTM defines: refused by name
    await assert.rejects(
      () => train(gpu, { ...base, method: "iss" }, data, new LossRecorder()),
      (e: Error) => e instanceof ConfigError && /--method iss removes hidden units/.test(e.message),
    );
    for (const method of METHOD_NAMES.filter((m) => !sparsityMethod(m).structured)) {
      const m = { ...base, method, updateEvery: 2, pruneStart: 0.1, pruneEnd: 0.5 };
      runs.push(m);
      if (!csrUnsupported(method)) runs.push({ ...m, storage: "csr" });
    }
    for (const optimizer of ["sgd", "momentum", "adam", "ntasgd"] as const) {
      runs.push({ ...base, method: "selfish", optimizer, lr: optimizer === "adam" ? 0.01 : 1 });
    }
    for (const cfg of runs) {
      const label = `${cfg.method}/${cfg.optimizer}/${cfg.storage}`;
      const s = await train(gpu, cfg, data, new LossRecorder());
      if (!Number.isFinite(s.testPpl)) throw new Error(`${label}: test ppl ${s.testPpl}`);
      const table = parameterTable(cfg, data.corpus.vocab.size);
      if (s.activeParameters !== table.activeParameters) {
        throw new Error(`${label}: ${s.activeParameters} active, budget ${table.activeParameters}`);
      }
      for (const u of s.updates) {
        if (cfg.method !== "gmp" && u.removed !== u.grown) {
          throw new Error(`${label}: update at ${u.step} removed ${u.removed}, grew ${u.grown}`);
        }
      }
      const dynamic = ["gmp", "set", "dsr", "snfs", "rigl", "selfish"].includes(cfg.method);
      if (dynamic && s.updates.length === 0) throw new Error(`${label}: no update ran`);
    }
  },
});

Deno.test("train onlstm: presets and defaults fill in; ON-LSTM flags are its own", () => {
  const c = trainConfig({ model: "onlstm" });
  if (c.modelFlags["chunk-size"] !== 8 || c.wdropConvention !== "eval-scaled" || c.nlayers !== 2) {
    throw new Error(JSON.stringify(c));
  }
  const paper = trainConfig({ preset: "ptb-onlstm" });
  const want = {
    model: "onlstm",
    density: 0.45,
    nhid: 1150,
    emsize: 400,
    nlayers: 3,
    variableBptt: true,
    asgdRestarts: [500],
    evalBatchSize: 10,
    wdropConvention: "eval-scaled",
    seed: 141,
  };
  for (const [k, v] of Object.entries(want)) {
    const got = (paper as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(got) !== JSON.stringify(v)) throw new Error(`${k}: ${JSON.stringify(got)}`);
  }
  if (paper.modelFlags["chunk-size"] !== 10 || paper.modelFlags["gate-blocks"] !== "gates") {
    throw new Error(JSON.stringify(paper.modelFlags));
  }
  for (
    const [settings, text] of [
      [{ "chunk-size": 4 }, "a setting of --model onlstm, not of --model lstm"],
      [{ model: "onlstm", nhid: 60, "chunk-size": 8 }, "--nhid 60 is not a multiple"],
      [{ model: "onlstm", "gate-blocks": "rows" }, "--gate-blocks: expected one of"],
    ] as const
  ) {
    try {
      trainConfig(settings);
      throw new Error(`${JSON.stringify(settings)} accepted`);
    } catch (e) {
      if (!(e as Error).message.includes(text)) throw e;
    }
  }
  if (DEFAULTS.model !== "lstm") throw new Error("the default family is the stacked LSTM");
});

Deno.test({
  name: "evaluation: ON-LSTM divides by rows, the others by targets; the test has its own batch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const cfg: TrainConfig = { ...ONLSTM, testBatchSize: 1 };
    const rd = runData(cfg, data);
    if (rd.test.cols !== 1 || rd.valid.cols !== 4) throw new Error("batch sizes");
    if (runData(ONLSTM, data).test.cols !== 4) throw new Error("test batch defaults to eval's");
    const family = modelFamily("onlstm");
    if (
      family.evalNormalisation !== "rows" || modelFamily("lstm").evalNormalisation !== "targets"
    ) {
      throw new Error("normalisations");
    }
    const { trained } = runModelConfig(cfg, data.corpus.vocab.size);
    const model = family.create(gpu, trained, 5);
    const session = model.session({ maxT: cfg.bptt, B: 4, training: false });
    const m = rd.valid;
    const perTarget = await evaluate(gpu, session, m, cfg.bptt, "targets");
    const perRow = await evaluate(gpu, session, m, cfg.bptt, "rows");
    // the same sum over (rows − 1)·cols targets, or over rows·cols
    const want = perTarget * (m.rows - 1) / m.rows;
    if (Math.abs(perRow - want) > 1e-12 * want) throw new Error(`${perRow} vs ${want}`);
    // a listener hears each twentieth of the windows, and the loss is the same
    const heard: number[] = [];
    const windows = bpttWindows(m, cfg.bptt).length;
    const listened = await evaluate(gpu, session, m, cfg.bptt, "targets", (d, n) => {
      if (n !== windows) throw new Error(`${n} windows, not ${windows}`);
      heard.push(d);
    });
    const every = Math.ceil(windows / 20);
    const want20 = Array.from(
      { length: Math.ceil(windows / every) - 1 },
      (_, i) => (i + 1) * every,
    );
    if (listened !== perTarget || JSON.stringify(heard) !== JSON.stringify(want20)) {
      throw new Error(`${listened} vs ${perTarget}; heard ${heard} of ${windows}`);
    }
    // a run tests on the B = 1 session: its test differs from the same run's at B = 4
    const short = { ...cfg, maxSteps: 3, epochs: 1 };
    const a = await train(gpu, short, data, new LossRecorder());
    const b = await train(gpu, { ...short, testBatchSize: null }, data, new LossRecorder());
    if (a.valPpl !== b.valPpl || a.testPpl === b.testPpl || !Number.isFinite(a.testPpl)) {
      throw new Error(`val ${a.valPpl} / ${b.valPpl}, test ${a.testPpl} / ${b.testPpl}`);
    }
  },
});
