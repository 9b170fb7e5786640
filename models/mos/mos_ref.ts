/**
 * CPU f64 reference of AWD-LSTM-MoS (`mos_lm.ts`): the gated-stack reference with the textbook
 * LSTM cell and the mixture-of-softmaxes head below, written from the definitions (P formed
 * directly, gradients by the chain rule through π and each expert's softmax), not from the GPU's
 * log-space form with responsibilities. Test oracle only.
 *
 * @module
 */

import { MOS_EPSILON } from "../../kernels/cells/mos.ts";
import {
  gatedStackRef,
  type GatedStackRefArgs,
  type GatedStackRefResult,
  type HeadRef,
} from "../parts/gated_stack_ref.ts";
import { LSTM_CELL_REF } from "../lstm/lstm_lm_ref.ts";
import { mosAwd, type MosConfig, mosLayerNames, mosLayerSizes } from "./mos_lm.ts";

/**
 * The MoS head's reference for K experts of width E with latent dropout `dropoutl`.
 *
 * @example
 * ```ts ignore
 * const head = mosHeadRef(15, 300, 0.29);
 * ```
 */
export function mosHeadRef(K: number, E: number, dropoutl: number): HeadRef {
  return {
    sites: 1,
    run({ top, D, N, B, target, W, G, tied, keep }) {
      const decName = tied ? "encoder.weight" : "decoder.weight";
      const prior = W["prior.weight"], lw = W["latent.0.weight"], lb = W["latent.0.bias"];
      const dec = W[decName], decB = W["decoder.bias"];
      const V = decB.length, KE = K * E;
      const mul = keep(N * KE, 0, dropoutl, B * KE);
      const rowLoss = new Float64Array(N);
      const dTop = G ? new Float64Array(N * D) : null;
      for (let n = 0; n < N; n++) {
        const x = top.subarray(n * D, (n + 1) * D);
        const u = Array.from({ length: K }, (_, k) => {
          let s = 0;
          for (let d = 0; d < D; d++) s += x[d] * prior[k * D + d];
          return s;
        });
        const um = Math.max(...u);
        const ue = u.map((v) => Math.exp(v - um));
        const uz = ue.reduce((a, b) => a + b, 0);
        const pi = ue.map((v) => v / uz);
        const lat = new Float64Array(KE), ld = new Float64Array(KE);
        for (let j = 0; j < KE; j++) {
          let s = lb[j];
          for (let d = 0; d < D; d++) s += x[d] * lw[j * D + d];
          lat[j] = Math.tanh(s);
          ld[j] = lat[j] * mul[n * KE + j];
        }
        const soft: Float64Array[] = [];
        for (let k = 0; k < K; k++) {
          const z = new Float64Array(V);
          for (let v = 0; v < V; v++) {
            let s = decB[v];
            for (let e = 0; e < E; e++) s += ld[k * E + e] * dec[v * E + e];
            z[v] = s;
          }
          const m = Math.max(...z);
          let se = 0;
          for (let v = 0; v < V; v++) se += Math.exp(z[v] - m);
          soft.push(z.map((v) => Math.exp(v - m) / se));
        }
        const py = soft.map((s) => s[target[n]]);
        const P = pi.reduce((a, p, k) => a + p * py[k], 0);
        rowLoss[n] = -Math.log(P + MOS_EPSILON);
        if (!G || !dTop) continue;
        const dP = -1 / (P + MOS_EPSILON) / N;
        const dld = new Float64Array(KE);
        const gDec = G[decName], gDecB = G["decoder.bias"];
        for (let k = 0; k < K; k++) {
          for (let v = 0; v < V; v++) {
            const gz = dP * pi[k] * py[k] * ((v === target[n] ? 1 : 0) - soft[k][v]);
            gDecB[v] += gz;
            for (let e = 0; e < E; e++) {
              gDec[v * E + e] += gz * ld[k * E + e];
              dld[k * E + e] += gz * dec[v * E + e];
            }
          }
        }
        const gLw = G["latent.0.weight"], gLb = G["latent.0.bias"], gPrior = G["prior.weight"];
        for (let j = 0; j < KE; j++) {
          const dpre = dld[j] * mul[n * KE + j] * (1 - lat[j] * lat[j]);
          gLb[j] += dpre;
          for (let d = 0; d < D; d++) {
            gLw[j * D + d] += dpre * x[d];
            dTop[n * D + d] += dpre * lw[j * D + d];
          }
        }
        for (let k = 0; k < K; k++) {
          const gu = dP * pi[k] * (py[k] - P);
          for (let d = 0; d < D; d++) {
            gPrior[k * D + d] += gu * x[d];
            dTop[n * D + d] += gu * prior[k * D + d];
          }
        }
      }
      return { rowLoss, dTop };
    },
  };
}

/** Inputs of {@linkcode mosRef}: those of `gatedStackRef` with the MoS config. */
export interface MosRefArgs extends Omit<GatedStackRefArgs, "stack"> {
  config: MosConfig;
}

/**
 * Runs AWD-LSTM-MoS on one window in f64: loss (with AR and TAR in training), per-row losses,
 * every gradient and the final state.
 *
 * @example
 * ```ts ignore
 * const r = mosRef({ config, weights, input, target, T: 4, B: 3, dropout: { seed: 5, step: 0 } });
 * ```
 */
export function mosRef(args: MosRefArgs): GatedStackRefResult {
  const { config: c, ...rest } = args;
  return gatedStackRef({
    ...rest,
    stack: {
      vocab: c.vocab,
      embed: c.embed,
      hidden: mosLayerSizes(c),
      dropout: c.dropout,
      tied: c.tied,
      awd: mosAwd(c),
      arOn: "dropped",
      cell: LSTM_CELL_REF,
      head: mosHeadRef(c.experts, c.embed, c.dropoutl),
      names: mosLayerNames,
    },
  });
}
