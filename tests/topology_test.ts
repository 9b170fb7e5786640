import { type HostTensor, writeCheckpoint } from "../pipeline/checkpoint.ts";
import {
  linearAssignment,
  rowBlocksOf,
  topologyDistance,
  TopologyError,
} from "../pipeline/topology.ts";

// Distances are sums of at most a few thousand doubles, each exact to ~1e-16 relative.
const EPS = 1e-12;

function assertNear(actual: number | null, expected: number, what: string): void {
  if (actual === null || !(Math.abs(actual - expected) <= EPS)) {
    throw new Error(`${what}: expected ${expected}, got ${actual}`);
  }
}

/** Deterministic LCG in [0, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** A mask `[rows, cols]` from each row's active column list. */
function maskOf(rowSets: number[][], cols: number): HostTensor {
  const data = new Float32Array(rowSets.length * cols);
  rowSets.forEach((set, r) => set.forEach((c) => (data[r * cols + c] = 1)));
  return { dtype: "f32", shape: [rowSets.length, cols], data };
}

function randomMask(rows: number, cols: number, density: number, rnd: () => number): HostTensor {
  const data = Float32Array.from({ length: rows * cols }, () => (rnd() < density ? 1 : 0));
  return { dtype: "f32", shape: [rows, cols], data };
}

function expectTopologyError(fn: () => unknown, texts: string[]): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof TopologyError)) throw e;
    for (const t of texts) {
      if (!e.message.includes(t)) throw new Error(`no "${t}" in "${e.message}"`);
    }
    return;
  }
  throw new Error("no TopologyError");
}

function bruteForce(cost: Float64Array, n: number): number {
  let best = Infinity;
  const perm = Array.from({ length: n }, (_, i) => i);
  const rec = (k: number, sum: number) => {
    if (k === n) {
      best = Math.min(best, sum);
      return;
    }
    for (let i = k; i < n; i++) {
      [perm[k], perm[i]] = [perm[i], perm[k]];
      rec(k + 1, sum + cost[k * n + perm[k]]);
      [perm[k], perm[i]] = [perm[i], perm[k]];
    }
  };
  rec(0, 0);
  return best;
}

function checkPermutation(p: Int32Array): void {
  const seen = new Set(p);
  if (seen.size !== p.length || p.some((j) => j < 0 || j >= p.length)) {
    throw new Error(`not a permutation: ${[...p]}`);
  }
}

Deno.test("linearAssignment equals brute force over all permutations (random 6×6)", () => {
  const rnd = lcg(7);
  for (let trial = 0; trial < 150; trial++) {
    const n = trial < 100 ? 6 : 1 + (trial % 5);
    // a third of the trials use small integers, so ties are common
    const cost = Float64Array.from(
      { length: n * n },
      () => (trial % 3 === 0 ? Math.floor(rnd() * 4) : rnd() * 10 - 3),
    );
    const { rowToCol, total } = linearAssignment(cost, n);
    checkPermutation(rowToCol);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += cost[i * n + rowToCol[i]];
    assertNear(total, sum, `trial ${trial}: total vs its permutation`);
    // brute force adds the same terms in the same row order → exact up to the last ulp
    assertNear(total, bruteForce(cost, n), `trial ${trial}: optimum`);
  }
});

Deno.test("linearAssignment: planted zero-cost permutation at n = 400, empty, bad input", () => {
  const n = 400, rnd = lcg(11);
  const planted = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [planted[i], planted[j]] = [planted[j], planted[i]];
  }
  const cost = Float64Array.from({ length: n * n }, () => 0.01 + rnd());
  for (let i = 0; i < n; i++) cost[i * n + planted[i]] = 0;
  const r = linearAssignment(cost, n);
  if (r.total !== 0 || r.rowToCol.some((j, i) => j !== planted[i])) {
    throw new Error(`planted permutation not found (total ${r.total})`);
  }
  const empty = linearAssignment(new Float64Array(0), 0);
  if (empty.total !== 0 || empty.rowToCol.length !== 0) throw new Error("n = 0");
  expectTopologyError(() => linearAssignment(new Float64Array(5), 2), ["5", "2"]);
  expectTopologyError(() => linearAssignment(Float64Array.from([0, NaN, 1, 2]), 2), ["cost[1]"]);
});

Deno.test("NNSTD is 0 for identical masks and for row-permuted masks (assignment only)", () => {
  const rnd = lcg(3);
  const m = randomMask(37, 50, 0.3, rnd);
  const r = topologyDistance({ "w#mask": m }, { "w#mask": m });
  assertNear(r.meanIdentity, 0, "identity");
  assertNear(r.meanAssignment, 0, "assignment");
  // reverse the rows: identical topology up to relabelling the output neurons
  const rev = new Float32Array(m.data.length);
  for (let i = 0; i < 37; i++) rev.set(m.data.subarray((36 - i) * 50, (37 - i) * 50), i * 50);
  const p = topologyDistance({ "w#mask": m }, {
    "w#mask": { dtype: "f32", shape: m.shape, data: rev },
  });
  assertNear(p.meanAssignment, 0, "permuted: assignment");
  if (!(p.meanIdentity > 0.5)) throw new Error(`permuted: identity ${p.meanIdentity}`);
});

Deno.test("NNSTD is 1 when every row of A is disjoint from every row of B", () => {
  const rnd = lcg(5);
  const rows = 9, cols = 40;
  const a: number[][] = [], b: number[][] = [];
  for (let r = 0; r < rows; r++) {
    a.push([...Array(20).keys()].filter(() => rnd() < 0.5).concat([r % 20]));
    b.push([...Array(20).keys()].filter(() => rnd() < 0.5).map((c) => c + 20).concat([20]));
  }
  const r = topologyDistance({ "w#mask": maskOf(a, cols) }, { "w#mask": maskOf(b, cols) });
  assertNear(r.meanIdentity, 1, "identity");
  assertNear(r.meanAssignment, 1, "assignment");
  const activeA = a.reduce((n, set) => n + new Set(set).size, 0);
  assertNear(r.tensors[0].densityA, activeA / (rows * cols), "densityA");
});

Deno.test("NNSTD hand-computed 3-row case: best matching is not the identity", () => {
  // A rows: {0,1}, {1,2}, {3}; B rows: {1,2,3}, {0,1}, {0,3}.
  // Jaccard distances d(Ai, Bj) = 1 − |∩|/|∪|:
  //        B0    B1    B2
  //   A0  3/4    0    2/3
  //   A1  1/3   2/3    1
  //   A2  2/3    1    1/2
  // identity: (3/4 + 2/3 + 1/2) / 3 = 23/36
  // permutations (A0,A1,A2)→(B0,B1,B2) 23/12, (B0,B2,B1) 11/4, (B1,B0,B2) 5/6,
  // (B1,B2,B0) 5/3, (B2,B0,B1) 2, (B2,B1,B0) 2 → best A0→B1, A1→B0, A2→B2: (5/6) / 3 = 5/18
  const a = maskOf([[0, 1], [1, 2], [3]], 4), b = maskOf([[1, 2, 3], [0, 1], [0, 3]], 4);
  const r = topologyDistance({ "w#mask": a }, { "w#mask": b });
  assertNear(r.tensors[0].identity, 23 / 36, "identity");
  assertNear(r.tensors[0].assignment, 5 / 18, "assignment");
  assertNear(r.meanIdentity, 23 / 36, "meanIdentity");
  assertNear(r.meanAssignment, 5 / 18, "meanAssignment");
  if (r.tensors[0].blocks.join() !== "3" || r.tensors[0].note !== "") {
    throw new Error("plain tensor");
  }
});

Deno.test("empty rows: both empty → 0, exactly one empty → 1", () => {
  // row 0: both empty (0); row 1: only A empty (1); row 2: only B empty (1); row 3: equal (0)
  const a = maskOf([[], [], [1], [0, 2]], 3), b = maskOf([[], [0], [], [0, 2]], 3);
  const r = topologyDistance({ "w#mask": a }, { "w#mask": b });
  assertNear(r.tensors[0].identity, 2 / 4, "identity");
  // optimum: A's empty rows 0, 1 ↔ B's empty rows 0, 2 (0 + 0), {0,2} ↔ {0,2} (0), and the
  // leftover {1} ↔ {0} (disjoint, 1) → 1/4; the identity pays for two empty-vs-nonempty rows
  assertNear(r.tensors[0].assignment, 1 / 4, "assignment");
  const allEmpty = maskOf([[], []], 5);
  const e = topologyDistance({ "w#mask": allEmpty }, { "w#mask": allEmpty });
  assertNear(e.meanIdentity, 0, "all empty identity");
  assertNear(e.meanAssignment, 0, "all empty assignment");
  assertNear(e.tensors[0].densityA, 0, "all empty density");
});

Deno.test("row blocks from the checkpoint are matched separately; maxAssignment skips big ones", () => {
  // 8 rows = 4 gate blocks of 2. B swaps the gate blocks 0 and 1 (rows 0,1 ↔ 2,3): a whole-tensor
  // matching undoes that at cost 0; per gate block, the rows of block g must match block g.
  const sets = [[0], [1], [2], [3], [4], [5], [6], [7]];
  const a = maskOf(sets, 8);
  const b = maskOf([sets[2], sets[3], sets[0], sets[1], ...sets.slice(4)], 8);
  const name = "rnn.weight_hh_l0";
  // the blocks a training checkpoint records in its connectivity state
  const blocks = rowBlocksOf({ sparsity: { tensors: [{ name, blocks: [2, 2, 2, 2] }] } });
  const perGate = topologyDistance({ [`${name}#mask`]: a }, { [`${name}#mask`]: b }, { blocks });
  const t = perGate.tensors[0];
  if (t.blocks.length !== 4 || !t.note.includes("4 row blocks [2, 2, 2, 2]")) {
    throw new Error(t.note);
  }
  assertNear(t.identity, 4 / 8, "identity");
  assertNear(t.assignment, 4 / 8, "per-gate assignment");
  // unequal blocks (ON-LSTM-like) and unlisted tensors (whole)
  const uneven = topologyDistance({ [`${name}#mask`]: a }, { [`${name}#mask`]: b }, {
    blocks: () => [4, 4],
  });
  assertNear(uneven.tensors[0].assignment, 0, "blocks [4, 4] hold the swap");
  const whole = topologyDistance({ [`${name}#mask`]: a }, { [`${name}#mask`]: b });
  assertNear(whole.tensors[0].assignment, 0, "whole-tensor assignment");
  if (blocks("decoder.weight", 6000).join() !== "6000") throw new Error("unlisted tensor");

  const big = randomMask(12, 5, 0.5, lcg(9));
  const s = topologyDistance({ "x#mask": big, "y#mask": a }, { "x#mask": big, "y#mask": b }, {
    maxAssignment: 10,
  });
  const x = s.tensors.find((q) => q.name === "x")!;
  if (x.assignment !== null || !x.note.includes("skipped (rows 12 > 10)")) throw new Error(x.note);
  // y (a whole tensor here, 8 rows) is assigned at cost 0; x falls back to its identity (0)
  assertNear(s.meanAssignment, 0, "mean with a skipped tensor");
  assertNear(s.meanIdentity, (0 + 4 / 8) / 2, "meanIdentity");
  if (s.assignmentComplete) throw new Error("assignmentComplete with a skipped tensor");
  const perGateSkip = topologyDistance({ [`${name}#mask`]: a }, { [`${name}#mask`]: b }, {
    maxAssignment: 1,
    blocks,
  });
  if (!perGateSkip.tensors[0].note.includes("row block rows 2 > 1")) {
    throw new Error(perGateSkip.tensors[0].note);
  }
  if (perGateSkip.meanAssignment !== null) throw new Error("no tensor assigned → null");
});

Deno.test("tensor selection: masks in both by default, dense params with includeDense", () => {
  const m = maskOf([[0], [1]], 2), w = maskOf([[0, 1], [0, 1]], 2);
  const a = { "p": w, "p#mask": m, "p#best": w, "q": w, "q#mask": m, "d": w, "state.h0": w };
  const b = { "p": w, "p#mask": m, "q": w, "d": w, "state.h0": w, "r#mask": m };
  const r = topologyDistance(a, b);
  if (r.tensors.map((t) => t.name).join() !== "p") throw new Error("default selection");
  const skipped = r.skipped.map((s) => `${s.name}: ${s.reason}`).join("; ");
  if (skipped !== "q: mask only in A, not B; r: mask only in B, not A") throw new Error(skipped);
  const d = topologyDistance(a, b, { includeDense: true });
  if (d.tensors.map((t) => t.name).join() !== "d,p,q") {
    throw new Error(`dense selection ${d.tensors.map((t) => t.name)}`);
  }
  const q = d.tensors.find((t) => t.name === "q")!;
  // A's q rows {0}, {1} against all ones {0, 1}: Jaccard 1 − 1/2 for each row
  assertNear(q.identity, 0.5, "q identity");
  assertNear(q.densityB, 1, "q densityB");
  if (!q.note.includes("B dense (no mask)")) throw new Error(q.note);
  assertNear(d.tensors[0].identity, 0, "d (dense in both)");
  if (d.skipped.length !== 1 || d.skipped[0].name !== "r") throw new Error("dense skipped");
});

Deno.test("errors: no common masks, shape mismatch, bad gate blocks name the tensor", () => {
  const m = maskOf([[0], [1]], 2);
  expectTopologyError(() => topologyDistance({ "w": m }, { "w": m }), ["no masked tensor"]);
  expectTopologyError(
    () => topologyDistance({ "a#mask": m }, { "b#mask": m }, { labels: ["x.ckpt", "y.ckpt"] }),
    ["x.ckpt", "y.ckpt"],
  );
  expectTopologyError(
    () =>
      topologyDistance({ "w#mask": m }, { "w#mask": maskOf([[0], [1], [0]], 2) }, {
        labels: ["x.ckpt", "y.ckpt"],
      }),
    ["tensor w", "[2, 2] in x.ckpt", "[3, 2] in y.ckpt"],
  );
  expectTopologyError(
    () => topologyDistance({ "w#mask": m }, { "w#mask": m }, { blocks: () => [3] }),
    ["tensor w", "row blocks [3] do not split its 2 rows"],
  );
  expectTopologyError(
    () => topologyDistance({ "w#mask": m }, { "w#mask": m }, { maxAssignment: -1 }),
    ["maxAssignment"],
  );
});

const CLI = new URL("../pipeline/topology_cli.ts", import.meta.url).pathname;

async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: p.code, out: dec.decode(p.stdout), err: dec.decode(p.stderr) };
}

Deno.test("topology CLI end to end on two small checkpoints, and its errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const wa = maskOf([[0, 1], [1, 2], [3]], 4), wb = maskOf([[1, 2, 3], [0, 1], [0, 3]], 4);
    const h = maskOf(Array.from({ length: 8 }, (_, r) => [r]), 8);
    // the connectivity state records the LSTM weight's 4 gate blocks; the CLI matches per block
    const meta = {
      step: 1,
      sparsity: { tensors: [{ name: "rnn.weight_hh_l0", blocks: [2, 2, 2, 2] }] },
    };
    await writeCheckpoint(`${dir}/a.ckpt`, {
      meta,
      tensors: { "w": wa, "w#mask": wa, "rnn.weight_hh_l0#mask": h, "state.h0": wa },
    });
    await writeCheckpoint(`${dir}/b.ckpt`, {
      meta,
      tensors: { "w": wb, "w#mask": wb, "rnn.weight_hh_l0#mask": h },
    });
    const r = await runCli([`${dir}/a.ckpt`, `${dir}/b.ckpt`]);
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.err}`);
    for (const text of ["| w | 3 × 4 |", "| rnn.weight_hh_l0 | 8 × 8 |", "0.6389", "0.2778"]) {
      if (!r.out.includes(text)) throw new Error(`no "${text}" in\n${r.out}`);
    }
    const summary = JSON.parse(r.out.trim().split("\n").at(-1)!);
    assertNear(summary.meanIdentity, (23 / 36 + 0) / 2, "CLI meanIdentity");
    assertNear(summary.meanAssignment, (5 / 18 + 0) / 2, "CLI meanAssignment");
    if (summary.tensors !== 2) throw new Error(`tensors ${summary.tensors}`);

    const j = await runCli(["--json", "--whole-tensor", `${dir}/a.ckpt`, `${dir}/b.ckpt`]);
    if (j.code !== 0) throw new Error(`--json exit ${j.code}: ${j.err}`);
    const full = JSON.parse(j.out);
    if (full.tensors.length !== 2 || full.tensors[0].blocks.join() !== "8") throw new Error(j.out);

    const help = await runCli(["--help"]);
    if (help.code !== 0 || !help.out.includes("usage: deno task topology")) throw new Error("help");

    await Deno.writeTextFile(`${dir}/junk.ckpt`, "not a checkpoint at all");
    await writeCheckpoint(`${dir}/dense.ckpt`, { meta, tensors: { "w": wa } });
    await writeCheckpoint(`${dir}/odd.ckpt`, {
      meta,
      tensors: { "w#mask": maskOf([[0], [1]], 4) },
    });
    const cases: [string[], string[]][] = [
      [[`${dir}/a.ckpt`, `${dir}/missing.ckpt`], [`${dir}/missing.ckpt`]],
      [[`${dir}/junk.ckpt`, `${dir}/a.ckpt`], [`${dir}/junk.ckpt`, "not a selfish-rnn"]],
      [[`${dir}/a.ckpt`, `${dir}/dense.ckpt`], ["no masked tensor", `${dir}/dense.ckpt`]],
      [[`${dir}/a.ckpt`, `${dir}/odd.ckpt`], ["tensor w", "[3, 4]", "[2, 4]"]],
      [[`${dir}/a.ckpt`], ["expected two checkpoint files"]],
      [["--bogus", `${dir}/a.ckpt`, `${dir}/b.ckpt`], ["unknown option --bogus"]],
      [["--max-assignment", "x", `${dir}/a.ckpt`, `${dir}/b.ckpt`], ["--max-assignment"]],
    ];
    for (const [args, texts] of cases) {
      const e = await runCli(args);
      if (e.code !== 2) throw new Error(`${args.join(" ")}: exit ${e.code}\n${e.out}${e.err}`);
      for (const t of texts) {
        if (!e.err.includes(t)) throw new Error(`${args.join(" ")}: no "${t}" in\n${e.err}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
