/** Models: shipped demo models and added folders, with architecture and size; the checked ones run; where they run. */
import { memo } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { chooseModel } from '../commands/library.js';
import { BackendsTable } from '../components/BackendsTable.js';
import { EmptyState } from '../components/EmptyState.js';
import { PageHeader } from '../components/PageHeader.js';
import { formatBytes, formatCount } from '../lib/format.js';
import { type ConnectionState, useConnectionStore } from '../stores/connection.js';
import { type DocumentsState, toggleModel, useDocumentsStore } from '../stores/documents.js';
import { useViewStore } from '../stores/view.js';

const selectModels = (s: DocumentsState) => ({ models: s.models, loaded: s.modelsLoaded, selected: s.selectedModels });
const selectBackends = (s: ConnectionState) => ({ backends: s.backends, defaultBackend: s.defaultBackend, engineBackend: s.backend });

export const ModelsView = memo(function ModelsView() {
  const { models, loaded, selected } = useDocumentsStore(useShallow(selectModels));
  const adding = useViewStore((s) => s.pending.addModel === true);
  const { backends, defaultBackend, engineBackend } = useConnectionStore(useShallow(selectBackends));
  return (
    <section className="view" data-testid="models-view" aria-label="Models">
      <PageHeader
        title="Models"
        subtitle={`${selected.length} of ${models.length} selected for the next analysis.`}
        actions={<button type="button" className="button button-primary" onClick={() => void chooseModel()} disabled={adding}>Add model</button>}
      />
      {!loaded ? (
        <EmptyState title="Loading models…" loading />
      ) : models.length === 0 ? (
        <EmptyState title="No models yet">
          Add a checkpoint folder: <code>config.json</code> and safetensors weights (TTT-Linear, TTT-MLP, Llama-style Transformer or Mamba).
        </EmptyState>
      ) : (
        <table className="table" aria-label="Models">
          <thead>
            <tr>
              <th scope="col" className="col-check"><span className="visually-hidden">Selected</span></th>
              <th scope="col">Name</th>
              <th scope="col">Architecture</th>
              <th scope="col" className="num">Layers</th>
              <th scope="col" className="num">Width</th>
              <th scope="col" className="num">Parameters</th>
              <th scope="col" className="num">On disk</th>
              <th scope="col">Tokenizer</th>
            </tr>
          </thead>
          <tbody>
            {models.map((model) => (
              <tr key={model.dir} data-testid="model-row">
                <td className="col-check">
                  <input type="checkbox" checked={selected.includes(model.dir)} onChange={() => toggleModel(model.dir)} aria-label={`Select ${model.name}`} />
                </td>
                <td>
                  <span className="strong" title={model.dir}>{model.name}</span>
                  {model.builtin && <span className="badge">Demo</span>}
                </td>
                <td>{model.architecture}</td>
                <td className="num">{model.layers}</td>
                <td className="num">{model.hiddenSize}</td>
                <td className="num">{model.parameters === undefined ? '—' : formatCount(model.parameters)}</td>
                <td className="num">{model.bytesOnDisk === undefined ? '—' : formatBytes(model.bytesOnDisk)}</td>
                <td className="muted">{model.tokenizer}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {backends.length > 0 && <BackendsTable backends={backends} defaultBackend={defaultBackend} engineBackend={engineBackend} />}
    </section>
  );
});
