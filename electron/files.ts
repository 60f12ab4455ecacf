/**
 * File-system questions main answers for the UI: which shipped demo models and sample books exist, and whether
 * a dropped path is a book (a file) or a model (a folder with config.json). Also used by web mode.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClassifiedPaths } from './api.js';

export interface ShippedAssets {
  readonly models: string[];
  readonly books: string[];
}

/** `assets/models/*` folders holding a config.json and `assets/books/*` text files; either folder may be absent. */
export function shippedAssets(root: string): ShippedAssets {
  const list = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort().map((name) => join(dir, name)) : []);
  const models = list(join(root, 'assets', 'models')).filter((dir) => existsSync(join(dir, 'config.json')));
  const books = list(join(root, 'assets', 'books')).filter((file) => /\.(txt|md|text)$/i.test(file) && statSync(file).isFile());
  return { models, books };
}

export async function classifyPaths(paths: readonly string[]): Promise<ClassifiedPaths> {
  const books: string[] = [];
  const models: string[] = [];
  const rejected: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => null);
    if (info?.isFile()) books.push(path);
    else if (info?.isDirectory() && existsSync(join(path, 'config.json'))) models.push(path);
    else rejected.push(path);
  }
  return { books, models, rejected };
}
