/**
 * Resume: an interrupted, cancelled or failed run continues in its own folder. Each model that did not finish
 * goes on from its last checkpoint (`models/<key>/state.safetensors`: every pipeline stage's carried state, see
 * models/state-io.ts, and the position it belongs to), or from the start when it has none. Its result files are
 * cut back to that position (rows beyond it dropped, so no position is written twice) and its figures and live
 * aggregates rebuilt from the rows kept. A run whose book, model files or settings changed is refused in one line.
 *
 * Checkpoints are written by analyze.ts in this order: result files flushed up to the position, the state file
 * (atomically), then the manifest. So a state file never belongs to a position whose rows are not on disk.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Table } from 'apache-arrow';
import { WorkbenchError, workbenchError } from '../core/errors.js';
import { type FloatTensor, readSafetensors, writeSafetensors } from '../core/safetensors.js';
import { readBook } from '../io/book.js';
import type { StatePart } from '../runtime/stage-messages.js';
import type { StateTensor } from '../models/state-io.js';
import type { RunManifest, RunModel } from '../protocol.js';
import { type Column, type Columns, readArrowTable } from './arrow-writer.js';
import { readManifest } from './run-store.js';

/** Where one model of a resumed run goes on from. */
export interface ModelResume {
  /** Tokens consumed at the checkpoint; 0: the model starts over. */
  readonly position: number;
  /** Every stage's state at `position` (null at 0). */
  readonly state: readonly StatePart[] | null;
  /** The rows of each result file (by series name, as in `files`) up to `position`. */
  readonly keep: Readonly<Record<string, Columns>>;
  /** Snapshots of W taken up to `position`. */
  readonly snapshots: readonly FloatTensor[];
  /** The manifest's figures over the rows kept. */
  readonly nllSum: number;
  readonly predictedTokens: number;
  readonly predictedBytes: number;
  readonly wallSeconds: number;
}

export interface ResumePlan {
  readonly manifest: RunManifest;
  /** Per model of the manifest: where it goes on from, or null when it is left as it is (finished or diverged). */
  readonly models: readonly (ModelResume | null)[];
}

/** The checkpoint file of a model, relative to the run folder. */
export const stateFileOf = (key: string) => join('models', key, 'state.safetensors');

const stateFormat = 'ttt-workbench-state/1';

/** A checkpoint as one safetensors file: tensors `<stage>.<path>`, the skeletons and position in its metadata. */
export function encodeCheckpoint(position: number, parts: readonly StatePart[]): Uint8Array {
  const tensors: FloatTensor[] = parts.flatMap((p, stage) => p.tensors.map((t) => ({
    name: `${stage}.${t.path}`, shape: [...t.shape], data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data),
  })));
  const stages = parts.map((p) => ({ layerStart: p.layerStart, skeleton: p.skeleton, tensors: p.tensors.map((t) => ({ path: t.path, dtype: t.dtype })) }));
  return writeSafetensors(tensors, 'F32', { format: stateFormat, position: String(position), stages: JSON.stringify(stages) });
}

/** `encodeCheckpoint`'s file read back: its position and every stage's part. */
export function decodeCheckpoint(bytes: Uint8Array, source: string): { position: number; parts: StatePart[] } {
  const { header, tensors } = readSafetensors(bytes, source);
  const meta = header.metadata ?? {};
  if (meta.format !== stateFormat) throw workbenchError('E_INPUT', source, `not a state checkpoint (format ${meta.format ?? 'missing'})`);
  const stages = JSON.parse(meta.stages ?? '[]') as { layerStart: number; skeleton: StatePart['skeleton']; tensors: { path: string; dtype: StateTensor['dtype'] }[] }[];
  const parts = stages.map((s, stage): StatePart => ({
    layerStart: s.layerStart,
    skeleton: s.skeleton,
    tensors: s.tensors.map((t) => {
      const found = tensors.get(`${stage}.${t.path}`);
      if (!found) throw workbenchError('E_INPUT', source, `tensor ${stage}.${t.path} is missing`);
      return { path: t.path, shape: found.shape, dtype: t.dtype, data: t.dtype === 'int32' ? Int32Array.from(found.data) : Float32Array.from(found.data) };
    }),
  }));
  return { position: Number(meta.position), parts };
}

/** The files that make a model what it is: config, weights and tokenizer files. */
const modelFilePattern = /^(config\.json|.*\.safetensors(\.index\.json)?|tokenizer.*|special_tokens_map\.json|vocab\.json|merges\.txt)$/;

/** sha256 of each of a model folder's defining files (name → hex). */
export async function hashModelFiles(dir: string): Promise<Record<string, string>> {
  const names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && modelFilePattern.test(e.name)).map((e) => e.name).sort();
  const out: Record<string, string> = {};
  for (const name of names) {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(join(dir, name))) hash.update(chunk as Buffer);
    out[name] = hash.digest('hex');
  }
  return out;
}

/** The settings a resume may be asked to use; each must equal the run's. */
export type ResumeSettings = Partial<RunManifest['settings']>;

const divergedPattern = /the loss is not a number from token/;

/**
 * Reads a run folder and decides where each model goes on from; refuses in one line a finished run, a changed
 * book or model, or settings other than the run's.
 */
export async function planResume(runDir: string, asked: ResumeSettings = {}): Promise<ResumePlan> {
  let manifest: RunManifest;
  try {
    manifest = await readManifest(runDir);
  } catch (error) {
    if (error instanceof WorkbenchError && error.code === 'E_FILE_NOT_FOUND') throw workbenchError('E_RUN', runDir, 'is not a run folder (no manifest.json)');
    throw error;
  }
  const refuse = (reason: string) => workbenchError('E_RUN', runDir, reason);
  if (manifest.status === 'finished') throw refuse('is finished; there is nothing to resume');
  for (const [name, value] of Object.entries(asked) as [keyof RunManifest['settings'], unknown][]) {
    if (value !== undefined && value !== manifest.settings[name]) throw refuse(`was made with ${name} ${String(manifest.settings[name])}, not ${String(value)}; settings cannot change on resume`);
  }
  const book = await readBook(manifest.book.path).catch((error: unknown) => {
    throw refuse(`its book cannot be read (${error instanceof WorkbenchError ? error.message : String(error)})`);
  });
  if (book.sha256 !== manifest.book.sha256) throw refuse(`its book ${manifest.book.path} changed since the run started (sha256 differs); start a new run`);
  const models: (ModelResume | null)[] = [];
  for (const model of manifest.models) {
    if (model.status === 'finished' || (model.status === 'failed' && divergedPattern.test(model.error ?? ''))) {
      models.push(null);
      continue;
    }
    if (model.hashes) {
      const now = await hashModelFiles(model.dir).catch(() => ({} as Record<string, string>));
      const changed = [...new Set([...Object.keys(model.hashes), ...Object.keys(now)])].filter((f) => model.hashes![f] !== now[f]);
      if (changed.length > 0) throw refuse(`the files of model ${model.dir} changed since the run started (${changed.join(', ')}); start a new run`);
    }
    models.push(await modelResume(runDir, model));
  }
  return { manifest, models };
}

/** A model's checkpoint, if it has a readable one: its position and state. */
async function readCheckpoint(runDir: string, model: RunModel): Promise<{ position: number; parts: StatePart[] } | null> {
  const path = join(runDir, model.checkpoint?.file ?? stateFileOf(model.key));
  try {
    const checkpoint = decodeCheckpoint(new Uint8Array(await readFile(path)), path);
    return Number.isInteger(checkpoint.position) && checkpoint.position > 0 && checkpoint.position <= model.tokensTotal ? checkpoint : null;
  } catch {
    return null; // none yet (or unreadable): the model starts over
  }
}

/** Series whose rows stand for a finished mini-batch, by its last token: kept when that token is before the checkpoint. */
const perMiniBatch = new Set(['innerLoop', 'hiddenState']);

async function modelResume(runDir: string, model: RunModel): Promise<ModelResume> {
  const start: ModelResume = { position: 0, state: null, keep: {}, snapshots: [], nllSum: 0, predictedTokens: 0, predictedBytes: 0, wallSeconds: 0 };
  const checkpoint = await readCheckpoint(runDir, model);
  if (!checkpoint) return start;
  const e = checkpoint.position;
  const keep: Record<string, Columns> = {};
  for (const [series, file] of Object.entries(model.files)) {
    if (!file.endsWith('.arrow')) continue;
    let table: Table;
    try {
      table = await readArrowTable(join(runDir, file));
    } catch {
      return start; // rows the checkpoint needs are not there
    }
    keep[series] = keepRows(columnsOf(table), (p) => (perMiniBatch.has(series) ? p < e : p <= e));
  }
  // every predicted position 1..e exactly once, or the checkpoint cannot be used
  const tokens = keep.nll;
  if (!tokens || tokens.position.length !== e || tokens.position.some((p, i) => p !== i + 1)) return start;
  let nllSum = 0, predictedBytes = 0;
  for (let i = 0; i < e; i++) {
    nllSum += tokens.nll[i];
    predictedBytes += tokens.bytes[i];
  }
  const elapsed = keep.throughput?.elapsed_s;
  return {
    position: e, state: checkpoint.parts, keep, snapshots: await keptSnapshots(runDir, model, e),
    nllSum, predictedTokens: e, predictedBytes, wallSeconds: elapsed && elapsed.length > 0 ? elapsed[elapsed.length - 1] : 0,
  };
}

/** Snapshots of W taken at mini-batches that finished by position `e`. */
async function keptSnapshots(runDir: string, model: RunModel, e: number): Promise<FloatTensor[]> {
  if (!model.files.snapshots) return [];
  const K = model.miniBatchSize ?? 1;
  try {
    const { tensors } = readSafetensors(new Uint8Array(await readFile(join(runDir, model.files.snapshots))), model.files.snapshots);
    return [...tensors.values()].filter((t) => {
      const mb = /\.mb(\d+)$/.exec(t.name);
      return mb !== null && (Number(mb[1]) + 1) * K <= e;
    });
  } catch {
    return [];
  }
}

const columnsOf = (table: Table): Columns =>
  Object.fromEntries(table.schema.fields.map((f) => [f.name, table.getChild(f.name)!.toArray() as Column]));

/** The rows whose `position` passes `keep`, in their order. */
function keepRows(columns: Columns, keep: (position: number) => boolean): Columns {
  const position = columns.position;
  if (!position) return columns;
  const rows: number[] = [];
  position.forEach((p, i) => keep(p) && rows.push(i));
  return Object.fromEntries(Object.entries(columns).map(([name, c]) => {
    const out = new (c.constructor as Float32ArrayConstructor)(rows.length);
    rows.forEach((r, i) => (out[i] = c[r]));
    return [name, out as Column];
  }));
}
