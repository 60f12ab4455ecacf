/**
 * The engine's command-line front door: `ttt-workbench <command> [options]`. Every failure is one line on stderr
 * naming the file and the problem, with a non-zero exit code.
 */
import { useWebGPUProbe } from './core/backend.js';
import { WorkbenchError } from './core/errors.js';
import { probeWebGPUQuietly } from './runtime/webgpu-quiet-probe.js';
import type { Command, CommandIO } from './cli/args.js';
import { analyzeCommand } from './cli/analyze.js';
import { evalCommand, workerCommand } from './cli/eval.js';
import { exportCommand } from './cli/export.js';
import { infoCommand } from './cli/info.js';
import { initCommand } from './cli/init.js';
import { logitsCommand } from './cli/logits.js';
import { serveCommand } from './cli/serve.js';
import { trainCommand } from './cli/train.js';

const commands: readonly Command[] = [
  analyzeCommand, evalCommand, workerCommand, exportCommand, serveCommand, initCommand, trainCommand, logitsCommand, infoCommand,
];

const usage = `Usage: ttt-workbench <command> [options]

TTT Workbench engine: run Test-Time Training language models (TTT-Linear, TTT-MLP) and their baselines
over long texts on TensorFlow.js.

Commands:
${commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}

Run 'ttt-workbench <command> --help' for a command's options.`;

// Automatic backend choice asks for a GPU in a child process, so Dawn's start-up warnings stay off our output.
useWebGPUProbe(probeWebGPUQuietly);

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
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.stderr(`ttt-workbench: unknown command "${name}" (commands: ${commands.map((c) => c.name).join(', ')})`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    const message = error instanceof WorkbenchError ? error.message : `internal error: ${(error as Error).message ?? String(error)}`;
    io.stderr(`ttt-workbench ${name}: ${message.split('\n')[0]}`);
    return 1;
  }
}
