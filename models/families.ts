/**
 * The registry of model families (`--model NAME`). A new family is a folder under `models/`
 * and one line here.
 *
 * @module
 */

import type { AnyModelFamily } from "./model.ts";
import { lstmFamily } from "./lstm/family.ts";
import { rhnFamily } from "./rhn/family.ts";
import { onLstmFamily } from "./onlstm/family.ts";
import { mosFamily } from "./mos/family.ts";

/** Every model family by `--model` name. */
export const MODEL_FAMILIES: Readonly<Record<string, AnyModelFamily>> = {
  lstm: lstmFamily as AnyModelFamily,
  rhn: rhnFamily as AnyModelFamily,
  onlstm: onLstmFamily as AnyModelFamily,
  "awd-mos": mosFamily as AnyModelFamily,
};

/**
 * The family named `name`; a RangeError naming the known ones otherwise.
 *
 * @example
 * ```ts
 * import { modelFamily } from "./families.ts";
 * modelFamily("lstm").name; // "lstm"
 * ```
 */
export function modelFamily(name: string): AnyModelFamily {
  const f = MODEL_FAMILIES[name];
  if (!f) {
    throw new RangeError(
      `unknown model family ${JSON.stringify(name)} (known: ${
        Object.keys(MODEL_FAMILIES).join(", ")
      })`,
    );
  }
  return f;
}
