import { maxAbs, maxDiff, tokens } from "./_grad_util.ts";
import { ok } from "node:assert/strict";
import { bernoulliMask, GPU_TEST, testGpu } from "./_util.ts";
import {
  createLstmLm,
  createLstmLmState,
  createLstmLmWorkspace,
  type LstmLmConfig,
  lstmLmEvalLoss,
  lstmLmStep,
  writeLstmLmBatch,
} from "../models/lstm/lstm_lm.ts";
import { densifyParam, sparsifyParam } from "../models/sparse_params.ts";
import { hostCsrFromMask } from "../kernels/sparse/sparse_matrix.ts";
import { DEFAULT_SPARSE_ROUTE, type SparseRoute } from "../models/weight_ops.ts";

const V = 23, E = 12, H = 12, L = 2, T = 5, B = 3;

/**
 * The sparse path (SpMM / transposed SpMM / SDDMM / sparse embedding) against the masked-dense
 * path on the same weights, masks, batch and dropout. Both are f32 programs over the same
 * terms, differing only in summation order: products have at most max(T·B, V, 4H) = 48 terms
 * and BPTT chains T = 5 steps, so relative differences stay ~1e-6; 1e-4·max|g| leaves 100×
 * headroom, while a wrong index or a missing entry moves a gradient by O(max|g|).
 */
Deno.test({
  name: "lstm lm: true sparse storage gives the masked-dense loss and gradients (active entries)",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    // the last case adds the AWD devices with WeightDrop (eval-scaled, so evaluation reads a
    // scaled copy too): both storages must drop the same weights
    const cases = [[false, 0.33, false], [true, 0.5, false], [false, 0.1, false], [
      false,
      0.33,
      true,
    ]] as const;
    for (const [tied, density, awd] of cases) {
      const label = `tied=${tied} density=${density} awd=${awd}`;
      const config: LstmLmConfig = {
        vocab: V,
        embed: E,
        hidden: H,
        layers: L,
        dropout: 0.2,
        tied,
        ...(awd
          ? {
            awd: {
              locked: true,
              dropouti: 0.2,
              dropouth: 0.1,
              dropoute: 0.1,
              alpha: 2,
              beta: 1,
              wdrop: { p: 0.4, convention: "eval-scaled" as const },
            },
          }
          : {}),
      };
      const model = createLstmLm(gpu, config, 77);
      const masks = new Map<string, Float32Array>();
      model.params.forEach((p, k) => {
        if (!p.sparse) return;
        const m = bernoulliMask(p.value.size, density, 500 + k);
        masks.set(p.name, m);
        p.mask = gpu.upload(p.shape, m);
      });
      const ws = createLstmLmWorkspace(gpu, model, { maxT: T, B, training: true });
      const input = tokens(T * B, 41, V), target = tokens(T * B, 42, V);
      const run = async (route: SparseRoute = DEFAULT_SPARSE_ROUTE) => {
        const state = createLstmLmState(gpu, model, B);
        const batch = writeLstmLmBatch(gpu, ws, { T, input, target });
        const loss = await gpu.read(
          lstmLmStep(gpu, model, ws, state, batch, { seed: 3, step: 9, route }),
        );
        const grads = new Map<string, Float32Array>();
        for (const p of model.params) grads.set(p.name, Float32Array.from(await gpu.read(p.grad)));
        const evalState = createLstmLmState(gpu, model, B);
        const evalLoss = await gpu.read(
          lstmLmEvalLoss(gpu, model, ws, evalState, batch, { route }),
        );
        return { loss, grads, evalLoss };
      };
      const dense = await run();
      const values = new Map<string, Float32Array>();
      for (const p of model.params) values.set(p.name, Float32Array.from(await gpu.read(p.value)));

      for (const p of model.params) {
        const m = masks.get(p.name);
        if (m) sparsifyParam(gpu, p, { nnz: m.reduce((s, x) => s + x, 0) });
      }
      ok(model.params.filter((p) => p.csr).length === masks.size, `${label}: all sparse`);
      const sparseRuns = [await run()];
      // Again with the recurrent products through one dense copy per window (reusedWeight),
      // which CPU rasterisers take above the route's reuseAbove for long windows only.
      sparseRuns.push(await run({ ...DEFAULT_SPARSE_ROUTE, minReuses: 1 }));

      for (const [r, sparse] of sparseRuns.entries()) {
        const label = `tied=${tied} density=${density} awd=${awd} ${r ? "reused" : "per-product"}`;
        for (let n = 0; n < T * B; n++) {
          const d = dense.loss[n], s = sparse.loss[n];
          ok(Math.abs(d - s) <= 1e-5 * Math.abs(d), `${label} row ${n}: loss ${s} vs ${d}`);
          const de = dense.evalLoss[n], se = sparse.evalLoss[n];
          ok(Math.abs(de - se) <= 1e-5 * Math.abs(de), `${label} row ${n}: eval ${se} vs ${de}`);
        }
        for (const p of model.params) {
          const m = masks.get(p.name);
          const g = dense.grads.get(p.name)!;
          // expected: the dense gradient restricted to the active entries, in CSR order
          const want = m ? hostCsrFromMask(p.shape[0], p.shape[1], g, m).values : g;
          const got = sparse.grads.get(p.name)!.subarray(0, want.length);
          const scale = maxAbs(want);
          ok(scale > 1e-7, `${label} ${p.name}: gradient all ~0 (test cannot fail)`);
          const err = maxDiff(got, want);
          ok(err <= 1e-4 * scale, `${label} ${p.name}: max error ${err} vs max|g| ${scale}`);
        }
      }

      // back to masked-dense: values and masks round-trip exactly
      for (const p of model.params) {
        if (!p.csr) continue;
        densifyParam(gpu, p);
        const m = masks.get(p.name)!;
        const v = await gpu.read(p.value);
        const mask = await gpu.read(p.mask!);
        const orig = values.get(p.name)!;
        ok(mask.every((x, i) => x === m[i]), `${label} ${p.name}: mask round trip`);
        ok(v.every((x, i) => x === (m[i] ? orig[i] : 0)), `${label} ${p.name}: value round trip`);
      }
    }
  },
});
