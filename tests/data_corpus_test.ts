import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { loadCorpus } from "../pipeline/data/corpus.ts";
import { DataError } from "../pipeline/data/errors.ts";
import { referenceCorpus } from "./_data_util.ts";

type Content = string | Uint8Array;

/** A temp corpus dir with the given split files (a split set to null is not created). */
async function corpusDir(
  files: { train?: Content | null; valid?: Content | null; test?: Content | null },
) {
  const dir = await Deno.makeTempDir({ prefix: "corpus_test_" });
  const defaults = { train: "a b\n", valid: "a\n", test: "b\n" };
  for (const split of ["train", "valid", "test"] as const) {
    const c = files[split] === undefined ? defaults[split] : files[split];
    if (c === null) continue;
    const path = `${dir}/${split}.txt`;
    if (typeof c === "string") await Deno.writeTextFile(path, c);
    else await Deno.writeFile(path, c);
  }
  return dir;
}

async function withCorpusDir(
  files: Parameters<typeof corpusDir>[0],
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await corpusDir(files);
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Words of a stream, for readable assertions. */
function words(c: { vocab: { word(id: number): string } }, ids: Uint32Array): string[] {
  return Array.from(ids, (id) => c.vocab.word(id));
}

/** Awaits a rejection with DataError and returns its message (anything else fails the test). */
async function dataErrorMessage(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DataError) return e.message;
    throw e;
  }
  throw new Error("expected a DataError, but loading succeeded");
}

Deno.test("corpus: every line gets <eos>, empty lines give one <eos>, last line without newline counts", async () => {
  await withCorpusDir(
    { train: "a b\n\n  c   a \n\t\nb", valid: "a\n", test: "\n" },
    async (dir) => {
      const c = await loadCorpus(dir);
      assertEquals(words(c, c.train), [
        "a",
        "b",
        "<eos>",
        "<eos>",
        "c",
        "a",
        "<eos>",
        "<eos>",
        "b",
        "<eos>",
      ]);
      assertEquals(words(c, c.valid), ["a", "<eos>"]);
      assertEquals(words(c, c.test), ["<eos>"]);
      assertEquals(c.source, dir);
      assertEquals(c.unkMapped, { valid: 0, test: 0 });
    },
  );
});

Deno.test("corpus: vocabulary ids follow first appearance, train first, shared by all splits", async () => {
  await withCorpusDir({ train: "z y\nx z w\n", valid: "w x y z\n", test: "y\n" }, async (dir) => {
    const c = await loadCorpus(dir);
    assertEquals(c.vocab.words, ["z", "y", "<eos>", "x", "w"]);
    assertEquals(Array.from(c.train), [0, 1, 2, 3, 0, 4, 2]);
    assertEquals(Array.from(c.valid), [4, 3, 1, 0, 2]);
    assertEquals(Array.from(c.test), [1, 2]);
    assert(c.train instanceof Uint32Array && c.valid instanceof Uint32Array);
  });
});

Deno.test("corpus: Python str.split() whitespace (CRLF, tabs, U+3000 separate; U+FEFF is a token)", async () => {
  await withCorpusDir(
    { train: "a\tb\r\nc\u3000d\u00a0e \ufeff f\x1fg\n", valid: "a \ufeff\r\n", test: "\ufeffb\n" },
    async (dir) => {
      const c = await loadCorpus(dir);
      assertEquals(words(c, c.train), [
        "a",
        "b",
        "<eos>",
        "c",
        "d",
        "e",
        "\ufeff",
        "f",
        "g",
        "<eos>",
      ]);
      assertEquals(words(c, c.valid), ["a", "\ufeff", "<eos>"]);
      // A byte-order mark at the very start of a file is dropped by the decoder (documented).
      assertEquals(words(c, c.test), ["b", "<eos>"]);
    },
  );
});

Deno.test("corpus: chunk boundaries inside lines and multi-byte characters do not change the result", async () => {
  const train = "naïve café 日本語 x\n\n🙂 a b  c\nend 🙂";
  await withCorpusDir({ train, valid: "日本語 🙂\n", test: "café\n" }, async (dir) => {
    const ref = await loadCorpus(dir);
    assertEquals(words(ref, ref.train), [
      "naïve",
      "café",
      "日本語",
      "x",
      "<eos>",
      "<eos>",
      "🙂",
      "a",
      "b",
      "c",
      "<eos>",
      "end",
      "🙂",
      "<eos>",
    ]);
    for (const chunkBytes of [1, 2, 3, 5, 7, 13]) {
      const c = await loadCorpus(dir, { chunkBytes });
      assertEquals(c.vocab.words, ref.vocab.words, `chunkBytes ${chunkBytes}`);
      assertEquals(Array.from(c.train), Array.from(ref.train), `chunkBytes ${chunkBytes}`);
      assertEquals(Array.from(c.valid), Array.from(ref.valid), `chunkBytes ${chunkBytes}`);
    }
  });
});

Deno.test("corpus: missing split file names the file and the required layout", async () => {
  await withCorpusDir({ valid: null }, async (dir) => {
    const msg = await dataErrorMessage(loadCorpus(dir));
    assert(msg.startsWith(`${dir}/valid.txt: `), msg);
    assert(msg.includes("missing: valid.txt"), msg);
    assert(msg.includes("train.txt, valid.txt and test.txt"), msg);
  });
  await withCorpusDir({ train: null, test: null }, async (dir) => {
    const msg = await dataErrorMessage(loadCorpus(dir));
    assert(
      msg.startsWith(`${dir}/train.txt: `) && msg.includes("missing: train.txt, test.txt"),
      msg,
    );
  });
  const msg = await dataErrorMessage(loadCorpus("/nonexistent/corpus_dir"));
  assert(msg.startsWith("/nonexistent/corpus_dir: corpus directory not found"), msg);
  assert(msg.includes("train.txt, valid.txt and test.txt"), msg);
});

Deno.test("corpus: a directory in place of a split file is a DataError", async () => {
  await withCorpusDir({ test: null }, async (dir) => {
    await Deno.mkdir(`${dir}/test.txt`);
    const msg = await dataErrorMessage(loadCorpus(dir));
    assert(msg.startsWith(`${dir}/test.txt: not a regular file`), msg);
  });
});

Deno.test("corpus: empty split file names the file and line 1", async () => {
  for (const split of ["train", "valid", "test"] as const) {
    await withCorpusDir({ [split]: "" }, async (dir) => {
      const msg = await dataErrorMessage(loadCorpus(dir));
      assert(msg.startsWith(`${dir}/${split}.txt:1: file is empty`), msg);
    });
  }
  // A lone byte-order mark decodes to no text at all: still empty.
  await withCorpusDir({ valid: new Uint8Array([0xef, 0xbb, 0xbf]) }, async (dir) => {
    const msg = await dataErrorMessage(loadCorpus(dir));
    assert(msg.startsWith(`${dir}/valid.txt:1: file is empty`), msg);
  });
});

Deno.test("corpus: invalid UTF-8 names file and line, wherever the chunk boundaries fall", async () => {
  const enc = new TextEncoder();
  const cat = (...parts: (string | number[])[]) => {
    const bytes = parts.map((p) => typeof p === "string" ? enc.encode(p) : new Uint8Array(p));
    const out = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0));
    let o = 0;
    for (const b of bytes) {
      out.set(b, o);
      o += b.length;
    }
    return out;
  };
  const cases: { name: string; bytes: Uint8Array; line: number }[] = [
    { name: "stray 0xff", bytes: cat("a b\nc\nd ", [0xff], " e\nf\n"), line: 3 },
    { name: "lone continuation byte", bytes: cat("a\n", [0x80], "\n"), line: 2 },
    { name: "overlong encoding", bytes: cat("a\nb\nc\nd ", [0xc0, 0xaf], "\n"), line: 4 },
    { name: "UTF-16 surrogate", bytes: cat("x ", [0xed, 0xa0, 0x80], "\n"), line: 1 },
    {
      name: "truncated sequence before newline",
      bytes: cat("é\n", [0xe6, 0x97], "\nz\n"),
      line: 2,
    },
    { name: "truncated sequence at end of file", bytes: cat("a\nb\n日 ", [0xe6, 0x97]), line: 3 },
  ];
  for (const { name, bytes, line } of cases) {
    await withCorpusDir({ train: "a b c d e f x z é 日\n", valid: bytes }, async (dir) => {
      for (const chunkBytes of [1, 3, 4, 1 << 20]) {
        const msg = await dataErrorMessage(loadCorpus(dir, { chunkBytes }));
        assert(
          msg.startsWith(`${dir}/valid.txt:${line}: invalid UTF-8`),
          `${name}, chunk ${chunkBytes}: ${msg}`,
        );
      }
    });
  }
});

Deno.test("corpus: a valid/test token absent from train is a DataError naming file, line and token", async () => {
  await withCorpusDir(
    { train: "a b\nc\n", valid: "a b\n", test: "a\nb zebra c\n" },
    async (dir) => {
      const msg = await dataErrorMessage(loadCorpus(dir));
      assert(msg.startsWith(`${dir}/test.txt:2: token "zebra" does not occur in train.txt`), msg);
      assert(msg.includes("--unk"), msg);
    },
  );
  await withCorpusDir({ train: "a\n", valid: '\n\n\na  qu"ote\n' }, async (dir) => {
    const msg = await dataErrorMessage(loadCorpus(dir));
    assert(msg.startsWith(`${dir}/valid.txt:4: token "qu\\"ote"`), msg);
  });
});

Deno.test("corpus: unk maps unknown valid/test tokens to <unk> and counts them", async () => {
  // train lacks <unk>: it is added after the train words.
  await withCorpusDir({ train: "a b\n", valid: "a x y\n", test: "x b\nz\n" }, async (dir) => {
    const c = await loadCorpus(dir, { unk: true });
    assertEquals(c.vocab.words, ["a", "b", "<eos>", "<unk>"]);
    assertEquals(words(c, c.valid), ["a", "<unk>", "<unk>", "<eos>"]);
    assertEquals(words(c, c.test), ["<unk>", "b", "<eos>", "<unk>", "<eos>"]);
    assertEquals(c.unkMapped, { valid: 2, test: 2 });
  });
  // train has <unk>: its id is reused and nothing is added.
  await withCorpusDir({ train: "a <unk>\n", valid: "q\n", test: "a\n" }, async (dir) => {
    const c = await loadCorpus(dir, { unk: true });
    assertEquals(c.vocab.words, ["a", "<unk>", "<eos>"]);
    assertEquals(words(c, c.valid), ["<unk>", "<eos>"]);
    assertEquals(c.unkMapped, { valid: 1, test: 0 });
  });
});

const PTB = referenceCorpus("ptb", "data_corpus_test");
const WT2 = referenceCorpus("wikitext-2", "data_corpus_test");

Deno.test({
  name:
    "corpus: PTB has vocab 10,000 and 929,589 / 73,760 / 82,430 tokens (needs ../shared/data/ptb)",
  ignore: !PTB.present,
  fn: async () => {
    const c = await loadCorpus(PTB.url);
    assertEquals(c.vocab.size, 10_000);
    assertEquals([c.train.length, c.valid.length, c.test.length], [929_589, 73_760, 82_430]);
    assert(c.vocab.has("<unk>") && c.vocab.has("<eos>"));
    // The first line of train.txt is " aer banknote berlitz ...".
    assertEquals(words(c, c.train.subarray(0, 3)), ["aer", "banknote", "berlitz"]);
    assertEquals(c.unkMapped, { valid: 0, test: 0 });
    // Every id is in range and every word is used (the vocabulary is exactly train's words).
    const seen = new Uint8Array(c.vocab.size);
    for (const s of [c.train, c.valid, c.test]) for (const id of s) seen[id] = 1;
    assertEquals(seen.reduce((a, b) => a + b, 0), 10_000);
  },
});

Deno.test({
  name:
    "corpus: WikiText-2 has vocab 33,278 and 2,088,628 train tokens (needs ../shared/data/wikitext-2)",
  ignore: !WT2.present,
  fn: async () => {
    const c = await loadCorpus(WT2.url);
    assertEquals(c.vocab.size, 33_278);
    assertEquals([c.train.length, c.valid.length, c.test.length], [2_088_628, 217_646, 245_569]);
    assert(c.vocab.has("\ufeff"), "U+FEFF is a token, as with Python's str.split()");
  },
});
