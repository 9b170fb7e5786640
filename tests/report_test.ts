import { deepEqual, equal, ok } from "node:assert/strict";
import { findings, reportPlots, reportRows, stat } from "../pipeline/report/report.ts";
import { readExperimentRuns } from "../pipeline/report/runs.ts";

const CLI = new URL("../pipeline/report_cli.ts", import.meta.url).pathname;

function summary(val: number, test: number, seed: number, gates: boolean, named = true) {
  return {
    ...(gates && named ? { "gate_names": { "rnn.weight_hh_l0": ["i", "f", "g", "o"] } } : {}),
    "val_ppl": val,
    "test_ppl": test,
    parameters: 1000,
    "active_parameters": 330,
    "train_flops_x_dense": 0.4,
    "inference_flops_x_dense": 0.33,
    "epoch_val_ppl": [val * 2, val * 1.2, val],
    "connectivity_updates": gates
      ? [100, 200].map((step, i) => ({
        step,
        "removal_rate": 0.5,
        removed: 10,
        grown: 10,
        "density_per_gate": { "rnn.weight_hh_l0": [0.3 + i / 10, 0.33, 0.36, 0.3 - seed / 100] },
      }))
      : [],
    config: { seed },
  };
}

/** An experiment directory as the runner leaves it, with one run missing and one failed. */
async function fakeExperiment(dir: string): Promise<void> {
  const runs: [string, string, number, number | null][] = [
    ["selfish", "adam", 1, 10],
    ["selfish", "adam", 2, 11],
    ["static-uniform", "adam", 1, 12],
    ["static-uniform", "adam", 2, null], // missing: started, never finished
    ["set", "adam", 1, null], // failed (results.csv)
  ];
  for (const [index, [method, optimizer, seed, val]] of runs.entries()) {
    const d = `${dir}/${method}-${optimizer}-seed${seed}`;
    await Deno.mkdir(d, { recursive: true });
    await Deno.writeTextFile(`${d}/config.json`, JSON.stringify({ method, optimizer, seed }));
    await Deno.writeTextFile(`${d}/run.json`, JSON.stringify({ index, method, optimizer, seed }));
    if (val === null && method === "static-uniform") {
      await Deno.writeTextFile(`${d}/log.csv`, "step,epoch,lr\n100,1,0.01\n200,2,0.01\n");
    }
    if (val !== null) {
      await Deno.writeTextFile(
        `${d}/summary.json`,
        JSON.stringify(summary(val, val - 0.5, seed, method === "selfish")),
      );
    }
  }
  // the sweep's grid: one more run no process has started (no directory yet)
  const planned = runs.map(([method, optimizer, seed], index) => ({
    index,
    key: `${method}-${optimizer}-seed${seed}`,
    method,
    optimizer,
    seed,
  }));
  planned.push({ index: 5, key: "rigl-adam-seed1", method: "rigl", optimizer: "adam", seed: 1 });
  await Deno.writeTextFile(`${dir}/plan.json`, JSON.stringify({ runs: planned }));
  // the runner's record of a failed run (a note may hold commas, quotes and newlines)
  await Deno.writeTextFile(
    `${dir}/set-adam-seed1/failed.json`,
    JSON.stringify({ note: "RangeError: set broke, badly" }),
  );
}

Deno.test("report: rows over seeds with mean ± std, missing and failed runs marked", async () => {
  const dir = await Deno.makeTempDir();
  await fakeExperiment(dir);
  const runs = await readExperimentRuns(dir);
  deepEqual(
    runs.map((r) => `${r.name} ${r.status}`),
    [
      "selfish-adam-seed1 ok",
      "selfish-adam-seed2 ok",
      "static-uniform-adam-seed1 ok",
      "static-uniform-adam-seed2 missing",
      "set-adam-seed1 failed",
      "rigl-adam-seed1 missing",
    ],
  );
  const rows = reportRows(runs);
  const by = new Map(rows.map((r) => [r.method, r]));
  deepEqual(by.get("selfish")!.valPpl, stat([10, 11]));
  equal(by.get("selfish")!.done, 2);
  equal(by.get("static-uniform")!.done, 1);
  equal(by.get("static-uniform")!.runs, 2);
  ok(by.get("static-uniform")!.note.includes("missing seed 2: started, logged to step 200"));
  ok(by.get("set")!.note.includes("failed seed 1: RangeError: set broke, badly"));
  equal(by.get("rigl")!.done, 0);
  ok(by.get("rigl")!.note.includes("missing seed 1"), by.get("rigl")!.note);
  equal(by.get("set")!.valPpl, null);
  deepEqual(stat([1, 3]), { mean: 2, std: Math.SQRT2, n: 2 });
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "report CLI: markdown, CSV, SVG plots and index.html from an experiment directory",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await fakeExperiment(dir);
    const p = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", "--allow-env", CLI, dir, "--title", "t2"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(p.stdout) + new TextDecoder().decode(p.stderr);
    equal(p.code, 0, out);
    ok(out.includes("3 of 6 runs finished"), out);
    const md = await Deno.readTextFile(`${dir}/report/report.md`);
    ok(
      md.includes(
        "| — | selfish | — | adam | — | 2/2 | 10.50 ± 0.71 | 10.00 ± 0.71 | 330 / 1,000 |",
      ),
      md,
    );
    ok(md.includes("| — | static-uniform | — | adam | — | 1/2 | 12.00 |"), md);
    ok(md.includes("| — | rigl | — | adam | — | 0/1 | — |"), md); // planned, never started
    // what the runs measured: the ranking, and Selfish-RNN against its equal-size peers
    ok(md.includes("runs: by test ppl, selfish/adam 10.00 < static-uniform/adam 11.50"), md);
    ok(md.includes("Selfish-RNN at 10.00 test ppl leads static-uniform (11.50); trails none"), md);
    ok(md.includes("failed seed 1: RangeError: set broke, badly"), md);
    const csv = await Deno.readTextFile(`${dir}/report/report.csv`);
    ok(csv.startsWith("model,method,variant,optimizer,density,done,runs,seeds,val_ppl_mean"), csv);
    for (const svg of ["val-ppl-per-epoch", "density-per-gate", "test-ppl-vs-train-flops"]) {
      const text = await Deno.readTextFile(`${dir}/report/${svg}.svg`);
      ok(text.startsWith("<svg") && text.includes("</svg>"), svg);
    }
    // the gate plot holds one line per gate: its four labels, the gates' names
    const gates = await Deno.readTextFile(`${dir}/report/density-per-gate.svg`);
    for (const g of ["i", "f", "g", "o"]) ok(gates.includes(`>${g}</text>`), g);
    ok(!gates.includes("block 0"), "numbered blocks where the summary names the gates");
    const html = await Deno.readTextFile(`${dir}/report/index.html`);
    ok(html.includes('<img src="val-ppl-per-epoch.svg">') && html.includes("<td>selfish</td>"));
    // not an experiment directory: exit 2
    const bad = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-write", "--allow-env", CLI, `${dir}/report`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    equal(bad.code, 2);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("report: runs of several models in table order, rows per variant, plots per model", async () => {
  const dir = await Deno.makeTempDir();
  const runs: [number, string, string, string, string, number][] = [
    [2, "rhn", "RHN", "selfish", "", 9],
    [0, "lstm", "stacked LSTM", "selfish", "", 10],
    [1, "lstm", "stacked LSTM", "selfish", "er-init", 12],
  ];
  for (const [index, block, model, method, variant, val] of runs) {
    const d = `${dir}/${block}-${method}${variant ? `-${variant}` : ""}-adam-seed1`;
    await Deno.mkdir(d, { recursive: true });
    await Deno.writeTextFile(
      `${d}/config.json`,
      JSON.stringify({ method, optimizer: "adam", seed: 1 }),
    );
    await Deno.writeTextFile(
      `${d}/run.json`,
      JSON.stringify({ index, block, model, method, variant, optimizer: "adam", density: 0.33 }),
    );
    // the RHN run's summary predates gate names
    const named = block !== "rhn";
    await Deno.writeTextFile(
      `${d}/summary.json`,
      JSON.stringify(summary(val, val, 1, true, named)),
    );
  }
  const read = await readExperimentRuns(dir);
  deepEqual(read.map((r) => r.index), [0, 1, 2]);
  const rows = reportRows(read);
  deepEqual(rows.map((r) => [r.block, r.variant, r.density]), [
    ["lstm", "", 0.33],
    ["lstm", "er-init", 0.33],
    ["rhn", "", 0.33],
  ]);
  const plots = reportPlots(read);
  deepEqual(Object.keys(plots).sort(), [
    "density-per-gate-lstm",
    "density-per-gate-rhn",
    "test-ppl-vs-train-flops-lstm",
    "test-ppl-vs-train-flops-rhn",
    "val-ppl-per-epoch-lstm",
    "val-ppl-per-epoch-rhn",
  ]);
  ok(String(plots["val-ppl-per-epoch-rhn"].title).endsWith("(RHN)"));
  const gateLabels = (stem: string) => [
    ...new Set((plots[stem].data as { values: { gate: string }[] }).values.map((v) => v.gate)),
  ];
  deepEqual(gateLabels("density-per-gate-lstm"), ["i", "f", "g", "o"]);
  deepEqual(gateLabels("density-per-gate-rhn"), ["block 0", "block 1", "block 2", "block 3"]);
  const perEpoch = (plots["val-ppl-per-epoch-lstm"].data as { values: { run: string }[] }).values;
  deepEqual([...new Set(perEpoch.map((v) => v.run))], [
    "lstm selfish / adam",
    "lstm selfish (er-init) / adam",
  ]);
  deepEqual(findings(rows), [
    "stacked LSTM: by test ppl, selfish/adam 10.00 < selfish (er-init)/adam 12.00",
  ]);
  await Deno.remove(dir, { recursive: true });
});
