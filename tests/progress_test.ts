import { CsvLog, evaluationProgress, LOG_COLUMNS, progressLine } from "../pipeline/progress.ts";
import { csvField, toCsv } from "../pipeline/csv.ts";

Deno.test("progressLine shows epoch, step, loss, perplexity, lr, rate and ETA", () => {
  const line = progressLine({
    epoch: 2,
    step: 25,
    totalSteps: 100,
    loss: Math.log(150),
    lr: 40,
    tokensPerSec: 1234.4,
    seconds: 10,
  });
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
    !progressLine({ epoch: 1, step: 0, totalSteps: 9, loss: 1, lr: 1, tokensPerSec: 0, seconds: 0 })
      .endsWith("ETA ?")
  ) {
    throw new Error("ETA before the first step should be unknown");
  }
});

Deno.test("evaluationProgress: a line once 10 s have passed since the last, with the time left", () => {
  let t = 1000;
  const lines: string[] = [];
  const hear = evaluationProgress((m) => lines.push(m), "test", 10, () => t);
  t = 9000;
  hear(100, 1000); // 8 s in: nothing yet
  t = 21_000;
  hear(400, 1000); // 20 s for 400 windows: 30 s for the other 600
  t = 25_000;
  hear(500, 1000); // 4 s after the last line
  t = 31_000;
  hear(999, 1000);
  if (
    JSON.stringify(lines) !== JSON.stringify([
      "test: 40% (400/1000 windows), 0m30s left",
      "test: 99% (999/1000 windows), 0m00s left",
    ])
  ) throw new Error(JSON.stringify(lines));
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

Deno.test("CsvLog: a run resumed at step S drops the rows logged after S, once", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/log.csv`;
  const row = (step: number) => ({
    step,
    epoch: step / 100,
    lr: 20,
    "train_loss": 5,
    "val_ppl": 100,
    "tokens_per_sec": 1000,
    "elapsed_sec": step / 10,
    "density": 1,
    "train_flops": 1e12,
    "train_flops_x_dense": 1,
  });
  const log = await CsvLog.open(path);
  for (const step of [100, 200, 300]) await log.append(row(step));
  // killed after step 300's row, before its checkpoint: the resume starts from step 200
  await (await CsvLog.open(path, 200)).append(row(300));
  const steps = (await Deno.readTextFile(path)).trim().split("\n").slice(1).map((l) =>
    l.split(",")[0]
  );
  if (steps.join() !== "100,200,300") throw new Error(`steps ${steps.join()}`);
  // a fresh open (no resume) keeps everything, as before
  await CsvLog.open(path);
  const again = (await Deno.readTextFile(path)).trim().split("\n").length;
  if (again !== 4) throw new Error(`${again} lines`);
  await Deno.remove(dir, { recursive: true });
});
