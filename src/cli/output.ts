/**
 * CLI output: plain lines for people (`--quiet` silences per-call lines), or one JSON object per
 * event (`--json`) for log pipelines. Diagnostics go to stderr, events to stdout.
 */
import cluster from 'node:cluster';

export interface Output {
  /** An event: a line of text, or a JSON object with `event` and the fields. */
  event(name: string, fields: Record<string, unknown>, text: string): void;
  /** Something went wrong; always printed, on stderr. */
  error(text: string, fields?: Record<string, unknown>): void;
}

export function createOutput(options: { json: boolean; quiet: boolean }): Output {
  // In a cluster worker, JSON events name the process that served them.
  const origin = cluster.isWorker ? { pid: process.pid } : {};
  return {
    event(name, fields, text) {
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), event: name, ...origin, ...fields })}\n`);
      } else if (!options.quiet || name === 'listening' || name === 'closed') {
        process.stdout.write(`${text}\n`);
      }
    },
    error(text, fields) {
      if (options.json) {
        process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), event: 'error', message: text, ...fields })}\n`);
      } else {
        process.stderr.write(`audiosocket: ${text}\n`);
      }
    },
  };
}
