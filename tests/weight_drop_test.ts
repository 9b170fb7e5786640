import { throws } from "node:assert/strict";
import { weightDropDense, weightDropSparse } from "../kernels/cells/weight_drop.ts";
import { dropoutMaskRef } from "../kernels/cells/dropout_ref.ts";
import {
  hostCsrFromMask,
  releaseSparse,
  storedLength,
  uploadSparse,
} from "../kernels/sparse/sparse_matrix.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";
import { bernoulliMask, GPU_TEST, testGpu, uniform } from "./_util.ts";

// Exact checks: keep decisions are integer Philox words, the kept values one f32 multiply.

Deno.test({
  name: "weight drop: dense and CSR keep the same dense positions, with the given scale",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const rows = 37, cols = 23, n = rows * cols;
    const w = uniform(n, 4);
    for (const [p, scale] of [[0.45, 1], [0.3, Math.fround(1 / 0.7)], [0, 1]] as const) {
      const mask = { p, scale, seed: 9, offset: 123 };
      const keep = dropoutMaskRef(n, p, 9, 123);
      const want = Float32Array.from(w, (v, i) => (keep[i] ? Math.fround(v * scale) : 0));
      const x = gpu.upload([rows, cols], w);
      const y = gpu.tensor([rows, cols]);
      weightDropDense(gpu, { x, y, mask });
      const dense = await gpu.read(y);
      for (let i = 0; i < n; i++) {
        if (!Object.is(dense[i], want[i])) throw new Error(`dense ${i}: ${dense[i]} vs ${want[i]}`);
      }
      // in place
      weightDropDense(gpu, { x, y: x, mask });
      const inPlace = await gpu.read(x);
      if (inPlace.some((v, i) => !Object.is(v, want[i]))) throw new Error("in place differs");
      // CSR: the entries of a 40% pattern, at their dense positions
      const active = bernoulliMask(n, 0.4, 5);
      const csr = hostCsrFromMask(rows, cols, w, active);
      const sw = uploadSparse(gpu, csr);
      const out = gpu.tensor([storedLength(sw.nnz)]);
      weightDropSparse(gpu, { w: sw, x: sw.values, y: out, mask });
      const got = await gpu.read(out);
      for (let r = 0, k = 0; r < rows; r++) {
        for (; k < csr.rowPtr[r + 1]; k++) {
          const pos = r * cols + csr.colIdx[k];
          if (!Object.is(got[k], want[pos])) {
            throw new Error(`p ${p}: csr entry ${k} (row ${r}): ${got[k]} vs ${want[pos]}`);
          }
        }
      }
      gpu.release(x);
      gpu.release(y);
      gpu.release(out);
      releaseSparse(gpu, sw);
    }
  },
});

Deno.test({
  name: "weight drop: masks differ between offsets; bad arguments name the tensor",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const a = dropoutMaskRef(400, 0.5, 1, 10), b = dropoutMaskRef(400, 0.5, 1, 11);
    if (a.every((v, i) => v === b[i])) throw new Error("two offsets drew one mask");
    const x = gpu.upload([4, 5], uniform(20, 1));
    const mask = { p: 0.2, scale: 1, seed: 1, offset: 0 };
    throws(() => weightDropDense(gpu, { x, y: gpu.tensor([5, 4]), mask }), ShapeError);
    throws(() => weightDropDense(gpu, { x, y: x, mask: { ...mask, p: 1 } }), RangeError);
    const sw = uploadSparse(gpu, hostCsrFromMask(4, 5, uniform(20, 2), bernoulliMask(20, 0.5, 3)));
    throws(
      () => weightDropSparse(gpu, { w: sw, x: sw.values, y: gpu.tensor([3]), mask }),
      (e: Error) => e instanceof ShapeError && e.message.includes("weightDropSparse y"),
    );
  },
});
