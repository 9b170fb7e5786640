/**
 * The stacked-LSTM family (`--model lstm`, spec §2.1) behind the model contract: its presets,
 * the validation of its settings, its costs and width, and sessions over the program in
 * `lstm_lm.ts`.
 *
 * @module
 */

import { decoderHeadBufferShapes } from "../parts/stack_head.ts";
import {
  type FlagValue,
  type Model,
  ModelConfigError,
  type ModelFamily,
  type ModelSettings,
  namedStateDict,
  type WeightMacs,
} from "../model.ts";
import { createLstmLm, type LstmLmConfig, lstmLmParamSpecs } from "./lstm_lm.ts";
import { gatedStackSession } from "../parts/gated_stack.ts";

/**
 * Forward multiply-adds per token of each weight of the stacked LSTM: every `rnn.weight_*`
 * (`4H × in`, one product per token), the decoder (`V × H`; tied, the encoder tensor plays
 * this role), the encoder lookup 0.
 *
 * @example
 * ```ts
 * import { lstmWeightMacs } from "./family.ts";
 * const w = lstmWeightMacs({
 *   vocab: 10000, embed: 1500, hidden: 1500, layers: 2, dropout: 0, tied: false,
 * });
 * w.reduce((s, x) => s + x.macs, 0); // 51_000_000 (spec §9: 36M LSTM + 15M softmax)
 * ```
 */
export function lstmWeightMacs(c: LstmLmConfig): WeightMacs[] {
  const out: WeightMacs[] = [{ name: "encoder.weight", macs: c.tied ? c.vocab * c.hidden : 0 }];
  for (let l = 0; l < c.layers; l++) {
    const inSize = l === 0 ? c.embed : c.hidden;
    out.push({ name: `rnn.weight_ih_l${l}`, macs: 4 * c.hidden * inSize });
    out.push({ name: `rnn.weight_hh_l${l}`, macs: 4 * c.hidden * c.hidden });
  }
  if (!c.tied) out.push({ name: "decoder.weight", macs: c.vocab * c.hidden });
  return out;
}

/** The family's config from run settings. */
function config(s: ModelSettings): LstmLmConfig {
  const locked = s.flags["locked-dropout"] === true;
  for (const flag of ["dropouth", "dropouti"] as const) {
    if (s[flag] !== 0 && !locked) {
      throw new ModelConfigError(
        `--${flag} ${s[flag]} needs --locked-dropout: the stacked LSTM's standard dropout ` +
          "uses --dropout at every site",
      );
    }
  }
  if (s.tied && s.emsize !== s.nhid) {
    throw new ModelConfigError(
      `--tied needs --emsize equal to --nhid (got ${s.emsize} and ${s.nhid})`,
    );
  }
  const awd = locked || s.dropoute > 0 || s.alpha > 0 || s.beta > 0 || s.wdrop > 0;
  return {
    vocab: s.vocab,
    embed: s.emsize,
    hidden: s.nhid,
    layers: s.nlayers,
    dropout: s.dropout,
    tied: s.tied,
    ...(awd
      ? {
        awd: {
          locked,
          dropouti: s.dropouti,
          dropouth: s.dropouth,
          dropoute: s.dropoute,
          alpha: s.alpha,
          beta: s.beta,
          ...(s.wdrop > 0 ? { wdrop: { p: s.wdrop, convention: s.wdropConvention } } : {}),
        },
      }
      : {}),
  };
}

/** Presets of the stacked LSTM (flag names, as in a `--config` file). */
const PRESETS: Readonly<Record<string, Readonly<Record<string, FlagValue>>>> = {
  // the paper's Selfish-RNN command (spec §2.1); --method dense gives the dense baseline
  "ptb-lstm-large": {
    method: "selfish",
    density: 0.33,
    "death-rate": 0.8,
    emsize: 1500,
    nhid: 1500,
    nlayers: 2,
    lr: 40,
    clip: 0.25,
    dropout: 0.65,
    epochs: 100,
    "batch-size": 20,
    bptt: 35,
    wdecay: 1.2e-6,
    optimizer: "ntasgd",
    // main.py's evaluation batch, for validation and test alike (spec §1)
    "eval-batch-size": 20,
  },
  "ptb-lstm-medium": {
    emsize: 650,
    nhid: 650,
    nlayers: 2,
    lr: 20,
    clip: 0.25,
    dropout: 0.5,
    epochs: 40,
    "batch-size": 20,
    bptt: 35,
    wdecay: 1.2e-6,
    optimizer: "ntasgd",
  },
  "ptb-lstm-small": {
    emsize: 200,
    nhid: 200,
    nlayers: 2,
    lr: 20,
    clip: 0.25,
    dropout: 0,
    epochs: 13,
    "batch-size": 20,
    bptt: 35,
    optimizer: "sgd",
  },
};

/**
 * The stacked LSTM LM (Zaremba et al. 2014; Selfish-RNN's `Stacked_LSTM`).
 *
 * @example
 * ```ts ignore
 * const cfg = lstmFamily.config({ ...settings, vocab: 10000 });
 * const model = lstmFamily.create(gpu, cfg, 1111);
 * ```
 */
export const lstmFamily: ModelFamily<LstmLmConfig> = {
  name: "lstm",
  summary: "stacked LSTM (Zaremba et al. 2014), spec §2.1",
  // the shared defaults are this family's: a small model on the synthetic corpus
  defaults: {},
  presets: PRESETS,
  flags: {
    "locked-dropout": {
      kind: "bool",
      default: false,
      help: "AWD-LSTM's locked dropout: --dropouti, --dropouth, --dropout per window",
    },
  },
  phases: [
    "embedding_forward",
    "lstm_forward",
    "decoder_forward",
    "decoder_backward",
    "lstm_backward",
    "embedding_backward",
  ],
  evalNormalisation: "targets",
  benchPreset: "ptb-lstm-small",
  config,
  paramSpecs: lstmLmParamSpecs,
  stateDict: (c) =>
    namedStateDict(
      lstmLmParamSpecs(c),
      c.tied ? [{ key: "decoder.weight", param: "encoder.weight" }] : [],
    ),
  weightMacs: lstmWeightMacs,
  cellsPerTimestep: (c) => c.layers,
  // unit k of layer l: its gate rows in W_ih_l and W_hh_l, and the columns reading h_l[k] (W_hh_l,
  // then W_ih_{l+1} or the decoder: with a tied decoder, the embedding's columns)
  hiddenUnits: (c) =>
    Array.from({ length: c.layers }, (_, l) => ({
      units: c.hidden,
      rows: [`rnn.weight_ih_l${l}`, `rnn.weight_hh_l${l}`],
      biases: [`rnn.bias_ih_l${l}`, `rnn.bias_hh_l${l}`],
      cols: [
        `rnn.weight_hh_l${l}`,
        l + 1 < c.layers ? `rnn.weight_ih_l${l + 1}` : c.tied ? "encoder.weight" : "decoder.weight",
      ],
    })),
  // one hidden size for every layer: the largest, the others padded with all-zero units (which
  // output exactly 0); a tied decoder would have to shrink the embedding too
  withHiddenSizes: (c, sizes) => c.tied ? null : { ...c, hidden: Math.max(...sizes) },
  headBuffers: (c, rows) => decoderHeadBufferShapes(c.vocab, rows),
  width: (c) => c.hidden,
  // the embedding follows the hidden size when they are equal (tied or the paper's 1500/1500)
  withWidth: (c, w) => ({ ...c, hidden: w, embed: c.embed === c.hidden ? w : c.embed }),
  create(gpu, c, seed): Model<LstmLmConfig> {
    const model = createLstmLm(gpu, c, seed);
    return {
      family: "lstm",
      config: model.config,
      params: model.params,
      session: (opts) => gatedStackSession(gpu, model, opts),
    };
  },
};
