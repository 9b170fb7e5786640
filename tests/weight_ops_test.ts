import {
  DEFAULT_SPARSE_ROUTE,
  reusedWeight,
  type SparseRoute,
  weightBackwardData,
  weightBackwardWeight,
  weightForward,
} from "../models/weight_ops.ts";
import type { Param } from "../models/params.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
import { sddmmRef } from "../kernels/sparse/sddmm_ref.ts";
import { spmmRef, spmmTRef } from "../kernels/sparse/spmm_ref.ts";
import {
  hostCsrFromMask,
  releaseSparse,
  storedLength,
  uploadSparse,
} from "../kernels/sparse/sparse_matrix.ts";
import { ok } from "node:assert/strict";
import {
  assertClose,
  bernoulliMask,
  forEachVariant,
  GPU_TEST,
  sumTolerance,
  testGpu,
  uniform,
} from "./_util.ts";

/** A sparse `[n, k]` param at `density` with U(-1, 1) values, its host CSR and its GPU matrix. */
function sparseParam(gpu: Gpu, n: number, k: number, density: number, seed: number) {
  const csr = hostCsrFromMask(n, k, uniform(n * k, seed), bernoulliMask(n * k, density, seed + 1));
  const w = uploadSparse(gpu, csr);
  const param: Param = {
    name: "w",
    shape: [n, k],
    blocks: [n],
    sparse: true,
    init: { kind: "zeros" },
    value: w.values,
    grad: gpu.tensor([storedLength(w.nnz)]),
    csr: w,
  };
  return { csr, w, param };
}

/**
 * Random activations of the products with a `[n, k]` weight over `m` rows: host arrays for the
 * references and their uploads (`y0`, `dx0` the outputs' prior contents, accumulated with β = 1).
 */
function activations(gpu: Gpu, m: number, n: number, k: number, seed: number) {
  const x = uniform(m * k, seed + 2), dy = uniform(m * n, seed + 3);
  const y0 = uniform(m * n, seed + 4), dx0 = uniform(m * k, seed + 5);
  const tx = gpu.upload([m, k], x), tdy = gpu.upload([m, n], dy);
  const ty = gpu.upload([m, n], y0), tdx = gpu.upload([m, k], dx0);
  return { x, dy, y0, dx0, tx, tdy, ty, tdx };
}

/**
 * Every route of the sparse weight products (regblock: dense kernels on an expanded weight or
 * sampled dense gradient, or sparse kernels on transposed activations; tiled: the row-major
 * sparse kernels) against the CPU references, with the thresholds forced each way and batch
 * sizes on both sides of `minRows`. Tolerance: each output sums up to max(M, K, N) products of
 * U(-1,1) terms plus the β term and bias.
 */
Deno.test({
  name: "weight ops on a sparse param match the CPU references on every route",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const n = 37, k = 29;
    await forEachVariant(gpu, async (gpu, v) => {
      for (const threshold of [0, 1]) {
        const route: SparseRoute = {
          ...DEFAULT_SPARSE_ROUTE,
          forwardAbove: threshold,
          dataAbove: threshold,
          weightAbove: threshold,
        };
        for (const density of [0.33, 0.1]) {
          for (const m of [3, route.minRows + 6, route.minRows + 1]) {
            const seed = Math.round(1000 * density) + m;
            const { csr, w, param } = sparseParam(gpu, n, k, density, seed);
            const { x, dy, y0, dx0, tx, tdy, ty, tdx } = activations(gpu, m, n, k, seed);
            const bias = uniform(n, seed + 6);
            const tb = gpu.upload([n], bias);
            weightForward(gpu, param, { x: tx, y: ty, beta: 1, bias: tb, route });
            weightBackwardData(gpu, param, { dy: tdy, dx: tdx, beta: 1, route });
            weightBackwardWeight(gpu, param, { dy: tdy, x: tx, route });
            const label = `${v} above=${threshold} d=${density} M=${m}`;
            const tol = sumTolerance(Math.max(m, n, k) + 2);
            assertClose(
              await gpu.read(ty),
              spmmRef({ x, csr, m, y: y0, beta: 1, bias }),
              tol,
              `${label} forward`,
            );
            assertClose(
              await gpu.read(tdx),
              spmmTRef({ dy, csr, m, dx: dx0, beta: 1 }),
              tol,
              `${label} data`,
            );
            const once = sddmmRef({ dy, x, csr, m });
            assertClose(
              (await gpu.read(param.grad)).subarray(0, w.nnz),
              once,
              tol,
              `${label} weight`,
            );
            // accumulated (the MoS decoder, once per expert): the same gradient added again
            weightBackwardWeight(gpu, param, { dy: tdy, x: tx, route, accumulate: true });
            assertClose(
              (await gpu.read(param.grad)).subarray(0, w.nnz),
              once.map((g) => 2 * g),
              sumTolerance(2 * (Math.max(m, n, k) + 2)),
              `${label} weight accumulated`,
            );
            for (const t of [tx, tdy, ty, tdx, tb, param.grad]) gpu.release(t);
            releaseSparse(gpu, w);
          }
        }
      }
    });
  },
});

/**
 * `reusedWeight` hands back the sparse param unchanged unless the adapter runs regblock kernels,
 * the loop is long enough and the weight dense enough; when it expands the weight, products
 * through the copy equal the sparse references (same tolerance as above).
 */
Deno.test({
  name: "reusedWeight expands a sparse weight only where it pays, and products through it match",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const n = 37, k = 29, m = 5;
    await forEachVariant(gpu, async (gpu, v) => {
      for (const density of [0.33, 0.1]) {
        const seed = Math.round(1000 * density);
        const { csr, w, param } = sparseParam(gpu, n, k, density, seed);
        const short = reusedWeight(gpu, param, DEFAULT_SPARSE_ROUTE.minReuses - 1);
        ok(short.param === param, `${v} d=${density}: short loops keep the sparse weight`);
        short.release();
        const loop = reusedWeight(gpu, param, DEFAULT_SPARSE_ROUTE.minReuses);
        const expands = v === "regblock" && density > DEFAULT_SPARSE_ROUTE.reuseAbove;
        ok((loop.param !== param) === expands, `${v} d=${density}: expanded = ${expands}`);
        ok(!expands || (!loop.param.csr && !loop.param.mask), `${v} d=${density}: dense copy`);
        const { x, dy, y0, dx0, tx, tdy, ty, tdx } = activations(gpu, m, n, k, seed);
        weightForward(gpu, loop.param, { x: tx, y: ty, beta: 1 });
        weightBackwardData(gpu, loop.param, { dy: tdy, dx: tdx, beta: 1 });
        loop.release();
        const tol = sumTolerance(Math.max(m, n, k) + 2);
        const label = `${v} d=${density} reused`;
        assertClose(await gpu.read(ty), spmmRef({ x, csr, m, y: y0, beta: 1 }), tol, label);
        assertClose(await gpu.read(tdx), spmmTRef({ dy, csr, m, dx: dx0, beta: 1 }), tol, label);
        for (const t of [tx, tdy, ty, tdx, param.grad]) gpu.release(t);
        releaseSparse(gpu, w);
      }
    });
  },
});
