/**
 * Applying a topology update to a sparse weight: remove flagged entries, insert flagged
 * positions, with new weights and their optimizer state starting at exactly 0 and the entry
 * count exact (`nnz − removed + grown`, stated by the caller, never estimated).
 *
 * The update goes through dense scratch on purpose. Updates happen every few hundred steps
 * (every epoch for Selfish-RNN), the growth criteria already score every inactive position,
 * and a dense detour reuses the tested conversions (`sparse_convert.ts`) instead of a second
 * merge implementation. In three stages, so a method can choose growth on the mask left after
 * removal:
 *
 * ```ts ignore
 * const mask = maskAfterRemoval(gpu, w, remove);           // dense 0/1, removed entries 0
 * selectTopK(gpu, { keys, k, order: "smallest", selected: grow,
 *                   candidates: { mask, active: false } });  // growth among inactive
 * addToMask(gpu, { mask, flags: grow });
 * const next = finishTopologyUpdate(gpu, w, { mask, remove, nnz, states: [m, v] });
 * ```
 *
 * Transient memory: one dense f32 `[rows, cols]` mask plus one dense scratch per carried array,
 * released before returning; steady-state training memory stays O(nnz).
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { expectShape, ShapeError, type Tensor } from "../runtime/tensor.ts";
import { releaseSparse, type SparseMatrix, storedLength } from "./sparse_matrix.ts";
import { sparseFromMask, sparseGather, sparseScatterKept } from "./sparse_convert.ts";

const WG = 64;

const ADD_TO_MASK: KernelSpec = {
  name: "sparse_add_to_mask",
  bindings: [
    { name: "flags", dtype: "u32", access: "read" },
    { name: "mask", dtype: "f32", access: "read_write" },
  ],
  params: [["n", "u32"]],
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, ${WG}u);
  if (i >= P.n) { return; }
  if (flags[P.off_flags + i] != 0u) { mask[P.off_mask + i] = 1.0f; }
}`,
};

function checkRemove(what: string, w: SparseMatrix, remove: Tensor): void {
  expectShape(`${what} remove`, remove, [storedLength(w.nnz)], "u32");
}

/**
 * The dense 0/1 mask `[rows, cols]` of `w`'s entries that are kept: 1 at active entries whose
 * `remove[p]` flag is 0 (`remove: u32 [storedLength(nnz)]`, aligned with `w.values`), 0
 * elsewhere. A new tensor; pass it on to {@linkcode addToMask} and
 * {@linkcode finishTopologyUpdate}.
 *
 * @example
 * ```ts ignore
 * const mask = maskAfterRemoval(gpu, w, removeFlags);
 * ```
 */
export function maskAfterRemoval(
  gpu: Gpu,
  w: SparseMatrix,
  remove: Tensor<"u32">,
): Tensor<"f32"> {
  checkRemove("maskAfterRemoval", w, remove);
  const mask = gpu.tensor([w.rows, w.cols], "f32");
  sparseScatterKept(gpu, { w, remove, src: null, dst: mask });
  return mask;
}

/**
 * Sets `mask[i] = 1` where `flags[i] != 0` (growth). `flags: u32`, `mask: f32`, same size.
 * Growing an already active position is the caller's bug (the count would be off); growth
 * selection among `candidates: { mask, active: false }` cannot do it.
 *
 * @example
 * ```ts ignore
 * addToMask(gpu, { mask, flags: growFlags });
 * ```
 */
export function addToMask(gpu: Gpu, args: { mask: Tensor<"f32">; flags: Tensor<"u32"> }): void {
  const { mask, flags } = args;
  expectShape("addToMask mask", mask, mask.shape, "f32");
  expectShape("addToMask flags", flags, [mask.size], "u32");
  gpu.run(ADD_TO_MASK, { flags, mask }, { n: mask.size }, gridFor(mask.size, WG));
}

/**
 * Builds the updated sparse weight from `mask` (the kept entries plus the grown positions; it
 * must hold exactly `nnz` ones): kept entries keep their values, grown ones start at 0. Every
 * array of `states` (gradients, optimizer moments, averages; `[storedLength(w.nnz)]`, aligned
 * with `w.values`) is carried the same way: kept entries keep their state, grown entries start
 * at 0, removed entries' state is dropped. Returns the new matrix and the new state arrays;
 * `w`, the old state arrays and `mask` are released. `budget` defaults to `w.budget`.
 *
 * @example
 * ```ts ignore
 * const next = finishTopologyUpdate(gpu, w, { mask, remove, nnz: w.nnz - k + k, states: [m] });
 * param.csr = next.w; param.value = next.w.values; [m] = next.states;
 * ```
 */
export function finishTopologyUpdate(
  gpu: Gpu,
  w: SparseMatrix,
  args: {
    mask: Tensor<"f32">;
    remove: Tensor<"u32">;
    nnz: number;
    states?: Tensor<"f32">[];
    budget?: number;
  },
): { w: SparseMatrix; states: Tensor<"f32">[] } {
  const { mask, remove, nnz, states = [] } = args;
  checkRemove("finishTopologyUpdate", w, remove);
  expectShape("finishTopologyUpdate mask", mask, [w.rows, w.cols], "f32");
  if (!Number.isInteger(nnz) || nnz < 0 || nnz > w.rows * w.cols) {
    throw new ShapeError(
      `finishTopologyUpdate: nnz must be an integer in [0, ${w.rows * w.cols}], got ${nnz}`,
    );
  }
  states.forEach((s, i) =>
    expectShape(`finishTopologyUpdate states[${i}]`, s, [storedLength(w.nnz)], "f32")
  );
  const dense = gpu.tensor([w.rows, w.cols], "f32");
  sparseScatterKept(gpu, { w, remove, src: w.values, dst: dense });
  const next = sparseFromMask(gpu, {
    dense,
    mask,
    nnz,
    blocks: w.blocks,
    budget: args.budget ?? w.budget,
  });
  const newStates = states.map((s) => {
    sparseScatterKept(gpu, { w, remove, src: s, dst: dense });
    // an empty matrix's one padding element is 0: norms and optimizer steps run over it
    const out = nnz === 0 ? gpu.zeros([1], "f32") : gpu.tensor([nnz], "f32");
    sparseGather(gpu, { w: next, src: dense, dst: out });
    gpu.release(s);
    return out;
  });
  gpu.release(dense);
  gpu.release(mask);
  releaseSparse(gpu, w);
  return { w: next, states: newStates };
}
