/** What the app remembers between launches: the window's size and place, and recently opened books. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface WindowBounds {
  readonly x?: number;
  readonly y?: number;
  readonly width: number;
  readonly height: number;
  readonly maximized: boolean;
}

export interface Settings {
  readonly window: WindowBounds;
  readonly recentBooks: readonly string[];
}

export const defaultSettings: Settings = { window: { width: 1280, height: 820, maximized: false }, recentBooks: [] };
const maxRecent = 10;

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Unreadable or hand-edited files fall back field by field to the defaults rather than failing the launch. */
export function loadSettings(file: string): Settings {
  let json: { window?: Partial<WindowBounds>; recentBooks?: unknown };
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as typeof json;
  } catch {
    return defaultSettings;
  }
  const w = json.window ?? {};
  const window: WindowBounds = {
    ...(isNumber(w.x) && isNumber(w.y) ? { x: w.x, y: w.y } : {}),
    width: isNumber(w.width) && w.width >= 640 ? w.width : defaultSettings.window.width,
    height: isNumber(w.height) && w.height >= 480 ? w.height : defaultSettings.window.height,
    maximized: w.maximized === true,
  };
  const recentBooks = Array.isArray(json.recentBooks) ? json.recentBooks.filter((p): p is string => typeof p === 'string').slice(0, maxRecent) : [];
  return { window, recentBooks };
}

/** Written to a temporary file and renamed, so a crash mid-write never leaves half a settings file. */
export function saveSettings(file: string, settings: Settings): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, `${JSON.stringify(settings, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

export function withRecentBook(settings: Settings, path: string): Settings {
  return { ...settings, recentBooks: [path, ...settings.recentBooks.filter((p) => p !== path)].slice(0, maxRecent) };
}
