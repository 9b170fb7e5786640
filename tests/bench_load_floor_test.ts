import { equal, ok, throws } from "node:assert/strict";
import { GPU_TEST, testGpu } from "./_util.ts";
import {
  LOAD_FLOOR_KERNEL,
  LOAD_FLOOR_SOURCE_VEC4,
  loadFloorMs,
  loadFloorPlan,
} from "../bench/load_floor.ts";

Deno.test("loadFloorPlan: covers the request in whole iterations of at most 65536 lanes", () => {
  for (const loads of [1, 15, 16, 1000, 4_950_000, 16 * 65536, 16 * 65536 + 1, 2.6e9]) {
    const p = loadFloorPlan(loads);
    equal(p.issued, p.threads * p.iters * 16, `${loads}`);
    ok(p.issued >= loads, `${loads}: issued ${p.issued}`);
    ok(p.threads % 64 === 0 && p.threads > 0 && p.threads <= 65536, `${loads}: ${p.threads}`);
    // the overshoot is under one workgroup-iteration row, never a whole extra iteration
    ok(p.issued - loads < 64 * 16 * p.iters, `${loads}: overshoot ${p.issued - loads}`);
  }
  throws(() => loadFloorPlan(0), /loads must be/);
  throws(() => loadFloorPlan(NaN), /loads must be/);
});

Deno.test({
  name: "load floor probe: every lane sums exactly the loads it is timed for",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const n = LOAD_FLOOR_SOURCE_VEC4;
    const data = Float32Array.from({ length: n * 4 }, (_, i) => ((i * 7919) % 1000) / 1000);
    const src = gpu.upload([n * 4], data);
    const out = gpu.tensor([128 * 4]);
    const iters = 3;
    gpu.run(LOAD_FLOOR_KERNEL, { src, out }, { iters }, [2, 1, 1]);
    const got = await gpu.read(out);
    for (let t = 0; t < 128; t++) {
      for (let c = 0; c < 4; c++) {
        let want = 0;
        for (let it = 0; it < iters; it++) {
          for (let u = 0; u < 16; u++) want += data[((37 * t + 7 * it + 101 * u) % n) * 4 + c];
        }
        ok(Math.abs(got[t * 4 + c] - want) < 1e-4, `lane ${t}.${c}: ${got[t * 4 + c]} vs ${want}`);
      }
    }
    gpu.release(src);
    gpu.release(out);
    const ms = await loadFloorMs(gpu, 100_000, 1);
    ok(Number.isFinite(ms) && ms > 0, `${ms}`);
  },
});
