/**
 * Needle / passkey retrieval (Mohtashami & Jaggi's passkey; NIAH, RULER `niah_*`): the book's own text as the
 * haystack, a sentence carrying a random key inserted at depth d of a context of L tokens, and a question at the
 * end whose answer is the key. Per cell: the bits of the key's tokens given everything before, and whether greedy
 * decoding reproduces the key (it does exactly when every key token is the model's top choice given the key's
 * earlier tokens, so one teacher-forced pass decides it).
 *
 * Every context starts at the book's first token, so the text before a needle is a prefix of the book shared by all
 * lengths, depths and keys: one stream reads the book once and forks (state cloned) at each needle's place.
 */
import { seededRandom } from '../core/random.js';
import type { Tokenizer } from '../core/tokenizers/index.js';
import type { CausalLM } from '../models/model.js';
import { type FeedOptions, TokenStream } from './stream.js';

export const needleText = '\nThe pass key is {key}. Remember it. {key} is the pass key.\n';
export const questionText = '\nWhat is the pass key? The pass key is';

/** One cell of the grid: the context's length and the needle's depth, and where the needle goes in the book. */
export interface NeedleCell {
  readonly length: number;
  readonly depth: number;
  /** Book tokens in the haystack (L less the needle, question and key). */
  readonly haystack: number;
  /** Book tokens before the needle. */
  readonly insertAt: number;
}

/** Powers of two from 1,024 (or `max` itself when smaller) up to `max`. */
export function defaultLengths(max: number): number[] {
  const out: number[] = [];
  for (let L = Math.min(1024, max); L <= max; L *= 2) out.push(L);
  return out;
}

export const defaultDepths = [0, 0.2, 0.4, 0.6, 0.8, 1];

/**
 * Needle places for every (length, depth). A needle goes at the start of a line when one begins within `snap`
 * tokens before round(d·haystack) (`lineStarts` says where lines begin), so it does not cut a word in two.
 */
export function needleCells(
  lengths: readonly number[], depths: readonly number[], fixedTokens: number, lineStart: (position: number) => boolean, snap = 64,
): NeedleCell[] {
  const cells: NeedleCell[] = [];
  for (const length of lengths) {
    const haystack = length - fixedTokens;
    if (haystack < 1) throw new Error(`a context of ${length} tokens is shorter than the needle and question (${fixedTokens} tokens)`);
    for (const depth of depths) {
      const exact = Math.round(depth * haystack);
      let insertAt = exact;
      for (let p = exact; p > 0 && p >= exact - snap; p--) {
        if (lineStart(p)) {
          insertAt = p;
          break;
        }
      }
      cells.push({ length, depth, haystack, insertAt });
    }
  }
  return cells;
}

/** `count` keys: 5-digit numbers, or three words drawn from `words`; reproducible for a seed. */
export function needleKeys(kind: 'digits' | 'words', count: number, seed: number, words: readonly string[] = []): string[] {
  const random = seededRandom(seed);
  const keys: string[] = [];
  while (keys.length < count) {
    const key = kind === 'digits'
      ? String(10000 + Math.floor(random.uniform() * 90000))
      : Array.from({ length: 3 }, () => words[Math.floor(random.uniform() * words.length)]).join(' ');
    if (!keys.includes(key)) keys.push(key);
  }
  return keys;
}

/** Distinct lower-case words of a text, for word keys. */
export function vocabularyOf(text: string, limit = 2000): string[] {
  const seen = new Set<string>();
  for (const m of text.slice(0, 200_000).matchAll(/\b[a-z]{4,9}\b/g)) {
    seen.add(m[0]);
    if (seen.size >= limit) break;
  }
  return [...seen];
}

export interface NeedleTokens {
  readonly needle: Int32Array[];
  readonly question: Int32Array;
  /** The key as the answer continues the question: " 48213". */
  readonly key: Int32Array[];
}

export function encodeNeedles(tokenizer: Tokenizer, keys: readonly string[]): NeedleTokens {
  return {
    needle: keys.map((k) => tokenizer.encode(needleText.replaceAll('{key}', k))),
    question: tokenizer.encode(questionText),
    key: keys.map((k) => tokenizer.encode(` ${k}`)),
  };
}

/** Tokens a context spends on anything but the haystack: the longest needle, the question and the longest key. */
export const fixedTokensOf = (t: NeedleTokens) =>
  Math.max(...t.needle.map((n) => n.length)) + t.question.length + Math.max(...t.key.map((k) => k.length));

/** One row of `needle.arrow`. */
export interface NeedleRow {
  readonly cell: NeedleCell;
  readonly keyIndex: number;
  readonly keyTokens: number;
  /** Σ −log₂ p(key token | everything before). */
  readonly bits: number;
  /** Leading key tokens the model's greedy choice reproduces; all of them: the key is retrieved. */
  readonly matched: number;
}

export interface NeedleRunOptions extends FeedOptions {
  readonly onCell?: (cell: NeedleCell, keyIndex: number) => void;
}

/** Model tokens `runNeedleGrid` reads: the shared prefix once, then each fork's needle, rest of haystack, question, key. */
export function needleWork(cells: readonly NeedleCell[], tokens: NeedleTokens): number {
  let total = Math.max(0, ...cells.map((c) => c.insertAt));
  for (const c of cells) {
    for (let k = 0; k < tokens.key.length; k++) total += tokens.needle[k].length + c.haystack - c.insertAt + tokens.question.length + tokens.key[k].length;
  }
  return total;
}

/** Runs the grid on one model over `book` (token ids); rows in the order of `cells`, keys inner. */
export async function runNeedleGrid(
  model: CausalLM, book: Int32Array, cells: readonly NeedleCell[], tokens: NeedleTokens, options: NeedleRunOptions,
): Promise<NeedleRow[]> {
  const order = cells.map((cell, i) => ({ cell, i })).sort((a, b) => a.cell.insertAt - b.cell.insertAt);
  const rows: NeedleRow[][] = cells.map(() => []);
  const main = TokenStream.fresh(model);
  try {
    for (const { cell, i } of order) {
      if (main.position < cell.insertAt) await main.feed(book.subarray(main.position, cell.insertAt), options);
      for (let k = 0; k < tokens.key.length; k++) {
        options.onCell?.(cell, k);
        const fork = main.fork();
        try {
          await fork.feed(tokens.needle[k], options);
          await fork.feed(book.subarray(cell.insertAt, cell.haystack), options);
          await fork.feed(tokens.question, options);
          const key = tokens.key[k];
          const { nll, greedy } = await fork.feed(key, options);
          let bits = 0, matched = 0;
          for (let j = 0; j < key.length; j++) bits += nll[j] / Math.LN2;
          while (matched < key.length && greedy[matched] === key[matched]) matched++;
          rows[i].push({ cell, keyIndex: k, keyTokens: key.length, bits, matched });
        } finally {
          fork.dispose();
        }
      }
    }
  } finally {
    main.dispose();
  }
  return rows.flat();
}
