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

/** parseArgs with errors rewritten as one-line usage errors naming the command. */
export function parseCommandArgs<O extends Options>(command: string, argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
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
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw workbenchError('E_USAGE', `${command}: ${flag} must be an integer ≥ ${min}, got "${value}"`);
  return n;
}
