/**
 * Counter-based random numbers on the GPU: uniforms and raw Philox words, each element a pure
 * function of `(seed, offset, i)` (see `philox.ts` for the element scheme), so every adapter and
 * the CPU references agree bit for bit. Dropout masks (`cells/dropout.ts`), initial weights
 * (`models/params.ts`) and random selection keys (`select/topk.ts`) draw from here.
 *
 * Each thread evaluates one Philox block and handles the 4 consecutive elements it covers.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { expectSize, type Tensor } from "../runtime/tensor.ts";
import { PHILOX_WGSL } from "./philox.ts";

/** Workgroup size of the random kernels (one Philox block of 4 elements per thread). */
export const RANDOM_WG = 64;
const WG = RANDOM_WG;

/** WGSL prelude of a random kernel: the linear index and Philox. */
export const RANDOM_HEAD = `${LINEAR_INDEX_WGSL}
${PHILOX_WGSL}`;

function randomSpec(bits: boolean): KernelSpec {
  return {
    name: bits ? "random_bits" : "random_uniform",
    bindings: [{ name: "out", dtype: bits ? "u32" : "f32", access: "read_write" }],
    params: [["n", "u32"], ["nblk", "u32"], ["seed", "u32"], ["offset", "u32"]],
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
    if (i < P.n) { out[P.off_out + i] = ${bits ? "r[l]" : "bits_to_uniform(r[l])"}; }
  }
}`,
  };
}

const RANDOM_UNIFORM = randomSpec(false);
const RANDOM_BITS = randomSpec(true);

/**
 * Throws a RangeError unless `v` is a u32 (seeds and offsets).
 *
 * @example
 * ```ts
 * import { checkU32 } from "./random.ts";
 * checkU32("seed", 7); // ok
 * ```
 */
export function checkU32(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`${what}: expected an integer in [0, 2^32), got ${v}`);
  }
}

/**
 * The uniforms shared by every random kernel: element count, Philox blocks, seed and offset.
 *
 * @example
 * ```ts
 * import { randomParams } from "./random.ts";
 * randomParams(10, 1, 0).nblk; // 3
 * ```
 */
export function randomParams(
  n: number,
  seed: number,
  offset: number,
): { n: number; nblk: number; seed: number; offset: number } {
  return { n, nblk: Math.ceil(n / 4), seed, offset };
}

/**
 * Fills `out` (f32, any shape) with uniforms in [0, 1) on a 24-bit grid: element `i` is
 * `(u >> 8) * 2^-24` for the Philox word `u` of `(seed, offset, i)`. `seed`, `offset`: u32.
 *
 * @example
 * ```ts ignore
 * const u = gpu.tensor([1000]);
 * randomUniform(gpu, { out: u, seed: 1, offset: step });
 * ```
 */
export function randomUniform(
  gpu: Gpu,
  args: { out: Tensor; seed: number; offset: number },
): void {
  const { out, seed, offset } = args;
  expectSize("randomUniform out", out, out.size, "f32");
  checkU32("randomUniform seed", seed);
  checkU32("randomUniform offset", offset);
  const n = out.size;
  gpu.run(RANDOM_UNIFORM, { out }, randomParams(n, seed, offset), gridFor(Math.ceil(n / 4), WG));
}

/**
 * Fills `out` (u32, any shape) with the raw Philox words of `(seed, offset, i)`: the bits
 * behind {@linkcode randomUniform} and the dropout mask, e.g. for integer sampling.
 *
 * @example
 * ```ts ignore
 * const bits = gpu.tensor([1000], "u32");
 * randomBits(gpu, { out: bits, seed: 1, offset: 0 });
 * ```
 */
export function randomBits(
  gpu: Gpu,
  args: { out: Tensor; seed: number; offset: number },
): void {
  const { out, seed, offset } = args;
  expectSize("randomBits out", out, out.size, "u32");
  checkU32("randomBits seed", seed);
  checkU32("randomBits offset", offset);
  const n = out.size;
  gpu.run(RANDOM_BITS, { out }, randomParams(n, seed, offset), gridFor(Math.ceil(n / 4), WG));
}
