/**
 * Top-k selection without a sort (radix select), for the prune/grow step of sparse training:
 * magnitude removal (k smallest |w| among active weights) and random growth (k smallest random
 * keys among inactive positions). Everything stays on the GPU: no readback, no host round trip,
 * the remaining rank and the key prefix live in a small GPU state buffer between dispatches.
 *
 * Semantics: positions `0..n-1` carry u32 keys; an optional candidate filter says which are
 * eligible; exactly `min(k, #eligible)` eligible positions are flagged, those with the k smallest
 * (or largest) keys, ties broken by index (lower index first, for both orders).
 *
 * Dispatches of one {@linkcode selectTopK} call (11, all recorded in order):
 * 1. 4 × (`topk_hist` + `topk_digit`): pass p histograms the 8-bit digit p (most significant
 *    first) of the eligible keys whose higher digits equal the prefix found so far. Each workgroup
 *    counts its chunk in a workgroup-local atomic histogram and stores it as a partial histogram
 *    (no global atomics: kernel.ts declares storage as plain arrays, and partials keep the sum
 *    deterministic anyway); one 256-lane workgroup sums the partials per bin, then one lane scans
 *    the 256 bins, picks the digit holding rank `remaining` and updates prefix and `remaining`.
 *    After 4 passes the prefix is the threshold key T and `remaining` (≥ 1) is how many eligible
 *    keys equal to T belong to the selection.
 * 2. `topk_mark`: flags eligible keys strictly beyond T (< T for "smallest") and counts the
 *    eligible ties (key == T) of each chunk.
 * 3. `topk_ties`: one thread walks the chunk tie counts in index order and hands out `remaining`
 *    greedily: chunk c takes `min(ties[c], remaining left)`.
 * 4. `topk_flag`: chunks taking all their ties flag them in parallel; the one chunk taking part of
 *    its ties splits itself into 256 contiguous lane segments, scans the segment tie counts in
 *    workgroup memory and each lane flags the first ties of its segment that still fit.
 *
 * "largest" runs the same program on `key ^ 0xffffffff` (the largest key becomes the smallest),
 * which leaves index order, and so the tie rule, untouched.
 *
 * Variants: one implementation for both `regblock` and `tiled`. The histogram needs workgroup
 * memory and one barrier per workgroup, and each workgroup covers 256 × `items` (16..192)
 * elements, so the barrier cost is small on llvmpipe too (10M keys select in ~0.2 s there); a
 * barrier-free histogram would need a private 256-bin array per thread plus 256 flushes each.
 *
 * Limits: every per-invocation loop stays under `SOFTWARE_LOOP_BUDGET`: lanes loop over at most
 * 192 elements, the digit and tie kernels over the number of chunks, capped at
 * {@linkcode TOPK_MAX_CHUNKS} (n up to ~2.9e9, beyond any buffer). Workgroup counts stay under
 * 65535 for the same reason, so the grid is one-dimensional.
 *
 * @module
 */

import { checkOverlap } from "../runtime/alias.ts";
import { randomBits } from "../random/random.ts";
import type { BindingDecl, KernelSpec } from "../runtime/kernel.ts";
import { type Gpu, gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import { SOFTWARE_LOOP_BUDGET } from "../runtime/device.ts";
import { fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";

/** Which end of the key order {@linkcode selectTopK} takes. */
export type TopKOrder = "smallest" | "largest";

/** Lanes per workgroup of the chunked kernels; also the number of histogram bins (8-bit digits). */
const WG = 256;
/** Chunks aimed at: enough workgroups to fill a GPU, few enough partials to sum quickly. */
const TARGET_CHUNKS = 1024;
/** Elements per lane per chunk, bounded so a partial-tie chunk walk stays short. */
const MIN_ITEMS = 16;
const MAX_ITEMS = 192;
/**
 * Most chunks (workgroups) one call may use; the digit and tie kernels loop over them in one
 * invocation, so this stays below the software loop budget (with room for the 256-bin scans).
 */
export const TOPK_MAX_CHUNKS = SOFTWARE_LOOP_BUDGET - 1024;

/** Scratch layout (u32): partial histograms [g, 256] | state [4] | ties [g] | take [g]. */
const SCRATCH_WGSL = `
fn st_base() -> u32 { return P.off_scratch + P.g * 256u; }
fn ties_base() -> u32 { return st_base() + 4u; }
fn take_base() -> u32 { return ties_base() + P.g; }`;

const PARAMS = [
  ["n", "u32"],
  ["items", "u32"],
  ["g", "u32"],
  ["flip", "u32"],
  ["want_active", "u32"],
  ["k", "u32"],
  ["digit", "u32"],
] as const;

function eligibleWgsl(hasMask: boolean): string {
  // A NaN mask entry counts as nonzero (active); -0 counts as zero (inactive). A bit test, as a
  // float compare with NaN is folded to "equal to 0" by llvmpipe's fast-math.
  return `fn eligible(i: u32) -> bool { return ${
    hasMask
      ? "((bitcast<u32>(mask[P.off_mask + i]) & 0x7fffffffu) != 0u) == (P.want_active != 0u)"
      : "true"
  }; }`;
}

function bindings(hasMask: boolean, withSelected: boolean): BindingDecl[] {
  const b: BindingDecl[] = [{ name: "keys", dtype: "u32", access: "read" }];
  if (hasMask) b.push({ name: "mask", dtype: "f32", access: "read" });
  b.push({ name: "scratch", dtype: "u32", access: "read_write" });
  if (withSelected) b.push({ name: "selected", dtype: "u32", access: "read_write" });
  return b;
}

function histSpec(hasMask: boolean): KernelSpec {
  return {
    name: `topk_hist${hasMask ? "_masked" : ""}`,
    bindings: bindings(hasMask, false),
    params: PARAMS,
    body: `${SCRATCH_WGSL}
${eligibleWgsl(hasMask)}
var<workgroup> hist: array<atomic<u32>, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wg.x;
  let shift = 24u - 8u * P.digit;
  // Digits above this pass must match the prefix; none are fixed yet in pass 0 (and a shift by
  // 32 would wrap, hence the select).
  let hi = select(0xffffffffu << (32u - 8u * P.digit), 0u, P.digit == 0u);
  let prefix = scratch[st_base()] & hi;
  let base = c * P.items * 256u;
  for (var j: u32 = 0u; j < P.items; j = j + 1u) {
    let i = base + j * 256u + lid;
    if (i < P.n && eligible(i)) {
      let kk = keys[P.off_keys + i] ^ P.flip;
      if ((kk & hi) == prefix) { atomicAdd(&hist[(kk >> shift) & 255u], 1u); }
    }
  }
  workgroupBarrier();
  scratch[P.off_scratch + c * 256u + lid] = atomicLoad(&hist[lid]);
}`,
  };
}

// One workgroup: lane b sums bin b over the g partials, lane 0 picks the digit. State words:
// [0] prefix (the threshold once all 4 passes ran), [1] ties at the threshold still to take,
// [2] 1 when nothing is to be selected (k == 0 or no eligible position).
const DIGIT: KernelSpec = {
  name: "topk_digit",
  bindings: [{ name: "scratch", dtype: "u32", access: "read_write" }],
  params: PARAMS,
  body: `${SCRATCH_WGSL}
var<workgroup> cnt: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  var s: u32 = 0u;
  for (var w: u32 = 0u; w < P.g; w = w + 1u) { s = s + scratch[P.off_scratch + w * 256u + lid]; }
  cnt[lid] = s;
  workgroupBarrier();
  if (lid != 0u) { return; }
  let st = st_base();
  var prefix: u32 = 0u;
  var rem: u32 = 0u;
  if (P.digit == 0u) {
    var total: u32 = 0u;
    for (var d: u32 = 0u; d < 256u; d = d + 1u) { total = total + cnt[d]; }
    rem = min(P.k, total);
    scratch[st] = 0u;
    scratch[st + 1u] = 0u;
    scratch[st + 2u] = select(0u, 1u, rem == 0u);
    if (rem == 0u) { return; }
  } else {
    if (scratch[st + 2u] != 0u) { return; }
    prefix = scratch[st];
    rem = scratch[st + 1u];
  }
  // Smallest digit d whose cumulative count reaches rem; below = count of smaller digits.
  var d: u32 = 0u;
  var below: u32 = 0u;
  loop {
    let c = cnt[d];
    if (below + c >= rem || d == 255u) { break; }
    below = below + c;
    d = d + 1u;
  }
  scratch[st] = prefix | (d << (24u - 8u * P.digit));
  scratch[st + 1u] = rem - below;
}`,
};

function markSpec(hasMask: boolean): KernelSpec {
  return {
    name: `topk_mark${hasMask ? "_masked" : ""}`,
    bindings: bindings(hasMask, true),
    params: PARAMS,
    body: `${SCRATCH_WGSL}
${eligibleWgsl(hasMask)}
var<workgroup> ties: atomic<u32>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wg.x;
  let st = st_base();
  let t = scratch[st];
  let none = scratch[st + 2u] != 0u;
  let base = c * P.items * 256u;
  var mine: u32 = 0u;
  for (var j: u32 = 0u; j < P.items; j = j + 1u) {
    let i = base + j * 256u + lid;
    if (i < P.n) {
      var s: u32 = 0u;
      if (!none && eligible(i)) {
        let kk = keys[P.off_keys + i] ^ P.flip;
        if (kk < t) { s = 1u; } else if (kk == t) { mine = mine + 1u; }
      }
      selected[P.off_selected + i] = s;
    }
  }
  if (mine > 0u) { atomicAdd(&ties, mine); }
  workgroupBarrier();
  if (lid == 0u) { scratch[ties_base() + c] = atomicLoad(&ties); }
}`,
  };
}

const TIES: KernelSpec = {
  name: "topk_ties",
  bindings: [{ name: "scratch", dtype: "u32", access: "read_write" }],
  params: PARAMS,
  body: `${SCRATCH_WGSL}
@compute @workgroup_size(1)
fn main() {
  let st = st_base();
  var rem = select(scratch[st + 1u], 0u, scratch[st + 2u] != 0u);
  for (var c: u32 = 0u; c < P.g; c = c + 1u) {
    let take = min(scratch[ties_base() + c], rem);
    scratch[take_base() + c] = take;
    rem = rem - take;
  }
}`,
};

function flagSpec(hasMask: boolean): KernelSpec {
  return {
    name: `topk_flag${hasMask ? "_masked" : ""}`,
    bindings: bindings(hasMask, true),
    params: PARAMS,
    body: `${SCRATCH_WGSL}
${eligibleWgsl(hasMask)}
var<workgroup> w_take: u32;
var<workgroup> w_count: u32;
var<workgroup> seg: array<u32, 256>;
fn is_tie(i: u32, t: u32) -> bool {
  return i < P.n && eligible(i) && (keys[P.off_keys + i] ^ P.flip) == t;
}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wg.x;
  if (lid == 0u) {
    w_take = scratch[take_base() + c];
    w_count = scratch[ties_base() + c];
  }
  let take = workgroupUniformLoad(&w_take);
  let count = workgroupUniformLoad(&w_count);
  if (take == 0u) { return; }
  let t = scratch[st_base()];
  let base = c * P.items * 256u;
  if (take == count) {
    for (var j: u32 = 0u; j < P.items; j = j + 1u) {
      let i = base + j * 256u + lid;
      if (is_tie(i, t)) { selected[P.off_selected + i] = 1u; }
    }
    return;
  }
  // The boundary chunk: lane segments in index order, exclusive scan of their tie counts.
  let s0 = base + lid * P.items;
  var mine: u32 = 0u;
  for (var j: u32 = 0u; j < P.items; j = j + 1u) {
    if (is_tie(s0 + j, t)) { mine = mine + 1u; }
  }
  seg[lid] = mine;
  workgroupBarrier();
  if (lid == 0u) {
    var acc: u32 = 0u;
    for (var u: u32 = 0u; u < 256u; u = u + 1u) {
      let v = seg[u];
      seg[u] = acc;
      acc = acc + v;
    }
  }
  workgroupBarrier();
  let before = seg[lid];
  var left = min(mine, select(0u, take - before, take > before));
  for (var j: u32 = 0u; j < P.items; j = j + 1u) {
    if (left == 0u) { break; }
    let i = s0 + j;
    if (is_tie(i, t)) {
      selected[P.off_selected + i] = 1u;
      left = left - 1u;
    }
  }
}`,
  };
}

const HIST = [histSpec(false), histSpec(true)] as const;
const MARK = [markSpec(false), markSpec(true)] as const;
const FLAG = [flagSpec(false), flagSpec(true)] as const;

const MAGNITUDE_WG = 256;
const MAGNITUDE: KernelSpec = {
  name: "topk_magnitude_keys",
  bindings: [
    { name: "x", dtype: "f32", access: "read" },
    { name: "keys", dtype: "u32", access: "read_write" },
  ],
  params: [["n", "u32"]],
  constants: { WG: MAGNITUDE_WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.n) { return; }
  // Bit tests, not float compares: NaN checks on floats may be folded away by fast-math.
  let b = bitcast<u32>(x[P.off_x + i]) & 0x7fffffffu;
  keys[P.off_keys + i] = select(b, 0xffffffffu, b > 0x7f800000u);
}`,
};

function expectVector(what: string, t: Tensor, n: number, dtype: "u32" | "f32"): void {
  if (t.dtype !== dtype) {
    throw new ShapeError(`${what}: expected dtype ${dtype}, got ${t.dtype} ${fmtShape(t.shape)}`);
  }
  if (t.shape.length !== 1 || t.shape[0] !== n) {
    throw new ShapeError(`${what}: expected shape [${n}], got ${fmtShape(t.shape)}`);
  }
}

function firstDim(what: string, t: Tensor): number {
  if (t.shape.length !== 1) {
    throw new ShapeError(`${what}: expected shape [n], got ${fmtShape(t.shape)}`);
  }
  return t.shape[0];
}

/**
 * Writes the magnitude key of each element: `keys[i]` = the f32 bits of `|x[i]|`, which as u32
 * are ordered like `|x|` (IEEE-754 non-negative floats sort as their bit patterns): -0 and +0 both
 * give 0, subnormals sort below normals, +Inf is 0x7F800000. Every NaN (any sign or payload)
 * gives 0xFFFFFFFF, above every number, so NaNs tie with each other and are ordered by index.
 * `x: [n]` f32, `keys: [n]` u32 (views allowed; `keys` may not overlap `x`).
 *
 * @example
 * ```ts ignore
 * magnitudeKeys(gpu, { x: weights, keys });
 * selectTopK(gpu, { keys, k: nDrop, order: "smallest", selected, candidates: { mask, active: true } });
 * ```
 */
export function magnitudeKeys(gpu: Gpu, args: { x: Tensor<"f32">; keys: Tensor<"u32"> }): void {
  const { x, keys } = args;
  const n = firstDim("magnitudeKeys x", x);
  expectVector("magnitudeKeys x", x, n, "f32");
  expectVector("magnitudeKeys keys", keys, n, "u32");
  checkOverlap("magnitudeKeys", { keys }, { x });
  gpu.run(MAGNITUDE, { x, keys }, { n }, gridFor(n, MAGNITUDE_WG));
}

/**
 * Writes random keys for random growth: `keys[i]` is the Philox word of element `i` (index
 * within the view) under `(seed, stream)` — the project's element scheme (`philox.ts`, the bits
 * of `randomBits` with `offset = stream`), so the same seed and stream give the same keys on every
 * adapter. The keys are i.i.d. uniform u32, so the `k` smallest among the candidates are a uniform
 * random k-subset, up to equal keys at the threshold (resolved by index), whose probability is
 * below n / 2^32 per selection. Use a fresh `stream` per prune/grow round. `keys: [n]` u32;
 * `seed`, `stream`: u32.
 *
 * @example
 * ```ts ignore
 * randomKeys(gpu, { keys, seed: 42, stream: round });
 * selectTopK(gpu, { keys, k: nGrow, order: "smallest", selected, candidates: { mask, active: false } });
 * ```
 */
export function randomKeys(
  gpu: Gpu,
  args: { keys: Tensor<"u32">; seed: number; stream: number },
): void {
  const { keys, seed, stream } = args;
  const n = firstDim("randomKeys keys", keys);
  expectVector("randomKeys keys", keys, n, "u32");
  randomBits(gpu, { out: keys, seed, offset: stream });
}

/**
 * Chunking of a selection over `n` positions: each chunk is one workgroup of 256 lanes with
 * `items` elements per lane; `chunks` workgroups cover n. Tests use it to cross chunk boundaries.
 *
 * @example
 * ```ts
 * import { topkChunks } from "./topk.ts";
 * topkChunks(300_000); // { items: 16, chunks: 74 }
 * ```
 */
export function topkChunks(n: number): { items: number; chunks: number } {
  const items = Math.min(MAX_ITEMS, Math.max(MIN_ITEMS, Math.ceil(n / (WG * TARGET_CHUNKS))));
  return { items, chunks: Math.ceil(n / (WG * items)) };
}

/**
 * Flags the `min(k, #eligible)` eligible positions with the smallest (or largest) keys:
 * `selected[i] = 1` for chosen positions, 0 for all others (every entry of `selected` is
 * written). Ties are broken by index, lower index first, for both orders, so the result is a
 * deterministic function of keys, k, order and eligibility. Without `candidates` every position is
 * eligible; with them position i is eligible iff `(mask[i] != 0) === active` (`active: true`:
 * among active weights, e.g. magnitude removal; `false`: among inactive positions, e.g. growth).
 *
 * `keys: [n]` u32, `selected: [n]` u32, `candidates.mask: [n]` f32 (any of them may be views with
 * offsets, e.g. one gate block of a weight matrix); `k`: integer ≥ 0 (values above n select all
 * eligible positions). `selected` may not overlap `keys` or `mask`. Records 11 dispatches and uses
 * a pooled scratch buffer of `258 * chunks + 4` u32 that is returned to the pool when recorded
 * (later work is ordered after it on the queue).
 *
 * @example
 * ```ts ignore
 * const keys = gpu.tensor([n], "u32");
 * const drop = gpu.tensor([n], "u32");
 * magnitudeKeys(gpu, { x: w, keys });
 * selectTopK(gpu, { keys, k: 1000, order: "smallest", selected: drop, candidates: { mask, active: true } });
 * ```
 */
export function selectTopK(
  gpu: Gpu,
  args: {
    keys: Tensor<"u32">;
    k: number;
    order: TopKOrder;
    selected: Tensor<"u32">;
    candidates?: { mask: Tensor<"f32">; active: boolean };
  },
): void {
  const { keys, k, order, selected, candidates } = args;
  const n = firstDim("selectTopK keys", keys);
  expectVector("selectTopK keys", keys, n, "u32");
  expectVector("selectTopK selected", selected, n, "u32");
  if (candidates) expectVector("selectTopK candidates.mask", candidates.mask, n, "f32");
  if (!Number.isInteger(k) || k < 0) {
    throw new RangeError(`selectTopK: k must be an integer >= 0, got ${k}`);
  }
  if (order !== "smallest" && order !== "largest") {
    throw new RangeError(`selectTopK: order must be "smallest" or "largest", got "${order}"`);
  }
  checkOverlap("selectTopK", { selected }, { keys, mask: candidates?.mask });
  if (n === 0) return;
  const { items, chunks } = topkChunks(n);
  if (chunks > TOPK_MAX_CHUNKS) {
    throw new ShapeError(`selectTopK: n = ${n} needs ${chunks} chunks, over ${TOPK_MAX_CHUNKS}`);
  }
  const m = candidates ? 1 : 0;
  const scratch = gpu.tensor([chunks * 258 + 4], "u32");
  const t: Record<string, Tensor> = { keys, scratch, selected };
  if (candidates) t.mask = candidates.mask;
  const params = {
    n,
    items,
    g: chunks,
    flip: order === "largest" ? 0xffffffff : 0,
    "want_active": candidates?.active ? 1 : 0,
    k: Math.min(k, n),
    digit: 0,
  };
  const grid = [chunks, 1, 1] as const;
  for (let pass = 0; pass < 4; pass++) {
    gpu.run(HIST[m], t, { ...params, digit: pass }, grid);
    gpu.run(DIGIT, { scratch }, { ...params, digit: pass }, [1, 1, 1]);
  }
  gpu.run(MARK[m], t, params, grid);
  gpu.run(TIES, { scratch }, params, [1, 1, 1]);
  gpu.run(FLAG[m], t, params, grid);
  gpu.release(scratch);
}
