import {
  describeAdapter,
  parseAdapterPreference,
  parseKernelVariant,
} from "../kernels/runtime/device.ts";
import { DeviceLostError } from "../kernels/runtime/device.ts";
import { Gpu } from "../kernels/runtime/runtime.ts";
import { GPU_TEST, testGpu } from "./_util.ts";

const CLI = new URL("../pipeline/cli.ts", import.meta.url).pathname;

/** Runs `deno eval` with a replaced navigator.gpu, then the train CLI's main; returns its output. */
async function runWithFakeGpu(fake: string): Promise<{ code: number; out: string }> {
  const script = `Object.defineProperty(navigator, "gpu", { value: ${fake}, configurable: true });
const { main } = await import(${JSON.stringify("file://" + CLI)});
Deno.exit(await main([]));`;
  const p = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: p.code, out: dec.decode(p.stdout) + dec.decode(p.stderr) };
}

Deno.test("no WebGPU adapter gives one clear error naming what to install, exit code 2", async () => {
  const r = await runWithFakeGpu("{ requestAdapter: async () => null }");
  if (r.code !== 2) throw new Error(`exit code ${r.code}, expected 2:\n${r.out}`);
  for (const text of ["No WebGPU adapter found", "mesa-vulkan-drivers"]) {
    if (!r.out.includes(text)) throw new Error(`output lacks "${text}":\n${r.out}`);
  }
});

Deno.test("a Deno without navigator.gpu is told so, exit code 2", async () => {
  const r = await runWithFakeGpu("undefined");
  if (r.code !== 2 || !r.out.includes("no WebGPU")) {
    throw new Error(`exit ${r.code}:\n${r.out}`);
  }
});

Deno.test("adapter and variant flags reject unknown values with the flag named", () => {
  for (
    const [fn, bad] of [
      [() => parseAdapterPreference("gpu", "--adapter"), "--adapter"],
      [() => parseKernelVariant("fast", "--variant"), "--variant"],
    ] as const
  ) {
    try {
      fn();
    } catch (e) {
      if (e instanceof RangeError && e.message.includes(bad)) continue;
      throw e;
    }
    throw new Error(`${bad}: bad value accepted`);
  }
});

Deno.test({
  name: "the adapter report names the adapter, its kind and the limits granted",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await testGpu();
    const r = gpu.report;
    if (!r.description && !r.vendor) throw new Error("adapter report has no name");
    if (r.limits.maxStorageBufferBindingSize < 128 * 1024 * 1024) {
      throw new Error(`storage binding limit ${r.limits.maxStorageBufferBindingSize} < 128 MiB`);
    }
    if (r.isFallback && r.variant !== "regblock" && !Deno.env.get("SELFISH_KERNEL_VARIANT")) {
      throw new Error("a software adapter should default to regblock kernels");
    }
    const line = describeAdapter(r);
    if (!line.includes(r.isFallback ? "software" : "hardware")) throw new Error(line);
  },
});

Deno.test({
  name: "the buffer pool reuses a released buffer up to twice the request, exact sizes first",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await Gpu.create();
    try {
      const created = () => gpu.memory().created;
      const big = gpu.tensor([1000]), exact = gpu.tensor([600]);
      gpu.release(big);
      gpu.release(exact);
      const before = created();
      // an exact fit wins over a larger free buffer
      const a = gpu.tensor([600]);
      if (a.buffer !== exact.buffer) throw new Error("exact-size buffer not reused");
      // a shorter window reuses the larger buffer; the tensor sees only its own elements
      const b = gpu.tensor([700]);
      if (b.buffer !== big.buffer || b.size !== 700) throw new Error("larger buffer not reused");
      if (created() !== before) throw new Error(`created ${created() - before} bytes`);
      if (gpu.memory().live !== 1600 * 4) throw new Error(`live ${gpu.memory().live} bytes`);
      gpu.release(b);
      // more than twice the request: a new buffer, so small tensors never pin large ones
      const c = gpu.tensor([400]);
      if (c.buffer === big.buffer || created() !== before + 400 * 4) {
        throw new Error("a buffer over twice the request was reused");
      }
      gpu.write(c, new Float32Array(400).fill(2));
      const back = await gpu.read(c);
      if (back.length !== 400 || back[399] !== 2) throw new Error("pooled tensor read back wrong");
    } finally {
      gpu.destroy();
    }
  },
});

Deno.test({
  name: "a lost device turns readbacks and allocations into DeviceLostError, not a hang",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await Gpu.create();
    const x = gpu.upload([4], [1, 2, 3, 4]);
    gpu.device.destroy();
    let caught: unknown;
    try {
      await gpu.read(x);
    } catch (e) {
      caught = e;
    }
    if (!(caught instanceof DeviceLostError)) throw new Error(`read gave ${caught}`);
    try {
      gpu.tensor([3]);
    } catch (e) {
      if (e instanceof DeviceLostError) return;
      throw e;
    }
    throw new Error("allocation on a lost device succeeded");
  },
});

Deno.test({
  name: "a kernel that fails to compile is reported with its name at the next sync",
  ...GPU_TEST,
  fn: async () => {
    const gpu = await Gpu.create(); // its later errors must not leak into other tests
    const x = gpu.zeros([4]);
    gpu.run(
      {
        name: "broken_kernel",
        bindings: [{ name: "x", dtype: "f32", access: "read_write" }],
        params: [],
        body: "@compute @workgroup_size(1) fn main() { x[0] = undefined_symbol; }",
      },
      { x },
      {},
      [1, 1, 1],
    );
    try {
      await gpu.sync();
    } catch (e) {
      if ((e as Error).message.includes("broken_kernel")) return;
      throw e;
    }
    throw new Error("compile error was not reported");
  },
});
