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
  method: string;
  optimizer: string;
  seed: number;
  status: "ok" | "failed" | "missing";
  /** The run's `summary.json` (snake_case) when it finished. */
  summary: Record<string, unknown> | null;
  note: string;
}

/** One row of the report's table: a method and optimizer over its seeds. */
export interface ReportRow {
  method: string;
  optimizer: string;
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

/**
 * The table rows of `runs`, in the order their method/optimizer first appears.
 *
 * @example
 * ```ts ignore
 * const rows = reportRows(await readExperimentRuns("runs/t2"));
 * ```
 */
export function reportRows(runs: readonly ReportRun[]): ReportRow[] {
  const groups = new Map<string, ReportRun[]>();
  for (const r of runs) {
    const key = `${r.method}/${r.optimizer}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((g) => {
    const ok = g.filter((r) => r.status === "ok");
    const first = ok[0]?.summary ?? null;
    const notes = g.filter((r) => r.status !== "ok").map((r) =>
      `${r.status} seed ${r.seed}${r.note ? `: ${r.note}` : ""}`
    );
    const hidden = ok.map((r) => r.summary?.hidden_sizes).filter(Array.isArray) as number[][];
    return {
      method: g[0].method,
      optimizer: g[0].optimizer,
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
 * await Deno.writeTextFile("report.md", reportMarkdown("table2-small", rows));
 * ```
 */
export function reportMarkdown(title: string, rows: readonly ReportRow[]): string {
  const lines = [
    `# ${title}`,
    "",
    "| method | optimizer | runs | val ppl | test ppl | active / total params | train FLOPs | " +
    "inference FLOPs | hidden sizes | missing, failed |",
    "|---|---|--:|--:|--:|--:|--:|--:|---|---|",
    ...rows.map((r) =>
      `| ${r.method} | ${r.optimizer} | ${r.done}/${r.runs} | ${fmtStat(r.valPpl)} | ${
        fmtStat(r.testPpl)
      } | ${fmtInt(r.activeParameters)} / ${fmtInt(r.parameters)} | ${fmtX(r.trainFlopsXDense)} | ${
        fmtX(r.inferenceFlopsXDense)
      } | ${r.hiddenSizes || "—"} | ${r.note.replaceAll("|", "\\|") || "—"} |`
    ),
    "",
    "Perplexities are mean ± sample std over the finished seeds (one value when one seed); FLOPs " +
    "are fractions of the dense model's (spec §9).",
    "",
  ];
  return lines.join("\n");
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
    "method",
    "optimizer",
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
      method: r.method,
      optimizer: r.optimizer,
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

const label = (r: ReportRun) => `${r.method}/${r.optimizer}`;
const SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json";

/** The plots of a report, by file stem. */
export function reportPlots(runs: readonly ReportRun[]): Record<string, VegaLiteSpec> {
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
    return ups.flatMap((u) => {
      const per = u.density_per_gate as Record<string, number[]> | null | undefined;
      if (!per) return [];
      return Object.entries(per).filter(([, g]) => g.length > 1).flatMap(([tensor, g]) =>
        g.map((density, gate) => ({
          run: label(r),
          seed: r.seed,
          step: u.step as number,
          tensor,
          gate: `block ${gate}`,
          density,
        }))
      );
    });
  });
  return {
    "val-ppl-per-epoch": {
      $schema: SCHEMA,
      title: "Validation perplexity at each epoch end",
      width: 480,
      height: 300,
      data: { values: perEpoch },
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "epoch", type: "ordinal" },
        y: { field: "ppl", type: "quantitative", scale: { type: "log" } },
        color: { field: "run", type: "nominal" },
        detail: { field: "seed", type: "nominal" },
      },
    },
    "density-per-gate": {
      $schema: SCHEMA,
      title: "Density per row block (gate) after each connectivity update",
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
      title: "Test perplexity against training FLOPs (fraction of dense)",
      width: 480,
      height: 300,
      data: { values: flops },
      mark: { type: "point", filled: true, size: 80 },
      encoding: {
        x: { field: "train_flops_x_dense", type: "quantitative", title: "training FLOPs × dense" },
        y: { field: "test_ppl", type: "quantitative", title: "test ppl", scale: { zero: false } },
        color: { field: "run", type: "nominal" },
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
  const esc = (s: string) =>
    s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
  const cells = (xs: string[], tag: string) => xs.map((x) => `<${tag}>${esc(x)}</${tag}>`).join("");
  const head = [
    "method",
    "optimizer",
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
        r.method,
        r.optimizer,
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
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,td:nth-child(2){text-align:left}</style>
</head><body>
<h1>${esc(title)}</h1>
<table><tr>${cells(head, "th")}</tr>
${body.join("\n")}
</table>
<p>Perplexities: mean ± sample std over the finished seeds. FLOPs: fractions of dense.</p>
${svgs.map((f) => `<h2>${esc(f.replace(/\.svg$/, ""))}</h2>\n<img src="${esc(f)}">`).join("\n")}
</body></html>
`;
}
