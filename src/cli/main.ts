#!/usr/bin/env node
/**
 * `audiosocket` command line: a thin client of the public API.
 */
import cluster from 'node:cluster';
import { echoCommand, echoHelp } from './commands/echo.js';
import { inspectCommand, inspectHelp } from './commands/inspect.js';
import { recordCommand, recordHelp } from './commands/record.js';
import { playCommand, playHelp } from './commands/play.js';
import { callCommand, callHelp } from './commands/call.js';
import { UsageError } from './options.js';

const commands: Record<string, { run: (argv: string[]) => Promise<void>; help: string; summary: string }> = {
  echo: { run: echoCommand, help: echoHelp, summary: 'echo every call\'s audio back (the default server)' },
  record: { run: recordCommand, help: recordHelp, summary: 'record every call to WAV (stereo or per direction) with a JSON sidecar' },
  play: { run: playCommand, help: playHelp, summary: 'play a WAV file to every caller, paced in real time' },
  inspect: { run: inspectCommand, help: inspectHelp, summary: 'show what Asterisk sends and diagnose common mistakes' },
  call: { run: callCommand, help: callHelp, summary: 'simulated Asterisk: call a server, stream audio, send DTMF, record' },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `Usage: audiosocket <command> [options]

Commands:
${lines.join('\n')}

Every command takes --host and --port (default 127.0.0.1:9092) and --help.`;
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  if (name === '--version' || name === '-v') {
    const { createRequire } = await import('node:module');
    const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return;
  }
  const command = commands[name];
  if (command === undefined) {
    process.stderr.write(`audiosocket: unknown command ${JSON.stringify(name)}\n\n${usage()}\n`);
    process.exitCode = 2;
    return;
  }
  try {
    await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`audiosocket ${name}: ${err.message}\n\n${command.help}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  () => {
    // A cluster worker's IPC channel would keep it alive after its server has closed.
    if (cluster.isWorker) process.exit();
  },
  (err: unknown) => {
    process.stderr.write(`audiosocket: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
    if (cluster.isWorker) process.exit();
  },
);
