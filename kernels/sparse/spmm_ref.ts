/**
 * CPU references of {@linkcode spmm} and {@linkcode spmmT} (spmm.ts): the test oracles, never
 * the production path. They read the plain CSR (not the transposed index, which the GPU spmmT
 * walks), accumulate in f64 and round once.
 *
 * @module
 */

import type { HostCsr } from "./sparse_matrix.ts";

/** Operands of {@linkcode spmmRef}; `csr` is the weight `W: [N, K]`. */
export interface SpmmRefArgs {
  /** `[M, K]` row-major. */
  x: Float32Array;
  csr: HostCsr;
  m: number;
  /** `[M, N]` old output; read when `beta != 0`. */
  y?: Float32Array;
  alpha?: number;
  beta?: number;
  /** `[N]`. */
  bias?: Float32Array;
}

/**
 * `y = α·x·Wᵀ + β·y + bias`, returned as `[M, N]`.
 *
 * @example
 * ```ts
 * import { spmmRef } from "./spmm_ref.ts";
 * import { hostCsrFromMask } from "./sparse_matrix.ts";
 * const csr = hostCsrFromMask(1, 2, [3, 4], [1, 0]); // W = [[3, 0]]
 * spmmRef({ x: new Float32Array([1, 2]), csr, m: 1 })[0]; // 3
 * ```
 */
export function spmmRef(args: SpmmRefArgs): Float32Array {
  const { x, csr, m, alpha = 1, beta = 0 } = args;
  const { rows: n, cols: k, rowPtr, colIdx, values } = csr;
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = rowPtr[j]; p < rowPtr[j + 1]; p++) s += x[i * k + colIdx[p]] * values[p];
      let v = alpha * s;
      if (beta !== 0) v += beta * args.y![i * n + j];
      if (args.bias) v += args.bias[j];
      out[i * n + j] = v;
    }
  }
  return out;
}

/** Operands of {@linkcode spmmTRef}; `csr` is the weight `W: [N, K]`. */
export interface SpmmTRefArgs {
  /** `[M, N]` row-major. */
  dy: Float32Array;
  csr: HostCsr;
  m: number;
  /** `[M, K]` old output; read when `beta != 0`. */
  dx?: Float32Array;
  alpha?: number;
  beta?: number;
}

/**
 * `dx = α·dy·W + β·dx`, returned as `[M, K]`.
 *
 * @example
 * ```ts
 * import { spmmTRef } from "./spmm_ref.ts";
 * import { hostCsrFromMask } from "./sparse_matrix.ts";
 * const csr = hostCsrFromMask(1, 2, [3, 4], [1, 1]); // W = [[3, 4]]
 * Array.from(spmmTRef({ dy: new Float32Array([2]), csr, m: 1 })); // [6, 8]
 * ```
 */
export function spmmTRef(args: SpmmTRefArgs): Float32Array {
  const { dy, csr, m, alpha = 1, beta = 0 } = args;
  const { rows: n, cols: k, rowPtr, colIdx, values } = csr;
  const out = new Float32Array(m * k);
  const acc = new Float64Array(k);
  for (let i = 0; i < m; i++) {
    acc.fill(0);
    for (let j = 0; j < n; j++) {
      const d = dy[i * n + j];
      for (let p = rowPtr[j]; p < rowPtr[j + 1]; p++) acc[colIdx[p]] += d * values[p];
    }
    for (let c = 0; c < k; c++) {
      let v = alpha * acc[c];
      if (beta !== 0) v += beta * args.dx![i * k + c];
      out[i * k + c] = v;
    }
  }
  return out;
}
