/**
 * Exclusive prefix sum of u32 tensors on the GPU, the building block of stream compaction (dense
 * mask → sparse positions in `sparse_convert.ts`).
 *
 * Both variants are multi-level: chunk sums → exclusive scan of the chunk sums (recursively, the
 * same function) → per-chunk scan seeded with its chunk's offset. Each level shrinks `n` by the
 * chunk length, so 70M elements take 3 (tiled) or 4 (regblock) levels and every thread's loops
 * stay far below the software loop budget.
 *
 * - `regblock`: one thread scans a chunk of {@linkcode SCAN_CHUNK_REGBLOCK} consecutive elements
 *   serially; no barriers (llvmpipe pays a coroutine switch per barrier).
 * - `tiled`: one 256-lane workgroup per tile of {@linkcode SCAN_TILE} elements; loads and stores
 *   are coalesced through workgroup memory, lanes scan 8 consecutive elements each and the 256
 *   lane totals are scanned in shared memory (Hillis–Steele).
 *
 * Integer addition is associative, so both variants give identical, deterministic results. Sums
 * wrap modulo 2^32 (u32 arithmetic), also identically in both.
 *
 * @module
 */

import { checkOverlap } from "../runtime/alias.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { type Gpu, gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import { fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";

/** Elements one `regblock` thread scans serially (one chunk). */
export const SCAN_CHUNK_REGBLOCK = 256;
const REG_WG = 64;
const TILE_WG = 256;
const TILE_ITEMS = 8;
/** Elements one `tiled` workgroup scans (256 lanes × 8). */
export const SCAN_TILE = TILE_WG * TILE_ITEMS;

const REG_BINDINGS_SUM = [
  { name: "input", dtype: "u32", access: "read" },
  { name: "sums", dtype: "u32", access: "read_write" },
] as const;
const SCAN_BINDINGS = [
  { name: "input", dtype: "u32", access: "read" },
  { name: "base", dtype: "u32", access: "read" },
  { name: "output", dtype: "u32", access: "read_write" },
] as const;

// Thread t sums chunk t: input[t*C .. min((t+1)*C, n)).
const REG_SUM: KernelSpec = {
  name: "scan_sum_regblock",
  bindings: REG_BINDINGS_SUM,
  params: [["n", "u32"], ["chunks", "u32"]],
  constants: { C: SCAN_CHUNK_REGBLOCK, WG: REG_WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(${REG_WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = linear_index(wg, nwg, lid, WG);
  if (t >= P.chunks) { return; }
  let start = t * C;
  let end = min(start + C, P.n);
  var s: u32 = 0u;
  for (var i: u32 = start; i < end; i = i + 1u) { s = s + input[P.off_input + i]; }
  sums[P.off_sums + t] = s;
}`,
};

// Thread t scans chunk t seeded with base[t] (0 when there is one chunk and no base), writing
// inclusive sums one slot to the right, so output[n] = total; thread 0 writes output[0] = 0.
const REG_SCAN: KernelSpec = {
  name: "scan_chunks_regblock",
  bindings: SCAN_BINDINGS,
  params: [["n", "u32"], ["chunks", "u32"], ["has_base", "u32"]],
  constants: { C: SCAN_CHUNK_REGBLOCK, WG: REG_WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(${REG_WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = linear_index(wg, nwg, lid, WG);
  if (t >= P.chunks) { return; }
  var run: u32 = 0u;
  if (P.has_base != 0u) { run = base[P.off_base + t]; }
  if (t == 0u) { output[P.off_output] = 0u; }
  let start = t * C;
  let end = min(start + C, P.n);
  for (var i: u32 = start; i < end; i = i + 1u) {
    run = run + input[P.off_input + i];
    output[P.off_output + i + 1u] = run;
  }
}`,
};

// Workgroup g sums tile g; the element order is irrelevant for integers, so lanes read
// coalesced (stride 256) and a shared-memory tree combines the lanes.
const TILE_SUM: KernelSpec = {
  name: "scan_sum_tiled",
  bindings: REG_BINDINGS_SUM,
  params: [["n", "u32"], ["chunks", "u32"]],
  constants: { WG: TILE_WG, ITEMS: TILE_ITEMS, TILE: SCAN_TILE },
  body: `
var<workgroup> sh: array<u32, ${TILE_WG}>;
@compute @workgroup_size(${TILE_WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wg.y * nwg.x + wg.x;
  if (g >= P.chunks) { return; }
  var s: u32 = 0u;
  for (var k: u32 = 0u; k < ITEMS; k = k + 1u) {
    let i = g * TILE + k * WG + lid;
    if (i < P.n) { s = s + input[P.off_input + i]; }
  }
  sh[lid] = s;
  workgroupBarrier();
  for (var d: u32 = WG / 2u; d > 0u; d = d >> 1u) {
    if (lid < d) { sh[lid] = sh[lid] + sh[lid + d]; }
    workgroupBarrier();
  }
  if (lid == 0u) { sums[P.off_sums + g] = sh[0]; }
}`,
};

// Workgroup g scans tile g: a coalesced load into shared memory, a serial scan of 8 consecutive
// elements per lane, a Hillis–Steele scan of the 256 lane totals, then a coalesced store of the
// inclusive sums one slot to the right (so output[n] = total).
const TILE_SCAN: KernelSpec = {
  name: "scan_tiles_tiled",
  bindings: SCAN_BINDINGS,
  params: [["n", "u32"], ["chunks", "u32"], ["has_base", "u32"]],
  constants: { WG: TILE_WG, ITEMS: TILE_ITEMS, TILE: SCAN_TILE },
  body: `
var<workgroup> tile: array<u32, ${SCAN_TILE}>;
var<workgroup> sh: array<u32, ${TILE_WG}>;
@compute @workgroup_size(${TILE_WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = wg.y * nwg.x + wg.x;
  if (g >= P.chunks) { return; }
  for (var k: u32 = 0u; k < ITEMS; k = k + 1u) {
    let i = g * TILE + k * WG + lid;
    var v: u32 = 0u;
    if (i < P.n) { v = input[P.off_input + i]; }
    tile[k * WG + lid] = v;
  }
  workgroupBarrier();
  var mine: u32 = 0u;
  for (var k: u32 = 0u; k < ITEMS; k = k + 1u) { mine = mine + tile[lid * ITEMS + k]; }
  sh[lid] = mine;
  workgroupBarrier();
  for (var d: u32 = 1u; d < WG; d = d << 1u) {
    var v: u32 = 0u;
    if (lid >= d) { v = sh[lid - d]; }
    workgroupBarrier();
    sh[lid] = sh[lid] + v;
    workgroupBarrier();
  }
  var run: u32 = sh[lid] - mine;
  if (P.has_base != 0u) { run = run + base[P.off_base + g]; }
  for (var k: u32 = 0u; k < ITEMS; k = k + 1u) {
    run = run + tile[lid * ITEMS + k];
    tile[lid * ITEMS + k] = run;
  }
  workgroupBarrier();
  if (g == 0u && lid == 0u) { output[P.off_output] = 0u; }
  for (var k: u32 = 0u; k < ITEMS; k = k + 1u) {
    let i = g * TILE + k * WG + lid;
    if (i < P.n) { output[P.off_output + i + 1u] = tile[k * WG + lid]; }
  }
}`,
};

/** Records the scan of the first `n` elements of `input` into `output[0..n]` (no checks). */
function scanLevel(gpu: Gpu, input: Tensor, output: Tensor, n: number): void {
  const tiled = gpu.variant === "tiled";
  const per = tiled ? SCAN_TILE : SCAN_CHUNK_REGBLOCK;
  // n = 0 still takes one chunk, which writes output[0] = 0.
  const chunks = Math.max(1, Math.ceil(n / per));
  const grid = tiled ? gridFor(chunks, 1) : gridFor(chunks, REG_WG);
  const scanSpec = tiled ? TILE_SCAN : REG_SCAN;
  if (chunks === 1) {
    // WebGPU has no empty bindings; `base` is not read when has_base = 0.
    const dummy = gpu.tensor([1], "u32");
    gpu.run(scanSpec, { input, base: dummy, output }, { n, chunks, has_base: 0 }, grid);
    gpu.release(dummy);
    return;
  }
  // Scratch is released right after recording: the pool hands it only to later recordings,
  // which run after this scan has consumed it.
  const sums = gpu.tensor([chunks], "u32");
  const offsets = gpu.tensor([chunks + 1], "u32");
  gpu.run(tiled ? TILE_SUM : REG_SUM, { input, sums }, { n, chunks }, grid);
  scanLevel(gpu, sums, offsets, chunks);
  gpu.run(scanSpec, { input, base: offsets, output }, { n, chunks, has_base: 1 }, grid);
  gpu.release(sums);
  gpu.release(offsets);
}

/** Arguments of {@linkcode exclusiveScanU32}. */
export interface ExclusiveScanArgs {
  /** Values to scan, `[n]` (any shape: its `size` elements in row-major order); u32. */
  input: Tensor<"u32">;
  /** Receives the `n + 1` prefix sums, `[n + 1]` (any shape of that size); u32. */
  output: Tensor<"u32">;
}

/**
 * Records `output[0] = 0`, `output[i + 1] = input[0] + … + input[i]` (so `output[n]` is the
 * total), modulo 2^32. `n` may be 0. Needs no in-place operation (`output` must not overlap
 * `input`) and allocates `O(n / 256)` scratch from the pool, released after recording.
 *
 * @example
 * ```ts ignore
 * const flags = gpu.upload([4], [1, 0, 1, 1], "u32");
 * const pos = gpu.tensor([5], "u32");
 * exclusiveScanU32(gpu, { input: flags, output: pos });
 * await gpu.read(pos); // Uint32Array [0, 1, 1, 2, 3]
 * ```
 */
export function exclusiveScanU32(gpu: Gpu, args: ExclusiveScanArgs): void {
  const { input, output } = args;
  if (input.dtype !== "u32") {
    throw new ShapeError(`scan input: expected dtype u32, got ${input.dtype} ${input}`);
  }
  if (output.dtype !== "u32") {
    throw new ShapeError(`scan output: expected dtype u32, got ${output.dtype} ${output}`);
  }
  const n = input.size;
  if (output.size !== n + 1) {
    throw new ShapeError(
      `scan output: expected ${n + 1} elements (input ${fmtShape(input.shape)} + 1), got ${
        fmtShape(output.shape)
      }`,
    );
  }
  if (n >= 0xffffffff) {
    throw new ShapeError(`scan input: ${n} elements exceed u32 indexing`);
  }
  checkOverlap("scan", { output }, { input });
  scanLevel(gpu, input, output, n);
}
