/**
 * Topology changes on masked-dense weights: switch flagged mask entries on or off and clear the
 * weight and every optimizer state at those positions, so a removed weight leaves nothing
 * behind and a grown one starts from exactly 0 with a fresh state (spec §4.5, §5.3).
 *
 * ```text
 * for i with flags[i] != 0:   mask[i] = value;  t[i] = 0 for every t in zero
 * ```
 *
 * Flags come from `selectTopK` (u32 0/1). One dispatch per tensor touched; updates run once per
 * epoch or every ΔT steps, never inside a step.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { expectSize, ShapeError, type Tensor } from "../runtime/tensor.ts";

const WG = 64;

function setWhereSpec(dtype: "f32" | "u32"): KernelSpec {
  return {
    name: `set_where_flag_${dtype}`,
    bindings: [
      { name: "flags", dtype: "u32", access: "read" },
      { name: "t", dtype, access: "read_write" },
    ],
    params: [["n", "u32"], ["value", dtype]],
    body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, ${WG}u);
  if (i >= P.n) { return; }
  if (flags[P.off_flags + i] != 0u) { t[P.off_t + i] = P.value; }
}`,
  };
}

const SET_F32 = setWhereSpec("f32");
const SET_U32 = setWhereSpec("u32");

/**
 * `t[i] = value` wherever `flags[i] != 0` (`flags: u32`, `t: f32 or u32`, same element count).
 *
 * @example
 * ```ts ignore
 * setWhereFlagged(gpu, { flags: grown, t: mask, value: 1 });
 * ```
 */
export function setWhereFlagged(
  gpu: Gpu,
  args: { flags: Tensor; t: Tensor; value: number },
): void {
  const { flags, t, value } = args;
  expectSize("setWhereFlagged flags", flags, t.size, "u32");
  if (t.dtype === "i32") throw new ShapeError(`setWhereFlagged: t must be f32 or u32, got ${t}`);
  if (flags.buffer === t.buffer) {
    throw new ShapeError("setWhereFlagged: flags and t must not share a GPU buffer");
  }
  gpu.run(
    t.dtype === "f32" ? SET_F32 : SET_U32,
    { flags, t },
    { n: t.size, value },
    gridFor(
      t.size,
      WG,
    ),
  );
}

/**
 * Applies one flagged topology change: `mask[i] = on ? 1 : 0` and every tensor of `clear`
 * (the weight, momentum, Adam moments, ASGD average and step count) set to 0 at the flagged
 * positions.
 *
 * @example
 * ```ts ignore
 * applyMaskFlags(gpu, { mask: p.mask, flags: removed, on: false, clear: [p.value, m, v] });
 * ```
 */
export function applyMaskFlags(
  gpu: Gpu,
  args: { mask: Tensor; flags: Tensor; on: boolean; clear: readonly Tensor[] },
): void {
  const { mask, flags, on, clear } = args;
  for (const [i, t] of clear.entries()) expectSize(`applyMaskFlags clear[${i}]`, t, mask.size);
  setWhereFlagged(gpu, { flags, t: mask, value: on ? 1 : 0 });
  for (const t of clear) setWhereFlagged(gpu, { flags, t, value: 0 });
}
