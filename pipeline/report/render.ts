/**
 * Vega-Lite specs to SVG, headless (the `vega` and `vega-lite` npm packages, maintained by the
 * University of Washington IDL; no browser or canvas needed for SVG). Only the report command
 * imports this module, so `mod.ts`'s graph stays dependency-free.
 *
 * @module
 */

// pinned inline rather than in an import map: users import mod.ts by URL without one
// deno-lint-ignore no-import-prefix
import * as vega from "npm:vega@5.30.0";
// deno-lint-ignore no-import-prefix
import * as vegaLite from "npm:vega-lite@5.21.0";
import type { VegaLiteSpec } from "./report.ts";

/**
 * Renders a Vega-Lite spec to an SVG document.
 *
 * @example
 * ```ts ignore
 * const svg = await renderSvg(reportPlots(runs)["val-ppl-per-epoch"]);
 * ```
 */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const compiled = vegaLite.compile(spec as unknown as vegaLite.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
