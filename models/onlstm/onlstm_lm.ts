/**
 * The ON-LSTM language model (Shen et al. 2019, "Ordered Neurons"; Selfish-RNN's
 * `ONLSTM/model.py` with the AWD-LSTM training devices, spec §2.3 and §14.2) as a gated stack
 * (`../parts/gated_stack.ts`) of ON-LSTM cells (`kernels/cells/onlstm_cell.ts`).
 *
 * ```text
 * ids → embedding [V, E] → row dropout p_e → locked p_i → ON-LSTM_0 → locked p_h → …
 *     → ON-LSTM_{L-1} → locked p → decoder ([V, E], tied or not) → softmax cross-entropy
 * ```
 *
 * Layer l has hidden size H_l = `hidden` for l < L − 1 and `embed` for the last (the released
 * `ONLSTMStack([ninp] + [nhid]·(L−1) + [ninp])`), n_l = H_l / C chunks of `chunkSize` C, and
 * G_l = 4H_l + 2n_l pre-activation rows in the order master-input [n], master-forget [n], o, ĉ,
 * i, f [H each]. Tensors (PyTorch names): `rnn.cells.{l}.ih.0.weight [G_l, in_l]` and its
 * `bias`, `rnn.cells.{l}.hh.weight [G_l, H_l]` and its `bias` (WeightDrop acts on the weight
 * only). AR (α) and TAR (β) both read the raw last-layer output (the released code appends it
 * undropped).
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import {
  ONLSTM_MAX_CHUNKS,
  onLstmActWidth,
  onLstmCellBackward,
  onLstmCellForward,
} from "../../kernels/cells/onlstm_cell.ts";
import { createParams, type Param, type ParamSpec } from "../params.ts";
import { decoderStackHead } from "../parts/stack_head.ts";
import type { GatedCell } from "../parts/gated_layer.ts";
import { type AwdDevices, checkStackSettings, type GatedStack } from "../parts/gated_stack.ts";
import type { WeightDropConvention } from "../parts/weight_drop.ts";

/**
 * Row blocks of the gate rows that Selfish-RNN's per-gate regrowth and the per-gate densities
 * read: the true gates `[n, n, H, H, H, H]` (spec §14.2, the default), or the released script's
 * `torch.chunk(G, 4)` (four near-equal blocks that cut across the gates, e.g. 1208/1208/1208/1206).
 */
export type OnLstmGateBlocks = "gates" | "chunk4";

/** The true gates' row blocks in the pre-activation order: master input and forget, o, ĉ, i, f. */
export const ONLSTM_GATE_NAMES: readonly string[] = ["master i", "master f", "o", "ĉ", "i", "f"];

/** The gate-block choices, for flag parsing. */
export const ONLSTM_GATE_BLOCKS: readonly OnLstmGateBlocks[] = ["gates", "chunk4"];

/** Architecture and regularisers of the ON-LSTM LM. */
export interface OnLstmConfig {
  vocab: number;
  /** Embedding size E, also the last layer's hidden size. */
  embed: number;
  /** Hidden size of the layers below the last. */
  hidden: number;
  layers: number;
  /** Chunk size C (divides every H_l). */
  chunkSize: number;
  tied: boolean;
  /** Locked dropout of the last layer's output. */
  dropout: number;
  /** Locked dropout between layers. */
  dropouth: number;
  /** Locked dropout of the embedding output. */
  dropouti: number;
  /** Embedding-row dropout. */
  dropoute: number;
  /** DropConnect on every `hh.weight` (0 = none). */
  wdrop: number;
  wdropConvention: WeightDropConvention;
  alpha: number;
  beta: number;
  gateBlocks: OnLstmGateBlocks;
}

/**
 * Hidden size of each layer: `hidden` below the last, `embed` for the last.
 *
 * @example
 * ```ts
 * import { onLstmLayerSizes } from "./onlstm_lm.ts";
 * onLstmLayerSizes({ embed: 400, hidden: 1150, layers: 3 }); // [1150, 1150, 400]
 * ```
 */
export function onLstmLayerSizes(c: Pick<OnLstmConfig, "embed" | "hidden" | "layers">): number[] {
  return Array.from({ length: c.layers }, (_, l) => (l < c.layers - 1 ? c.hidden : c.embed));
}

/**
 * The ON-LSTM cell of chunk size C as the gated layer runs it: `4H + 2H/C` pre-activations.
 *
 * @example
 * ```ts
 * import { onLstmCell } from "./onlstm_lm.ts";
 * onLstmCell(10).width(1150); // 4830
 * ```
 */
export function onLstmCell(chunkSize: number): GatedCell {
  const chunks = (H: number) => H / chunkSize;
  return {
    width: (H) => onLstmActWidth(H, chunks(H)),
    forward: (gpu, a) => onLstmCellForward(gpu, { ...a, chunks: chunks(a.cPrev.shape[1]) }),
    backward: (gpu, a) => onLstmCellBackward(gpu, { ...a, chunks: chunks(a.cPrev.shape[1]) }),
  };
}

/**
 * Checks a config: sizes, chunking (C divides every H_l, at most `ONLSTM_MAX_CHUNKS` chunks),
 * probabilities. Throws RangeError naming the field.
 *
 * @example
 * ```ts ignore
 * checkOnLstmConfig(config);
 * ```
 */
export function checkOnLstmConfig(c: OnLstmConfig): void {
  if (!Number.isInteger(c.layers) || c.layers < 1) {
    throw new RangeError(`OnLstmConfig.layers must be an integer >= 1, got ${c.layers}`);
  }
  checkStackSettings("OnLstmConfig", { ...c, hidden: onLstmLayerSizes(c), awd: onLstmAwd(c) });
  const C = c.chunkSize;
  if (!Number.isInteger(C) || C < 1) {
    throw new RangeError(`OnLstmConfig.chunkSize must be an integer >= 1, got ${C}`);
  }
  for (const [l, H] of onLstmLayerSizes(c).entries()) {
    if (H % C !== 0 || H / C > ONLSTM_MAX_CHUNKS) {
      throw new RangeError(
        `OnLstmConfig: layer ${l}'s hidden size ${H} must be a multiple of the chunk size ${C} ` +
          `with at most ${ONLSTM_MAX_CHUNKS} chunks`,
      );
    }
  }
  if (!ONLSTM_GATE_BLOCKS.includes(c.gateBlocks)) {
    throw new RangeError(`OnLstmConfig.gateBlocks must be one of ${ONLSTM_GATE_BLOCKS.join(", ")}`);
  }
}

/**
 * The AWD devices an ON-LSTM config implies: always locked dropout, AR/TAR and WeightDrop when
 * set.
 *
 * @example
 * ```ts ignore
 * onLstmAwd(config).locked; // true
 * ```
 */
export function onLstmAwd(c: OnLstmConfig): AwdDevices {
  return {
    locked: true,
    dropouti: c.dropouti,
    dropouth: c.dropouth,
    dropoute: c.dropoute,
    alpha: c.alpha,
    beta: c.beta,
    ...(c.wdrop > 0 ? { wdrop: { p: c.wdrop, convention: c.wdropConvention } } : {}),
  };
}

/** `torch.chunk(rows, 4)`: blocks of ⌈rows/4⌉, the last one the rest. */
function chunk4(rows: number): number[] {
  const size = Math.ceil(rows / 4);
  const out: number[] = [];
  for (let r = 0; r < rows; r += size) out.push(Math.min(size, rows - r));
  return out;
}

/** Names of layer l's four tensors. */
export function onLstmLayerNames(l: number): { ih: string; hh: string; bih: string; bhh: string } {
  const p = `rnn.cells.${l}`;
  return {
    ih: `${p}.ih.0.weight`,
    bih: `${p}.ih.0.bias`,
    hh: `${p}.hh.weight`,
    bhh: `${p}.hh.bias`,
  };
}

/**
 * Parameter list, in order: `encoder.weight [V, E]`, per layer l `rnn.cells.{l}.ih.0.weight
 * [G_l, in_l]`, `rnn.cells.{l}.ih.0.bias [G_l]`, `rnn.cells.{l}.hh.weight [G_l, H_l]`,
 * `rnn.cells.{l}.hh.bias [G_l]`, then `decoder.weight [V, E]` (absent when tied) and
 * `decoder.bias [V]`. Init as the released code: embedding and decoder weight U(−0.1, 0.1),
 * decoder bias 0, each Linear's weight and bias U(±1/√fan_in) (PyTorch's default). Every
 * non-bias tensor is sparse.
 *
 * @example
 * ```ts
 * import { onLstmParamSpecs } from "./onlstm_lm.ts";
 * const specs = onLstmParamSpecs({
 *   vocab: 10000, embed: 400, hidden: 1150, layers: 3, chunkSize: 10, tied: true,
 *   dropout: 0.45, dropouth: 0.3, dropouti: 0.5, dropoute: 0.1, wdrop: 0.45,
 *   wdropConvention: "eval-scaled", alpha: 2, beta: 1, gateBlocks: "gates",
 * });
 * specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0); // 25_232_180
 * ```
 */
export function onLstmParamSpecs(config: OnLstmConfig): ParamSpec[] {
  checkOnLstmConfig(config);
  const { vocab: V, embed: E, chunkSize: C } = config;
  const sizes = onLstmLayerSizes(config);
  const specs: ParamSpec[] = [{
    name: "encoder.weight",
    shape: [V, E],
    blocks: [V],
    sparse: true,
    init: { kind: "uniform", lo: -0.1, hi: 0.1 },
  }];
  sizes.forEach((H, l) => {
    const n = H / C, G = onLstmActWidth(H, n);
    const inSize = l === 0 ? E : sizes[l - 1];
    const rows = config.gateBlocks === "gates"
      ? { blocks: [n, n, H, H, H, H], blockNames: ONLSTM_GATE_NAMES }
      : { blocks: chunk4(G) };
    const u = (fanIn: number) =>
      ({ kind: "uniform", lo: -1 / Math.sqrt(fanIn), hi: 1 / Math.sqrt(fanIn) }) as const;
    const names = onLstmLayerNames(l);
    specs.push(
      { name: names.ih, shape: [G, inSize], ...rows, sparse: true, init: u(inSize) },
      { name: names.bih, shape: [G], ...rows, sparse: false, init: u(inSize) },
      { name: names.hh, shape: [G, H], ...rows, sparse: true, init: u(H) },
      { name: names.bhh, shape: [G], ...rows, sparse: false, init: u(H) },
    );
  });
  if (!config.tied) {
    specs.push({
      name: "decoder.weight",
      shape: [V, E],
      blocks: [V],
      sparse: true,
      init: { kind: "uniform", lo: -0.1, hi: 0.1 },
    });
  }
  specs.push({
    name: "decoder.bias",
    shape: [V],
    blocks: [V],
    sparse: false,
    init: { kind: "zeros" },
  });
  return specs;
}

/** An ON-LSTM LM on the GPU: the gated stack of ON-LSTM cells, and its config. */
export interface OnLstmLm extends GatedStack {
  config: OnLstmConfig;
  /** `decoder.weight`; the very same record as `encoder` when tied. */
  decoderWeight: Param;
  /** `decoder.bias`: `[V]`. */
  decoderBias: Param;
}

/**
 * Allocates the model and records its initialisation from `seed`.
 *
 * @example
 * ```ts ignore
 * const model = createOnLstm(gpu, config, 141);
 * ```
 */
export function createOnLstm(gpu: Gpu, config: OnLstmConfig, seed: number): OnLstmLm {
  const params = createParams(gpu, onLstmParamSpecs(config), seed);
  const by = new Map(params.map((p) => [p.name, p]));
  const sizes = onLstmLayerSizes(config);
  const layers = sizes.map((_, l) => {
    const n = onLstmLayerNames(l);
    return { wIh: by.get(n.ih)!, bIh: by.get(n.bih)!, wHh: by.get(n.hh)!, bHh: by.get(n.bhh)! };
  });
  const encoder = by.get("encoder.weight")!;
  const decoderWeight = config.tied ? encoder : by.get("decoder.weight")!;
  const decoderBias = by.get("decoder.bias")!;
  return {
    config: { ...config },
    vocab: config.vocab,
    embed: config.embed,
    hidden: sizes,
    dropout: config.dropout,
    tied: config.tied,
    awd: onLstmAwd(config),
    arOn: "raw",
    cell: onLstmCell(config.chunkSize),
    phase: "onlstm",
    params,
    encoder,
    layers,
    decoderWeight,
    decoderBias,
    head: decoderStackHead({ weight: decoderWeight, bias: decoderBias }),
  };
}
