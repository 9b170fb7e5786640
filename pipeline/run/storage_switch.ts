/**
 * Runs an event written for masked-dense storage (a connectivity update, keeping the best
 * weights, a checkpoint) on a CSR run: switch to masked form, run it, switch back with the
 * connectivity state the event left (`sparsity/storage.ts` carries the optimizer state along).
 * On a masked run it just runs the event.
 *
 * @module
 */

import { toCsrStorage, toMaskedStorage } from "../sparsity/storage.ts";
import type { RunContext, RunState } from "./types.ts";

/**
 * `fn` on the state in masked form; returns its state back in the run's storage.
 *
 * @example
 * ```ts ignore
 * state = await inMaskedForm(ctx, state, async (s) => ({ ...s, sparsity: await update(s) }));
 * ```
 */
export async function inMaskedForm(
  ctx: RunContext,
  state: RunState,
  fn: (state: RunState) => Promise<RunState> | RunState,
): Promise<RunState> {
  if (!ctx.csr) return await fn(state);
  let s: RunState = { ...state, opt: toMaskedStorage(ctx.gpu, ctx.model.params, state.opt) };
  try {
    s = await fn(s);
  } finally {
    s = { ...s, opt: toCsrStorage(ctx.gpu, ctx.model.params, s.opt, s.sparsity) };
  }
  return s;
}
