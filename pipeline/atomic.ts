/**
 * Atomic writes for the pipeline's outputs (summaries, results tables, checkpoints, exports).
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

/**
 * Writes `bytes` to `path` through `path.tmp-<pid>` in the same directory, fsync and a rename.
 * On any failure the temporary file is removed, an existing `path` is left untouched, and the
 * error is rethrown.
 *
 * @example
 * ```ts ignore
 * await writeAtomicBytes("model.safetensors", bytes);
 * ```
 */
export async function writeAtomicBytes(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
