/**
 * CPU f64 reference of a stacked gated-RNN LM (`gated_stack.ts`): forward, loss and every
 * gradient by plain loops, written independently of the GPU program (straight textbook BPTT
 * with explicit per-step recurrent gradients, no fused buffers), for any cell given as a per-row
 * f64 function pair. Test oracle only, never production.
 *
 * Dropout masks are the GPU's, bit for bit: `dropoutMaskRef` (CPU Philox) under the same
 * `(seed, offset = step·sites + site)` pairs (sites L + 1, or 2L + 2 with the AWD devices), and
 * the same f32 scale `fround(1 / (1 − p))`; the scaled values are kept in f64. With the AWD
 * devices (`stack.awd`): locked masks (one `[B, D]` mask repeated over time), embedding-row
 * masks over the V words, AR (on the dropped or raw output, `stack.arOn`) and TAR (on the raw
 * output) in the loss, and WeightDrop (`awd.wdrop`: one mask per step and recurrent weight at
 * site L + 2 + l, in its convention).
 *
 * Masks: forward products and data gradients use `W ⊙ M`; the returned weight gradients are
 * `∂loss/∂(W ⊙ M)` at every position (dense), as on the GPU.
 *
 * @module
 */

import type { AwdDevices } from "./gated_stack.ts";
import { dropoutMaskRef } from "../../kernels/cells/dropout_ref.ts";

/** A cell as the reference runs it: one row at a time, in f64. */
export interface GatedCellRef {
  width(H: number): number;
  /** `z: [width]` pre-activations (biases included), `cPrev: [H]` → `act`, `c`, `h`. */
  forward(z: Float64Array, cPrev: Float64Array, H: number): {
    act: ArrayLike<number>;
    c: ArrayLike<number>;
    h: ArrayLike<number>;
  };
  /** Gradients w.r.t. the pre-activations and `cPrev` from `dh` (total) and `dcNext`. */
  backward(
    a: {
      act: Float64Array;
      cPrev: Float64Array;
      c: Float64Array;
      dh: Float64Array;
      dcNext: Float64Array;
    },
    H: number,
  ): { dz: ArrayLike<number>; dcPrev: ArrayLike<number> };
}

/** What a head's reference is given: the dropped top output and the model's tensors. */
export interface HeadRefArgs {
  /** `[N, D]` the stack's dropped output. */
  top: Float64Array;
  D: number;
  N: number;
  B: number;
  target: ArrayLike<number>;
  /** Effective weights (`W ⊙ M`) by name. */
  W: Readonly<Record<string, Float64Array>>;
  /** Gradients by name to add the head's into; null = no gradients wanted. */
  G: Record<string, Float64Array> | null;
  tied: boolean;
  /** Dropout multipliers (keep·scale) of `n` elements at the head's site k, period `period`. */
  keep(n: number, k: number, p: number, period: number): Float64Array;
}

/** A head's reference: per-row losses and, with `G`, the mean loss's gradient w.r.t. `top`. */
export interface HeadRef {
  sites: number;
  run(a: HeadRefArgs): { rowLoss: Float64Array; dTop: Float64Array | null };
}

/** The plain decoder: logits `top·Decᵀ + b`, softmax cross-entropy. */
export const DECODER_HEAD_REF: HeadRef = {
  sites: 0,
  run({ top, D, N, target, W, G, tied }) {
    const decName = tied ? "encoder.weight" : "decoder.weight";
    const dec = W[decName], decB = W["decoder.bias"];
    const V = decB.length;
    const rowLoss = new Float64Array(N);
    const dTop = G ? new Float64Array(N * D) : null;
    for (let n = 0; n < N; n++) {
      const z = new Float64Array(V);
      for (let v = 0; v < V; v++) {
        let s = decB[v];
        for (let k = 0; k < D; k++) s += top[n * D + k] * dec[v * D + k];
        z[v] = s;
      }
      const m = Math.max(...z);
      let se = 0;
      for (let v = 0; v < V; v++) se += Math.exp(z[v] - m);
      const lse = m + Math.log(se);
      rowLoss[n] = lse - z[target[n]];
      if (!G || !dTop) continue;
      const gDec = G[decName], gDecB = G["decoder.bias"];
      for (let v = 0; v < V; v++) {
        const g = (Math.exp(z[v] - lse) - (v === target[n] ? 1 : 0)) / N;
        gDecB[v] += g;
        for (let k = 0; k < D; k++) {
          gDec[v * D + k] += g * top[n * D + k];
          dTop[n * D + k] += g * dec[v * D + k];
        }
      }
    }
    return { rowLoss, dTop };
  },
};

/** The stack as the reference reads it: sizes, regularisers, cell and tensor names. */
export interface GatedStackRefModel {
  vocab: number;
  embed: number;
  hidden: readonly number[];
  dropout: number;
  tied: boolean;
  awd?: AwdDevices;
  arOn: "dropped" | "raw";
  cell: GatedCellRef;
  /** The output head; default the plain decoder (`decoder.weight` or the tied embedding). */
  head?: HeadRef;
  /** Names of layer l's input and recurrent weights and biases. */
  names(l: number): { ih: string; hh: string; bih: string; bhh: string };
}

/** Inputs of {@linkcode gatedStackRef}. */
export interface GatedStackRefArgs {
  stack: GatedStackRefModel;
  /**
   * Weights by parameter name (`encoder.weight [V, E]`, each layer's four tensors,
   * `decoder.weight [V, H_{L−1}]` (absent when tied), `decoder.bias [V]`), row-major.
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
  /** Initial state per layer, `[B, H_l]` each; zeros when absent. */
  h0?: readonly ArrayLike<number>[];
  c0?: readonly ArrayLike<number>[];
  /** Dropout at training step `step` with Philox `seed`; none when absent. */
  dropout?: { seed: number; step: number };
  /** Compute gradients (default true). */
  grad?: boolean;
}

/** Outputs of {@linkcode gatedStackRef}. */
export interface GatedStackRefResult {
  /** Mean cross-entropy over the T·B rows, plus AR and TAR in training. */
  loss: number;
  /** `[T·B]` per-row cross-entropy. */
  rowLoss: Float64Array;
  /** Gradients of `loss` by parameter name (same names and shapes as `weights`). */
  grads: Record<string, Float64Array>;
  /** Final state per layer, `[B, H_l]` each. */
  h: Float64Array[];
  c: Float64Array[];
}

/**
 * Runs the model on one window in f64 and returns the loss, per-row losses, all gradients and
 * the final state.
 *
 * @example
 * ```ts ignore
 * const r = gatedStackRef({ stack, weights, input, target, T: 4, B: 3, dropout: { seed: 5, step: 0 } });
 * ```
 */
export function gatedStackRef(args: GatedStackRefArgs): GatedStackRefResult {
  const { stack, input, target, T, B } = args;
  const { vocab: V, embed: E, hidden: Hs, tied, awd, cell } = stack;
  const L = Hs.length;
  const Htop = Hs[L - 1];
  const names = stack.names;
  const on = !!args.dropout;
  const N = T * B;
  const wantGrad = args.grad ?? true;

  // effective weights W ⊙ M
  const W: Record<string, Float64Array> = {};
  for (const [name, w] of Object.entries(args.weights)) {
    const m = args.masks?.[name];
    W[name] = Float64Array.from(w, (v, i) => (m ? v * m[i] : v));
  }
  const head = stack.head ?? DECODER_HEAD_REF;
  const stackSites = awd ? 2 * L + 2 : L + 1;
  const sites = stackSites + head.sites;
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
      ? stack.dropout
      : site === 0
      ? awd!.dropouti
      : site === L
      ? stack.dropout
      : awd!.dropouth;
    return keepOf(N * D, site, p, locked ? B * D : N * D);
  };
  const rowKeep = awd ? keepOf(V, L + 1, awd.dropoute) : new Float64Array(V).fill(1);
  // WeightDrop: the products read W_hh ⊙ D · s (training) or W_hh · (1 − p) (evaluation,
  // eval-scaled); hhMul[l] is the training multiplier, the gradient's chain factor
  const wd = awd?.wdrop;
  const hhMul: (Float64Array | null)[] = [];
  for (let l = 0; l < L; l++) {
    const name = names(l).hh;
    const H = Hs[l];
    if (!wd) {
      hhMul.push(null);
    } else if (on) {
      const keep = dropoutMaskRef(
        cell.width(H) * H,
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
  // per layer: hs [T+1][B·H], cs, acts [T][B·G]
  const hsAll: Float64Array[][] = [], csAll: Float64Array[][] = [], actsAll: Float64Array[][] = [];
  for (let l = 0; l < L; l++) {
    const H = Hs[l], G = cell.width(H);
    const inSize = l === 0 ? E : Hs[l - 1];
    const n = names(l);
    const wih = W[n.ih], whh = W[n.hh], bih = W[n.bih], bhh = W[n.bhh];
    xs.push(x);
    const hs = [Float64Array.from(args.h0?.[l] ?? new Float64Array(B * H))];
    const cs = [Float64Array.from(args.c0?.[l] ?? new Float64Array(B * H))];
    const acts: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const h = new Float64Array(B * H), c = new Float64Array(B * H);
      const act = new Float64Array(B * G);
      for (let b = 0; b < B; b++) {
        const z = new Float64Array(G);
        for (let r = 0; r < G; r++) {
          let s = bih[r] + bhh[r];
          for (let k = 0; k < inSize; k++) s += x[(t * B + b) * inSize + k] * wih[r * inSize + k];
          for (let k = 0; k < H; k++) s += hs[t][b * H + k] * whh[r * H + k];
          z[r] = s;
        }
        const out = cell.forward(z, cs[t].subarray(b * H, (b + 1) * H), H);
        c.set(out.c, b * H);
        h.set(out.h, b * H);
        act.set(out.act, b * G);
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
  const rawTop = new Float64Array(N * Htop);
  for (let t = 0; t < T; t++) rawTop.set(hsAll[L - 1][t + 1], t * B * Htop);
  // AR on the dropped (AWD-LSTM) or raw (ON-LSTM) output, TAR on the raw one (means over
  // elements)
  let reg = 0;
  const dTopReg = new Float64Array(N * Htop), dRawReg = new Float64Array(N * Htop);
  if (awd && on) {
    const arY = stack.arOn === "dropped" ? top : rawTop;
    const arG = stack.arOn === "dropped" ? dTopReg : dRawReg;
    for (let i = 0; i < N * Htop; i++) {
      reg += (awd.alpha * arY[i] * arY[i]) / (N * Htop);
      arG[i] += (2 * awd.alpha * arY[i]) / (N * Htop);
    }
    if (T > 1) {
      const H = Htop;
      const m = (T - 1) * B * H;
      for (let i = B * H; i < N * H; i++) {
        const d = rawTop[i] - rawTop[i - B * H];
        reg += (awd.beta * d * d) / m;
        dRawReg[i] += (2 * awd.beta * d) / m;
        dRawReg[i - B * H] -= (2 * awd.beta * d) / m;
      }
    }
  }
  const G_: Record<string, Float64Array> = {};
  if (wantGrad) {
    for (const [name, w] of Object.entries(args.weights)) G_[name] = new Float64Array(w.length);
  }
  const out = head.run({
    top,
    D: Htop,
    N,
    B,
    target,
    W,
    G: wantGrad ? G_ : null,
    tied,
    keep: (n, k, p, period) => keepOf(n, stackSites + k, p, period),
  });
  const rowLoss = out.rowLoss;
  const result: GatedStackRefResult = {
    loss: rowLoss.reduce((a, v) => a + v, 0) / N + reg,
    rowLoss,
    grads: {},
    h: hsAll.map((hs) => hs[T]),
    c: csAll.map((cs) => cs[T]),
  };
  if (!wantGrad) return result;

  // ---- backward
  let dx = Float64Array.from(dTopReg, (v, i) => v + out.dTop![i]); // w.r.t. the dropped top
  for (let l = L - 1; l >= 0; l--) {
    const H = Hs[l], G = cell.width(H);
    const inSize = l === 0 ? E : Hs[l - 1];
    const n = names(l);
    const wih = W[n.ih], whh = W[n.hh];
    const gWih = G_[n.ih], gWhh = G_[n.hh], gBih = G_[n.bih], gBhh = G_[n.bhh];
    const hs = hsAll[l], cs = csAll[l], acts = actsAll[l];
    const xin = xs[l];
    // through the dropout after layer l (and the raw-output regularisers' gradient on the top)
    const dOut = dx.map((v, i) => v * dropMul[l + 1][i] + (l === L - 1 ? dRawReg[i] : 0));
    const dIn = new Float64Array(N * inSize);
    let dhNext = new Float64Array(B * H), dcNext = new Float64Array(B * H);
    for (let t = T - 1; t >= 0; t--) {
      const dhPrev = new Float64Array(B * H), dcPrev = new Float64Array(B * H);
      for (let b = 0; b < B; b++) {
        const dh = new Float64Array(H);
        for (let j = 0; j < H; j++) dh[j] = dOut[(t * B + b) * H + j] + dhNext[b * H + j];
        const rows = (a: Float64Array) => a.subarray(b * H, (b + 1) * H);
        const g = cell.backward({
          act: acts[t].subarray(b * G, (b + 1) * G),
          cPrev: rows(cs[t]),
          c: rows(cs[t + 1]),
          dh,
          dcNext: rows(dcNext),
        }, H);
        dcPrev.set(g.dcPrev, b * H);
        const dz = g.dz;
        for (let r = 0; r < G; r++) {
          const gr = dz[r];
          gBih[r] += gr;
          gBhh[r] += gr;
          for (let k = 0; k < inSize; k++) {
            gWih[r * inSize + k] += gr * xin[(t * B + b) * inSize + k];
            dIn[(t * B + b) * inSize + k] += gr * wih[r * inSize + k];
          }
          for (let k = 0; k < H; k++) {
            gWhh[r * H + k] += gr * hs[t][b * H + k];
            dhPrev[b * H + k] += gr * whh[r * H + k];
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
  const gEnc = G_["encoder.weight"];
  for (let n = 0; n < N; n++) {
    const r = rowKeep[input[n]];
    for (let d = 0; d < E; d++) gEnc[input[n] * E + d] += dEmb[n * E + d] * r;
  }
  result.grads = G_;
  return result;
}
