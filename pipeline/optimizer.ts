/**
 * The optimizer stage: global gradient-norm clipping and one update of every parameter, recorded
 * on the GPU with no readback (the clip factor stays in a GPU tensor that the update kernels
 * read). Covers SGD, momentum SGD, Adam and NT-ASGD (SGD, then SGD plus iterate averaging once
 * the non-monotone trigger fires; spec §5). Every update is mask-aware: a parameter with a mask
 * keeps inactive weights and their optimizer state at exactly 0.
 *
 * A stage takes state and returns new state; the GPU tensors inside are handles that the stage
 * updates in place.
 *
 * @module
 */

import type { Gpu } from "../kernels/runtime/runtime.ts";
import type { Tensor } from "../kernels/runtime/tensor.ts";
import { adamStep, asgdAverage, momentumStep, sgdStep } from "../kernels/optim/optim.ts";
import { clipCoefficient, reduce } from "../kernels/dense/reduce.ts";
import type { Param } from "../models/params.ts";

/** Optimizers of the training issue (spec §5). */
export type OptimizerName = "sgd" | "momentum" | "adam" | "ntasgd";

/** Hyperparameters of the optimizer stage. */
export interface OptimizerSettings {
  kind: OptimizerName;
  lr: number;
  weightDecay: number;
  /** Momentum SGD's μ. */
  momentum: number;
  /** Global L2 clip norm over all gradients; 0 disables clipping. */
  clip: number;
  /** Adam's β1, β2, ε; Selfish-RNN's Table 3 uses (0, 0.999, 1e-9) (spec §5.5). */
  adam: { beta1: number; beta2: number; eps: number };
  /** What happens to the optimizer state of inactive weights (default `clear`). */
  inactiveState?: InactiveState;
  /** SNT-ASGD's step size under a per-step lr in the averaged phase (default `per-step`). */
  asgdEta?: AsgdEta;
}

/**
 * The step size SNT-ASGD's averaged phase takes when the lr changes per step (AWD variable
 * windows; spec §14.4):
 * - `per-step`: every tensor takes the step's lr.
 * - `lagging`: the released `Sparse_ASGD.py`: masked tensors keep the lr of the first averaged
 *   step (of this averaging, restarts included) and dense tensors take the previous step's lr
 *   (the first step its own).
 */
export type AsgdEta = "per-step" | "lagging";

/** `lagging`'s stored step sizes (`null` until the first averaged step sets them). */
export interface AsgdEtaState {
  sparse: number | null;
  dense: number | null;
}

/**
 * The optimizer state (momentum, Adam moments) of a masked tensor's inactive weights:
 * - `clear`: kept at 0; a removed weight's state goes, a regrown one starts fresh (Adam with its
 *   own bias correction, `ParamState.age`). The only choice in true sparse (CSR) storage, and
 *   the Selfish-RNN code's momentum SGD (`apply_mask` zeros the buffer).
 * - `accumulate`: kept dense (inactive weights' dense gradients keep feeding it), reset where a
 *   weight regrows: what SNFS's momentum growth needs (spec §7.5).
 * - `keep`: kept dense and never reset by a topology change: the released code's Adam, whose
 *   moments are not masked (spec §5.5), so a regrown weight continues from the moments its
 *   gradient built while it was inactive.
 */
export type InactiveState = "clear" | "accumulate" | "keep";

/** Per-parameter optimizer tensors (only those the optimizer uses exist). */
export interface ParamState {
  /** Momentum buffer. */
  buf?: Tensor;
  /** Adam first and second moments. */
  m?: Tensor;
  v?: Tensor;
  /**
   * Adam's per-weight step counts of `m` and `v` (u32), for parameters with a mask: a regrown
   * weight's moments restart, and so does their bias correction (`kernels/optim.ts`).
   */
  age?: Tensor<"u32">;
  /** ASGD average and per-element step counter (u32). */
  ax?: Tensor;
  count?: Tensor<"u32">;
}

/** Optimizer state: scalars on the host, tensors on the GPU. */
export interface OptimizerState {
  kind: OptimizerName;
  /** The policy the state was made for (topology changes read it). */
  inactiveState: InactiveState;
  /** Updates taken so far. */
  step: number;
  /** NT-ASGD after the trigger: every step also updates the averages. */
  averaging: boolean;
  /** The averaged phase's stored step sizes (read under {@linkcode AsgdEta} `lagging`). */
  eta: AsgdEtaState;
  /** Per-parameter tensors, aligned with the parameter list. */
  perParam: ParamState[];
  /** `[P]` per-parameter sums of squared gradients and `[1]` clip factor (scratch). */
  sumsq: Tensor;
  clipScale: Tensor;
}

/**
 * Allocates zeroed optimizer tensors for `params`.
 *
 * @example
 * ```ts ignore
 * let opt = createOptimizer(gpu, model.params, settings);
 * ```
 */
export function createOptimizer(
  gpu: Gpu,
  params: readonly Param[],
  settings: OptimizerSettings,
): OptimizerState {
  const perParam = params.map((p): ParamState => {
    if (settings.kind === "momentum") return { buf: gpu.zeros(p.value.shape) };
    if (settings.kind === "adam") {
      const moments = { m: gpu.zeros(p.value.shape), v: gpu.zeros(p.value.shape) };
      // moments that restart with a weight need their own step count
      const restarts = p.mask && (settings.inactiveState ?? "clear") !== "keep";
      return restarts ? { ...moments, age: gpu.zeros(p.value.shape, "u32") } : moments;
    }
    return {};
  });
  return {
    kind: settings.kind,
    inactiveState: settings.inactiveState ?? "clear",
    step: 0,
    averaging: false,
    eta: { sparse: null, dense: null },
    perParam,
    sumsq: gpu.zeros([Math.max(1, params.length)]),
    clipScale: gpu.zeros([1]),
  };
}

/**
 * NT-ASGD's switch to averaging: allocates the averages and counters (zero) and returns the
 * averaging state. From the next step on, each step ends with {@linkcode asgdAverage}.
 *
 * @example
 * ```ts ignore
 * if (nonmonoTrigger(history, valLoss, config.nonmono)) opt = startAveraging(gpu, params, opt);
 * ```
 */
export function startAveraging(
  gpu: Gpu,
  params: readonly Param[],
  state: OptimizerState,
): OptimizerState {
  if (state.kind !== "ntasgd") throw new Error(`startAveraging: optimizer is ${state.kind}`);
  if (state.averaging) return state;
  return {
    ...state,
    averaging: true,
    eta: { sparse: null, dense: null },
    perParam: state.perParam.map((s, i) => ({
      ...s,
      ax: gpu.zeros(params[i].value.shape),
      count: gpu.zeros(params[i].value.shape, "u32"),
    })),
  };
}

/**
 * SNT-ASGD's fine-tuning restart (spec §5.4, §14.2): the averaged optimizer re-created, so every
 * average and counter restarts (the next step copies the current raw weights into the
 * averages) and `lagging`'s step sizes are set again; the lr is unchanged. Only while averaging.
 *
 * @example
 * ```ts ignore
 * if (opt.averaging) opt = restartAveraging(gpu, opt);
 * ```
 */
export function restartAveraging(gpu: Gpu, state: OptimizerState): OptimizerState {
  if (!state.averaging) throw new Error("restartAveraging: the optimizer is not averaging");
  for (const s of state.perParam) {
    gpu.fill(s.ax!, 0);
    gpu.fill(s.count!, 0);
  }
  return { ...state, eta: { sparse: null, dense: null } };
}

/**
 * Records global-norm clipping: per-parameter sums of squares, then the PyTorch factor
 * `min(1, clip / (‖g‖ + 1e-6))` into `state.clipScale`. The norm covers every gradient entry,
 * inactive positions included, as the reference code does (spec §6 fidelity note).
 */
function recordClip(gpu: Gpu, params: readonly Param[], state: OptimizerState, clip: number): void {
  params.forEach((p, i) => reduce(gpu, { op: "sumsq", x: p.grad, out: state.sumsq, outIndex: i }));
  clipCoefficient(gpu, {
    sumsq: state.sumsq.view(0, [params.length]),
    maxNorm: clip,
    out: state.clipScale,
  });
}

/**
 * Records one optimizer update of every parameter (after clipping when `settings.clip > 0`)
 * and returns the advanced state.
 *
 * @example
 * ```ts ignore
 * opt = optimizerStep(gpu, model.params, opt, { ...settings, lr: currentLr });
 * ```
 */
export function optimizerStep(
  gpu: Gpu,
  params: readonly Param[],
  state: OptimizerState,
  settings: OptimizerSettings,
): OptimizerState {
  const gradScale = settings.clip > 0 ? state.clipScale : undefined;
  if (gradScale) recordClip(gpu, params, state, settings.clip);
  const step = state.step + 1;
  const lagging = state.averaging && settings.asgdEta === "lagging";
  const eta = lagging
    ? { sparse: state.eta.sparse ?? settings.lr, dense: state.eta.dense ?? settings.lr }
    : state.eta;
  params.forEach((p, i) => {
    const masked = p.mask !== undefined || p.csr !== undefined;
    const base = {
      w: p.value,
      g: p.grad,
      lr: lagging ? (masked ? eta.sparse! : eta.dense!) : settings.lr,
      wd: settings.weightDecay,
      gradScale,
      mask: p.mask,
      maskState: state.inactiveState === "clear",
    };
    const s = state.perParam[i];
    if (state.kind === "momentum") {
      momentumStep(gpu, { ...base, buf: s.buf!, momentum: settings.momentum });
    } else if (state.kind === "adam") {
      const { beta1, beta2, eps } = settings.adam;
      adamStep(gpu, { ...base, m: s.m!, v: s.v!, age: s.age, beta1, beta2, eps, step });
    } else {
      sgdStep(gpu, base);
      if (state.averaging) {
        asgdAverage(gpu, { w: p.value, ax: s.ax!, count: s.count!, mask: p.mask });
      }
    }
  });
  // dense tensors' stored size is updated after the step: the next step takes this one's lr
  return { ...state, step, eta: lagging ? { ...eta, dense: settings.lr } : eta };
}

/**
 * Swaps every parameter's value with its average (NT-ASGD evaluation, spec §5.3): call once to
 * evaluate the averaged weights and again to restore the raw ones. Dense tensors are swapped
 * through one scratch buffer per call.
 *
 * @example
 * ```ts ignore
 * swapAveraged(gpu, params, opt); const v = await evaluate(...); swapAveraged(gpu, params, opt);
 * ```
 */
export function swapAveraged(gpu: Gpu, params: readonly Param[], state: OptimizerState): void {
  if (!state.averaging) return;
  params.forEach((p, i) => {
    const ax = state.perParam[i].ax!;
    const tmp = gpu.tensor(p.value.shape);
    gpu.copy(p.value, tmp);
    gpu.copy(ax, p.value);
    gpu.copy(tmp, ax);
    gpu.release(tmp);
  });
}

/**
 * Returns every tensor of an optimizer state to the pool.
 *
 * @example
 * ```ts ignore
 * releaseOptimizer(gpu, opt);
 * ```
 */
export function releaseOptimizer(gpu: Gpu, state: OptimizerState): void {
  for (const s of state.perParam) {
    for (const t of [s.buf, s.m, s.v, s.age, s.ax, s.count]) if (t) gpu.release(t);
  }
  gpu.release(state.sumsq);
  gpu.release(state.clipScale);
}
