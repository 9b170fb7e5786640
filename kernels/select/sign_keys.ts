/**
 * Selection keys for the removal rules that are not plain magnitude: SET's sign-aware removal
 * (the smallest positive weights and the negative weights closest to zero, spec §7.3) and the
 * per-tensor counts that sign-aware and threshold removal (DSR's global |w| < H, spec §7.4)
 * need before they know how many weights to take.
 *
 * Keys are u32 and ordered like the quantity they rank, so `selectTopK` (radix select, exact
 * counts, ties to the lower index) does the selection:
 *
 * ```text
 * signed keys, side s:  keys[i] = |x[i]| bits   if sign bit of x[i] is on side s (NaN → 0xFFFFFFFE)
 *                                 0xFFFFFFFF    otherwise (ranks after every key of side s)
 * below indicator:      out[i]  = 1 if mask[i] != 0 and keys[i] < below, else 0   (f32)
 * ```
 *
 * The side is the sign bit, so +0 is "positive" and −0 "negative": a zero-valued active weight
 * (a weight grown at 0 that has not moved yet) is the smallest of its side and goes first, as
 * in the reference code, where an active weight equal to 0 never survives the SET removal.
 *
 * One thread per element, no barriers: no variant difference, one version.
 *
 * @module
 */

import { checkOverlap } from "../runtime/alias.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { type Gpu, gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import { fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";

/** Which weights a signed key ranks: sign bit clear (`positive`, +0 included) or set. */
export type SignSide = "positive" | "negative";

const WG = 256;

const SIGNED: KernelSpec = {
  name: "signed_magnitude_keys",
  bindings: [
    { name: "x", dtype: "f32", access: "read" },
    { name: "keys", dtype: "u32", access: "read_write" },
  ],
  params: [["n", "u32"], ["negative", "u32"]],
  constants: { WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.n) { return; }
  // Bit tests, not float compares: NaN and -0 checks on floats may be folded away by fast-math.
  let b = bitcast<u32>(x[P.off_x + i]);
  let mag = b & 0x7fffffffu;
  let key = select(mag, 0xfffffffeu, mag > 0x7f800000u);
  let mine = (b >> 31u) == P.negative;
  keys[P.off_keys + i] = select(0xffffffffu, key, mine);
}`,
};

const BELOW: KernelSpec = {
  name: "key_below_indicator",
  bindings: [
    { name: "keys", dtype: "u32", access: "read" },
    { name: "mask", dtype: "f32", access: "read" },
    { name: "out", dtype: "f32", access: "read_write" },
  ],
  params: [["n", "u32"], ["below", "u32"]],
  constants: { WG },
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.n) { return; }
  // Active = nonzero: a NaN mask entry counts as active, -0 as inactive (the selectTopK
  // candidate rule). Bit test, because float compares with NaN may be folded by fast-math.
  let live = (bitcast<u32>(mask[P.off_mask + i]) & 0x7fffffffu) != 0u;
  let hit = live && keys[P.off_keys + i] < P.below;
  out[P.off_out + i] = select(0.0f, 1.0f, hit);
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
 * Writes SET's removal keys for one side: `keys[i]` = the f32 bits of `|x[i]|` where the sign
 * bit of `x[i]` is on `side` (so the side's weights rank by closeness to zero; a NaN of the side
 * gives 0xFFFFFFFE, after every number), 0xFFFFFFFF elsewhere. Selecting at most the side's
 * count of smallest keys therefore never takes a weight of the other side.
 * `x: [n]` f32, `keys: [n]` u32 (views allowed; `keys` may not overlap `x`).
 *
 * @example
 * ```ts ignore
 * signedMagnitudeKeys(gpu, { x: w, keys, side: "negative" });
 * selectTopK(gpu, { keys, k: kNeg, order: "smallest", selected, candidates: { mask, active: true } });
 * ```
 */
export function signedMagnitudeKeys(
  gpu: Gpu,
  args: { x: Tensor<"f32">; keys: Tensor<"u32">; side: SignSide },
): void {
  const { x, keys, side } = args;
  const n = firstDim("signedMagnitudeKeys x", x);
  expectVector("signedMagnitudeKeys x", x, n, "f32");
  expectVector("signedMagnitudeKeys keys", keys, n, "u32");
  if (side !== "positive" && side !== "negative") {
    throw new RangeError(`signedMagnitudeKeys: side must be "positive" or "negative", got ${side}`);
  }
  checkOverlap("signedMagnitudeKeys", { keys }, { x });
  gpu.run(SIGNED, { x, keys }, { n, negative: side === "negative" ? 1 : 0 }, gridFor(n, WG));
}

/**
 * Writes the indicator of "active with a key below `below`": `out[i] = 1` where
 * `mask[i] != 0` and `keys[i] < below` (u32 compare), else 0 — summed with `reduce` it counts,
 * exactly below 2^24 elements, e.g. the active weights with |w| < H (magnitude keys,
 * `below` = the f32 bits of H) or the active weights of one sign (signed keys, `below` =
 * 0xFFFFFFFF). `keys: [n]` u32, `mask: [n]` f32, `out: [n]` f32; `below`: u32.
 *
 * @example
 * ```ts ignore
 * keyBelowIndicator(gpu, { keys, mask, below: f32Bits(threshold), out: hits });
 * reduce(gpu, { op: "sum", x: hits, out: counts, outIndex: i });
 * ```
 */
export function keyBelowIndicator(
  gpu: Gpu,
  args: { keys: Tensor<"u32">; mask: Tensor<"f32">; below: number; out: Tensor<"f32"> },
): void {
  const { keys, mask, below, out } = args;
  const n = firstDim("keyBelowIndicator keys", keys);
  expectVector("keyBelowIndicator keys", keys, n, "u32");
  expectVector("keyBelowIndicator mask", mask, n, "f32");
  expectVector("keyBelowIndicator out", out, n, "f32");
  if (!Number.isInteger(below) || below < 0 || below > 0xffffffff) {
    throw new RangeError(`keyBelowIndicator: below must be a u32, got ${below}`);
  }
  checkOverlap("keyBelowIndicator", { out }, { keys, mask });
  gpu.run(BELOW, { keys, mask, out }, { n, below }, gridFor(n, WG));
}

/**
 * The f32 bit pattern of `x` as a u32 (`x` rounded to f32 first): for `x ≥ 0` these order like
 * the magnitude keys of `magnitudeKeys`, so "|w| < H" is "key < f32Bits(H)".
 *
 * @example
 * ```ts
 * import { f32Bits } from "./sign_keys.ts";
 * f32Bits(1); // 0x3f800000
 * ```
 */
export function f32Bits(x: number): number {
  return new Uint32Array(Float32Array.of(x).buffer)[0];
}
