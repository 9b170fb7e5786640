/**
 * The one-call entry for library users: settings named as `deno task train`'s flags in, a
 * trained model's summary out. Defaults, presets and checks are the CLI's
 * (`config.ts` {@linkcode trainConfig}), so a script that imports `mod.ts` by URL writes
 *
 * ```ts ignore
 * import { trainModel } from "https://.../mod.ts";
 * const s = await trainModel({ model: "rhn", preset: "ptb-rhn-small", data: "ptb", method: "selfish" });
 * console.log(s.testPpl);
 * ```
 *
 * @module
 */

import { parseAdapterPreference, parseKernelVariant } from "../kernels/runtime/device.ts";
import { Gpu } from "../kernels/runtime/runtime.ts";
import { trainConfig } from "./config.ts";
import type { ProgressPrinter } from "./progress.ts";
import { loadTrainingData, train, type TrainingData, type TrainSummary } from "./train.ts";

/**
 * Trains with `settings` (flag names, e.g. `{ preset: "ptb-lstm-small", "max-steps": 200 }`)
 * and returns the summary. Opens the GPU the settings name (`adapter`, `variant`) unless
 * `opts.gpu` is given, and loads `data` (the synthetic corpus without it) unless `opts.data`
 * is given. Bad settings throw `ConfigError` naming the setting.
 *
 * @example
 * ```ts ignore
 * const summary = await trainModel({ method: "selfish", density: 0.33 });
 * ```
 */
export async function trainModel(
  settings: Readonly<Record<string, unknown>> = {},
  opts: { gpu?: Gpu; data?: TrainingData; printer?: ProgressPrinter } = {},
): Promise<TrainSummary> {
  const config = trainConfig(settings);
  const gpu = opts.gpu ?? await Gpu.create({
    adapter: config.adapter ? parseAdapterPreference(config.adapter, "adapter") : undefined,
    variant: config.variant ? parseKernelVariant(config.variant, "variant") : undefined,
  });
  const data = opts.data ?? await loadTrainingData(config);
  return await train(gpu, config, data, opts.printer);
}
