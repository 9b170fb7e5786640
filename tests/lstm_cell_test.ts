import { equal, ok, throws } from "node:assert/strict";
import { assertClose, GPU_TEST, testGpu, type Tolerance, uniform } from "./_util.ts";
import { lstmCellBackward, lstmCellForward } from "../kernels/cells/lstm_cell.ts";
import {
  lstmCellBackwardRef,
  lstmCellBackwardRef64,
  lstmCellForwardRef,
  lstmCellForwardRef64,
} from "../kernels/cells/lstm_cell_ref.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";

/**
 * Forward tolerances (no accumulation; each output is a handful of f32 operations).
 * Activations: WGSL allows exp 3 + 2|z| ulp (z in [-3, 3] here: 9 ulp) and division 2.5 ulp;
 * tanh is specified through exp with absolute error near 0, so 4 ulp(1) = 4.8e-7 absolute plus
 * 27 ulp relative (the elementwise test's bound) covers act. c = f·cPrev + i·g with
 * |cPrev| <= 2 inherits at most (2 + 1 + 1) × 5e-7 = 2e-6 from the activations plus two
 * roundings of |c| <= 3 (5e-7 with an fma or not); h = o·tanh(c) adds tanh's error: 4e-6
 * absolute covers both, 40× below any indexing error (which is O(0.1) or more).
 */
const ACT_TOL: Tolerance = { atol: 4 * 2 ** -23, rtol: 27 * 2 ** -23 };
const STATE_TOL: Tolerance = { atol: 4e-6, rtol: 4 * 2 ** -23 };
/**
 * Backward: inputs act/c are identical f32 on both sides, so only tanh(c) (<= 5e-7 absolute)
 * and ~8 roundings of products <= 2 in magnitude differ: 4e-6 absolute.
 */
const GRAD_TOL: Tolerance = { atol: 4e-6, rtol: 4 * 2 ** -23 };

Deno.test("lstm cell ref: backward equals f64 central differences of sum(h*r1) + sum(c*r2)", () => {
  for (const [B, H, withDcNext, withBias] of [[3, 5, true, true], [2, 4, false, false]] as const) {
    const gates = Array.from(uniform(4 * B * H, 1 + H, -2, 2));
    const bias = withBias ? Array.from(uniform(4 * H, 2 + H, -1, 1)) : undefined;
    const cPrev = Array.from(uniform(B * H, 3 + H, -2, 2));
    const r1 = Array.from(uniform(B * H, 4 + H));
    // without dcNext the loss must not depend on c directly (r2 = 0)
    const r2 = withDcNext ? Array.from(uniform(B * H, 5 + H)) : new Array(B * H).fill(0);
    const loss = (g: number[], bi: number[] | undefined, cp: number[]) => {
      const { h, c } = lstmCellForwardRef64({ B, H, gates: g, bias: bi, cPrev: cp });
      let s = 0;
      for (let k = 0; k < B * H; k++) s += h[k] * r1[k] + c[k] * r2[k];
      return s;
    };
    const fwd = lstmCellForwardRef64({ B, H, gates, bias, cPrev });
    const { dgates, dcPrev } = lstmCellBackwardRef64({
      B,
      H,
      act: fwd.act,
      cPrev,
      c: fwd.c,
      dh: r1,
      dcNext: withDcNext ? r2 : undefined,
    });
    // central differences: truncation O(eps^2 · L''') ~ 1e-12, cancellation ~ 1e-16 / eps =
    // 1e-10; gradients are O(0.1), so a formula error (a missing factor, a swapped gate) is
    // orders of magnitude above the 1e-8 tolerance.
    const eps = 1e-6, tol = 1e-8;
    const fd = (arr: number[], k: number, f: () => number) => {
      const save = arr[k];
      arr[k] = save + eps;
      const up = f();
      arr[k] = save - eps;
      const down = f();
      arr[k] = save;
      return (up - down) / (2 * eps);
    };
    const L = () => loss(gates, bias, cPrev);
    for (let k = 0; k < gates.length; k++) {
      const num = fd(gates, k, L);
      ok(Math.abs(num - dgates[k]) <= tol, `dgates[${k}]: analytic ${dgates[k]}, numeric ${num}`);
    }
    for (let k = 0; k < cPrev.length; k++) {
      const num = fd(cPrev, k, L);
      ok(Math.abs(num - dcPrev[k]) <= tol, `dcPrev[${k}]: analytic ${dcPrev[k]}, numeric ${num}`);
    }
    if (bias) {
      // the bias gradient is dgates summed over the batch
      for (let k = 0; k < bias.length; k++) {
        let an = 0;
        for (let b = 0; b < B; b++) an += dgates[b * 4 * H + k];
        const num = fd(bias, k, L);
        ok(Math.abs(num - an) <= tol, `dbias[${k}]: analytic ${an}, numeric ${num}`);
      }
    }
  }
});

Deno.test("lstm cell ref: gate order i, f, g, o and PyTorch's cell equations on a hand case", () => {
  // B = 1, H = 1: z = (i, f, g, o) pre-activations chosen so each gate is distinguishable
  const z = [1, -2, 0.5, 3], cPrev = [0.7];
  const s = (v: number) => 1 / (1 + Math.exp(-v));
  const { c, h, act } = lstmCellForwardRef64({ B: 1, H: 1, gates: z, cPrev });
  const cWant = s(-2) * 0.7 + s(1) * Math.tanh(0.5);
  ok(Math.abs(c[0] - cWant) < 1e-15, `c ${c[0]} vs ${cWant}`);
  ok(Math.abs(h[0] - s(3) * Math.tanh(cWant)) < 1e-15, "h");
  ok(Math.abs(act[2] - Math.tanh(0.5)) < 1e-15 && Math.abs(act[3] - s(3)) < 1e-15, "act");
});

interface Case {
  B: number;
  H: number;
  gates: Float32Array;
  bias?: Float32Array;
  cPrev: Float32Array;
  dh: Float32Array;
  dcNext?: Float32Array;
}

function makeCase(B: number, H: number, seed: number, withBias: boolean, withDc: boolean): Case {
  return {
    B,
    H,
    gates: uniform(4 * B * H, seed, -3, 3),
    bias: withBias ? uniform(4 * H, seed + 1, -1, 1) : undefined,
    cPrev: uniform(B * H, seed + 2, -2, 2),
    dh: uniform(B * H, seed + 3),
    dcNext: withDc ? uniform(B * H, seed + 4) : undefined,
  };
}

Deno.test({
  name: "lstm cell GPU: forward and backward vs reference, B in {1,3,20}, H in {1,17,200}",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    let k = 0;
    for (const B of [1, 3, 20]) {
      for (const H of [1, 17, 200]) {
        for (const [withBias, withDc] of [[true, true], [false, false]]) {
          const cs = makeCase(B, H, 1000 + 10 * k++, withBias, withDc);
          const what = `B=${B} H=${H} bias=${withBias} dcNext=${withDc}`;
          const gates = gpu.upload([B, 4 * H], cs.gates);
          const bias = cs.bias && gpu.upload([4 * H], cs.bias);
          const cPrev = gpu.upload([B, H], cs.cPrev);
          const c = gpu.tensor([B, H]), h = gpu.tensor([B, H]), act = gpu.tensor([B, 4 * H]);
          lstmCellForward(gpu, { gates, bias, cPrev, c, h, act });
          const want = lstmCellForwardRef(cs);
          assertClose(await gpu.read(act), want.act, ACT_TOL, `act ${what}`);
          assertClose(await gpu.read(c), want.c, STATE_TOL, `c ${what}`);
          assertClose(await gpu.read(h), want.h, STATE_TOL, `h ${what}`);

          // backward from the reference's f32 forward state, so only the backward kernel differs
          const actR = gpu.upload([B, 4 * H], want.act), cR = gpu.upload([B, H], want.c);
          const dh = gpu.upload([B, H], cs.dh);
          const dcNext = cs.dcNext && gpu.upload([B, H], cs.dcNext);
          const dgates = gpu.tensor([B, 4 * H]), dcPrev = gpu.tensor([B, H]);
          lstmCellBackward(gpu, { act: actR, cPrev, c: cR, dh, dcNext, dgates, dcPrev });
          const g = lstmCellBackwardRef({ ...cs, act: want.act, c: want.c });
          assertClose(await gpu.read(dgates), g.dgates, GRAD_TOL, `dgates ${what}`);
          assertClose(await gpu.read(dcPrev), g.dcPrev, GRAD_TOL, `dcPrev ${what}`);
          for (const t of [gates, bias, cPrev, c, h, act, actR, cR, dh, dcNext, dgates, dcPrev]) {
            if (t) gpu.release(t);
          }
        }
      }
    }
  },
});

Deno.test({
  name: "lstm cell GPU: views of [T+1, B, H] state buffers and in-place act/c/dcPrev",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const B = 3, H = 17, T = 2, n = B * H;
    const cs = makeCase(B, H, 77, true, true);
    const want = lstmCellForwardRef(cs);
    // cs[t] and cs[t + 1] are views of one buffer (the read/read_write aliasing path)
    const cAll = gpu.upload(
      [T + 1, B, H],
      new Float32Array([...uniform(n, 5), ...cs.cPrev, ...new Float32Array(n)]),
    );
    const cPrev = cAll.view(n, [B, H]), c = cAll.view(2 * n, [B, H]);
    const hAll = gpu.zeros([T + 1, B, H]);
    const h = hAll.view(2 * n, [B, H]);
    // act written over the pre-activations, at an offset into a bigger buffer
    const pre = gpu.upload([4 * n + 1], new Float32Array([9, ...cs.gates]));
    const gates = pre.view(1, [B, 4 * H]);
    const bias = gpu.upload([4 * H], cs.bias!);
    lstmCellForward(gpu, { gates, bias, cPrev, c, h, act: gates });
    const all = await gpu.read(cAll);
    assertClose(all.subarray(2 * n), want.c, STATE_TOL, "c view");
    assertClose(all.subarray(n, 2 * n), cs.cPrev, { atol: 0, rtol: 0 }, "cPrev untouched");
    assertClose((await gpu.read(hAll)).subarray(2 * n), want.h, STATE_TOL, "h view");
    const preOut = await gpu.read(pre);
    equal(preOut[0], 9, "element before the act view untouched");
    assertClose(preOut.subarray(1), want.act, ACT_TOL, "act in place of gates");

    // in place c = cPrev
    const cIn = gpu.upload([B, H], cs.cPrev);
    const act2 = gpu.tensor([B, 4 * H]), h2 = gpu.tensor([B, H]);
    lstmCellForward(gpu, {
      gates: gpu.upload([B, 4 * H], cs.gates),
      bias,
      cPrev: cIn,
      c: cIn,
      h: h2,
      act: act2,
    });
    assertClose(await gpu.read(cIn), want.c, STATE_TOL, "c in place of cPrev");

    // backward: dcPrev in place of dcNext, then in place of dh
    const g = lstmCellBackwardRef({ ...cs, act: want.act, c: want.c });
    const actR = gpu.upload([B, 4 * H], want.act), cR = gpu.upload([B, H], want.c);
    const cP = gpu.upload([B, H], cs.cPrev), dh = gpu.upload([B, H], cs.dh);
    const dc = gpu.upload([B, H], cs.dcNext!);
    const dgates = gpu.tensor([B, 4 * H]);
    lstmCellBackward(gpu, { act: actR, cPrev: cP, c: cR, dh, dcNext: dc, dgates, dcPrev: dc });
    assertClose(await gpu.read(dc), g.dcPrev, GRAD_TOL, "dcPrev in place of dcNext");
    assertClose(await gpu.read(dgates), g.dgates, GRAD_TOL, "dgates (dcPrev in place)");
    const g0 = lstmCellBackwardRef({ ...cs, act: want.act, c: want.c, dcNext: undefined });
    lstmCellBackward(gpu, { act: actR, cPrev: cP, c: cR, dh, dgates, dcPrev: dh });
    assertClose(await gpu.read(dh), g0.dcPrev, GRAD_TOL, "dcPrev in place of dh");
    assertClose(await gpu.read(dgates), g0.dgates, GRAD_TOL, "dgates (no dcNext)");
  },
});

Deno.test({
  name: "lstm cell GPU: huge pre-activations and cell states stay finite",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const B = 2, H = 3;
    const zs = [100, -100, 1e4, -1e4, 88.8, -88.8];
    const gh = new Float32Array(4 * B * H).map((_, i) => zs[i % zs.length]);
    const ch = new Float32Array(B * H).map((_, i) => (i % 2 ? 1e6 : -1e6));
    const gates = gpu.upload([B, 4 * H], gh), cPrev = gpu.upload([B, H], ch);
    const c = gpu.tensor([B, H]), h = gpu.tensor([B, H]), act = gpu.tensor([B, 4 * H]);
    lstmCellForward(gpu, { gates, cPrev, c, h, act });
    const want = lstmCellForwardRef({ B, H, gates: gh, cPrev: ch });
    const [a, cc, hh] = [await gpu.read(act), await gpu.read(c), await gpu.read(h)];
    for (const [name, v] of [["act", a], ["c", cc], ["h", hh]] as const) {
      ok(v.every(Number.isFinite), `${name} not finite: ${v}`);
    }
    assertClose(a, want.act, ACT_TOL, "act");
    assertClose(cc, want.c, { atol: 1e-6, rtol: 1e-6 }, "c");
    assertClose(hh, want.h, STATE_TOL, "h");
    const dgates = gpu.tensor([B, 4 * H]), dcPrev = gpu.tensor([B, H]);
    const ones = gpu.upload([B, H], new Float32Array(B * H).fill(1));
    lstmCellBackward(gpu, { act, cPrev, c, dh: ones, dcNext: ones, dgates, dcPrev });
    ok((await gpu.read(dgates)).every(Number.isFinite), "dgates finite");
    ok((await gpu.read(dcPrev)).every(Number.isFinite), "dcPrev finite");
  },
});

Deno.test({
  name: "lstm cell: bad shapes, dtypes and overlaps throw ShapeError before dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const B = 3, H = 5;
    const t = (shape: number[]) => gpu.tensor(shape);
    const fwd = {
      gates: t([B, 4 * H]),
      bias: t([4 * H]),
      cPrev: t([B, H]),
      c: t([B, H]),
      h: t([B, H]),
      act: t([B, 4 * H]),
    };
    const bwd = {
      act: fwd.act,
      cPrev: fwd.cPrev,
      c: fwd.c,
      dh: t([B, H]),
      dcNext: t([B, H]),
      dgates: t([B, 4 * H]),
      dcPrev: t([B, H]),
    };
    // shape-correct partial overlaps, carved from one buffer each
    const big = t([B * 4 * H + 1]);
    const big2 = t([B * 4 * H + B * H]);
    const before = gpu.dispatchCount;
    const badFwd: [string, Record<string, unknown>][] = [
      ["gates width", { gates: t([B, 4 * H + 1]) }],
      ["gates rows", { gates: t([B + 1, 4 * H]) }],
      ["gates 1-D", { gates: t([B * 4 * H]) }],
      ["bias", { bias: t([H]) }],
      ["bias 2-D", { bias: t([1, 4 * H]) }],
      ["cPrev 1-D", { cPrev: t([B * H]) }],
      ["c", { c: t([B, H + 1]) }],
      ["h", { h: t([H, B]) }],
      ["act", { act: t([B, 3 * H]) }],
      ["gates dtype", { gates: gpu.tensor([B, 4 * H], "u32") }],
      ["cPrev dtype", { cPrev: gpu.tensor([B, H], "i32") }],
      ["h aliases c", { h: fwd.c }],
      ["h aliases cPrev", { h: fwd.cPrev }],
      ["act shifted over gates", { gates: big.view(0, [B, 4 * H]), act: big.view(1, [B, 4 * H]) }],
    ];
    for (const [what, over] of badFwd) {
      throws(() => lstmCellForward(gpu, { ...fwd, ...over } as typeof fwd), ShapeError, what);
    }
    const badBwd: [string, Record<string, unknown>][] = [
      ["dh", { dh: t([B, H + 1]) }],
      ["dcNext", { dcNext: t([B + 1, H]) }],
      ["dgates", { dgates: t([B, H]) }],
      ["dcPrev", { dcPrev: t([B]) }],
      ["act", { act: t([B, 4 * H, 1]) }],
      ["c", { c: t([B, 2 * H]) }],
      ["dh dtype", { dh: gpu.tensor([B, H], "u32") }],
      ["dgates aliases act", { dgates: fwd.act }],
      ["dgates overlaps dh", {
        dgates: big2.view(0, [B, 4 * H]),
        dh: big2.view(B * 4 * H - 1, [B, H]),
      }],
      ["dcPrev aliases c", { dcPrev: fwd.c }],
      ["dcPrev aliases cPrev", { dcPrev: fwd.cPrev }],
    ];
    for (const [what, over] of badBwd) {
      throws(() => lstmCellBackward(gpu, { ...bwd, ...over } as typeof bwd), ShapeError, what);
    }
    equal(gpu.dispatchCount, before, "nothing may be dispatched");
  },
});
