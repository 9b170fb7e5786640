import { deepStrictEqual as assertEquals, ok, throws as assertThrows } from "node:assert/strict";
import {
  addToMask,
  finishTopologyUpdate,
  maskAfterRemoval,
} from "../kernels/sparse/sparse_update.ts";
import {
  hostCsrFromMask,
  hostTranspose,
  storedLength,
  uploadSparse,
} from "../kernels/sparse/sparse_matrix.ts";
import { ShapeError, type Tensor } from "../kernels/runtime/tensor.ts";
import { bernoulliMask, forEachVariant, GPU_TEST, rng, testGpu, uniform } from "./_util.ts";

/**
 * Scripted updates against a host model of the rule: kept entries keep value and state,
 * removed ones vanish, grown ones (including a position removed in the same update) start at
 * exactly 0, and the new structure equals the host CSR of the new mask. Everything is copying,
 * so the comparison is exact.
 */
Deno.test({
  name: "sparse update: removal and growth keep the budget, values and state exactly",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const cases: [number, number, number, number, number][] = [
      // rows, cols, gates, density, removal fraction
      [8, 12, 4, 0.5, 0.3],
      [40, 33, 4, 0.33, 0.5],
      [17, 3, 1, 1, 0.2],
      [5, 7, 1, 0.1, 1],
      [6, 6, 2, 0, 0],
    ];
    // Both kernel variants: the kept-entry scatter walks rows (regblock) or entries (tiled).
    await forEachVariant(gpu, async (gpu, variant) => {
      for (const [rows, cols, gates, density, frac] of cases) {
        const label = `${variant} ${rows}x${cols} d=${density} p=${frac}`;
        const n = rows * cols;
        const r = rng(rows * 31 + cols);
        const mask0 = bernoulliMask(n, density, rows + cols);
        const dense0 = uniform(n, rows);
        const csr = hostCsrFromMask(rows, cols, dense0, mask0);
        const nnz = csr.values.length;
        const w = uploadSparse(gpu, csr, {
          blocks: Array.from({ length: gates }, () => rows / gates),
        });
        const m1 = uniform(storedLength(nnz), 7);
        const m2 = uniform(storedLength(nnz), 8);
        const states = [gpu.upload([m1.length], m1), gpu.upload([m2.length], m2)];

        // host: remove a random subset of entries, then grow as many among the positions that
        // are inactive after removal (this can re-pick a just-removed position)
        const remove = new Uint32Array(storedLength(nnz));
        let removed = 0;
        for (let p = 0; p < nnz; p++) if (r() < frac) remove[p] = 1, removed++;
        const kept = Float32Array.from(mask0);
        const pos = (p: number) => {
          let row = 0;
          while (csr.rowPtr[row + 1] <= p) row++;
          return row * cols + csr.colIdx[p];
        };
        for (let p = 0; p < nnz; p++) if (remove[p]) kept[pos(p)] = 0;
        const free = [...kept.keys()].filter((i) => kept[i] === 0);
        const grow = new Uint32Array(n);
        let grown = 0;
        for (const i of free) if (grown < removed && r() < 0.5) grow[i] = 1, grown++;
        const mask1 = kept.map((x, i) => (grow[i] ? 1 : x));

        const removeT = gpu.upload([remove.length], remove, "u32");
        const mask = maskAfterRemoval(gpu, w, removeT);
        assertEquals(await gpu.read(mask), kept, `${label}: mask after removal`);
        addToMask(gpu, { mask, flags: gpu.upload([n], grow, "u32") });
        const next = finishTopologyUpdate(gpu, w, {
          mask,
          remove: removeT,
          nnz: nnz - removed + grown,
          states,
        });
        ok(next.w.nnz === nnz - removed + grown && next.w.budget === nnz, `${label}: counts`);

        // expected: values and states at kept entries, 0 at grown ones
        const carry = (src: Float32Array) => {
          const d = new Float32Array(n);
          for (let p = 0; p < nnz; p++) if (!remove[p]) d[pos(p)] = src[p];
          return hostCsrFromMask(rows, cols, d, mask1);
        };
        const want = carry(csr.values);
        const len = storedLength(next.w.nnz);
        const head = async (t: Tensor) => (await gpu.read(t)).subarray(0, len);
        const pad = (a: Uint32Array | Float32Array) => {
          const out = new (a.constructor as typeof Float32Array)(len);
          out.set(a);
          return out;
        };
        assertEquals(await gpu.read(next.w.rowPtr), want.rowPtr, `${label}: rowPtr`);
        assertEquals(await head(next.w.colIdx), pad(want.colIdx), `${label}: colIdx`);
        assertEquals(await head(next.w.values), pad(want.values), `${label}: values`);
        const t = hostTranspose(want);
        assertEquals(await head(next.w.permT), pad(t.permT), `${label}: permT`);
        assertEquals(await head(next.states[0]), pad(carry(m1).values), `${label}: state 0`);
        assertEquals(await head(next.states[1]), pad(carry(m2).values), `${label}: state 1`);
        const grownAt = [...grow.keys()].filter((i) => grow[i]);
        ok(grownAt.length === grown, `${label}: grown count`);
      }
    });
  },
});

Deno.test({
  name: "sparse update: bad flags, mask or counts throw ShapeError",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const csr = hostCsrFromMask(4, 4, uniform(16, 1), bernoulliMask(16, 0.5, 2));
    const w = uploadSparse(gpu, csr);
    const len = storedLength(w.nnz);
    assertThrows(
      () => maskAfterRemoval(gpu, w, gpu.tensor([len + 1], "u32")),
      (e: Error) => e instanceof ShapeError && /remove/.test(e.message),
    );
    const remove = gpu.zeros([len], "u32");
    const mask = maskAfterRemoval(gpu, w, remove);
    assertThrows(
      () => finishTopologyUpdate(gpu, w, { mask, remove, nnz: 17 }),
      (e: Error) =>
        e instanceof ShapeError && /nnz must be an integer in \[0, 16\]/.test(e.message),
    );
    assertThrows(
      () => finishTopologyUpdate(gpu, w, { mask, remove, nnz: 3, states: [gpu.tensor([len + 2])] }),
      (e: Error) => e instanceof ShapeError && /states\[0\]/.test(e.message),
    );
  },
});
