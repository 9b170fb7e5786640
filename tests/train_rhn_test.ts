import { DEFAULTS, type TrainConfig, trainConfig } from "../pipeline/config.ts";
import { sparsityMethod } from "../pipeline/sparsity/stage.ts";
import { train } from "../pipeline/train.ts";
import { LossRecorder, tinyData } from "./_train_util.ts";
import { parameterTable } from "../pipeline/dry_run.ts";
import { METHOD_NAMES } from "../pipeline/sparsity/method.ts";
import { csrUnsupported } from "../pipeline/sparsity/storage.ts";
import { GPU_TEST, testGpu } from "./_util.ts";

/** A tiny RHN with every dropout on, so the masks' streams are part of what must resume. */
const RHN: TrainConfig = trainConfig({
  model: "rhn",
  emsize: 8,
  nhid: 8,
  depth: 2,
  tied: true,
  dropout: 0.2,
  dropouth: 0.1,
  dropouti: 0.2,
  dropoute: 0.05,
  "batch-size": 4,
  "eval-batch-size": 4,
  bptt: 6,
  "log-interval": 1,
});

Deno.test({
  name: "train rhn: selfish + SNT-ASGD stopped inside the averaged phase resumes bit-identically",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const dir = await Deno.makeTempDir();
    const ckpt = `${dir}/rhn.ckpt`;
    // epochs of 5 steps, updates every 4 (never at 40, the end), nonmono 0 with lr 3 so that
    // averaging starts early; the stop at 22 is inside an epoch, between updates, averaging
    const cfg: TrainConfig = {
      ...RHN,
      method: "selfish",
      density: 0.4,
      optimizer: "ntasgd",
      lr: 3,
      clip: 0.25,
      nonmono: 0,
      epochs: 8,
      epochSteps: 5,
      updateEvery: 4,
    };
    const straight = new LossRecorder();
    const a = await train(gpu, cfg, data, straight);
    const first = new LossRecorder();
    await train(gpu, { ...cfg, stopAfter: 22, save: ckpt }, data, first);
    const second = new LossRecorder();
    const b = await train(gpu, { ...cfg, resume: ckpt }, data, second);
    const resumed = [...first.losses, ...second.losses];
    if (resumed.length !== 40) throw new Error(`${resumed.length} losses`);
    for (let i = 0; i < 40; i++) {
      if (resumed[i] !== straight.losses[i]) {
        throw new Error(`step ${i + 1}: resumed ${resumed[i]} != straight ${straight.losses[i]}`);
      }
    }
    if (a.averagedAfterEpoch === null || a.averagedAfterEpoch * 5 >= 22) {
      throw new Error(`averaging must start before the stop: epoch ${a.averagedAfterEpoch}`);
    }
    const same =
      JSON.stringify([a.valPpl, a.testPpl, a.updates, a.epochValPpl, a.gateDensities]) ===
        JSON.stringify([b.valPpl, b.testPpl, b.updates, b.epochValPpl, b.gateDensities]);
    if (!same) throw new Error(`results differ: ${a.testPpl} vs ${b.testPpl}`);
    // the per-block regrowth of Selfish-RNN acts on the RHN's [H; T] blocks
    const blocks = a.gateDensities["rnns.0.highways.1.R.weight"];
    if (blocks.length !== 2) throw new Error(`blocks ${JSON.stringify(a.gateDensities)}`);
    const names = a.gateNames["rnns.0.highways.1.R.weight"]?.join();
    if (names !== "H,T") throw new Error(`gate names ${names}`);
    if (a.model.family !== "rhn") throw new Error(`family ${a.model.family}`);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "train rhn: every method (masked and CSR) and every optimizer runs; budgets stay exact",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const base: TrainConfig = { ...RHN, density: 0.4, maxSteps: 12, epochSteps: 4, epochs: 3 };
    const runs: TrainConfig[] = [];
    // ISS on the RHN: its 8 state units across both blocks and every depth, one removal per
    // epoch end; the masks are the live units' rows × columns
    const iss = await train(
      gpu,
      {
        ...base,
        tied: false,
        method: "iss",
        issLambda: 0.2,
        issThreshold: 0.95,
        lr: 0.02,
      },
      data,
      new LossRecorder(),
    );
    const [h] = iss.hiddenSizes!;
    if (!(h > 0 && h < 8) || !Number.isFinite(iss.testPpl)) {
      throw new Error(`iss on rhn: hidden ${iss.hiddenSizes}, test ${iss.testPpl}`);
    }
    const near = (a: number, b: number) => Math.abs(a - b) < 1e-12;
    if (
      !near(iss.densities["rnns.0.highways.1.R.weight"], (h * h) / 64) ||
      !near(iss.densities["rnns.0.highways.0.W.weight"], h / 8) ||
      !near(iss.densities["fc1.weight"], h / 8)
    ) throw new Error(`iss on rhn densities ${JSON.stringify(iss.densities)}`);
    for (const method of METHOD_NAMES.filter((m) => !sparsityMethod(m).structured)) {
      runs.push({ ...base, method, updateEvery: 2, pruneStart: 0.1, pruneEnd: 0.5 });
      if (!csrUnsupported(method)) {
        runs.push({
          ...base,
          method,
          updateEvery: 2,
          storage: "csr",
          pruneStart: 0.1,
          pruneEnd: 0.5,
        });
      }
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

Deno.test("train rhn: defaults fill in, and RHN flags are refused for the LSTM", () => {
  const c = trainConfig({ model: "rhn" });
  if (c.modelFlags.depth !== 3 || c.tied || c.nhid !== 64) throw new Error(JSON.stringify(c));
  const paper = trainConfig({ preset: "ptb-rhn" });
  if (paper.model !== "rhn" || paper.modelFlags.depth !== 10 || paper.density !== 0.472) {
    throw new Error(JSON.stringify(paper));
  }
  for (
    const [settings, text] of [
      [{ depth: 3 }, "a setting of --model rhn, not of --model lstm"],
      [{ model: "lstm", preset: "ptb-rhn" }, "is a --model rhn preset"],
      [{ model: "rhn", nlayers: 2 }, "the RHN is one highway layer"],
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
