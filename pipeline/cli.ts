/**
 * `deno task train`: trains a language model of any registered family (`--model`). With no
 * arguments it trains a small stacked LSTM on the embedded synthetic corpus and reports its
 * perplexity next to the optimal one; `--dry-run` prints the parameter table and exits. Bad
 * flags, data or checkpoints exit with code 2 and one message naming the problem.
 *
 * @module
 */

import { ConfigError, parseTrainArgs } from "./config.ts";
import { openGpuFromFlags } from "./gpu_flags.ts";
import { DataError } from "./data/errors.ts";
import { CheckpointError } from "./checkpoint.ts";
import { loadTrainingData, train } from "./train.ts";
import { summaryJson } from "./run/finish.ts";
export { summaryJson };
import { MODEL_FAMILIES } from "../models/families.ts";
import { parameterTable, parameterTableJson, parameterTableText } from "./dry_run.ts";
import { writeAtomic } from "./atomic.ts";

const FAMILY_USAGE = Object.values(MODEL_FAMILIES).map((f) =>
  `  ${f.name.padEnd(8)} ${f.summary}; presets: ${Object.keys(f.presets).join(", ")}` +
  (Object.keys(f.flags).length
    ? `; flags: ${
      Object.entries(f.flags).map(([k, v]) => `--${k} (${v.help}, default ${v.default})`).join(
        ", ",
      )
    }`
    : "")
).join("\n");

const USAGE = `usage: deno task train [--model NAME] [--preset NAME] [--config FILE.json] [flags]
       deno task train ... --dry-run   (print the parameter table, train nothing)

Data:      --data DIR (train.txt/valid.txt/test.txt; default: synthetic corpus) --unk
Model:     --model ${Object.keys(MODEL_FAMILIES).join("|")} --emsize N --nhid N --nlayers N
           --dropout P --dropouth P --dropouti P --dropoute P --tied (--no-tied, and --no-X for every switch)
           --alpha X --beta X (AR and TAR weights) --wdrop P (DropConnect on recurrent weights)
           --wdrop-convention inverted|eval-scaled
Training:  --lr X --clip X --epochs N --batch-size N --bptt N --seed N --wdecay X
           --variable-bptt (AWD windows, lr scaled by length/bptt) --bptt-cap N (default bptt+40)
           --optimizer sgd|momentum|adam|ntasgd --momentum X --adam-beta1 X --nonmono N
           --asgd-restarts E,... (restart SNT-ASGD's averaging after these epochs)
           --asgd-eta per-step|lagging (averaged step size under per-step lrs; lagging = released code)
           --lr-plateau F --lr-plateau-patience N (multiply the lr by F after more than N epochs
           without a better validation loss: PyTorch's ReduceLROnPlateau; default off)
Plan:      --max-steps N (the run's length when shorter than its epochs; every schedule
           spans it) --epoch-steps N (an epoch of N steps instead of one pass over the data)
Sparsity:  --method dense|small-dense|static-uniform|static-er|gmp|iss|set|dsr|snfs|rigl|selfish
           --density D | --sparsity S  --sparse-init uniform|er  --death-rate P0
           --death-rate-min P  --update-every N (0 = per epoch)  --dense-tensors NAME,...
           --redistribution uniform|none|magnitude|momentum|gradient  --growth random|gradient
           (Selfish-RNN's regrowth inside each gate's share)  --prune-start F --prune-end F
           --iss-lambda X (ISS's group Lasso) --iss-threshold F (remove a unit below F x its
           layer's median group norm, at each update)
           --storage masked|csr (csr: true sparse weights, O(density) memory)
           --inactive-state auto|clear|accumulate|keep (optimizer state of inactive weights)
Eval/logs: --eval-batch-size N --test-batch-size N --small-batch-size N (gradient accumulation) --valid-tokens N (epoch ends validate on a prefix)
           --log-interval N --log FILE.csv --summary FILE.json
Runs:      --save FILE --resume FILE --stop-after N (stop after step N and save; resume
           continues on the same plan; Ctrl-C does the same) --init-from FILE.safetensors
           (start from a model file's weights and masks, e.g. one \`deno task export\` wrote)
GPU:       --adapter auto|hardware|software --variant auto|regblock|tiled
Families:
${FAMILY_USAGE}`;

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  try {
    const dryRun = argv.includes("--dry-run");
    const config = await parseTrainArgs(argv.filter((a) => a !== "--dry-run"));
    const data = await loadTrainingData(config);
    if (dryRun) {
      const table = parameterTable(config, data.corpus.vocab.size);
      console.log(`data: ${data.description}: vocabulary ${data.corpus.vocab.size}`);
      console.log(parameterTableText(table));
      if (config.summary) {
        await writeAtomic(
          config.summary,
          JSON.stringify(parameterTableJson(table), null, 2) + "\n",
        );
      }
      return 0;
    }
    const gpu = await openGpuFromFlags("train", {
      adapter: config.adapter ?? undefined,
      variant: config.variant ?? undefined,
    });
    if (typeof gpu === "number") return gpu;
    console.log(
      `data: ${data.description}: vocabulary ${data.corpus.vocab.size}, ` +
        `${data.corpus.train.length} train tokens`,
    );
    const summary = await train(gpu, config, data);
    if (summary.stopReason === "stop-after") {
      console.log(
        `stopped after step ${summary.steps} of ${summary.plan.totalSteps} (--stop-after); ` +
          `resume with --resume to finish the run`,
      );
      return 0;
    }
    if (summary.interrupted) {
      console.log(`stopped at step ${summary.steps}; resume with --resume to continue`);
      return 130;
    }
    const optimal = summary.optimalPpl ? ` (optimal ${summary.optimalPpl.toFixed(2)})` : "";
    console.log(
      `valid ppl ${summary.valPpl.toFixed(2)}, test ppl ${summary.testPpl.toFixed(2)}${optimal}; ` +
        `${summary.steps} steps, ${Math.round(summary.tokensPerSec)} tokens/s, ` +
        `${summary.activeParameters} of ${summary.parameters} parameters active (${summary.method})` +
        (summary.hiddenSizes ? `; hidden sizes ${summary.hiddenSizes.join("/")}` : ""),
    );
    if (config.summary) {
      await writeAtomic(config.summary, JSON.stringify(summaryJson(summary), null, 2) + "\n");
    }
    return 0;
  } catch (e) {
    if (e instanceof ConfigError || e instanceof DataError || e instanceof CheckpointError) {
      console.error(`train: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
