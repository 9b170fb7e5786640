/**
 * Typed GPU buffer handles. A {@linkcode Tensor} knows its shape, dtype and element offset into
 * its buffer, so launchers check operands before any dispatch and views need no copies.
 * Layouts are row-major: the last dimension is contiguous.
 *
 * @module
 */

/** Element types that kernels read and write. All are 4 bytes. */
export type DType = "f32" | "u32" | "i32";

/** A row-major shape, outermost dimension first. */
export type Shape = readonly number[];

/** The host array type for each dtype. */
export type HostArray<D extends DType> = D extends "f32" ? Float32Array
  : D extends "u32" ? Uint32Array
  : Int32Array;

/** Bytes per element of every {@linkcode DType}. */
export const BYTES_PER_ELEMENT = 4;

/** Thrown by launchers and allocators before any dispatch when shapes or dtypes disagree. */
export class ShapeError extends RangeError {
  override name = "ShapeError";
}

/**
 * Number of elements of a shape; validates that every dimension is a non-negative integer.
 *
 * @example
 * ```ts
 * import { numel } from "./tensor.ts";
 * numel([20, 4, 200]); // 16000
 * ```
 */
export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`invalid shape [${shape.join(", ")}]: dimensions must be integers >= 0`);
    }
    n *= d;
  }
  return n;
}

/** `[2, 3]` → `"[2, 3]"`, for error messages. */
export function fmtShape(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

let nextId = 1;

/**
 * A typed view of (part of) a GPU buffer: `shape` elements of `dtype`, starting `offset`
 * elements into `buffer`. Created by `Gpu.tensor`/`Gpu.upload`; {@linkcode Tensor.view} makes
 * sub-views sharing the buffer.
 *
 * @example
 * ```ts ignore
 * const h = gpu.tensor([35, 20, 200]);          // [T, B, H]
 * const h3 = h.view(3 * 20 * 200, [20, 200]);    // time step 3, [B, H]
 * ```
 */
export class Tensor<D extends DType = DType> {
  /** Unique per allocation; views share their base's id. */
  readonly id: number;
  readonly size: number;

  constructor(
    readonly buffer: GPUBuffer,
    readonly shape: Shape,
    readonly dtype: D,
    readonly offset = 0,
    id?: number,
  ) {
    this.size = numel(shape);
    this.id = id ?? nextId++;
    const capacity = buffer.size / BYTES_PER_ELEMENT;
    if (offset < 0 || offset + this.size > capacity) {
      throw new ShapeError(
        `view ${fmtShape(shape)} at offset ${offset} exceeds its buffer of ${capacity} elements`,
      );
    }
  }

  /** Byte length of the viewed elements. */
  get byteLength(): number {
    return this.size * BYTES_PER_ELEMENT;
  }

  /** Byte offset of the first viewed element. */
  get byteOffset(): number {
    return this.offset * BYTES_PER_ELEMENT;
  }

  /** A view of `shape` starting `offset` elements after this view's start. */
  view(offset: number, shape: Shape): Tensor<D> {
    return new Tensor(this.buffer, shape, this.dtype, this.offset + offset, this.id);
  }

  /** The same elements under another shape of equal size. */
  reshape(shape: Shape): Tensor<D> {
    if (numel(shape) !== this.size) {
      throw new ShapeError(`cannot reshape ${fmtShape(this.shape)} to ${fmtShape(shape)}`);
    }
    return new Tensor(this.buffer, shape, this.dtype, this.offset, this.id);
  }

  toString(): string {
    return `Tensor<${this.dtype}>${fmtShape(this.shape)}`;
  }
}

/**
 * Checks that `t` has exactly `shape` (and `dtype` when given), naming `what` in the error.
 *
 * @example
 * ```ts ignore
 * expectShape("lstm gates", gates, [B, 4 * H], "f32");
 * ```
 */
export function expectShape(what: string, t: Tensor, shape: Shape, dtype?: DType): void {
  if (dtype && t.dtype !== dtype) {
    throw new ShapeError(`${what}: expected dtype ${dtype}, got ${t.dtype} ${fmtShape(t.shape)}`);
  }
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`${what}: expected shape ${fmtShape(shape)}, got ${fmtShape(t.shape)}`);
  }
}

/**
 * Checks that `t` holds `size` elements (any shape), naming `what` in the error.
 *
 * @example
 * ```ts ignore
 * expectSize("adam m", m, w.size, "f32");
 * ```
 */
export function expectSize(what: string, t: Tensor, size: number, dtype?: DType): void {
  if (dtype && t.dtype !== dtype) {
    throw new ShapeError(`${what}: expected dtype ${dtype}, got ${t.dtype} ${fmtShape(t.shape)}`);
  }
  if (t.size !== size) {
    throw new ShapeError(`${what}: expected ${size} elements, got ${fmtShape(t.shape)}`);
  }
}
