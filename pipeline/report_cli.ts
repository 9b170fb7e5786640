/**
 * `deno task report DIR [--out DIR2] [--title TEXT]`: merges the runs of an experiment
 * directory that have finished into `report.md`, `report.csv`, SVG plots and `index.html`
 * (`report/report.ts`), in `DIR/report` unless `--out` says otherwise; rerun it while a sweep
 * runs to see what has finished. Bad input: one message, exit 2.
 *
 * @module
 */

import "./report/quiet_deprecations.ts"; // before render.ts's npm packages
import { writeAtomic } from "./atomic.ts";
import { runCommand, UsageError } from "./command.ts";
import { readExperimentRuns } from "./report/runs.ts";
import { reportCsv, reportHtml, reportMarkdown, reportPlots, reportRows } from "./report/report.ts";
import { renderSvg } from "./report/render.ts";

const USAGE = `usage: deno task report DIR [--out DIR] [--title TEXT]

Merges the finished runs of an experiment directory (deno task experiment --out DIR) into
report.md, report.csv, val-ppl-per-epoch.svg, density-per-gate.svg,
test-ppl-vs-train-flops.svg and index.html (default: DIR/report). Missing and failed runs are
marked; perplexities are mean ± std over the seeds.`;

/** Runs the CLI; returns the process exit code. */
export function main(argv: string[]): Promise<number> {
  const flags = { out: { type: "string" }, title: { type: "string" } } as const;
  return runCommand("report", USAGE, argv, flags, async (v, positionals) => {
    if (positionals.length !== 1) {
      throw new UsageError(`expected one experiment directory, got ${positionals.length}`);
    }
    const dir = positionals[0];
    try {
      if (!(await Deno.stat(dir)).isDirectory) throw new UsageError(`${dir}: not a directory`);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`${dir}: ${(e as Error).message}`);
    }
    const runs = await readExperimentRuns(dir);
    if (runs.length === 0) throw new UsageError(`${dir}: no experiment runs found`);
    const out = v.str("out") ?? `${dir}/report`;
    const title = v.str("title") ?? dir.replace(/\/+$/, "").split("/").pop()!;
    await Deno.mkdir(out, { recursive: true });
    const rows = reportRows(runs);
    await writeAtomic(`${out}/report.md`, reportMarkdown(title, rows));
    await writeAtomic(`${out}/report.csv`, reportCsv(rows));
    const svgs: string[] = [];
    for (const [stem, spec] of Object.entries(reportPlots(runs))) {
      const values = (spec.data as { values: unknown[] }).values;
      if (values.length === 0) continue;
      await writeAtomic(`${out}/${stem}.svg`, await renderSvg(spec));
      svgs.push(`${stem}.svg`);
    }
    await writeAtomic(`${out}/index.html`, reportHtml(title, rows, svgs));
    const done = runs.filter((r) => r.status === "ok").length;
    console.log(
      `report of ${dir}: ${done} of ${runs.length} runs finished; wrote ${out}/report.md, ` +
        `report.csv, ${svgs.join(", ")}${svgs.length ? ", " : ""}index.html`,
    );
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
