import { DEFAULTS, type TrainConfig } from "../pipeline/config.ts";
import { train, type TrainingData } from "../pipeline/train.ts";
import { syntheticCorpus } from "../pipeline/data/synthetic.ts";
import { type ProgressInfo, ProgressPrinter } from "../pipeline/progress.ts";
import { CheckpointError } from "../pipeline/checkpoint.ts";
import { GPU_TEST, testGpu } from "./_util.ts";

/** Records every reported training loss instead of printing. */
class LossRecorder extends ProgressPrinter {
  losses: number[] = [];
  messages: string[] = [];
  constructor() {
    super(false);
  }
  override update(p: ProgressInfo): void {
    this.losses.push(p.loss);
  }
  override say(message: string): void {
    this.messages.push(message);
  }
}

function tinyData(): TrainingData {
  const s = syntheticCorpus({
    seed: 3,
    words: 30,
    trainTokens: 1200,
    validTokens: 300,
    testTokens: 300,
  });
  return { corpus: s, optimalPerplexity: s.optimalPerplexity, description: "tiny synthetic" };
}

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
  name: "train: k steps + save + resume + N-k steps gives the same losses as N straight steps",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const dir = await Deno.makeTempDir();
    const ckpt = `${dir}/run.ckpt`;
    // Epochs of ~37 windows; stop inside epoch 2 so an epoch end (evaluation, best weights), the
    // carried hidden state, Adam's moments and step count are all part of the resumed state.
    const N = 48, k = 41;
    const straight = new LossRecorder();
    const log = `${dir}/log.csv`;
    const summary = await train(gpu, { ...TINY, maxSteps: N, log }, data, straight);
    // One CSV row per evaluation: one epoch ended within N steps.
    const rows = (await Deno.readTextFile(log)).trim().split("\n");
    if (rows.length !== 2 || !rows[0].startsWith("step,epoch,lr,train_loss,val_ppl")) {
      throw new Error(`log:\n${rows.join("\n")}`);
    }
    if (summary.steps !== N || summary.epochs !== 1) {
      throw new Error(`summary ${JSON.stringify(summary)}`);
    }
    const first = new LossRecorder();
    await train(gpu, { ...TINY, maxSteps: k, save: ckpt }, data, first);
    const second = new LossRecorder();
    await train(gpu, { ...TINY, maxSteps: N, resume: ckpt }, data, second);
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
    // A checkpoint of another model is refused, and left as it was.
    const before = await Deno.readFile(ckpt);
    try {
      await train(gpu, { ...TINY, nhid: 8, emsize: 8, resume: ckpt }, data, new LossRecorder());
      throw new Error("mismatched checkpoint accepted");
    } catch (e) {
      if (!(e instanceof CheckpointError) || !e.message.includes(ckpt)) throw e;
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
  name:
    "train: a resumed sparse run continues the connectivity schedule identically (selfish, SNT-ASGD)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const data = tinyData();
    const dir = await Deno.makeTempDir();
    const ckpt = `${dir}/run.ckpt`;
    // updates every 7 steps (at 7, 14, ..., 42) and at the epoch end; the save at k = 30 sits
    // between updates, so the resumed run must restore masks, budgets, the update counter
    // (random streams), the averaging state and the FLOPs totals
    const cfg: TrainConfig = {
      ...TINY,
      method: "selfish",
      density: 0.3,
      updateEvery: 7,
      optimizer: "ntasgd",
      lr: 1,
      nonmono: 1,
    };
    const N = 48, k = 30;
    const straight = new LossRecorder();
    const a = await train(gpu, { ...cfg, maxSteps: N }, data, straight);
    const first = new LossRecorder();
    await train(gpu, { ...cfg, maxSteps: k, save: ckpt }, data, first);
    const second = new LossRecorder();
    const b = await train(gpu, { ...cfg, maxSteps: N, resume: ckpt }, data, second);
    const resumed = [...first.losses, ...second.losses];
    for (let i = 0; i < N; i++) {
      if (resumed[i] !== straight.losses[i]) {
        throw new Error(`step ${i + 1}: resumed ${resumed[i]} != straight ${straight.losses[i]}`);
      }
    }
    const updates = straight.messages.filter((m) => m.includes("selfish update"));
    if (updates.length < 6) throw new Error(`expected >= 6 updates:\n${updates.join("\n")}`);
    const same = (x: unknown, y: unknown, what: string) => {
      if (JSON.stringify(x) !== JSON.stringify(y)) {
        throw new Error(`${what}: ${JSON.stringify(x)} != ${JSON.stringify(y)}`);
      }
    };
    same(b.gateDensities, a.gateDensities, "per-gate densities");
    same([b.valPpl, b.testPpl, b.trainFlops], [a.valPpl, a.testPpl, a.trainFlops], "results");
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
    // clip 0: the clip norms differ by design (masked includes inactive gradients)
    const cfg: TrainConfig = {
      ...TINY,
      method: "selfish",
      density: 0.4,
      updateEvery: 6,
      optimizer: "adam",
      clip: 0,
    };
    const N = 44, k = 20;
    const maskedRun = new LossRecorder();
    const m = await train(gpu, { ...cfg, maxSteps: N }, data, maskedRun);
    const csrRun = new LossRecorder();
    const c = await train(gpu, { ...cfg, storage: "csr", maxSteps: N }, data, csrRun);
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
    await train(gpu, { ...cfg, storage: "csr", maxSteps: k, save: ckpt }, data, first);
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
