/**
 * The non-monotonic trigger of NT-ASGD (Merity et al., AWD-LSTM; spec §5.1): switch from SGD to
 * averaged SGD when the validation loss is worse than the best loss recorded more than `n`
 * epochs ago. A pure function of the loss history, so resumed runs trigger identically.
 *
 * @module
 */

/**
 * True when averaging should start: `history.length > n` and `loss > min(history[0 .. len-n-1])`.
 * Call it with the epoch's validation loss before appending that loss to `history`.
 *
 * @example
 * ```ts
 * import { nonmonoTrigger } from "./ntasgd.ts";
 * nonmonoTrigger([5, 4, 3, 3.1, 3.2, 3.3], 5.5, 5); // true: 5.5 > min([5])
 * nonmonoTrigger([5, 4, 3, 3.1, 3.2], 9, 5); // false: only 5 epochs recorded
 * ```
 */
export function nonmonoTrigger(history: readonly number[], loss: number, n: number): boolean {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`nonmono must be an integer >= 0, got ${n}`);
  }
  if (history.length <= n) return false;
  let best = Infinity;
  for (let i = 0; i < history.length - n; i++) best = Math.min(best, history[i]);
  return loss > best;
}
