/**
 * Where models run: the engine's own backend (adapter, threads, versions), then every backend in the engine's order
 * of preference with whether a run may pick it, its GPU adapter, and why it cannot start on the engine's machine.
 */
import { memo } from 'react';
import type { BackendAvailability, BackendInfo, BackendName } from '../../engine/protocol.js';
import { adapterName, formatThreads } from '../lib/placement.js';
import { BackendTag } from './BackendTag.js';

export interface BackendsTableProps {
  readonly backends: readonly BackendAvailability[];
  readonly defaultBackend: BackendName | null;
  /** What the engine reported about its own backend (`info`). */
  readonly engineBackend: BackendInfo | null;
}

function status(b: BackendAvailability, isDefault: boolean): React.JSX.Element {
  if (isDefault) return <span className="badge badge-accent">Default</span>;
  if (!b.available) return <span className="muted">Unavailable: {b.reason}</span>;
  return <span>{b.adapter?.software ? 'When picked' : 'Available'}</span>;
}

export const BackendsTable = memo(function BackendsTable({ backends, defaultBackend, engineBackend }: BackendsTableProps) {
  return (
    <section className="section" aria-labelledby="backends-title" data-testid="backends">
      <h2 id="backends-title" className="section-title">Where models run</h2>
      {engineBackend && (
        <p className="section-caption" data-testid="engine-backend">
          The engine runs models on <BackendTag backend={engineBackend} />: {[engineBackend.detail, formatThreads(engineBackend), `TF.js ${engineBackend.tfjsVersion}`].filter(Boolean).join(', ')}.
          {' '}A run can pick another one that is available (Runs → Backend).
        </p>
      )}
      <table className="table" aria-label="Backends">
        <thead>
          <tr>
            <th scope="col">Backend</th>
            <th scope="col">Status</th>
            <th scope="col">Adapter</th>
            <th scope="col" className="num">Default stages</th>
          </tr>
        </thead>
        <tbody>
          {backends.map((b) => (
            <tr key={b.name} className={b.available ? undefined : 'row-disabled'}>
              <td className="strong">{b.name}</td>
              <td>{status(b, b.name === defaultBackend)}</td>
              <td>
                {b.adapter ? <span title={`${b.adapter.vendor} ${b.adapter.architecture}`.trim()}>{adapterName(b.adapter)}</span> : <span className="muted">—</span>}
                {b.adapter?.software && <span className="badge badge-warn">software</span>}
              </td>
              <td className="num">{b.available ? b.defaultStages : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
});
