/**
 * The token buffers every family's session holds: a window's input and target ids `[T·B]`
 * (row-major `[T, B]`) and the embedding-gradient index of the inputs, written from the host
 * once per window with the checks that the GPU kernels cannot make (ids in range, lengths).
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import { ShapeError, type Tensor } from "../../kernels/runtime/tensor.ts";
import { buildEmbeddingIndex, type EmbeddingIndexTensors } from "../../kernels/cells/embedding.ts";

/** Buffers for windows of up to `maxT` steps of `B` sequences over a `vocab`-word vocabulary. */
export interface TokenBuffers {
  maxT: number;
  B: number;
  vocab: number;
  input: Tensor<"u32">;
  target: Tensor<"u32">;
  idxUnique: Tensor<"u32">;
  idxStarts: Tensor<"u32">;
  idxPositions: Tensor<"u32">;
}

/** A window as the step reads it: views of the buffers, and the embedding index. */
export interface TokenBatch {
  T: number;
  B: number;
  input: Tensor<"u32">;
  target: Tensor<"u32">;
  index: EmbeddingIndexTensors;
}

/**
 * Allocates the buffers (zeros).
 *
 * @example
 * ```ts ignore
 * const tokens = createTokenBuffers(gpu, { maxT: 35, B: 20, vocab: 10000 });
 * ```
 */
export function createTokenBuffers(
  gpu: Gpu,
  o: { maxT: number; B: number; vocab: number },
): TokenBuffers {
  const N = o.maxT * o.B;
  return {
    ...o,
    input: gpu.zeros([N], "u32"),
    target: gpu.zeros([N], "u32"),
    idxUnique: gpu.zeros([N], "u32"),
    idxStarts: gpu.zeros([N + 1], "u32"),
    idxPositions: gpu.zeros([N], "u32"),
  };
}

/**
 * Returns the buffers to the pool.
 *
 * @example
 * ```ts ignore
 * releaseTokenBuffers(gpu, tokens);
 * ```
 */
export function releaseTokenBuffers(gpu: Gpu, b: TokenBuffers): void {
  for (const t of [b.input, b.target, b.idxUnique, b.idxStarts, b.idxPositions]) gpu.release(t);
}

/**
 * Validates a window on the host and writes it (no allocation): `input`, `target` hold `T·B`
 * ids. Throws {@linkcode ShapeError} when a length is not `T·B` or `T` is not in `[1, maxT]`,
 * and `RangeError` naming the position of an id `>= vocab` (the kernels would clamp it).
 *
 * @example
 * ```ts ignore
 * const batch = writeTokenBatch(gpu, tokens, { T: 35, input: x, target: y });
 * ```
 */
export function writeTokenBatch(
  gpu: Gpu,
  buffers: TokenBuffers,
  args: { T: number; input: Uint32Array; target: Uint32Array },
  what = "writeBatch",
): TokenBatch {
  const { T, input, target } = args;
  const { B, vocab: V, maxT } = buffers;
  if (!Number.isInteger(T) || T < 1 || T > maxT) {
    throw new ShapeError(`${what}: T must be an integer in [1, ${maxT}], got ${T}`);
  }
  const N = T * B;
  for (const [name, ids] of [["input", input], ["target", target]] as const) {
    if (ids.length !== N) {
      throw new ShapeError(
        `${what} ${name}: expected T·B = ${T}·${B} = ${N} token ids, got ${ids.length}`,
      );
    }
  }
  for (let n = 0; n < N; n++) {
    if (target[n] >= V) {
      throw new RangeError(
        `${what}: target[${n}] = ${target[n]} is out of range for vocabulary size ${V}`,
      );
    }
  }
  const index = buildEmbeddingIndex(input, V); // throws RangeError on input ids >= V
  const U = index.uniqueIds.length;
  const inputView = buffers.input.view(0, [N]);
  const targetView = buffers.target.view(0, [N]);
  const uniqueIds = buffers.idxUnique.view(0, [U]);
  const starts = buffers.idxStarts.view(0, [U + 1]);
  const positions = buffers.idxPositions.view(0, [N]);
  gpu.write(inputView, input);
  gpu.write(targetView, target);
  gpu.write(uniqueIds, index.uniqueIds);
  gpu.write(starts, index.starts);
  gpu.write(positions, index.positions);
  let maxGroupSize = 0;
  for (let k = 0; k < U; k++) {
    maxGroupSize = Math.max(maxGroupSize, index.starts[k + 1] - index.starts[k]);
  }
  return {
    T,
    B,
    input: inputView,
    target: targetView,
    index: { uniqueIds, starts, positions, vocabSize: V, maxGroupSize },
  };
}
