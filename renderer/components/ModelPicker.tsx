/** Which model, layer and (TTT-MLP) inner matrix a view shows. */
import { memo } from 'react';
import type { RunModel } from '../../engine/protocol.js';
import { chooseLayer, chooseMatrix, chooseModel } from '../commands/analysis.js';

export interface ModelPickerProps {
  readonly models: readonly RunModel[];
  readonly model: RunModel;
  readonly layer?: number;
  readonly matrix?: 'W1' | 'W2';
  readonly matrices?: readonly string[];
}

export const ModelPicker = memo(function ModelPicker({ models, model, layer, matrix, matrices = [] }: ModelPickerProps) {
  return (
    <div className="picker">
      <label className="picker-field">
        Model
        <select aria-label="Model" value={model.key} onChange={(e) => void chooseModel(e.target.value)}>
          {models.map((m) => <option key={m.key} value={m.key}>{m.name} ({m.architecture})</option>)}
        </select>
      </label>
      {layer !== undefined && (
        <label className="picker-field">
          Layer
          <select aria-label="Layer" value={layer} onChange={(e) => void chooseLayer(Number(e.target.value))}>
            {Array.from({ length: model.layers }, (_, l) => <option key={l} value={l}>{l}</option>)}
          </select>
        </label>
      )}
      {matrix && matrices.length > 1 && (
        <label className="picker-field">
          Matrix
          <select aria-label="Matrix" value={matrix} onChange={(e) => void chooseMatrix(e.target.value as 'W1' | 'W2')}>
            {matrices.map((m) => <option key={m} value={m}>{m}</option>)}
          </select>
        </label>
      )}
    </div>
  );
});
