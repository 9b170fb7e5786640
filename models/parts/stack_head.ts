/**
 * The output head of a gated stack (`gated_stack.ts`): what turns the stack's (dropped) top
 * output `x: [N, D]` into per-row losses, and its gradient back into `dx`. A head is data on the
 * stack: the plain decoder (the stacked LSTM, ON-LSTM) or the mixture of softmaxes (MoS). A head
 * may draw dropout masks: its `sites` come after the stack's in each step's Philox offsets.
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import type { Tensor } from "../../kernels/runtime/tensor.ts";
import type { SparseRoute } from "../weight_ops.ts";
import { type DecoderHead, decoderHeadBackward, decoderHeadForward } from "./decoder_head.ts";

/** The Philox stream of a training step's head masks: `offset(k)` for its site k. */
export interface HeadDrops {
  seed: number;
  offset(site: number): number;
}

/** A head's buffers for up to `maxN` rows, and its programs over them. */
export interface HeadBuffers {
  /**
   * Records the per-row loss `[N]` of `x: [N, D]` against `target: [N]`; `drops` null is an
   * evaluation (no dropout, no gradient state kept).
   */
  forward(a: {
    x: Tensor;
    target: Tensor<"u32">;
    B: number;
    drops: HeadDrops | null;
    route?: SparseRoute;
  }): Tensor;
  /**
   * After a training forward on the same `x`: the head's tensors' gradients (overwritten; a
   * tied decoder's gradient is written here first) and `dx: [N, D]` (overwritten) for the mean
   * loss over the N rows.
   */
  backward(a: {
    x: Tensor;
    dx: Tensor;
    B: number;
    ones: Tensor;
    drops: HeadDrops;
    route?: SparseRoute;
  }): void;
  release(): void;
}

/** A head: its input width, its dropout sites per step, and its buffers. */
export interface StackHead {
  inputWidth: number;
  sites: number;
  buffers(gpu: Gpu, maxN: number, training: boolean): HeadBuffers;
}

/**
 * The shapes of the decoder head's buffers for up to `maxN` rows over `V` words.
 *
 * @example
 * ```ts
 * import { decoderHeadBufferShapes } from "./stack_head.ts";
 * decoderHeadBufferShapes(10000, 700).logits; // [700, 10000]
 * ```
 */
export function decoderHeadBufferShapes(V: number, maxN: number): Record<string, number[]> {
  return { logits: [maxN, V], loss: [maxN] };
}

/**
 * The plain decoder head (`decoder_head.ts`): logits `x·Wᵀ + b` and the fused softmax-CE, whose
 * gradient overwrites the logits in place.
 *
 * @example
 * ```ts ignore
 * const head = decoderStackHead({ weight: decoderWeight, bias: decoderBias });
 * ```
 */
export function decoderStackHead(decoder: DecoderHead): StackHead {
  const [V, D] = decoder.weight.shape;
  return {
    inputWidth: D,
    sites: 0,
    buffers(gpu, maxN) {
      const shapes = decoderHeadBufferShapes(V, maxN);
      const logitsAll = gpu.tensor(shapes.logits), lossAll = gpu.tensor(shapes.loss);
      let logits = logitsAll;
      return {
        forward({ x, target, drops, route }) {
          const N = x.shape[0];
          logits = logitsAll.view(0, [N, V]);
          const loss = lossAll.view(0, [N]);
          decoderHeadForward(gpu, decoder, {
            x,
            logits,
            loss,
            target,
            training: drops !== null,
            route,
          });
          return loss;
        },
        backward({ x, dx, ones, route }) {
          decoderHeadBackward(gpu, decoder, { x, dLogits: logits, dx, ones, route });
        },
        release() {
          gpu.release(logitsAll);
          gpu.release(lossAll);
        },
      };
    },
  };
}
