/**
 * `audiosocket call HOST:PORT`: a simulated Asterisk for testing a server without a PBX. Sends a
 * UUID, streams a WAV or a tone in real time, sends DTMF, records what comes back, and prints a
 * summary per call. `--calls N` runs N calls at once on one drift-free timer. Every option is
 * checked before dialling.
 */
import { randomUUID } from 'node:crypto';
import {
  audioKindForRate,
  connect,
  createConverter,
  DTMF_DIGITS,
  isUuid,
  loadResampler,
  sameFormat,
  type AsteriskClient,
  type AudioFormat,
  type AudioKind,
  type ClientClose,
} from '../../index.js';
import { parseCommandLine, parseHostPort, parseIntOption, parsePortOption, SLIN_FORMATS, UsageError, type OptionSpec } from '../options.js';
import { createOutput } from '../output.js';
import { IntervalStats } from '../stats.js';
import { finishRecordings, LazyWavRecorder } from '../recorder.js';
import { checkWritableFile, loadWav } from '../files.js';
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

Each summary says who ended the call: "us" (the caller hung up at --duration), "us, --strict"
(we closed on a message Asterisk rejects), "the server (hangup message)" or "the server (closed
without a hangup message)". Received frames are counted as audio or keep-alive: an all-zero frame
is audio when it echoes an all-zero frame we sent within the last second, keep-alive otherwise.

Exit status: 0 when every call completed cleanly; 1 when a call could not connect, or the server
refused it or ended it before sending any audio (allow list, --max-calls, shutting down); 2 on a
usage mistake; 3 when the server sent something a real Asterisk would have rejected.`;

interface Digit {
  digit: string;
  atMs: number;
}

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

function allZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** How long an all-zero frame we sent may take to come back and still count as its echo. */
const ECHO_WINDOW_MS = 1000;

interface Leg {
  /** 1-based, in the text and in JSON. */
  number: number;
  uuid: string;
  client?: AsteriskClient;
  offset: number;
  framesSent: number;
  audioIn: number;
  keepAliveIn: number;
  /** When we sent all-zero frames not yet matched by an all-zero frame coming back. */
  zeroSent: number[];
  arrivals: IntervalStats;
  nextDigit: number;
  recorder?: LazyWavRecorder;
  close?: ClientClose;
  /** Under --strict: the violation we closed the connection on. */
  strictClose?: string;
  error?: string;
  /** Set when the server refused the call or ended it before sending any audio. */
  refused?: string;
}

const FATAL_UNDER_STRICT = new Set(['ZERO_LENGTH_AUDIO', 'FORBIDDEN_KIND', 'SPLIT_MESSAGE', 'TRUNCATED']);

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
        `--tone must be a frequency in Hz between 0 and ${rate / 2} (half of ${rate} Hz), got ${JSON.stringify(v.tone)}`,
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
  if (v.record !== undefined) await checkWritableFile(v.record as string, '--record');
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
  const frameMs = 20;
  const frameBytes = Math.round((rate * frameMs) / 1000) * bytesPerSample;
  const strict = v.strict === true;
  if (websocket !== undefined) {
    process.exitCode = await callWebSocket({
      target: websocket,
      format: formatName,
      sendFormat,
      audio,
      loop: sourceSeconds === undefined,
      frameBytes,
      durationMs,
      digits,
      calls,
      channelId: v.uuid as string | undefined,
      record: v.record as string | undefined,
      quiet: v.quiet === true,
      output,
    });
    return;
  }

  const legs: Leg[] = Array.from({ length: calls }, (_, i) => ({
    number: i + 1,
    uuid: i === 0 && v.uuid !== undefined ? (v.uuid as string) : randomUUID(),
    offset: 0,
    framesSent: 0,
    audioIn: 0,
    keepAliveIn: 0,
    zeroSent: [],
    arrivals: new IntervalStats(),
    nextDigit: 0,
  }));

  const record = v.record as string | undefined;
  const recordPath = (n: number): string => (calls === 1 ? record! : record!.replace(/(\.wav)?$/i, (ext) => `-${n}${ext || '.wav'}`));

  // Connect everyone (in batches, so a thousand calls do not all hit the accept queue at once).
  const t0 = performance.now();
  for (let i = 0; i < legs.length; i += 50) {
    await Promise.all(
      legs.slice(i, i + 50).map(async (leg) => {
        try {
          const client = await connect({ host, port, uuid: leg.uuid, strict });
          leg.client = client;
          if (record !== undefined) leg.recorder = new LazyWavRecorder(recordPath(leg.number));
          client.on('audio', (frame) => {
            const now = performance.now();
            leg.arrivals.arrival(now);
            if (allZero(frame.payload)) {
              // An all-zero frame is the echo of one of ours (quiet speech, digital silence) when
              // we sent one recently; otherwise it is the server's keep-alive.
              while (leg.zeroSent.length > 0 && leg.zeroSent[0]! < now - ECHO_WINDOW_MS) leg.zeroSent.shift();
              if (leg.zeroSent.length > 0) {
                leg.zeroSent.shift();
                leg.audioIn++;
              } else leg.keepAliveIn++;
            } else leg.audioIn++;
            leg.recorder?.push(frame.payload, frame.sampleRate);
          });
          client.on('violation', (viol) => {
            if (strict && leg.strictClose === undefined && FATAL_UNDER_STRICT.has(viol.code)) leg.strictClose = viol.code;
            output.event('violation', { call: leg.number, uuid: leg.uuid, ...viol }, `call ${leg.number}: ${viol.code}: ${viol.message}`);
          });
          client.on('hangup', () => output.event('hangup', { call: leg.number, uuid: leg.uuid }, `call ${leg.number}: server hung up`));
          void client.closed.then((c) => (leg.close = c));
          output.event('connected', { call: leg.number, uuid: leg.uuid }, `call ${leg.number} ${leg.uuid} connected to ${host}:${port}`);
        } catch (err) {
          leg.error = (err as Error).message;
          const cause = (err as Error & { cause?: NodeJS.ErrnoException }).cause?.code;
          const hint =
            cause === 'ECONNREFUSED'
              ? `; is a server listening there? (try: audiosocket echo --port ${port})`
              : cause === 'ENOTFOUND' || cause === 'EAI_AGAIN'
                ? '; unknown host name, use an IP address such as 127.0.0.1'
                : '';
          output.error(`call ${leg.number}: ${leg.error}${hint}`, { call: leg.number });
        }
      }),
    );
  }

  // One drift-free timer sends frame k of every call at start + k * 20 ms.
  const start = performance.now();
  let stopped = false;
  const loopOnce = sourceSeconds === undefined;
  await new Promise<void>((resolve) => {
    const onSignal = (): void => {
      stopped = true;
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let k = 0;
    const tick = (): void => {
      const elapsed = performance.now() - start;
      const live = legs.filter((l) => l.client?.connected);
      if (stopped || elapsed >= durationMs || live.length === 0) {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        resolve();
        return;
      }
      for (const leg of live) {
        const client = leg.client!;
        while (leg.nextDigit < digits.length && digits[leg.nextDigit]!.atMs <= elapsed) client.sendDtmf(digits[leg.nextDigit++]!.digit);
        if (leg.offset >= audio.length) {
          if (!loopOnce) continue; // the file is over: stay on the line until the duration ends
          leg.offset = 0;
        }
        let frame = audio.subarray(leg.offset, leg.offset + frameBytes);
        leg.offset += frameBytes;
        if (!g711 && frame.length % 2) frame = frame.subarray(0, frame.length - 1);
        if (frame.length > 0) {
          if (allZero(frame)) leg.zeroSent.push(performance.now());
          client.sendAudio(frame, kind);
          leg.framesSent++;
        }
      }
      k = Math.max(k + 1, Math.floor((performance.now() - start) / frameMs));
      setTimeout(tick, Math.max(0, start + k * frameMs - performance.now()));
    };
    tick();
  });

  // Hang up the calls still up (like a caller hanging up), then finalise recordings.
  // Legs that never connected contribute undefined, which Promise.all passes through.
  // eslint-disable-next-line @typescript-eslint/await-thenable
  const closes = await Promise.all(legs.map((leg) => (leg.client?.connected ? leg.client.hangup() : leg.client?.closed)));
  legs.forEach((leg, i) => (leg.close = closes[i] ?? leg.close));
  const recorded = await finishRecordings(legs, output);
  const elapsed = (performance.now() - t0) / 1000;

  let violations = 0;
  let failed = 0;
  let refused = 0;
  for (const leg of legs) {
    const v2 = leg.client?.violations.length ?? 0;
    violations += v2;
    const by = leg.error
      ? 'error'
      : leg.strictClose !== undefined && leg.close?.by !== 'server-hangup'
        ? 'client-strict'
        : (leg.close?.by ?? 'unknown');
    const received = leg.audioIn + leg.keepAliveIn;
    if (leg.error) failed++;
    else if (received === 0 && (by === 'server-hangup' || by === 'server-close' || by === 'error')) {
      refused++;
      leg.refused =
        by === 'server-hangup'
          ? 'the server hung up before sending any audio (refused: --max-calls reached, or its handler ended the call at once)'
          : `the server closed the connection before sending any audio (refused: not in its --allow list, or shutting down${leg.close?.error ? `; ${leg.close.error.message}` : ''})`;
    }
    const byText: Record<string, string> = {
      client: 'us (the caller hung up)',
      'client-strict': `us, --strict: closed on ${leg.strictClose} as Asterisk would`,
      'server-hangup': 'the server (hangup message)',
      'server-close': 'the server (closed without a hangup message)',
      error: `a socket error${leg.error ? `: ${leg.error}` : leg.close?.error ? `: ${leg.close.error.message}` : ''}`,
      unknown: 'unknown',
    };
    const t = leg.arrivals.summary();
    output.event(
      'summary',
      {
        call: leg.number,
        uuid: leg.uuid,
        framesSent: leg.framesSent,
        audioFramesReceived: leg.audioIn,
        keepAliveFramesReceived: leg.keepAliveIn,
        interArrival: t,
        endedBy: by === 'client-strict' ? 'client' : by,
        strictClose: leg.strictClose,
        refused: leg.refused,
        violations: v2,
        error: leg.error,
        record: recorded[leg.number - 1] ? recordPath(leg.number) : undefined,
      },
      // A call that never connected has said why already, in one line.
      leg.client === undefined
        ? ''
        : `call ${leg.number} ${leg.uuid}: sent ${leg.framesSent} frames, received ${leg.audioIn} audio + ${leg.keepAliveIn} keep-alive; ` +
            `inter-arrival p50 ${t.p50Ms} p99 ${t.p99Ms} max ${t.maxMs} ms; ended by ${byText[by]}` +
            (v2 ? `; ${v2} violation(s)` : ''),
    );
    if (leg.refused) output.error(`call ${leg.number}: ${leg.refused}`, { call: leg.number });
    else if (!leg.error && received === 0)
      output.warn(`call ${leg.number}: the server sent no audio at all (is its keep-alive off?)`, { call: leg.number });
  }
  if (calls > 1 || v.quiet) {
    // The result of the run: on stdout, so `x=$(audiosocket call -q ...)` gets it.
    const totals = { calls, seconds: Number(elapsed.toFixed(1)), connected: calls - failed - refused, failed, refused, violations };
    const line = `${calls} call(s) in ${elapsed.toFixed(1)} s: ${totals.connected} connected, ${failed} failed, ${refused} refused, ${violations} violation(s)`;
    if (v.json === true) output.event('totals', totals, line);
    else process.stdout.write(`${line}\n`);
  }
  process.exitCode = failed > 0 || refused > 0 ? 1 : violations > 0 ? 3 : 0;
}
