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
  /** Training steps of the whole run (its epochs, or `--max-steps` when shorter). */
  totalSteps: number;
  /**
   * The step after which each epoch ends, ascending, the last one `totalSteps`: multiples of
   * `--epoch-steps`, or the ends of the passes over the training data (whose lengths vary with
   * AWD's variable windows).
   */
  epochEnds: number[];
  /** Steps between connectivity updates; 0 = once per epoch, after its validation. */
  updateEvery: number;
}

/** What a plan is made from (the run config's fields). */
export interface PlanInput {
  /** Training windows in pass `p` over the training data (the same for every pass when fixed). */
  passLength: (pass: number) => number;
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
 * const passLength = () => 1328;
 * planRun({ passLength, epochs: 100, epochSteps: null, maxSteps: 200, updateEvery: 25 });
 * // { totalSteps: 200, epochEnds: [200], updateEvery: 25 }
 * ```
 */
export function planRun(input: PlanInput): RunPlan {
  positiveInt("epochs", input.epochs);
  if (input.epochSteps !== null) positiveInt("epoch steps", input.epochSteps);
  if (input.maxSteps !== null) positiveInt("max steps", input.maxSteps);
  if (!Number.isInteger(input.updateEvery) || input.updateEvery < 0) {
    throw new RangeError(`run plan: update interval must be an integer >= 0`);
  }
  const ends: number[] = [];
  let step = 0;
  for (let e = 0; e < input.epochs; e++) {
    const n = input.epochSteps ?? input.passLength(e);
    positiveInt(`windows of pass ${e}`, n);
    step += n;
    if (input.maxSteps !== null && step >= input.maxSteps) {
      ends.push(input.maxSteps);
      break;
    }
    ends.push(step);
  }
  return { totalSteps: ends[ends.length - 1], epochEnds: ends, updateEvery: input.updateEvery };
}

/**
 * The plan of `totalSteps` steps in epochs of `epochSteps` (the last one cut to fit).
 *
 * @example
 * ```ts
 * import { evenPlan } from "./plan.ts";
 * evenPlan(250, 100, 0); // { totalSteps: 250, epochEnds: [100, 200, 250], updateEvery: 0 }
 * ```
 */
export function evenPlan(totalSteps: number, epochSteps: number, updateEvery: number): RunPlan {
  return planRun({
    passLength: () => epochSteps,
    epochs: Math.ceil(totalSteps / epochSteps),
    epochSteps,
    maxSteps: totalSteps,
    updateEvery,
  });
}

/**
 * Epochs of the plan; the last one is shorter when `--max-steps` cuts it.
 *
 * @example
 * ```ts
 * import { planEpochs } from "./plan.ts";
 * planEpochs({ totalSteps: 250, epochEnds: [100, 200, 250], updateEvery: 0 }); // 3
 * ```
 */
export function planEpochs(plan: RunPlan): number {
  return plan.epochEnds.length;
}

/**
 * The epochs' length as text: `100`, or `~663` when they differ (variable windows, a cut last
 * epoch aside).
 *
 * @example
 * ```ts
 * import { epochLengthText } from "./plan.ts";
 * epochLengthText({ totalSteps: 250, epochEnds: [100, 200, 250], updateEvery: 0 }); // "100"
 * ```
 */
export function epochLengthText(plan: RunPlan): string {
  const lengths = plan.epochEnds.map((e, i) => e - (i ? plan.epochEnds[i - 1] : 0));
  const full = lengths.length > 1 ? lengths.slice(0, -1) : lengths;
  const mean = full.reduce((a, b) => a + b, 0) / full.length;
  return full.every((n) => n === full[0]) ? String(full[0]) : `~${Math.round(mean)}`;
}

/**
 * Does an epoch end after `step` steps?
 *
 * @example
 * ```ts
 * import { isEpochEnd } from "./plan.ts";
 * const plan = { totalSteps: 250, epochEnds: [100, 200, 250], updateEvery: 0 };
 * [isEpochEnd(plan, 100), isEpochEnd(plan, 150), isEpochEnd(plan, 250)]; // [true, false, true]
 * ```
 */
export function isEpochEnd(plan: RunPlan, step: number): boolean {
  return epochIndex(plan, step) >= 0;
}

/** Index of the epoch ending after `step` steps, or −1 (binary search). */
function epochIndex(plan: RunPlan, step: number): number {
  let lo = 0, hi = plan.epochEnds.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1, e = plan.epochEnds[mid];
    if (e === step) return mid;
    if (e < step) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/**
 * Does a connectivity update run after `step` steps? Every `updateEvery` steps (or at every
 * epoch end), but never at or after the run's last step.
 *
 * @example
 * ```ts
 * import { isUpdateStep } from "./plan.ts";
 * const plan = { totalSteps: 200, epochEnds: [200], updateEvery: 25 };
 * [isUpdateStep(plan, 175), isUpdateStep(plan, 180), isUpdateStep(plan, 200)]; // [true, false, false]
 * ```
 */
export function isUpdateStep(plan: RunPlan, step: number): boolean {
  if (!(step > 0 && step < plan.totalSteps)) return false;
  return plan.updateEvery > 0 ? step % plan.updateEvery === 0 : isEpochEnd(plan, step);
}

/**
 * Every step after which the plan runs a connectivity update, ascending.
 *
 * @example
 * ```ts
 * import { updateSteps } from "./plan.ts";
 * updateSteps({ totalSteps: 400, epochEnds: [100, 200, 300, 400], updateEvery: 0 });
 * // [100, 200, 300]
 * ```
 */
export function updateSteps(plan: RunPlan): number[] {
  if (plan.updateEvery === 0) return plan.epochEnds.filter((e) => e < plan.totalSteps);
  const out: number[] = [];
  for (let s = plan.updateEvery; s < plan.totalSteps; s += plan.updateEvery) out.push(s);
  return out;
}

/**
 * The step of the plan's last connectivity update, or −1 when none falls inside the run.
 *
 * @example
 * ```ts
 * import { lastUpdateStep } from "./plan.ts";
 * lastUpdateStep({ totalSteps: 200, epochEnds: [200], updateEvery: 25 }); // 175
 * lastUpdateStep({ totalSteps: 200, epochEnds: [200], updateEvery: 0 }); // -1
 * ```
 */
export function lastUpdateStep(plan: RunPlan): number {
  if (plan.updateEvery === 0) {
    const n = plan.epochEnds.length;
    return n > 1 ? plan.epochEnds[n - 2] : -1;
  }
  const every = plan.updateEvery;
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
 * scheduleSpan({ totalSteps: 800, epochEnds: [100, 200, 300, 400, 500, 600, 700, 800], updateEvery: 0 });
 * // 700
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
 * const a = { totalSteps: 200, epochEnds: [100, 200], updateEvery: 0 };
 * planDifference(a, { ...a, totalSteps: 300 }); // "totalSteps 200 vs 300"
 * ```
 */
export function planDifference(a: RunPlan, b: RunPlan): string | null {
  for (const k of ["totalSteps", "updateEvery"] as const) {
    if (a[k] !== b[k]) return `${k} ${a[k]} vs ${b[k]}`;
  }
  const i = a.epochEnds.findIndex((e, k) => e !== b.epochEnds[k]);
  if (i >= 0 || a.epochEnds.length !== b.epochEnds.length) {
    const k = i >= 0 ? i : Math.min(a.epochEnds.length, b.epochEnds.length);
    return `epoch ${k + 1} ends at step ${a.epochEnds[k]} vs ${b.epochEnds[k]}`;
  }
  return null;
}
