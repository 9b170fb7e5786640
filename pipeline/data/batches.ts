/**
 * Batching for truncated BPTT (spec §1): a token stream becomes a [rows, B] matrix whose column
 * j is the j-th contiguous chunk of the stream, and an epoch is a list of windows over its rows.
 *
 * Windows are descriptors (start row, length, learning-rate scale); {@linkcode windowTokens}
 * turns one into input/target views without copying, because the matrix is row-major and a
 * window is a contiguous run of rows.
 *
 * @module
 */

import { DataError } from "./errors.ts";
import type { Rng } from "./rng.ts";

/**
 * A batchified stream. `data: [rows, cols]` row-major u32 token ids; `data[r * cols + j]` is
 * token `j * rows + r` of the (truncated) stream, so each column reads one contiguous chunk.
 */
export interface TokenMatrix {
  /** `[rows, cols]` row-major token ids. */
  data: Uint32Array;
  /** Time steps per column (`floor(stream.length / cols)`). */
  rows: number;
  /** The batch size B. */
  cols: number;
}

/**
 * One minibatch: input rows `start .. start+length-1`, target rows `start+1 .. start+length`.
 * `lrScale` multiplies the learning rate for this step (AWD-style windows; 1 for fixed ones).
 */
export interface Window {
  /** First input row. */
  start: number;
  /** Number of time steps L (input rows; targets are shifted by one). */
  length: number;
  /** Learning-rate factor for this step: sampled length / bptt for AWD windows, else 1. */
  lrScale: number;
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${v}`);
  }
}

/**
 * Cuts `stream` to a multiple of `batchSize` and lays it out as `[rows, batchSize]` (see
 * {@linkcode TokenMatrix}). A stream too short for even one window (fewer than 2 rows) is a
 * {@linkcode DataError}, since training or evaluating on it would silently do nothing.
 *
 * @example
 * ```ts
 * import { batchify } from "./batches.ts";
 * const m = batchify(Uint32Array.from([0, 1, 2, 3, 4, 5, 6]), 2);
 * m.rows; // 3  (token 6 is cut)
 * Array.from(m.data); // [0, 3, 1, 4, 2, 5]  (column 0 = 0 1 2, column 1 = 3 4 5)
 * ```
 */
export function batchify(stream: Uint32Array, batchSize: number, name = "stream"): TokenMatrix {
  positiveInt("batchify: batchSize", batchSize);
  const rows = Math.floor(stream.length / batchSize);
  if (rows < 2) {
    throw new DataError(
      `${name} has ${stream.length} tokens, too few for batch size ${batchSize} ` +
        `(need at least ${2 * batchSize}: 2 rows per column)`,
    );
  }
  const data = new Uint32Array(rows * batchSize);
  for (let j = 0; j < batchSize; j++) {
    const col = stream.subarray(j * rows, (j + 1) * rows);
    for (let r = 0; r < rows; r++) data[r * batchSize + j] = col[r];
  }
  return { data, rows, cols: batchSize };
}

/**
 * Fixed-length windows of the reference loop `for i in range(0, rows - 1, bptt)` with
 * `L = min(bptt, rows - 1 - i)`: `ceil((rows - 1) / bptt)` windows, the last one shorter when
 * `bptt` does not divide `rows - 1`. PTB train, B = 20, bptt = 35: 1,328 windows.
 *
 * @example
 * ```ts
 * import { bpttWindows } from "./batches.ts";
 * const m = { data: new Uint32Array(10 * 2), rows: 10, cols: 2 };
 * bpttWindows(m, 4).map((w) => [w.start, w.length]); // [[0, 4], [4, 4], [8, 1]]
 * ```
 */
export function bpttWindows(matrix: TokenMatrix, bptt: number): Window[] {
  positiveInt("bpttWindows: bptt", bptt);
  const out: Window[] = [];
  for (let i = 0; i < matrix.rows - 1; i += bptt) {
    out.push({ start: i, length: Math.min(bptt, matrix.rows - 1 - i), lrScale: 1 });
  }
  return out;
}

/** Options of {@linkcode awdWindows}; defaults are AWD-LSTM's. */
export interface AwdWindowOptions {
  /** Probability of using the full `bptt` as the base length (else `bptt / 2`). Default 0.95. */
  fullProb?: number;
  /** Standard deviation of the length around the base. Default 5. */
  sd?: number;
  /** Shortest sampled length. Default 5. */
  minLength?: number;
  /** Longest sampled length (a memory bound; AWD-MoS uses bptt + 20). Default bptt + 40. */
  maxLength?: number;
}

/**
 * AWD-LSTM variable-length windows (spec §2.3): per step, base = `bptt` with probability 0.95
 * else `bptt / 2`; sampled length = `clamp(floor(N(base, 5)), 5, bptt + 40)`;
 * `lrScale = sampled / bptt`; the window is then cut at the end of the data. Steps continue
 * while `start < rows - 2`, as in the reference `while i < rows - 1 - 1`, so no window is shorter
 * than 2 steps unless the sampled length is.
 *
 * The length is truncated (`int()` in the reference), not rounded: for these positive lengths
 * that is floor. Reproducible: the same `rng` state gives the same windows.
 *
 * @example
 * ```ts
 * import { awdWindows } from "./batches.ts";
 * import { Rng } from "./rng.ts";
 * const m = { data: new Uint32Array(1000 * 4), rows: 1000, cols: 4 };
 * const ws = awdWindows(m, 70, new Rng(141));
 * ws[0].start; // 0
 * ws[1].start === ws[0].length; // true
 * ```
 */
export function awdWindows(
  matrix: TokenMatrix,
  bptt: number,
  rng: Rng,
  options: AwdWindowOptions = {},
): Window[] {
  positiveInt("awdWindows: bptt", bptt);
  const fullProb = options.fullProb ?? 0.95;
  const sd = options.sd ?? 5;
  const minLength = options.minLength ?? 5;
  const maxLength = options.maxLength ?? bptt + 40;
  if (!(fullProb >= 0 && fullProb <= 1)) {
    throw new RangeError(`awdWindows: fullProb must be in [0, 1], got ${fullProb}`);
  }
  if (!(sd >= 0) || !Number.isFinite(sd)) {
    throw new RangeError(`awdWindows: sd must be finite and >= 0, got ${sd}`);
  }
  positiveInt("awdWindows: minLength", minLength);
  positiveInt("awdWindows: maxLength", maxLength);
  if (maxLength < minLength) {
    throw new RangeError(`awdWindows: maxLength ${maxLength} < minLength ${minLength}`);
  }
  const out: Window[] = [];
  for (let i = 0; i < matrix.rows - 2;) {
    const base = rng.uniform() < fullProb ? bptt : bptt / 2;
    const sampled = Math.min(maxLength, Math.max(minLength, Math.floor(rng.normal(base, sd))));
    out.push({ start: i, length: Math.min(sampled, matrix.rows - 1 - i), lrScale: sampled / bptt });
    i += sampled;
  }
  return out;
}

/**
 * Input and target token ids of a window: `input: [L, B]` = rows `start .. start+L-1`,
 * `target: [L, B]` = rows `start+1 .. start+L`, both row-major. They are views into
 * `matrix.data` (no copy): do not write to them.
 *
 * @example
 * ```ts
 * import { batchify, windowTokens } from "./batches.ts";
 * const m = batchify(Uint32Array.from([0, 1, 2, 3, 4, 5]), 2); // columns 0 1 2 | 3 4 5
 * const { input, target } = windowTokens(m, { start: 0, length: 2, lrScale: 1 });
 * Array.from(input); // [0, 3, 1, 4]
 * Array.from(target); // [1, 4, 2, 5]
 * ```
 */
export function windowTokens(
  matrix: TokenMatrix,
  w: Window,
): { input: Uint32Array; target: Uint32Array } {
  const { start, length } = w;
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 1) {
    throw new RangeError(`windowTokens: bad window start ${start}, length ${length}`);
  }
  if (start + length + 1 > matrix.rows) {
    throw new RangeError(
      `windowTokens: window rows ${start}..${start + length} (targets included) exceed ` +
        `the matrix's ${matrix.rows} rows`,
    );
  }
  const B = matrix.cols;
  return {
    input: matrix.data.subarray(start * B, (start + length) * B),
    target: matrix.data.subarray((start + 1) * B, (start + 1 + length) * B),
  };
}

/**
 * Columns `[start, start + width)` of a window's ids `[T, cols]` (row-major), as `[T, width]`:
 * a column slice of the batch (gradient accumulation, `--small-batch-size`).
 *
 * @example
 * ```ts
 * import { sliceColumns } from "./batches.ts";
 * sliceColumns(Uint32Array.of(1, 2, 3, 4, 5, 6), 3, 1, 2); // [2, 3, 5, 6]
 * ```
 */
export function sliceColumns(
  ids: Uint32Array,
  cols: number,
  start: number,
  width: number,
): Uint32Array {
  if (ids.length % cols !== 0 || start < 0 || width < 1 || start + width > cols) {
    throw new RangeError(
      `sliceColumns: columns ${start}..${start + width} of ${ids.length} ids in ${cols} columns`,
    );
  }
  const T = ids.length / cols;
  const out = new Uint32Array(T * width);
  for (let t = 0; t < T; t++) {
    out.set(ids.subarray(t * cols + start, t * cols + start + width), t * width);
  }
  return out;
}
