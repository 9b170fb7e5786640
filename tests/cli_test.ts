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
