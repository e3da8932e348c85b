/**
 * Command-line parsing shared by every command: `node:util` parseArgs with messages a person can
 * act on. Every mistake becomes a {@link UsageError}: one line saying what is wrong and how to fix
 * it; `main` adds `see 'audiosocket <cmd> --help'` and exits with status 2.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { availableParallelism } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createAllowList } from '../admission.js';
import type { ServerOptions } from '../index.js';

/** Bad command-line usage; main prints it on one line, points at `--help` and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    // One line, whatever the cause says.
    super(message.replace(/\s*\n\s*/g, '; '));
  }
}

/** Parsed option values: a string, a flag, or the strings of a repeatable option. */
export type ParsedValues = Record<string, string | boolean | string[] | undefined>;

/** Options as `parseArgs` takes them. */
export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/**
 * parseArgs with one-line errors. A negative number after an option that takes a value
 * (`--port -1`) is taken as its value, so the range check can say what is wrong with it.
 */
export function parseCommandLine<O extends OptionSpec>(
  argv: string[],
  options: O,
  positionals: { allowed: number; name: string },
): { values: ParsedValues; positionals: string[] } {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const spec = a.startsWith('--') ? options[a.slice(2)] : undefined;
    const next = argv[i + 1];
    if (spec?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      args.push(`${a}=${next}`);
      i++;
    } else args.push(a);
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    const name = /'(-[^' ]+)/.exec(e.message)?.[1] ?? '';
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const bare = name.replace(/^-+/, '');
      const known = Object.keys(options);
      const best = known.map((k) => [k, distance(bare, k)] as const).sort((x, y) => x[1] - y[1])[0];
      const hint = best && (best[1] <= 2 || best[0].startsWith(bare) || bare.startsWith(best[0])) ? `; did you mean --${best[0]}?` : '';
      throw new UsageError(`unknown option ${name}${hint}`);
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      if (/does not take an argument/.test(e.message)) throw new UsageError(`${name} takes no value`);
      throw new UsageError(`${name.replace(/ <value>$/, '')} needs a value`);
    }
    throw new UsageError(e.message);
  }
  if (parsed.positionals.length > positionals.allowed) {
    const extra = parsed.positionals
      .slice(positionals.allowed)
      .map((p) => JSON.stringify(p))
      .join(' ');
    const first = parsed.positionals[positionals.allowed]!;
    const host = positionals.name.includes('HOST') ? parsed.positionals[positionals.allowed - 1] : undefined;
    // What the argument most likely meant: the port of the address before it (HOST PORT), a
    // server's port, or a directory for a command that takes one.
    const meant = !/^\d+$/.test(first)
      ? first.includes('/') && 'dir' in options
        ? `; did you mean --dir ${first}?`
        : ''
      : host !== undefined && !host.includes(':')
        ? `; did you mean ${host}:${first}?`
        : host === undefined && 'port' in options
          ? `; did you mean --port ${first}?`
          : '';
    throw new UsageError(
      positionals.allowed === 0
        ? `unexpected argument ${extra}: this command takes options only${meant}`
        : `unexpected argument ${extra}: this command takes ${positionals.name} only${meant}`,
    );
  }
  return { values: parsed.values, positionals: parsed.positionals };
}

/** One command-line option: what `parseArgs` needs, plus its entry in `--help`. */
export interface OptionDef {
  type: 'string' | 'boolean';
  /** Repeatable (`--param a=1 --param b=2`): the value is an array. */
  multiple?: boolean;
  short?: string;
  default?: string | boolean;
  /** What the value is called in the help: `HOST` in `--host HOST`. */
  value?: string;
  /** The help text, one string per line as printed. */
  help: readonly string[];
}

/** A command's options: the one table both its parser and its `--help` are made from. */
export type OptionTable = Readonly<Record<string, OptionDef>>;

/** The `parseArgs` options of a table. */
export function parserOptions(table: OptionTable): OptionSpec {
  return Object.fromEntries(Object.entries(table).map(([name, { help: _help, value: _value, ...spec }]) => [name, spec]));
}

/** Where option descriptions start in `--help`. */
const HELP_COLUMN = 25;

/** A table as `--help` lines: the option, then its text at column 25 (on the next line when the option is too long). */
export function optionsHelp(table: OptionTable): string {
  const indent = ' '.repeat(HELP_COLUMN);
  const lines: string[] = [];
  for (const [name, o] of Object.entries(table)) {
    const label = `${o.short ? `-${o.short}, ` : ''}--${name}${o.value ? ` ${o.value}` : ''}`;
    const [first = '', ...rest] = o.help;
    if (label.length <= HELP_COLUMN - 4) lines.push(`  ${label.padEnd(HELP_COLUMN - 2)}${first}`);
    else lines.push(`  ${label}`, `${indent}${first}`);
    for (const line of rest) lines.push(`${indent}${line}`);
  }
  return lines.join('\n');
}

/** The options every server command takes (echo, record, play, inspect). */
export const serverOptions = {
  host: {
    type: 'string',
    default: '127.0.0.1',
    value: 'HOST',
    help: ['address to listen on (default 127.0.0.1; use 0.0.0.0 or :: only behind a firewall)'],
  },
  port: { type: 'string', default: '9092', value: 'PORT', help: ['port to listen on, 0-65535 (default 9092; 0 picks a free port)'] },
  allow: {
    type: 'string',
    value: 'LIST',
    help: ['addresses/CIDRs allowed to connect, comma-separated, e.g. 10.0.0.0/8,::1', '(both listeners; default: everyone)'],
  },
  'max-calls': {
    type: 'string',
    value: 'N',
    help: ['most concurrent calls, both listeners together; more get a hangup', '(chan_websocket: HTTP 503; default: unlimited)'],
  },
  'frame-ms': {
    type: 'string',
    value: 'MS',
    help: ['outbound frame duration: 10, 20, 30, 40, 50 or 60 (default 20; 10 from slin44 up)'],
  },
  'no-keepalive': { type: 'boolean', default: false, help: ['do not send silence when there is nothing to send'] },
  inbound: {
    type: 'string',
    value: 'ENC',
    help: ['what kind 0x10 really carries: slin (default), ulaw or alaw', '(a channel driver dialled with c(ulaw)/c(alaw) or without c())'],
  },
  format: {
    type: 'string',
    value: 'NAME',
    help: [
      'what we send to Asterisk: slin (default, every version), or slin12..slin192',
      '(Asterisk 20.17/21.12/22.7/23.1 and later only; see docs/protocol.md#kinds)',
    ],
  },
  metrics: { type: 'string', value: 'HOST:PORT', help: ['serve Prometheus metrics at http://HOST:PORT/metrics (one worker only)'] },
  websocket: {
    type: 'string',
    value: '[HOST:]PORT',
    help: [
      "also serve Asterisk's chan_websocket (Dial(WebSocket/...), ARI externalMedia) on",
      'this second port (HOST: default --host; one worker only; see docs/websocket.md).',
      'Its calls use the format of their MEDIA_START: --inbound, --format, --frame-ms',
      'and --no-keepalive are for AudioSocket only; --allow and --max-calls apply to both.',
      'Credentials: set AUDIOSOCKET_WEBSOCKET_AUTH=user:password (or --websocket-auth-file)',
      'and the same username/password in websocket_client.conf',
    ],
  },
  'websocket-auth-file': {
    type: 'string',
    value: 'FILE',
    help: [
      'require the HTTP Basic credentials in FILE (one line, user:password) on',
      'chan_websocket (instead of AUDIOSOCKET_WEBSOCKET_AUTH); others get HTTP 401',
    ],
  },
  'websocket-tls-cert': {
    type: 'string',
    value: 'FILE',
    help: [
      'serve chan_websocket over TLS (wss://) with this PEM certificate (chain);',
      'needs --websocket-tls-key; SIGHUP reloads both files',
    ],
  },
  'websocket-tls-key': { type: 'string', value: 'FILE', help: ['the PEM private key of --websocket-tls-cert'] },
  'websocket-path': {
    type: 'string',
    value: 'PATH',
    help: [
      'accept chan_websocket only at this request path, e.g. /media (must start',
      'with /; other paths get HTTP 404; default: any path)',
    ],
  },
  monitor: {
    type: 'string',
    value: '[HOST:]PORT',
    help: [
      'serve the live monitor page at http://HOST:PORT/ (HOST: default 127.0.0.1; one',
      'worker only; see docs/monitor.md). On any other address a token is required:',
      'AUDIOSOCKET_MONITOR_TOKEN, or one generated and printed with the URL',
    ],
  },
  'monitor-listen': {
    type: 'boolean',
    default: false,
    help: ["let the monitor page play a call's audio, both directions (needs --monitor)"],
  },
  workers: { type: 'string', default: '1', value: 'N|auto', help: ['run N processes sharing the port (auto: one per core; default 1)'] },
  json: { type: 'boolean', default: false, help: ['one JSON object per event on stdout'] },
  quiet: { type: 'boolean', short: 'q', default: false, help: ['only the listening and closed lines, and errors'] },
  help: { type: 'boolean', short: 'h', default: false, help: ['this help'] },
} as const satisfies OptionTable;

/** The option table of a server command: its own options, then {@link serverOptions}. */
export function withServerOptions<E extends OptionTable>(own: E): E & typeof serverOptions {
  return { ...own, ...serverOptions };
}

export const serverOptionsHelp = `Options:
${optionsHelp(serverOptions)}

Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), 1 on a runtime failure, 2 on a usage
mistake (bad option, unreadable file, port in use).`;

/** Parses an integer option in `min..max`; `what` says what it is for in the error message. */
export function parseIntOption(name: string, value: string | undefined, min: number, max: number, what = ''): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}${what ? ` (${what})` : ''}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Parses a port option: 1..65535, or 0..65535 when `allowZero` (listen on a free port). */
export function parsePortOption(name: string, value: string, allowZero: boolean): number {
  return parseIntOption(name, value, allowZero ? 0 : 1, 65535, allowZero ? '0 picks a free port' : '')!;
}

export const SLIN_FORMATS: Readonly<Record<string, number>> = {
  slin: 8000,
  slin12: 12000,
  slin16: 16000,
  slin24: 24000,
  slin32: 32000,
  slin44: 44100,
  slin48: 48000,
  slin96: 96000,
  slin192: 192000,
};

const FRAME_DURATIONS = [10, 20, 30, 40, 50, 60];

export interface CommonServerArgs {
  workers: number;
  metrics: { host: string; port: number } | undefined;
  /** --monitor: where to serve the monitor page, and its token (required off loopback). */
  monitor: { host: string; port: number; token: string | undefined; listen: boolean } | undefined;
  host: string;
  port: number;
  json: boolean;
  quiet: boolean;
  help: boolean;
  server: ServerOptions;
  /** The files of --websocket-tls-cert/--websocket-tls-key, re-read on SIGHUP. */
  tlsFiles: { cert: string; key: string } | undefined;
}

/**
 * Parses argv for a server command; `options` is its table ({@link withServerOptions}),
 * `positionals` says how many arguments it takes. Every server option is checked here, before
 * anything listens.
 */
export function parseServerArgs(
  argv: string[],
  options: OptionTable & typeof serverOptions,
  positionals: { allowed: number; name: string } = { allowed: 0, name: '' },
): { common: CommonServerArgs; values: ParsedValues; positionals: string[] } {
  const parsed = parseCommandLine(argv, parserOptions(options), positionals);
  const v = parsed.values;
  const help = v.help === true;
  const server: ServerOptions = { keepAlive: !v['no-keepalive'] };
  const common: CommonServerArgs = {
    workers: 1,
    metrics: undefined,
    monitor: undefined,
    host: v.host as string,
    port: 0,
    json: v.json === true,
    quiet: v.quiet === true,
    help,
    server,
    tlsFiles: undefined,
  };
  // --help wins over everything else on the line.
  if (help) return { common, values: v, positionals: parsed.positionals };
  if (common.host === '') throw new UsageError('--host is empty; give an address such as 127.0.0.1, 0.0.0.0 or ::');
  common.port = parsePortOption('port', v.port as string, true);
  const maxCalls = parseIntOption('max-calls', v['max-calls'] as string | undefined, 1, 1_000_000);
  if (maxCalls !== undefined) server.maxCalls = maxCalls;
  if (typeof v.allow === 'string') {
    try {
      createAllowList(v.allow);
    } catch (err) {
      throw new UsageError(`--allow: ${(err as Error).message}; give addresses or CIDR ranges such as 10.0.0.0/8,192.168.1.20,::1`);
    }
    server.allow = v.allow;
  }
  if (typeof v.inbound === 'string') {
    if (!['slin', 'ulaw', 'alaw'].includes(v.inbound))
      throw new UsageError(`--inbound must be slin, ulaw or alaw, got ${JSON.stringify(v.inbound)}`);
    server.inbound = v.inbound as 'slin' | 'ulaw' | 'alaw';
  }
  if (typeof v.format === 'string') {
    const rate = SLIN_FORMATS[v.format];
    if (rate === undefined) {
      throw new UsageError(
        `--format must be one of ${Object.keys(SLIN_FORMATS).join(', ')}, got ${JSON.stringify(v.format)}` +
          (v.format === 'ulaw' || v.format === 'alaw'
            ? ` (a server always sends slin; for ${v.format} from Asterisk use --inbound ${v.format})`
            : ''),
      );
    }
    server.outboundKind = rate;
  }
  if (v['frame-ms'] !== undefined) {
    const text = v['frame-ms'] as string;
    const ms = Number(text);
    if (!/^\d+$/.test(text) || !FRAME_DURATIONS.includes(ms)) {
      throw new UsageError(
        `--frame-ms must be one of ${FRAME_DURATIONS.join(', ')} (Asterisk's slin frame sizes), got ${JSON.stringify(text)}`,
      );
    }
    server.frameMs = ms;
  }
  if (typeof v.metrics === 'string') common.metrics = parseHostPort('metrics', v.metrics, true, '127.0.0.1', 9464);
  common.workers = v.workers === 'auto' ? availableParallelism() : parseIntOption('workers', v.workers as string, 1, 256, 'or auto')!;
  if (typeof v.websocket === 'string') {
    const ws = parseHostPort('websocket', v.websocket, true, common.host, 8765);
    if (ws.port !== 0 && ws.port === common.port) {
      throw new UsageError(
        `--websocket ${v.websocket} is the AudioSocket port too (--port ${common.port}); give chan_websocket its own port, e.g. --websocket 8765`,
      );
    }
    server.websocket = { host: ws.host, port: ws.port };
    if (typeof v['websocket-path'] === 'string') {
      if (!v['websocket-path'].startsWith('/'))
        throw new UsageError(`--websocket-path must start with /, got ${JSON.stringify(v['websocket-path'])}`);
      server.websocket.path = v['websocket-path'];
    }
    if (common.workers > 1) throw new UsageError('--websocket works with one worker only; drop --workers or --websocket');
    const credentials = websocketCredentials(v['websocket-auth-file'] as string | undefined);
    if (credentials !== undefined) server.websocket.credentials = credentials;
    const cert = v['websocket-tls-cert'] as string | undefined;
    const key = v['websocket-tls-key'] as string | undefined;
    if ((cert === undefined) !== (key === undefined)) {
      throw new UsageError(
        `${cert === undefined ? '--websocket-tls-key' : '--websocket-tls-cert'} needs ${cert === undefined ? '--websocket-tls-cert' : '--websocket-tls-key'} too`,
      );
    }
    if (cert !== undefined && key !== undefined) {
      common.tlsFiles = { cert, key };
      server.websocket.tls = readTlsFiles(common.tlsFiles);
    }
  } else {
    for (const o of ['websocket-path', 'websocket-auth-file', 'websocket-tls-cert', 'websocket-tls-key']) {
      if (typeof v[o] === 'string') throw new UsageError(`--${o} needs --websocket [HOST:]PORT`);
    }
  }
  if (typeof v.monitor === 'string') {
    const m = parseHostPort('monitor', v.monitor, true, '127.0.0.1', 8080);
    if (common.workers > 1)
      throw new UsageError('--monitor works with one worker only (each worker has its own calls); drop --workers or --monitor');
    const token = process.env.AUDIOSOCKET_MONITOR_TOKEN;
    common.monitor = {
      host: m.host,
      port: m.port,
      token: token === undefined || token === '' ? undefined : token,
      listen: v['monitor-listen'] === true,
    };
  } else if (v['monitor-listen'] === true) throw new UsageError('--monitor-listen needs --monitor [HOST:]PORT');
  if (common.workers > 1 && common.metrics)
    throw new UsageError('--metrics works with one worker only (each worker has its own counters); drop --workers or --metrics');
  // Each listener needs its own port (0 picks a free one each time).
  const listeners: Array<[string, number | undefined]> = [
    ['--port', common.port],
    ['--websocket', common.server.websocket?.port],
    ['--metrics', common.metrics?.port],
    ['--monitor', common.monitor?.port],
  ];
  for (let i = 0; i < listeners.length; i++) {
    for (let j = i + 1; j < listeners.length; j++) {
      const [a, pa] = listeners[i]!;
      const [b, pb] = listeners[j]!;
      if (pa !== undefined && pa !== 0 && pa === pb) throw new UsageError(`${b} ${pb} is the port of ${a} too; give each its own port`);
    }
  }
  return { common, values: v, positionals: parsed.positionals };
}

/**
 * chan_websocket credentials: from `file` (one line, `user:password`), else from the
 * environment's `AUDIOSOCKET_WEBSOCKET_AUTH`, never from the command line (where `ps` shows it).
 */
function websocketCredentials(file: string | undefined): { username: string; password: string } | undefined {
  let text: string | undefined;
  let where: string;
  if (file !== undefined) {
    where = `--websocket-auth-file ${file}`;
    try {
      text = readFileSync(file, 'utf8').split(/\r?\n/)[0];
    } catch (err) {
      throw new UsageError(`${where}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  } else {
    where = 'AUDIOSOCKET_WEBSOCKET_AUTH';
    text = process.env.AUDIOSOCKET_WEBSOCKET_AUTH;
    if (text === undefined || text === '') return undefined;
  }
  const colon = text?.indexOf(':') ?? -1;
  if (text === undefined || colon <= 0)
    throw new UsageError(`${where} must hold user:password (the username and password of websocket_client.conf)`);
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Reads the certificate and key files; a usage error names the one that cannot be read. */
export function readTlsFiles(files: { cert: string; key: string }): { cert: Buffer; key: Buffer } {
  const read = (option: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new UsageError(`--${option} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  const tls = { cert: read('websocket-tls-cert', files.cert), key: read('websocket-tls-key', files.key) };
  try {
    createSecureContext(tls);
  } catch (err) {
    throw new UsageError(`--websocket-tls-cert/--websocket-tls-key: not a usable PEM certificate and key (${(err as Error).message})`);
  }
  return tls;
}

/**
 * Parses `HOST:PORT`, `[v6]:PORT` or `PORT` given to option `--name`, or to an argument when
 * `name` is a phrase such as "the HOST:PORT argument".
 */
export function parseHostPort(
  name: string,
  text: string,
  allowZero = false,
  defaultHost = '127.0.0.1',
  examplePort = 9092,
): { host: string; port: number } {
  const label = name.includes(' ') ? name : `--${name}`;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):([^:]*)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  if (!m) {
    const hint = /^[\w.-]+$/.test(text) ? `; write ${text}:${examplePort} (host and port)` : '';
    throw new UsageError(
      `${label} must be [HOST:]PORT (e.g. 127.0.0.1:${examplePort} or ${examplePort}), got ${JSON.stringify(text)}${hint}`,
    );
  }
  const portText = m[3]!;
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new UsageError(`${label}: port must be a whole number from ${allowZero ? 0 : 1} to 65535, got ${JSON.stringify(portText)}`);
  }
  return { host: m[1] || m[2] || defaultHost, port };
}
