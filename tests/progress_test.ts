import { CsvLog, LOG_COLUMNS, progressLine } from "../pipeline/progress.ts";
import { csvField, toCsv } from "../pipeline/csv.ts";

Deno.test("progressLine shows epoch, step, loss, perplexity, lr, rate and ETA", () => {
  const line = progressLine({
    epoch: 2,
    step: 25,
    totalSteps: 100,
    loss: Math.log(150),
    lr: 40,
    tokensPerSec: 1234.4,
  }, 10);
  for (
    const part of [
      "epoch 2",
      "step 25/100",
      "loss 5.011",
      "ppl 150.00",
      "lr 40",
      "1234 tok/s",
      "ETA 0m30s",
    ]
  ) {
    if (!line.includes(part)) throw new Error(`"${line}" lacks "${part}"`);
  }
  if (
    !progressLine({ epoch: 1, step: 0, totalSteps: 9, loss: 1, lr: 1, tokensPerSec: 0 }, 0)
      .endsWith("ETA ?")
  ) {
    throw new Error("ETA before the first step should be unknown");
  }
});

Deno.test("csv fields quote commas, quotes and newlines (RFC 4180)", () => {
  const cases: [unknown, string][] = [
    [1.5, "1.5"],
    ["a,b", '"a,b"'],
    ['say "x"', '"say ""x"""'],
    ["l1\nl2", '"l1\nl2"'],
    [null, ""],
    [undefined, ""],
    [true, "true"],
  ];
  for (const [v, want] of cases) {
    const got = csvField(v as never);
    if (got !== want) throw new Error(`${JSON.stringify(v)} → ${got}, expected ${want}`);
  }
  if (toCsv(["a", "b"], [{ a: 1, b: "x,y" }, { a: 2 }]) !== 'a,b\n1,"x,y"\n2,\n') {
    throw new Error("toCsv");
  }
});

Deno.test("CsvLog writes the header once and appends rows across reopenings", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/log.csv`;
  const row = {
    step: 1,
    epoch: 1,
    lr: 20,
    "train_loss": 5.5,
    "val_ppl": 200.5,
    "tokens_per_sec": 1000,
    "elapsed_sec": 3,
    "density": 0.33,
    "train_flops": 1e12,
    "train_flops_x_dense": 0.33,
  };
  await (await CsvLog.open(path)).append(row);
  await (await CsvLog.open(path)).append({ ...row, step: 2 });
  const lines = (await Deno.readTextFile(path)).trim().split("\n");
  if (lines.length !== 3 || lines[0] !== LOG_COLUMNS.join(",") || !lines[2].startsWith("2,1,20,")) {
    throw new Error(lines.join(" | "));
  }
  await Deno.remove(dir, { recursive: true });
});
