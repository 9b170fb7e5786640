/**
 * Adapter and device acquisition: prefer a hardware adapter, fall back to a software one, let the
 * user force either, and request the adapter's larger limits instead of WebGPU's defaults.
 *
 * @module
 */

/** Which adapter to use: `auto` prefers hardware and accepts software; the others insist. */
export type AdapterPreference = "auto" | "hardware" | "software";

/**
 * Shader family for the kernels. `regblock`: barrier-free register-blocked kernels, fastest on
 * CPU rasterisers (llvmpipe/lavapipe), where a workgroup barrier is a coroutine switch.
 * `tiled`: workgroup-shared-memory tiling, fastest on real GPUs.
 */
export type KernelVariant = "regblock" | "tiled";

/** Environment variable that forces {@linkcode AdapterPreference}. */
export const ADAPTER_ENV = "SELFISH_ADAPTER";
/** Environment variable that forces {@linkcode KernelVariant}. */
export const VARIANT_ENV = "SELFISH_KERNEL_VARIANT";

/**
 * Loop iterations one shader invocation may run on software adapters. llvmpipe (Mesa's CPU
 * driver, behind lavapipe too) ends every loop of an invocation once it has run 65535
 * iterations in total, shared by all its loops, and carries on silently with wrong results.
 * Launchers whose per-thread loop count grows with a shape check it against this (with slack)
 * and pick another kernel or throw.
 */
export const SOFTWARE_LOOP_BUDGET = 65000;

/** The limits this project depends on, as granted to the device. */
export interface DeviceLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupsPerDimension: number;
  maxStorageBuffersPerShaderStage: number;
  minUniformBufferOffsetAlignment: number;
}

/** What was acquired, for logs, benchmark rows and summaries. */
export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software adapters (llvmpipe, lavapipe, SwiftShader, WARP). */
  isFallback: boolean;
  variant: KernelVariant;
  limits: DeviceLimits;
  features: string[];
}

/** No usable WebGPU adapter, or a Deno without WebGPU. The message says what to install. */
export class GpuUnavailableError extends Error {
  override name = "GpuUnavailableError";
}

/** The device was lost (driver reset, out of memory, destroyed) while in use. */
export class DeviceLostError extends Error {
  override name = "DeviceLostError";
}

/** Options for {@linkcode requestGpuDevice}. */
export interface DeviceOptions {
  /** Adapter choice; defaults to `$SELFISH_ADAPTER` or `auto`. */
  adapter?: AdapterPreference;
  /** Kernel family; defaults to `$SELFISH_KERNEL_VARIANT` or the adapter's best. */
  variant?: KernelVariant | "auto";
}

/** A device with its report; {@linkcode Gpu} wraps this. */
export interface AcquiredDevice {
  device: GPUDevice;
  report: AdapterReport;
}

const INSTALL_HINT = "Install a WebGPU-capable driver: on Debian/Ubuntu `apt-get install " +
  "mesa-vulkan-drivers libvulkan1` (Vulkan, lavapipe for CPUs) or Mesa's GL drivers " +
  "(`libgl1-mesa-dri libegl-mesa0`); on other systems the GPU vendor's Vulkan/Metal/D3D12 driver. " +
  "Deno 2.x exposes WebGPU as navigator.gpu.";

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env: the caller's explicit options still apply
  }
}

/**
 * Parses an adapter preference from a flag or environment value.
 *
 * @example
 * ```ts
 * import { parseAdapterPreference } from "./device.ts";
 * parseAdapterPreference("software", "--adapter"); // "software"
 * ```
 */
export function parseAdapterPreference(value: string, source: string): AdapterPreference {
  if (value === "auto" || value === "hardware" || value === "software") return value;
  throw new RangeError(`${source}: expected auto, hardware or software, got "${value}"`);
}

/**
 * Parses a kernel variant from a flag or environment value.
 *
 * @example
 * ```ts
 * import { parseKernelVariant } from "./device.ts";
 * parseKernelVariant("tiled", "--variant"); // "tiled"
 * ```
 */
export function parseKernelVariant(value: string, source: string): KernelVariant | "auto" {
  if (value === "auto" || value === "regblock" || value === "tiled") return value;
  throw new RangeError(`${source}: expected auto, regblock or tiled, got "${value}"`);
}

/**
 * True for CPU rasterisers, whatever they call themselves.
 *
 * @example
 * ```ts
 * import { isSoftwareAdapter } from "./device.ts";
 * isSoftwareAdapter({ description: "llvmpipe (LLVM 15.0.6, 256 bits)" }); // true
 * ```
 */
export function isSoftwareAdapter(
  info: { isFallbackAdapter?: boolean; description: string },
): boolean {
  return info.isFallbackAdapter === true ||
    /llvmpipe|lavapipe|softpipe|swiftshader|warp|basic render/i.test(info.description);
}

async function pickAdapter(pref: AdapterPreference): Promise<GPUAdapter> {
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
    throw new GpuUnavailableError(
      `This Deno has no WebGPU (navigator.gpu is missing). Use Deno >= 2.9. ${INSTALL_HINT}`,
    );
  }
  const hw = pref === "software"
    ? null
    : await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (hw && (pref === "auto" || !isSoftwareAdapter(hw.info))) return hw;
  if (pref === "hardware") {
    throw new GpuUnavailableError(
      `No hardware WebGPU adapter found${
        hw ? ` (only the software adapter "${hw.info.description}")` : ""
      }; use --adapter auto or software to run on it. ${INSTALL_HINT}`,
    );
  }
  const sw = await navigator.gpu.requestAdapter({ forceFallbackAdapter: true }) ?? hw;
  if (sw) return sw;
  throw new GpuUnavailableError(`No WebGPU adapter found. ${INSTALL_HINT}`);
}

const LIMIT_NAMES = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "minUniformBufferOffsetAlignment",
] as const;

/**
 * Acquires an adapter and a device with the adapter's larger limits.
 *
 * @example
 * ```ts ignore
 * import { requestGpuDevice } from "./device.ts";
 * const { device, report } = await requestGpuDevice({ adapter: "auto" });
 * console.log(report.description, report.variant);
 * ```
 */
export async function requestGpuDevice(options: DeviceOptions = {}): Promise<AcquiredDevice> {
  const envAdapter = readEnv(ADAPTER_ENV);
  const pref = options.adapter ??
    (envAdapter ? parseAdapterPreference(envAdapter, `$${ADAPTER_ENV}`) : "auto");
  const envVariant = readEnv(VARIANT_ENV);
  const variantOpt = options.variant ??
    (envVariant ? parseKernelVariant(envVariant, `$${VARIANT_ENV}`) : "auto");

  const adapter = await pickAdapter(pref);
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) {
    if (name !== "minUniformBufferOffsetAlignment") requiredLimits[name] = adapter.limits[name];
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits });
  } catch (e) {
    throw new GpuUnavailableError(
      `The adapter "${adapter.info.description}" refused a device: ${(e as Error).message}`,
    );
  }
  const info = adapter.info;
  const isFallback = isSoftwareAdapter(info);
  const limits = {} as DeviceLimits;
  for (const name of LIMIT_NAMES) limits[name] = device.limits[name];
  const report: AdapterReport = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallback,
    variant: variantOpt === "auto" ? (isFallback ? "regblock" : "tiled") : variantOpt,
    limits,
    features: [...device.features].sort(),
  };
  return { device, report };
}

/**
 * One line describing the adapter, for logs and benchmark tables.
 *
 * @example
 * ```ts
 * import { describeAdapter } from "./device.ts";
 * describeAdapter({ description: "llvmpipe", vendor: "mesa", isFallback: true, variant: "regblock" });
 * // "llvmpipe (mesa, software, regblock kernels)"
 * ```
 */
export function describeAdapter(
  r: Pick<AdapterReport, "description" | "vendor" | "isFallback" | "variant">,
): string {
  const name = r.description || "unnamed adapter";
  return `${name} (${r.vendor || "unknown vendor"}, ${
    r.isFallback ? "software" : "hardware"
  }, ${r.variant} kernels)`;
}
