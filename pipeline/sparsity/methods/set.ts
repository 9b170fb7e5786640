/**
 * SET (Mocanu et al. 2018, spec §7.3), once per update, for every sparse tensor (the whole
 * tensor is one layer: no gate treatment):
 *
 * 1. remove `k = ⌈p_t · nnz⌉` active weights: the `⌈k/2⌉` smallest POSITIVE weights and the
 *    `k − ⌈k/2⌉` NEGATIVE weights closest to zero; when one sign has too few active weights,
 *    the rest come from the other sign (next closest to zero), so exactly k go;
 * 2. regrow `budget − nnz` (restoring the fixed per-tensor budget exactly) uniformly at random
 *    over the tensor's inactive positions; grown weights and their optimizer state start at 0.
 *
 * Sign: the sign bit, so an active weight equal to +0 counts as the smallest positive (−0 as the
 * smallest negative) and goes first — as in the reference code, where an active zero never
 * survives the SET removal.
 *
 * Deviations from the released code, and why:
 * - its negative half sorts ascending and so removes the MOST negative weights (largest |w|),
 *   the opposite of SET (spec §12.6); this file removes the negatives closest to zero, the
 *   spec's recommended fix;
 * - its halves are `⌈k/2⌉` each (up to k + 1 in all) and drop short sides silently; here the
 *   total is exactly k;
 * - growth is exact (a uniform k-subset of the inactive positions, just-removed ones included,
 *   at 0), not Bernoulli with the right expectation (spec §12.2–3);
 * - SET's own grown weights were drawn from a small random initialisation; the Selfish code
 *   (and this file) starts them at 0. SET's Erdős–Rényi initialisation is `settings.init`.
 *
 * Cost: one readback per update (the count of positive active weights of every tensor).
 *
 * @module
 */

import type { SparsityMethod, UpdateInput, UpdateReport } from "../method.ts";
import { growthStream } from "../method.ts";
import {
  countActiveBelow,
  flatView,
  growRandom,
  type OpsContext,
  removeByKeys,
  type SparseTensor,
} from "../ops.ts";
import { signedMagnitudeKeys, type SignSide } from "../../../kernels/select/sign_keys.ts";
import type { Tensor } from "../../../kernels/runtime/tensor.ts";

/**
 * How SET's `k` removals split over the signs: `⌈k/2⌉` positive and `k − ⌈k/2⌉` negative, with
 * a short side's shortfall taken from the other side. Needs `k ≤ positives + negatives`.
 *
 * @example
 * ```ts
 * import { setRemovalSplit } from "./set.ts";
 * setRemovalSplit(7, 10, 10); // [4, 3]
 * setRemovalSplit(7, 2, 10);  // [2, 5]
 * ```
 */
export function setRemovalSplit(
  k: number,
  positives: number,
  negatives: number,
): [number, number] {
  if (!Number.isInteger(k) || k < 0 || k > positives + negatives) {
    throw new RangeError(
      `setRemovalSplit: k = ${k} must be an integer in [0, ${positives + negatives}]`,
    );
  }
  const pos = Math.ceil(k / 2);
  if (pos > positives) return [positives, k - positives];
  if (k - pos > negatives) return [k - negatives, negatives];
  return [pos, k - pos];
}

function sideKeys(ops: OpsContext, t: SparseTensor, side: SignSide) {
  return (keys: Tensor<"u32">) =>
    signedMagnitudeKeys(ops.gpu, { x: t.param.value as Tensor<"f32">, keys, side });
}

async function update(input: UpdateInput): Promise<UpdateReport> {
  const { ops, removalRate, settings } = input;
  const tensors = input.tensors.map(flatView);
  // Signed keys put the other sign at 0xFFFFFFFF, so "below 0xFFFFFFFF" = this sign.
  const positives = await countActiveBelow(
    ops,
    tensors,
    (t, keys) => sideKeys(ops, t, "positive")(keys),
    0xffffffff,
  );
  let removed = 0, grown = 0;
  tensors.forEach((t, i) => {
    const k = Math.min(t.nnz, Math.ceil(removalRate * t.nnz));
    const [kPos, kNeg] = setRemovalSplit(k, positives[i], t.nnz - positives[i]);
    removeByKeys(ops, t, kPos, sideKeys(ops, t, "positive"));
    removeByKeys(ops, t, kNeg, sideKeys(ops, t, "negative"));
    removed += k;
    const r = t.budget - t.nnz;
    growRandom(ops, t, [r], settings.seed, growthStream(input.update, t.index));
    grown += r;
  });
  return { removed, grown };
}

/**
 * SET: removal of the smallest positive and the negative weights nearest zero, random regrowth.
 *
 * @example
 * ```ts ignore
 * const report = await set.update!(input); // input: UpdateInput from the stage
 * ```
 */
export const set: SparsityMethod = {
  name: "set",
  summary: "removes the smallest positive and the negative weights nearest zero, random regrowth",
  sparse: true,
  startsDense: false,
  dynamic: true,
  flops: "sparse",
  update,
};
