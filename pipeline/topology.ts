/**
 * Sparse topology distance (NNSTD, spec §10.1) between the masks of two checkpoints.
 *
 * Each masked tensor `[rows, cols]` (PyTorch layout `[out, in]`) is read as `rows` output
 * neurons, each the set of input columns it is connected to. Two neurons are compared by the
 * Jaccard distance `1 − |A∩B| / |A∪B|` (0 when both sets are empty, 1 when exactly one is). A
 * tensor's distance is the mean matched neuron distance, either
 *
 * - **identity**: row i of A against row i of B, which is what matters when both runs share an
 *   initialisation (the hidden units cannot have been permuted), or
 * - **assignment**: the best one-to-one matching of A's rows to B's rows (a linear assignment),
 *   which is the paper's NNSTD and ignores relabelled neurons.
 *
 * Following the spec's "simplest reproducible choice", tensors are compared independently (no
 * propagation of one layer's matching into the next layer's columns). Weights with row blocks
 * (an LSTM's 4 gate blocks i, f, g, o of H rows, an RHN's H and T blocks; the checkpoint records
 * them, {@linkcode rowBlocksOf}) are matched within each block: a unit's row in the input gate can
 * only be matched to an input-gate row, and the smaller assignments keep an H = 1500 model
 * tractable (4 × 1500³ instead of 6000³). Tensors (or blocks) with more than `maxAssignment`
 * rows report the identity distance only.
 *
 * Everything here is pure host code; nothing needs a GPU.
 *
 * @module
 */

import type { HostTensor } from "./checkpoint.ts";

/** Bad input: no masks in common, mismatched shapes, bad options. The message names the tensor. */
export class TopologyError extends Error {
  override name = "TopologyError";
}

/** Options of {@linkcode topologyDistance}. */
export interface TopologyOptions {
  /**
   * Largest row count (of a whole tensor, or of one row block) for which the O(n³) assignment
   * is solved; larger ones report `assignment: null`. Default 1500 (a few seconds per block).
   */
  maxAssignment?: number;
  /**
   * Also compare parameters without a mask as dense (all ones): every 2-D tensor whose name has
   * no `#` and does not start with `state.`, present in both files. A parameter masked in only one
   * file is then compared against all ones. Default false: only tensors with `<name>#mask` in
   * both files.
   */
  includeDense?: boolean;
  /**
   * Rows of the contiguous row blocks matched separately (summing to the row count); default
   * the whole tensor. {@linkcode rowBlocksOf} reads them from a checkpoint.
   */
  blocks?: (name: string, rows: number) => readonly number[];
  /** How the two inputs are named in errors and notes; default `["A", "B"]`. */
  labels?: readonly [string, string];
  /** Called before each tensor is compared (the CLI's progress line). */
  onTensor?: (name: string, index: number, count: number) => void;
}

/** The comparison of one tensor. Distances are in [0, 1]. */
export interface TensorTopology {
  /** Parameter name (without `#mask`). */
  name: string;
  rows: number;
  cols: number;
  /** Rows of the row blocks matched separately by the assignment (`[rows]` = whole tensor). */
  blocks: readonly number[];
  /** Fraction of active entries in A and in B. */
  densityA: number;
  densityB: number;
  /** Mean Jaccard distance of row i of A to row i of B. */
  identity: number;
  /** Mean matched distance of the optimal row matching (within row blocks); null if skipped. */
  assignment: number | null;
  /** How the assignment was done or why it was skipped; dense stand-ins; "" when plain. */
  note: string;
}

/** The result of {@linkcode topologyDistance}. */
export interface TopologyResult {
  /** Compared tensors in name order. */
  tensors: TensorTopology[];
  /** Mean over tensors of the identity distance. */
  meanIdentity: number;
  /**
   * Mean over tensors of the assignment distance, using the identity distance (an upper bound)
   * for tensors whose assignment was skipped; null when no tensor had an assignment.
   */
  meanAssignment: number | null;
  /** True when every tensor had its assignment solved (meanAssignment is then exact). */
  assignmentComplete: boolean;
  /** Masks present in only one input (not compared unless `includeDense`). */
  skipped: { name: string; reason: string }[];
}

/**
 * The row blocks of every sparse tensor recorded in a training checkpoint's metadata (its
 * connectivity stage state), as a {@linkcode TopologyOptions.blocks} lookup; tensors it does not
 * list are whole.
 *
 * @example
 * ```ts
 * import { rowBlocksOf } from "./topology.ts";
 * const blocks = rowBlocksOf({ sparsity: { tensors: [{ name: "w", blocks: [2, 2] }] } });
 * blocks("w", 4); // [2, 2]
 * blocks("v", 3); // [3]
 * ```
 */
export function rowBlocksOf(meta: unknown): (name: string, rows: number) => readonly number[] {
  const tensors = (meta as { sparsity?: { tensors?: { name: string; blocks?: number[] }[] } })
    ?.sparsity?.tensors ?? [];
  const byName = new Map(tensors.filter((t) => t.blocks).map((t) => [t.name, t.blocks!]));
  return (name, rows) => byName.get(name) ?? [rows];
}

/**
 * Solves the square linear assignment problem: the permutation `rowToCol` minimising
 * `Σ_i cost[i·n + rowToCol[i]]`. Shortest augmenting paths with row/column potentials
 * (Hungarian method in the Jonker–Volgenant / Kuhn–Munkres O(n³) form); `cost` is row-major
 * `[n, n]` and must be finite.
 *
 * @example
 * ```ts
 * import { linearAssignment } from "./topology.ts";
 * const { rowToCol, total } = linearAssignment(Float64Array.from([4, 1, 3, 2, 0, 5, 3, 2, 2]), 3);
 * [...rowToCol]; // [1, 0, 2]
 * total; // 5
 * ```
 */
export function linearAssignment(
  cost: Float64Array,
  n: number,
): { rowToCol: Int32Array; total: number } {
  if (!Number.isInteger(n) || n < 0 || cost.length !== n * n) {
    throw new TopologyError(`linearAssignment: cost has ${cost.length} entries, expected ${n}²`);
  }
  for (let k = 0; k < cost.length; k++) {
    if (!Number.isFinite(cost[k])) {
      throw new TopologyError(`linearAssignment: cost[${k}] = ${cost[k]} is not finite`);
    }
  }
  // 1-based: index 0 is the virtual column the new row starts from.
  const u = new Float64Array(n + 1), v = new Float64Array(n + 1);
  const colRow = new Int32Array(n + 1); // row matched to column j (0 = free)
  const way = new Int32Array(n + 1); // predecessor column on the shortest path
  const minv = new Float64Array(n + 1);
  const used = new Uint8Array(n + 1);
  for (let i = 1; i <= n; i++) {
    colRow[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = colRow[j0], ui0 = u[i0], base = (i0 - 1) * n - 1;
      let delta = Infinity, j1 = 0;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = cost[base + j] - ui0 - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[colRow[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (colRow[j0] !== 0);
    do {
      const j1 = way[j0];
      colRow[j0] = colRow[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  const rowToCol = new Int32Array(n);
  for (let j = 1; j <= n; j++) rowToCol[colRow[j] - 1] = j - 1;
  let total = 0;
  for (let i = 0; i < n; i++) total += cost[i * n + rowToCol[i]];
  return { rowToCol, total };
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Rows of a mask as bitsets: `words` u32 per row, plus each row's popcount. */
interface RowSets {
  rows: number;
  words: number;
  bits: Uint32Array;
  counts: Int32Array;
  active: number;
}

function rowSets(mask: HostTensor | null, rows: number, cols: number): RowSets {
  const words = Math.ceil(cols / 32);
  const bits = new Uint32Array(rows * words);
  const counts = new Int32Array(rows);
  let active = 0;
  for (let r = 0; r < rows; r++) {
    let c = 0;
    for (let k = 0; k < cols; k++) {
      if (mask === null || mask.data[r * cols + k] !== 0) {
        bits[r * words + (k >>> 5)] |= 1 << (k & 31);
        c++;
      }
    }
    counts[r] = c;
    active += c;
  }
  return { rows, words, bits, counts, active };
}

function jaccard(a: RowSets, ra: number, b: RowSets, rb: number): number {
  const ca = a.counts[ra], cb = b.counts[rb];
  if (ca === 0 && cb === 0) return 0;
  if (ca === 0 || cb === 0) return 1;
  const w = a.words, oa = ra * w, ob = rb * w;
  let inter = 0;
  for (let k = 0; k < w; k++) inter += popcount(a.bits[oa + k] & b.bits[ob + k]);
  return 1 - inter / (ca + cb - inter);
}

function dims(t: HostTensor): [number, number] {
  const rows = t.shape.length === 0 ? 1 : t.shape[0];
  const cols = t.shape.slice(1).reduce((x, y) => x * y, 1);
  return [rows, cols];
}

/**
 * NNSTD between the sparse topologies of two checkpoints' tensors (`readCheckpoint(...).tensors`):
 * per compared tensor the identity and (optimal, within row blocks) assignment distances, and
 * their means over tensors. Masks are `<param>#mask` tensors, `[out, in]`, nonzero = active.
 *
 * @example
 * ```ts
 * import { topologyDistance } from "./topology.ts";
 * const m = (...v: number[]) => ({ dtype: "f32" as const, shape: [2, 2], data: Float32Array.from(v) });
 * const r = topologyDistance({ "w#mask": m(1, 0, 0, 1) }, { "w#mask": m(0, 1, 1, 0) });
 * r.meanIdentity; // 1 (row i vs row i: disjoint)
 * r.meanAssignment; // 0 (the rows are swapped)
 * ```
 */
export function topologyDistance(
  a: Record<string, HostTensor>,
  b: Record<string, HostTensor>,
  opts: TopologyOptions = {},
): TopologyResult {
  const maxAssignment = opts.maxAssignment ?? 1500;
  if (!Number.isInteger(maxAssignment) || maxAssignment < 0) {
    throw new TopologyError(`maxAssignment must be a non-negative integer, got ${maxAssignment}`);
  }
  const blocksOf = opts.blocks ?? ((_: string, rows: number) => [rows]);
  const [la, lb] = opts.labels ?? ["A", "B"];
  const MASK = "#mask";
  const masked = (t: Record<string, HostTensor>) =>
    new Set(Object.keys(t).filter((k) => k.endsWith(MASK)).map((k) => k.slice(0, -MASK.length)));
  const ma = masked(a), mb = masked(b);
  const names = new Set([...ma].filter((n) => mb.has(n)));
  if (opts.includeDense) {
    const params = (t: Record<string, HostTensor>, m: Set<string>) =>
      Object.keys(t).filter((k) =>
        !k.includes("#") && !k.startsWith("state.") && (t[k].shape.length >= 2 || m.has(k))
      );
    const pb = new Set(params(b, mb));
    for (const n of params(a, ma)) if (pb.has(n)) names.add(n);
  }
  const skipped: { name: string; reason: string }[] = [];
  for (const n of [...new Set([...ma, ...mb])].sort()) {
    if (names.has(n)) continue;
    const [has, lacks] = ma.has(n) ? [la, lb] : [lb, la];
    skipped.push({
      name: n,
      reason: opts.includeDense
        ? `masked in ${has}, no such parameter in ${lacks}`
        : `mask only in ${has}, not ${lacks}`,
    });
  }
  if (names.size === 0) {
    throw new TopologyError(
      opts.includeDense
        ? `no parameter present in both ${la} and ${lb}`
        : `no masked tensor (<param>#mask) present in both ${la} and ${lb}` +
          (ma.size + mb.size === 0 ? " (neither has any mask: dense runs?)" : ""),
    );
  }
  const sorted = [...names].sort();
  const tensors: TensorTopology[] = [];
  sorted.forEach((name, index) => {
    opts.onTensor?.(name, index, sorted.length);
    const ta = a[name + MASK] ?? null, tb = b[name + MASK] ?? null;
    const sa = ta ?? a[name], sb = tb ?? b[name];
    if (sa.shape.join() !== sb.shape.join()) {
      throw new TopologyError(
        `tensor ${name}: shape [${sa.shape.join(", ")}] in ${la} but [${
          sb.shape.join(", ")
        }] in ${lb}`,
      );
    }
    const [rows, cols] = dims(sa);
    const A = rowSets(ta, rows, cols), B = rowSets(tb, rows, cols);
    const notes: string[] = [];
    if (!ta) notes.push(`${la} dense (no mask)`);
    if (!tb) notes.push(`${lb} dense (no mask)`);
    let idSum = 0;
    for (let r = 0; r < rows; r++) idSum += jaccard(A, r, B, r);
    const blocks = blocksOf(name, rows);
    if (
      blocks.length === 0 || blocks.some((x) => !Number.isInteger(x) || x < 1) ||
      blocks.reduce((x, y) => x + y, 0) !== rows
    ) {
      throw new TopologyError(
        `tensor ${name}: row blocks [${blocks.join(", ")}] do not split its ${rows} rows`,
      );
    }
    const largest = Math.max(...blocks);
    let assignment: number | null = null;
    if (rows === 0) assignment = 0;
    else if (largest > maxAssignment) {
      notes.push(
        `assignment skipped (${
          blocks.length > 1 ? "row block " : ""
        }rows ${largest} > ${maxAssignment})`,
      );
    } else {
      let sum = 0, r0 = 0;
      for (const m of blocks) {
        const cost = new Float64Array(m * m);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < m; j++) cost[i * m + j] = jaccard(A, r0 + i, B, r0 + j);
        }
        sum += linearAssignment(cost, m).total;
        r0 += m;
      }
      assignment = sum / rows;
      if (blocks.length > 1) {
        notes.push(`assignment within each of ${blocks.length} row blocks [${blocks.join(", ")}]`);
      }
    }
    const size = rows * cols;
    tensors.push({
      name,
      rows,
      cols,
      blocks,
      densityA: size === 0 ? 0 : A.active / size,
      densityB: size === 0 ? 0 : B.active / size,
      identity: rows === 0 ? 0 : idSum / rows,
      assignment,
      note: notes.join("; "),
    });
  });
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const anyAssigned = tensors.some((t) => t.assignment !== null);
  return {
    tensors,
    meanIdentity: mean(tensors.map((t) => t.identity)),
    meanAssignment: anyAssigned ? mean(tensors.map((t) => t.assignment ?? t.identity)) : null,
    assignmentComplete: tensors.every((t) => t.assignment !== null),
    skipped,
  };
}
