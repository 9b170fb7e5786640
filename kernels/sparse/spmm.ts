/**
 * Sparse × dense products for training with a {@linkcode SparseMatrix} weight `W: [N, K]`:
 *
 * - {@linkcode spmm}: `y = α·x·Wᵀ + β·y + bias`, `x: [M, K]`, `y: [M, N]` (the forward projection;
 *   an LSTM's `gates = x·W_ihᵀ + b`, then `gates_t += h_{t-1}·W_hhᵀ` with β = 1).
 * - {@linkcode spmmT}: `dx = α·dy·W + β·dx`, `dy: [M, N]`, `dx: [M, K]` (the data gradient),
 *   walking the transposed index: `dx[m, k] = Σ_{q in column k} dy[m, rowIdxT[q]] ·
 *   values[permT[q]]`.
 *
 * Both are one kernel over an "index" (CSR rows for spmm, CSC columns for spmmT): output column
 * `j` of the dense result sums its index row's entries `(col, value)` against the input's
 * columns, for every batch row `m`. The weight (W or its CSC) is read once per output column
 * and reused across the batch; the activation gathers `in[m, col]` are the irreducible cost.
 *
 * Variants (`gpu.variant`):
 * - `regblock`: barrier-free. A thread owns one output column `j` and `MB` batch rows (all of a
 *   skinny batch, up to 24) in registers: each `(col, value)` is loaded once and reused across
 *   the batch rows, lanes of a workgroup take consecutive output columns. On llvmpipe every
 *   gather `x[m, col]` is a per-lane scalar load (~1 ns) and there is no cheaper path for
 *   workgroup-uniform addresses, shared memory or textures (Mesa 22.3, measured), so the cost
 *   is ≈ nnz·M gathers where the dense kernel needs ~1 vec4 load per 20 multiply-adds: faster
 *   than dense only at low density. The `spmm load floor` rows of `deno task bench sparse`
 *   time the loads no unstructured kernel can avoid, the bound on any such kernel's speedup.
 *   Uniforms are read into locals before the entry loop (llvmpipe re-reads them per entry
 *   otherwise, ~9% at d = 0.1). Rows past M gather a clamped row and are not stored, so the
 *   loop has no per-row branch.
 * - `transX` / `transDy` (input stored `[K, M]`): with M % 4 = 0 one vec4 gather fetches four
 *   batch rows of a column (~1.6x faster than scalar gathers at M = 20).
 * - `tiled` (Sputnik-like): a workgroup covers `RW` output columns × `TM` batch rows; each
 *   column's entries are staged `TM` at a time in shared memory by its lanes, then every lane
 *   consumes the chunk for its batch row.
 *
 * Activations may be views (any element offset); all indexing adds `P.off_<name>`.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { SOFTWARE_LOOP_BUDGET } from "../runtime/device.ts";
import { fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";
import { checkOverlap } from "../runtime/alias.ts";
import { checkSparse, type SparseMatrix } from "./sparse_matrix.ts";

/** Compile-time configuration of a generated SpMM kernel. */
export interface SpmmConfig {
  /** Walk the transposed index (colPtr/rowIdxT/permT): the spmmT kernel. */
  transposed: boolean;
  /**
   * The input is given transposed, `[K, M]` (batch rows contiguous), so one vec4 gather
   * fetches four batch rows of a column.
   */
  transX: boolean;
  /** Elements per load of the input: 4 only when `transX`, M % 4 = 0 and the view is aligned. */
  xWidth: 1 | 4;
  hasBias: boolean;
  /** β ≠ 0: the output is read. With β = 0 it is write-only (stale NaNs never propagate). */
  readY: boolean;
}

/** Register-blocked kernel: `mb` batch rows per lane, `wg` lanes per workgroup. */
export interface RegblockSpmmConfig extends SpmmConfig {
  mb: number;
  wg: number;
}

/** Tiled kernel: `tm` batch lanes × `rw` output columns per workgroup. */
export interface TiledSpmmConfig extends SpmmConfig {
  tm: number;
  rw: number;
}

const R = (n: number, f: (i: number) => string, sep = "\n"): string =>
  Array.from({ length: n }, (_, i) => f(i)).join(sep);

/**
 * Bindings shared by both variants. `x: [M, K]` input, `y: [M, N]` output; `ptr [N + 1]`,
 * `idx`, `val` (and `perm` when transposed) the index whose row `j` lists output column `j`'s
 * entries.
 */
function spmmInterface(cfg: SpmmConfig): Pick<KernelSpec, "bindings" | "params"> {
  const bindings: KernelSpec["bindings"][number][] = [
    { name: "x", dtype: "f32", access: "read", width: cfg.xWidth },
    { name: "ptr", dtype: "u32", access: "read" },
    { name: "idx", dtype: "u32", access: "read" },
    { name: "val", dtype: "f32", access: "read" },
  ];
  if (cfg.transposed) bindings.push({ name: "perm", dtype: "u32", access: "read" });
  if (cfg.hasBias) bindings.push({ name: "bias", dtype: "f32", access: "read" });
  bindings.push({ name: "y", dtype: "f32", access: "read_write" });
  return {
    bindings,
    params: [["M", "u32"], ["N", "u32"], ["K", "u32"], ["alpha", "f32"], ["beta", "f32"]],
  };
}

/**
 * WGSL for entry `p`'s value: through `perm` when walking the transposed index. `offVal` and
 * `offPerm` are the expressions of the two views' offsets.
 */
function entryValue(cfg: SpmmConfig, p: string, offVal: string, offPerm: string): string {
  return cfg.transposed ? `val[${offVal} + perm[${offPerm} + ${p}]]` : `val[${offVal} + ${p}]`;
}

/** WGSL helpers: the entry value (through `perm` when transposed) and the guarded store. */
function spmmHelpers(cfg: SpmmConfig): string {
  const value = entryValue(cfg, "p", "P.off_val", "P.off_perm");
  const xat = cfg.transX ? "x[P.off_x + c * P.M + m]" : "x[P.off_x + m * P.K + c]";
  return `
fn entry_value(p: u32) -> f32 { return ${value}; }
fn x_at(m: u32, c: u32) -> f32 { return ${cfg.xWidth === 1 ? xat : "0.0f"}; }
fn store_y(m: u32, j: u32, acc: f32) {
  if (m >= P.M) { return; }
  let yi = P.off_y + m * P.N + j;
  var v = P.alpha * acc;
  ${cfg.readY ? "v = v + P.beta * y[yi];" : ""}
  ${cfg.hasBias ? "v = v + bias[P.off_bias + j];" : ""}
  y[yi] = v;
}`;
}

/**
 * Generates the barrier-free kernel. Grid: `[gx, gy, ceil(M / mb)]`; lane `lid` of workgroup
 * `(wg.x, wg.y)` owns output column `j = (wg.y·gx + wg.x)·wg + lid` for batch rows
 * `wg.z·mb .. wg.z·mb + mb`.
 *
 * @example
 * ```ts
 * import { regblockSpmmSpec } from "./spmm.ts";
 * const spec = regblockSpmmSpec({
 *   transposed: false, transX: false, xWidth: 1, hasBias: true, readY: false, mb: 20, wg: 64,
 * });
 * spec.name; // "spmm_regblock_mb20"
 * ```
 */
export function regblockSpmmSpec(cfg: RegblockSpmmConfig): KernelSpec {
  const { mb } = cfg;
  const qn = mb / 4;
  let setup: string, acc: string, step: string, store: string;
  if (cfg.xWidth === 4) {
    if (!cfg.transX || mb % 4 !== 0) throw new RangeError("vec4 inputs need transX and mb % 4 = 0");
    // Groups of 4 batch rows past M read the last group (in bounds, never stored).
    setup = `  let x0 = P.off_x;
  let mq = P.M >> 2u;
${R(qn, (q) => `  let g${q} = min(m0 / 4u + ${q}u, mq - 1u);`)}`;
    acc = R(qn, (q) => `  var a${q} = vec4<f32>(0.0f);`);
    step = `    let cb = x0 + c * mq;
${R(qn, (q) => `    a${q} = fma(vec4<f32>(v), x[cb + g${q}], a${q});`)}`;
    store = R(qn, (q) => R(4, (e) => `  store_y(m0 + ${4 * q + e}u, j, a${q}[${e}]);`));
  } else {
    // Rows past M gather the last row (in bounds, never stored): no per-row branch in the loop.
    setup = cfg.transX
      ? `  let pm = P.M;
${R(mb, (i) => `  let r${i} = P.off_x + min(m0 + ${i}u, pm - 1u);`)}`
      : R(mb, (i) => `  let r${i} = P.off_x + min(m0 + ${i}u, P.M - 1u) * P.K;`);
    acc = R(mb, (i) => `  var a${i} = 0.0f;`);
    step = cfg.transX
      ? `    let cb = c * pm;
${R(mb, (i) => `    a${i} = fma(v, x[r${i} + cb], a${i});`)}`
      : R(mb, (i) => `    a${i} = fma(v, x[r${i} + c], a${i});`);
    store = R(mb, (i) => `  store_y(m0 + ${i}u, j, a${i});`);
  }
  const layout = cfg.transX ? `_xT${cfg.xWidth}` : "";
  return {
    name: `spmm${cfg.transposed ? "T" : ""}_regblock_mb${mb}${layout}`,
    ...spmmInterface(cfg),
    constants: { WG: cfg.wg, MB: mb },
    body: `${spmmHelpers(cfg)}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let j = (wg.y * nwg.x + wg.x) * WG + lid;
  if (j >= P.N) { return; }
  let m0 = wg.z * MB;
${setup}
${acc}
  // uniforms read once: inside the loop llvmpipe re-reads them per entry (~9% at d = 0.1)
  let i0 = P.off_idx;
  let v0 = P.off_val;${cfg.transposed ? "\n  let q0 = P.off_perm;" : ""}
  let p1 = ptr[P.off_ptr + j + 1u];
  for (var p = ptr[P.off_ptr + j]; p < p1; p = p + 1u) {
    let c = idx[i0 + p];
    let v = ${entryValue(cfg, "p", "v0", "q0")};
${step}
  }
${store}
}`,
  };
}

/**
 * Generates the workgroup-cooperative kernel. Grid: `[gx, gy, ceil(M / tm)]`, workgroup
 * `(tm, rw)`: lane `lid.x` is batch row `wg.z·tm + lid.x` of output column
 * `(wg.y·gx + wg.x)·rw + lid.y`.
 *
 * @example
 * ```ts
 * import { tiledSpmmSpec } from "./spmm.ts";
 * const spec = tiledSpmmSpec({
 *   transposed: true, transX: false, xWidth: 1, hasBias: false, readY: true, tm: 16, rw: 4,
 * });
 * spec.name; // "spmmT_tiled_16x4"
 * ```
 */
export function tiledSpmmSpec(cfg: TiledSpmmConfig): KernelSpec {
  if (cfg.xWidth !== 1) throw new RangeError("the tiled kernel reads its input as scalars");
  return {
    name: `spmm${cfg.transposed ? "T" : ""}_tiled_${cfg.tm}x${cfg.rw}${cfg.transX ? "_xT" : ""}`,
    ...spmmInterface(cfg),
    constants: { TM: cfg.tm, RW: cfg.rw },
    body: `${spmmHelpers(cfg)}
var<workgroup> s_col: array<u32, ${cfg.tm * cfg.rw}>;
var<workgroup> s_val: array<f32, ${cfg.tm * cfg.rw}>;
var<workgroup> s_chunks: u32;

@compute @workgroup_size(TM, RW)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let j0 = (wg.y * nwg.x + wg.x) * RW;
  let j_raw = j0 + lid.y;
  let j = min(j_raw, P.N - 1u);
  let m = wg.z * TM + lid.x;
  let p0 = ptr[P.off_ptr + j];
  let p1 = select(ptr[P.off_ptr + j + 1u], p0, j_raw >= P.N);
  // Every lane must pass the same barriers: the chunk count of the workgroup's longest column.
  if (lid.x == 0u && lid.y == 0u) {
    var longest = 0u;
    for (var r = 0u; r < RW; r = r + 1u) {
      let jr = min(j0 + r, P.N - 1u);
      longest = max(longest, ptr[P.off_ptr + jr + 1u] - ptr[P.off_ptr + jr]);
    }
    s_chunks = (longest + TM - 1u) / TM;
  }
  let chunks = workgroupUniformLoad(&s_chunks);
  let mc = min(m, P.M - 1u);
  let base = lid.y * TM;
  var acc = 0.0f;
  for (var ch = 0u; ch < chunks; ch = ch + 1u) {
    let start = p0 + ch * TM;
    let p = start + lid.x;
    if (p < p1) {
      s_col[base + lid.x] = idx[P.off_idx + p];
      s_val[base + lid.x] = entry_value(p);
    }
    workgroupBarrier();
    let cnt = min(TM, p1 - min(p1, start));
    for (var e = 0u; e < cnt; e = e + 1u) {
      acc = fma(s_val[base + e], x_at(mc, s_col[base + e]), acc);
    }
    workgroupBarrier();
  }
  if (j_raw < P.N) { store_y(m, j, acc); }
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

/** Output columns per workgroup of the register-blocked kernel. */
const REGBLOCK_WG = 64;

/** Batch-row counts the register-blocked kernel is compiled for (one pipeline each). */
const REGBLOCK_ROWS = [1, 2, 3, 4, 8, 12, 16, 20, 24, 32, 48];
/** Most batch rows per thread with scalar inputs (one register each). */
const SCALAR_ROWS = 24;

/**
 * Batch rows per thread: a whole skinny batch when it fits (each `(col, value)` load then serves
 * every batch row), else the largest block. Multiples of 4 for vec4 inputs, which go up to 48
 * rows: at M = 700 on llvmpipe 48 ran the decoder products 13-21% faster than 24 (fewer entry
 * reloads outweigh the spills; best of 4-5 alternating rounds, x [700, 1500], W [10000, 1500],
 * d = 0.1), and compiles in ~0.3 s. Scalar inputs stay at 24 rows.
 */
function regblockRows(m: number, vec4: boolean): number {
  const max = vec4 ? REGBLOCK_ROWS[REGBLOCK_ROWS.length - 1] : SCALAR_ROWS;
  return REGBLOCK_ROWS.find((r) => r >= m && r <= max && (!vec4 || r % 4 === 0)) ?? max;
}

/** Batch lanes of the tiled kernel (a power of two ≥ 8 covering small batches in one tile). */
function tiledLanes(m: number): number {
  return m <= 8 ? 8 : m <= 16 ? 16 : m <= 32 ? 32 : 64;
}

/** Workgroup counts for `groups` groups over x/y, folded past the per-dimension limit. */
function foldGroups(gpu: Gpu, groups: number): [number, number] {
  const max = gpu.report.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [groups, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

function dims2(what: string, t: Tensor): [number, number] {
  if (t.dtype !== "f32" || t.shape.length !== 2) {
    throw new ShapeError(`${what} must be a 2-D f32 tensor, got ${t}`);
  }
  return [t.shape[0], t.shape[1]];
}

interface Launch {
  what: string;
  transposed: boolean;
  /** `input` is `[K, M]`. */
  transX: boolean;
  m: number;
  k: number;
  input: Tensor;
  output: Tensor;
  w: SparseMatrix;
  alpha: number;
  beta: number;
  bias?: Tensor;
}

/** Shared launcher body: picks the variant, checks the loop budget, records one dispatch. */
function launch(gpu: Gpu, a: Launch): void {
  const { m, k } = a;
  const n = a.output.shape[1];
  if (m === 0 || n === 0) return;
  const w = a.w;
  // Longest index row: a CSR row has at most `cols` entries, a CSC column at most `rows`.
  const longest = a.transposed ? w.rows : w.cols;
  const cfg = {
    transposed: a.transposed,
    transX: a.transX,
    xWidth: 1 as 1 | 4,
    hasBias: a.bias !== undefined,
    readY: a.beta !== 0,
  };
  const tensors: Record<string, Tensor> = {
    x: a.input,
    ptr: a.transposed ? w.colPtr : w.rowPtr,
    idx: a.transposed ? w.rowIdxT : w.colIdx,
    val: w.values,
    y: a.output,
  };
  if (a.transposed) tensors.perm = w.permT;
  if (a.bias) tensors.bias = a.bias;
  const params = { M: m, N: n, K: k, alpha: a.alpha, beta: a.beta };
  if (gpu.variant === "tiled") {
    const tm = tiledLanes(m);
    const rw = 64 / tm;
    checkLoops(gpu, a.what, longest + 3 * Math.ceil(longest / tm) + rw + 4);
    const [gx, gy] = foldGroups(gpu, Math.ceil(n / rw));
    gpu.run(cachedSpec(tiledSpmmSpec, { ...cfg, tm, rw }), tensors, params, [
      gx,
      gy,
      Math.ceil(m / tm),
    ]);
  } else {
    if (a.transX && m % 4 === 0 && a.input.offset % 4 === 0) cfg.xWidth = 4;
    const mb = regblockRows(m, cfg.xWidth === 4);
    checkLoops(gpu, a.what, longest + 4);
    const [gx, gy] = foldGroups(gpu, Math.ceil(n / REGBLOCK_WG));
    gpu.run(cachedSpec(regblockSpmmSpec, { ...cfg, mb, wg: REGBLOCK_WG }), tensors, params, [
      gx,
      gy,
      Math.ceil(m / mb),
    ]);
  }
}

function checkLoops(gpu: Gpu, what: string, loops: number): void {
  if (gpu.report.isFallback && loops > SOFTWARE_LOOP_BUDGET) {
    throw new RangeError(
      `${what}: an index row of up to ${loops} loop iterations per thread exceeds what ` +
        `software adapters execute (${SOFTWARE_LOOP_BUDGET}); split the weight into row blocks`,
    );
  }
}

function checkScalars(what: string, alpha: number, beta: number): void {
  if (!Number.isFinite(alpha) || !Number.isFinite(beta)) {
    throw new RangeError(`${what}: alpha and beta must be finite, got ${alpha}, ${beta}`);
  }
}

/** Arguments of {@linkcode spmm}. */
export interface SpmmArgs {
  /** `[M, K]` input activations, or `[K, M]` when `transX` (may be a view). */
  x: Tensor<"f32">;
  /**
   * `x` is stored transposed, `[K, M]`: each gather then fetches 4 batch rows at once (vec4,
   * when M % 4 = 0 and the view offset is a multiple of 4), 1.7× faster on llvmpipe at
   * M = 20, d = 0.1. Default false.
   */
  transX?: boolean;
  /** Sparse weight `[N, K]` (`w.rows = N`, `w.cols = K`). */
  w: SparseMatrix;
  /** `[M, N]` output; read only when `beta` ≠ 0. Must not overlap `x` or `bias`. */
  y: Tensor<"f32">;
  /** Default 1. */
  alpha?: number;
  /** Default 0: `y` is write-only, stale NaNs in it never reach the result. */
  beta?: number;
  /** `[N]`, added to every row. */
  bias?: Tensor<"f32">;
}

/**
 * Records `y = α·x·Wᵀ + β·y + bias` for a sparse `W: [N, K]`; equals the masked-dense
 * `matmul({ a: x, b: W, transB: true, mask })` on the same data. Throws
 * {@linkcode ShapeError} before recording anything when shapes or dtypes disagree.
 *
 * @example
 * ```ts ignore
 * // gates[B, 4H] = x[B, E] · W_ih[4H, E]ᵀ + b[4H], then gates += h[B, H] · W_hh[4H, H]ᵀ
 * spmm(gpu, { x, w: wIh, y: gates, bias: b });
 * spmm(gpu, { x: h, w: wHh, y: gates, beta: 1 });
 * ```
 */
export function spmm(gpu: Gpu, args: SpmmArgs): void {
  const { x, w, y, alpha = 1, beta = 0, bias, transX = false } = args;
  checkSparse("spmm", w);
  const [x0, x1] = dims2("spmm: x", x);
  const [m, k] = transX ? [x1, x0] : [x0, x1];
  const [ym, yn] = dims2("spmm: y", y);
  if (k !== w.cols || ym !== m || yn !== w.rows) {
    throw new ShapeError(
      `spmm: x${transX ? "ᵀ" : ""} ${fmtShape(x.shape)} · wᵀ [${w.cols}, ${w.rows}] does not ` +
        `give y ${fmtShape(y.shape)} (need x ${transX ? `[${w.cols}, M]` : `[M, ${w.cols}]`} ` +
        `and y [M, ${w.rows}])`,
    );
  }
  if (bias && (bias.dtype !== "f32" || bias.size !== w.rows)) {
    throw new ShapeError(`spmm: bias must be f32 with N = ${w.rows} elements, got ${bias}`);
  }
  checkScalars("spmm", alpha, beta);
  checkOverlap("spmm", { y }, { x, bias, values: w.values });
  launch(gpu, {
    what: "spmm",
    transposed: false,
    transX,
    m,
    k,
    input: x,
    output: y,
    w,
    alpha,
    beta,
    bias,
  });
}

/** Arguments of {@linkcode spmmT}. */
export interface SpmmTArgs {
  /** `[M, N]` output gradient, or `[N, M]` when `transDy` (may be a view). */
  dy: Tensor<"f32">;
  /** `dy` is stored transposed, `[N, M]` (vec4 gathers, as `transX` of spmm). Default false. */
  transDy?: boolean;
  /** Sparse weight `[N, K]`. */
  w: SparseMatrix;
  /** `[M, K]` input gradient; read only when `beta` ≠ 0. Must not overlap `dy`. */
  dx: Tensor<"f32">;
  /** Default 1. */
  alpha?: number;
  /** Default 0: `dx` is write-only. Use 1 to accumulate (e.g. over time steps). */
  beta?: number;
}

/**
 * Records `dx = α·dy·W + β·dx` for a sparse `W: [N, K]` through its transposed index; equals
 * the masked-dense `matmul({ a: dy, b: W, mask })`. Throws {@linkcode ShapeError} before
 * recording anything when shapes or dtypes disagree.
 *
 * @example
 * ```ts ignore
 * // dh[B, H] = dgates[B, 4H] · W_hh[4H, H]
 * spmmT(gpu, { dy: dgates, w: wHh, dx: dh });
 * ```
 */
export function spmmT(gpu: Gpu, args: SpmmTArgs): void {
  const { dy, w, dx, alpha = 1, beta = 0, transDy = false } = args;
  checkSparse("spmmT", w);
  const [d0, d1] = dims2("spmmT: dy", dy);
  const [m, n] = transDy ? [d1, d0] : [d0, d1];
  const [xm, xk] = dims2("spmmT: dx", dx);
  if (n !== w.rows || xm !== m || xk !== w.cols) {
    throw new ShapeError(
      `spmmT: dy${transDy ? "ᵀ" : ""} ${fmtShape(dy.shape)} · w [${w.rows}, ${w.cols}] does ` +
        `not give dx ${fmtShape(dx.shape)} (need dy ${
          transDy ? `[${w.rows}, M]` : `[M, ${w.rows}]`
        } and dx [M, ${w.cols}])`,
    );
  }
  checkScalars("spmmT", alpha, beta);
  checkOverlap("spmmT", { dx }, { dy, values: w.values });
  launch(gpu, {
    what: "spmmT",
    transposed: true,
    transX: transDy,
    m,
    k: n,
    input: dy,
    output: dx,
    w,
    alpha,
    beta,
  });
}
