import { spmm, spmmT } from "../kernels/sparse/spmm.ts";
import { spmmRef, spmmTRef } from "../kernels/sparse/spmm_ref.ts";
import { matmul } from "../kernels/dense/matmul.ts";
import {
  type HostCsr,
  hostCsrFromMask,
  type SparseMatrix,
  uploadSparse,
} from "../kernels/sparse/sparse_matrix.ts";
import { releaseSparse } from "../kernels/sparse/sparse_matrix.ts";
import type { Gpu } from "../kernels/runtime/runtime.ts";
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

interface Weight {
  csr: HostCsr;
  w: SparseMatrix;
  dense: Float32Array;
  mask: Float32Array;
}

/** A random `[n, k]` weight keeping each entry with probability `density`. */
function randomWeight(
  gpu: Gpu,
  n: number,
  k: number,
  density: number,
  seed: number,
  gates = 1,
): Weight {
  const dense = uniform(n * k, seed);
  const mask = bernoulliMask(n * k, density, seed + 1);
  const csr = hostCsrFromMask(n, k, dense, mask);
  const blocks = Array.from({ length: gates }, () => n / gates);
  return { csr, w: uploadSparse(gpu, csr, { blocks }), dense, mask };
}

interface Case {
  m: number;
  n: number;
  k: number;
  density: number;
  alpha?: number;
  beta?: number;
  bias?: boolean;
  gates?: number;
  /** Pass x and dy transposed (`transX`, `transDy`). */
  trans?: boolean;
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

/**
 * Checks spmm (y = α·x·Wᵀ + β·y + bias, W [n, k]) and spmmT (dx = α·dy·W + β·dx) on one weight.
 * Tolerance: spmm sums at most k products of U(-1,1)·U(-1,1) terms, spmmT at most n, plus the
 * β and bias terms; scaled by |α|.
 */
async function check(gpu: Gpu, c: Case, seed: number): Promise<void> {
  const { m, n, k, density } = c;
  const { csr, w } = randomWeight(gpu, n, k, density, seed, c.gates);
  const x = uniform(m * k, seed + 2);
  const y0 = uniform(m * n, seed + 3);
  const dy = uniform(m * n, seed + 4);
  const dx0 = uniform(m * k, seed + 5);
  const bias = c.bias ? uniform(n, seed + 6) : undefined;
  const trans = c.trans ?? false;
  const tx = trans ? gpu.upload([k, m], transpose(x, m, k)) : gpu.upload([m, k], x);
  const ty = gpu.upload([m, n], y0);
  const tdy = trans ? gpu.upload([n, m], transpose(dy, m, n)) : gpu.upload([m, n], dy);
  const tdx = gpu.upload([m, k], dx0);
  const tbias = bias ? gpu.upload([n], bias) : undefined;
  const { alpha, beta } = c;
  spmm(gpu, { x: tx, w, y: ty, alpha, beta, bias: tbias, transX: trans });
  spmmT(gpu, { dy: tdy, w, dx: tdx, alpha, beta, transDy: trans });
  const label = `${gpu.variant} ${JSON.stringify(c)}`;
  const scale = Math.max(1, Math.abs(alpha ?? 1));
  assertClose(
    await gpu.read(ty),
    spmmRef({ x, csr, m, y: y0, alpha, beta, bias }),
    sumTolerance(k + 2, scale),
    `spmm ${label}`,
  );
  assertClose(
    await gpu.read(tdx),
    spmmTRef({ dy, csr, m, dx: dx0, alpha, beta }),
    sumTolerance(n + 2, scale),
    `spmmT ${label}`,
  );
  for (const t of [tx, ty, tdy, tdx, tbias]) if (t) gpu.release(t);
  releaseSparse(gpu, w);
}

Deno.test({
  name: "spmm and spmmT match the CPU reference at every density and odd shapes",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [1, 17, 3],
      [3, 5, 17],
      [20, 127, 33],
      [17, 3, 127],
      [3, 40, 1000],
      [2, 1031, 9],
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
  name: "spmm transX and spmmT transDy take transposed inputs (vec4 and scalar gathers)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu) => {
      let seed = 300;
      // M % 4 = 0 takes vec4 gathers in regblock (M = 28 fills one 32-row block with clamped
      // rows, M = 700 splits into 48-row blocks, the last partial), others scalar ones.
      for (const [m, n, k] of [[20, 37, 29], [28, 17, 130], [1, 5, 3], [3, 127, 17], [700, 9, 5]]) {
        for (const density of [1, 0.33, 0]) {
          await check(gpu, { m, n, k, density, trans: true, bias: true, beta: 0.5 }, seed += 10);
        }
      }
    });
  },
});

Deno.test({
  name: "spmm and spmmT cover large batches (M = 700, 1003) across workgroups",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu) => {
      await check(gpu, { m: 700, n: 37, k: 29, density: 0.33 }, 500);
      await check(gpu, { m: 1003, n: 13, k: 64, density: 0.1, bias: true, beta: 1 }, 501);
      await check(gpu, { m: 65, n: 9, k: 7, density: 1 }, 502);
    });
  },
});

Deno.test({
  name: "spmm applies alpha, beta and bias; spmmT alpha and beta; gate-blocked weights",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu) => {
      await check(
        gpu,
        { m: 20, n: 37, k: 21, density: 0.5, alpha: 0.5, beta: -1.5, bias: true },
        1,
      );
      await check(gpu, { m: 7, n: 9, k: 40, density: 0.33, alpha: -2, beta: 1 }, 2);
      await check(gpu, { m: 33, n: 18, k: 5, density: 0.1, beta: 0, bias: true }, 3);
      // An LSTM's W: [4H, H] with rows i, f, g, o as gate blocks.
      await check(
        gpu,
        { m: 20, n: 4 * 17, k: 17, density: 0.33, gates: 4, bias: true, beta: 1 },
        4,
      );
    });
  },
});

Deno.test({
  name: "spmm of an empty matrix gives beta*y + bias; beta = 0 ignores NaNs in the old output",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const m = 5, n = 11, k = 7;
    const empty = randomWeight(gpu, n, k, 0, 9);
    const full = randomWeight(gpu, n, k, 1, 9);
    if (empty.w.nnz !== 0) throw new Error("density 0 gave entries");
    const x = uniform(m * k, 10);
    const y0 = uniform(m * n, 11);
    const bias = uniform(n, 12);
    const tx = gpu.upload([m, k], x);
    const tbias = gpu.upload([n], bias);
    await forEachVariant(gpu, async (gpu, v) => {
      const ty = gpu.upload([m, n], y0);
      spmm(gpu, { x: tx, w: empty.w, y: ty, beta: 0.5, bias: tbias });
      const want = y0.map((y, i) => 0.5 * y + bias[i % n]);
      assertClose(await gpu.read(ty), want, { atol: 1e-6, rtol: 1e-6 }, `empty spmm ${v}`);
      const tdx = gpu.upload([m, k], new Float32Array(m * k).fill(3));
      spmmT(gpu, { dy: ty, w: empty.w, dx: tdx, beta: -1 });
      assertClose(await gpu.read(tdx), new Float32Array(m * k).fill(-3), { atol: 0, rtol: 0 }, v);
      // NaN in the old outputs must not leak through beta = 0.
      gpu.write(ty, new Float32Array(m * n).fill(NaN));
      gpu.write(tdx, new Float32Array(m * k).fill(NaN));
      spmm(gpu, { x: tx, w: full.w, y: ty });
      spmmT(gpu, { dy: gpu.upload([m, n], y0), w: full.w, dx: tdx });
      assertClose(await gpu.read(ty), spmmRef({ x, csr: full.csr, m }), sumTolerance(k), v);
      assertClose(await gpu.read(tdx), spmmTRef({ dy: y0, csr: full.csr, m }), sumTolerance(n), v);
    });
  },
});

Deno.test({
  name: "spmm and spmmT read and write tensor views at element offsets",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // One time step t of [T, B, H] buffers: x_t and y_t are views with odd offsets.
    const T = 3, m = 5, n = 13, k = 9, t = 1;
    const { csr, w } = randomWeight(gpu, n, k, 0.33, 20);
    const xs = uniform(T * m * k + 1, 21);
    const txs = gpu.upload([T * m * k + 1], xs);
    const tys = gpu.zeros([T * m * n + 3]);
    const tdx = gpu.zeros([T * m * k + 1]);
    await forEachVariant(gpu, async (gpu, v) => {
      const xOff = 1 + t * m * k, yOff = 3 + t * m * n;
      const xv = txs.view(xOff, [m, k]);
      const yv = tys.view(yOff, [m, n]);
      spmm(gpu, { x: xv, w, y: yv });
      const xt = xs.subarray(xOff, xOff + m * k);
      const want = spmmRef({ x: xt, csr, m });
      assertClose(await gpu.read(yv), want, sumTolerance(k), `view spmm ${v}`);
      const all = await gpu.read(tys);
      if (all.some((e, i) => (i < yOff || i >= yOff + m * n) && e !== 0)) {
        throw new Error(`spmm ${v} wrote outside its output view`);
      }
      const dxv = tdx.view(1 + 2 * m * k, [m, k]);
      spmmT(gpu, { dy: yv, w, dx: dxv });
      assertClose(await gpu.read(dxv), spmmTRef({ dy: want, csr, m }), sumTolerance(n, k), v);
    });
  },
});

Deno.test({
  name: "spmm transX reads transposed views at aligned and unaligned offsets",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const m = 8, n = 11, k = 6;
    const { csr, w } = randomWeight(gpu, n, k, 0.5, 50);
    const x = uniform(m * k, 51);
    const xt = transpose(x, m, k);
    const want = spmmRef({ x, csr, m });
    await forEachVariant(gpu, async (gpu, v) => {
      for (const off of [4, 3]) {
        const buf = gpu.upload([m * k + off], [...new Array(off).fill(NaN), ...xt]);
        const y = gpu.tensor([m, n]);
        spmm(gpu, { x: buf.view(off, [k, m]), w, y, transX: true });
        assertClose(await gpu.read(y), want, sumTolerance(k), `transX view +${off} ${v}`);
        gpu.release(buf);
        gpu.release(y);
      }
    });
  },
});

Deno.test({
  name: "spmm and spmmT equal the masked dense matmul on the same data",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const m = 20, n = 4 * 24, k = 50;
    await forEachVariant(gpu, async (gpu, v) => {
      for (const density of [0.5, 0.1]) {
        const { w, dense, mask } = randomWeight(gpu, n, k, density, 30, 4);
        const tw = gpu.upload([n, k], dense);
        const tmask = gpu.upload([n, k], mask);
        const tx = gpu.upload([m, k], uniform(m * k, 31));
        const tdy = gpu.upload([m, n], uniform(m * n, 32));
        const bias = gpu.upload([n], uniform(n, 33));
        const ys = [gpu.tensor([m, n]), gpu.tensor([m, n])];
        spmm(gpu, { x: tx, w, y: ys[0], bias, alpha: 0.7 });
        matmul(gpu, { a: tx, b: tw, c: ys[1], transB: true, mask: tmask, bias, alpha: 0.7 });
        // Two f32 sums of k terms in different orders: twice one sum's tolerance.
        const tolY = sumTolerance(4 * (k + 1));
        assertClose(await gpu.read(ys[0]), await gpu.read(ys[1]), tolY, `y ${v} ${density}`);
        const dxs = [gpu.tensor([m, k]), gpu.tensor([m, k])];
        spmmT(gpu, { dy: tdy, w, dx: dxs[0] });
        matmul(gpu, { a: tdy, b: tw, c: dxs[1], mask: tmask });
        const tolX = sumTolerance(4 * n);
        assertClose(await gpu.read(dxs[0]), await gpu.read(dxs[1]), tolX, `dx ${v} ${density}`);
        for (const t of [tw, tmask, tx, tdy, bias, ...ys, ...dxs]) gpu.release(t);
        releaseSparse(gpu, w);
      }
    });
  },
});

Deno.test({
  name: "spmm and spmmT reject mismatched shapes and dtypes before dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const { w } = randomWeight(gpu, 6, 5, 0.5, 40);
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
    const x = gpu.tensor([4, 5]);
    const y = gpu.tensor([4, 6]);
    expectShapeError(() => spmm(gpu, { x: gpu.tensor([4, 6]), w, y }), "[4, 6]");
    expectShapeError(() => spmm(gpu, { x, w, y: gpu.tensor([4, 5]) }), "need x [M, 5]");
    expectShapeError(() => spmm(gpu, { x, w, y: gpu.tensor([3, 6]) }), "[3, 6]");
    expectShapeError(() => spmm(gpu, { x, w, y, bias: gpu.tensor([5]) }), "bias");
    expectShapeError(
      () => spmm(gpu, { x: gpu.tensor([4, 5], "u32") as never, w, y }),
      "f32",
    );
    expectShapeError(() => spmm(gpu, { x: gpu.tensor([20]), w, y }), "2-D");
    expectShapeError(() => spmm(gpu, { x, w: { ...w, values: gpu.tensor([1]) }, y }), "values");
    expectShapeError(() => spmmT(gpu, { dy: x, w, dx: y }), "need dy [M, 6]");
    expectShapeError(() => spmmT(gpu, { dy: y, w, dx: gpu.tensor([4, 6]) }), "dx");
    expectShapeError(() => spmmT(gpu, { dy: y, w, dx: gpu.tensor([4, 5], "i32") as never }), "f32");
    expectShapeError(() => spmm(gpu, { x, w, y, transX: true }), "need x [5, M]");
    expectShapeError(() => spmmT(gpu, { dy: y, w, dx: x, transDy: true }), "need dy [6, M]");
    expectShapeError(() => spmm(gpu, { x: y.view(0, [4, 5]), w, y }), "overlaps");
    if (gpu.dispatchCount !== before) throw new Error("a rejected spmm recorded a dispatch");
  },
});
