/**
 * `deno task report DIR`: an experiment's finished runs merged into the paper's table layout
 * and its plots, as data. Pure functions over the run records read by `report_cli.ts`: the
 * table (per method and optimizer over the seeds run: validation and test perplexity as
 * mean ± std, parameters, training and inference FLOPs as fractions of dense; missing and
 * failed runs marked) and Vega-Lite specs of validation perplexity per epoch, density per gate
 * over training (the "selfish" effect) and test perplexity against training FLOPs. Rendering
 * to SVG is `render.ts`'s, apart from these, so this module has no dependencies.
 *
 * @module
 */

import { toCsv } from "../csv.ts";

/** One run of an experiment as found on disk. */
export interface ReportRun {
  /** Its directory or file name. */
  name: string;
  /** Its place in the table's grid (`run.json`); runs of earlier versions sort by name. */
  index: number | null;
  /** The table block, model label and row variant (`run.json`; empty for earlier runs). */
  block: string;
  model: string;
  method: string;
  variant: string;
  optimizer: string;
  density: number | null;
  seed: number;
  status: "ok" | "failed" | "missing";
  /** The run's `summary.json` (snake_case) when it finished. */
  summary: Record<string, unknown> | null;
  note: string;
}

/** One row of the report's table: a block's method, variant, optimizer and density over seeds. */
export interface ReportRow {
  block: string;
  model: string;
  method: string;
  variant: string;
  optimizer: string;
  density: number | null;
  /** Finished runs, and all runs found. */
  done: number;
  runs: number;
  seeds: number[];
  valPpl: Stat | null;
  testPpl: Stat | null;
  activeParameters: number | null;
  parameters: number | null;
  trainFlopsXDense: number | null;
  inferenceFlopsXDense: number | null;
  hiddenSizes: string;
  note: string;
}

/** Mean and sample standard deviation (0 for one value). */
export interface Stat {
  mean: number;
  std: number;
  n: number;
}

/**
 * Mean and sample standard deviation of `xs` (finite values only); `null` when none.
 *
 * @example
 * ```ts
 * import { stat } from "./report.ts";
 * stat([1, 3]); // { mean: 2, std: 1.4142135623730951, n: 2 }
 * ```
 */
export function stat(xs: readonly number[]): Stat | null {
  const v = xs.filter(Number.isFinite);
  if (v.length === 0) return null;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const variance = v.length > 1 ? v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1) : 0;
  return { mean, std: Math.sqrt(variance), n: v.length };
}

const num = (s: Record<string, unknown> | null, key: string): number =>
  typeof s?.[key] === "number" ? s[key] as number : NaN;

/** The row a run belongs to: everything but its seed. */
const rowKey = (r: ReportRun) =>
  [r.block, r.method, r.variant, r.optimizer, r.density ?? ""].join("|");

/** A run's row as a plot label (`lstm selfish (er-init) / adam`). */
const label = (r: ReportRun | ReportRow) =>
  `${r.block ? `${r.block} ` : ""}${r.method}${
    r.variant ? ` (${r.variant})` : ""
  } / ${r.optimizer}`;

/**
 * The table rows of `runs`, in the order their row first appears.
 *
 * @example
 * ```ts ignore
 * const rows = reportRows(await readExperimentRuns("runs/t2"));
 * ```
 */
export function reportRows(runs: readonly ReportRun[]): ReportRow[] {
  const groups = new Map<string, ReportRun[]>();
  for (const r of runs) groups.set(rowKey(r), [...(groups.get(rowKey(r)) ?? []), r]);
  return [...groups.values()].map((g) => {
    const ok = g.filter((r) => r.status === "ok");
    const first = ok[0]?.summary ?? null;
    const notes = g.filter((r) => r.status !== "ok").map((r) =>
      `${r.status} seed ${r.seed}${r.note ? `: ${r.note}` : ""}`
    );
    const hidden = ok.map((r) => r.summary?.hidden_sizes).filter(Array.isArray) as number[][];
    return {
      block: g[0].block,
      model: g[0].model,
      method: g[0].method,
      variant: g[0].variant,
      optimizer: g[0].optimizer,
      density: g[0].density,
      done: ok.length,
      runs: g.length,
      seeds: g.map((r) => r.seed),
      valPpl: stat(ok.map((r) => num(r.summary, "val_ppl"))),
      testPpl: stat(ok.map((r) => num(r.summary, "test_ppl"))),
      activeParameters: first ? num(first, "active_parameters") : null,
      parameters: first ? num(first, "parameters") : null,
      trainFlopsXDense: stat(ok.map((r) => num(r.summary, "train_flops_x_dense")))?.mean ?? null,
      inferenceFlopsXDense: stat(ok.map((r) => num(r.summary, "inference_flops_x_dense")))
        ?.mean ?? null,
      hiddenSizes: hidden.map((h) => h.join("/")).join(", "),
      note: notes.join("; "),
    };
  });
}

const fmtStat = (s: Stat | null) =>
  s === null ? "—" : s.n > 1 ? `${s.mean.toFixed(2)} ± ${s.std.toFixed(2)}` : s.mean.toFixed(2);
const fmtX = (x: number | null) => (x === null || !Number.isFinite(x) ? "—" : `${x.toFixed(3)}×`);
const fmtInt = (x: number | null) =>
  x === null || !Number.isFinite(x) ? "—" : Math.round(x).toLocaleString("en-US");

/**
 * The table as markdown: validation and test perplexity (mean ± std over the finished seeds),
 * parameters, FLOPs fractions, and what is missing or failed.
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("report.md", reportMarkdown("table2", rows));
 * ```
 */
export function reportMarkdown(title: string, rows: readonly ReportRow[]): string {
  const found = findings(rows);
  const lines = [
    `# ${title}`,
    "",
    "| model | method | variant | optimizer | density | runs | val ppl | test ppl | " +
    "active / total params | train FLOPs | inference FLOPs | hidden sizes | missing, failed |",
    "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ...rows.map((r) =>
      `| ${r.model || "—"} | ${r.method} | ${r.variant || "—"} | ${r.optimizer} | ${
        r.density ?? "—"
      } | ${r.done}/${r.runs} | ${fmtStat(r.valPpl)} | ${fmtStat(r.testPpl)} | ${
        fmtInt(r.activeParameters)
      } / ${fmtInt(r.parameters)} | ${fmtX(r.trainFlopsXDense)} | ${
        fmtX(r.inferenceFlopsXDense)
      } | ${r.hiddenSizes || "—"} | ${r.note.replaceAll("|", "\\|") || "—"} |`
    ),
    "",
    "Perplexities are mean ± sample std over the finished seeds (one value when one seed); FLOPs " +
    "are fractions of the dense model's (spec §9).",
    "",
    ...(found.length ? ["## What the runs measured", "", ...found.map((f) => `- ${f}`), ""] : []),
  ];
  return lines.join("\n");
}

const rowName = (r: ReportRow) =>
  `${r.method}${r.variant ? ` (${r.variant})` : ""}${r.optimizer ? `/${r.optimizer}` : ""}`;

/**
 * What the finished rows show, per model: the rows ranked by test perplexity, and where a
 * Selfish-RNN row (its plain variant) has a result, which rows of the same optimizer at the
 * same parameter count (within 2%) it leads and trails. Measured facts, not the paper's.
 *
 * @example
 * ```ts ignore
 * findings(rows); // ["stacked LSTM: by test ppl, rigl/adam 5.85 < selfish/adam 5.91 < ..."]
 * ```
 */
export function findings(rows: readonly ReportRow[]): string[] {
  const out: string[] = [];
  const models = [...new Set(rows.map((r) => r.block))];
  for (const block of models) {
    const mine = rows.filter((r) => r.block === block && r.testPpl !== null);
    if (mine.length < 2) continue;
    const name = mine[0].model || block || "runs";
    const ranked = [...mine].sort((a, b) => a.testPpl!.mean - b.testPpl!.mean);
    out.push(
      `${name}: by test ppl, ${
        ranked.map((r) => `${rowName(r)} ${r.testPpl!.mean.toFixed(2)}`).join(" < ")
      }`,
    );
    for (const self of mine.filter((r) => r.method === "selfish" && !r.variant)) {
      const p = self.activeParameters ?? NaN;
      const peers = mine.filter((r) =>
        r !== self && r.optimizer === self.optimizer && r.method !== "selfish" &&
        Math.abs((r.activeParameters ?? NaN) - p) <= 0.02 * p
      );
      if (peers.length === 0) continue;
      const t = self.testPpl!.mean;
      const list = (xs: ReportRow[]) =>
        xs.map((r) => `${r.method} (${r.testPpl!.mean.toFixed(2)})`).join(", ") || "none";
      out.push(
        `${name}, ${self.optimizer}: Selfish-RNN at ${t.toFixed(2)} test ppl leads ${
          list(peers.filter((r) => r.testPpl!.mean > t))
        }; trails ${list(peers.filter((r) => r.testPpl!.mean <= t))} ` +
          `(the rows with its ${fmtInt(p)} active parameters, ±2%)`,
      );
    }
  }
  return out;
}

/**
 * The table as CSV (one row per method and optimizer).
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("report.csv", reportCsv(rows));
 * ```
 */
export function reportCsv(rows: readonly ReportRow[]): string {
  const cols = [
    "model",
    "method",
    "variant",
    "optimizer",
    "density",
    "done",
    "runs",
    "seeds",
    "val_ppl_mean",
    "val_ppl_std",
    "test_ppl_mean",
    "test_ppl_std",
    "active_parameters",
    "parameters",
    "train_flops_x_dense",
    "inference_flops_x_dense",
    "hidden_sizes",
    "note",
  ];
  return toCsv(
    cols,
    rows.map((r) => ({
      model: r.model,
      method: r.method,
      variant: r.variant,
      optimizer: r.optimizer,
      density: r.density,
      done: r.done,
      runs: r.runs,
      seeds: r.seeds.join(" "),
      "val_ppl_mean": r.valPpl?.mean ?? null,
      "val_ppl_std": r.valPpl?.std ?? null,
      "test_ppl_mean": r.testPpl?.mean ?? null,
      "test_ppl_std": r.testPpl?.std ?? null,
      "active_parameters": r.activeParameters,
      parameters: r.parameters,
      "train_flops_x_dense": r.trainFlopsXDense,
      "inference_flops_x_dense": r.inferenceFlopsXDense,
      "hidden_sizes": r.hiddenSizes,
      note: r.note,
    })),
  );
}

/** A Vega-Lite specification (plain JSON). */
export type VegaLiteSpec = Record<string, unknown>;

const SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json";

/**
 * The plots of a report, by file stem: per model block when the runs hold several
 * (`val-ppl-per-epoch-lstm`, ...), since their perplexities and tensors differ.
 *
 * @example
 * ```ts ignore
 * Object.keys(reportPlots(runs)); // ["val-ppl-per-epoch", "density-per-gate", ...]
 * ```
 */
export function reportPlots(runs: readonly ReportRun[]): Record<string, VegaLiteSpec> {
  const blocks = [...new Set(runs.map((r) => r.block))];
  if (blocks.length <= 1) return blockPlots(runs, "");
  return Object.fromEntries(blocks.flatMap((b) => {
    const mine = runs.filter((r) => r.block === b);
    return Object.entries(blockPlots(mine, ` (${mine[0].model || b})`)).map(([stem, spec]) => [
      `${stem}-${b}`,
      spec,
    ]);
  }));
}

/** One colour per run label: 20 of them (a table's 11 methods), labels in full. */
const RUN_COLOR = {
  field: "run",
  type: "nominal",
  scale: { scheme: "tableau20" },
  legend: { labelLimit: 400 },
} as const;

function blockPlots(runs: readonly ReportRun[], titleSuffix: string): Record<string, VegaLiteSpec> {
  const ok = runs.filter((r) => r.status === "ok" && r.summary);
  const perEpoch = ok.flatMap((r) =>
    ((r.summary!.epoch_val_ppl as number[] | undefined) ?? []).map((ppl, i) => ({
      run: label(r),
      seed: r.seed,
      epoch: i + 1,
      ppl,
    }))
  );
  const flops = ok.map((r) => ({
    run: label(r),
    seed: r.seed,
    "train_flops_x_dense": num(r.summary, "train_flops_x_dense"),
    "test_ppl": num(r.summary, "test_ppl"),
  })).filter((d) => Number.isFinite(d.test_ppl) && Number.isFinite(d.train_flops_x_dense));
  const gates = ok.flatMap((r) => {
    const ups = (r.summary!.connectivity_updates as Record<string, unknown>[] | undefined) ?? [];
    // runs from before summaries named their gates show numbered blocks
    const names = (r.summary!.gate_names as Record<string, string[]> | undefined) ?? {};
    return ups.flatMap((u) => {
      const per = u.density_per_gate as Record<string, number[]> | null | undefined;
      if (!per) return [];
      return Object.entries(per).filter(([, g]) => g.length > 1).flatMap(([tensor, g]) =>
        g.map((density, gate) => ({
          run: label(r),
          seed: r.seed,
          step: u.step as number,
          tensor,
          gate: names[tensor]?.[gate] ?? `block ${gate}`,
          density,
        }))
      );
    });
  });
  return {
    "val-ppl-per-epoch": {
      $schema: SCHEMA,
      title: `Validation perplexity at each epoch end${titleSuffix}`,
      width: 480,
      height: 300,
      data: { values: perEpoch },
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "epoch", type: "ordinal" },
        // the data's own range: a padded decade would flatten the final epochs' differences
        y: { field: "ppl", type: "quantitative", scale: { type: "log", nice: false } },
        color: RUN_COLOR,
        detail: { field: "seed", type: "nominal" },
      },
    },
    "density-per-gate": {
      $schema: SCHEMA,
      title: `Density per row block (gate) after each connectivity update${titleSuffix}`,
      data: { values: gates },
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "step", type: "quantitative" },
        y: { field: "density", type: "quantitative", scale: { zero: false } },
        color: { field: "gate", type: "nominal" },
        detail: { field: "seed", type: "nominal" },
        row: { field: "run", type: "nominal" },
        column: { field: "tensor", type: "nominal" },
      },
      resolve: { scale: { y: "independent" } },
    },
    "test-ppl-vs-train-flops": {
      $schema: SCHEMA,
      title: `Test perplexity against training FLOPs (fraction of dense)${titleSuffix}`,
      width: 480,
      height: 300,
      data: { values: flops },
      mark: { type: "point", filled: true, size: 80 },
      encoding: {
        x: { field: "train_flops_x_dense", type: "quantitative", title: "training FLOPs × dense" },
        y: { field: "test_ppl", type: "quantitative", title: "test ppl", scale: { zero: false } },
        color: RUN_COLOR,
        shape: { field: "run", type: "nominal" },
      },
    },
  };
}

/**
 * The page that shows the table and the plots together.
 *
 * @example
 * ```ts ignore
 * await Deno.writeTextFile("index.html", reportHtml("t2", rows, ["val-ppl-per-epoch.svg"]));
 * ```
 */
export function reportHtml(title: string, rows: readonly ReportRow[], svgs: string[]): string {
  const found = findings(rows);
  const esc = (s: string) =>
    s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
  const cells = (xs: string[], tag: string) => xs.map((x) => `<${tag}>${esc(x)}</${tag}>`).join("");
  const head = [
    "model",
    "method",
    "variant",
    "optimizer",
    "density",
    "runs",
    "val ppl",
    "test ppl",
    "active / total params",
    "train FLOPs",
    "inference FLOPs",
    "hidden sizes",
    "missing, failed",
  ];
  const body = rows.map((r) =>
    `<tr>${
      cells([
        r.model || "—",
        r.method,
        r.variant || "—",
        r.optimizer,
        r.density === null ? "—" : String(r.density),
        `${r.done}/${r.runs}`,
        fmtStat(r.valPpl),
        fmtStat(r.testPpl),
        `${fmtInt(r.activeParameters)} / ${fmtInt(r.parameters)}`,
        fmtX(r.trainFlopsXDense),
        fmtX(r.inferenceFlopsXDense),
        r.hiddenSizes || "—",
        r.note || "—",
      ], "td")
    }</tr>`
  );
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:nth-child(-n+4){text-align:left}</style>
</head><body>
<h1>${esc(title)}</h1>
<table><tr>${cells(head, "th")}</tr>
${body.join("\n")}
</table>
<p>Perplexities: mean ± sample std over the finished seeds. FLOPs: fractions of dense.</p>
${
    found.length
      ? `<h2>What the runs measured</h2>\n<ul>${
        found.map((f) => `<li>${esc(f)}</li>`).join("\n")
      }</ul>`
      : ""
  }
${svgs.map((f) => `<h2>${esc(f.replace(/\.svg$/, ""))}</h2>\n<img src="${esc(f)}">`).join("\n")}
</body></html>
`;
}
