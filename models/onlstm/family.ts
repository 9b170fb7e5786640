/**
 * The ON-LSTM family (`--model onlstm`, spec §2.3 and §14.2) behind the model contract: the
 * paper's preset and one that trains on a CPU, the validation of its settings, its costs and
 * width, and sessions over the gated stack (`../parts/gated_stack.ts`).
 *
 * @module
 */

import { decoderHeadBufferShapes } from "../parts/stack_head.ts";
import { onLstmActWidth } from "../../kernels/cells/onlstm_cell.ts";
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
  checkOnLstmConfig,
  createOnLstm,
  ONLSTM_GATE_BLOCKS,
  type OnLstmConfig,
  type OnLstmGateBlocks,
  onLstmLayerNames,
  onLstmLayerSizes,
  onLstmParamSpecs,
} from "./onlstm_lm.ts";

/**
 * Forward multiply-adds per token of each weight: every `ih` and `hh` weight (`G_l × in`, one
 * product per token), the decoder (`V × E`; tied, the encoder tensor), the lookup 0.
 *
 * @example
 * ```ts
 * import { onLstmWeightMacs } from "./family.ts";
 * const w = onLstmWeightMacs({
 *   vocab: 10000, embed: 400, hidden: 1150, layers: 3, chunkSize: 10, tied: true,
 *   dropout: 0, dropouth: 0, dropouti: 0, dropoute: 0, wdrop: 0,
 *   wdropConvention: "eval-scaled", alpha: 0, beta: 0, gateBlocks: "gates",
 * });
 * w.reduce((s, x) => s + x.macs, 0); // 25_199_500: every sparse tensor once
 * ```
 */
export function onLstmWeightMacs(c: OnLstmConfig): WeightMacs[] {
  const sizes = onLstmLayerSizes(c);
  const out: WeightMacs[] = [{ name: "encoder.weight", macs: c.tied ? c.vocab * c.embed : 0 }];
  sizes.forEach((H, l) => {
    const G = onLstmActWidth(H, H / c.chunkSize);
    const n = onLstmLayerNames(l);
    out.push({ name: n.ih, macs: G * (l === 0 ? c.embed : sizes[l - 1]) });
    out.push({ name: n.hh, macs: G * H });
  });
  if (!c.tied) out.push({ name: "decoder.weight", macs: c.vocab * c.embed });
  return out;
}

function config(s: ModelSettings): OnLstmConfig {
  const chunkSize = s.flags["chunk-size"];
  if (typeof chunkSize !== "number" || !Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new ModelConfigError(`--chunk-size: expected an integer > 0, got ${chunkSize}`);
  }
  const gateBlocks = s.flags["gate-blocks"] as OnLstmGateBlocks;
  if (!ONLSTM_GATE_BLOCKS.includes(gateBlocks)) {
    throw new ModelConfigError(
      `--gate-blocks: expected one of ${ONLSTM_GATE_BLOCKS.join(", ")}, got ${
        JSON.stringify(gateBlocks)
      }`,
    );
  }
  const c: OnLstmConfig = {
    vocab: s.vocab,
    embed: s.emsize,
    hidden: s.nhid,
    layers: s.nlayers,
    chunkSize,
    tied: s.tied,
    dropout: s.dropout,
    dropouth: s.dropouth,
    dropouti: s.dropouti,
    dropoute: s.dropoute,
    wdrop: s.wdrop,
    wdropConvention: s.wdropConvention,
    alpha: s.alpha,
    beta: s.beta,
    gateBlocks,
  };
  for (const [l, H] of onLstmLayerSizes(c).entries()) {
    if (H % chunkSize !== 0) {
      const flag = l < c.layers - 1 ? "--nhid" : "--emsize (the last layer's size)";
      throw new ModelConfigError(
        `${flag} ${H} is not a multiple of --chunk-size ${chunkSize} (layer ${l})`,
      );
    }
  }
  try {
    checkOnLstmConfig(c);
  } catch (e) {
    throw new ModelConfigError((e as Error).message);
  }
  return c;
}

/** Presets (flag names, as in a `--config` file). */
const PRESETS: Readonly<Record<string, Readonly<Record<string, FlagValue>>>> = {
  // the paper's Selfish-RNN command (spec §2.3): 1000 epochs, SNT-ASGD restarted at epoch 500
  "ptb-onlstm": {
    method: "selfish",
    density: 0.45,
    "death-rate": 0.5,
    emsize: 400,
    nhid: 1150,
    nlayers: 3,
    "chunk-size": 10,
    tied: true,
    "batch-size": 20,
    bptt: 70,
    "variable-bptt": true,
    optimizer: "ntasgd",
    lr: 15,
    clip: 0.25,
    wdecay: 1.2e-6,
    dropout: 0.45,
    dropouth: 0.3,
    dropouti: 0.5,
    dropoute: 0.1,
    wdrop: 0.45,
    alpha: 2,
    beta: 1,
    seed: 141,
    nonmono: 5,
    epochs: 1000,
    "asgd-restarts": "500",
    "eval-batch-size": 10,
    "test-batch-size": 1,
  },
  // spec §14.5: 128 → 256 → 256 → 128, chunk 8, on a 2-core CPU
  "ptb-onlstm-small": {
    method: "selfish",
    density: 0.45,
    "death-rate": 0.5,
    emsize: 128,
    nhid: 256,
    nlayers: 3,
    "chunk-size": 8,
    tied: true,
    "batch-size": 20,
    bptt: 35,
    "variable-bptt": true,
    optimizer: "ntasgd",
    lr: 15,
    clip: 0.25,
    wdecay: 1.2e-6,
    dropout: 0.25,
    dropouth: 0.15,
    dropouti: 0.25,
    dropoute: 0.05,
    wdrop: 0.2,
    alpha: 2,
    beta: 1,
    seed: 141,
    nonmono: 5,
    epochs: 20,
    "eval-batch-size": 10,
    "test-batch-size": 1,
  },
};

/**
 * The ON-LSTM LM (Shen et al. 2019) with AWD-LSTM's regularisers, as Selfish-RNN trains it.
 *
 * @example
 * ```ts ignore
 * const cfg = onLstmFamily.config({ ...settings, flags: { "chunk-size": 10, "gate-blocks": "gates" } });
 * const model = onLstmFamily.create(gpu, cfg, 141);
 * ```
 */
export const onLstmFamily: ModelFamily<OnLstmConfig> = {
  name: "onlstm",
  summary: "ON-LSTM (Shen et al. 2019) with AWD-LSTM regularisers, spec §2.3",
  // a run with no preset: a small ON-LSTM on the synthetic corpus; the released code's
  // WeightDrop convention (no rescaling in training, × (1 − p) at evaluation)
  defaults: {
    emsize: 64,
    nhid: 64,
    nlayers: 2,
    "chunk-size": 8,
    "wdrop-convention": "eval-scaled",
    epochs: 3,
  },
  presets: PRESETS,
  flags: {
    "chunk-size": { kind: "posint", default: 10, help: "chunk size C of the master gates" },
    "gate-blocks": {
      kind: "string",
      default: "gates",
      help: "row blocks for per-gate regrowth: gates ([n, n, H, H, H, H]) or chunk4 (released)",
    },
  },
  phases: [
    "embedding_forward",
    "onlstm_forward",
    "decoder_forward",
    "decoder_backward",
    "onlstm_backward",
    "embedding_backward",
  ],
  evalNormalisation: "rows",
  benchPreset: "ptb-onlstm-small",
  config,
  paramSpecs: onLstmParamSpecs,
  stateDict: (c) =>
    namedStateDict(
      onLstmParamSpecs(c),
      c.tied ? [{ key: "decoder.weight", param: "encoder.weight" }] : [],
    ),
  weightMacs: onLstmWeightMacs,
  cellsPerTimestep: (c) => c.layers,
  headBuffers: (c, rows) => decoderHeadBufferShapes(c.vocab, rows),
  // the width is counted in chunks, so every width small-dense tries is a valid model
  width: (c) => c.hidden / c.chunkSize,
  withWidth: (c, w) => {
    const H = w * c.chunkSize;
    return { ...c, hidden: H, embed: c.embed === c.hidden ? H : c.embed };
  },
  create(gpu, c, seed): Model<OnLstmConfig> {
    const model = createOnLstm(gpu, c, seed);
    return {
      family: "onlstm",
      config: model.config,
      params: model.params,
      session: (opts) => gatedStackSession(gpu, model, opts),
    };
  },
};
