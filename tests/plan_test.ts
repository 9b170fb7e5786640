import { deepStrictEqual as equal, ok, throws } from "node:assert/strict";
import {
  isEpochEnd,
  isUpdateStep,
  lastUpdateStep,
  planDifference,
  planEpochs,
  planRun,
  scheduleSpan,
  updateSteps,
} from "../pipeline/plan.ts";
import { gmp, gmpDensity, gmpEndStep } from "../pipeline/sparsity/methods/gmp.ts";
import type { SparsitySettings } from "../pipeline/sparsity/method.ts";

const steps = (n: number) => Array.from({ length: n + 1 }, (_, s) => s);

Deno.test("plan: the planned length is epochs × epoch steps, or --max-steps when shorter", () => {
  const base = { windowsPerPass: 1328, epochs: 100, epochSteps: null, maxSteps: null };
  equal(planRun({ ...base, updateEvery: 0 }).totalSteps, 132_800);
  equal(planRun({ ...base, maxSteps: 200, updateEvery: 25 }), {
    totalSteps: 200,
    epochSteps: 1328,
    updateEvery: 25,
  });
  equal(planRun({ ...base, epochs: 8, epochSteps: 100, updateEvery: 0 }).totalSteps, 800);
  equal(planRun({ ...base, epochs: 2, maxSteps: 5000, updateEvery: 0 }).totalSteps, 2656);
  throws(() => planRun({ ...base, epochSteps: 0, updateEvery: 0 }), RangeError);
  throws(() => planRun({ ...base, updateEvery: -1 }), RangeError);
});

Deno.test("plan: epochs end every epoch steps and at the run's end; none at step 0", () => {
  const plan = { totalSteps: 250, epochSteps: 100, updateEvery: 0 };
  equal(steps(250).filter((s) => isEpochEnd(plan, s)), [100, 200, 250]);
  equal(planEpochs(plan), 3);
  equal(planEpochs({ ...plan, totalSteps: 300 }), 3);
});

Deno.test("plan: no connectivity update at or after the run's last step", () => {
  // per epoch: after every epoch but the last
  const perEpoch = { totalSteps: 800, epochSteps: 100, updateEvery: 0 };
  equal(updateSteps(perEpoch), [100, 200, 300, 400, 500, 600, 700]);
  equal(steps(800).filter((s) => isUpdateStep(perEpoch, s)), updateSteps(perEpoch));
  equal(lastUpdateStep(perEpoch), 700);
  // every N steps, N dividing the length: the 200-step run updated at step 200
  const every = { totalSteps: 200, epochSteps: 1328, updateEvery: 25 };
  equal(lastUpdateStep(every), 175);
  ok(!isUpdateStep(every, 200));
  equal(updateSteps(every).length, 7);
  // N not dividing it, and a cut last epoch
  equal(lastUpdateStep({ totalSteps: 210, epochSteps: 1328, updateEvery: 25 }), 200);
  equal(updateSteps({ totalSteps: 250, epochSteps: 100, updateEvery: 0 }), [100, 200]);
  // one epoch with per-epoch updates: none at all
  equal(lastUpdateStep({ totalSteps: 200, epochSteps: 1328, updateEvery: 0 }), -1);
  equal(updateSteps({ totalSteps: 100, epochSteps: 100, updateEvery: 0 }), []);
});

Deno.test("plan: the removal-rate schedule spans the run up to its last update", () => {
  equal(scheduleSpan({ totalSteps: 800, epochSteps: 100, updateEvery: 0 }), 700);
  equal(scheduleSpan({ totalSteps: 200, epochSteps: 1328, updateEvery: 25 }), 175);
  equal(scheduleSpan({ totalSteps: 200, epochSteps: 1328, updateEvery: 0 }), 200);
});

Deno.test("plan: differences name the field, for resume errors", () => {
  const a = { totalSteps: 200, epochSteps: 100, updateEvery: 0 };
  equal(planDifference(a, { ...a }), null);
  equal(planDifference(a, { ...a, epochSteps: 50 }), "epochSteps 100 vs 50");
  equal(planDifference(a, { ...a, updateEvery: 7 }), "updateEvery 0 vs 7");
});

const GMP: SparsitySettings = {
  method: "gmp",
  density: 0.33,
  init: "uniform",
  deathRate: 0.5,
  deathRateMin: 0.005,
  redistribution: "uniform",
  pruneStart: 0.1,
  pruneEnd: 0.75,
  seed: 1,
};

Deno.test("gmp: its window is a fraction of the planned length, not of where the run stops", () => {
  // the same 800-step plan, whether or not the run is stopped at 300 and resumed
  const plan = planRun({
    windowsPerPass: 286,
    epochs: 8,
    epochSteps: 100,
    maxSteps: null,
    updateEvery: 0,
  });
  equal(gmpEndStep(plan.totalSteps, GMP), 600);
  ok(gmpDensity(300, plan.totalSteps, GMP) > GMP.density);
  equal(gmpDensity(600, plan.totalSteps, GMP), GMP.density);
  // the last update (700) is past the window's end: the plan reaches the final density
  equal(gmp.planProblem!(GMP, plan), null);
  equal(gmpDensity(lastUpdateStep(plan), plan.totalSteps, GMP), GMP.density);
  // with 2 epochs, the only update (100) falls inside the window: refused before training
  const short = { ...plan, totalSteps: 200 };
  const why = gmp.planProblem!(GMP, short);
  ok(why !== null && /--prune-end/.test(why), String(why));
  // only models at the final density may become the run's best
  const at = (d: number) => [{ nnz: Math.round(d * 1000), numel: 1000 }];
  ok(gmp.mayBeBest!(at(0.33), GMP) && !gmp.mayBeBest!(at(0.5), GMP));
});
