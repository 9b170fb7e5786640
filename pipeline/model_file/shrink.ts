/**
 * A structured-sparse model (ISS) cut down to the smaller dense model it is: the hidden units
 * whose rows left the masks are removed from every tensor that holds them (their gate rows and
 * biases, and the columns that read them; `ModelFamily.hiddenUnits`), so its speed can be
 * measured as a dense model. A family whose layers share one size (`withHiddenSizes`) pads the
 * smaller layers with all-zero units: an LSTM unit with zero weights and biases keeps c = 0 and
 * outputs exactly 0, so the outputs do not change. Host-only.
 *
 * @module
 */

import { type AnyModelFamily, liveUnits, unitMemberships } from "../../models/model.ts";
import type { ModelWeights } from "./model_file.ts";

/** Why a model cannot be shrunk (the message says which tensor or setting). */
export class ShrinkError extends Error {
  override name = "ShrinkError";
}

/**
 * The shrunk model's config and dense weights (no masks). Throws {@linkcode ShrinkError} when
 * the family has no hidden units or cannot hold the sizes left.
 *
 * @example
 * ```ts ignore
 * const { config, weights, sizes } = shrinkModel(family, meta.config, loaded.weights);
 * ```
 */
export function shrinkModel(
  family: AnyModelFamily,
  config: unknown,
  weights: ModelWeights,
): { config: unknown; weights: ModelWeights; sizes: number[] } {
  if (!family.hiddenUnits || !family.withHiddenSizes) {
    throw new ShrinkError(`--model ${family.name} defines no hidden units to cut out`);
  }
  const units = family.hiddenUnits(config);
  const specs = family.paramSpecs(config);
  const shapes = new Map(specs.map((s) => [s.name, s.shape]));
  const live = units.map((layer) =>
    liveUnits(layer, weights.masks.get(layer.rows[0]), shapes.get(layer.rows[0])![1])
  );
  const sizes = live.map((l) => l.length);
  const next = family.withHiddenSizes(config, sizes);
  if (next === null) {
    throw new ShrinkError(
      `--model ${family.name} with this config cannot hold hidden sizes ${sizes.join("/")} ` +
        "(a tied decoder shares the embedding's width)",
    );
  }
  const nextShapes = new Map(family.paramSpecs(next).map((s) => [s.name, s.shape]));
  // the kept units of each layer, padded to the new size with -1 (an all-zero unit)
  const keep = units.map((_, l) => {
    const U = family.hiddenUnits!(next)[l].units;
    return Array.from({ length: U }, (_, j) => live[l][j] ?? -1);
  });
  const member = unitMemberships(units, { biases: true });
  const out: ModelWeights = { values: new Map(), masks: new Map() };
  for (const spec of specs) {
    const value = weights.values.get(spec.name)!;
    const [R, C = 1] = spec.shape;
    const [R2, C2 = 1] = nextShapes.get(spec.name)!;
    const { rowsOf: rl, colsOf: cl } = member.get(spec.name) ?? {};
    // source row (or -1) of each target row: gate block g keeps its units in order
    const rowMap = rl === undefined ? Array.from({ length: R }, (_, r) => r) : (() => {
      const U = units[rl].units, U2 = keep[rl].length;
      return Array.from({ length: R2 }, (_, r) => {
        const k = keep[rl][r % U2];
        return k < 0 ? -1 : Math.floor(r / U2) * U + k;
      });
    })();
    const colMap = cl === undefined ? Array.from({ length: C }, (_, c) => c) : keep[cl];
    if (rowMap.length !== R2 || colMap.length !== C2) {
      throw new ShrinkError(`tensor ${spec.name}: cannot map [${R}, ${C}] onto [${R2}, ${C2}]`);
    }
    const v = new Float32Array(R2 * C2);
    for (let r = 0; r < R2; r++) {
      const sr = rowMap[r];
      if (sr < 0) continue;
      for (let c = 0; c < C2; c++) {
        const sc = colMap[c];
        if (sc >= 0) v[r * C2 + c] = value[sr * C + sc];
      }
    }
    out.values.set(spec.name, v);
  }
  return { config: next, weights: out, sizes };
}
