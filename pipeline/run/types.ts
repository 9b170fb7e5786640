/**
 * The two halves of a run the stages pass around: {@linkcode RunContext}, fixed for the run
 * (the config, the data, the plan, the model and its sessions, the GPU buffers the stages write
 * into), and {@linkcode RunState}, the host state a stage takes and returns (position, history,
 * optimizer and connectivity state; the GPU tensors inside are handles that the stages update
 * in place). {@linkcode RunMeta} is the part a checkpoint stores as JSON.
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import type { Tensor } from "../../kernels/runtime/tensor.ts";
import type {
  AnyModelFamily,
  Model,
  ModelSession,
  UnitLayer,
  WeightMacs,
} from "../../models/model.ts";
import type { TrainConfig } from "../config.ts";
import type { AsgdEta, AsgdEtaState, OptimizerState } from "../optimizer.ts";
import type { RunPlan } from "../plan.ts";
import type { CsvLog, ProgressPrinter } from "../progress.ts";
import type { FlopsTotals } from "../sparsity/flops.ts";
import type { SparsityMethod, SparsitySettings } from "../sparsity/method.ts";
import type { SparsityState, UpdateRecord } from "../sparsity/stage.ts";
import type { RunData, TrainingData } from "./data.ts";
import type { EvaluationSettings } from "../model_file/model_file.ts";

/** What a run holds fixed: configuration, data, model, sessions and scratch. */
export interface RunContext {
  gpu: Gpu;
  config: TrainConfig;
  data: TrainingData;
  rd: RunData;
  plan: RunPlan;
  family: AnyModelFamily;
  model: Model;
  /** Sessions for training windows, validation passes and the test pass (may be `evaluation`). */
  train: ModelSession;
  evaluation: ModelSession;
  testing: ModelSession;
  /**
   * Gradient accumulation over column slices (`--small-batch-size`): the slices' width, and
   * each slice's carried state by the session's names (the session's own state is scratch).
   * `null`: one slice, the session's state carried.
   */
  slices: { width: number; states: Record<string, Tensor>[] } | null;
  settings: SparsitySettings;
  method: SparsityMethod;
  /** The model's hidden units by layer, for a structured method (ISS); else `null`. */
  units: UnitLayer[] | null;
  /** `--storage csr`: steps run sparse, the events switch to masked form and back. */
  csr: boolean;
  /** The best weights so far and their masks (evaluating them under later masks is wrong). */
  best: { values: Tensor[]; masks: (Tensor | null)[] };
  /** Forward costs per token of the model's weights, of it dense, and of the full-width model. */
  costs: { weights: WeightMacs[]; fDense: number; fRef: number };
  printer: ProgressPrinter;
  log: CsvLog | null;
  /** `[logInterval]` per-step loss sums, read back every `logInterval` steps. */
  lossSums: Tensor;
  /** `performance.now()` when this process started training (elapsed time adds to it). */
  startedAt: number;
}

/** Host-side run position, stored in checkpoints (JSON). */
export interface RunMeta {
  format: "selfish-rnn/run";
  version: number;
  plan: RunPlan;
  /** The model family and its config: the checkpoint's identity. */
  model: { family: string; config: unknown };
  data: string;
  seed: number;
  /** Training steps taken. */
  step: number;
  /** 0-based epoch in progress, pass over the training data, and the next window of it. */
  epoch: number;
  pass: number;
  window: number;
  /** Validation loss at each epoch end. */
  history: number[];
  /** Epoch (1-based) after whose validation NT-ASGD started averaging; `null` = not yet. */
  averagedAfterEpoch: number | null;
  /** Epochs (1-based) after which SNT-ASGD's averaging restarted (`--asgd-restarts`). */
  restartedAfterEpochs: number[];
  bestVal: number;
  optimizer: { kind: string; step: number; averaging: boolean; eta: AsgdEtaState };
  trainTokens: number;
  trainSeconds: number;
  sparsity: SparsityState;
  flops: FlopsTotals;
  /** How the run evaluates, for `deno task eval` (absent in checkpoints written before it). */
  evaluation?: EvaluationSettings;
}

/** What the stages take and return. */
export interface RunState {
  meta: RunMeta;
  opt: OptimizerState;
  sparsity: SparsityState;
  /** Losses recorded since the last readback (`lossSums[0 .. pending)`). */
  loss: { pending: number; tokens: number; last: number };
  /** Tokens of the last step's window (what an update right after it charges). */
  lastTokens: number;
}

/** Final figures of a run (`--summary FILE.json`). */
export interface TrainSummary {
  data: string;
  /** Model family and its config (of the model trained: small-dense's is narrowed). */
  model: { family: string; config: unknown };
  valPpl: number;
  testPpl: number;
  optimalPpl: number | null;
  steps: number;
  epochs: number;
  tokensPerSec: number;
  parameters: number;
  adapter: string;
  variant: string;
  averaged: boolean;
  /** Epoch after whose validation NT-ASGD started averaging, or `null`. */
  averagedAfterEpoch: number | null;
  /** Epochs after which the averaging restarted (fine-tuning, `--asgd-restarts`). */
  restartedAfterEpochs: number[];
  /** SNT-ASGD's step size under per-step lrs (`--asgd-eta`). */
  asgdEta: AsgdEta;
  /** The run stopped before its planned end (Ctrl-C or `--stop-after`); no test was run. */
  interrupted: boolean;
  /** Why it stopped early, or `null` when it ran its plan. */
  stopReason: "signal" | "stop-after" | null;
  /** The plan the run followed. */
  plan: RunPlan;
  /** Validation perplexity at each epoch end (of the `--valid-tokens` prefix when given). */
  epochValPpl: number[];
  /** Every connectivity update: step, removal rate p_t, weights removed and grown. */
  updates: UpdateRecord[];
  elapsedSec: number;
  /** Sparse-training method and the topology it ended with. */
  method: string;
  /** Weights in use: active entries of sparse tensors plus every dense tensor. */
  activeParameters: number;
  /** Density of each sparse tensor and of each of its row blocks, in the tested (best) model. */
  densities: Record<string, number>;
  gateDensities: Record<string, number[]>;
  /** What each of those row blocks is (`["i", "f", "g", "o"]`), where the model names them. */
  gateNames: Record<string, readonly string[]>;
  /** Hidden units left in each layer (ISS); `null` for unstructured methods. */
  hiddenSizes: number[] | null;
  /** Training FLOPs of the run (spec §9) and the dense model's for the same tokens. */
  trainFlops: number;
  denseTrainFlops: number;
  /** Forward FLOPs per token of the final model, and of the dense one. */
  inferenceFlops: number;
  denseInferenceFlops: number;
}
