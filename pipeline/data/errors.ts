/**
 * The error type of the data stage. Everything that is wrong with the user's data (missing or
 * empty split files, bad encoding, unknown tokens, a corpus too short for the batch size) is a
 * {@linkcode DataError}; the CLI maps it to exit code 2. Programming errors (bad arguments from
 * code) stay `RangeError`/`TypeError`.
 *
 * @module
 */

/**
 * A problem with input data. The message starts with `path:line:` when a line is known (or
 * `path:` when only the file is), so editors and terminals can jump to it.
 *
 * @example
 * ```ts
 * import { DataError } from "./errors.ts";
 * const e = new DataError("token \"foo\" does not occur in train.txt", "data/valid.txt", 12);
 * e.message; // 'data/valid.txt:12: token "foo" does not occur in train.txt'
 * ```
 */
export class DataError extends Error {
  override name = "DataError";
  /** The file the problem is in, when there is one. */
  readonly path?: string;
  /** 1-based line number in {@linkcode DataError.path}, when known. */
  readonly line?: number;

  constructor(message: string, path?: string, line?: number) {
    const where = path === undefined ? "" : line === undefined ? `${path}: ` : `${path}:${line}: `;
    super(where + message);
    this.path = path;
    this.line = line;
  }
}
