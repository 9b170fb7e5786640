import {
  CHECKPOINT_VERSION,
  CheckpointError,
  crc32,
  encodeCheckpoint,
  readCheckpoint,
  writeCheckpoint,
} from "../pipeline/checkpoint.ts";

const contents = () => ({
  meta: { step: 42, epoch: 3, history: [5.1, 4.9], rng: { seed: 1111, offset: 77 } },
  tensors: {
    "lstm.0.weight_hh": {
      dtype: "f32" as const,
      shape: [4, 3],
      data: Float32Array.from({ length: 12 }, (_, i) => i / 7),
    },
    "asgd.count": {
      dtype: "u32" as const,
      shape: [5],
      data: Uint32Array.from([0, 1, 2, 3, 4294967295]),
    },
    "empty": { dtype: "f32" as const, shape: [0, 3], data: new Float32Array(0) },
  },
});

async function expectCheckpointError(path: string, text: string): Promise<void> {
  try {
    await readCheckpoint(path);
  } catch (e) {
    if (e instanceof CheckpointError && e.message.includes(path) && e.message.includes(text)) {
      return;
    }
    throw new Error(`expected CheckpointError with "${text}", got ${e}`);
  }
  throw new Error(`${path} was accepted`);
}

Deno.test("crc32 matches the IEEE check value", () => {
  if (crc32(new TextEncoder().encode("123456789")) !== 0xcbf43926) throw new Error("crc32");
});

Deno.test("checkpoints round-trip meta and tensors bit-exactly", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/a.ckpt`;
  await writeCheckpoint(path, contents());
  const back = await readCheckpoint(path);
  if (JSON.stringify(back.meta) !== JSON.stringify(contents().meta)) throw new Error("meta");
  for (const [name, t] of Object.entries(contents().tensors)) {
    const b = back.tensors[name];
    if (!b || b.dtype !== t.dtype || b.shape.join() !== t.shape.join()) throw new Error(name);
    if (b.data.some((v, i) => v !== t.data[i])) throw new Error(`${name} data`);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("corrupt, truncated, foreign and future-version checkpoints are refused, untouched", async () => {
  const dir = await Deno.makeTempDir();
  const good = encodeCheckpoint(contents());
  const cases: [string, Uint8Array, string][] = [
    ["flipped.ckpt", good.map((b, i) => (i === good.length >> 1 ? b ^ 1 : b)), "checksum"],
    ["short.ckpt", good.slice(0, good.length - 9), "checksum"],
    ["foreign.ckpt", new TextEncoder().encode("hello, not a checkpoint at all"), "bad magic"],
    ["tiny.ckpt", good.slice(0, 10), "too short"],
  ];
  const future = good.slice();
  new DataView(future.buffer).setUint32(8, CHECKPOINT_VERSION + 1, true);
  cases.push(["future.ckpt", future, `version ${CHECKPOINT_VERSION + 1}`]);
  for (const [name, bytes, text] of cases) {
    const path = `${dir}/${name}`;
    await Deno.writeFile(path, bytes);
    await expectCheckpointError(path, text);
    const after = await Deno.readFile(path);
    if (after.length !== bytes.length || after.some((b, i) => b !== bytes[i])) {
      throw new Error(`${name} was modified`);
    }
  }
  await expectCheckpointError(`${dir}/missing.ckpt`, "missing.ckpt");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a failed write leaves the previous checkpoint in place and no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/run.ckpt`;
  await writeCheckpoint(path, contents());
  const before = await Deno.readFile(path);
  const bad = contents();
  bad.tensors["lstm.0.weight_hh"] = { dtype: "f32", shape: [4, 4], data: new Float32Array(12) };
  let threw = false;
  try {
    await writeCheckpoint(path, bad);
  } catch (e) {
    threw = e instanceof CheckpointError && (e as Error).message.includes("lstm.0.weight_hh");
  }
  if (!threw) throw new Error("inconsistent tensor was written");
  const after = await Deno.readFile(path);
  if (after.length !== before.length || after.some((b, i) => b !== before[i])) {
    throw new Error("previous checkpoint changed");
  }
  const names = [...Deno.readDirSync(dir)].map((e) => e.name);
  if (names.join() !== "run.ckpt") throw new Error(`left behind: ${names}`);
  await Deno.remove(dir, { recursive: true });
});
