/**
 * CPU references of `elementwise.ts`: computed in f64 and rounded once to f32.
 *
 * @module
 */

/** The unary ops of `elementwise.ts`. */
export type UnaryOpRef = "sigmoid" | "tanh" | "relu" | "neg" | "exp" | "abs";

/**
 * Logistic function in f64, without overflow for large |x|.
 *
 * @example
 * ```ts
 * import { sigmoid64 } from "./elementwise_ref.ts";
 * sigmoid64(0); // 0.5
 * ```
 */
export function sigmoid64(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

const FNS: Record<UnaryOpRef, (v: number) => number> = {
  sigmoid: sigmoid64,
  tanh: Math.tanh,
  relu: (v) => (v > 0 ? v : 0),
  neg: (v) => -v,
  exp: Math.exp,
  abs: Math.abs,
};

/**
 * `y[i] = op(x[i])`.
 *
 * @example
 * ```ts
 * import { unaryRef } from "./elementwise_ref.ts";
 * unaryRef("relu", new Float32Array([-1, 2])); // Float32Array [0, 2]
 * ```
 */
export function unaryRef(op: UnaryOpRef, x: Float32Array): Float32Array {
  const f = FNS[op];
  return Float32Array.from(x, (v) => f(v));
}

/**
 * `a[i] + b[i]`.
 *
 * @example
 * ```ts
 * import { addRef } from "./elementwise_ref.ts";
 * addRef(new Float32Array([1]), new Float32Array([2])); // Float32Array [3]
 * ```
 */
export function addRef(a: Float32Array, b: Float32Array): Float32Array {
  return Float32Array.from(a, (v, i) => v + b[i]);
}

/**
 * `a[i] * b[i]`.
 *
 * @example
 * ```ts
 * import { mulRef } from "./elementwise_ref.ts";
 * mulRef(new Float32Array([3]), new Float32Array([2])); // Float32Array [6]
 * ```
 */
export function mulRef(a: Float32Array, b: Float32Array): Float32Array {
  return Float32Array.from(a, (v, i) => v * b[i]);
}

/**
 * `alpha * x[i]` with `alpha` rounded to f32 first (it reaches the GPU as an f32 uniform).
 *
 * @example
 * ```ts
 * import { scaleRef } from "./elementwise_ref.ts";
 * scaleRef(new Float32Array([3]), 0.5); // Float32Array [1.5]
 * ```
 */
export function scaleRef(x: Float32Array, alpha: number): Float32Array {
  const a = Math.fround(alpha);
  return Float32Array.from(x, (v) => a * v);
}

/**
 * `y[i] + alpha * x[i]` (a new array; `y` is not modified), with `alpha` rounded to f32.
 *
 * @example
 * ```ts
 * import { axpyRef } from "./elementwise_ref.ts";
 * axpyRef(2, new Float32Array([1]), new Float32Array([1])); // Float32Array [3]
 * ```
 */
export function axpyRef(alpha: number, x: Float32Array, y: Float32Array): Float32Array {
  const a = Math.fround(alpha);
  return Float32Array.from(y, (v, i) => v + a * x[i]);
}
