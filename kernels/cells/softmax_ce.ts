/**
 * Fused softmax + cross-entropy over large vocabularies: per-row loss and, optionally, the logit
 * gradient, without materialising the probabilities. Log-sum-exp is stabilised by the running
 * row maximum, so logits of any magnitude that f32 holds give finite results.
 *
 * Variants (`gpu.variant`):
 * - `regblock`: one thread per row, no barriers. Pass 1 reads the row once, keeping an online
 *   maximum `m` and a sum `s` of `exp(x - m)` rescaled by `exp(m_old - m)` whenever the maximum
 *   grows; pass 2 re-reads the row to write the gradient.
 * - `tiled`: one 256-thread workgroup per row. Each thread runs the same online recurrence over
 *   a strided slice of the row, then the `(m, s)` pairs are merged by a shared-memory tree
 *   (`m = max(m1, m2)`, `s = s1·exp(m1 - m) + s2·exp(m2 - m)`, one `workgroupBarrier` per level)
 *   and the threads stride over the row again to write the gradient.
 *
 * On software adapters (llvmpipe) a shader invocation may run only 65535 loop iterations in
 * total, so the regblock loops are unrolled by 8 and rows wider than ~260000 run the tiled kernel
 * (see `kernelVariantFor`).
 *
 * Targets are not validated on the host (they live on the GPU): the shader clamps a target
 * `>= V` to `V - 1`, which keeps every access in bounds; a row with a bad target therefore gets
 * the loss and gradient of class `V - 1`. Validate targets where they are made.
 *
 * @module
 */

import type { Gpu } from "../runtime/runtime.ts";
import { gridFor, LINEAR_INDEX_WGSL } from "../runtime/runtime.ts";
import { type KernelVariant, SOFTWARE_LOOP_BUDGET } from "../runtime/device.ts";
import type { BindingDecl, KernelSpec } from "../runtime/kernel.ts";
import { expectShape, fmtShape, ShapeError, type Tensor } from "../runtime/tensor.ts";
import { overlaps } from "../runtime/alias.ts";

/** Rows per workgroup of the regblock kernel: small so a few dozen rows still spread over cores. */
const WG_ROWS = 16;
/** Threads per row of the tiled kernel (a power of two: the tree halves it). */
const WG_TILE = 256;

/** Where the gradient goes: nowhere, a binding of its own, or into the logits buffer. */
type GradMode = "none" | "separate" | "shared";

// Finite stand-in for -inf (WGSL has no infinity literal); exp(NEG_BIG - x) is 0 for any
// finite x, and merging two empty (NEG_BIG, 0) states stays (NEG_BIG, 0) without NaN.
const COMMON_WGSL = `
const NEG_BIG: f32 = -3.0e38;

struct Online { m: f32, s: f32 }

fn online_push(st: Online, x: f32) -> Online {
  if (x > st.m) { return Online(x, st.s * exp(st.m - x) + 1.0); }
  return Online(st.m, st.s + exp(x - st.m));
}
`;

function gradStore(mode: GradMode, index: string): string {
  if (mode === "separate") return `dlogits[P.off_dlogits + ${index}] = g;`;
  if (mode === "shared") return `logits[P.grad_off + ${index}] = g;`;
  return "";
}

/** Elements per unrolled step of the regblock loops (fewer iterations: `SOFTWARE_LOOP_BUDGET`). */
const UNROLL = 8;

const R = (n: number, f: (i: number) => string, sep = "\n"): string =>
  Array.from({ length: n }, (_, i) => f(i)).join(sep);

/** `max` over WGSL expressions as a balanced tree (short dependency chains). */
function maxTree(xs: string[]): string {
  if (xs.length === 1) return xs[0];
  const h = xs.length >> 1;
  return `max(${maxTree(xs.slice(0, h))}, ${maxTree(xs.slice(h))})`;
}

function regblockBody(mode: GradMode): string {
  // Unrolled by UNROLL: a chunk's maximum rescales the sum at most once (and only when it grows,
  // so s is never multiplied by an inexact exp(0)); a scalar tail handles V % UNROLL.
  const grad = mode === "none" ? "" : `let inv = P.scale / s;
  for (var j: u32 = 0u; j < vu; j = j + ${UNROLL}u) {
${
    R(UNROLL, (i) =>
      `    { let g = exp(logits[base + j + ${i}u] - m) * inv - select(0.0, P.scale, j + ${i}u == t);
      ${gradStore(mode, `row + j + ${i}u`)} }`)
  }
  }
  for (var j: u32 = vu; j < V; j = j + 1u) {
    let g = exp(logits[base + j] - m) * inv - select(0.0, P.scale, j == t);
    ${gradStore(mode, "row + j")}
  }`;
  return `${LINEAR_INDEX_WGSL}
${COMMON_WGSL}
@compute @workgroup_size(${WG_ROWS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = linear_index(wg, nwg, lid, ${WG_ROWS}u);
  if (r >= P.rows) { return; }
  let V = P.vocab;
  let vu = V - V % ${UNROLL}u;
  let row = r * V;
  let base = P.off_logits + row;
  let t = min(targets[P.off_targets + r], V - 1u);
  // Read before pass 2 may overwrite it (in-place gradient).
  let xt = logits[base + t];
  var st = Online(NEG_BIG, 0.0);
  for (var j: u32 = 0u; j < vu; j = j + ${UNROLL}u) {
${R(UNROLL, (i) => `    let x${i} = logits[base + j + ${i}u];`)}
    let cm = ${maxTree(Array.from({ length: UNROLL }, (_, i) => `x${i}`))};
    if (cm > st.m) {
      st.s = st.s * exp(st.m - cm);
      st.m = cm;
    }
    st.s = st.s + (${R(UNROLL, (i) => `exp(x${i} - st.m)`, " + ")});
  }
  for (var j: u32 = vu; j < V; j = j + 1u) { st = online_push(st, logits[base + j]); }
  let m = st.m;
  let s = st.s;
  loss[P.off_loss + r] = (m - xt) + log(s);
  ${grad}
}`;
}

function tiledBody(mode: GradMode): string {
  return `${COMMON_WGSL}
var<workgroup> sh_m: array<f32, ${WG_TILE}>;
var<workgroup> sh_s: array<f32, ${WG_TILE}>;

@compute @workgroup_size(${WG_TILE})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  // One workgroup per row, folded into 2-D past 65535 rows. Spare groups of a folded grid run
  // on a clamped row and skip their writes, so every barrier stays in uniform control flow.
  let r_raw = wg.y * nwg.x + wg.x;
  let in_range = r_raw < P.rows;
  let r = min(r_raw, P.rows - 1u);
  let V = P.vocab;
  let row = r * V;
  let base = P.off_logits + row;
  let t = min(targets[P.off_targets + r], V - 1u);
  // Thread 0 reads the target logit before the barriers that precede any in-place write.
  var xt: f32 = 0.0;
  if (lid == 0u) { xt = logits[base + t]; }
  var st = Online(NEG_BIG, 0.0);
  for (var j: u32 = lid; j < V; j = j + ${WG_TILE}u) { st = online_push(st, logits[base + j]); }
  sh_m[lid] = st.m;
  sh_s[lid] = st.s;
  workgroupBarrier();
  for (var k: u32 = ${WG_TILE / 2}u; k > 0u; k = k >> 1u) {
    if (lid < k) {
      let m2 = sh_m[lid + k];
      let m = max(st.m, m2);
      st = Online(m, st.s * exp(st.m - m) + sh_s[lid + k] * exp(m2 - m));
      sh_m[lid] = st.m;
      sh_s[lid] = st.s;
    }
    workgroupBarrier();
  }
  let m = sh_m[0];
  let s = sh_s[0];
  if (!in_range) { return; }
  if (lid == 0u) { loss[P.off_loss + r] = (m - xt) + log(s); }
  ${
    mode === "none" ? "" : `let inv = P.scale / s;
  for (var j: u32 = lid; j < V; j = j + ${WG_TILE}u) {
    let g = exp(logits[base + j] - m) * inv - select(0.0, P.scale, j == t);
    ${gradStore(mode, "row + j")}
  }`
  }
}`;
}

const specs = new Map<string, KernelSpec>();

function specFor(variant: KernelVariant, mode: GradMode, logitsWritable: boolean): KernelSpec {
  const key = `${variant}/${mode}/${logitsWritable}`;
  let spec = specs.get(key);
  if (spec) return spec;
  const bindings: BindingDecl[] = [
    { name: "logits", dtype: "f32", access: logitsWritable ? "read_write" : "read" },
    { name: "targets", dtype: "u32", access: "read" },
    { name: "loss", dtype: "f32", access: "read_write" },
  ];
  if (mode === "separate") bindings.push({ name: "dlogits", dtype: "f32", access: "read_write" });
  spec = {
    name: `softmax_ce_${variant}_${mode}${logitsWritable ? "_rw" : ""}`,
    bindings,
    params: [["rows", "u32"], ["vocab", "u32"], ["scale", "f32"], ["grad_off", "u32"]],
    body: variant === "regblock" ? regblockBody(mode) : tiledBody(mode),
  };
  specs.set(key, spec);
  return spec;
}

/** Loop iterations of one regblock thread: two passes of V / UNROLL chunks plus scalar tails. */
function regblockIterations(v: number): number {
  return 2 * (Math.floor(v / UNROLL) + (v % UNROLL));
}

/** Loop iterations of one tiled thread: two strided passes plus the reduction tree. */
function tiledIterations(v: number): number {
  return 2 * Math.ceil(v / WG_TILE) + Math.log2(WG_TILE);
}

/**
 * The variant that will actually run for vocabulary size `v`: `gpu.variant`, except that on a
 * software adapter a regblock row loop too long for llvmpipe's loop budget (V > ~260000) runs the
 * tiled kernel, which splits each row over 256 threads. Past the tiled limit (V > ~8.3M) on a
 * software adapter this throws a `RangeError` instead of returning wrong results.
 */
function kernelVariantFor(gpu: Gpu, v: number): KernelVariant {
  if (!gpu.report.isFallback) return gpu.variant;
  if (gpu.variant === "regblock" && regblockIterations(v) <= SOFTWARE_LOOP_BUDGET) {
    return "regblock";
  }
  if (tiledIterations(v) > SOFTWARE_LOOP_BUDGET) {
    throw new RangeError(
      `softmaxCrossEntropy: vocabulary size ${v} needs ${tiledIterations(v)} loop iterations per ` +
        `thread, over the ${SOFTWARE_LOOP_BUDGET} that software adapters (llvmpipe) execute`,
    );
  }
  return "tiled";
}

/**
 * Records softmax cross-entropy per row:
 * `loss[n] = logsumexp(logits[n, :]) - logits[n, t]` with `t = min(targets[n], V - 1)`, and when
 * `dLogits` is given, `dLogits[n, v] = gradScale · (softmax(logits[n, :])[v] - [v == t])`
 * (`gradScale` defaults to 1; pass `1 / N` for the gradient of the mean loss).
 *
 * `logits: [N, V]` f32 (V >= 1), `targets: [N]` u32, `loss: [N]` f32, `dLogits: [N, V]` f32.
 * `dLogits` may be `logits` itself (the gradient overwrites the logits in place, each element
 * after it has been read) or any range that does not overlap it; `loss` must not overlap
 * either. Targets `>= V` are clamped on the GPU (see the module doc). On a software adapter,
 * V above ~8.3 million throws a `RangeError` (llvmpipe's loop budget, see the module doc).
 *
 * @example
 * ```ts ignore
 * const loss = gpu.tensor([N]);
 * softmaxCrossEntropy(gpu, { logits, targets, loss, dLogits: logits, gradScale: 1 / N });
 * ```
 */
export function softmaxCrossEntropy(
  gpu: Gpu,
  args: { logits: Tensor; targets: Tensor; loss: Tensor; dLogits?: Tensor; gradScale?: number },
): void {
  const { logits, targets, loss, dLogits, gradScale = 1 } = args;
  if (logits.shape.length !== 2 || logits.shape[1] < 1) {
    throw new ShapeError(
      `softmaxCrossEntropy logits: expected [N, V >= 1], got ${fmtShape(logits.shape)}`,
    );
  }
  const [n, v] = logits.shape;
  expectShape("softmaxCrossEntropy logits", logits, [n, v], "f32");
  expectShape("softmaxCrossEntropy targets", targets, [n], "u32");
  expectShape("softmaxCrossEntropy loss", loss, [n], "f32");
  if (dLogits) expectShape("softmaxCrossEntropy dLogits", dLogits, [n, v], "f32");
  if (!Number.isFinite(gradScale)) {
    throw new RangeError(`softmaxCrossEntropy: gradScale must be finite, got ${gradScale}`);
  }

  const inLogits = dLogits !== undefined && dLogits.buffer === logits.buffer;
  if (inLogits && dLogits.offset !== logits.offset && overlaps(dLogits, logits)) {
    throw new ShapeError(
      `softmaxCrossEntropy: dLogits ${dLogits} partially overlaps logits ${logits}; ` +
        `pass logits itself for an in-place gradient`,
    );
  }
  for (const [name, t] of [["logits", logits], ["dLogits", dLogits]] as const) {
    if (t && overlaps(loss, t)) {
      throw new ShapeError(`softmaxCrossEntropy: loss ${loss} overlaps ${name} ${t}`);
    }
  }
  for (const t of [logits, loss, dLogits]) {
    if (t && t.buffer === targets.buffer) {
      throw new ShapeError(`softmaxCrossEntropy: targets ${targets} shares a buffer with ${t}`);
    }
  }

  // WebGPU forbids binding one buffer both read-only and writable in a dispatch, so when a
  // written operand lives in the logits buffer, logits is bound read_write and the gradient is
  // written through that same binding at its own offset.
  const mode: GradMode = !dLogits ? "none" : inLogits ? "shared" : "separate";
  const logitsWritable = inLogits || loss.buffer === logits.buffer;
  const variant = kernelVariantFor(gpu, v);
  const spec = specFor(variant, mode, logitsWritable);
  const tensors: Record<string, Tensor> = { logits, targets, loss };
  if (mode === "separate") tensors.dlogits = dLogits!;
  const grid = variant === "regblock" ? gridFor(n, WG_ROWS) : gridFor(n, 1);
  gpu.run(
    spec,
    tensors,
    { rows: n, vocab: v, scale: gradScale, grad_off: inLogits ? dLogits.offset : 0 },
    grid,
  );
}
