/**
 * The registry of sparse-training methods: one file per method, collected here by name.
 *
 * @module
 */

import type { MethodName, SparsityMethod } from "../method.ts";
import { selfish } from "./selfish.ts";
import { rigl } from "./rigl.ts";
import { dense, smallDense, staticEr, staticUniform } from "./static.ts";

/** Every method, by `--method` name. */
export const METHODS: Readonly<Partial<Record<MethodName, SparsityMethod>>> = {
  dense,
  "small-dense": smallDense,
  "static-uniform": staticUniform,
  "static-er": staticEr,
  rigl,
  selfish,
};
