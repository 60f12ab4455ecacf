/**
 * A probe run's charts: a needle heatmap per model (context length × depth, coloured by the key's bits or by
 * how often greedy decoding retrieved it; hover gives both), the copy-distance curve, or the intervention's ΔNLL
 * with position t marked. Each exports like every chart (PNG, SVG, CSV); the whole probe as an HTML report.
 */
import { memo, useMemo } from 'react';
import type { InterventionKind } from '../../engine/protocol.js';
import { exportProbeReport, interventionLabels, probeChartKey } from '../commands/probes.js';
import { Chart } from '../components/Chart.js';
import { copyFigure, interventionFigure, type NeedleMeasure, needleFigure, needleMeasureTitles } from '../lib/probe-figures.js';
import { type ProbeShown, setNeedleMeasure, useProbesStore } from '../stores/probes.js';
import { useViewStore } from '../stores/view.js';

const probeTitles = { needle: 'Needle retrieval', copy: 'Copy distance', intervene: 'Intervention' } as const;

const needleCsv = { series: 'measure', x: 'depth_percent', y: 'context_tokens', color: 'value' };
const copyCsv = { series: 'model', x: 'distance_tokens', y: 'nll_nats_per_token' };
const interventionCsv = { series: 'model', x: 'position', y: 'delta_nll_nats' };

const MeasureToggle = memo(function MeasureToggle({ measure }: { readonly measure: NeedleMeasure }) {
  return (
    <label className="picker-field">
      Colour by
      <select aria-label="Colour by" value={measure} onChange={(e) => setNeedleMeasure(e.target.value === 'accuracy' ? 'accuracy' : 'bits')}>
        <option value="bits">{needleMeasureTitles.bits}</option>
        <option value="accuracy">{needleMeasureTitles.accuracy}</option>
      </select>
    </label>
  );
});

function NeedleCharts({ shown }: { readonly shown: ProbeShown }) {
  const measure = useProbesStore((s) => s.measure);
  const figure = useMemo(() => needleFigure(measure), [measure]);
  return (<>
    <MeasureToggle measure={measure} />
    <div className="chart-pair">
      {shown.models.map((m) => (
        <Chart
          key={m.model} title={`${m.name}: needle retrieval`} seriesKey={probeChartKey(shown.id, `needle/${m.model}`)} figure={figure}
          csv={needleCsv} filename={`needle-${m.name}-${shown.id}`} testId="needle-heatmap"
          caption={measure === 'bits' ? 'Bits of the key given everything before it, mean over the keys of each cell (lower is better).' : 'Share of keys greedy decoding reproduced exactly.'}
        />
      ))}
    </div>
  </>);
}

function InterventionChart({ id, kind, at }: { readonly id: string; readonly kind: InterventionKind; readonly at: number }) {
  const figure = useMemo(() => interventionFigure(at, interventionLabels[kind]), [at, kind]);
  const label = interventionLabels[kind];
  return (
    <Chart
      title={`ΔNLL, ${label}`} seriesKey={probeChartKey(id, `intervene/${kind}`)} figure={figure} csv={interventionCsv}
      filename={`intervention-${kind}-${id}`} testId="intervention-chart"
      caption={`Per-token NLL with the ${label} at t = ${at.toLocaleString('en')}, minus the unmodified run's (above zero: worse).`}
    />
  );
}

export const ProbeCharts = memo(function ProbeCharts({ shown }: { readonly shown: ProbeShown }) {
  const exporting = useViewStore((s) => s.pending.exportProbeReport === true);
  return (
    <section className="stack" data-testid="probe-charts" aria-label="Probe results">
      <header className="chart-header">
        <h2 className="chart-title">{probeTitles[shown.kind]} <span className="muted">· {shown.id}</span></h2>
        <div className="chart-actions">
          <button type="button" className="button" disabled={exporting} onClick={() => void exportProbeReport(shown.id)}>{exporting ? 'Exporting…' : 'Export report'}</button>
        </div>
      </header>
      {shown.kind === 'needle' && <NeedleCharts shown={shown} />}
      {shown.kind === 'copy' && (
        <Chart
          title="Copy distance" seriesKey={probeChartKey(shown.id, 'copy')} figure={copyFigure} csv={copyCsv} filename={`copy-distance-${shown.id}`} logX
          testId="copy-chart" caption="NLL of a random span's second occurrence against the distance D back to its first (dotted: the first occurrence). A model that copies drops."
        />
      )}
      {shown.kind === 'intervene' && shown.at !== null && shown.interventions.map((kind) => <InterventionChart key={kind} id={shown.id} kind={kind} at={shown.at!} />)}
      {shown.settings.length > 0 && (
        <dl className="probe-settings-list">
          {shown.settings.map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{v}</dd></div>)}
        </dl>
      )}
    </section>
  );
});
