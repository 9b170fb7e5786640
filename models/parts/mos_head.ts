/**
 * The mixture-of-softmaxes head (Yang et al. 2018; zihangdai/mos `model.py`, spec §2.4, §14.3)
 * as a stack head (`stack_head.ts`). From the stack's dropped output `x: [N, D]`:
 *
 * ```text
 * u      = x·W_pᵀ                         prior logits [N, K] (no bias), π = softmax(u)
 * latent = tanh(x·W_lᵀ + b_l)             [N, K·E]; row n holds expert k at columns kE..kE+E
 * ℓ      = locked dropout p_l (latent)    one [B, K·E] mask per window
 * z_k    = ℓ_k·Decᵀ + b_dec               expert k's logits [N, V] (Dec the tied embedding)
 * loss   = −log(Σ_k π_k softmax(z_k)[y] + 1e-8)       (`kernels/cells/mos.ts`)
 * ```
 *
 * Memory: never K·N·V logits at once. The experts run in turn through one `[N, V]` buffer: the
 * forward keeps only each expert's NLL row (the softmax-CE loss), the mixture kernel turns them
 * into loss rows and per-expert row weights; the backward recomputes each expert's logits, takes
 * the softmax-CE gradient in place, scales its rows by the weights, and accumulates the decoder
 * gradients over the experts. Buffers per row: K·E (latent, dropped latent, expert-major copy
 * and its gradient), V (logits), 3K.
 *
 * @module
 */

import type { Tensor } from "../../kernels/runtime/tensor.ts";
import { matmul } from "../../kernels/dense/matmul.ts";
import { unary } from "../../kernels/dense/elementwise.ts";
import { softmaxCrossEntropy } from "../../kernels/cells/softmax_ce.ts";
import { expertMajor, mosMixture, scaleRows, tanhGrad } from "../../kernels/cells/mos.ts";
import type { Param } from "../params.ts";
import { weightBackwardData, weightBackwardWeight, weightForward } from "../weight_ops.ts";
import {
  type ActivationDrop,
  dropActivations,
  dropActivationsBackward,
} from "./embedding_input.ts";
import type { HeadDrops, StackHead } from "./stack_head.ts";

/** The head's tensors and its latent dropout. */
export interface MosHeadParams {
  /** `prior.weight`: `[K, D]`. */
  prior: Param;
  /** `latent.0.weight`: `[K·E, D]`. */
  latentWeight: Param;
  /** `latent.0.bias`: `[K·E]`. */
  latentBias: Param;
  /** The decoder weight `[V, E]` (the tied embedding) and `decoder.bias` `[V]`. */
  decoderWeight: Param;
  decoderBias: Param;
  /** Locked dropout on the latent (`dropoutl`). */
  dropoutl: number;
}

/**
 * The shapes of the head's buffers for up to `maxN` rows (the dry run reports their bytes): one
 * `[maxN, V]` logits buffer whatever K, as the experts take turns in it.
 *
 * @example
 * ```ts
 * import { mosHeadBufferShapes } from "./mos_head.ts";
 * mosHeadBufferShapes({ K: 15, E: 300, V: 33278 }, 550, true).logits; // [550, 33278]
 * ```
 */
export function mosHeadBufferShapes(
  dims: { K: number; E: number; V: number },
  maxN: number,
  training: boolean,
): Record<string, number[]> {
  const { K, E, V } = dims;
  return {
    u: [maxN, K],
    latent: [maxN, K * E],
    dropped: [maxN, K * E],
    experts: [K, maxN, E],
    logits: [maxN, V],
    nll: [K, maxN],
    loss: [maxN],
    scratch: [maxN],
    ...(training ? { w: [K, maxN], dPrior: [maxN, K] } : {}),
  };
}

/**
 * The MoS head over `p`'s tensors (one dropout site: the latent's).
 *
 * @example
 * ```ts ignore
 * const head = mosStackHead({ prior, latentWeight, latentBias, decoderWeight, decoderBias, dropoutl: 0.29 });
 * ```
 */
export function mosStackHead(p: MosHeadParams): StackHead {
  const [K, D] = p.prior.shape;
  const [V, E] = p.decoderWeight.shape;
  const KE = K * E;
  const latentDrop = (drops: HeadDrops | null): ActivationDrop | null =>
    drops && p.dropoutl > 0
      ? { kind: "locked", p: p.dropoutl, seed: drops.seed, offset: drops.offset(0) }
      : null;
  return {
    inputWidth: D,
    sites: 1,
    buffers(gpu, maxN, training) {
      const s = mosHeadBufferShapes({ K, E, V }, maxN, training);
      const all = {
        u: gpu.tensor(s.u),
        latent: gpu.tensor(s.latent),
        dropped: gpu.tensor(s.dropped),
        experts: gpu.tensor(s.experts),
        logits: gpu.tensor(s.logits),
        nll: gpu.tensor(s.nll),
        loss: gpu.tensor(s.loss),
        scratch: gpu.tensor(s.scratch),
        w: s.w ? gpu.tensor(s.w) : null,
        dPrior: s.dPrior ? gpu.tensor(s.dPrior) : null,
      };
      const views = (N: number) => ({
        u: all.u.view(0, [N, K]),
        latent: all.latent.view(0, [N, KE]),
        dropped: all.dropped.view(0, [N, KE]),
        experts: all.experts.view(0, [K, N, E]),
        expert: (k: number) => all.experts.view(k * N * E, [N, E]),
        logits: all.logits.view(0, [N, V]),
        nll: all.nll.view(0, [K, N]),
        nllOf: (k: number) => all.nll.view(k * N, [N]),
        loss: all.loss.view(0, [N]),
        scratch: all.scratch.view(0, [N]),
        w: all.w?.view(0, [K, N]),
        wOf: (k: number) => all.w!.view(k * N, [N]),
        dPrior: all.dPrior?.view(0, [N, K]),
      });
      const dec = { weight: p.decoderWeight, bias: p.decoderBias };
      // the backward recomputes the experts' softmax-CE against the forward's targets
      let target: Tensor<"u32"> | null = null;
      return {
        forward({ x, target: targets, B, drops, route }) {
          target = targets;
          const N = x.shape[0];
          const v = views(N);
          weightForward(gpu, p.prior, { x, y: v.u, route });
          weightForward(gpu, p.latentWeight, { x, y: v.latent, bias: p.latentBias.value, route });
          unary(gpu, { op: "tanh", x: v.latent, y: v.latent });
          const site = latentDrop(drops);
          const l = site ? dropActivations(gpu, site, v.latent, v.dropped, B) : v.latent;
          expertMajor(gpu, { x: l, y: v.experts, a: N, b: K, e: E });
          for (let k = 0; k < K; k++) {
            weightForward(gpu, dec.weight, {
              x: v.expert(k),
              y: v.logits,
              bias: dec.bias.value,
              route,
            });
            softmaxCrossEntropy(gpu, { logits: v.logits, targets, loss: v.nllOf(k) });
          }
          const grad = drops !== null && v.w && v.dPrior;
          mosMixture(gpu, {
            u: v.u,
            nll: v.nll,
            loss: v.loss,
            ...(grad ? { w: v.w, dPrior: v.dPrior, scale: 1 / N } : {}),
          });
          return v.loss;
        },
        backward({ x, dx, B, ones, drops, route }) {
          const N = x.shape[0];
          const v = views(N);
          // the experts' gradients w.r.t. the dropped latent, expert-major, into `dropped`'s
          // buffer viewed [K, N, E] after the logits are done with the expert copies
          const dExperts = all.dropped.view(0, [K, N, E]);
          const dExpert = (k: number) => all.dropped.view(k * N * E, [N, E]);
          for (let k = 0; k < K; k++) {
            weightForward(gpu, dec.weight, {
              x: v.expert(k),
              y: v.logits,
              bias: dec.bias.value,
              route,
            });
            softmaxCrossEntropy(gpu, {
              logits: v.logits,
              targets: target!,
              loss: v.scratch,
              dLogits: v.logits,
            });
            scaleRows(gpu, { x: v.logits, s: v.wOf(k) });
            const accumulate = k > 0;
            weightBackwardWeight(gpu, dec.weight, {
              dy: v.logits,
              x: v.expert(k),
              route,
              accumulate,
            });
            matmul(gpu, {
              a: ones,
              b: v.logits,
              c: dec.bias.grad.reshape([1, V]),
              beta: accumulate ? 1 : 0,
            });
            weightBackwardData(gpu, dec.weight, { dy: v.logits, dx: dExpert(k), route });
          }
          // back to row-major [N, K·E] (the latent's layout), through the dropout and the tanh
          const dLatent = v.experts.view(0, [N, KE]);
          expertMajor(gpu, { x: dExperts, y: dLatent, a: K, b: N, e: E });
          dropActivationsBackward(gpu, latentDrop(drops), dLatent, B);
          tanhGrad(gpu, { y: v.latent, g: dLatent });
          weightBackwardWeight(gpu, p.latentWeight, { dy: dLatent, x, route });
          matmul(gpu, { a: ones, b: dLatent, c: p.latentBias.grad.reshape([1, KE]) });
          weightBackwardWeight(gpu, p.prior, { dy: v.dPrior!, x, route });
          weightBackwardData(gpu, p.latentWeight, { dy: dLatent, dx, route });
          weightBackwardData(gpu, p.prior, { dy: v.dPrior!, dx, beta: 1, route });
        },
        release() {
          for (const t of Object.values(all)) if (t) gpu.release(t);
        },
      };
    },
  };
}
