/**
 * The engine's command-line front door: `ttt-workbench <command> [options]`. Every failure is one line on stderr
 * naming the file and the problem, with a non-zero exit code.
 */
import { WorkbenchError } from './core/errors.js';
import type { Command, CommandIO } from './cli/args.js';

/**
 * The commands, each loaded only when it runs: a command's module brings TensorFlow.js with it, which `--help`
 * and a mistyped command should not wait for.
 */
const commands: readonly { name: string; summary: string; load: () => Promise<Command> }[] = [
  { name: 'analyze', summary: 'stream a book through models into a run folder', load: async () => (await import('./cli/analyze.js')).analyzeCommand },
  { name: 'export', summary: 'write a run folder\'s series as CSV', load: async () => (await import('./cli/export.js')).exportCommand },
  { name: 'serve', summary: 'run the engine as a JSON-RPC server (stdio or WebSocket)', load: async () => (await import('./cli/serve.js')).serveCommand },
  { name: 'init', summary: 'write a randomly initialised model folder', load: async () => (await import('./cli/init.js')).initCommand },
  { name: 'train', summary: 'train a model folder on books (checkpoints, resume)', load: async () => (await import('./cli/train.js')).trainCommand },
  { name: 'logits', summary: 'logits of input_ids (parity checks)', load: async () => (await import('./cli/logits.js')).logitsCommand },
  { name: 'info', summary: 'describe a model folder and the compute backend', load: async () => (await import('./cli/info.js')).infoCommand },
  { name: 'eval', summary: 'evaluate models on a corpus: loss by position over many documents (locally or on Redis workers)', load: async () => (await import('./cli/eval.js')).evalCommand },
  { name: 'probe', summary: 'long-context probes: needle retrieval, copy distance, interventions (frozen inner loop, reset, transplant)', load: async () => (await import('./cli/probe.js')).probeCommand },
  { name: 'worker', summary: 'serve corpus-evaluation jobs from a Redis queue (BullMQ)', load: async () => (await import('./cli/eval.js')).workerCommand },
];

const usage = `Usage: ttt-workbench <command> [options]

TTT Workbench engine: run Test-Time Training language models (TTT-Linear, TTT-MLP) and their baselines
over long texts on TensorFlow.js.

Commands:
${commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

Run 'ttt-workbench <command> --help' for a command's options.`;

/** Automatic backend choice asks for a GPU in a child process, so Dawn's start-up warnings stay off our output. */
async function useQuietWebGPUProbe(): Promise<void> {
  const [{ useWebGPUProbe }, { probeWebGPUQuietly }] = await Promise.all([import('./core/backend.js'), import('./runtime/webgpu-quiet-probe.js')]);
  useWebGPUProbe(probeWebGPUQuietly);
}

const processIO: CommandIO = {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
};

export async function main(argv: string[], io: CommandIO = processIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(usage);
    return name === undefined ? 1 : 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    io.stderr(`ttt-workbench: unknown command "${name}" (commands: ${commands.map((c) => c.name).join(', ')})`);
    return 2;
  }
  try {
    const [command] = await Promise.all([entry.load(), useQuietWebGPUProbe()]);
    // loaded with the command, not before: --help and argument errors need no TensorFlow.js
    (await import('./runtime/kernel-switch.js')).applyKernelSwitch();
    return await command.run(rest, io);
  } catch (error) {
    const message = error instanceof WorkbenchError ? error.message : `internal error: ${(error as Error).message ?? String(error)}`;
    io.stderr(`ttt-workbench ${name}: ${message.split('\n')[0]}`);
    return 1;
  }
}
