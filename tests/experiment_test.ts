import { evenPlan } from "../pipeline/plan.ts";
import { TINY_SWEEP } from "./_train_util.ts";
import assert from "node:assert/strict";
import {
  EXPERIMENT_DEFAULTS,
  ExperimentError,
  experimentPlan,
  type ExperimentResult,
  EXPERIMENTS,
  OPTIMIZER_SETTINGS,
  planExperiment,
  planProblems,
  planSummary,
  resultsCsv,
  type ResultsHeader,
  resultsMarkdown,
  runExperiment,
} from "../pipeline/experiment.ts";
import { experimentList, parseExperimentArgs } from "../pipeline/experiment_cli.ts";
import { METHOD_NAMES } from "../pipeline/sparsity/method.ts";
import type { TrainingData, TrainSummary } from "../pipeline/train.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { DEFAULTS, type TrainConfig } from "../pipeline/config.ts";

const CLI = new URL("../pipeline/experiment_cli.ts", import.meta.url).pathname;

/** Minimal RFC 4180 parser (quoted fields with doubled quotes, commas and newlines). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"', i++);
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") (row.push(field), field = "");
    else if (ch === "\n") (row.push(field), rows.push(row), row = [], field = "");
    else field += ch;
  }
  if (field !== "" || row.length) (row.push(field), rows.push(row));
  return rows;
}

Deno.test("experiments: table2-small holds every method of Table 2, in the paper's order", () => {
  const t2 = EXPERIMENTS["table2-small"];
  assert.deepEqual([...t2.methods], [
    "dense",
    "small-dense",
    "static-er",
    "static-uniform",
    "gmp",
    "iss",
    "set",
    "dsr",
    "snfs",
    "rigl",
    "selfish",
  ]);
  assert.deepEqual([...t2.methods].sort(), [...METHOD_NAMES].sort());
  const runs = planExperiment(t2, EXPERIMENT_DEFAULTS, 286);
  assert.deepEqual(runs.map((r) => r.method), [...t2.methods]);
  // a method's own experiment settings (ISS's λ sized for the 2×200 model), the rest the run's
  assert.deepEqual(runs.find((r) => r.method === "iss")!.config.issLambda, 2e-4);
  assert.deepEqual(runs.find((r) => r.method === "gmp")!.config.issLambda, DEFAULTS.issLambda);
  // same seed, plan, size and density everywhere: only the method changes
  for (const r of runs) {
    assert.deepEqual(r.config.seed, EXPERIMENT_DEFAULTS.seed);
    assert.deepEqual(r.config.maxSteps, null);
    assert.deepEqual([r.config.emsize, r.config.nhid, r.config.nlayers], [200, 200, 2]);
    assert.deepEqual([r.config.batchSize, r.config.bptt], [20, 35]);
    assert.deepEqual(r.config.density, 0.33);
    assert.deepEqual(r.config.optimizer, "adam");
    assert.deepEqual(r.config.lr, OPTIMIZER_SETTINGS.adam.lr);
    // the small-scale protocol: 8 epochs of 100 steps, one update after each epoch's
    // validation, NT-ASGD's trigger over these epochs
    assert.deepEqual([r.config.epochs, r.config.epochSteps, r.config.updateEvery], [8, 100, 0]);
    assert.deepEqual([r.config.nonmono, r.config.validTokens], [2, 20_000]);
  }
});

Deno.test("experiments: the plan and what the header says of it", () => {
  const plan = experimentPlan(EXPERIMENT_DEFAULTS, 286);
  assert.deepEqual(plan, evenPlan(800, 100, 0));
  const runs = planExperiment(EXPERIMENTS["table2-small"], EXPERIMENT_DEFAULTS, 286);
  assert.deepEqual(planProblems(runs, plan), []);
  const { steps, updates } = planSummary(plan, runs[0].config, 286);
  assert.match(steps, /^800 per run: 8 epochs of 100 steps \(one pass .* is 286 steps\)/);
  assert.match(steps, /first 20000 validation tokens/);
  assert.match(updates, /^7 per dynamic run, after steps 100, 200, 300, 400, 500, 600, 700 /);
  assert.match(updates, /p_t = 0\.4755 at the first update, 0\.0050 at the last$/);
  // gradual pruning with its window ending after the last update is refused up front
  const short = experimentPlan({ ...EXPERIMENT_DEFAULTS, epochs: 2 }, 286);
  const problems = planProblems(runs, short);
  assert.deepEqual(problems.length, 1);
  assert.match(problems[0], /^gmp\/adam: gmp prunes to its final density at step 150/);
});

Deno.test("experiments: table3-small is the full grid methods × optimizers", () => {
  const t3 = EXPERIMENTS["table3-small"];
  assert.deepEqual([...t3.optimizers], ["adam", "momentum", "ntasgd"]);
  for (const m of ["selfish", "rigl", "set", "static-uniform"]) {
    if (!t3.methods.includes(m as never)) throw new Error(`table3 lacks ${m}`);
  }
  const runs = planExperiment(t3, EXPERIMENT_DEFAULTS, 286);
  const got = runs.map((r) => `${r.method}/${r.optimizer}`);
  const want = t3.methods.flatMap((m) => t3.optimizers.map((o) => `${m}/${o}`));
  assert.deepEqual(got, want);
  for (const r of runs) {
    assert.deepEqual(r.config.lr, OPTIMIZER_SETTINGS[r.config.optimizer].lr);
    assert.deepEqual(r.config.clip, OPTIMIZER_SETTINGS[r.config.optimizer].clip);
  }
});

Deno.test("experiments: options narrow and override the plan", () => {
  const t3 = EXPERIMENTS["table3-small"];
  const runs = planExperiment(t3, {
    ...EXPERIMENT_DEFAULTS,
    methods: ["set", "selfish"],
    steps: 700,
    epochs: 3,
    epochSteps: null,
    lr: 0.5,
    updateEvery: 7,
  }, 300);
  // table order kept, whatever order --methods names them in
  assert.deepEqual(runs.map((r) => `${r.method}/${r.optimizer}`), [
    "selfish/adam",
    "selfish/momentum",
    "selfish/ntasgd",
    "set/adam",
    "set/momentum",
    "set/ntasgd",
  ]);
  for (const r of runs) {
    assert.deepEqual([r.config.lr, r.config.updateEvery, r.config.maxSteps], [0.5, 7, 700]);
    assert.deepEqual([r.config.epochs, r.config.epochSteps], [3, null]); // passes of 300 steps
  }
  assert.throws(
    () => planExperiment(t3, { ...EXPERIMENT_DEFAULTS, methods: ["gmp"] }, 300),
    (e: Error) => e instanceof ExperimentError && /gmp not part of table3-small/.test(e.message),
  );
});

const ROWS: ExperimentResult[] = [
  {
    method: "dense",
    optimizer: "adam",
    seed: 1111,
    data: "synthetic, corpus",
    steps: 10,
    valPpl: 12.3456,
    testPpl: 13.5,
    parameters: 1000,
    activeParameters: 1000,
    trainFlopsXDense: 1,
    inferenceFlopsXDense: 1,
    elapsedSec: 12.34,
    updates: 3,
    firstRemovalRate: 0.45,
    lastRemovalRate: 0.005,
    epochValPpl: [20.5, 12.3456],
    status: "ok",
    note: "",
  },
  {
    method: "set",
    optimizer: "adam",
    seed: 1111,
    data: "synthetic, corpus",
    steps: null,
    valPpl: null,
    testPpl: null,
    parameters: null,
    activeParameters: null,
    trainFlopsXDense: null,
    inferenceFlopsXDense: null,
    elapsedSec: 3,
    updates: null,
    firstRemovalRate: null,
    lastRemovalRate: null,
    epochValPpl: [],
    status: "failed",
    note: 'RangeError: bad "k", see\nline | two',
  },
  {
    method: "gmp",
    optimizer: "adam",
    seed: 1111,
    data: "synthetic, corpus",
    steps: null,
    valPpl: null,
    testPpl: null,
    parameters: null,
    activeParameters: null,
    trainFlopsXDense: null,
    inferenceFlopsXDense: null,
    elapsedSec: null,
    updates: null,
    firstRemovalRate: null,
    lastRemovalRate: null,
    epochValPpl: [],
    status: "skipped",
    note: "method gmp is not registered",
  },
];

Deno.test("experiments: results.csv quotes commas, quotes and newlines and parses back", () => {
  const csv = resultsCsv(ROWS);
  const rows = parseCsv(csv);
  assert.deepEqual(rows[0], [
    "method",
    "optimizer",
    "seed",
    "data",
    "steps",
    "val_ppl",
    "test_ppl",
    "parameters",
    "active_parameters",
    "train_flops_x_dense",
    "inference_flops_x_dense",
    "elapsed_sec",
    "updates",
    "first_removal_rate",
    "last_removal_rate",
    "epoch_val_ppl",
    "note",
  ]);
  assert.deepEqual(rows.length, 4);
  assert.deepEqual(rows[1], [
    "dense",
    "adam",
    "1111",
    "synthetic, corpus",
    "10",
    "12.3456",
    "13.5",
    "1000",
    "1000",
    "1",
    "1",
    "12.3",
    "3",
    "0.45",
    "0.005",
    "20.50 12.35",
    "",
  ]);
  assert.deepEqual(rows[2][16], 'failed: RangeError: bad "k", see\nline | two');
  assert.deepEqual(rows[2].slice(4, 11), ["", "", "", "", "", "", ""]);
  assert.deepEqual(rows[3][16], "skipped: method gmp is not registered");
  // the raw text doubles the quotes inside the quoted field
  assert.match(csv, /"failed: RangeError: bad ""k"", see\nline \| two"/);
});

Deno.test("experiments: results.md has the header, one row per run and the paper context", () => {
  const header: ResultsHeader = {
    experiment: EXPERIMENTS["table2-small"],
    data: "synthetic corpus (optimal ppl 5.46)",
    steps: "10 per run",
    seed: 7,
    adapter: "llvmpipe",
    date: "2025-01-01T00:00:00.000Z",
    settings: ["model: tiny"],
  };
  const md = resultsMarkdown(header, ROWS);
  for (
    const s of [
      "- data: synthetic corpus (optimal ppl 5.46)",
      "- steps: 10 per run",
      "- seed: 7",
      "- adapter: llvmpipe",
      "- date: 2025-01-01",
      "- model: tiny",
      "| dense | adam | 1111 | 12.35 | 13.50 | 1000 / 1000 | 1.000 | 1.000 | 3 | 0.4500 → 0.0050 | 12 |  |",
      // a pipe or newline in a note must not break the table
      '| set | adam | 1111 |  |  |  |  |  |  |  | 3 | failed: RangeError: bad "k", see line \\| two |',
      // the per-epoch validation curve of each finished run
      "| method | optimizer | 1 | 2 |",
      "| dense | adam | 20.50 | 12.35 |",
      "Skipped (not registered): gmp.",
      "Failed: set/adam",
      "Paper context (not a test): In the paper",
    ]
  ) {
    if (!md.includes(s)) throw new Error(`results.md lacks ${JSON.stringify(s)}:\n${md}`);
  }
  const table = md.slice(0, md.indexOf("Validation perplexity at each epoch end"));
  const tableRows = table.split("\n").filter((l) =>
    l.startsWith("| ") && !l.startsWith("| method")
  );
  assert.deepEqual(tableRows.length, 3);
  for (const l of tableRows) assert.deepEqual(l.split(/(?<!\\)\|/).length, 14);
});

Deno.test("experiments: the runner records failures and skips and keeps going", async () => {
  const dir = await Deno.makeTempDir();
  const runs = planExperiment(EXPERIMENTS["table2-small"], {
    ...EXPERIMENT_DEFAULTS,
    methods: ["dense", "gmp", "set", "selfish"],
    steps: 3,
  }, 100);
  const data = { corpus: {} as never, description: "fake data" } as TrainingData;
  const seen: string[] = [];
  const fakeTrain = (_gpu: Gpu, c: TrainConfig): Promise<TrainSummary> => {
    seen.push(c.method);
    if (c.method === "set") return Promise.reject(new RangeError("set broke, badly"));
    return Promise.resolve({
      data: "fake data",
      model: { family: "lstm", config: {} },
      valPpl: 10,
      testPpl: 11,
      optimalPpl: null,
      steps: 3,
      epochs: 0,
      tokensPerSec: 1,
      parameters: 100,
      adapter: "none",
      variant: "regblock",
      averaged: false,
      averagedAfterEpoch: null,
      restartedAfterEpochs: [],
      asgdEta: "per-step",
      interrupted: false,
      stopReason: null,
      plan: evenPlan(3, 100, 0),
      epochValPpl: [10],
      updates: [],
      elapsedSec: 1,
      method: c.method,
      activeParameters: c.method === "dense" ? 100 : 33,
      densities: {},
      gateDensities: {},
      hiddenSizes: null,
      trainFlops: c.method === "dense" ? 50 : 20,
      denseTrainFlops: 50,
      inferenceFlops: 4,
      denseInferenceFlops: 8,
    });
  };
  const header: ResultsHeader = {
    experiment: EXPERIMENTS["table2-small"],
    data: "fake",
    steps: "3",
    seed: 1,
    adapter: "none",
    date: "now",
    settings: [],
  };
  const lines: string[] = [];
  const rows = await runExperiment({} as Gpu, runs, data, {
    outDir: dir,
    available: (m) => m !== "gmp",
    header,
    quiet: true,
    log: (l) => lines.push(l),
    trainFn: fakeTrain as never,
  });
  assert.deepEqual(seen, ["dense", "set", "selfish"]);
  assert.deepEqual(rows.map((r) => r.status), ["ok", "skipped", "failed", "ok"]);
  assert.deepEqual(rows[3].trainFlopsXDense, 0.4);
  assert.deepEqual(rows[3].inferenceFlopsXDense, 0.5);
  assert.match(rows[2].note, /RangeError: set broke, badly/);
  assert.match(lines.join("\n"), /\[2\/4\] gmp\/adam: skipped/);
  assert.match(lines.join("\n"), /\[3\/4\] set\/adam: FAILED/);
  const csv = parseCsv(await Deno.readTextFile(`${dir}/results.csv`));
  assert.deepEqual(csv.length, 5);
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(files, [
    "dense-adam-seed1111",
    "results.csv",
    "results.md",
    "selfish-adam-seed1111",
    "set-adam-seed1111",
  ]);
  const runFiles = [...Deno.readDirSync(`${dir}/dense-adam-seed1111`)].map((e) => e.name).sort();
  assert.deepEqual(runFiles, ["config.json", "result.json", "summary.json"]);
  // the same command again: finished runs are kept, the failed one runs, from its checkpoint
  await Deno.writeTextFile(`${dir}/set-adam-seed1111/run.ckpt`, "a checkpoint");
  const again: TrainConfig[] = [];
  const rerun = await runExperiment({} as Gpu, runs, data, {
    outDir: dir,
    available: (m) => m !== "gmp",
    header,
    quiet: true,
    log: (l) => lines.push(l),
    trainFn: ((g: Gpu, c: TrainConfig) => (again.push(c), fakeTrain(g, c))) as never,
  });
  assert.deepEqual(again.map((c) => [c.method, c.resume]), [[
    "set",
    `${dir}/set-adam-seed1111/run.ckpt`,
  ]]);
  assert.deepEqual(rerun.map((r) => r.status), ["ok", "skipped", "failed", "ok"]);
  assert.deepEqual(rerun[3], rows[3]);
  assert.match(lines.join("\n"), /\[1\/4\] dense\/adam: done earlier \(val ppl 10.00\), kept/);
  // another configuration in the same directory is refused
  await assert.rejects(
    () =>
      runExperiment({} as Gpu, runs.map((r) => ({ ...r, config: { ...r.config, lr: 9 } })), data, {
        outDir: dir,
        available: () => true,
        header,
        quiet: true,
        log: () => {},
        trainFn: fakeTrain as never,
      }),
    (e: Error) => e instanceof ExperimentError && /another configuration/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("experiment CLI: parser rejects bad input with one clear message", () => {
  const bad: [string[], RegExp][] = [
    [[], /expected one experiment name/],
    [["table9"], /unknown experiment "table9"/],
    [["table2-small", "extra"], /expected one experiment name/],
    [["table2-small", "--steps", "0"], /--steps: expected an integer > 0/],
    [["table2-small", "--epoch-steps", "1.5"], /--epoch-steps: expected an integer >= 0/],
    [["table2-small", "--valid-tokens", "x"], /--valid-tokens/],
    [["table2-small", "--steps", "2.5"], /--steps/],
    [["table2-small", "--nhid", "x"], /--nhid/],
    [["table2-small", "--density", "1.5"], /--density/],
    [["table2-small", "--seed", "1.5"], /--seed/],
    [["table2-small", "--lr", "-1"], /--lr/],
    [["table2-small", "--methods", "dense,bogus"], /--methods: unknown method "bogus"/],
    [["table3-small", "--methods", "gmp"], /not part of table3-small/],
    [["table3-small", "--optimizers", "adam,rmsprop"], /--optimizers: unknown optimizer "rmsprop"/],
    [["table2-small", "--optimizers", "momentum"], /--optimizers: momentum not part of table2/],
    [["table2-small", "--bogus"], /bogus/],
  ];
  for (const [args, re] of bad) {
    assert.throws(
      () => parseExperimentArgs(args),
      (e: Error) => e instanceof ExperimentError && re.test(e.message),
      args.join(" "),
    );
  }
  const ok = parseExperimentArgs(["table2-small", "--nhid", "32", "--epochs", "2"]);
  assert.deepEqual([ok.options.nhid, ok.options.emsize, ok.options.steps], [32, 32, null]);
  assert.deepEqual(ok.options.epochs, 2);
  const pass = parseExperimentArgs(["table2-small", "--epoch-steps", "0", "--valid-tokens", "0"]);
  assert.deepEqual([pass.options.epochSteps, pass.options.validTokens], [null, null]);
  // list: every experiment with its grid's size
  const list = experimentList();
  assert.match(list, /table2-small +11 runs × 800 steps, ≈ \d+\.\d TFLOP/);
  assert.match(list, /table3-small +15 runs × 800 steps/);
  // --optimizers narrows the grid, kept in the experiment's order
  const t3 = parseExperimentArgs(["table3-small", "--optimizers", "ntasgd,momentum"]);
  const runs = planExperiment(EXPERIMENTS["table3-small"], t3.options, 300);
  assert.deepEqual(
    runs.filter((r) => r.method === "set").map((r) => r.optimizer),
    ["momentum", "ntasgd"],
  );
  assert.deepEqual(runs.length, 10);
  // --seeds N: N runs per method and optimizer, seeds seed .. seed + N - 1
  const seeded = parseExperimentArgs(["table2-small", "--seeds", "3", "--seed", "5"]);
  const grid = planExperiment(EXPERIMENTS["table2-small"], seeded.options, 300);
  assert.deepEqual(grid.length, 33);
  assert.deepEqual(grid.slice(0, 3).map((r) => [r.method, r.config.seed]), [
    ["dense", 5],
    ["dense", 6],
    ["dense", 7],
  ]);
  assert.throws(() => parseExperimentArgs(["table2-small", "--seeds", "0"]), /--seeds/);
});

async function runCli(args: string[]): Promise<{ code: number; out: string }> {
  const p = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-run", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: p.code, out: dec.decode(p.stdout) + dec.decode(p.stderr) };
}

Deno.test("experiment CLI: bad flags exit 2 before any work", async () => {
  const dir = await Deno.makeTempDir();
  for (
    const [args, text] of [
      [["table2-small", "--steps", "-4", "--out", `${dir}/o`], "--steps"],
      [["nope", "--out", `${dir}/o`], "unknown experiment"],
      [["table2-small", "--data", `${dir}/missing`, "--out", `${dir}/o`], "missing"],
    ] as [string[], string][]
  ) {
    const r = await runCli(args);
    if (r.code !== 2 || !r.out.includes(text)) {
      throw new Error(`${args.join(" ")}: exit ${r.code}, want 2 and "${text}":\n${r.out}`);
    }
  }
  assert.deepEqual([...Deno.readDirSync(dir)].length, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "experiment CLI: a tiny table2 run writes results.csv, results.md and summaries",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const out = `${dir}/run`;
    const r = await runCli([
      ...TINY_SWEEP,
      "--methods",
      "dense,selfish",
      "--quiet",
      "--out",
      out,
    ]);
    if (r.code !== 0) throw new Error(`exit ${r.code}:\n${r.out}`);
    const csv = parseCsv(await Deno.readTextFile(`${out}/results.csv`));
    assert.deepEqual(csv.length, 3);
    const col = (name: string) => csv[0].indexOf(name);
    assert.deepEqual(csv.slice(1).map((row) => row[col("method")]), ["dense", "selfish"]);
    for (const row of csv.slice(1)) {
      assert.deepEqual(row[col("steps")], "4");
      assert.deepEqual(row[col("note")], "");
      assert.deepEqual(row[col("epoch_val_ppl")].split(" ").length, 2);
      const ppl = Number(row[col("test_ppl")]);
      // 4 steps from a random init: finite and at most a little above the uniform 201
      if (!(ppl > 1 && ppl < 400)) throw new Error(`test ppl ${ppl}`);
    }
    const dense = csv[1], selfish = csv[2];
    // one update, after epoch 1's validation (step 2), at p_min: none after the last step
    assert.deepEqual([dense[col("updates")], selfish[col("updates")]], ["0", "1"]);
    assert.deepEqual(selfish[col("last_removal_rate")], "0.005");
    assert.deepEqual(dense[col("active_parameters")], dense[col("parameters")]);
    const frac = Number(selfish[col("active_parameters")]) / Number(selfish[col("parameters")]);
    // the sparse LSTM/embedding/decoder tensors are at 0.33; dense biases push it a bit up
    if (!(frac > 0.3 && frac < 0.4)) throw new Error(`selfish active fraction ${frac}`);
    const md = await Deno.readTextFile(`${out}/results.md`);
    assert.match(md, /- steps: 4 per run: 2 epochs of 2 steps/);
    assert.match(md, /connectivity updates: 1 per dynamic run, after steps 2 /);
    assert.match(md, /\| selfish \| adam \|/);
    for (const f of ["dense-adam-seed1111", "selfish-adam-seed1111"]) {
      const s = JSON.parse(await Deno.readTextFile(`${out}/${f}/summary.json`));
      assert.deepEqual(s.steps, 4);
      assert.deepEqual(s.config.nhid, 16);
    }
    assert.deepEqual([...Deno.readDirSync(out)].filter((e) => e.name.endsWith(".tmp")).length, 0);
    const runFiles = [...Deno.readDirSync(`${out}/selfish-adam-seed1111`)].map((e) => e.name)
      .sort();
    assert.deepEqual(runFiles, [
      "config.json",
      "log.csv",
      "result.json",
      "run.ckpt",
      "summary.json",
    ]);
    // the same command again trains nothing
    const again = await runCli([
      ...TINY_SWEEP,
      "--methods",
      "dense,selfish",
      "--quiet",
      "--out",
      out,
    ]);
    if (again.code !== 0 || (again.out.match(/done earlier/g) ?? []).length !== 2) {
      throw new Error(`rerun: exit ${again.code}:\n${again.out}`);
    }
    assert.deepEqual(parseCsv(await Deno.readTextFile(`${out}/results.csv`)), csv);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("experiments: --storage csr runs supported methods truly sparse, RigL/SNFS/ISS/dense masked", () => {
  const runs = planExperiment(
    EXPERIMENTS["table2-small"],
    { ...EXPERIMENT_DEFAULTS, storage: "csr" },
    286,
  );
  const storage = Object.fromEntries(runs.map((r) => [r.method, r.config.storage]));
  assert.deepEqual(storage, {
    dense: "masked",
    "small-dense": "masked",
    "static-er": "csr",
    "static-uniform": "csr",
    gmp: "csr",
    iss: "masked",
    set: "csr",
    dsr: "csr",
    snfs: "masked",
    rigl: "masked",
    selfish: "csr",
  });
  assert.ok(
    planExperiment(EXPERIMENTS["table2-small"], EXPERIMENT_DEFAULTS, 286)
      .every((r) => r.config.storage === "masked"),
  );
});

Deno.test({
  name: "experiment CLI: a sweep killed midway and rerun with --jobs 2 trains only what is missing",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const out = `${dir}/sweep`;
    const args = [
      ...TINY_SWEEP,
      "--methods",
      "dense,static-uniform,selfish",
      "--quiet",
      "--out",
      out,
    ];
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-run", CLI, ...args],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const first = `${out}/dense-adam-seed1111/result.json`;
    for (let t = 0; t < 600; t++) {
      if (await Deno.stat(first).then(() => true, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill("SIGKILL");
    await child.status;
    const kept = await Deno.readTextFile(first);
    const again = await runCli([...args, "--jobs", "2"]);
    if (again.code !== 0) throw new Error(`rerun: exit ${again.code}\n${again.out}`);
    assert.deepEqual(await Deno.readTextFile(first), kept);
    const log = await Deno.readTextFile(`${out}/dense-adam-seed1111/worker.log`);
    assert.match(log, /done earlier/);
    const csv = parseCsv(await Deno.readTextFile(`${out}/results.csv`));
    const col = (name: string) => csv[0].indexOf(name);
    assert.deepEqual(csv.slice(1).map((r) => [r[col("method")], r[col("steps")]]), [
      ["dense", "4"],
      ["static-uniform", "4"],
      ["selfish", "4"],
    ]);
    // the Slurm executor's script, written without submitting
    const slurm = await runCli([
      ...args,
      "--executor",
      "slurm",
      "--dry-run",
      "--partition",
      "gpu",
      "--time",
      "02:00:00",
      "--gpus-per-task",
      "1",
      "--sbatch-arg=--mem=16G",
    ]);
    if (slurm.code !== 0) throw new Error(`slurm dry run: ${slurm.out}`);
    const script = await Deno.readTextFile(`${out}/sbatch.sh`);
    for (
      const line of [
        "#SBATCH --array=0-2",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=02:00:00",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --mem=16G",
        '--run-index "$SLURM_ARRAY_TASK_ID"',
      ]
    ) assert.ok(script.includes(line), `${line} in\n${script}`);
    assert.ok(!script.includes("--dry-run") && !script.includes("--executor"), script);
    await Deno.remove(dir, { recursive: true });
  },
});
