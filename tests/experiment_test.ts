import { evenPlan } from "../pipeline/plan.ts";
import { TINY_SWEEP } from "./_train_util.ts";
import assert from "node:assert/strict";
import { planProblems, runExperiment } from "../pipeline/experiment/runner.ts";
import {
  type ExperimentResult,
  planSummary,
  resultsCsv,
  type ResultsHeader,
  resultsMarkdown,
} from "../pipeline/experiment/results.ts";
import { experimentList, parseExperimentArgs } from "../pipeline/experiment_cli.ts";
import { METHOD_NAMES } from "../pipeline/sparsity/method.ts";
import type { TrainingData, TrainSummary } from "../pipeline/train.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { DEFAULTS, type TrainConfig } from "../pipeline/config.ts";
import {
  ExperimentError,
  NO_OVERRIDES,
  planSpec,
  SCALES,
  type SpecOverrides,
} from "../pipeline/experiment/spec.ts";
import { TABLES } from "../pipeline/experiment/tables.ts";
import { experimentCost } from "../pipeline/experiment/cost.ts";

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

const small = (name: string, overrides: Partial<SpecOverrides> = {}) =>
  planSpec(TABLES[name], "small", { ...NO_OVERRIDES, ...overrides });

Deno.test("experiments: table2 holds every method of Table 2 on both models, in the paper's order", () => {
  const t2 = TABLES.table2;
  assert.deepEqual(t2.blocks.map((b) => b.key), ["lstm", "rhn"]);
  for (const b of t2.blocks) {
    assert.deepEqual([...b.methods], [
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
    assert.deepEqual([...b.methods].sort(), [...METHOD_NAMES].sort());
  }
  const runs = small("table2");
  assert.deepEqual(runs.map((r) => r.key).slice(0, 2), [
    "lstm-dense-adam-seed1111",
    "lstm-small-dense-adam-seed1111",
  ]);
  assert.deepEqual(runs.map((r) => r.method), [...METHOD_NAMES, ...METHOD_NAMES]);
  // a method's own settings on the model (ISS's λ), the rest the run's
  const lstm = runs.filter((r) => r.block === "lstm");
  assert.deepEqual(lstm.find((r) => r.method === "iss")!.config.issLambda, 2e-4);
  assert.deepEqual(lstm.find((r) => r.method === "gmp")!.config.issLambda, DEFAULTS.issLambda);
  // within a block: same seed, plan, size and density everywhere; only the method changes
  for (const r of runs) {
    const c = r.config;
    assert.deepEqual(c.seed, r.block === "lstm" ? 1111 : 42);
    assert.deepEqual(c.model, r.block);
    assert.deepEqual(c.maxSteps, null);
    assert.deepEqual([c.emsize, c.nhid], [128, 128]);
    assert.deepEqual([c.batchSize, c.bptt, c.evalBatchSize], [20, 35, 20]);
    assert.deepEqual(c.density, r.block === "lstm" ? 0.33 : 0.472);
    // the table's density column: 1 for the dense model, the target (matched) for the rest
    assert.deepEqual(r.density, r.method === "dense" ? 1 : c.density);
    assert.deepEqual([c.optimizer, c.lr, c.adamBeta1], ["adam", 1e-2, 0]);
    assert.deepEqual(c.clip, r.block === "lstm" ? 0 : 0.25);
    // the small-scale protocol: 8 epochs of 100 steps, one update after each epoch's
    // validation, NT-ASGD's trigger over these epochs
    assert.deepEqual([c.epochs, c.epochSteps, c.updateEvery], [8, 100, 0]);
    assert.deepEqual([c.nonmono, c.validTokens], [2, 20_000]);
    assert.deepEqual([c.data, c.storage, c.save, c.summary], [null, "masked", null, null]);
  }
  // the RHN's own small preset (spec §14.5): depth 4, tied, its dropouts
  const rhn = runs.find((r) => r.block === "rhn")!.config;
  assert.deepEqual([rhn.modelFlags.depth, rhn.tied, rhn.dropout, rhn.dropoute], [
    4,
    true,
    0.3,
    0.05,
  ]);
  // every table plans at both scales, one directory per run
  for (const t of Object.values(TABLES)) {
    for (const scale of SCALES) {
      const keys = planSpec(t, scale, NO_OVERRIDES).map((r) => r.key);
      assert.deepEqual(new Set(keys).size, keys.length, `${t.name} ${scale}`);
    }
  }
});

Deno.test("experiments: the plan and what the header says of it", () => {
  const plan = evenPlan(800, 100, 0);
  const runs = small("table2", { blocks: ["lstm"] });
  assert.deepEqual(planProblems(runs, () => plan), []);
  const { steps, updates } = planSummary(plan, runs[0].config, 286);
  assert.match(steps, /^800 per run: 8 epochs of 100 steps \(one pass .* is 286 steps\)/);
  assert.match(steps, /first 20000 validation tokens/);
  assert.match(updates, /^7 per dynamic run, after steps 100, 200, 300, 400, 500, 600, 700 /);
  assert.match(updates, /p_t = 0\.4755 at the first update, 0\.0050 at the last$/);
  // gradual pruning with its window ending after the last update is refused up front
  const problems = planProblems(runs, () => evenPlan(200, 100, 0));
  assert.deepEqual(problems.length, 1);
  assert.match(problems[0], /^lstm-gmp-adam-seed1111: gmp prunes to its final density at step 150/);
});

Deno.test("experiments: table3 is the full grid methods × optimizers, each with its settings", () => {
  const t3 = TABLES.table3;
  assert.deepEqual([...t3.blocks[0].optimizers.small], ["adam", "momentum", "ntasgd"]);
  const runs = small("table3");
  const got = runs.map((r) => `${r.method}/${r.optimizer}`);
  const want = t3.blocks[0].methods.flatMap((m) =>
    ["adam", "momentum", "ntasgd"].map((o) => `${m}/${o}`)
  );
  assert.deepEqual(got, want);
  const settings = { adam: [1e-2, 0], momentum: [2, 0.25], ntasgd: [20, 0.25] } as const;
  for (const r of runs) {
    assert.deepEqual([r.config.lr, r.config.clip], [...settings[r.optimizer as "adam"]]);
  }
});

Deno.test("experiments: row variants change what they name, and nothing else", () => {
  const t4 = small("table4");
  assert.deepEqual(new Set(t4.map((r) => r.block)), new Set(["lstm", "rhn", "onlstm", "mos"]));
  const lstm = t4.filter((r) => r.block === "lstm");
  assert.deepEqual(lstm.map((r) => r.key), [
    "lstm-selfish-full-ntasgd-seed1111",
    "lstm-selfish-no-sntasgd-momentum-seed1111",
    "lstm-selfish-no-redistribution-ntasgd-seed1111",
    "lstm-selfish-gradient-growth-ntasgd-seed1111",
    "lstm-selfish-er-init-ntasgd-seed1111",
  ]);
  const [full, noAvg, noRedist, gradGrowth, er] = lstm.map((r) => r.config);
  assert.deepEqual([noAvg.optimizer, noAvg.momentum, noAvg.lr], ["momentum", 0.9, 2]);
  assert.deepEqual(noRedist.redistribution, "none");
  assert.deepEqual(er.sparseInit, "er");
  assert.deepEqual({ ...noRedist, redistribution: "uniform" }, full);
  assert.deepEqual({ ...er, sparseInit: "uniform" }, full);
  assert.deepEqual({ ...gradGrowth, growth: "random" }, full);
  assert.equal(gradGrowth.growth, "gradient");
  const t5 = small("table5");
  assert.deepEqual(t5.map((r) => r.config.redistribution), [
    "uniform",
    "magnitude",
    "momentum",
    "gradient",
    "none",
  ]);
  // Table 6: the 1300-epoch rows restart SNT-ASGD twice; the plain rows have no averaging
  const t6 = planSpec(TABLES.table6, "paper", { ...NO_OVERRIDES, data: () => "ptb" });
  const row = (key: string) => t6.find((r) => r.key === key)!.config;
  assert.deepEqual([
    row("onlstm-selfish-ntasgd-seed141").epochs,
    row("onlstm-selfish-ntasgd-seed141").asgdRestarts,
  ], [1000, [500]]);
  assert.deepEqual([
    row("onlstm-1300-selfish-ntasgd-seed141").epochs,
    row("onlstm-1300-selfish-ntasgd-seed141").asgdRestarts,
  ], [1300, [500, 1000]]);
  assert.deepEqual([
    row("onlstm-set-momentum-seed141").asgdRestarts,
    row("onlstm-set-momentum-seed141").lr,
  ], [[], 1.5]);
});

Deno.test("experiments: overrides narrow the grid and change every run", () => {
  const runs = small("table3", {
    methods: ["set", "selfish"],
    config: { maxSteps: 700, epochs: 3, epochSteps: null, lr: 0.5, updateEvery: 7 },
  });
  // table order kept, whatever order --methods names them in
  assert.deepEqual(runs.map((r) => `${r.method}/${r.optimizer}`), [
    "set/adam",
    "set/momentum",
    "set/ntasgd",
    "selfish/adam",
    "selfish/momentum",
    "selfish/ntasgd",
  ]);
  for (const r of runs) {
    assert.deepEqual([r.config.lr, r.config.updateEvery, r.config.maxSteps], [0.5, 7, 700]);
    assert.deepEqual([r.config.epochs, r.config.epochSteps], [3, null]);
  }
  assert.throws(
    () => small("table3", { methods: ["gmp"] }),
    (e: Error) => e instanceof ExperimentError && /gmp not part of table3/.test(e.message),
  );
  assert.throws(
    () => small("table2", { blocks: ["mos"] }),
    (e: Error) =>
      e instanceof ExperimentError && /--models: mos not part of table2/.test(e.message),
  );
  // seeds: N runs per row from the given seed; data: each corpus's directory
  const seeded = small("table2", {
    blocks: ["rhn"],
    seeds: 3,
    config: { seed: 5 },
    data: (c) => `/data/${c}`,
  });
  assert.deepEqual(seeded.length, 33);
  assert.deepEqual(seeded.slice(0, 3).map((r) => [r.key, r.config.seed, r.config.data]), [
    ["rhn-dense-adam-seed5", 5, "/data/ptb"],
    ["rhn-dense-adam-seed6", 6, "/data/ptb"],
    ["rhn-dense-adam-seed7", 7, "/data/ptb"],
  ]);
  assert.deepEqual(small("table7")[0].config.data, null);
  assert.deepEqual(small("table7", { data: (c) => c })[0].config.data, "wikitext-2");
});

const ROWS: ExperimentResult[] = [
  {
    key: "lstm-dense-adam-seed1111",
    block: "lstm",
    model: "stacked LSTM",
    method: "dense",
    variant: "",
    optimizer: "adam",
    density: 0.33,
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
    "model",
    "method",
    "variant",
    "optimizer",
    "density",
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
    "stacked LSTM",
    "dense",
    "",
    "adam",
    "0.33",
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
  assert.deepEqual(rows[2][19], 'failed: RangeError: bad "k", see\nline | two');
  assert.deepEqual(rows[2].slice(7, 14), ["", "", "", "", "", "", ""]);
  assert.deepEqual(rows[3][19], "skipped: method gmp is not registered");
  // the raw text doubles the quotes inside the quoted field
  assert.match(csv, /"failed: RangeError: bad ""k"", see\nline \| two"/);
});

Deno.test("experiments: results.md has the header, one row per run and the paper context", () => {
  const header: ResultsHeader = {
    experiment: TABLES.table2,
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
      "| stacked LSTM | dense |  | adam | 0.33 | 1111 | 12.35 | 13.50 | 1000 / 1000 | 1.000 | " +
      "1.000 | 3 | 0.4500 → 0.0050 | 12 |  |",
      // a pipe or newline in a note must not break the table
      '|  | set |  | adam |  | 1111 |  |  |  |  |  |  |  | 3 | failed: RangeError: bad "k", see line \\| two |',
      // the per-epoch validation curve of each finished run
      "| run | 1 | 2 |",
      "| lstm-dense-adam-seed1111 | 20.50 | 12.35 |",
      "Skipped (not registered): gmp.",
      "Failed: set/adam",
      "Paper context (not a test): In the paper",
    ]
  ) {
    if (!md.includes(s)) throw new Error(`results.md lacks ${JSON.stringify(s)}:\n${md}`);
  }
  const table = md.slice(0, md.indexOf("Validation perplexity at each epoch end"));
  const tableRows = table.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| model"));
  assert.deepEqual(tableRows.length, 3);
  for (const l of tableRows) assert.deepEqual(l.split(/(?<!\\)\|/).length, 17);
});

Deno.test("experiments: the runner records failures and skips and keeps going", async () => {
  const dir = await Deno.makeTempDir();
  const runs = small("table2", {
    blocks: ["lstm"],
    methods: ["dense", "gmp", "set", "selfish"],
    config: { maxSteps: 3 },
  });
  const data = { corpus: {} as never, description: "fake data" } as TrainingData;
  const dataFor = () => Promise.resolve(data);
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
      gateNames: {},
      hiddenSizes: null,
      trainFlops: c.method === "dense" ? 50 : 20,
      denseTrainFlops: 50,
      inferenceFlops: 4,
      denseInferenceFlops: 8,
    });
  };
  const header: ResultsHeader = {
    experiment: TABLES.table2,
    data: "fake",
    steps: "3",
    seed: 1,
    adapter: "none",
    date: "now",
    settings: [],
  };
  const lines: string[] = [];
  // a log left by an attempt killed before its first checkpoint: the run starts over, so does it
  const setDir = `${dir}/lstm-set-adam-seed1111`;
  await Deno.mkdir(setDir, { recursive: true });
  await Deno.writeTextFile(`${setDir}/log.csv`, "step,epoch\n100,1\n");
  const rows = await runExperiment({} as Gpu, runs, dataFor, {
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
  assert.match(lines.join("\n"), /\[2\/4\] lstm-gmp-adam-seed1111: skipped/);
  assert.match(lines.join("\n"), /\[3\/4\] lstm-set-adam-seed1111: FAILED/);
  const csv = parseCsv(await Deno.readTextFile(`${dir}/results.csv`));
  assert.deepEqual(csv.length, 5);
  const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(files, [
    "lstm-dense-adam-seed1111",
    "lstm-selfish-adam-seed1111",
    "lstm-set-adam-seed1111",
    "results.csv",
    "results.md",
  ]);
  const runFiles = [...Deno.readDirSync(`${dir}/lstm-dense-adam-seed1111`)].map((e) => e.name)
    .sort();
  assert.deepEqual(runFiles, ["config.json", "result.json", "run.json", "summary.json"]);
  const place = JSON.parse(await Deno.readTextFile(`${dir}/lstm-dense-adam-seed1111/run.json`));
  assert.deepEqual([place.block, place.model, place.method, place.corpus], [
    "lstm",
    "stacked LSTM",
    "dense",
    "ptb",
  ]);
  // the same command again: finished runs are kept, the failed one runs, from its checkpoint
  assert.deepEqual([...Deno.readDirSync(setDir)].some((e) => e.name === "log.csv"), false);
  await Deno.writeTextFile(`${setDir}/run.ckpt`, "a checkpoint");
  await Deno.writeTextFile(`${setDir}/log.csv`, "step,epoch\n100,1\n"); // the checkpoint's
  const again: TrainConfig[] = [];
  const rerun = await runExperiment({} as Gpu, runs, dataFor, {
    outDir: dir,
    available: (m) => m !== "gmp",
    header,
    quiet: true,
    log: (l) => lines.push(l),
    // the resumed run now finishes; its clock holds the 500 s its checkpoint recorded
    trainFn: ((g: Gpu, c: TrainConfig) => {
      again.push(c);
      return fakeTrain(g, { ...c, method: "selfish" })
        .then((s) => ({ ...s, method: c.method, elapsedSec: 500 }));
    }) as never,
  });
  assert.deepEqual(again.map((c) => [c.method, c.resume]), [[
    "set",
    `${dir}/lstm-set-adam-seed1111/run.ckpt`,
  ]]);
  assert.deepEqual(rerun.map((r) => r.status), ["ok", "skipped", "ok", "ok"]);
  assert.deepEqual(rerun[2].elapsedSec, 500);
  assert.match(lines.join("\n"), /lstm-set-adam-seed1111: val ppl 10.00, .* \(500 s with the/);
  assert.deepEqual(await Deno.readTextFile(`${setDir}/log.csv`), "step,epoch\n100,1\n");
  assert.deepEqual(rerun[3], rows[3]);
  assert.match(
    lines.join("\n"),
    /\[1\/4\] lstm-dense-adam-seed1111: done earlier \(val ppl 10.00\), kept/,
  );
  // a run written before a setting existed (its config lacks it, at its default) is the same run
  const cfgPath = `${dir}/lstm-dense-adam-seed1111/config.json`;
  const older = JSON.parse(await Deno.readTextFile(cfgPath));
  delete older.lrPlateau;
  await Deno.writeTextFile(cfgPath, JSON.stringify(older));
  const silent = {
    outDir: dir,
    available: () => true,
    header,
    quiet: true,
    log: () => {},
    trainFn: fakeTrain as never,
  };
  const kept = await runExperiment({} as Gpu, runs.slice(0, 1), dataFor, {
    ...silent,
    tables: false,
  });
  assert.deepEqual(kept[0], rows[0]);
  // another configuration in the same directory is refused
  await assert.rejects(
    () =>
      runExperiment(
        {} as Gpu,
        runs.map((r) => ({ ...r, config: { ...r.config, lr: 9 } })),
        dataFor,
        silent,
      ),
    (e: Error) => e instanceof ExperimentError && /another configuration/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("experiment CLI: parser rejects bad input with one clear message", () => {
  const bad: [string[], RegExp][] = [
    [[], /expected one table name/],
    [["table9"], /unknown table "table9"/],
    [["table2", "extra"], /expected one table name/],
    [["table2", "--scale", "huge"], /--scale: expected paper or small, got "huge"/],
    [["table2", "--scale", "paper"], /--scale paper trains on ptb: pass --data DIR/],
    [["table2", "--steps", "0"], /--steps: expected an integer > 0/],
    [["table2", "--epoch-steps", "1.5"], /--epoch-steps: expected an integer >= 0/],
    [["table2", "--valid-tokens", "x"], /--valid-tokens/],
    [["table2", "--steps", "2.5"], /--steps/],
    [["table2", "--nhid", "x"], /--nhid/],
    [["table2", "--density", "1.5"], /--density/],
    [["table2", "--seed", "1.5"], /--seed/],
    [["table2", "--lr", "-1"], /--lr/],
    [["table2", "--methods", "dense,bogus"], /--methods: unknown method "bogus"/],
    [["table2", "--models", "lstm,mos"], /--models: unknown model "mos" \(known: lstm, rhn\)/],
    [["table3", "--methods", "gmp"], /not part of table3/],
    [["table3", "--optimizers", "adam,rmsprop"], /--optimizers: unknown optimizer "rmsprop"/],
    [["table2", "--optimizers", "momentum"], /--optimizers: momentum not part of table2/],
    [["table2", "--bogus"], /bogus/],
  ];
  for (const [args, re] of bad) {
    assert.throws(
      () => parseExperimentArgs(args),
      (e: Error) => e instanceof ExperimentError && re.test(e.message),
      args.join(" "),
    );
  }
  const ok = parseExperimentArgs(["table2", "--nhid", "32", "--epochs", "2"]);
  assert.deepEqual(ok.scale, "small");
  assert.deepEqual(ok.overrides.config, { nhid: 32, emsize: 32, epochs: 2 });
  const pass = parseExperimentArgs(["table2", "--epoch-steps", "0", "--valid-tokens", "0"]);
  assert.deepEqual(pass.overrides.config, { epochSteps: null, validTokens: null });
  const paper = parseExperimentArgs(["table2", "--scale", "paper", "--data", "/nowhere"]);
  assert.deepEqual(
    planSpec(TABLES.table2, "paper", paper.overrides)[0].config.data,
    "/nowhere/ptb",
  );
  // list: every table at both scales with its grid's size and an estimated time
  const list = experimentList();
  assert.match(list, /table1 +Table 1/);
  assert.match(
    list,
    /table2 +small +22 runs × 800 steps, ≈ \d+\.\d TFLOP, ≈ [\d.]+ (min|h), [\d.]+ (min|h) on the synthetic corpus/,
  );
  assert.match(
    list,
    /table2 +paper +22 runs × 132800–664000 steps, ≈ \d+\.\d TFLOP, ≈ [\d.]+ days/,
  );
  assert.match(list, /table3 +small +15 runs × 800 steps/);
  for (const t of ["table4", "table5", "table6", "table7", "table8"]) {
    assert.match(list, new RegExp(`${t} +paper `));
    assert.match(list, new RegExp(`${t} +small `));
  }
  // FLOPs-bound (no launch cost): twice the rate, half the time; launch-bound (a slow rate's
  // FLOPs take no time against a second per cell step): every window of every pass pays
  const at = (flops: number, cellSeconds: number) =>
    experimentCost(TABLES.table3, "small", NO_OVERRIDES, {
      flops,
      cellSeconds,
      evalCellFraction: 0.5,
    }).seconds;
  assert.ok(Math.abs(at(2e10, 0) / at(1e10, 0) - 0.5) < 1e-12);
  assert.ok(at(1e10, 1e-2) > at(1e10, 0));
  const windows = (tokens: number, batch: number) => Math.ceil(tokens / (batch * 35));
  // the small LSTM: 2 cells × 35 steps per window; 800 steps, then at batch 20 8 validations
  // of 20,000 tokens, the best weights' full one (73,760 tokens) and the test (82,430)
  const launches = 70 * (800 + 0.5 * (8 * windows(20000, 20) + windows(73760, 20) +
        windows(82430, 20)));
  assert.ok(Math.abs(at(1e3 * 1e30, 1) / 15 - launches) < 1e-6, `${at(1e33, 1) / 15}`);
  // --optimizers narrows the grid, kept in the table's order
  const t3 = parseExperimentArgs(["table3", "--optimizers", "ntasgd,momentum"]);
  const runs = planSpec(TABLES.table3, "small", t3.overrides);
  assert.deepEqual(
    runs.filter((r) => r.method === "set").map((r) => r.optimizer),
    ["momentum", "ntasgd"],
  );
  assert.deepEqual(runs.length, 10);
  // --seeds N: N runs per row, seeds seed .. seed + N - 1
  const seeded = parseExperimentArgs(["table2", "--seeds", "3", "--seed", "5"]);
  const grid = planSpec(TABLES.table2, "small", seeded.overrides);
  assert.deepEqual(grid.length, 66);
  assert.deepEqual(grid.slice(0, 3).map((r) => [r.method, r.config.seed]), [
    ["dense", 5],
    ["dense", 6],
    ["dense", 7],
  ]);
  assert.throws(() => parseExperimentArgs(["table2", "--seeds", "0"]), /--seeds/);
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
      [["table2", "--steps", "-4", "--out", `${dir}/o`], "--steps"],
      [["nope", "--out", `${dir}/o`], "unknown table"],
      [["table2", "--data", `${dir}/missing`, "--out", `${dir}/o`], "missing"],
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
    assert.match(md, /- steps: lstm: 4 per run: 2 epochs of 2 steps/);
    assert.match(md, /connectivity updates: 1 per dynamic run, after steps 2 /);
    assert.ok(md.includes("| stacked LSTM | selfish |  | adam | 0.33 |"), md);
    for (const f of ["lstm-dense-adam-seed1111", "lstm-selfish-adam-seed1111"]) {
      const s = JSON.parse(await Deno.readTextFile(`${out}/${f}/summary.json`));
      assert.deepEqual(s.steps, 4);
      assert.deepEqual(s.config.nhid, 16);
      // what the report's gate plot labels a sparse run's row blocks with
      assert.deepEqual(
        s.gate_names?.["rnn.weight_hh_l0"],
        f.includes("selfish") ? ["i", "f", "g", "o"] : undefined,
      );
    }
    assert.deepEqual([...Deno.readDirSync(out)].filter((e) => e.name.endsWith(".tmp")).length, 0);
    const runFiles = [...Deno.readDirSync(`${out}/lstm-selfish-adam-seed1111`)].map((e) => e.name)
      .sort();
    assert.deepEqual(runFiles, [
      "config.json",
      "log.csv",
      "result.json",
      "run.ckpt",
      "run.json",
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
  const runs = small("table2", { blocks: ["lstm"], storage: "csr" });
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
    small("table2").every((r) => r.config.storage === "masked"),
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
    const first = `${out}/lstm-dense-adam-seed1111/result.json`;
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
    const log = await Deno.readTextFile(`${out}/lstm-dense-adam-seed1111/worker.log`);
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
    // the grid beside it, for the report to mark tasks not started yet
    const plan = JSON.parse(await Deno.readTextFile(`${out}/plan.json`));
    assert.deepEqual(plan.runs.map((r: { method: string }) => r.method), [
      "dense",
      "static-uniform",
      "selfish",
    ]);
    await Deno.remove(dir, { recursive: true });
  },
});
