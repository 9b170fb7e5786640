/**
 * CPU f64 reference of the stacked-LSTM LM (`lstm_lm.ts`): forward, loss and every gradient by
 * plain loops (`gated_stack_ref.ts` with the textbook LSTM cell below), written independently
 * of the GPU program. Test oracle only, never production.
 *
 * Dropout masks are the GPU's, bit for bit: `dropoutMaskRef` (CPU Philox) under the same
 * `(seed, offset = step·sites + site)` pairs (sites L + 1, or 2L + 2 with the AWD devices), and
 * the same f32 scale `fround(1 / (1 − p))`; the scaled values are kept in f64. With the AWD
 * devices (`config.awd`): locked masks (one `[B, D]` mask repeated over time), embedding-row
 * masks over the V words, and AR (on the dropped output) and TAR (on the raw output) in the
 * loss, and WeightDrop (`awd.wdrop`: one mask per step and recurrent weight at site L + 2 + l,
 * in its convention).
 *
 * Masks: forward products and data gradients use `W ⊙ M`; the returned weight gradients are
 * `∂loss/∂(W ⊙ M)` at every position (dense), as on the GPU.
 *
 * @module
 */

import type { LstmLmConfig } from "./lstm_lm.ts";
import {
  type GatedCellRef,
  gatedStackRef,
  type GatedStackRefArgs,
  type GatedStackRefResult,
} from "../parts/gated_stack_ref.ts";

/** Inputs of {@linkcode lstmLmRef}: those of `gatedStackRef` with the LSTM's config. */
export interface LstmLmRefArgs extends Omit<GatedStackRefArgs, "stack"> {
  config: LstmLmConfig;
}

/** Outputs of {@linkcode lstmLmRef}. */
export type LstmLmRefResult = GatedStackRefResult;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** The LSTM cell per row in f64: gate blocks i, f, g, o of the 4H pre-activations. */
export const LSTM_CELL_REF: GatedCellRef = {
  width: (H) => 4 * H,
  forward(z, cPrev, H) {
    const act = new Float64Array(4 * H), c = new Float64Array(H), h = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const ig = sigmoid(z[j]), fg = sigmoid(z[H + j]);
      const gg = Math.tanh(z[2 * H + j]), og = sigmoid(z[3 * H + j]);
      c[j] = fg * cPrev[j] + ig * gg;
      h[j] = og * Math.tanh(c[j]);
      act[j] = ig;
      act[H + j] = fg;
      act[2 * H + j] = gg;
      act[3 * H + j] = og;
    }
    return { act, c, h };
  },
  backward({ act, cPrev, c, dh, dcNext }, H) {
    const dz = new Float64Array(4 * H), dcPrev = new Float64Array(H);
    for (let j = 0; j < H; j++) {
      const ig = act[j], fg = act[H + j], gg = act[2 * H + j], og = act[3 * H + j];
      const tc = Math.tanh(c[j]);
      const dc = dcNext[j] + dh[j] * og * (1 - tc * tc);
      dz[j] = dc * gg * ig * (1 - ig);
      dz[H + j] = dc * cPrev[j] * fg * (1 - fg);
      dz[2 * H + j] = dc * ig * (1 - gg * gg);
      dz[3 * H + j] = dh[j] * tc * og * (1 - og);
      dcPrev[j] = dc * fg;
    }
    return { dz, dcPrev };
  },
};

/**
 * Runs the model on one window in f64 and returns the mean loss, per-row losses, all gradients
 * and the final state.
 *
 * @example
 * ```ts ignore
 * const dropout = { seed: 5, step: 0 };
 * const r = lstmLmRef({ config, weights, input, target, T: 4, B: 3, dropout });
 * r.grads["rnn.weight_hh_l1"]; // Float64Array [4H·H]
 * ```
 */
export function lstmLmRef(args: LstmLmRefArgs): LstmLmRefResult {
  const { config, ...rest } = args;
  return gatedStackRef({
    ...rest,
    stack: {
      vocab: config.vocab,
      embed: config.embed,
      hidden: Array(config.layers).fill(config.hidden),
      dropout: config.dropout,
      tied: config.tied,
      ...(config.awd ? { awd: config.awd } : {}),
      arOn: "dropped",
      cell: LSTM_CELL_REF,
      names: (l) => ({
        ih: `rnn.weight_ih_l${l}`,
        hh: `rnn.weight_hh_l${l}`,
        bih: `rnn.bias_ih_l${l}`,
        bhh: `rnn.bias_hh_l${l}`,
      }),
    },
  });
}
