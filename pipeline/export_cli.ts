/**
 * `deno task export RUN.ckpt --out model.safetensors [--vocab-out vocab.txt] [--data DIR]`:
 * writes a run's tested (best) weights as a safetensors file under the reference
 * implementation's PyTorch names (`model_file.ts`), atomically; `--vocab-out` writes the word
 * list, one a line in id order. The vocabulary comes from the run's data (`--data` when it has
 * moved); its size must match the model's. Bad input: one message naming the file, exit 2,
 * nothing written.
 *
 * @module
 */

import { writeAtomic, writeAtomicBytes } from "./atomic.ts";
import { readCheckpoint } from "./checkpoint.ts";
import { runCommand, UsageError } from "./command.ts";
import { modelFileContents, vocabularyHash } from "./model_file/model_file.ts";
import { shrinkModel } from "./model_file/shrink.ts";
import { encodeSafetensors, SafetensorsError } from "./model_file/safetensors.ts";
import { modelData, modelFromCheckpoint } from "./saved_model.ts";

const USAGE =
  `usage: deno task export RUN.ckpt --out FILE.safetensors [--vocab-out FILE] [--data DIR] [--shrink]

Writes the run's tested (best) weights as safetensors under the reference PyTorch names (the
README lists them per model): sparse tensors dense with zeros at inactive positions, each mask
as <key>.mask (U8), metadata with the model family, config, method, densities and vocabulary.

  --out FILE        the safetensors file (written atomically)
  --vocab-out FILE  also write the vocabulary, one word a line in id order
  --data DIR        the run's data directory, when it is no longer where the run named it
  --shrink          write a structured-sparse (ISS) model as the smaller dense model it is: the
                    removed hidden units cut out (smaller layers padded with zero units)`;

/** Runs the CLI; returns the process exit code. */
export function main(argv: string[]): Promise<number> {
  const flags = {
    out: { type: "string" },
    "vocab-out": { type: "string" },
    data: { type: "string" },
    shrink: { type: "boolean" },
  } as const;
  return runCommand("export", USAGE, argv, flags, async (v, positionals) => {
    if (positionals.length !== 1) {
      throw new UsageError(`expected one checkpoint file, got ${positionals.length}`);
    }
    const out = v.str("out"), vocabOut = v.str("vocab-out");
    if (!out) throw new UsageError("--out FILE.safetensors is required");
    const path = positionals[0];
    const loaded = modelFromCheckpoint(await readCheckpoint(path), path);
    if (loaded.note) console.log(`note: ${loaded.note}`);
    const words = (await modelData(loaded.meta, v.str("data") ?? null, path)).corpus.vocab.words;
    let meta = {
      ...loaded.meta,
      vocab: { size: words.length, sha256: await vocabularyHash(words) },
    };
    let weights = loaded.weights;
    if (v.on("shrink")) {
      const shrunk = shrinkModel(loaded.family, meta.config, weights);
      meta = { ...meta, config: shrunk.config, densities: {} };
      weights = shrunk.weights;
      console.log(
        `shrunk: hidden sizes ${shrunk.sizes.join("/")} of ${
          loaded.family.hiddenUnits!(loaded.meta.config).map((u) => u.units).join("/")
        } (${JSON.stringify(shrunk.config)})`,
      );
    }
    const bytes = encodeSafetensors(modelFileContents(loaded.family, meta, weights));
    const write = async (file: string, what: () => Promise<void>) => {
      try {
        await what();
      } catch (e) {
        throw new SafetensorsError(`${file}: write failed: ${(e as Error).message}`);
      }
    };
    await write(out, () => writeAtomicBytes(out, bytes));
    if (vocabOut) await write(vocabOut, () => writeAtomic(vocabOut, words.join("\n") + "\n"));
    console.log(
      `wrote ${out}: ${loaded.family.name} (${meta.method}, step ${meta.step}), ` +
        `${weights.values.size} tensors, ${weights.masks.size} masks, ${bytes.length} bytes` +
        (vocabOut ? `; vocabulary ${vocabOut}` : ""),
    );
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
