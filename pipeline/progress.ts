/**
 * Training progress: one updating line on a terminal, plain periodic lines otherwise (CI logs,
 * pipes), and the per-evaluation CSV log of `--log FILE.csv`.
 *
 * @module
 */

import { writeAtomic } from "./atomic.ts";
import { csvField, type CsvValue } from "./csv.ts";

/** One progress report. */
export interface ProgressInfo {
  epoch: number;
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  tokensPerSec: number;
  /** Seconds the run has taken to reach `step`, across resumed processes (the ETA's rate). */
  seconds: number;
}

function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : `${m}m${String(s % 60).padStart(2, "0")}s`;
}

/**
 * The text of one progress line (pure; the ETA assumes the run's rate so far holds, so a resumed
 * run's first lines are not read as the remaining steps taking a moment).
 *
 * @example
 * ```ts
 * import { progressLine } from "./progress.ts";
 * progressLine({
 *   epoch: 1,
 *   step: 50,
 *   totalSteps: 100,
 *   loss: 5.3,
 *   lr: 20,
 *   tokensPerSec: 1000,
 *   seconds: 30,
 * });
 * // "epoch 1 | step 50/100 | loss 5.300 | ppl 200.34 | lr 20 | 1000 tok/s | ETA 0m30s"
 * ```
 */
export function progressLine(p: ProgressInfo): string {
  const eta = p.step > 0 ? (p.seconds / p.step) * (p.totalSteps - p.step) : NaN;
  return `epoch ${p.epoch} | step ${p.step}/${p.totalSteps} | loss ${p.loss.toFixed(3)} | ` +
    `ppl ${Math.exp(p.loss).toFixed(2)} | lr ${+p.lr.toPrecision(4)} | ` +
    `${Math.round(p.tokensPerSec)} tok/s | ETA ${fmtDuration(eta)}`;
}

/** Writes progress to stdout: `\r`-updated on a TTY, one line per report otherwise. */
export class ProgressPrinter {
  #tty: boolean;
  #open = false;
  #enc = new TextEncoder();

  constructor(tty: boolean = Deno.stdout.isTerminal()) {
    this.#tty = tty;
  }

  /** Reports progress. */
  update(p: ProgressInfo): void {
    const line = progressLine(p);
    if (this.#tty) {
      Deno.stdout.writeSync(this.#enc.encode(`\r\x1b[2K${line}`));
      this.#open = true;
    } else {
      console.log(line);
    }
  }

  /** Prints a message on its own line (ending an updating line first). */
  say(message: string): void {
    this.end();
    console.log(message);
  }

  /** Ends an updating line. */
  end(): void {
    if (this.#open) Deno.stdout.writeSync(this.#enc.encode("\n"));
    this.#open = false;
  }
}

/**
 * A listener for a long evaluation's progress (`evaluate`'s `progress`): says
 * `label: 45% (1060/2355 windows), 1m20s left` through `say` once `minSeconds` have passed since
 * the start or the last line, so a short evaluation says nothing. `now` is the clock, in ms.
 *
 * @example
 * ```ts
 * import { evaluationProgress } from "./progress.ts";
 * let t = 0;
 * const lines: string[] = [];
 * const hear = evaluationProgress((m) => lines.push(m), "test", 10, () => t);
 * t = 12_000;
 * hear(1060, 2355); // lines: ["test: 45% (1060/2355 windows), 0m15s left"]
 * ```
 */
export function evaluationProgress(
  say: (message: string) => void,
  label: string,
  minSeconds = 10,
  now: () => number = () => performance.now(),
): (windowsDone: number, windows: number) => void {
  const start = now();
  let last = start;
  return (done, total) => {
    const t = now();
    if (t - last < minSeconds * 1000) return;
    last = t;
    const left = ((t - start) / 1000 / done) * (total - done);
    say(
      `${label}: ${Math.floor((100 * done) / total)}% (${done}/${total} windows), ` +
        `${fmtDuration(left)} left`,
    );
  };
}

/** Columns of the `--log` CSV: one row per evaluation. */
export const LOG_COLUMNS = [
  "step",
  "epoch",
  "lr",
  "train_loss",
  "val_ppl",
  "tokens_per_sec",
  "elapsed_sec",
  "density",
  "train_flops",
  "train_flops_x_dense",
] as const;

/**
 * Appends evaluation rows to a CSV file, writing the header when the file is new or empty, so a
 * resumed run continues the same log. A run resumed at step S first drops the rows logged after
 * S: a process killed between an evaluation's row and its checkpoint repeats that evaluation,
 * and the log keeps one row per step.
 *
 * @example
 * ```ts ignore
 * const log = await CsvLog.open("run.csv");
 * await log.append({ step: 100, epoch: 1, lr: 20, train_loss: 5.1, val_ppl: 160, tokens_per_sec: 900, elapsed_sec: 12 });
 * const resumed = await CsvLog.open("run.csv", 50); // the step-100 row is gone
 * ```
 */
export class CsvLog {
  private constructor(readonly path: string) {}

  /**
   * Opens (creating if needed) the log at `path`; with `resumedAt`, rows whose step is later
   * than it are removed (the file is rewritten atomically).
   */
  static async open(path: string, resumedAt: number | null = null): Promise<CsvLog> {
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (text.length === 0) {
      await Deno.writeTextFile(path, LOG_COLUMNS.join(",") + "\n");
    } else if (resumedAt !== null) {
      const [header, ...rows] = text.split("\n").filter((l) => l.length > 0);
      const stepColumn = header.split(",").indexOf("step");
      if (stepColumn < 0) throw new Error(`${path}: not a training log (no "step" column)`);
      const kept = rows.filter((r) => Number(r.split(",")[stepColumn]) <= resumedAt);
      if (kept.length < rows.length) {
        await writeAtomic(path, [header, ...kept].map((l) => l + "\n").join(""));
      }
    }
    return new CsvLog(path);
  }

  /** Appends one row. */
  async append(row: Readonly<Record<(typeof LOG_COLUMNS)[number], CsvValue>>): Promise<void> {
    await Deno.writeTextFile(this.path, LOG_COLUMNS.map((c) => csvField(row[c])).join(",") + "\n", {
      append: true,
    });
  }
}
