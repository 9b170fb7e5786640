import { ConfigError, DEFAULTS, parseTrainArgs, PRESETS, trainConfig } from "../pipeline/config.ts";
import { parameterTable, parameterTableText } from "../pipeline/dry_run.ts";

async function expectConfigError(argv: string[], text: string): Promise<void> {
  try {
    await parseTrainArgs(argv);
  } catch (e) {
    if (e instanceof ConfigError && e.message.includes(text)) return;
    throw new Error(`expected a ConfigError mentioning "${text}", got ${e}`);
  }
  throw new Error(`${argv.join(" ")} was accepted`);
}

Deno.test("parseTrainArgs: no arguments give the defaults", async () => {
  const c = await parseTrainArgs([]);
  if (JSON.stringify(c) !== JSON.stringify(DEFAULTS)) throw new Error(JSON.stringify(c));
});

Deno.test("parseTrainArgs: the paper's stacked-LSTM preset and flag overrides", async () => {
  const c = await parseTrainArgs(["--preset", "ptb-lstm-large", "--lr", "30", "--tied"]);
  if (PRESETS["ptb-lstm-large"].family !== "lstm" || c.model !== "lstm") {
    throw new Error(`family ${PRESETS["ptb-lstm-large"].family}, model ${c.model}`);
  }
  if (
    c.nhid !== 1500 || c.dropout !== 0.65 || c.epochs !== 100 || c.optimizer !== "ntasgd" ||
    c.batchSize !== 20 || c.weightDecay !== 1.2e-6 || c.lr !== 30 || !c.tied
  ) {
    throw new Error(JSON.stringify(c));
  }
});

Deno.test("parseTrainArgs: defaults < preset < config file < flags", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/run.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({ preset: "ptb-lstm-small", "batch-size": 32, lr: 5 }),
  );
  const c = await parseTrainArgs(["--config", path, "--lr", "7"]);
  if (c.nhid !== 200 || c.batchSize !== 32 || c.lr !== 7) throw new Error(JSON.stringify(c));
  await Deno.writeTextFile(path, JSON.stringify({ "batch-sz": 32 }));
  await expectConfigError(["--config", path], `${path}: batch-sz: unknown setting`);
  await Deno.writeTextFile(path, "{ not json");
  await expectConfigError(["--config", path], `--config ${path}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseTrainArgs: unknown flags and bad values are errors naming the flag", async () => {
  await expectConfigError(["--hidden", "200"], "hidden");
  await expectConfigError(["--nhid", "0"], "--nhid: expected an integer > 0");
  await expectConfigError(["--nhid", "2.5"], "--nhid");
  await expectConfigError(["--lr", "fast"], "--lr: expected a number");
  await expectConfigError(["--dropout", "1"], "--dropout: expected a number in [0, 1)");
  await expectConfigError(["--optimizer", "rmsprop"], "--optimizer: expected one of sgd");
  await expectConfigError(["--preset", "huge"], "unknown preset");
  await expectConfigError(["--tied", "--emsize", "10", "--nhid", "20"], "--tied");
  await expectConfigError(["positional"], "positional");
  await expectConfigError(["--stop-after=-1"], "--stop-after: expected an integer >= 0");
  await expectConfigError(["--stop-after", "1.5"], "--stop-after");
  await expectConfigError(
    ["--init-from", "m.safetensors", "--resume", "run.ckpt"],
    "--init-from and --resume",
  );
  await expectConfigError(["--epoch-steps", "1.5"], "--epoch-steps");
  await expectConfigError(["--valid-tokens", "x"], "--valid-tokens");
  await expectConfigError(["--inactive-state", "dense"], "--inactive-state: expected one of auto");
  await expectConfigError(
    ["--inactive-state", "keep", "--storage", "csr", "--method", "selfish"],
    "needs --storage masked",
  );
  await expectConfigError(
    ["--inactive-state", "clear", "--method", "snfs", "--optimizer", "momentum"],
    "cannot train --method snfs",
  );
  await expectConfigError(["--growth", "momentum"], "--growth: expected one of random");
  await expectConfigError(
    ["--growth", "gradient", "--method", "set"],
    "--growth gradient applies to --method selfish; set has its own growth rule",
  );
  await expectConfigError(
    ["--growth", "gradient", "--method", "selfish", "--storage", "csr"],
    "cannot train --method selfish with --growth gradient: gradient growth reads the dense",
  );
  const c = await parseTrainArgs(["--growth", "gradient", "--method", "selfish"]);
  if (c.growth !== "gradient" || DEFAULTS.growth !== "random") throw new Error(c.growth);
});

Deno.test("parseTrainArgs: the plan's flags and --stop-after", async () => {
  const c = await parseTrainArgs([
    "--max-steps",
    "200",
    "--epoch-steps",
    "50",
    "--stop-after",
    "120",
    "--valid-tokens",
    "5000",
  ]);
  if (
    c.maxSteps !== 200 || c.epochSteps !== 50 || c.stopAfter !== 120 || c.validTokens !== 5000
  ) throw new Error(JSON.stringify(c));
});

Deno.test("trainConfig: settings by flag name, with the CLI's defaults, presets and checks", () => {
  const c = trainConfig({ preset: "ptb-lstm-small", lr: 10, "max-steps": 50 });
  if (c.nhid !== 200 || c.lr !== 10 || c.maxSteps !== 50 || c.model !== "lstm") {
    throw new Error(JSON.stringify(c));
  }
  if (JSON.stringify(trainConfig()) !== JSON.stringify(DEFAULTS)) throw new Error("defaults");
  for (
    const [settings, text] of [
      [{ bogus: 1 }, "setting bogus: unknown setting"],
      [{ nhid: 0 }, "setting nhid: expected an integer > 0"],
      [{ model: "gru" }, "expected one of"],
      [{ tied: true, emsize: 10, nhid: 20 }, "--tied needs --emsize equal to --nhid"],
      [{ dropouti: 0.3 }, "needs --locked-dropout: the stacked LSTM's standard dropout"],
    ] as const
  ) {
    try {
      trainConfig(settings);
      throw new Error(`${JSON.stringify(settings)} accepted`);
    } catch (e) {
      if (!(e instanceof ConfigError) || !e.message.includes(text)) throw e;
    }
  }
});

Deno.test("dry run: the paper's LSTM (66,034,000, 21.8M active) and RHN (23,484,060, 11.1M)", async () => {
  const c = await parseTrainArgs(["--preset", "ptb-lstm-large"]);
  const t = parameterTable(c, 10000);
  if (t.parameters !== 66_034_000) throw new Error(`${t.parameters} parameters`);
  if (Math.abs(t.activeParameters - 21.8e6) > 0.05e6) throw new Error(`${t.activeParameters}`);
  const hh = t.rows.find((r) => r.name === "rnn.weight_hh_l0")!;
  if (hh.blocks.join() !== "1500,1500,1500,1500" || !hh.sparse || hh.macs !== 4 * 1500 * 1500) {
    throw new Error(JSON.stringify(hh));
  }
  const bias = t.rows.find((r) => r.name === "decoder.bias")!;
  if (bias.sparse || bias.density !== 1) throw new Error(JSON.stringify(bias));
  // the dense baseline and small dense at the same budget
  const dense = parameterTable(
    await parseTrainArgs(["--preset", "ptb-lstm-large", "--method", "dense"]),
    10000,
  );
  if (dense.activeParameters !== 66_034_000) throw new Error(`dense ${dense.activeParameters}`);
  const small = parameterTable(
    await parseTrainArgs(["--preset", "ptb-lstm-large", "--method", "small-dense"]),
    10000,
  );
  if (!(small.parameters <= t.activeParameters && small.parameters > 0.97 * t.activeParameters)) {
    throw new Error(`small dense ${small.parameters} vs ${t.activeParameters}`);
  }
  if (!parameterTableText(t).includes("66,034,000 dense, 21,8")) {
    throw new Error(parameterTableText(t));
  }
});

Deno.test("dry run: the paper's ON-LSTM has 25,232,180 parameters, 11.3M sparse ones active", async () => {
  const c = await parseTrainArgs(["--preset", "ptb-onlstm"]);
  const t = parameterTable(c, 10000);
  if (t.family !== "onlstm" || t.parameters !== 25_232_180) throw new Error(`${t.parameters}`);
  // 0.45 of the 25,199,500 weights of the sparse tensors, each tensor's budget rounded
  if (Math.abs(t.activeSparseParameters - 11_339_775) > 10) {
    throw new Error(`${t.activeSparseParameters} active sparse`);
  }
  if (t.activeParameters - t.activeSparseParameters !== 32_680) throw new Error("biases");
  const text = parameterTableText(t);
  if (!text.includes("25,232,180 dense") || !text.includes("= 11.3M in the sparse tensors")) {
    throw new Error(text);
  }
  const small = parameterTable(
    await parseTrainArgs(["--preset", "ptb-onlstm", "--method", "small-dense"]),
    10000,
  );
  if (!(small.parameters <= t.activeParameters && small.parameters > 0.95 * t.activeParameters)) {
    throw new Error(`small dense ${small.parameters} vs ${t.activeParameters}`);
  }
});

Deno.test("dry run: the paper's MoS has 34,909,528 parameters, 15.7M active; one [N, V] logits buffer", async () => {
  const c = await parseTrainArgs(["--preset", "wt2-mos"]);
  const t = parameterTable(c, 33278);
  if (t.family !== "awd-mos" || t.parameters !== 34_909_528) throw new Error(`${t.parameters}`);
  if (Math.abs(t.activeSparseParameters - 0.45 * 34_848_150) > 20) {
    throw new Error(`${t.activeSparseParameters} active sparse`);
  }
  // the step's rows are one --small-batch-size slice of the longest window
  const N = c.smallBatchSize! * (c.bpttCap ?? c.bptt + 40);
  const logits = t.head.buffers.find((b) => b.name === "logits")!;
  if (logits.shape.join() !== `${N},33278` || logits.bytes !== 4 * N * 33278) {
    throw new Error(JSON.stringify(logits));
  }
  // whatever the number of experts, the head holds one expert's logits at a time
  const sum = t.head.buffers.reduce((n, b) => n + b.bytes, 0);
  if (sum !== t.head.bytes || sum > 2 * logits.bytes) throw new Error(`${sum} head bytes`);
  const text = parameterTableText(t);
  if (!text.includes(`logits [${N}, 33278]`)) throw new Error(text);
});
