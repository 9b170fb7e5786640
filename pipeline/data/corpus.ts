/**
 * Word-level corpus reader for the PTB / WikiText format: a directory with `train.txt`,
 * `valid.txt` and `test.txt`, UTF-8 text, one sentence (or paragraph) per line, tokens separated
 * by whitespace.
 *
 * Reading follows the reference `data.py`: every line becomes its whitespace-separated tokens
 * plus `<eos>`; an empty (or all-whitespace) line contributes a single `<eos>`; a final line
 * without a newline still counts as a line. Lines end at LF; a CR before it is whitespace and so
 * disappears with the other separators (CRLF files read the same as LF files).
 *
 * "Whitespace" is Python's `str.split()` set ({@linkcode WHITESPACE}), not JavaScript's `\s`:
 * they differ in U+FEFF, which JS treats as a space but Python as a character. WikiText-2's
 * train.txt has 36 U+FEFF tokens; splitting on `\s` would give 33,277 words and 2,088,592
 * tokens instead of the reference 33,278 and 2,088,628. (One deliberate difference: a byte-order
 * mark at the very start of a file is dropped by the decoder rather than kept as a token.)
 *
 * Vocabulary policy: ids follow first appearance over train, then valid, then test (spec §1).
 * A valid/test token that train lacks is almost always broken data (PTB and WikiText-2 have
 * none), so by default it is a {@linkcode DataError} naming file, line and token. With
 * `unk: true` such tokens map to `<unk>` instead (added after the train words when train lacks
 * it) and {@linkcode Corpus.unkMapped} counts them. Either way valid/test never add real words,
 * so the vocabulary equals the train vocabulary (plus possibly `<unk>`), in first-appearance
 * order — for PTB and WikiText-2 exactly the dictionary of the reference code.
 *
 * Files are streamed in chunks through a streaming fatal UTF-8 decoder; memory is the token ids
 * (4 bytes per token), the vocabulary and one chunk, never the whole text.
 *
 * @module
 */

import { DataError } from "./errors.ts";
import { EOS, UNK, Vocabulary } from "./vocab.ts";

/** The three split names, in the order the vocabulary is built. */
export const SPLITS = ["train", "valid", "test"] as const;
/** One of {@linkcode SPLITS}. */
export type Split = typeof SPLITS[number];

/** A tokenised corpus: one shared vocabulary and three token-id streams. */
export interface Corpus {
  /** Word ↔ id mapping shared by all splits. */
  vocab: Vocabulary;
  /** Token ids of `train.txt`, `<eos>` after every line. */
  train: Uint32Array;
  /** Token ids of `valid.txt`. */
  valid: Uint32Array;
  /** Token ids of `test.txt`. */
  test: Uint32Array;
  /** Where the corpus came from: the directory path, or a description for generated corpora. */
  source: string;
  /** Tokens mapped to `<unk>` because train lacks them (always 0 unless `unk: true`). */
  unkMapped: { valid: number; test: number };
}

/** Options of {@linkcode loadCorpus}. */
export interface LoadCorpusOptions {
  /** Map valid/test tokens that train lacks to `<unk>` instead of failing. Default false. */
  unk?: boolean;
  /** Read size in bytes (tests use tiny chunks to exercise chunk boundaries). Default 1 MiB. */
  chunkBytes?: number;
}

const SPLIT_LIST = "train.txt, valid.txt and test.txt";

/**
 * Token separators: exactly the characters Python's `str.isspace()` accepts (what the reference
 * `line.split()` splits on). Unlike JS `\s` it includes U+001C–U+001F and U+0085 and excludes
 * U+FEFF.
 */
export const WHITESPACE =
  // deno-lint-ignore no-control-regex -- U+001C..U+001F are separators in Python's str.split()
  /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** A file path from a string or a `file:` URL. */
function toPath(p: string | URL): string {
  if (typeof p === "string") return p;
  if (p.protocol !== "file:") throw new RangeError(`not a file URL: ${p.href}`);
  return decodeURIComponent(p.pathname);
}

function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/** Growable u32 array: amortised O(1) push, trimmed copy at the end. */
class U32Builder {
  #a: Uint32Array;
  length = 0;
  constructor(capacity: number) {
    this.#a = new Uint32Array(Math.max(1024, capacity));
  }
  push(v: number): void {
    if (this.length === this.#a.length) {
      const b = new Uint32Array(Math.ceil(this.#a.length * 1.5));
      b.set(this.#a);
      this.#a = b;
    }
    this.#a[this.length++] = v;
  }
  finish(): Uint32Array {
    return this.#a.slice(0, this.length);
  }
}

/**
 * Finds the first line of `path` that is not valid UTF-8 (1-based), by decoding line by line.
 * Only runs after the streaming decoder has failed, so its cost does not matter; it streams too.
 */
async function locateInvalidUtf8(path: string, chunkBytes: number): Promise<number | undefined> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const file = await Deno.open(path);
  const buf = new Uint8Array(chunkBytes);
  let parts: Uint8Array[] = [];
  let line = 0;
  const bad = (bytes: Uint8Array[]): boolean => {
    const n = bytes.reduce((s, b) => s + b.length, 0);
    const all = new Uint8Array(n);
    let o = 0;
    for (const b of bytes) {
      all.set(b, o);
      o += b.length;
    }
    try {
      decoder.decode(all);
      return false;
    } catch {
      return true;
    }
  };
  try {
    for (;;) {
      const n = await file.read(buf);
      if (n === null) break;
      const chunk = buf.slice(0, n);
      let start = 0;
      for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
        parts.push(chunk.subarray(start, nl));
        line++;
        if (bad(parts)) return line;
        parts = [];
        start = nl + 1;
      }
      if (start < n) parts.push(chunk.subarray(start));
    }
    if (parts.length > 0 && bad(parts)) return line + 1;
    return undefined;
  } finally {
    file.close();
  }
}

/**
 * Streams the lines of a UTF-8 text file to `onLine(line, lineNumber)` (1-based, without the
 * LF). Returns the number of lines. Invalid UTF-8 is a {@linkcode DataError} naming the line.
 *
 * @example
 * ```ts ignore
 * const n = await forEachLine("data/ptb/valid.txt", (line, no) => {
 *   if (no === 1) console.log(line);
 * });
 * ```
 */
export async function forEachLine(
  path: string,
  onLine: (line: string, lineNumber: number) => void,
  chunkBytes = 1 << 20,
): Promise<number> {
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1) {
    throw new RangeError(`forEachLine: chunkBytes must be a positive integer, got ${chunkBytes}`);
  }
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const file = await Deno.open(path);
  const buf = new Uint8Array(chunkBytes);
  // Text of the current, unfinished line; kept as parts so a very long line costs O(length).
  let pending: string[] = [];
  let lineNo = 0;
  try {
    for (;;) {
      const n = await file.read(buf);
      let text: string;
      try {
        text = n === null ? decoder.decode() : decoder.decode(buf.subarray(0, n), { stream: true });
      } catch (e) {
        if (!(e instanceof TypeError)) throw e;
        const line = await locateInvalidUtf8(path, chunkBytes);
        throw new DataError(
          "invalid UTF-8: the corpus files must be UTF-8 text",
          path,
          line ?? lineNo + 1,
        );
      }
      let start = 0;
      for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
        let line = text.slice(start, nl);
        if (pending.length > 0) {
          pending.push(line);
          line = pending.join("");
          pending = [];
        }
        onLine(line, ++lineNo);
        start = nl + 1;
      }
      if (start < text.length) pending.push(text.slice(start));
      if (n === null) break;
    }
    if (pending.length > 0) onLine(pending.join(""), ++lineNo);
    return lineNo;
  } finally {
    file.close();
  }
}

/**
 * Tokenises one file into ids: each line's whitespace-separated tokens (via `toId`), then the
 * id of `<eos>` (also via `toId`). Throws a {@linkcode DataError} for an empty file.
 *
 * @example
 * ```ts ignore
 * const v = new Vocabulary();
 * const ids = await readTokenStream("data/ptb/train.txt", (w) => v.add(w));
 * ```
 */
export async function readTokenStream(
  path: string,
  toId: (token: string, lineNumber: number) => number,
  chunkBytes = 1 << 20,
): Promise<Uint32Array> {
  const size = (await Deno.stat(path)).size;
  // ~5 bytes per token in PTB and WikiText; the builder grows if that guess is low.
  const out = new U32Builder(Math.ceil(size / 4));
  const lines = await forEachLine(path, (line, no) => {
    // split() leaves an empty first/last field for leading/trailing separators; skip those.
    for (const w of line.split(WHITESPACE)) if (w.length > 0) out.push(toId(w, no));
    out.push(toId(EOS, no));
  }, chunkBytes);
  if (lines === 0) {
    throw new DataError("file is empty; every split needs at least one line of text", path, 1);
  }
  return out.finish();
}

/**
 * Loads `train.txt`, `valid.txt` and `test.txt` from `dir` (see the module doc for the exact
 * tokenisation and vocabulary rules).
 *
 * Errors ({@linkcode DataError}, message `path:line: …`): a missing directory or split file,
 * an empty file, invalid UTF-8 (file and line), and — unless `unk` — a valid/test token that
 * train lacks (file, line and token).
 *
 * @example
 * ```ts ignore
 * import { loadCorpus } from "./corpus.ts";
 * const c = await loadCorpus("../shared/data/ptb");
 * c.vocab.size; // 10000
 * c.train.length; // 929589
 * ```
 */
export async function loadCorpus(
  dir: string | URL,
  options: LoadCorpusOptions = {},
): Promise<Corpus> {
  const root = toPath(dir);
  const unk = options.unk ?? false;
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  const paths = SPLITS.map((s) => joinPath(root, `${s}.txt`));

  const missing: string[] = [];
  for (const p of paths) {
    try {
      const st = await Deno.stat(p);
      if (!st.isFile) {
        throw new DataError(
          `not a regular file; expected the ${p.slice(p.lastIndexOf("/") + 1)} split`,
          p,
        );
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      missing.push(p);
    }
  }
  if (missing.length > 0) {
    let dirExists = true;
    try {
      dirExists = (await Deno.stat(root)).isDirectory;
    } catch {
      dirExists = false;
    }
    if (!dirExists) {
      throw new DataError(`corpus directory not found; it must contain ${SPLIT_LIST}`, root);
    }
    const names = missing.map((p) => p.slice(p.lastIndexOf("/") + 1)).join(", ");
    throw new DataError(
      `file not found (missing: ${names}); a corpus directory must contain ${SPLIT_LIST}`,
      missing[0],
    );
  }

  const vocab = new Vocabulary();
  const train = await readTokenStream(paths[0], (w) => vocab.add(w), chunkBytes);
  const unkMapped = { valid: 0, test: 0 };
  const heldOut = async (split: "valid" | "test", path: string): Promise<Uint32Array> => {
    return await readTokenStream(path, (w, line) => {
      const id = vocab.id(w);
      if (id !== undefined) return id;
      if (!unk) {
        throw new DataError(
          `token ${JSON.stringify(w)} does not occur in train.txt; fix the data, or map such ` +
            `tokens to ${UNK} with the unk option (--unk)`,
          path,
          line,
        );
      }
      unkMapped[split]++;
      return vocab.add(UNK);
    }, chunkBytes);
  };
  const valid = await heldOut("valid", paths[1]);
  const test = await heldOut("test", paths[2]);
  return { vocab, train, valid, test, source: root, unkMapped };
}
