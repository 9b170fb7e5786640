/**
 * CPU f64 reference of the ON-LSTM LM (`onlstm_lm.ts`): the gated-stack reference
 * (`../parts/gated_stack_ref.ts`) with the f64 ON-LSTM cell of `kernels/cells/onlstm_cell_ref.ts`,
 * the ON-LSTM's layer sizes and names, and AR on the raw output. Test oracle only.
 *
 * @module
 */

import {
  onLstmActWidth,
  onLstmCellBackwardRef64,
  onLstmCellForwardRef64,
} from "../../kernels/cells/onlstm_cell_ref.ts";
import {
  type GatedCellRef,
  gatedStackRef,
  type GatedStackRefArgs,
  type GatedStackRefModel,
  type GatedStackRefResult,
} from "../parts/gated_stack_ref.ts";
import { onLstmAwd, type OnLstmConfig, onLstmLayerNames, onLstmLayerSizes } from "./onlstm_lm.ts";

/** Inputs of {@linkcode onLstmRef}: those of `gatedStackRef` with the ON-LSTM's config. */
export interface OnLstmRefArgs extends Omit<GatedStackRefArgs, "stack"> {
  config: OnLstmConfig;
  /** Replaces parts of the stack the config implies (sensitivity tests). */
  override?: Partial<GatedStackRefModel>;
}

/**
 * The f64 ON-LSTM cell of chunk size C, one row at a time.
 *
 * @example
 * ```ts
 * import { onLstmCellRef } from "./onlstm_ref.ts";
 * onLstmCellRef(4).width(8); // 34
 * ```
 */
export function onLstmCellRef(chunkSize: number): GatedCellRef {
  return {
    width: (H) => onLstmActWidth(H, H / chunkSize),
    forward: (z, cPrev, H) =>
      onLstmCellForwardRef64({ B: 1, H, chunks: H / chunkSize, gates: z, cPrev }),
    backward: (a, H) => {
      const g = onLstmCellBackwardRef64({ B: 1, H, chunks: H / chunkSize, ...a });
      return { dz: g.dgates, dcPrev: g.dcPrev };
    },
  };
}

/**
 * Runs the model on one window in f64: loss (with AR and TAR in training), per-row losses,
 * every gradient and the final state.
 *
 * @example
 * ```ts ignore
 * const r = onLstmRef({ config, weights, input, target, T: 4, B: 3, dropout: { seed: 5, step: 0 } });
 * ```
 */
export function onLstmRef(args: OnLstmRefArgs): GatedStackRefResult {
  const { config: c, override, ...rest } = args;
  return gatedStackRef({
    ...rest,
    stack: {
      vocab: c.vocab,
      embed: c.embed,
      hidden: onLstmLayerSizes(c),
      dropout: c.dropout,
      tied: c.tied,
      awd: onLstmAwd(c),
      arOn: "raw",
      cell: onLstmCellRef(c.chunkSize),
      names: onLstmLayerNames,
      ...override,
    },
  });
}
