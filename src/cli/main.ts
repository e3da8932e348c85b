#!/usr/bin/env node
/**
 * `audiosocket` command line: a thin client of the public API.
 */
import cluster from 'node:cluster';
import { commands } from './commands/index.js';
import { UsageError } from './options.js';
import { setDiagnosticPrefix } from './output.js';
import { version } from './version.js';
import { AudioSocketError, ErrorCodes } from '../errors.js';

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `Usage: audiosocket <command> [options]

Commands:
${lines.join('\n')}

Every command takes --host and --port (default 127.0.0.1:9092) and --help. A mistake on the
command line is one line on stderr and exit status 2; AUDIOSOCKET_DEBUG=1 shows the stack of an
unexpected error. Protocol background: docs/protocol.md in the source repository.`;
}

/** Prints a usage mistake as one line plus a pointer to the help, and sets exit status 2. */
function usageError(message: string, helpCommand: string): void {
  process.stderr.write(`${message}\nsee '${helpCommand} --help'\n`);
  process.exitCode = 2;
}

/**
 * A reader of our output that went away (`audiosocket echo | head -1`, a log pipe that closed)
 * is not the command's failure: its output stops there, and its calls and server go on. Node
 * reports that as an `error` event on the stream, which would otherwise crash the process.
 */
function survivePipeReadersLeaving(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
}

async function main(argv: string[]): Promise<void> {
  survivePipeReadersLeaving();
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${version()}\n`);
    return;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined && name.startsWith('-')) {
    // Options before the command (`audiosocket --port 9000 echo`): show the order that works.
    const at = argv.findIndex((a) => Object.hasOwn(commands, a));
    const fixed =
      at < 0
        ? `audiosocket <command> ${argv.join(' ')} (commands are ${Object.keys(commands).join(', ')})`
        : ['audiosocket', argv[at], ...argv.slice(0, at), ...argv.slice(at + 1)].join(' ');
    usageError(`audiosocket: ${JSON.stringify(name)} comes before a command; options go after it, as in: ${fixed}`, 'audiosocket');
    return;
  }
  if (command === undefined) {
    usageError(`audiosocket: unknown command ${JSON.stringify(name)}; commands are ${Object.keys(commands).join(', ')}`, 'audiosocket');
    return;
  }
  setDiagnosticPrefix(`audiosocket ${name}`);
  try {
    await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      usageError(`audiosocket ${name}: ${err.message}`, `audiosocket ${name}`);
      return;
    }
    // An option the library refuses is a usage mistake too.
    if (err instanceof AudioSocketError && err.code === ErrorCodes.INVALID_ARGUMENT) {
      usageError(`audiosocket ${name}: ${err.message}`, `audiosocket ${name}`);
      return;
    }
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { command: name });
  }
}

main(process.argv.slice(2)).then(
  () => {
    // A cluster worker's IPC channel would keep it alive after its server has closed.
    if (cluster.isWorker) process.exit();
  },
  (err: Error & { command?: string }) => {
    // One line; the stack only when asked for (AUDIOSOCKET_DEBUG=1).
    const where = err.command ? `audiosocket ${err.command}` : 'audiosocket';
    const detail = process.env.AUDIOSOCKET_DEBUG ? `\n${err.stack}` : '';
    process.stderr.write(`${where}: ${String(err.message).replace(/\s*\n\s*/g, '; ')}${detail}\n`);
    process.exitCode = 1;
    if (cluster.isWorker) process.exit();
  },
);
