import type { Gpu } from "../kernels/runtime/runtime.ts";
import { sampleDense, sddmm } from "../kernels/sparse/sddmm.ts";
import { sampleDenseRef, sddmmRef } from "../kernels/sparse/sddmm_ref.ts";
import { transposeRef } from "../kernels/dense/transpose_ref.ts";
import { matmul } from "../kernels/dense/matmul.ts";
import {
  hostCsrFromMask,
  releaseSparse,
  storedLength,
  uploadSparse,
} from "../kernels/sparse/sparse_matrix.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";
import {
  assertClose,
  bernoulliMask,
  forEachVariant,
  GPU_TEST,
  SPARSE_TEST_DENSITIES,
  sumTolerance,
  testGpu,
  uniform,
} from "./_util.ts";

interface Case {
  m: number;
  n: number;
  k: number;
  density: number;
  alpha?: number;
  beta?: number;
  /** Pass dyᵀ [n, m] and xᵀ [k, m] (the transposed-operand kernel). */
  transposed?: boolean;
}

/**
 * Checks sddmm on a random `[n, k]` pattern. Tolerance: each output sums m products of
 * U(-1,1)·U(-1,1) terms, plus the β term; scaled by |α|.
 */
async function check(gpu: Gpu, c: Case, seed: number): Promise<void> {
  const { m, n, k, density, alpha, beta, transposed } = c;
  const csr = hostCsrFromMask(n, k, uniform(n * k, seed), bernoulliMask(n * k, density, seed + 1));
  const w = uploadSparse(gpu, csr);
  const dy = uniform(m * n, seed + 2);
  const x = uniform(m * k, seed + 3);
  const len = storedLength(w.nnz);
  // One sentinel past nnz when nnz = 0: the kernel must not write it.
  const out0 = uniform(len, seed + 4);
  const tdy = transposed ? gpu.upload([n, m], transposeRef(dy, m, n)) : gpu.upload([m, n], dy);
  const tx = transposed ? gpu.upload([k, m], transposeRef(x, m, k)) : gpu.upload([m, k], x);
  const tout = gpu.upload([len], out0);
  sddmm(gpu, { dy: tdy, x: tx, w, out: tout, alpha, beta, transposed });
  const got = await gpu.read(tout);
  const want = sddmmRef({ dy, x, csr, m, out: out0, alpha, beta });
  const label = `${gpu.variant} ${JSON.stringify(c)}`;
  const scale = Math.max(1, Math.abs(alpha ?? 1));
  assertClose(got.subarray(0, w.nnz), want, sumTolerance(m + 2, scale), label);
  if (w.nnz === 0 && got[0] !== out0[0]) throw new Error(`${label}: wrote past nnz`);
  for (const t of [tdy, tx, tout]) gpu.release(t);
  releaseSparse(gpu, w);
}

Deno.test({
  name: "sddmm matches the CPU reference at every density and odd shapes",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [1, 17, 3],
      [3, 5, 17],
      [20, 127, 33],
      [17, 3, 127],
      [3, 9, 1000],
      [2, 1031, 5],
    ];
    await forEachVariant(gpu, async (gpu) => {
      let seed = 1;
      for (const density of SPARSE_TEST_DENSITIES) {
        for (const [m, n, k] of shapes) await check(gpu, { m, n, k, density }, seed += 10);
      }
    });
  },
});

Deno.test({
  name: "sddmm sums long batches (M = 700, 1003) and applies alpha and beta",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu) => {
      await check(gpu, { m: 700, n: 23, k: 41, density: 0.33 }, 500);
      await check(gpu, { m: 1003, n: 7, k: 130, density: 0.1, alpha: 0.5, beta: 1 }, 501);
      await check(gpu, { m: 20, n: 37, k: 21, density: 0.5, alpha: -2, beta: -1.5 }, 502);
      await check(gpu, { m: 65, n: 9, k: 7, density: 1, beta: 0 }, 503);
    });
  },
});

Deno.test({
  name: "sddmm splits M across dispatches when one thread would pass the loop budget",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    if (!gpu.report.isFallback) return; // the split only happens on software adapters
    // Dense rows of 3000 columns: regblock passes 32 entries at a time (94 passes), tiled 64
    // (47 passes), so M = 1500 needs two or more dispatches under either variant.
    await forEachVariant(gpu, async (gpu) => {
      const before = gpu.dispatchCount;
      await check(gpu, { m: 1500, n: 2, k: 3000, density: 1, alpha: 0.5, beta: 2 }, 600);
      if (gpu.dispatchCount - before < 2) throw new Error("expected a split into dispatches");
    });
  },
});

Deno.test({
  name: "sddmm reads dy and x as views at element offsets",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const T = 3, m = 5, n = 13, k = 9;
    const csr = hostCsrFromMask(n, k, uniform(n * k, 20), bernoulliMask(n * k, 0.33, 21));
    const w = uploadSparse(gpu, csr);
    const dys = uniform(T * m * n + 1, 22);
    const xs = uniform(T * m * k + 3, 23);
    const tdy = gpu.upload([T * m * n + 1], dys);
    const tx = gpu.upload([T * m * k + 3], xs);
    const tout = gpu.zeros([w.nnz + 2]);
    await forEachVariant(gpu, async (gpu, v) => {
      const dyOff = 1 + m * n, xOff = 3 + 2 * m * k;
      const outV = tout.view(1, [w.nnz]);
      sddmm(gpu, {
        dy: tdy.view(dyOff, [m, n]),
        x: tx.view(xOff, [m, k]),
        w,
        out: outV,
      });
      const want = sddmmRef({
        dy: dys.subarray(dyOff, dyOff + m * n),
        x: xs.subarray(xOff, xOff + m * k),
        csr,
        m,
      });
      const all = await gpu.read(tout);
      assertClose(all.subarray(1, 1 + w.nnz), want, sumTolerance(m), `view ${v}`);
      if (all[0] !== 0 || all[w.nnz + 1] !== 0) throw new Error(`${v} wrote outside its view`);
    });
  },
});

Deno.test({
  name: "sddmm equals the masked dense weight gradient dyᵀ·x at the active entries",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const m = 40, n = 4 * 12, k = 30;
    await forEachVariant(gpu, async (gpu, v) => {
      for (const density of [0.5, 0.1]) {
        const mask = bernoulliMask(n * k, density, 30);
        const csr = hostCsrFromMask(n, k, uniform(n * k, 31), mask);
        const w = uploadSparse(gpu, csr, { blocks: [n / 4, n / 4, n / 4, n / 4] });
        const tdy = gpu.upload([m, n], uniform(m * n, 32));
        const tx = gpu.upload([m, k], uniform(m * k, 33));
        const tout = gpu.tensor([storedLength(w.nnz)]);
        const tdense = gpu.tensor([n, k]);
        sddmm(gpu, { dy: tdy, x: tx, w, out: tout, alpha: 0.25 });
        // The dense path computes the full dW[n, k] = dyᵀ[n, m]·x[m, k] (its mask multiplies the
        // B operand, x here, so it cannot sample dW); read it at the pattern on the host.
        matmul(gpu, { a: tdy, b: tx, c: tdense, transA: true, alpha: 0.25 });
        const dense = await gpu.read(tdense);
        const atEntries = new Float32Array(w.nnz);
        for (let r = 0; r < n; r++) {
          for (let p = csr.rowPtr[r]; p < csr.rowPtr[r + 1]; p++) {
            atEntries[p] = dense[r * k + csr.colIdx[p]];
          }
        }
        // Two f32 sums of m terms in different orders: twice one sum's tolerance.
        assertClose(await gpu.read(tout), atEntries, sumTolerance(4 * m), `${v} ${density}`);
        for (const t of [tdy, tx, tout, tdense]) gpu.release(t);
        releaseSparse(gpu, w);
      }
    });
  },
});

Deno.test({
  name: "sddmm with transposed operands matches the CPU reference (vec4 and scalar M)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // M % 4 = 0 takes the vec4 kernel, the others the scalar one; density 0.01 and tall thin
    // shapes give empty rows and threads whose 8 entries span several rows.
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [4, 17, 3],
      [3, 5, 17],
      [20, 127, 33],
      [17, 3, 127],
      [8, 9, 1000],
      [2, 1031, 5],
      [700, 23, 41],
    ];
    await forEachVariant(gpu, async (gpu) => {
      let seed = 1000;
      for (const density of SPARSE_TEST_DENSITIES) {
        for (const [m, n, k] of shapes) {
          await check(gpu, { m, n, k, density, transposed: true }, seed += 10);
        }
      }
      await check(
        gpu,
        { m: 1003, n: 7, k: 130, density: 0.1, alpha: 0.5, beta: 1, transposed: true },
        5,
      );
      await check(
        gpu,
        { m: 20, n: 37, k: 21, density: 0.5, alpha: -2, beta: -1.5, transposed: true },
        6,
      );
    });
  },
});

Deno.test({
  name: "sddmm with transposed operands splits M across dispatches past the loop budget",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    if (!gpu.report.isFallback) return; // the split only happens on software adapters
    // 8 entries per thread, each segment one pass over M (in vec4 steps when M % 4 = 0): about
    // 8119 steps fit a dispatch, so M = 9001 (scalar) and M = 32480 (vec4) need two.
    for (const m of [9001, 32480]) {
      const before = gpu.dispatchCount;
      await check(gpu, { m, n: 3, k: 5, density: 1, alpha: 0.5, beta: 2, transposed: true }, 700);
      if (gpu.dispatchCount - before < 2) throw new Error(`M = ${m}: expected a split`);
    }
  },
});

Deno.test({
  name: "sddmm with transposed operands reads views at aligned and unaligned offsets",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const m = 12, n = 13, k = 9;
    const csr = hostCsrFromMask(n, k, uniform(n * k, 60), bernoulliMask(n * k, 0.33, 61));
    const w = uploadSparse(gpu, csr);
    const dy = uniform(m * n, 62), x = uniform(m * k, 63);
    const want = sddmmRef({ dy, x, csr, m });
    // Offsets 4/8 keep vec4 loads, 1/3 force scalar ones.
    for (const [dyOff, xOff] of [[4, 8], [1, 3]]) {
      const dys = new Float32Array(dyOff + m * n + 2);
      dys.set(transposeRef(dy, m, n), dyOff);
      const xs = new Float32Array(xOff + m * k + 2);
      xs.set(transposeRef(x, m, k), xOff);
      const tdy = gpu.upload([dys.length], dys);
      const tx = gpu.upload([xs.length], xs);
      const tout = gpu.zeros([w.nnz + 2]);
      sddmm(gpu, {
        dy: tdy.view(dyOff, [n, m]),
        x: tx.view(xOff, [k, m]),
        transposed: true,
        w,
        out: tout.view(1, [w.nnz]),
      });
      const all = await gpu.read(tout);
      assertClose(all.subarray(1, 1 + w.nnz), want, sumTolerance(m), `offsets ${dyOff}/${xOff}`);
      if (all[0] !== 0 || all[w.nnz + 1] !== 0) throw new Error("wrote outside its view");
      for (const t of [tdy, tx, tout]) gpu.release(t);
    }
    releaseSparse(gpu, w);
  },
});

Deno.test({
  name: "sampleDense reads a dense matrix at the pattern, with alpha, beta and views",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const shapes: [number, number][] = [[1, 1], [17, 3], [3, 127], [1031, 5], [40, 1000]];
    let seed = 800;
    for (const density of SPARSE_TEST_DENSITIES) {
      for (const [n, k] of shapes) {
        const csr = hostCsrFromMask(
          n,
          k,
          uniform(n * k, seed++),
          bernoulliMask(n * k, density, seed++),
        );
        const w = uploadSparse(gpu, csr);
        const dense = uniform(n * k + 3, seed++);
        const len = storedLength(w.nnz);
        const out0 = uniform(len, seed++);
        const tdense = gpu.upload([n * k + 3], dense);
        const tout = gpu.upload([len], out0);
        const [alpha, beta] = density === 0.33 ? [-0.5, 2] : [1, 0];
        sampleDense(gpu, { dense: tdense.view(3, [n, k]), w, out: tout, alpha, beta });
        const got = await gpu.read(tout);
        const want = sampleDenseRef({ dense: dense.subarray(3), csr, out: out0, alpha, beta });
        // One product and one fma per entry: a couple of f32 roundings.
        assertClose(got.subarray(0, w.nnz), want, sumTolerance(2), `[${n}, ${k}] d=${density}`);
        if (w.nnz === 0 && got[0] !== out0[0]) throw new Error("wrote past nnz");
        gpu.release(tdense);
        gpu.release(tout);
        releaseSparse(gpu, w);
      }
    }
  },
});

Deno.test({
  name: "sddmm rejects mismatched shapes, dtypes and out lengths before dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const csr = hostCsrFromMask(6, 5, uniform(30, 40), bernoulliMask(30, 0.5, 41));
    const w = uploadSparse(gpu, csr);
    const before = gpu.dispatchCount;
    const expectShapeError = (fn: () => void, text: string) => {
      try {
        fn();
      } catch (e) {
        if (!(e instanceof ShapeError) || !e.message.includes(text)) throw e;
        return;
      }
      throw new Error(`expected a ShapeError mentioning "${text}"`);
    };
    const dy = gpu.tensor([4, 6]);
    const x = gpu.tensor([4, 5]);
    const out = gpu.tensor([w.nnz]);
    expectShapeError(() => sddmm(gpu, { dy: x, x, w, out }), "need dy [M, 6]");
    expectShapeError(() => sddmm(gpu, { dy, x: dy, w, out }), "x [M, 5]");
    expectShapeError(() => sddmm(gpu, { dy, x: gpu.tensor([3, 5]), w, out }), "[3, 5]");
    expectShapeError(() => sddmm(gpu, { dy, x, w, out: gpu.tensor([w.nnz + 1]) }), "out");
    expectShapeError(
      () => sddmm(gpu, { dy, x, w, out: gpu.tensor([w.nnz], "u32") as never }),
      "f32",
    );
    expectShapeError(() => sddmm(gpu, { dy: gpu.tensor([24]), x, w, out }), "2-D");
    expectShapeError(
      () => sddmm(gpu, { dy, x, w: { ...w, colIdx: gpu.tensor([1], "u32") }, out }),
      "colIdx",
    );
    expectShapeError(() => sddmm(gpu, { dy, x, w, out: dy.view(0, [w.nnz]) }), "overlaps");
    const dyT = gpu.tensor([6, 4]);
    const xT = gpu.tensor([5, 4]);
    expectShapeError(
      () => sddmm(gpu, { dy, x: xT, w, out, transposed: true }),
      "need dyᵀ [6, M] and xᵀ [5, M]",
    );
    expectShapeError(
      () => sddmm(gpu, { dy: dyT, x: gpu.tensor([5, 3]), w, out, transposed: true }),
      "[5, 3]",
    );
    expectShapeError(() => sampleDense(gpu, { dense: gpu.tensor([5, 6]), w, out }), "[6, 5]");
    expectShapeError(
      () => sampleDense(gpu, { dense: gpu.tensor([6, 5]), w, out: gpu.tensor([w.nnz + 1]) }),
      "out",
    );
    if (gpu.dispatchCount !== before) throw new Error("a rejected sddmm recorded a dispatch");
  },
});
