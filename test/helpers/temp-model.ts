/** Writes modified copies of fixture checkpoints to temporary folders, for tests of loading and bad input. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FloatTensor, readSafetensors, type SafetensorsDtype, writeSafetensors } from '../../engine/core/safetensors.js';
import { fixtureDir } from './fixtures.js';

export interface TempModel {
  readonly dir: string;
  cleanup(): void;
}

export function fixtureTensors(name: string): Map<string, FloatTensor> {
  return readSafetensors(readFileSync(join(fixtureDir(name), 'model.safetensors')), name).tensors;
}

export function fixtureConfig(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(fixtureDir(name), 'config.json'), 'utf8')) as Record<string, unknown>;
}

export function writeTempModel(
  config: Record<string, unknown>,
  tensors: Iterable<FloatTensor>,
  dtype: SafetensorsDtype = 'F32',
): TempModel {
  const dir = mkdtempSync(join(tmpdir(), 'ttt-model-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 1));
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors, dtype));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
