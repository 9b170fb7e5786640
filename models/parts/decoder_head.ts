/**
 * The output part every family shares: the decoder `logits = x·Wᵀ + b` (`W: [V, H]`, masked,
 * CSR or the tied embedding tensor) and the fused softmax cross-entropy, forward and backward.
 *
 * ```text
 * x [N, H] → logits [N, V] → softmax-CE → loss [N]   (training: dLogits/N in place of logits)
 * backward: dW = dLogitsᵀ·x (overwrites W.grad), db = 1ᵀ·dLogits, dx = dLogits·W
 * ```
 *
 * The loss is PyTorch's mean over the N = T·B rows, so `dLogits` carries the 1/N. With a tied
 * weight, `W.grad` then receives the embedding's scatter on top (`embedding_input.ts`).
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import type { Tensor } from "../../kernels/runtime/tensor.ts";
import { matmul } from "../../kernels/dense/matmul.ts";
import { softmaxCrossEntropy } from "../../kernels/cells/softmax_ce.ts";
import type { Param } from "../params.ts";
import {
  type SparseRoute,
  weightBackwardData,
  weightBackwardWeight,
  weightForward,
} from "../weight_ops.ts";

/** The decoder's two tensors. */
export interface DecoderHead {
  /** `decoder.weight [V, H]`, or the encoder's record when tied. */
  weight: Param;
  /** `decoder.bias [V]`. */
  bias: Param;
}

/**
 * Records the decoder and the loss of `x: [N, H]` against `target: [N]`: per-row loss into
 * `loss: [N]`; with `training`, `logits` is overwritten by dLogits (mean loss).
 *
 * @example
 * ```ts ignore
 * decoderHeadForward(gpu, head, { x, logits, loss, target, training: true });
 * ```
 */
export function decoderHeadForward(
  gpu: Gpu,
  head: DecoderHead,
  args: {
    x: Tensor;
    logits: Tensor;
    loss: Tensor;
    target: Tensor<"u32">;
    training: boolean;
    route?: SparseRoute;
  },
): void {
  const { x, logits, loss, target, training, route } = args;
  weightForward(gpu, head.weight, { x, y: logits, bias: head.bias.value, route });
  softmaxCrossEntropy(gpu, {
    logits,
    targets: target,
    loss,
    dLogits: training ? logits : undefined,
    gradScale: 1 / loss.size,
  });
}

/**
 * Records the decoder's backward from `dLogits: [N, V]` (what the forward left in `logits`):
 * the weight and bias gradients, and `dx: [N, H]`. `ones: [1, N]` of ones.
 *
 * @example
 * ```ts ignore
 * decoderHeadBackward(gpu, head, { x, dLogits: logits, dx: dTop, ones });
 * ```
 */
export function decoderHeadBackward(
  gpu: Gpu,
  head: DecoderHead,
  args: { x: Tensor; dLogits: Tensor; dx: Tensor; ones: Tensor; route?: SparseRoute },
): void {
  const { x, dLogits, dx, ones, route } = args;
  const V = dLogits.shape[1];
  weightBackwardWeight(gpu, head.weight, { dy: dLogits, x, route });
  matmul(gpu, { a: ones, b: dLogits, c: head.bias.grad.reshape([1, V]) });
  weightBackwardData(gpu, head.weight, { dy: dLogits, dx, route });
}
