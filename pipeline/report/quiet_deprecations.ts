/**
 * Silences Node's deprecation warnings before the plotting packages load: `vega`'s dependencies
 * require the `punycode` built-in, and its DEP0040 warning would be the report command's first
 * output line, about code users cannot change. Imported first by `report_cli.ts` (ES modules
 * evaluate in import order), and only there.
 *
 * @module
 */

import process from "node:process";

// Node documents `process.noDeprecation`; Deno's Node types omit it.
(process as { noDeprecation?: boolean }).noDeprecation = true;
