import { readCheckpoint, writeCheckpoint } from "../pipeline/checkpoint.ts";

const CLI = new URL("../pipeline/cli.ts", import.meta.url).pathname;

async function runCli(args: string[]): Promise<{ code: number; out: string }> {
  const p = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: p.code, out: dec.decode(p.stdout) + dec.decode(p.stderr) };
}

Deno.test("train CLI: bad data exits 2 naming the file and line, and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/train.txt`, "a b c\nb c a\n");
  await Deno.writeTextFile(`${dir}/valid.txt`, "a b\n");
  await Deno.writeTextFile(`${dir}/test.txt`, "a b\nc zebra\n");
  const summary = `${dir}/summary.json`, log = `${dir}/log.csv`, save = `${dir}/run.ckpt`;
  const outputs = ["--summary", summary, "--log", log, "--save", save];
  const cases: [string[], string[]][] = [
    [["--data", `${dir}/nowhere`], ["nowhere", "train.txt"]],
    [["--data", dir], [`${dir}/test.txt:2`, "zebra"]],
    [["--nhid", "-3"], ["--nhid"]],
    [["--resume", `${dir}/missing.ckpt`], ["missing.ckpt"]],
  ];
  for (const [args, texts] of cases) {
    const r = await runCli([...args, ...outputs, "--max-steps", "1"]);
    if (r.code !== 2) throw new Error(`${args.join(" ")}: exit ${r.code}\n${r.out}`);
    for (const t of texts) {
      if (!r.out.includes(t)) throw new Error(`${args.join(" ")}: no "${t}" in\n${r.out}`);
    }
  }
  await Deno.writeFile(`${dir}/valid.txt`, new Uint8Array([0x61, 0x0a, 0xff, 0xfe, 0x0a]));
  const r = await runCli(["--data", dir, ...outputs]);
  if (r.code !== 2 || !r.out.includes(`${dir}/valid.txt:2`)) throw new Error(`non-UTF-8: ${r.out}`);
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  if (names.join() !== "test.txt,train.txt,valid.txt") throw new Error(`files written: ${names}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train CLI: Ctrl-C saves a resumable checkpoint and exits with code 130", async () => {
  const dir = await Deno.makeTempDir();
  const ckpt = `${dir}/run.ckpt`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      CLI,
      "--save",
      ckpt,
      "--log-interval",
      "5",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Interrupt once the first progress line shows the loop is running.
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("step 5/")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  child.kill("SIGINT");
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  const status = await child.status;
  await child.stderr.cancel();
  if (status.code !== 130) throw new Error(`exit ${status.code}:\n${out}`);
  if (!out.includes(`saved run state to ${ckpt}`)) throw new Error(out);
  const meta = (await readCheckpoint(ckpt)).meta as { step: number };
  if (!(meta.step >= 5)) throw new Error(`checkpoint at step ${meta.step}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train CLI: --stop-after saves and exits 0; resume needs the same plan and version", async () => {
  const dir = await Deno.makeTempDir();
  const ckpt = `${dir}/run.ckpt`;
  const small = ["--nhid", "8", "--emsize", "8", "--batch-size", "4", "--bptt", "4"];
  const stop = await runCli([...small, "--max-steps", "6", "--stop-after", "3", "--save", ckpt]);
  if (stop.code !== 0 || !stop.out.includes("stopped after step 3 of 6 (--stop-after)")) {
    throw new Error(`exit ${stop.code}:\n${stop.out}`);
  }
  // another plan is refused, naming the field; the checkpoint's own plan finishes the run
  const other = await runCli([...small, "--max-steps", "7", "--resume", ckpt]);
  if (other.code !== 2 || !other.out.includes("totalSteps 6 vs 7")) {
    throw new Error(`other plan: exit ${other.code}:\n${other.out}`);
  }
  // a run state from before plans were recorded (version 1) is refused by its version
  const { meta, tensors } = await readCheckpoint(ckpt);
  const old = `${dir}/v1.ckpt`;
  const { version: _v, plan: _p, ...v1 } = meta as Record<string, unknown>;
  await writeCheckpoint(old, { meta: v1, tensors });
  const refused = await runCli([...small, "--max-steps", "6", "--resume", old]);
  if (refused.code !== 2 || !refused.out.includes("run-state version 1")) {
    throw new Error(`version 1: exit ${refused.code}:\n${refused.out}`);
  }
  // and one of the stacked-LSTM-only format of the earlier builds, by its format name
  const lstmOnly = `${dir}/lstm-lm.ckpt`;
  await writeCheckpoint(lstmOnly, {
    meta: { ...v1, format: "selfish-rnn/lstm-lm", version: 2 },
    tensors,
  });
  const old2 = await runCli([...small, "--max-steps", "6", "--resume", lstmOnly]);
  if (old2.code !== 2 || !old2.out.includes("format selfish-rnn/lstm-lm, run-state version 2")) {
    throw new Error(`lstm-lm format: exit ${old2.code}:\n${old2.out}`);
  }
  const done = await runCli([...small, "--max-steps", "6", "--resume", ckpt]);
  if (done.code !== 0 || !done.out.includes("resumed from") || !done.out.includes("test ppl")) {
    throw new Error(`resume: exit ${done.code}:\n${done.out}`);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train CLI: --dry-run prints the parameter table, writes --summary, trains nothing", async () => {
  const dir = await Deno.makeTempDir();
  const summary = `${dir}/dry.json`, log = `${dir}/log.csv`;
  const r = await runCli(["--dry-run", "--method", "selfish", "--summary", summary, "--log", log]);
  if (r.code !== 0 || !r.out.includes("| rnn.weight_hh_l0 | 256 × 64 | [64, 64, 64, 64] |")) {
    throw new Error(`exit ${r.code}:\n${r.out}`);
  }
  const s = JSON.parse(await Deno.readTextFile(summary));
  if (!s.dry_run || !(s.active_parameters < s.parameters) || s.tensors.length !== 7) {
    throw new Error(JSON.stringify(s));
  }
  const names = [...Deno.readDirSync(dir)].map((e) => e.name);
  if (names.join() !== "dry.json") throw new Error(`files: ${names}`);
  const bad = await runCli(["--dry-run", "--preset", "nope"]);
  if (bad.code !== 2 || !bad.out.includes("unknown preset")) throw new Error(bad.out);
  await Deno.remove(dir, { recursive: true });
});
