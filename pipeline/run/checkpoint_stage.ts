/**
 * The checkpoint stage: a run's state written to and read from a checkpoint file
 * (`checkpoint.ts` holds the container format). The host state goes into the JSON header
 * ({@linkcode RunMeta}); every GPU tensor of the run is stored under a name: parameters by their
 * PyTorch names, `<name>#mask`, `#best`, `#bestmask` and the optimizer's `#buf`, `#m`, `#v`,
 * `#age`, `#ax`, `#count`, and the carried state by the session's names (`state.h0`, ...).
 *
 * A resume refuses a checkpoint of another format or run-state version, model (family and
 * config, naming the field that differs), data, seed, method, sparsity setting, optimizer or
 * plan, and leaves the file as it was.
 *
 * @module
 */

import type { Tensor } from "../../kernels/runtime/tensor.ts";
import {
  CheckpointError,
  type HostTensor,
  readCheckpoint,
  writeCheckpoint,
} from "../checkpoint.ts";
import { type OptimizerState, type ParamState, startAveraging } from "../optimizer.ts";
import { planDifference } from "../plan.ts";
import { trainSeconds } from "./log_stage.ts";
import { RUN_STATE_VERSION } from "./setup.ts";
import { inMaskedForm } from "./storage_switch.ts";
import type { RunContext, RunMeta, RunState } from "./types.ts";
import type { SparsitySettings } from "../sparsity/method.ts";

const STATE_KEYS = ["buf", "m", "v", "age", "ax", "count"] as const;

/** Everything a run holds on the GPU, named as in checkpoints (masked form). */
function runTensors(ctx: RunContext, opt: OptimizerState): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  ctx.model.params.forEach((p, i) => {
    out[p.name] = p.value;
    if (p.mask) out[`${p.name}#mask`] = p.mask;
    const bm = ctx.best.masks[i];
    if (bm) out[`${p.name}#bestmask`] = bm;
    const s: ParamState = opt.perParam[i];
    for (const k of STATE_KEYS) if (s[k]) out[`${p.name}#${k}`] = s[k]!;
    out[`${p.name}#best`] = ctx.best.values[i];
  });
  if (!ctx.slices) Object.assign(out, ctx.train.stateTensors());
  ctx.slices?.states.forEach((s, k) => {
    for (const [name, t] of Object.entries(s)) out[`slice${k}.${name}`] = t;
  });
  return out;
}

/**
 * Writes the run state to `path` (atomically, `checkpoint.ts`).
 *
 * @example
 * ```ts ignore
 * state = await saveRun(ctx, state, "run.ckpt");
 * ```
 */
export async function saveRun(ctx: RunContext, state: RunState, path: string): Promise<RunState> {
  const tensors: Record<string, HostTensor> = {};
  const next = await inMaskedForm(ctx, state, async (s) => {
    for (const [name, t] of Object.entries(runTensors(ctx, s.opt))) {
      const data = await ctx.gpu.read(t);
      tensors[name] = t.dtype === "u32"
        ? { dtype: "u32", shape: t.shape, data: data as Uint32Array }
        : { dtype: "f32", shape: t.shape, data: data as Float32Array };
    }
    return s;
  });
  const meta: RunMeta = {
    ...next.meta,
    sparsity: next.sparsity,
    optimizer: {
      kind: next.opt.kind,
      step: next.opt.step,
      averaging: next.opt.averaging,
      eta: next.opt.eta,
    },
  };
  // the file holds the time trained so far; the state keeps this process's starting point
  await writeCheckpoint(path, {
    meta: { ...meta, trainSeconds: trainSeconds(ctx, next) },
    tensors,
  });
  return { ...next, meta };
}

/** The first field by which two model configs differ, or `null`. */
function configDifference(a: unknown, b: unknown): string | null {
  const ra = (a ?? {}) as Record<string, unknown>, rb = (b ?? {}) as Record<string, unknown>;
  for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
    if (JSON.stringify(ra[k]) !== JSON.stringify(rb[k])) {
      return `${k} ${JSON.stringify(ra[k])} vs ${JSON.stringify(rb[k])}`;
    }
  }
  return null;
}

/**
 * The first sparsity setting by which a checkpoint's run and this one differ, or `null`. A
 * setting the checkpoint predates ran as its default did (random growth; ISS's λ and threshold
 * mattered only to ISS, which came with them).
 */
function sparsityDifference(saved: SparsitySettings, ours: SparsitySettings): string | null {
  const { issLambda, issThreshold, ...rest } = ours;
  const now = {
    ...rest,
    ...(saved.issLambda !== undefined ? { issLambda } : {}),
    ...(saved.issThreshold !== undefined ? { issThreshold } : {}),
  };
  return configDifference({ growth: "random", ...saved }, { growth: "random", ...now });
}

/** Why the checkpoint's meta `m` cannot continue the run `meta`, or `null`. */
function incompatibility(m: Partial<RunMeta> & { format?: string }, meta: RunMeta): string | null {
  if (m?.format !== meta.format || m.version !== RUN_STATE_VERSION) {
    return `written as format ${m?.format ?? "unknown"}, run-state version ${
      m?.version ?? 1
    }; this build resumes format ${meta.format}, version ${RUN_STATE_VERSION} (start the run ` +
      "again: earlier versions did not record what this one needs to continue on schedule)";
  }
  if (m.model?.family !== meta.model.family) {
    return `made for --model ${m.model?.family}, this run is --model ${meta.model.family}`;
  }
  const diff = configDifference(m.model.config, meta.model.config);
  if (diff) return `made for another ${meta.model.family} model (${diff})`;
  if (m.data !== meta.data) return `made on "${m.data}", this run is on "${meta.data}"`;
  if (m.seed !== meta.seed) return `made with seed ${m.seed}, this run has seed ${meta.seed}`;
  const method = m.sparsity?.settings.method, ours = meta.sparsity.settings.method;
  if (method !== ours) return `made with method ${method}, this run is method ${ours}`;
  const sparsity = sparsityDifference(m.sparsity!.settings, meta.sparsity.settings);
  if (sparsity) {
    return `made with other sparsity settings (${sparsity}): resume with the saved run's flags`;
  }
  if (m.optimizer?.kind !== meta.optimizer.kind) {
    return `made with --optimizer ${m.optimizer?.kind}, this run is --optimizer ${meta.optimizer.kind}`;
  }
  const plan = planDifference(m.plan!, meta.plan);
  if (plan) {
    return `planned as ${JSON.stringify(m.plan)}, this run plans ${JSON.stringify(meta.plan)} ` +
      `(${plan}): resume with the saved run's --epochs, --max-steps, --epoch-steps and ` +
      "--update-every (--stop-after may differ)";
  }
  return null;
}

/**
 * Restores the run state saved at `path` into the run (which must be in masked form, as a
 * fresh run is); throws {@linkcode CheckpointError} naming the file and what differs.
 *
 * @example
 * ```ts ignore
 * state = await resumeRun(ctx, state, config.resume);
 * ```
 */
export async function resumeRun(
  ctx: RunContext,
  state: RunState,
  path: string,
): Promise<RunState> {
  const ckpt = await readCheckpoint(path);
  const m = ckpt.meta as RunMeta;
  const why = incompatibility(m, state.meta);
  if (why) throw new CheckpointError(`checkpoint ${path}: ${why}`);
  const { gpu } = ctx;
  let opt = state.opt;
  if (m.optimizer.averaging) opt = startAveraging(gpu, ctx.model.params, opt);
  opt = { ...opt, step: m.optimizer.step, eta: m.optimizer.eta };
  for (const p of ctx.model.params) {
    if (ckpt.tensors[`${p.name}#mask`] && !p.mask) p.mask = gpu.tensor(p.shape);
  }
  for (const [name, t] of Object.entries(runTensors(ctx, opt))) {
    const src = ckpt.tensors[name];
    if (!src || src.data.length !== t.size || src.dtype !== t.dtype) {
      throw new CheckpointError(
        `checkpoint ${path}: tensor ${name} is missing or has the wrong shape` +
          (/^(slice\d+\.)?state\./.test(name)
            ? " (resume with the saved run's --small-batch-size)"
            : ""),
      );
    }
    gpu.write(t, src.data);
  }
  // JSON has no Infinity: a run saved before its first validation stored bestVal as null
  // the evaluation settings are this process's: its test is the one the run reports
  const meta: RunMeta = {
    ...m,
    bestVal: typeof m.bestVal === "number" ? m.bestVal : Infinity,
    evaluation: state.meta.evaluation,
  };
  ctx.printer.say(
    `resumed from ${path} at step ${meta.step} (epoch ${meta.epoch + 1}, window ${meta.window})`,
  );
  return { ...state, meta, opt, sparsity: meta.sparsity };
}
