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
import { ShrinkError } from "./model_file/shrink.ts";

/** A bad command line; the message names the flag or argument. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Flags by name: valued (`--out FILE`) or switches (`--shrink`). */
export type CommandFlags = Record<string, { type: "string" | "boolean" }>;

/** Parsed flags: a valued flag's string (or undefined), whether a switch was given. */
export interface FlagValues {
  str(name: string): string | undefined;
  on(name: string): boolean;
}

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
  options: CommandFlags,
  body: (values: FlagValues, positionals: string[]) => Promise<number>,
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
    const values = parsed.values as Record<string, string | boolean | undefined>;
    const flags: FlagValues = {
      str: (name) => (typeof values[name] === "string" ? values[name] as string : undefined),
      on: (name) => values[name] === true,
    };
    return await body(flags, parsed.positionals);
  } catch (e) {
    if (
      e instanceof UsageError || e instanceof CheckpointError || e instanceof DataError ||
      e instanceof SafetensorsError || e instanceof ModelConfigError || e instanceof ConfigError ||
      e instanceof ShrinkError
    ) {
      console.error(`${name}: ${e.message}`);
      return 2;
    }
    throw e;
  }
}
