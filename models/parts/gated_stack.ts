/**
 * The program of a stacked gated-RNN language model on the GPU (the stacked LSTM, ON-LSTM):
 * workspace, carried state, forward, backward through time and evaluation, for any cell of the
 * LSTM shape (`gated_layer.ts`) and per-layer hidden sizes. A family supplies the tensors
 * (names, init, row blocks), the cell and the regularisers; this file never names a model.
 *
 * ```text
 * ids [T, B] → embedding [V, E] → drop₀ → layer_0 → drop₁ → … → layer_{L-1} → drop_L
 *            → decoder (weight [V, H_{L-1}], bias [V]) → softmax cross-entropy (mean over T·B)
 * ```
 *
 * Layer l reads `in_l` columns (E for l = 0, else H_{l−1}) and writes H_l; with `tied`, the
 * decoder weight is the embedding tensor (E = H_{L−1}) and its gradient the sum of both uses.
 *
 * Program of one training step ({@linkcode gatedStackStep}), all recorded, nothing read back:
 * one gather for all T·B tokens; per layer the window's forward (`gated_layer.ts`: one input
 * projection for all T steps, then per step the recurrent product and the fused cell); the
 * decoder and the fused softmax-CE on all T·B rows (`dLogits` scaled by `1/(T·B)`, PyTorch's
 * mean loss). Backward: decoder, AR/TAR, then per layer from the top its BPTT and the input
 * dropout's backward, last the deterministic embedding scatter.
 *
 * Truncated BPTT: the state `(h, c)` of every layer is copied in at the start of a window and
 * out at the end of the forward pass; no gradient flows into it.
 *
 * Sparse weights, two storages (dispatched in `weight_ops.ts`): masked-dense (`param.mask`:
 * products read `W ⊙ M`, weight gradients are dense `∂loss/∂(W ⊙ M)`) and CSR (`param.csr`:
 * SpMM, transposed SpMM and SDDMM on the active entries). Gradients are overwritten by each
 * step, never accumulated.
 *
 * Dropout draws from Philox with one `(seed, offset)` pair per site per training step,
 * `offset = step·sites + site` ({@linkcode gatedStackDropoutOffset}): site 0 = embedding
 * output, site l (1 ≤ l < L) = input of layer l, site L = output of the last layer; with the AWD
 * devices also L + 1 = embedding rows and L + 2 + l = layer l's WeightDrop. Standard dropout
 * (one `dropout` at every site, a fresh decision per element) or AWD's locked dropout (one
 * `[B, D]` mask per window; p = `dropouti`, `dropouth`, `dropout`). Backward passes regenerate
 * each mask from its pair (no mask buffers).
 *
 * Buffers: a {@linkcode GatedStackWorkspace} holds every activation and scratch tensor for a
 * `(maxT, B)` shape and is reused by every step (shorter windows use views), so a steady-state
 * step allocates nothing.
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import { expectShape, ShapeError, type Tensor } from "../../kernels/runtime/tensor.ts";
import { activationRegGrad } from "../../kernels/cells/activation_reg.ts";
import type { WeightDropMask } from "../../kernels/cells/weight_drop.ts";
import {
  createTokenBuffers,
  releaseTokenBuffers,
  type TokenBatch,
  type TokenBuffers,
  writeTokenBatch,
} from "./token_batch.ts";
import type { ReusedWeight, SparseRoute } from "../weight_ops.ts";
import type { ModelSession } from "../model.ts";
import { checkParamMask, type Param } from "../params.ts";
import {
  type ActivationDrop,
  dropActivations,
  dropActivationsBackward,
  embeddingInputBackward,
  embeddingInputForward,
  type InputDrops,
} from "./embedding_input.ts";
import type { HeadBuffers, HeadDrops, StackHead } from "./stack_head.ts";
import { droppedWeight, evalWeight, type WeightDrop, weightDropMask } from "./weight_drop.ts";
import {
  type GatedCell,
  type GatedLayer,
  gatedLayerBackward,
  gatedLayerForward,
  type GatedWindow,
} from "./gated_layer.ts";

/**
 * AWD-LSTM's training devices (Merity et al. 2018, spec §2.3): locked dropout at the L + 1
 * sites with p = `dropouti` (embedding output), `dropouth` (between layers) and the stack's
 * `dropout` (output), embedding-row dropout `dropoute`, AR (α) and TAR (β) in the loss, and
 * WeightDrop on every recurrent weight.
 */
export interface AwdDevices {
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

/**
 * A stacked gated-RNN LM on the GPU: sizes, cell, regularisers and tensors. `params` lists
 * every tensor once (tied: no decoder weight).
 */
export interface GatedStack {
  vocab: number;
  embed: number;
  /** Hidden size H_l of each layer (L = its length ≥ 1). */
  hidden: readonly number[];
  /** Dropout of the output (and, without locked AWD dropout, of every site), in [0, 1). */
  dropout: number;
  tied: boolean;
  awd?: AwdDevices;
  /**
   * The output AR (α) penalises: the dropped one (AWD-LSTM, MoS) or the raw one (ON-LSTM,
   * whose `dropped_rnn_hs[-1]` is undropped; spec §14.2). TAR always reads the raw output.
   */
  arOn: "dropped" | "raw";
  cell: GatedCell;
  /** Prefix of the recurrent phases (`lstm` → `lstm_forward`, `lstm_backward`). */
  phase: string;
  params: Param[];
  /** `[V, E]`. */
  encoder: Param;
  layers: GatedLayer[];
  /** The output head (`stack_head.ts`); with `tied`, its decoder weight is `encoder`. */
  head: StackHead;
}

/**
 * Checks a stack's sizes and regularisers; `what` names the config in the message.
 *
 * @example
 * ```ts
 * import { checkStackSettings } from "./gated_stack.ts";
 * checkStackSettings("OnLstmConfig", { vocab: 10, embed: 4, hidden: [6, 4], dropout: 0, tied: true });
 * ```
 */
export function checkStackSettings(
  what: string,
  s: {
    vocab: number;
    embed: number;
    hidden: readonly number[];
    dropout: number;
    tied: boolean;
    awd?: AwdDevices;
  },
  /** Width the tied decoder reads (default the last hidden size; MoS: its latent, E). */
  decoderInput = s.hidden[s.hidden.length - 1],
): void {
  const sizes = [s.vocab, s.embed, ...s.hidden];
  if (s.hidden.length < 1 || !sizes.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new RangeError(
      `${what}: vocab, embed and at least one hidden size must be integers >= 1, got ` +
        `${s.vocab}, ${s.embed}, [${s.hidden.join(", ")}]`,
    );
  }
  if (!(s.dropout >= 0 && s.dropout < 1)) {
    throw new RangeError(`${what}.dropout must be in [0, 1), got ${s.dropout}`);
  }
  if (s.tied && s.embed !== decoderInput) {
    throw new RangeError(
      `${what}: tied weights need embed == the decoder's input size, got ${s.embed} and ` +
        `${decoderInput}`,
    );
  }
  const awd = s.awd;
  if (!awd) return;
  for (const k of ["dropouti", "dropouth", "dropoute"] as const) {
    if (!(awd[k] >= 0 && awd[k] < 1)) {
      throw new RangeError(`${what}.awd.${k} must be in [0, 1), got ${awd[k]}`);
    }
  }
  if (!(awd.alpha >= 0 && awd.beta >= 0)) {
    throw new RangeError(`${what}.awd: alpha and beta must be >= 0`);
  }
  if (awd.wdrop && !(awd.wdrop.p > 0 && awd.wdrop.p < 1)) {
    throw new RangeError(`${what}.awd.wdrop.p must be in (0, 1), got ${awd.wdrop.p}`);
  }
}

/** Dropout sites per training step (see the module doc), the head's last. */
function dropoutSites(layers: number, awd: boolean, headSites = 0): number {
  return (awd ? 2 * layers + 2 : layers + 1) + headSites;
}

/**
 * Philox offset of dropout site `site` at training step `step` of an L-layer stack (with or
 * without the AWD devices): `step·sites + site`. Distinct for every (step, site) pair until it
 * passes 2^32 (RangeError), so masks never repeat.
 *
 * @example
 * ```ts
 * import { gatedStackDropoutOffset } from "./gated_stack.ts";
 * gatedStackDropoutOffset({ layers: 2, awd: false }, 7, 2); // 23
 * ```
 */
export function gatedStackDropoutOffset(
  s: { layers: number; awd: boolean; headSites?: number },
  step: number,
  site: number,
  what = "gatedStackDropoutOffset",
): number {
  const sites = dropoutSites(s.layers, s.awd, s.headSites);
  if (!Number.isInteger(step) || step < 0 || !Number.isInteger(site) || site < 0 || site >= sites) {
    throw new RangeError(
      `${what}: need integer step >= 0 and site in [0, ${sites}), got ${step}, ${site}`,
    );
  }
  const off = step * sites + site;
  if (off > 0xffffffff) {
    throw new RangeError(`${what}: step ${step} passes the u32 Philox offset space`);
  }
  return off;
}

/** Carried state: per layer `h[l], c[l]: [B, H_l]`. */
export interface GatedStackState {
  B: number;
  h: Tensor[];
  c: Tensor[];
}

/**
 * Zero initial state for batch size `B`.
 *
 * @example
 * ```ts ignore
 * const state = createGatedStackState(gpu, model, 20);
 * ```
 */
export function createGatedStackState(gpu: Gpu, model: GatedStack, B: number): GatedStackState {
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`createState: B = ${B}`);
  return {
    B,
    h: model.hidden.map((H) => gpu.zeros([B, H])),
    c: model.hidden.map((H) => gpu.zeros([B, H])),
  };
}

/**
 * Records a reset of the state to zero (start of an epoch or of an evaluation pass).
 *
 * @example
 * ```ts ignore
 * resetGatedStackState(gpu, state);
 * ```
 */
export function resetGatedStackState(gpu: Gpu, state: GatedStackState): void {
  for (const t of [...state.h, ...state.c]) gpu.fill(t, 0);
}

/**
 * Returns the state's tensors to the pool.
 *
 * @example
 * ```ts ignore
 * releaseGatedStackState(gpu, state);
 * ```
 */
export function releaseGatedStackState(gpu: Gpu, state: GatedStackState): void {
  for (const t of [...state.h, ...state.c]) gpu.release(t);
}

/** The sizes a workspace was made for. */
interface StackShape {
  vocab: number;
  embed: number;
  hidden: readonly number[];
  /** Pre-activation columns of each layer (the cell's width of H_l). */
  widths: readonly number[];
}

/**
 * Preallocated buffers for windows of up to `maxT` steps of `B` sequences. Layouts (N = maxT·B
 * rows, row n = t·B + b):
 *
 * - `tokens`: input and target ids and the embedding index (`token_batch.ts`).
 * - `emb: [N, E]` gathered rows; `embMask: [N, E]` gathered mask rows (masked embedding).
 * - `xDrop[l]: [N, in_l]` dropped input of layer l, `yDrop: [N, H_{L−1}]` dropped top output
 *   (training only).
 * - `hs[l], cs[l]: [maxT + 1, B, H_l]`: slot 0 = carried state, slot t + 1 = output of step t.
 * - `gates[l]: [N, width_l]`: pre-activations, overwritten by the cell's activations.
 * - `head`: the head's buffers (the decoder's logits `[N, V]` and loss rows, or the MoS's).
 * - training: `dH[l]: [N, H_l]` gradient w.r.t. layer l's outputs, `dEmb: [N, E]`,
 *   `dGates: [N, max width]`, `dc: [B, max H]`, `ones: [1, N]` (bias gradients as `1ᵀ·dY`).
 */
export interface GatedStackWorkspace {
  maxT: number;
  B: number;
  training: boolean;
  shape: StackShape;
  tokens: TokenBuffers;
  emb: Tensor;
  embMask: Tensor;
  xDrop: Tensor[];
  yDrop: Tensor | null;
  hs: Tensor[];
  cs: Tensor[];
  gates: Tensor[];
  head: HeadBuffers;
  dH: Tensor[];
  dEmb: Tensor | null;
  dGates: Tensor | null;
  dc: Tensor | null;
  ones: Tensor | null;
}

function shapeOf(model: GatedStack): StackShape {
  return {
    vocab: model.vocab,
    embed: model.embed,
    hidden: [...model.hidden],
    widths: model.hidden.map((H) => model.cell.width(H)),
  };
}

/**
 * Allocates a workspace for windows of up to `maxT` time steps and batch `B`. `training: false`
 * (evaluation) skips the dropout and gradient buffers.
 *
 * @example
 * ```ts ignore
 * const ws = createGatedStackWorkspace(gpu, model, { maxT: 35, B: 20, training: true });
 * ```
 */
export function createGatedStackWorkspace(
  gpu: Gpu,
  model: GatedStack,
  opts: { maxT: number; B: number; training: boolean },
): GatedStackWorkspace {
  const { maxT, B, training } = opts;
  if (!Number.isInteger(maxT) || maxT < 1 || !Number.isInteger(B) || B < 1) {
    throw new RangeError(`createWorkspace: need integers maxT, B >= 1, got ${maxT}, ${B}`);
  }
  const shape = shapeOf(model);
  const { vocab: V, embed: E, hidden, widths } = shape;
  const L = hidden.length;
  const N = maxT * B;
  const perLayer = (f: (l: number) => Tensor) => Array.from({ length: L }, (_, l) => f(l));
  const ones = training ? gpu.tensor([1, N]) : null;
  if (ones) gpu.fill(ones, 1);
  return {
    maxT,
    B,
    training,
    shape,
    tokens: createTokenBuffers(gpu, { maxT, B, vocab: V }),
    emb: gpu.tensor([N, E]),
    embMask: gpu.tensor([N, E]),
    xDrop: training ? perLayer((l) => gpu.tensor([N, l === 0 ? E : hidden[l - 1]])) : [],
    yDrop: training ? gpu.tensor([N, hidden[L - 1]]) : null,
    hs: perLayer((l) => gpu.tensor([maxT + 1, B, hidden[l]])),
    cs: perLayer((l) => gpu.tensor([maxT + 1, B, hidden[l]])),
    gates: perLayer((l) => gpu.tensor([N, widths[l]])),
    head: model.head.buffers(gpu, N, training),
    dH: training ? perLayer((l) => gpu.tensor([N, hidden[l]])) : [],
    dEmb: training ? gpu.tensor([N, E]) : null,
    dGates: training ? gpu.tensor([N, Math.max(...widths)]) : null,
    dc: training ? gpu.tensor([B, Math.max(...hidden)]) : null,
    ones,
  };
}

/**
 * Returns every workspace tensor to the pool.
 *
 * @example
 * ```ts ignore
 * releaseGatedStackWorkspace(gpu, ws);
 * ```
 */
export function releaseGatedStackWorkspace(gpu: Gpu, ws: GatedStackWorkspace): void {
  releaseTokenBuffers(gpu, ws.tokens);
  ws.head.release();
  const all: (Tensor | null)[] = [
    ws.emb,
    ws.embMask,
    ...ws.xDrop,
    ws.yDrop,
    ...ws.hs,
    ...ws.cs,
    ...ws.gates,
    ...ws.dH,
    ws.dEmb,
    ws.dGates,
    ws.dc,
    ws.ones,
  ];
  for (const t of all) if (t) gpu.release(t);
}

/**
 * One window of tokens: `input`, `target: [T·B]` u32, row-major `[T, B]`; `index`: the
 * embedding index of `input` (needed by the backward pass only).
 */
export type GatedStackBatch = Omit<TokenBatch, "index"> & Partial<Pick<TokenBatch, "index">>;

/**
 * Validates a window on the host and writes it into the workspace's token buffers (no
 * allocation): see `writeTokenBatch` for the checks.
 *
 * @example
 * ```ts ignore
 * const batch = writeGatedStackBatch(gpu, ws, { T: 35, input: x, target: y });
 * ```
 */
export function writeGatedStackBatch(
  gpu: Gpu,
  ws: GatedStackWorkspace,
  args: { T: number; input: Uint32Array; target: Uint32Array },
  what = "writeBatch",
): TokenBatch {
  return writeTokenBatch(gpu, ws.tokens, args, what);
}

/** Dropout parameters of a training step, and an optional instrumentation hook. */
export interface GatedStackStepOptions {
  /** Philox seed of the dropout masks (u32). */
  seed: number;
  /** Training step counter: selects the Philox offsets ({@linkcode gatedStackDropoutOffset}). */
  step: number;
  /**
   * Instrumentation for benchmarks: called just before each phase's work is recorded
   * (`embedding_forward`, `{phase}_forward`, `decoder_forward`, `decoder_backward`,
   * `{phase}_backward`, `embedding_backward`). Recording only; it changes nothing recorded.
   */
  onPhase?: (phase: string) => void;
  /** How sparse products run on CPU rasterisers (`weight_ops.ts`); default the training route. */
  route?: SparseRoute;
}

/** The dropouts of one training step, by site. */
interface Drops {
  input: InputDrops;
  /** `between[l]`: the input of layer l (1 ≤ l < L). */
  between: (ActivationDrop | null)[];
  out: ActivationDrop | null;
  /** `hh[l]`: WeightDrop of layer l's recurrent weight. */
  hh: (WeightDropMask | null)[];
  head: HeadDrops;
}

function dropsOf(model: GatedStack, seed: number, step: number): Drops {
  const { awd } = model;
  const L = model.hidden.length;
  const at = { layers: L, awd: !!awd, headSites: model.head.sites };
  const kind = awd?.locked ? "locked" as const : "standard" as const;
  const site = (k: number, p: number): ActivationDrop | null =>
    p > 0 ? { kind, p, seed, offset: gatedStackDropoutOffset(at, step, k) } : null;
  const pIn = awd?.locked ? awd.dropouti : model.dropout;
  const pBetween = awd?.locked ? awd.dropouth : model.dropout;
  const rows = awd && awd.dropoute > 0
    ? { p: awd.dropoute, seed, offset: gatedStackDropoutOffset(at, step, L + 1) }
    : undefined;
  return {
    input: { rows, out: site(0, pIn) ?? undefined },
    between: Array.from({ length: L }, (_, l) => (l === 0 ? null : site(l, pBetween))),
    out: site(L, model.dropout),
    hh: Array.from(
      { length: L },
      (_, l) =>
        awd?.wdrop
          ? weightDropMask(awd.wdrop, seed, gatedStackDropoutOffset(at, step, L + 2 + l))
          : null,
    ),
    head: {
      seed,
      offset: (k) => gatedStackDropoutOffset(at, step, dropoutSites(L, !!awd) + k),
    },
  };
}

function validate(
  model: GatedStack,
  ws: GatedStackWorkspace,
  state: GatedStackState,
  batch: GatedStackBatch,
  training: boolean,
): void {
  const m = shapeOf(model), w = ws.shape;
  const show = (s: StackShape) => `V=${s.vocab} E=${s.embed} H=[${s.hidden.join(", ")}]`;
  if (show(m) !== show(w) || m.widths.join() !== w.widths.join()) {
    throw new ShapeError(`workspace was made for ${show(w)}, model has ${show(m)}`);
  }
  if (training && !ws.training) {
    throw new ShapeError("step: the workspace was created with training: false");
  }
  const { T, B } = batch;
  if (!Number.isInteger(T) || T < 1 || T > ws.maxT) {
    throw new ShapeError(`batch T must be an integer in [1, ${ws.maxT}], got ${T}`);
  }
  if (B !== ws.B || state.B !== ws.B) {
    throw new ShapeError(
      `batch B = ${B} and state B = ${state.B} must equal the workspace's B = ${ws.B}`,
    );
  }
  const N = T * B;
  expectShape("batch.input (T·B token ids)", batch.input, [N], "u32");
  expectShape("batch.target (T·B token ids)", batch.target, [N], "u32");
  if (training) {
    const idx = batch.index;
    if (!idx) throw new ShapeError("step: batch.index (embedding index) is required");
    expectShape("step batch.index.positions", idx.positions, [N], "u32");
    if (idx.vocabSize !== model.vocab) {
      throw new ShapeError(
        `step: batch.index was built for vocabulary ${idx.vocabSize}, model has ${model.vocab}`,
      );
    }
  }
  const L = model.hidden.length;
  if (state.h.length !== L || state.c.length !== L) {
    throw new ShapeError(`state must hold ${L} layers`);
  }
  for (let l = 0; l < L; l++) {
    expectShape(`state.h[${l}]`, state.h[l], [B, model.hidden[l]], "f32");
    expectShape(`state.c[${l}]`, state.c[l], [B, model.hidden[l]], "f32");
  }
  for (const p of model.params) checkParamMask(p);
}

/** Tensors the backward pass needs from the forward pass. */
interface ForwardTrace {
  /** Input of each layer as the layer saw it (after dropout): `[N, in_l]`. */
  xs: Tensor[];
  /** Input of the head (after dropout): `[N, H_{L−1}]`. */
  top: Tensor;
  loss: Tensor;
  /**
   * Each layer's recurrent weight as this pass's products read it (dropped in training,
   * scaled at evaluation under WeightDrop's `eval-scaled` convention); released by the caller
   * after the last product.
   */
  hh: ReusedWeight[];
}

/** Recurrent weight of layer l as a training step (`drop`) or an evaluation reads it. */
function recurrentWeight(gpu: Gpu, model: GatedStack, l: number, drop: Drops | null) {
  const wHh = model.layers[l].wHh, wd = model.awd?.wdrop;
  const mask = drop?.hh[l];
  if (mask) return droppedWeight(gpu, wHh, mask);
  return !drop && wd ? evalWeight(gpu, wHh, wd) : { param: wHh, release: () => {} };
}

function windowOf(model: GatedStack, ws: GatedStackWorkspace, l: number, T: number, B: number) {
  return {
    cell: model.cell,
    T,
    B,
    H: model.hidden[l],
    hs: ws.hs[l],
    cs: ws.cs[l],
    gates: ws.gates[l],
  };
}

function forward(
  gpu: Gpu,
  model: GatedStack,
  ws: GatedStackWorkspace,
  state: GatedStackState,
  batch: GatedStackBatch,
  drop: Drops | null,
  onPhase?: (phase: string) => void,
  route?: SparseRoute,
): ForwardTrace {
  const { embed: E, hidden } = model;
  const L = hidden.length;
  const { T, B } = batch;
  const N = T * B;
  const dropped = (src: Tensor, dst: Tensor | undefined, site: ActivationDrop | null): Tensor => {
    if (!site) return src;
    if (!dst) throw new ShapeError("dropout needs a training workspace");
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
  onPhase?.(`${model.phase}_forward`);
  for (let l = 0; l < L; l++) {
    hh.push(recurrentWeight(gpu, model, l, drop));
    xs.push(x);
    const w: GatedWindow = { ...windowOf(model, ws, l, T, B), route };
    const out = gatedLayerForward(gpu, model.layers[l], hh[l].param, w, {
      x,
      h: state.h[l],
      c: state.c[l],
    });
    const H = hidden[l];
    x = l < L - 1
      ? dropped(out, ws.xDrop[l + 1]?.view(0, [N, H]), drop?.between[l + 1] ?? null)
      : dropped(out, ws.yDrop?.view(0, [N, H]), drop?.out ?? null);
  }
  onPhase?.("decoder_forward");
  const loss = ws.head.forward({
    x,
    target: batch.target,
    B,
    drops: drop?.head ?? null,
    route,
  });
  return { xs, top: x, loss, hh };
}

/**
 * Records one training step on a window: forward with dropout, mean cross-entropy (plus AR and
 * TAR), backward through time into every `param.grad` (overwritten), and the carried state
 * advanced to the end of the window. Returns the per-row loss view `[T·B]` of the workspace
 * (valid until the next step). Records only: no readback.
 *
 * `batch` must come from {@linkcode writeGatedStackBatch} on `ws` (or hold equivalent tensors
 * with an index); shape errors throw {@linkcode ShapeError} before anything is recorded.
 *
 * @example
 * ```ts ignore
 * const batch = writeGatedStackBatch(gpu, ws, { T, input, target });
 * const loss = gatedStackStep(gpu, model, ws, state, batch, { seed: 1111, step });
 * ```
 */
export function gatedStackStep(
  gpu: Gpu,
  model: GatedStack,
  ws: GatedStackWorkspace,
  state: GatedStackState,
  batch: GatedStackBatch,
  opts: GatedStackStepOptions,
): Tensor {
  validate(model, ws, state, batch, true);
  const { embed: E, hidden, awd } = model;
  const L = hidden.length;
  // Fail on a bad step/seed before recording anything.
  const at = { layers: L, awd: !!awd, headSites: model.head.sites };
  gatedStackDropoutOffset(at, opts.step, dropoutSites(L, !!awd, model.head.sites) - 1, "step");
  if (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > 0xffffffff) {
    throw new RangeError(`step: seed must be a u32, got ${opts.seed}`);
  }
  const drop = dropsOf(model, opts.seed, opts.step);
  const dropBack = (d: Tensor, site: ActivationDrop | null) =>
    dropActivationsBackward(gpu, site, d, batch.B);

  const route = opts.route;
  const trace = forward(gpu, model, ws, state, batch, drop, opts.onPhase, route);
  const { T, B } = batch;
  const N = T * B;
  const ones = ws.ones!.view(0, [1, N]);
  const Htop = hidden[L - 1];

  opts.onPhase?.("decoder_backward");
  let dOut = ws.dH[L - 1].view(0, [N, Htop]);
  ws.head.backward({ x: trace.top, dx: dOut, B, ones, drops: drop.head, route });
  const raw = ws.hs[L - 1].view(B * Htop, [N, Htop]);
  if (awd?.alpha && model.arOn === "dropped") {
    activationRegGrad(gpu, { y: trace.top, g: dOut, B, alpha: awd.alpha, beta: 0 });
  }
  dropBack(dOut, drop.out);
  const alphaRaw = awd && model.arOn === "raw" ? awd.alpha : 0;
  if (awd && (awd.beta || alphaRaw)) {
    activationRegGrad(gpu, { y: raw, g: dOut, B, alpha: alphaRaw, beta: awd.beta });
  }

  opts.onPhase?.(`${model.phase}_backward`);
  for (let l = L - 1; l >= 0; l--) {
    const H = hidden[l], G = model.cell.width(H);
    const dIn = l > 0 ? ws.dH[l - 1].view(0, [N, hidden[l - 1]]) : ws.dEmb!.view(0, [N, E]);
    gatedLayerBackward(gpu, model.layers[l], trace.hh[l].param, {
      ...windowOf(model, ws, l, T, B),
      route,
    }, {
      x: trace.xs[l],
      dOut,
      dIn,
      dGates: ws.dGates!.view(0, [N, G]),
      dc: ws.dc!.view(0, [B, H]),
      ones,
      hhMask: drop.hh[l],
    });
    trace.hh[l].release();
    dOut = dIn;
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
    tied: model.tied,
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
 * const loss = gatedStackEvalLoss(gpu, model, evalWs, evalState, batch);
 * ```
 */
export function gatedStackEvalLoss(
  gpu: Gpu,
  model: GatedStack,
  ws: GatedStackWorkspace,
  state: GatedStackState,
  batch: GatedStackBatch,
  opts: { route?: SparseRoute } = {},
): Tensor {
  validate(model, ws, state, batch, false);
  const trace = forward(gpu, model, ws, state, batch, null, undefined, opts.route);
  for (const w of trace.hh) w.release();
  return trace.loss;
}

/**
 * A session of the contract (`../model.ts`) over a gated stack: its workspace and carried
 * state for one batch shape; checkpoints name the state `state.h{l}`, `state.c{l}`.
 *
 * @example
 * ```ts ignore
 * const session = gatedStackSession(gpu, model, { maxT: 35, B: 20, training: true });
 * ```
 */
export function gatedStackSession(
  gpu: Gpu,
  model: GatedStack,
  opts: { maxT: number; B: number; training: boolean },
): ModelSession {
  const ws = createGatedStackWorkspace(gpu, model, opts);
  const state = createGatedStackState(gpu, model, opts.B);
  return {
    B: opts.B,
    maxT: opts.maxT,
    writeBatch: (w) => writeGatedStackBatch(gpu, ws, w),
    step: (batch, ctx) => gatedStackStep(gpu, model, ws, state, batch, ctx),
    evalLoss: (batch, o) => gatedStackEvalLoss(gpu, model, ws, state, batch, o),
    resetState: () => resetGatedStackState(gpu, state),
    stateTensors: () => {
      const out: Record<string, Tensor> = {};
      state.h.forEach((t, l) => (out[`state.h${l}`] = t));
      state.c.forEach((t, l) => (out[`state.c${l}`] = t));
      return out;
    },
    release: () => {
      releaseGatedStackWorkspace(gpu, ws);
      releaseGatedStackState(gpu, state);
    },
  };
}
