/**
 * Selfish-RNN (spec §4), once per update, for every sparse tensor:
 *
 * 1. remove `k = ⌈p_t · nnz⌉` active weights of smallest |w|, ranked jointly over all gates of
 *    the tensor (the gates with larger weights keep more: "selfish");
 * 2. regrow `R = budget − nnz` (restoring the budget exactly), split over gate blocks by the
 *    cell-weight redistribution rule: `uniform` = R/G per gate (the paper's Figure 1, default),
 *    `magnitude` / `momentum` = in proportion to the block's mean |w| / |momentum| over active
 *    weights, `gradient` = to the block's mean |∇w| of the last minibatch (Table 5 variants),
 *    `none` = over the whole tensor at once (what the released code
 *    runs, spec §12.1); every block capped at its free slots, surplus to the others;
 * 3. grow uniformly at random among each block's inactive positions (`--growth gradient`: at
 *    the largest dense |∇W| instead, the ablation of spec §10.2); grown weights and their
 *    optimizer state start at 0 (spec §4.5), so SNT-ASGD restarts their averages.
 *
 * @module
 */

import type { SparsityMethod, UpdateInput, UpdateReport } from "../method.ts";
import { growthStream } from "../method.ts";
import { blockActiveCounts, blockMeanAbs, removeByMagnitude } from "../ops.ts";
import { GROWTH_RULES } from "../growth.ts";
import { splitEqualCapped, splitProportionalCapped } from "../budget.ts";
import { blockSpans } from "../../../models/params.ts";

async function update(input: UpdateInput): Promise<UpdateReport> {
  const { ops, tensors, removalRate, settings } = input;
  let removed = 0, grown = 0;
  for (const t of tensors) {
    const k = Math.min(t.nnz, Math.ceil(removalRate * t.nnz));
    removeByMagnitude(ops, t, k);
    removed += k;
  }
  const mode = settings.redistribution;
  const rule = GROWTH_RULES[settings.growth ?? "random"];
  const active = await blockActiveCounts(ops.gpu, tensors);
  const stats = mode === "magnitude"
    ? await blockMeanAbs(ops.gpu, tensors, (t) => t.param.value)
    : mode === "momentum"
    ? await blockMeanAbs(ops.gpu, tensors, (t) => momentumOf(input, t.index) ?? t.param.grad)
    : mode === "gradient"
    ? await blockMeanAbs(ops.gpu, tensors, (t) => t.param.grad)
    : null;
  tensors.forEach((t, i) => {
    const r = t.budget - t.nnz;
    const sizes = blockSpans({ shape: t.param.shape, blocks: t.blocks }).map((b) => b.size);
    const free = active[i].map((a, k) => sizes[k] - a);
    const perBlock = mode === "none" || t.blocks.length === 1
      ? [r]
      : mode === "uniform"
      ? splitEqualCapped(r, free)
      : splitProportionalCapped(r, stats![i], free);
    rule.grow(ops, t, perBlock, settings.seed, growthStream(input.update, t.index));
    grown += r;
  });
  return { removed, grown };
}

/** The momentum SNFS-style statistics read: SGD momentum, or Adam's first moment. */
function momentumOf(input: UpdateInput, index: number) {
  const s = input.optimizer.perParam[index];
  return s?.buf ?? s?.m;
}

/** Selfish-RNN: joint magnitude removal, per-gate random regrowth, SNT-ASGD friendly. */
export const selfish: SparsityMethod = {
  name: "selfish",
  summary: "magnitude removal joint over gates, random regrowth split equally per gate",
  sparse: true,
  startsDense: false,
  dynamic: true,
  flops: "sparse",
  growthChoice: true,
  update,
};
