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
import { expectShape, ShapeError, type Tensor } from "../../kernels/runtime/tensor.ts";
import { matmul } from "../../kernels/dense/matmul.ts";
import { lstmCellBackward, lstmCellForward } from "../../kernels/cells/lstm_cell.ts";
import { activationRegGrad } from "../../kernels/cells/activation_reg.ts";
import type { WeightDropMask } from "../../kernels/cells/weight_drop.ts";
import type { EmbeddingIndexTensors } from "../../kernels/cells/embedding.ts";
import { writeTokenBatch } from "../parts/token_batch.ts";
import {
  reusedWeight,
  type SparseRoute,
  weightBackwardData,
  weightBackwardWeight,
  weightForward,
} from "../weight_ops.ts";
import { checkParamMask, createParams, type Param, type ParamSpec } from "../params.ts";
import { equalBlocks } from "../model.ts";
import {
  type ActivationDrop,
  dropActivations,
  dropActivationsBackward,
  embeddingInputBackward,
  embeddingInputForward,
  type InputDrops,
} from "../parts/embedding_input.ts";
import {
  type DecoderHead,
  decoderHeadBackward,
  decoderHeadForward,
} from "../parts/decoder_head.ts";
import {
  droppedWeight,
  evalWeight,
  type WeightDrop,
  weightDropGrad,
  weightDropMask,
} from "../parts/weight_drop.ts";
import type { ReusedWeight } from "../weight_ops.ts";

/**
 * AWD-LSTM's training devices on the stacked LSTM (Merity et al. 2018, spec §2.3): locked
 * dropout (one `[B, D]` mask per window) at the L + 1 sites with p = `dropouti` (embedding
 * output), `dropouth` (between layers) and the config's `dropout` (output), embedding-row
 * dropout `dropoute`, and AR (α, on the dropped output) and TAR (β, on the raw output) in the
 * loss.
 */
export interface LstmAwd {
  /** Locked instead of standard dropout at the L + 1 sites. */
  locked: boolean;
  dropouti: number;
  dropouth: number;
  dropoute: number;
  alpha: number;
  beta: number;
  /** WeightDrop on every `weight_hh` (one mask per step and layer); absent = none. */
  wdrop?: WeightDrop;
}

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

/** The four tensors of LSTM layer l. */
export interface LstmLayerParams {
  /** `rnn.weight_ih_l{l}`: `[4H, in]`, gate row blocks i, f, g, o. */
  wIh: Param;
  /** `rnn.weight_hh_l{l}`: `[4H, H]`. */
  wHh: Param;
  /** `rnn.bias_ih_l{l}`: `[4H]`. */
  bIh: Param;
  /** `rnn.bias_hh_l{l}`: `[4H]`. */
  bHh: Param;
}

/** A stacked-LSTM LM on the GPU. `params` lists every tensor once (tied: no decoder weight). */
export interface LstmLm {
  config: LstmLmConfig;
  params: Param[];
  /** `encoder.weight`: `[V, E]`. */
  encoder: Param;
  layers: LstmLayerParams[];
  /** `decoder.weight`: `[V, H]`; the very same record as `encoder` when tied. */
  decoderWeight: Param;
  /** `decoder.bias`: `[V]`. */
  decoderBias: Param;
}

function checkConfig(c: LstmLmConfig): void {
  for (const k of ["vocab", "embed", "hidden", "layers"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) {
      throw new RangeError(`LstmLmConfig.${k} must be an integer >= 1, got ${c[k]}`);
    }
  }
  if (!(c.dropout >= 0 && c.dropout < 1)) {
    throw new RangeError(`LstmLmConfig.dropout must be in [0, 1), got ${c.dropout}`);
  }
  if (c.tied && c.embed !== c.hidden) {
    throw new RangeError(
      `LstmLmConfig: tied weights need embed == hidden, got ${c.embed} and ${c.hidden}`,
    );
  }
  if (c.awd) {
    for (const k of ["dropouti", "dropouth", "dropoute"] as const) {
      if (!(c.awd[k] >= 0 && c.awd[k] < 1)) {
        throw new RangeError(`LstmLmConfig.awd.${k} must be in [0, 1), got ${c.awd[k]}`);
      }
    }
    if (!(c.awd.alpha >= 0 && c.awd.beta >= 0)) {
      throw new RangeError(`LstmLmConfig.awd: alpha and beta must be >= 0`);
    }
    const wd = c.awd.wdrop;
    if (wd && !(wd.p > 0 && wd.p < 1)) {
      throw new RangeError(`LstmLmConfig.awd.wdrop.p must be in (0, 1), got ${wd.p}`);
    }
  }
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
  const gates = equalBlocks(4 * H, 4);
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
        blocks: gates,
        sparse: true,
        init: lstm,
      },
      { name: `rnn.weight_hh_l${l}`, shape: [4 * H, H], blocks: gates, sparse: true, init: lstm },
      { name: `rnn.bias_ih_l${l}`, shape: [4 * H], blocks: gates, sparse: false, init: lstm },
      { name: `rnn.bias_hh_l${l}`, shape: [4 * H], blocks: gates, sparse: false, init: lstm },
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
 * adapter, see `params.ts`). Biases have `gates: 4` for LSTM layers (same row blocks as the
 * weights) and are never sparse.
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
  return {
    config: { ...config },
    params,
    encoder,
    layers,
    decoderWeight: config.tied ? encoder : by.get("decoder.weight")!,
    decoderBias: by.get("decoder.bias")!,
  };
}

/**
 * Dropout sites per training step: the embedding output, the L − 1 layer boundaries and the
 * last layer's output; with the AWD devices also the embedding rows (site L + 1) and the
 * WeightDrop masks of the L recurrent weights (sites L + 2 + l).
 */
function dropoutSites(config: LstmLmConfig): number {
  return config.awd ? 2 * config.layers + 2 : config.layers + 1;
}

/**
 * Philox offset of dropout site `site` (0 = embedding output, l = input of layer l for
 * 1 ≤ l < L, L = last layer output; with the AWD devices L + 1 = embedding rows and L + 2 + l
 * = `weight_hh_l{l}`'s WeightDrop) at training
 * step `step`: `step·sites + site`. Distinct for every (step, site) pair until it passes 2^32
 * (RangeError), so masks never repeat.
 *
 * @example
 * ```ts
 * import { lstmLmDropoutOffset } from "./lstm_lm.ts";
 * const cfg = { vocab: 10, embed: 4, hidden: 4, layers: 2, dropout: 0.5, tied: true };
 * lstmLmDropoutOffset(cfg, 7, 2); // 23
 * ```
 */
export function lstmLmDropoutOffset(config: LstmLmConfig, step: number, site: number): number {
  const sites = dropoutSites(config);
  if (!Number.isInteger(step) || step < 0 || !Number.isInteger(site) || site < 0 || site >= sites) {
    throw new RangeError(
      `lstmLmDropoutOffset: need integer step >= 0 and site in [0, ${sites}), got ${step}, ${site}`,
    );
  }
  const off = step * sites + site;
  if (off > 0xffffffff) {
    throw new RangeError(`lstmLmDropoutOffset: step ${step} passes the u32 Philox offset space`);
  }
  return off;
}

/** Carried LSTM state: per layer `h[l], c[l]: [B, H]`. */
export interface LstmLmState {
  B: number;
  h: Tensor[];
  c: Tensor[];
}

/**
 * Zero initial state for batch size `B` (one `[B, H]` pair per layer).
 *
 * @example
 * ```ts ignore
 * const state = createLstmLmState(gpu, model, 20);
 * ```
 */
export function createLstmLmState(gpu: Gpu, model: LstmLm, B: number): LstmLmState {
  const H = model.config.hidden;
  const L = model.config.layers;
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`createLstmLmState: B = ${B}`);
  return {
    B,
    h: Array.from({ length: L }, () => gpu.zeros([B, H])),
    c: Array.from({ length: L }, () => gpu.zeros([B, H])),
  };
}

/**
 * Records a reset of the state to zero (start of an epoch or of an evaluation pass).
 *
 * @example
 * ```ts ignore
 * resetLstmLmState(gpu, state);
 * ```
 */
export function resetLstmLmState(gpu: Gpu, state: LstmLmState): void {
  for (const t of [...state.h, ...state.c]) gpu.fill(t, 0);
}

/**
 * Preallocated buffers for windows of up to `maxT` steps of `B` sequences. Layouts (N = maxT·B
 * rows, row n = t·B + b):
 *
 * - `input`, `target: [N]` u32 token ids; `idxUnique [N]`, `idxStarts [N + 1]`,
 *   `idxPositions [N]`: the embedding index of the current batch (views of them are used).
 * - `emb: [N, E]` gathered rows; `embMask: [N, E]` gathered mask rows (masked embedding).
 * - `xDrop[l]: [N, in_l]` dropped input of layer l, `yDrop: [N, H]` dropped top output
 *   (training only).
 * - `hs[l], cs[l]: [maxT + 1, B, H]`: slot 0 = carried state, slot t + 1 = output of step t.
 * - `gates[l]: [N, 4H]`: pre-activations, overwritten by the activated gates (i, f, g, o).
 * - `logits: [N, V]` (overwritten in place by dLogits in training), `loss: [N]` per-row loss.
 * - training: `dH[l]: [N, H]` gradient w.r.t. layer l's outputs, `dEmb: [N, E]`,
 *   `dGates: [N, 4H]`, `dc: [B, H]`, `ones: [1, N]` (bias gradients as `1ᵀ·dY`).
 */
export interface LstmLmWorkspace {
  maxT: number;
  B: number;
  training: boolean;
  config: LstmLmConfig;
  input: Tensor<"u32">;
  target: Tensor<"u32">;
  idxUnique: Tensor<"u32">;
  idxStarts: Tensor<"u32">;
  idxPositions: Tensor<"u32">;
  emb: Tensor;
  embMask: Tensor;
  xDrop: Tensor[];
  yDrop: Tensor | null;
  hs: Tensor[];
  cs: Tensor[];
  gates: Tensor[];
  logits: Tensor;
  loss: Tensor;
  dH: Tensor[];
  dEmb: Tensor | null;
  dGates: Tensor | null;
  dc: Tensor | null;
  ones: Tensor | null;
}

/**
 * Allocates a workspace for windows of up to `maxT` time steps and batch `B`. `training: false`
 * (evaluation) skips the dropout and gradient buffers.
 *
 * @example
 * ```ts ignore
 * const ws = createLstmLmWorkspace(gpu, model, { maxT: 35, B: 20, training: true });
 * ```
 */
export function createLstmLmWorkspace(
  gpu: Gpu,
  model: LstmLm,
  opts: { maxT: number; B: number; training: boolean },
): LstmLmWorkspace {
  const { maxT, B, training } = opts;
  if (!Number.isInteger(maxT) || maxT < 1 || !Number.isInteger(B) || B < 1) {
    throw new RangeError(`createLstmLmWorkspace: need integers maxT, B >= 1, got ${maxT}, ${B}`);
  }
  const { vocab: V, embed: E, hidden: H, layers: L } = model.config;
  const N = maxT * B;
  const perLayer = (f: (l: number) => Tensor) => Array.from({ length: L }, (_, l) => f(l));
  const ones = training ? gpu.tensor([1, N]) : null;
  if (ones) gpu.fill(ones, 1);
  return {
    maxT,
    B,
    training,
    config: { ...model.config },
    input: gpu.zeros([N], "u32"),
    target: gpu.zeros([N], "u32"),
    idxUnique: gpu.zeros([N], "u32"),
    idxStarts: gpu.zeros([N + 1], "u32"),
    idxPositions: gpu.zeros([N], "u32"),
    emb: gpu.tensor([N, E]),
    embMask: gpu.tensor([N, E]),
    xDrop: training ? perLayer((l) => gpu.tensor([N, l === 0 ? E : H])) : [],
    yDrop: training ? gpu.tensor([N, H]) : null,
    hs: perLayer(() => gpu.tensor([maxT + 1, B, H])),
    cs: perLayer(() => gpu.tensor([maxT + 1, B, H])),
    gates: perLayer(() => gpu.tensor([N, 4 * H])),
    logits: gpu.tensor([N, V]),
    loss: gpu.tensor([N]),
    dH: training ? perLayer(() => gpu.tensor([N, H])) : [],
    dEmb: training ? gpu.tensor([N, E]) : null,
    dGates: training ? gpu.tensor([N, 4 * H]) : null,
    dc: training ? gpu.tensor([B, H]) : null,
    ones,
  };
}

/**
 * Returns every workspace tensor to the pool.
 *
 * @example
 * ```ts ignore
 * releaseLstmLmWorkspace(gpu, ws);
 * ```
 */
export function releaseLstmLmWorkspace(gpu: Gpu, ws: LstmLmWorkspace): void {
  const all: (Tensor | null)[] = [
    ws.input,
    ws.target,
    ws.idxUnique,
    ws.idxStarts,
    ws.idxPositions,
    ws.emb,
    ws.embMask,
    ...ws.xDrop,
    ws.yDrop,
    ...ws.hs,
    ...ws.cs,
    ...ws.gates,
    ws.logits,
    ws.loss,
    ...ws.dH,
    ws.dEmb,
    ws.dGates,
    ws.dc,
    ws.ones,
  ];
  for (const t of all) if (t) gpu.release(t);
}

/**
 * One window of tokens: `input`, `target: [T·B]` u32, row-major `[T, B]` (row t holds the
 * tokens of time step t for the B streams); `index`: the embedding index of `input` (needed by
 * the backward pass only).
 */
export interface LstmLmBatch {
  T: number;
  B: number;
  input: Tensor<"u32">;
  target: Tensor<"u32">;
  index?: EmbeddingIndexTensors;
}

/**
 * Validates a window on the host and writes it into the workspace's token and index buffers
 * (no allocation): `input`, `target` hold `T·B` ids, row-major `[T, B]`. Throws
 * {@linkcode ShapeError} when a length is not `T·B` or `T` is not in `[1, ws.maxT]`, and
 * `RangeError` naming the position of an id `>= V` (the GPU kernels would clamp it silently).
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
  const buffers = {
    maxT: ws.maxT,
    B: ws.B,
    vocab: ws.config.vocab,
    input: ws.input,
    target: ws.target,
    idxUnique: ws.idxUnique,
    idxStarts: ws.idxStarts,
    idxPositions: ws.idxPositions,
  };
  return writeTokenBatch(gpu, buffers, args, "writeLstmLmBatch");
}

/**
 * Phases of a training step, in recording order. `embedding_forward` covers the gather, mask
 * and first dropout; `decoder_forward` the decoder product and softmax-CE (loss and dLogits);
 * `decoder_backward` the decoder gradients, `dY` and the top dropout's backward;
 * `lstm_backward` BPTT of every layer with its input dropout's backward; `embedding_backward`
 * the gradient clear and scatter.
 *
 * @example
 * ```ts ignore
 * const order: LstmLmPhase[] = [];
 * lstmLmStep(gpu, model, ws, state, batch, { seed: 1, step: 0, onPhase: (p) => order.push(p) });
 * ```
 */
export type LstmLmPhase =
  | "embedding_forward"
  | "lstm_forward"
  | "decoder_forward"
  | "decoder_backward"
  | "lstm_backward"
  | "embedding_backward";

/** Dropout parameters of a training step, and an optional instrumentation hook. */
export interface LstmLmStepOptions {
  /** Philox seed of the dropout masks (u32). */
  seed: number;
  /** Training step counter: selects the Philox offsets ({@linkcode lstmLmDropoutOffset}). */
  step: number;
  /**
   * Instrumentation for benchmarks (`bench/train.ts`): called synchronously just before each
   * phase's work is recorded, so everything recorded between one call and the next (or the end
   * of the step) belongs to that phase. Recording only, like the step, so the hook cannot wait
   * for the GPU; it changes nothing that is recorded.
   */
  onPhase?: (phase: LstmLmPhase) => void;
  /** How sparse products run on CPU rasterisers (`weight_ops.ts`); default the training route. */
  route?: SparseRoute;
}

/** The dropouts of one training step, by site. */
interface Drops {
  input: InputDrops;
  /** `between[l]`: the input of layer l (1 ≤ l < L). */
  between: (ActivationDrop | null)[];
  out: ActivationDrop | null;
  /** `hh[l]`: WeightDrop of `weight_hh_l{l}`. */
  hh: (WeightDropMask | null)[];
}

function dropsOf(config: LstmLmConfig, seed: number, step: number): Drops {
  const { layers: L, awd } = config;
  const kind = awd?.locked ? "locked" as const : "standard" as const;
  const site = (k: number, p: number): ActivationDrop | null =>
    p > 0 ? { kind, p, seed, offset: lstmLmDropoutOffset(config, step, k) } : null;
  const pIn = awd?.locked ? awd.dropouti : config.dropout;
  const pBetween = awd?.locked ? awd.dropouth : config.dropout;
  const rows = awd && awd.dropoute > 0
    ? { p: awd.dropoute, seed, offset: lstmLmDropoutOffset(config, step, L + 1) }
    : undefined;
  return {
    input: { rows, out: site(0, pIn) ?? undefined },
    between: Array.from({ length: L }, (_, l) => (l === 0 ? null : site(l, pBetween))),
    out: site(L, config.dropout),
    hh: Array.from(
      { length: L },
      (_, l) =>
        awd?.wdrop
          ? weightDropMask(awd.wdrop, seed, lstmLmDropoutOffset(config, step, L + 2 + l))
          : null,
    ),
  };
}

function validate(
  model: LstmLm,
  ws: LstmLmWorkspace,
  state: LstmLmState,
  batch: LstmLmBatch,
  training: boolean,
): void {
  const c = model.config, w = ws.config;
  if (
    c.vocab !== w.vocab || c.embed !== w.embed || c.hidden !== w.hidden || c.layers !== w.layers
  ) {
    throw new ShapeError(
      `lstmLm: workspace was made for V=${w.vocab} E=${w.embed} H=${w.hidden} L=${w.layers}, ` +
        `model has V=${c.vocab} E=${c.embed} H=${c.hidden} L=${c.layers}`,
    );
  }
  if (training && !ws.training) {
    throw new ShapeError("lstmLmStep: the workspace was created with training: false");
  }
  const { T, B } = batch;
  if (!Number.isInteger(T) || T < 1 || T > ws.maxT) {
    throw new ShapeError(`lstmLm: batch T must be an integer in [1, ${ws.maxT}], got ${T}`);
  }
  if (B !== ws.B || state.B !== ws.B) {
    throw new ShapeError(
      `lstmLm: batch B = ${B} and state B = ${state.B} must equal the workspace's B = ${ws.B}`,
    );
  }
  const N = T * B;
  expectShape("lstmLm batch.input (T·B token ids)", batch.input, [N], "u32");
  expectShape("lstmLm batch.target (T·B token ids)", batch.target, [N], "u32");
  if (training) {
    const idx = batch.index;
    if (!idx) throw new ShapeError("lstmLmStep: batch.index (embedding index) is required");
    expectShape("lstmLmStep batch.index.positions", idx.positions, [N], "u32");
    if (idx.vocabSize !== c.vocab) {
      throw new ShapeError(
        `lstmLmStep: batch.index was built for vocabulary ${idx.vocabSize}, model has ${c.vocab}`,
      );
    }
  }
  if (state.h.length !== c.layers || state.c.length !== c.layers) {
    throw new ShapeError(`lstmLm: state must hold ${c.layers} layers`);
  }
  for (let l = 0; l < c.layers; l++) {
    expectShape(`lstmLm state.h[${l}]`, state.h[l], [B, c.hidden], "f32");
    expectShape(`lstmLm state.c[${l}]`, state.c[l], [B, c.hidden], "f32");
  }
  for (const p of model.params) checkParamMask(p);
}

/** The decoder's tensors as the shared head takes them. */
function head(model: LstmLm): DecoderHead {
  return { weight: model.decoderWeight, bias: model.decoderBias };
}

/** Tensors the backward pass needs from the forward pass. */
interface ForwardTrace {
  /** Input of each layer as the layer saw it (after dropout): `[N, in_l]`. */
  xs: Tensor[];
  /** Input of the decoder (after dropout): `[N, H]`. */
  top: Tensor;
  logits: Tensor;
  loss: Tensor;
  /**
   * `weight_hh_l{l}` as this pass's products read it (dropped in training, scaled at evaluation
   * under WeightDrop's `eval-scaled` convention); the caller releases it after the last product.
   */
  hh: ReusedWeight[];
}

/** Recurrent weight of layer l as a training step (`mask`) or an evaluation reads it. */
function recurrentWeight(
  gpu: Gpu,
  model: LstmLm,
  l: number,
  drop: Drops | null,
): ReusedWeight {
  const wHh = model.layers[l].wHh, wd = model.config.awd?.wdrop;
  const mask = drop?.hh[l];
  if (mask) return droppedWeight(gpu, wHh, mask);
  return !drop && wd ? evalWeight(gpu, wHh, wd) : { param: wHh, release: () => {} };
}

function forward(
  gpu: Gpu,
  model: LstmLm,
  ws: LstmLmWorkspace,
  state: LstmLmState,
  batch: LstmLmBatch,
  drop: Drops | null,
  onPhase?: (phase: LstmLmPhase) => void,
  route?: SparseRoute,
): ForwardTrace {
  const { vocab: V, embed: E, hidden: H, layers: L } = model.config;
  const { T, B } = batch;
  const N = T * B;
  const bh = B * H;
  const dropped = (src: Tensor, dst: Tensor | undefined, site: ActivationDrop | null): Tensor => {
    if (!site) return src;
    if (!dst) throw new ShapeError("lstmLm: dropout needs a training workspace");
    return dropActivations(gpu, site, src, dst, B);
  };

  onPhase?.("embedding_forward");
  let x = embeddingInputForward(gpu, model.encoder, {
    ids: batch.input,
    emb: ws.emb.view(0, [N, E]),
    maskRows: ws.embMask.view(0, [N, E]),
    dropped: ws.xDrop[0]?.view(0, [N, E]),
    B,
    drops: drop?.input,
  });
  const xs: Tensor[] = [];
  const hh: ReusedWeight[] = [];
  onPhase?.("lstm_forward");
  for (let l = 0; l < L; l++) {
    const { wIh, bIh, bHh } = model.layers[l];
    hh.push(recurrentWeight(gpu, model, l, drop));
    xs.push(x);
    const hs = ws.hs[l], cs = ws.cs[l];
    const gates = ws.gates[l].view(0, [N, 4 * H]);
    gpu.copy(state.h[l], hs.view(0, [B, H]));
    gpu.copy(state.c[l], cs.view(0, [B, H]));
    weightForward(gpu, wIh, { x, y: gates, bias: bIh.value, route });
    const wHhLoop = reusedWeight(gpu, hh[l].param, T, route);
    for (let t = 0; t < T; t++) {
      const g = gates.view(t * 4 * bh, [B, 4 * H]);
      weightForward(gpu, wHhLoop.param, { x: hs.view(t * bh, [B, H]), y: g, beta: 1, route });
      lstmCellForward(gpu, {
        gates: g,
        bias: bHh.value,
        cPrev: cs.view(t * bh, [B, H]),
        c: cs.view((t + 1) * bh, [B, H]),
        h: hs.view((t + 1) * bh, [B, H]),
        act: g,
      });
    }
    wHhLoop.release();
    gpu.copy(hs.view(T * bh, [B, H]), state.h[l]);
    gpu.copy(cs.view(T * bh, [B, H]), state.c[l]);
    const out = hs.view(bh, [N, H]);
    x = l < L - 1
      ? dropped(out, ws.xDrop[l + 1]?.view(0, [N, H]), drop?.between[l + 1] ?? null)
      : dropped(out, ws.yDrop?.view(0, [N, H]), drop?.out ?? null);
  }
  onPhase?.("decoder_forward");
  const logits = ws.logits.view(0, [N, V]);
  const loss = ws.loss.view(0, [N]);
  decoderHeadForward(gpu, head(model), {
    x,
    logits,
    loss,
    target: batch.target,
    training: drop !== null,
    route,
  });
  return { xs, top: x, logits, loss, hh };
}

/**
 * Records one training step on a window: forward with dropout, mean cross-entropy, backward
 * through time into every `param.grad` (overwritten), and the carried state advanced to the end
 * of the window. Returns the per-row loss view `[T·B]` of the workspace (valid until the next
 * step; the caller reduces or reads it when it wants). Records only: no readback.
 *
 * `batch` must come from {@linkcode writeLstmLmBatch} on `ws` (or hold equivalent tensors with
 * an index); shape errors throw {@linkcode ShapeError} before anything is recorded.
 *
 * @example
 * ```ts ignore
 * const batch = writeLstmLmBatch(gpu, ws, { T, input, target });
 * const loss = lstmLmStep(gpu, model, ws, state, batch, { seed: 1111, step });
 * // ... clip, optimizer update ...
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
  validate(model, ws, state, batch, true);
  const { embed: E, hidden: H, layers: L, awd } = model.config;
  // Fail on a bad step/seed before recording anything.
  lstmLmDropoutOffset(model.config, opts.step, dropoutSites(model.config) - 1);
  if (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > 0xffffffff) {
    throw new RangeError(`lstmLmStep: seed must be a u32, got ${opts.seed}`);
  }
  const drop = dropsOf(model.config, opts.seed, opts.step);
  const dropBack = (d: Tensor, site: ActivationDrop | null) =>
    dropActivationsBackward(gpu, site, d, batch.B);

  const route = opts.route;
  const trace = forward(gpu, model, ws, state, batch, drop, opts.onPhase, route);
  const { T, B } = batch;
  const N = T * B;
  const bh = B * H;
  const ones = ws.ones!.view(0, [1, N]);
  const dLogits = trace.logits;

  // decoder
  opts.onPhase?.("decoder_backward");
  let dOut = ws.dH[L - 1].view(0, [N, H]);
  decoderHeadBackward(gpu, head(model), { x: trace.top, dLogits, dx: dOut, ones, route });
  // AR on the dropped output, TAR on the raw one (AWD-LSTM)
  if (awd?.alpha) activationRegGrad(gpu, { y: trace.top, g: dOut, B, alpha: awd.alpha, beta: 0 });
  dropBack(dOut, drop.out);
  if (awd?.beta) {
    const raw = ws.hs[L - 1].view(bh, [N, H]);
    activationRegGrad(gpu, { y: raw, g: dOut, B, alpha: 0, beta: awd.beta });
  }

  // layers, top to bottom, each backward through time
  const dGates = ws.dGates!.view(0, [N, 4 * H]);
  const dc = ws.dc!;
  opts.onPhase?.("lstm_backward");
  for (let l = L - 1; l >= 0; l--) {
    const { wIh, wHh, bIh, bHh } = model.layers[l];
    const hs = ws.hs[l], cs = ws.cs[l];
    const gates = ws.gates[l];
    const wHhLoop = reusedWeight(gpu, trace.hh[l].param, T - 1, route);
    for (let t = T - 1; t >= 0; t--) {
      const dg = dGates.view(t * 4 * bh, [B, 4 * H]);
      lstmCellBackward(gpu, {
        act: gates.view(t * 4 * bh, [B, 4 * H]),
        cPrev: cs.view(t * bh, [B, H]),
        c: cs.view((t + 1) * bh, [B, H]),
        dh: dOut.view(t * bh, [B, H]),
        dcNext: t < T - 1 ? dc : undefined,
        dgates: dg,
        dcPrev: dc,
      });
      if (t > 0) {
        // recurrent gradient, accumulated onto the gradient from above of step t − 1
        weightBackwardData(gpu, wHhLoop.param, {
          dy: dg,
          dx: dOut.view((t - 1) * bh, [B, H]),
          beta: 1,
          route,
        });
      }
    }
    wHhLoop.release();
    weightBackwardWeight(gpu, wHh, { dy: dGates, x: hs.view(0, [N, H]), route });
    const hhMask = drop.hh[l];
    if (hhMask) weightDropGrad(gpu, wHh, hhMask);
    trace.hh[l].release();
    weightBackwardWeight(gpu, wIh, { dy: dGates, x: trace.xs[l], route });
    matmul(gpu, { a: ones, b: dGates, c: bIh.grad.reshape([1, 4 * H]) });
    gpu.copy(bIh.grad, bHh.grad);
    dOut = l > 0 ? ws.dH[l - 1].view(0, [N, H]) : ws.dEmb!.view(0, [N, E]);
    weightBackwardData(gpu, wIh, { dy: dGates, dx: dOut, route });
    if (l > 0) dropBack(dOut, drop.between[l]); // site 0 is the input part's
  }

  // embedding (tied: adds onto the decoder's gradient already in the same tensor)
  opts.onPhase?.("embedding_backward");
  embeddingInputBackward(gpu, model.encoder, {
    index: batch.index!,
    ids: batch.input,
    dOut,
    B,
    drops: drop.input,
    tied: model.config.tied,
  });
  return trace.loss;
}

/**
 * Records the forward pass only, without dropout (evaluation): per-row cross-entropy into the
 * workspace's `loss` view `[T·B]` (returned), state advanced to the end of the window. Works on
 * a workspace made with `training: false` or `true`.
 *
 * @example
 * ```ts ignore
 * const loss = lstmLmEvalLoss(gpu, model, evalWs, evalState, batch);
 * const sum = gpu.tensor([1]);
 * reduce(gpu, { op: "sum", x: loss, out: sum });
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
  validate(model, ws, state, batch, false);
  const trace = forward(gpu, model, ws, state, batch, null, undefined, opts.route);
  for (const w of trace.hh) w.release();
  return trace.loss;
}
