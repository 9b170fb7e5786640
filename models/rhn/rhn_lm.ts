/**
 * Recurrent Highway Network language model (Zilly et al. 2017, as in Selfish-RNN's `RHN`, spec
 * §2.2 and §14.1) on the GPU: one RHN layer of recurrence depth L with a coupled carry gate,
 * tied or untied decoder, AWD-style dropouts.
 *
 * ```text
 * ids [T, B] → embedding [V, E] → row dropout p_e → locked dropout p_i → x_t
 * per step t, micro-layers l = 0 .. L−1:   (s⊙m is the state under the hidden mask m, p_h)
 *   a = [W x_t + b_W] (l = 0 only) + R_l (s ⊙ m) + b_Rl      rows [H; T]
 *   s ← tanh(a_H) ⊙ σ(a_T) + s ⊙ (1 − σ(a_T))
 * y_t = s → locked dropout p → decoder (tied: the embedding) → softmax cross-entropy
 * ```
 *
 * Parameters, PyTorch names of the Selfish code: `embedding.weight [V, E]`,
 * `rnns.0.highways.0.W.weight [2H, E]` and `.W.bias [2H]`, `rnns.0.highways.{l}.R.weight
 * [2H, H]` and `.R.bias [2H]` for every micro-layer, `fc1.weight [V, H]` (absent when tied),
 * `fc1.bias [V]`. Row blocks `[H, H]` (H and T) for W, R and their biases. Init: PyTorch
 * defaults (`Linear`: weights and biases U(±1/√fan_in)), embedding and fc1 weight U(±0.1), fc1
 * bias 0 (spec §14.1: the original RHN's U(±0.04) and T bias −2 are not used).
 *
 * Buffers (N = T·B rows, row n = t·B + b; `[L, ...]` arrays are one tensor per micro-layer):
 * - `act[l]: [maxT·B, 2H]`: pre-activations, overwritten by the activated gates (h, t);
 *   `act[0]` first receives the input projection of all T steps at once.
 * - `ss: [maxT·L + 1, B, H]`: slot k = the state after k micro-steps (slot 0 carried in).
 * - `sm[l]: [maxT·B, H]`: micro-layer l's recurrent input `s ⊙ m` at each step, contiguous over
 *   time so that each `dR_l = Σ_t da_l[t]ᵀ (s ⊙ m)` is one product.
 * - `y: [N, H]` the outputs, `dpre[l]` like `act[l]`, `ds, dsm: [B, H]` (training).
 *
 * Dropout masks are pure functions of `(seed, step)`: site k of step `step` draws Philox offset
 * `4·step + k` (0 embedding rows, 1 input, 2 hidden, 3 output), each mask shared over the window
 * as the Selfish code draws one per forward call.
 *
 * @module
 */

import { decoderHeadBufferShapes } from "../parts/stack_head.ts";
import type { Gpu } from "../../kernels/runtime/runtime.ts";
import { expectShape, ShapeError, type Tensor } from "../../kernels/runtime/tensor.ts";
import { matmul } from "../../kernels/dense/matmul.ts";
import { add, mul } from "../../kernels/dense/elementwise.ts";
import { dropoutForward } from "../../kernels/cells/dropout.ts";
import {
  highwayCellBackward,
  highwayCellForward,
  highwayMaskedAdd,
} from "../../kernels/cells/highway_cell.ts";
import { checkParamMask, createParams, type Param, type ParamSpec } from "../params.ts";
import { equalBlocks, type StepContext } from "../model.ts";
import {
  reusedWeight,
  type SparseRoute,
  weightBackwardData,
  weightBackwardWeight,
  weightForward,
} from "../weight_ops.ts";
import {
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
  createTokenBuffers,
  releaseTokenBuffers,
  type TokenBatch,
  type TokenBuffers,
  writeTokenBatch,
} from "../parts/token_batch.ts";

/** Architecture and dropouts of the RHN LM. */
export interface RhnConfig {
  vocab: number;
  /** Embedding size E (= H when tied). */
  embed: number;
  /** Width H of the highway layer. */
  hidden: number;
  /** Recurrence depth L (micro-layers per time step; the paper's 10). */
  depth: number;
  tied: boolean;
  /** Locked dropout on the output (p). */
  dropout: number;
  /** Hidden-state mask where s enters every R product (p_h). */
  dropouth: number;
  /** Locked dropout on the embedding output (p_i). */
  dropouti: number;
  /** Embedding-row dropout (p_e). */
  dropoute: number;
}

/** An RHN LM on the GPU. */
export interface RhnLm {
  config: RhnConfig;
  params: Param[];
  encoder: Param;
  W: Param;
  bW: Param;
  R: Param[];
  bR: Param[];
  decoderWeight: Param;
  decoderBias: Param;
}

const prefix = "rnns.0.highways";

function checkConfig(c: RhnConfig): void {
  for (const k of ["vocab", "embed", "hidden", "depth"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) {
      throw new RangeError(`RhnConfig.${k} must be an integer >= 1, got ${c[k]}`);
    }
  }
  for (const k of ["dropout", "dropouth", "dropouti", "dropoute"] as const) {
    if (!(c[k] >= 0 && c[k] < 1)) {
      throw new RangeError(`RhnConfig.${k} must be in [0, 1), got ${c[k]}`);
    }
  }
  if (c.tied && c.embed !== c.hidden) {
    throw new RangeError(
      `RhnConfig: tied weights need embed == hidden, got ${c.embed}, ${c.hidden}`,
    );
  }
}

/**
 * Parameter list in order: `embedding.weight`, `W.weight`, `W.bias`, then `R.weight`, `R.bias`
 * per micro-layer, then `fc1.weight` (untied) and `fc1.bias`.
 *
 * @example
 * ```ts
 * import { rhnParamSpecs } from "./rhn_lm.ts";
 * const specs = rhnParamSpecs({
 *   vocab: 10000, embed: 830, hidden: 830, depth: 10, tied: true,
 *   dropout: 0, dropouth: 0, dropouti: 0, dropoute: 0,
 * });
 * specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0); // 23_484_060 (spec §2.2)
 * ```
 */
export function rhnParamSpecs(config: RhnConfig): ParamSpec[] {
  checkConfig(config);
  const { vocab: V, embed: E, hidden: H, depth: L } = config;
  // the candidate (H) and transform gate (T) rows
  const rows = { blocks: equalBlocks(2 * H, 2), blockNames: ["H", "T"] };
  const linear = (fanIn: number) => {
    const r = 1 / Math.sqrt(fanIn);
    return { kind: "uniform", lo: -r, hi: r } as const;
  };
  const specs: ParamSpec[] = [
    {
      name: "embedding.weight",
      shape: [V, E],
      blocks: [V],
      sparse: true,
      init: { kind: "uniform", lo: -0.1, hi: 0.1 },
    },
    { name: `${prefix}.0.W.weight`, shape: [2 * H, E], ...rows, sparse: true, init: linear(E) },
    { name: `${prefix}.0.W.bias`, shape: [2 * H], ...rows, sparse: false, init: linear(E) },
  ];
  for (let l = 0; l < L; l++) {
    specs.push(
      {
        name: `${prefix}.${l}.R.weight`,
        shape: [2 * H, H],
        ...rows,
        sparse: true,
        init: linear(H),
      },
      { name: `${prefix}.${l}.R.bias`, shape: [2 * H], ...rows, sparse: false, init: linear(H) },
    );
  }
  if (!config.tied) {
    specs.push({
      name: "fc1.weight",
      shape: [V, H],
      blocks: [V],
      sparse: true,
      init: { kind: "uniform", lo: -0.1, hi: 0.1 },
    });
  }
  specs.push({ name: "fc1.bias", shape: [V], blocks: [V], sparse: false, init: { kind: "zeros" } });
  return specs;
}

/**
 * Allocates the model and records its initialisation from `seed` (`params.ts`).
 *
 * @example
 * ```ts ignore
 * const model = createRhn(gpu, config, 42);
 * ```
 */
export function createRhn(gpu: Gpu, config: RhnConfig, seed: number): RhnLm {
  const params = createParams(gpu, rhnParamSpecs(config), seed);
  const by = new Map(params.map((p) => [p.name, p]));
  const encoder = by.get("embedding.weight")!;
  const layer = (l: number, k: "weight" | "bias") => by.get(`${prefix}.${l}.R.${k}`)!;
  return {
    config: { ...config },
    params,
    encoder,
    W: by.get(`${prefix}.0.W.weight`)!,
    bW: by.get(`${prefix}.0.W.bias`)!,
    R: Array.from({ length: config.depth }, (_, l) => layer(l, "weight")),
    bR: Array.from({ length: config.depth }, (_, l) => layer(l, "bias")),
    decoderWeight: config.tied ? encoder : by.get("fc1.weight")!,
    decoderBias: by.get("fc1.bias")!,
  };
}

/** Dropout sites per step: embedding rows, input, hidden mask, output. */
const SITES = 4;

/**
 * Philox offset of dropout `site` (0 embedding rows, 1 input, 2 hidden, 3 output) at `step`.
 *
 * @example
 * ```ts
 * import { rhnDropoutOffset } from "./rhn_lm.ts";
 * rhnDropoutOffset(7, 2); // 30
 * ```
 */
export function rhnDropoutOffset(step: number, site: number): number {
  if (!Number.isInteger(step) || step < 0 || !Number.isInteger(site) || site < 0 || site >= SITES) {
    throw new RangeError(`rhnDropoutOffset: need integer step >= 0 and site in [0, 4)`);
  }
  const off = step * SITES + site;
  if (off > 0xffffffff) throw new RangeError(`rhnDropoutOffset: step ${step} passes 2^32`);
  return off;
}

/** Buffers of one session (see the module doc for the layouts). */
export interface RhnWorkspace {
  maxT: number;
  B: number;
  training: boolean;
  tokens: TokenBuffers;
  emb: Tensor;
  embMask: Tensor;
  xDrop: Tensor | null;
  act: Tensor[];
  ss: Tensor;
  sm: Tensor[];
  /** Discarded masked copy of the last micro-step's state (nothing reads it). */
  smLast: Tensor;
  y: Tensor;
  yDrop: Tensor | null;
  logits: Tensor;
  loss: Tensor;
  hiddenMask: Tensor | null;
  dpre: Tensor[];
  dY: Tensor | null;
  dEmb: Tensor | null;
  ds: Tensor | null;
  dsm: Tensor | null;
  ones: Tensor | null;
  /** Carried state `[B, H]`. */
  state: Tensor;
}

/**
 * Allocates a session's buffers and its zero state.
 *
 * @example
 * ```ts ignore
 * const ws = createRhnWorkspace(gpu, model, { maxT: 35, B: 20, training: true });
 * ```
 */
export function createRhnWorkspace(
  gpu: Gpu,
  model: RhnLm,
  opts: { maxT: number; B: number; training: boolean },
): RhnWorkspace {
  const { maxT, B, training } = opts;
  if (!Number.isInteger(maxT) || maxT < 1 || !Number.isInteger(B) || B < 1) {
    throw new RangeError(`createRhnWorkspace: need integers maxT, B >= 1, got ${maxT}, ${B}`);
  }
  const { vocab: V, embed: E, hidden: H, depth: L } = model.config;
  const N = maxT * B;
  const head = decoderHeadBufferShapes(V, N);
  const perLayer = (cols: number) => Array.from({ length: L }, () => gpu.tensor([N, cols]));
  const ones = training ? gpu.tensor([1, N]) : null;
  if (ones) gpu.fill(ones, 1);
  return {
    maxT,
    B,
    training,
    tokens: createTokenBuffers(gpu, { maxT, B, vocab: V }),
    emb: gpu.tensor([N, E]),
    embMask: gpu.tensor([N, E]),
    xDrop: training ? gpu.tensor([N, E]) : null,
    act: perLayer(2 * H),
    ss: gpu.tensor([maxT * L + 1, B, H]),
    sm: perLayer(H),
    smLast: gpu.tensor([B, H]),
    y: gpu.tensor([N, H]),
    yDrop: training ? gpu.tensor([N, H]) : null,
    logits: gpu.tensor(head.logits),
    loss: gpu.tensor(head.loss),
    hiddenMask: training ? gpu.tensor([B, H]) : null,
    dpre: training ? perLayer(2 * H) : [],
    dY: training ? gpu.tensor([N, H]) : null,
    dEmb: training ? gpu.tensor([N, E]) : null,
    ds: training ? gpu.tensor([B, H]) : null,
    dsm: training ? gpu.tensor([B, H]) : null,
    ones,
    state: gpu.zeros([B, H]),
  };
}

/**
 * Returns every buffer of the session to the pool.
 *
 * @example
 * ```ts ignore
 * releaseRhnWorkspace(gpu, ws);
 * ```
 */
export function releaseRhnWorkspace(gpu: Gpu, ws: RhnWorkspace): void {
  releaseTokenBuffers(gpu, ws.tokens);
  const all: (Tensor | null)[] = [
    ws.emb,
    ws.embMask,
    ws.xDrop,
    ...ws.act,
    ws.ss,
    ...ws.sm,
    ws.smLast,
    ws.y,
    ws.yDrop,
    ws.logits,
    ws.loss,
    ws.hiddenMask,
    ...ws.dpre,
    ws.dY,
    ws.dEmb,
    ws.ds,
    ws.dsm,
    ws.ones,
    ws.state,
  ];
  for (const t of all) if (t) gpu.release(t);
}

/**
 * Writes a window into the session's token buffers (`token_batch.ts`).
 *
 * @example
 * ```ts ignore
 * const batch = writeRhnBatch(gpu, ws, { T: 35, input, target });
 * ```
 */
export function writeRhnBatch(
  gpu: Gpu,
  ws: RhnWorkspace,
  args: { T: number; input: Uint32Array; target: Uint32Array },
): TokenBatch {
  return writeTokenBatch(gpu, ws.tokens, args, "writeRhnBatch");
}

/** The dropouts of a training step (none at evaluation). */
interface Drops {
  input: InputDrops;
  hidden: { p: number; seed: number; offset: number };
  out: { kind: "locked"; p: number; seed: number; offset: number };
}

function drops(config: RhnConfig, ctx: StepContext | null): Drops | null {
  if (!ctx) return null;
  const { seed, step } = ctx;
  const off = (site: number) => rhnDropoutOffset(step, site);
  return {
    input: {
      rows: { p: config.dropoute, seed, offset: off(0) },
      out: { kind: "locked", p: config.dropouti, seed, offset: off(1) },
    },
    hidden: { p: config.dropouth, seed, offset: off(2) },
    out: { kind: "locked", p: config.dropout, seed, offset: off(3) },
  };
}

function validate(model: RhnLm, ws: RhnWorkspace, batch: TokenBatch, training: boolean): void {
  if (training && !ws.training) {
    throw new ShapeError("rhnStep: the workspace was created with training: false");
  }
  const { T, B } = batch;
  if (!Number.isInteger(T) || T < 1 || T > ws.maxT || B !== ws.B) {
    throw new ShapeError(`rhn: batch T ${T} must be in [1, ${ws.maxT}] and B ${B} = ${ws.B}`);
  }
  expectShape("rhn batch.input (T·B token ids)", batch.input, [T * B], "u32");
  expectShape("rhn batch.target (T·B token ids)", batch.target, [T * B], "u32");
  for (const p of model.params) checkParamMask(p);
}

function head(model: RhnLm): DecoderHead {
  return { weight: model.decoderWeight, bias: model.decoderBias };
}

/** The forward's tensors the backward reads. */
interface Trace {
  x: Tensor;
  top: Tensor;
  logits: Tensor;
  loss: Tensor;
  mask: Tensor | undefined;
}

function forward(
  gpu: Gpu,
  model: RhnLm,
  ws: RhnWorkspace,
  batch: TokenBatch,
  d: Drops | null,
  route: SparseRoute | undefined,
  onPhase?: (phase: string) => void,
): Trace {
  const { vocab: V, embed: E, hidden: H, depth: L } = model.config;
  const { T, B } = batch;
  const N = T * B, bh = B * H, b2h = 2 * bh;
  onPhase?.("embedding_forward");
  const x = embeddingInputForward(gpu, model.encoder, {
    ids: batch.input,
    emb: ws.emb.view(0, [N, E]),
    maskRows: ws.embMask.view(0, [N, E]),
    dropped: ws.xDrop?.view(0, [N, E]),
    B,
    drops: d?.input,
  });
  onPhase?.("rhn_forward");
  // the input projection of micro-layer 0, all steps at once
  weightForward(gpu, model.W, { x, y: ws.act[0].view(0, [N, 2 * H]), bias: model.bW.value, route });
  let mask: Tensor | undefined;
  if (d && d.hidden.p > 0 && ws.hiddenMask) {
    mask = ws.hiddenMask;
    gpu.fill(mask, 1);
    dropoutForward(gpu, { x: mask, y: mask, ...d.hidden });
  }
  const state = (k: number) => ws.ss.view(k * bh, [B, H]);
  const rIn = (l: number, t: number) => ws.sm[l].view(t * bh, [B, H]);
  gpu.copy(ws.state, state(0));
  if (mask) mul(gpu, { a: state(0), b: mask, out: rIn(0, 0) });
  else gpu.copy(state(0), rIn(0, 0));
  const loops = model.R.map((r) => reusedWeight(gpu, r, T, route));
  for (let t = 0; t < T; t++) {
    for (let l = 0; l < L; l++) {
      const k = t * L + l + 1;
      const pre = ws.act[l].view(t * b2h, [B, 2 * H]);
      weightForward(gpu, loops[l].param, {
        x: rIn(l, t),
        y: pre,
        bias: model.bR[l].value,
        beta: l === 0 ? 1 : 0,
        route,
      });
      const sNext = l < L - 1 ? rIn(l + 1, t) : t < T - 1 ? rIn(0, t + 1) : ws.smLast;
      highwayCellForward(gpu, { pre, sPrev: state(k - 1), mask, act: pre, s: state(k), sNext });
    }
    gpu.copy(state((t + 1) * L), ws.y.view(t * bh, [B, H]));
  }
  for (const w of loops) w.release();
  gpu.copy(state(T * L), ws.state);
  const y = ws.y.view(0, [N, H]);
  const top = d ? dropActivations(gpu, d.out, y, ws.yDrop!.view(0, [N, H]), B) : y;
  onPhase?.("decoder_forward");
  const logits = ws.logits.view(0, [N, V]);
  const loss = ws.loss.view(0, [N]);
  decoderHeadForward(gpu, head(model), {
    x: top,
    logits,
    loss,
    target: batch.target,
    training: d !== null,
    route,
  });
  return { x, top, logits, loss, mask };
}

/**
 * Records one training step (forward with dropout, mean cross-entropy, BPTT through every
 * micro-layer into each `param.grad`, overwritten); the carried state advances. Returns the
 * per-row loss `[T·B]`. Records only.
 *
 * @example
 * ```ts ignore
 * const loss = rhnStep(gpu, model, ws, batch, { seed: 42, step });
 * ```
 */
export function rhnStep(
  gpu: Gpu,
  model: RhnLm,
  ws: RhnWorkspace,
  batch: TokenBatch,
  ctx: StepContext,
): Tensor {
  validate(model, ws, batch, true);
  if (!Number.isInteger(ctx.seed) || ctx.seed < 0 || ctx.seed > 0xffffffff) {
    throw new RangeError(`rhnStep: seed must be a u32, got ${ctx.seed}`);
  }
  const d = drops(model.config, ctx)!;
  const { route, onPhase } = ctx;
  const tr = forward(gpu, model, ws, batch, d, route, onPhase);
  const { embed: E, hidden: H, depth: L } = model.config;
  const { T, B } = batch;
  const N = T * B, bh = B * H, b2h = 2 * bh;
  const ones = ws.ones!.view(0, [1, N]);

  onPhase?.("decoder_backward");
  const dY = ws.dY!.view(0, [N, H]);
  decoderHeadBackward(gpu, head(model), { x: tr.top, dLogits: tr.logits, dx: dY, ones, route });
  dropActivationsBackward(gpu, d.out, dY, B);

  onPhase?.("rhn_backward");
  const ds = ws.ds!, dsm = ws.dsm!;
  const state = (k: number) => ws.ss.view(k * bh, [B, H]);
  gpu.fill(ds, 0);
  const loops = model.R.map((r) => reusedWeight(gpu, r, T, route));
  for (let t = T - 1; t >= 0; t--) {
    // the output's gradient joins the state leaving step t
    add(gpu, { a: ds, b: dY.view(t * bh, [B, H]), out: ds });
    for (let l = L - 1; l >= 0; l--) {
      const k = t * L + l + 1;
      const dpre = ws.dpre[l].view(t * b2h, [B, 2 * H]);
      highwayCellBackward(gpu, {
        act: ws.act[l].view(t * b2h, [B, 2 * H]),
        sPrev: state(k - 1),
        ds,
        dpre,
        dsPrev: ds,
      });
      // the recurrent product's path: through R_l and the hidden mask
      if (tr.mask) {
        weightBackwardData(gpu, loops[l].param, { dy: dpre, dx: dsm, route });
        highwayMaskedAdd(gpu, { mask: tr.mask, x: dsm, acc: ds });
      } else {
        weightBackwardData(gpu, loops[l].param, { dy: dpre, dx: ds, beta: 1, route });
      }
    }
  }
  for (const w of loops) w.release();
  for (let l = 0; l < L; l++) {
    const dpre = ws.dpre[l].view(0, [N, 2 * H]);
    weightBackwardWeight(gpu, model.R[l], { dy: dpre, x: ws.sm[l].view(0, [N, H]), route });
    matmul(gpu, { a: ones, b: dpre, c: model.bR[l].grad.reshape([1, 2 * H]) });
  }
  const dpre0 = ws.dpre[0].view(0, [N, 2 * H]);
  weightBackwardWeight(gpu, model.W, { dy: dpre0, x: tr.x, route });
  gpu.copy(model.bR[0].grad, model.bW.grad);
  const dEmb = ws.dEmb!.view(0, [N, E]);
  weightBackwardData(gpu, model.W, { dy: dpre0, dx: dEmb, route });

  onPhase?.("embedding_backward");
  embeddingInputBackward(gpu, model.encoder, {
    index: batch.index,
    ids: batch.input,
    dOut: dEmb,
    B,
    drops: d.input,
    tied: model.config.tied,
  });
  return tr.loss;
}

/**
 * Records the forward pass without dropout; returns the per-row loss `[T·B]`; the carried
 * state advances.
 *
 * @example
 * ```ts ignore
 * const loss = rhnEvalLoss(gpu, model, ws, batch);
 * ```
 */
export function rhnEvalLoss(
  gpu: Gpu,
  model: RhnLm,
  ws: RhnWorkspace,
  batch: TokenBatch,
  opts: { route?: SparseRoute } = {},
): Tensor {
  validate(model, ws, batch, false);
  return forward(gpu, model, ws, batch, null, opts.route).loss;
}
