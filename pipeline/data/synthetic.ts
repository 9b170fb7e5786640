/**
 * The embedded default corpus of `deno task train`: text from a seeded random sparse
 * first-order Markov chain, whose entropy rate — hence the best achievable perplexity — is known
 * exactly. A model trained on it can be judged against that floor with no external data.
 *
 * The chain has `words` word states `w0 … w{V-1}` plus `<eos>`. Every word state has between
 * `minSuccessors` and `maxSuccessors` successors (always including `<eos>`, so lines end), and
 * `<eos>` leads to `startWords` possible first words; transition probabilities are Dirichlet
 * draws. A random cyclic order of the words is always part of the successor sets, which makes
 * the chain irreducible (`<eos>` → first word of the cycle → every word → `<eos>`), and the
 * cycles `<eos>→a→<eos>` (length 2) and `<eos>→a→b→<eos>` (length 3, a = cycle head) make it
 * aperiodic. So the stationary distribution π is unique, power iteration converges to it, and
 * the entropy rate is H = Σ_s π(s) · H(P(·|s)) nats per token; optimal perplexity = exp(H).
 *
 * Splits are sampled from independent RNG streams of the same seed, each starting after an
 * implicit `<eos>` and running until at least the requested size and the next `<eos>`, so every
 * split is whole lines. Text is the PTB format (`w17 w3 w99` per line), read back by
 * {@linkcode loadCorpus} to the identical corpus.
 *
 * @module
 */

import type { Corpus } from "./corpus.ts";
import { DataError } from "./errors.ts";
import { Rng } from "./rng.ts";
import { EOS, Vocabulary } from "./vocab.ts";

/**
 * A first-order Markov chain over named states in CSR form: the successors of state `s` are
 * `next[offsets[s] .. offsets[s+1])` with probabilities `prob[…]` (each row sums to 1).
 */
export interface MarkovChain {
  /** State names; `words[eos]` is `<eos>`. */
  words: string[];
  /** Index of the `<eos>` state (streams start after it). */
  eos: number;
  /** `[states + 1]` row starts into `next`/`prob`. */
  offsets: Uint32Array;
  /** `[transitions]` successor states, ascending within a row. */
  next: Uint32Array;
  /** `[transitions]` transition probabilities, > 0. */
  prob: Float64Array;
}

/** Options of the synthetic language and corpus; every field has a default. */
export interface SyntheticOptions {
  /** RNG seed of the chain and of the text. Default 1. */
  seed?: number;
  /** Number of word states V (the vocabulary is V + 1 with `<eos>`). Default 200. */
  words?: number;
  /** Fewest successors of a word state, `<eos>` included. Default 5. */
  minSuccessors?: number;
  /** Most successors of a word state, `<eos>` included. Default 8. */
  maxSuccessors?: number;
  /** Number of possible first words of a line (successors of `<eos>`). Default 20. */
  startWords?: number;
  /** Dirichlet concentration of each row's probabilities (smaller = peakier). Default 1. */
  concentration?: number;
  /** Minimum train tokens (the split ends at the next `<eos>`). Default 200,000. */
  trainTokens?: number;
  /** Minimum valid tokens. Default 20,000. */
  validTokens?: number;
  /** Minimum test tokens. Default 20,000. */
  testTokens?: number;
}

/** The defaults of {@linkcode SyntheticOptions}. */
export const SYNTHETIC_DEFAULTS: Readonly<Required<SyntheticOptions>> = Object.freeze({
  seed: 1,
  words: 200,
  minSuccessors: 5,
  maxSuccessors: 8,
  startWords: 20,
  concentration: 1,
  trainTokens: 200_000,
  validTokens: 20_000,
  testTokens: 20_000,
});

/** A generated corpus with the facts that make it useful as a yardstick. */
export interface SyntheticCorpus extends Corpus {
  /** The generating chain (state ids differ from vocabulary ids; map through words). */
  chain: MarkovChain;
  /** Entropy rate of the chain in nats per token: the best achievable cross-entropy. */
  entropyNats: number;
  /** `exp(entropyNats)`: the best achievable perplexity. */
  optimalPerplexity: number;
  /** The seed used. */
  seed: number;
}

function intOption(name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(
      `synthetic corpus: ${name} must be an integer in [${min}, ${max}], got ${v}`,
    );
  }
}

function resolve(opts: SyntheticOptions): Required<SyntheticOptions> {
  const o = { ...SYNTHETIC_DEFAULTS, ...opts };
  intOption("seed", o.seed, Number.MIN_SAFE_INTEGER);
  intOption("words", o.words, 1, 1 << 24);
  intOption("minSuccessors", o.minSuccessors, 2, o.words + 1);
  intOption("maxSuccessors", o.maxSuccessors, o.minSuccessors, o.words + 1);
  intOption("startWords", o.startWords, 1, o.words);
  intOption("trainTokens", o.trainTokens, 1);
  intOption("validTokens", o.validTokens, 1);
  intOption("testTokens", o.testTokens, 1);
  if (!(o.concentration > 0) || !Number.isFinite(o.concentration)) {
    throw new RangeError(`synthetic corpus: concentration must be > 0, got ${o.concentration}`);
  }
  return o;
}

/**
 * Builds the random sparse chain of the module doc from `options` (only the chain fields and
 * `seed` matter). Deterministic in the seed.
 *
 * @example
 * ```ts
 * import { randomMarkovChain } from "./synthetic.ts";
 * const c = randomMarkovChain({ seed: 3, words: 50 });
 * c.words.length; // 51
 * c.words[c.eos]; // "<eos>"
 * ```
 */
export function randomMarkovChain(options: SyntheticOptions = {}): MarkovChain {
  const o = resolve(options);
  const rng = new Rng(o.seed, 0);
  const V = o.words, eos = V;
  const perm = Array.from({ length: V }, (_, i) => i);
  for (let i = V - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  const cycleNext = new Uint32Array(V);
  for (let i = 0; i < V; i++) cycleNext[perm[i]] = perm[(i + 1) % V];

  const rows: number[][] = [];
  for (let s = 0; s < V; s++) {
    const k = o.minSuccessors + rng.int(o.maxSuccessors - o.minSuccessors + 1);
    const set = new Set<number>([eos, cycleNext[s]]);
    while (set.size < k) set.add(rng.int(V));
    rows.push([...set].sort((a, b) => a - b));
  }
  const start = new Set<number>([perm[0]]);
  while (start.size < o.startWords) start.add(rng.int(V));
  rows.push([...start].sort((a, b) => a - b));

  const offsets = new Uint32Array(V + 2);
  for (let s = 0; s <= V; s++) offsets[s + 1] = offsets[s] + rows[s].length;
  const next = new Uint32Array(offsets[V + 1]);
  const prob = new Float64Array(offsets[V + 1]);
  for (let s = 0; s <= V; s++) {
    const o0 = offsets[s];
    let sum = 0;
    for (let t = 0; t < rows[s].length; t++) {
      next[o0 + t] = rows[s][t];
      // Floor keeps every listed transition strictly possible (finite log-probability).
      prob[o0 + t] = Math.max(rng.gamma(o.concentration), 1e-300);
      sum += prob[o0 + t];
    }
    for (let t = 0; t < rows[s].length; t++) prob[o0 + t] /= sum;
  }
  const words = Array.from({ length: V }, (_, i) => `w${i}`);
  words.push(EOS);
  return { words, eos, offsets, next, prob };
}

function checkChain(chain: MarkovChain): number {
  const S = chain.words.length;
  if (chain.offsets.length !== S + 1 || chain.eos < 0 || chain.eos >= S) {
    throw new RangeError(`MarkovChain: offsets must have ${S + 1} entries and eos < ${S}`);
  }
  for (let s = 0; s < S; s++) {
    let sum = 0;
    for (let t = chain.offsets[s]; t < chain.offsets[s + 1]; t++) {
      if (!(chain.prob[t] > 0) || chain.next[t] >= S) {
        throw new RangeError(`MarkovChain: bad transition ${t} of state ${s}`);
      }
      sum += chain.prob[t];
    }
    if (Math.abs(sum - 1) > 1e-9) {
      throw new RangeError(`MarkovChain: row ${s} sums to ${sum}, not 1`);
    }
  }
  return S;
}

/**
 * Stationary distribution π (π = πP, Σπ = 1) by power iteration in f64, until the L1 change
 * per step is below `tol`. Throws if it has not converged after `maxIterations` (a reducible or
 * periodic chain; the generated ones are neither).
 *
 * @example
 * ```ts
 * import { randomMarkovChain, stationaryDistribution } from "./synthetic.ts";
 * const pi = stationaryDistribution(randomMarkovChain({ words: 20 }));
 * pi.reduce((a, b) => a + b, 0); // ≈ 1
 * ```
 */
export function stationaryDistribution(
  chain: MarkovChain,
  tol = 1e-12,
  maxIterations = 1_000_000,
): Float64Array {
  const S = checkChain(chain);
  let pi = new Float64Array(S).fill(1 / S);
  let nxt = new Float64Array(S);
  for (let it = 0; it < maxIterations; it++) {
    nxt.fill(0);
    for (let s = 0; s < S; s++) {
      const p = pi[s];
      for (let t = chain.offsets[s]; t < chain.offsets[s + 1]; t++) {
        nxt[chain.next[t]] += p * chain.prob[t];
      }
    }
    let sum = 0;
    for (let s = 0; s < S; s++) sum += nxt[s];
    let diff = 0;
    for (let s = 0; s < S; s++) {
      nxt[s] /= sum;
      diff += Math.abs(nxt[s] - pi[s]);
    }
    [pi, nxt] = [nxt, pi];
    if (diff < tol) return pi;
  }
  throw new RangeError(
    `stationaryDistribution: no convergence to ${tol} in ${maxIterations} steps`,
  );
}

/**
 * Entropy rate H = Σ_s π(s) · H(P(·|s)) in nats per token: the cross-entropy of the true model
 * on an infinitely long stream, so no model can do better on average.
 *
 * @example
 * ```ts
 * import { entropyRate, randomMarkovChain } from "./synthetic.ts";
 * const h = entropyRate(randomMarkovChain());
 * Math.exp(h); // the optimal perplexity, ≈ 5 for the defaults
 * ```
 */
export function entropyRate(chain: MarkovChain): number {
  const pi = stationaryDistribution(chain);
  let h = 0;
  for (let s = 0; s < pi.length; s++) {
    let hs = 0;
    for (let t = chain.offsets[s]; t < chain.offsets[s + 1]; t++) {
      hs -= chain.prob[t] * Math.log(chain.prob[t]);
    }
    h += pi[s] * hs;
  }
  return h;
}

/**
 * Samples at least `minTokens` states starting after `<eos>`, continuing to the next `<eos>`
 * (so the stream is whole lines). Returns chain state ids.
 *
 * @example
 * ```ts
 * import { randomMarkovChain, sampleChain } from "./synthetic.ts";
 * import { Rng } from "./rng.ts";
 * const c = randomMarkovChain();
 * const s = sampleChain(c, 100, new Rng(5));
 * s[s.length - 1] === c.eos; // true
 * ```
 */
export function sampleChain(chain: MarkovChain, minTokens: number, rng: Rng): Uint32Array {
  checkChain(chain);
  intOption("minTokens", minTokens, 1);
  let out = new Uint32Array(minTokens + 64);
  let n = 0;
  let s = chain.eos;
  while (n < minTokens || s !== chain.eos) {
    const lo = chain.offsets[s], hi = chain.offsets[s + 1];
    let u = rng.uniform();
    let t = lo;
    // The last successor absorbs round-off in the cumulative sum.
    for (; t < hi - 1; t++) {
      u -= chain.prob[t];
      if (u < 0) break;
    }
    s = chain.next[t];
    if (n === out.length) {
      const b = new Uint32Array(out.length * 2);
      b.set(out);
      out = b;
    }
    out[n++] = s;
  }
  return out.slice(0, n);
}

/**
 * Per-token negative log-likelihood (nats) of `stream` under the true chain, the first token
 * conditioned on `<eos>` (streams start after one). Stream ids are chain states, or ids of
 * `vocab` when it is given (mapped through the words). A transition the chain cannot make gives
 * `Infinity`.
 *
 * @example
 * ```ts
 * import { empiricalCrossEntropy, randomMarkovChain, sampleChain } from "./synthetic.ts";
 * import { Rng } from "./rng.ts";
 * const c = randomMarkovChain();
 * empiricalCrossEntropy(c, sampleChain(c, 10_000, new Rng(2))); // ≈ entropyRate(c)
 * ```
 */
export function empiricalCrossEntropy(
  chain: MarkovChain,
  stream: Uint32Array,
  vocab?: Vocabulary,
): number {
  const S = checkChain(chain);
  if (stream.length === 0) throw new RangeError("empiricalCrossEntropy: empty stream");
  let map: Int32Array | undefined;
  if (vocab) {
    const stateOf = new Map(chain.words.map((w, i) => [w, i]));
    map = new Int32Array(vocab.size);
    for (let id = 0; id < vocab.size; id++) map[id] = stateOf.get(vocab.word(id)) ?? -1;
  }
  let nll = 0;
  let prev = chain.eos;
  for (let i = 0; i < stream.length; i++) {
    const x = map ? (stream[i] < map.length ? map[stream[i]] : -1) : stream[i];
    if (x < 0 || x >= S) return Infinity;
    let p = 0;
    for (let t = chain.offsets[prev]; t < chain.offsets[prev + 1]; t++) {
      if (chain.next[t] === x) {
        p = chain.prob[t];
        break;
      }
    }
    if (p === 0) return Infinity;
    nll -= Math.log(p);
    prev = x;
  }
  return nll / stream.length;
}

/**
 * Generates the synthetic corpus in memory: the chain, three splits, and the vocabulary that
 * {@linkcode loadCorpus} would build from the written text (first appearance, train first).
 * A word that occurs in valid/test but not in train (only possible with a tiny `trainTokens`)
 * is a {@linkcode DataError}, as it would be when loading the files.
 *
 * @example
 * ```ts
 * import { syntheticCorpus } from "./synthetic.ts";
 * const c = syntheticCorpus({ trainTokens: 20_000, validTokens: 2_000, testTokens: 2_000 });
 * c.vocab.size; // 201
 * c.optimalPerplexity; // exp(c.entropyNats)
 * ```
 */
export function syntheticCorpus(options: SyntheticOptions = {}): SyntheticCorpus {
  const o = resolve(options);
  const chain = randomMarkovChain(o);
  const entropyNats = entropyRate(chain);
  const states = {
    train: sampleChain(chain, o.trainTokens, new Rng(o.seed, 1)),
    valid: sampleChain(chain, o.validTokens, new Rng(o.seed, 2)),
    test: sampleChain(chain, o.testTokens, new Rng(o.seed, 3)),
  };
  const vocab = new Vocabulary();
  const toIds = (split: "train" | "valid" | "test"): Uint32Array => {
    const s = states[split];
    const out = new Uint32Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const w = chain.words[s[i]];
      const id = split === "train" ? vocab.add(w) : vocab.id(w);
      if (id === undefined) {
        throw new DataError(
          `synthetic ${split} split contains ${JSON.stringify(w)}, which the ${s.length}-token ` +
            `train split lacks; increase trainTokens`,
        );
      }
      out[i] = id;
    }
    return out;
  };
  const train = toIds("train"), valid = toIds("valid"), test = toIds("test");
  return {
    vocab,
    train,
    valid,
    test,
    source: `synthetic(seed=${o.seed}, words=${o.words})`,
    unkMapped: { valid: 0, test: 0 },
    chain,
    entropyNats,
    optimalPerplexity: Math.exp(entropyNats),
    seed: o.seed,
  };
}

/** Writes `ids` as lines of words, one line per `<eos>`, in ~64 KiB pieces. */
async function writeSplit(path: string, ids: Uint32Array, vocab: Vocabulary): Promise<void> {
  const eos = vocab.id(EOS);
  const enc = new TextEncoder();
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    let piece = "";
    let line: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] === eos) {
        piece += line.join(" ") + "\n";
        line = [];
        if (piece.length >= 65536) {
          await writeAll(file, enc.encode(piece));
          piece = "";
        }
      } else {
        line.push(vocab.word(ids[i]));
      }
    }
    // Generated streams end at <eos>, so `line` is empty here; keep any rest for other callers.
    if (line.length > 0) piece += line.join(" ") + "\n";
    if (piece.length > 0) await writeAll(file, enc.encode(piece));
  } finally {
    file.close();
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let o = 0;
  while (o < bytes.length) o += await file.write(bytes.subarray(o));
}

/**
 * Generates the synthetic corpus and writes `train.txt`, `valid.txt`, `test.txt` into `dir`
 * (created if needed). `loadCorpus(dir)` gives back the same vocabulary and streams.
 *
 * @example
 * ```ts ignore
 * import { writeSyntheticCorpus } from "./synthetic.ts";
 * const c = await writeSyntheticCorpus("/tmp/synth", { seed: 7 });
 * console.log(`optimal perplexity ${c.optimalPerplexity.toFixed(3)}`);
 * ```
 */
export async function writeSyntheticCorpus(
  dir: string,
  options: SyntheticOptions = {},
): Promise<SyntheticCorpus> {
  const c = syntheticCorpus(options);
  await Deno.mkdir(dir, { recursive: true });
  const base = dir.endsWith("/") ? dir : dir + "/";
  await writeSplit(base + "train.txt", c.train, c.vocab);
  await writeSplit(base + "valid.txt", c.valid, c.vocab);
  await writeSplit(base + "test.txt", c.test, c.vocab);
  return { ...c, source: dir };
}
