/**
 * Register-blocked, barrier-free matmul for CPU rasterisers (llvmpipe, lavapipe).
 *
 * Why this shape: llvmpipe runs 8 invocations per SIMD batch and turns every storage-buffer
 * load into a per-lane scalar loop with bounds checks, while arithmetic stays vectorised. The
 * cost is therefore the number of load instructions, not FLOPs: each thread computes a TM×TN
 * block of C and, per 4-step slice of K, issues only TM + TN vec4 loads for 4·TM·TN FMAs.
 * Workgroup barriers (coroutine switches there) and shared memory (the same slow loads) are
 * avoided. The code is generated unrolled because naga/LLVM keep dynamically indexed local
 * arrays in memory.
 *
 * Math, per thread (rows m0..m0+TM, columns n0..n0+TN), with op() applied by indexing:
 *
 *   acc[i][j] = Σ_k op(A)[m0+i, k] · op(B ⊙ mask)[k, n0+j]
 *   C[m, n]   = α·acc + β·C[m, n] + bias[n]            (m < M, n < N only)
 *
 * Rows/columns past M/N are computed from whatever robust buffer access returns and never
 * stored, so the K loop carries no bounds checks; only the K % 4 tail is handled separately.
 *
 * @module
 */

import type { KernelSpec } from "./kernel.ts";

/** Compile-time configuration of one generated matmul kernel. */
export interface MatmulConfig {
  transA: boolean;
  transB: boolean;
  /**
   * Elements per load of A and of B (and mask): the largest of 4, 2, 1 dividing the operand's
   * contiguous dimension and view offset, so vector loads stay aligned.
   */
  widthA: 1 | 2 | 4;
  widthB: 1 | 2 | 4;
  hasBias: boolean;
  hasMask: boolean;
  /** β ≠ 0: C is read. With β = 0, C is write-only (NaNs in old C never propagate). */
  readC: boolean;
  /** Thread tile; TN is a multiple of 4, and TM too when transA. */
  tm: number;
  tn: number;
  /** Workgroup size (x over columns, y over rows). */
  wx: number;
  wy: number;
}

const R = (n: number, f: (i: number) => string, sep = "\n"): string =>
  Array.from({ length: n }, (_, i) => f(i)).join(sep);

/**
 * Loaders for one operand, whichever way it is bound: `ld_X(i)` reads element i, `ld4_X(i)`
 * the four elements i..i+3 (i a multiple of the binding width) with as few loads as the width
 * allows: one vec4, two vec2 or four scalars.
 */
function loaders(name: string, width: 1 | 2 | 4): string {
  const o = `P.off_${name}`;
  if (width === 4) {
    return `fn ld_${name}(i: u32) -> f32 { return ${name}[${o} + (i >> 2u)][i & 3u]; }
fn ld4_${name}(i: u32) -> vec4<f32> { return ${name}[${o} + (i >> 2u)]; }`;
  }
  if (width === 2) {
    return `fn ld_${name}(i: u32) -> f32 { return ${name}[${o} + (i >> 1u)][i & 1u]; }
fn ld4_${name}(i: u32) -> vec4<f32> {
  let j = ${o} + (i >> 1u);
  return vec4<f32>(${name}[j], ${name}[j + 1u]);
}`;
  }
  return `fn ld_${name}(i: u32) -> f32 { return ${name}[${o} + i]; }
fn ld4_${name}(i: u32) -> vec4<f32> {
  let j = ${o} + i;
  return vec4<f32>(${name}[j], ${name}[j + 1u], ${name}[j + 2u], ${name}[j + 3u]);
}`;
}

/** Matmul bindings and params, shared by both variants. */
export function matmulInterface(
  cfg: Pick<MatmulConfig, "widthA" | "widthB" | "hasBias" | "hasMask">,
): Pick<KernelSpec, "bindings" | "params"> {
  const bindings: KernelSpec["bindings"][number][] = [
    { name: "A", dtype: "f32", access: "read", width: cfg.widthA },
    { name: "B", dtype: "f32", access: "read", width: cfg.widthB },
    { name: "C", dtype: "f32", access: "read_write" },
  ];
  if (cfg.hasBias) bindings.push({ name: "bias", dtype: "f32", access: "read" });
  if (cfg.hasMask) bindings.push({ name: "mask", dtype: "f32", access: "read", width: cfg.widthB });
  const params: KernelSpec["params"] = [
    ["M", "u32"],
    ["N", "u32"],
    ["K", "u32"],
    ["alpha", "f32"],
    ["beta", "f32"],
  ];
  return { bindings, params };
}

/** WGSL helpers shared by both variants: operand loaders and the guarded epilogue store. */
export function matmulHelpers(cfg: MatmulConfig): string {
  return [
    loaders("A", cfg.widthA),
    loaders("B", cfg.widthB),
    cfg.hasMask ? loaders("mask", cfg.widthB) : "",
    // op(A)[m, k] and op(B ⊙ mask)[k, n] as scalars, for tails and tiles.
    `fn opA(m: u32, k: u32) -> f32 { return ld_A(${cfg.transA ? "k * P.M + m" : "m * P.K + k"}); }`,
    `fn opB(k: u32, n: u32) -> f32 {
  let i = ${cfg.transB ? "n * P.K + k" : "k * P.N + n"};
  return ld_B(i)${cfg.hasMask ? " * ld_mask(i)" : ""};
}`,
    `fn store_c(m: u32, n: u32, acc: f32) {
  if (m >= P.M || n >= P.N) { return; }
  let ci = P.off_C + m * P.N + n;
  var v = P.alpha * acc;
  ${cfg.readC ? "v = v + P.beta * C[ci];" : ""}
  ${cfg.hasBias ? "v = v + bias[P.off_bias + n];" : ""}
  C[ci] = v;
}`,
  ].join("\n");
}

/**
 * Generates the register-blocked kernel for `cfg`.
 *
 * @example
 * ```ts
 * import { regblockMatmulSpec } from "./matmul_regblock.ts";
 * const spec = regblockMatmulSpec({
 *   transA: false, transB: true, widthA: 4, widthB: 4, hasBias: false, hasMask: false,
 *   readC: false, tm: 4, tn: 8, wx: 8, wy: 8,
 * });
 * spec.name; // "matmul_regblock_NT_4x8"
 * ```
 */
export function regblockMatmulSpec(cfg: MatmulConfig): KernelSpec {
  const { tm, tn, transA, transB, hasMask } = cfg;
  const qn = tn / 4;
  const bLoad = (idx: string) => `ld4_B(${idx})${hasMask ? ` * ld4_mask(${idx})` : ""}`;

  // A fragments: a(i, kk) names op(A)[m0+i, k+kk].
  let loadA: string;
  let a: (i: number, kk: number) => string;
  if (!transA) {
    loadA = R(tm, (i) => `let a${i} = ld4_A((m0 + ${i}u) * P.K + k);`);
    a = (i, kk) => `a${i}[${kk}]`;
  } else {
    loadA = R(
      4,
      (kk) => R(tm / 4, (q) => `let a${kk}_${q} = ld4_A((k + ${kk}u) * P.M + m0 + ${4 * q}u);`),
    );
    a = (i, kk) => `a${kk}_${i >> 2}[${i & 3}]`;
  }
  // B fragments: b(kk, q) is the vec4 op(B)[k+kk, n0+4q .. n0+4q+3].
  let loadB: string;
  let b: (kk: number, q: number) => string;
  if (!transB) {
    loadB = R(
      4,
      (kk) => R(qn, (q) => `let b${kk}_${q} = ${bLoad(`(k + ${kk}u) * P.N + n0 + ${4 * q}u`)};`),
    );
    b = (kk, q) => `b${kk}_${q}`;
  } else {
    loadB = R(tn, (j) => `let bt${j} = ${bLoad(`(n0 + ${j}u) * P.K + k`)};`);
    b = (kk, q) => `vec4<f32>(${R(4, (c) => `bt${4 * q + c}[${kk}]`, ", ")})`;
  }
  const fmas = R(
    4,
    (kk) =>
      R(
        tm,
        (i) =>
          R(qn, (q) => `acc${i}_${q} = fma(vec4<f32>(${a(i, kk)}), ${b(kk, q)}, acc${i}_${q});`),
      ),
  );

  const body = `${matmulHelpers(cfg)}
@compute @workgroup_size(${cfg.wx}, ${cfg.wy})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let m0 = (wg.y * ${cfg.wy}u + lid.y) * ${tm}u;
  let n0 = (wg.x * ${cfg.wx}u + lid.x) * ${tn}u;
  if (m0 >= P.M || n0 >= P.N) { return; }
${R(tm, (i) => R(qn, (q) => `  var acc${i}_${q} = vec4<f32>(0.0);`))}
  let k4 = P.K & ~3u;
  for (var k = 0u; k < k4; k = k + 4u) {
${loadA}
${loadB}
${fmas}
  }
  for (var k = k4; k < P.K; k = k + 1u) {
${R(tm, (i) => `    let ta${i} = opA(m0 + ${i}u, k);`)}
${R(tn, (j) => `    let tb${j} = opB(k, n0 + ${j}u);`)}
${
    R(tm, (i) =>
      R(qn, (q) =>
        `    acc${i}_${q} = fma(vec4<f32>(ta${i}), vec4<f32>(${
          R(4, (c) =>
            `tb${4 * q + c}`, ", ")
        }), acc${i}_${q});`))
  }
  }
${
    R(tm, (i) =>
      R(qn, (q) =>
        R(4, (c) => `  store_c(m0 + ${i}u, n0 + ${4 * q + c}u, acc${i}_${q}[${c}]);`)))
  }
}`;
  return {
    name: `matmul_regblock_${transA ? "T" : "N"}${transB ? "T" : "N"}_${tm}x${tn}`,
    ...matmulInterface(cfg),
    body,
  };
}
