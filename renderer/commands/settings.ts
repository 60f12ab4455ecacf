/** Run settings that need the engine: choosing full attention asks what it would cost on the open book, first. */
import { useDocumentsStore } from '../stores/documents.js';
import { setEstimate, setWindowChoice, useSettingsStore } from '../stores/settings.js';
import { attempt, request } from './engine.js';

export async function chooseWindow(window: number | 'full' | null): Promise<void> {
  setWindowChoice(window);
  if (window !== 'full') return;
  const { openBook, selectedModels } = useDocumentsStore.getState();
  if (!openBook || selectedModels.length === 0) return;
  const { maxTokens } = useSettingsStore.getState();
  const estimate = await attempt('estimateAnalysis', () => request('estimateAnalysis', {
    book: openBook, models: [...selectedModels], window: 'full', ...(maxTokens ? { maxTokens } : {}),
  }));
  if (estimate && useSettingsStore.getState().window === 'full') setEstimate(estimate.models.filter((m) => m.attention !== null));
}
