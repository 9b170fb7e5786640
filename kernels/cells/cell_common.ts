/**
 * What the fused recurrent cells (`lstm_cell.ts`, `highway_cell.ts`) share: their workgroup
 * size, binding declarations and the `[B, H]` shape they read off the carried state.
 *
 * @module
 */

import type { BindingDecl } from "../runtime/kernel.ts";
import { fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";

/** One thread per `(b, j)` element, 64 per workgroup. */
export const CELL_WG = 64;

/**
 * An f32 binding declaration.
 *
 * @example
 * ```ts
 * import { f32Binding } from "./cell_common.ts";
 * f32Binding("act", "read_write").dtype; // "f32"
 * ```
 */
export function f32Binding(name: string, access: "read" | "read_write"): BindingDecl {
  return { name, dtype: "f32", access };
}

/**
 * `[B, H]` of a cell's 2-D state argument, naming it when it is not 2-D.
 *
 * @example
 * ```ts ignore
 * const [B, H] = batchHidden("lstmCellForward cPrev", cPrev);
 * ```
 */
export function batchHidden(what: string, state: Tensor): [number, number] {
  if (state.shape.length !== 2) {
    throw new ShapeError(`${what}: expected shape [B, H], got ${fmtShape(state.shape)}`);
  }
  return [state.shape[0], state.shape[1]];
}
