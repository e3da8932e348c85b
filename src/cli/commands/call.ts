/**
 * `audiosocket call`: a simulated Asterisk for testing a server without a PBX. Streams a WAV or a
 * tone in real time, sends DTMF, records what comes back, and prints a summary per call.
 * `--calls N` runs N calls at once on one drift-free timer (call-run.ts). This file has the help
 * and checks every option before dialling; call-audiosocket.ts and call-websocket.ts dial.
 */
import { randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import {
  audioKindForRate,
  createConverter,
  DTMF_DIGITS,
  isUuid,
  loadResampler,
  sameFormat,
  type AudioFormat,
  type AudioKind,
} from '../../index.js';
import { parseCommandLine, parseHostPort, parseIntOption, parsePortOption, SLIN_FORMATS, UsageError, type OptionSpec } from '../options.js';
import { createOutput } from '../output.js';
import { checkWritableFile, loadWav } from '../files.js';
import { callAudioSocket } from './call-audiosocket.js';
import { recordingPath, type CallPlan, type Digit } from './call-run.js';
import { callWebSocket, parseWebSocketTarget } from './call-websocket.js';

export const callHelp = `Usage: audiosocket call [HOST:PORT] [options]
       audiosocket call --websocket [HOST:]PORT|URL [options]

A simulated Asterisk: connects to an AudioSocket server like Asterisk does (UUID first), streams
audio in real time, sends DTMF, records what the server sends back and prints a summary (frames
each way, inter-arrival jitter, who ended the call, anything a real Asterisk would have rejected).

  HOST:PORT              server to call (default 127.0.0.1:9092; or use --host/--port)
  --host HOST            server host (default 127.0.0.1)
  --port PORT            server port, 1-65535 (default 9092)
  --uuid UUID            UUID to send (default: random; with --calls, the first call gets it)
  --play FILE            stream this WAV file (converted to --format)
  --tone HZ              stream a sine tone instead (default 440 Hz when no --play)
  --format NAME          what to send: slin (default, kind 0x10), slin12 (0x11), slin16 (0x12) ...
                         slin192 (0x18); or ulaw / alaw: G.711 bytes under 0x10, 160 bytes per
                         20 ms, as a Dial(AudioSocket/...) without c() sends them
  --dtmf DIGITS          digits to send: "12#" (one per second from 1 s) or "1@0.5,#@2.5" (at times
                         in s); digits: 0-9 * # A-D a-d X
  --record FILE          save what the server sends as WAV (with --calls N: FILE-1.wav ...)
  --duration S           hang up after S seconds (default: the file's length + 1 s, or 5 s, and
                         at least 1 s after the last DTMF digit)
  --calls N              run N calls at once (default 1)
  --strict               close like current Asterisk on the first message it would reject
  --json                 one JSON object per event on stdout; "call" is the same 1-based number
                         as in the text ("call 1")
  -q, --quiet            only the final summary
  -h, --help             this help

chan_websocket (a simulated Asterisk WebSocket channel, as Dial(WebSocket/...) connects):
  --websocket [HOST:]PORT|URL
                         call a chan_websocket server instead: ws://HOST:PORT/PATH, or
                         [HOST:]PORT (host from --host, default 127.0.0.1) with --websocket-path
  --websocket-path PATH  request path with [HOST:]PORT (default /media)
  --control-format F     plain-text (default, every Asterisk) or json (20.18/22.8/23.2+)
  --format NAME          the channel format, as c() sets it: slin ... slin192, ulaw or alaw;
                         audio goes out in optimal_frame_size frames every 20 ms
  --uuid ID              the channel id in MEDIA_START (any text; default: generated)
  --play, --tone, --dtmf, --record, --duration, --calls, --json, -q work as above; the summary
  counts the frames played to the simulated channel (what the caller hears). --strict and
  --port are for AudioSocket only.

Each summary says who ended the call: "us" (the caller hung up at --duration, or when
interrupted by Ctrl-C or SIGTERM, which it says), "us, --strict"
(we closed on a message Asterisk rejects), "the server (hangup message)" or "the server (closed
without a hangup message)". Received frames are counted as audio or keep-alive: an all-zero frame
is audio when it echoes an all-zero frame we sent within the last second, keep-alive otherwise.

Exit status: 0 when every call completed cleanly; 1 when a call could not connect, or the server
refused it or ended it before sending any audio (allow list, --max-calls, shutting down); 2 on a
usage mistake; 3 when the server sent something a real Asterisk would have rejected; otherwise
130 (Ctrl-C) or 143 (SIGTERM) when the run was interrupted before --duration.`;

/** Parses and checks every digit before anything is dialled. */
function parseDtmf(text: string): Digit[] {
  const check = (digit: string, where: string): void => {
    if (digit.length !== 1 || !DTMF_DIGITS.includes(digit)) {
      throw new UsageError(`--dtmf: ${JSON.stringify(digit)}${where} is not a DTMF digit; use 0-9 * # A-D a-d X`);
    }
  };
  if (text.length === 0) throw new UsageError('--dtmf is empty; give digits such as "12#" or "1@0.5,#@2"');
  if (text.includes('@')) {
    return text.split(',').map((raw) => {
      const part = raw.trim();
      const m = /^(.*)@(.*)$/.exec(part);
      if (!m) throw new UsageError(`--dtmf: expected DIGIT@SECONDS such as 1@0.5, got ${JSON.stringify(part)}`);
      check(m[1]!, ` (in ${JSON.stringify(part)})`);
      if (!/^\d+(?:\.\d+)?$/.test(m[2]!)) throw new UsageError(`--dtmf: the time in ${JSON.stringify(part)} must be seconds such as 0.5`);
      return { digit: m[1]!, atMs: Number(m[2]) * 1000 };
    });
  }
  return [...text].map((digit, i) => {
    check(digit, ` (character ${i + 1})`);
    return { digit, atMs: 1000 * (i + 1) };
  });
}

/** `"1.5"` -> 1500; a positive number of seconds or a usage error. */
function seconds(name: string, text: string): number {
  const n = Number(text);
  if (!/^\d*\.?\d+$/.test(text) || !(n > 0))
    throw new UsageError(`--${name} must be a positive number of seconds such as 2.5, got ${JSON.stringify(text)}`);
  return n * 1000;
}

function makeTone(rate: number, hz: number, seconds: number): Buffer {
  const n = Math.round(rate * seconds);
  const out = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) out.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / rate)), i * 2);
  return out;
}

/**
 * What `call` takes. Its help is written by hand (two transports, options that mean different
 * things on each); test/cli-help.test.ts checks that it names every option here.
 */
export const callOptions = {
  host: { type: 'string' },
  port: { type: 'string' },
  uuid: { type: 'string' },
  play: { type: 'string' },
  tone: { type: 'string' },
  format: { type: 'string', default: 'slin' },
  dtmf: { type: 'string' },
  record: { type: 'string' },
  duration: { type: 'string' },
  calls: { type: 'string', default: '1' },
  strict: { type: 'boolean', default: false },
  websocket: { type: 'string' },
  'websocket-path': { type: 'string' },
  'control-format': { type: 'string' },
  json: { type: 'boolean', default: false },
  quiet: { type: 'boolean', short: 'q', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies OptionSpec;

export async function callCommand(argv: string[]): Promise<void> {
  const { values: v, positionals } = parseCommandLine(argv, callOptions, { allowed: 1, name: 'one HOST:PORT' });
  if (v.help) {
    process.stdout.write(`${callHelp}\n`);
    return;
  }
  const output = createOutput({ json: v.json === true, quiet: v.quiet === true, live: false });

  // Every option is checked here, before anything is dialled.
  let target = { host: '127.0.0.1', port: 9092 };
  const address = positionals[0];
  const websocket =
    v.websocket !== undefined
      ? parseWebSocketTarget(v.websocket as string, {
          host: v.host as string | undefined,
          path: v['websocket-path'] as string | undefined,
          controlFormat: v['control-format'] as string | undefined,
          positional: address,
          port: v.port as string | undefined,
          strict: v.strict === true,
        })
      : undefined;
  if (websocket === undefined) {
    if (v['websocket-path'] !== undefined) throw new UsageError('--websocket-path needs --websocket [HOST:]PORT');
    if (v['control-format'] !== undefined) throw new UsageError('--control-format needs --websocket (it is a chan_websocket option)');
  }
  if (address !== undefined && websocket === undefined) {
    if (/^[\w.-]+$/.test(address) && !/^\d+$/.test(address)) {
      throw new UsageError(
        `server address ${JSON.stringify(address)} has no port: write ${address}:9092 (the HOST:PORT argument), or use --host ${address} --port PORT`,
      );
    }
    target = parseHostPort('the HOST:PORT argument', address);
  }
  if (v.host === '') throw new UsageError('--host is empty; give a host name or address such as 127.0.0.1');
  const host = (v.host as string | undefined) ?? target.host;
  const port = v.port !== undefined ? parsePortOption('port', v.port as string, false) : target.port;
  if (address !== undefined && websocket === undefined) {
    // Two addresses for one server: say so rather than pick one without a word. (PORT or :PORT
    // names no host: `--host H 9092` is one address.)
    const hostClash = v.host !== undefined && !/^:?\d+$/.test(address) && host !== target.host;
    if (hostClash || port !== target.port) {
      const option = hostClash ? `--host ${host}` : `--port ${port}`;
      throw new UsageError(`the HOST:PORT argument says ${address} but ${option} says otherwise; give the address once`);
    }
  }
  const formatName = v.format as string;
  const g711 = formatName === 'ulaw' || formatName === 'alaw' ? formatName : undefined;
  const rate = g711 ? 8000 : SLIN_FORMATS[formatName];
  if (rate === undefined)
    throw new UsageError(`--format must be one of ${Object.keys(SLIN_FORMATS).join(', ')}, ulaw, alaw; got ${JSON.stringify(formatName)}`);
  // G.711 travels under 0x10, mislabelled as slin, exactly as the channel driver sends it without c().
  const kind = audioKindForRate(rate) as AudioKind;
  const calls = parseIntOption('calls', v.calls as string, 1, 100000)!;
  if (v.uuid !== undefined && websocket === undefined && !isUuid(v.uuid as string)) {
    throw new UsageError(`--uuid: not a UUID: ${JSON.stringify(v.uuid)}; use the 8-4-4-4-12 hex form, e.g. ${randomUUID()}`);
  }
  if (v.play !== undefined && v.tone !== undefined) throw new UsageError('--play and --tone both given; pick one');
  const digits = v.dtmf !== undefined ? parseDtmf(v.dtmf as string) : [];
  let hz = 440;
  if (v.tone !== undefined) {
    hz = Number(v.tone);
    if (!/^\d*\.?\d+$/.test(v.tone as string) || !(hz > 0 && hz < rate / 2)) {
      throw new UsageError(
        `--tone must be a frequency in Hz above 0 and below ${rate / 2} (half of ${rate} Hz), got ${JSON.stringify(v.tone)}`,
      );
    }
  }
  const explicitDuration = v.duration !== undefined ? seconds('duration', v.duration as string) : undefined;
  const lastDigitMs = digits.reduce((max, d) => Math.max(max, d.atMs), -1);
  if (explicitDuration !== undefined && lastDigitMs >= explicitDuration) {
    const late = digits.filter((d) => d.atMs >= explicitDuration).map((d) => `${d.digit}@${d.atMs / 1000}`);
    throw new UsageError(
      `--dtmf: ${late.join(', ')} would come after the call ends at --duration ${explicitDuration / 1000}; lengthen --duration or send the digits earlier`,
    );
  }
  if (v.record !== undefined) {
    if (v.play !== undefined) {
      // Through symbolic links: the file itself, wherever the two paths lead.
      const real = (path: string): string => {
        try {
          return realpathSync(path);
        } catch {
          return resolve(path);
        }
      };
      const play = real(v.play as string);
      const dir = real(dirname(v.record as string));
      for (let n = 1; n <= calls; n++) {
        const path = recordingPath(v.record as string, n, calls);
        let target: string;
        try {
          target = realpathSync(path); // an existing file, or a link to one
        } catch {
          target = join(dir, basename(path));
        }
        if (target === play) {
          throw new UsageError(`--record ${v.record as string} would write ${path}, the file --play reads; record to another file`);
        }
      }
    }
    await checkWritableFile(v.record as string, '--record');
  }
  const sendFormat: AudioFormat = { encoding: g711 ?? 'slin', sampleRate: rate, channels: 1 };
  const bytesPerSample = g711 ? 1 : 2;

  // The audio to send, once for all calls, in the wire format.
  let audio: Buffer;
  let sourceSeconds: number | undefined;
  const convert = async (from: AudioFormat, data: Buffer): Promise<Buffer> => {
    if (sameFormat(from, sendFormat)) return data;
    await loadResampler();
    const conv = createConverter(from, sendFormat);
    const out = Buffer.concat([conv.push(data), conv.flush()]);
    conv.dispose();
    return out;
  };
  if (v.play !== undefined) {
    const wav = await loadWav(v.play as string, '--play', (line) => output.warn(line));
    audio = await convert(wav.format, wav.data);
    sourceSeconds = audio.length / bytesPerSample / rate;
  } else {
    audio = await convert({ encoding: 'slin', sampleRate: rate, channels: 1 }, makeTone(rate, hz, 1)); // looped
  }
  const durationMs = explicitDuration ?? Math.max(sourceSeconds !== undefined ? sourceSeconds * 1000 + 1000 : 5000, lastDigitMs + 1000);
  const plan: CallPlan = {
    calls,
    format: formatName,
    sendFormat,
    audio,
    loop: sourceSeconds === undefined,
    frameBytes: Math.round((rate * 20) / 1000) * bytesPerSample,
    durationMs,
    digits,
    record: v.record as string | undefined,
    json: v.json === true,
    quiet: v.quiet === true,
    output,
  };
  const uuid = v.uuid as string | undefined;
  process.exitCode =
    websocket !== undefined
      ? await callWebSocket(plan, { target: websocket, channelId: uuid })
      : await callAudioSocket(plan, { host, port, uuid, strict: v.strict === true, kind });
}
