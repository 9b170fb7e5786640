import type { Gpu } from "../kernels/runtime/runtime.ts";
import { matmul } from "../kernels/dense/matmul.ts";
import { matmulRef } from "../kernels/dense/matmul_ref.ts";
import { regblockMatmulSpec } from "../kernels/dense/matmul_regblock.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";
import {
  assertClose,
  bernoulliMask,
  forEachVariant,
  GPU_TEST,
  sumTolerance,
  testGpu,
  uniform,
} from "./_util.ts";

interface Case {
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  bias?: boolean;
  density?: number;
}

async function check(gpu: Gpu, c: Case, seed: number): Promise<void> {
  const { m, n, k, transA = false, transB = false } = c;
  const a = uniform(m * k, seed);
  const b = uniform(k * n, seed + 1);
  const c0 = uniform(m * n, seed + 2);
  const bias = c.bias ? uniform(n, seed + 3) : undefined;
  const mask = c.density !== undefined ? bernoulliMask(k * n, c.density, seed + 4) : undefined;
  const ta = gpu.upload(transA ? [k, m] : [m, k], a);
  const tb = gpu.upload(transB ? [n, k] : [k, n], b);
  const tc = gpu.upload([m, n], c0);
  const tbias = bias ? gpu.upload([n], bias) : undefined;
  const tmask = mask ? gpu.upload(transB ? [n, k] : [k, n], mask) : undefined;
  matmul(gpu, {
    a: ta,
    b: tb,
    c: tc,
    transA,
    transB,
    alpha: c.alpha,
    beta: c.beta,
    bias: tbias,
    mask: tmask,
  });
  const got = await gpu.read(tc);
  const want = matmulRef({
    a,
    b,
    c: c0,
    m,
    n,
    k,
    transA,
    transB,
    alpha: c.alpha,
    beta: c.beta,
    bias,
    mask,
  });
  // Sum of k products of U(-1,1) values, scaled by alpha, plus beta*C and bias terms.
  const scale = Math.max(1, Math.abs(c.alpha ?? 1));
  assertClose(got, want, sumTolerance(k + 2, scale), `${gpu.variant} ${JSON.stringify(c)}`);
  for (const t of [ta, tb, tc, tbias, tmask]) if (t) gpu.release(t);
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 17, 3],
  [3, 5, 17],
  [20, 127, 33],
  [17, 3, 127],
  [20, 40, 1000],
  [65, 70, 19],
  [128, 64, 64],
  // Even dimensions that are not multiples of 4 take the vec2 load path.
  [10, 22, 50],
  [18, 34, 26],
];

for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    const name = `matmul ${transA ? "T" : "N"}${transB ? "T" : "N"} matches the CPU reference`;
    Deno.test({
      name,
      ...GPU_TEST,
      fn: async () => {
        const gpu = await testGpu();
        await forEachVariant(gpu, async (gpu) => {
          let seed = 10;
          for (const [m, n, k] of SHAPES) await check(gpu, { m, n, k, transA, transB }, seed += 7);
        });
      },
    });
  }
}

Deno.test({
  name:
    "matmul register tiles of large products (64x32, 32x16, 16x16, all-rows skinny) match the reference",
  ...GPU_TEST,
  fn: async () => {
    // Products of 2^21 multiply-adds or more get the large tiles (see regblockTile); the shapes
    // above stay below that. The layouts are the three an LSTM step uses: X·Wᵀ, dY·W, dYᵀ·X.
    const gpu = (await testGpu()).withVariant("regblock");
    let seed = 500;
    for (const [m, n, k] of [[128, 130, 128], [64, 96, 400], [20, 300, 400]]) {
      await check(gpu, { m, n, k, transB: true }, seed++);
      await check(gpu, { m, n, k }, seed++);
      await check(gpu, { m, n, k, transA: true, bias: true }, seed++);
    }
    // 64×32 tiles (over 2^26 multiply-adds, N % 4 = 0): partial row and column tiles, the
    // K % 4 tail, bias and β, in the LSTM layouts (forward with K = H, dX, dW).
    await check(gpu, { m: 130, n: 260, k: 1998, transB: true, bias: true }, seed++);
    await check(gpu, { m: 130, n: 260, k: 2000, beta: 0.5 }, seed++);
    await check(gpu, { m: 130, n: 260, k: 2000, transA: true }, seed++);
  },
});

Deno.test({
  name: "matmul Aᵀ·B on the register-blocked family is a transpose into scratch and A·B",
  ...GPU_TEST,
  fn: async () => {
    const gpu = (await testGpu()).withVariant("regblock");
    const a = gpu.tensor([40, 24]), b = gpu.tensor([40, 32]), c = gpu.tensor([24, 32]);
    await gpu.sync();
    const [d0, live0] = [gpu.dispatchCount, gpu.memory().live];
    matmul(gpu, { a, b, c, transA: true });
    if (gpu.dispatchCount - d0 !== 2) throw new Error(`${gpu.dispatchCount - d0} dispatches`);
    if (gpu.memory().live !== live0) throw new Error("the scratch transpose was not released");
    // K = 0 (an empty batch): C = bias, through the same path
    await check(gpu, { m: 5, n: 6, k: 0, transA: true, bias: true }, 9);
    const cfg = {
      transA: true,
      transB: false,
      widthA: 4,
      widthB: 4,
      widthC: 4,
      hasBias: false,
      hasMask: false,
      readC: false,
      tm: 16,
      tn: 16,
      wx: 8,
      wy: 8,
    } as const;
    try {
      regblockMatmulSpec(cfg);
    } catch (e) {
      if (e instanceof RangeError && e.message.includes("transpose A")) return;
      throw e;
    }
    throw new Error("regblockMatmulSpec built an Aᵀ kernel");
  },
});

Deno.test({
  name: "matmul applies alpha, beta and bias",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu) => {
      await check(
        gpu,
        { m: 20, n: 37, k: 21, alpha: 0.5, beta: -1.5, bias: true, transB: true },
        1,
      );
      await check(gpu, { m: 7, n: 9, k: 40, alpha: -2, beta: 1, bias: false }, 2);
      await check(gpu, { m: 33, n: 18, k: 5, beta: 0, bias: true, transA: true }, 3);
    });
  },
});

Deno.test({
  name: "masked matmul multiplies the weight operand by the mask",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    await forEachVariant(gpu, async (gpu) => {
      for (const density of [0, 0.01, 0.33, 1]) {
        await check(gpu, { m: 20, n: 61, k: 48, transB: true, density }, 100);
        await check(gpu, { m: 13, n: 24, k: 130, density, bias: true }, 101);
      }
    });
  },
});

Deno.test({
  name: "matmul works on tensor views at unaligned offsets",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const m = 5, n = 6, k = 8;
    const a = uniform(m * k + 3, 5);
    const b = uniform(n * k, 6);
    const ta = gpu.upload([m * k + 3], a);
    const tb = gpu.upload([n, k], b);
    const tc = gpu.zeros([2 * m * n + 1]);
    await forEachVariant(gpu, async (gpu) => {
      const cView = tc.view(m * n + 1, [m, n]);
      matmul(gpu, { a: ta.view(3, [m, k]), b: tb, c: cView, transB: true });
      const got = await gpu.read(cView);
      const want = matmulRef({ a: a.subarray(3), b, m, n, k, transB: true });
      assertClose(got, want, sumTolerance(k), `view ${gpu.variant}`);
    });
  },
});

Deno.test({
  name: "matmul regblock and tiled variants agree on an RNN-shaped product",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const m = 20, n = 400, k = 100;
    const ta = gpu.upload([m, k], uniform(m * k, 8));
    const tb = gpu.upload([n, k], uniform(n * k, 9));
    const outs: Float32Array[] = [];
    await forEachVariant(gpu, async (gpu) => {
      const tc = gpu.tensor([m, n]);
      matmul(gpu, { a: ta, b: tb, c: tc, transB: true });
      outs.push(await gpu.read(tc));
    });
    assertClose(outs[0], outs[1], sumTolerance(k), "regblock vs tiled");
  },
});

Deno.test({
  name: "matmul rejects mismatched shapes and dtypes before dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const before = gpu.dispatchCount;
    const a = gpu.tensor([4, 5]);
    const b = gpu.tensor([6, 7]);
    const c = gpu.tensor([4, 7]);
    const expectShapeError = (fn: () => void, text: string) => {
      try {
        fn();
      } catch (e) {
        if (!(e instanceof ShapeError) || !e.message.includes(text)) throw e;
        return;
      }
      throw new Error(`expected a ShapeError mentioning "${text}"`);
    };
    expectShapeError(() => matmul(gpu, { a, b, c }), "[4, 5]");
    expectShapeError(
      () => matmul(gpu, { a, b: gpu.tensor([5, 7]), c, bias: gpu.tensor([6]) }),
      "bias",
    );
    expectShapeError(
      () => matmul(gpu, { a, b: gpu.tensor([5, 7]), c, mask: gpu.tensor([7, 5]) }),
      "mask",
    );
    expectShapeError(() => matmul(gpu, { a: gpu.tensor([4, 5], "u32"), b, c }), "f32");
    expectShapeError(() => matmul(gpu, { a: gpu.tensor([20]), b, c }), "2-D");
    if (gpu.dispatchCount !== before) throw new Error("a rejected matmul recorded a dispatch");
  },
});

Deno.test({
  name: "tensors over the device's storage limit are refused with the limit named",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const limit = gpu.report.limits.maxStorageBufferBindingSize;
    const rows = Math.ceil(limit / 4 / 1024) + 1;
    try {
      gpu.tensor([rows, 1024]);
    } catch (e) {
      if (e instanceof ShapeError && e.message.includes(String(limit))) return;
      throw e;
    }
    throw new Error("allocation over the limit was not refused");
  },
});
