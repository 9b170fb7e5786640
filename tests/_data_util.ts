/**
 * Test helpers of the data stage: where the reference corpora are, and a clear note when they
 * are absent (their tests are then ignored, not silently passed).
 *
 * @module
 */

/** `../shared/data/` next to the repository (see shared/data/README.md). */
export const DATA_ROOT = new URL("../../shared/data/", import.meta.url);

/**
 * The URL of reference corpus `name` (`ptb`, `wikitext-2`) and whether it is present. When it
 * is absent, prints one line saying which checks of `testFile` are skipped and why.
 */
export function referenceCorpus(name: string, testFile: string): { url: URL; present: boolean } {
  const url = new URL(`${name}/`, DATA_ROOT);
  let present = false;
  try {
    present = Deno.statSync(new URL("train.txt", url)).isFile;
  } catch {
    present = false;
  }
  if (!present) {
    console.log(
      `${testFile}: SKIPPING the ${name} checks: ${decodeURIComponent(url.pathname)} is absent ` +
        `(the reference data lives in a shared/ directory next to the repository)`,
    );
  }
  return { url, present };
}
