import { throws } from "node:assert/strict";
import { groupLassoGrad, maskDeadUnits, unitSquares } from "../kernels/optim/group_lasso.ts";
import {
  groupLassoGradRef,
  maskDeadUnitsRef,
  unitSquaresRef,
} from "../kernels/optim/group_lasso_ref.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";
import { assertClose, GPU_TEST, testGpu, uniform } from "./_util.ts";

const TOL = { atol: 1e-5, rtol: 1e-5 };

Deno.test({
  name: "group lasso: unit squares over row blocks and columns, accumulated, vs reference",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // an LSTM layer of U = 5 units: W_ih [4U, 3] (rows), W_hh [4U, U] (rows and columns)
    const U = 5;
    const ih = uniform(4 * U * 3, 1), hh = uniform(4 * U * U, 2);
    const tIh = gpu.upload([4 * U, 3], ih), tHh = gpu.upload([4 * U, U], hh);
    const out = gpu.zeros([U]);
    unitSquares(gpu, { w: tIh, axis: "rows", out });
    unitSquares(gpu, { w: tHh, axis: "rows", out, accumulate: true });
    unitSquares(gpu, { w: tHh, axis: "cols", out, accumulate: true });
    const want = unitSquaresRef(ih, 4 * U, 3, "rows", U);
    unitSquaresRef(hh, 4 * U, U, "rows", U, want, true);
    unitSquaresRef(hh, 4 * U, U, "cols", U, want, true);
    assertClose(await gpu.read(out), want, TOL, "unit squares");
    // without accumulate the old values are overwritten
    unitSquares(gpu, { w: tHh, axis: "cols", out });
    assertClose(await gpu.read(out), unitSquaresRef(hh, 4 * U, U, "cols", U), TOL, "overwrite");
    throws(() => unitSquares(gpu, { w: tIh, axis: "cols", out }), ShapeError);
    throws(() => unitSquares(gpu, { w: tIh, axis: "rows", out: gpu.zeros([7]) }), ShapeError);
  },
});

Deno.test({
  name: "group lasso: penalty gradient and dead-unit masks vs reference (zero groups add nothing)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const U = 6, R = 4 * U, C = U;
    const w = uniform(R * C, 3), g0 = uniform(R * C, 4);
    const rowSq = unitSquaresRef(w, R, C, "rows", U), colSq = unitSquaresRef(w, R, C, "cols", U);
    rowSq[2] = 0; // a removed unit: no gradient from its group
    for (const parts of [{ rows: true, cols: true }, { rows: true }, { cols: true }]) {
      const grad = gpu.upload([R, C], g0);
      groupLassoGrad(gpu, {
        w: gpu.upload([R, C], w),
        grad,
        lambda: 0.37,
        sq: {
          rows: parts.rows ? gpu.upload([U], Float32Array.from(rowSq)) : undefined,
          cols: "cols" in parts ? gpu.upload([C], Float32Array.from(colSq)) : undefined,
        },
      });
      const want = groupLassoGradRef({
        w,
        grad: Float64Array.from(g0),
        R,
        C,
        lambda: 0.37,
        rowSq: parts.rows ? rowSq : undefined,
        U,
        colSq: "cols" in parts ? colSq : undefined,
      });
      assertClose(await gpu.read(grad), want, TOL, `grad ${JSON.stringify(parts)}`);
    }
    throws(
      () =>
        groupLassoGrad(gpu, {
          w: gpu.upload([R, C], w),
          grad: gpu.upload([R, C], g0),
          lambda: 1,
          sq: {},
        }),
      ShapeError,
    );
    const rowDead = Float32Array.from({ length: U }, (_, k) => (k === 1 || k === 4 ? 1 : 0));
    const colDead = Float32Array.from({ length: C }, (_, k) => (k === 0 ? 1 : 0));
    const mask = gpu.upload([R, C], new Float32Array(R * C).fill(1));
    maskDeadUnits(gpu, {
      mask,
      dead: { rows: gpu.upload([U], rowDead), cols: gpu.upload([C], colDead) },
    });
    const want = maskDeadUnitsRef({
      mask: new Float64Array(R * C).fill(1),
      R,
      C,
      rowDead,
      U,
      colDead,
    });
    assertClose(await gpu.read(mask), want, { atol: 0, rtol: 0 }, "mask");
    // rows 1, 4 of every gate block and column 0 are gone: (24 - 8) · (6 - 1) entries stay
    const kept = (await gpu.read(mask)).reduce((n, m) => n + m, 0);
    if (kept !== 16 * 5) throw new Error(`kept ${kept}`);
  },
});
