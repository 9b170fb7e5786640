import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import { loadCorpus } from "../pipeline/data/corpus.ts";
import { DataError } from "../pipeline/data/errors.ts";
import { Rng } from "../pipeline/data/rng.ts";
import {
  empiricalCrossEntropy,
  entropyRate,
  type MarkovChain,
  randomMarkovChain,
  sampleChain,
  stationaryDistribution,
  SYNTHETIC_DEFAULTS,
  syntheticCorpus,
  writeSyntheticCorpus,
} from "../pipeline/data/synthetic.ts";

/** Two-state chain a ⇄ <eos>: a → a with probability p, a → <eos> with 1-p, <eos> → a. */
function twoState(p: number): MarkovChain {
  return {
    words: ["a", "<eos>"],
    eos: 1,
    offsets: Uint32Array.from([0, 2, 3]),
    next: Uint32Array.from([0, 1, 0]),
    prob: Float64Array.from([p, 1 - p, 1]),
  };
}

/** Stationary distribution by Gaussian elimination on (Pᵀ - I)π = 0 with Σπ = 1: an oracle independent of power iteration. */
function stationaryBySolve(c: MarkovChain): Float64Array {
  const S = c.words.length;
  const a = Array.from({ length: S }, () => new Float64Array(S + 1));
  for (let s = 0; s < S; s++) {
    a[s][s] -= 1;
    for (let t = c.offsets[s]; t < c.offsets[s + 1]; t++) a[c.next[t]][s] += c.prob[t];
  }
  a[S - 1].fill(1); // replace the last (redundant) balance equation by normalisation
  for (let col = 0; col < S; col++) {
    let piv = col;
    for (let r = col + 1; r < S; r++) if (Math.abs(a[r][col]) > Math.abs(a[piv][col])) piv = r;
    [a[col], a[piv]] = [a[piv], a[col]];
    for (let r = 0; r < S; r++) {
      if (r === col) continue;
      const f = a[r][col] / a[col][col];
      if (f !== 0) { for (let k = col; k <= S; k++) a[r][k] -= f * a[col][k]; }
    }
  }
  return Float64Array.from({ length: S }, (_, s) => a[s][S] / a[s][s]);
}

Deno.test("synthetic: entropy rate of a hand-built chain matches the closed form", () => {
  for (const p of [0.1, 0.5, 0.9]) {
    const c = twoState(p);
    // π(a) = 1/(2-p); only state a is random, with binary entropy h(p).
    const pi = stationaryDistribution(c);
    assert(Math.abs(pi[0] - 1 / (2 - p)) < 1e-12, `π(a) = ${pi[0]}`);
    const h = -(p * Math.log(p) + (1 - p) * Math.log(1 - p));
    assert(Math.abs(entropyRate(c) - h / (2 - p)) < 1e-12, `p=${p}: H = ${entropyRate(c)}`);
  }
  assertThrows(
    () => stationaryDistribution({ ...twoState(0.5), prob: Float64Array.from([0.5, 0.4, 1]) }),
    RangeError,
  );
});

Deno.test("synthetic: the default chain is sparse, irreducible, and π solves πP = π to 1e-12", () => {
  const c = randomMarkovChain();
  const o = SYNTHETIC_DEFAULTS;
  assertEquals(c.words.length, o.words + 1);
  assertEquals(c.words[c.eos], "<eos>");
  for (let s = 0; s < c.words.length; s++) {
    const succ = Array.from(c.next.subarray(c.offsets[s], c.offsets[s + 1]));
    const k = succ.length;
    if (s === c.eos) {
      assertEquals(k, o.startWords);
      assert(!succ.includes(c.eos), "no empty lines");
    } else {
      assert(k >= o.minSuccessors && k <= o.maxSuccessors, `state ${s}: ${k} successors`);
      assert(succ.includes(c.eos), `state ${s} can end the line`);
    }
    assertEquals(new Set(succ).size, k, `state ${s}: duplicate successors`);
  }
  // Irreducible: every state is reachable from <eos>, and every word reaches <eos> directly.
  const seen = new Set([c.eos]), todo = [c.eos];
  while (todo.length) {
    const s = todo.pop()!;
    for (let t = c.offsets[s]; t < c.offsets[s + 1]; t++) {
      if (!seen.has(c.next[t])) {
        seen.add(c.next[t]);
        todo.push(c.next[t]);
      }
    }
  }
  assertEquals(seen.size, c.words.length);

  const pi = stationaryDistribution(c);
  const piP = new Float64Array(pi.length);
  for (let s = 0; s < pi.length; s++) {
    for (let t = c.offsets[s]; t < c.offsets[s + 1]; t++) piP[c.next[t]] += pi[s] * c.prob[t];
  }
  let resid = 0, dev = 0;
  const oracle = stationaryBySolve(c);
  for (let s = 0; s < pi.length; s++) {
    resid += Math.abs(piP[s] - pi[s]);
    dev = Math.max(dev, Math.abs(pi[s] - oracle[s]));
  }
  assert(resid < 1e-12, `|πP - π|₁ = ${resid}`);
  assert(Math.abs(pi.reduce((a, b) => a + b, 0) - 1) < 1e-14);
  assert(dev < 1e-12, `power iteration vs direct solve: ${dev}`);
});

Deno.test("synthetic: the true model's NLL on a 200k-token stream is within 1% of the entropy rate", () => {
  const c = randomMarkovChain(); // the chain of the default corpus
  const h = entropyRate(c);
  const stream = sampleChain(c, 200_000, new Rng(99));
  const emp = empiricalCrossEntropy(c, stream);
  // Why 1% is a safe and meaningful bound: the per-token NLLs form an ergodic sequence whose
  // mean converges to H. Its standard error, including autocorrelation, is estimated by batch
  // means (100 batches of 2,000 tokens, much longer than the chain's mixing time of a few
  // steps). Require the bound to be at least 4 standard errors, so that the pass does not hinge
  // on a lucky seed, then check the actual deviation.
  const batches = 100, per = Math.floor(stream.length / batches);
  const means: number[] = [];
  for (let b = 0; b < batches; b++) {
    // The first token of a batch is conditioned on the previous token of the stream.
    let nll = 0;
    for (let i = b * per; i < (b + 1) * per; i++) {
      const prev = i === 0 ? c.eos : stream[i - 1];
      for (let t = c.offsets[prev]; t < c.offsets[prev + 1]; t++) {
        if (c.next[t] === stream[i]) nll -= Math.log(c.prob[t]);
      }
    }
    means.push(nll / per);
  }
  const mu = means.reduce((a, b) => a + b, 0) / batches;
  const se = Math.sqrt(means.reduce((a, m) => a + (m - mu) ** 2, 0) / (batches - 1) / batches);
  assert(0.01 * h > 4 * se, `1% of H = ${0.01 * h} is not >= 4 standard errors (${se})`);
  assert(Math.abs(emp - h) < 0.01 * h, `empirical ${emp} vs entropy rate ${h}`);
  assert(Math.abs(emp - mu) < 1e-3, "batch means agree with the whole-stream value");
  // The check can fail: a wrong model (uniform over the same successors) is far outside 1%.
  const wrong: MarkovChain = { ...c, prob: c.prob.slice() };
  for (let s = 0; s < c.words.length; s++) {
    const k = c.offsets[s + 1] - c.offsets[s];
    wrong.prob.fill(1 / k, c.offsets[s], c.offsets[s + 1]);
  }
  const wrongCe = empiricalCrossEntropy(wrong, stream);
  assert(wrongCe - h > 0.05 * h, `uniform-successor model ${wrongCe} vs ${h}`);
  // An impossible transition has infinite NLL.
  assertEquals(empiricalCrossEntropy(c, Uint32Array.from([c.eos])), Infinity);
});

Deno.test("synthetic: corpus splits are whole lines of at least the requested size; stats are consistent", () => {
  const c = syntheticCorpus({
    trainTokens: 50_000,
    validTokens: 5_000,
    testTokens: 3_000,
    seed: 5,
  });
  const eos = c.vocab.id("<eos>")!;
  for (
    const [name, s, min] of [["train", c.train, 50_000], ["valid", c.valid, 5_000], [
      "test",
      c.test,
      3_000,
    ]] as const
  ) {
    assert(s.length >= min, `${name}: ${s.length} < ${min}`);
    assertEquals(s[s.length - 1], eos, `${name} ends at <eos>`);
    // It stops at the first <eos> at or after the requested size.
    assert(!s.subarray(min - 1, s.length - 1).includes(eos), `${name} ran past an <eos>`);
  }
  assertEquals(c.vocab.size, 201);
  assertEquals(c.seed, 5);
  assertEquals(c.optimalPerplexity, Math.exp(c.entropyNats));
  assertEquals(c.entropyNats, entropyRate(c.chain));
  // The defaults give a language that is far from trivial and far from uniform.
  assert(
    c.optimalPerplexity > 3 && c.optimalPerplexity < 10,
    `optimal perplexity ${c.optimalPerplexity}`,
  );
  // The splits measure close to the entropy rate under the true model (mapping vocab ids to states).
  const ce = empiricalCrossEntropy(c.chain, c.train, c.vocab);
  assert(
    Math.abs(ce - c.entropyNats) < 0.02 * c.entropyNats,
    `train NLL ${ce} vs ${c.entropyNats}`,
  );
});

Deno.test("synthetic: written files round-trip through loadCorpus; same seed same bytes, other seed differs", async () => {
  const root = await Deno.makeTempDir({ prefix: "synthetic_test_" });
  try {
    const opts = { trainTokens: 30_000, validTokens: 3_000, testTokens: 3_000 };
    const a = await writeSyntheticCorpus(`${root}/a`, { ...opts, seed: 11 });
    await writeSyntheticCorpus(`${root}/b`, { ...opts, seed: 11 });
    await writeSyntheticCorpus(`${root}/c`, { ...opts, seed: 12 });
    assertEquals(a.source, `${root}/a`);
    for (const split of ["train", "valid", "test"]) {
      const fa = await Deno.readFile(`${root}/a/${split}.txt`);
      assertEquals(
        await Deno.readFile(`${root}/b/${split}.txt`),
        fa,
        `${split}: same seed, same bytes`,
      );
      const fc = await Deno.readFile(`${root}/c/${split}.txt`);
      assert(
        fc.length !== fa.length || fc.some((v, i) => v !== fa[i]),
        `${split}: seeds 11 and 12 gave the same text`,
      );
    }
    const text = await Deno.readTextFile(`${root}/a/valid.txt`);
    assert(/^(w\d+( w\d+)*\n)+$/.test(text), "PTB-style lines of w<k> words");

    const loaded = await loadCorpus(`${root}/a`);
    assertEquals(loaded.vocab.words, a.vocab.words);
    assertEquals(loaded.train, a.train);
    assertEquals(loaded.valid, a.valid);
    assertEquals(loaded.test, a.test);
    // In-memory generation equals what was written.
    const mem = syntheticCorpus({ ...opts, seed: 11 });
    assertEquals(mem.train, a.train);
    assertEquals(mem.entropyNats, a.entropyNats);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("synthetic: bad options are RangeErrors; a train split too small for valid's words is a DataError", () => {
  for (
    const o of [
      { words: 0 },
      { minSuccessors: 1 },
      { minSuccessors: 6, maxSuccessors: 5 },
      { words: 3, maxSuccessors: 5 },
      { startWords: 0 },
      { concentration: 0 },
      { trainTokens: 0 },
      { seed: 0.5 },
    ]
  ) {
    assertThrows(() => syntheticCorpus(o), RangeError, JSON.stringify(o));
  }
  assertThrows(
    () => syntheticCorpus({ trainTokens: 1, validTokens: 20_000, testTokens: 1 }),
    (e: Error) => e instanceof DataError && e.message.includes("increase trainTokens"),
  );
});
