import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import llamaLib from 'llama-tokenizer-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { WorkbenchError } from '../errors.js';
import { byteLevelAlphabet, createHfTokenizer } from './hf.js';
import { assertTokenizerFitsModel, byteTokenizer, createTokenizer, encodeDocument, knownTokenizers, tokenizeInChunks, type Tokenizer } from './index.js';

const kjvPath = fileURLToPath(new URL('../../../assets/corpus/kjv.txt', import.meta.url));
const kjvExcerpt = existsSync(kjvPath) ? readFileSync(kjvPath, 'utf8').slice(0, 30_000) : '';

/** Text that stresses boundaries: runs of spaces, blank lines, CRLF, tabs, accents, CJK, emoji, a leading space. */
const tricky = [
  ' Leading space, then  two   three    four spaces.',
  'Line two\tafter a tab.\r\nCRLF line; naïve café, Grüße, 中文字符, emoji 😀👍🏽 end.',
  '',
  '   indented line',
  'And the LORD said: "Let there be light" — and there was light.',
  'trailing spaces   ',
  '',
  '',
  'ünïcödé at the start of a line\nx',
].join('\n');

function oneLine(error: unknown): string {
  expect(error).toBeInstanceOf(WorkbenchError);
  const message = (error as Error).message;
  expect(message).not.toContain('\n');
  return message;
}

function concatChunks(tokenizer: Tokenizer, text: string, chunkChars: number, bos?: boolean): { ids: number[]; covered: string; chunks: number } {
  const ids: number[] = [];
  let covered = '';
  let chunks = 0;
  let expectedStart = 0;
  for (const chunk of tokenizeInChunks(tokenizer, text, chunkChars, { bos })) {
    expect(chunk.start).toBe(expectedStart);
    expectedStart = chunk.end;
    covered += text.slice(chunk.start, chunk.end);
    ids.push(...chunk.ids);
    chunks++;
  }
  return { ids, covered, chunks };
}

/** A GPT-2-style byte-level BPE over all 256 bytes plus a few merges; ids 0..255 are the bytes themselves. */
function byteLevelTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  for (const [char, byte] of byteLevelAlphabet) vocab[char] = byte;
  const merges = [['H', 'e'], ['l', 'l'], ['He', 'll'], ['Hell', 'o'], ['Ġ', 'w'], ['o', 'r'], ['Ġw', 'or'], ['Ġwor', 'l'], ['Ġworl', 'd']];
  merges.forEach(([a, b], i) => (vocab[a + b] = 256 + i));
  return {
    version: '1.0',
    added_tokens: [
      { id: 265, content: '<s>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false },
      { id: 266, content: '</s>', special: true, single_word: false, lstrip: false, rstrip: false, normalized: false },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [265], tokens: ['<s>'] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

/** A SentencePiece-style file as Hugging Face converts Llama's: '▁' for spaces, byte fallback, no pre-tokenizer. */
function sentencePieceTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  for (const c of '▁abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?\'"') vocab[c] ??= Object.keys(vocab).length;
  const merges = [['▁', 't'], ['h', 'e'], ['▁t', 'he'], ['▁', 'a'], ['▁a', 'n'], ['▁an', 'd'], ['▁', '▁'], ['i', 'n'], ['▁', 'in']];
  for (const [a, b] of merges) vocab[a + b] ??= Object.keys(vocab).length;
  const special = (id: number, content: string) => ({ id, content, special: true, single_word: false, lstrip: false, rstrip: false, normalized: false });
  return {
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
  };
}

describe('bytes tokenizer', () => {
  it('maps text to its UTF-8 bytes and back, exactly', () => {
    expect(Array.from(byteTokenizer.encode('Hé😀'))).toEqual([72, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80]);
    for (const text of [tricky, '\uFEFFstarts with a BOM', '', kjvExcerpt]) expect(byteTokenizer.decode(byteTokenizer.encode(text))).toBe(text);
    expect(byteTokenizer.vocabSize).toBe(256);
    expect(byteTokenizer.bosId).toBeUndefined();
  });

  it('counts one byte per token and shows bytes readably', () => {
    expect(Array.from(byteTokenizer.tokenBytes([72, 0xc3, 0xa9]))).toEqual([1, 1, 1]);
    expect([72, 10, 0xc3].map((id) => byteTokenizer.tokenText(id))).toEqual(['H', '\n', '<0xC3>']);
  });

  it('refuses ids outside 0..255 and never cuts inside a surrogate pair', () => {
    expect(oneLine(catchError(() => byteTokenizer.decode([72, 300])))).toBe('tokenizer "bytes": id 300 at position 1 is not one of its tokens (0..255)');
    expect(byteTokenizer.findCut('a😀b', 2, 4)).toBe(3);
  });
});

describe('llama2 tokenizer', () => {
  let llama: Tokenizer;
  beforeAll(async () => {
    llama = await createTokenizer('llama2');
  });

  it('gives the package\'s own ids for "Hello world", without BOS', () => {
    const expected = llamaLib.encode('Hello world', false, true);
    expect(expected).toEqual([15043, 3186]);
    expect(Array.from(llama.encode('Hello world'))).toEqual(expected);
    expect(llama.decode([15043, 3186])).toBe('Hello world');
    expect(llama.decode([1, 15043, 3186, 2])).toBe('Hello world');
    expect(Array.from(llama.tokenBytes([1, 15043, 3186, 13]))).toEqual([0, 6, 6, 1]);
    expect([15043, 13, 1].map((id) => llama.tokenText(id))).toEqual([' Hello', '\n', '<s>']);
    expect(llama.vocabSize).toBe(32000);
    expect(llama.bosId).toBe(1);
  });

  it('has no piece that would let a merge cross a word start (what word-by-word encoding relies on)', () => {
    expect(llamaLib.vocabById.filter((piece) => /[^▁]▁/.test(piece))).toEqual([]);
    expect([...llamaLib.merges.keys()].filter((merge) => merge.includes('<0x'))).toEqual([]);
  });

  it('encodes word by word to the same ids as the package on the whole text, and round-trips', () => {
    for (const text of [tricky, kjvExcerpt, ' ', '\n\nx', 'a    b']) {
      expect(Array.from(llama.encode(text))).toEqual(text.length ? llamaLib.encode(text, false, true) : []);
      expect(llama.decode(llama.encode(text))).toBe(text);
    }
  });

  it('puts BOS once, at the start of a document', () => {
    expect(Array.from(encodeDocument(llama, 'Hello world'))).toEqual([1, 15043, 3186]);
    expect(Array.from(encodeDocument(llama, 'Hello world', { bos: false }))).toEqual([15043, 3186]);
    expect(Array.from(encodeDocument(byteTokenizer, 'Hi'))).toEqual([72, 105]);
  });
});

describe('Hugging Face tokenizer.json', () => {
  it('runs a byte-level BPE file: merges, BOS from its post-processor, exact round trips', () => {
    const hf = createHfTokenizer({ tokenizerJson: byteLevelTokenizerJson(), source: 'tiny/tokenizer.json' });
    expect(hf.name).toBe('hf:tiny/tokenizer.json');
    expect(hf.vocabSize).toBe(267);
    expect(hf.bosId).toBe(265);
    expect(Array.from(hf.encode('Hello world'))).toEqual([259, 264]);
    expect(hf.decode([265, 259, 264])).toBe('Hello world');
    expect(Array.from(hf.tokenBytes([265, 259, 264]))).toEqual([0, 5, 6]);
    expect([264, 0xc3, 265].map((id) => hf.tokenText(id))).toEqual([' world', '<0xC3>', '<s>']);
    // Ids 0..255 are built from this module's byte table; the package's own table must agree for this to hold.
    for (const text of [tricky, kjvExcerpt.slice(0, 5000)]) {
      const ids = hf.encode(text);
      expect(hf.decode(ids)).toBe(text);
      expect(hf.tokenBytes(ids).reduce((a, b) => a + b, 0)).toBe(new TextEncoder().encode(text).byteLength);
    }
  });

  it('runs a SentencePiece-style file with byte fallback', () => {
    const hf = createHfTokenizer({ tokenizerJson: sentencePieceTokenizerJson(), tokenizerConfig: { bos_token: '<s>' } });
    expect(hf.bosId).toBe(1);
    const ids = hf.encode('the and in');
    expect(ids.length).toBe(3);
    expect(Array.from(hf.tokenBytes(ids))).toEqual([4, 4, 3]);
    expect(hf.tokenText(ids[1])).toBe(' and');
    expect(hf.decode(hf.encode(tricky))).toBe(tricky);
  });

  it('refuses a file that is not a tokenizer, in one line naming it', () => {
    const message = oneLine(catchError(() => createHfTokenizer({ tokenizerJson: { version: '1.0' }, source: 'm/tokenizer.json' })));
    expect(message).toMatch(/^m\/tokenizer\.json: not a usable tokenizer/);
    oneLine(catchError(() => createHfTokenizer({ tokenizerJson: { model: { type: 'Nonsense' } } })));
  });
});

describe('tokenizer factory and model fit', () => {
  it('creates each kind and lists the known ones for an unknown name', async () => {
    expect((await createTokenizer('bytes')).name).toBe('bytes');
    expect((await createTokenizer({ kind: 'hf', tokenizerJson: byteLevelTokenizerJson() })).vocabSize).toBe(267);
    const message = oneLine(await createTokenizer('gpt2').catch((e: unknown) => e));
    expect(message).toBe('unknown tokenizer "gpt2" (known: bytes, llama2, hf)');
    expect(knownTokenizers).toEqual(['bytes', 'llama2', 'hf']);
  });

  it('refuses a tokenizer whose ids exceed the model vocabulary, naming both sizes', async () => {
    const llama = await createTokenizer('llama2');
    const message = oneLine(catchError(() => assertTokenizerFitsModel(llama, 256, 'assets/ttt-bytes/config.json')));
    expect(message).toBe('assets/ttt-bytes/config.json: tokenizer "llama2" has 32000 tokens but the model\'s vocabulary has only 256');
    expect(() => assertTokenizerFitsModel(byteTokenizer, 256, 'm')).not.toThrow();
    expect(() => assertTokenizerFitsModel(byteTokenizer, 260, 'm')).not.toThrow(); // padded vocabularies are fine
    expect(() => assertTokenizerFitsModel(llama, 32000, 'm')).not.toThrow();
  });
});

describe('tokenizeInChunks', () => {
  const texts = { tricky: `${tricky}\n${tricky}\nAnd more.\n`, kjv: kjvExcerpt };
  const kinds: Array<[string, () => Promise<Tokenizer>]> = [
    ['bytes', () => createTokenizer('bytes')],
    ['llama2', () => createTokenizer('llama2')],
    ['hf byte-level', async () => createHfTokenizer({ tokenizerJson: byteLevelTokenizerJson() })],
    ['hf sentencepiece', async () => createHfTokenizer({ tokenizerJson: sentencePieceTokenizerJson() })],
  ];

  it.each(kinds)('%s: chunks give exactly the ids of the whole text, BOS once', async (_name, make) => {
    const tokenizer = await make();
    for (const text of Object.values(texts)) {
      const whole = Array.from(encodeDocument(tokenizer, text));
      for (const chunkChars of [7, 200, 5000]) {
        const { ids, covered, chunks } = concatChunks(tokenizer, text, chunkChars);
        expect(covered).toBe(text);
        if (chunkChars === 200) expect(chunks).toBeGreaterThan(1);
        expect(ids.length).toBe(whole.length);
        expect(ids).toEqual(whole);
      }
    }
    const bos = tokenizer.bosId;
    if (bos !== undefined) expect(concatChunks(tokenizer, texts.tricky, 50).ids.filter((id) => id === bos)).toEqual([bos]);
  });
});

function catchError(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
