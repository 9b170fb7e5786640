import { ConfigError, DEFAULTS, type TrainConfig, trainConfig } from "../pipeline/config.ts";
import { train } from "../pipeline/train.ts";
import { trainModel } from "../pipeline/api.ts";
import { runData } from "../pipeline/run/data.ts";
import { inactiveStatePolicy } from "../pipeline/run/settings.ts";
import { LossRecorder, tinyData } from "./_train_util.ts";
import { syntheticCorpus } from "../pipeline/data/synthetic.ts";
import { CheckpointError, readCheckpoint } from "../pipeline/checkpoint.ts";
import { GPU_TEST, testGpu } from "./_util.ts";

const TINY: TrainConfig = {
  ...DEFAULTS,
  emsize: 16,
  nhid: 16,
  nlayers: 2,
  dropout: 0.2,
  batchSize: 4,
  evalBatchSize: 4,
  bptt: 8,
  epochs: 2,
  logInterval: 1,
  optimizer: "adam",
  lr: 0.01,
};

Deno.test({
  name: "train: --stop-after k + save + resume gives the same losses as the straight run",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const dir = await Deno.makeTempDir();
    const ckpt = `${dir}/run.ckpt`;
    // Epochs of ~37 windows; stop inside epoch 2 so an epoch end (evaluation, best weights), the
    // carried hidden state, Adam's moments and step count are all part of the resumed state.
    const N = 48, k = 41;
    const run = { ...TINY, maxSteps: N };
    const straight = new LossRecorder();
    const log = `${dir}/log.csv`;
    const straightCkpt = `${dir}/straight.ckpt`;
    const summary = await train(gpu, { ...run, log, save: straightCkpt }, data, straight);
    // an epoch end's checkpoint holds the time trained so far, so a killed run resumes its clock
    const clock = ((await readCheckpoint(straightCkpt)).meta as { trainSeconds: number })
      .trainSeconds;
    if (!(clock > 0 && clock <= summary.elapsedSec)) {
      throw new Error(`epoch-end checkpoint: ${clock} s trained of ${summary.elapsedSec}`);
    }
    // One CSV row per evaluation: epoch 1 and the run's end (a cut epoch 2).
    const rows = (await Deno.readTextFile(log)).trim().split("\n");
    if (rows.length !== 3 || !rows[0].startsWith("step,epoch,lr,train_loss,val_ppl")) {
      throw new Error(`log:\n${rows.join("\n")}`);
    }
    if (summary.steps !== N || summary.epochs !== 2 || summary.epochValPpl.length !== 2) {
      throw new Error(`summary ${JSON.stringify(summary)}`);
    }
    const first = new LossRecorder();
    const stopped = await train(gpu, { ...run, stopAfter: k, save: ckpt }, data, first);
    if (stopped.stopReason !== "stop-after" || stopped.steps !== k) {
      throw new Error(`stopped run: ${stopped.stopReason} at ${stopped.steps}`);
    }
    const second = new LossRecorder();
    const resumedSummary = await train(gpu, { ...run, resume: ckpt }, data, second);
    if (resumedSummary.testPpl !== summary.testPpl || resumedSummary.valPpl !== summary.valPpl) {
      throw new Error(`resumed results ${resumedSummary.testPpl} vs ${summary.testPpl}`);
    }
    if (straight.losses.length !== N) throw new Error(`${straight.losses.length} losses`);
    const resumed = [...first.losses, ...second.losses];
    for (let i = 0; i < N; i++) {
      if (resumed[i] !== straight.losses[i]) {
        throw new Error(
          `step ${i + 1}: resumed loss ${resumed[i]} != straight ${straight.losses[i]}`,
        );
      }
    }
    if (!second.messages.some((m) => m.includes(`step ${k}`))) {
      throw new Error(second.messages.join("\n"));
    }
    // A checkpoint of another model, or of another plan, is refused, and left as it was.
    const before = await Deno.readFile(ckpt);
    for (
      const [other, says] of [
        [{ ...run, nhid: 8, emsize: 8 }, "made for another lstm model (embed 16 vs 8)"],
        [{ ...run, maxSteps: 60 }, "totalSteps 48 vs 60"],
      ] as const
    ) {
      try {
        await train(gpu, { ...other, resume: ckpt }, data, new LossRecorder());
        throw new Error("mismatched checkpoint accepted");
      } catch (e) {
        if (!(e instanceof CheckpointError) || !e.message.includes(says)) throw e;
      }
    }
    const after = await Deno.readFile(ckpt);
    if (after.length !== before.length || after.some((b, i) => b !== before[i])) {
      throw new Error("checkpoint modified");
    }
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "train: a small model gets within 15% of the synthetic corpus's optimal perplexity",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // Measured here: test ppl 1.089× optimal after 234 steps (about 45 s on llvmpipe).
    const s = syntheticCorpus({
      seed: 5,
      words: 40,
      trainTokens: 20000,
      validTokens: 4000,
      testTokens: 4000,
    });
    const data = {
      corpus: s,
      optimalPerplexity: s.optimalPerplexity,
      description: "learning test",
    };
    const summary = await train(
      gpu,
      {
        ...DEFAULTS,
        emsize: 32,
        nhid: 32,
        nlayers: 1,
        batchSize: 32,
        evalBatchSize: 32,
        bptt: 16,
        optimizer: "adam",
        lr: 0.02,
        clip: 0,
        epochs: 6,
        logInterval: 100,
      },
      data,
      new LossRecorder(),
    );
    const ratio = summary.testPpl / s.optimalPerplexity;
    if (!(ratio <= 1.15)) {
      throw new Error(
        `test ppl ${summary.testPpl} is ${ratio.toFixed(3)}× the optimal ${s.optimalPerplexity}`,
      );
    }
  },
});

Deno.test({
  name: "train: --growth gradient reaches Selfish-RNN's update and costs RigL's FLOPs",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const cfg: TrainConfig = {
      ...TINY,
      method: "selfish",
      density: 0.3,
      updateEvery: 7,
      epochSteps: 14,
      maxSteps: 14,
    };
    const random = new LossRecorder(), gradient = new LossRecorder();
    const a = await train(gpu, cfg, data, random);
    const b = await train(gpu, { ...cfg, growth: "gradient" }, data, gradient);
    // the same steps until the update after step 7, then other connectivity
    const same = (i: number) => random.losses[i] === gradient.losses[i];
    if (![...Array(7).keys()].every(same) || [7, 8, 9, 10].every(same)) {
      throw new Error(`losses ${random.losses} vs ${gradient.losses}`);
    }
    // the update step pays the dense gradient (spec §9): more than the random rule's 0.3
    const ratio = (r: typeof a) => r.trainFlops / r.denseTrainFlops;
    if (!(ratio(b) > ratio(a) + 0.005) || Math.abs(ratio(a) - 0.3) > 0.01) {
      throw new Error(`flops ${ratio(a)} vs ${ratio(b)}`);
    }
  },
});

Deno.test({
  name:
    "train: a resumed sparse run continues the connectivity schedule identically (selfish, SNT-ASGD)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const dir = await Deno.makeTempDir();
    const ckpt = `${dir}/run.ckpt`;
    // 49 planned steps, epochs of 6: updates every 7 steps (7, ..., 42; not 49, the last step),
    // validation every 6 (averaging starts at one of them: asserted below); the save at k = 33
    // sits between updates, inside an epoch and inside the averaged phase, so the resumed run must restore
    // masks, budgets, the update counter (random streams), the averages and the FLOPs totals
    const cfg: TrainConfig = {
      ...TINY,
      method: "selfish",
      density: 0.3,
      updateEvery: 7,
      epochSteps: 6,
      epochs: 10,
      optimizer: "ntasgd",
      lr: 3,
      nonmono: 0,
      maxSteps: 49,
    };
    const N = 49, k = 33;
    const straight = new LossRecorder();
    const a = await train(gpu, cfg, data, straight);
    const first = new LossRecorder();
    await train(gpu, { ...cfg, stopAfter: k, save: ckpt }, data, first);
    const second = new LossRecorder();
    const b = await train(gpu, { ...cfg, resume: ckpt }, data, second);
    const resumed = [...first.losses, ...second.losses];
    for (let i = 0; i < N; i++) {
      if (resumed[i] !== straight.losses[i]) {
        throw new Error(`step ${i + 1}: resumed ${resumed[i]} != straight ${straight.losses[i]}`);
      }
    }
    // the resumed process's clock (its ETA's base) goes on from the saved run's
    if (!(second.seconds[0] > first.seconds.at(-1)!)) {
      throw new Error(`resumed at ${second.seconds[0]} s after ${first.seconds.at(-1)} s`);
    }
    const updates = straight.messages.filter((m) => /^step \d+: selfish update/.test(m));
    const at = a.updates.map((u) => u.step);
    if (updates.length !== 6 || JSON.stringify(at) !== "[7,14,21,28,35,42]") {
      throw new Error(`expected updates at 7..42, none at ${N}:\n${updates.join("\n")}`);
    }
    // the removal rate anneals over the plan and reaches p_min at the last update
    const p = a.updates.map((u) => u.removalRate);
    if (
      p[0] >= cfg.deathRate || p[5] !== cfg.deathRateMin || p.some((x, i) => i && x >= p[i - 1])
    ) {
      throw new Error(`removal rates ${p}`);
    }
    if (a.averagedAfterEpoch === null || a.averagedAfterEpoch * 6 > k) {
      throw new Error(`averaging must start before step ${k}: epoch ${a.averagedAfterEpoch}`);
    }
    const same = (x: unknown, y: unknown, what: string) => {
      if (JSON.stringify(x) !== JSON.stringify(y)) {
        throw new Error(`${what}: ${JSON.stringify(x)} != ${JSON.stringify(y)}`);
      }
    };
    same(b.gateDensities, a.gateDensities, "per-gate densities");
    same([b.valPpl, b.testPpl, b.trainFlops], [a.valPpl, a.testPpl, a.trainFlops], "results");
    same(b.updates, a.updates, "update records");
    same(b.epochValPpl, a.epochValPpl, "validation curve");
    if (a.method !== "selfish" || Math.abs(a.trainFlops / a.denseTrainFlops - 0.3) > 0.01) {
      throw new Error(`flops ${a.trainFlops / a.denseTrainFlops}`);
    }
    // a checkpoint of another method is refused
    try {
      await train(gpu, { ...cfg, method: "rigl", resume: ckpt }, data, new LossRecorder());
      throw new Error("checkpoint of another method accepted");
    } catch (e) {
      if (!(e instanceof CheckpointError) || !e.message.includes("method selfish")) throw e;
    }
    // so is one of other sparsity settings or another optimizer, naming what differs
    for (
      const [other, text] of [
        [{ growth: "gradient" }, 'other sparsity settings (growth "random" vs "gradient")'],
        [{ density: 0.4 }, "(density 0.3 vs 0.4)"],
        [{ optimizer: "adam", lr: 0.01 }, "--optimizer ntasgd, this run is --optimizer adam"],
      ] as const
    ) {
      try {
        await train(gpu, { ...cfg, ...other, resume: ckpt }, data, new LossRecorder());
        throw new Error(`checkpoint resumed with ${JSON.stringify(other)}`);
      } catch (e) {
        if (!(e instanceof CheckpointError) || !e.message.includes(text)) throw e;
      }
    }
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "train: CSR storage trains like masked storage, and resumes identically (selfish)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const dir = await Deno.makeTempDir();
    const ckpt = `${dir}/csr.ckpt`;
    // clip 0: the clip norms differ by design (masked includes inactive gradients); momentum,
    // not Adam, whose moments stay dense in masked storage by default (inactiveStatePolicy)
    const cfg: TrainConfig = {
      ...TINY,
      method: "selfish",
      density: 0.4,
      updateEvery: 6,
      optimizer: "momentum",
      lr: 0.1,
      clip: 0,
    };
    const N = 44, k = 20;
    const maskedRun = new LossRecorder();
    const m = await train(gpu, { ...cfg, maxSteps: N }, data, maskedRun);
    const csrRun = new LossRecorder();
    const c = await train(gpu, { ...cfg, storage: "csr", maxSteps: N }, data, csrRun);
    // updates every 6 steps, the last at 42 (44 is the end), at p_min
    if (c.updates.length !== 7 || c.updates[6].removalRate !== cfg.deathRateMin) {
      throw new Error(`updates ${JSON.stringify(c.updates)}`);
    }
    // Same f32 program up to summation order: per-step losses agree to ~1e-6 relative; 1e-4
    // leaves room for the updates' effects, while a wrong index or a lost optimizer state
    // moves the loss by far more within a few steps.
    for (let i = 0; i < N; i++) {
      const a = maskedRun.losses[i], b = csrRun.losses[i];
      if (!(Math.abs(a - b) <= 1e-4 * Math.abs(a))) {
        throw new Error(`step ${i + 1}: csr loss ${b} vs masked ${a}`);
      }
    }
    if (Math.abs(c.valPpl - m.valPpl) > 1e-3 * m.valPpl) {
      throw new Error(`val ppl ${c.valPpl} vs ${m.valPpl}`);
    }
    if (JSON.stringify(c.densities) !== JSON.stringify(m.densities)) {
      throw new Error(`densities ${JSON.stringify(c.densities)} vs ${JSON.stringify(m.densities)}`);
    }
    const first = new LossRecorder();
    await train(
      gpu,
      { ...cfg, storage: "csr", maxSteps: N, stopAfter: k, save: ckpt },
      data,
      first,
    );
    const second = new LossRecorder();
    await train(gpu, { ...cfg, storage: "csr", maxSteps: N, resume: ckpt }, data, second);
    const resumed = [...first.losses, ...second.losses];
    for (let i = 0; i < N; i++) {
      if (resumed[i] !== csrRun.losses[i]) {
        throw new Error(`step ${i + 1}: resumed ${resumed[i]} != straight ${csrRun.losses[i]}`);
      }
    }
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "train: per-epoch updates follow each validation but the last; gmp ends at its density",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    // 5 epochs of 8 steps: updates after epochs 1-4 (8..32, not 40); the pruning window ends at
    // step 30, so the update at 32 reaches the final density and only then may a model be best
    const cfg: TrainConfig = {
      ...TINY,
      method: "gmp",
      density: 0.3,
      epochs: 5,
      epochSteps: 8,
      updateEvery: 0,
      pruneStart: 0.1,
      pruneEnd: 0.75,
    };
    const rec = new LossRecorder();
    const s = await train(gpu, cfg, data, rec);
    const at = JSON.stringify(s.updates.map((u) => u.step));
    if (at !== "[8,16,24,32]" || s.epochValPpl.length !== 5 || s.steps !== 40) {
      throw new Error(`updates at ${at}, ${s.epochValPpl.length} validations, ${s.steps} steps`);
    }
    // the tested (best) model is at the final density: it was chosen after step 32
    for (const [name, d] of Object.entries(s.densities)) {
      if (Math.abs(d - 0.3) > 0.01) throw new Error(`${name}: density ${d} of the tested model`);
    }
    // epoch 5 is the only validation at the final density, so it is the best
    if (Math.abs(s.valPpl - s.epochValPpl[4]) > 1e-9 * s.valPpl) {
      throw new Error(`val ppl ${s.valPpl} is not epoch 5's ${s.epochValPpl[4]}`);
    }
    // a window ending after the last update is refused before any training
    const noisy = new LossRecorder();
    try {
      await train(gpu, { ...cfg, pruneEnd: 0.9 }, data, noisy);
      throw new Error("a gmp plan that never reaches its density was accepted");
    } catch (e) {
      if (!(e instanceof ConfigError) || !/final density at step 36/.test(e.message)) throw e;
    }
    if (noisy.losses.length !== 0) throw new Error("trained before refusing the plan");
  },
});

Deno.test({
  name: "train: --valid-tokens validates epochs on a prefix and the best weights on all of it",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    // one validation (the run's end), so the best weights are the final ones in both runs
    const cfg: TrainConfig = { ...TINY, maxSteps: 10 };
    const full = await train(gpu, cfg, data, new LossRecorder());
    const prefix = await train(gpu, { ...cfg, validTokens: 120 }, data, new LossRecorder());
    if (prefix.valPpl !== full.valPpl || prefix.testPpl !== full.testPpl) {
      throw new Error(`final figures ${prefix.valPpl}/${prefix.testPpl} vs ${full.valPpl}`);
    }
    if (full.epochValPpl[0] !== full.valPpl || prefix.epochValPpl[0] === full.valPpl) {
      throw new Error(`epoch validations ${prefix.epochValPpl} vs ${full.epochValPpl}`);
    }
  },
});

Deno.test("train: the optimizer-state policy follows the released code where storage allows", () => {
  const policy = (c: Partial<TrainConfig>) => inactiveStatePolicy({ ...DEFAULTS, ...c });
  // Adam's moments are not masked in the released code; CSR has no inactive gradients
  const got = [
    policy({ optimizer: "adam" }),
    policy({ optimizer: "adam", storage: "csr" }),
    policy({ optimizer: "momentum" }),
    policy({ optimizer: "momentum", method: "snfs" }),
    policy({ optimizer: "sgd", method: "snfs" }),
    policy({ optimizer: "adam", inactiveState: "clear" }),
  ];
  const want = ["keep", "clear", "clear", "accumulate", "accumulate", "clear"];
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(JSON.stringify(got));
});

Deno.test({
  name: "train: Adam in CSR storage equals masked Adam with restarted moments (clear policy)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    // CSR keeps no state for inactive weights, so a regrown weight's moments restart with its
    // own bias correction (ParamState.age); masked storage does the same under `clear`
    const cfg: TrainConfig = {
      ...TINY,
      method: "set",
      density: 0.4,
      updateEvery: 5,
      optimizer: "adam",
      clip: 0,
      maxSteps: 30,
    };
    const masked = new LossRecorder(), csr = new LossRecorder(), kept = new LossRecorder();
    await train(gpu, { ...cfg, inactiveState: "clear" }, data, masked);
    await train(gpu, { ...cfg, storage: "csr" }, data, csr);
    await train(gpu, cfg, data, kept);
    let keptDiffers = false;
    for (let i = 0; i < 30; i++) {
      const a = masked.losses[i], b = csr.losses[i];
      if (!(Math.abs(a - b) <= 1e-4 * Math.abs(a))) {
        throw new Error(`step ${i + 1}: csr ${b} vs masked-clear ${a}`);
      }
      if (Math.abs(kept.losses[i] - a) > 1e-4 * Math.abs(a)) keptDiffers = true;
    }
    // the default masked policy (moments kept through regrowth) is a different program
    if (!keptDiffers) throw new Error("kept moments changed nothing: the policy is not applied");
  },
});

Deno.test({
  name: "trainModel: one call from settings by flag name, with the CLI's defaults and checks",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const s = await trainModel(
      { emsize: 8, nhid: 8, "batch-size": 4, "eval-batch-size": 4, bptt: 4, "max-steps": 6 },
      { gpu, data, printer: new LossRecorder() },
    );
    if (s.steps !== 6 || !Number.isFinite(s.testPpl) || s.model.family !== "lstm") {
      throw new Error(JSON.stringify(s));
    }
    try {
      await trainModel({ nhid: -1 }, { gpu, data });
      throw new Error("bad setting accepted");
    } catch (e) {
      if (!(e instanceof ConfigError) || !e.message.includes("setting nhid")) throw e;
    }
  },
});

Deno.test({
  name: "train: variable BPTT windows are a function of (seed, pass), fit the session, resume",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const cfg: TrainConfig = { ...TINY, variableBptt: true, bpttCap: 12, epochs: 3, bptt: 6 };
    const rd = runData(cfg, data);
    const [p0, p1] = [rd.passWindows(0), rd.passWindows(1)];
    if (JSON.stringify(runData(cfg, data).passWindows(1)) !== JSON.stringify(p1)) {
      throw new Error("the windows of a pass are not reproducible");
    }
    if (JSON.stringify(p0) === JSON.stringify(p1)) {
      throw new Error("every pass has the same windows");
    }
    for (const w of [...p0, ...p1]) {
      if (w.length > 12 || Math.abs(w.lrScale * 6 - Math.round(w.lrScale * 6)) > 1e-9) {
        throw new Error(`window ${JSON.stringify(w)}`);
      }
    }
    if (rd.maxWindow !== 12) throw new Error(`maxWindow ${rd.maxWindow}`);
    // the epochs are the passes, of their own lengths
    const straight = new LossRecorder();
    const a = await train(gpu, cfg, data, straight);
    const ends = [
      p0.length,
      p0.length + p1.length,
      p0.length + p1.length + rd.passWindows(2).length,
    ];
    if (JSON.stringify(a.plan.epochEnds) !== JSON.stringify(ends)) {
      throw new Error(`epoch ends ${a.plan.epochEnds} vs passes ${ends}`);
    }
    // stopped inside the second pass and resumed: the same windows, the same losses
    const dir = await Deno.makeTempDir();
    const ckpt = `${dir}/var.ckpt`;
    const k = p0.length + 3;
    const first = new LossRecorder(), second = new LossRecorder();
    await train(gpu, { ...cfg, stopAfter: k, save: ckpt }, data, first);
    const b = await train(gpu, { ...cfg, resume: ckpt }, data, second);
    const resumed = [...first.losses, ...second.losses];
    for (let i = 0; i < straight.losses.length; i++) {
      if (resumed[i] !== straight.losses[i]) {
        throw new Error(`step ${i + 1}: resumed ${resumed[i]} != straight ${straight.losses[i]}`);
      }
    }
    if (b.testPpl !== a.testPpl) throw new Error(`test ${b.testPpl} vs ${a.testPpl}`);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name:
    "train: AWD devices (with WeightDrop) on the stacked LSTM change the run, resume identically",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const awd: TrainConfig = {
      ...TINY,
      maxSteps: 20,
      modelFlags: { "locked-dropout": true },
      dropouti: 0.3,
      dropouth: 0.2,
      dropoute: 0.1,
      alpha: 2,
      beta: 1,
      wdrop: 0.3,
    };
    const plain = new LossRecorder(), straight = new LossRecorder();
    await train(gpu, { ...TINY, maxSteps: 20 }, data, plain);
    const a = await train(gpu, awd, data, straight);
    if (straight.losses.every((x, i) => x === plain.losses[i])) {
      throw new Error("the AWD devices changed nothing");
    }
    if (!straight.losses.every(Number.isFinite) || !Number.isFinite(a.testPpl)) {
      throw new Error(`losses ${straight.losses}`);
    }
    const dir = await Deno.makeTempDir();
    const ckpt = `${dir}/awd.ckpt`;
    const first = new LossRecorder(), second = new LossRecorder();
    await train(gpu, { ...awd, stopAfter: 13, save: ckpt }, data, first);
    const b = await train(gpu, { ...awd, resume: ckpt }, data, second);
    const resumed = [...first.losses, ...second.losses];
    for (let i = 0; i < 20; i++) {
      if (resumed[i] !== straight.losses[i]) {
        throw new Error(`step ${i + 1}: resumed ${resumed[i]} != straight ${straight.losses[i]}`);
      }
    }
    if (b.testPpl !== a.testPpl) throw new Error(`test ${b.testPpl} vs ${a.testPpl}`);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("trainConfig: AWD flags map to the LSTM and are refused where not built", () => {
  const c = trainConfig({ "locked-dropout": true, dropouth: 0.25, alpha: 2, beta: 1, wdrop: 0.5 });
  if (
    c.modelFlags["locked-dropout"] !== true || c.dropouth !== 0.25 || c.alpha !== 2 ||
    c.wdrop !== 0.5 || c.wdropConvention !== "inverted"
  ) {
    throw new Error(JSON.stringify(c));
  }
  for (
    const [settings, text] of [
      [{ dropouth: 0.2 }, "--dropouth 0.2 needs --locked-dropout"],
      [{ "wdrop-convention": "halved" }, "expected one of inverted, eval-scaled"],
      [{ alpha: -1 }, "alpha"],
      [{ model: "rhn", beta: 1 }, "has no AR/TAR"],
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
  name: "train: variable windows, WeightDrop, SNT-ASGD resumed across a fine-tuning restart",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const cfg: TrainConfig = {
      ...TINY,
      variableBptt: true,
      bpttCap: 12,
      bptt: 6,
      wdrop: 0.3,
      modelFlags: { "locked-dropout": true },
      method: "selfish",
      density: 0.5,
      optimizer: "ntasgd",
      lr: 3,
      nonmono: 0,
      epochs: 8,
      epochSteps: 5,
      asgdRestarts: [4, 6],
      asgdEta: "lagging",
    };
    const straight = new LossRecorder();
    const a = await train(gpu, cfg, data, straight);
    if (a.averagedAfterEpoch === null || a.averagedAfterEpoch >= 4) {
      throw new Error(`averaging must start before epoch 4: ${a.averagedAfterEpoch}`);
    }
    if (JSON.stringify(a.restartedAfterEpochs) !== "[4,6]" || a.asgdEta !== "lagging") {
      throw new Error(`restarts ${a.restartedAfterEpochs}, eta ${a.asgdEta}`);
    }
    // the restarts change the averaged model the last validation measured
    const none = await train(gpu, { ...cfg, asgdRestarts: [] }, data, new LossRecorder());
    if (none.epochValPpl[7] === a.epochValPpl[7]) throw new Error("the restarts changed nothing");
    // stopped between the two restarts, saved, resumed through the second
    const dir = await Deno.makeTempDir();
    const ckpt = `${dir}/ft.ckpt`;
    const first = new LossRecorder(), second = new LossRecorder();
    await train(gpu, { ...cfg, stopAfter: 27, save: ckpt }, data, first);
    const b = await train(gpu, { ...cfg, resume: ckpt }, data, second);
    const resumed = [...first.losses, ...second.losses];
    for (let i = 0; i < straight.losses.length; i++) {
      if (resumed[i] !== straight.losses[i]) {
        throw new Error(`step ${i + 1}: resumed ${resumed[i]} != straight ${straight.losses[i]}`);
      }
    }
    if (JSON.stringify([b.epochValPpl, b.testPpl]) !== JSON.stringify([a.epochValPpl, a.testPpl])) {
      throw new Error(`resumed ${b.epochValPpl} / ${b.testPpl} vs ${a.epochValPpl} / ${a.testPpl}`);
    }
    if (JSON.stringify(b.restartedAfterEpochs) !== "[4,6]") throw new Error("restarts lost");
    await Deno.remove(dir, { recursive: true });
    try {
      trainConfig({ "asgd-restarts": "500,1000" });
      throw new Error("restarts without SNT-ASGD accepted");
    } catch (e) {
      if (!(e as Error).message.includes("needs --optimizer ntasgd")) throw e;
    }
    const c = trainConfig({ optimizer: "ntasgd", "asgd-restarts": "1000, 500,500" });
    if (JSON.stringify(c.asgdRestarts) !== "[500,1000]") throw new Error(`${c.asgdRestarts}`);
  },
});

Deno.test({
  name: "train: --lr-plateau halves the rate after epochs without a better validation loss",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const dir = await Deno.makeTempDir();
    const log = `${dir}/log.csv`;
    // a rate far below f32's resolution of the weights: the model, and so its validation
    // loss, stays bit-identical, so every epoch after the first is a bad one
    await train(
      gpu,
      {
        ...TINY,
        lr: 1e-30,
        epochs: 4,
        epochSteps: 3,
        lrPlateau: 0.5,
        lrPlateauPatience: 0,
        log,
      },
      tinyData(),
      new LossRecorder(),
    );
    const rows = (await Deno.readTextFile(log)).trim().split("\n").map((l) => l.split(","));
    const lr = rows[0].indexOf("lr"), val = rows[0].indexOf("val_ppl");
    const body = rows.slice(1);
    if (new Set(body.map((r) => r[val])).size !== 1) throw new Error(`val ppl moved: ${rows}`);
    const got = body.map((r) => Number(r[lr]));
    const want = [1e-30, 1e-30, 5e-31, 2.5e-31];
    if (got.some((x, i) => Math.abs(x / want[i] - 1) > 1e-9)) throw new Error(`lr ${got}`);
    await Deno.remove(dir, { recursive: true });
  },
});
