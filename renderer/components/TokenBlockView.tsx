/** One block of the heatmap: its tokens as coloured spans, or a placeholder of the estimated height while it loads. */
import { memo } from 'react';
import { diffColor, nllColor } from '../lib/heat-colors.js';
import type { TokenBlock } from '../series/tokens.js';

export interface TokenBlockViewProps {
  readonly index: number;
  readonly block: TokenBlock | undefined;
  readonly estimate: number;
  /** Position marked as the focus, if it is in this block. */
  readonly focus: number | null;
}

const describe = (position: number, text: string, nll: number, diff: number | undefined) =>
  `position ${position} · ${JSON.stringify(text)} · ` +
  (Number.isNaN(nll) ? 'not predicted' : `NLL ${nll.toFixed(2)} nats${diff === undefined || Number.isNaN(diff) ? '' : `, ${diff >= 0 ? '+' : ''}${diff.toFixed(2)} vs the other model`}`);

export const TokenBlockView = memo(function TokenBlockView({ index, block, estimate, focus }: TokenBlockViewProps) {
  if (!block) {
    return <div className="token-block token-block-loading" data-block={index} style={{ height: estimate }} aria-busy="true" />;
  }
  return (
    <div className="token-block" data-block={index}>
      {/* blocks are fixed runs of tokens, so one may start mid-word: its first position labels the break */}
      <span className="token-block-label" aria-hidden="true">{block.start.toLocaleString('en')}</span>
      {block.tokens.map((text, i) => {
        const position = block.start + i;
        const nll = block.nll[i];
        const diff = block.diff?.[i];
        return (
          <span
            key={i} data-position={position} className={position === focus ? 'token token-focus' : 'token'} title={describe(position, text, nll, diff)}
            style={{ background: block.diff ? diffColor(diff!) : nllColor(nll) }}
          >{text}</span>
        );
      })}
    </div>
  );
});
