/**
 * `deno task train`. Training lands with the stacked-LSTM pipeline; until then this command
 * says so, and checks the WebGPU setup end to end (adapter, device, one kernel against its CPU
 * reference) so a new machine can be validated with the same command users will train with.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { GPU_FLAG_OPTIONS, GPU_FLAG_USAGE, openGpuFromFlags } from "./gpu_flags.ts";
import { matmul } from "../kernels/matmul.ts";
import { matmulRef } from "../kernels/matmul_ref.ts";

const USAGE = `usage: deno task train ${GPU_FLAG_USAGE}

Training (stacked LSTM on the synthetic corpus, PTB, WikiText-2) is not implemented yet.
This command currently verifies the GPU setup. Environment: SELFISH_ADAPTER, SELFISH_KERNEL_VARIANT.`;

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        ...GPU_FLAG_OPTIONS,
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    console.error(`train: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const gpu = await openGpuFromFlags("train", values);
  if (typeof gpu === "number") return gpu;
  const m = 20, n = 64, k = 48;
  const a = Float32Array.from({ length: m * k }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: n * k }, (_, i) => Math.cos(i));
  const c = gpu.tensor([m, n]);
  matmul(gpu, { a: gpu.upload([m, k], a), b: gpu.upload([n, k], b), c, transB: true });
  const got = await gpu.read(c);
  const want = matmulRef({ a, b, m, n, k, transB: true });
  const err = got.reduce((e, v, i) => Math.max(e, Math.abs(v - want[i])), 0);
  if (!(err < 1e-3)) {
    console.error(`train: GPU self-check FAILED: matmul differs from the CPU reference by ${err}`);
    return 1;
  }
  console.log(`GPU self-check passed (matmul max error ${err.toExponential(1)}).`);
  console.log(
    "Training is not implemented yet: the stacked-LSTM pipeline is the next milestone. " +
      "Run `deno task test` for the kernel tests and `deno task bench kernels` for speed.",
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
