/**
 * Every user-facing engine error, in one table (after xyflow's `system/src/constants.ts`).
 * A message is one line: it names the culprit (file, tensor, token) and what is wrong with it.
 */

export const errorMessages = {
  E_FILE_NOT_FOUND: (path: string) => `${path}: no such file`,
  E_FILE_READ: (path: string, reason: string) => `${path}: cannot read (${reason})`,
  E_JSON: (path: string, reason: string) => `${path}: not valid JSON (${reason})`,
  E_FILE_WRITE: (path: string, reason: string) => `${path}: cannot write (${reason})`,
  E_DISK_FULL: (path: string) => `no space left on the device for ${path}`,
  E_RUN: (id: string, reason: string) => `run ${id}: ${reason}`,
  E_SAFETENSORS: (source: string, reason: string) => `${source}: not a valid safetensors file (${reason})`,
  E_SAFETENSORS_DTYPE: (source: string, name: string, dtype: string) =>
    `${source}: tensor ${name} has dtype ${dtype}; supported: F32, F16, BF16`,
  E_CONFIG: (source: string, reason: string) => `${source}: ${reason}`,
  E_UNSUPPORTED_MODEL: (source: string, found: string, known: readonly string[]) =>
    `${source}: unsupported model type "${found}" (known: ${known.join(', ')})`,
  E_WEIGHTS: (source: string, problems: readonly string[]) => `${source}: ${problems.join('; ')}`,
  E_INPUT: (source: string, reason: string) => `${source}: ${reason}`,
  E_OPTION: (option: string, value: string, reason: string) => `option ${option}=${value}: ${reason}`,
  E_TOKEN_OUT_OF_VOCAB: (source: string, position: number, id: number, vocabSize: number) =>
    `${source}: token ${id} at position ${position} is outside the model's vocabulary (0..${vocabSize - 1})`,
  E_MEMORY: (source: string, backend: string, needs: string, limit: string, advice: string) =>
    `${source}: needs about ${needs} on backend "${backend}", which has ${limit}; ${advice}`,
  E_BACKEND: (requested: string, reason: string, available: readonly string[]) =>
    `backend "${requested}" is not available (${reason}); available: ${available.join(', ') || 'none'}`,
  E_TOKENIZER_UNKNOWN: (found: string, known: readonly string[]) =>
    `unknown tokenizer "${found}" (known: ${known.join(', ')})`,
  E_TOKENIZER: (source: string, reason: string) => `${source}: not a usable tokenizer (${reason})`,
  E_TOKENIZER_VOCAB: (modelSource: string, tokenizer: string, tokenizerVocab: number, modelVocab: number) =>
    `${modelSource}: tokenizer "${tokenizer}" has ${tokenizerVocab} tokens but the model's vocabulary has only ${modelVocab}`,
  E_TOKENIZER_CHUNK: (tokenizer: string, position: number) =>
    `tokenizer "${tokenizer}" cannot split the text at character ${position} without changing its tokens; tokenize it whole`,
  E_TOKEN_ID: (tokenizer: string, position: number, id: number, vocabSize: number) =>
    `tokenizer "${tokenizer}": id ${id} at position ${position} is not one of its tokens (0..${vocabSize - 1})`,
  E_BOOK_EMPTY: (path: string) => `${path}: the file is empty`,
  E_BOOK_BLANK: (path: string, bytes: number) => `${path}: the file holds only whitespace (${bytes} bytes)`,
  E_BOOK_BINARY: (path: string, reason: string) => `${path}: looks like a binary file, not text (${reason})`,
  E_BOOK_ENCODING: (path: string, encoding: string, offset: number) =>
    `${path}: not valid ${encoding}: the first bad byte sequence is at byte offset ${offset}`,
  E_STAGE: (stage: string, reason: string) => `${stage}: ${reason}`,
  E_DIVERGED: (model: string, position: number) =>
    `${model}: the loss is not a number from token ${position} on (NaN or infinite: its weights or activations overflowed); the model stopped there`,
  E_USAGE: (reason: string) => reason,
  E_UPLOAD: (name: string, reason: string) => `${name}: ${reason}`,
} as const;

export type ErrorCode = keyof typeof errorMessages;

export class WorkbenchError extends Error {
  override readonly name = 'WorkbenchError';
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

/** Builds the error for `code` from that code's message template, so call sites cannot drift from the table. */
export function workbenchError<C extends ErrorCode>(
  code: C,
  ...args: Parameters<(typeof errorMessages)[C]>
): WorkbenchError {
  const template = errorMessages[code] as (...a: unknown[]) => string;
  return new WorkbenchError(code, template(...args));
}
