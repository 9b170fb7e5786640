/**
 * Word ↔ id mapping of a corpus. Ids are dense, start at 0 and follow first appearance, which
 * is how the reference `data.py` builds its dictionary (train, then valid, then test).
 *
 * @module
 */

/** The end-of-sentence token appended to every line. */
export const EOS = "<eos>";
/** The out-of-vocabulary token (present in PTB and WikiText-2 text; added on demand). */
export const UNK = "<unk>";

/**
 * An append-only vocabulary. Ids are u32 and stable once assigned.
 *
 * @example
 * ```ts
 * import { Vocabulary } from "./vocab.ts";
 * const v = new Vocabulary();
 * v.add("the"); // 0
 * v.add("cat"); // 1
 * v.add("the"); // 0 (already present)
 * v.id("cat"); // 1
 * v.word(1); // "cat"
 * v.size; // 2
 * ```
 */
export class Vocabulary {
  #ids = new Map<string, number>();
  #words: string[] = [];

  /** Builds a vocabulary from words in id order (duplicates are an error). */
  static fromWords(words: Iterable<string>): Vocabulary {
    const v = new Vocabulary();
    for (const w of words) {
      if (v.#ids.has(w)) throw new RangeError(`Vocabulary.fromWords: duplicate word "${w}"`);
      v.add(w);
    }
    return v;
  }

  /** Number of words; ids are `0 .. size-1`. */
  get size(): number {
    return this.#words.length;
  }

  /** All words, index = id. A copy: the vocabulary stays append-only. */
  get words(): string[] {
    return this.#words.slice();
  }

  /** The id of `word`, adding it at the end when new. */
  add(word: string): number {
    let id = this.#ids.get(word);
    if (id === undefined) {
      id = this.#words.length;
      this.#ids.set(word, id);
      this.#words.push(word);
    }
    return id;
  }

  /** The id of `word`, or `undefined` when absent. */
  id(word: string): number | undefined {
    return this.#ids.get(word);
  }

  /** Whether `word` is in the vocabulary. */
  has(word: string): boolean {
    return this.#ids.has(word);
  }

  /** The word of `id`; throws RangeError for an id outside `0 .. size-1`. */
  word(id: number): string {
    const w = this.#words[id];
    if (w === undefined) throw new RangeError(`Vocabulary.word: id ${id} not in [0, ${this.size})`);
    return w;
  }

  /** Words of a token-id sequence joined by spaces (for samples and debugging). */
  decode(ids: ArrayLike<number>): string {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) out.push(this.word(ids[i]));
    return out.join(" ");
  }
}
