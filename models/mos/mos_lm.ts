/**
 * AWD-LSTM-MoS (Yang et al. 2018, "Breaking the Softmax Bottleneck"; zihangdai/mos, spec §2.4
 * and §14.3) as a gated stack (`../parts/gated_stack.ts`) of LSTM cells with the
 * mixture-of-softmaxes head (`../parts/mos_head.ts`).
 *
 * ```text
 * ids → embedding [V, E] → row dropout p_e → locked p_i → LSTM_0 → locked p_h → …
 *     → LSTM_{L−1} (nhidlast) → locked p → MoS head (K experts, latent dropout p_l, tied decoder)
 * ```
 *
 * Layer l is a separate one-layer LSTM of hidden size `hidden` (l < L − 1) or `hiddenLast`
 * (the last), gate blocks i, f, g, o, with WeightDrop on its recurrent weight (AWD's inverted
 * convention by default). AR reads the dropped last-layer output, TAR the raw one. Tensors
 * (PyTorch names, the `WeightDrop` wrapper left out): `encoder.weight [V, E]`,
 * `rnns.{l}.weight_ih_l0 [4H_l, in_l]`, `rnns.{l}.weight_hh_l0 [4H_l, H_l]`, `rnns.{l}.bias_ih_l0`,
 * `rnns.{l}.bias_hh_l0`, `prior.weight [K, H_{L−1}]`, `latent.0.weight [K·E, H_{L−1}]`,
 * `latent.0.bias [K·E]`, `decoder.weight [V, E]` (untied only), `decoder.bias [V]`.
 *
 * @module
 */

import type { Gpu } from "../../kernels/runtime/runtime.ts";
import { MOS_MAX_EXPERTS } from "../../kernels/cells/mos.ts";
import { createParams, type Param, type ParamSpec } from "../params.ts";
import { type AwdDevices, checkStackSettings, type GatedStack } from "../parts/gated_stack.ts";
import { mosStackHead } from "../parts/mos_head.ts";
import type { WeightDropConvention } from "../parts/weight_drop.ts";
import { LSTM_CELL, lstmGateRows } from "../lstm/lstm_lm.ts";

/** Architecture and regularisers of AWD-LSTM-MoS. */
export interface MosConfig {
  vocab: number;
  /** Embedding size E (also each expert's latent size, the decoder's input). */
  embed: number;
  /** Hidden size of the layers below the last. */
  hidden: number;
  /** Hidden size of the last layer (`nhidlast`). */
  hiddenLast: number;
  layers: number;
  /** Number of experts K. */
  experts: number;
  tied: boolean;
  /** Locked dropout of the last layer's output (the head's input). */
  dropout: number;
  dropouth: number;
  dropouti: number;
  dropoute: number;
  /** Locked dropout of the latent. */
  dropoutl: number;
  /** WeightDrop on every `weight_hh_l0` (0 = none). */
  wdrop: number;
  wdropConvention: WeightDropConvention;
  alpha: number;
  beta: number;
}

/**
 * Hidden size of each layer.
 *
 * @example
 * ```ts
 * import { mosLayerSizes } from "./mos_lm.ts";
 * mosLayerSizes({ hidden: 1150, hiddenLast: 650, layers: 3 }); // [1150, 1150, 650]
 * ```
 */
export function mosLayerSizes(c: Pick<MosConfig, "hidden" | "hiddenLast" | "layers">): number[] {
  return Array.from({ length: c.layers }, (_, l) => (l < c.layers - 1 ? c.hidden : c.hiddenLast));
}

/**
 * The AWD devices a config implies: locked dropout always, AR/TAR and WeightDrop when set.
 *
 * @example
 * ```ts ignore
 * mosAwd(config).locked; // true
 * ```
 */
export function mosAwd(c: MosConfig): AwdDevices {
  return {
    locked: true,
    dropouti: c.dropouti,
    dropouth: c.dropouth,
    dropoute: c.dropoute,
    alpha: c.alpha,
    beta: c.beta,
    ...(c.wdrop > 0 ? { wdrop: { p: c.wdrop, convention: c.wdropConvention } } : {}),
  };
}

/**
 * Checks a config; throws RangeError naming the field.
 *
 * @example
 * ```ts ignore
 * checkMosConfig(config);
 * ```
 */
export function checkMosConfig(c: MosConfig): void {
  for (const k of ["layers", "experts", "hiddenLast"] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) {
      throw new RangeError(`MosConfig.${k} must be an integer >= 1, got ${c[k]}`);
    }
  }
  if (c.experts > MOS_MAX_EXPERTS) {
    throw new RangeError(`MosConfig.experts: at most ${MOS_MAX_EXPERTS}, got ${c.experts}`);
  }
  if (!(c.dropoutl >= 0 && c.dropoutl < 1)) {
    throw new RangeError(`MosConfig.dropoutl must be in [0, 1), got ${c.dropoutl}`);
  }
  checkStackSettings(
    "MosConfig",
    { ...c, hidden: mosLayerSizes(c), awd: mosAwd(c) },
    c.embed,
  );
}

/** Names of layer l's four tensors. */
export function mosLayerNames(l: number): { ih: string; hh: string; bih: string; bhh: string } {
  const p = `rnns.${l}`;
  return {
    ih: `${p}.weight_ih_l0`,
    hh: `${p}.weight_hh_l0`,
    bih: `${p}.bias_ih_l0`,
    bhh: `${p}.bias_hh_l0`,
  };
}

/**
 * Parameter list (order of the module doc). Init as the released code: embedding (and an untied
 * decoder) U(−0.1, 0.1), decoder bias 0, LSTM tensors U(±1/√H_l), `prior` and `latent`
 * PyTorch's Linear default U(±1/√fan_in). Sparse: the embedding, every LSTM weight, `prior.weight`
 * and `latent.0.weight` (spec §14.3).
 *
 * @example
 * ```ts
 * import { mosParamSpecs } from "./mos_lm.ts";
 * const specs = mosParamSpecs({
 *   vocab: 33278, embed: 300, hidden: 1150, hiddenLast: 650, layers: 3, experts: 15, tied: true,
 *   dropout: 0.4, dropouth: 0.2, dropouti: 0.55, dropoute: 0.1, dropoutl: 0.29, wdrop: 0.5,
 *   wdropConvention: "inverted", alpha: 2, beta: 1,
 * });
 * specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0); // 34_909_528
 * ```
 */
export function mosParamSpecs(config: MosConfig): ParamSpec[] {
  checkMosConfig(config);
  const { vocab: V, embed: E, experts: K } = config;
  const sizes = mosLayerSizes(config);
  const D = sizes[sizes.length - 1];
  const u = (r: number) => ({ kind: "uniform", lo: -r, hi: r }) as const;
  const specs: ParamSpec[] = [{
    name: "encoder.weight",
    shape: [V, E],
    blocks: [V],
    sparse: true,
    init: u(0.1),
  }];
  sizes.forEach((H, l) => {
    const inSize = l === 0 ? E : sizes[l - 1];
    const gates = lstmGateRows(H);
    const n = mosLayerNames(l), init = u(1 / Math.sqrt(H));
    specs.push(
      { name: n.ih, shape: [4 * H, inSize], ...gates, sparse: true, init },
      { name: n.hh, shape: [4 * H, H], ...gates, sparse: true, init },
      { name: n.bih, shape: [4 * H], ...gates, sparse: false, init },
      { name: n.bhh, shape: [4 * H], ...gates, sparse: false, init },
    );
  });
  const head = u(1 / Math.sqrt(D));
  specs.push(
    { name: "prior.weight", shape: [K, D], blocks: [K], sparse: true, init: head },
    { name: "latent.0.weight", shape: [K * E, D], blocks: [K * E], sparse: true, init: head },
    { name: "latent.0.bias", shape: [K * E], blocks: [K * E], sparse: false, init: head },
  );
  if (!config.tied) {
    specs.push({ name: "decoder.weight", shape: [V, E], blocks: [V], sparse: true, init: u(0.1) });
  }
  specs.push({
    name: "decoder.bias",
    shape: [V],
    blocks: [V],
    sparse: false,
    init: { kind: "zeros" },
  });
  return specs;
}

/** An AWD-LSTM-MoS on the GPU: the gated stack with the MoS head, and its config. */
export interface MosLm extends GatedStack {
  config: MosConfig;
  decoderWeight: Param;
  decoderBias: Param;
}

/**
 * Allocates the model and records its initialisation from `seed`.
 *
 * @example
 * ```ts ignore
 * const model = createMos(gpu, config, 1882);
 * ```
 */
export function createMos(gpu: Gpu, config: MosConfig, seed: number): MosLm {
  const params = createParams(gpu, mosParamSpecs(config), seed);
  const by = new Map(params.map((p) => [p.name, p]));
  const sizes = mosLayerSizes(config);
  const layers = sizes.map((_, l) => {
    const n = mosLayerNames(l);
    return { wIh: by.get(n.ih)!, wHh: by.get(n.hh)!, bIh: by.get(n.bih)!, bHh: by.get(n.bhh)! };
  });
  const encoder = by.get("encoder.weight")!;
  const decoderWeight = config.tied ? encoder : by.get("decoder.weight")!;
  const decoderBias = by.get("decoder.bias")!;
  return {
    config: { ...config },
    vocab: config.vocab,
    embed: config.embed,
    hidden: sizes,
    dropout: config.dropout,
    tied: config.tied,
    awd: mosAwd(config),
    arOn: "dropped",
    cell: LSTM_CELL,
    phase: "lstm",
    params,
    encoder,
    layers,
    decoderWeight,
    decoderBias,
    head: mosStackHead({
      prior: by.get("prior.weight")!,
      latentWeight: by.get("latent.0.weight")!,
      latentBias: by.get("latent.0.bias")!,
      decoderWeight,
      decoderBias,
      dropoutl: config.dropoutl,
    }),
  };
}
