/**
 * Atomic text writes for the pipeline's outputs (summaries, results tables).
 *
 * @module
 */

/**
 * Writes `text` to `path` through a temporary file and a rename, so readers never see a
 * half-written file and an interrupted run leaves the previous version.
 *
 * @example
 * ```ts ignore
 * await writeAtomic("out/results.csv", csv);
 * ```
 */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}
