/**
 * One stage of a model pipeline, in its own worker thread with its own TensorFlow.js (DESIGN.md "Execution"):
 * it holds a contiguous range of the model's layers and their carried state, takes chunks (token ids from the main
 * thread if it is the first stage, [T, C] hidden states from the previous stage otherwise), and passes its output
 * on: hidden states to the next stage, or per-token results (NLL or logits) and every stage's per-layer series to
 * the main thread if it is the last. Messages are handled strictly in arrival order; a failure the worker survives
 * is reported as one line, and anything else ends the thread, which the main thread sees.
 */
import { type MessagePort, parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../core/backend.js';
import { WorkbenchError } from '../core/errors.js';
import { loadModel } from '../io/load-model.js';
import { installWasmTrainingKernels } from '../train/wasm-kernels.js';
import { nllOfTargets } from '../analysis/metrics.js';
import { type CausalLM, type ForwardResult, type ModelState, releaseState } from '../models/model.js';
import { deserializeState, serializeState } from '../models/state-io.js';
import { applyKernelSwitch } from './kernel-switch.js';
import type { ChunkMessage, DocumentSettings, FromStage, SaveStateMessage, StageSeries, ToStage } from './stage-messages.js';

if (!parentPort) throw new Error('stage-worker.ts runs as a worker thread (runtime/pipeline.ts starts it)');
applyKernelSwitch();
const main = parentPort;

interface Stage {
  readonly model: CausalLM;
  state: ModelState;
  settings: DocumentSettings;
  snapshotSet: ReadonlySet<number>;
}

let stage: Stage | null = null;
let next: MessagePort | null = null;

const post = (message: FromStage, transfer: ArrayBuffer[] = []) => main.postMessage(message, transfer);

/** The buffer of a typed array read back from a tensor, safe to transfer: on `cpu` it may be the tensor's own storage. */
function owned<A extends Float32Array>(data: A): A {
  return tf.getBackend() === 'cpu' ? (data.slice() as A) : data;
}

/** Per-layer series of a forward result, read back as plain arrays. */
async function seriesOf(model: CausalLM, r: Omit<ForwardResult<ModelState>, 'logits'>, summary: tf.Tensor1D | null, computeMs: number): Promise<StageSeries> {
  const read = async (t: tf.Tensor) => owned((await t.data()) as Float32Array);
  const layerStart = model.layerRange.start;
  const snapshots: { layer: number; miniBatch: number; name: string; shape: number[]; data: Float32Array }[] = [];
  for (const [layer, layerSnapshots] of (r.weightTrace?.snapshots ?? []).entries()) {
    for (const { miniBatch, weights } of layerSnapshots) {
      for (const [name, values] of Object.entries(weights)) snapshots.push({ layer: layerStart + layer, miniBatch, name, shape: values.shape, data: await read(values) });
    }
  }
  return {
    layerStart,
    innerLoop: r.innerLoop ? await Promise.all(r.innerLoop.perLayer.map(read)) : undefined,
    weightMetrics: r.weightTrace ? await Promise.all(r.weightTrace.metrics.map(read)) : undefined,
    weightMetricNames: r.weightTrace?.names,
    snapshots,
    stateSummary: summary ? await read(summary) : undefined,
    computeMs,
  };
}

/** The distinct buffers behind some arrays (a transfer list naming one twice is an error). */
const buffersOf = (arrays: readonly (Float32Array | null)[]): ArrayBuffer[] => [...new Set(arrays.flatMap((a) => (a ? [a.buffer as ArrayBuffer] : [])))];

const seriesArrays = (series: readonly StageSeries[]): Float32Array[] => series.flatMap((s) => [
  ...(s.innerLoop ?? []), ...(s.weightMetrics ?? []), ...s.snapshots.map((x) => x.data), ...(s.stateSummary ? [s.stateSummary] : []),
]);

async function runChunk(chunk: ChunkMessage): Promise<void> {
  if (!stage) throw new Error('a chunk arrived before a model was loaded');
  const { model, settings } = stage;
  const started = performance.now();
  const last = model.layerRange.end === model.numLayers;
  const out = tf.tidy(() => {
    const input = chunk.ids ?? tf.tensor2d(chunk.hidden!, [chunk.T, model.hiddenSize]); // [T, C]
    const r = model.forwardStage(input, stage!.state, {
      innerLoopStats: settings.innerLoop, weightTrace: settings.innerLoop, snapshotMiniBatches: stage!.snapshotSet,
    });
    return {
      ...r,
      nll: last && settings.emit === 'nll' ? nllOfTargets(r.output, chunk.targets) : null,
      summary: settings.stateSummary && model.stateSummary ? model.stateSummary(r.state).perLayer : null,
    } as unknown as tf.TensorContainer;
  }) as unknown as Omit<ForwardResult<ModelState>, 'logits'> & { output: tf.Tensor2D; nll: tf.Tensor1D | null; summary: tf.Tensor1D | null };
  releaseState(stage.state, out.state);
  stage.state = out.state;
  try {
    const output = last && settings.emit === 'nll' ? null : owned((await out.output.data()) as Float32Array);
    const nll = out.nll ? owned((await out.nll.data()) as Float32Array) : null;
    const series = [...chunk.series, await seriesOf(model, out, out.summary, performance.now() - started)];
    if (!last) {
      const message: ChunkMessage = { type: 'chunk', seq: chunk.seq, T: chunk.T, ids: null, hidden: output, targets: chunk.targets, series };
      next!.postMessage(message, buffersOf([output, ...seriesArrays(series)]));
    } else {
      post({ type: 'result', seq: chunk.seq, nll, logits: output, series }, buffersOf([nll, output, ...seriesArrays(series)]));
    }
  } finally {
    // everything the stage produced except its carried state, which the next chunk consumes
    const { state, ...rest } = out;
    void state;
    tf.dispose(rest as unknown as tf.TensorContainer);
  }
}

/** Adds this stage's carried state to a `saveState` request and passes it on (or answers the main thread). */
async function saveState(message: SaveStateMessage): Promise<void> {
  if (!stage) throw new Error('saveState before load');
  const part = { layerStart: stage.model.layerRange.start, ...(await serializeState(stage.state)) };
  const parts = [...message.parts, part];
  const buffers = [...new Set(parts.flatMap((p) => p.tensors.map((t) => t.data.buffer as ArrayBuffer)))];
  if (stage.model.layerRange.end !== stage.model.numLayers) next!.postMessage({ ...message, parts } satisfies SaveStateMessage, buffers);
  else post({ type: 'state', seq: message.seq, parts }, buffers);
}

async function handle(message: ToStage): Promise<void> {
  switch (message.type) {
    case 'init': {
      // matrix products through a native BLAS where one loads (TTT_NATIVE_MATMUL=0 keeps XNNPACK, for comparisons)
      const backend = await selectBackend(message.backend, { nativeMatMul: process.env.TTT_NATIVE_MATMUL !== '0' });
      // slices of contiguous rows copied heap to heap (bit-identical): the general TTT path slices its chunk per
      // mini-batch, and wasm's own Slice copies the whole input each time
      installWasmTrainingKernels();
      post({ type: 'ready', backend });
      return;
    }
    case 'link': {
      next = message.next;
      // the previous stage's chunks join the same ordered queue as the main thread's messages
      message.previous?.on('message', (m: ToStage) => enqueue(m));
      post({ type: 'done' });
      return;
    }
    case 'load': {
      unload();
      const { model } = await loadModel(message.dir, { window: message.window, layers: message.range });
      stage = { model, state: model.initialState(), settings: { innerLoop: false, snapshotMiniBatches: [], stateSummary: false, emit: 'nll' }, snapshotSet: new Set() };
      post({ type: 'loaded', parameterCount: model.parameterCount, family: model.family, vocabSize: model.vocabSize, stateSummary: model.stateSummary !== undefined });
      return;
    }
    case 'begin': {
      if (!stage) throw new Error('begin before load');
      tf.dispose(stage.state as unknown as tf.TensorContainer);
      stage.state = stage.model.initialState();
      stage.settings = message.settings;
      stage.snapshotSet = new Set(message.settings.snapshotMiniBatches);
      post({ type: 'done' });
      return;
    }
    case 'chunk':
      return runChunk(message);
    case 'saveState':
      return saveState(message);
    case 'loadState': {
      if (!stage) throw new Error('loadState before load');
      if (message.part.layerStart !== stage.model.layerRange.start) throw new Error(`the state is of a stage starting at layer ${message.part.layerStart}, this one starts at ${stage.model.layerRange.start}`);
      const state = deserializeState(message.part, 'checkpoint');
      tf.dispose(stage.state as unknown as tf.TensorContainer);
      stage.state = state;
      post({ type: 'done' });
      return;
    }
    case 'unload':
      unload();
      post({ type: 'done' });
      return;
    case 'fault':
      if (message.kind === 'exit') process.exit(3);
      setImmediate(() => {
        throw new Error('injected fault: an uncaught exception in a stage worker');
      });
      return;
  }
}

function unload(): void {
  if (!stage) return;
  tf.dispose(stage.state as unknown as tf.TensorContainer);
  stage.model.dispose();
  stage = null;
}

let queue: Promise<void> = Promise.resolve();

/** Resolves on the next turn of the event loop. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Messages run one at a time, in arrival order; a failure is reported once as one line and the worker stays up.
 * Each waits for a turn of the event loop first: Node delivers a port's queued messages in one go, running the
 * promise jobs each one starts, so a stage behind its predecessor would otherwise never read the main thread's port.
 */
function enqueue(message: ToStage): void {
  queue = queue.then(nextTurn).then(() => handle(message)).catch((error: unknown) => {
    const e = error as Error;
    post({ type: 'error', code: error instanceof WorkbenchError ? error.code : null, message: (e?.message ?? String(error)).split('\n')[0] });
  });
}

main.on('message', (m: ToStage) => enqueue(m));
