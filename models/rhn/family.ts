/**
 * The Recurrent Highway Network family (`--model rhn`, spec §2.2 and §14.1) behind the model
 * contract: presets (the paper's and one that trains on a CPU), the validation of its settings,
 * its costs and width, and sessions over the program in `rhn_lm.ts`.
 *
 * @module
 */

import { decoderHeadBufferShapes } from "../parts/stack_head.ts";
import type { Gpu } from "../../kernels/runtime/runtime.ts";
import {
  type FlagValue,
  type Model,
  ModelConfigError,
  type ModelFamily,
  type ModelSession,
  type ModelSettings,
  namedStateDict,
  type WeightMacs,
} from "../model.ts";
import type { TokenBatch } from "../parts/token_batch.ts";
import {
  createRhn,
  createRhnWorkspace,
  releaseRhnWorkspace,
  type RhnConfig,
  rhnEvalLoss,
  type RhnLm,
  rhnParamSpecs,
  rhnStep,
  writeRhnBatch,
} from "./rhn_lm.ts";

/**
 * Forward multiply-adds per token of each weight: W (`2H × E`, once per token), every R
 * (`2H × H`, once per token: one micro-step each), the decoder (`V × H`; tied, the embedding
 * tensor), the lookup 0.
 *
 * @example
 * ```ts
 * import { rhnWeightMacs } from "./family.ts";
 * const w = rhnWeightMacs({
 *   vocab: 10000, embed: 830, hidden: 830, depth: 10, tied: true,
 *   dropout: 0, dropouth: 0, dropouti: 0, dropoute: 0,
 * });
 * w.reduce((s, x) => s + x.macs, 0); // 11 · 1660 · 830 + 10000 · 830
 * ```
 */
export function rhnWeightMacs(c: RhnConfig): WeightMacs[] {
  const p = "rnns.0.highways";
  const out: WeightMacs[] = [
    { name: "embedding.weight", macs: c.tied ? c.vocab * c.hidden : 0 },
    { name: `${p}.0.W.weight`, macs: 2 * c.hidden * c.embed },
  ];
  for (let l = 0; l < c.depth; l++) {
    out.push({ name: `${p}.${l}.R.weight`, macs: 2 * c.hidden * c.hidden });
  }
  if (!c.tied) out.push({ name: "fc1.weight", macs: c.vocab * c.hidden });
  return out;
}

function config(s: ModelSettings): RhnConfig {
  for (const flag of ["wdrop", "alpha", "beta"] as const) {
    if (s[flag] !== 0) {
      throw new ModelConfigError(
        `--${flag} ${s[flag]}: the RHN of spec §14.1 has no ${
          flag === "wdrop" ? "WeightDrop" : "AR/TAR"
        }`,
      );
    }
  }
  if (s.nlayers !== 1) {
    throw new ModelConfigError(
      `--nlayers ${s.nlayers}: the RHN is one highway layer (its depth is --depth)`,
    );
  }
  if (s.tied && s.emsize !== s.nhid) {
    throw new ModelConfigError(
      `--tied needs --emsize equal to --nhid (got ${s.emsize} and ${s.nhid})`,
    );
  }
  const depth = s.flags.depth;
  if (typeof depth !== "number" || !Number.isInteger(depth) || depth < 1) {
    throw new ModelConfigError(`--depth: expected an integer > 0, got ${depth}`);
  }
  return {
    vocab: s.vocab,
    embed: s.emsize,
    hidden: s.nhid,
    depth,
    tied: s.tied,
    dropout: s.dropout,
    dropouth: s.dropouth,
    dropouti: s.dropouti,
    dropoute: s.dropoute,
  };
}

function session(
  gpu: Gpu,
  model: RhnLm,
  opts: { maxT: number; B: number; training: boolean },
): ModelSession {
  const ws = createRhnWorkspace(gpu, model, opts);
  return {
    B: opts.B,
    maxT: opts.maxT,
    writeBatch: (w) => writeRhnBatch(gpu, ws, w),
    // batches come from this session's writeBatch, which gives token batches
    step: (batch, ctx) => rhnStep(gpu, model, ws, batch as TokenBatch, ctx),
    evalLoss: (batch, o) => rhnEvalLoss(gpu, model, ws, batch as TokenBatch, o),
    resetState: () => gpu.fill(ws.state, 0),
    stateTensors: () => ({ "state.s": ws.state }),
    release: () => releaseRhnWorkspace(gpu, ws),
  };
}

const PRESETS: Readonly<Record<string, Readonly<Record<string, FlagValue>>>> = {
  // the paper's Selfish-RNN command (spec §2.2); --method dense gives the dense baseline
  "ptb-rhn": {
    method: "selfish",
    density: 0.472,
    "death-rate": 0.5,
    emsize: 830,
    nhid: 830,
    nlayers: 1,
    depth: 10,
    tied: true,
    "batch-size": 20,
    bptt: 35,
    optimizer: "ntasgd",
    lr: 15,
    clip: 0.25,
    wdecay: 1.2e-6,
    dropout: 0.65,
    dropouth: 0.25,
    dropouti: 0.65,
    dropoute: 0.2,
    seed: 42,
    nonmono: 5,
    epochs: 500,
    // main.py's evaluation batch, for validation and test alike (spec §1)
    "eval-batch-size": 20,
  },
  // spec §14.5: ~2.4M MACs per token, ~15-19 min per PTB epoch on a 2-core CPU
  "ptb-rhn-small": {
    method: "selfish",
    density: 0.472,
    "death-rate": 0.5,
    emsize: 200,
    nhid: 200,
    nlayers: 1,
    depth: 4,
    tied: true,
    "batch-size": 20,
    bptt: 35,
    optimizer: "ntasgd",
    lr: 15,
    clip: 0.25,
    wdecay: 1.2e-6,
    dropout: 0.3,
    dropouth: 0.1,
    dropouti: 0.3,
    dropoute: 0.05,
    seed: 42,
    nonmono: 5,
    epochs: 20,
  },
};

/**
 * The RHN LM (Zilly et al. 2017; Selfish-RNN's `RHN`: one layer, coupled carry gate).
 *
 * @example
 * ```ts ignore
 * const cfg = rhnFamily.config({ ...settings, flags: { depth: 10 } });
 * const model = rhnFamily.create(gpu, cfg, 42);
 * ```
 */
export const rhnFamily: ModelFamily<RhnConfig> = {
  name: "rhn",
  summary: "recurrent highway network (Zilly et al. 2017), coupled carry gate, spec §2.2",
  // a run with no preset: a small RHN on the synthetic corpus. Measured with Adam β1 = 0 (the
  // Table 3 Adam): every variant (64 or 128 units, depth 2 or 3, tied or not, lr 0.005-0.02)
  // stalled at 1.16-1.25× the optimal perplexity; with β1 = 0.9, 64 untied units at depth 3
  // reached 1.10× after 3 epochs
  defaults: { emsize: 64, nhid: 64, nlayers: 1, depth: 3, tied: false, lr: 0.01, epochs: 3 },
  presets: PRESETS,
  flags: { depth: { kind: "posint", default: 10, help: "recurrence depth L" } },
  phases: [
    "embedding_forward",
    "rhn_forward",
    "decoder_forward",
    "decoder_backward",
    "rhn_backward",
    "embedding_backward",
  ],
  evalNormalisation: "targets",
  benchPreset: "ptb-rhn-small",
  config,
  paramSpecs: rhnParamSpecs,
  stateDict: (c) =>
    namedStateDict(
      rhnParamSpecs(c),
      c.tied ? [{ key: "fc1.weight", param: "embedding.weight" }] : [],
    ),
  weightMacs: rhnWeightMacs,
  cellsPerTimestep: (c) => c.depth,
  headBuffers: (c, rows) => decoderHeadBufferShapes(c.vocab, rows),
  width: (c) => c.hidden,
  withWidth: (c, w) => ({ ...c, hidden: w, embed: c.embed === c.hidden ? w : c.embed }),
  // one layer of H state units across all depths: unit k's rows in both blocks (H and T) of W and
  // every R_d, its columns in every R_d and in the decoder (tied: the embedding's)
  hiddenUnits: (c) => [{
    units: c.hidden,
    rows: Array.from({ length: c.depth }, (_, d) => `rnns.0.highways.${d}.R.weight`)
      .concat(["rnns.0.highways.0.W.weight"]),
    cols: Array.from({ length: c.depth }, (_, d) => `rnns.0.highways.${d}.R.weight`)
      .concat([c.tied ? "embedding.weight" : "fc1.weight"]),
    biases: Array.from({ length: c.depth }, (_, d) => `rnns.0.highways.${d}.R.bias`)
      .concat(["rnns.0.highways.0.W.bias"]),
  }],
  withHiddenSizes: (c, sizes) => (c.tied ? null : { ...c, hidden: sizes[0] }),
  create(gpu, c, seed): Model<RhnConfig> {
    const model = createRhn(gpu, c, seed);
    return {
      family: "rhn",
      config: model.config,
      params: model.params,
      session: (opts) => session(gpu, model, opts),
    };
  },
};
