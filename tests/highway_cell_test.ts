import { equal, ok, throws } from "node:assert/strict";
import { assertClose, GPU_TEST, testGpu, type Tolerance, uniform } from "./_util.ts";
import {
  highwayCellBackward,
  highwayCellForward,
  highwayMaskedAdd,
} from "../kernels/cells/highway_cell.ts";
import { highwayBackwardRef, highwayForwardRef } from "../kernels/cells/highway_cell_ref.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";

/**
 * Forward: tanh/sigmoid within a few ulp (as the LSTM cell's bounds), s = h·t + s(1 − t) with
 * |s| <= 1 adds two roundings: 4e-6 absolute, far below an indexing error (O(0.1)).
 * Backward: the same activations on both sides (f32 act read back), ~6 roundings: 4e-6.
 */
const TOL: Tolerance = { atol: 4e-6, rtol: 4 * 2 ** -23 };

Deno.test("highway ref: backward equals f64 central differences of sum(s'·r)", () => {
  const B = 2, H = 3;
  const pre = Array.from(uniform(2 * B * H, 1, -2, 2));
  const sPrev = Array.from(uniform(B * H, 2));
  const r = Array.from(uniform(B * H, 3));
  const loss = (p: number[], s: number[]) =>
    highwayForwardRef(B, H, p, s).s.reduce((a, x, k) => a + x * r[k], 0);
  const { act } = highwayForwardRef(B, H, pre, sPrev);
  const { dpre, dsPrev } = highwayBackwardRef(B, H, act, sPrev, r);
  const h = 1e-6;
  pre.forEach((_, k) => {
    const up = [...pre], dn = [...pre];
    up[k] += h, dn[k] -= h;
    const fd = (loss(up, sPrev) - loss(dn, sPrev)) / (2 * h);
    ok(Math.abs(fd - dpre[k]) < 1e-8, `dpre[${k}] ${dpre[k]} vs ${fd}`);
  });
  sPrev.forEach((_, k) => {
    const up = [...sPrev], dn = [...sPrev];
    up[k] += h, dn[k] -= h;
    const fd = (loss(pre, up) - loss(pre, dn)) / (2 * h);
    // the cell's own path only: s enters the pre-activations through the caller's product
    ok(Math.abs(fd - dsPrev[k]) < 1e-8, `dsPrev[${k}] ${dsPrev[k]} vs ${fd}`);
  });
});

Deno.test({
  name: "highway cell: forward (masked next input, in place) and backward equal the reference",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    for (const [B, H, masked] of [[3, 5, true], [20, 33, false], [1, 200, true]] as const) {
      const pre = uniform(2 * B * H, 10 + H, -3, 3);
      const sPrev = uniform(B * H, 11 + H);
      const mask = Float32Array.from(uniform(B * H, 12 + H, 0, 1), (x) => (x < 0.3 ? 0 : 1.5));
      const tp = gpu.upload([B, 2 * H], pre);
      const ts = gpu.upload([B, H], sPrev);
      const tm = masked ? gpu.upload([B, H], mask) : undefined;
      const s = gpu.tensor([B, H]), sNext = gpu.tensor([B, H]);
      highwayCellForward(gpu, { pre: tp, sPrev: ts, mask: tm, act: tp, s, sNext });
      const want = highwayForwardRef(B, H, pre, sPrev);
      const act = await gpu.read(tp);
      assertClose(act, want.act, TOL, `act B=${B} H=${H}`);
      const got = await gpu.read(s);
      assertClose(got, want.s, TOL, `s B=${B} H=${H}`);
      const next = await gpu.read(sNext);
      for (let k = 0; k < B * H; k++) {
        equal(next[k], masked ? Math.fround(got[k] * mask[k]) : got[k], `sNext[${k}]`);
      }
      const ds = uniform(B * H, 13 + H);
      const tds = gpu.upload([B, H], ds);
      const dpre = gpu.tensor([B, 2 * H]);
      highwayCellBackward(gpu, { act: tp, sPrev: ts, ds: tds, dpre, dsPrev: tds });
      const wantB = highwayBackwardRef(B, H, act, sPrev, ds);
      assertClose(await gpu.read(dpre), wantB.dpre, TOL, `dpre B=${B} H=${H}`);
      assertClose(await gpu.read(tds), wantB.dsPrev, TOL, `dsPrev (in place) B=${B} H=${H}`);
      // the masked recurrent input's gradient: acc += mask ⊙ x
      const x = uniform(B * H, 14 + H);
      const acc = gpu.upload([B, H], sPrev);
      highwayMaskedAdd(gpu, { mask: gpu.upload([B, H], mask), x: gpu.upload([B, H], x), acc });
      // one multiply-add: exact up to a contracted fma's rounding
      const want2 = Array.from(sPrev, (v, k) => v + mask[k] * x[k]);
      assertClose(await gpu.read(acc), want2, { atol: 1e-6, rtol: 2 ** -23 }, "masked add");
    }
    const t = (shape: number[]) => gpu.tensor(shape);
    throws(() =>
      highwayCellForward(gpu, {
        pre: t([2, 7]),
        sPrev: t([2, 4]),
        act: t([2, 8]),
        s: t([2, 4]),
        sNext: t([2, 4]),
      }), ShapeError);
    const shared = t([2, 8]);
    throws(() =>
      highwayCellBackward(gpu, {
        act: shared,
        sPrev: t([2, 4]),
        ds: t([2, 4]),
        dpre: shared,
        dsPrev: t([2, 4]),
      }), ShapeError);
  },
});
