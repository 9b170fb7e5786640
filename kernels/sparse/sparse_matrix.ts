/**
 * Sparse weight storage: CSR with a transposed index, stored only for active entries.
 *
 * Layout, for a weight `W: [rows, cols]` whose rows are split into row blocks `blocks` (an
 * LSTM's `[i, f, g, o]` blocks of `H` rows each; `[rows]` for a plain matrix):
 *
 * - `rowPtr: u32 [rows + 1]`: entries of row `r` are positions `rowPtr[r] .. rowPtr[r + 1]`;
 *   `rowPtr[rows] = nnz`. A gate block's entries are therefore one contiguous range.
 * - `colIdx: u32 [nnz]`: column of each entry, strictly ascending within a row.
 * - `values: f32 [nnz]`: the weights. Gradients and optimizer state of a sparse weight are
 *   `[nnz]` arrays aligned with `values` (position `p` everywhere means the same weight).
 * - Transposed index, for the data gradient `dX = dY · W`: `colPtr: u32 [cols + 1]`, and per
 *   column-major entry `q`, `rowIdxT[q]` (its row, ascending within a column) and `permT[q]`
 *   (its position in `values`). Values are never duplicated, so an optimizer step needs no
 *   re-sync.
 *
 * Why CSR (and not ELL or blocks): the methods here (magnitude removal, random or gradient
 * growth) produce unstructured patterns whose row lengths vary with training, and gate blocks
 * must stay addressable as ranges; ELL would pad every row to the longest one, and blocks
 * would change the methods. Measured on the RNN shapes in `bench/sparse.ts`.
 *
 * `nnz` is exact and known on the host: every topology change states how many entries it
 * removes and adds, so nothing is read back to learn a size. `budget` is the parameter budget
 * of the tensor (the count its method keeps; DSR moves budget between tensors).
 *
 * Arrays of a matrix with `nnz = 0` still hold one element (WebGPU has no empty bindings);
 * kernels never read past `nnz`.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { ShapeError, type Tensor } from "../runtime/tensor.ts";

/** A sparse weight on the GPU (see the module doc for the layout). */
export interface SparseMatrix {
  /** Dense shape `[rows, cols]`. */
  readonly rows: number;
  readonly cols: number;
  /** Rows of each row block (LSTM gates, RHN `[H; T]`, ...), summing to `rows`. */
  readonly blocks: readonly number[];
  /** Active entries (exact). */
  readonly nnz: number;
  /** Parameter budget of this tensor. */
  readonly budget: number;
  readonly rowPtr: Tensor<"u32">;
  readonly colIdx: Tensor<"u32">;
  readonly values: Tensor<"f32">;
  readonly colPtr: Tensor<"u32">;
  readonly rowIdxT: Tensor<"u32">;
  readonly permT: Tensor<"u32">;
}

/** Host-side CSR arrays (row-major entry order, columns ascending in each row). */
export interface HostCsr {
  rows: number;
  cols: number;
  rowPtr: Uint32Array;
  colIdx: Uint32Array;
  values: Float32Array;
}

/** Host-side transposed index of a {@linkcode HostCsr}. */
export interface HostCsrTranspose {
  colPtr: Uint32Array;
  rowIdxT: Uint32Array;
  permT: Uint32Array;
}

/** Length of a GPU array holding `n` entries (never 0, see the module doc). */
export function storedLength(n: number): number {
  return Math.max(1, n);
}

/**
 * Checks a host CSR: `rowPtr` monotone from 0 to `nnz`, columns in range and strictly
 * ascending within each row, arrays of matching lengths. Throws ShapeError naming the first
 * violation.
 *
 * @example
 * ```ts
 * import { validateHostCsr } from "./sparse_matrix.ts";
 * validateHostCsr({
 *   rows: 2, cols: 3,
 *   rowPtr: new Uint32Array([0, 1, 3]),
 *   colIdx: new Uint32Array([2, 0, 1]),
 *   values: new Float32Array([1, 2, 3]),
 * }); // ok
 * ```
 */
export function validateHostCsr(csr: HostCsr): void {
  const { rows, cols, rowPtr, colIdx, values } = csr;
  if (rowPtr.length !== rows + 1) {
    throw new ShapeError(`csr rowPtr: expected ${rows + 1} entries, got ${rowPtr.length}`);
  }
  const nnz = rowPtr[rows];
  if (rowPtr[0] !== 0) throw new ShapeError(`csr rowPtr[0] must be 0, got ${rowPtr[0]}`);
  if (colIdx.length !== nnz || values.length !== nnz) {
    throw new ShapeError(
      `csr: rowPtr says ${nnz} entries, colIdx has ${colIdx.length} and values ${values.length}`,
    );
  }
  for (let r = 0; r < rows; r++) {
    if (rowPtr[r + 1] < rowPtr[r]) {
      throw new ShapeError(`csr rowPtr decreases at row ${r}: ${rowPtr[r]} > ${rowPtr[r + 1]}`);
    }
    for (let p = rowPtr[r]; p < rowPtr[r + 1]; p++) {
      if (colIdx[p] >= cols) {
        throw new ShapeError(`csr row ${r}: column ${colIdx[p]} out of range [0, ${cols})`);
      }
      if (p > rowPtr[r] && colIdx[p] <= colIdx[p - 1]) {
        throw new ShapeError(`csr row ${r}: columns not strictly ascending at entry ${p}`);
      }
    }
  }
}

/**
 * The transposed index of a host CSR: entries in column-major order, rows ascending within a
 * column (a stable counting sort by column).
 *
 * @example
 * ```ts
 * import { hostTranspose } from "./sparse_matrix.ts";
 * const t = hostTranspose({
 *   rows: 2, cols: 2,
 *   rowPtr: new Uint32Array([0, 2, 3]),
 *   colIdx: new Uint32Array([0, 1, 1]),
 *   values: new Float32Array([1, 2, 3]),
 * });
 * Array.from(t.permT); // [0, 1, 2]: column 0 holds entry 0, column 1 entries 1 then 2
 * ```
 */
export function hostTranspose(csr: HostCsr): HostCsrTranspose {
  const { rows, cols, rowPtr, colIdx } = csr;
  const nnz = rowPtr[rows];
  const colPtr = new Uint32Array(cols + 1);
  for (let p = 0; p < nnz; p++) colPtr[colIdx[p] + 1]++;
  for (let c = 0; c < cols; c++) colPtr[c + 1] += colPtr[c];
  const fill = colPtr.slice(0, cols);
  const rowIdxT = new Uint32Array(nnz);
  const permT = new Uint32Array(nnz);
  for (let r = 0; r < rows; r++) {
    for (let p = rowPtr[r]; p < rowPtr[r + 1]; p++) {
      const q = fill[colIdx[p]]++;
      rowIdxT[q] = r;
      permT[q] = p;
    }
  }
  return { colPtr, rowIdxT, permT };
}

/**
 * Uploads a host CSR (validated; transposed index computed on the host) as a
 * {@linkcode SparseMatrix}. For tests, checkpoints and initial topologies built on the host;
 * training-time topology changes stay on the GPU.
 *
 * @example
 * ```ts ignore
 * const w = uploadSparse(gpu, csr, { blocks: [5, 5, 5, 5], budget: csr.rowPtr[csr.rows] });
 * ```
 */
export function uploadSparse(
  gpu: Gpu,
  csr: HostCsr,
  options: { blocks?: readonly number[]; budget?: number } = {},
): SparseMatrix {
  validateHostCsr(csr);
  const blocks = checkBlocks("sparse matrix", csr.rows, options.blocks);
  const nnz = csr.rowPtr[csr.rows];
  const t = hostTranspose(csr);
  const len = storedLength(nnz);
  const pad = <T extends Uint32Array | Float32Array>(a: T): T => {
    if (a.length === len) return a;
    const out = new (a.constructor as { new (n: number): T })(len);
    out.set(a);
    return out;
  };
  return {
    rows: csr.rows,
    cols: csr.cols,
    blocks,
    nnz,
    budget: options.budget ?? nnz,
    rowPtr: gpu.upload([csr.rows + 1], csr.rowPtr, "u32"),
    colIdx: gpu.upload([len], pad(csr.colIdx), "u32"),
    values: gpu.upload([len], pad(csr.values), "f32"),
    colPtr: gpu.upload([csr.cols + 1], t.colPtr, "u32"),
    rowIdxT: gpu.upload([len], pad(t.rowIdxT), "u32"),
    permT: gpu.upload([len], pad(t.permT), "u32"),
  };
}

/**
 * Host CSR of a dense row-major matrix restricted to a 0/1 mask (entries where `mask != 0`;
 * the value may be 0). The CPU oracle of the GPU conversions.
 *
 * @example
 * ```ts
 * import { hostCsrFromMask } from "./sparse_matrix.ts";
 * const c = hostCsrFromMask(2, 2, [1, 2, 3, 4], [1, 0, 0, 1]);
 * Array.from(c.values); // [1, 4]
 * ```
 */
export function hostCsrFromMask(
  rows: number,
  cols: number,
  dense: ArrayLike<number>,
  mask: ArrayLike<number>,
): HostCsr {
  if (dense.length !== rows * cols || mask.length !== rows * cols) {
    throw new ShapeError(
      `csr from mask: expected ${rows * cols} entries, got dense ${dense.length}, ` +
        `mask ${mask.length}`,
    );
  }
  const rowPtr = new Uint32Array(rows + 1);
  const cIdx: number[] = [];
  const vals: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if (mask[r * cols + c] !== 0) {
        cIdx.push(c);
        vals.push(dense[r * cols + c]);
      }
    }
    rowPtr[r + 1] = cIdx.length;
  }
  return {
    rows,
    cols,
    rowPtr,
    colIdx: Uint32Array.from(cIdx),
    values: Float32Array.from(vals),
  };
}

/** Releases every array of a sparse matrix back to the pool. */
export function releaseSparse(gpu: Gpu, w: SparseMatrix): void {
  for (const t of [w.rowPtr, w.colIdx, w.values, w.colPtr, w.rowIdxT, w.permT]) gpu.release(t);
}

/**
 * Checks a sparse weight before a kernel reads or writes it: positive dims, an nnz that fits,
 * and every array with its dtype and at least the length its dims and nnz imply (pooled arrays
 * may be longer). Throws {@linkcode ShapeError} naming the first bad field. Shared by every
 * sparse launcher.
 *
 * @example
 * ```ts ignore
 * checkSparse("sddmm", w); // before any dispatch that reads w
 * ```
 */
export function checkSparse(what: string, w: SparseMatrix): void {
  if (!Number.isInteger(w.rows) || !Number.isInteger(w.cols) || w.rows < 1 || w.cols < 1) {
    throw new ShapeError(
      `${what} w: expected a matrix [rows, cols] with rows, cols >= 1, got [${w.rows}, ${w.cols}]`,
    );
  }
  if (!Number.isInteger(w.nnz) || w.nnz < 0 || w.nnz > w.rows * w.cols) {
    throw new ShapeError(`${what} w: nnz ${w.nnz} is not an integer in [0, ${w.rows * w.cols}]`);
  }
  const len = storedLength(w.nnz);
  const want: [string, Tensor, number, string][] = [
    ["rowPtr", w.rowPtr, w.rows + 1, "u32"],
    ["colIdx", w.colIdx, len, "u32"],
    ["values", w.values, len, "f32"],
    ["colPtr", w.colPtr, w.cols + 1, "u32"],
    ["rowIdxT", w.rowIdxT, len, "u32"],
    ["permT", w.permT, len, "u32"],
  ];
  for (const [name, t, n, dtype] of want) {
    if (t.dtype !== dtype || t.size < n) {
      throw new ShapeError(
        `${what}: w.${name} must be ${dtype} with at least ${n} elements ` +
          `(w is [${w.rows}, ${w.cols}], nnz ${w.nnz}), got ${t}`,
      );
    }
  }
}

/**
 * Checks row blocks against a row count (positive integers summing to `rows`) and returns
 * them; absent means one block of all rows. Throws {@linkcode ShapeError}.
 *
 * @example
 * ```ts
 * import { checkBlocks } from "./sparse_matrix.ts";
 * checkBlocks("w", 8, [2, 6]); // [2, 6]
 * ```
 */
export function checkBlocks(
  what: string,
  rows: number,
  blocks: readonly number[] = [rows],
): readonly number[] {
  if (
    blocks.length === 0 || blocks.some((b) => !Number.isInteger(b) || b < 1) ||
    blocks.reduce((a, b) => a + b, 0) !== rows
  ) {
    throw new ShapeError(
      `${what}: row blocks [${blocks.join(", ")}] do not split its ${rows} rows`,
    );
  }
  return blocks;
}
