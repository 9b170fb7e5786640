/**
 * Workgroup-tiled matmul for real GPUs: a 16×16 workgroup stages a (16·RM)×TK tile of op(A)
 * and a TK×64 tile of op(B ⊙ mask) in shared memory, then each thread accumulates an RM×4
 * block of C from shared memory. Loads are mapped so that consecutive threads read
 * consecutive addresses of whichever dimension is contiguous in memory (coalescing), and
 * out-of-range elements are staged as 0, so any M, N, K works.
 *
 *   C[m, n] = α·Σ_k op(A)[m, k]·op(B ⊙ mask)[k, n] + β·C[m, n] + bias[n]
 *
 * RM (rows per thread) is 1, 2 or 4 so skinny RNN batches (M = 20) do not waste 3/4 of a tile.
 *
 * @module
 */

import type { KernelSpec } from "../runtime/kernel.ts";
import { type MatmulConfig, matmulHelpers, matmulInterface } from "./matmul_regblock.ts";

/** Depth of one K slice staged in shared memory. */
const TK = 16;

/**
 * Generates the tiled kernel; `cfg.tm` is RM (1, 2 or 4), `cfg.tn` must be 4 and the
 * workgroup is always 16×16.
 *
 * @example
 * ```ts
 * import { tiledMatmulSpec } from "./matmul_tiled.ts";
 * const spec = tiledMatmulSpec({
 *   transA: false, transB: true, widthA: 1, widthB: 1, hasBias: true, hasMask: false,
 *   readC: false, tm: 2, tn: 4, wx: 16, wy: 16,
 * });
 * spec.name; // "matmul_tiled_NT_2x4"
 * ```
 */
export function tiledMatmulSpec(cfg: MatmulConfig): KernelSpec {
  const rm = cfg.tm;
  const rows = 16 * rm;
  const aElems = rows * TK;
  const bElems = TK * 64;
  // Element e of a staged tile → (row, k) or (k, col), fastest along the contiguous dimension.
  const aMap = cfg.transA
    ? `let kk = e / ${rows}u; let mm = e % ${rows}u;`
    : `let mm = e / ${TK}u; let kk = e % ${TK}u;`;
  const bMap = cfg.transB
    ? `let nn = e / ${TK}u; let kk = e % ${TK}u;`
    : `let kk = e / 64u; let nn = e % 64u;`;
  const body = `${matmulHelpers(cfg)}
var<workgroup> As: array<f32, ${aElems}>;  // [TK][rows], k-major
var<workgroup> Bs: array<f32, ${bElems}>;  // [TK][64], k-major
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let mBase = wg.y * ${rows}u;
  let nBase = wg.x * 64u;
  var acc: array<vec4<f32>, ${rm}>;
  for (var r = 0u; r < ${rm}u; r = r + 1u) { acc[r] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < P.K; k0 = k0 + ${TK}u) {
    for (var e = li; e < ${aElems}u; e = e + 256u) {
      ${aMap}
      let m = mBase + mm; let k = k0 + kk;
      As[kk * ${rows}u + mm] = select(0.0, opA(m, k), m < P.M && k < P.K);
    }
    for (var e = li; e < ${bElems}u; e = e + 256u) {
      ${bMap}
      let n = nBase + nn; let k = k0 + kk;
      Bs[kk * 64u + nn] = select(0.0, opB(k, n), n < P.N && k < P.K);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk = kk + 1u) {
      let b = vec4<f32>(Bs[kk * 64u + lid.x], Bs[kk * 64u + lid.x + 16u],
                        Bs[kk * 64u + lid.x + 32u], Bs[kk * 64u + lid.x + 48u]);
      for (var r = 0u; r < ${rm}u; r = r + 1u) {
        acc[r] = fma(vec4<f32>(As[kk * ${rows}u + lid.y + 16u * r]), b, acc[r]);
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < ${rm}u; r = r + 1u) {
    let m = mBase + lid.y + 16u * r;
    for (var c = 0u; c < 4u; c = c + 1u) { store_c(m, nBase + lid.x + 16u * c, acc[r][c]); }
  }
}`;
  return {
    name: `matmul_tiled_${cfg.transA ? "T" : "N"}${cfg.transB ? "T" : "N"}_${rm}x4`,
    ...matmulInterface(cfg),
    body,
  };
}
