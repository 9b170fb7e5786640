/**
 * `--init-from FILE`: a fresh run starts from a model file's weights instead of its seed's
 * initialisation (pruning a dense model with `gmp`, continuing a sparse model with its masks).
 * Every tensor of the run's model must be in the file under its state-dict key with its shape
 * (`model_file/model_file.ts`). A tensor the run masks takes the file's mask when the file has
 * one (it must keep as many weights as the run starts with: the method's budget) and otherwise
 * keeps the run's initial mask over the file's weights; a dense run takes the weights as they
 * are (zeros stay zeros, free to grow).
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import { mul } from "../../kernels/dense/elementwise.ts";
import type { AnyModelFamily, Model } from "../../models/model.ts";
import { ConfigError } from "../config.ts";
import { MODEL_FILE_FORMAT, modelWeightsFromFile } from "../model_file/model_file.ts";
import { readSafetensors, type SafetensorsContents } from "../model_file/safetensors.ts";
import type { SparsityState } from "../sparsity/stage.ts";

/** A model file read for `--init-from`. */
export interface InitWeights {
  path: string;
  contents: SafetensorsContents;
}

/**
 * Reads a model file for `--init-from`; a malformed one is a {@linkcode ConfigError} naming it.
 *
 * @example
 * ```ts ignore
 * const init = await readInitWeights("model.safetensors");
 * ```
 */
export async function readInitWeights(path: string): Promise<InitWeights> {
  try {
    return { path, contents: await readSafetensors(path) };
  } catch (e) {
    throw new ConfigError(`--init-from ${(e as Error).message}`);
  }
}

/**
 * Writes the file's weights (and masks) into the fresh run's model; returns what it did, for
 * the log. Throws {@linkcode ConfigError} naming the file and the tensor that does not fit.
 *
 * @example
 * ```ts ignore
 * const note = applyInitWeights(gpu, model, family, trained, sparsity, init);
 * ```
 */
export function applyInitWeights(
  gpu: Gpu,
  model: Model,
  family: AnyModelFamily,
  config: unknown,
  sparsity: SparsityState,
  init: InitWeights,
): string {
  const { path, contents } = init;
  const md = contents.metadata;
  if (md.format === MODEL_FILE_FORMAT && md.family !== family.name) {
    throw new ConfigError(
      `--init-from ${path}: holds a ${md.family} model, this run is --model ${family.name}`,
    );
  }
  let weights;
  try {
    weights = modelWeightsFromFile(contents, family, config, path);
  } catch (e) {
    throw new ConfigError(`--init-from ${(e as Error).message}`);
  }
  let withMasks = 0, ignoredMasks = 0;
  for (const p of model.params) {
    gpu.write(p.value, weights.values.get(p.name)!);
    const fileMask = weights.masks.get(p.name);
    if (!p.mask) {
      if (fileMask) ignoredMasks++;
      continue;
    }
    const info = sparsity.tensors.find((t) => t.name === p.name)!;
    if (fileMask) {
      const kept = fileMask.reduce((n, m) => n + m, 0);
      if (kept !== info.nnz) {
        throw new ConfigError(
          `--init-from ${path}: tensor ${p.name}: its mask keeps ${kept} of ${info.numel} ` +
            `weights, this run starts it with ${info.nnz} (--method ${sparsity.settings.method} ` +
            `--density ${sparsity.settings.density})`,
        );
      }
      gpu.write(p.mask, fileMask);
      withMasks++;
    } else {
      mul(gpu, { a: p.value, b: p.mask, out: p.value });
    }
  }
  return `initialised from ${path}: ${weights.values.size} tensors` +
    (withMasks ? `, ${withMasks} with the file's masks` : "") +
    (ignoredMasks ? `; ${ignoredMasks} masks unused (the run trains those tensors dense)` : "");
}
