import { deepEqual, equal, ok } from "node:assert/strict";
import { decodeSafetensors } from "../pipeline/model_file/safetensors.ts";
import { badSafetensorsFiles } from "./_safetensors_util.ts";
import { tinyData } from "./_train_util.ts";

const dir = (name: string) => new URL(`../pipeline/${name}`, import.meta.url).pathname;

async function run(cli: string, args: string[]): Promise<{ code: number; out: string }> {
  const p = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", dir(cli), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: p.code, out: dec.decode(p.stdout) + dec.decode(p.stderr) };
}

async function ok0(cli: string, args: string[]): Promise<string> {
  const r = await run(cli, args);
  if (r.code !== 0) throw new Error(`${cli} ${args.join(" ")}: exit ${r.code}\n${r.out}`);
  return r.out;
}

/** The tiny synthetic corpus as a data directory of text files. */
async function writeCorpus(to: string): Promise<number> {
  const { corpus } = tinyData();
  for (const split of ["train", "valid", "test"] as const) {
    const words = [...corpus[split]].map((id) => corpus.vocab.word(id));
    await Deno.writeTextFile(
      `${to}/${split}.txt`,
      words.join(" ").replaceAll(" <eos> ", "\n").replace(/ ?<eos>$/, "\n"),
    );
  }
  return corpus.vocab.size;
}

const json = async (path: string) => JSON.parse(await Deno.readTextFile(path));
const files = (d: string) => [...Deno.readDirSync(d)].map((e) => e.name).sort();

Deno.test("export/eval/init-from: train → export → eval repeats the run's test; export → init → export is identical", async () => {
  const d = await Deno.makeTempDir();
  const data = `${d}/data`;
  await Deno.mkdir(data);
  const words = await writeCorpus(data);
  const train = [
    "--data",
    data,
    "--emsize",
    "8",
    "--nhid",
    "8",
    "--nlayers",
    "2",
    "--tied",
    "--method",
    "selfish",
    "--density",
    "0.5",
    "--epochs",
    "2",
    "--epoch-steps",
    "6",
    "--batch-size",
    "4",
    "--bptt",
    "8",
    "--eval-batch-size",
    "3",
    "--test-batch-size",
    "2",
    "--log-interval",
    "2",
  ];
  await ok0("cli.ts", [...train, "--save", `${d}/run.ckpt`, "--summary", `${d}/run.json`]);
  const summary = await json(`${d}/run.json`);
  const out = await ok0("export_cli.ts", [
    `${d}/run.ckpt`,
    "--out",
    `${d}/m.safetensors`,
    "--vocab-out",
    `${d}/vocab.txt`,
  ]);
  ok(out.includes("wrote"), out);
  const vocab = (await Deno.readTextFile(`${d}/vocab.txt`)).split("\n").slice(0, -1);
  equal(vocab.length, words);
  ok(vocab.includes("<eos>") && new Set(vocab).size === words, "one word a line");
  const file = decodeSafetensors(await Deno.readFile(`${d}/m.safetensors`), "m");
  deepEqual(file.tensors.get("decoder.weight")!.data, file.tensors.get("encoder.weight")!.data);
  ok(file.tensors.has("rnn.weight_hh_l1.mask") && file.tensors.has("encoder.weight.mask"));
  equal(file.metadata.family, "lstm");
  equal(file.metadata.method, "selfish");

  // the exported file and the checkpoint evaluate to the run's own figures
  await ok0("eval_cli.ts", [`${d}/m.safetensors`, "--summary", `${d}/eval.json`]);
  const evaluated = await json(`${d}/eval.json`);
  equal(evaluated.split, "test");
  equal(evaluated.batch_size, 2);
  ok(
    Math.abs(evaluated.ppl / summary.test_ppl - 1) < 1e-6,
    `${evaluated.ppl} vs ${summary.test_ppl}`,
  );
  await ok0("eval_cli.ts", [`${d}/run.ckpt`, "--split", "valid", "--summary", `${d}/ev.json`]);
  const valid = await json(`${d}/ev.json`);
  ok(Math.abs(valid.ppl / summary.val_ppl - 1) < 1e-6, `${valid.ppl} vs ${summary.val_ppl}`);

  // a run started from the file holds exactly its tensors (masks included) before training
  const started = await ok0("cli.ts", [
    ...train,
    "--init-from",
    `${d}/m.safetensors`,
    "--stop-after",
    "0",
    "--save",
    `${d}/init.ckpt`,
  ]);
  ok(started.includes("initialised from") && started.includes("with the file's masks"), started);
  await ok0("export_cli.ts", [`${d}/init.ckpt`, "--out", `${d}/m2.safetensors`]);
  const again = decodeSafetensors(await Deno.readFile(`${d}/m2.safetensors`), "m2");
  deepEqual([...again.tensors.keys()], [...file.tensors.keys()]);
  for (const [k, t] of file.tensors) {
    const a = new Uint8Array(t.data.buffer), b = new Uint8Array(again.tensors.get(k)!.data.buffer);
    ok(a.length === b.length && a.every((x, i) => x === b[i]), `tensor ${k} differs`);
  }

  // a model that does not fit: named tensor, exit 2, nothing written
  const bad = await run("cli.ts", [
    ...train.map((a) => (a === "8" ? "12" : a)),
    "--init-from",
    `${d}/m.safetensors`,
    "--save",
    `${d}/x.ckpt`,
    "--summary",
    `${d}/x.json`,
    "--log",
    `${d}/x.csv`,
  ]);
  equal(bad.code, 2, bad.out);
  ok(bad.out.includes("m.safetensors: tensor encoder.weight: shape ["), bad.out);
  // a mask that keeps another count than the run's budget
  const density = await run("cli.ts", [
    ...train.map((a) => (a === "0.5" ? "0.3" : a)),
    "--init-from",
    `${d}/m.safetensors`,
    "--summary",
    `${d}/x.json`,
  ]);
  equal(density.code, 2, density.out);
  ok(density.out.includes("its mask keeps"), density.out);
  // another vocabulary: eval refuses it
  const other = `${d}/other`;
  await Deno.mkdir(other);
  for (const s of ["train", "valid", "test"]) {
    await Deno.writeTextFile(`${other}/${s}.txt`, "a b c\nc b a\n");
  }
  const vocabBad = await run("eval_cli.ts", [`${d}/m.safetensors`, "--data", other]);
  equal(vocabBad.code, 2, vocabBad.out);
  ok(vocabBad.out.includes("has a vocabulary of"), vocabBad.out);
  deepEqual(
    files(d),
    [
      "data",
      "eval.json",
      "ev.json",
      "init.ckpt",
      "m.safetensors",
      "m2.safetensors",
      "other",
      "run.ckpt",
      "run.json",
      "vocab.txt",
    ].sort(),
  );
  await Deno.remove(d, { recursive: true });
});

Deno.test("export/eval/init-from: every malformed file exits 2 naming it, nothing written", async () => {
  const d = await Deno.makeTempDir();
  for (const [what, bytes, message] of badSafetensorsFiles()) {
    const path = `${d}/bad.safetensors`;
    await Deno.writeFile(path, bytes);
    const r = await run("eval_cli.ts", [path, "--summary", `${d}/e.json`]);
    equal(r.code, 2, `${what}: ${r.out}`);
    ok(
      r.out.includes(`eval: ${path}: `) && r.out.includes(message.replace("bad.st: ", "")),
      `${what}: ${r.out}`,
    );
    deepEqual(files(d), ["bad.safetensors"], what);
  }
  // the same reader behind --init-from, before anything is written
  const r = await run("cli.ts", [
    "--init-from",
    `${d}/bad.safetensors`,
    "--summary",
    `${d}/s.json`,
    "--save",
    `${d}/r.ckpt`,
  ]);
  equal(r.code, 2, r.out);
  ok(r.out.includes(`--init-from ${d}/bad.safetensors`), r.out);
  // export of a file that is not a checkpoint
  const e = await run("export_cli.ts", [`${d}/bad.safetensors`, "--out", `${d}/out.safetensors`]);
  equal(e.code, 2, e.out);
  ok(e.out.includes("not a selfish-rnn checkpoint"), e.out);
  deepEqual(files(d), ["bad.safetensors"]);
  await Deno.remove(d, { recursive: true });
});

Deno.test("export --shrink: an ISS model as the smaller dense LSTM it is evaluates the same", async () => {
  const d = await Deno.makeTempDir();
  await Deno.mkdir(`${d}/data`);
  await writeCorpus(`${d}/data`);
  const args = [
    "--data",
    `${d}/data`,
    "--method",
    "iss",
    "--iss-lambda",
    "0.2",
    "--iss-threshold",
    "0.95",
    "--lr",
    "0.02",
    "--emsize",
    "12",
    "--nhid",
    "12",
    "--nlayers",
    "2",
    "--epochs",
    "3",
    "--epoch-steps",
    "6",
    "--batch-size",
    "4",
    "--bptt",
    "8",
    "--eval-batch-size",
    "4",
  ];
  await ok0("cli.ts", [...args, "--save", `${d}/run.ckpt`, "--summary", `${d}/run.json`]);
  const summary = await json(`${d}/run.json`);
  const [h0, h1] = summary.hidden_sizes;
  ok(h0 < 12 && h1 < 12, `hidden sizes ${summary.hidden_sizes}`);
  await ok0("export_cli.ts", [`${d}/run.ckpt`, "--out", `${d}/masked.safetensors`]);
  const out = await ok0("export_cli.ts", [
    `${d}/run.ckpt`,
    "--out",
    `${d}/small.safetensors`,
    "--shrink",
  ]);
  ok(out.includes(`hidden sizes ${h0}/${h1} of 12/12`), out);
  const small = decodeSafetensors(await Deno.readFile(`${d}/small.safetensors`), "small");
  const H = Math.max(h0, h1);
  deepEqual(small.tensors.get("rnn.weight_hh_l0")!.shape, [4 * H, H]);
  deepEqual(small.tensors.get("decoder.weight")!.shape[1], H);
  ok(![...small.tensors.keys()].some((k) => k.endsWith(".mask")), "a dense model");
  for (const [file, out] of [["masked", "m.json"], ["small", "s.json"]]) {
    await ok0("eval_cli.ts", [`${d}/${file}.safetensors`, "--summary", `${d}/${out}`]);
  }
  const masked = await json(`${d}/m.json`), shrunk = await json(`${d}/s.json`);
  ok(Math.abs(masked.ppl / summary.test_ppl - 1) < 1e-6, `${masked.ppl} vs ${summary.test_ppl}`);
  ok(Math.abs(shrunk.ppl / masked.ppl - 1) < 1e-5, `shrunk ${shrunk.ppl} vs ${masked.ppl}`);
  // a tied decoder would have to shrink the embedding too: refused, nothing written
  await ok0("cli.ts", [...args, "--tied", "--max-steps", "2", "--save", `${d}/tied.ckpt`]);
  const tied = await run("export_cli.ts", [
    `${d}/tied.ckpt`,
    "--out",
    `${d}/tied.safetensors`,
    "--shrink",
  ]);
  equal(tied.code, 2, tied.out);
  ok(tied.out.includes("cannot hold hidden sizes"), tied.out);
  ok(!files(d).includes("tied.safetensors"));
  await Deno.remove(d, { recursive: true });
});
