/**
 * DSR — Dynamic Sparse Reparameterization (Mostafa & Wang 2019, spec §7.4), once per update,
 * over all sparse tensors together (embedding and softmax included):
 *
 * 1. prune every active weight with |w| < H, one global threshold H (`scalars.threshold`,
 *    initially 0.001); a tensor that would lose every weight keeps its largest one. K = the
 *    number pruned;
 * 2. adapt H against the expected removal E = Σ_l ⌈p_t · nnz_l⌉ (the cosine schedule's count,
 *    nnz before the prune): H ← 2H if K < 0.98·E, H ← H/2 if K > 1.02·E (the Selfish code's
 *    tolerance; the DSR paper's is 10% against a fixed target);
 * 3. hand the K pruned weights back across tensors in proportion to each tensor's survivors
 *    S_l (largest remainders, capped at the free slots, surplus re-split), and grow them
 *    uniformly at random among the positions that were inactive BEFORE the prune, at 0 with a
 *    fresh optimizer state. Per-tensor budgets follow (`budget = nnz`); the total is constant.
 *
 * Just-pruned positions are not re-picked (the DSR paper's rule; the Selfish code's Bernoulli
 * growth may re-pick them). Only when the positions inactive before the prune cannot hold all K
 * (density near or above 1/(1 + pruned fraction)) does the rest go back among the just-pruned
 * positions, again at random, in proportion to survivors and capped at each tensor's pruned
 * count, so the total stays exact. Both growth rounds of a tensor draw from the same random
 * stream: the second round's candidates were not candidates of the first.
 *
 * Exactness: the prune takes the `K_l` smallest-|w| active weights of each tensor, where `K_l`
 * is the GPU count of active |w| < H (one readback per update); since every pruned key is
 * strictly below every kept key there is no tie at the boundary, so this IS "every |w| < H".
 * H is compared in f32 (`|w| < fround(H)`); NaN weights are never below it. Differences from
 * the released code: exact counts instead of `⌊K · G_l / E⌋` rounding with Bernoulli growth
 * (which loses a few weights per update and corrects them later), so no smoothing term.
 *
 * @module
 */

import type { SparsityMethod, UpdateInput, UpdateReport } from "../method.ts";
import { growthStream } from "../method.ts";
import {
  countActiveBelow,
  flatView,
  growRandom,
  growRandomExcluding,
  removeByMagnitude,
} from "../ops.ts";
import { splitProportionalCapped } from "../budget.ts";
import { magnitudeKeys } from "../../../kernels/select/topk.ts";
import { f32Bits } from "../../../kernels/select/sign_keys.ts";
import type { Tensor } from "../../../kernels/runtime/tensor.ts";

/**
 * DSR's initial global threshold (the DSR paper and the Selfish code).
 *
 * @example
 * ```ts
 * import { DSR_INITIAL_THRESHOLD } from "./dsr.ts";
 * const h = ({} as Record<string, number>).threshold ?? DSR_INITIAL_THRESHOLD; // 0.001
 * ```
 */
export const DSR_INITIAL_THRESHOLD = 0.001;

/**
 * DSR's threshold adaptation after a prune of `removed` weights against `expected` (spec §7.4):
 * double when more than 2% short, halve when more than 2% over, else keep.
 *
 * @example
 * ```ts
 * import { adaptThreshold } from "./dsr.ts";
 * adaptThreshold(0.001, 50, 100); // 0.002
 * adaptThreshold(0.001, 150, 100); // 0.0005
 * ```
 */
export function adaptThreshold(h: number, removed: number, expected: number): number {
  if (removed < 0.98 * expected) return 2 * h;
  if (removed > 1.02 * expected) return h / 2;
  return h;
}

async function update(input: UpdateInput): Promise<UpdateReport> {
  const { ops, removalRate, settings } = input;
  const gpu = ops.gpu;
  const tensors = input.tensors.map(flatView);
  const h = input.scalars.threshold ?? DSR_INITIAL_THRESHOLD;
  if (!(h > 0 && Number.isFinite(h))) throw new RangeError(`dsr: threshold ${h} must be > 0`);
  const below = await countActiveBelow(ops, tensors, (t, keys) => {
    magnitudeKeys(gpu, { x: t.param.value as Tensor<"f32">, keys });
  }, f32Bits(h));
  const before = tensors.map((t) => t.nnz);
  const expected = before.reduce((s, n) => s + Math.ceil(removalRate * n), 0);
  // Keep one weight in a tensor the threshold would empty.
  const pruned = tensors.map((t, i) => Math.min(below[i], Math.max(0, t.nnz - 1)));
  const total = pruned.reduce((s, k) => s + k, 0);
  const survivors = before.map((n, i) => n - pruned[i]);
  const fresh = tensors.map((t, i) => t.param.value.size - before[i]);
  const roomFresh = fresh.reduce((s, x) => s + x, 0);
  const first = splitProportionalCapped(Math.min(total, roomFresh), survivors, fresh);
  const rest = total - first.reduce((s, x) => s + x, 0);
  const second = rest > 0 ? splitProportionalCapped(rest, survivors, pruned) : tensors.map(() => 0);
  const snapshot = gpu.tensor([Math.max(...tensors.map((t) => t.param.value.size))]);
  tensors.forEach((t, i) => {
    const n = t.param.value.size;
    const prior = snapshot.view(0, [n]);
    gpu.copy(t.param.mask!, prior);
    removeByMagnitude(ops, t, pruned[i]);
    const stream = growthStream(input.update, t.index);
    growRandomExcluding(ops, t, first[i], settings.seed, stream, {
      mask: prior,
      nnz: before[i],
    });
    growRandom(ops, t, [second[i]], settings.seed, stream);
    t.budget = t.nnz;
  });
  gpu.release(snapshot);
  return {
    removed: total,
    grown: total,
    scalars: { ...input.scalars, threshold: adaptThreshold(h, total, expected) },
  };
}

/**
 * DSR: global-threshold pruning, random regrowth reallocated across tensors by survivors; the
 * threshold travels in `scalars.threshold`.
 *
 * @example
 * ```ts ignore
 * const report = await dsr.update!(input); // input: UpdateInput from the stage
 * ```
 */
export const dsr: SparsityMethod = {
  name: "dsr",
  summary: "prunes |w| below one adaptive global threshold, regrows across tensors by survivors",
  sparse: true,
  startsDense: false,
  dynamic: true,
  flops: "sparse",
  update,
};
