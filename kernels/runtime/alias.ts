/**
 * Buffer aliasing within one dispatch. WebGPU binds whole buffers, and a buffer bound as
 * `read_write` storage may not also be bound `read` in the same dispatch (wgpu: "conflicting
 * usages ... STORAGE_READ_WRITE is an exclusive usage"), even when the two views do not overlap.
 * Binding it `read_write` several times is allowed. So a kernel whose operands may share a buffer
 * (in-place ops, or views of one `[T, B, H]` buffer such as `c[t]` and `c[t+1]`) is launched with
 * every binding promoted to `read_write` when that happens (`Gpu.run` does it). Launchers also reject partial
 * overlaps of an output with another operand ({@linkcode checkOverlap}), which no element-wise
 * kernel can survive.
 *
 * @module
 */

import { ShapeError, type Tensor } from "./tensor.ts";

/**
 * True when two views share at least one element of one buffer.
 *
 * @example
 * ```ts ignore
 * overlaps(h.view(0, [B, H]), h.view(B * H, [B, H])); // false
 * ```
 */
export function overlaps(a: Tensor, b: Tensor): boolean {
  return a.buffer === b.buffer && a.size > 0 && b.size > 0 && a.offset < b.offset + b.size &&
    b.offset < a.offset + a.size;
}

/** True when two tensors view exactly the same elements (same buffer, offset and size). */
export function sameView(a: Tensor, b: Tensor): boolean {
  return a.buffer === b.buffer && a.offset === b.offset && a.size === b.size;
}

/**
 * Throws {@linkcode ShapeError} when an output overlaps another operand, unless the two are the
 * identical view and the pair `[output, operand]` is listed in `inPlace` (kernels that read all
 * of an index's inputs before writing that index are safe in place, never under a shifted
 * overlap). Absent optional operands may be `undefined`.
 *
 * @example
 * ```ts ignore
 * checkOverlap("unary", { y }, { x }, [["y", "x"]]); // y may be x, but not a shifted view of it
 * ```
 */
export function checkOverlap(
  what: string,
  outputs: Readonly<Record<string, Tensor | undefined>>,
  inputs: Readonly<Record<string, Tensor | undefined>>,
  inPlace: readonly (readonly [string, string])[] = [],
): void {
  const all = { ...inputs, ...outputs };
  for (const [on, o] of Object.entries(outputs)) {
    if (!o) continue;
    for (const [tn, t] of Object.entries(all)) {
      if (!t || tn === on || !overlaps(o, t)) continue;
      const allowed = sameView(o, t) &&
        inPlace.some(([a, b]) => (a === on && b === tn) || (a === tn && b === on));
      if (!allowed) {
        throw new ShapeError(
          `${what}: ${on} ${o} (offset ${o.offset}) overlaps ${tn} ${t} (offset ${t.offset})` +
            (sameView(o, t) ? "; this kernel cannot run with them aliased" : ""),
        );
      }
    }
  }
}
