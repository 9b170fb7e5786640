import { deepEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafeTensor,
  SafetensorsError,
} from "../pipeline/model_file/safetensors.ts";
import {
  MODEL_FILE_FORMAT,
  modelFileContents,
  type ModelFileMeta,
  modelFileMeta,
  type ModelWeights,
  modelWeightsFromFile,
} from "../pipeline/model_file/model_file.ts";
import { MODEL_FAMILIES, modelFamily } from "../models/families.ts";
import { parseTrainArgs } from "../pipeline/config.ts";
import { runModelConfig } from "../pipeline/run/setup.ts";
import { badSafetensorsFiles, f32Bytes, handMadeFile } from "./_safetensors_util.ts";
import { numel } from "../kernels/runtime/tensor.ts";

/** Throws unless `f` throws a `cls` whose message contains `text`. */
function assertThrows(
  f: () => unknown,
  cls: new (...a: never[]) => Error,
  text: string,
  what = "",
): void {
  try {
    f();
  } catch (e) {
    if (e instanceof cls && e.message.includes(text)) return;
    throw new Error(`${what}: expected ${cls.name} with "${text}", got ${e}`);
  }
  throw new Error(`${what}: expected ${cls.name} with "${text}", nothing thrown`);
}

Deno.test("safetensors: a file written from the format's definition loads", () => {
  // a U8 tensor first, an F32 one after it, metadata, and trailing header spaces (padding)
  const data = new Uint8Array([1, 0, 1, ...f32Bytes([1.5, -2, 0.25, 8, 0, -0.5])]);
  const header = JSON.stringify({
    "__metadata__": { format: "pt", note: "by hand" },
    "w.mask": { dtype: "U8", shape: [3], "data_offsets": [0, 3] },
    "w": { dtype: "F32", shape: [2, 3], "data_offsets": [3, 27] },
  }) + "   ";
  const c = decodeSafetensors(handMadeFile(header, data), "hand.safetensors");
  assertEquals(c.metadata, { format: "pt", note: "by hand" });
  assertEquals([...c.tensors.keys()], ["w.mask", "w"]);
  const w = c.tensors.get("w")!;
  assertEquals(w.dtype, "F32");
  assertEquals(w.shape, [2, 3]);
  assertEquals([...w.data], [1.5, -2, 0.25, 8, 0, -0.5]);
  assertEquals([...c.tensors.get("w.mask")!.data], [1, 0, 1]);
});

Deno.test("safetensors: writes an 8-byte-aligned header and contiguous offsets, and reads them back", () => {
  const tensors = new Map<string, SafeTensor>([
    ["a", { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) }],
    ["a.mask", { dtype: "U8", shape: [2, 2], data: new Uint8Array([1, 1, 0, 1]) }],
    ["b", { dtype: "F32", shape: [1], data: new Float32Array([-7]) }],
  ]);
  const bytes = encodeSafetensors({ tensors, metadata: { k: "v" } });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals(n % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  assertEquals(header.a["data_offsets"], [0, 16]);
  assertEquals(header["a.mask"]["data_offsets"], [16, 20]);
  assertEquals(header.b["data_offsets"], [20, 24]);
  assertEquals(bytes.length, 8 + n + 24);
  const back = decodeSafetensors(bytes, "mem");
  assertEquals(back.metadata, { k: "v" });
  for (const [name, t] of tensors) assertEquals([...back.tensors.get(name)!.data], [...t.data]);
  assertThrows(
    () =>
      encodeSafetensors({
        tensors: new Map([["x", { dtype: "F32", shape: [3], data: new Float32Array(2) }]]),
        metadata: {},
      }),
    SafetensorsError,
    "tensor x: 2 values for shape [3]",
  );
});

Deno.test("safetensors: every malformed file is refused naming the file and the tensor", () => {
  const cases = badSafetensorsFiles();
  for (const [what, bytes, message] of cases) {
    assertThrows(() => decodeSafetensors(bytes, "bad.st"), SafetensorsError, message, what);
  }
});

const LSTM = modelFamily("lstm");
const CONFIG = { vocab: 7, embed: 4, hidden: 4, layers: 2, dropout: 0, tied: true };

function tinyWeights(): ModelWeights {
  const w: ModelWeights = { values: new Map(), masks: new Map() };
  LSTM.paramSpecs(CONFIG).forEach((s, k) => {
    const n = numel(s.shape);
    const v = Float32Array.from({ length: n }, (_, i) => Math.sin(i + 10 * k) || 0.5);
    if (s.sparse) {
      const m = Float32Array.from({ length: n }, (_, i) => ((i * 7 + k) % 3 === 0 ? 0 : 1));
      w.masks.set(s.name, m);
      v.forEach((_, i) => (v[i] = m[i] ? v[i] : 0));
    }
    w.values.set(s.name, v);
  });
  return w;
}

const META: ModelFileMeta = {
  family: "lstm",
  config: CONFIG,
  method: "selfish",
  densities: {},
  vocab: { size: 7, sha256: "ab" },
  data: "somewhere",
  step: 12,
  evaluation: { bptt: 5, evalBatchSize: 3, testBatchSize: 1, unk: false },
};

Deno.test("model file: PyTorch keys, a tied decoder under both keys, masks as U8, metadata", () => {
  const weights = tinyWeights();
  const c = modelFileContents(LSTM, META, weights);
  const keys = [...c.tensors.keys()];
  for (const k of ["encoder.weight", "rnn.weight_ih_l0", "rnn.bias_hh_l1", "decoder.bias"]) {
    assert(keys.includes(k), `${k} in ${keys}`);
  }
  assertEquals(c.tensors.get("decoder.weight")!.data, c.tensors.get("encoder.weight")!.data);
  assertEquals(c.tensors.get("rnn.weight_hh_l0.mask")!.dtype, "U8");
  assert(!keys.includes("decoder.weight.mask"), "one mask per parameter");
  assert(!keys.includes("rnn.bias_ih_l0.mask"), "biases are dense");
  assertEquals(c.metadata.format, MODEL_FILE_FORMAT);
  assertEquals(modelFileMeta(c.metadata, "m"), META);
  const back = modelWeightsFromFile(c, LSTM, CONFIG, "m");
  for (const [name, v] of weights.values) assertEquals(back.values.get(name), v, name);
  for (const [name, m] of weights.masks) assertEquals(back.masks.get(name), m, name);
  // MoS under WeightDrop: the wrapped module's names and its raw recurrent weight
  const mos = modelFamily("awd-mos");
  const mosConfig = {
    vocab: 7,
    embed: 4,
    hidden: 4,
    hiddenLast: 4,
    layers: 2,
    experts: 2,
    tied: true,
    dropout: 0,
    dropouth: 0,
    dropouti: 0,
    dropoute: 0,
    dropoutl: 0,
    wdrop: 0.5,
    wdropConvention: "inverted",
    alpha: 0,
    beta: 0,
  };
  const mosKeys = mos.stateDict(mosConfig).map((e) => e.key);
  for (
    const k of ["rnns.0.module.weight_hh_l0_raw", "rnns.1.module.bias_ih_l0", "latent.0.weight"]
  ) {
    assert(mosKeys.includes(k), `${k} in ${mosKeys}`);
  }
  assert(mosKeys.includes("decoder.weight") && mosKeys.includes("prior.weight"));
});

Deno.test("model file: tensors that do not fit the model are refused by name", () => {
  const good = () => modelFileContents(LSTM, META, tinyWeights());
  const edit = (f: (t: Map<string, SafeTensor>) => void) => {
    const c = good();
    f(c.tensors);
    return c;
  };
  const u8 = (t: Map<string, SafeTensor>, key: string) => t.get(key)!.data as Uint8Array;
  const f32 = (t: Map<string, SafeTensor>, key: string) => t.get(key)!.data as Float32Array;
  const cases: [string, ReturnType<typeof good>, string][] = [
    [
      "a mask that is not 0/1",
      edit((t) => (u8(t, "rnn.weight_hh_l0.mask")[1] = 2)),
      "tensor rnn.weight_hh_l0.mask: value 2 at index 1: a mask holds 0 or 1",
    ],
    [
      "a mask that disagrees with the zeros",
      edit((t) => {
        const m = u8(t, "rnn.weight_ih_l1.mask");
        const i = m.indexOf(0);
        f32(t, "rnn.weight_ih_l1")[i] = 0.5;
      }),
      "where rnn.weight_ih_l1 is 0.5: inactive weights are 0",
    ],
    ["a missing tensor", edit((t) => t.delete("rnn.bias_hh_l1")), "tensor rnn.bias_hh_l1: missing"],
    [
      "a wrong shape",
      edit((t) => t.set("decoder.bias", { dtype: "F32", shape: [8], data: new Float32Array(8) })),
      "tensor decoder.bias: shape [8], the model's decoder.bias is [7]",
    ],
    [
      "a wrong dtype",
      edit((t) => t.set("decoder.bias", { dtype: "U8", shape: [7], data: new Uint8Array(7) })),
      "tensor decoder.bias: dtype U8, weights are F32",
    ],
    [
      "an unknown tensor",
      edit((t) =>
        t.set("rnn.weight_hh_l2", { dtype: "F32", shape: [1], data: new Float32Array(1) })
      ),
      "tensor rnn.weight_hh_l2: not a tensor of the lstm model",
    ],
    [
      "an untied decoder",
      edit((t) =>
        t.set("decoder.weight", { dtype: "F32", shape: [7, 4], data: new Float32Array(28) })
      ),
      "tensor decoder.weight: differs from the tensor it is tied to (encoder.weight)",
    ],
  ];
  for (const [what, contents, message] of cases) {
    assertThrows(
      () => modelWeightsFromFile(contents, LSTM, CONFIG, "m.st"),
      SafetensorsError,
      message,
      what,
    );
  }
  // the tied decoder's second key may be left out
  const c = good();
  c.tensors.delete("decoder.weight");
  modelWeightsFromFile(c, LSTM, CONFIG, "m.st");
  assertThrows(
    () => modelFileMeta({ format: "other" }, "x.st"),
    SafetensorsError,
    "x.st: metadata format",
  );
});

Deno.test("model file: every family's state dict names each parameter once, tied decoders twice", async () => {
  for (const name of Object.keys(MODEL_FAMILIES)) {
    for (const tied of [false, true]) {
      const c = await parseTrainArgs(["--model", name, ...(tied ? ["--tied"] : ["--no-tied"])]);
      const { family, trained } = runModelConfig(c, 50);
      const entries = family.stateDict(trained);
      const keys = entries.map((e) => e.key);
      assertEquals(new Set(keys).size, keys.length, `${name}: keys unique`);
      // row blocks cover each tensor's rows; where named, one name per block (the gate plot)
      for (const s of family.paramSpecs(trained)) {
        assertEquals(s.blocks.reduce((a, b) => a + b, 0), s.shape[0], `${name} ${s.name} blocks`);
        if (s.blockNames) assertEquals(s.blockNames.length, s.blocks.length, `${name} ${s.name}`);
      }
      assert(family.paramSpecs(trained).some((s) => s.sparse && s.blockNames), `${name}: gates`);
      const specs = family.paramSpecs(trained).map((s) => s.name);
      assertEquals([...new Set(entries.map((e) => e.param))].sort(), [...specs].sort(), name);
      assertEquals(keys.length, specs.length + (tied ? 1 : 0), `${name} tied ${tied}`);
      // the weights survive the file whatever the family
      const weights: ModelWeights = { values: new Map(), masks: new Map() };
      family.paramSpecs(trained).forEach((s, k) => {
        weights.values.set(s.name, Float32Array.from({ length: numel(s.shape) }, (_, i) => i + k));
      });
      const meta = { ...META, family: name, config: trained };
      const back = modelWeightsFromFile(
        modelFileContents(family, meta, weights),
        family,
        trained,
        "m",
      );
      for (const [p, v] of weights.values) assertEquals(back.values.get(p), v, `${name} ${p}`);
    }
  }
});
