/**
 * `deno task train --dry-run`: the parameter table of a run's model without training it: each
 * tensor's name, shape, row blocks, whether it is sparse, the density it trains at, its active
 * and total counts and forward multiply-adds per token, and the totals. Pure host code from the
 * family's specs and costs and the connectivity stage's budget rule (the counts the run's
 * initial masks would hold; gradual pruning: its final density).
 *
 * @module
 */

import { numel } from "../kernels/runtime/tensor.ts";
import type { TrainConfig } from "./config.ts";
import { layerDensities, tensorBudgets } from "./sparsity/budget.ts";
import { sparsityMethod } from "./sparsity/stage.ts";
import { runModelConfig } from "./run/setup.ts";
import { longestWindow } from "./run/data.ts";

/** One row of the parameter table. */
export interface ParameterRow {
  name: string;
  shape: readonly number[];
  blocks: readonly number[];
  sparse: boolean;
  density: number;
  active: number;
  total: number;
  /** Forward multiply-adds per token when dense (0 for lookups and biases). */
  macs: number;
}

/** The table and its totals. */
export interface ParameterTable {
  family: string;
  config: unknown;
  method: string;
  rows: ParameterRow[];
  parameters: number;
  activeParameters: number;
  /** Active entries of the sparse tensors alone (the paper's parameter counts). */
  activeSparseParameters: number;
  /** Forward multiply-adds per token, dense and at the densities in force. */
  macs: number;
  activeMacs: number;
  /** The output head's f32 buffers for one training step's rows (a slice's, longest window). */
  head: HeadMemory;
}

/** The output head's buffers of a training step (`ModelFamily.headBuffers`). */
export interface HeadMemory {
  /** Sequences (the `--small-batch-size` slice when given) and the longest window. */
  B: number;
  T: number;
  buffers: { name: string; shape: number[]; bytes: number }[];
  bytes: number;
}

/**
 * The parameter table of `config`'s model on a vocabulary of `vocab` words.
 *
 * @example
 * ```ts ignore
 * const t = parameterTable(await parseTrainArgs(["--preset", "ptb-lstm-large"]), 10000);
 * t.parameters; // 66_034_000
 * ```
 */
export function parameterTable(config: TrainConfig, vocab: number): ParameterTable {
  const { family, trained } = runModelConfig(config, vocab);
  const method = sparsityMethod(config.method);
  const specs = family.paramSpecs(trained);
  const macs = new Map(family.weightMacs(trained).map((w) => [w.name, w.macs]));
  const sparse = method.sparse
    ? specs.filter((s) => s.sparse && s.shape.length === 2 && !config.denseTensors.includes(s.name))
    : [];
  const shapes = sparse.map((s) => ({ name: s.name, rows: s.shape[0], cols: s.shape[1] }));
  const init = method.init ?? config.sparseInit;
  const budgets = tensorBudgets(shapes, layerDensities(init, shapes, config.density));
  const budgetOf = new Map(sparse.map((s, i) => [s.name, budgets[i]]));
  const rows = specs.map((s): ParameterRow => {
    const total = numel(s.shape);
    const active = budgetOf.get(s.name) ?? total;
    return {
      name: s.name,
      shape: s.shape,
      blocks: s.blocks,
      sparse: budgetOf.has(s.name),
      density: active / total,
      active,
      total,
      macs: macs.get(s.name) ?? 0,
    };
  });
  const B = config.smallBatchSize ?? config.batchSize;
  const T = longestWindow(config);
  const buffers = Object.entries(family.headBuffers(trained, B * T, true))
    .map(([name, shape]) => ({ name, shape, bytes: 4 * numel(shape) }));
  return {
    family: family.name,
    config: trained,
    method: config.method,
    rows,
    parameters: rows.reduce((n, r) => n + r.total, 0),
    activeParameters: rows.reduce((n, r) => n + r.active, 0),
    activeSparseParameters: rows.reduce((n, r) => n + (r.sparse ? r.active : 0), 0),
    macs: rows.reduce((n, r) => n + r.macs, 0),
    activeMacs: rows.reduce((n, r) => n + r.macs * r.density, 0),
    head: { B, T, buffers, bytes: buffers.reduce((n, b) => n + b.bytes, 0) },
  };
}

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * The table as text (markdown), for the terminal.
 *
 * @example
 * ```ts ignore
 * console.log(parameterTableText(parameterTable(config, vocab)));
 * ```
 */
export function parameterTableText(t: ParameterTable): string {
  const lines = [
    `model ${t.family} ${JSON.stringify(t.config)}, method ${t.method}`,
    "",
    "| name | shape | row blocks | storage | density | active | total | MACs/token |",
    "|---|---|---|---|--:|--:|--:|--:|",
    ...t.rows.map((r) =>
      `| ${r.name} | ${r.shape.join(" × ")} | ${
        r.blocks.length > 1 ? `[${r.blocks.join(", ")}]` : "—"
      } | ${r.sparse ? "sparse" : "dense"} | ${r.density.toFixed(4)} | ${int(r.active)} | ${
        int(r.total)
      } | ${int(r.macs)} |`
    ),
    "",
    `parameters: ${int(t.parameters)} dense, ${int(t.activeParameters)} active (${
      (t.activeParameters / 1e6).toFixed(1)
    }M, ${(100 * t.activeParameters / t.parameters).toFixed(1)}%${
      t.activeSparseParameters
        ? `: ${int(t.activeSparseParameters)} = ${
          (t.activeSparseParameters / 1e6).toFixed(1)
        }M in the sparse tensors, ${int(t.activeParameters - t.activeSparseParameters)} dense`
        : ""
    }); forward MACs per token ` +
    `${int(t.macs)} dense, ${int(t.activeMacs)} at these densities`,
    `head buffers of a training step (${t.head.B} × ${t.head.T} rows): ${mib(t.head.bytes)} (${
      t.head.buffers.map((b) => `${b.name} [${b.shape.join(", ")}] ${mib(b.bytes)}`).join(", ")
    }); \`deno task bench memory\` measures the whole step`,
  ];
  return lines.join("\n");
}

/**
 * The table as the `--summary` JSON of a dry run (snake_case, as a run's summary).
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("dry.json", JSON.stringify(parameterTableJson(t), null, 2));
 * ```
 */
export function parameterTableJson(t: ParameterTable): Record<string, unknown> {
  return {
    "dry_run": true,
    "model": { family: t.family, config: t.config },
    "method": t.method,
    "parameters": t.parameters,
    "active_parameters": t.activeParameters,
    "active_sparse_parameters": t.activeSparseParameters,
    "forward_macs_per_token": t.macs,
    "active_forward_macs_per_token": t.activeMacs,
    "head_buffers": {
      rows: [t.head.T, t.head.B],
      bytes: t.head.bytes,
      buffers: t.head.buffers,
    },
    "tensors": t.rows.map((r) => ({
      name: r.name,
      shape: r.shape,
      "row_blocks": r.blocks,
      storage: r.sparse ? "sparse" : "dense",
      density: r.density,
      active: r.active,
      total: r.total,
      "forward_macs_per_token": r.macs,
    })),
  };
}
