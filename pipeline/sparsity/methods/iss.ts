/**
 * ISS, Intrinsic Sparse Structures (Wen et al. 2018; spec §7.7): dense to structured sparse.
 * Unit k of a layer owns a group of weights (the family's `hiddenUnits`: row k of every gate
 * block of the layer's own matrices, column k of every matrix that reads its output). Training
 * starts dense and adds the group Lasso
 *
 *   λ · Σ_layers Σ_k ‖g_k‖₂        (λ = `--iss-lambda`)
 *
 * to the loss: each step's gradient gains λ·w/‖g_k‖ for every group a weight belongs to (a
 * recurrent weight belongs to two, its row's unit and its column's). At each connectivity update
 * a unit whose group norm has fallen below `--iss-threshold` × the median norm of its layer's
 * live units is removed for good: its rows and columns leave the masks, its weights are zeroed
 * and the masked optimizer keeps them at zero; a removed group's norm is 0, so it never
 * returns, and every layer keeps at least one unit. The model left is a smaller dense one.
 *
 * The relative threshold is this project's rule (inferred): Wen et al. zero weights below an
 * absolute threshold, which depends on the initialisation's scale; the ratio to the layer's
 * median does not, and without the penalty (λ = 0) almost no unit ever falls that far.
 *
 * @module
 */

import { mul } from "../../../kernels/dense/elementwise.ts";
import { groupLassoGrad, maskDeadUnits, unitSquares } from "../../../kernels/optim/group_lasso.ts";
import type { Gpu } from "../../../kernels/runtime/runtime.ts";
import type { Tensor } from "../../../kernels/runtime/tensor.ts";
import { liveUnits, type UnitLayer, unitMemberships } from "../../../models/model.ts";
import type { Param } from "../../../models/params.ts";
import type { PenaltyInput, SparsityMethod, UpdateInput, UpdateReport } from "../method.ts";

function paramOf(params: readonly Param[], name: string): Param {
  const p = params.find((q) => q.name === name);
  if (!p) throw new RangeError(`iss: the model has no tensor ${name}`);
  return p;
}

/**
 * Records each layer's per-unit sums of squares `[units]` over its groups (release them).
 *
 * @example
 * ```ts ignore
 * const sq = unitGroupSquares(gpu, model.params, family.hiddenUnits!(config));
 * ```
 */
export function unitGroupSquares(
  gpu: Gpu,
  params: readonly Param[],
  units: readonly UnitLayer[],
): Tensor[] {
  return units.map((layer) => {
    const sq = gpu.tensor([layer.units]);
    let first = true;
    const add = (name: string, axis: "rows" | "cols") => {
      unitSquares(gpu, { w: paramOf(params, name).value, axis, out: sq, accumulate: !first });
      first = false;
    };
    for (const name of layer.rows) add(name, "rows");
    for (const name of layer.cols) add(name, "cols");
    return sq;
  });
}

/**
 * The group Lasso's gradient, added to every member tensor's gradient.
 *
 * @example
 * ```ts ignore
 * issPenalty({ gpu, params: model.params, units, settings });
 * ```
 */
export function issPenalty(input: PenaltyInput): void {
  const { gpu, params, units } = input;
  const lambda = input.settings.issLambda ?? 0;
  if (lambda === 0) return;
  const sq = unitGroupSquares(gpu, params, units);
  for (const [name, m] of unitMemberships(units)) {
    const p = paramOf(params, name);
    groupLassoGrad(gpu, {
      w: p.value,
      grad: p.grad,
      lambda,
      sq: {
        rows: m.rowsOf === undefined ? undefined : sq[m.rowsOf],
        cols: m.colsOf === undefined ? undefined : sq[m.colsOf],
      },
    });
  }
  for (const t of sq) gpu.release(t);
}

/**
 * The units to remove from a layer, given its group norms: those below `threshold` × the median
 * norm of the live ones (norm > 0; removed units have 0), keeping at least the largest.
 *
 * @example
 * ```ts
 * import { deadUnits } from "./iss.ts";
 * deadUnits([1, 0.05, 0.9, 0, 1.1], 0.1); // [false, true, false, true, false]
 * ```
 */
export function deadUnits(norms: ArrayLike<number>, threshold: number): boolean[] {
  const live = Array.from(norms).filter((n) => n > 0).sort((a, b) => a - b);
  if (live.length === 0) return Array.from(norms, () => true);
  const median = live.length % 2
    ? live[(live.length - 1) / 2]
    : (live[live.length / 2 - 1] + live[live.length / 2]) / 2;
  const dead = Array.from(norms, (n) => !(n > 0) || n < threshold * median);
  if (dead.every((d) => d)) {
    let best = 0;
    for (let k = 1; k < norms.length; k++) if (norms[k] > norms[best]) best = k;
    dead[best] = false;
  }
  return dead;
}

async function update(input: UpdateInput): Promise<UpdateReport> {
  const { gpu } = input.ops;
  const units = input.units;
  if (!units) throw new RangeError("iss: the stage passed no hidden units");
  const params = input.tensors.map((t) => t.param);
  const all = (name: string) => input.tensors.find((t) => t.param.name === name);
  const sq = unitGroupSquares(gpu, params, units);
  const threshold = input.settings.issThreshold ?? 0;
  const dead = await Promise.all(sq.map(async (t) => {
    const norms = Array.from(await gpu.read(t), (s) => Math.sqrt(Math.max(0, s)));
    return deadUnits(norms, threshold);
  }));
  for (const t of sq) gpu.release(t);
  const deadVectors = dead.map((d) => gpu.upload([d.length], Float32Array.from(d, Number)));
  const alive = dead.map((d) => d.filter((x) => !x).length);
  let removed = 0;
  for (const [name, m] of unitMemberships(units)) {
    const t = all(name);
    if (!t) throw new RangeError(`iss: tensor ${name} is not masked`);
    const p = t.param;
    maskDeadUnits(gpu, {
      mask: p.mask!,
      dead: {
        rows: m.rowsOf === undefined ? undefined : deadVectors[m.rowsOf],
        cols: m.colsOf === undefined ? undefined : deadVectors[m.colsOf],
      },
    });
    mul(gpu, { a: p.value, b: p.mask!, out: p.value });
    // the masks are products of live rows and live columns: only whole units ever leave
    const [R, C] = p.shape;
    const rows = m.rowsOf === undefined ? R : (R / units[m.rowsOf].units) * alive[m.rowsOf];
    const cols = m.colsOf === undefined ? C : alive[m.colsOf];
    const nnz = rows * cols;
    removed += t.nnz - nnz;
    t.nnz = nnz;
    t.budget = nnz;
  }
  for (const v of deadVectors) gpu.release(v);
  return { removed, grown: 0 };
}

/**
 * The hidden sizes left: per layer, the units whose rows still hold a live mask entry.
 *
 * @example
 * ```ts ignore
 * await issHiddenSizes(gpu, model.params, units); // [51] of 64
 * ```
 */
export async function issHiddenSizes(
  gpu: Gpu,
  params: readonly Param[],
  units: readonly UnitLayer[],
): Promise<number[]> {
  return await Promise.all(units.map(async (layer) => {
    const p = paramOf(params, layer.rows[0]);
    const mask = p.mask ? await gpu.read(p.mask) : undefined;
    return liveUnits(layer, mask, p.shape[1]).length;
  }));
}

/**
 * ISS: dense start, group Lasso over hidden units, removal of the units it drives to zero.
 *
 * @example
 * ```ts ignore
 * const report = await iss.update!(input); // input: UpdateInput from the stage, with units
 * ```
 */
export const iss: SparsityMethod = {
  name: "iss",
  summary: "starts dense, group Lasso over hidden units, removes the units it drives to zero",
  sparse: true,
  startsDense: true,
  dynamic: true,
  structured: true,
  csrUnsupported: "ISS trains dense until it removes whole units (masked storage)",
  flops: "pruning",
  penalty: issPenalty,
  update,
  // an epoch end that is an update step validates before its update: the structure is final
  // only after the last one
  mayBeBest: (_tensors, _settings, at) => at.step > at.lastUpdate,
};
