import { ConfigError, parseTrainArgs, type TrainConfig, trainConfig } from "../pipeline/config.ts";
import * as assert from "node:assert/strict";
import { sparsityMethod } from "../pipeline/sparsity/stage.ts";
import { train } from "../pipeline/train.ts";
import { LossRecorder, tinyData } from "./_train_util.ts";
import { parameterTable } from "../pipeline/dry_run.ts";
import { METHOD_NAMES } from "../pipeline/sparsity/method.ts";
import { csrUnsupported } from "../pipeline/sparsity/storage.ts";
import { GPU_TEST, testGpu } from "./_util.ts";

/** A tiny AWD-LSTM-MoS (4 → 8 → 4 units, 2 experts) with every device on. */
const MOS: TrainConfig = trainConfig({
  model: "awd-mos",
  emsize: 4,
  nhid: 8,
  nhidlast: 4,
  nlayers: 2,
  experts: 2,
  dropoutl: 0.1,
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
  name: "train mos: variable windows, WeightDrop, SNT-ASGD restart; resume is bit-identical",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const cfg: TrainConfig = {
      ...MOS,
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
    const ckpt = `${dir}/mos.ckpt`;
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
    // Selfish-RNN's per-block regrowth acts on the LSTM gates and the head's single blocks
    const blocks = a.gateDensities["rnns.0.weight_hh_l0"];
    if (blocks?.length !== 4) throw new Error(`blocks ${JSON.stringify(a.gateDensities)}`);
    if (a.gateDensities["latent.0.weight"]?.length !== 1) throw new Error("latent blocks");
    const names = a.gateNames["rnns.0.weight_hh_l0"]?.join();
    if (names !== "i,f,g,o") throw new Error(`gate names ${names}`);
    if ("latent.0.weight" in a.gateNames) throw new Error("the head's single block is named");
    if (a.model.family !== "awd-mos") throw new Error(`family ${a.model.family}`);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "train mos: every method (masked and CSR) and every optimizer runs; budgets stay exact",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const base: TrainConfig = { ...MOS, density: 0.45, maxSteps: 12, epochSteps: 4, epochs: 3 };
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

Deno.test("train mos: presets and defaults fill in; MoS flags are its own", async () => {
  const c = trainConfig({ model: "awd-mos" });
  if (
    c.modelFlags.experts !== 3 || c.modelFlags.nhidlast !== 64 || c.wdropConvention !== "inverted"
  ) {
    throw new Error(JSON.stringify(c));
  }
  // a switch a preset turned on is turned off by --no-<flag>
  const untied = await parseTrainArgs(["--preset", "wt2-mos", "--no-tied"]);
  if (untied.tied || !(await parseTrainArgs(["--preset", "wt2-mos"])).tied) throw new Error("tied");
  const paper = trainConfig({ preset: "wt2-mos" });
  const want = {
    model: "awd-mos",
    density: 0.45,
    nhid: 1150,
    emsize: 300,
    batchSize: 15,
    smallBatchSize: 5,
    bpttCap: 90,
    evalBatchSize: 10,
    testBatchSize: 1,
    seed: 1882,
  };
  for (const [k, v] of Object.entries(want)) {
    const got = (paper as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(got) !== JSON.stringify(v)) throw new Error(`${k}: ${JSON.stringify(got)}`);
  }
  if (paper.modelFlags.experts !== 15 || paper.modelFlags.dropoutl !== 0.29) {
    throw new Error(JSON.stringify(paper.modelFlags));
  }
  for (
    const [settings, text] of [
      [{ experts: 4 }, "a setting of --model awd-mos, not of --model lstm"],
      [{ model: "awd-mos", experts: 65 }, "at most 64"],
      [{ model: "awd-mos", dropoutl: 1.5 }, "dropoutl: expected a number in [0, 1)"],
    ] as const
  ) {
    try {
      trainConfig(settings);
      throw new Error(`${JSON.stringify(settings)} accepted`);
    } catch (e) {
      if (!(e as Error).message.includes(text)) throw e;
    }
  }
});

Deno.test({
  name: "train mos: column slices accumulate the whole batch's gradient; resume keeps their states",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    // nothing random: two slices of 2 columns must give the 4-column batch's steps
    const plain: TrainConfig = {
      ...MOS,
      dropout: 0,
      dropouth: 0,
      dropouti: 0,
      dropoute: 0,
      wdrop: 0,
      modelFlags: { ...MOS.modelFlags, dropoutl: 0 },
      optimizer: "sgd",
      lr: 1,
      clip: 0.25,
      maxSteps: 12,
      epochSteps: 6,
      epochs: 2,
    };
    const whole = new LossRecorder(), sliced = new LossRecorder();
    const a = await train(gpu, plain, data, whole);
    const b = await train(gpu, { ...plain, smallBatchSize: 2 }, data, sliced);
    for (let i = 0; i < whole.losses.length; i++) {
      const d = Math.abs(whole.losses[i] - sliced.losses[i]);
      if (!(d <= 1e-4 * whole.losses[i])) {
        throw new Error(`step ${i + 1}: ${sliced.losses[i]} sliced vs ${whole.losses[i]} whole`);
      }
    }
    if (Math.abs(a.testPpl - b.testPpl) > 1e-3 * a.testPpl) throw new Error("test ppl differs");
    // with every device on, stopped and resumed: bit-identical, the slices' states included
    const cfg: TrainConfig = { ...MOS, smallBatchSize: 2, maxSteps: 14, epochSteps: 7, epochs: 2 };
    const straight = new LossRecorder();
    const c = await train(gpu, cfg, data, straight);
    const dir = await Deno.makeTempDir();
    const ckpt = `${dir}/sliced.ckpt`;
    const first = new LossRecorder(), second = new LossRecorder();
    await train(gpu, { ...cfg, stopAfter: 9, save: ckpt }, data, first);
    const d = await train(gpu, { ...cfg, resume: ckpt }, data, second);
    const resumed = [...first.losses, ...second.losses];
    for (let i = 0; i < straight.losses.length; i++) {
      if (resumed[i] !== straight.losses[i]) {
        throw new Error(`step ${i + 1}: resumed ${resumed[i]} != straight ${straight.losses[i]}`);
      }
    }
    if (c.testPpl !== d.testPpl) throw new Error(`${c.testPpl} vs ${d.testPpl}`);
    // the slices' own masks: the sliced run is not the whole-batch run
    const unsliced = await train(gpu, { ...cfg, smallBatchSize: null }, data, new LossRecorder());
    if (unsliced.testPpl === c.testPpl) throw new Error("slices drew the whole batch's masks");
    // a checkpoint of the sliced run does not resume unsliced
    try {
      await train(gpu, { ...cfg, smallBatchSize: null, resume: ckpt }, data, new LossRecorder());
      throw new Error("resumed with another --small-batch-size");
    } catch (e) {
      if (!(e as Error).message.includes("--small-batch-size")) throw e;
    }
    await Deno.remove(dir, { recursive: true });
    try {
      trainConfig({ model: "awd-mos", "batch-size": 6, "small-batch-size": 4 });
      throw new Error("accepted a slice that does not divide the batch");
    } catch (e) {
      if (!(e as Error).message.includes("must divide --batch-size 6")) throw e;
    }
  },
});
