/** `ttt-workbench logits`: full logits for a list of token ids, for parity checks against reference outputs. */
import { writeFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../core/backend.js';
import { workbenchError } from '../core/errors.js';
import { readJsonFile } from '../io/checkpoint.js';
import { loadModel } from '../io/load-model.js';
import { assertTokenIds, type CausalLM, type ModelState, runChunk } from '../models/model.js';
import { type Command, intOption, parseCommandArgs, requireOption } from './args.js';

const help = `Usage: ttt-workbench logits --model DIR --input FILE.json --out OUT.json [options]

Computes the logits of every position of input_ids and writes them as JSON:
  {"shape": [L, V], "logits": [...row-major...], "backend": "wasm", ...}

Options:
  --model DIR         model folder (config.json + model.safetensors or shards)
  --input FILE.json   a JSON object with "input_ids": [int, ...] (a fixture's golden.json works)
  --out OUT.json      where to write the logits
  --decode-from P     prefill the first P tokens in one chunk, then feed the rest one token at a time
                      through the streaming (decoding) path; rows are still 0..L-1
  --chunk N           feed the prefill in chunks of N tokens (default: all at once)
  --window W          sliding-window attention of W tokens (Transformer models)
  --backend B         tensorflow | webgpu | wasm | cpu (default: the best available)
  -h, --help          show this help`;

export async function readInputIds(path: string): Promise<Int32Array> {
  const json = (await readJsonFile(path)) as { input_ids?: unknown };
  const ids = json?.input_ids;
  if (!Array.isArray(ids) || ids.length === 0) throw workbenchError('E_INPUT', path, 'needs a non-empty "input_ids" array');
  const bad = ids.findIndex((v) => !Number.isInteger(v));
  if (bad >= 0) throw workbenchError('E_INPUT', path, `input_ids[${bad}] = ${JSON.stringify(ids[bad])} is not an integer`);
  return Int32Array.from(ids as number[]);
}

/** Runs ids through the model: chunks of `chunk` up to `decodeFrom`, then one token at a time. Returns [L, V] logits. */
export async function computeLogits(model: CausalLM, ids: Int32Array, decodeFrom = ids.length, chunk = ids.length): Promise<Float32Array> {
  const V = model.vocabSize;
  const out = new Float32Array(ids.length * V);
  let state: ModelState = model.initialState();
  let t = 0;
  try {
    while (t < ids.length) {
      const size = t < decodeFrom ? Math.min(chunk, decodeFrom - t) : 1;
      const r = runChunk(model, ids.subarray(t, t + size), state);
      state = r.state;
      out.set(await r.logits.data(), t * V);
      tf.dispose(r.logits);
      t += size;
    }
  } finally {
    tf.dispose(state as unknown as tf.TensorContainer);
  }
  return out;
}

export const logitsCommand: Command = {
  name: 'logits',
  help,
  async run(argv, io) {
    const { values } = parseCommandArgs('logits', argv, {
      model: { type: 'string' }, input: { type: 'string' }, out: { type: 'string' },
      'decode-from': { type: 'string' }, chunk: { type: 'string' }, backend: { type: 'string' }, window: { type: 'string' },
    });
    if (values.help) {
      io.stdout(help);
      return 0;
    }
    const modelDir = requireOption('logits', values.model, '--model');
    const inputPath = requireOption('logits', values.input, '--input');
    const outPath = requireOption('logits', values.out, '--out');
    const decodeFrom = intOption('logits', values['decode-from'], '--decode-from', 1);
    const chunk = intOption('logits', values.chunk, '--chunk', 1);
    const backend = await selectBackend(values.backend);
    const ids = await readInputIds(inputPath);
    if (decodeFrom !== undefined && decodeFrom > ids.length) {
      throw workbenchError('E_USAGE', `logits: --decode-from ${decodeFrom} is past the ${ids.length} input tokens`);
    }
    const window = intOption('logits', values.window, '--window', 1);
    const { model } = await loadModel(modelDir, window === undefined ? {} : { window });
    try {
      assertTokenIds(ids, model.vocabSize, 0, inputPath);
      const logits = await computeLogits(model, ids, decodeFrom ?? ids.length, chunk ?? ids.length);
      const body = { shape: [ids.length, model.vocabSize], logits: Array.from(logits), backend: backend.name, decode_from: decodeFrom ?? null };
      await writeFile(outPath, JSON.stringify(body));
      io.stderr(`wrote ${ids.length}×${model.vocabSize} logits to ${outPath} (backend ${backend.name})`);
    } finally {
      model.dispose();
    }
    return 0;
  },
};
