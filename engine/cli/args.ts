/** Shared command-line plumbing: option parsing with one-line usage errors, and help texts. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { workbenchError } from '../core/errors.js';

export interface Command {
  readonly name: string;
  readonly help: string;
  run(argv: string[], io: CommandIO): Promise<number>;
}

export interface CommandIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `--chunk -5` as `--chunk=-5`: parseArgs takes a value starting with "-" for an option and calls it ambiguous;
 * a negative number after an option that takes a value is that value (and then gets the option's own range error).
 */
function joinNegativeValues(argv: readonly string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith('--') && !argv[i].includes('=') ? argv[i].slice(2) : null;
    if (name !== null && options[name]?.type === 'string' && i + 1 < argv.length && /^-(\d|\.\d)/.test(argv[i + 1])) {
      out.push(`${argv[i]}=${argv[i + 1]}`);
      i++;
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}

/** parseArgs with errors rewritten as one-line usage errors naming the command. */
export function parseCommandArgs<O extends Options>(command: string, argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: joinNegativeValues(argv, options), options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (error) {
    throw workbenchError('E_USAGE', `${command}: ${(error as Error).message.split('\n')[0]} (see ttt-workbench ${command} --help)`);
  }
}

export function requireOption(command: string, value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw workbenchError('E_USAGE', `${command}: ${flag} is required (see ttt-workbench ${command} --help)`);
  return value;
}

export function intOption(command: string, value: string | undefined, flag: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\s*$/.test(value) ? NaN : Number(value);
  if (!Number.isInteger(n) || n < min) throw workbenchError('E_USAGE', `${command}: ${flag} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}
