/**
 * The building blocks every connectivity method is written in: remove the k smallest active
 * weights, grow k positions among the inactive ones (at random, or by the largest |score|),
 * and the few statistics the redistribution rules need. All on masked-dense parameters
 * (`param.mask`, f32 0/1): the representation that reproduces the paper's code exactly,
 * including dense gradients and momentum for RigL and SNFS (spec §13).
 *
 * Every change goes through `applyMaskFlags`, which clears the weight and its optimizer state at
 * the changed positions: removed weights leave nothing behind, grown weights start at exactly 0
 * with a fresh state (momentum, Adam moments and their age, SNT-ASGD average and counter) —
 * except momentum and Adam moments under the `keep` policy (`optimizer.ts`), which persist as
 * in the released code.
 *
 * Counts are exact and tracked on the host (`SparseTensor.nnz`); selection is `selectTopK`
 * (radix select, ties to the lower index), so a method asks for k and gets exactly k. The only
 * readbacks are the per-block statistics, once per update, never inside a training step.
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import type { Tensor } from "../../kernels/runtime/tensor.ts";
import { magnitudeKeys, randomKeys, selectTopK } from "../../kernels/select/topk.ts";
import { applyMaskFlags } from "../../kernels/select/mask_update.ts";
import { reduce } from "../../kernels/dense/reduce.ts";
import { mul, unary } from "../../kernels/dense/elementwise.ts";
import { blockSpans, type Param } from "../../models/params.ts";
import type { OptimizerState } from "../optimizer.ts";
import { keyBelowIndicator } from "../../kernels/select/sign_keys.ts";

/** One sparse (masked) tensor under a connectivity method. */
export interface SparseTensor {
  /** The parameter; `param.mask` is set. */
  param: Param;
  /** Position of `param` in the model's parameter list (and the optimizer's state list). */
  index: number;
  /** Rows of each row block (LSTM `[H, H, H, H]`, `[rows]` for plain tensors). */
  blocks: readonly number[];
  /** The count the method keeps (its parameter budget). */
  budget: number;
  /** Active weights now (exact). */
  nnz: number;
}

/** What the ops need besides the tensor: the GPU, the optimizer state, scratch buffers. */
export interface OpsContext {
  gpu: Gpu;
  optimizer: OptimizerState;
  /** u32 scratch of at least the largest tensor's size: selection keys. */
  keys: Tensor<"u32">;
  /** u32 scratch of at least the largest tensor's size: selection flags. */
  flags: Tensor<"u32">;
}

/**
 * Allocates the scratch of an update for tensors up to `maxNumel` elements; release with
 * {@linkcode releaseOpsContext}.
 *
 * @example
 * ```ts ignore
 * const ctx = createOpsContext(gpu, opt, Math.max(...tensors.map((t) => t.param.value.size)));
 * ```
 */
export function createOpsContext(
  gpu: Gpu,
  optimizer: OptimizerState,
  maxNumel: number,
): OpsContext {
  return {
    gpu,
    optimizer,
    keys: gpu.tensor([Math.max(1, maxNumel)], "u32"),
    flags: gpu.tensor([Math.max(1, maxNumel)], "u32"),
  };
}

/** Returns an update's scratch to the pool. */
export function releaseOpsContext(ctx: OpsContext): void {
  ctx.gpu.release(ctx.keys);
  ctx.gpu.release(ctx.flags);
}

function scratch(ctx: OpsContext, n: number): { keys: Tensor<"u32">; flags: Tensor<"u32"> } {
  return { keys: ctx.keys.view(0, [n]), flags: ctx.flags.view(0, [n]) };
}

/**
 * The weight and the optimizer tensors of `t` that a topology change clears: all of them, but
 * momentum and Adam moments persist under the `keep` policy (`optimizer.ts`).
 */
function clearList(ctx: OpsContext, t: SparseTensor): Tensor[] {
  const s = ctx.optimizer.perParam[t.index] ?? {};
  const keep = ctx.optimizer.inactiveState === "keep";
  const state = keep ? [s.ax, s.count] : [s.buf, s.m, s.v, s.age, s.ax, s.count];
  return [t.param.value, ...state].filter((x): x is Tensor => !!x);
}

/** Flat element ranges of `t`'s row blocks. */
function spansOf(t: SparseTensor): { start: number; size: number }[] {
  return blockSpans({ shape: t.param.shape, blocks: t.blocks });
}

/** The mask, flat (`[numel]`; the selection kernels work on vectors). */
function mask(t: SparseTensor): Tensor<"f32"> {
  if (!t.param.mask) throw new RangeError(`${t.param.name}: sparse tensor without a mask`);
  return flat(t.param.mask);
}

/** `x` as a flat f32 vector view. */
function flat(x: Tensor): Tensor<"f32"> {
  return x.reshape([x.size]) as Tensor<"f32">;
}

function checkCount(what: string, t: SparseTensor, k: number, available: number): void {
  if (!Number.isInteger(k) || k < 0 || k > available) {
    throw new RangeError(
      `${what} ${t.param.name}: k = ${k} must be an integer in [0, ${available}]`,
    );
  }
}

/**
 * Removes the `k` active weights of smallest |w|, ranked jointly over the whole tensor (all its
 * gates: the "selfish" joint ranking of spec §4.3), ties to the lower index.
 *
 * @example
 * ```ts ignore
 * removeByMagnitude(ctx, t, Math.ceil(rate * t.nnz));
 * ```
 */
export function removeByMagnitude(ctx: OpsContext, t: SparseTensor, k: number): void {
  checkCount("removeByMagnitude", t, k, t.nnz);
  removeByKeys(ctx, t, k, (keys) => {
    magnitudeKeys(ctx.gpu, { x: flat(t.param.value), keys });
  });
}

/**
 * Removes `k` active weights with the smallest keys written by `writeKeys` into the scratch
 * (e.g. signed-magnitude keys for SET). Shared by every removal rule.
 *
 * @example
 * ```ts ignore
 * removeByKeys(ctx, t, k, (keys) => magnitudeKeys(gpu, { x: w, keys }));
 * ```
 */
export function removeByKeys(
  ctx: OpsContext,
  t: SparseTensor,
  k: number,
  writeKeys: (keys: Tensor<"u32">) => void,
): void {
  checkCount("removeByKeys", t, k, t.nnz);
  if (k === 0) return;
  const n = t.param.value.size;
  const { keys, flags } = scratch(ctx, n);
  writeKeys(keys);
  const m = mask(t);
  selectTopK(ctx.gpu, {
    keys,
    k,
    order: "smallest",
    selected: flags,
    candidates: { mask: m, active: true },
  });
  applyMaskFlags(ctx.gpu, { mask: m, flags, on: false, clear: clearList(ctx, t) });
  t.nnz -= k;
}

/**
 * Grows `perBlock[g]` positions chosen uniformly at random among the inactive positions of row
 * block g (`perBlock.length` = the tensor's blocks; one entry = the whole tensor), from the
 * counter-based RNG under `(seed, stream)`: the k smallest random keys are a uniform k-subset.
 * Each count must not exceed its block's free slots ({@linkcode blockActiveCounts}).
 *
 * @example
 * ```ts ignore
 * growRandom(ctx, t, [r0, r1, r2, r3], seed, stream);
 * ```
 */
export function growRandom(
  ctx: OpsContext,
  t: SparseTensor,
  perBlock: readonly number[],
  seed: number,
  stream: number,
): void {
  growByKeys(ctx, t, perBlock, "smallest", (keys) => randomKeys(ctx.gpu, { keys, seed, stream }));
}

/**
 * Grows the inactive positions with the largest `|score|` (the dense gradient for RigL, the
 * momentum for SNFS), ties to the lower index: `k` over the whole tensor, or `perBlock[g]`
 * within row block g (Selfish-RNN's gradient growth inside each gate's share).
 *
 * @example
 * ```ts ignore
 * growByScore(ctx, t, k, t.param.grad);
 * growByScore(ctx, t, [r0, r1, r2, r3], t.param.grad);
 * ```
 */
export function growByScore(
  ctx: OpsContext,
  t: SparseTensor,
  k: number | readonly number[],
  score: Tensor,
): void {
  growByKeys(ctx, t, typeof k === "number" ? [k] : k, "largest", (keys) => {
    magnitudeKeys(ctx.gpu, { x: flat(score), keys });
  });
}

/** Turns on the `perBlock[g]` inactive positions of block g with the smallest or largest keys. */
function growByKeys(
  ctx: OpsContext,
  t: SparseTensor,
  perBlock: readonly number[],
  order: "smallest" | "largest",
  writeKeys: (keys: Tensor<"u32">) => void,
): void {
  const total = perBlock.reduce((s, x) => s + x, 0);
  const what = order === "smallest" ? "growRandom" : "growByScore";
  checkCount(what, t, total, t.param.value.size - t.nnz);
  if (total === 0) return;
  const n = t.param.value.size;
  const { keys, flags } = scratch(ctx, n);
  writeKeys(keys);
  const m = mask(t);
  const spans = perBlock.length === 1 ? [{ start: 0, size: n }] : spansOf(t);
  if (spans.length !== perBlock.length) {
    throw new RangeError(
      `${what} ${t.param.name}: ${perBlock.length} counts for ${spans.length} row blocks`,
    );
  }
  perBlock.forEach((k, b) => {
    const { start, size } = spans[b];
    selectTopK(ctx.gpu, {
      keys: keys.view(start, [size]),
      k,
      order,
      selected: flags.view(start, [size]),
      candidates: { mask: m.view(start, [size]), active: false },
    });
  });
  applyMaskFlags(ctx.gpu, { mask: m, flags, on: true, clear: clearList(ctx, t) });
  t.nnz += total;
}

/**
 * Active weights per gate block of each tensor, read back once: `counts[i][g]`. Exact as long
 * as blocks hold fewer than 2^24 elements (f32 sums of 0/1).
 *
 * @example
 * ```ts ignore
 * const [[i, f, g, o]] = await blockActiveCounts(gpu, [t]);
 * ```
 */
export async function blockActiveCounts(
  gpu: Gpu,
  tensors: readonly SparseTensor[],
): Promise<number[][]> {
  const total = tensors.reduce((s, t) => s + t.blocks.length, 0);
  const out = gpu.tensor([Math.max(1, total)]);
  let j = 0;
  for (const t of tensors) {
    const m = mask(t);
    for (const { start, size } of spansOf(t)) {
      reduce(gpu, { op: "sum", x: m.view(start, [size]), out, outIndex: j++ });
    }
  }
  const host = await gpu.read(out);
  gpu.release(out);
  let k = 0;
  return tensors.map((t) => t.blocks.map(() => Math.round(host[k++])));
}

/**
 * Mean |x| over the active positions of each gate block (0 for an empty block), read back
 * once: the statistic of the magnitude and momentum redistribution variants (spec §8, §7.5).
 * `pick(t)` chooses the tensor of `t` to measure (its weight, momentum, ...).
 *
 * @example
 * ```ts ignore
 * const means = await blockMeanAbs(gpu, tensors, (t) => t.param.value);
 * ```
 */
export async function blockMeanAbs(
  gpu: Gpu,
  tensors: readonly SparseTensor[],
  pick: (t: SparseTensor) => Tensor,
): Promise<number[][]> {
  const total = tensors.reduce((s, t) => s + t.blocks.length, 0);
  const out = gpu.tensor([Math.max(1, 2 * total)]);
  let j = 0;
  for (const t of tensors) {
    const m = mask(t), x = pick(t);
    const tmp = gpu.tensor([m.size]);
    unary(gpu, { op: "abs", x: flat(x), y: tmp });
    mul(gpu, { a: tmp, b: m, out: tmp });
    for (const { start, size } of spansOf(t)) {
      reduce(gpu, { op: "sum", x: tmp.view(start, [size]), out, outIndex: j++ });
      reduce(gpu, { op: "sum", x: m.view(start, [size]), out, outIndex: j++ });
    }
    gpu.release(tmp);
  }
  const host = await gpu.read(out);
  gpu.release(out);
  let k = 0;
  return tensors.map((t) =>
    t.blocks.map(() => {
      const s = host[k++], c = host[k++];
      return c > 0 ? s / c : 0;
    })
  );
}

// ------------------------------------------------------------------ appended for SET, DSR, SNFS

/**
 * `t` with its value, gradient and mask seen as flat `[numel]` views (same buffers), for the
 * selection kernels, which take 1-D keys and candidate masks. `budget` and `nnz` read and write
 * through to `t`, so the ops' count bookkeeping lands on the caller's tensor.
 *
 * @example
 * ```ts ignore
 * for (const t of tensors.map(flatView)) removeByMagnitude(ctx, t, k);
 * ```
 */
export function flatView(t: SparseTensor): SparseTensor {
  const p = t.param;
  const flat = <T extends Tensor>(x: T): T => x.view(0, [x.size]) as T;
  return {
    param: { ...p, value: flat(p.value), grad: flat(p.grad), mask: p.mask && flat(p.mask) },
    index: t.index,
    blocks: t.blocks,
    get budget() {
      return t.budget;
    },
    set budget(v: number) {
      t.budget = v;
    },
    get nnz() {
      return t.nnz;
    },
    set nnz(v: number) {
      t.nnz = v;
    },
  };
}

/**
 * Per tensor, how many ACTIVE positions have a key below `below` (u32), where `writeKeys(t,
 * keys)` records the keys of `t` into the `[numel]` scratch: e.g. magnitude keys and the bits of
 * a threshold H (DSR's "|w| < H"), or signed keys and 0xFFFFFFFF (SET's weights of one sign).
 * One indicator kernel and one reduction per tensor, one readback for all. Exact below 2^24
 * elements per tensor (f32 sums of 0/1).
 *
 * @example
 * ```ts ignore
 * const [a, b] = await countActiveBelow(ctx, [t0, t1], (t, keys) =>
 *   magnitudeKeys(gpu, { x: flatView(t).param.value, keys }), f32Bits(h));
 * ```
 */
export async function countActiveBelow(
  ctx: OpsContext,
  tensors: readonly SparseTensor[],
  writeKeys: (t: SparseTensor, keys: Tensor<"u32">) => void,
  below: number,
): Promise<number[]> {
  const { gpu } = ctx;
  if (tensors.length === 0) return [];
  const out = gpu.tensor([tensors.length]);
  const hits = gpu.tensor([Math.max(...tensors.map((t) => t.param.value.size))]);
  tensors.forEach((t, i) => {
    const n = t.param.value.size;
    const { keys } = scratch(ctx, n);
    writeKeys(t, keys);
    const h = hits.view(0, [n]);
    keyBelowIndicator(gpu, { keys, mask: mask(t).view(0, [n]), below, out: h });
    reduce(gpu, { op: "sum", x: h, out, outIndex: i });
  });
  const host = await gpu.read(out);
  gpu.release(out);
  gpu.release(hits);
  return Array.from(host, (x) => Math.round(x));
}

/**
 * Grows `k` positions chosen uniformly at random among the positions that were inactive in
 * `before` (a snapshot of the mask taken before this update's removal, holding `before.nnz`
 * active weights): random growth that never re-picks a weight removed in the same update (the
 * original DSR rule, spec §7.4). Same random scheme as {@linkcode growRandom}: the k smallest
 * Philox keys under `(seed, stream)` among the candidates. `before.mask`: f32 0/1 of `t`'s size.
 *
 * @example
 * ```ts ignore
 * growRandomExcluding(ctx, t, r, seed, stream, { mask: snapshot, nnz: nnzBeforeRemoval });
 * ```
 */
export function growRandomExcluding(
  ctx: OpsContext,
  t: SparseTensor,
  k: number,
  seed: number,
  stream: number,
  before: { mask: Tensor; nnz: number },
): void {
  const n = t.param.value.size;
  checkCount("growRandomExcluding", t, k, Math.min(n - t.nnz, n - before.nnz));
  if (k === 0) return;
  const { keys, flags } = scratch(ctx, n);
  randomKeys(ctx.gpu, { keys, seed, stream });
  selectTopK(ctx.gpu, {
    keys,
    k,
    order: "smallest",
    selected: flags,
    candidates: { mask: before.mask.view(0, [n]) as Tensor<"f32">, active: false },
  });
  applyMaskFlags(ctx.gpu, { mask: mask(t), flags, on: true, clear: clearList(ctx, t) });
  t.nnz += k;
}
