/**
 * Kernel specifications. A kernel's interface (uniform parameters and storage bindings) is
 * declared once in TypeScript; the runtime generates the matching WGSL declarations and prepends
 * them to the shader body, so a launcher and its shader can never disagree on layout.
 *
 * Generated interface, for bindings `[x, y]` and params `[["n", "u32"], ["alpha", "f32"]]`:
 *
 * ```wgsl
 * struct Params { n: u32, alpha: f32, off_x: u32, off_y: u32 }
 * @group(0) @binding(0) var<uniform> P: Params;
 * @group(0) @binding(1) var<storage, read> x: array<f32>;
 * @group(0) @binding(2) var<storage, read_write> y: array<f32>;
 * ```
 *
 * `off_<name>` is the element offset of the bound tensor view (in units of the binding's array
 * entries), so shaders index `x[P.off_x + i]`.
 *
 * @module
 */

import type { DType } from "./tensor.ts";

/** WGSL scalar types of uniform parameters. */
export type ParamType = "u32" | "f32" | "i32";

/** One storage binding: element type and access. `vec4` reads f32 data four at a time. */
export interface BindingDecl {
  name: string;
  dtype: DType;
  access: "read" | "read_write";
  /**
   * Elements per array entry: 2 or 4 bind `array<vec2<T>>`/`array<vec4<T>>` (fewer load
   * instructions); the view offset must then be a multiple of the width, and `off_<name>` is
   * counted in entries. Default 1.
   */
  width?: 1 | 2 | 4;
}

/** A compute kernel: interface, compile-time constants and WGSL body (with entry `main`). */
export interface KernelSpec {
  /** Names the kernel in errors and profiles. */
  name: string;
  bindings: readonly BindingDecl[];
  params: readonly (readonly [string, ParamType])[];
  /** Compile-time constants, emitted as `const NAME = value;` before the body. */
  constants?: Readonly<Record<string, number | boolean>>;
  /** WGSL: helper functions and `@compute fn main`. */
  body: string;
}

function constLine(name: string, v: number | boolean): string {
  if (typeof v === "boolean") return `const ${name}: bool = ${v};`;
  if (Number.isInteger(v) && v >= 0) return `const ${name}: u32 = ${v}u;`;
  if (Number.isInteger(v)) return `const ${name}: i32 = ${v}i;`;
  return `const ${name}: f32 = ${v.toPrecision(9)};`;
}

/**
 * The complete WGSL source of a kernel: constants, generated interface, body. This string is
 * also the pipeline-cache key.
 *
 * @example
 * ```ts
 * import { kernelSource } from "./kernel.ts";
 * const src = kernelSource({
 *   name: "scale",
 *   bindings: [{ name: "x", dtype: "f32", access: "read_write" }],
 *   params: [["n", "u32"], ["s", "f32"]],
 *   body: "@compute @workgroup_size(64) fn main() {}",
 * });
 * src.includes("var<storage, read_write> x: array<f32>;"); // true
 * ```
 */
export function kernelSource(spec: KernelSpec): string {
  const lines: string[] = [`// kernel: ${spec.name}`];
  for (const [k, v] of Object.entries(spec.constants ?? {})) lines.push(constLine(k, v));
  const fields = [
    ...spec.params.map(([n, t]) => `${n}: ${t}`),
    ...spec.bindings.map((b) => `off_${b.name}: u32`),
  ];
  lines.push(`struct Params { ${fields.join(", ")} }`);
  lines.push(`@group(0) @binding(0) var<uniform> P: Params;`);
  spec.bindings.forEach((b, i) => {
    const elem = (b.width ?? 1) > 1 ? `vec${b.width}<${b.dtype}>` : b.dtype;
    lines.push(`@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${b.name}: array<${elem}>;`);
  });
  lines.push(spec.body);
  return lines.join("\n");
}

/** Bytes of the uniform block of a kernel: one 4-byte word per param and per binding offset. */
export function paramBytes(spec: KernelSpec): number {
  const words = spec.params.length + spec.bindings.length;
  return Math.max(16, Math.ceil(words / 4) * 16);
}
