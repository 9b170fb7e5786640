import { deepStrictEqual as equal, ok, throws } from "node:assert/strict";
import { iss } from "../pipeline/sparsity/methods/iss.ts";
import {
  epochLengthText,
  evenPlan,
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

Deno.test("plan: the planned length is the epochs' steps, or --max-steps when shorter", () => {
  const base = { passLength: () => 1328, epochs: 100, epochSteps: null, maxSteps: null };
  equal(planRun({ ...base, updateEvery: 0 }).totalSteps, 132_800);
  equal(planRun({ ...base, maxSteps: 200, updateEvery: 25 }), {
    totalSteps: 200,
    epochEnds: [200],
    updateEvery: 25,
  });
  equal(planRun({ ...base, epochs: 8, epochSteps: 100, updateEvery: 0 }).totalSteps, 800);
  equal(planRun({ ...base, epochs: 2, maxSteps: 5000, updateEvery: 0 }).epochEnds, [1328, 2656]);
  throws(() => planRun({ ...base, epochSteps: 0, updateEvery: 0 }), RangeError);
  throws(() => planRun({ ...base, updateEvery: -1 }), RangeError);
});

Deno.test("plan: epochs of passes whose lengths vary (AWD windows) end where each pass ends", () => {
  const lengths = [660, 668, 655];
  const plan = planRun({
    passLength: (p) => lengths[p],
    epochs: 3,
    epochSteps: null,
    maxSteps: null,
    updateEvery: 0,
  });
  equal(plan.epochEnds, [660, 1328, 1983]);
  equal(updateSteps(plan), [660, 1328]);
  equal(lastUpdateStep(plan), 1328);
  equal(epochLengthText(plan), "~664");
  ok(isEpochEnd(plan, 1328) && !isEpochEnd(plan, 1327) && isUpdateStep(plan, 660));
  // a cut last epoch
  const cut = planRun({
    passLength: (p) => lengths[p],
    epochs: 3,
    epochSteps: null,
    maxSteps: 1500,
    updateEvery: 0,
  });
  equal(cut.epochEnds, [660, 1328, 1500]);
});

Deno.test("plan: epochs end every epoch steps and at the run's end; none at step 0", () => {
  const plan = evenPlan(250, 100, 0);
  equal(steps(250).filter((s) => isEpochEnd(plan, s)), [100, 200, 250]);
  equal(planEpochs(plan), 3);
  equal(epochLengthText(plan), "100");
  equal(planEpochs(evenPlan(300, 100, 0)), 3);
});

Deno.test("plan: no connectivity update at or after the run's last step", () => {
  // per epoch: after every epoch but the last
  const perEpoch = evenPlan(800, 100, 0);
  equal(updateSteps(perEpoch), [100, 200, 300, 400, 500, 600, 700]);
  equal(steps(800).filter((s) => isUpdateStep(perEpoch, s)), updateSteps(perEpoch));
  equal(lastUpdateStep(perEpoch), 700);
  // every N steps, N dividing the length: the 200-step run updated at step 200
  const every = evenPlan(200, 1328, 25);
  equal(lastUpdateStep(every), 175);
  ok(!isUpdateStep(every, 200));
  equal(updateSteps(every).length, 7);
  equal(steps(200).filter((s) => isUpdateStep(every, s)), updateSteps(every));
  // N not dividing it, and a cut last epoch
  equal(lastUpdateStep(evenPlan(210, 1328, 25)), 200);
  equal(updateSteps(evenPlan(250, 100, 0)), [100, 200]);
  // one epoch with per-epoch updates: none at all
  equal(lastUpdateStep(evenPlan(200, 1328, 0)), -1);
  equal(updateSteps(evenPlan(100, 100, 0)), []);
});

Deno.test("plan: the removal-rate schedule spans the run up to its last update", () => {
  equal(scheduleSpan(evenPlan(800, 100, 0)), 700);
  equal(scheduleSpan(evenPlan(200, 1328, 25)), 175);
  equal(scheduleSpan(evenPlan(200, 1328, 0)), 200);
});

Deno.test("plan: differences name the field, for resume errors", () => {
  const a = evenPlan(200, 100, 0);
  equal(planDifference(a, { ...a }), null);
  equal(planDifference(a, evenPlan(200, 50, 0)), "epoch 1 ends at step 100 vs 50");
  equal(planDifference(a, { ...a, updateEvery: 7 }), "updateEvery 0 vs 7");
  equal(planDifference(a, evenPlan(300, 100, 0)), "totalSteps 200 vs 300");
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
    passLength: () => 286,
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
  const short = evenPlan(200, 100, 0);
  const why = gmp.planProblem!(GMP, short);
  ok(why !== null && /--prune-end/.test(why), String(why));
  // only models at the final density may become the run's best
  const at = (d: number) => [{ nnz: Math.round(d * 1000), numel: 1000 }];
  const when = { step: 200, lastUpdate: 100 };
  ok(gmp.mayBeBest!(at(0.33), GMP, when) && !gmp.mayBeBest!(at(0.5), GMP, when));
  // ISS's structure is final only after its last update (validation precedes an update)
  ok(!iss.mayBeBest!(at(1), GMP, { step: 100, lastUpdate: 100 }));
  ok(iss.mayBeBest!(at(1), GMP, { step: 101, lastUpdate: 100 }));
});
