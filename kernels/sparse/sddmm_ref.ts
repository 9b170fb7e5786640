/**
 * CPU reference of {@linkcode sddmm} (sddmm.ts): the test oracle, never the production path.
 * Accumulates in f64 and rounds once.
 *
 * @module
 */

import type { HostCsr } from "./sparse_matrix.ts";

/** Operands of {@linkcode sddmmRef}; `csr` is the pattern of `W: [N, K]`. */
export interface SddmmRefArgs {
  /** `[M, N]` row-major. */
  dy: Float32Array;
  /** `[M, K]` row-major. */
  x: Float32Array;
  csr: HostCsr;
  m: number;
  /** `[nnz]` old values; read when `beta != 0`. */
  out?: Float32Array;
  alpha?: number;
  beta?: number;
}

/**
 * `out[p] = α·Σ_m dy[m, r]·x[m, c] + β·out[p]` for each entry `p` at `(r, c)`, returned as
 * `[nnz]` in CSR order.
 *
 * @example
 * ```ts
 * import { sddmmRef } from "./sddmm_ref.ts";
 * import { hostCsrFromMask } from "./sparse_matrix.ts";
 * const csr = hostCsrFromMask(1, 2, [0, 0], [0, 1]); // one entry at (0, 1)
 * sddmmRef({ dy: new Float32Array([2]), x: new Float32Array([5, 7]), csr, m: 1 })[0]; // 14
 * ```
 */
export function sddmmRef(args: SddmmRefArgs): Float32Array {
  const { dy, x, csr, m, alpha = 1, beta = 0 } = args;
  const { rows: n, cols: k, rowPtr, colIdx } = csr;
  const nnz = rowPtr[n];
  const out = new Float32Array(nnz);
  for (let r = 0; r < n; r++) {
    for (let p = rowPtr[r]; p < rowPtr[r + 1]; p++) {
      const c = colIdx[p];
      let s = 0;
      for (let i = 0; i < m; i++) s += dy[i * n + r] * x[i * k + c];
      let v = alpha * s;
      if (beta !== 0) v += beta * args.out![p];
      out[p] = v;
    }
  }
  return out;
}

/**
 * `out[p] = α·dense[r, c] + β·out[p]` for each entry `p` at `(r, c)` of `csr` (`dense: [N, K]`
 * row-major), returned as `[nnz]` in CSR order: the oracle of `sampleDense`.
 *
 * @example
 * ```ts
 * import { sampleDenseRef } from "./sddmm_ref.ts";
 * import { hostCsrFromMask } from "./sparse_matrix.ts";
 * const csr = hostCsrFromMask(1, 2, [0, 0], [0, 1]); // one entry at (0, 1)
 * sampleDenseRef({ dense: new Float32Array([3, 4]), csr })[0]; // 4
 * ```
 */
export function sampleDenseRef(args: {
  dense: Float32Array;
  csr: HostCsr;
  out?: Float32Array;
  alpha?: number;
  beta?: number;
}): Float32Array {
  const { dense, csr, alpha = 1, beta = 0 } = args;
  const { rows: n, cols: k, rowPtr, colIdx } = csr;
  const out = new Float32Array(rowPtr[n]);
  for (let r = 0; r < n; r++) {
    for (let p = rowPtr[r]; p < rowPtr[r + 1]; p++) {
      let v = alpha * dense[r * k + colIdx[p]];
      if (beta !== 0) v += beta * args.out![p];
      out[p] = v;
    }
  }
  return out;
}
