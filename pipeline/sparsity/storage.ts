/**
 * Where the sparse weights live during training: `masked` (dense value + 0/1 mask, dense
 * gradients: what the paper's code does, what RigL and SNFS need) or `csr` (true sparse: CSR
 * values, SpMM / SDDMM, gradients and optimizer state at the active entries only, so memory is
 * O(density)).
 *
 * With `csr`, training steps and evaluation run on the sparse kernels, and the pipeline
 * switches to masked form only around the events that are written for it and happen once per
 * epoch or update: the connectivity update, keeping the best weights, writing a checkpoint
 * (so checkpoints are the same in both storages), and the final test. Each switch carries the
 * optimizer state along exactly (a scatter or gather per array).
 *
 * Clipping differs by nature: with `csr` the gradient norm covers the active entries only (the
 * inactive gradients are never computed), where the masked path, like the released code,
 * includes them (spec §6 fidelity note).
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import type { Tensor } from "../../kernels/runtime/tensor.ts";
import type { Param } from "../../models/params.ts";
import { densifyParam, sparsifyParam } from "../../models/sparse_params.ts";
import type { OptimizerState, ParamState } from "../optimizer.ts";
import type { Growth, MethodName } from "./method.ts";
import { withGrowth } from "./growth.ts";
import { METHODS } from "./methods/mod.ts";
import type { SparsityState } from "./stage.ts";

/** Storage of sparse weights during training. */
export type Storage = "masked" | "csr";

const STATE_KEYS = ["buf", "m", "v", "age", "ax", "count"] as const;

/**
 * Why `method` (with `growth`, `growth.ts`) cannot train with CSR storage, or null when it can:
 * RigL and gradient growth read the dense gradient and SNFS the dense momentum, which true
 * sparse training never computes.
 *
 * @example
 * ```ts
 * import { csrUnsupported } from "./storage.ts";
 * csrUnsupported("selfish"); // null
 * csrUnsupported("selfish", "gradient"); // "gradient growth reads the dense gradient, ..."
 * ```
 */
export function csrUnsupported(method: MethodName, growth: Growth = "random"): string | null {
  const m = METHODS[method];
  return m ? withGrowth(m, growth).csrUnsupported ?? null : null;
}

function convertStates(
  s: ParamState,
  convert: (states: Tensor[]) => Tensor[],
): ParamState {
  const keys = STATE_KEYS.filter((k) => s[k]);
  const out = convert(keys.map((k) => s[k]!));
  const next: ParamState = { ...s };
  keys.forEach((k, i) => (next[k] = out[i] as Tensor<"u32">));
  return next;
}

/**
 * Moves every masked sparse tensor of `state` (and its optimizer state) to CSR; returns the
 * optimizer state with the per-entry arrays.
 *
 * @example
 * ```ts ignore
 * opt = toCsrStorage(gpu, model.params, opt, sparsity);
 * ```
 */
export function toCsrStorage(
  gpu: Gpu,
  params: readonly Param[],
  opt: OptimizerState,
  state: SparsityState,
): OptimizerState {
  const nnz = new Map(state.tensors.map((t) => [t.name, t]));
  const perParam = opt.perParam.map((s, i) => {
    const p = params[i], t = nnz.get(p.name);
    if (!t || p.csr) return s;
    return convertStates(s, (st) => sparsifyParam(gpu, p, { nnz: t.nnz, budget: t.budget }, st));
  });
  return { ...opt, perParam };
}

/**
 * Moves every CSR parameter (and its optimizer state) back to masked-dense form; returns the
 * optimizer state with dense arrays.
 *
 * @example
 * ```ts ignore
 * opt = toMaskedStorage(gpu, model.params, opt);
 * ```
 */
export function toMaskedStorage(
  gpu: Gpu,
  params: readonly Param[],
  opt: OptimizerState,
): OptimizerState {
  const perParam = opt.perParam.map((s, i) => {
    const p = params[i];
    if (!p.csr) return s;
    return convertStates(s, (st) => densifyParam(gpu, p, st));
  });
  return { ...opt, perParam };
}
