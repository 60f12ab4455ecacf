/** What a model folder says about itself before its weights are read: description and tokenizer files. */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { TokenizerSpec } from '../core/tokenizers/index.js';
import { readJsonFile } from './checkpoint.js';
import { describeModel } from './load-model.js';

export { describeModel as describeModelDir } from './load-model.js';

const isFile = (path: string) => stat(path).then((s) => s.isFile(), () => false);

/**
 * The tokenizer to use for a model: its own tokenizer.json when the folder has one (or the config says "hf"),
 * else the one its config names or implies ('bytes', 'llama2').
 */
export async function tokenizerSpecFor(dir: string, named?: string): Promise<TokenizerSpec | string> {
  const name = named ?? (await describeModel(dir)).tokenizer;
  const tokenizerPath = join(dir, 'tokenizer.json');
  if (name === 'hf' || (await isFile(tokenizerPath))) {
    const configPath = join(dir, 'tokenizer_config.json');
    return {
      kind: 'hf',
      tokenizerJson: await readJsonFile(tokenizerPath),
      tokenizerConfig: (await isFile(configPath)) ? await readJsonFile(configPath) : undefined,
      source: tokenizerPath,
    };
  }
  return name;
}
