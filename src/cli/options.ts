/**
 * Options shared by the server commands, parsed with `node:util` parseArgs.
 */
import { availableParallelism } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ServerOptions } from '../index.js';

/** Thrown for bad command-line usage; main prints it with the command's help and exits 2. */
export class UsageError extends Error {}

export const serverOptionSpec = {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '9092' },
  allow: { type: 'string' },
  'max-calls': { type: 'string' },
  'frame-ms': { type: 'string' },
  'no-keepalive': { type: 'boolean', default: false },
  inbound: { type: 'string' },
  format: { type: 'string' },
  metrics: { type: 'string' },
  workers: { type: 'string', default: '1' },
  json: { type: 'boolean', default: false },
  quiet: { type: 'boolean', short: 'q', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

export const serverOptionsHelp = `Options:
  --host HOST          address to listen on (default 127.0.0.1; use 0.0.0.0 or :: only behind a firewall)
  --port PORT          port to listen on (default 9092)
  --allow LIST         addresses/CIDRs allowed to connect, comma-separated (default: everyone)
  --max-calls N        most concurrent calls; more get a hangup (default: unlimited)
  --frame-ms MS        outbound frame duration: 10, 20, 30, 40, 50, 60 (default 20)
  --no-keepalive       do not send silence when there is nothing to send
  --inbound ENC        what kind 0x10 really carries: slin (default), ulaw or alaw
                       (a channel driver dialled with c(ulaw)/c(alaw) or without c())
  --format NAME        what we send to Asterisk: slin (default, every version), or slin12..slin192
                       (Asterisk 20.17/21.12/22.7/23.1 and later only)
  --metrics HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics (one worker only)
  --workers N|auto     run N processes sharing the port (auto: one per core; default 1)
  --json               one JSON object per event on stdout
  -q, --quiet          only the listening line and errors
  -h, --help           this help`;

export function parseIntOption(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`--${name} must be an integer ${min}..${max}, got ${JSON.stringify(value)}`);
  return n;
}

export interface CommonServerArgs {
  workers: number;
  metrics: { host: string; port: number } | undefined;
  host: string;
  port: number;
  json: boolean;
  quiet: boolean;
  help: boolean;
  server: ServerOptions;
}

/** Parses argv for a server command; `extra` adds command-specific options. */
export function parseServerArgs<E extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  extra: E,
): { common: CommonServerArgs; values: Record<string, string | boolean | undefined>; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...serverOptionSpec, ...extra }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  const server: ServerOptions = { keepAlive: !v['no-keepalive'] };
  const maxCalls = parseIntOption('max-calls', v['max-calls'] as string | undefined, 1, 1_000_000);
  if (maxCalls !== undefined) server.maxCalls = maxCalls;
  const frameMs = parseIntOption('frame-ms', v['frame-ms'] as string | undefined, 10, 60);
  if (frameMs !== undefined) server.frameMs = frameMs;
  if (typeof v.allow === 'string') server.allow = v.allow;
  if (typeof v.inbound === 'string') {
    if (!['slin', 'ulaw', 'alaw'].includes(v.inbound)) throw new UsageError(`--inbound must be slin, ulaw or alaw, got ${JSON.stringify(v.inbound)}`);
    server.inbound = v.inbound as 'slin' | 'ulaw' | 'alaw';
  }
  if (typeof v.format === 'string') {
    const rates: Record<string, number> = { slin: 8000, slin12: 12000, slin16: 16000, slin24: 24000, slin32: 32000, slin44: 44100, slin48: 48000, slin96: 96000, slin192: 192000 };
    const rate = rates[v.format];
    if (rate === undefined) throw new UsageError(`--format must be one of ${Object.keys(rates).join(', ')}, got ${JSON.stringify(v.format)}`);
    server.outboundKind = rate;
  }
  let metrics: CommonServerArgs['metrics'];
  if (typeof v.metrics === 'string') metrics = parseHostPort('metrics', v.metrics);
  const workers = v.workers === 'auto' ? availableParallelism() : parseIntOption('workers', v.workers as string, 1, 256)!;
  if (workers > 1 && metrics) throw new UsageError('--metrics works with one worker only (each worker has its own counters)');
  return {
    common: {
      workers,
      metrics,
      host: v.host as string,
      port: parseIntOption('port', v.port as string, 0, 65535)!,
      json: v.json === true,
      quiet: v.quiet === true,
      help: v.help === true,
      server,
    },
    values: v,
    positionals: parsed.positionals,
  };
}

/** Parses `HOST:PORT`, `[v6]:PORT` or `PORT`. */
export function parseHostPort(name: string, text: string, defaultHost = '127.0.0.1'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  if (!m) throw new UsageError(`--${name} must be HOST:PORT, got ${JSON.stringify(text)}`);
  const port = Number(m[3]);
  if (port > 65535) throw new UsageError(`--${name}: port ${port} is out of range`);
  return { host: m[1] || m[2] || defaultHost, port };
}
