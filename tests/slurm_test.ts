/**
 * The Slurm executor against a real one-node cluster: munged, slurmctld and slurmd started on
 * this machine from a generated slurm.conf (ports of their own), a tiny sweep submitted as a job
 * array, the report merged from what the tasks wrote; the daemons are stopped by their pids.
 * Needs root and Debian's slurm-wlm and munge (`.ci/run` installs them); elsewhere the test is
 * ignored and its name says why.
 */
import { TINY_SWEEP } from "./_train_util.ts";
import { equal, ok } from "node:assert/strict";

const EXPERIMENT = new URL("../pipeline/experiment_cli.ts", import.meta.url).pathname;
const REPORT = new URL("../pipeline/report_cli.ts", import.meta.url).pathname;
const DAEMONS = ["/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch"];

/** Why Slurm cannot be started here, or `null` (needs only --allow-read and --allow-run). */
async function whyNot(): Promise<string | null> {
  const id = await new Deno.Command("id", { args: ["-u"], stdout: "piped" }).output()
    .then((o) => new TextDecoder().decode(o.stdout).trim(), () => "");
  if (id !== "0") return "not root";
  for (const d of DAEMONS) {
    try {
      Deno.statSync(d);
    } catch {
      return `${d} missing (apt-get install slurm-wlm munge)`;
    }
  }
  return null;
}

const why = await whyNot();
if (why) {
  console.log(`slurm_test: Slurm cannot be started here (${why}); the Slurm test is ignored`);
}

async function sh(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

async function until(what: string, seconds: number, done: () => Promise<boolean>) {
  for (let t = 0; t < seconds * 2; t++) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out after ${seconds} s waiting for ${what}`);
}

Deno.test({
  name: `slurm executor: a job array on a one-node cluster, merged by report${
    why ? ` (ignored: ${why})` : ""
  }`,
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const d = await Deno.makeTempDir({ prefix: "selfish-slurm-" });
    const pids: string[] = [`${d}/slurmd.pid`, `${d}/slurmctld.pid`, `${d}/munge/munged.pid`];
    try {
      await Deno.mkdir(`${d}/munge`, { mode: 0o700 });
      await Deno.mkdir(`${d}/state`);
      await Deno.mkdir(`${d}/spool`);
      await Deno.writeFile(`${d}/munge/munge.key`, crypto.getRandomValues(new Uint8Array(1024)), {
        mode: 0o400,
      });
      const munge = await sh("/usr/sbin/munged", [
        "--force",
        "-S",
        `${d}/munge/munge.socket`,
        `--key-file=${d}/munge/munge.key`,
        `--pid-file=${d}/munge/munged.pid`,
        `--log-file=${d}/munge/munged.log`,
        `--seed-file=${d}/munge/munge.seed`,
      ]);
      equal(munge.code, 0, munge.out);
      const host = (await sh("hostname", ["-s"])).out.trim();
      const port = 20000 + Math.floor(Math.random() * 20000);
      const conf = `${d}/slurm.conf`;
      await Deno.writeTextFile(
        conf,
        [
          "ClusterName=selfishtest",
          `SlurmctldHost=${host}(127.0.0.1)`,
          `SlurmctldPort=${port}`,
          `SlurmdPort=${port + 1}`,
          "AuthType=auth/munge",
          `AuthInfo=socket=${d}/munge/munge.socket`,
          "CredType=cred/munge",
          "SlurmUser=root",
          "SlurmdUser=root",
          `StateSaveLocation=${d}/state`,
          `SlurmdSpoolDir=${d}/spool`,
          `SlurmctldPidFile=${d}/slurmctld.pid`,
          `SlurmdPidFile=${d}/slurmd.pid`,
          `SlurmctldLogFile=${d}/slurmctld.log`,
          `SlurmdLogFile=${d}/slurmd.log`,
          "ProctrackType=proctrack/linuxproc",
          "TaskPlugin=task/none",
          "SelectType=select/cons_tres",
          "SelectTypeParameters=CR_CPU",
          "MpiDefault=none",
          "JobAcctGatherType=jobacct_gather/none",
          "AccountingStorageType=accounting_storage/none",
          "ReturnToService=2",
          `NodeName=${host} NodeAddr=127.0.0.1 CPUs=${navigator.hardwareConcurrency} State=UNKNOWN`,
          "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
          "",
        ].join("\n"),
      );
      const env = { SLURM_CONF: conf };
      for (const daemon of ["/usr/sbin/slurmctld", "/usr/sbin/slurmd"]) {
        const r = await sh(daemon, ["-f", conf], env);
        equal(r.code, 0, `${daemon}: ${r.out}`);
      }
      await until(
        "the node to be idle",
        60,
        async () => (await sh("sinfo", ["-h", "-o", "%T"], env)).out.trim() === "idle",
      );
      const sweep = `${d}/sweep`;
      const args = [
        ...TINY_SWEEP,
        "--methods",
        "dense,selfish",
        "--executor",
        "slurm",
        "--out",
        sweep,
      ];
      const submitted = await sh(Deno.execPath(), [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-run",
        EXPERIMENT,
        ...args,
      ], env);
      equal(submitted.code, 0, submitted.out);
      const id = submitted.out.match(/Slurm job (\d+)/)?.[1];
      ok(id, submitted.out);
      const script = await Deno.readTextFile(`${sweep}/sbatch.sh`);
      ok(
        script.includes("#SBATCH --array=0-1") &&
          script.includes('--run-index "$SLURM_ARRAY_TASK_ID"'),
        script,
      );
      await until(
        "the array to finish",
        600,
        async () => (await sh("squeue", ["-h", "-j", id!], env)).out.trim() === "",
      );
      const report = await sh(Deno.execPath(), [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        REPORT,
        sweep,
      ]);
      equal(report.code, 0, report.out);
      const md = await Deno.readTextFile(`${sweep}/report/report.md`);
      const tasks = [0, 1].map((k) => {
        try {
          return Deno.readTextFileSync(`${sweep}/slurm-${id}_${k}.out`);
        } catch {
          return "(no output)";
        }
      });
      ok(
        md.includes("| stacked LSTM | dense | — | adam | 1 | 1/1 |") &&
          md.includes("| stacked LSTM | selfish | — | adam | 0.33 | 1/1 |"),
        `${md}\n${tasks.join("\n")}`,
      );
    } finally {
      for (const f of pids) {
        try {
          Deno.kill(Number(Deno.readTextFileSync(f).trim()), "SIGTERM");
        } catch { /* not started */ }
      }
      await new Promise((r) => setTimeout(r, 1000));
      await Deno.remove(d, { recursive: true }).catch(() => {});
    }
  },
});
