/**
 * The AWD-LSTM-MoS family (`--model awd-mos`, spec §2.4 and §14.3) behind the model contract:
 * the paper's preset and one that trains on a CPU, the validation of its settings, its costs
 * and width, and sessions over the gated stack with the MoS head.
 *
 * @module
 */

import { mosHeadBufferShapes } from "../parts/mos_head.ts";
import {
  type FlagValue,
  type Model,
  ModelConfigError,
  type ModelFamily,
  type ModelSettings,
  namedStateDict,
  type WeightMacs,
} from "../model.ts";
import { gatedStackSession } from "../parts/gated_stack.ts";
import {
  checkMosConfig,
  createMos,
  type MosConfig,
  mosLayerNames,
  mosLayerSizes,
  mosParamSpecs,
} from "./mos_lm.ts";

/**
 * Forward multiply-adds per token of each weight: the LSTM weights (`4H × in`), `prior`
 * (`K × D`), `latent` (`K·E × D`), and the decoder once per expert (`K·V·E`; tied, on the
 * embedding tensor), the lookup 0.
 *
 * @example
 * ```ts
 * import { mosWeightMacs } from "./family.ts";
 * const w = mosWeightMacs({
 *   vocab: 33278, embed: 300, hidden: 1150, hiddenLast: 650, layers: 3, experts: 15,
 *   tied: true, dropout: 0, dropouth: 0, dropouti: 0, dropoute: 0, dropoutl: 0, wdrop: 0,
 *   wdropConvention: "inverted", alpha: 0, beta: 0,
 * });
 * w.find((x) => x.name === "encoder.weight")!.macs; // 149_751_000: 15 experts × 33278 × 300
 * ```
 */
export function mosWeightMacs(c: MosConfig): WeightMacs[] {
  const sizes = mosLayerSizes(c);
  const D = sizes[sizes.length - 1], K = c.experts, decoder = K * c.vocab * c.embed;
  const out: WeightMacs[] = [{ name: "encoder.weight", macs: c.tied ? decoder : 0 }];
  sizes.forEach((H, l) => {
    const n = mosLayerNames(l);
    out.push({ name: n.ih, macs: 4 * H * (l === 0 ? c.embed : sizes[l - 1]) });
    out.push({ name: n.hh, macs: 4 * H * H });
  });
  out.push({ name: "prior.weight", macs: K * D });
  out.push({ name: "latent.0.weight", macs: K * c.embed * D });
  if (!c.tied) out.push({ name: "decoder.weight", macs: decoder });
  return out;
}

function config(s: ModelSettings): MosConfig {
  const int = (flag: string) => {
    const v = s.flags[flag];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
      throw new ModelConfigError(`--${flag}: expected an integer > 0, got ${v}`);
    }
    return v;
  };
  const dropoutl = s.flags.dropoutl;
  if (typeof dropoutl !== "number") {
    throw new ModelConfigError(`--dropoutl: expected a probability, got ${dropoutl}`);
  }
  const c: MosConfig = {
    vocab: s.vocab,
    embed: s.emsize,
    hidden: s.nhid,
    hiddenLast: int("nhidlast"),
    layers: s.nlayers,
    experts: int("experts"),
    tied: s.tied,
    dropout: s.dropout,
    dropouth: s.dropouth,
    dropouti: s.dropouti,
    dropoute: s.dropoute,
    dropoutl,
    wdrop: s.wdrop,
    wdropConvention: s.wdropConvention,
    alpha: s.alpha,
    beta: s.beta,
  };
  try {
    checkMosConfig(c);
  } catch (e) {
    throw new ModelConfigError((e as Error).message);
  }
  return c;
}

/** Presets (flag names, as in a `--config` file). */
const PRESETS: Readonly<Record<string, Readonly<Record<string, FlagValue>>>> = {
  // the paper's (spec §2.4, §14.3): batches of 15 columns as 3 slices of 5
  "wt2-mos": {
    method: "selfish",
    density: 0.45,
    "death-rate": 0.5,
    emsize: 300,
    nhid: 1150,
    nhidlast: 650,
    nlayers: 3,
    experts: 15,
    tied: true,
    "batch-size": 15,
    "small-batch-size": 5,
    bptt: 70,
    "variable-bptt": true,
    "bptt-cap": 90,
    optimizer: "ntasgd",
    lr: 15,
    clip: 0.25,
    wdecay: 1.2e-6,
    dropout: 0.4,
    dropouth: 0.2,
    dropouti: 0.55,
    dropoute: 0.1,
    dropoutl: 0.29,
    wdrop: 0.5,
    alpha: 2,
    beta: 1,
    seed: 1882,
    nonmono: 5,
    epochs: 1000,
    "eval-batch-size": 10,
    "test-batch-size": 1,
  },
  // spec §14.5: tied 64, LSTMs 64 → 256 → 256 → 128, 3 experts
  "wt2-mos-small": {
    method: "selfish",
    density: 0.45,
    "death-rate": 0.5,
    emsize: 64,
    nhid: 256,
    nhidlast: 128,
    nlayers: 3,
    experts: 3,
    tied: true,
    "batch-size": 15,
    bptt: 35,
    "variable-bptt": true,
    "bptt-cap": 55,
    optimizer: "ntasgd",
    lr: 15,
    clip: 0.25,
    wdecay: 1.2e-6,
    dropout: 0.3,
    dropouth: 0.15,
    dropouti: 0.3,
    dropoute: 0.05,
    dropoutl: 0.1,
    wdrop: 0.3,
    alpha: 2,
    beta: 1,
    seed: 1882,
    nonmono: 5,
    epochs: 20,
    "eval-batch-size": 10,
    "test-batch-size": 1,
  },
};

/**
 * AWD-LSTM-MoS (Yang et al. 2018) as the paper trains it on WikiText-2.
 *
 * @example
 * ```ts ignore
 * const cfg = mosFamily.config({ ...settings, flags: { experts: 15, nhidlast: 650, dropoutl: 0.29 } });
 * const model = mosFamily.create(gpu, cfg, 1882);
 * ```
 */
export const mosFamily: ModelFamily<MosConfig> = {
  name: "awd-mos",
  summary: "AWD-LSTM with a mixture of softmaxes (Yang et al. 2018), spec §2.4",
  // a run with no preset: a small MoS on the synthetic corpus, no dropout (as the other
  // families' defaults; the latent's flag default is the paper's 0.29). Tied, the tanh latent
  // feeding the embedding matrix learns this corpus slowly; untied with one layer it comes
  // within 15% of the optimal perplexity in 4 epochs (`bench/results/mos-runs.md`)
  defaults: {
    emsize: 64,
    nhid: 64,
    nhidlast: 64,
    nlayers: 1,
    experts: 3,
    dropoutl: 0,
    tied: false,
    epochs: 4,
  },
  presets: PRESETS,
  flags: {
    experts: { kind: "posint", default: 15, help: "number of softmax experts K" },
    nhidlast: { kind: "posint", default: 650, help: "hidden size of the last LSTM layer" },
    dropoutl: { kind: "prob", default: 0.29, help: "locked dropout on the MoS latent" },
  },
  phases: [
    "embedding_forward",
    "lstm_forward",
    "decoder_forward",
    "decoder_backward",
    "lstm_backward",
    "embedding_backward",
  ],
  evalNormalisation: "rows",
  benchPreset: "wt2-mos-small",
  // WikiText-2's vocabulary: the decoder and its K experts dominate the step
  benchVocab: 33278,
  config,
  paramSpecs: mosParamSpecs,
  // WeightDrop (awd-lstm-lm) wraps each LSTM as `.module` and keeps its raw recurrent weight
  stateDict: (c) =>
    namedStateDict(
      mosParamSpecs(c),
      c.tied ? [{ key: "decoder.weight", param: "encoder.weight" }] : [],
      c.wdrop > 0
        ? (n) =>
          n.replace(/^rnns\.(\d+)\./, "rnns.$1.module.").replace(
            /weight_hh_l0$/,
            "weight_hh_l0_raw",
          )
        : undefined,
    ),
  weightMacs: mosWeightMacs,
  cellsPerTimestep: (c) => c.layers,
  headBuffers: (c, rows, training) =>
    mosHeadBufferShapes({ K: c.experts, E: c.embed, V: c.vocab }, rows, training),
  width: (c) => c.hidden,
  withWidth: (c, w) => ({
    ...c,
    hidden: w,
    hiddenLast: c.hiddenLast === c.hidden ? w : c.hiddenLast,
  }),
  create(gpu, c, seed): Model<MosConfig> {
    const model = createMos(gpu, c, seed);
    return {
      family: "awd-mos",
      config: model.config,
      params: model.params,
      session: (opts) => gatedStackSession(gpu, model, opts),
    };
  },
};
