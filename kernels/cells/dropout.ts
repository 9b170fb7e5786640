/**
 * Inverted dropout without a mask buffer: the keep decision of element `i` is recomputed from
 * `(seed, offset, i)` by Philox4x32-10 (`random/philox.ts` for the element scheme), so backward
 * regenerates exactly the forward mask.
 *
 * Each thread evaluates one Philox block and handles the 4 consecutive elements it covers.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor } from "../runtime/runtime.ts";
import type { BindingDecl, KernelSpec } from "../runtime/kernel.ts";
import { expectSize, type Tensor } from "../runtime/tensor.ts";
import { checkOverlap } from "../runtime/alias.ts";
import { checkU32, RANDOM_HEAD, RANDOM_WG as WG, randomParams } from "../random/random.ts";

const DROPOUT: KernelSpec = {
  name: "dropout",
  bindings: [
    { name: "x", dtype: "f32", access: "read" },
    { name: "y", dtype: "f32", access: "read_write" },
  ],
  params: [
    ["n", "u32"],
    ["nblk", "u32"],
    ["seed", "u32"],
    ["offset", "u32"],
    ["p", "f32"],
    ["scale", "f32"],
  ],
  constants: { WG },
  body: `${RANDOM_HEAD}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let blk = linear_index(wg, nwg, lid, WG);
  if (blk >= P.nblk) { return; }
  let r = philox_block(blk, P.seed, P.offset);
  for (var l: u32 = 0u; l < 4u; l = l + 1u) {
    let i = 4u * blk + l;
    if (i < P.n) {
      // dropped elements are exactly 0 (not x*0), so Inf/NaN inputs do not leak through
      let keep = bits_to_uniform(r[l]) >= P.p;
      y[P.off_y + i] = select(0.0f, x[P.off_x + i] * P.scale, keep);
    }
  }
}`,
};

function checkP(what: string, p: number): void {
  if (!(p >= 0 && p < 1)) throw new RangeError(`${what}: p must be in [0, 1), got ${p}`);
}

/**
 * The inverted-dropout scale `1 / (1 - p)` rounded to f32, as the kernels use it.
 *
 * @example
 * ```ts
 * import { dropoutScale } from "./dropout.ts";
 * dropoutScale(0.5); // 2
 * ```
 */
export function dropoutScale(p: number): number {
  return Math.fround(1 / (1 - p));
}

function dropoutRun(
  gpu: Gpu,
  what: string,
  names: readonly [string, string],
  x: Tensor,
  y: Tensor,
  p: number,
  scale: number,
  seed: number,
  offset: number,
): void {
  expectSize(`${what} ${names[0]}`, x, x.size, "f32");
  expectSize(`${what} ${names[1]}`, y, x.size, "f32");
  checkP(what, p);
  checkU32(`${what} seed`, seed);
  checkU32(`${what} offset`, offset);
  checkOverlap(what, { [names[1]]: y }, { [names[0]]: x }, [[names[1], names[0]]]);
  const n = x.size;
  const t = { x, y };
  gpu.run(
    DROPOUT,
    t,
    { ...randomParams(n, seed, offset), p, scale: Math.fround(scale) },
    gridFor(Math.ceil(n / 4), WG),
  );
}

/**
 * The keep mask of {@linkcode dropoutForward} with an explicit scale: `y = x * keep * scale`
 * (DropConnect's conventions: `scale` 1 or `1 / (1 − p)`, `weight_drop.ts`). Same checks and
 * aliasing as {@linkcode dropoutForward}.
 *
 * @example
 * ```ts ignore
 * keepScaled(gpu, { x: w, y: wDropped, p: 0.45, scale: 1, seed, offset });
 * ```
 */
export function keepScaled(
  gpu: Gpu,
  args: { x: Tensor; y: Tensor; p: number; scale: number; seed: number; offset: number },
): void {
  const { x, y, p, scale, seed, offset } = args;
  dropoutRun(gpu, "keepScaled", ["x", "y"], x, y, p, scale, seed, offset);
}

/**
 * Inverted dropout: `y = x * keep / (1 - p)` with `keep[i] = uniform(seed, offset, i) >= p`, so
 * P(keep) = 1 − p; dropped elements are exactly 0. `x`, `y`: f32 of equal size (any shapes; `y`
 * may be `x`). `p` in [0, 1) (0 is the identity), else RangeError; `seed`, `offset`: u32.
 *
 * @example
 * ```ts ignore
 * dropoutForward(gpu, { x: h, y: hd, p: 0.65, seed, offset: step });
 * ```
 */
export function dropoutForward(
  gpu: Gpu,
  args: { x: Tensor; y: Tensor; p: number; seed: number; offset: number },
): void {
  const { x, y, p, seed, offset } = args;
  dropoutRun(gpu, "dropoutForward", ["x", "y"], x, y, p, dropoutScale(p), seed, offset);
}

/**
 * Gradient of {@linkcode dropoutForward}: `dx = dy * keep / (1 - p)`, recomputing the mask from
 * the same `(p, seed, offset)` as the forward call (no mask buffer). `dx` may be `dy`.
 *
 * @example
 * ```ts ignore
 * dropoutBackward(gpu, { dy: dhd, dx: dh, p: 0.65, seed, offset: step });
 * ```
 */
export function dropoutBackward(
  gpu: Gpu,
  args: { dy: Tensor; dx: Tensor; p: number; seed: number; offset: number },
): void {
  const { dy, dx, p, seed, offset } = args;
  dropoutRun(gpu, "dropoutBackward", ["dy", "dx"], dy, dx, p, dropoutScale(p), seed, offset);
}

// ------------------------------------------------------------------- shared-mask dropouts

/**
 * One thread per element; the keep decision of element `i` is that of mask element `j(i)`:
 * `i % period` (locked dropout) or `ids[i / rowLen]` (embedding-row dropout), so elements
 * sharing `j` share the decision. One Philox block per element (4× the work of plain dropout,
 * on tensors that are small next to the products around them).
 */
function sharedMaskSpec(rows: boolean): KernelSpec {
  const bindings: BindingDecl[] = [
    { name: "x", dtype: "f32", access: "read" },
    { name: "y", dtype: "f32", access: "read_write" },
  ];
  if (rows) bindings.push({ name: "ids", dtype: "u32", access: "read" });
  return {
    name: rows ? "dropout_rows" : "dropout_locked",
    bindings,
    params: [
      ["n", "u32"],
      ["period", "u32"],
      ["row_len", "u32"],
      ["seed", "u32"],
      ["offset", "u32"],
      ["p", "f32"],
      ["scale", "f32"],
    ],
    constants: { WG },
    body: `${RANDOM_HEAD}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.n) { return; }
  let j = ${rows ? "ids[P.off_ids + i / P.row_len]" : "i % P.period"};
  let r = philox_block(j / 4u, P.seed, P.offset);
  let keep = bits_to_uniform(r[j % 4u]) >= P.p;
  y[P.off_y + i] = select(0.0f, x[P.off_x + i] * P.scale, keep);
}`,
  };
}

const DROPOUT_LOCKED = sharedMaskSpec(false);
const DROPOUT_ROWS = sharedMaskSpec(true);

/** Arguments of {@linkcode sharedMaskDropout}. */
export interface SharedMaskDropoutArgs {
  /** Input (or upstream gradient), f32, any shape; `y` may be `x`. */
  x: Tensor;
  y: Tensor;
  p: number;
  seed: number;
  offset: number;
  /**
   * Locked (variational) dropout: one mask of `period` elements repeated along `x` (`x: [T, B,
   * D]` with `period = B·D`: one mask per sequence, shared over time).
   */
  period?: number;
  /**
   * Embedding-row dropout: `x: [N, rowLen]` gathered rows, `ids: [N]` their row ids; row `n`
   * keeps or drops with mask element `ids[n]` (a whole word of the embedding matrix).
   */
  rows?: { ids: Tensor; rowLen: number };
}

/**
 * Inverted dropout whose mask is shared: `y[i] = x[i]·keep(j(i))/(1 − p)` with
 * `keep(j) = uniform(seed, offset, j) ≥ p` and `j(i)` from `period` (locked dropout) or `rows`
 * (embedding-row dropout), exactly one of them. Its own gradient (same call on `dy`). The mask
 * elements are those of {@linkcode dropoutForward} on a tensor of the mask's size, so the CPU
 * reference reuses `dropoutMaskRef`.
 *
 * @example
 * ```ts ignore
 * sharedMaskDropout(gpu, { x: emb, y: emb, p: 0.65, seed, offset, period: B * E }); // locked
 * ```
 */
export function sharedMaskDropout(gpu: Gpu, args: SharedMaskDropoutArgs): void {
  const { x, y, p, seed, offset, period, rows } = args;
  const what = "sharedMaskDropout";
  expectSize(`${what} x`, x, x.size, "f32");
  expectSize(`${what} y`, y, x.size, "f32");
  checkP(what, p);
  checkU32(`${what} seed`, seed);
  checkU32(`${what} offset`, offset);
  if ((period === undefined) === (rows === undefined)) {
    throw new RangeError(`${what}: give exactly one of period (locked) and rows (embedding rows)`);
  }
  checkOverlap(what, { y }, { x }, [["y", "x"]]);
  const n = x.size;
  const common = { n, seed, offset, p, scale: dropoutScale(p) };
  if (rows) {
    const { ids, rowLen } = rows;
    if (!Number.isInteger(rowLen) || rowLen < 1 || n % rowLen !== 0) {
      throw new RangeError(`${what}: rowLen ${rowLen} does not divide ${n} elements`);
    }
    expectSize(`${what} ids`, ids, n / rowLen, "u32");
    gpu.run(
      DROPOUT_ROWS,
      { x, y, ids },
      { ...common, period: 1, row_len: rowLen },
      gridFor(n, WG),
    );
  } else {
    if (!Number.isInteger(period) || period! < 1 || n % period! !== 0) {
      throw new RangeError(`${what}: period ${period} does not divide ${n} elements`);
    }
    gpu.run(DROPOUT_LOCKED, { x, y }, { ...common, period: period!, row_len: 1 }, gridFor(n, WG));
  }
}
