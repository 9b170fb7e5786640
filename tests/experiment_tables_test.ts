/**
 * The `--scale paper` specs against the paper's settings, field by field: the numbers of
 * spec §2.1–2.4 and §14 (written out here, independently of the presets), §5.5's Table 3
 * Adam, §5.4's ON-LSTM restarts and the tables' grids (§7, §8, §11), checked on every paper
 * run of every table and on the families' presets themselves.
 */

import assert from "node:assert/strict";
import { type TrainConfig, trainConfig } from "../pipeline/config.ts";
import { NO_OVERRIDES, type PlannedRun, planSpec } from "../pipeline/experiment/spec.ts";
import { TABLES } from "../pipeline/experiment/tables.ts";
import { optimizerSettings } from "../pipeline/run/settings.ts";
import { METHOD_NAMES } from "../pipeline/sparsity/method.ts";

type Fields = Partial<Record<keyof TrainConfig, unknown>>;

/** Spec §2.1: the README command of the stacked LSTM. */
const LSTM: Fields = {
  model: "lstm",
  emsize: 1500,
  nhid: 1500,
  nlayers: 2,
  tied: false,
  batchSize: 20,
  bptt: 35,
  variableBptt: false,
  lr: 40,
  clip: 0.25,
  weightDecay: 1.2e-6,
  dropout: 0.65,
  epochs: 100,
  density: 0.33,
  sparseInit: "uniform",
  deathRate: 0.8,
  deathRateMin: 0.005,
  nonmono: 5,
  seed: 1111,
  evalBatchSize: 20,
  updateEvery: 0,
  epochSteps: null,
  maxSteps: null,
};

/** Spec §2.2 and §14.1: the RHN's README command. */
const RHN: Fields = {
  model: "rhn",
  emsize: 830,
  nhid: 830,
  nlayers: 1,
  tied: true,
  batchSize: 20,
  bptt: 35,
  lr: 15,
  clip: 0.25,
  weightDecay: 1.2e-6,
  epochs: 500,
  dropout: 0.65,
  dropouth: 0.25,
  dropouti: 0.65,
  dropoute: 0.2,
  density: 0.472,
  deathRate: 0.5,
  nonmono: 5,
  seed: 42,
  evalBatchSize: 20,
};

/** Spec §2.3 and §14.2: ON-LSTM's README command and script defaults. */
const ONLSTM: Fields = {
  model: "onlstm",
  emsize: 400,
  nhid: 1150,
  nlayers: 3,
  tied: true,
  batchSize: 20,
  bptt: 70,
  variableBptt: true,
  lr: 15,
  clip: 0.25,
  weightDecay: 1.2e-6,
  dropout: 0.45,
  dropouth: 0.3,
  dropouti: 0.5,
  dropoute: 0.1,
  wdrop: 0.45,
  alpha: 2,
  beta: 1,
  epochs: 1000,
  asgdRestarts: [500],
  density: 0.45,
  deathRate: 0.5,
  nonmono: 5,
  seed: 141,
  evalBatchSize: 10,
  testBatchSize: 1,
};

/** Spec §2.4 and §14.3: zihangdai/mos's WT2 command. */
const MOS: Fields = {
  model: "awd-mos",
  emsize: 300,
  nhid: 1150,
  nlayers: 3,
  tied: true,
  batchSize: 15,
  smallBatchSize: 5,
  bptt: 70,
  variableBptt: true,
  bpttCap: 90,
  lr: 15,
  clip: 0.25,
  weightDecay: 1.2e-6,
  dropout: 0.4,
  dropouth: 0.2,
  dropouti: 0.55,
  dropoute: 0.1,
  wdrop: 0.5,
  alpha: 2,
  beta: 1,
  epochs: 1000,
  density: 0.45,
  deathRate: 0.5,
  nonmono: 5,
  seed: 1882,
  evalBatchSize: 10,
  testBatchSize: 1,
};

/** The family flags of each model (spec §2.2–2.4). */
const MODEL_FLAGS: Record<string, Record<string, unknown>> = {
  lstm: {},
  rhn: { depth: 10 },
  onlstm: { "chunk-size": 10, "gate-blocks": "gates" },
  "awd-mos": { experts: 15, nhidlast: 650, dropoutl: 0.29 },
};

const BY_MODEL: Record<string, { fields: Fields; preset: string }> = {
  lstm: { fields: LSTM, preset: "ptb-lstm-large" },
  rhn: { fields: RHN, preset: "ptb-rhn" },
  onlstm: { fields: ONLSTM, preset: "ptb-onlstm" },
  "awd-mos": { fields: MOS, preset: "wt2-mos" },
};

function checkFields(where: string, config: TrainConfig, fields: Fields): void {
  for (const [k, want] of Object.entries(fields)) {
    assert.deepEqual(config[k as keyof TrainConfig], want, `${where}: ${k}`);
  }
  for (const [k, want] of Object.entries(MODEL_FLAGS[config.model])) {
    assert.deepEqual(config.modelFlags[k], want, `${where}: --${k}`);
  }
}

/** What a row's optimizer and variant change from the model's command, by spec section. */
function expected(run: PlannedRun): Fields {
  const { fields } = BY_MODEL[run.config.model];
  const base: Fields = {
    ...fields,
    method: run.method,
    optimizer: run.optimizer,
    lrPlateau: 0,
  };
  if (run.optimizer === "adam") {
    // spec §5.5: the code's Table 3 Adam (ε is optimizerSettings', checked below)
    Object.assign(base, {
      lr: 1e-3,
      adamBeta1: 0,
      lrPlateau: 0.5,
      lrPlateauPatience: 2,
      asgdRestarts: [],
    });
  } else if (run.optimizer === "momentum") {
    // inferred (spec §5.5): momentum 0.9 at a tenth of the SGD lr; no averaging to restart
    Object.assign(base, { lr: (fields.lr as number) / 10, momentum: 0.9, asgdRestarts: [] });
  }
  if (run.block === "onlstm-1300") Object.assign(base, { epochs: 1300, asgdRestarts: [500, 1000] });
  if (run.variant?.label.startsWith("redistribution ")) {
    base.redistribution = run.variant.label.slice("redistribution ".length);
  }
  if (run.variant?.key === "no-redistribution") base.redistribution = "none";
  if (run.variant?.key === "er-init") base.sparseInit = "er";
  if (run.variant?.key === "gradient-growth") base.growth = "gradient";
  // spec §7.7: Wen et al.'s λ 0.00245 at lr 1.0, the same shrink per step at the preset's lr
  if (run.method === "iss") base.issLambda = 0.00245 / (fields.lr as number);
  return base;
}

Deno.test("paper specs: the families' presets are the paper's commands, field by field", () => {
  for (const [model, { fields, preset }] of Object.entries(BY_MODEL)) {
    const c = trainConfig({ preset });
    checkFields(preset, c, { ...fields, method: "selfish", optimizer: "ntasgd" });
    assert.deepEqual(c.model, model);
  }
});

Deno.test("paper specs: every run of every table has the paper's settings, field by field", () => {
  let checked = 0;
  for (const spec of Object.values(TABLES)) {
    for (const run of planSpec(spec, "paper", NO_OVERRIDES)) {
      const where = `${spec.name} ${run.key}`;
      checkFields(where, run.config, expected(run));
      assert.deepEqual(run.corpus, run.config.model === "awd-mos" ? "wikitext-2" : "ptb", where);
      const adam = optimizerSettings(run.config).adam;
      assert.deepEqual(adam, { beta1: run.config.adamBeta1, beta2: 0.999, eps: 1e-9 }, where);
      checked++;
    }
  }
  assert.deepEqual(checked, 22 + 15 + 20 + 5 + 10 + 7 + 22);
});

Deno.test("paper specs: each table's grid", () => {
  const plan = (name: string) => planSpec(TABLES[name], "paper", NO_OVERRIDES);
  const rows = (name: string) => plan(name).map((r) => `${r.block} ${r.method} ${r.optimizer}`);
  // Table 2 (and 8, its FLOPs): every method on both PTB models, SNT-ASGD throughout
  const t2 = plan("table2");
  assert.deepEqual(t2.map((r) => r.method), [...METHOD_NAMES, ...METHOD_NAMES]);
  assert.deepEqual(new Set(t2.map((r) => r.optimizer)), new Set(["ntasgd"]));
  assert.deepEqual(plan("table8").map((r) => r.key), t2.map((r) => r.key));
  // Table 3: methods × Adam, momentum SGD, SNT-ASGD on the stacked LSTM
  const t3 = plan("table3");
  assert.deepEqual(new Set(t3.map((r) => r.block)), new Set(["lstm"]));
  assert.deepEqual(t3.length, 5 * 3);
  // Table 4: Selfish-RNN's ablations on all four models
  assert.deepEqual(
    [...new Set(plan("table4").map((r) => r.config.model))],
    ["lstm", "rhn", "onlstm", "awd-mos"],
  );
  // Table 5: the regrowth splits of spec §8
  assert.deepEqual(plan("table5").map((r) => r.config.redistribution), [
    "uniform",
    "magnitude",
    "momentum",
    "gradient",
    "none",
  ]);
  // Table 6 (spec §11.1): Dense/RigL(SNT-ASGD)/Selfish at 1000 and 1300 epochs, the plain DST rows
  assert.deepEqual(rows("table6"), [
    "onlstm set momentum",
    "onlstm dsr momentum",
    "onlstm snfs momentum",
    "onlstm rigl momentum",
    "onlstm dense ntasgd",
    "onlstm rigl ntasgd",
    "onlstm selfish ntasgd",
    "onlstm-1300 dense ntasgd",
    "onlstm-1300 rigl ntasgd",
    "onlstm-1300 selfish ntasgd",
  ]);
  // Table 7 (spec §11.1): the same rows on MoS, one length
  assert.deepEqual(rows("table7"), [
    "mos set momentum",
    "mos dsr momentum",
    "mos snfs momentum",
    "mos rigl momentum",
    "mos dense ntasgd",
    "mos rigl ntasgd",
    "mos selfish ntasgd",
  ]);
  // Table 1 is a page
  assert.ok(TABLES.table1.page?.includes("| Selfish-RNN | magnitude (joint over gates)"));
});
