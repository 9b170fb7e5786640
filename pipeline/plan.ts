/**
 * The plan of a training run: how many steps it takes, where its epochs end and after which
 * steps its connectivity updates run. Every schedule of the run (the removal rate, gradual
 * pruning's window, DSR's and SNFS's removal counts) is a function of the plan, never of where
 * a run happens to be stopped, so a run stopped with `--stop-after` or Ctrl-C and resumed
 * follows exactly the schedule of the straight run. Pure host data; checkpoints store it.
 *
 * Two rules keep every measured model a trained one (issue 12):
 * - no connectivity update after the run's last step: its result would never be trained, yet
 *   the final validation, the choice of the best weights and the test would measure it;
 * - at a step that ends an epoch and is also an update step, the epoch's validation comes
 *   first, then the update (as the paper: evaluate, save if best, then update).
 *
 * @module
 */

/** When a run's events fall. */
export interface RunPlan {
  /** Training steps of the whole run (`epochs × epochSteps`, or `--max-steps` when shorter). */
  totalSteps: number;
  /** Steps per epoch: one pass over the training windows, or `--epoch-steps`. */
  epochSteps: number;
  /** Steps between connectivity updates; 0 = once per epoch, after its validation. */
  updateEvery: number;
}

/** What a plan is made from (the run config's fields). */
export interface PlanInput {
  /** Training windows in one pass over the training data. */
  windowsPerPass: number;
  epochs: number;
  /** `--epoch-steps`: an epoch of this many steps; `null` = one pass over the data. */
  epochSteps: number | null;
  /** `--max-steps`: the planned length when shorter than the epochs. */
  maxSteps: number | null;
  updateEvery: number;
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`run plan: ${name} must be an integer >= 1, got ${v}`);
  }
}

/**
 * The plan of a run.
 *
 * @example
 * ```ts
 * import { planRun } from "./plan.ts";
 * planRun({ windowsPerPass: 1328, epochs: 100, epochSteps: null, maxSteps: 200, updateEvery: 25 });
 * // { totalSteps: 200, epochSteps: 1328, updateEvery: 25 }
 * ```
 */
export function planRun(input: PlanInput): RunPlan {
  positiveInt("windows per pass", input.windowsPerPass);
  positiveInt("epochs", input.epochs);
  const epochSteps = input.epochSteps ?? input.windowsPerPass;
  positiveInt("epoch steps", epochSteps);
  if (input.maxSteps !== null) positiveInt("max steps", input.maxSteps);
  if (!Number.isInteger(input.updateEvery) || input.updateEvery < 0) {
    throw new RangeError(`run plan: update interval must be an integer >= 0`);
  }
  const full = input.epochs * epochSteps;
  return {
    totalSteps: input.maxSteps === null ? full : Math.min(full, input.maxSteps),
    epochSteps,
    updateEvery: input.updateEvery,
  };
}

/**
 * Epochs of the plan; the last one is shorter when `--max-steps` cuts it.
 *
 * @example
 * ```ts
 * import { planEpochs } from "./plan.ts";
 * planEpochs({ totalSteps: 250, epochSteps: 100, updateEvery: 0 }); // 3
 * ```
 */
export function planEpochs(plan: RunPlan): number {
  return Math.ceil(plan.totalSteps / plan.epochSteps);
}

/**
 * Does an epoch end after `step` steps? Every `epochSteps` steps, and at the run's end.
 *
 * @example
 * ```ts
 * import { isEpochEnd } from "./plan.ts";
 * const plan = { totalSteps: 250, epochSteps: 100, updateEvery: 0 };
 * [isEpochEnd(plan, 100), isEpochEnd(plan, 150), isEpochEnd(plan, 250)]; // [true, false, true]
 * ```
 */
export function isEpochEnd(plan: RunPlan, step: number): boolean {
  return step > 0 && (step % plan.epochSteps === 0 || step === plan.totalSteps);
}

/** Steps between updates: `updateEvery`, or the epoch length for per-epoch updates. */
function updateInterval(plan: RunPlan): number {
  return plan.updateEvery > 0 ? plan.updateEvery : plan.epochSteps;
}

/**
 * Does a connectivity update run after `step` steps? Every `updateEvery` steps (or at every
 * epoch end), but never at or after the run's last step.
 *
 * @example
 * ```ts
 * import { isUpdateStep } from "./plan.ts";
 * const plan = { totalSteps: 200, epochSteps: 1328, updateEvery: 25 };
 * [isUpdateStep(plan, 175), isUpdateStep(plan, 180), isUpdateStep(plan, 200)]; // [true, false, false]
 * ```
 */
export function isUpdateStep(plan: RunPlan, step: number): boolean {
  return step > 0 && step < plan.totalSteps && step % updateInterval(plan) === 0;
}

/**
 * Every step after which the plan runs a connectivity update, ascending.
 *
 * @example
 * ```ts
 * import { updateSteps } from "./plan.ts";
 * updateSteps({ totalSteps: 400, epochSteps: 100, updateEvery: 0 }); // [100, 200, 300]
 * ```
 */
export function updateSteps(plan: RunPlan): number[] {
  const every = updateInterval(plan);
  const out: number[] = [];
  for (let s = every; s < plan.totalSteps; s += every) out.push(s);
  return out;
}

/**
 * The step of the plan's last connectivity update, or −1 when none falls inside the run.
 *
 * @example
 * ```ts
 * import { lastUpdateStep } from "./plan.ts";
 * lastUpdateStep({ totalSteps: 200, epochSteps: 1328, updateEvery: 25 }); // 175
 * lastUpdateStep({ totalSteps: 200, epochSteps: 1328, updateEvery: 0 }); // -1
 * ```
 */
export function lastUpdateStep(plan: RunPlan): number {
  const every = updateInterval(plan);
  const last = Math.floor((plan.totalSteps - 1) / every) * every;
  return last >= every ? last : -1;
}

/**
 * The span of the removal-rate schedule (T_max of spec §4.2): the plan's last update, so the
 * last update removes at p_min. The paper's T_max = epochs × windows is its last update too,
 * since its code also updates after the last epoch's validation; here that update is not run
 * (nothing would train it), and T_max moves to the last update that is. With no update in the
 * run it is the run's length.
 *
 * @example
 * ```ts
 * import { scheduleSpan } from "./plan.ts";
 * scheduleSpan({ totalSteps: 800, epochSteps: 100, updateEvery: 0 }); // 700
 * ```
 */
export function scheduleSpan(plan: RunPlan): number {
  const last = lastUpdateStep(plan);
  return last > 0 ? last : plan.totalSteps;
}

/**
 * The field by which two plans differ, or `null` when they are the same (for resume errors).
 *
 * @example
 * ```ts
 * import { planDifference } from "./plan.ts";
 * const a = { totalSteps: 200, epochSteps: 100, updateEvery: 0 };
 * planDifference(a, { ...a, totalSteps: 300 }); // "totalSteps 200 vs 300"
 * ```
 */
export function planDifference(a: RunPlan, b: RunPlan): string | null {
  for (const k of ["totalSteps", "epochSteps", "updateEvery"] as const) {
    if (a[k] !== b[k]) return `${k} ${a[k]} vs ${b[k]}`;
  }
  return null;
}
