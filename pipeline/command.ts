/**
 * The frame of the model-file commands (`export_cli.ts`, `eval_cli.ts`): `--help`, strict flag
 * parsing, and every input error (a usage, checkpoint, data, model-file or model-config error)
 * as one line `<command>: <message>` and exit code 2.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { CheckpointError } from "./checkpoint.ts";
import { ConfigError } from "./config.ts";
import { DataError } from "./data/errors.ts";
import { SafetensorsError } from "./model_file/safetensors.ts";
import { ModelConfigError } from "../models/model.ts";

/** A bad command line; the message names the flag or argument. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** String flags by name (booleans are not needed by these commands). */
export type StringFlags = Record<string, { type: "string" }>;

/**
 * Parses `argv` against `options` and runs `body`; returns its exit code, 0 after `--help`, or
 * 2 after an input error (printed as `<name>: <message>`).
 *
 * @example
 * ```ts ignore
 * Deno.exit(await runCommand("eval", USAGE, Deno.args, { split: { type: "string" } }, body));
 * ```
 */
export async function runCommand(
  name: string,
  usage: string,
  argv: string[],
  options: StringFlags,
  body: (values: Record<string, string | undefined>, positionals: string[]) => Promise<number>,
): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(usage);
    return 0;
  }
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    return await body(parsed.values as Record<string, string | undefined>, parsed.positionals);
  } catch (e) {
    if (
      e instanceof UsageError || e instanceof CheckpointError || e instanceof DataError ||
      e instanceof SafetensorsError || e instanceof ModelConfigError || e instanceof ConfigError
    ) {
      console.error(`${name}: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
