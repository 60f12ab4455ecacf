/**
 * The TTT hidden state's shape over a book, from the full-W snapshots an analysis keeps (`snapshots.safetensors`,
 * tensors `layers.L.W1.mbM` of shape [heads, rows, cols] at ~32 log-spaced mini-batches): a 2-D PCA trajectory
 * of the snapshots, and singular-value spectra at chosen positions.
 */
import { parseHeader, readHeaderLength, decodeTensor } from '../core/safetensors.js';
import { workbenchError } from '../core/errors.js';
import type { MethodResult, RunManifest } from '../protocol.js';
import { cached, readBytes } from './column-cache.js';
import { pca2, singularValues } from './linalg.js';
import { findModel, modelFile } from './run-store.js';

export interface SnapshotQuery {
  readonly layer: number;
  readonly matrix?: 'W1' | 'W2';
  /** Positions to give spectra for (each answered by the nearest snapshot); default: first, middle and last. */
  readonly spectra?: readonly number[];
}

interface Snapshot {
  readonly miniBatch: number;
  readonly position: number;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

interface SnapshotFile {
  readonly miniBatchSize: number;
  readonly layers: number;
  readonly matrices: string[];
  /** `L.W1` → that layer's snapshots of W1, in position order. */
  readonly byLayer: ReadonlyMap<string, Snapshot[]>;
}

const snapshotName = /^layers\.(\d+)\.(W\d)\.mb(\d+)$/;

function readSnapshotFile(path: string): Promise<SnapshotFile> {
  return cached(path, `${path}#snapshots`, async () => {
    const bytes = await readBytes(path);
    const header = parseHeader(bytes.subarray(8, 8 + readHeaderLength(bytes, path, bytes.byteLength)), path);
    const miniBatchSize = Number(header.metadata.mini_batch_size ?? '1');
    const byLayer = new Map<string, Snapshot[]>();
    const matrices = new Set<string>();
    let layers = 0;
    for (const entry of header.entries.values()) {
      const match = snapshotName.exec(entry.name);
      if (!match) continue;
      const [, layer, matrix, mb] = match;
      const list = byLayer.get(`${layer}.${matrix}`) ?? [];
      const data = decodeTensor(entry, bytes.subarray(header.dataOffset + entry.begin, header.dataOffset + entry.end), path);
      list.push({ miniBatch: Number(mb), position: (Number(mb) + 1) * miniBatchSize - 1, shape: entry.shape, data });
      byLayer.set(`${layer}.${matrix}`, list);
      matrices.add(matrix);
      layers = Math.max(layers, Number(layer) + 1);
    }
    for (const list of byLayer.values()) list.sort((a, b) => a.miniBatch - b.miniBatch);
    return { miniBatchSize, layers, matrices: [...matrices].sort(), byLayer };
  });
}

/**
 * Singular values of a layer's inner model as one linear map: W is block-diagonal over heads, so its spectrum
 * is the union of the heads' spectra. Largest first.
 */
export function layerSpectrum(snapshot: { shape: readonly number[]; data: Float32Array }): number[] {
  const [heads, rows, cols] = snapshot.shape.length === 3 ? snapshot.shape : [1, ...snapshot.shape];
  const values: number[] = [];
  for (let h = 0; h < heads; h++) values.push(...singularValues(snapshot.data.subarray(h * rows * cols, (h + 1) * rows * cols), rows, cols));
  return values.sort((a, b) => b - a);
}

const nearest = (list: readonly Snapshot[], position: number) =>
  list.reduce((best, s) => (Math.abs(s.position - position) < Math.abs(best.position - position) ? s : best), list[0]);

export async function readSnapshots(runDir: string, manifest: RunManifest, modelKey: string, query: SnapshotQuery): Promise<MethodResult<'getSnapshots'>> {
  const model = findModel(manifest, modelKey);
  const path = modelFile(runDir, manifest, model, 'snapshots', 'weight-snapshot');
  const file = await readSnapshotFile(path);
  const matrix = query.matrix ?? 'W1';
  const list = file.byLayer.get(`${query.layer}.${matrix}`);
  if (!list || list.length === 0) {
    throw workbenchError('E_RUN', manifest.id, `model ${model.name} has no ${matrix} snapshots for layer ${query.layer} (layers 0..${file.layers - 1}, matrices ${file.matrices.join(', ')})`);
  }
  const positions = list.map((s) => s.position);
  const wanted = query.spectra ?? [positions[0], positions[Math.floor((positions.length - 1) / 2)], positions[positions.length - 1]];
  const chosen = [...new Set(wanted.map((p) => nearest(list, p)))].sort((a, b) => a.position - b.position);
  const trajectory = await cached(path, `${path}#pca:${query.layer}.${matrix}`, async () => pca2(list.map((s) => s.data)));
  return {
    miniBatchSize: file.miniBatchSize,
    layers: file.layers,
    matrices: file.matrices,
    positions,
    pca: trajectory,
    spectra: chosen.map((s) => ({ position: s.position, values: layerSpectrum(s) })),
  };
}
