/**
 * The book as coloured text, virtualised: only the blocks around the viewport are in the page (a 4M-token book is
 * 8,000 blocks of 512 tokens), the rest are spacers of their measured or estimated height. When a block is
 * measured and its height differs from the estimate, the scroll position is corrected so the text under the
 * reader's eyes does not move. A focus position scrolls its block into view and centres its token.
 */
import { memo, useEffect, useLayoutEffect, useRef, useState, useSyncExternalStore } from 'react';
import { ensureTokenBlocks } from '../commands/tokens.js';
import { blockKey, blocksVersion, blockTokens, getBlock, subscribeBlocks } from '../series/tokens.js';
import { TokenBlockView } from './TokenBlockView.js';

export interface TokenScrollerProps {
  readonly runId: string;
  readonly model: string;
  readonly compare: string | null;
  /** Tokens in the model's part of the run. */
  readonly total: number;
  readonly focus: number | null;
  readonly onPick: (position: number) => void;
}

/** A block's height before it is measured: 512 byte tokens of English wrap to about eight lines. */
const firstEstimate = 170;

export const TokenScroller = memo(function TokenScroller({ runId, model, compare, total, focus, onPick }: TokenScrollerProps) {
  const container = useRef<HTMLDivElement>(null);
  const heights = useRef(new Map<number, number>());
  const anchor = useRef<{ block: number; delta: number } | null>(null);
  const jump = useRef<number | null>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const [, setMeasured] = useState(0);
  useSyncExternalStore(subscribeBlocks, blocksVersion);

  const count = Math.max(1, Math.ceil(total / blockTokens));
  const measured = [...heights.current.values()];
  const estimate = measured.length ? measured.reduce((a, b) => a + b, 0) / measured.length : firstEstimate;
  const prefix = new Float64Array(count + 1);
  for (let b = 0; b < count; b++) prefix[b + 1] = prefix[b] + (heights.current.get(b) ?? estimate);
  let first = 0;
  while (first < count - 1 && prefix[first + 1] <= scrollTop) first++;
  let last = first;
  while (last < count - 1 && prefix[last + 1] < scrollTop + viewport) last++;
  const from = Math.max(0, first - 1);
  const to = Math.min(count - 1, last + 1);

  useEffect(() => {
    heights.current.clear();
    anchor.current = null;
  }, [runId, model, compare]);

  useEffect(() => {
    const element = container.current!;
    const resize = new ResizeObserver(() => setViewport(element.clientHeight));
    resize.observe(element);
    return () => resize.disconnect();
  }, []);

  useEffect(() => {
    if (focus === null) return;
    jump.current = focus;
    const top = prefix[Math.min(count - 1, Math.floor(focus / blockTokens))];
    container.current!.scrollTop = top;
    setScrollTop(top);
    // only a new focus (or a new text) scrolls: later renders with new heights must not pull the reader back
  }, [focus, runId, model, compare]);

  useEffect(() => {
    ensureTokenBlocks(runId, model, compare, Array.from({ length: to - from + 1 }, (_, i) => from + i));
  });

  useLayoutEffect(() => {
    const element = container.current!;
    if (anchor.current) {
      element.scrollTop = prefix[anchor.current.block] + anchor.current.delta;
      anchor.current = null;
    }
    let changed = false;
    for (const node of element.querySelectorAll<HTMLElement>('.token-block[data-block]:not(.token-block-loading)')) {
      const index = Number(node.dataset.block);
      if (heights.current.get(index) !== node.offsetHeight) {
        if (!changed) anchor.current = { block: first, delta: element.scrollTop - prefix[first] };
        heights.current.set(index, node.offsetHeight);
        changed = true;
      }
    }
    if (changed) setMeasured((n) => n + 1);
    else if (jump.current !== null) {
      const span = element.querySelector<HTMLElement>(`[data-position="${jump.current}"]`);
      if (span) {
        span.scrollIntoView({ block: 'center' });
        jump.current = null;
      }
    }
  });

  const blocks = [];
  for (let b = from; b <= to; b++) {
    const block = getBlock(blockKey(runId, model, compare, b));
    blocks.push(<TokenBlockView key={b} index={b} block={block} estimate={estimate} focus={focus !== null && Math.floor(focus / blockTokens) === b ? focus : null} />);
  }
  return (
    <div
      ref={container} className="token-scroller" data-testid="token-scroller" tabIndex={0} aria-label="Book text coloured by NLL"
      onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}
      onClick={(e) => {
        const position = (e.target as HTMLElement).closest<HTMLElement>('[data-position]')?.dataset.position;
        if (position !== undefined) onPick(Number(position));
      }}
    >
      <div style={{ height: prefix[from] }} />
      {blocks}
      <div style={{ height: prefix[count] - prefix[to + 1] }} />
    </div>
  );
});
