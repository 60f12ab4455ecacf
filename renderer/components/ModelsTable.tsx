/** A run's models with their summary figures and where each ran (backend, adapter, pipeline stages). */
import { memo } from 'react';
import type { BackendInfo, RunModel } from '../../engine/protocol.js';
import { formatBitsPerByte, formatCount, formatDuration, formatRate } from '../lib/format.js';
import { formatStages } from '../lib/placement.js';
import { BackendTag } from './BackendTag.js';

export interface ModelsTableProps {
  readonly models: readonly RunModel[];
  readonly backend: BackendInfo;
}

export const ModelsTable = memo(function ModelsTable({ models, backend }: ModelsTableProps) {
  return (
    <table className="table table-compact" aria-label="Models in this run">
      <thead>
        <tr>
          <th scope="col">Model</th>
          <th scope="col">Architecture</th>
          <th scope="col">Status</th>
          <th scope="col" className="num">Tokens</th>
          <th scope="col" className="num">Bits per byte</th>
          <th scope="col" className="num">Speed</th>
          <th scope="col" className="num">Time</th>
          <th scope="col" className="num">Parameters</th>
          <th scope="col">Ran on</th>
        </tr>
      </thead>
      <tbody>
        {models.map((m) => (
          <tr key={m.key}>
            <td className="strong" title={m.dir}>{m.name}</td>
            <td>{m.architecture}{m.attention && <div className="muted" data-testid="model-attention">{m.attention}</div>}</td>
            <td><span className={`status status-${m.status}`}>{m.status}</span></td>
            <td className="num">{formatCount(m.tokensDone)} / {formatCount(m.tokensTotal)}</td>
            <td className="num">{formatBitsPerByte(m.bitsPerByte)}</td>
            <td className="num">{formatRate(m.tokensPerSecond)}</td>
            <td className="num">{formatDuration(m.wallSeconds)}</td>
            <td className="num">{formatCount(m.parameters)}</td>
            <td className="nowrap" data-testid="model-placement"><BackendTag backend={backend} />{m.stages && m.stages.length > 0 && ` · ${formatStages(m.stages)}`}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
});
