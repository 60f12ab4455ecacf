/** `ttt-workbench init`: a randomly initialised checkpoint folder for an architecture at a preset size. */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { workbenchError } from '../core/errors.js';
import { writeSafetensors } from '../core/safetensors.js';
import { architectures, type Architecture, initWeights, presetConfig, presets } from '../models/init.js';
import { type Command, intOption, parseCommandArgs, requireOption } from './args.js';

const help = `Usage: ttt-workbench init --arch ARCH --preset NAME --out DIR [options]

Writes a randomly initialised model folder (config.json + model.safetensors), initialised as the reference
implementations initialise their modules, with the reference tensor names.

Options:
  --arch ARCH          ${architectures.join(' | ')}
  --preset NAME        ${Object.entries(presets).map(([k, p]) => `${k} (d=${p.hidden}, ${p.layers} layers)`).join(', ')}
  --backbone B         mamba | transformer (TTT only; default mamba: pre_conv, share_qk, use_gate)
  --vocab N            vocabulary size (default: the preset's; 256 = byte-level)
  --layers N           number of layers (default: the preset's)
  --seed S             random seed (default 0)
  --out DIR            folder to create (an existing non-empty folder only with --force)
  --force              replace the model in --out (its training files go too)
  -h, --help           show this help`;

/** Files of a trained model folder that describe its old weights: they go when --force replaces the weights. */
const trainingFiles = ['optimizer.safetensors', 'trainer_state.json', 'train_log.arrow'];

/** Creates `out`, or refuses in one line a file, an unwritable path, or a non-empty folder without `force`. */
async function prepareModelDir(out: string, force: boolean): Promise<void> {
  const entries: string[] = await readdir(out).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw workbenchError('E_FILE_WRITE', out, error.code === 'ENOTDIR' ? 'it is a file, not a folder' : error.code ?? String(error));
  });
  if (entries.length > 0 && !force) {
    const what = entries.includes('config.json') ? 'holds a model' : `is not empty (${entries.length} entries)`;
    throw workbenchError('E_FILE_WRITE', out, `it ${what}; pass --force to replace it, or choose a new folder`);
  }
  try {
    await mkdir(out, { recursive: true });
    for (const name of trainingFiles) await rm(join(out, name), { force: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw workbenchError('E_FILE_WRITE', out, code === 'ENOTDIR' || code === 'EEXIST' ? 'a part of the path is a file' : code ?? String(error));
  }
}

export const initCommand: Command = {
  name: 'init',
  help,
  async run(argv, io) {
    const { values } = parseCommandArgs('init', argv, {
      arch: { type: 'string' }, preset: { type: 'string' }, backbone: { type: 'string' }, vocab: { type: 'string' },
      layers: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' },
    });
    if (values.help) {
      io.stdout(help);
      return 0;
    }
    const arch = requireOption('init', values.arch, '--arch');
    if (!(architectures as readonly string[]).includes(arch)) throw workbenchError('E_USAGE', `init: unknown --arch "${arch}" (choose ${architectures.join(', ')})`);
    const backbone = values.backbone;
    if (backbone !== undefined && backbone !== 'mamba' && backbone !== 'transformer') throw workbenchError('E_USAGE', `init: --backbone must be mamba or transformer, got "${backbone}"`);
    const out = requireOption('init', values.out, '--out');
    const config = presetConfig(arch as Architecture, requireOption('init', values.preset, '--preset'), {
      backbone, vocab: intOption('init', values.vocab, '--vocab', 2), layers: intOption('init', values.layers, '--layers', 1),
    });
    const tensors = initWeights(config, intOption('init', values.seed, '--seed', 0) ?? 0);
    await prepareModelDir(out, values.force === true);
    await writeFile(join(out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    await writeFile(join(out, 'model.safetensors'), writeSafetensors(tensors, 'F32'));
    const parameters = tensors.reduce((n, t) => n + t.data.length, 0);
    io.stderr(`wrote ${arch} (${values.preset}, ${parameters.toLocaleString('en-US')} parameters) to ${out}`);
    return 0;
  },
};
