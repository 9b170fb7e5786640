/**
 * `deno task train`: trains the stacked-LSTM language model. With no arguments it trains a small
 * model on the embedded synthetic corpus and reports its perplexity next to the optimal one.
 * Bad flags, data or checkpoints exit with code 2 and one message naming the problem.
 *
 * @module
 */

import { ConfigError, parseTrainArgs } from "./config.ts";
import { openGpuFromFlags } from "./gpu_flags.ts";
import { DataError } from "./data/errors.ts";
import { CheckpointError } from "./checkpoint.ts";
import { loadTrainingData, train, type TrainSummary } from "./train.ts";

const USAGE = `usage: deno task train [--preset NAME] [--config FILE.json] [flags]

Data:      --data DIR (train.txt/valid.txt/test.txt; default: synthetic corpus) --unk
Model:     --emsize N --nhid N --nlayers N --dropout P --tied
Training:  --lr X --clip X --epochs N --batch-size N --bptt N --seed N --wdecay X
           --optimizer sgd|momentum|adam|ntasgd --momentum X --nonmono N
Plan:      --max-steps N (the run's length when shorter than its epochs; every schedule
           spans it) --epoch-steps N (an epoch of N steps instead of one pass over the data)
Sparsity:  --method dense|small-dense|static-uniform|static-er|gmp|set|dsr|snfs|rigl|selfish
           --density D | --sparsity S  --sparse-init uniform|er  --death-rate P0
           --death-rate-min P  --update-every N (0 = per epoch)  --dense-tensors NAME,...
           --redistribution uniform|none|magnitude|momentum  --prune-start F --prune-end F
           --storage masked|csr (csr: true sparse weights, O(density) memory)
           --inactive-state auto|clear|accumulate|keep (optimizer state of inactive weights)
Eval/logs: --eval-batch-size N --valid-tokens N (epoch ends validate on a prefix)
           --log-interval N --log FILE.csv --summary FILE.json
Runs:      --save FILE --resume FILE --stop-after N (stop after step N and save; resume
           continues on the same plan; Ctrl-C does the same)
GPU:       --adapter auto|hardware|software --variant auto|regblock|tiled
Presets:   ptb-lstm-large (the paper's), ptb-lstm-medium, ptb-lstm-small`;

/** The `--summary` file: snake_case keys, as the other tools of the field write them. */
export function summaryJson(s: TrainSummary): Record<string, unknown> {
  return {
    "data": s.data,
    "val_ppl": s.valPpl,
    "test_ppl": s.testPpl,
    "optimal_ppl": s.optimalPpl,
    "steps": s.steps,
    "epochs": s.epochs,
    "tokens_per_sec": s.tokensPerSec,
    "parameters": s.parameters,
    "adapter": s.adapter,
    "kernel_variant": s.variant,
    "averaged": s.averaged,
    "averaged_after_epoch": s.averagedAfterEpoch,
    "plan": {
      "total_steps": s.plan.totalSteps,
      "epoch_steps": s.plan.epochSteps,
      "update_every": s.plan.updateEvery,
    },
    "epoch_val_ppl": s.epochValPpl,
    "connectivity_updates": s.updates.map((u) => ({
      "step": u.step,
      "removal_rate": u.removalRate,
      "removed": u.removed,
      "grown": u.grown,
    })),
    "elapsed_sec": s.elapsedSec,
    "method": s.method,
    "active_parameters": s.activeParameters,
    "density_per_tensor": s.densities,
    "density_per_gate": s.gateDensities,
    "train_flops": s.trainFlops,
    "train_flops_x_dense": s.trainFlops / Math.max(1e-30, s.denseTrainFlops),
    "inference_flops_per_token": s.inferenceFlops,
    "inference_flops_x_dense": s.inferenceFlops / Math.max(1e-30, s.denseInferenceFlops),
  };
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  try {
    const config = await parseTrainArgs(argv);
    const data = await loadTrainingData(config);
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
        `${summary.activeParameters} of ${summary.parameters} parameters active (${summary.method})`,
    );
    if (config.summary) {
      const tmp = `${config.summary}.tmp`;
      await Deno.writeTextFile(tmp, JSON.stringify(summaryJson(summary), null, 2) + "\n");
      await Deno.rename(tmp, config.summary);
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
