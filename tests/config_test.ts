import { ConfigError, DEFAULTS, parseTrainArgs, PRESETS } from "../pipeline/config.ts";

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
  await expectConfigError(["--stop-after", "0"], "--stop-after: expected an integer > 0");
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
