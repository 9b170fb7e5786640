/**
 * The input part every family shares: the embedding lookup of a window's tokens through the
 * (masked or CSR) embedding `[V, E]`, with the dropouts that act on it, and its backward into
 * the embedding's gradient.
 *
 * ```text
 * ids [N] → rows (W ⊙ M)[ids] [N, E] → row dropout p_e (whole words) → output dropout → x [N, E]
 * ```
 *
 * - Embedding-row dropout (`rowDrop`, AWD's `embedded_dropout`): word v is kept with probability
 *   1 − p_e for the whole window and scaled by 1/(1 − p_e). Applying the word's keep decision to
 *   the gathered rows is the lookup of the row-dropped matrix, and the tied decoder keeps the
 *   undropped one.
 * - Output dropout (`outDrop`): standard (a fresh decision per element: the stacked LSTM) or
 *   locked (one `[B, E]` mask per window, shared over time: AWD, RHN).
 *
 * Backward runs the same masks in reverse order onto `dOut` (in place), then scatter-adds into
 * `encoder.grad`, which is cleared first unless the encoder is tied to the decoder (whose
 * gradient the decoder head already wrote there).
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import type { Tensor } from "../../kernels/runtime/tensor.ts";
import type { EmbeddingIndexTensors } from "../../kernels/cells/embedding.ts";
import { dropoutBackward, dropoutForward, sharedMaskDropout } from "../../kernels/cells/dropout.ts";
import type { Param } from "../params.ts";
import { embedBackward, embedForward } from "../weight_ops.ts";

/** One dropout of a training step: its probability and Philox stream (`seed`, `offset`). */
export interface DropSite {
  p: number;
  seed: number;
  offset: number;
}

/** A dropout on activations `[T, B, D]`: standard, or locked (one `[B, D]` mask per window). */
export interface ActivationDrop extends DropSite {
  kind: "standard" | "locked";
}

/**
 * Records dropout `site` of `x: [T·B, D]` (rows t·B + b) into `y` (may be `x`); `B` sizes the
 * locked mask. Returns `y`, or `x` when there is nothing to drop.
 *
 * @example
 * ```ts ignore
 * const xd = dropActivations(gpu, { kind: "locked", p: 0.65, seed, offset }, x, xd, B);
 * ```
 */
export function dropActivations(
  gpu: Gpu,
  site: ActivationDrop | null | undefined,
  x: Tensor,
  y: Tensor,
  B: number,
): Tensor {
  if (!site || site.p === 0) return x;
  const { p, seed, offset } = site;
  if (site.kind === "standard") dropoutForward(gpu, { x, y, p, seed, offset });
  else sharedMaskDropout(gpu, { x, y, p, seed, offset, period: B * x.shape[1] });
  return y;
}

/**
 * The gradient of {@linkcode dropActivations}, in place on `d: [T·B, D]`.
 *
 * @example
 * ```ts ignore
 * dropActivationsBackward(gpu, site, dX, B);
 * ```
 */
export function dropActivationsBackward(
  gpu: Gpu,
  site: ActivationDrop | null | undefined,
  d: Tensor,
  B: number,
): void {
  if (!site || site.p === 0) return;
  const { p, seed, offset } = site;
  if (site.kind === "standard") dropoutBackward(gpu, { dy: d, dx: d, p, seed, offset });
  else sharedMaskDropout(gpu, { x: d, y: d, p, seed, offset, period: B * d.shape[1] });
}

/** Dropouts of the input part (training only). */
export interface InputDrops {
  /** Embedding-row dropout p_e. */
  rows?: DropSite;
  /** Dropout of the looked-up rows. */
  out?: ActivationDrop;
}

/**
 * Records the lookup of `ids: [N]` into `emb: [N, E]` (and the dropouts into `dropped` when
 * given); returns the input of the recurrent stack (`dropped` or `emb`). `maskRows: [N, E]` is
 * scratch for a masked embedding.
 *
 * @example
 * ```ts ignore
 * const x = embeddingInputForward(gpu, model.encoder, { ids, emb, maskRows, dropped, B, drops });
 * ```
 */
export function embeddingInputForward(
  gpu: Gpu,
  encoder: Param,
  args: {
    ids: Tensor<"u32">;
    emb: Tensor;
    maskRows: Tensor;
    dropped?: Tensor;
    B: number;
    drops?: InputDrops;
  },
): Tensor {
  const { ids, emb, maskRows, dropped, B, drops } = args;
  embedForward(gpu, encoder, { ids, out: emb, maskRows });
  const rows = drops?.rows;
  if (rows && rows.p > 0) {
    const { p, seed, offset } = rows;
    sharedMaskDropout(gpu, {
      x: emb,
      y: emb,
      p,
      seed,
      offset,
      rows: { ids, rowLen: emb.shape[1] },
    });
  }
  if (!drops?.out || drops.out.p === 0) return emb;
  if (!dropped) throw new RangeError(`embedding input: dropout needs a training buffer`);
  return dropActivations(gpu, drops.out, emb, dropped, B);
}

/**
 * Records the backward of {@linkcode embeddingInputForward} from `dOut: [N, E]` (overwritten by
 * the masks) into `encoder.grad`.
 *
 * @example
 * ```ts ignore
 * embeddingInputBackward(gpu, model.encoder, { index, ids, dOut, B, drops, tied });
 * ```
 */
export function embeddingInputBackward(
  gpu: Gpu,
  encoder: Param,
  args: {
    index: EmbeddingIndexTensors;
    ids: Tensor<"u32">;
    dOut: Tensor;
    B: number;
    drops?: InputDrops;
    /** The decoder's weight gradient is already in `encoder.grad`: add to it. */
    tied: boolean;
  },
): void {
  const { index, ids, dOut, B, drops, tied } = args;
  dropActivationsBackward(gpu, drops?.out, dOut, B);
  const rows = drops?.rows;
  if (rows && rows.p > 0) {
    const { p, seed, offset } = rows;
    sharedMaskDropout(gpu, {
      x: dOut,
      y: dOut,
      p,
      seed,
      offset,
      rows: { ids, rowLen: dOut.shape[1] },
    });
  }
  if (!tied) gpu.fill(encoder.grad, 0);
  embedBackward(gpu, encoder, { index, dOut });
}
