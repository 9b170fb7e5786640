/**
 * One gated recurrent layer over a window, forward and backward through time, for any cell of
 * the LSTM shape (a stacked LSTM's, ON-LSTM's): `gates = X·W_ihᵀ + b_ih` for all T steps in one
 * product, then per step `gates[t] += h_{t−1}·W_hhᵀ` and the fused cell (which adds `b_hh`,
 * writes its activations over the pre-activations, and c, h into `[T + 1, B, H]` buffers whose
 * slot 0 is the carried state). The cell is data: its pre-activation width and its two fused
 * kernels.
 *
 * Backward, in reverse over t: the cell's backward from `dOut[t]` (which already holds the
 * gradient from above plus the recurrent gradient of step t + 1, accumulated by the data
 * product with β = 1); then one product each for `dW_hh = dGatesᵀ·H_prev` and `dW_ih =
 * dGatesᵀ·X` (K = T·B), `db_ih = db_hh = 1ᵀ·dGates`, and `dX = dGates·W_ih` for the layer
 * below.
 *
 * `hh` is the recurrent weight as this pass reads it (`weight_drop.ts`: dropped in training,
 * scaled at evaluation, or the parameter itself); weight gradients land on the parameter's
 * `grad`, mapped back through the step's WeightDrop mask when there is one.
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import type { Tensor } from "../../kernels/runtime/tensor.ts";
import { matmul } from "../../kernels/dense/matmul.ts";
import type { WeightDropMask } from "../../kernels/cells/weight_drop.ts";
import type { Param } from "../params.ts";
import {
  reusedWeight,
  type SparseRoute,
  weightBackwardData,
  weightBackwardWeight,
  weightForward,
} from "../weight_ops.ts";
import { weightDropGrad } from "./weight_drop.ts";

/** A fused gated cell: its pre-activation width for hidden size H and its two kernels. */
export interface GatedCell {
  /** Columns of the pre-activations (and of `act`) of a layer of hidden size H. */
  width(H: number): number;
  /** Reads `gates [B, width]` (+ `bias`) and `cPrev [B, H]`; writes `act` (may be `gates`), `c`, `h`. */
  forward(
    gpu: Gpu,
    a: { gates: Tensor; bias: Tensor; cPrev: Tensor; c: Tensor; h: Tensor; act: Tensor },
  ): void;
  /** Gradient w.r.t. the pre-activations and `cPrev` (`dcPrev` may be `dcNext`). */
  backward(
    gpu: Gpu,
    a: {
      act: Tensor;
      cPrev: Tensor;
      c: Tensor;
      dh: Tensor;
      dcNext?: Tensor;
      dgates: Tensor;
      dcPrev: Tensor;
    },
  ): void;
}

/** The four tensors of a gated layer (PyTorch's `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`). */
export interface GatedLayer {
  wIh: Param;
  wHh: Param;
  bIh: Param;
  bHh: Param;
}

/** A layer's window: its buffers, sizes and carried state. */
export interface GatedWindow {
  cell: GatedCell;
  T: number;
  B: number;
  H: number;
  /** `[≥ T + 1, B, H]` each: slot 0 the carried state, slot t + 1 step t's output. */
  hs: Tensor;
  cs: Tensor;
  /** `[≥ T·B·width]`: pre-activations, then the cell's activations. */
  gates: Tensor;
  route?: SparseRoute;
}

/**
 * Forward of one layer over the window: `x: [T·B, in]` → the outputs `[T·B, H]` (a view of
 * `hs`); the carried state `h`, `c: [B, H]` is read at the start and written at the end.
 *
 * @example
 * ```ts ignore
 * const out = gatedLayerForward(gpu, layer, hh.param, { cell, T, B, H, hs, cs, gates }, {
 *   x, h: state.h[l], c: state.c[l],
 * });
 * ```
 */
export function gatedLayerForward(
  gpu: Gpu,
  layer: GatedLayer,
  hh: Param,
  w: GatedWindow,
  args: { x: Tensor; h: Tensor; c: Tensor },
): Tensor {
  const { cell, T, B, H, hs, cs, route } = w;
  const G = cell.width(H), bh = B * H, N = T * B;
  const gates = w.gates.view(0, [N, G]);
  gpu.copy(args.h, hs.view(0, [B, H]));
  gpu.copy(args.c, cs.view(0, [B, H]));
  weightForward(gpu, layer.wIh, { x: args.x, y: gates, bias: layer.bIh.value, route });
  const loop = reusedWeight(gpu, hh, T, route);
  for (let t = 0; t < T; t++) {
    const g = gates.view(t * B * G, [B, G]);
    weightForward(gpu, loop.param, { x: hs.view(t * bh, [B, H]), y: g, beta: 1, route });
    cell.forward(gpu, {
      gates: g,
      bias: layer.bHh.value,
      cPrev: cs.view(t * bh, [B, H]),
      c: cs.view((t + 1) * bh, [B, H]),
      h: hs.view((t + 1) * bh, [B, H]),
      act: g,
    });
  }
  loop.release();
  gpu.copy(hs.view(T * bh, [B, H]), args.h);
  gpu.copy(cs.view(T * bh, [B, H]), args.c);
  return hs.view(bh, [N, H]);
}

/**
 * Backward of one layer over the window its forward recorded: `dOut: [T·B, H]` the gradient
 * w.r.t. its outputs (used as the recurrent accumulator, so overwritten), `x` the input the
 * forward read; writes every tensor's `grad` and `dIn: [T·B, in]`. Scratch: `dGates [T·B,
 * width]`, `dc [B, H]`, `ones [1, T·B]`.
 *
 * @example
 * ```ts ignore
 * gatedLayerBackward(gpu, layer, hh.param, window, { x, dOut, dIn, dGates, dc, ones, hhMask });
 * ```
 */
export function gatedLayerBackward(
  gpu: Gpu,
  layer: GatedLayer,
  hh: Param,
  w: GatedWindow,
  args: {
    x: Tensor;
    dOut: Tensor;
    dIn: Tensor;
    dGates: Tensor;
    dc: Tensor;
    ones: Tensor;
    /** The step's WeightDrop mask of `weight_hh`, if any. */
    hhMask?: WeightDropMask | null;
  },
): void {
  const { cell, T, B, H, hs, cs, route } = w;
  const G = cell.width(H), bh = B * H, N = T * B;
  const { dOut, dc } = args;
  const gates = w.gates.view(0, [N, G]);
  const dGates = args.dGates.view(0, [N, G]);
  const loop = reusedWeight(gpu, hh, T - 1, route);
  for (let t = T - 1; t >= 0; t--) {
    const dg = dGates.view(t * B * G, [B, G]);
    cell.backward(gpu, {
      act: gates.view(t * B * G, [B, G]),
      cPrev: cs.view(t * bh, [B, H]),
      c: cs.view((t + 1) * bh, [B, H]),
      dh: dOut.view(t * bh, [B, H]),
      dcNext: t < T - 1 ? dc : undefined,
      dgates: dg,
      dcPrev: dc,
    });
    if (t > 0) {
      // recurrent gradient, accumulated onto the gradient from above of step t − 1
      weightBackwardData(gpu, loop.param, {
        dy: dg,
        dx: dOut.view((t - 1) * bh, [B, H]),
        beta: 1,
        route,
      });
    }
  }
  loop.release();
  const { wIh, wHh, bIh, bHh } = layer;
  weightBackwardWeight(gpu, wHh, { dy: dGates, x: hs.view(0, [N, H]), route });
  if (args.hhMask) weightDropGrad(gpu, wHh, args.hhMask);
  weightBackwardWeight(gpu, wIh, { dy: dGates, x: args.x, route });
  matmul(gpu, { a: args.ones, b: dGates, c: bIh.grad.reshape([1, G]) });
  gpu.copy(bIh.grad, bHh.grad);
  weightBackwardData(gpu, wIh, { dy: dGates, dx: args.dIn, route });
}
