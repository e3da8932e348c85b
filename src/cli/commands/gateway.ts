/**
 * `audiosocket gateway --bot URL`: every call, over either driver, is bridged to a voice bot
 * that speaks Twilio Media Streams (docs/gateway.md).
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { bridgeCall, callParameters, type BridgeOptions, type Call } from '../../index.js';
import {
  optionsHelp,
  parseIntOption,
  parseServerArgs,
  serverOptionsHelp,
  UsageError,
  withServerOptions,
  type OptionTable,
} from '../options.js';
import { createOutput } from '../output.js';
import { runServer } from '../run-server.js';
import { loadWav } from '../files.js';

const ownOptions = {
  bot: {
    type: 'string',
    value: 'URL',
    help: ["the bot's WebSocket URL, ws://HOST:PORT/PATH or wss://...; required"],
  },
  param: {
    type: 'string',
    multiple: true,
    value: 'NAME=VALUE',
    help: [
      "a custom parameter of the bot's start message (repeatable); the bot also",
      'gets uuid, transport, remoteAddress and, on chan_websocket, the channel',
      "variables and the URL's query parameters",
    ],
  },
  header: {
    type: 'string',
    multiple: true,
    value: '"NAME: VALUE"',
    help: ['a header of the request to the bot (repeatable),', 'e.g. "Authorization: Bearer ..."'],
  },
  'bot-ca': { type: 'string', value: 'FILE', help: ['PEM certificate(s) to trust for a wss:// bot (a private CA)'] },
  'connect-buffer': {
    type: 'string',
    value: 'MS',
    help: [
      'caller audio kept while the bot connects, sent after start (default 1000;',
      '0 drops it: for an echo bot, where it would stay as latency)',
    ],
  },
  fallback: {
    type: 'string',
    value: 'FILE',
    help: ['a WAV the caller hears when the bot cannot be reached, before the hangup'],
  },
} as const satisfies OptionTable;

/** What `gateway` takes: its own options, then the server options. */
export const gatewayOptions = withServerOptions(ownOptions);

export const gatewayHelp = `Usage: audiosocket gateway --bot ws(s)://HOST:PORT/PATH [--param NAME=VALUE ...] [--header "NAME: VALUE" ...] [options]

Every call (AudioSocket, and chan_websocket with --websocket) is bridged to a voice bot that
speaks Twilio Media Streams, unchanged: the bot hears the caller as 20 ms mu-law chunks and DTMF;
its audio is converted, framed and paced to the caller; its marks come back once their audio has
played; clear stops it at once. The bot closing its socket hangs up the call (after what it sent
has played); the caller hanging up sends the bot stop. One line per call, per bot connection and
per end, with the reason. See docs/gateway.md.

${optionsHelp(ownOptions)}

${serverOptionsHelp}`;

function parsePairs(option: string, values: readonly string[], separator: string, example: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const text of values) {
    const at = text.indexOf(separator);
    const name = at > 0 ? text.slice(0, at).trim() : '';
    if (name === '') throw new UsageError(`--${option} ${JSON.stringify(text)}: write it as ${example}`);
    out[name] = text.slice(at + separator.length).trim();
  }
  return out;
}

/** Checks the bot URL the way the bridge will use it, with a hint for the usual slips. */
function parseBotUrl(text: string | undefined): string {
  if (text === undefined) throw new UsageError('no bot given: audiosocket gateway --bot ws://HOST:PORT/PATH');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--bot ${JSON.stringify(text)} is not a URL; write it as ws://HOST:PORT/PATH or wss://HOST/PATH`);
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    throw new UsageError(
      `--bot ${text}: a bot is reached over WebSocket; use ${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}${url.pathname}`,
    );
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new UsageError(`--bot ${text}: the URL must start with ws:// or wss://`);
  return url.toString();
}

/** A TCP connection to the bot's host and port (no WebSocket, so the bot sees no call): why it fails, if it does. */
function probeBot(url: string): Promise<string | undefined> {
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === 'wss:' ? 443 : 80));
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port, timeout: 5000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('no answer in 5 s');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

export async function gatewayCommand(argv: string[]): Promise<void> {
  const { common, values } = parseServerArgs(argv, gatewayOptions);
  if (common.help) {
    process.stdout.write(`${gatewayHelp}\n`);
    return;
  }
  const url = parseBotUrl(values.bot as string | undefined);
  const params = parsePairs('param', (values.param as string[] | undefined) ?? [], '=', 'NAME=VALUE');
  const headers = parsePairs('header', (values.header as string[] | undefined) ?? [], ':', '"NAME: VALUE"');
  const options: BridgeOptions = { url, headers, parameters: (call: Call) => ({ ...callParameters(call), ...params }) };
  const connectBuffer = parseIntOption('connect-buffer', values['connect-buffer'] as string | undefined, 0, 60_000);
  if (connectBuffer !== undefined) options.connectBufferMs = connectBuffer;
  const ca = values['bot-ca'] as string | undefined;
  if (ca !== undefined) {
    try {
      options.tls = { ca: readFileSync(ca) };
    } catch (err) {
      throw new UsageError(`--bot-ca ${ca}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  const fallback = values.fallback as string | undefined;
  if (fallback !== undefined) {
    // A bad file is a usage problem: say so before listening.
    await loadWav(fallback, '--fallback', (line) => createOutput(common).warn(line));
    options.fallbackFile = fallback;
  }

  const output = createOutput(common);
  void probeBot(url).then((problem) => {
    if (problem !== undefined) output.warn(`bot ${url} is not reachable now (${problem}); calls are hung up until it is`);
  });
  const running = await runServer(
    'gateway',
    common,
    (call) => {
      const bridge = bridgeCall(call, options);
      bridge.on('botConnected', ({ ids, connectMs }) =>
        output.event(
          'botConnected',
          { uuid: call.uuid, url, ...ids, connectMs: Math.round(connectMs) },
          `bot  ${call.uuid} connected to ${url} in ${Math.round(connectMs)} ms (${Object.entries(ids)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')})`,
        ),
      );
      bridge.on('warning', (w) =>
        output.event(
          'botWarning',
          { uuid: call.uuid, code: w.code, message: w.message, droppedMs: w.droppedMs },
          `warn ${call.uuid} ${w.message}`,
        ),
      );
      bridge.on('end', (end) => {
        const s = end.stats;
        output.event(
          'botEnd',
          { uuid: call.uuid, reason: end.reason, detail: end.detail, ...s },
          `bot  ${call.uuid} ${end.reason}: ${end.detail} (to bot ${s.chunksToBot} chunks, from bot ${Math.round(s.botAudioMs)} ms` +
            `${s.marks ? `, marks ${s.marksEchoed}/${s.marks}` : ''}${s.clears ? `, clears ${s.clears}` : ''}` +
            `${s.callerDroppedMs ? `, caller audio dropped ${s.callerDroppedMs} ms` : ''})`,
        );
      });
      return bridge.closed;
    },
    { output },
  );
  await running.done;
}
