/**
 * One document through one model, the unit of corpus work both on this machine (corpus/eval.ts) and on a cluster
 * worker (corpus/cluster.ts): tokenize, stream in chunks with the state carried as `analyze` does, and sum the
 * per-token NLL into position bins (corpus/bins.ts). The result is small (a few hundred numbers) and plain JSON:
 * float64 values survive JSON exactly, so a result that crossed Redis equals one computed here.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { workbenchError } from '../core/errors.js';
import { assertTokenizerFitsModel, createTokenizer, encodeDocument, type Tokenizer } from '../core/tokenizers/index.js';
import { describeModelDir, tokenizerSpecFor } from '../io/model-dir.js';
import type { ModelDescription } from '../models/registry.js';
import { ArrowAppender } from '../analysis/arrow-writer.js';
import type { PipelineModel, StagePipeline } from '../runtime/pipeline.js';
import { addToBins, type BinnedSums, emptySums } from './bins.js';

/** What every document of a model is run with; part of each result, so a resumed run recomputes on a change. */
export interface DocumentSettings {
  /** Tokens per chunk. */
  readonly chunkTokens: number;
  /** Only the first N tokens of each document; null: whole documents. */
  readonly maxTokens: number | null;
  /** Sliding attention window of a Transformer; null: full attention (and always null for recurrent models). */
  readonly window: number | null;
}

export interface DocumentResult {
  readonly document: number;
  readonly name: string;
  /** Of the document's text (UTF-8). */
  readonly sha256: string;
  readonly modelHash: string;
  readonly settings: DocumentSettings;
  /** Tokens read (at most `maxTokens`); `tokens - 1` of them are predicted. */
  readonly tokens: number;
  /** UTF-8 bytes of the predicted tokens: what bits per byte divides by. */
  readonly bytes: number;
  /** Σ nll (nats) over the predicted tokens, in position order. */
  readonly nllSum: number;
  readonly bins: BinnedSums;
  readonly seconds: number;
  /** Who computed it: `local` or a cluster worker's `host:pid`. */
  readonly worker: string;
}

export interface ModelPlan {
  readonly dir: string;
  readonly description: ModelDescription;
  readonly tokenizer: Tokenizer;
  /** sha256 over config.json, tokenizer files and weight files (names, sizes and bytes). */
  readonly hash: string;
  /** The attention window it runs with (Transformers: its trained context unless told otherwise). */
  readonly window: number | null;
}

/** `window`: a number, `full` (no window) or undefined (a Transformer's trained context). */
export async function planModel(dir: string, window?: number | 'full'): Promise<ModelPlan> {
  const description = await describeModelDir(dir);
  const spec = await tokenizerSpecFor(dir, description.tokenizer);
  const tokenizer = await createTokenizer(spec);
  assertTokenizerFitsModel(tokenizer, description.vocabSize, join(dir, 'config.json'));
  const attention = description.family === 'llama';
  const chosen = !attention || window === 'full' ? null : window ?? description.trainedContext;
  return { dir, description, tokenizer, hash: await modelHash(dir), window: chosen };
}

/** Files that make a model what it is: its config, tokenizer and weights. */
const modelFile = (name: string) => name === 'config.json' || name.startsWith('tokenizer') || name.endsWith('.safetensors') || name.endsWith('.bin');

export async function modelHash(dir: string): Promise<string> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter(modelFile).sort();
  } catch {
    throw workbenchError('E_FILE_NOT_FOUND', dir);
  }
  const hash = createHash('sha256');
  for (const name of names) {
    hash.update(`${name}\n`);
    for await (const chunk of createReadStream(join(dir, name))) hash.update(chunk as Buffer);
    hash.update('\n');
  }
  return hash.digest('hex');
}

export interface DocumentJob {
  readonly pipeline: StagePipeline;
  readonly model: PipelineModel;
  readonly plan: ModelPlan;
  readonly document: { readonly index: number; readonly name: string; readonly text: string; readonly sha256: string };
  readonly settings: DocumentSettings;
  readonly worker: string;
  /** Per-token results (position, token, nll, bytes, as `analyze`'s tokens.arrow) to this file. */
  readonly tokensFile?: string;
  readonly signal?: AbortSignal;
  /** After each chunk: tokens of the document read so far, and in all (live progress). */
  readonly onTokens?: (done: number, total: number) => void;
}

/** Thrown out of `evaluateDocument` when its signal aborts between chunks. */
export class DocumentCancelled extends Error {
  override readonly name = 'DocumentCancelled';
}

export async function evaluateDocument(job: DocumentJob): Promise<DocumentResult> {
  const { pipeline, model, settings } = job;
  const started = performance.now();
  const all = encodeDocument(job.plan.tokenizer, job.document.text);
  const ids = settings.maxTokens === null ? all : all.subarray(0, settings.maxTokens);
  const bytes = job.plan.tokenizer.tokenBytes(ids);
  const total = ids.length;
  const sums = emptySums();
  let nllSum = 0, predictedBytes = 0;
  let writer: ArrowAppender | null = null;
  if (job.tokensFile) {
    await mkdir(dirname(job.tokensFile), { recursive: true });
    writer = new ArrowAppender(`${job.tokensFile}.partial`, { batchRows: 65_536 });
  }
  try {
    await pipeline.begin({ innerLoop: false, stateSummary: false, emit: 'nll', snapshotMiniBatches: [] });
    job.onTokens?.(0, total);
    // as analyze: enough chunks in flight that every stage has the next one waiting
    const depth = model.ranges.length + 1;
    const inFlight: { start: number; predicted: number; answer: ReturnType<StagePipeline['submit']> }[] = [];
    let sent = total >= 2 ? 0 : total; // a one-token document predicts nothing
    while (sent < total || inFlight.length > 0) {
      if (job.signal?.aborted) throw new DocumentCancelled(job.document.name);
      while (inFlight.length < depth && sent < total) {
        const start = sent, end = Math.min(start + settings.chunkTokens, total);
        const predicted = Math.min(end, total - 1) - start;
        inFlight.push({ start, predicted, answer: pipeline.submit(ids.subarray(start, end), ids.subarray(start + 1, start + 1 + predicted)) });
        sent = end;
      }
      const chunk = inFlight.shift()!;
      const nll = (await chunk.answer).nll!.subarray(0, chunk.predicted);
      const s = chunk.start;
      for (let i = 0; i < nll.length; i++) {
        nllSum += nll[i];
        predictedBytes += bytes[s + 1 + i];
      }
      addToBins(sums, s + 1, nll);
      job.onTokens?.(s + 1 + nll.length, total);
      writer?.append({
        position: Int32Array.from({ length: nll.length }, (_, i) => s + 1 + i),
        token: ids.slice(s + 1, s + 1 + nll.length),
        nll: nll.slice(),
        bytes: Int32Array.from(bytes.subarray(s + 1, s + 1 + nll.length)),
      });
    }
  } finally {
    await writer?.close();
  }
  if (writer && job.tokensFile) await rename(`${job.tokensFile}.partial`, job.tokensFile);
  return {
    document: job.document.index,
    name: job.document.name,
    sha256: job.document.sha256,
    modelHash: job.plan.hash,
    settings,
    tokens: total,
    bytes: predictedBytes,
    nllSum,
    bins: sums,
    seconds: (performance.now() - started) / 1000,
    worker: job.worker,
  };
}
