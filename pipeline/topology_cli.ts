/**
 * `deno task topology A.ckpt B.ckpt`: sparse topology distance (NNSTD, spec §10.1) between the
 * masks of two checkpoints. Prints a markdown table (one row per tensor, then the means) and a
 * one-line JSON summary; `--json` prints only the full result as one JSON line. Bad input (missing
 * or corrupt file, no masks in common, mismatched shapes, bad flags) → one message, exit code 2.
 *
 * @module
 */

import { CheckpointError, readCheckpoint } from "./checkpoint.ts";
import { rowBlocksOf, topologyDistance, TopologyError, type TopologyResult } from "./topology.ts";

/** `--help` text. */
export const TOPOLOGY_USAGE = `usage: deno task topology [options] A.ckpt B.ckpt

Sparse topology distance (NNSTD) between the masks (<param>#mask) of two checkpoints.
Per tensor: rows = output neurons, each the set of active input columns; neuron distance =
Jaccard distance; "identity" matches row i with row i (same initialisation), "assignment" is
the optimal one-to-one row matching (Hungarian), within each row block (LSTM gates, RHN H and T) the checkpoint records.

options:
  --json               print only the full result as one JSON line
  --include-dense      also compare parameters without a mask as dense (all ones)
  --max-assignment N   largest row count (per row block) to solve the assignment for
                       (default 1500; O(N^3) time, 8·N^2 bytes); larger ones: identity only
  --whole-tensor       match whole tensors, not per row block
  --help               this text
`;

class UsageError extends Error {}

interface CliArgs {
  a: string;
  b: string;
  json: boolean;
  includeDense: boolean;
  maxAssignment: number;
  wholeTensor: boolean;
}

function parseArgs(args: string[]): CliArgs | "help" {
  const files: string[] = [];
  const out = { json: false, includeDense: false, maxAssignment: 1500, wholeTensor: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--help" || arg === "-h") return "help";
    else if (arg === "--json") out.json = true;
    else if (arg === "--include-dense") out.includeDense = true;
    else if (arg === "--whole-tensor") out.wholeTensor = true;
    else if (arg === "--max-assignment" || arg.startsWith("--max-assignment=")) {
      const v = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[++i];
      if (v === undefined || !/^\d+$/.test(v)) {
        throw new UsageError(
          `--max-assignment needs a non-negative integer, got ${v ?? "nothing"}`,
        );
      }
      out.maxAssignment = Number(v);
    } else if (arg.startsWith("-") && arg !== "-") throw new UsageError(`unknown option ${arg}`);
    else files.push(arg);
  }
  if (files.length !== 2) {
    throw new UsageError(`expected two checkpoint files, got ${files.length}`);
  }
  return { a: files[0], b: files[1], ...out };
}

const fmt = (x: number | null) => (x === null ? "—" : x.toFixed(4));

/**
 * The markdown table of a result: one row per tensor, then a mean row.
 *
 * @example
 * ```ts
 * import { topologyTable } from "./topology_cli.ts";
 * topologyTable({
 *   tensors: [], meanIdentity: 0, meanAssignment: null, assignmentComplete: true, skipped: [],
 * }).startsWith("| tensor |"); // true
 * ```
 */
export function topologyTable(r: TopologyResult): string {
  const lines = [
    "| tensor | rows × cols | density A | density B | identity | assignment | note |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const t of r.tensors) {
    lines.push(
      `| ${t.name} | ${t.rows} × ${t.cols} | ${fmt(t.densityA)} | ${fmt(t.densityB)} | ` +
        `${fmt(t.identity)} | ${fmt(t.assignment)} | ${t.note} |`,
    );
  }
  const partial = r.meanAssignment !== null && !r.assignmentComplete
    ? "identity used where the assignment was skipped (upper bound)"
    : "";
  lines.push(
    `| **mean** (${r.tensors.length} tensors) | | | | ${fmt(r.meanIdentity)} | ` +
      `${fmt(r.meanAssignment)} | ${partial} |`,
  );
  return lines.join("\n");
}

/**
 * Runs the CLI on `args`; returns the exit code (0, or 2 for bad input). Output goes to
 * stdout, errors and progress to stderr.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await topologyMain(["--json", "a.ckpt", "b.ckpt"]));
 * ```
 */
export async function topologyMain(args: string[]): Promise<number> {
  let parsed: CliArgs | "help";
  try {
    parsed = parseArgs(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`topology: ${e.message}\n\n${TOPOLOGY_USAGE}`);
    return 2;
  }
  if (parsed === "help") {
    console.log(TOPOLOGY_USAGE);
    return 0;
  }
  const { a, b } = parsed;
  try {
    const [ca, cb] = await Promise.all([readCheckpoint(a), readCheckpoint(b)]);
    const progress = Deno.stderr.isTerminal();
    const result = topologyDistance(ca.tensors, cb.tensors, {
      includeDense: parsed.includeDense,
      maxAssignment: parsed.maxAssignment,
      blocks: parsed.wholeTensor ? undefined : rowBlocksOf(ca.meta),
      labels: [a, b],
      onTensor: progress
        ? (name, i, n) => console.error(`comparing ${name} (${i + 1}/${n})`)
        : undefined,
    });
    if (parsed.json) {
      console.log(JSON.stringify({ a, b, ...result }));
      return 0;
    }
    console.log(`# Sparse topology distance\n\nA = ${a}\nB = ${b}\n`);
    console.log(topologyTable(result));
    for (const s of result.skipped) console.log(`\nnot compared: ${s.name} (${s.reason})`);
    console.log(
      "\n" + JSON.stringify({
        a,
        b,
        tensors: result.tensors.length,
        meanIdentity: result.meanIdentity,
        meanAssignment: result.meanAssignment,
        assignmentComplete: result.assignmentComplete,
      }),
    );
    return 0;
  } catch (e) {
    if (e instanceof CheckpointError || e instanceof TopologyError) {
      console.error(`topology: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await topologyMain(Deno.args));
