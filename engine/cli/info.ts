/** `ttt-workbench info`: what a model folder holds and where it would run. */
import { selectBackend } from '../core/backend.js';
import type { AdapterInfo } from '../core/webgpu-adapter.js';
import { checkModel, inspectModel } from '../io/load-model.js';
import { type BackendFit, formatBytes, type MemoryEstimate } from '../io/memory.js';
import { type Command, intOption, parseCommandArgs, requireOption } from './args.js';

const help = `Usage: ttt-workbench info DIR [--backend B] [--chunk N] [--json]
       ttt-workbench info --model DIR ...

Describes a model folder without loading its weights: architecture, parameter count, layers, heads, the
tokenizer it expects, its size on disk, the memory it needs on each backend (estimated for chunks of N
tokens) and the backend the engine would use.

Options:
  --model DIR     model folder (config.json + safetensors weights), or give it as the first argument
  --backend B     tensorflow | webgpu | wasm | cpu (default: the best available)
  --chunk N       tokens per chunk for the memory estimate (default 512, as analyze)
  --json          print one JSON object instead of text
  -h, --help      show this help`;

const fitWord = (f: BackendFit) => (f.fits === null ? 'unknown' : f.fits ? 'fits' : 'does not fit');

/** The estimate's parts, then one line per backend: what it needs against what it has. */
function memoryLines(m: MemoryEstimate, fits: readonly BackendFit[]): string[] {
  return [
    `memory estimate   weights ${formatBytes(m.weights)} (twice on wasm: XNNPACK packs them), activations ${formatBytes(m.activations)} (chunks of ${m.chunkTokens} tokens), state ${formatBytes(m.state)}`,
    ...fits.map((f) => `  on ${f.backend.padEnd(14)} ${formatBytes(f.needs)}: ${fitWord(f)} (${f.limit === null ? f.what : `${formatBytes(f.limit)}, ${f.what}`})`),
  ];
}

/** One line naming the GPU adapter, e.g. `nvidia ampere: NVIDIA GeForce RTX 3090 (hardware)`. */
const formatAdapter = (a: AdapterInfo) =>
  `${[a.vendor, a.architecture].filter(Boolean).join(' ') || 'unknown'}${a.description ? `: ${a.description}` : ''} (${a.software ? 'software' : 'hardware'})`;

export const infoCommand: Command = {
  name: 'info',
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs('info', argv, {
      model: { type: 'string' }, backend: { type: 'string' }, chunk: { type: 'string' }, json: { type: 'boolean' },
    }, true);
    if (values.help) {
      io.stdout(help);
      return 0;
    }
    const dir = requireOption('info', values.model ?? positionals[0], 'DIR');
    const chunkTokens = intOption('info', values.chunk, '--chunk', 1);
    const backend = await selectBackend(values.backend);
    // what analyze would refuse, info refuses too, with the loader's own one-line error
    await checkModel(dir);
    // headers only: a model too large for this machine can still be described
    const { description, parameters, bytesOnDisk, weightFiles, dtypes, memory, backends } = await inspectModel(dir, { chunkTokens });
    const info = { model: dir, ...description, parameters, bytesOnDisk, weightFiles, dtypes, memory, memoryByBackend: backends, backend };
    if (values.json) {
      io.stdout(JSON.stringify(info, null, 2));
      return 0;
    }
    const lines = [
      `model             ${dir}`,
      `architecture      ${description.architecture}`,
      `parameters        ${parameters.toLocaleString('en-US')}`,
      `layers            ${description.layers}`,
      `heads             ${description.heads ?? '-'}`,
      `hidden size       ${description.hiddenSize}`,
      `vocabulary        ${description.vocabSize}`,
      `tokenizer         ${description.tokenizer}`,
      `on disk           ${(bytesOnDisk / 1024 / 1024).toFixed(2)} MiB in ${weightFiles.length} file${weightFiles.length === 1 ? '' : 's'} (${Object.entries(dtypes).map(([k, n]) => `${n} ${k}`).join(', ')} tensors)`,
      ...Object.entries(description.details).map(([k, v]) => `${k.padEnd(17)} ${v}`),
      `backend           ${backend.name} (${backend.detail}, ${backend.threads} thread${backend.threads === 1 ? '' : 's'}, tfjs ${backend.tfjsVersion})`,
      ...(backend.adapter ? [`adapter           ${formatAdapter(backend.adapter)}`] : []),
      ...memoryLines(memory, backends),
    ];
    io.stdout(lines.join('\n'));
    return 0;
  },
};
