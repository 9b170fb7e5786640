/**
 * Element-wise launchers over f32 tensors of equal size (any shapes; view offsets respected):
 * unary activations, add, mul, scale and axpy. One thread per element. Outputs may be the very
 * same view as an input (in place) but not a shifted overlap of one.
 *
 * Also exports {@linkcode ACTIVATIONS_WGSL}, the overflow-safe sigmoid/tanh shared with the
 * fused LSTM cell.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import type { KernelSpec } from "../runtime/kernel.ts";
import { expectSize, type Tensor } from "../runtime/tensor.ts";
import { checkOverlap } from "../runtime/alias.ts";

/**
 * WGSL `sigmoid_s(x: f32) -> f32` and `tanh_s(x: f32) -> f32`, finite for every finite input.
 * Sigmoid only ever evaluates `exp(-|x|) <= 1`, so nothing overflows (the textbook
 * `exp(x) / (1 + exp(x))` is Inf/Inf = NaN past x ≈ 88.7). Tanh clamps to ±15, where f32 tanh is
 * already ±1 exactly: WGSL specifies tanh's accuracy through `(exp(2x)-1)/(exp(2x)+1)`, and a
 * backend that evaluates that literally returns NaN once `exp(2x)` overflows (|x| > 44).
 *
 * @example
 * ```ts
 * import { ACTIVATIONS_WGSL } from "./elementwise.ts";
 * const body = `${ACTIVATIONS_WGSL}
 * @compute @workgroup_size(1) fn main() { let s = sigmoid_s(100.0f); }`;
 * ```
 */
export const ACTIVATIONS_WGSL = `
fn sigmoid_s(x: f32) -> f32 {
  let e = exp(-abs(x));
  let r = 1.0f / (1.0f + e);
  return select(e * r, r, x >= 0.0f);
}

fn tanh_s(x: f32) -> f32 {
  return tanh(clamp(x, -15.0f, 15.0f));
}
`;

/** Unary ops of {@linkcode unary}. */
export type UnaryOp = "sigmoid" | "tanh" | "relu" | "neg" | "exp" | "abs";

/** Op codes, compiled in as the constant `OP` (one pipeline per op, no runtime branch). */
const UNARY_OPS: readonly UnaryOp[] = ["sigmoid", "tanh", "relu", "neg", "exp", "abs"];

const UNARY_HELPER = `
fn op_apply(v: f32) -> f32 {
  if (OP == 0u) { return sigmoid_s(v); }
  if (OP == 1u) { return tanh_s(v); }
  // relu via select, so relu(-0) = +0 and NaN maps to 0, identically on every backend
  if (OP == 2u) { return select(0.0f, v, v > 0.0f); }
  if (OP == 3u) { return -v; }
  if (OP == 5u) { return abs(v); }
  return exp(v);
}`;

const WG = 256;

/**
 * A one-thread-per-element map `out[i] = expr`, where `expr` sees each input `<name>` loaded as
 * `<name>_v`. When `out` is also an input (axpy) it is bound once, `read_write`.
 */
function mapSpec(
  name: string,
  inputs: readonly string[],
  out: string,
  expr: string,
  extra: { constants?: Record<string, number>; helpers?: string } = {},
): KernelSpec {
  return {
    name,
    bindings: [
      ...inputs.filter((n) => n !== out).map((n) => ({
        name: n,
        dtype: "f32" as const,
        access: "read" as const,
      })),
      { name: out, dtype: "f32", access: "read_write" },
    ],
    params: [["n", "u32"], ["alpha", "f32"]],
    constants: { WG, ...extra.constants },
    body: `${LINEAR_INDEX_WGSL}
${ACTIVATIONS_WGSL}
${extra.helpers ?? ""}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, WG);
  if (i >= P.n) { return; }
${inputs.map((n) => `  let ${n}_v = ${n}[P.off_${n} + i];`).join("\n")}
  ${out}[P.off_${out} + i] = ${expr};
}`,
  };
}

const UNARY = new Map(
  UNARY_OPS.map((op, code) => [
    op,
    mapSpec(`unary_${op}`, ["x"], "y", "op_apply(x_v)", {
      constants: { OP: code },
      helpers: UNARY_HELPER,
    }),
  ]),
);
const ADD = mapSpec("add", ["a", "b"], "out", "a_v + b_v");
const MUL = mapSpec("mul", ["a", "b"], "out", "a_v * b_v");
const SCALE = mapSpec("scale", ["x"], "out", "P.alpha * x_v");
const AXPY = mapSpec("axpy", ["x", "y"], "y", "y_v + P.alpha * x_v");

function launch(
  gpu: Gpu,
  spec: KernelSpec,
  what: string,
  tensors: Record<string, Tensor>,
  out: string,
  inPlace: readonly (readonly [string, string])[],
  alpha = 0,
): void {
  const n = tensors[out].size;
  for (const [name, t] of Object.entries(tensors)) expectSize(`${what} ${name}`, t, n, "f32");
  if (!Number.isFinite(alpha)) throw new RangeError(`${what}: alpha must be finite, got ${alpha}`);
  const inputs = { ...tensors };
  delete inputs[out];
  checkOverlap(what, { [out]: tensors[out] }, inputs, inPlace);
  gpu.run(spec, tensors, { n, alpha }, gridFor(n, WG));
}

/**
 * `y = op(x)` element-wise; `x`, `y`: f32 of equal size, any shapes; `y` may be `x` (in place).
 * `sigmoid` and `tanh` are finite and in range for every finite input (see
 * {@linkcode ACTIVATIONS_WGSL}); `exp` overflows to +Inf past x ≈ 88.7 like f32 `exp`.
 *
 * @example
 * ```ts ignore
 * unary(gpu, { op: "sigmoid", x: z, y: z }); // in place
 * ```
 */
export function unary(gpu: Gpu, args: { op: UnaryOp; x: Tensor; y: Tensor }): void {
  const spec = UNARY.get(args.op);
  if (!spec) {
    throw new RangeError(`unary: unknown op "${args.op}", expected ${UNARY_OPS.join("|")}`);
  }
  launch(gpu, spec, `unary ${args.op}`, { x: args.x, y: args.y }, "y", [["y", "x"]]);
}

/**
 * `out = a + b` element-wise; f32 of equal size; `out` may be `a` or `b`.
 *
 * @example
 * ```ts ignore
 * add(gpu, { a: h, b: skip, out: h });
 * ```
 */
export function add(gpu: Gpu, args: { a: Tensor; b: Tensor; out: Tensor }): void {
  const { a, b, out } = args;
  launch(gpu, ADD, "add", { a, b, out }, "out", [["out", "a"], ["out", "b"]]);
}

/**
 * `out = a ⊙ b` element-wise; f32 of equal size; `out` may be `a` or `b`.
 *
 * @example
 * ```ts ignore
 * mul(gpu, { a: dy, b: mask, out: dx });
 * ```
 */
export function mul(gpu: Gpu, args: { a: Tensor; b: Tensor; out: Tensor }): void {
  const { a, b, out } = args;
  launch(gpu, MUL, "mul", { a, b, out }, "out", [["out", "a"], ["out", "b"]]);
}

/**
 * `out = alpha · x` element-wise (`alpha` rounded to f32); `out` may be `x`.
 *
 * @example
 * ```ts ignore
 * scale(gpu, { x: grad, alpha: 1 / clipNorm, out: grad });
 * ```
 */
export function scale(gpu: Gpu, args: { x: Tensor; alpha: number; out: Tensor }): void {
  const { x, out } = args;
  launch(gpu, SCALE, "scale", { x, out }, "out", [["out", "x"]], args.alpha);
}

/**
 * `y += alpha · x` element-wise (`alpha` rounded to f32); `x` may be `y` (then `y *= 1 + alpha`).
 * Backends may fuse the multiply-add, so results can differ from two roundings by 1 ulp.
 *
 * @example
 * ```ts ignore
 * axpy(gpu, { alpha: -lr, x: grad, y: weight });
 * ```
 */
export function axpy(gpu: Gpu, args: { alpha: number; x: Tensor; y: Tensor }): void {
  const { x, y } = args;
  launch(gpu, AXPY, "axpy", { x, y }, "y", [["y", "x"]], args.alpha);
}
