/**
 * Token text and NLL for the heatmap, in blocks of `blockTokens` tokens outside zustand: a 4M-token book is
 * 8,000 blocks, of which the heatmap shows a few. The most recently used blocks are kept; a version counter
 * tells the heatmap to re-render when blocks arrive.
 */
export const blockTokens = 512;
const keep = 96;

export interface TokenBlock {
  readonly start: number;
  readonly tokens: readonly string[];
  /** NLL in nats, NaN where there is none (position 0). */
  readonly nll: Float64Array;
  /** NLL minus the compared model's, or null when colouring by NLL. */
  readonly diff: Float64Array | null;
  readonly byteAligned: boolean;
}

const blocks = new Map<string, TokenBlock>();
const listeners = new Set<() => void>();
let version = 0;

/** Blocks of one view: a run's model, coloured by NLL or by the difference to `compare`. */
export const blockKey = (runId: string, model: string, compare: string | null, index: number): string => `${runId}/${model}/${compare ?? ''}/${index}`;

export function getBlock(key: string): TokenBlock | undefined {
  const block = blocks.get(key);
  if (block) {
    blocks.delete(key);
    blocks.set(key, block);
  }
  return block;
}

let frame = 0;

/** Listeners hear once per animation frame however many blocks arrived: each hearing re-lays out the text. */
function notifySoon(): void {
  if (frame !== 0) return;
  const notify = () => {
    frame = 0;
    for (const listener of listeners) listener();
  };
  frame = typeof requestAnimationFrame === 'function' ? requestAnimationFrame(notify) : (setTimeout(notify, 0) as unknown as number);
}

export function putBlock(key: string, block: TokenBlock): void {
  blocks.set(key, block);
  while (blocks.size > keep) blocks.delete(blocks.keys().next().value!);
  version++;
  notifySoon();
}

export const blocksVersion = (): number => version;

export function subscribeBlocks(listener: () => void): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

export function clearBlocks(): void {
  blocks.clear();
  version++;
}
