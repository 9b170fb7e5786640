/**
 * CPU f64 reference of the stacked-LSTM LM (`lstm_lm.ts`): forward, loss and every gradient by
 * plain loops, written independently of the GPU program (straight textbook BPTT with explicit
 * per-step recurrent gradients, no fused buffers). Test oracle only, never production.
 *
 * Dropout masks are the GPU's, bit for bit: `dropoutMaskRef` (CPU Philox) under the same
 * `(seed, offset = step·sites + site)` pairs (sites L + 1, or 2L + 2 with the AWD devices), and
 * the same f32 scale `fround(1 / (1 − p))`; the scaled values are kept in f64. With the AWD
 * devices (`config.awd`): locked masks (one `[B, D]` mask repeated over time), embedding-row
 * masks over the V words, and AR (on the dropped output) and TAR (on the raw output) in the
 * loss, and WeightDrop (`awd.wdrop`: one mask per step and recurrent weight at site L + 2 + l,
 * in its convention).
 *
 * Masks: forward products and data gradients use `W ⊙ M`; the returned weight gradients are
 * `∂loss/∂(W ⊙ M)` at every position (dense), as on the GPU.
 *
 * @module
 */

import type { LstmLmConfig } from "./lstm_lm.ts";
import { dropoutMaskRef } from "../../kernels/cells/dropout_ref.ts";

/** Inputs of {@linkcode lstmLmRef}. */
export interface LstmLmRefArgs {
  config: LstmLmConfig;
  /**
   * Weights by parameter name (`encoder.weight [V, E]`, `rnn.weight_ih_l{l} [4H, in]`,
   * `rnn.weight_hh_l{l} [4H, H]`, `rnn.bias_ih_l{l} [4H]`, `rnn.bias_hh_l{l} [4H]`,
   * `decoder.weight [V, H]` (absent when tied), `decoder.bias [V]`), row-major.
   */
  weights: Readonly<Record<string, ArrayLike<number>>>;
  /** Optional 0/1 masks by name, same shapes. */
  masks?: Readonly<Record<string, ArrayLike<number>>>;
  /** `[T·B]` ids, row-major `[T, B]`. */
  input: ArrayLike<number>;
  /** `[T·B]` ids. */
  target: ArrayLike<number>;
  T: number;
  B: number;
  /** Initial state per layer, `[B, H]` each; zeros when absent. */
  h0?: readonly ArrayLike<number>[];
  c0?: readonly ArrayLike<number>[];
  /** Dropout at training step `step` with Philox `seed` (p from the config); none when absent. */
  dropout?: { seed: number; step: number };
  /** Compute gradients (default true). */
  grad?: boolean;
}

/** Outputs of {@linkcode lstmLmRef}. */
export interface LstmLmRefResult {
  /** Mean cross-entropy over the T·B rows. */
  loss: number;
  /** `[T·B]` per-row cross-entropy. */
  rowLoss: Float64Array;
  /** Gradients of `loss` by parameter name (same names and shapes as `weights`). */
  grads: Record<string, Float64Array>;
  /** Final state per layer, `[B, H]` each. */
  h: Float64Array[];
  c: Float64Array[];
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * Runs the model on one window in f64 and returns the mean loss, per-row losses, all gradients
 * and the final state.
 *
 * @example
 * ```ts ignore
 * const dropout = { seed: 5, step: 0 };
 * const r = lstmLmRef({ config, weights, input, target, T: 4, B: 3, dropout });
 * r.grads["rnn.weight_hh_l1"]; // Float64Array [4H·H]
 * ```
 */
export function lstmLmRef(args: LstmLmRefArgs): LstmLmRefResult {
  const { config, input, target, T, B } = args;
  const { vocab: V, embed: E, hidden: H, layers: L, tied, awd } = config;
  const on = !!args.dropout;
  const N = T * B;
  const wantGrad = args.grad ?? true;

  // effective weights W ⊙ M
  const W: Record<string, Float64Array> = {};
  for (const [name, w] of Object.entries(args.weights)) {
    const m = args.masks?.[name];
    W[name] = Float64Array.from(w, (v, i) => (m ? v * m[i] : v));
  }
  const decName = tied ? "encoder.weight" : "decoder.weight";
  const sites = awd ? 2 * L + 2 : L + 1;
  /** Multipliers keep·scale of `n` elements at `site`; locked: a `[B, D]` mask over time. */
  const keepOf = (n: number, site: number, p: number, period = n): Float64Array => {
    if (!on || p === 0) return new Float64Array(n).fill(1);
    const { seed, step } = args.dropout!;
    const keep = dropoutMaskRef(period, p, seed, step * sites + site);
    const s = Math.fround(1 / (1 - p));
    return Float64Array.from({ length: n }, (_, i) => keep[i % period] * s);
  };
  const locked = !!awd?.locked;
  const siteKeep = (site: number, D: number): Float64Array => {
    const p = !locked
      ? config.dropout
      : site === 0
      ? awd!.dropouti
      : site === L
      ? config.dropout
      : awd!.dropouth;
    return keepOf(N * D, site, p, locked ? B * D : N * D);
  };
  const rowKeep = awd ? keepOf(V, L + 1, awd.dropoute) : new Float64Array(V).fill(1);
  // WeightDrop: the products read W_hh ⊙ D · s (training) or W_hh · (1 − p) (evaluation,
  // eval-scaled); hhMul[l] is the training multiplier, the gradient's chain factor
  const wd = awd?.wdrop;
  const hhMul: (Float64Array | null)[] = [];
  for (let l = 0; l < L; l++) {
    const name = `rnn.weight_hh_l${l}`;
    if (!wd) {
      hhMul.push(null);
    } else if (on) {
      const keep = dropoutMaskRef(
        4 * H * H,
        wd.p,
        args.dropout!.seed,
        args.dropout!.step * sites + L + 2 + l,
      );
      const s = wd.convention === "inverted" ? Math.fround(1 / (1 - wd.p)) : 1;
      hhMul.push(Float64Array.from(keep, (k) => k * s));
      W[name] = W[name].map((v, i) => v * hhMul[l]![i]);
    } else {
      hhMul.push(null);
      if (wd.convention === "eval-scaled") W[name] = W[name].map((v) => v * Math.fround(1 - wd.p));
    }
  }

  // ---- forward
  const emb = new Float64Array(N * E);
  for (let n = 0; n < N; n++) {
    const r = rowKeep[input[n]];
    for (let d = 0; d < E; d++) emb[n * E + d] = W["encoder.weight"][input[n] * E + d] * r;
  }
  const dropMul: Float64Array[] = []; // per site, multipliers keep·scale
  dropMul[0] = siteKeep(0, E);
  let x = emb.map((v, i) => v * dropMul[0][i]);
  const xs: Float64Array[] = [];
  // per layer: hs [T+1][B·H], cs, acts [T][B·4H]
  const hsAll: Float64Array[][] = [], csAll: Float64Array[][] = [], actsAll: Float64Array[][] = [];
  for (let l = 0; l < L; l++) {
    const inSize = l === 0 ? E : H;
    const wih = W[`rnn.weight_ih_l${l}`], whh = W[`rnn.weight_hh_l${l}`];
    const bih = W[`rnn.bias_ih_l${l}`], bhh = W[`rnn.bias_hh_l${l}`];
    xs.push(x);
    const hs = [Float64Array.from(args.h0?.[l] ?? new Float64Array(B * H))];
    const cs = [Float64Array.from(args.c0?.[l] ?? new Float64Array(B * H))];
    const acts: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const h = new Float64Array(B * H), c = new Float64Array(B * H);
      const act = new Float64Array(B * 4 * H);
      for (let b = 0; b < B; b++) {
        const z = new Float64Array(4 * H);
        for (let r = 0; r < 4 * H; r++) {
          let s = bih[r] + bhh[r];
          for (let k = 0; k < inSize; k++) s += x[(t * B + b) * inSize + k] * wih[r * inSize + k];
          for (let k = 0; k < H; k++) s += hs[t][b * H + k] * whh[r * H + k];
          z[r] = s;
        }
        for (let j = 0; j < H; j++) {
          const ig = sigmoid(z[j]), fg = sigmoid(z[H + j]);
          const gg = Math.tanh(z[2 * H + j]), og = sigmoid(z[3 * H + j]);
          const cn = fg * cs[t][b * H + j] + ig * gg;
          c[b * H + j] = cn;
          h[b * H + j] = og * Math.tanh(cn);
          act[b * 4 * H + j] = ig;
          act[b * 4 * H + H + j] = fg;
          act[b * 4 * H + 2 * H + j] = gg;
          act[b * 4 * H + 3 * H + j] = og;
        }
      }
      hs.push(h);
      cs.push(c);
      acts.push(act);
    }
    hsAll.push(hs);
    csAll.push(cs);
    actsAll.push(acts);
    const out = new Float64Array(N * H);
    for (let t = 0; t < T; t++) out.set(hs[t + 1], t * B * H);
    dropMul[l + 1] = siteKeep(l + 1, H);
    x = out.map((v, i) => v * dropMul[l + 1][i]);
  }
  const top = x;
  const rawTop = new Float64Array(N * H);
  for (let t = 0; t < T; t++) rawTop.set(hsAll[L - 1][t + 1], t * B * H);
  // AR on the dropped output, TAR on the raw one (mean over elements, AWD-LSTM)
  let reg = 0;
  const dTopReg = new Float64Array(N * H), dRawReg = new Float64Array(N * H);
  if (awd && on) {
    for (let i = 0; i < N * H; i++) {
      reg += (awd.alpha * top[i] * top[i]) / (N * H);
      dTopReg[i] = (2 * awd.alpha * top[i]) / (N * H);
    }
    if (T > 1) {
      const m = (T - 1) * B * H;
      for (let i = B * H; i < N * H; i++) {
        const d = rawTop[i] - rawTop[i - B * H];
        reg += (awd.beta * d * d) / m;
        dRawReg[i] += (2 * awd.beta * d) / m;
        dRawReg[i - B * H] -= (2 * awd.beta * d) / m;
      }
    }
  }
  const dec = W[decName], decB = W["decoder.bias"];
  const rowLoss = new Float64Array(N);
  const dLogits = new Float64Array(N * V);
  let lossSum = 0;
  for (let n = 0; n < N; n++) {
    const z = new Float64Array(V);
    for (let v = 0; v < V; v++) {
      let s = decB[v];
      for (let k = 0; k < H; k++) s += top[n * H + k] * dec[v * H + k];
      z[v] = s;
    }
    const m = Math.max(...z);
    let se = 0;
    for (let v = 0; v < V; v++) se += Math.exp(z[v] - m);
    const lse = m + Math.log(se);
    rowLoss[n] = lse - z[target[n]];
    lossSum += rowLoss[n];
    for (let v = 0; v < V; v++) {
      dLogits[n * V + v] = (Math.exp(z[v] - lse) - (v === target[n] ? 1 : 0)) / N;
    }
  }
  const result: LstmLmRefResult = {
    loss: lossSum / N + reg,
    rowLoss,
    grads: {},
    h: hsAll.map((hs) => hs[T]),
    c: csAll.map((cs) => cs[T]),
  };
  if (!wantGrad) return result;

  // ---- backward
  const G: Record<string, Float64Array> = {};
  for (const [name, w] of Object.entries(args.weights)) G[name] = new Float64Array(w.length);
  const gDec = G[decName], gDecB = G["decoder.bias"];
  let dx = Float64Array.from(dTopReg); // gradient w.r.t. the dropped top output
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) {
      const g = dLogits[n * V + v];
      gDecB[v] += g;
      for (let k = 0; k < H; k++) {
        gDec[v * H + k] += g * top[n * H + k];
        dx[n * H + k] += g * dec[v * H + k];
      }
    }
  }
  for (let l = L - 1; l >= 0; l--) {
    const inSize = l === 0 ? E : H;
    const wih = W[`rnn.weight_ih_l${l}`], whh = W[`rnn.weight_hh_l${l}`];
    const gWih = G[`rnn.weight_ih_l${l}`], gWhh = G[`rnn.weight_hh_l${l}`];
    const gBih = G[`rnn.bias_ih_l${l}`], gBhh = G[`rnn.bias_hh_l${l}`];
    const hs = hsAll[l], cs = csAll[l], acts = actsAll[l];
    const xin = xs[l];
    // through the dropout after layer l (and TAR's gradient on the raw top output)
    const dOut = dx.map((v, i) => v * dropMul[l + 1][i] + (l === L - 1 ? dRawReg[i] : 0));
    const dIn = new Float64Array(N * inSize);
    let dhNext = new Float64Array(B * H), dcNext = new Float64Array(B * H);
    for (let t = T - 1; t >= 0; t--) {
      const dhPrev = new Float64Array(B * H), dcPrev = new Float64Array(B * H);
      for (let b = 0; b < B; b++) {
        const dz = new Float64Array(4 * H);
        for (let j = 0; j < H; j++) {
          const e = b * H + j;
          const a = acts[t], o4 = b * 4 * H;
          const ig = a[o4 + j], fg = a[o4 + H + j], gg = a[o4 + 2 * H + j], og = a[o4 + 3 * H + j];
          const dh = dOut[(t * B + b) * H + j] + dhNext[e];
          const tc = Math.tanh(cs[t + 1][e]);
          const dc = dcNext[e] + dh * og * (1 - tc * tc);
          dz[j] = dc * gg * ig * (1 - ig);
          dz[H + j] = dc * cs[t][e] * fg * (1 - fg);
          dz[2 * H + j] = dc * ig * (1 - gg * gg);
          dz[3 * H + j] = dh * tc * og * (1 - og);
          dcPrev[e] = dc * fg;
        }
        for (let r = 0; r < 4 * H; r++) {
          const g = dz[r];
          gBih[r] += g;
          gBhh[r] += g;
          for (let k = 0; k < inSize; k++) {
            gWih[r * inSize + k] += g * xin[(t * B + b) * inSize + k];
            dIn[(t * B + b) * inSize + k] += g * wih[r * inSize + k];
          }
          for (let k = 0; k < H; k++) {
            gWhh[r * H + k] += g * hs[t][b * H + k];
            dhPrev[b * H + k] += g * whh[r * H + k];
          }
        }
      }
      dhNext = dhPrev;
      dcNext = dcPrev;
    }
    const mul = hhMul[l];
    if (mul) { for (let i = 0; i < gWhh.length; i++) gWhh[i] *= mul[i]; }
    dx = dIn;
  }
  const dEmb = dx.map((v, i) => v * dropMul[0][i]);
  const gEnc = G["encoder.weight"];
  for (let n = 0; n < N; n++) {
    const r = rowKeep[input[n]];
    for (let d = 0; d < E; d++) gEnc[input[n] * E + d] += dEmb[n * E + d] * r;
  }
  result.grads = G;
  return result;
}
