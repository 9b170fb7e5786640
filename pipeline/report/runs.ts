/**
 * The runs of an experiment directory, as `report.ts` reads them: one directory per run
 * (`run.json` its place in the table, `config.json`, `summary.json` once finished; the runner
 * in `experiment.ts`), or the flat `<method>-<optimizer>.json` summaries of earlier versions.
 * A run with a config but no summary is missing (noted with the last step its log reached), or
 * failed when its directory holds the runner's `failed.json` (with its note); so is every run
 * of the sweep's `plan.json` (its grid, written as it starts) without a directory yet (a Slurm
 * task still queued, the rest of an interrupted local sweep).
 *
 * @module
 */

import type { ReportRun } from "./report.ts";

async function readJson(path: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/**
 * What a started run without a summary has done: the last step its log reached (it is still
 * running, or stopped there; the sweep's rerun resumes it from its checkpoint).
 */
async function startedNote(logPath: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(logPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "started, nothing logged yet";
    throw e;
  }
  const last = text.trimEnd().split("\n").at(-1) ?? "";
  const step = Number(last.split(",")[0]);
  return Number.isInteger(step) && step > 0
    ? `started, logged to step ${step} (running, or stopped there)`
    : "started, nothing logged yet";
}

/**
 * Every run found under `dir`, in table order (`run.json`'s index; by name where it is absent).
 *
 * @example
 * ```ts ignore
 * const runs = await readExperimentRuns("runs/t2");
 * ```
 */
export async function readExperimentRuns(dir: string): Promise<ReportRun[]> {
  const runs: ReportRun[] = [];
  const entries = [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    if (e.isDirectory) {
      const config = await readJson(`${dir}/${e.name}/config.json`);
      if (!config) continue;
      const summary = await readJson(`${dir}/${e.name}/summary.json`);
      const failed = summary ? null : await readJson(`${dir}/${e.name}/failed.json`);
      const place = await readJson(`${dir}/${e.name}/run.json`);
      runs.push({
        name: e.name,
        index: typeof place?.index === "number" ? place.index : null,
        block: String(place?.block ?? ""),
        model: String(place?.model ?? ""),
        method: String(config.method),
        variant: String(place?.variant ?? ""),
        optimizer: String(config.optimizer),
        density: typeof place?.density === "number" ? place.density : null,
        seed: Number(config.seed),
        status: summary ? "ok" : failed ? "failed" : "missing",
        summary,
        note: failed
          ? String(failed.note)
          : summary
          ? ""
          : await startedNote(`${dir}/${e.name}/log.csv`),
      });
    } else if (e.isFile && e.name.endsWith(".json")) {
      const s = await readJson(`${dir}/${e.name}`);
      const config = s?.config as Record<string, unknown> | undefined;
      if (!s || !config || typeof s.val_ppl !== "number") continue;
      runs.push({
        name: e.name,
        index: null,
        block: "",
        model: "",
        method: String(config.method),
        variant: "",
        optimizer: String(config.optimizer),
        density: null,
        seed: Number(config.seed),
        status: "ok",
        summary: s,
        note: "",
      });
    }
  }
  const plan = await readJson(`${dir}/plan.json`);
  const found = new Set(runs.map((r) => r.name));
  for (const p of (plan?.runs ?? []) as Record<string, unknown>[]) {
    const name = String(p.key);
    if (found.has(name)) continue;
    runs.push({
      name,
      index: typeof p.index === "number" ? p.index : null,
      block: String(p.block ?? ""),
      model: String(p.model ?? ""),
      method: String(p.method),
      variant: String(p.variant ?? ""),
      optimizer: String(p.optimizer),
      density: typeof p.density === "number" ? p.density : null,
      seed: Number(p.seed),
      status: "missing",
      summary: null,
      note: "not started",
    });
  }
  // table order where the runs know it (a stable sort keeps the rest by name)
  return runs.sort((a, b) => (a.index ?? Infinity) - (b.index ?? Infinity));
}
