/**
 * The connectivity stage of the training pipeline: initial topology, the update at the end of
 * an epoch (or every ΔT steps), and the bookkeeping the summary and checkpoints need. The
 * stage state is plain host data (budgets, counts, method scalars); the masks it acts on live
 * in `param.mask` on the GPU.
 *
 * ```ts ignore
 * let sparsity = initSparsity(gpu, model.params, settings);   // masks, exact counts
 * // ... per step: train; then, when sparsityDue(sparsity, step, plan):
 * sparsity = (await sparsityUpdate(gpu, sparsity, model.params, { optimizer, step, plan })).state;
 * ```
 *
 * Initial masks: every sparse tensor gets exactly `round(d_l · numel)` active weights, chosen
 * uniformly at random (the smallest Philox keys under `(seed, stream = tensor index)`), with
 * `d_l` uniform or Erdős–Rényi (spec §3); weights outside the mask are zeroed.
 *
 * @module
 */

import type { UnitLayer } from "../../models/model.ts";
import type { Gpu } from "../../kernels/runtime/runtime.ts";
import { numel } from "../../kernels/runtime/tensor.ts";
import { randomKeys, selectTopK } from "../../kernels/select/topk.ts";
import { setWhereFlagged } from "../../kernels/select/mask_update.ts";
import { mul } from "../../kernels/dense/elementwise.ts";
import type { Param, ParamSpec } from "../../models/params.ts";
import type { ModelFamily } from "../../models/model.ts";
import type { OptimizerState } from "../optimizer.ts";
import { isUpdateStep, type RunPlan, scheduleSpan } from "../plan.ts";
import { layerDensities, tensorBudgets } from "./budget.ts";
import { cosineRemovalRate } from "./schedule.ts";
import {
  growthStream,
  type MethodName,
  type SparsityMethod,
  type SparsitySettings,
} from "./method.ts";
import {
  blockActiveCounts,
  createOpsContext,
  releaseOpsContext,
  type SparseTensor,
} from "./ops.ts";
import { METHODS } from "./methods/mod.ts";
import { withGrowth } from "./growth.ts";

/** Host record of one sparse tensor (serialisable). */
export interface SparseTensorInfo {
  name: string;
  /** Rows of each row block (the parameter spec's). */
  blocks: readonly number[];
  numel: number;
  budget: number;
  nnz: number;
}

/** What one connectivity update did (kept in the stage state for summaries and tables). */
export interface UpdateRecord {
  /** Optimizer steps before the update. */
  step: number;
  /** The removal rate p_t it used. */
  removalRate: number;
  removed: number;
  grown: number;
  /**
   * Density of each row block of each sparse tensor after the update (the "selfish" effect:
   * which gates keep more weights); absent in checkpoints written before it.
   */
  gateDensities?: Record<string, number[]>;
}

/** State of the connectivity stage (plain data: stored in checkpoint metadata). */
export interface SparsityState {
  settings: SparsitySettings;
  tensors: SparseTensorInfo[];
  /** Updates done so far. */
  updates: number;
  /** Step of the last update (−1: none yet). */
  lastUpdateStep: number;
  /** Method scalars carried between updates. */
  scalars: Record<string, number>;
  /** Every update so far, in order. */
  history: UpdateRecord[];
}

/** Looks a method up by name. */
export function sparsityMethod(name: MethodName): SparsityMethod {
  const m = METHODS[name];
  if (!m) throw new RangeError(`unknown sparse-training method ${JSON.stringify(name)}`);
  return m;
}

/**
 * The method a run's settings select, with their growth rule's costs (`growth.ts`).
 *
 * @example
 * ```ts ignore
 * runMethod({ ...settings, method: "selfish", growth: "gradient" }).flops; // "rigl"
 * ```
 */
export function runMethod(settings: Pick<SparsitySettings, "method" | "growth">): SparsityMethod {
  return withGrowth(sparsityMethod(settings.method), settings.growth);
}

/** Parameters a method masks: every `sparse` tensor (non-bias, spec §2) not listed as dense. */
export function sparseParams(
  params: readonly Param[],
  denseNames: readonly string[] = [],
): Param[] {
  return params.filter((p) => p.sparse && p.shape.length === 2 && !denseNames.includes(p.name));
}

/**
 * Creates the masks of `settings.method` on `params` (none for dense methods) and returns the
 * stage state. Records GPU work only.
 *
 * @example
 * ```ts ignore
 * const sparsity = initSparsity(gpu, model.params, settings);
 * ```
 */
export function initSparsity(
  gpu: Gpu,
  params: readonly Param[],
  settings: SparsitySettings,
  denseNames: readonly string[] = [],
): SparsityState {
  const method = sparsityMethod(settings.method);
  const state: SparsityState = {
    settings,
    tensors: [],
    updates: 0,
    lastUpdateStep: -1,
    scalars: {},
    history: [],
  };
  if (!method.sparse) return state;
  const targets = sparseParams(params, denseNames);
  const shapes = targets.map((p) => ({ name: p.name, rows: p.shape[0], cols: p.shape[1] }));
  const init = method.init ?? settings.init;
  const budgets = tensorBudgets(shapes, layerDensities(init, shapes, settings.density));
  const maxNumel = Math.max(...targets.map((p) => p.value.size));
  const keys = gpu.tensor([maxNumel], "u32");
  const flags = gpu.tensor([maxNumel], "u32");
  targets.forEach((p, i) => {
    const n = p.value.size;
    const start = method.startsDense ? n : budgets[i];
    const mask = p.mask ?? gpu.tensor(p.shape);
    if (start === n) {
      gpu.fill(mask, 1);
    } else {
      const k = keys.view(0, [n]), f = flags.view(0, [n]);
      randomKeys(gpu, { keys: k, seed: settings.seed, stream: growthStream(-1, i) });
      selectTopK(gpu, { keys: k, k: start, order: "smallest", selected: f });
      gpu.fill(mask, 0);
      setWhereFlagged(gpu, { flags: f, t: mask, value: 1 });
      mul(gpu, { a: p.value, b: mask, out: p.value });
    }
    p.mask = mask;
    state.tensors.push({
      name: p.name,
      blocks: p.blocks,
      numel: n,
      budget: method.startsDense ? n : budgets[i],
      nnz: start,
    });
  });
  gpu.release(keys);
  gpu.release(flags);
  return state;
}

/**
 * Whether an update is due after `step` optimizer steps: at the plan's update steps (every
 * `updateEvery` steps or at each epoch end, never at the run's last step; `plan.ts`). Static
 * and dense methods never update.
 *
 * @example
 * ```ts ignore
 * if (sparsityDue(state, meta.step, plan)) state = (await sparsityUpdate(...)).state;
 * ```
 */
export function sparsityDue(state: SparsityState, step: number, plan: RunPlan): boolean {
  const method = sparsityMethod(state.settings.method);
  if (!method.dynamic || state.tensors.length === 0 || step === state.lastUpdateStep) return false;
  return isUpdateStep(plan, step);
}

/**
 * The removal rate p_t of an update after `step` steps of `plan`: the cosine of spec §4.2 over
 * the plan's schedule span, so the plan's last update removes at p_min (`plan.ts`).
 *
 * @example
 * ```ts ignore
 * removalRateAt(settings, 700, { totalSteps: 800, epochSteps: 100, updateEvery: 0 }); // p_min
 * ```
 */
export function removalRateAt(settings: SparsitySettings, step: number, plan: RunPlan): number {
  return cosineRemovalRate(step, {
    p0: settings.deathRate,
    pMin: settings.deathRateMin,
    tMax: scheduleSpan(plan),
  });
}

/**
 * Why `plan` cannot run `settings.method` as planned, or `null` (e.g. gradual pruning with no
 * update at or after the end of its window would never reach its density).
 *
 * @example
 * ```ts ignore
 * const why = sparsityPlanProblem(settings, plan); // null, or a sentence naming the fix
 * ```
 */
export function sparsityPlanProblem(settings: SparsitySettings, plan: RunPlan): string | null {
  return sparsityMethod(settings.method).planProblem?.(settings, plan) ?? null;
}

/** The state's tensors bound to their parameters (masks on the GPU) and optimizer slots. */
function boundTensors(state: SparsityState, params: readonly Param[]): SparseTensor[] {
  const byName = new Map(params.map((p, i) => [p.name, { p, i }]));
  return state.tensors.map((t) => {
    const e = byName.get(t.name);
    if (!e?.p.mask) throw new RangeError(`sparsity: parameter ${t.name} has no mask`);
    return { param: e.p, index: e.i, blocks: t.blocks, budget: t.budget, nnz: t.nnz };
  });
}

/**
 * Runs one connectivity update of the state's method on `params` (the masks, weights and
 * optimizer state change on the GPU) and returns the new stage state with exact counts.
 *
 * @example
 * ```ts ignore
 * state = (await sparsityUpdate(gpu, state, model.params, { optimizer: opt, step, plan })).state;
 * ```
 */
export async function sparsityUpdate(
  gpu: Gpu,
  state: SparsityState,
  params: readonly Param[],
  at: { optimizer: OptimizerState; step: number; plan: RunPlan; units?: readonly UnitLayer[] },
): Promise<{ state: SparsityState; removed: number; grown: number }> {
  const method = sparsityMethod(state.settings.method);
  if (!method.update) return { state, removed: 0, grown: 0 };
  const tensors = boundTensors(state, params);
  const ops = createOpsContext(gpu, at.optimizer, Math.max(...state.tensors.map((t) => t.numel)));
  const { settings } = state;
  const removalRate = removalRateAt(settings, at.step, at.plan);
  try {
    const report = await method.update({
      ops,
      tensors,
      step: at.step,
      totalSteps: at.plan.totalSteps,
      removalRate,
      settings,
      update: state.updates,
      scalars: state.scalars,
      optimizer: at.optimizer,
      units: at.units,
    });
    const next = state.tensors.map((t, i) => ({
      ...t,
      budget: tensors[i].budget,
      nnz: tensors[i].nnz,
    }));
    // the topology left, per row block: one mask readback per tensor, once per update
    const gates = await gateDensities(gpu, { ...state, tensors: next }, params);
    return {
      state: {
        ...state,
        tensors: next,
        updates: state.updates + 1,
        lastUpdateStep: at.step,
        scalars: report.scalars ?? state.scalars,
        history: [...state.history, {
          step: at.step,
          removalRate,
          removed: report.removed,
          grown: report.grown,
          gateDensities: gates,
        }],
      },
      removed: report.removed,
      grown: report.grown,
    };
  } finally {
    releaseOpsContext(ops);
  }
}

/**
 * Density of each sparse tensor now (`nnz / numel`), by name; tensors not listed are dense.
 *
 * @example
 * ```ts ignore
 * const d = sparsityDensities(state); // { "rnn.weight_hh_l0": 0.33, ... }
 * ```
 */
export function sparsityDensities(state: SparsityState): Record<string, number> {
  return Object.fromEntries(state.tensors.map((t) => [t.name, t.nnz / t.numel]));
}

/**
 * Active weights per gate block of every sparse tensor, read back once (for the summary).
 *
 * @example
 * ```ts ignore
 * const perGate = await gateDensities(gpu, state, model.params); // { name: [d_i, d_f, d_g, d_o] }
 * ```
 */
export async function gateDensities(
  gpu: Gpu,
  state: SparsityState,
  params: readonly Param[],
): Promise<Record<string, number[]>> {
  const tensors = boundTensors(state, params);
  const counts = await blockActiveCounts(gpu, tensors);
  return Object.fromEntries(
    state.tensors.map((t, i) => {
      const rowLen = t.numel / t.blocks.reduce((a, b) => a + b, 0);
      return [t.name, counts[i].map((c, k) => c / (t.blocks[k] * rowLen))];
    }),
  );
}

/**
 * Parameter count a sparse run keeps: each sparse tensor's exact budget at `density` under
 * `init`, plus every dense tensor (biases, `denseNames`). Host-only, from parameter specs.
 *
 * @example
 * ```ts ignore
 * sparseParameterCount(family.paramSpecs(cfg), 0.33, "uniform"); // ≈ 21.8M, the paper's LSTM
 * ```
 */
export function sparseParameterCount(
  specs: readonly ParamSpec[],
  density: number,
  init: "uniform" | "er",
  denseNames: readonly string[] = [],
): number {
  const isSparse = (s: ParamSpec) =>
    s.sparse && s.shape.length === 2 && !denseNames.includes(s.name);
  const sparse = specs.filter(isSparse);
  const shapes = sparse.map((s) => ({ name: s.name, rows: s.shape[0], cols: s.shape[1] }));
  const budgets = tensorBudgets(shapes, layerDensities(init, shapes, density));
  const dense = specs.filter((s) => !isSparse(s)).reduce((n, s) => n + numel(s.shape), 0);
  return dense + budgets.reduce((a, b) => a + b, 0);
}

/**
 * The small-dense baseline's model (spec §7.2): `config` at the largest width (the family's
 * knob: the hidden size, and the embedding size with it when they are equal) whose dense
 * parameter count does not exceed `target`.
 *
 * @example
 * ```ts ignore
 * const target = sparseParameterCount(family.paramSpecs(cfg), 0.33, "uniform");
 * const small = smallDenseConfig(family, cfg, target);
 * ```
 */
export function smallDenseConfig<C>(family: ModelFamily<C>, config: C, target: number): C {
  const count = (w: number) => {
    const c = family.withWidth(config, w);
    return { c, n: family.paramSpecs(c).reduce((s, p) => s + numel(p.shape), 0) };
  };
  let lo = 1, hi = family.width(config);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (count(mid).n <= target) lo = mid;
    else hi = mid - 1;
  }
  return count(lo).c;
}
