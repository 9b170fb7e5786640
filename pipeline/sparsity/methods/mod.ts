/**
 * The registry of sparse-training methods: one file per method, collected here by name.
 *
 * @module
 */

import type { MethodName, SparsityMethod } from "../method.ts";
import { selfish } from "./selfish.ts";
import { rigl } from "./rigl.ts";
import { dense, smallDense, staticEr, staticUniform } from "./static.ts";
import { set } from "./set.ts";
import { dsr } from "./dsr.ts";
import { snfs } from "./snfs.ts";
import { gmp } from "./gmp.ts";
import { iss } from "./iss.ts";

/** Every method, by `--method` name. */
export const METHODS: Readonly<Record<MethodName, SparsityMethod>> = {
  dense,
  "small-dense": smallDense,
  "static-uniform": staticUniform,
  "static-er": staticEr,
  gmp,
  iss,
  set,
  dsr,
  snfs,
  rigl,
  selfish,
};
