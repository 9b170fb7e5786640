/**
 * CPU f64 reference of the RHN LM (`rhn_lm.ts`): forward, loss and every gradient by plain
 * loops over time steps and micro-layers, written independently of the GPU program (no stacked
 * buffers, explicit per-micro-step products). Test oracle only, never production.
 *
 * Dropout masks are the GPU's, bit for bit: `dropoutMaskRef` (CPU Philox) under the same
 * `(seed, offset = 4·step + site)` pairs and the same f32 scales: embedding rows (a mask over
 * the V words, site 0), locked input (`[B, E]`, site 1), hidden (`[B, H]`, site 2), locked
 * output (`[B, H]`, site 3). With 0/1 weight masks, products use `W ⊙ M` and the gradients are
 * `∂loss/∂(W ⊙ M)` at every position, as on the GPU.
 *
 * @module
 */

import type { RhnConfig } from "./rhn_lm.ts";
import { dropoutMaskRef } from "../../kernels/cells/dropout_ref.ts";

/** Inputs of {@linkcode rhnRef}. */
export interface RhnRefArgs {
  config: RhnConfig;
  /** Weights by parameter name (the names of `rhnParamSpecs`), row-major. */
  weights: Readonly<Record<string, ArrayLike<number>>>;
  masks?: Readonly<Record<string, ArrayLike<number>>>;
  /** `[T·B]` ids, row-major `[T, B]`. */
  input: ArrayLike<number>;
  target: ArrayLike<number>;
  T: number;
  B: number;
  /** Initial state `[B, H]`; zeros when absent. */
  s0?: ArrayLike<number>;
  /** Dropout at training step `step` with Philox `seed`; none when absent. */
  dropout?: { seed: number; step: number };
}

/** Outputs of {@linkcode rhnRef}. */
export interface RhnRefResult {
  loss: number;
  rowLoss: Float64Array;
  grads: Record<string, Float64Array>;
  /** Final state `[B, H]`. */
  s: Float64Array;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Keep-and-scale factors of a dropout mask of `n` elements (1 when p = 0). */
function maskOf(n: number, p: number, seed: number, offset: number): Float64Array {
  const out = new Float64Array(n).fill(1);
  if (p === 0) return out;
  const keep = dropoutMaskRef(n, p, seed, offset);
  const s = Math.fround(1 / (1 - p));
  for (let i = 0; i < n; i++) out[i] = keep[i] ? s : 0;
  return out;
}

/**
 * Runs the model on one window in f64.
 *
 * @example
 * ```ts ignore
 * const r = rhnRef({ config, weights, input, target, T: 3, B: 2, dropout: { seed: 5, step: 1 } });
 * r.grads["rnns.0.highways.1.R.weight"]; // Float64Array [2H·H]
 * ```
 */
export function rhnRef(args: RhnRefArgs): RhnRefResult {
  const { config, input, target, T, B } = args;
  const { vocab: V, embed: E, hidden: H, depth: L, tied } = config;
  const N = T * B;
  const pre = "rnns.0.highways";
  const w: Record<string, Float64Array> = {};
  for (const [name, x] of Object.entries(args.weights)) {
    const m = args.masks?.[name];
    w[name] = Float64Array.from(x, (v, i) => (m ? v * m[i] : v));
  }
  const emb = w["embedding.weight"], Ww = w[`${pre}.0.W.weight`], bW = w[`${pre}.0.W.bias`];
  const R = Array.from({ length: L }, (_, l) => w[`${pre}.${l}.R.weight`]);
  const bR = Array.from({ length: L }, (_, l) => w[`${pre}.${l}.R.bias`]);
  const dec = tied ? emb : w["fc1.weight"], decB = w["fc1.bias"];
  const dr = args.dropout;
  const mk = (n: number, p: number, site: number) =>
    dr ? maskOf(n, p, dr.seed, 4 * dr.step + site) : new Float64Array(n).fill(1);
  const rowMask = mk(V, config.dropoute, 0);
  const inMask = mk(B * E, config.dropouti, 1);
  const hidMask = mk(B * H, config.dropouth, 2);
  const outMask = mk(B * H, config.dropout, 3);

  // forward
  const x = new Float64Array(N * E);
  for (let n = 0; n < N; n++) {
    const v = input[n], b = n % B;
    for (let e = 0; e < E; e++) x[n * E + e] = emb[v * E + e] * rowMask[v] * inMask[b * E + e];
  }
  // states[k] for k = t·L + l (state entering micro-step k), acts[k] = (h, t) of micro-step k
  const states: Float64Array[] = [Float64Array.from(args.s0 ?? new Float64Array(B * H))];
  const acts: Float64Array[] = [];
  const y = new Float64Array(N * H);
  for (let t = 0; t < T; t++) {
    for (let l = 0; l < L; l++) {
      const s = states[states.length - 1];
      const a = new Float64Array(B * 2 * H);
      for (let b = 0; b < B; b++) {
        for (let r = 0; r < 2 * H; r++) {
          let z = bR[l][r];
          for (let j = 0; j < H; j++) z += R[l][r * H + j] * s[b * H + j] * hidMask[b * H + j];
          if (l === 0) {
            z += bW[r];
            for (let e = 0; e < E; e++) z += Ww[r * E + e] * x[(t * B + b) * E + e];
          }
          a[b * 2 * H + r] = z;
        }
      }
      const act = new Float64Array(B * 2 * H), next = new Float64Array(B * H);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < H; j++) {
          const h = Math.tanh(a[b * 2 * H + j]), g = sigmoid(a[b * 2 * H + H + j]);
          act[b * 2 * H + j] = h;
          act[b * 2 * H + H + j] = g;
          next[b * H + j] = h * g + s[b * H + j] * (1 - g);
        }
      }
      acts.push(act);
      states.push(next);
    }
    const s = states[states.length - 1];
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < H; j++) y[(t * B + b) * H + j] = s[b * H + j] * outMask[b * H + j];
    }
  }
  const rowLoss = new Float64Array(N);
  const dLogits = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    const z = new Float64Array(V);
    let max = -Infinity;
    for (let v = 0; v < V; v++) {
      let acc = decB[v];
      for (let j = 0; j < H; j++) acc += dec[v * H + j] * y[n * H + j];
      z[v] = acc;
      max = Math.max(max, acc);
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(z[v] - max);
    rowLoss[n] = Math.log(sum) + max - z[target[n]];
    for (let v = 0; v < V; v++) {
      dLogits[n * V + v] = (Math.exp(z[v] - max) / sum - (v === target[n] ? 1 : 0)) / N;
    }
  }
  const loss = rowLoss.reduce((a, b) => a + b, 0) / N;

  // backward
  const g: Record<string, Float64Array> = {};
  for (const [name, x0] of Object.entries(args.weights)) g[name] = new Float64Array(x0.length);
  const gDec = tied ? g["embedding.weight"] : g["fc1.weight"];
  const dy = new Float64Array(N * H);
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) {
      const d = dLogits[n * V + v];
      g["fc1.bias"][v] += d;
      for (let j = 0; j < H; j++) {
        gDec[v * H + j] += d * y[n * H + j];
        dy[n * H + j] += d * dec[v * H + j];
      }
    }
  }
  const dx = new Float64Array(N * E);
  let ds = new Float64Array(B * H);
  for (let t = T - 1; t >= 0; t--) {
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < H; j++) ds[b * H + j] += dy[(t * B + b) * H + j] * outMask[b * H + j];
    }
    for (let l = L - 1; l >= 0; l--) {
      const k = t * L + l, act = acts[k], s = states[k];
      const da = new Float64Array(B * 2 * H), dPrev = new Float64Array(B * H);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < H; j++) {
          const h = act[b * 2 * H + j], tg = act[b * 2 * H + H + j], d = ds[b * H + j];
          da[b * 2 * H + j] = d * tg * (1 - h * h);
          da[b * 2 * H + H + j] = d * (h - s[b * H + j]) * tg * (1 - tg);
          dPrev[b * H + j] = d * (1 - tg);
        }
      }
      const gR = g[`${pre}.${l}.R.weight`], gbR = g[`${pre}.${l}.R.bias`];
      for (let b = 0; b < B; b++) {
        for (let r = 0; r < 2 * H; r++) {
          const d = da[b * 2 * H + r];
          gbR[r] += d;
          for (let j = 0; j < H; j++) {
            const m = hidMask[b * H + j];
            gR[r * H + j] += d * s[b * H + j] * m;
            dPrev[b * H + j] += d * R[l][r * H + j] * m;
          }
          if (l === 0) {
            g[`${pre}.0.W.bias`][r] += d;
            for (let e = 0; e < E; e++) {
              g[`${pre}.0.W.weight`][r * E + e] += d * x[(t * B + b) * E + e];
              dx[(t * B + b) * E + e] += d * Ww[r * E + e];
            }
          }
        }
      }
      ds = dPrev;
    }
  }
  for (let n = 0; n < N; n++) {
    const v = input[n], b = n % B;
    for (let e = 0; e < E; e++) {
      g["embedding.weight"][v * E + e] += dx[n * E + e] * rowMask[v] * inMask[b * E + e];
    }
  }
  return { loss, rowLoss, grads: g, s: states[states.length - 1] };
}
