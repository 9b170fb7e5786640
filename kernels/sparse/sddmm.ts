/**
 * Sampled dense × dense product (SDDMM): the weight gradient of a sparse weight at its active
 * entries only. For each stored entry `p` at `(r, c)` of `W: [N, K]`:
 *
 *   out[p] = α·Σ_m dy[m, r]·x[m, c] + β·out[p]      (dy: [M, N], x: [M, K], out: [nnz])
 *
 * i.e. `(dyᵀ·x)[r, c]` sampled at the pattern, aligned with `w.values` (the masked-dense
 * gradient `(dyᵀ·x) ⊙ mask` without computing the inactive entries).
 *
 * Variants (`gpu.variant`), both one workgroup per weight row `r`, lanes over its entries:
 * - `regblock`: barrier-free; each lane owns `E` entries of row `r` and, per batch row `m`,
 *   loads `dy[m, r]` once for all of them and gathers `x[m, c]` for each (the irreducible cost:
 *   ~1 ns per gather on llvmpipe, so ≈ nnz·M ns; measured 0.83-1.26 s at dy [700, 6000],
 *   x [700, 1500], d = 0.1, vs 0.95-1.35 s for the dense `dyᵀ·x` in the same runs).
 * - `tiled`: `dy[m0 .. m0 + 64, r]` is staged in shared memory by the workgroup, then each lane
 *   accumulates its entry against the staged slice.
 * - `transposed` operands (`dyᵀ: [N, M]`, `xᵀ: [K, M]`, batch rows contiguous; any variant,
 *   barrier-free): threads own `E` consecutive entries of the CSR order (all of one row, or the
 *   tail of one row and the head of the next), and walk M four batch rows at a time: one vec4
 *   `dyᵀ[r, m..m+3]` serves all `E` entries, each of which adds one vec4 `xᵀ[c, m..m+3]`, i.e.
 *   (1 + E)/(4E) loads per FMA instead of ~1 strided scalar gather, and both streams are
 *   sequential in memory. Transposing first (`transpose` in transpose.ts) costs a few ms.
 *   Measured on llvmpipe (2 busy cores) at dyᵀ [6000, 700], xᵀ [1500, 700]: 1.43 s at
 *   d = 0.33 and 0.51 s at d = 0.1, vs 0.86 s for the dense `dyᵀ·x` (`matmul` TN) in the same
 *   run; the dense kernel needs ~8x fewer loads per FMA, so above d ≈ 0.2 the dense product
 *   sampled at the pattern ({@linkcode sampleDense}) is the faster route there.
 *
 * Per-thread loop counts grow like `M · longest row / entries per pass`; when that could pass
 * llvmpipe's loop budget, the launcher splits M into chunks accumulated with β = 1.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { SOFTWARE_LOOP_BUDGET } from "../runtime/device.ts";
import { expectShape, expectSize, fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";
import { checkOverlap } from "../runtime/alias.ts";
import { checkSparse, type SparseMatrix, storedLength } from "./sparse_matrix.ts";

/** Compile-time configuration of a generated SDDMM kernel. */
export interface SddmmConfig {
  /** β ≠ 0: `out` is read. With β = 0 it is write-only. */
  readOut: boolean;
  /** Lanes per workgroup. */
  wg: number;
  /** Entries per lane per pass (regblock only; tiled uses 1). */
  e: number;
}

const R = (n: number, f: (i: number) => string, sep = "\n"): string =>
  Array.from({ length: n }, (_, i) => f(i)).join(sep);

function sddmmInterface(): Pick<KernelSpec, "bindings" | "params"> {
  return {
    bindings: [
      { name: "dy", dtype: "f32", access: "read" },
      { name: "x", dtype: "f32", access: "read" },
      { name: "ptr", dtype: "u32", access: "read" },
      { name: "idx", dtype: "u32", access: "read" },
      { name: "out", dtype: "f32", access: "read_write" },
    ],
    params: [["M", "u32"], ["N", "u32"], ["K", "u32"], ["alpha", "f32"], ["beta", "f32"]],
  };
}

function storeHelper(cfg: SddmmConfig): string {
  return `
fn store_out(p: u32, acc: f32) {
  let o = P.off_out + p;
  var v = P.alpha * acc;
  ${cfg.readOut ? "v = v + P.beta * out[o];" : ""}
  out[o] = v;
}`;
}

/**
 * Generates the barrier-free kernel. Grid `[gx, gy, 1]`, weight row `r = wg.y·gx + wg.x`.
 *
 * @example
 * ```ts
 * import { regblockSddmmSpec } from "./sddmm.ts";
 * regblockSddmmSpec({ readOut: false, wg: 8, e: 4 }).name; // "sddmm_regblock_8x4"
 * ```
 */
export function regblockSddmmSpec(cfg: SddmmConfig): KernelSpec {
  const { e } = cfg;
  return {
    name: `sddmm_regblock_${cfg.wg}x${e}`,
    ...sddmmInterface(),
    constants: { WG: cfg.wg, E: e },
    body: `${storeHelper(cfg)}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r_raw = wg.y * nwg.x + wg.x;
  let r = min(r_raw, P.N - 1u);
  let p0 = ptr[P.off_ptr + r];
  let p1 = select(ptr[P.off_ptr + r + 1u], p0, r_raw >= P.N);
  for (var base = p0; base < p1; base = base + WG * E) {
    let q = base + lid * E;
    // Entries past the row end gather a valid column and are never stored.
${R(e, (i) => `    let c${i} = P.off_x + idx[P.off_idx + min(q + ${i}u, p1 - 1u)];`)}
${R(e, (i) => `    var a${i} = 0.0f;`)}
    var dyi = P.off_dy + r;
    var xi = 0u;
    for (var m = 0u; m < P.M; m = m + 1u) {
      let d = dy[dyi];
${R(e, (i) => `      a${i} = fma(d, x[xi + c${i}], a${i});`)}
      dyi = dyi + P.N;
      xi = xi + P.K;
    }
${R(e, (i) => `    if (q + ${i}u < p1) { store_out(q + ${i}u, a${i}); }`)}
  }
}`,
  };
}

/**
 * Generates the workgroup-cooperative kernel: `wg` lanes, one entry each per pass, `dy`
 * staged `wg` batch rows at a time. Grid `[gx, gy, 1]`.
 *
 * @example
 * ```ts
 * import { tiledSddmmSpec } from "./sddmm.ts";
 * tiledSddmmSpec({ readOut: true, wg: 64, e: 1 }).name; // "sddmm_tiled_64"
 * ```
 */
export function tiledSddmmSpec(cfg: SddmmConfig): KernelSpec {
  return {
    name: `sddmm_tiled_${cfg.wg}`,
    ...sddmmInterface(),
    constants: { WG: cfg.wg },
    body: `${storeHelper(cfg)}
var<workgroup> s_dy: array<f32, ${cfg.wg}>;
var<workgroup> s_range: vec2<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r_raw = wg.y * nwg.x + wg.x;
  let r = min(r_raw, P.N - 1u);
  if (lid == 0u) {
    let p0 = ptr[P.off_ptr + r];
    s_range = vec2<u32>(p0, select(ptr[P.off_ptr + r + 1u], p0, r_raw >= P.N));
  }
  // Loop bounds must be provably uniform: every lane passes the same barriers.
  let range = workgroupUniformLoad(&s_range);
  for (var base = range.x; base < range.y; base = base + WG) {
    let p = base + lid;
    let c = P.off_x + idx[P.off_idx + min(p, range.y - 1u)];
    var acc = 0.0f;
    for (var m0 = 0u; m0 < P.M; m0 = m0 + WG) {
      let mine = m0 + lid;
      s_dy[lid] = select(0.0f, dy[P.off_dy + min(mine, P.M - 1u) * P.N + r], mine < P.M);
      workgroupBarrier();
      let cnt = min(WG, P.M - m0);
      for (var j = 0u; j < cnt; j = j + 1u) {
        acc = fma(s_dy[j], x[c + (m0 + j) * P.K], acc);
      }
      workgroupBarrier();
    }
    if (p < range.y) { store_out(p, acc); }
  }
}`,
  };
}

/** WGSL: the row holding CSR entry `p`, the largest `r` with `ptr[r] <= p` (skips empty rows). */
const ROW_OF_WGSL = `
fn row_of(p: u32) -> u32 {
  var lo = 0u;
  var hi = P.N;
  while (hi - lo > 1u) {
    let mid = (lo + hi) >> 1u;
    if (ptr[P.off_ptr + mid] <= p) { lo = mid; } else { hi = mid; }
  }
  return lo;
}`;

/** Compile-time configuration of the transposed-operand SDDMM kernel. */
export interface SddmmTransposedConfig {
  /** β ≠ 0: `out` is read. */
  readOut: boolean;
  /** Batch rows per load: 4 binds `dyᵀ`/`xᵀ` as vec4 (M % 4 = 0, aligned views), else 1. */
  width: 1 | 4;
  /** Consecutive CSR entries per thread. */
  e: number;
  /** Lanes per workgroup. */
  wg: number;
}

/**
 * Generates the transposed-operand kernel: `dyᵀ: [N, LD]`, `xᵀ: [K, LD]` (in units of `width`),
 * batch rows `M0 .. M0 + MC` of them. Thread `t` (1-D grid, `gridFor(ceil(nnz / e), wg)`)
 * owns CSR entries `t·e .. t·e + e` and processes them one row segment at a time, each segment
 * one pass over the batch rows; slots outside the segment compute on a clamped entry and are
 * not stored.
 *
 * @example
 * ```ts
 * import { transposedSddmmSpec } from "./sddmm.ts";
 * transposedSddmmSpec({ readOut: false, width: 4, e: 8, wg: 64 }).name; // "sddmm_t4_e8"
 * ```
 */
export function transposedSddmmSpec(cfg: SddmmTransposedConfig): KernelSpec {
  const { e, width } = cfg;
  const vt = width === 4 ? "vec4<f32>" : "f32";
  const total = width === 4 ? "dot(a_, vec4<f32>(1.0f))" : "a_";
  return {
    name: `sddmm_t${width}_e${e}`,
    bindings: [
      { name: "dyT", dtype: "f32", access: "read", width },
      { name: "xT", dtype: "f32", access: "read", width },
      { name: "ptr", dtype: "u32", access: "read" },
      { name: "idx", dtype: "u32", access: "read" },
      { name: "out", dtype: "f32", access: "read_write" },
    ],
    params: [
      ["N", "u32"],
      ["NNZ", "u32"],
      ["LD", "u32"],
      ["M0", "u32"],
      ["MC", "u32"],
      ["alpha", "f32"],
      ["beta", "f32"],
    ],
    constants: { WG: cfg.wg, E: e },
    body: `${LINEAR_INDEX_WGSL}
fn store_out(p: u32, acc: f32) {
  let o = P.off_out + p;
  var v = P.alpha * acc;
  ${cfg.readOut ? "v = v + P.beta * out[o];" : ""}
  out[o] = v;
}

${ROW_OF_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let q0 = linear_index(wg, nwg, lid, WG) * E;
  if (q0 >= P.NNZ) { return; }
  let q1 = min(q0 + E, P.NNZ);
${R(e, (i) => `  let c${i} = P.off_xT + idx[P.off_idx + min(q0 + ${i}u, q1 - 1u)] * P.LD + P.M0;`)}
  var p = q0;
  loop {
    let r = row_of(p);
    let pe = min(q1, ptr[P.off_ptr + r + 1u]);
${R(e, (i) => `    var a${i} = ${vt}(0.0f);`)}
    let dyi = P.off_dyT + r * P.LD + P.M0;
    for (var m = 0u; m < P.MC; m = m + 1u) {
      let d = dyT[dyi + m];
${R(e, (i) => `      a${i} = fma(d, xT[c${i} + m], a${i});`)}
    }
${
      R(e, (i) =>
        `    if (q0 + ${i}u >= p && q0 + ${i}u < pe) { let a_ = a${i}; store_out(q0 + ${i}u, ${total}); }`)
    }
    p = pe;
    if (p >= q1) { break; }
  }
}`,
  };
}

const specCache = new Map<string, KernelSpec>();

function cachedSpec<C>(make: (cfg: C) => KernelSpec, cfg: C): KernelSpec {
  const key = `${make.name}:${JSON.stringify(cfg)}`;
  let spec = specCache.get(key);
  if (!spec) specCache.set(key, spec = make(cfg));
  return spec;
}

/** Regblock: 8 lanes (one llvmpipe SIMD batch) × 4 entries each per pass. */
const REGBLOCK = { wg: 8, e: 4 };
const TILED_WG = 64;

/**
 * Batch rows one dispatch may cover so that no thread passes the software loop budget: every
 * pass over a row's entries runs an M loop (plus, tiled, M/64 staging rounds).
 */
function maxRowsPerDispatch(gpu: Gpu, longest: number, perPass: number, tiled: boolean): number {
  if (!gpu.report.isFallback) return Infinity;
  const passes = Math.max(1, Math.ceil(longest / perPass));
  const perRow = tiled ? 1 + 2 / TILED_WG : 1;
  const rows = Math.floor((SOFTWARE_LOOP_BUDGET / passes - passes - 4) / perRow) -
    (tiled ? TILED_WG : 0);
  if (rows < 1) {
    throw new RangeError(
      `sddmm: rows of ${longest} columns need more loop iterations per thread than software ` +
        `adapters execute (${SOFTWARE_LOOP_BUDGET})`,
    );
  }
  return rows;
}

/** Entries per thread and lanes of the transposed-operand kernel. */
const TRANSPOSED = { e: 8, wg: 64 };

/** Arguments of {@linkcode sddmm}. */
export interface SddmmArgs {
  /** `[M, N]` output gradient, or `dyᵀ: [N, M]` when `transposed` (may be a view). */
  dy: Tensor<"f32">;
  /** `[M, K]` layer input, or `xᵀ: [K, M]` when `transposed` (may be a view). */
  x: Tensor<"f32">;
  /**
   * `dy` and `x` are stored transposed (`[N, M]`, `[K, M]`): sequential vec4 loads along M
   * (when M % 4 = 0 and both view offsets are multiples of 4, else scalar), the fast path on
   * llvmpipe. Default false.
   */
  transposed?: boolean;
  /** Sparse weight `[N, K]`: only its pattern (`rowPtr`, `colIdx`) is read. */
  w: SparseMatrix;
  /** `storedLength(w.nnz)` gradients aligned with `w.values`; entries past `nnz` untouched. */
  out: Tensor<"f32">;
  /** Default 1. */
  alpha?: number;
  /** Default 0: `out` is write-only. Use 1 to accumulate. */
  beta?: number;
}

/**
 * Records `out[p] = α·(dyᵀ·x)[r_p, c_p] + β·out[p]` for every active entry `p` of `w`; equals
 * the masked-dense gradient `matmul({ a: dy, b: x, transA: true, mask })` read at the pattern.
 * Throws {@linkcode ShapeError} before recording anything when shapes or dtypes disagree.
 *
 * @example
 * ```ts ignore
 * // dW_hh at the active entries: Σ_t dgates_t[B, 4H]ᵀ · h_{t-1}[B, H], all steps at once
 * sddmm(gpu, { dy: dgatesAll, x: hPrevAll, w: wHh, out: gradHh });
 * // the same from transposed copies dgatesᵀ [4H, T·B], hPrevᵀ [H, T·B] (see transpose.ts)
 * sddmm(gpu, { dy: dgatesT, x: hPrevT, transposed: true, w: wHh, out: gradHh });
 * ```
 */
export function sddmm(gpu: Gpu, args: SddmmArgs): void {
  const { dy, x, w, out, alpha = 1, beta = 0, transposed = false } = args;
  checkSparse("sddmm", w);
  for (const [name, t] of [["dy", dy], ["x", x]] as const) {
    if (t.dtype !== "f32" || t.shape.length !== 2) {
      throw new ShapeError(`sddmm: ${name} must be a 2-D f32 tensor, got ${t}`);
    }
  }
  const [m, n] = transposed ? [dy.shape[1], dy.shape[0]] : dy.shape;
  const [xm, k] = transposed ? [x.shape[1], x.shape[0]] : x.shape;
  if (n !== w.rows || k !== w.cols || xm !== m) {
    const need = transposed
      ? `need dyᵀ [${w.rows}, M] and xᵀ [${w.cols}, M]`
      : `need dy [M, ${w.rows}] and x [M, ${w.cols}]`;
    throw new ShapeError(
      `sddmm: dy${transposed ? "ᵀ" : ""} ${fmtShape(dy.shape)}, x${transposed ? "ᵀ" : ""} ` +
        `${fmtShape(x.shape)} do not match w [${w.rows}, ${w.cols}] (${need})`,
    );
  }
  expectSize("sddmm: out", out, storedLength(w.nnz), "f32");
  if (!Number.isFinite(alpha) || !Number.isFinite(beta)) {
    throw new RangeError(`sddmm: alpha and beta must be finite, got ${alpha}, ${beta}`);
  }
  checkOverlap("sddmm", { out }, { dy, x, values: w.values });
  if (w.nnz === 0) return;
  if (transposed) {
    sddmmTransposed(gpu, { dyT: dy, xT: x, w, out, m, alpha, beta });
    return;
  }

  const tiled = gpu.variant === "tiled";
  const cfg = tiled ? { wg: TILED_WG, e: 1 } : REGBLOCK;
  const chunk = Math.min(
    Math.max(m, 1),
    maxRowsPerDispatch(gpu, w.cols, cfg.wg * cfg.e, tiled),
  );
  const groups = w.rows;
  const max = gpu.report.limits.maxComputeWorkgroupsPerDimension;
  const gy = Math.ceil(groups / max);
  const grid: [number, number, number] = [Math.ceil(groups / gy), gy, 1];
  // M = 0 still runs once: out = β·out.
  for (let m0 = 0; m0 === 0 || m0 < m; m0 += chunk) {
    const mc = Math.min(chunk, m - m0);
    const first = m0 === 0;
    const spec = cachedSpec(tiled ? tiledSddmmSpec : regblockSddmmSpec, {
      ...cfg,
      readOut: first ? beta !== 0 : true,
    });
    gpu.run(
      spec,
      {
        dy: dy.view(m0 * n, [mc, n]),
        x: x.view(m0 * k, [mc, k]),
        ptr: w.rowPtr,
        idx: w.colIdx,
        out,
      },
      { M: mc, N: n, K: k, alpha, beta: first ? beta : 1 },
      grid,
    );
  }
}

/**
 * The transposed-operand launch: batch rows split into dispatches (β = 1 after the first) so
 * that no thread passes the software loop budget: a thread runs at most `e` row segments, each
 * a binary search over `rowPtr` plus one pass over its batch rows.
 */
function sddmmTransposed(
  gpu: Gpu,
  a: {
    dyT: Tensor;
    xT: Tensor;
    w: SparseMatrix;
    out: Tensor;
    m: number;
    alpha: number;
    beta: number;
  },
): void {
  const { dyT, xT, w, out, m, alpha, beta } = a;
  const { e, wg } = TRANSPOSED;
  const width = m % 4 === 0 && dyT.offset % 4 === 0 && xT.offset % 4 === 0 ? 4 : 1;
  const ld = m / width;
  let chunk = Math.max(ld, 1);
  if (gpu.report.isFallback) {
    const search = Math.ceil(Math.log2(w.rows + 1)) + 2;
    chunk = Math.min(chunk, Math.floor(SOFTWARE_LOOP_BUDGET / e) - search - 2);
  }
  const grid = gridFor(Math.ceil(w.nnz / e), wg);
  const tensors = { dyT, xT, ptr: w.rowPtr, idx: w.colIdx, out };
  // M = 0 still runs once: out = β·out.
  for (let m0 = 0; m0 === 0 || m0 < ld; m0 += chunk) {
    const first = m0 === 0;
    const spec = cachedSpec(transposedSddmmSpec, {
      readOut: first ? beta !== 0 : true,
      width,
      e,
      wg,
    });
    gpu.run(spec, tensors, {
      N: w.rows,
      NNZ: w.nnz,
      LD: ld,
      M0: m0,
      MC: Math.min(chunk, ld - m0),
      alpha,
      beta: first ? beta : 1,
    }, grid);
  }
}

/** Entries per thread of the sampling kernel (one row search per row segment). */
const SAMPLE = { e: 8, wg: 64 };

/**
 * Generates the sampling kernel `out[p] = α·dense[r_p, c_p] (+ β·out[p])`: thread `t` (1-D grid,
 * `gridFor(ceil(nnz / 8), 64)`) owns CSR entries `8t .. 8t + 8`, one row search per row segment.
 *
 * @example
 * ```ts
 * import { sampleDenseSpec } from "./sddmm.ts";
 * sampleDenseSpec(true).name; // "sample_dense_beta"
 * ```
 */
export function sampleDenseSpec(readOut: boolean): KernelSpec {
  return {
    name: `sample_dense${readOut ? "_beta" : ""}`,
    bindings: [
      { name: "dense", dtype: "f32", access: "read" },
      { name: "ptr", dtype: "u32", access: "read" },
      { name: "idx", dtype: "u32", access: "read" },
      { name: "out", dtype: "f32", access: "read_write" },
    ],
    params: [["N", "u32"], ["K", "u32"], ["NNZ", "u32"], ["alpha", "f32"], ["beta", "f32"]],
    constants: { WG: SAMPLE.wg, E: SAMPLE.e },
    body: `${LINEAR_INDEX_WGSL}
${ROW_OF_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let q0 = linear_index(wg, nwg, lid, WG) * E;
  if (q0 >= P.NNZ) { return; }
  let q1 = min(q0 + E, P.NNZ);
  var p = q0;
  loop {
    let r = row_of(p);
    let pe = min(q1, ptr[P.off_ptr + r + 1u]);
    let row = P.off_dense + r * P.K;
    for (var q = p; q < pe; q = q + 1u) {
      let o = P.off_out + q;
      var v = P.alpha * dense[row + idx[P.off_idx + q]];
      ${readOut ? "v = v + P.beta * out[o];" : ""}
      out[o] = v;
    }
    p = pe;
    if (p >= q1) { break; }
  }
}`,
  };
}

/** Arguments of {@linkcode sampleDense}. */
export interface SampleDenseArgs {
  /** `[N, K]` dense matrix (may be a view), e.g. a full weight gradient `dyᵀ·x`. */
  dense: Tensor<"f32">;
  /** Sparse weight `[N, K]`: only its pattern (`rowPtr`, `colIdx`) is read. */
  w: SparseMatrix;
  /** `storedLength(w.nnz)` values aligned with `w.values`; entries past `nnz` untouched. */
  out: Tensor<"f32">;
  /** Default 1. */
  alpha?: number;
  /** Default 0: `out` is write-only. */
  beta?: number;
}

/**
 * Records `out[p] = α·dense[r_p, c_p] + β·out[p]` for every active entry `p` of `w`: the dense
 * product sampled at the pattern. With `dense = dyᵀ·x` from `matmul` this is {@linkcode sddmm}
 * by way of the dense kernel, which is the faster route on CPU adapters at densities where the
 * dense kernel's ~8x better loads per FMA outweigh the (1 - d) wasted products. Throws
 * {@linkcode ShapeError} before recording anything when shapes or dtypes disagree.
 *
 * @example
 * ```ts ignore
 * matmul(gpu, { a: dy, b: x, c: dense, transA: true }); // dense [N, K] scratch
 * sampleDense(gpu, { dense, w, out: grad });
 * ```
 */
export function sampleDense(gpu: Gpu, args: SampleDenseArgs): void {
  const { dense, w, out, alpha = 1, beta = 0 } = args;
  checkSparse("sampleDense", w);
  expectShape("sampleDense: dense", dense, [w.rows, w.cols], "f32");
  expectSize("sampleDense: out", out, storedLength(w.nnz), "f32");
  if (!Number.isFinite(alpha) || !Number.isFinite(beta)) {
    throw new RangeError(`sampleDense: alpha and beta must be finite, got ${alpha}, ${beta}`);
  }
  checkOverlap("sampleDense", { out }, { dense, values: w.values });
  if (w.nnz === 0) return;
  gpu.run(
    cachedSpec(sampleDenseSpec, beta !== 0),
    { dense, ptr: w.rowPtr, idx: w.colIdx, out },
    { N: w.rows, K: w.cols, NNZ: w.nnz, alpha, beta },
    gridFor(Math.ceil(w.nnz / SAMPLE.e), SAMPLE.wg),
  );
}
