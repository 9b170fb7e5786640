/**
 * The GPU runtime: tensors from a buffer pool, a pipeline cache keyed by full shader source
 * (constants included), many dispatches recorded into one compute pass and one command buffer
 * per `submit()`, per-dispatch uniforms packed into one ring buffer written once per submit, and
 * one readback path. Nothing here reads back to the CPU unless `read()` is called.
 *
 * @module
 */

import {
  type AdapterReport,
  DeviceLostError,
  type DeviceOptions,
  type KernelVariant,
  requestGpuDevice,
} from "./device.ts";
import { kernelSource, type KernelSpec, paramBytes } from "./kernel.ts";
import {
  BYTES_PER_ELEMENT,
  type DType,
  fmtShape,
  type HostArray,
  numel,
  type Shape,
  ShapeError,
  Tensor,
} from "./tensor.ts";

/** A WebGPU validation or internal error raised by a kernel, surfaced at the next sync point. */
export class GpuError extends Error {
  override name = "GpuError";
}

/** Workgroup counts of one dispatch. */
export type Grid = readonly [number, number, number];

const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC |
  GPUBufferUsage.COPY_DST;
const RING_BYTES = 1 << 20;
const BIND_GROUP_CACHE_MAX = 8192;

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  id: number;
  spec: KernelSpec;
  uniformBytes: number;
}

/**
 * Everything a {@linkcode Gpu} records into and caches: shared by every view of one device made
 * with {@linkcode Gpu.withVariant}, so views share pools, pipelines and the command stream.
 */
class GpuState {
  pipelines = new Map<string, CachedPipeline>();
  pipelinesBySpec = new WeakMap<KernelSpec, CachedPipeline>();
  pipelineChecks: Promise<void>[] = [];
  bindGroups = new Map<string, GPUBindGroup>();
  pool = new Map<number, GPUBuffer[]>();
  bufferIds = new WeakMap<GPUBuffer, number>();
  nextBufferId = 1;
  staging: GPUBuffer[] = [];

  encoder: GPUCommandEncoder | null = null;
  pass: GPUComputePassEncoder | null = null;
  ring: GPUBuffer;
  ringHost = new ArrayBuffer(RING_BYTES);
  ringU32 = new Uint32Array(this.ringHost);
  ringF32 = new Float32Array(this.ringHost);
  ringI32 = new Int32Array(this.ringHost);
  ringUsed = 0;
  ringAlign: number;
  lost: DeviceLostError | null = null;
  lostPromise: Promise<never>;
  uncaptured: string | null = null;
  dispatchCount = 0;
  /** Bytes of tensor buffers held by callers now, their most since the last reset, and created. */
  liveBytes = 0;
  peakBytes = 0;
  createdBytes = 0;

  constructor(readonly device: GPUDevice, report: AdapterReport) {
    this.ringAlign = Math.max(16, report.limits.minUniformBufferOffsetAlignment);
    this.ring = device.createBuffer({
      label: "uniform ring",
      size: RING_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.lostPromise = device.lost.then((info) => {
      this.lost = new DeviceLostError(
        `GPU device lost (${info.reason ?? "unknown"}): ${info.message || "no message"}`,
      );
      throw this.lost;
    });
    this.lostPromise.catch(() => {}); // observed through #checkLost and races
    device.addEventListener("uncapturederror", (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.uncaptured ??= `WebGPU error: ${e.message}`;
    });
  }
}

/**
 * A device plus everything kernels need to run on it. Create with {@linkcode Gpu.create}.
 *
 * @example
 * ```ts ignore
 * import { Gpu } from "./runtime.ts";
 * const gpu = await Gpu.create();
 * const x = gpu.upload([4], new Float32Array([1, 2, 3, 4]));
 * console.log(await gpu.read(x)); // Float32Array [1, 2, 3, 4]
 * ```
 */
export class Gpu {
  readonly device: GPUDevice;
  readonly report: AdapterReport;
  /** Kernel family the launchers use (`withVariant` gives a view with the other). */
  readonly variant: KernelVariant;
  #s: GpuState;

  private constructor(state: GpuState, report: AdapterReport, variant: KernelVariant) {
    this.#s = state;
    this.device = state.device;
    this.report = report;
    this.variant = variant;
  }

  /**
   * Tensor memory: bytes of the buffers callers hold now (`live`), the most they held at once
   * since the last {@linkcode Gpu.resetPeakBytes} (`peak`), and every buffer created (`created`:
   * the pool keeps released buffers, so this is what the device holds).
   *
   * @example
   * ```ts ignore
   * gpu.resetPeakBytes(); session.step(batch, ctx); gpu.memory().peak;
   * ```
   */
  memory(): { live: number; peak: number; created: number } {
    const s = this.#s;
    return { live: s.liveBytes, peak: s.peakBytes, created: s.createdBytes };
  }

  /** Starts a new peak at the bytes held now. */
  resetPeakBytes(): void {
    this.#s.peakBytes = this.#s.liveBytes;
  }

  /** Dispatches recorded since creation (all views); benchmarks and tests use it to count work. */
  get dispatchCount(): number {
    return this.#s.dispatchCount;
  }

  /**
   * A view of this device whose kernels use the `variant` family: the same buffers, pool,
   * pipelines and command stream, only the launchers' choice differs. Tests run both families
   * through two views; nothing is switched and restored.
   *
   * @example
   * ```ts ignore
   * const tiled = gpu.withVariant("tiled");
   * matmul(tiled, { a, b, c }); // recorded in order with gpu's own work
   * ```
   */
  withVariant(variant: KernelVariant): Gpu {
    return variant === this.variant ? this : new Gpu(this.#s, this.report, variant);
  }

  /**
   * Acquires an adapter and device ({@linkcode requestGpuDevice}) and wraps them.
   *
   * @example
   * ```ts ignore
   * const gpu = await Gpu.create({ adapter: "software", variant: "regblock" });
   * ```
   */
  static async create(options: DeviceOptions = {}): Promise<Gpu> {
    const { device, report } = await requestGpuDevice(options);
    return new Gpu(new GpuState(device, report), report, report.variant);
  }

  // ---------------------------------------------------------------- tensors and the buffer pool

  #checkLost(): void {
    if (this.#s.lost) throw this.#s.lost;
  }

  #bufferId(b: GPUBuffer): number {
    let id = this.#s.bufferIds.get(b);
    if (id === undefined) this.#s.bufferIds.set(b, id = this.#s.nextBufferId++);
    return id;
  }

  #acquire(bytes: number, shape: Shape): GPUBuffer {
    this.#checkLost();
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const { maxBufferSize, maxStorageBufferBindingSize } = this.report.limits;
    const limit = Math.min(maxBufferSize, maxStorageBufferBindingSize);
    if (size > limit) {
      throw new ShapeError(
        `tensor ${fmtShape(shape)} needs ${size} bytes, over this device's storage buffer limit ` +
          `of ${limit} bytes (maxStorageBufferBindingSize ${maxStorageBufferBindingSize})`,
      );
    }
    const s = this.#s;
    const pooled = this.#pooled(size);
    const buffer = pooled ?? this.device.createBuffer({ size, usage: STORAGE_USAGE });
    if (!pooled) s.createdBytes += size;
    s.liveBytes += buffer.size;
    s.peakBytes = Math.max(s.peakBytes, s.liveBytes);
    return buffer;
  }

  /**
   * A released buffer of exactly `size` bytes, else the smallest one of at most twice that: a
   * step over a shorter window (an epoch's last chunk) then reuses the full window's scratch
   * instead of creating buffers, and no request holds more than twice its bytes.
   */
  #pooled(size: number): GPUBuffer | undefined {
    const pool = this.#s.pool;
    if (pool.get(size)?.length) return pool.get(size)!.pop();
    let best = Infinity;
    for (const [have, list] of pool) {
      if (list.length && have > size && have <= 2 * size && have < best) best = have;
    }
    return pool.get(best)?.pop();
  }

  /**
   * A tensor with uninitialised contents when it comes from the pool (fresh buffers are zero).
   * Use {@linkcode Gpu.zeros} when the contents matter.
   */
  tensor<D extends DType = "f32">(shape: Shape, dtype: D = "f32" as D): Tensor<D> {
    const n = numel(shape);
    return new Tensor(this.#acquire(n * BYTES_PER_ELEMENT, shape), shape, dtype);
  }

  /** A zero-filled tensor (the clear is recorded in order with the dispatches). */
  zeros<D extends DType = "f32">(shape: Shape, dtype: D = "f32" as D): Tensor<D> {
    const t = this.tensor(shape, dtype);
    this.fill(t, 0);
    return t;
  }

  /** A tensor holding `data`; `data.length` must equal the shape's element count. */
  upload<D extends DType = "f32">(
    shape: Shape,
    data: HostArray<D> | ArrayLike<number>,
    dtype: D = "f32" as D,
  ): Tensor<D> {
    const t = this.tensor(shape, dtype);
    this.write(t, data);
    return t;
  }

  /**
   * Writes host data into `t`, after all work recorded so far (pending dispatches are submitted
   * first, because queue writes would otherwise overtake them).
   */
  write(t: Tensor, data: ArrayLike<number>): void {
    if (data.length !== t.size) {
      throw new ShapeError(`write to ${t}: got ${data.length} values, expected ${t.size}`);
    }
    if (t.size === 0) return; // a zero-length queue write panics Deno 2.9's WebGPU
    const host = t.dtype === "f32"
      ? (data instanceof Float32Array ? data : Float32Array.from(data))
      : t.dtype === "u32"
      ? (data instanceof Uint32Array ? data : Uint32Array.from(data))
      : (data instanceof Int32Array ? data : Int32Array.from(data));
    this.submit();
    // Typed-array data offsets and sizes are in elements.
    this.device.queue.writeBuffer(
      t.buffer,
      t.byteOffset,
      host as Float32Array<ArrayBuffer>,
      0,
      t.size,
    );
  }

  /** Returns the tensor's buffer to the pool. The tensor and all its views become invalid. */
  release(t: Tensor): void {
    if (t.offset !== 0) throw new ShapeError(`release: ${t} is a view; release its base tensor`);
    this.#s.liveBytes -= t.buffer.size;
    const list = this.#s.pool.get(t.buffer.size) ?? [];
    list.push(t.buffer);
    this.#s.pool.set(t.buffer.size, list);
  }

  // ------------------------------------------------------------------------- recording work

  #pipeline(spec: KernelSpec): CachedPipeline {
    // Launchers reuse spec objects, so most lookups stop here without building the source.
    const bySpec = this.#s.pipelinesBySpec.get(spec);
    if (bySpec) return bySpec;
    const code = kernelSource(spec);
    const hit = this.#s.pipelines.get(code);
    if (hit) {
      this.#s.pipelinesBySpec.set(spec, hit);
      return hit;
    }
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ label: spec.name, code });
    const pipeline = this.device.createComputePipeline({
      label: spec.name,
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
    // Stored, not thrown: a rejection nobody awaits yet would be an unhandled one.
    this.#s.pipelineChecks.push(
      this.device.popErrorScope().then((err) => {
        if (err) this.#s.uncaptured ??= `kernel ${spec.name} failed to compile:\n${err.message}`;
      }),
    );
    const entry = {
      pipeline,
      id: this.#s.pipelines.size + 1,
      spec,
      uniformBytes: paramBytes(spec),
    };
    this.#s.pipelines.set(code, entry);
    this.#s.pipelinesBySpec.set(spec, entry);
    return entry;
  }

  #computePass(): GPUComputePassEncoder {
    this.#s.encoder ??= this.device.createCommandEncoder();
    this.#s.pass ??= this.#s.encoder.beginComputePass();
    return this.#s.pass;
  }

  #copyEncoder(): GPUCommandEncoder {
    this.#s.pass?.end();
    this.#s.pass = null;
    this.#s.encoder ??= this.device.createCommandEncoder();
    return this.#s.encoder;
  }

  /**
   * Records one dispatch of `spec` with `tensors` bound by name and `params` packed into its
   * uniform block. Checks dtypes, vec4 alignment and grid limits before recording. Tensors that
   * share a buffer are bound `read_write` (see `promoteAliased`).
   */
  run(
    spec: KernelSpec,
    tensors: Readonly<Record<string, Tensor>>,
    params: Readonly<Record<string, number>>,
    grid: Grid,
  ): void {
    this.#checkLost();
    const maxGroups = this.report.limits.maxComputeWorkgroupsPerDimension;
    if (grid.some((g) => !Number.isInteger(g) || g < 0 || g > maxGroups)) {
      throw new ShapeError(
        `${spec.name}: grid [${grid.join(", ")}] exceeds maxComputeWorkgroupsPerDimension ` +
          `${maxGroups}`,
      );
    }
    if (grid[0] * grid[1] * grid[2] === 0) return;
    const cached = this.#pipeline(promoteAliased(spec, tensors));
    if (this.#s.ringUsed + cached.uniformBytes > RING_BYTES) this.submit();
    const base = this.#s.ringUsed;
    const w0 = base / 4;
    spec.params.forEach(([name, type], i) => {
      const v = params[name];
      if (v === undefined || !Number.isFinite(v)) {
        throw new RangeError(`${spec.name}: parameter ${name} is ${v}, expected a finite number`);
      }
      if (type === "f32") this.#s.ringF32[w0 + i] = v;
      else if (type === "u32") this.#s.ringU32[w0 + i] = v;
      else this.#s.ringI32[w0 + i] = v;
    });
    const keyParts = [cached.id, base];
    const entries: GPUBindGroupEntry[] = [{
      binding: 0,
      resource: { buffer: this.#s.ring, offset: base, size: cached.uniformBytes },
    }];
    spec.bindings.forEach((b, i) => {
      const t = tensors[b.name];
      if (!t) throw new ShapeError(`${spec.name}: missing tensor for binding ${b.name}`);
      if (t.dtype !== b.dtype) {
        throw new ShapeError(`${spec.name}: ${b.name} must be ${b.dtype}, got ${t}`);
      }
      const width = b.width ?? 1;
      if (t.offset % width !== 0) {
        throw new ShapeError(
          `${spec.name}: ${b.name} is read as vec${width} but ${t} starts at offset ${t.offset}`,
        );
      }
      this.#s.ringU32[w0 + spec.params.length + i] = t.offset / width;
      entries.push({ binding: i + 1, resource: { buffer: t.buffer } });
      keyParts.push(this.#bufferId(t.buffer));
    });
    this.#s.ringUsed = base +
      Math.ceil(cached.uniformBytes / this.#s.ringAlign) * this.#s.ringAlign;

    const key = keyParts.join(",");
    let group = this.#s.bindGroups.get(key);
    if (!group) {
      if (this.#s.bindGroups.size >= BIND_GROUP_CACHE_MAX) this.#s.bindGroups.clear();
      group = this.device.createBindGroup({
        label: spec.name,
        layout: cached.pipeline.getBindGroupLayout(0),
        entries,
      });
      this.#s.bindGroups.set(key, group);
    }
    const pass = this.#computePass();
    pass.setPipeline(cached.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(grid[0], grid[1], grid[2]);
    this.#s.dispatchCount++;
  }

  /** Records a fill of `t` with `value` (zero uses the native clear). */
  fill(t: Tensor, value: number): void {
    if (value === 0 && t.byteOffset % 4 === 0 && t.byteLength % 4 === 0) {
      this.#copyEncoder().clearBuffer(t.buffer, t.byteOffset, t.byteLength);
      return;
    }
    if (t.dtype !== "f32") throw new ShapeError(`fill: ${t} takes only 0; nonzero fills are f32`);
    this.run(FILL, { y: t }, { n: t.size, value }, gridFor(t.size, 256));
  }

  /** Records a copy of `src` into `dst` (same element count). */
  copy(src: Tensor, dst: Tensor): void {
    if (src.size !== dst.size) throw new ShapeError(`copy: ${src} into ${dst}: sizes differ`);
    this.#copyEncoder().copyBufferToBuffer(
      src.buffer,
      src.byteOffset,
      dst.buffer,
      dst.byteOffset,
      src.byteLength,
    );
  }

  /** Ends the pass, writes this batch's uniforms and submits one command buffer. */
  submit(): void {
    if (!this.#s.encoder) return;
    this.#s.pass?.end();
    this.#s.pass = null;
    const cmd = this.#s.encoder.finish();
    this.#s.encoder = null;
    if (this.#s.ringUsed > 0) {
      this.device.queue.writeBuffer(this.#s.ring, 0, this.#s.ringHost, 0, this.#s.ringUsed);
      this.#s.ringUsed = 0;
    }
    this.device.queue.submit([cmd]);
  }

  /** Awaits `p`, turning any failure on a lost device into the {@linkcode DeviceLostError}. */
  async #raceLost<T>(p: Promise<T>): Promise<T> {
    try {
      return await Promise.race([p, this.#s.lostPromise]);
    } catch (e) {
      if (this.#s.lost) throw this.#s.lost;
      // device.lost can settle a turn after the operation that failed because of it.
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (this.#s.lost) throw this.#s.lost;
      throw new GpuError(`GPU operation failed: ${(e as Error).message}`);
    }
  }

  async #checkErrors(): Promise<void> {
    const checks = this.#s.pipelineChecks.splice(0);
    await Promise.all(checks);
    if (this.#s.uncaptured) {
      const msg = this.#s.uncaptured;
      this.#s.uncaptured = null;
      throw new GpuError(msg);
    }
  }

  /** Submits pending work and waits until the GPU has finished it; throws any kernel error. */
  async sync(): Promise<void> {
    this.#checkLost();
    this.submit();
    await this.#raceLost(this.device.queue.onSubmittedWorkDone());
    await this.#checkErrors();
  }

  /** Copies `t` to the host after all recorded work. The one readback path; costs a sync. */
  async read<D extends DType>(t: Tensor<D>): Promise<HostArray<D>> {
    this.#checkLost();
    const size = Math.max(16, Math.ceil(t.byteLength / 16) * 16);
    const idx = this.#s.staging.findIndex((b) => b.size >= size && b.size <= 4 * size);
    const staging = idx >= 0 ? this.#s.staging.splice(idx, 1)[0] : this.device.createBuffer({
      label: "readback",
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    if (t.byteLength > 0) {
      this.#copyEncoder().copyBufferToBuffer(t.buffer, t.byteOffset, staging, 0, t.byteLength);
    }
    this.submit();
    await this.#raceLost(staging.mapAsync(GPUMapMode.READ, 0, size));
    const bytes = staging.getMappedRange(0, size).slice(0, t.byteLength);
    staging.unmap();
    if (this.#s.staging.length < 8) this.#s.staging.push(staging);
    else staging.destroy();
    await this.#checkErrors();
    const out = t.dtype === "f32"
      ? new Float32Array(bytes)
      : t.dtype === "u32"
      ? new Uint32Array(bytes)
      : new Int32Array(bytes);
    return out as HostArray<D>;
  }

  /** Drops cached pipelines and pooled buffers and destroys the device. */
  destroy(): void {
    this.submit();
    for (const list of this.#s.pool.values()) for (const b of list) b.destroy();
    this.#s.pool.clear();
    this.#s.bindGroups.clear();
    this.#s.pipelines.clear();
    this.#s.pipelinesBySpec = new WeakMap();
    this.device.destroy();
  }
}

/**
 * Workgroup counts covering `n` invocations of a 1-D kernel with `workgroupSize` lanes, folded
 * into two dimensions past 65535 groups; kernels recover the linear index with
 * {@linkcode LINEAR_INDEX_WGSL}.
 *
 * @example
 * ```ts
 * import { gridFor } from "./runtime.ts";
 * gridFor(1000, 256); // [4, 1, 1]
 * ```
 */
export function gridFor(n: number, workgroupSize: number): Grid {
  const groups = Math.ceil(n / workgroupSize);
  if (groups <= 65535) return [groups, 1, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y, 1];
}

/** WGSL helper: linear invocation index of a 1-D kernel launched with {@linkcode gridFor}. */
export const LINEAR_INDEX_WGSL = `
fn linear_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32, size: u32) -> u32 {
  return (wg.y * nwg.x + wg.x) * size + lid;
}`;

const promoted = new WeakMap<KernelSpec, KernelSpec>();

/**
 * WebGPU binds whole buffers, and one buffer may not be bound both `read` and `read_write` in a
 * dispatch (an exclusive usage), even through disjoint views; binding it `read_write` several
 * times is allowed. So when two bound tensors share a buffer, every binding is promoted to
 * `read_write` (one extra cached pipeline per spec at most). Whether the views may overlap is
 * the launcher's business ({@linkcode checkOverlap} in alias.ts).
 */
function promoteAliased(spec: KernelSpec, tensors: Readonly<Record<string, Tensor>>): KernelSpec {
  const seen = new Set<GPUBuffer>();
  let shared = false;
  for (const b of spec.bindings) {
    const t = tensors[b.name];
    if (!t) continue;
    if (seen.has(t.buffer)) shared = true;
    seen.add(t.buffer);
  }
  if (!shared) return spec;
  let p = promoted.get(spec);
  if (!p) {
    p = {
      ...spec,
      name: `${spec.name}[aliased]`,
      bindings: spec.bindings.map((b) => ({ ...b, access: "read_write" as const })),
    };
    promoted.set(spec, p);
  }
  return p;
}

const FILL: KernelSpec = {
  name: "fill",
  bindings: [{ name: "y", dtype: "f32", access: "read_write" }],
  params: [["n", "u32"], ["value", "f32"]],
  body: `${LINEAR_INDEX_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_index(wg, nwg, lid, 256u);
  if (i < P.n) { y[P.off_y + i] = P.value; }
}`,
};
