/**
 * Stacked-LSTM language model (Zaremba et al. 2014, as in Selfish-RNN's `Stacked_LSTM`, spec
 * §2.1) on the GPU: parameter layout, forward, backward through time, evaluation.
 *
 * ```text
 * ids [T, B] → embedding [V, E] → dropout → LSTM_0 → dropout → … → LSTM_{L-1} → dropout
 *            → decoder (weight [V, H], bias [V]) → softmax cross-entropy (mean over T·B)
 * ```
 *
 * LSTM layer l (input size E for l = 0, else H) has `weight_ih [4H, in]`, `weight_hh [4H, H]`,
 * `bias_ih [4H]`, `bias_hh [4H]`, rows in gate blocks `[i, f, g, o]` (PyTorch). With `tied`, the
 * decoder weight is the embedding tensor itself (E = H); its gradient is the sum of both uses.
 *
 * Program of one training step ({@linkcode lstmLmStep}), all recorded, nothing read back:
 *
 * - forward: one gather for all T·B tokens; per layer one input projection for all T steps
 *   (`gates = X·W_ihᵀ + b_ih`, M = T·B), then per time step `gates[t] += h_{t-1}·W_hhᵀ`
 *   (matmul with β = 1) and the fused cell (adds `b_hh`, writes the activated gates over the
 *   pre-activations, c and h into `[T + 1, B, H]` buffers whose slot 0 is the carried state);
 *   decoder on all T·B rows at once; fused softmax-CE writing the loss rows and, in place of
 *   the logits, `dLogits` scaled by `1/(T·B)` (PyTorch's mean loss).
 * - backward: decoder `dW = dLogitsᵀ·Y`, `db = 1ᵀ·dLogits`, `dY = dLogits·W`; per layer, from
 *   the top, reverse over t: cell backward from `dH[t]` (which already holds the gradient from
 *   above plus, accumulated by the step t+1 matmul with β = 1, the recurrent gradient
 *   `dgates[t+1]·W_hh`); after the loop, one product each for `dW_hh = dGatesᵀ·H_prev` and
 *   `dW_ih = dGatesᵀ·X` (K = T·B), `db_ih = db_hh = 1ᵀ·dGates`, and `dX = dGates·W_ih` for the
 *   layer below; last, the deterministic embedding scatter from the host-built index.
 *
 * Truncated BPTT: the state `(h, c)` of every layer is copied in at the start of a window and
 * the final one copied out at the end of the forward pass; no gradient flows into it.
 *
 * Sparse weights, two storages (dispatched in `weight_ops.ts`): with `param.mask` set
 * (masked-dense), forward products and data gradients use `W ⊙ M` (masked matmul; for the
 * embedding, the gathered rows are multiplied by the gathered mask rows), while every weight
 * gradient is dense, `∂loss/∂(W ⊙ M)` at all positions (the optimizer masks its update;
 * RigL/SNFS read the dense gradient). With `param.csr` set (true sparse), products are SpMM,
 * transposed SpMM and SDDMM, and `value`/`grad` hold the active entries only. Gradients are
 * overwritten by each step, never accumulated.
 *
 * Dropout (standard, a fresh Bernoulli mask per element per use, inverted scaling) draws from
 * Philox with one `(seed, offset)` pair per dropout site per training step:
 * `offset = step·(L + 1) + site`, site 0 = embedding output, site l (1 ≤ l < L) = input of
 * layer l, site L = output of the last layer ({@linkcode lstmLmDropoutOffset}). A site covers
 * all T time steps in one launch, and Philox element indices differ per (t, b, j), so no mask is
 * ever reused; the backward pass regenerates each mask from the same pair (no mask buffers).
 *
 * Buffers: a {@linkcode LstmLmWorkspace} holds every activation and scratch tensor for a
 * `(maxT, B)` shape and is reused by every step (windows with T ≤ maxT use views of it), so a
 * steady-state step allocates nothing.
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import type { Tensor } from "../../kernels/runtime/tensor.ts";
import { lstmCellBackward, lstmCellForward } from "../../kernels/cells/lstm_cell.ts";
import { createParams, type Param, type ParamSpec } from "../params.ts";
import { equalBlocks } from "../model.ts";
import type { SparseRoute } from "../weight_ops.ts";
import { decoderStackHead } from "../parts/stack_head.ts";
import type { GatedCell, GatedLayer } from "../parts/gated_layer.ts";
import {
  type AwdDevices,
  checkStackSettings,
  createGatedStackState,
  createGatedStackWorkspace,
  type GatedStack,
  type GatedStackBatch,
  gatedStackDropoutOffset,
  gatedStackEvalLoss,
  type GatedStackState,
  gatedStackStep,
  type GatedStackStepOptions,
  type GatedStackWorkspace,
  releaseGatedStackWorkspace,
  resetGatedStackState,
  writeGatedStackBatch,
} from "../parts/gated_stack.ts";

/**
 * AWD-LSTM's training devices on the stacked LSTM (Merity et al. 2018, spec §2.3): locked
 * dropout (one `[B, D]` mask per window) at the L + 1 sites with p = `dropouti` (embedding
 * output), `dropouth` (between layers) and the config's `dropout` (output), embedding-row
 * dropout `dropoute`, and AR (α, on the dropped output) and TAR (β, on the raw output) in the
 * loss.
 */
export type LstmAwd = AwdDevices;

/** Architecture and dropout of the stacked LSTM LM. */
export interface LstmLmConfig {
  /** Vocabulary size V. */
  vocab: number;
  /** Embedding size E. */
  embed: number;
  /** Hidden size H of every layer. */
  hidden: number;
  /** Number of LSTM layers L ≥ 1. */
  layers: number;
  /** Dropout probability p in [0, 1) at every site during training (0 = none). */
  dropout: number;
  /** Decoder weight is the embedding tensor (requires E = H). */
  tied: boolean;
  /** AWD-LSTM's devices; absent = Zaremba's standard dropout `dropout` at every site. */
  awd?: LstmAwd;
}

/**
 * The four tensors of LSTM layer l: `rnn.weight_ih_l{l} [4H, in]` (gate row blocks i, f, g,
 * o), `rnn.weight_hh_l{l} [4H, H]`, `rnn.bias_ih_l{l} [4H]`, `rnn.bias_hh_l{l} [4H]`.
 */
export type LstmLayerParams = GatedLayer;

/** A stacked-LSTM LM on the GPU: the gated stack of LSTM cells, and its config. */
export interface LstmLm extends GatedStack {
  config: LstmLmConfig;
  /** `decoder.weight`; the very same record as `encoder` when tied. */
  decoderWeight: Param;
  /** `decoder.bias`: `[V]`. */
  decoderBias: Param;
}

const LSTM_GATE_NAMES: readonly string[] = ["i", "f", "g", "o"];

/**
 * Row blocks of an LSTM layer's `4H` gate rows and their names, in PyTorch's order: input,
 * forget, cell candidate, output.
 *
 * @example
 * ```ts
 * import { lstmGateRows } from "./lstm_lm.ts";
 * lstmGateRows(2); // { blocks: [2, 2, 2, 2], blockNames: ["i", "f", "g", "o"] }
 * ```
 */
export function lstmGateRows(H: number): Pick<ParamSpec, "blocks" | "blockNames"> {
  return { blocks: equalBlocks(4 * H, 4), blockNames: LSTM_GATE_NAMES };
}

/** The LSTM cell as the gated layer runs it: 4H pre-activations, blocks i, f, g, o. */
export const LSTM_CELL: GatedCell = {
  width: (H) => 4 * H,
  forward: lstmCellForward,
  backward: lstmCellBackward,
};

function checkConfig(c: LstmLmConfig): void {
  if (!Number.isInteger(c.layers) || c.layers < 1) {
    throw new RangeError(`LstmLmConfig.layers must be an integer >= 1, got ${c.layers}`);
  }
  checkStackSettings("LstmLmConfig", { ...c, hidden: Array(c.layers).fill(c.hidden) });
}

/**
 * Parameter list of the model, in order: `encoder.weight [V, E]`, then per layer l
 * `rnn.weight_ih_l{l} [4H, in]`, `rnn.weight_hh_l{l} [4H, H]`, `rnn.bias_ih_l{l} [4H]`,
 * `rnn.bias_hh_l{l} [4H]`, then `decoder.weight [V, H]` (absent when tied) and
 * `decoder.bias [V]`. Init (spec §2.1): embedding and decoder weight U(−0.1, 0.1), decoder bias
 * 0, LSTM weights and biases U(−1/√H, 1/√H). Every non-bias tensor is sparse.
 *
 * @example
 * ```ts
 * import { lstmLmParamSpecs } from "./lstm_lm.ts";
 * const specs = lstmLmParamSpecs({
 *   vocab: 10000, embed: 1500, hidden: 1500, layers: 2, dropout: 0.65, tied: false,
 * });
 * specs.map((s) => s.name); // ["encoder.weight", "rnn.weight_ih_l0", ..., "decoder.bias"]
 * ```
 */
export function lstmLmParamSpecs(config: LstmLmConfig): ParamSpec[] {
  checkConfig(config);
  const { vocab: V, embed: E, hidden: H, layers: L } = config;
  const r = 1 / Math.sqrt(H);
  const lstm = { kind: "uniform", lo: -r, hi: r } as const;
  const gateRows = lstmGateRows(H);
  const specs: ParamSpec[] = [{
    name: "encoder.weight",
    shape: [V, E],
    blocks: [V],
    sparse: true,
    init: { kind: "uniform", lo: -0.1, hi: 0.1 },
  }];
  for (let l = 0; l < L; l++) {
    const inSize = l === 0 ? E : H;
    specs.push(
      {
        name: `rnn.weight_ih_l${l}`,
        shape: [4 * H, inSize],
        ...gateRows,
        sparse: true,
        init: lstm,
      },
      {
        name: `rnn.weight_hh_l${l}`,
        shape: [4 * H, H],
        ...gateRows,
        sparse: true,
        init: lstm,
      },
      { name: `rnn.bias_ih_l${l}`, shape: [4 * H], ...gateRows, sparse: false, init: lstm },
      { name: `rnn.bias_hh_l${l}`, shape: [4 * H], ...gateRows, sparse: false, init: lstm },
    );
  }
  if (!config.tied) {
    specs.push({
      name: "decoder.weight",
      shape: [V, H],
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

/**
 * Allocates the model and records its initialisation from `seed` (reproducible on every
 * adapter, see `params.ts`). Biases have the same row blocks as the weights and are never
 * sparse.
 *
 * @example
 * ```ts ignore
 * const model = createLstmLm(gpu, {
 *   vocab: 10000, embed: 200, hidden: 200, layers: 2, dropout: 0.2, tied: false,
 * }, 1111);
 * ```
 */
export function createLstmLm(gpu: Gpu, config: LstmLmConfig, seed: number): LstmLm {
  const params = createParams(gpu, lstmLmParamSpecs(config), seed);
  const by = new Map(params.map((p) => [p.name, p]));
  const layers = Array.from({ length: config.layers }, (_, l) => ({
    wIh: by.get(`rnn.weight_ih_l${l}`)!,
    wHh: by.get(`rnn.weight_hh_l${l}`)!,
    bIh: by.get(`rnn.bias_ih_l${l}`)!,
    bHh: by.get(`rnn.bias_hh_l${l}`)!,
  }));
  const encoder = by.get("encoder.weight")!;
  const decoderWeight = config.tied ? encoder : by.get("decoder.weight")!;
  const decoderBias = by.get("decoder.bias")!;
  return {
    config: { ...config },
    vocab: config.vocab,
    embed: config.embed,
    hidden: Array(config.layers).fill(config.hidden),
    dropout: config.dropout,
    tied: config.tied,
    ...(config.awd ? { awd: config.awd } : {}),
    arOn: "dropped",
    cell: LSTM_CELL,
    phase: "lstm",
    params,
    encoder,
    layers,
    decoderWeight,
    decoderBias,
    head: decoderStackHead({ weight: decoderWeight, bias: decoderBias }),
  };
}

/**
 * Philox offset of dropout site `site` (0 = embedding output, l = input of layer l for
 * 1 ≤ l < L, L = last layer output; with the AWD devices L + 1 = embedding rows and L + 2 + l
 * = `weight_hh_l{l}`'s WeightDrop) at training step `step`: `step·sites + site`
 * (`gated_stack.ts`).
 *
 * @example
 * ```ts
 * import { lstmLmDropoutOffset } from "./lstm_lm.ts";
 * const cfg = { vocab: 10, embed: 4, hidden: 4, layers: 2, dropout: 0.5, tied: true };
 * lstmLmDropoutOffset(cfg, 7, 2); // 23
 * ```
 */
export function lstmLmDropoutOffset(config: LstmLmConfig, step: number, site: number): number {
  const at = { layers: config.layers, awd: !!config.awd };
  return gatedStackDropoutOffset(at, step, site, "lstmLmDropoutOffset");
}

/** Carried LSTM state: per layer `h[l], c[l]: [B, H]`. */
export type LstmLmState = GatedStackState;
/** Buffers of one `(maxT, B)` shape (`gated_stack.ts`). */
export type LstmLmWorkspace = GatedStackWorkspace;
/** One window of tokens (`gated_stack.ts`). */
export type LstmLmBatch = GatedStackBatch;
/** Dropout stream and instrumentation of a training step. */
export interface LstmLmStepOptions extends Omit<GatedStackStepOptions, "onPhase"> {
  onPhase?: (phase: LstmLmPhase) => void;
}

/**
 * Phases of a training step, in recording order. `embedding_forward` covers the gather, mask
 * and first dropout; `decoder_forward` the decoder product and softmax-CE (loss and dLogits);
 * `decoder_backward` the decoder gradients, `dY` and the top dropout's backward;
 * `lstm_backward` BPTT of every layer with its input dropout's backward; `embedding_backward`
 * the gradient clear and scatter.
 */
export type LstmLmPhase =
  | "embedding_forward"
  | "lstm_forward"
  | "decoder_forward"
  | "decoder_backward"
  | "lstm_backward"
  | "embedding_backward";

/**
 * Zero initial state for batch size `B` (one `[B, H]` pair per layer).
 *
 * @example
 * ```ts ignore
 * const state = createLstmLmState(gpu, model, 20);
 * ```
 */
export const createLstmLmState: (gpu: Gpu, model: LstmLm, B: number) => LstmLmState =
  createGatedStackState;

/**
 * Records a reset of the state to zero (start of an epoch or of an evaluation pass).
 *
 * @example
 * ```ts ignore
 * resetLstmLmState(gpu, state);
 * ```
 */
export const resetLstmLmState: (gpu: Gpu, state: LstmLmState) => void = resetGatedStackState;

/**
 * Allocates a workspace for windows of up to `maxT` time steps and batch `B`; `training: false`
 * skips the dropout and gradient buffers.
 *
 * @example
 * ```ts ignore
 * const ws = createLstmLmWorkspace(gpu, model, { maxT: 35, B: 20, training: true });
 * ```
 */
export const createLstmLmWorkspace: (
  gpu: Gpu,
  model: LstmLm,
  opts: { maxT: number; B: number; training: boolean },
) => LstmLmWorkspace = createGatedStackWorkspace;

/**
 * Returns every workspace tensor to the pool.
 *
 * @example
 * ```ts ignore
 * releaseLstmLmWorkspace(gpu, ws);
 * ```
 */
export const releaseLstmLmWorkspace: (gpu: Gpu, ws: LstmLmWorkspace) => void =
  releaseGatedStackWorkspace;

/**
 * Validates a window on the host and writes it into the workspace's token buffers.
 *
 * @example
 * ```ts ignore
 * const batch = writeLstmLmBatch(gpu, ws, { T: 35, input: x, target: y });
 * ```
 */
export function writeLstmLmBatch(
  gpu: Gpu,
  ws: LstmLmWorkspace,
  args: { T: number; input: Uint32Array; target: Uint32Array },
): LstmLmBatch {
  return writeGatedStackBatch(gpu, ws, args, "writeLstmLmBatch");
}

/**
 * Records one training step on a window (`gated_stack.ts`): forward with dropout, mean
 * cross-entropy, backward through time into every `param.grad`. Returns the per-row loss.
 *
 * @example
 * ```ts ignore
 * const loss = lstmLmStep(gpu, model, ws, state, batch, { seed: 1111, step });
 * ```
 */
export function lstmLmStep(
  gpu: Gpu,
  model: LstmLm,
  ws: LstmLmWorkspace,
  state: LstmLmState,
  batch: LstmLmBatch,
  opts: LstmLmStepOptions,
): Tensor {
  const onPhase = opts.onPhase as ((p: string) => void) | undefined;
  return gatedStackStep(gpu, model, ws, state, batch, { ...opts, onPhase });
}

/**
 * Records the forward pass only, without dropout (evaluation); returns the per-row loss.
 *
 * @example
 * ```ts ignore
 * const loss = lstmLmEvalLoss(gpu, model, evalWs, evalState, batch);
 * ```
 */
export function lstmLmEvalLoss(
  gpu: Gpu,
  model: LstmLm,
  ws: LstmLmWorkspace,
  state: LstmLmState,
  batch: LstmLmBatch,
  opts: { route?: SparseRoute } = {},
): Tensor {
  return gatedStackEvalLoss(gpu, model, ws, state, batch, opts);
}
