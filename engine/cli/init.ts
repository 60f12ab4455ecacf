/** `ttt-workbench init`: a randomly initialised checkpoint folder for an architecture at a preset size. */
import { mkdir, writeFile } from 'node:fs/promises';
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
  --out DIR            folder to create
  -h, --help           show this help`;

export const initCommand: Command = {
  name: 'init',
  help,
  async run(argv, io) {
    const { values } = parseCommandArgs('init', argv, {
      arch: { type: 'string' }, preset: { type: 'string' }, backbone: { type: 'string' }, vocab: { type: 'string' },
      layers: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' },
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
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    await writeFile(join(out, 'model.safetensors'), writeSafetensors(tensors, 'F32'));
    const parameters = tensors.reduce((n, t) => n + t.data.length, 0);
    io.stderr(`wrote ${arch} (${values.preset}, ${parameters.toLocaleString('en-US')} parameters) to ${out}`);
    return 0;
  },
};
