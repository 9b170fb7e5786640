import { deepStrictEqual, throws } from "node:assert/strict";
import { assertClose, GPU_TEST, testGpu, uniform } from "./_util.ts";
import { adamMomentumScore } from "../kernels/select/momentum_score.ts";
import { adamMomentumScoreRef } from "../kernels/select/momentum_score_ref.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";

const gpu = await testGpu();

Deno.test({
  name: "adamMomentumScore matches the reference (odd sizes, v = 0, views)",
  ...GPU_TEST,
  fn: async () => {
    for (const n of [1, 3, 17, 127, 1031]) {
      const m = uniform(n, n, -1, 1);
      const v = uniform(n, n + 1, 0, 0.01);
      v[0] = 0; // never-updated position: m / eps must stay finite
      m[0] = n > 1 ? 0 : 1e-12;
      const buf = gpu.upload([2 * n + 4], [...m, ...v, 0, 0, 0, 0]);
      const out = gpu.upload([n + 2], new Float32Array(n + 2).fill(3));
      adamMomentumScore(gpu, {
        m: buf.view(0, [n]),
        v: buf.view(n, [n]),
        out: out.view(1, [n]),
        eps: 1e-8,
      });
      const got = await gpu.read(out);
      deepStrictEqual([got[0], got[n + 1]], [3, 3], `n=${n}: wrote outside the view`);
      // One sqrt, one add, one divide: WGSL allows a few ulp each (sqrt and / are not
      // correctly rounded everywhere), so 1e-5 relative is ample and far below any indexing bug.
      assertClose(got.slice(1, n + 1), adamMomentumScoreRef(m, v, 1e-8), {
        atol: 0,
        rtol: 1e-5,
      }, `n=${n}`);
      gpu.release(buf);
      gpu.release(out);
    }
  },
});

Deno.test({
  name: "adamMomentumScore rejects wrong sizes, dtypes, eps and overlaps before dispatch",
  ...GPU_TEST,
  fn: () => {
    const a = gpu.tensor([8]), b = gpu.tensor([8]), c = gpu.tensor([7]), u = gpu.tensor([8], "u32");
    const before = gpu.dispatchCount;
    throws(() => adamMomentumScore(gpu, { m: c, v: b, out: a, eps: 1e-8 }), ShapeError);
    throws(() => adamMomentumScore(gpu, { m: a, v: c, out: b, eps: 1e-8 }), ShapeError);
    throws(() => adamMomentumScore(gpu, { m: a, v: b, out: u, eps: 1e-8 }), ShapeError);
    throws(() => adamMomentumScore(gpu, { m: a, v: b, out: b, eps: 1e-8 }), ShapeError);
    throws(() => adamMomentumScore(gpu, { m: a, v: b, out: c, eps: 0 }), ShapeError);
    const d = gpu.tensor([8]);
    throws(() => adamMomentumScore(gpu, { m: a, v: b, out: d, eps: 0 }), RangeError);
    throws(() => adamMomentumScore(gpu, { m: a, v: b, out: d, eps: NaN }), RangeError);
    deepStrictEqual(gpu.dispatchCount, before);
    for (const t of [a, b, c, d, u]) gpu.release(t);
  },
});
