/**
 * Parameter budgets: how many weights each sparse tensor keeps, from a global density, for the
 * uniform and Erdős–Rényi initialisations (spec §3), and the small-dense width that matches a
 * sparse parameter count (spec §7.2). Counts are exact integers, never "in expectation".
 *
 * @module
 */

/** Dense shape of one sparse tensor, `[rows, cols]` in PyTorch layout. */
export interface TensorShape {
  name: string;
  rows: number;
  cols: number;
}

/** How the global density is spread over tensors. */
export type SparseInit = "uniform" | "er";

/**
 * Per-tensor densities for a global `density`: uniform gives every tensor `density`; ER gives
 * tensor `(r, c)` the density `ε·(r + c)/(r·c)` with ε chosen so the expected total is
 * `density·Σ numel` (the closed form of the code's search, spec §3.2), capped at 1 (the excess
 * is then handed to the uncapped tensors in proportion, so the total still matches).
 *
 * @example
 * ```ts
 * import { layerDensities } from "./budget.ts";
 * layerDensities("uniform", [{ name: "w", rows: 4, cols: 4 }], 0.5); // [0.5]
 * ```
 */
export function layerDensities(
  init: SparseInit,
  tensors: readonly TensorShape[],
  density: number,
): number[] {
  if (!(density >= 0 && density <= 1)) {
    throw new RangeError(`density must be in [0, 1], got ${density}`);
  }
  if (init === "uniform") return tensors.map(() => density);
  const total = density * tensors.reduce((s, t) => s + t.rows * t.cols, 0);
  const capped = new Set<number>();
  for (;;) {
    let free = total, weight = 0;
    tensors.forEach((t, i) => {
      if (capped.has(i)) free -= t.rows * t.cols;
      else weight += t.rows + t.cols;
    });
    const eps = weight > 0 ? free / weight : 0;
    const d = tensors.map((
      t,
      i,
    ) => (capped.has(i) ? 1 : (eps * (t.rows + t.cols)) / (t.rows * t.cols)));
    const over = d.findIndex((x, i) => x > 1 && !capped.has(i));
    if (over < 0) return d;
    capped.add(over);
  }
}

/**
 * Exact per-tensor budgets: `round(d_l · numel_l)`, clamped to `[0, numel_l]`.
 *
 * @example
 * ```ts
 * import { tensorBudgets } from "./budget.ts";
 * tensorBudgets([{ name: "w", rows: 3, cols: 3 }], [0.33]); // [3]
 * ```
 */
export function tensorBudgets(
  tensors: readonly TensorShape[],
  densities: readonly number[],
): number[] {
  return tensors.map((t, i) => {
    const n = t.rows * t.cols;
    return Math.min(n, Math.max(0, Math.round(densities[i] * n)));
  });
}

/**
 * Splits `total` into `parts` near-equal integers (the first `total mod parts` get one more),
 * then caps each at `capacity[i]` and hands any surplus to blocks with room, in order — the
 * "cell weight redistribution" counts of spec §4.4 (equal regrowth per gate).
 *
 * @example
 * ```ts
 * import { splitEqualCapped } from "./budget.ts";
 * splitEqualCapped(10, [100, 1, 100, 100]); // [5, 1, 2, 2]
 * ```
 */
export function splitEqualCapped(total: number, capacity: readonly number[]): number[] {
  const g = capacity.length;
  const room = capacity.reduce((s, c) => s + c, 0);
  if (total > room) {
    throw new RangeError(`cannot place ${total} weights in blocks with ${room} free slots`);
  }
  const out = capacity.map((_, i) => Math.floor(total / g) + (i < total % g ? 1 : 0));
  let surplus = 0;
  out.forEach((x, i) => {
    if (x > capacity[i]) {
      surplus += x - capacity[i];
      out[i] = capacity[i];
    }
  });
  for (let i = 0; surplus > 0 && i < g; i++) {
    const take = Math.min(surplus, capacity[i] - out[i]);
    out[i] += take;
    surplus -= take;
  }
  return out;
}

/**
 * Splits `total` in proportion to non-negative `shares` (largest remainders get the leftover
 * units, ties to the lower index), capped at `capacity[i]` with the surplus re-split over the
 * blocks with room — the statistic-driven redistribution of spec §8 and §7.4–7.5.
 *
 * @example
 * ```ts
 * import { splitProportionalCapped } from "./budget.ts";
 * splitProportionalCapped(10, [1, 3], [100, 100]); // [3, 7]: the 0.5 remainders tie, lower index wins
 * ```
 */
export function splitProportionalCapped(
  total: number,
  shares: readonly number[],
  capacity: readonly number[],
): number[] {
  const room = capacity.reduce((s, c) => s + c, 0);
  if (total > room) {
    throw new RangeError(`cannot place ${total} weights in blocks with ${room} free slots`);
  }
  const out = capacity.map(() => 0);
  let left = total;
  const open = new Set(capacity.map((_, i) => i).filter((i) => capacity[i] > 0));
  while (left > 0 && open.size > 0) {
    const idx = [...open];
    let sum = idx.reduce((s, i) => s + Math.max(0, shares[i]), 0);
    const w = idx.map((i) => (sum > 0 ? Math.max(0, shares[i]) : 1));
    if (sum <= 0) sum = idx.length;
    const raw = w.map((x) => (left * x) / sum);
    const base = raw.map(Math.floor);
    let rest = left - base.reduce((s, x) => s + x, 0);
    const order = raw.map((x, j) => [x - base[j], j] as const).sort((a, b) =>
      b[0] - a[0] || a[1] - b[1]
    );
    for (const [, j] of order) {
      if (rest === 0) break;
      base[j]++;
      rest--;
    }
    let placed = 0;
    idx.forEach((i, j) => {
      const take = Math.min(base[j], capacity[i] - out[i]);
      out[i] += take;
      placed += take;
      if (out[i] >= capacity[i]) open.delete(i);
    });
    left -= placed;
    if (placed === 0) break;
  }
  return out;
}
