import { equal, ok, throws } from "node:assert/strict";
import { assertClose, GPU_TEST, sumTolerance, testGpu, type Tolerance, uniform } from "./_util.ts";
import {
  ONLSTM_MAX_CHUNKS,
  onLstmActWidth,
  onLstmCellBackward,
  onLstmCellForward,
} from "../kernels/cells/onlstm_cell.ts";
import {
  onLstmCellBackwardRef,
  onLstmCellBackwardRef64,
  onLstmCellForwardRef,
  onLstmCellForwardRef64,
} from "../kernels/cells/onlstm_cell_ref.ts";
import { ShapeError } from "../kernels/runtime/tensor.ts";

const ULP = 2 ** -23;

/**
 * Relative error of the GPU master gates and probabilities for n chunks. p = exp(z − max) / Σ:
 * with gates in [-3, 3] and bias in [-1, 1], |z − max| <= 8, where WGSL allows exp 3 + 2·8 = 19
 * ulp; the sum of n positive terms adds at most (n − 1)·2⁻²⁴ relative (n/2 ulp), the reciprocal
 * 2.5 ulp and the product and the reference's rounding 1 ulp. c̃ = (positive partial sum)·(1/Σ)
 * has the same bound. Without exp (the backward recomputes c̃ from stored p) only the n/2 ulp of
 * the sum and a rounding remain.
 */
const masterRel = (n: number) => (23 + n / 2) * ULP;
const masterRelBwd = (n: number) => (1 + n / 2) * ULP;
/** The probabilities in act's master columns: relative, as above. */
const pTol = (n: number): Tolerance => ({ atol: 0, rtol: masterRel(n) });
/**
 * Block columns of act: the LSTM cell test's bound. WGSL allows exp 3 + 2|z| ulp (z in [-4, 4]:
 * 11 ulp) and division 2.5 ulp; tanh has absolute error near 0, so 4 ulp(1) absolute plus 27 ulp
 * relative covers o, g, i, f.
 */
const ACT_TOL: Tolerance = { atol: 4 * ULP, rtol: 27 * ULP };
/**
 * c = f̂·cPrev + î·g, with f̂ = c̃_f − ω(1 − f) and î = c̃_in − ω(1 − i): f̂ and î take at most
 * 3δ absolute from the master gates (δ = masterRel(n); c̃ <= 1 and ω = c̃_f·c̃_in carries 2δ),
 * times |cPrev| <= 2 and |g| <= 1: 9δ. The gate activations and roundings add what the LSTM cell
 * test allows (4e-6 with tanh's error in h, whose slope is <= 1, so h inherits c's error). For
 * n = 115 that is 1e-4, three orders below an indexing error (O(1/n) or more).
 */
const stateTol = (n: number): Tolerance => ({ atol: 4e-6 + 9 * masterRel(n), rtol: 4 * ULP });
/**
 * Block gradients and dcPrev: act and c are the same f32 on both sides, so beyond the LSTM cell
 * test's 4e-6 (tanh(c) and ~8 roundings of products <= 2) only the recomputed c̃ differs: f̂ and î
 * by <= 3δ (δ = masterRelBwd(n)), times |dc| <= 2 (|dh|, |dcNext| <= 1): 6δ.
 */
const gradTol = (n: number): Tolerance => ({ atol: 4e-6 + 6 * masterRelBwd(n), rtol: 4 * ULP });
/**
 * Master-gate gradients: dp_r sums up to H per-element terms (df̂ + dω·c̃_in, dî + dω·c̃_f:
 * |dc| <= 2, |cPrev| <= 2, so each is a few units at most and mostly below 1) in a different
 * order than the reference, then p ⊙ (dp − Σ p·dp) with p <= 1: the f32 summation bound of
 * `sumTolerance` over H + 2n terms of scale 4 (4e-4 for H = 1150), far below a misplaced
 * chunk's contribution (a C-element sum of O(1) terms).
 */
const masterGradTol = (H: number, n: number): Tolerance => sumTolerance(H + 2 * n, 4);

Deno.test("onlstm cell ref: backward equals f64 central differences of sum(h*r1) + sum(c*r2)", () => {
  const shapes = [[3, 4, 3, true, true], [2, 1, 5, false, false], [2, 5, 1, true, false]] as const;
  for (const [B, n, C, withDcNext, withBias] of shapes) {
    const H = n * C, W = onLstmActWidth(H, n);
    const gates = Array.from(uniform(B * W, 1 + H, -2, 2));
    const bias = withBias ? Array.from(uniform(W, 2 + H, -1, 1)) : undefined;
    const cPrev = Array.from(uniform(B * H, 3 + H, -2, 2));
    const r1 = Array.from(uniform(B * H, 4 + H));
    // without dcNext the loss must not depend on c directly (r2 = 0)
    const r2 = withDcNext ? Array.from(uniform(B * H, 5 + H)) : new Array(B * H).fill(0);
    const loss = () => {
      const { h, c } = onLstmCellForwardRef64({ B, H, chunks: n, gates, bias, cPrev });
      let s = 0;
      for (let k = 0; k < B * H; k++) s += h[k] * r1[k] + c[k] * r2[k];
      return s;
    };
    const fwd = onLstmCellForwardRef64({ B, H, chunks: n, gates, bias, cPrev });
    const { dgates, dcPrev } = onLstmCellBackwardRef64({
      B,
      H,
      chunks: n,
      act: fwd.act,
      cPrev,
      c: fwd.c,
      dh: r1,
      dcNext: withDcNext ? r2 : undefined,
    });
    // central differences: truncation O(eps^2 · L''') ~ 1e-12, cancellation ~ 1e-16 / eps =
    // 1e-10; gradients are O(0.1), so a formula error (a missing factor, a scan one chunk off)
    // is orders of magnitude above the 1e-8 tolerance.
    const eps = 1e-6, tol = 1e-8;
    const fd = (arr: number[], k: number) => {
      const save = arr[k];
      arr[k] = save + eps;
      const up = loss();
      arr[k] = save - eps;
      const down = loss();
      arr[k] = save;
      return (up - down) / (2 * eps);
    };
    const what = `B=${B} n=${n} C=${C}`;
    for (let k = 0; k < gates.length; k++) {
      const num = fd(gates, k);
      ok(Math.abs(num - dgates[k]) <= tol, `${what} dgates[${k}]: ${dgates[k]} vs ${num}`);
    }
    for (let k = 0; k < cPrev.length; k++) {
      const num = fd(cPrev, k);
      ok(Math.abs(num - dcPrev[k]) <= tol, `${what} dcPrev[${k}]: ${dcPrev[k]} vs ${num}`);
    }
    if (bias) {
      // the bias gradient is dgates summed over the batch
      for (let k = 0; k < bias.length; k++) {
        let an = 0;
        for (let b = 0; b < B; b++) an += dgates[b * W + k];
        const num = fd(bias, k);
        ok(Math.abs(num - an) <= tol, `${what} dbias[${k}]: ${an} vs ${num}`);
      }
    }
    if (n > 1) {
      // the master columns must carry gradient, or their check above proves nothing
      ok(dgates.slice(0, 2 * n).some((v) => Math.abs(v) > 1e-3), `${what}: master gradient`);
    }
  }
});

Deno.test("onlstm cell ref: column order o, ĉ, i, f and ON_LSTM.py's cumax gates on a hand case", () => {
  // B = 1, n = 2, C = 1: columns [in0, in1, f0, f1, o0, o1, ĉ0, ĉ1, i0, i1, f0, f1]
  const z = [0.3, -1.2, 0.8, 0.1, 1, -1, 0.5, -0.4, 2, -2, -0.7, 1.5];
  const cPrev = [0.7, -0.9];
  const s = (v: number) => 1 / (1 + Math.exp(-v));
  const softmax = (a: number[]) => {
    const e = a.map(Math.exp), t = e[0] + e[1];
    return e.map((v) => v / t);
  };
  // ON_LSTM.py: cumsoftmax(x) = cumsum(softmax(x)); cingate = 1 − cumsoftmax, cforgetgate =
  // cumsoftmax (the textbook form, fine in f64 away from peaked logits)
  const pIn = softmax(z.slice(0, 2)), pF = softmax(z.slice(2, 4));
  const cin = [1 - pIn[0], 1 - pIn[0] - pIn[1]], cf = [pF[0], pF[0] + pF[1]];
  const { c, h, act } = onLstmCellForwardRef64({ B: 1, H: 2, chunks: 2, gates: z, cPrev });
  for (let j = 0; j < 2; j++) {
    const o = s(z[4 + j]), g = Math.tanh(z[6 + j]), i = s(z[8 + j]), f = s(z[10 + j]);
    const w = cf[j] * cin[j];
    const cWant = (f * w + cf[j] - w) * cPrev[j] + (i * w + cin[j] - w) * g;
    ok(Math.abs(c[j] - cWant) < 1e-15, `c[${j}] ${c[j]} vs ${cWant}`);
    ok(Math.abs(h[j] - o * Math.tanh(cWant)) < 1e-15, `h[${j}]`);
    const want = [pIn[j], pF[j], o, g, i, f];
    want.forEach((v, k) => ok(Math.abs(act[2 * k + j] - v) < 1e-15, `act[${2 * k + j}]`));
  }
});

interface Case {
  B: number;
  H: number;
  chunks: number;
  gates: Float32Array;
  bias?: Float32Array;
  cPrev: Float32Array;
  dh: Float32Array;
  dcNext?: Float32Array;
}

function makeCase(
  B: number,
  n: number,
  C: number,
  seed: number,
  withBias: boolean,
  withDc: boolean,
): Case {
  const H = n * C, W = onLstmActWidth(H, n);
  return {
    B,
    H,
    chunks: n,
    gates: uniform(B * W, seed, -3, 3),
    bias: withBias ? uniform(W, seed + 1, -1, 1) : undefined,
    cPrev: uniform(B * H, seed + 2, -2, 2),
    dh: uniform(B * H, seed + 3),
    dcNext: withDc ? uniform(B * H, seed + 4) : undefined,
  };
}

/** Splits rows of width W into the master columns [0, 2n) and the four blocks. */
function split(a: ArrayLike<number>, W: number, n: number): [number[], number[]] {
  const master: number[] = [], blocks: number[] = [];
  for (let k = 0; k < a.length; k++) (k % W < 2 * n ? master : blocks).push(a[k]);
  return [master, blocks];
}

Deno.test({
  name: "onlstm cell GPU: forward and backward vs reference, (B, n, C) up to (4, 115, 10)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const shapes = [
      [1, 1, 7],
      [3, 4, 3],
      [2, 5, 1],
      [3, 37, 3],
      [2, 16, 40],
      [2, ONLSTM_MAX_CHUNKS, 2],
      [4, 115, 10],
    ];
    let k = 0;
    for (const [B, n, C] of shapes) {
      for (const [withBias, withDc] of [[true, true], [false, false]]) {
        const cs = makeCase(B, n, C, 1000 + 10 * k++, withBias, withDc);
        const H = cs.H, W = onLstmActWidth(H, n);
        const what = `B=${B} n=${n} C=${C} bias=${withBias} dcNext=${withDc}`;
        const gates = gpu.upload([B, W], cs.gates);
        const bias = cs.bias && gpu.upload([W], cs.bias);
        const cPrev = gpu.upload([B, H], cs.cPrev);
        const c = gpu.tensor([B, H]), h = gpu.tensor([B, H]), act = gpu.tensor([B, W]);
        onLstmCellForward(gpu, { gates, bias, cPrev, c, h, act, chunks: n });
        const want = onLstmCellForwardRef(cs);
        const [pGot, aGot] = split(await gpu.read(act), W, n);
        const [pWant, aWant] = split(want.act, W, n);
        assertClose(pGot, pWant, pTol(n), `act master ${what}`);
        assertClose(aGot, aWant, ACT_TOL, `act blocks ${what}`);
        assertClose(await gpu.read(c), want.c, stateTol(n), `c ${what}`);
        assertClose(await gpu.read(h), want.h, stateTol(n), `h ${what}`);

        // backward from the reference's f32 forward state, so only the backward kernel differs
        const actR = gpu.upload([B, W], want.act), cR = gpu.upload([B, H], want.c);
        const dh = gpu.upload([B, H], cs.dh);
        const dcNext = cs.dcNext && gpu.upload([B, H], cs.dcNext);
        const dgates = gpu.tensor([B, W]), dcPrev = gpu.tensor([B, H]);
        onLstmCellBackward(gpu, {
          act: actR,
          cPrev,
          c: cR,
          dh,
          dcNext,
          dgates,
          dcPrev,
          chunks: n,
        });
        const g = onLstmCellBackwardRef({ ...cs, act: want.act, c: want.c });
        const [dmGot, dbGot] = split(await gpu.read(dgates), W, n);
        const [dmWant, dbWant] = split(g.dgates, W, n);
        assertClose(dmGot, dmWant, masterGradTol(H, n), `dgates master ${what}`);
        assertClose(dbGot, dbWant, gradTol(n), `dgates blocks ${what}`);
        assertClose(await gpu.read(dcPrev), g.dcPrev, gradTol(n), `dcPrev ${what}`);
        for (const t of [gates, bias, cPrev, c, h, act, actR, cR, dh, dcNext, dgates, dcPrev]) {
          if (t) gpu.release(t);
        }
      }
    }
  },
});

Deno.test({
  name: "onlstm cell GPU: views of [T+1, B, H] state buffers and in-place act/c/dcPrev",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const B = 3, n = 7, C = 5, H = n * C, W = onLstmActWidth(H, n), T = 2, bh = B * H;
    const cs = makeCase(B, n, C, 77, true, true);
    const want = onLstmCellForwardRef(cs);
    const tol = stateTol(n);
    // cs[t] and cs[t + 1] are views of one buffer (the read/read_write aliasing path)
    const cAll = gpu.upload(
      [T + 1, B, H],
      new Float32Array([...uniform(bh, 5), ...cs.cPrev, ...new Float32Array(bh)]),
    );
    const cPrev = cAll.view(bh, [B, H]), c = cAll.view(2 * bh, [B, H]);
    const hAll = gpu.zeros([T + 1, B, H]);
    const h = hAll.view(2 * bh, [B, H]);
    // act written over the pre-activations, at an offset into a bigger buffer
    const pre = gpu.upload([B * W + 1], new Float32Array([9, ...cs.gates]));
    const gates = pre.view(1, [B, W]);
    const bias = gpu.upload([W], cs.bias!);
    onLstmCellForward(gpu, { gates, bias, cPrev, c, h, act: gates, chunks: n });
    const all = await gpu.read(cAll);
    assertClose(all.subarray(2 * bh), want.c, tol, "c view");
    assertClose(all.subarray(bh, 2 * bh), cs.cPrev, { atol: 0, rtol: 0 }, "cPrev untouched");
    assertClose((await gpu.read(hAll)).subarray(2 * bh), want.h, tol, "h view");
    const preOut = await gpu.read(pre);
    equal(preOut[0], 9, "element before the act view untouched");
    const [pGot, aGot] = split(preOut.subarray(1), W, n);
    const [pWant, aWant] = split(want.act, W, n);
    assertClose(pGot, pWant, pTol(n), "act master in place of gates");
    assertClose(aGot, aWant, ACT_TOL, "act blocks in place of gates");

    // in place c = cPrev
    const cIn = gpu.upload([B, H], cs.cPrev);
    const act2 = gpu.tensor([B, W]), h2 = gpu.tensor([B, H]);
    const gates2 = gpu.upload([B, W], cs.gates);
    onLstmCellForward(gpu, {
      gates: gates2,
      bias,
      cPrev: cIn,
      c: cIn,
      h: h2,
      act: act2,
      chunks: n,
    });
    assertClose(await gpu.read(cIn), want.c, tol, "c in place of cPrev");
    assertClose(await gpu.read(h2), want.h, tol, "h (c in place)");

    // backward: dcPrev in place of dcNext, then in place of dh
    const g = onLstmCellBackwardRef({ ...cs, act: want.act, c: want.c });
    const actR = gpu.upload([B, W], want.act), cR = gpu.upload([B, H], want.c);
    const cP = gpu.upload([B, H], cs.cPrev), dh = gpu.upload([B, H], cs.dh);
    const dc = gpu.upload([B, H], cs.dcNext!);
    const dgates = gpu.tensor([B, W]);
    const common = { act: actR, cPrev: cP, c: cR, dh, dgates, chunks: n };
    onLstmCellBackward(gpu, { ...common, dcNext: dc, dcPrev: dc });
    assertClose(await gpu.read(dc), g.dcPrev, gradTol(n), "dcPrev in place of dcNext");
    const [dm, db] = split(await gpu.read(dgates), W, n);
    const [dmWant, dbWant] = split(g.dgates, W, n);
    assertClose(dm, dmWant, masterGradTol(H, n), "dgates master (dcPrev in place)");
    assertClose(db, dbWant, gradTol(n), "dgates blocks (dcPrev in place)");
    const g0 = onLstmCellBackwardRef({ ...cs, act: want.act, c: want.c, dcNext: undefined });
    onLstmCellBackward(gpu, { ...common, dcPrev: dh });
    assertClose(await gpu.read(dh), g0.dcPrev, gradTol(n), "dcPrev in place of dh");
    const [dm0, db0] = split(await gpu.read(dgates), W, n);
    const [dm0Want, db0Want] = split(g0.dgates, W, n);
    assertClose(dm0, dm0Want, masterGradTol(H, n), "dgates master (no dcNext)");
    assertClose(db0, db0Want, gradTol(n), "dgates blocks (no dcNext)");
  },
});

Deno.test({
  name: "onlstm cell GPU: peaked master logits (±30) keep c̃_in's tiny tails accurate",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // Rows: only chunk 0 peaked; random ±30 signs ending in a run of −30; the first half
    // peaked. Where every r > q sits at −30, c̃_in[q] ≈ e⁻⁶⁰ ≈ 1e-26 while p_in[q'] ≈ 1 for
    // some q' <= q: f32 1 − cumsum(p_in) returns 0 or a rounding residue ~6e-8 there.
    const B = 3, n = 40, C = 4, H = n * C, W = onLstmActWidth(H, n);
    const signs = uniform(n, 11);
    const peaked = (b: number, r: number) =>
      b === 0 ? r === 0 : b === 1 ? r < n - 8 && signs[r] > 0 : r < n / 2;
    const gates = new Float32Array(B * W);
    const noise = uniform(B * W, 12);
    const zi = uniform(B * H, 13);
    for (let b = 0; b < B; b++) {
      for (let r = 0; r < n; r++) gates[b * W + r] = (peaked(b, r) ? 30 : -30) + noise[b * W + r];
      // master forget: logits 0, so c̃_f = (q + 1)/n and ω is comparable to c̃_in
      for (let j = 0; j < H; j++) {
        gates[b * W + 2 * n + H + j] = 20; // ĉ: g = tanh(20) = 1 in f32, so c = î
        gates[b * W + 2 * n + 2 * H + j] = zi[b * H + j]; // i in [0.27, 0.73]
      }
    }
    const cPrevHost = new Float32Array(B * H); // 0: c = f̂·0 + î·g = î
    const want = onLstmCellForwardRef({ B, H, chunks: n, gates, cPrev: cPrevHost });
    const want64 = onLstmCellForwardRef64({ B, H, chunks: n, gates, cPrev: cPrevHost });
    // the test must be able to fail: f32 1 − cumsum(p_in) is wrong by O(1) relative somewhere
    let naiveWorst = 0;
    for (let b = 0; b < B; b++) {
      const exact = new Array<number>(n).fill(0); // Σ_{r>q} p_in[r], summed from the right
      for (let q = n - 2; q >= 0; q--) exact[q] = exact[q + 1] + want64.act[b * W + q + 1];
      let cum = 0;
      for (let q = 0; q < n - 1; q++) {
        cum = Math.fround(cum + want.act[b * W + q]);
        const err = Math.abs(Math.fround(1 - cum) - exact[q]) / exact[q];
        naiveWorst = Math.max(naiveWorst, err);
      }
    }
    ok(naiveWorst > 0.5, `1 − cumsum should be inaccurate here, worst relative ${naiveWorst}`);

    const tg = gpu.upload([B, W], gates), cPrev = gpu.upload([B, H], cPrevHost);
    const c = gpu.tensor([B, H]), h = gpu.tensor([B, H]), act = gpu.tensor([B, W]);
    onLstmCellForward(gpu, { gates: tg, cPrev, c, h, act, chunks: n });
    // Relative tolerance. p: |z − max| <= 62, where WGSL allows exp 3 + 2·62 = 127 ulp, plus
    // the n/2 ulp of the sum and 4 of the roundings: 151 ulp. c = î = c̃_in − ω(1 − i) with
    // ω = c̃_f·c̃_in <= c̃_in: c̃_in's 151 ulp, and since î >= i·c̃_in >= 0.27·c̃_in the two
    // terms' errors (<= 2·151 ulp of c̃_in) grow by at most 1/0.27 relative to î: 1200 ulp
    // = 1.4e-4, while the 1 − cumsum form is off by more than 50% (checked above).
    const [pGot] = split(await gpu.read(act), W, n);
    const [pWant] = split(want.act, W, n);
    assertClose(pGot, pWant, { atol: 0, rtol: 151 * ULP }, "p in the peaked rows");
    const cGot = await gpu.read(c);
    assertClose(cGot, want.c, { atol: 0, rtol: 1200 * ULP }, "c = î in the peaked rows");
    ok(cGot.some((v) => v > 0 && v < 1e-20), "some c̃_in tails are tiny and nonzero");
  },
});

Deno.test({
  name: "onlstm cell GPU: huge pre-activations and cell states stay finite",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const B = 2, n = 3, C = 2, H = n * C, W = onLstmActWidth(H, n);
    const zs = [100, -100, 1e4, -1e4, 88.8, -88.8, 3e38];
    const gh = new Float32Array(B * W).map((_, i) => zs[i % zs.length]);
    const ch = new Float32Array(B * H).map((_, i) => (i % 2 ? 1e6 : -1e6));
    const gates = gpu.upload([B, W], gh), cPrev = gpu.upload([B, H], ch);
    const c = gpu.tensor([B, H]), h = gpu.tensor([B, H]), act = gpu.tensor([B, W]);
    onLstmCellForward(gpu, { gates, cPrev, c, h, act, chunks: n });
    const want = onLstmCellForwardRef({ B, H, chunks: n, gates: gh, cPrev: ch });
    const [a, cc, hh] = [await gpu.read(act), await gpu.read(c), await gpu.read(h)];
    for (const [name, v] of [["act", a], ["c", cc], ["h", hh]] as const) {
      ok(v.every(Number.isFinite), `${name} not finite: ${v}`);
    }
    const [pGot, aGot] = split(a, W, n), [pWant, aWant] = split(want.act, W, n);
    // master logits ~1e2 or more apart: every p is exactly 0 or 1 in f32
    assertClose(pGot, pWant, { atol: 0, rtol: 0 }, "p");
    assertClose(aGot, aWant, ACT_TOL, "act blocks");
    assertClose(cc, want.c, { atol: 1e-6, rtol: 1e-6 }, "c");
    assertClose(hh, want.h, stateTol(n), "h");
    const dgates = gpu.tensor([B, W]), dcPrev = gpu.tensor([B, H]);
    const ones = gpu.upload([B, H], new Float32Array(B * H).fill(1));
    onLstmCellBackward(gpu, { act, cPrev, c, dh: ones, dcNext: ones, dgates, dcPrev, chunks: n });
    ok((await gpu.read(dgates)).every(Number.isFinite), "dgates finite");
    ok((await gpu.read(dcPrev)).every(Number.isFinite), "dcPrev finite");
  },
});

Deno.test({
  name:
    "onlstm cell: bad shapes, chunks and overlaps throw ShapeError naming them, before dispatch",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const B = 3, n = 5, C = 2, H = n * C, W = onLstmActWidth(H, n);
    const t = (shape: number[]) => gpu.tensor(shape);
    const fwd = {
      gates: t([B, W]),
      bias: t([W]),
      cPrev: t([B, H]),
      c: t([B, H]),
      h: t([B, H]),
      act: t([B, W]),
      chunks: n,
    };
    const bwd = {
      act: fwd.act,
      cPrev: fwd.cPrev,
      c: fwd.c,
      dh: t([B, H]),
      dcNext: t([B, H]),
      dgates: t([B, W]),
      dcPrev: t([B, H]),
      chunks: n,
    };
    // shape-correct partial overlaps, carved from one buffer each
    const big = t([B * W + 1]);
    const big2 = t([B * W + B * H]);
    const before = gpu.dispatchCount;
    // [what, overrides, the names the message must contain ("|"-separated: overlaps name both)]
    const badFwd: [string, Record<string, unknown>, string][] = [
      ["gates width", { gates: t([B, 4 * H]) }, "gates"],
      ["gates rows", { gates: t([B + 1, W]) }, "gates"],
      ["gates 1-D", { gates: t([B * W]) }, "gates"],
      ["bias", { bias: t([4 * H]) }, "bias"],
      ["bias 2-D", { bias: t([1, W]) }, "bias"],
      ["cPrev 1-D", { cPrev: t([B * H]) }, "cPrev"],
      ["c", { c: t([B, H + 1]) }, " c:"],
      ["h", { h: t([H, B]) }, " h:"],
      ["act", { act: t([B, 4 * H + n]) }, "act"],
      ["gates dtype", { gates: gpu.tensor([B, W], "u32") }, "gates"],
      ["cPrev dtype", { cPrev: gpu.tensor([B, H], "i32") }, "cPrev"],
      ["chunks 0", { chunks: 0 }, "chunks"],
      ["chunks fractional", { chunks: 2.5 }, "chunks"],
      ["chunks not dividing H", { chunks: 3 }, "chunks = 3"],
      ["chunks over the maximum", {
        chunks: ONLSTM_MAX_CHUNKS + 1,
        cPrev: t([1, ONLSTM_MAX_CHUNKS + 1]),
      }, "chunks"],
      ["h aliases c", { h: fwd.c }, " h Tensor| c Tensor"],
      ["h aliases cPrev", { h: fwd.cPrev }, " h Tensor| cPrev Tensor"],
      [
        "act over bias",
        { bias: big.view(0, [W]), act: big.view(1, [B, W]) },
        " act Tensor| bias Tensor",
      ],
      ["act shifted over gates", {
        gates: big.view(0, [B, W]),
        act: big.view(1, [B, W]),
      }, " act Tensor| gates Tensor"],
    ];
    const throwsNaming = (fn: () => void, what: string, names: string) =>
      throws(fn, (e: unknown) => {
        ok(e instanceof ShapeError, `${what}: ${e}`);
        for (const name of names.split("|")) {
          ok(e.message.includes(name), `${what}: "${e.message}" should name ${name.trim()}`);
        }
        return true;
      }, what);
    for (const [what, over, name] of badFwd) {
      const args = { ...fwd, ...over } as typeof fwd;
      throwsNaming(() => onLstmCellForward(gpu, args), what, name);
    }
    const badBwd: [string, Record<string, unknown>, string][] = [
      ["dh", { dh: t([B, H + 1]) }, "dh"],
      ["dcNext", { dcNext: t([B + 1, H]) }, "dcNext"],
      ["dgates", { dgates: t([B, H]) }, "dgates"],
      ["dcPrev", { dcPrev: t([B]) }, "dcPrev"],
      ["act", { act: t([B, W, 1]) }, "act"],
      ["c", { c: t([B, 2 * H]) }, " c:"],
      ["dh dtype", { dh: gpu.tensor([B, H], "u32") }, "dh"],
      ["chunks not dividing H", { chunks: 4 }, "chunks = 4"],
      ["dgates aliases act", { dgates: fwd.act }, " dgates Tensor| act Tensor"],
      ["dgates overlaps dh", {
        dgates: big2.view(0, [B, W]),
        dh: big2.view(B * W - 1, [B, H]),
      }, " dgates Tensor| dh Tensor"],
      ["dcPrev aliases c", { dcPrev: fwd.c }, " dcPrev Tensor| c Tensor"],
      ["dcPrev aliases cPrev", { dcPrev: fwd.cPrev }, " dcPrev Tensor| cPrev Tensor"],
    ];
    for (const [what, over, name] of badBwd) {
      const args = { ...bwd, ...over } as typeof bwd;
      throwsNaming(() => onLstmCellBackward(gpu, args), what, name);
    }
    equal(gpu.dispatchCount, before, "nothing may be dispatched");
  },
});
