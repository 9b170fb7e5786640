/**
 * Deterministic reductions of f32 tensors to one scalar (sum, sum of squares, max), written into
 * one element of an output tensor so that several tensors' results can be gathered into a vector
 * and reduced again on the GPU; and the gradient-clipping coefficient computed from such a vector.
 * Together they form a global gradient norm and its clip factor without any readback.
 *
 * Determinism: the summation order depends only on the element count and the kernel variant (the
 * number of partials is a function of `n`), so the same input gives bit-identical results on
 * every run.
 *
 * @module
 */

import type { KernelSpec } from "../runtime/kernel.ts";
import type { Gpu } from "../runtime/runtime.ts";
import { fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";

/** What {@linkcode reduce} computes: Σx, Σx², or max x. */
export type ReduceOp = "sum" | "sumsq" | "max";

const OP_CODE: Record<ReduceOp, number> = { sum: 0, sumsq: 1, max: 2 };

/** Bit pattern of f32 −∞, passed as a parameter because WGSL has no infinite literals. */
const NEG_INF_BITS = 0xff800000;

// regblock: up to this many elements are reduced by one thread in a single dispatch; above it,
// stage 1 gives each of `parts` threads a strided slice of ~REG_CHUNK elements (at most
// REG_MAX_PARTS threads, so the single-thread final stage stays short).
const REG_SINGLE_MAX = 1024;
const REG_CHUNK = 256;
const REG_MAX_PARTS = 4096;
const REG_WG = 64;
// tiled: one 256-lane workgroup reduces up to TILE_SINGLE_MAX elements alone; above it, stage 1
// runs `parts` workgroups (each lane ~TILE_ITEMS elements, grid-strided) and one workgroup
// combines their partials.
const TILE_WG = 256;
const TILE_SINGLE_MAX = 4096;
const TILE_ITEMS = 8;
const TILE_MAX_PARTS = 1024;

const COMMON_WGSL = `
fn identity() -> f32 {
  if (OP == 2u) { return bitcast<f32>(P.neg_inf_bits); }
  return 0.0;
}
fn map_in(v: f32) -> f32 {
  if (OP == 1u) { return v * v; }
  return v;
}
fn combine(a: f32, b: f32) -> f32 {
  if (OP == 2u) { return max(a, b); }
  return a + b;
}`;

const BINDINGS = [
  { name: "x", dtype: "f32", access: "read" },
  { name: "y", dtype: "f32", access: "read_write" },
] as const;
const PARAMS = [["n", "u32"], ["parts", "u32"], ["out_index", "u32"], [
  "neg_inf_bits",
  "u32",
]] as const;

// Thread t of `parts` folds x[t], x[t + parts], ... and writes y[out_index + t]; with parts = 1
// this is also the final stage. No barriers: llvmpipe pays a coroutine switch for each.
const REGBLOCK_BODY = `${COMMON_WGSL}
@compute @workgroup_size(${REG_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= P.parts) { return; }
  var acc: f32 = identity();
  for (var i: u32 = t; i < P.n; i = i + P.parts) {
    acc = combine(acc, map_in(x[P.off_x + i]));
  }
  y[P.off_y + P.out_index + t] = acc;
}`;

// Workgroup g of `parts` folds a grid-strided slice per lane, then a shared-memory tree
// combines the 256 lane values; lane 0 writes y[out_index + g].
const TILED_BODY = `${COMMON_WGSL}
var<workgroup> sh: array<f32, ${TILE_WG}>;
@compute @workgroup_size(${TILE_WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let stride = P.parts * ${TILE_WG}u;
  var acc: f32 = identity();
  for (var i: u32 = wg.x * ${TILE_WG}u + lid; i < P.n; i = i + stride) {
    acc = combine(acc, map_in(x[P.off_x + i]));
  }
  sh[lid] = acc;
  workgroupBarrier();
  for (var s: u32 = ${TILE_WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { sh[lid] = combine(sh[lid], sh[lid + s]); }
    workgroupBarrier();
  }
  if (lid == 0u) { y[P.off_y + P.out_index + wg.x] = sh[0]; }
}`;

const specs = new Map<string, KernelSpec>();

function reduceSpec(variant: "regblock" | "tiled", op: number): KernelSpec {
  const key = `${variant}:${op}`;
  let spec = specs.get(key);
  if (!spec) {
    spec = {
      name: `reduce_${variant}_${op}`,
      bindings: BINDINGS,
      params: PARAMS,
      constants: { OP: op },
      body: variant === "regblock" ? REGBLOCK_BODY : TILED_BODY,
    };
    specs.set(key, spec);
  }
  return spec;
}

/** Number of stage-1 partials for `n` elements (1 means a single dispatch, no scratch). */
function partsFor(variant: "regblock" | "tiled", n: number): number {
  if (variant === "regblock") {
    return n <= REG_SINGLE_MAX ? 1 : Math.min(REG_MAX_PARTS, Math.ceil(n / REG_CHUNK));
  }
  return n <= TILE_SINGLE_MAX ? 1 : Math.min(TILE_MAX_PARTS, Math.ceil(n / (TILE_WG * TILE_ITEMS)));
}

function dispatch(
  gpu: Gpu,
  op: number,
  x: Tensor,
  y: Tensor,
  outIndex: number,
  parts: number,
): void {
  const variant = gpu.variant;
  const spec = reduceSpec(variant, op);
  const groups = variant === "regblock" ? Math.ceil(parts / REG_WG) : parts;
  gpu.run(
    spec,
    { x, y },
    { n: x.size, parts, out_index: outIndex, neg_inf_bits: NEG_INF_BITS },
    [groups, 1, 1],
  );
}

/** Arguments of {@linkcode reduce}. */
export interface ReduceArgs {
  op: ReduceOp;
  /** Input, any shape (read as its `size` contiguous elements); f32. May be empty. */
  x: Tensor;
  /** Output vector, any shape; f32. Only `out[outIndex]` is written. */
  out: Tensor;
  /** Element of `out` to write; default 0. */
  outIndex?: number;
}

/**
 * Records `out[outIndex] = op(x)`: `sum` = Σx, `sumsq` = Σx², `max` = max x. Empty `x` gives
 * 0 for `sum`/`sumsq` and −∞ (the identity of max, as an f32 bit pattern) for `max`. `max` does
 * not promise NaN propagation (WGSL's `max` with NaN is implementation-defined); `sum` and
 * `sumsq` do propagate NaN and ∞.
 *
 * Large inputs take two dispatches (per-thread or per-workgroup partials, then one final pass)
 * through a scratch tensor from the pool. The scratch is released right after recording: the
 * pool only hands the buffer to later recordings, and all recorded work runs in recording order,
 * so no later use can overwrite it before this reduction has consumed it.
 *
 * `out` may share a buffer with `x` (e.g. reducing a gathered vector into its own last slot), as
 * long as `out[outIndex]` lies outside `x`.
 *
 * @example
 * ```ts ignore
 * const sq = gpu.tensor([params.length]);
 * params.forEach((p, i) => reduce(gpu, { op: "sumsq", x: p.grad, out: sq, outIndex: i }));
 * ```
 */
export function reduce(gpu: Gpu, args: ReduceArgs): void {
  const { op, x, out } = args;
  const outIndex = args.outIndex ?? 0;
  const code = OP_CODE[op];
  if (code === undefined) throw new RangeError(`reduce: unknown op "${op}"`);
  if (x.dtype !== "f32") {
    throw new ShapeError(`reduce x: expected dtype f32, got ${x.dtype} ${fmtShape(x.shape)}`);
  }
  if (out.dtype !== "f32") {
    throw new ShapeError(`reduce out: expected dtype f32, got ${out.dtype} ${fmtShape(out.shape)}`);
  }
  if (!Number.isInteger(outIndex) || outIndex < 0 || outIndex >= out.size) {
    throw new ShapeError(
      `reduce outIndex: expected an integer in [0, ${out.size}) for out ${
        fmtShape(out.shape)
      }, got ${outIndex}`,
    );
  }
  const target = out.offset + outIndex;
  if (x.buffer === out.buffer && target >= x.offset && target < x.offset + x.size) {
    throw new ShapeError(`reduce: out[${outIndex}] lies inside x ${fmtShape(x.shape)}`);
  }
  const parts = partsFor(gpu.variant, x.size);
  if (parts === 1) {
    dispatch(gpu, code, x, out, outIndex, 1);
    return;
  }
  const partials = gpu.tensor([parts]);
  dispatch(gpu, code, x, partials, 0, parts);
  // Partial sums of squares are added, not squared again.
  dispatch(gpu, code === OP_CODE.max ? code : OP_CODE.sum, partials, out, outIndex, 1);
  gpu.release(partials);
}

const CLIP_EPS = 1e-6;

function clipSpec(withNorm: boolean): KernelSpec {
  return {
    name: withNorm ? "clip_coefficient_norm" : "clip_coefficient",
    bindings: [
      { name: "sumsq", dtype: "f32", access: "read" },
      { name: "out", dtype: "f32", access: "read_write" },
      ...(withNorm ? [{ name: "norm", dtype: "f32", access: "read_write" } as const] : []),
    ],
    params: [["k", "u32"], ["max_norm", "f32"]],
    // One thread: k is the number of parameter tensors (tens), and a fixed sequential order
    // keeps the result deterministic.
    body: `
@compute @workgroup_size(1)
fn main() {
  var s: f32 = 0.0;
  for (var i: u32 = 0u; i < P.k; i = i + 1u) { s = s + sumsq[P.off_sumsq + i]; }
  let total = sqrt(s);
  out[P.off_out] = min(1.0, P.max_norm / (total + ${CLIP_EPS}));
  ${withNorm ? "norm[P.off_norm] = total;" : ""}
}`,
  };
}

const CLIP = clipSpec(false);
const CLIP_NORM = clipSpec(true);

/** Arguments of {@linkcode clipCoefficient}. */
export interface ClipCoefficientArgs {
  /** Per-tensor sums of squares, `[k]` (any shape; its `size` values are summed); f32. */
  sumsq: Tensor;
  /** Largest allowed global L2 norm; finite and > 0. */
  maxNorm: number;
  /** Receives the clip factor; `[1]`, f32. */
  out: Tensor;
  /** Optionally receives the total norm √Σsumsq; `[1]`, f32. */
  norm?: Tensor;
}

/**
 * Records PyTorch's `clip_grad_norm_` factor `out = min(1, maxNorm / (√Σ sumsq + 1e-6))` (and
 * the total norm into `norm`). PyTorch takes the norm of the per-tensor norms, which equals
 * √Σ sumsq. Optimizer kernels read `out` as their `gradScale`, so clipping never reads back.
 *
 * @example
 * ```ts ignore
 * clipCoefficient(gpu, { sumsq: sq, maxNorm: 0.25, out: scale });
 * sgdStep(gpu, { w, g, lr: 20, gradScale: scale });
 * ```
 */
export function clipCoefficient(gpu: Gpu, args: ClipCoefficientArgs): void {
  const { sumsq, maxNorm, out, norm } = args;
  if (sumsq.dtype !== "f32") {
    throw new ShapeError(
      `clipCoefficient sumsq: expected dtype f32, got ${sumsq.dtype} ${fmtShape(sumsq.shape)}`,
    );
  }
  for (const [what, t] of [["out", out], ["norm", norm]] as const) {
    if (t && (t.dtype !== "f32" || t.size !== 1)) {
      throw new ShapeError(
        `clipCoefficient ${what}: expected f32 [1], got ${t.dtype} ${fmtShape(t.shape)}`,
      );
    }
  }
  if (!(Number.isFinite(maxNorm) && maxNorm > 0)) {
    throw new RangeError(`clipCoefficient: maxNorm must be finite and > 0, got ${maxNorm}`);
  }
  const tensors: Record<string, Tensor> = norm ? { sumsq, out, norm } : { sumsq, out };
  for (const [what, t] of Object.entries(tensors)) {
    if (what !== "sumsq" && t.buffer === sumsq.buffer) {
      const at = t.offset;
      if (at >= sumsq.offset && at < sumsq.offset + sumsq.size) {
        throw new ShapeError(`clipCoefficient: ${what} lies inside sumsq ${fmtShape(sumsq.shape)}`);
      }
    }
  }
  const spec = norm ? CLIP_NORM : CLIP;
  gpu.run(spec, tensors, { k: sumsq.size, max_norm: maxNorm }, [1, 1, 1]);
}
