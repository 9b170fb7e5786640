/**
 * The GPU flags every command shares (`--adapter`, `--variant`) and the one way commands open
 * the GPU: a bad flag or a missing adapter becomes a message on stderr and exit code 2.
 *
 * @module
 */

import {
  describeAdapter,
  GpuUnavailableError,
  parseAdapterPreference,
  parseKernelVariant,
} from "../kernels/runtime/device.ts";
import { Gpu } from "../kernels/runtime/runtime.ts";

/** `node:util` parseArgs option declarations of the GPU flags. */
export const GPU_FLAG_OPTIONS = {
  adapter: { type: "string" },
  variant: { type: "string" },
} as const;

/** Usage text of the GPU flags. */
export const GPU_FLAG_USAGE = "[--adapter auto|hardware|software] [--variant auto|regblock|tiled]";

/**
 * Opens the GPU from parsed flags and prints the adapter line; on failure prints
 * `<command>: <reason>` and returns the exit code instead.
 *
 * @example
 * ```ts ignore
 * const gpu = await openGpuFromFlags("bench", values);
 * if (typeof gpu === "number") return gpu;
 * ```
 */
export async function openGpuFromFlags(
  command: string,
  flags: { adapter?: string; variant?: string },
): Promise<Gpu | number> {
  try {
    const gpu = await Gpu.create({
      adapter: flags.adapter ? parseAdapterPreference(flags.adapter, "--adapter") : undefined,
      variant: flags.variant ? parseKernelVariant(flags.variant, "--variant") : undefined,
    });
    console.log(`adapter: ${describeAdapter(gpu.report)}`);
    return gpu;
  } catch (e) {
    console.error(`${command}: ${(e as Error).message}`);
    return e instanceof GpuUnavailableError || e instanceof RangeError ? 2 : 1;
  }
}
