/**
 * GPU conversions between a dense weight plus 0/1 mask and the sparse format of
 * `sparse_matrix.ts` (CSR + transposed index), and moves of per-entry data between the two
 * layouts (optimizer state through a topology update).
 *
 * Method: stream compaction by prefix sum. A dense u32 flag map of the active entries is scanned
 * ({@linkcode exclusiveScanU32}); the scan of the row-major map gives every active entry its CSR
 * position (and `rowPtr[r]` = position of `(r, 0)`), the scan of the column-major map its
 * transposed position (and `colPtr[c]`). Every kernel is one thread per dense element or per
 * entry with no data-dependent loops (an entry finds its row by binary search in `rowPtr`),
 * except that on CPU rasterisers scatters and gathers walk each row's entries in one thread
 * (at most `cols` iterations, kept under the software loop budget); the results depend on
 * nothing but the pattern: columns ascend within a row, rows within a column, and no atomics
 * are involved.
 *
 * Memory: mask → sparse conversions need two dense u32 scratch maps (`[rows · cols]` and
 * `[rows · cols + 1]`) from the pool, released after recording. That is acceptable because they
 * run only at topology updates and setup; the limit is that `rows · cols + 1` u32 must fit one
 * storage binding (launchers check it and throw {@linkcode ShapeError}). Scatters and gathers
 * need no scratch (`models/weight_ops.ts` expands weights with them inside training steps).
 *
 * @module
 */

import { checkOverlap } from "../runtime/alias.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { type Gpu, gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import { exclusiveScanU32 } from "./scan.ts";
import { SOFTWARE_LOOP_BUDGET } from "../runtime/device.ts";
import { checkBlocks, checkSparse, type SparseMatrix, storedLength } from "./sparse_matrix.ts";
import { expectShape, expectSize, fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";

const WG = 256;

const HEAD = `${LINEAR_INDEX_WGSL}
const WG: u32 = ${WG}u;`;
const MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);`;

// Row of entry p: the largest r < rows with rowPtr[r] <= p (skips empty rows, whose rowPtr
// equals the next row's). At most ceil(log2(rows)) + 1 iterations.
const ROW_OF_WGSL = `
fn row_of(p: u32) -> u32 {
  var lo: u32 = 0u;
  var hi: u32 = P.rows;
  loop {
    if (hi - lo <= 1u) { break; }
    let mid = (lo + hi) >> 1u;
    if (rowPtr[P.off_rowPtr + mid] <= p) { lo = mid; } else { hi = mid; }
  }
  return lo;
}`;

// flags[i] = 1 where mask[i] != 0.
const FLAGS: KernelSpec = {
  name: "sparse_mask_flags",
  bindings: [
    { name: "mask", dtype: "f32", access: "read" },
    { name: "flags", dtype: "u32", access: "read_write" },
  ],
  params: [["n", "u32"]],
  body: `${HEAD}
${MAIN}
  if (i >= P.n) { return; }
  flags[P.off_flags + i] = select(0u, 1u, mask[P.off_mask + i] != 0.0);
}`,
};

// dst[k] = src[k * stride] for k < count: rowPtr from the row-major positions, colPtr from the
// column-major ones (the position of each row's or column's first dense element).
const PICK: KernelSpec = {
  name: "sparse_strided_pick",
  bindings: [
    { name: "src", dtype: "u32", access: "read" },
    { name: "dst", dtype: "u32", access: "read_write" },
  ],
  params: [["count", "u32"], ["stride", "u32"]],
  body: `${HEAD}
${MAIN}
  if (i >= P.count) { return; }
  dst[P.off_dst + i] = src[P.off_src + i * P.stride];
}`,
};

// Active dense element i goes to CSR position pos[i]. `cap` guards the arrays against a wrong
// caller-stated nnz (the result is then wrong, but nothing is written out of bounds).
const COMPACT: KernelSpec = {
  name: "sparse_compact",
  bindings: [
    { name: "dense", dtype: "f32", access: "read" },
    { name: "mask", dtype: "f32", access: "read" },
    { name: "pos", dtype: "u32", access: "read" },
    { name: "colIdx", dtype: "u32", access: "read_write" },
    { name: "values", dtype: "f32", access: "read_write" },
  ],
  params: [["n", "u32"], ["cols", "u32"], ["cap", "u32"]],
  body: `${HEAD}
${MAIN}
  if (i >= P.n) { return; }
  if (mask[P.off_mask + i] == 0.0) { return; }
  let p = pos[P.off_pos + i];
  if (p >= P.cap) { return; }
  colIdx[P.off_colIdx + p] = i % P.cols;
  values[P.off_values + p] = dense[P.off_dense + i];
}`,
};

const ENTRY_BINDINGS = [
  { name: "rowPtr", dtype: "u32", access: "read" },
  { name: "colIdx", dtype: "u32", access: "read" },
] as const;

// Marks entry (r, c) in the column-major flag map [cols, rows].
const MARK_T: KernelSpec = {
  name: "sparse_mark_transposed",
  bindings: [...ENTRY_BINDINGS, { name: "flags", dtype: "u32", access: "read_write" }],
  params: [["nnz", "u32"], ["rows", "u32"], ["cols", "u32"]],
  body: `${HEAD}
${ROW_OF_WGSL}
${MAIN}
  if (i >= P.nnz) { return; }
  let c = colIdx[P.off_colIdx + i];
  if (c >= P.cols) { return; }
  flags[P.off_flags + c * P.rows + row_of(i)] = 1u;
}`,
};

// Entry p = (r, c) goes to transposed position posT[c * rows + r].
const PLACE_T: KernelSpec = {
  name: "sparse_place_transposed",
  bindings: [
    ...ENTRY_BINDINGS,
    { name: "posT", dtype: "u32", access: "read" },
    { name: "rowIdxT", dtype: "u32", access: "read_write" },
    { name: "permT", dtype: "u32", access: "read_write" },
  ],
  params: [["nnz", "u32"], ["rows", "u32"], ["cols", "u32"]],
  body: `${HEAD}
${ROW_OF_WGSL}
${MAIN}
  if (i >= P.nnz) { return; }
  let c = colIdx[P.off_colIdx + i];
  if (c >= P.cols) { return; }
  let r = row_of(i);
  let q = posT[P.off_posT + c * P.rows + r];
  if (q >= P.nnz) { return; }
  rowIdxT[P.off_rowIdxT + q] = r;
  permT[P.off_permT + q] = i;
}`,
};

/**
 * A kernel over the entries of a CSR, `body(r, p)` being the WGSL for entry `p` of row `r`: one
 * thread per entry that finds its row by binary search (GPUs), or with `rowWise` one thread per
 * row walking its entries. CPU rasterisers take the row-wise form, since there every load costs
 * ~1-2 ns per lane and the search's ~log2(rows) loads dominated: `sparseToDense` of [6000, 1500]
 * at d = 0.33 took 58 ms. A row has at most `cols` entries, which the launcher keeps within the
 * software loop budget.
 */
function entryKernel(
  name: string,
  dtype: "f32" | "u32",
  body: (r: string, p: string) => string,
  rowWise: boolean,
  opts: { constants?: KernelSpec["constants"]; extra?: KernelSpec["bindings"] } = {},
): KernelSpec {
  const main = rowWise
    ? `  if (i >= P.rows) { return; }
  let end = rowPtr[P.off_rowPtr + i + 1u];
  for (var p = rowPtr[P.off_rowPtr + i]; p < end; p = p + 1u) {
${body("i", "p")}
  }`
    : `  if (i >= P.nnz) { return; }
  let r = row_of(i);
${body("r", "i")}`;
  return {
    name: `${name}_${dtype}${rowWise ? "_rows" : ""}`,
    bindings: [
      ...ENTRY_BINDINGS,
      ...opts.extra ?? [],
      { name: "src", dtype, access: "read" },
      { name: "dst", dtype, access: "read_write" },
    ],
    params: [["nnz", "u32"], ["rows", "u32"], ["cols", "u32"]],
    constants: opts.constants,
    body: `${HEAD}
${rowWise ? "" : ROW_OF_WGSL}
${MAIN}
${main}
}`,
  };
}

// dst[r, colIdx[p]] = src[p] (or 1 with ONES) over a dst cleared beforehand, skipping entries
// whose remove[p] flag is set when KEPT. Pure copies, so the u32 variant carries per-entry
// counters (SNT-ASGD's step counts) the same way.
const scatterSpec = (ones: boolean, kept: boolean, dtype: "f32" | "u32", rowWise: boolean) =>
  entryKernel(
    `sparse_scatter${ones ? "_ones" : ""}${kept ? "_kept" : ""}`,
    dtype,
    (r, p) =>
      `    let c = colIdx[P.off_colIdx + ${p}];
    if (c < P.cols${kept ? ` && remove[P.off_remove + ${p}] == 0u` : ""}) {
      var v: ${dtype} = ${dtype === "f32" ? "1.0" : "1u"};
      if (!ONES) { v = src[P.off_src + ${p}]; }
      dst[P.off_dst + ${r} * P.cols + c] = v;
    }`,
    rowWise,
    {
      constants: { ONES: ones },
      extra: kept ? [{ name: "remove", dtype: "u32", access: "read" }] : [],
    },
  );

// dst[p] = src[r, colIdx[p]].
const gatherSpec = (dtype: "f32" | "u32", rowWise: boolean) =>
  entryKernel(
    "sparse_gather",
    dtype,
    (r, p) =>
      `    let c = colIdx[P.off_colIdx + ${p}];
    var v: ${dtype} = ${dtype === "f32" ? "0.0" : "0u"};
    if (c < P.cols) { v = src[P.off_src + ${r} * P.cols + c]; }
    dst[P.off_dst + ${p}] = v;`,
    rowWise,
  );

type EntryKind = "scatter" | "scatter_ones" | "scatter_kept" | "scatter_ones_kept" | "gather";

/** Specs by `${kind}:${dtype}:${rowWise}`, generated once. */
const ENTRY_SPECS = new Map<string, KernelSpec>();

function entrySpec(kind: EntryKind, dtype: "f32" | "u32", rowWise: boolean): KernelSpec {
  const key = `${kind}:${dtype}:${rowWise}`;
  let spec = ENTRY_SPECS.get(key);
  if (!spec) {
    spec = kind === "gather"
      ? gatherSpec(dtype, rowWise)
      : scatterSpec(kind.includes("ones"), kind.endsWith("kept"), dtype, rowWise);
    ENTRY_SPECS.set(key, spec);
  }
  return spec;
}

/** Records one entry kernel over `w` (plus `extra` bindings such as `remove`). */
function runEntryKernel(
  gpu: Gpu,
  kind: EntryKind,
  w: SparseMatrix,
  tensors: { src: Tensor; dst: Tensor; remove?: Tensor },
): void {
  const dtype = kind.includes("ones") ? "f32" : tensors.dst.dtype as "f32" | "u32";
  const bound: Record<string, Tensor> = { rowPtr: w.rowPtr, colIdx: w.colIdx, ...tensors };
  const byRow = rowWise(gpu, w);
  gpu.run(
    entrySpec(kind, dtype, byRow),
    bound,
    { nnz: w.nnz, rows: w.rows, cols: w.cols },
    byRow ? gridFor(w.rows, WG) : entryGrid(w.nnz),
  );
}

/** Row-wise entry kernels on CPU rasterisers, where a row's loop fits the loop budget. */
function rowWise(gpu: Gpu, w: SparseMatrix): boolean {
  return gpu.variant === "regblock" && w.cols + 8 <= SOFTWARE_LOOP_BUDGET;
}

// ------------------------------------------------------------------------------ validation

function checkDims(what: string, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1) {
    throw new ShapeError(
      `${what}: expected a matrix [rows, cols] with rows, cols >= 1, got ` +
        `[${rows}, ${cols}]`,
    );
  }
}

/** The dense scratch maps of `elements` entries need `elements + 1` u32 in one binding. */
function checkScratch(gpu: Gpu, what: string, elements: number, shape: readonly number[]): void {
  const { maxBufferSize, maxStorageBufferBindingSize } = gpu.report.limits;
  const limit = Math.min(maxBufferSize, maxStorageBufferBindingSize);
  const bytes = (elements + 1) * 4;
  if (bytes > limit || elements + 1 >= 0xffffffff) {
    throw new ShapeError(
      `${what}: ${fmtShape(shape)} needs a position map of ${elements + 1} u32 ` +
        `(${bytes} bytes), over this device's storage buffer limit of ${limit} bytes ` +
        `(and u32 indexing)`,
    );
  }
}

function sparseArrays(w: SparseMatrix): Record<string, Tensor> {
  return {
    "w.rowPtr": w.rowPtr,
    "w.colIdx": w.colIdx,
    "w.values": w.values,
    "w.colPtr": w.colPtr,
    "w.rowIdxT": w.rowIdxT,
    "w.permT": w.permT,
  };
}

function entryGrid(nnz: number) {
  return gridFor(nnz, WG);
}

// ------------------------------------------------------------------------------ launchers

/** Arguments of {@linkcode sparseFromMask}. */
export interface SparseFromMaskArgs {
  /** Dense weight, `[rows, cols]` row-major; f32. */
  dense: Tensor<"f32">;
  /** 0/1 mask, `[rows, cols]`; f32. Entry `(r, c)` is active when `mask[r, c] != 0`. */
  mask: Tensor<"f32">;
  /**
   * Exact number of active mask entries, stated by the caller (nothing is read back). A wrong
   * value is the caller's bug: the matrix is then wrong (entries past the arrays are dropped,
   * missing ones left unwritten). Tests and setup code can get it from {@linkcode countNonzero}.
   */
  nnz: number;
  /** Rows of each row block (LSTM gates, ...), summing to `rows`. Default one block. */
  blocks?: readonly number[];
  /** Parameter budget of the tensor; default `nnz`. */
  budget?: number;
}

/**
 * Records the conversion of `dense` restricted to `mask` into a new {@linkcode SparseMatrix}
 * (arrays from the pool; free with `releaseSparse`): CSR with columns ascending per row, and the
 * transposed index with rows ascending per column. Entries keep their dense value, zeros
 * included. Equals `uploadSparse(hostCsrFromMask(...))` exactly, with no readback.
 *
 * Uses two dense u32 scratch maps (`[rows · cols (+ 1)]`, see the module doc); meant for setup
 * and topology updates, not training steps.
 *
 * @example
 * ```ts ignore
 * const nnz = await countNonzero(gpu, mask); // or known from the topology method
 * const w = sparseFromMask(gpu, { dense, mask, nnz, blocks: [H, H, H, H] });
 * ```
 */
export function sparseFromMask(gpu: Gpu, args: SparseFromMaskArgs): SparseMatrix {
  const { dense, mask, nnz } = args;
  const budget = args.budget ?? nnz;
  if (dense.dtype !== "f32" || dense.shape.length !== 2) {
    throw new ShapeError(
      `sparseFromMask dense: expected an f32 matrix [rows, cols], got ${dense.dtype} ` +
        fmtShape(dense.shape),
    );
  }
  const [rows, cols] = dense.shape;
  checkDims("sparseFromMask dense", rows, cols);
  expectShape("sparseFromMask mask", mask, [rows, cols], "f32");
  const n = rows * cols;
  if (!Number.isInteger(nnz) || nnz < 0 || nnz > n) {
    throw new ShapeError(
      `sparseFromMask nnz: expected an integer in [0, ${n}] for [${rows}, ${cols}], got ${nnz}`,
    );
  }
  const blocks = checkBlocks("sparseFromMask", rows, args.blocks);
  if (!Number.isInteger(budget) || budget < 0) {
    throw new ShapeError(`sparseFromMask budget: expected an integer >= 0, got ${budget}`);
  }
  checkScratch(gpu, "sparseFromMask", n, [rows, cols]);

  const len = storedLength(nnz);
  // With nnz = 0 the padding elements are never written; zero them for reproducible contents.
  const alloc = <D extends "u32" | "f32">(dtype: D) =>
    nnz === 0 ? gpu.zeros([len], dtype) : gpu.tensor([len], dtype);
  const w: SparseMatrix = {
    rows,
    cols,
    blocks,
    nnz,
    budget,
    rowPtr: gpu.tensor([rows + 1], "u32"),
    colIdx: alloc("u32"),
    values: alloc("f32"),
    colPtr: gpu.tensor([cols + 1], "u32"),
    rowIdxT: alloc("u32"),
    permT: alloc("u32"),
  };

  const flags = gpu.tensor([n], "u32");
  const pos = gpu.tensor([n + 1], "u32");
  gpu.run(FLAGS, { mask, flags }, { n }, gridFor(n, WG));
  exclusiveScanU32(gpu, { input: flags, output: pos });
  gpu.run(
    PICK,
    { src: pos, dst: w.rowPtr },
    { count: rows + 1, stride: cols },
    gridFor(rows + 1, WG),
  );
  gpu.run(
    COMPACT,
    { dense, mask, pos, colIdx: w.colIdx, values: w.values },
    { n, cols, cap: nnz },
    gridFor(n, WG),
  );
  // Released after recording: later recordings that reuse them run after these dispatches.
  gpu.release(flags);
  gpu.release(pos);
  transposeInto(gpu, w);
  return w;
}

/** Records colPtr/rowIdxT/permT of `w` from its rowPtr/colIdx (no checks). */
function transposeInto(gpu: Gpu, w: SparseMatrix): void {
  const { rows, cols, nnz } = w;
  const n = rows * cols;
  const flagsT = gpu.zeros([n], "u32");
  const posT = gpu.tensor([n + 1], "u32");
  const entries = { rowPtr: w.rowPtr, colIdx: w.colIdx };
  const dims = { nnz, rows, cols };
  gpu.run(MARK_T, { ...entries, flags: flagsT }, dims, entryGrid(nnz));
  exclusiveScanU32(gpu, { input: flagsT, output: posT });
  gpu.run(
    PICK,
    { src: posT, dst: w.colPtr },
    { count: cols + 1, stride: rows },
    gridFor(cols + 1, WG),
  );
  gpu.run(
    PLACE_T,
    { ...entries, posT: posT, rowIdxT: w.rowIdxT, permT: w.permT },
    dims,
    entryGrid(nnz),
  );
  gpu.release(flagsT);
  gpu.release(posT);
}

/**
 * Records the recomputation of `w`'s transposed index (`colPtr`, `rowIdxT`, `permT`) from its
 * CSR (`rowPtr`, `colIdx`), rows ascending within each column: the step after a topology update
 * that rewrote the CSR on the GPU. `w.rowPtr`/`w.colIdx` must be a valid CSR with `w.nnz`
 * entries. Uses the same dense scratch as {@linkcode sparseFromMask}.
 *
 * @example
 * ```ts ignore
 * // ... kernels rewrote w.rowPtr / w.colIdx / w.values for a new topology ...
 * rebuildTranspose(gpu, w);
 * ```
 */
export function rebuildTranspose(gpu: Gpu, w: SparseMatrix): void {
  checkSparse("rebuildTranspose", w);
  checkScratch(gpu, "rebuildTranspose", w.rows * w.cols, [w.rows, w.cols]);
  checkOverlap(
    "rebuildTranspose",
    { "w.colPtr": w.colPtr, "w.rowIdxT": w.rowIdxT, "w.permT": w.permT },
    { "w.rowPtr": w.rowPtr, "w.colIdx": w.colIdx },
  );
  transposeInto(gpu, w);
}

/** `dst = 0`, then the entries' `src` values (or 1 with `ones`) at their dense positions. */
function scatter(gpu: Gpu, w: SparseMatrix, src: Tensor, dst: Tensor, ones: boolean): void {
  gpu.fill(dst, 0);
  runEntryKernel(gpu, ones ? "scatter_ones" : "scatter", w, { src, dst });
}

/** Arguments of {@linkcode sparseToDense} and {@linkcode sparseToMask}. */
export interface SparseToDenseArgs {
  w: SparseMatrix;
  /** Receives the dense matrix, `[rows, cols]`; f32. */
  out: Tensor<"f32">;
}

/**
 * Records `out = dense(w)`: `out[r, c]` = the entry's value where `(r, c)` is active, 0
 * elsewhere.
 *
 * @example
 * ```ts ignore
 * const dense = gpu.tensor([w.rows, w.cols]);
 * sparseToDense(gpu, { w, out: dense });
 * ```
 */
export function sparseToDense(gpu: Gpu, args: SparseToDenseArgs): void {
  const { w, out } = args;
  checkSparse("sparseToDense", w);
  expectShape("sparseToDense out", out, [w.rows, w.cols], "f32");
  checkOverlap("sparseToDense", { out }, sparseArrays(w));
  scatter(gpu, w, w.values, out, false);
}

/**
 * Records `out = mask(w)`: 1 where `(r, c)` is active, 0 elsewhere.
 *
 * @example
 * ```ts ignore
 * const mask = gpu.tensor([w.rows, w.cols]);
 * sparseToMask(gpu, { w, out: mask });
 * ```
 */
export function sparseToMask(gpu: Gpu, args: SparseToDenseArgs): void {
  const { w, out } = args;
  checkSparse("sparseToMask", w);
  expectShape("sparseToMask out", out, [w.rows, w.cols], "f32");
  checkOverlap("sparseToMask", { out }, sparseArrays(w));
  // src is not read with ONES; values only fills the binding.
  scatter(gpu, w, w.values, out, true);
}

/** Arguments of {@linkcode sparseScatter}. */
export interface SparseScatterArgs {
  w: SparseMatrix;
  /** Per-entry data aligned with `w.values`, `[storedLength(nnz)]`; f32 (or u32, as `dst`). */
  src: Tensor<"f32"> | Tensor<"u32">;
  /** Receives the dense layout, `[rows, cols]`; same dtype as `src`. */
  dst: Tensor<"f32"> | Tensor<"u32">;
}

/**
 * Records `dst = 0` then `dst[r, colIdx[p]] = src[p]` for every entry `p` of row `r`: per-entry
 * data (gradients, optimizer state) in the dense layout, e.g. to carry it through a topology
 * update with {@linkcode sparseGather}.
 *
 * @example
 * ```ts ignore
 * const denseM = gpu.tensor([w.rows, w.cols]);
 * sparseScatter(gpu, { w, src: adamM, dst: denseM });
 * ```
 */
export function sparseScatter(gpu: Gpu, args: SparseScatterArgs): void {
  const { w, src, dst } = args;
  checkSparse("sparseScatter", w);
  const dtype = src.dtype === "u32" ? "u32" : "f32";
  expectSize("sparseScatter src", src, storedLength(w.nnz), dtype);
  expectShape("sparseScatter dst", dst, [w.rows, w.cols], dtype);
  checkOverlap("sparseScatter", { dst }, { src, ...sparseArrays(w) });
  scatter(gpu, w, src, dst, false);
}

/** Arguments of {@linkcode sparseGather}. */
export interface SparseGatherArgs {
  w: SparseMatrix;
  /** Dense data, `[rows, cols]`; f32 (or u32, as `dst`). */
  src: Tensor<"f32"> | Tensor<"u32">;
  /** Receives per-entry data aligned with `w.values`, `[storedLength(nnz)]`; same dtype. */
  dst: Tensor<"f32"> | Tensor<"u32">;
}

/**
 * Records `dst[p] = src[r, colIdx[p]]` for every entry `p < nnz` of row `r` (the padding element
 * of an empty matrix is left as it is). Gathering into `w.values` itself is allowed.
 *
 * @example
 * ```ts ignore
 * sparseGather(gpu, { w: wNew, src: denseM, dst: adamMNew });
 * ```
 */
export function sparseGather(gpu: Gpu, args: SparseGatherArgs): void {
  const { w, src, dst } = args;
  checkSparse("sparseGather", w);
  const dtype = src.dtype === "u32" ? "u32" : "f32";
  expectShape("sparseGather src", src, [w.rows, w.cols], dtype);
  expectSize("sparseGather dst", dst, storedLength(w.nnz), dtype);
  const { "w.values": _values, ...indexArrays } = sparseArrays(w);
  checkOverlap("sparseGather", { dst }, { src, ...indexArrays });
  runEntryKernel(gpu, "gather", w, { src, dst });
}

/** Arguments of {@linkcode sparseScatterKept}. */
export interface SparseScatterKeptArgs {
  w: SparseMatrix;
  /** u32 `[storedLength(nnz)]` aligned with `w.values`: entries with a nonzero flag are skipped. */
  remove: Tensor<"u32">;
  /** Per-entry f32 data aligned with `w.values`, or `null` to write 1 (a mask). */
  src: Tensor<"f32"> | null;
  /** Receives the dense layout, `[rows, cols]`; f32. */
  dst: Tensor<"f32">;
}

/**
 * {@linkcode sparseScatter} (or {@linkcode sparseToMask} when `src` is null) restricted to the
 * entries whose `remove[p]` flag is 0: the kept part of a topology update, in dense layout.
 *
 * @example
 * ```ts ignore
 * sparseScatterKept(gpu, { w, remove, src: null, dst: keptMask });
 * ```
 */
export function sparseScatterKept(gpu: Gpu, args: SparseScatterKeptArgs): void {
  const { w, remove, src, dst } = args;
  checkSparse("sparseScatterKept", w);
  expectSize("sparseScatterKept remove", remove, storedLength(w.nnz), "u32");
  if (src) expectSize("sparseScatterKept src", src, storedLength(w.nnz), "f32");
  expectShape("sparseScatterKept dst", dst, [w.rows, w.cols], "f32");
  checkOverlap("sparseScatterKept", { dst }, { remove, src: src ?? undefined, ...sparseArrays(w) });
  gpu.fill(dst, 0);
  // src is not read without it; values only fills the binding.
  runEntryKernel(gpu, src ? "scatter_kept" : "scatter_ones_kept", w, {
    src: src ?? w.values,
    dst,
    remove,
  });
}

/**
 * Counts the entries of `mask` (any shape, f32) that are != 0, on the GPU, with one readback:
 * the `nnz` for {@linkcode sparseFromMask} in setup code and tests (topology updates know their
 * counts without reading back). Uses two `[size]` u32 scratch tensors.
 *
 * @example
 * ```ts ignore
 * const nnz = await countNonzero(gpu, mask);
 * ```
 */
export async function countNonzero(gpu: Gpu, mask: Tensor<"f32">): Promise<number> {
  if (mask.dtype !== "f32") {
    throw new ShapeError(`countNonzero mask: expected dtype f32, got ${mask.dtype} ${mask}`);
  }
  const n = mask.size;
  checkScratch(gpu, "countNonzero", n, mask.shape);
  const flags = gpu.tensor([n], "u32");
  const pos = gpu.tensor([n + 1], "u32");
  gpu.run(FLAGS, { mask, flags }, { n }, gridFor(n, WG));
  exclusiveScanU32(gpu, { input: flags, output: pos });
  const total = await gpu.read(pos.view(n, [1]));
  gpu.release(flags);
  gpu.release(pos);
  return total[0];
}
