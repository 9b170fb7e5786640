import { transpose } from "../kernels/dense/transpose.ts";
import { transposeRef } from "../kernels/dense/transpose_ref.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";
import { forEachVariant, GPU_TEST, testGpu, uniform } from "./_util.ts";

/** A transpose moves values unchanged: exact equality, and every element is checked. */
function assertExact(got: Float32Array, want: Float32Array, label: string): void {
  if (got.length !== want.length) throw new Error(`${label}: length ${got.length}`);
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) throw new Error(`${label}: [${i}] = ${got[i]}, want ${want[i]}`);
  }
}

Deno.test({
  name: "transpose matches the CPU reference on aligned and odd shapes",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // Aligned shapes take the vec4 kernel (regblock), the others the scalar one.
    const shapes: [number, number][] = [
      [1, 1],
      [1, 17],
      [17, 1],
      [3, 5],
      [4, 8],
      [20, 1000],
      [127, 33],
      [700, 12],
      [1003, 17],
    ];
    await forEachVariant(gpu, async (gpu, v) => {
      let seed = 1;
      for (const [r, c] of shapes) {
        const x = uniform(r * c, seed++);
        const tx = gpu.upload([r, c], x);
        const tout = gpu.upload([c, r], uniform(r * c, seed++));
        transpose(gpu, { x: tx, out: tout });
        assertExact(await gpu.read(tout), transposeRef(x, r, c), `${v} [${r}, ${c}]`);
        gpu.release(tx);
        gpu.release(tout);
      }
    });
  },
});

Deno.test({
  name: "transpose reads and writes views at element offsets and writes nothing outside",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // Offsets 4 and 8 keep the vec4 path, 1 and 3 force the scalar one.
    const cases: [number, number, number, number][] = [[8, 12, 4, 8], [8, 12, 1, 3], [5, 7, 2, 4]];
    await forEachVariant(gpu, async (gpu, v) => {
      for (const [r, c, xOff, oOff] of cases) {
        const xs = uniform(r * c + xOff + 5, 10 + xOff);
        const tx = gpu.upload([xs.length], xs);
        const tout = gpu.zeros([r * c + oOff + 5]);
        transpose(gpu, { x: tx.view(xOff, [r, c]), out: tout.view(oOff, [c, r]) });
        const all = await gpu.read(tout);
        const want = transposeRef(xs.subarray(xOff, xOff + r * c), r, c);
        const label = `${v} [${r}, ${c}] at ${xOff}/${oOff}`;
        assertExact(all.subarray(oOff, oOff + r * c), want, label);
        for (let i = 0; i < all.length; i++) {
          if ((i < oOff || i >= oOff + r * c) && all[i] !== 0) {
            throw new Error(`${label}: wrote outside its view at ${i}`);
          }
        }
        gpu.release(tx);
        gpu.release(tout);
      }
    });
  },
});

Deno.test({
  name: "transpose covers more tiles than one grid dimension holds",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // [4, 1100000]: 275000 regblock tiles (4297 workgroups of 64, one dimension) and 68750 tiled
    // workgroups along x, which passes 65535 and folds onto z.
    const r = 4, c = 1_100_000;
    const x = uniform(r * c, 50);
    const tx = gpu.upload([r, c], x);
    const tout = gpu.tensor([c, r]);
    await forEachVariant(gpu, async (gpu, v) => {
      transpose(gpu, { x: tx, out: tout });
      assertExact(await gpu.read(tout), transposeRef(x, r, c), `${v} [${r}, ${c}]`);
    });
    gpu.release(tx);
    gpu.release(tout);
  },
});

Deno.test({
  name: "transpose rejects wrong shapes, dtypes and overlapping views before dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
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
    const x = gpu.tensor([3, 5]);
    expectShapeError(() => transpose(gpu, { x, out: gpu.tensor([3, 5]) }), "[5, 3]");
    expectShapeError(() => transpose(gpu, { x: gpu.tensor([15]), out: x }), "2-D");
    expectShapeError(
      () => transpose(gpu, { x, out: gpu.tensor([5, 3], "u32") as never }),
      "f32",
    );
    const big = gpu.tensor([40]);
    expectShapeError(
      () => transpose(gpu, { x: big.view(0, [3, 5]), out: big.view(10, [5, 3]) }),
      "overlaps",
    );
    if (gpu.dispatchCount !== before) throw new Error("a rejected transpose recorded a dispatch");
  },
});
