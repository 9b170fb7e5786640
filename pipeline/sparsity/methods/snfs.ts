/**
 * SNFS — Sparse Momentum (Dettmers & Zettlemoyer 2019, spec §7.5), once per update:
 *
 * 1. statistics: per tensor, share_l = mean |momentum| over its active weights, normalised over
 *    tensors (read before the removal, as the reference gathers them first);
 * 2. removal: per tensor, the `⌈p_t · nnz⌉` active weights of smallest |w|;
 * 3. redistribution: the total removed R is split over tensors by share (largest remainders),
 *    each capped at `⌊0.99 · free_l⌋` (free = inactive after the removal = zeros + removed),
 *    the excess spread evenly over the tensors with room until none is left (the reference's
 *    residual loop);
 * 4. growth: within each tensor, the inactive positions with the largest |momentum|, at 0 with
 *    a fresh optimizer state. Per-tensor budgets follow (`budget = nnz`); the total is constant.
 *
 * Momentum: SGD's momentum buffer; under Adam `m / (√v + 1e-8)` (raw moments, as the
 * reference); under plain SGD and (S)NT-ASGD, which keep no momentum, the dense gradient of the
 * last minibatch (|∇W|, the only per-weight signal available; what the paper did with SNT-ASGD
 * is unknown, spec §7.5). The growth score is taken before the removal, which clears the
 * optimizer state at removed positions, so a just-removed weight competes with its old momentum
 * (as in the reference, where death only changes the mask).
 *
 * Unmasked momentum. SNFS ranks inactive positions by the momentum of their (dense) gradient,
 * so SNFS's record asks for `denseOptimizerState` and the training stage runs the optimizer
 * with inactive state `accumulate` (or `keep`, Adam's default in masked storage;
 * `pipeline/optimizer.ts`): weights stay masked while momentum (SGD buffer, Adam m and v) keeps
 * accumulating at inactive positions — the one dense buffer of Table 1. With masked momentum
 * (the Selfish code's `apply_mask`, spec §12.5) only just-removed positions would score and the
 * rest of the growth would tie at 0. The gradient fallback needs neither (gradients are dense).
 *
 * Deviations from the reference: counts are exact (largest remainders instead of
 * `⌈share · (R + adjustment)⌉`), so the adjustment term that corrects rounding and capping
 * drift is omitted; when the 0.99 caps cannot hold R (tensors almost dense) the caps are the
 * full free slots; just-removed positions may be regrown, at 0 (the reference keeps their old
 * value).
 *
 * @module
 */

import type { SparsityMethod, UpdateInput, UpdateReport } from "../method.ts";
import {
  blockMeanAbs,
  flatView,
  growByScore,
  removeByMagnitude,
  type SparseTensor,
} from "../ops.ts";
import { splitProportionalCapped } from "../budget.ts";
import { adamMomentumScore } from "../../../kernels/select/momentum_score.ts";
import type { Tensor } from "../../../kernels/runtime/tensor.ts";

/** ε of the Adam momentum `m / (√v + ε)` (the reference's value). */
const ADAM_SCORE_EPS = 1e-8;

/**
 * SNFS's regrowth counts: `total` split over tensors in proportion to `shares` (largest
 * remainders, ties to the lower index), then every count above `caps[l]` cut to it and the
 * excess spread evenly over the tensors still below their cap (the first ones get the odd
 * units), repeated until all is placed. Needs `total ≤ Σ caps`.
 *
 * @example
 * ```ts
 * import { snfsRegrowth } from "./snfs.ts";
 * snfsRegrowth(10, [8, 1, 1], [4, 100, 100]); // [4, 3, 3]
 * ```
 */
export function snfsRegrowth(
  total: number,
  shares: readonly number[],
  caps: readonly number[],
): number[] {
  const room = caps.reduce((s, c) => s + c, 0);
  if (!Number.isInteger(total) || total < 0 || total > room) {
    throw new RangeError(`snfsRegrowth: cannot place ${total} weights in ${room} free slots`);
  }
  const out = splitProportionalCapped(total, shares, caps.map(() => total));
  let residual = 0;
  out.forEach((x, i) => {
    if (x > caps[i]) {
      residual += x - caps[i];
      out[i] = caps[i];
    }
  });
  while (residual > 0) {
    const open = out.map((_, i) => i).filter((i) => out[i] < caps[i]);
    const each = Math.floor(residual / open.length);
    let odd = residual % open.length;
    for (const i of open) {
      const want = each + (odd > 0 ? 1 : 0);
      if (odd > 0) odd--;
      const take = Math.min(want, caps[i] - out[i]);
      out[i] += take;
      residual -= take;
    }
  }
  return out;
}

/** Records the growth score of `t` into `out` (flat, `t`'s size): see the module doc. */
function recordScore(input: UpdateInput, t: SparseTensor, out: Tensor): void {
  const gpu = input.ops.gpu;
  const s = input.optimizer.perParam[t.index] ?? {};
  if (s.buf) gpu.copy(s.buf, out);
  else if (s.m && s.v) adamMomentumScore(gpu, { m: s.m, v: s.v, out, eps: ADAM_SCORE_EPS });
  else gpu.copy(t.param.grad, out);
}

async function update(input: UpdateInput): Promise<UpdateReport> {
  const { ops, removalRate } = input;
  const gpu = ops.gpu;
  const tensors = input.tensors.map(flatView);
  const scores = tensors.map((t) => {
    const out = gpu.tensor([t.param.value.size]);
    recordScore(input, t, out);
    return out;
  });
  const whole = tensors.map((t, i) => ({
    t: { ...t, blocks: [t.param.shape[0]] },
    score: scores[i],
  }));
  const means = await blockMeanAbs(
    gpu,
    whole.map((w) => w.t),
    (t) => whole.find((w) => w.t === t)!.score,
  );
  let removed = 0;
  for (const t of tensors) {
    const k = Math.min(t.nnz, Math.ceil(removalRate * t.nnz));
    removeByMagnitude(ops, t, k);
    removed += k;
  }
  const free = tensors.map((t) => t.param.value.size - t.nnz);
  const caps99 = free.map((f) => Math.floor(0.99 * f));
  const caps = caps99.reduce((s, c) => s + c, 0) >= removed ? caps99 : free;
  const regrow = snfsRegrowth(removed, means.map((m) => m[0]), caps);
  tensors.forEach((t, i) => {
    growByScore(ops, t, regrow[i], scores[i]);
    t.budget = t.nnz;
    gpu.release(scores[i]);
  });
  return { removed, grown: removed };
}

/**
 * SNFS: magnitude removal, regrowth by momentum, redistributed across tensors by momentum (needs
 * the optimizer to keep momentum at inactive positions: see the module doc).
 *
 * @example
 * ```ts ignore
 * const report = await snfs.update!(input); // input: UpdateInput from the stage
 * ```
 */
export const snfs: SparsityMethod = {
  name: "snfs",
  summary: "magnitude removal, momentum-driven regrowth redistributed across tensors",
  sparse: true,
  startsDense: false,
  dynamic: true,
  flops: "snfs",
  csrUnsupported: "SNFS grows at the largest dense momentum",
  denseOptimizerState: true,
  update,
};
