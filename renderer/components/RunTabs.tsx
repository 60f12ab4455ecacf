/** The run view's tabs: the overview and the analytical views of one run. */
import { memo } from 'react';
import { showRunTab } from '../commands/analysis.js';
import { type RunTab, runTabs } from '../stores/analysis.js';

export const RunTabs = memo(function RunTabs({ tab }: { readonly tab: RunTab }) {
  return (
    <div className="tabs" role="tablist" aria-label="Run views">
      {runTabs.map((t) => (
        <button key={t.tab} type="button" role="tab" id={`tab-${t.tab}`} aria-controls="run-tabpanel" aria-selected={tab === t.tab} className="tab" onClick={() => void showRunTab(t.tab)}>
          {t.label}
        </button>
      ))}
    </div>
  );
});
