/**
 * Philox4x32-10 counter-based RNG in WGSL (Salmon et al., SC 2011), plus a launcher that
 * evaluates it on explicit counters and keys (for known-answer tests and debugging).
 *
 * Element scheme used by every random kernel here (`dropout.ts`): the random u32 of element `i`
 * (logical index within the tensor, not its buffer offset) under `(seed, offset)` is word `i % 4`
 * of `philox4x32_10(ctr = (i / 4, offset, 0, 0), key = (seed, 0))`. It depends on nothing else —
 * not views, launch shape, workgroup size or adapter — so CPU and GPU agree bit-for-bit
 * (`philox_ref.ts`). `seed` picks the stream family; `offset` advances it (use a fresh offset per
 * call, e.g. a step counter, and never reuse a (seed, offset) pair for independent draws).
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { checkOverlap } from "../runtime/alias.ts";
import { expectShape, ShapeError, type Tensor } from "../runtime/tensor.ts";

/**
 * WGSL helpers: `philox4x32_10(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32>`,
 * `philox_block(blk, seed, offset) -> vec4<u32>` (the element scheme above: words of elements
 * `4*blk .. 4*blk+3`) and `bits_to_uniform(u: u32) -> f32` (`(u >> 8) * 2^-24`, in [0, 1)).
 * WGSL has no 32×32→64 multiply, so the high word is assembled from 16-bit partial products.
 *
 * @example
 * ```ts
 * import { PHILOX_WGSL } from "./philox.ts";
 * const body = `${PHILOX_WGSL}
 * @compute @workgroup_size(1) fn main() { let r = philox_block(0u, 1u, 2u); }`;
 * ```
 */
export const PHILOX_WGSL = `
fn philox_mulhi(a: u32, b: u32) -> u32 {
  let al = a & 0xffffu;
  let ah = a >> 16u;
  let bl = b & 0xffffu;
  let bh = b >> 16u;
  let ll = al * bl;
  let lh = al * bh;
  let hl = ah * bl;
  let hh = ah * bh;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}

fn philox4x32_10(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = ctr;
  var k = key;
  for (var r: u32 = 0u; r < 10u; r = r + 1u) {
    let hi0 = philox_mulhi(0xD2511F53u, c.x);
    let lo0 = 0xD2511F53u * c.x;
    let hi1 = philox_mulhi(0xCD9E8D57u, c.z);
    let lo1 = 0xCD9E8D57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}

fn philox_block(blk: u32, seed: u32, offset: u32) -> vec4<u32> {
  return philox4x32_10(vec4<u32>(blk, offset, 0u, 0u), vec2<u32>(seed, 0u));
}

fn bits_to_uniform(u: u32) -> f32 {
  return f32(u >> 8u) * 5.9604644775390625e-8f;
}
`;

const WG = 64;

const PHILOX_BLOCKS: KernelSpec = {
  name: "philox_blocks",
  bindings: [
    { name: "ctr", dtype: "u32", access: "read" },
    { name: "key", dtype: "u32", access: "read" },
    { name: "out", dtype: "u32", access: "read_write" },
  ],
  params: [["n", "u32"]],
  constants: { WG },
  body: `${LINEAR_INDEX_WGSL}
${PHILOX_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.n) { return; }
  let c = P.off_ctr + 4u * i;
  let kk = P.off_key + 2u * i;
  let r = philox4x32_10(vec4<u32>(ctr[c], ctr[c + 1u], ctr[c + 2u], ctr[c + 3u]),
                        vec2<u32>(key[kk], key[kk + 1u]));
  let o = P.off_out + 4u * i;
  out[o] = r.x;
  out[o + 1u] = r.y;
  out[o + 2u] = r.z;
  out[o + 3u] = r.w;
}`,
};

/**
 * Evaluates Philox4x32-10 on `N` explicit blocks: `ctr: [N, 4]` u32 counters, `key: [N, 2]` u32
 * keys → `out: [N, 4]` u32. For known-answer tests of the WGSL and for debugging; random kernels
 * use the element scheme of this module instead.
 *
 * @example
 * ```ts ignore
 * const ctr = gpu.upload([1, 4], new Uint32Array(4), "u32");
 * const key = gpu.upload([1, 2], new Uint32Array(2), "u32");
 * const out = gpu.tensor([1, 4], "u32");
 * philoxBlocks(gpu, { ctr, key, out });
 * await gpu.read(out); // 6627e8d5 e169c58d bc57ac4c 9b00dbd8
 * ```
 */
export function philoxBlocks(
  gpu: Gpu,
  args: { ctr: Tensor; key: Tensor; out: Tensor },
): void {
  const { ctr, key, out } = args;
  if (ctr.shape.length !== 2) {
    throw new ShapeError(`philoxBlocks ctr: expected shape [N, 4], got [${ctr.shape.join(", ")}]`);
  }
  const n = ctr.shape[0];
  expectShape("philoxBlocks ctr", ctr, [n, 4], "u32");
  expectShape("philoxBlocks key", key, [n, 2], "u32");
  expectShape("philoxBlocks out", out, [n, 4], "u32");
  checkOverlap("philoxBlocks", { out }, { ctr, key });
  const t = { ctr, key, out };
  gpu.run(PHILOX_BLOCKS, t, { n }, gridFor(n, WG));
}
