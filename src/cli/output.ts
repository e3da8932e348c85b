/**
 * CLI output: plain lines for people (`--quiet` silences per-call lines), or one JSON object per
 * event (`--json`) for log pipelines. Diagnostics go to stderr, events to stdout.
 */
export interface Output {
  /** An event: a line of text, or a JSON object with `event` and the fields. */
  event(name: string, fields: Record<string, unknown>, text: string): void;
  /** Something went wrong; always printed, on stderr. */
  error(text: string, fields?: Record<string, unknown>): void;
}

export function createOutput(options: { json: boolean; quiet: boolean }): Output {
  return {
    event(name, fields, text) {
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), event: name, ...fields })}\n`);
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
