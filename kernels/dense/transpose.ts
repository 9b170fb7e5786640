/**
 * Dense 2-D transpose `out = xᵀ` (`x: [R, C]` row-major → `out: [C, R]`), the layout change that
 * lets batch-row (M) loops read contiguous vec4s: the sparse weight gradient
 * (`sddmm` with `transposed`) and the SpMM `transX`/`transDy` paths take activations
 * stored `[·, M]`.
 *
 * Variants (`gpu.variant`):
 * - `regblock`: barrier-free, one thread per 4×4 tile: four row loads, four column stores. With
 *   `R % 4 = 0`, `C % 4 = 0` and both views at multiples of 4 elements the loads and stores are
 *   vec4 (8 memory instructions per 16 elements); otherwise scalar with clamped loads and
 *   guarded stores.
 * - `tiled`: 16×16 workgroups stage a tile in shared memory so both the global reads (along
 *   `C`) and the writes (along `R`) are consecutive across lanes (coalesced on real GPUs).
 *
 * @module
 */

import type { Gpu, Grid } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { checkOverlap } from "../runtime/alias.ts";
import { fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";

const PARAMS: KernelSpec["params"] = [["R", "u32"], ["C", "u32"]];

/** Lanes of the regblock kernels (one 4×4 tile each). */
const REG_WG = 64;

/**
 * The barrier-free vec4 kernel: thread `t` transposes tile `(t / (C/4), t % (C/4))`; needs
 * `R % 4 = 0`, `C % 4 = 0` and vec4-aligned views. Launched with `gridFor(R·C/16, 64)`.
 *
 * @example
 * ```ts
 * import { TRANSPOSE_VEC4_SPEC } from "./transpose.ts";
 * TRANSPOSE_VEC4_SPEC.name; // "transpose_vec4"
 * ```
 */
export const TRANSPOSE_VEC4_SPEC: KernelSpec = {
  name: "transpose_vec4",
  bindings: [
    { name: "x", dtype: "f32", access: "read", width: 4 },
    { name: "out", dtype: "f32", access: "read_write", width: 4 },
  ],
  params: PARAMS,
  constants: { WG: REG_WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = linear_index(wg, nwg, lid, WG);
  let c4 = P.C >> 2u;
  let r4 = P.R >> 2u;
  if (t >= r4 * c4) { return; }
  let tr = t / c4;
  let tc = t - tr * c4;
  // x row 4·tr + i, vec4 column tc; out row 4·tc + j, vec4 column tr.
  let xi = P.off_x + 4u * tr * c4 + tc;
  let a = x[xi];
  let b = x[xi + c4];
  let c = x[xi + 2u * c4];
  let d = x[xi + 3u * c4];
  let oi = P.off_out + 4u * tc * r4 + tr;
  out[oi] = vec4<f32>(a.x, b.x, c.x, d.x);
  out[oi + r4] = vec4<f32>(a.y, b.y, c.y, d.y);
  out[oi + 2u * r4] = vec4<f32>(a.z, b.z, c.z, d.z);
  out[oi + 3u * r4] = vec4<f32>(a.w, b.w, c.w, d.w);
}`,
};

/**
 * The barrier-free scalar kernel for any shape and offsets: thread `t` transposes the 4×4 tile
 * `(t / ceil(C/4), t % ceil(C/4))`, clamping loads and skipping stores past the edges.
 *
 * @example
 * ```ts
 * import { TRANSPOSE_SCALAR_SPEC } from "./transpose.ts";
 * TRANSPOSE_SCALAR_SPEC.name; // "transpose_scalar"
 * ```
 */
export const TRANSPOSE_SCALAR_SPEC: KernelSpec = {
  name: "transpose_scalar",
  bindings: [
    { name: "x", dtype: "f32", access: "read" },
    { name: "out", dtype: "f32", access: "read_write" },
  ],
  params: PARAMS,
  constants: { WG: REG_WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = linear_index(wg, nwg, lid, WG);
  let c4 = (P.C + 3u) >> 2u;
  let r4 = (P.R + 3u) >> 2u;
  if (t >= r4 * c4) { return; }
  let tr = t / c4;
  let tc = t - tr * c4;
  for (var i = 0u; i < 4u; i = i + 1u) {
    let r = 4u * tr + i;
    if (r >= P.R) { break; }
    for (var j = 0u; j < 4u; j = j + 1u) {
      let c = 4u * tc + j;
      if (c >= P.C) { break; }
      out[P.off_out + c * P.R + r] = x[P.off_x + r * P.C + c];
    }
  }
}`,
};

/** Side of the shared-memory tile of the tiled kernel. */
const TILE = 16;

/**
 * The workgroup-cooperative kernel: a 16×16 tile is read along `C` into shared memory and written
 * along `R`. Grid `[ceil(C/16)` folded over x/z, `ceil(R/16), 1]`.
 *
 * @example
 * ```ts
 * import { TRANSPOSE_TILED_SPEC } from "./transpose.ts";
 * TRANSPOSE_TILED_SPEC.name; // "transpose_tiled_16"
 * ```
 */
export const TRANSPOSE_TILED_SPEC: KernelSpec = {
  name: `transpose_tiled_${TILE}`,
  bindings: [
    { name: "x", dtype: "f32", access: "read" },
    { name: "out", dtype: "f32", access: "read_write" },
  ],
  params: PARAMS,
  constants: { T: TILE },
  body: `
var<workgroup> tile: array<f32, ${TILE * (TILE + 1)}>;

@compute @workgroup_size(T, T)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let c0 = (wg.z * nwg.x + wg.x) * T;
  let r0 = wg.y * T;
  // Read: lanes along x walk x's columns (consecutive addresses); padded rows avoid bank clashes.
  let r = r0 + lid.y;
  let c = c0 + lid.x;
  if (r < P.R && c < P.C) { tile[lid.y * (T + 1u) + lid.x] = x[P.off_x + r * P.C + c]; }
  workgroupBarrier();
  // Write: lanes along x walk out's columns, i.e. x's rows.
  let orow = c0 + lid.y;
  let ocol = r0 + lid.x;
  if (orow < P.C && ocol < P.R) { out[P.off_out + orow * P.R + ocol] = tile[lid.x * (T + 1u) + lid.y]; }
}`,
};

/**
 * Tiles over x folded into (x, z) so that no grid dimension passes the adapter limit.
 */
function tiledGrid(gpu: Gpu, r: number, c: number): Grid {
  const max = gpu.report.limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.ceil(c / TILE);
  const gy = Math.ceil(r / TILE);
  if (gy > max) throw new RangeError(`transpose: ${r} rows exceed ${max * TILE}`);
  const gz = Math.ceil(gx / max);
  return [Math.ceil(gx / gz), gy, gz];
}

/** Arguments of {@linkcode transpose}. */
export interface TransposeArgs {
  /** `[R, C]` input (may be a view). */
  x: Tensor<"f32">;
  /** `[C, R]` output (may be a view); must not overlap `x`. */
  out: Tensor<"f32">;
}

/**
 * Records `out = xᵀ` for `x: [R, C]`, `out: [C, R]`. Throws {@linkcode ShapeError} before
 * recording anything when shapes or dtypes disagree.
 *
 * @example
 * ```ts ignore
 * // dLogitsᵀ [V, T·B] for the transposed sparse weight gradient
 * transpose(gpu, { x: dLogits, out: dLogitsT });
 * ```
 */
export function transpose(gpu: Gpu, args: TransposeArgs): void {
  const { x, out } = args;
  for (const [name, t] of [["x", x], ["out", out]] as const) {
    if (t.dtype !== "f32" || t.shape.length !== 2) {
      throw new ShapeError(`transpose: ${name} must be a 2-D f32 tensor, got ${t}`);
    }
  }
  const [r, c] = x.shape;
  if (out.shape[0] !== c || out.shape[1] !== r) {
    throw new ShapeError(
      `transpose: out must be [${c}, ${r}] for x ${fmtShape(x.shape)}, got ${fmtShape(out.shape)}`,
    );
  }
  checkOverlap("transpose", { out }, { x });
  if (r === 0 || c === 0) return;
  const params = { R: r, C: c };
  if (gpu.variant === "tiled") {
    gpu.run(TRANSPOSE_TILED_SPEC, { x, out }, params, tiledGrid(gpu, r, c));
    return;
  }
  const vec4 = r % 4 === 0 && c % 4 === 0 && x.offset % 4 === 0 && out.offset % 4 === 0;
  const tiles = Math.ceil(r / 4) * Math.ceil(c / 4);
  gpu.run(
    vec4 ? TRANSPOSE_VEC4_SPEC : TRANSPOSE_SCALAR_SPEC,
    { x, out },
    params,
    gridFor(tiles, REG_WG),
  );
}

/**
 * `x: [R, C]` transposed into pooled scratch `[C, R]`; the caller releases it after recording
 * the work that reads it.
 *
 * @example
 * ```ts ignore
 * const dyT = transposed(gpu, dy);
 * sddmm(gpu, { dy: dyT, x: xT, transposed: true, w, out });
 * gpu.release(dyT);
 * ```
 */
export function transposed(gpu: Gpu, x: Tensor): Tensor<"f32"> {
  if (x.dtype !== "f32") throw new ShapeError(`transposed: x must be f32, got ${x}`);
  const out = gpu.tensor([x.shape[1], x.shape[0]]);
  transpose(gpu, { x: x as Tensor<"f32">, out });
  return out;
}
