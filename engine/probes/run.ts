/**
 * A probe run: the book and models read once, each model loaded in-process and run through the probe's plan,
 * one Arrow table per model (columns in docs/probes.md) and a manifest rewritten atomically as models finish.
 * A cancelled probe stops between chunks and keeps what finished, marked `cancelled`.
 */
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import type { BackendInfo } from '../core/backend.js';
import { WorkbenchError, workbenchError } from '../core/errors.js';
import { assertTokenizerFitsModel, createTokenizer, encodeDocument, type Tokenizer } from '../core/tokenizers/index.js';
import { readBook } from '../io/book.js';
import { loadModel } from '../io/load-model.js';
import { describeModelDir, tokenizerSpecFor } from '../io/model-dir.js';
import { attentionFor } from '../analysis/estimate.js';
import { type Column, writeFileAtomicSync } from '../analysis/arrow-writer.js';
import { newRunId } from '../analysis/run-store.js';
import type { CausalLM } from '../models/model.js';
import type { CopyParams, InterveneParams, InterventionKind, NeedleParams, ProbeManifest, ProbeModel, ProbeParams, ProbeProgress } from '../protocol.js';
import { copyPlan, copyWork, logSpacedDistances, runCopyDistance } from './copy.js';
import { interveneWork, meanDelta, runInterventions } from './intervene.js';
import {
  defaultDepths, defaultLengths, encodeNeedles, fixedTokensOf, needleCells, needleKeys, needleText, needleWork, questionText, runNeedleGrid,
  vocabularyOf,
} from './needle.js';
import { ProbeCancelled } from './stream.js';

export interface ProbeOptions {
  readonly params: ProbeParams;
  /** The run goes to `runDir`, else `<runsDir>/<runId>`. */
  readonly runDir?: string;
  readonly runsDir?: string;
  readonly runId?: string;
  readonly backend: BackendInfo;
  readonly versions?: Record<string, string>;
  readonly signal?: AbortSignal;
  /** At most every `progressIntervalMs` (200), and at each model's start and end. */
  readonly onProgress?: (event: ProbeProgress) => void;
  readonly progressIntervalMs?: number;
}

export interface ProbeResult {
  readonly runDir: string;
  readonly manifest: ProbeManifest;
}

export const manifestFile = 'manifest.json';
const defaultChunkTokens = 512;
const defaultSeed = 1;

const slug = (name: string) => name.replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 40) || 'model';

function writeProbeManifest(runDir: string, manifest: ProbeManifest): void {
  writeFileAtomicSync(join(runDir, manifestFile), new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));
}

function writeTable(path: string, columns: Record<string, Column>): void {
  writeFileAtomicSync(path, tableToIPC(tableFromArrays(columns), 'file'));
}

/** The params with every default filled in, as the manifest records them. */
export function resolveParams(params: ProbeParams, bookTokens: number): ProbeParams {
  const common = { chunkTokens: params.chunkTokens ?? defaultChunkTokens, seed: params.seed ?? defaultSeed };
  if (params.kind === 'needle') {
    const maxLength = params.maxLength ?? Math.max(...(params.lengths ?? [16384]));
    return { ...params, ...common, maxLength, lengths: params.lengths ?? defaultLengths(maxLength), depths: params.depths ?? defaultDepths, keys: params.keys ?? 3, keyKind: params.keyKind ?? 'digits' };
  }
  if (params.kind === 'copy') {
    const spanTokens = params.spanTokens ?? 32;
    const tokens = Math.min(bookTokens, params.maxTokens ?? Infinity);
    const maxDistance = params.maxDistance ?? Math.max(16, tokens - 2 * spanTokens - 1);
    return { ...params, ...common, spanTokens, maxDistance, distances: params.distances ?? logSpacedDistances(maxDistance), spans: params.spans ?? 4 };
  }
  const interventions: InterventionKind[] = params.interventions ?? (params.donor ? ['frozen', 'reset', 'transplant'] : ['frozen', 'reset']);
  return { ...params, ...common, maxTokens: params.maxTokens ?? Math.min(bookTokens, 32768), interventions };
}

interface ModelPlan {
  readonly dir: string;
  readonly tokenizer: Tokenizer;
  readonly window: number | null;
  readonly entry: ProbeModel;
}

/** What one model's probe computes: its Arrow columns and headline figures. */
interface ProbeOutput {
  readonly table: string;
  readonly columns: Record<string, Column>;
  readonly figures: ProbeModel['figures'];
  readonly skipped?: Record<string, string>;
}

/** Runs one model through the probe; `count` reports model tokens read. */
async function probeModel(
  model: CausalLM, ids: Int32Array, tokenizer: Tokenizer, params: ProbeParams, feed: { chunkTokens: number; signal?: AbortSignal; onTokens: (n: number) => void },
  setTotal: (n: number) => void, setStage: (s: string) => void, text: string,
): Promise<ProbeOutput> {
  if (params.kind === 'needle') return needleOutput(model, ids, tokenizer, params, feed, setTotal, setStage, text);
  if (params.kind === 'copy') return copyOutput(model, ids, params, feed, setTotal);
  return interveneOutput(model, ids, tokenizer, params, feed, setTotal);
}

async function needleOutput(
  model: CausalLM, ids: Int32Array, tokenizer: Tokenizer, params: NeedleParams, feed: { chunkTokens: number; signal?: AbortSignal; onTokens: (n: number) => void },
  setTotal: (n: number) => void, setStage: (s: string) => void, text: string,
): Promise<ProbeOutput> {
  const keys = needleKeys(params.keyKind!, params.keys!, params.seed!, vocabularyOf(text));
  const tokens = encodeNeedles(tokenizer, keys);
  const maxLength = Math.max(...params.lengths!);
  if (maxLength > ids.length + fixedTokensOf(tokens)) throw workbenchError('E_OPTION', 'length', String(maxLength), `longer than the book (${ids.length} tokens)`);
  const lineStart = (p: number) => p === 0 || tokenizer.tokenText(ids[p - 1]).endsWith('\n');
  const cells = needleCells(params.lengths!, params.depths!, fixedTokensOf(tokens), lineStart);
  setTotal(needleWork(cells, tokens));
  const rows = await runNeedleGrid(model, ids, cells, tokens, { ...feed, onCell: (c, k) => setStage(`L ${c.length}, depth ${c.depth}, key ${k + 1}/${keys.length}`) });
  const col = <T extends Column>(make: (n: number) => T, f: (r: (typeof rows)[number]) => number): T => {
    const out = make(rows.length);
    rows.forEach((r, i) => (out[i] = f(r)));
    return out;
  };
  const i32 = (n: number) => new Int32Array(n), f64 = (n: number) => new Float64Array(n);
  const columns = {
    length: col(i32, (r) => r.cell.length), depth: col(f64, (r) => r.cell.depth), key: col(i32, (r) => r.keyIndex),
    needle_position: col(i32, (r) => r.cell.insertAt), haystack: col(i32, (r) => r.cell.haystack), key_tokens: col(i32, (r) => r.keyTokens),
    bits: col(f64, (r) => r.bits), matched: col(i32, (r) => r.matched), correct: col(i32, (r) => (r.matched === r.keyTokens ? 1 : 0)),
  };
  const byLength: Record<string, number> = {};
  for (const L of params.lengths!) {
    const mine = rows.filter((r) => r.cell.length === L);
    byLength[String(L)] = mine.filter((r) => r.matched === r.keyTokens).length / Math.max(1, mine.length);
  }
  return {
    table: 'needle', columns,
    figures: {
      accuracy: rows.filter((r) => r.matched === r.keyTokens).length / Math.max(1, rows.length), accuracyByLength: byLength,
      keyBits: rows.reduce((s, r) => s + r.bits, 0) / Math.max(1, rows.length),
    },
  };
}

async function copyOutput(
  model: CausalLM, ids: Int32Array, params: CopyParams, feed: { chunkTokens: number; signal?: AbortSignal; onTokens: (n: number) => void }, setTotal: (n: number) => void,
): Promise<ProbeOutput> {
  const book = ids.subarray(0, params.maxTokens ?? ids.length);
  const plan = copyPlan(book.length, params.spanTokens!, params.distances!, params.spans!, params.seed!);
  setTotal(copyWork(plan, params.spanTokens!));
  const rows = await runCopyDistance(model, book, plan, params.spanTokens!, feed);
  const columns = {
    distance: Int32Array.from(rows, (r) => r.distance), span: Int32Array.from(rows, (r) => r.span), start: Int32Array.from(rows, (r) => r.start),
    nll_first: Float64Array.from(rows, (r) => r.nllFirst), nll_second: Float64Array.from(rows, (r) => r.nllSecond),
  };
  const second: Record<string, number> = {};
  for (const D of params.distances!) {
    const mine = rows.filter((r) => r.distance === D);
    second[String(D)] = mine.reduce((s, r) => s + r.nllSecond, 0) / Math.max(1, mine.length);
  }
  const firsts = plan.starts.map((_, span) => rows.find((r) => r.span === span)!.nllFirst);
  return { table: 'copy', columns, figures: { nllFirst: firsts.reduce((a, b) => a + b, 0) / firsts.length, nllSecondByDistance: second } };
}

async function interveneOutput(
  model: CausalLM, ids: Int32Array, tokenizer: Tokenizer, params: InterveneParams, feed: { chunkTokens: number; signal?: AbortSignal; onTokens: (n: number) => void },
  setTotal: (n: number) => void,
): Promise<ProbeOutput> {
  const book = ids.subarray(0, params.maxTokens!);
  if (params.at > book.length) throw workbenchError('E_OPTION', 'at', String(params.at), `past the ${book.length} tokens probed`);
  let donor: Int32Array | undefined;
  if (params.donor) {
    donor = encodeDocument(tokenizer, (await readBook(params.donor)).text);
    if (params.donorTokens) donor = donor.subarray(0, params.donorTokens);
  }
  const input = { book, at: params.at, interventions: params.interventions!, donor };
  setTotal(interveneWork(input, model));
  const result = await runInterventions(model, input, feed);
  const columns: Record<string, Column> = { position: Int32Array.from({ length: book.length }, (_, i) => i), token: Int32Array.from(book), nll: result.nll };
  const meanDeltaNll: Record<string, number> = {};
  for (const [kind, nll] of Object.entries(result.intervened)) {
    columns[`nll_${kind}`] = nll;
    columns[`dnll_${kind}`] = Float32Array.from(nll, (v, i) => v - result.nll[i]);
    meanDeltaNll[kind] = meanDelta(result.nll, nll, params.at + 1);
  }
  return { table: 'intervene', columns, figures: { meanDeltaNll }, skipped: result.skipped as Record<string, string> };
}

export async function runProbe(options: ProbeOptions): Promise<ProbeResult> {
  const raw = options.params;
  const book = await readBook(raw.book);
  const plans: ModelPlan[] = [];
  const encoded = new Map<string, Int32Array>();
  for (const [i, dir] of raw.models.entries()) {
    const description = await describeModelDir(dir);
    const spec = await tokenizerSpecFor(dir, description.tokenizer);
    const tokenizer = await createTokenizer(spec);
    assertTokenizerFitsModel(tokenizer, description.vocabSize, join(dir, 'config.json'));
    if (!encoded.has(tokenizer.name)) encoded.set(tokenizer.name, encodeDocument(tokenizer, book.text));
    const attention = attentionFor(description, raw.window);
    plans.push({
      dir, tokenizer, window: attention.window,
      entry: {
        key: `${i}-${slug(basename(dir))}`, dir, name: basename(dir), family: description.family, architecture: description.architecture,
        tokenizer: tokenizer.name, status: 'queued', tokensDone: 0, tokensTotal: 0, wallSeconds: 0, attention: attention.note, files: {}, figures: {}, error: null,
      },
    });
  }
  const params = resolveParams(raw, encoded.get(plans[0].tokenizer.name)!.length);
  const runId = options.runId ?? newRunId();
  const runDir = options.runDir ?? join(options.runsDir ?? 'runs', runId);
  await mkdir(runDir, { recursive: true });
  let manifest: ProbeManifest = {
    format: 'ttt-workbench-probe/1', id: runId, kind: params.kind, status: 'running', createdAt: new Date().toISOString(), finishedAt: null,
    book: { path: book.path, name: basename(book.path), sha256: book.sha256, bytes: book.utf8Bytes },
    settings: params,
    ...(params.kind === 'needle' ? { needle: { needle: needleText, question: questionText, keys: needleKeys(params.keyKind!, params.keys!, params.seed!, vocabularyOf(book.text)) } } : {}),
    backend: options.backend, versions: options.versions ?? {}, models: plans.map((p) => p.entry), error: null,
  };
  writeProbeManifest(runDir, manifest);
  const setModel = (i: number, patch: Partial<ProbeModel>) => {
    manifest = { ...manifest, models: manifest.models.map((m, j) => (j === i ? { ...m, ...patch } : m)) };
  };
  const interval = options.progressIntervalMs ?? 200;
  let cancelled = false;
  for (const [i, plan] of plans.entries()) {
    if (options.signal?.aborted) cancelled = true;
    if (cancelled) {
      setModel(i, { status: 'cancelled' });
      continue;
    }
    const started = performance.now();
    let done = 0, total = 0, stage = '', lastProgress = -Infinity;
    const progress = (force = false) => {
      if (!options.onProgress || (!force && performance.now() - lastProgress < interval)) return;
      lastProgress = performance.now();
      options.onProgress({ runId, kind: params.kind, model: plan.entry.name, status: manifest.models[i].status, tokensDone: done, tokensTotal: total, stage });
    };
    setModel(i, { status: 'running' });
    writeProbeManifest(runDir, manifest);
    let model: CausalLM | null = null;
    try {
      model = (await loadModel(plan.dir, plan.window === null ? {} : { window: plan.window })).model;
      const output = await probeModel(
        model, encoded.get(plan.tokenizer.name)!, plan.tokenizer, params,
        { chunkTokens: params.chunkTokens!, signal: options.signal, onTokens: (n) => ((done += n), progress()) },
        (n) => ((total = n), progress(true)), (s) => (stage = s), book.text,
      );
      const file = join('models', plan.entry.key, `${output.table}.arrow`);
      await mkdir(join(runDir, 'models', plan.entry.key), { recursive: true });
      writeTable(join(runDir, file), output.columns);
      setModel(i, { status: 'finished', files: { [output.table]: file }, figures: output.figures, ...(output.skipped ? { skipped: output.skipped } : {}) });
    } catch (error) {
      if (error instanceof ProbeCancelled) {
        cancelled = true;
        setModel(i, { status: 'cancelled' });
      } else {
        const message = error instanceof WorkbenchError ? error.message : `internal error: ${(error as Error).message}`;
        setModel(i, { status: 'failed', error: message.split('\n')[0] });
      }
    } finally {
      model?.dispose();
      setModel(i, { tokensDone: done, tokensTotal: total, wallSeconds: (performance.now() - started) / 1000 });
      progress(true);
      writeProbeManifest(runDir, manifest);
    }
  }
  const failed = manifest.models.filter((m) => m.status === 'failed');
  manifest = {
    ...manifest, status: cancelled ? 'cancelled' : failed.length > 0 ? 'failed' : 'finished', finishedAt: new Date().toISOString(),
    error: failed.length > 0 ? failed.map((m) => `${m.name}: ${m.error}`).join('; ') : null,
  };
  writeProbeManifest(runDir, manifest);
  return { runDir, manifest };
}
