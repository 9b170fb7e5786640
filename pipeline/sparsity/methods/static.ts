/**
 * Static sparse baselines (spec §7.1): a uniform or Erdős–Rényi mask at initialisation, never
 * updated; and the dense baselines (no masks), `dense` and `small-dense` (a narrower dense model
 * with the sparse models' parameter count, spec §7.2; the width is chosen in `stage.ts`).
 *
 * @module
 */

import type { SparsityMethod } from "../method.ts";

/** Uniform mask, frozen. */
export const staticUniform: SparsityMethod = {
  name: "static-uniform",
  summary: "uniform random mask at initialisation, never updated",
  init: "uniform",
  sparse: true,
  startsDense: false,
  dynamic: false,
  flops: "sparse",
};

/** Erdős–Rényi mask, frozen. */
export const staticEr: SparsityMethod = {
  name: "static-er",
  summary: "Erdős–Rényi random mask at initialisation, never updated",
  init: "er",
  sparse: true,
  startsDense: false,
  dynamic: false,
  flops: "sparse",
};

/** The dense model. */
export const dense: SparsityMethod = {
  name: "dense",
  summary: "dense model, no masks",
  csrUnsupported: "the model has no sparse tensors",
  sparse: false,
  startsDense: true,
  dynamic: false,
  flops: "dense",
};

/** A dense model narrowed to the sparse parameter count. */
export const smallDense: SparsityMethod = {
  name: "small-dense",
  summary: "dense model with the hidden size shrunk to match the sparse parameter count",
  matchesSparseCount: true,
  csrUnsupported: "the model has no sparse tensors",
  sparse: false,
  startsDense: true,
  dynamic: false,
  flops: "dense",
};
