/** Which of a run's models each analysis tab can show (inner loop: TTT only; tokens: any with results). */
import type { RunManifest, RunModel } from '../../engine/protocol.js';
import type { RunTab } from '../stores/analysis.js';

const fits: Record<RunTab, (m: RunModel) => boolean> = {
  perplexity: (m) => Boolean(m.files.nll),
  innerLoop: (m) => Boolean(m.files.innerLoop),
  hiddenState: (m) => Boolean(m.files.hiddenState || m.files.modelState),
  tokens: (m) => Boolean(m.files.nll),
  comparison: (m) => Boolean(m.files.nll),
};

export function modelsFor(manifest: RunManifest, tab: RunTab): RunModel[] {
  // a running model has files from its first chunk on, whatever the manifest's figures said when it was read
  return manifest.models.filter((m) => (m.predictedTokens > 0 || m.status === 'running') && fits[tab](m));
}

/** The chosen model where the tab can show it, else the tab's first. */
export function modelFor(manifest: RunManifest, tab: RunTab, chosen: string | null): RunModel | undefined {
  const candidates = modelsFor(manifest, tab);
  return candidates.find((m) => m.key === chosen) ?? candidates[0];
}
