/**
 * CLI output: plain lines for people (`--quiet` silences per-call lines), or one JSON object per
 * event (`--json`) for log pipelines. Diagnostics go to stderr, events to stdout.
 *
 * On a terminal a live status line sits below the event lines: every event or error line first
 * clears it (`\r` + erase line), and the status line is redrawn after, cut to the terminal
 * width so a narrow pane never fills with wrapped, stale rows.
 */
import cluster from 'node:cluster';

export interface Output {
  /** An event: `text` for people (stdout; '' prints nothing), `fields` for --json. */
  event(name: string, fields: Record<string, unknown>, text: string): void;
  /** Something went wrong; always printed, on stderr. */
  error(text: string, fields?: Record<string, unknown>): void;
  /** Something the user should know (a truncated file, a digit that will not be sent); stderr. */
  warn(text: string, fields?: Record<string, unknown>): void;
  /** Sets (or, with null, removes) the live status line. Only shown when `live`. */
  status(line: string | null): void;
  /** True when a status line is shown (a terminal, neither --json nor --quiet). */
  readonly live: boolean;
}

export interface OutputOptions {
  json: boolean;
  quiet: boolean;
  /** Show a status line (default: stdout is a terminal and neither json nor quiet). */
  live?: boolean;
}

const CLEAR = '\r\x1b[2K';

/** What errors and warnings on stderr start with: the program, then the command once known. */
let diagnosticPrefix = 'audiosocket';

/** Names the command that runs (`audiosocket echo`), for every line of {@link Output.error} and `warn`. */
export function setDiagnosticPrefix(prefix: string): void {
  diagnosticPrefix = prefix;
}

/** Cuts `line` to `columns - 1` characters (the last column would make some terminals wrap). */
export function fitToWidth(line: string, columns: number | undefined): string {
  const width = columns !== undefined && columns > 1 ? columns - 1 : 79;
  return line.length <= width ? line : `${line.slice(0, Math.max(0, width - 1))}…`;
}

export function createOutput(options: OutputOptions): Output {
  // In a cluster worker, JSON events name the process that served them.
  const origin = cluster.isWorker ? { pid: process.pid } : {};
  const live = options.live ?? (process.stdout.isTTY === true && !options.json && !options.quiet && !cluster.isWorker);
  let statusLine: string | null = null;
  let shown = false;
  const clear = (): void => {
    if (shown) process.stdout.write(CLEAR);
    shown = false;
  };
  const redraw = (): void => {
    if (!live || statusLine === null) return;
    process.stdout.write(`${CLEAR}${fitToWidth(statusLine, process.stdout.columns)}`);
    shown = true;
  };
  const write = (stream: NodeJS.WriteStream, text: string): void => {
    if (live) {
      clear();
      stream.write(`${CLEAR}${text}\n`);
      redraw();
    } else stream.write(`${text}\n`);
  };
  const diagnostic = (kind: 'error' | 'warning', text: string, fields?: Record<string, unknown>): void => {
    if (options.json) {
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), event: kind, message: text, ...origin, ...fields })}\n`);
    } else {
      write(process.stderr, `${diagnosticPrefix}: ${kind === 'warning' ? 'warning: ' : ''}${text}`);
    }
  };
  return {
    live,
    event(name, fields, text) {
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), event: name, ...origin, ...fields })}\n`);
      } else if (text !== '' && (!options.quiet || name === 'listening' || name === 'closed')) {
        write(process.stdout, text); // '' : an event for --json only
      }
    },
    error: (text, fields) => diagnostic('error', text, fields),
    warn: (text, fields) => diagnostic('warning', text, fields),
    status(line) {
      if (!live) return;
      statusLine = line;
      if (line === null) clear();
      else redraw();
    },
  };
}
