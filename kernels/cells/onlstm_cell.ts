/**
 * Fused ON-LSTM cell (Shen et al. 2019, "Ordered Neurons"; yikangshen/Ordered-Neurons'
 * `ON_LSTM.py`). The hidden state of size `H = n·C` is split into n chunks of C neurons; two
 * "master" gates, cumulative softmaxes over the chunks, order which chunks are kept or written.
 * A row of the pre-activations has {@linkcode onLstmActWidth}`(H, n) = 4H + 2n` columns:
 * `[0, n)` master-input logits, `[n, 2n)` master-forget logits, then blocks of H columns o, ĉ,
 * i, f (column `2n + k·H + j`); element j belongs to chunk `q = floor(j / C)`.
 *
 * ```text
 * p_in = softmax(z[0, n)),  p_f = softmax(z[n, 2n))
 * c̃_in[q] = Σ_{r>q} p_in[r]  (= 1 − cumsum(p_in)[q], summed so that no digits cancel)
 * c̃_f[q]  = Σ_{r≤q} p_f[r]
 * o = σ(z_o), g = tanh(z_ĉ), i = σ(z_i), f = σ(z_f), ω = c̃_f[q]·c̃_in[q]
 * f̂ = f·ω + (c̃_f[q] − ω),  î = i·ω + (c̃_in[q] − ω)
 * c' = f̂ ⊙ cPrev + î ⊙ g,  h' = o ⊙ tanh(c')
 * ```
 *
 * The matrix products producing the pre-activations are the caller's. Each kernel runs one
 * 256-thread workgroup per batch row: 16 threads per softmax each own a contiguous segment of
 * chunks, so the softmaxes and scans take a few short serial loops and three (forward) or five
 * (backward) barriers (llvmpipe pays a coroutine switch per barrier), and then all threads
 * stride over the row's H elements. For its per-chunk sums the backward gives each chunk K of
 * the 256 lanes, whose partials meet in shared memory; every chunk needs a lane, so n is at most
 * {@linkcode ONLSTM_MAX_CHUNKS}.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { expectShape, ShapeError, type Tensor } from "../runtime/tensor.ts";
import { SOFTWARE_LOOP_BUDGET } from "../runtime/device.ts";
import { batchHidden, f32Binding } from "./cell_common.ts";
import { checkOverlap } from "../runtime/alias.ts";
import { ACTIVATIONS_WGSL } from "../dense/elementwise.ts";
import { onLstmActWidth } from "./onlstm_cell_ref.ts";

export { onLstmActWidth };

/** Threads per workgroup; one workgroup per batch row. */
const WG = 256;
/** The most chunks n a row may have: the backward gives every chunk at least one lane. */
export const ONLSTM_MAX_CHUNKS = WG;
/** Threads (segments) per softmax: each scans `ceil(n / SEGS)` consecutive chunks serially. */
const SEGS = 16;
/**
 * Most lanes per chunk in the backward: one thread then adds up a chunk's K partials, so K
 * stays small enough that this serial sum is short when n is tiny.
 */
const KMAX = 64;
const f32 = f32Binding;

// Shared by both kernels: which softmax (m: 0 input, 1 forget) and which segment of chunks a
// thread owns. Threads past 2·SEGS own nothing; an empty segment (n < SEGS) has r0 == r1.
const SEGMENT_WGSL = `
const NEG_BIG: f32 = -3.0e38;

fn seg_range(s: u32, n: u32) -> vec2<u32> {
  let len = (n + SEGS - 1u) / SEGS;
  let r0 = min(s * len, n);
  return vec2<u32>(r0, min(r0 + len, n));
}`;

// Sums of the segment values before and after segment s, and all of them, each in ascending
// order: every owner gets the same total bit for bit, so all segments normalise alike.
const SEG_SUMS_WGSL = (arr: string) => `
fn seg_sums_${arr}(m: u32, s: u32) -> vec3<f32> {
  var before = 0.0f;
  var after = 0.0f;
  var total = 0.0f;
  for (var t = 0u; t < SEGS; t++) {
    let v = ${arr}[m][t];
    total += v;
    if (t < s) { before += v; }
    if (t > s) { after += v; }
  }
  return vec3<f32>(before, after, total);
}`;

function forwardSpec(hasBias: boolean): KernelSpec {
  const z = (col: string) => `gates[g0 + ${col}]` + (hasBias ? ` + bias[P.off_bias + ${col}]` : "");
  return {
    name: hasBias ? "onlstm_cell_fwd_bias" : "onlstm_cell_fwd",
    bindings: [
      f32("gates", "read"),
      ...(hasBias ? [f32("bias", "read")] : []),
      f32("cPrev", "read"),
      f32("act", "read_write"),
      f32("c", "read_write"),
      f32("h", "read_write"),
    ],
    params: [["B", "u32"], ["n", "u32"], ["C", "u32"], ["H", "u32"], ["W", "u32"]],
    constants: { WG, SEGS, MAXN: ONLSTM_MAX_CHUNKS },
    body: `${ACTIVATIONS_WGSL}
${SEGMENT_WGSL}
// logits, then exp(z − max), then the master gates (m = 0: c̃_in, m = 1: c̃_f)
var<workgroup> sh_x: array<array<f32, MAXN>, 2>;
var<workgroup> sh_max: array<array<f32, SEGS>, 2>;
var<workgroup> sh_sum: array<array<f32, SEGS>, 2>;
${SEG_SUMS_WGSL("sh_sum")}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  // b is uniform over the workgroup, so returning here keeps the barriers in uniform control
  // flow for the groups that stay
  let b = wg.y * nwg.x + wg.x;
  if (b >= P.B) { return; }
  let n = P.n;
  let g0 = P.off_gates + b * P.W;
  let a0 = P.off_act + b * P.W;
  let owner = lid < 2u * SEGS;
  let m = min(lid / SEGS, 1u);
  let s = lid % SEGS;
  let seg = seg_range(s, n);
  // act may be gates (in place): each master column is read and later written by the same
  // owner, each block column by the same strided thread, so no thread reads another's output
  if (owner) {
    var mx = NEG_BIG;
    for (var r = seg.x; r < seg.y; r++) {
      let v = ${z("m * n + r")};
      sh_x[m][r] = v;
      mx = max(mx, v);
    }
    sh_max[m][s] = mx;
  }
  workgroupBarrier();
  if (owner) {
    var mx = NEG_BIG;
    for (var t = 0u; t < SEGS; t++) { mx = max(mx, sh_max[m][t]); }
    var sum = 0.0f;
    for (var r = seg.x; r < seg.y; r++) {
      let e = exp(sh_x[m][r] - mx);
      sh_x[m][r] = e;
      sum += e;
    }
    sh_sum[m][s] = sum;
  }
  workgroupBarrier();
  if (owner) {
    // both gates are sums of positive terms, normalised last: relative accuracy even where
    // c̃_in is far below 1 (peaked logits), which 1 − cumsum cannot give
    let sums = seg_sums_sh_sum(m, s);
    let inv = 1.0f / sums.z;
    if (m == 0u) {
      var acc = sums.y;
      for (var r = seg.y; r > seg.x; r--) {
        let e = sh_x[0][r - 1u];
        sh_x[0][r - 1u] = acc * inv;
        act[a0 + r - 1u] = e * inv;
        acc += e;
      }
    } else {
      var acc = sums.x;
      for (var r = seg.x; r < seg.y; r++) {
        let e = sh_x[1][r];
        acc += e;
        sh_x[1][r] = acc * inv;
        act[a0 + n + r] = e * inv;
      }
    }
  }
  workgroupBarrier();
  for (var j = lid; j < P.H; j += WG) {
    let q = j / P.C;
    let cin = sh_x[0][q];
    let cf = sh_x[1][q];
    let w = cf * cin;
    let col = 2u * n + j;
    let e = b * P.H + j;
    let og = sigmoid_s(${z("col")});
    let gg = tanh_s(${z("col + P.H")});
    let ig = sigmoid_s(${z("col + 2u * P.H")});
    let fg = sigmoid_s(${z("col + 3u * P.H")});
    // read before c is written: c may be cPrev (in place)
    let cn = (fg * w + (cf - w)) * cPrev[P.off_cPrev + e] + (ig * w + (cin - w)) * gg;
    act[a0 + col] = og;
    act[a0 + col + P.H] = gg;
    act[a0 + col + 2u * P.H] = ig;
    act[a0 + col + 3u * P.H] = fg;
    c[P.off_c + e] = cn;
    h[P.off_h + e] = og * tanh_s(cn);
  }
}`,
  };
}

function backwardSpec(hasDcNext: boolean): KernelSpec {
  return {
    name: hasDcNext ? "onlstm_cell_bwd_dcnext" : "onlstm_cell_bwd",
    bindings: [
      f32("act", "read"),
      f32("cPrev", "read"),
      f32("c", "read"),
      f32("dh", "read"),
      ...(hasDcNext ? [f32("dcNext", "read")] : []),
      f32("dgates", "read_write"),
      f32("dcPrev", "read_write"),
    ],
    params: [["B", "u32"], ["n", "u32"], ["C", "u32"], ["H", "u32"], ["W", "u32"], ["K", "u32"]],
    constants: { WG, SEGS, MAXN: ONLSTM_MAX_CHUNKS },
    body: `${ACTIVATIONS_WGSL}
${SEGMENT_WGSL}
var<workgroup> sh_p: array<array<f32, MAXN>, 2>;
// c̃_in, c̃_f recomputed from p by the forward's scans
var<workgroup> sh_c: array<array<f32, MAXN>, 2>;
// dc̃_in, dc̃_f per chunk, then dp_in, dp_f
var<workgroup> sh_d: array<array<f32, MAXN>, 2>;
// per-lane partial sums of dc̃_in, dc̃_f (lane = q·K + l)
var<workgroup> sh_part: array<array<f32, WG>, 2>;
var<workgroup> sh_psum: array<array<f32, SEGS>, 2>;
var<workgroup> sh_dsum: array<array<f32, SEGS>, 2>;
var<workgroup> sh_dot: array<array<f32, SEGS>, 2>;
${SEG_SUMS_WGSL("sh_psum")}
${SEG_SUMS_WGSL("sh_dsum")}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let b = wg.y * nwg.x + wg.x;
  if (b >= P.B) { return; }
  let n = P.n;
  let a0 = P.off_act + b * P.W;
  let d0 = P.off_dgates + b * P.W;
  let owner = lid < 2u * SEGS;
  let m = min(lid / SEGS, 1u);
  let s = lid % SEGS;
  let seg = seg_range(s, n);
  if (owner) {
    var sum = 0.0f;
    for (var r = seg.x; r < seg.y; r++) {
      let p = act[a0 + m * n + r];
      sh_p[m][r] = p;
      sum += p;
    }
    sh_psum[m][s] = sum;
  }
  workgroupBarrier();
  if (owner) {
    let sums = seg_sums_sh_psum(m, s);
    if (m == 0u) {
      var acc = sums.y;
      for (var r = seg.y; r > seg.x; r--) {
        sh_c[0][r - 1u] = acc;
        acc += sh_p[0][r - 1u];
      }
    } else {
      var acc = sums.x;
      for (var r = seg.x; r < seg.y; r++) {
        acc += sh_p[1][r];
        sh_c[1][r] = acc;
      }
    }
  }
  workgroupBarrier();
  // lane l of chunk q takes its elements q·C + l, + K, ...: a chunk's sums stay in its lanes
  if (lid < n * P.K) {
    let q = lid / P.K;
    let cin = sh_c[0][q];
    let cf = sh_c[1][q];
    let w = cf * cin;
    var s_in = 0.0f;
    var s_f = 0.0f;
    for (var k = lid - q * P.K; k < P.C; k += P.K) {
      let j = q * P.C + k;
      let e = b * P.H + j;
      let col = 2u * n + j;
      let og = act[a0 + col];
      let gg = act[a0 + col + P.H];
      let ig = act[a0 + col + 2u * P.H];
      let fg = act[a0 + col + 3u * P.H];
      let dhv = dh[P.off_dh + e];
      let tc = tanh_s(c[P.off_c + e]);
      // read before dcPrev is written: dcPrev may be dcNext or dh (in place)
      let dc = ${hasDcNext ? "dcNext[P.off_dcNext + e]" : "0.0f"} + dhv * og * (1.0f - tc * tc);
      let dfh = dc * cPrev[P.off_cPrev + e];
      let dih = dc * gg;
      let dw = dfh * (fg - 1.0f) + dih * (ig - 1.0f);
      dgates[d0 + col] = dhv * tc * og * (1.0f - og);
      dgates[d0 + col + P.H] = dc * (ig * w + (cin - w)) * (1.0f - gg * gg);
      dgates[d0 + col + 2u * P.H] = dih * w * ig * (1.0f - ig);
      dgates[d0 + col + 3u * P.H] = dfh * w * fg * (1.0f - fg);
      dcPrev[P.off_dcPrev + e] = dc * (fg * w + (cf - w));
      s_in += dih + dw * cf;
      s_f += dfh + dw * cin;
    }
    sh_part[0][lid] = s_in;
    sh_part[1][lid] = s_f;
  }
  workgroupBarrier();
  if (owner) {
    var sum = 0.0f;
    for (var r = seg.x; r < seg.y; r++) {
      var d = 0.0f;
      for (var l = 0u; l < P.K; l++) { d += sh_part[m][r * P.K + l]; }
      sh_d[m][r] = d;
      sum += d;
    }
    sh_dsum[m][s] = sum;
  }
  workgroupBarrier();
  if (owner) {
    // the transposed scans: dp_in[r] = Σ_{q<r} dc̃_in[q], dp_f[r] = Σ_{q≥r} dc̃_f[q]
    let sums = seg_sums_sh_dsum(m, s);
    var dot = 0.0f;
    if (m == 0u) {
      var acc = sums.x;
      for (var r = seg.x; r < seg.y; r++) {
        let d = sh_d[0][r];
        sh_d[0][r] = acc;
        dot += sh_p[0][r] * acc;
        acc += d;
      }
    } else {
      var acc = sums.y;
      for (var r = seg.y; r > seg.x; r--) {
        acc += sh_d[1][r - 1u];
        sh_d[1][r - 1u] = acc;
        dot += sh_p[1][r - 1u] * acc;
      }
    }
    sh_dot[m][s] = dot;
  }
  workgroupBarrier();
  if (owner) {
    var dot = 0.0f;
    for (var t = 0u; t < SEGS; t++) { dot += sh_dot[m][t]; }
    for (var r = seg.x; r < seg.y; r++) {
      dgates[d0 + m * n + r] = sh_p[m][r] * (sh_d[m][r] - dot);
    }
  }
}`,
  };
}

const FWD = [forwardSpec(false), forwardSpec(true)];
const BWD = [backwardSpec(false), backwardSpec(true)];

/** `[n, C]` from the cell state's H and the caller's chunk count, refusing what cannot run. */
function chunking(what: string, H: number, chunks: number): [number, number] {
  if (!Number.isInteger(chunks) || chunks < 1 || chunks > ONLSTM_MAX_CHUNKS) {
    throw new ShapeError(
      `${what}: chunks must be an integer in [1, ${ONLSTM_MAX_CHUNKS}] (one workgroup of ` +
        `${WG} threads per row), got ${chunks}`,
    );
  }
  if (H < 1 || H % chunks !== 0) {
    throw new ShapeError(`${what}: H = ${H} is not a positive multiple of chunks = ${chunks}`);
  }
  return [chunks, H / chunks];
}

/** Lanes per chunk in the backward (at least 1, since n <= WG). */
function lanesPerChunk(n: number, C: number): number {
  return Math.min(C, Math.floor(WG / n), KMAX);
}

/**
 * llvmpipe silently stops an invocation's loops after `SOFTWARE_LOOP_BUDGET` iterations in
 * total; only an enormous H per row (millions) comes near it, and then this throws rather than
 * let the results be wrong.
 */
function checkLoopBudget(gpu: Gpu, what: string, iterations: number): void {
  if (gpu.report.isFallback && iterations > SOFTWARE_LOOP_BUDGET) {
    throw new RangeError(
      `${what}: ${iterations} loop iterations per thread, over the ${SOFTWARE_LOOP_BUDGET} ` +
        `that software adapters (llvmpipe) execute`,
    );
  }
}

/**
 * ON-LSTM cell forward (equations in the module doc), one dispatch.
 *
 * - `gates: [B, 4H + 2n]` pre-activations (`n = chunks`), columns master-input, master-forget,
 *   then blocks o, ĉ, i, f.
 * - `bias: [4H + 2n]` optional (b_ih + b_hh, already summed by the caller).
 * - `cPrev: [B, H]` → `c: [B, H]`, `h: [B, H]`, `act: [B, 4H + 2n]`
 *   ({@linkcode onLstmActWidth}): the softmax probabilities `p_in`, `p_f` in the master columns
 *   and the activated o, g = tanh(z_ĉ), i, f in the blocks, all that
 *   {@linkcode onLstmCellBackward} needs (it recomputes c̃ from p by the same positive sums, so
 *   nothing is recovered by differencing).
 * - `chunks`: n, which must divide H, at most {@linkcode ONLSTM_MAX_CHUNKS}.
 *
 * `act` may be `gates` itself and `c` may be `cPrev` (in place); other overlaps throw
 * ShapeError, as do wrong shapes or dtypes (all f32) and a bad `chunks`, before anything is
 * recorded.
 *
 * @example
 * ```ts ignore
 * // time step t of a [T, B, W] pre-activation buffer (W = onLstmActWidth(H, n)), states in
 * // [T + 1, B, H] buffers
 * onLstmCellForward(gpu, {
 *   gates: pre.view(t * B * W, [B, W]), bias, chunks: n,
 *   cPrev: cs.view(t * B * H, [B, H]), c: cs.view((t + 1) * B * H, [B, H]),
 *   h: hs.view((t + 1) * B * H, [B, H]), act: acts.view(t * B * W, [B, W]),
 * });
 * ```
 */
export function onLstmCellForward(
  gpu: Gpu,
  args: {
    gates: Tensor;
    bias?: Tensor;
    cPrev: Tensor;
    c: Tensor;
    h: Tensor;
    act: Tensor;
    chunks: number;
  },
): void {
  const { gates, bias, cPrev, c, h, act } = args;
  const what = "onLstmCellForward";
  const [B, H] = batchHidden(`${what} cPrev`, cPrev);
  const [n, C] = chunking(what, H, args.chunks);
  const W = onLstmActWidth(H, n);
  expectShape(`${what} cPrev`, cPrev, [B, H], "f32");
  expectShape(`${what} gates`, gates, [B, W], "f32");
  if (bias) expectShape(`${what} bias`, bias, [W], "f32");
  expectShape(`${what} c`, c, [B, H], "f32");
  expectShape(`${what} h`, h, [B, H], "f32");
  expectShape(`${what} act`, act, [B, W], "f32");
  checkOverlap(what, { act, c, h }, { gates, bias, cPrev }, [["act", "gates"], ["c", "cPrev"]]);
  const len = Math.ceil(n / SEGS);
  checkLoopBudget(gpu, what, 3 * len + 2 * SEGS + Math.ceil(H / WG));
  const tensors: Record<string, Tensor> = { gates, cPrev, act, c, h };
  if (bias) tensors.bias = bias;
  gpu.run(FWD[bias ? 1 : 0], tensors, { B, n, C, H, W }, gridFor(B, 1));
}

/**
 * ON-LSTM cell backward, one dispatch. With `(p_in, p_f, o, g, i, f) = act`, c̃ and ω, f̂, î as
 * in the forward, `tc = tanh(c')`, and sums over the elements j of chunk q:
 *
 * ```text
 * dc      = dcNext + dh ⊙ o ⊙ (1 − tc²)
 * d z_o   = dh ⊙ tc ⊙ o(1 − o)
 * df̂ = dc ⊙ cPrev,  dî = dc ⊙ g,  dω = df̂ ⊙ (f − 1) + dî ⊙ (i − 1)
 * d z_ĉ   = dc ⊙ î ⊙ (1 − g²)
 * d z_i   = dî ⊙ ω ⊙ i(1 − i)
 * d z_f   = df̂ ⊙ ω ⊙ f(1 − f)
 * dcPrev  = dc ⊙ f̂
 * dc̃_f[q] = Σ_j (df̂_j + dω_j·c̃_in[q]),  dc̃_in[q] = Σ_j (dî_j + dω_j·c̃_f[q])
 * dp_f[r] = Σ_{q≥r} dc̃_f[q],  dp_in[r] = Σ_{q<r} dc̃_in[q]
 * d z_master = p ⊙ (dp − Σ_r p_r·dp_r)   (each of the two softmaxes)
 * ```
 *
 * - `act: [B, 4H + 2n]` from {@linkcode onLstmCellForward}; `cPrev, c: [B, H]` its cell input
 *   and output; `chunks` as there.
 * - `dh: [B, H]` total gradient w.r.t. h'; `dcNext: [B, H]` optional gradient w.r.t. c' from
 *   step t+1 (absent = 0).
 * - → `dgates: [B, 4H + 2n]` gradient w.r.t. the pre-activations (same columns as `gates`; also
 *   the bias gradient once summed over rows), `dcPrev: [B, H]`.
 *
 * `dgates` may overlap nothing else; `dcPrev` may be `dcNext` or `dh` (in place). Wrong shapes,
 * dtypes, overlaps or `chunks` throw ShapeError before anything is recorded.
 *
 * @example
 * ```ts ignore
 * onLstmCellBackward(gpu, { act, cPrev, c, dh, dcNext: dc, dgates, dcPrev: dc, chunks: n });
 * ```
 */
export function onLstmCellBackward(
  gpu: Gpu,
  args: {
    act: Tensor;
    cPrev: Tensor;
    c: Tensor;
    dh: Tensor;
    dcNext?: Tensor;
    dgates: Tensor;
    dcPrev: Tensor;
    chunks: number;
  },
): void {
  const { act, cPrev, c, dh, dcNext, dgates, dcPrev } = args;
  const what = "onLstmCellBackward";
  const [B, H] = batchHidden(`${what} cPrev`, cPrev);
  const [n, C] = chunking(what, H, args.chunks);
  const W = onLstmActWidth(H, n);
  expectShape(`${what} cPrev`, cPrev, [B, H], "f32");
  expectShape(`${what} act`, act, [B, W], "f32");
  expectShape(`${what} c`, c, [B, H], "f32");
  expectShape(`${what} dh`, dh, [B, H], "f32");
  if (dcNext) expectShape(`${what} dcNext`, dcNext, [B, H], "f32");
  expectShape(`${what} dgates`, dgates, [B, W], "f32");
  expectShape(`${what} dcPrev`, dcPrev, [B, H], "f32");
  checkOverlap(what, { dgates, dcPrev }, { act, cPrev, c, dh, dcNext }, [
    ["dcPrev", "dcNext"],
    ["dcPrev", "dh"],
  ]);
  const K = lanesPerChunk(n, C);
  const len = Math.ceil(n / SEGS);
  checkLoopBudget(gpu, what, 5 * len + 3 * SEGS + Math.ceil(C / K) + len * K);
  const tensors: Record<string, Tensor> = { act, cPrev, c, dh, dgates, dcPrev };
  if (dcNext) tensors.dcNext = dcNext;
  gpu.run(BWD[dcNext ? 1 : 0], tensors, { B, n, C, H, W, K }, gridFor(B, 1));
}
