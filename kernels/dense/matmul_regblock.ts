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
 * Math, per thread (rows m0..m0+TM, TN columns n0 + col(j), see `columnOf`), with op()
 * applied by indexing (op(A) = A: `matmul` transposes A first for Aᵀ):
 *
 *   acc[i][j] = Σ_k op(A)[m0+i, k] · op(B ⊙ mask)[k, n0+col(j)]
 *   C[m, n]   = α·acc + β·C[m, n] + bias[n]            (m < M, n < N only)
 *
 * Rows/columns past M/N are computed from whatever robust buffer access returns and never
 * stored, so the K loop carries no bounds checks; only the K % 4 tail is handled separately.
 * Within the K loop, the order of the generated statements matters as much as the tile (see
 * the comments in `regblockMatmulSpec`): LLVM spills most of a big tile, and the order decides
 * how often each spilled value is reloaded.
 *
 * @module
 */

import type { KernelSpec } from "../runtime/kernel.ts";

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
  /**
   * Elements per store of C: 4 when N and C's view offset are multiples of 4 (the register-
   * blocked kernel then stores whole vec4s from interior tiles), else 1.
   */
  widthC: 1 | 4;
  hasBias: boolean;
  hasMask: boolean;
  /** β ≠ 0: C is read. With β = 0, C is write-only (NaNs in old C never propagate). */
  readC: boolean;
  /**
   * K % 4 ≠ 0 possible: emit the scalar loop over the last K % 4 steps. Left out otherwise, as
   * it is a third of a big tile's compile time on llvmpipe (64×32: 27 s with it, 15 s without).
   */
  kTail?: boolean;
  /** Thread tile; TN is a multiple of 4. */
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
  cfg: Pick<MatmulConfig, "widthA" | "widthB" | "widthC" | "hasBias" | "hasMask">,
): Pick<KernelSpec, "bindings" | "params"> {
  const bindings: KernelSpec["bindings"][number][] = [
    { name: "A", dtype: "f32", access: "read", width: cfg.widthA },
    { name: "B", dtype: "f32", access: "read", width: cfg.widthB },
    { name: "C", dtype: "f32", access: "read_write", width: cfg.widthC },
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
  // Element i of C (row-major from the view's start), whichever width C is bound with.
  const cElem = (i: string) =>
    cfg.widthC === 4 ? `C[P.off_C + (${i} >> 2u)][${i} & 3u]` : `C[P.off_C + ${i}]`;
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
  let ci = m * P.N + n;
  var v = P.alpha * acc;
  ${cfg.readC ? `v = v + P.beta * ${cElem("ci")};` : ""}
  ${cfg.hasBias ? "v = v + bias[P.off_bias + n];" : ""}
  ${cElem("ci")} = v;
}`,
  ].join("\n");
}

/**
 * Column of a thread's j-th output column, relative to its first (n0). Quads of 4 columns are
 * interleaved across the workgroup's x lanes (quad q of lane x starts at 4·x + 4·WX·q), so the
 * 8 lanes of one llvmpipe SIMD batch load adjacent vec4s of B and store adjacent vec4s of C
 * (measured at 512³: 64×32 tiles 31 GFLOP/s interleaved, 18 with each lane's columns
 * contiguous).
 */
function columnOf(cfg: Pick<MatmulConfig, "wx">): (j: number) => number {
  return (j) => 4 * cfg.wx * (j >> 2) + (j & 3);
}

/**
 * Stores the accumulators `acc{i}_{q}` (rows m0+i, column quad q of the thread) as α·acc + β·C +
 * bias. With a vec4-bound C (N % 4 = 0), a quad of columns is either wholly inside or wholly
 * outside C, so each accumulator takes one vec4 store under a row guard and a quad guard;
 * otherwise each element goes through the guarded scalar `store_c`. (The scalar form of a 64×16
 * tile compiled ~10 s longer on llvmpipe and ran 11% slower; a loop over a private copy of the
 * tile compiled for minutes, as dynamic indexing there becomes a select ladder.)
 */
function epilogue(cfg: MatmulConfig): string {
  const { tm, tn } = cfg;
  const qn = tn / 4;
  const col = columnOf(cfg);
  if (cfg.widthC === 1) {
    return R(
      tm,
      (i) =>
        R(
          qn,
          (q) => R(4, (c) => `  store_c(m0 + ${i}u, n0 + ${col(4 * q + c)}u, acc${i}_${q}[${c}]);`),
        ),
    );
  }
  const bias = (q: number) =>
    `vec4<f32>(${R(4, (c) => `bias[P.off_bias + n0 + ${col(4 * q + c)}u]`, ", ")})`;
  const store = (i: number, q: number) => {
    const ci = `P.off_C + (((m0 + ${i}u) * P.N + n0 + ${col(4 * q)}u) >> 2u)`;
    let v = `P.alpha * acc${i}_${q}`;
    if (cfg.readC) v += ` + P.beta * C[${ci}]`;
    if (cfg.hasBias) v += ` + bias${q}`;
    return `    if (n0 + ${col(4 * q)}u < P.N) { C[${ci}] = ${v}; }`;
  };
  return `${cfg.hasBias ? R(qn, (q) => `  let bias${q} = ${bias(q)};`) : ""}
${
    R(tm, (i) =>
      `  if (m0 + ${i}u < P.M) {
${R(qn, (q) => store(i, q))}
  }`)
  }`;
}

/** The scalar loop over the last K % 4 steps (after the vec4 loop has covered K & ~3). */
function tailLoop(cfg: MatmulConfig): string {
  const { tm, tn } = cfg;
  const qn = tn / 4;
  const col = columnOf(cfg);
  return `  for (var k = k4; k < P.K; k = k + 1u) {
${R(tm, (i) => `    let ta${i} = opA(m0 + ${i}u, k);`)}
${R(tn, (j) => `    let tb${j} = opB(k, n0 + ${col(j)}u);`)}
${
    R(tm, (i) =>
      R(qn, (q) =>
        `    acc${i}_${q} = fma(vec4<f32>(ta${i}), vec4<f32>(${
          R(4, (c) =>
            `tb${4 * q + c}`, ", ")
        }), acc${i}_${q});`))
  }
  }`;
}

/**
 * Generates the register-blocked kernel for `cfg`.
 *
 * @example
 * ```ts
 * import { regblockMatmulSpec } from "./matmul_regblock.ts";
 * const spec = regblockMatmulSpec({
 *   transA: false, transB: true, widthA: 4, widthB: 4, widthC: 4, hasBias: false,
 *   hasMask: false, readC: false, tm: 4, tn: 8, wx: 8, wy: 8,
 * });
 * spec.name; // "matmul_regblock_NT_4x8"
 * ```
 */
export function regblockMatmulSpec(cfg: MatmulConfig): KernelSpec {
  const { tm, tn, transB, hasMask } = cfg;
  if (cfg.transA) {
    // matmul() transposes A first: this family's Aᵀ kernel ran several times slower than A·B
    // on llvmpipe and leaked host memory with every dispatch.
    throw new RangeError("regblockMatmulSpec: no transA variant; transpose A and use A·B");
  }
  const qn = tn / 4;
  const bLoad = (idx: string) => `ld4_B(${idx})${hasMask ? ` * ld4_mask(${idx})` : ""}`;
  const col = columnOf(cfg);

  // B fragments, loaded first: b(kk, q) is the vec4 op(B)[k+kk, quad q of the thread].
  let loadB: string;
  let b: (kk: number, q: number) => string;
  if (!transB) {
    loadB = R(
      4,
      (kk) =>
        R(qn, (q) => `let b${kk}_${q} = ${bLoad(`(k + ${kk}u) * P.N + n0 + ${col(4 * q)}u`)};`),
    );
    b = (kk, q) => `b${kk}_${q}`;
  } else {
    loadB = R(tn, (j) => `let bt${j} = ${bLoad(`(n0 + ${col(j)}u) * P.K + k`)};`);
    b = (kk, q) => `vec4<f32>(${R(4, (c) => `bt${4 * q + c}[${kk}]`, ", ")})`;
  }
  // Then rows: the A fragment of a row is loaded right before the row's FMAs, which run
  // accumulator by accumulator over the 4 K steps. This order keeps few values live at once:
  // LLVM spills the tile either way, and accumulator-major FMAs reload each spilled accumulator
  // once per 4 FMAs instead of once per FMA (measured on llvmpipe at 512³: 64×16 tiles went from 16.5
  // to 25 GFLOP/s with this order; loading all of A up front, or kk-major FMAs, lost it again).
  const fmaRow = (i: number): string =>
    [
      `let a${i} = ld4_A((m0 + ${i}u) * P.K + k);`,
      ...Array.from(
        { length: qn },
        (_, q) =>
          R(4, (kk) => `acc${i}_${q} = fma(vec4<f32>(a${i}[${kk}]), ${b(kk, q)}, acc${i}_${q});`),
      ),
    ].join("\n");
  const loadAndFma = R(tm, fmaRow);

  const body = `${matmulHelpers(cfg)}
@compute @workgroup_size(${cfg.wx}, ${cfg.wy})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let m0 = (wg.y * ${cfg.wy}u + lid.y) * ${tm}u;
  let n0 = wg.x * ${cfg.wx * tn}u + lid.x * 4u;
  if (m0 >= P.M || n0 >= P.N) { return; }
${R(tm, (i) => R(qn, (q) => `  var acc${i}_${q} = vec4<f32>(0.0);`))}
  let k4 = P.K & ~3u;
  for (var k = 0u; k < k4; k = k + 4u) {
${loadB}
${loadAndFma}
  }
${cfg.kTail ? tailLoop(cfg) : ""}
${epilogue(cfg)}
}`;
  return {
    name: `matmul_regblock_N${transB ? "T" : "N"}_${tm}x${tn}`,
    ...matmulInterface(cfg),
    body,
  };
}
