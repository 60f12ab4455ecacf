/** Small random models written to temporary folders, for tests that need a real checkpoint of each family. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors } from '../../engine/core/safetensors.js';
import { type Architecture, initWeights, presetConfig } from '../../engine/models/init.js';

export interface TempDir {
  readonly dir: string;
  cleanup(): void;
}

export function tempDir(prefix = 'ttt-test-'): TempDir {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes `init`'s tiny preset of `arch` (optionally smaller) into `parent/name`; returns the folder. */
export function writeTinyModel(parent: string, arch: Architecture, name: string = arch, overrides: Record<string, unknown> = {}, seed = 0): string {
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  const config = { ...presetConfig(arch, 'tiny'), ...overrides };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(initWeights(config, seed)));
  return dir;
}

/** Some real English: the first verses of the KJV. */
export const sampleText = `In the beginning God created the heaven and the earth.
And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters.
And God said, Let there be light: and there was light.
And God saw the light, that it was good: and God divided the light from the darkness.
And God called the light Day, and the darkness he called Night. And the evening and the morning were the first day.
`;
