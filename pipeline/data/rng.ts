/**
 * A small seeded random number generator for the data pipeline (synthetic corpora, AWD-style
 * BPTT lengths). Same seed and stream id → same sequence on every platform, so runs and
 * generated corpora are reproducible; the state can be saved and restored for resumed runs.
 *
 * The core is xoshiro128** (period 2^128 − 1), seeded through splitmix32 so that nearby seeds
 * give unrelated sequences. It is not cryptographic.
 *
 * @module
 */

/** Mixes a 32-bit word; used to expand a seed into the four state words. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Seeded generator: uniform, integer, normal and gamma variates.
 *
 * `stream` selects an independent sequence for the same seed (e.g. one per data split), so that
 * changing how much one consumer draws does not shift what another one sees.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const a = new Rng(42), b = new Rng(42);
 * a.uniform() === b.uniform(); // true
 * new Rng(42, 1).uniform() !== new Rng(42, 0).uniform(); // true (independent streams)
 * ```
 */
export class Rng {
  #s: Uint32Array;

  constructor(seed: number, stream = 0) {
    if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(stream)) {
      throw new RangeError(`Rng: seed and stream must be safe integers, got ${seed}, ${stream}`);
    }
    // Fold both 32-bit halves of seed and stream in, so seeds above 2^32 still matter.
    const lo = seed >>> 0, hi = Math.floor(seed / 4294967296) >>> 0;
    const st = { s: lo };
    const mix = splitmix32(st) ^ hi;
    st.s = (mix ^ Math.imul(stream >>> 0, 0x632be5ab) ^ Math.floor(stream / 4294967296)) | 0;
    this.#s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) this.#s[i] = splitmix32(st);
    if ((this.#s[0] | this.#s[1] | this.#s[2] | this.#s[3]) === 0) this.#s[0] = 1;
  }

  /**
   * Restores a generator saved with {@linkcode Rng.state}.
   *
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * const r = new Rng(7);
   * const saved = r.state();
   * const x = r.uniform();
   * Rng.fromState(saved).uniform() === x; // true
   * ```
   */
  static fromState(state: readonly number[]): Rng {
    if (state.length !== 4 || state.some((w) => !Number.isInteger(w) || w < 0 || w >= 2 ** 32)) {
      throw new RangeError(`Rng.fromState: expected 4 unsigned 32-bit words`);
    }
    const r = new Rng(0);
    r.#s.set(state);
    return r;
  }

  /** The 4-word internal state (plain numbers, JSON-serialisable). */
  state(): number[] {
    return Array.from(this.#s);
  }

  /** Next raw 32-bit output, an integer in [0, 2^32). */
  nextU32(): number {
    const s = this.#s;
    const x = Math.imul(s[1], 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 11) | (s[3] >>> 21);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.nextU32() >>> 5, b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** Uniform double in (0, 1): safe to take the log of. */
  uniformOpen(): number {
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    return u;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling); `n` in [1, 2^32]. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) {
      throw new RangeError(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    }
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /**
   * Normal variate N(mean, sd²) by Box–Muller. The second variate of each pair is discarded
   * so that the generator state is just the four words (simple to save and restore).
   */
  normal(mean = 0, sd = 1): number {
    const u = this.uniformOpen(), v = this.uniform();
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /**
   * Gamma(shape, 1) variate (Marsaglia–Tsang; shapes below 1 via the u^(1/shape) boost).
   * Used for Dirichlet draws: normalised independent gammas.
   */
  gamma(shape: number): number {
    if (!(shape > 0) || !Number.isFinite(shape)) {
      throw new RangeError(`Rng.gamma: shape must be finite and > 0, got ${shape}`);
    }
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.uniformOpen(), 1 / shape);
    const d = shape - 1 / 3, c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number, v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.uniformOpen();
      if (u < 1 - 0.0331 * x * x * x * x) return d * v;
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
    }
  }
}
