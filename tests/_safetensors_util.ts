/**
 * Safetensors files laid out by hand from the format's definition, good and malformed, for the
 * reader's tests and the CLIs' bad-file tests.
 *
 * @module
 */

/** A file laid out by hand from the format's definition: u64 length, JSON, raw bytes. */
export function handMadeFile(header: string, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.length, true); // low word of the u64
  view.setUint32(4, 0, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

export function f32Bytes(values: number[]): Uint8Array {
  const b = new Uint8Array(values.length * 4);
  const v = new DataView(b.buffer);
  values.forEach((x, i) => v.setFloat32(4 * i, x, true));
  return b;
}

/** Malformed files: what each is, its bytes, and the message the reader must give. */
export function badSafetensorsFiles(): [string, Uint8Array, string][] {
  const good = f32Bytes([1, 2, 3, 4]);
  const t = (entries: Record<string, unknown>) => JSON.stringify(entries);
  return [
    ["truncated", new Uint8Array(5), "bad.st: truncated: 5 bytes"],
    [
      "header length past the end",
      (() => {
        const b = handMadeFile(t({}), new Uint8Array());
        new DataView(b.buffer).setUint32(0, 1000, true);
        return b;
      })(),
      "header length 1000 runs past the end of the file",
    ],
    ["invalid JSON", handMadeFile('{"a": ', good), "header is not valid JSON"],
    ["not an object", handMadeFile("[1, 2]", good), "header is not a JSON object"],
    [
      "overlapping offsets",
      handMadeFile(
        t({
          a: { dtype: "F32", shape: [2], "data_offsets": [0, 8] },
          b: { dtype: "F32", shape: [2], "data_offsets": [4, 12] },
        }),
        good,
      ),
      "tensor b: data_offsets [4, 12] overlap another tensor's",
    ],
    [
      "out-of-range offsets",
      handMadeFile(t({ a: { dtype: "F32", shape: [8], "data_offsets": [0, 32] } }), good),
      "tensor a: data_offsets [0, 32] lie outside the 16 data bytes",
    ],
    [
      "a gap",
      handMadeFile(t({ a: { dtype: "F32", shape: [2], "data_offsets": [8, 16] } }), good),
      "tensor a: data_offsets start at 8, leaving a gap after 0",
    ],
    [
      "uncovered data",
      handMadeFile(t({ a: { dtype: "F32", shape: [2], "data_offsets": [0, 8] } }), good),
      "the tensors cover 8 of the 16 data bytes",
    ],
    [
      "F16",
      handMadeFile(t({ a: { dtype: "F16", shape: [8], "data_offsets": [0, 16] } }), good),
      'tensor a: dtype "F16" is not supported (F32 weights and U8 masks only)',
    ],
    [
      "offsets disagree with the shape",
      handMadeFile(t({ a: { dtype: "F32", shape: [3], "data_offsets": [0, 16] } }), good),
      "tensor a: data_offsets [0, 16] hold 16 bytes, F32 [3] needs 12",
    ],
    [
      "metadata that is not strings",
      handMadeFile(
        t({ "__metadata__": { n: 1 }, a: { dtype: "F32", shape: [4], "data_offsets": [0, 16] } }),
        good,
      ),
      "__metadata__.n is not a string",
    ],
  ];
}
