/** `ttt-workbench info`: what a model folder holds and where it would run. */
import { selectBackend } from '../core/backend.js';
import { loadModel } from '../io/load-model.js';
import { type Command, parseCommandArgs, requireOption } from './args.js';

const help = `Usage: ttt-workbench info --model DIR [--backend B] [--json]

Loads a model folder and prints its architecture, parameter count, layers, heads, the tokenizer it
expects, its size on disk and the backend the engine would use.

Options:
  --model DIR     model folder (config.json + safetensors weights)
  --backend B     tensorflow | webgpu | wasm | cpu (default: the best available)
  --json          print one JSON object instead of text
  -h, --help      show this help`;

export const infoCommand: Command = {
  name: 'info',
  summary: 'describe a model folder and the compute backend',
  help,
  async run(argv, io) {
    const { values } = parseCommandArgs('info', argv, { model: { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean' } });
    if (values.help) {
      io.stdout(help);
      return 0;
    }
    const dir = requireOption('info', values.model, '--model');
    const backend = await selectBackend(values.backend);
    const { model, description, bytesOnDisk } = await loadModel(dir);
    const parameters = model.parameterCount;
    model.dispose();
    const info = { model: dir, ...description, parameters, bytesOnDisk, backend };
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
      `on disk           ${(bytesOnDisk / 1024 / 1024).toFixed(2)} MiB`,
      ...Object.entries(description.details).map(([k, v]) => `${k.padEnd(17)} ${v}`),
      `backend           ${backend.name} (${backend.detail}, ${backend.threads} thread${backend.threads === 1 ? '' : 's'}, tfjs ${backend.tfjsVersion})`,
    ];
    io.stdout(lines.join('\n'));
    return 0;
  },
};
