/**
 * RigL (Evci et al. 2020, spec §7.6) as realised in the Selfish-RNN code: per tensor, remove
 * `⌈p_t · nnz⌉` smallest-|w| active weights, then grow as many at the inactive positions with
 * the largest |∇W| of the last minibatch (the masked-dense path keeps dense gradients; a
 * just-removed position may come back, at 0). The removal rate is the Selfish cosine
 * schedule; the interval is the stage's (`--update-every`, per epoch by default; RigL's own
 * ΔT = 100 is `--update-every 100`). Fixed per-tensor budget.
 *
 * @module
 */

import type { SparsityMethod, UpdateInput, UpdateReport } from "../method.ts";
import { growByScore, removeByMagnitude } from "../ops.ts";

async function update(input: UpdateInput): Promise<UpdateReport> {
  const { ops, tensors, removalRate } = input;
  let removed = 0, grown = 0;
  for (const t of tensors) {
    const k = Math.min(t.nnz, Math.ceil(removalRate * t.nnz));
    removeByMagnitude(ops, t, k);
    removed += k;
    const r = t.budget - t.nnz;
    growByScore(ops, t, r, t.param.grad);
    grown += r;
  }
  return await Promise.resolve({ removed, grown });
}

/** RigL: magnitude removal, gradient growth. */
export const rigl: SparsityMethod = {
  name: "rigl",
  summary: "magnitude removal, regrowth at the largest dense gradients",
  sparse: true,
  startsDense: false,
  dynamic: true,
  flops: "rigl",
  csrUnsupported: "RigL grows at the largest dense gradients",
  update,
};
