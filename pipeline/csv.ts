/**
 * A small, correct CSV writer (RFC 4180): fields containing a comma, quote, CR or LF are quoted
 * and quotes doubled; rows end with CRLF-free `\n` as most tools expect.
 *
 * @module
 */

/** A cell value; `undefined`/`null` become empty fields, numbers use JS's shortest round-trip form. */
export type CsvValue = string | number | boolean | null | undefined;

/**
 * Formats one field.
 *
 * @example
 * ```ts
 * import { csvField } from "./csv.ts";
 * csvField('say "hi", twice'); // "\"say \"\"hi\"\", twice\""
 * ```
 */
export function csvField(v: CsvValue): string {
  if (v === null || v === undefined) return "";
  const s = typeof v === "number" && !Number.isFinite(v) ? String(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * Formats rows (objects sharing `columns`) as CSV text with a header line.
 *
 * @example
 * ```ts
 * import { toCsv } from "./csv.ts";
 * toCsv(["a", "b"], [{ a: 1, b: "x,y" }]); // "a,b\n1,\"x,y\"\n"
 * ```
 */
export function toCsv(
  columns: readonly string[],
  rows: readonly Record<string, CsvValue>[],
): string {
  const lines = [columns.map(csvField).join(",")];
  for (const r of rows) lines.push(columns.map((c) => csvField(r[c])).join(","));
  return lines.join("\n") + "\n";
}
