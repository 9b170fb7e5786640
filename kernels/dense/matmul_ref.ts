/**
 * CPU reference of {@linkcode matmul}: the oracle of the tests, never the production path.
 *
 * @module
 */

/** Operands of {@linkcode matmulRef}; layouts as in the GPU launcher (row-major). */
export interface MatmulRefArgs {
  /** `[M, K]`, or `[K, M]` when `transA`. */
  a: Float32Array;
  /** `[K, N]`, or `[N, K]` when `transB`. */
  b: Float32Array;
  /** `[M, N]`; read when `beta != 0`. */
  c?: Float32Array;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  /** `[N]`, added to every row. */
  bias?: Float32Array;
  /** Same layout as `b`; multiplies `b` element-wise. */
  mask?: Float32Array;
}

/**
 * C = α·op(A)·op(B ⊙ mask) + β·C + bias, accumulated in f64.
 *
 * @example
 * ```ts
 * import { matmulRef } from "./matmul_ref.ts";
 * const c = matmulRef({ a: new Float32Array([1, 2]), b: new Float32Array([3, 4]), m: 1, n: 1, k: 2 });
 * c[0]; // 11
 * ```
 */
export function matmulRef(args: MatmulRefArgs): Float32Array {
  const { a, b, m, n, k, transA = false, transB = false, alpha = 1, beta = 0 } = args;
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        const av = transA ? a[p * m + i] : a[i * k + p];
        const bi = transB ? j * k + p : p * n + j;
        const bv = args.mask ? b[bi] * args.mask[bi] : b[bi];
        s += av * bv;
      }
      let v = alpha * s;
      if (beta !== 0) v += beta * args.c![i * n + j];
      if (args.bias) v += args.bias[j];
      out[i * n + j] = v;
    }
  }
  return out;
}
