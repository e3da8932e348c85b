/**
 * `audiosocket call HOST:PORT`: a simulated Asterisk for testing a server without a PBX. Sends a
 * UUID, streams a WAV or a tone in real time, sends DTMF, records what comes back, and prints a
 * summary per call. `--calls N` runs N calls at once on one drift-free timer.
 */
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import {
  audioKindForRate,
  connect,
  createConverter,
  isUuid,
  loadResampler,
  readWavFile,
  sameFormat,
  type AsteriskClient,
  type AudioFormat,
  type AudioKind,
  type ClientClose,
} from '../../index.js';
import { parseHostPort, parseIntOption, UsageError } from '../options.js';
import { createOutput } from '../output.js';
import { IntervalStats } from '../stats.js';
import { LazyWavRecorder } from '../recorder.js';

export const callHelp = `Usage: audiosocket call [HOST:PORT] [options]

A simulated Asterisk: connects to an AudioSocket server like Asterisk does (UUID first), streams
audio in real time, sends DTMF, records what the server sends back and prints a summary (frames
each way, inter-arrival jitter, who hung up, anything a real Asterisk would have rejected).

  HOST:PORT              server to call (default 127.0.0.1:9092; or use --host/--port)
  --host HOST            server host (default 127.0.0.1)
  --port PORT            server port (default 9092)
  --uuid UUID            UUID to send (default: random; with --calls, each call gets its own)
  --play FILE            stream this WAV file (converted to --format)
  --tone HZ              stream a sine tone instead (default 440 Hz when no --play)
  --format NAME          what to send: slin (default, kind 0x10), slin16 (0x12), ... slin192
  --dtmf DIGITS          digits to send: "12#" (one per second from 1 s) or "1@0.5,#@2.5" (at times in s)
  --record FILE          save what the server sends as WAV (with --calls N: FILE-1.wav ...)
  --duration S           hang up after S seconds (default: the file's length + 1 s, or 5 s)
  --calls N              run N calls at once (default 1)
  --strict               close like current Asterisk on the first message it would reject
  --json                 one JSON object per event on stdout
  -q, --quiet            only the final summary
  -h, --help             this help

Exit status: 0 when every call completed cleanly, 1 on a connection error, 3 when the server
sent something a real Asterisk would have rejected.`;

const RATES: Record<string, number> = { slin: 8000, slin12: 12000, slin16: 16000, slin24: 24000, slin32: 32000, slin44: 44100, slin48: 48000, slin96: 96000, slin192: 192000 };

interface Digit {
  digit: string;
  atMs: number;
}

function parseDtmf(text: string): Digit[] {
  if (text.includes('@')) {
    return text.split(',').map((part) => {
      const m = /^(.)@(\d+(?:\.\d+)?)$/.exec(part.trim());
      if (!m) throw new UsageError(`--dtmf: expected DIGIT@SECONDS, got ${JSON.stringify(part)}`);
      return { digit: m[1]!, atMs: Number(m[2]) * 1000 };
    });
  }
  return [...text].map((digit, i) => ({ digit, atMs: 1000 * (i + 1) }));
}

function makeTone(rate: number, hz: number, seconds: number): Buffer {
  const n = Math.round(rate * seconds);
  const out = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) out.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / rate)), i * 2);
  return out;
}

interface Leg {
  index: number;
  uuid: string;
  client?: AsteriskClient;
  offset: number;
  framesSent: number;
  audioIn: number;
  silenceIn: number;
  arrivals: IntervalStats;
  nextDigit: number;
  recorder?: LazyWavRecorder;
  close?: ClientClose;
  error?: string;
}

export async function callCommand(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
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
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', short: 'q', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(`${callHelp}\n`);
    return;
  }
  const target = parsed.positionals[0] !== undefined ? parseHostPort('target', parsed.positionals[0]) : { host: '127.0.0.1', port: 9092 };
  const host = v.host ?? target.host;
  const port = v.port !== undefined ? parseIntOption('port', v.port, 1, 65535)! : target.port;
  const rate = RATES[v.format!];
  if (rate === undefined) throw new UsageError(`--format must be one of ${Object.keys(RATES).join(', ')}`);
  const kind = audioKindForRate(rate) as AudioKind;
  const calls = parseIntOption('calls', v.calls, 1, 100000)!;
  if (v.uuid !== undefined && !isUuid(v.uuid)) throw new UsageError(`--uuid: not a UUID: ${JSON.stringify(v.uuid)}`);
  const digits = v.dtmf !== undefined ? parseDtmf(v.dtmf) : [];
  const sendFormat: AudioFormat = { encoding: 'slin', sampleRate: rate, channels: 1 };
  const output = createOutput({ json: v.json === true, quiet: v.quiet === true });

  // The audio to send, once for all calls, in the wire format.
  let audio: Buffer;
  let sourceSeconds: number | undefined;
  if (v.play !== undefined) {
    let wav;
    try {
      wav = await readWavFile(v.play);
    } catch (err) {
      throw new UsageError(`cannot play ${v.play}: ${(err as Error).message}`);
    }
    if (sameFormat(wav.format, sendFormat)) audio = wav.data;
    else {
      await loadResampler();
      const conv = createConverter(wav.format, sendFormat);
      audio = Buffer.concat([conv.push(wav.data), conv.flush()]);
      conv.dispose();
    }
    sourceSeconds = audio.length / 2 / rate;
  } else {
    const hz = v.tone === undefined ? 440 : Number(v.tone);
    if (!(hz > 0 && hz < rate / 2)) throw new UsageError(`--tone must be between 0 and ${rate / 2} Hz`);
    audio = makeTone(rate, hz, 1); // looped
  }
  const durationMs =
    v.duration !== undefined ? Number(v.duration) * 1000 : sourceSeconds !== undefined ? sourceSeconds * 1000 + 1000 : 5000;
  if (!(durationMs > 0)) throw new UsageError('--duration must be a positive number of seconds');
  const frameMs = 20;
  const frameBytes = Math.round((rate * frameMs) / 1000) * 2;

  const legs: Leg[] = Array.from({ length: calls }, (_, i) => ({
    index: i,
    uuid: calls === 1 && v.uuid !== undefined ? v.uuid : i === 0 && v.uuid !== undefined ? v.uuid : randomUUID(),
    offset: 0,
    framesSent: 0,
    audioIn: 0,
    silenceIn: 0,
    arrivals: new IntervalStats(),
    nextDigit: 0,
  }));

  const recordPath = (i: number): string =>
    calls === 1 ? v.record! : v.record!.replace(/(\.wav)?$/i, (ext) => `-${i + 1}${ext || '.wav'}`);

  // Connect everyone (in batches, so a thousand calls do not all hit the accept queue at once).
  const t0 = performance.now();
  for (let i = 0; i < legs.length; i += 50) {
    await Promise.all(
      legs.slice(i, i + 50).map(async (leg) => {
        try {
          const client = await connect({ host, port, uuid: leg.uuid, strict: v.strict === true });
          leg.client = client;
          if (v.record !== undefined) leg.recorder = new LazyWavRecorder(recordPath(leg.index));
          client.on('audio', (frame) => {
            leg.arrivals.arrival(performance.now());
            if (frame.payload.every((b) => b === 0)) leg.silenceIn++;
            else leg.audioIn++;
            leg.recorder?.push(frame.payload, frame.sampleRate);
          });
          client.on('violation', (viol) => output.event('violation', { call: leg.index, uuid: leg.uuid, ...viol }, `call ${leg.index + 1}: ${viol.code}: ${viol.message}`));
          client.on('hangup', () => output.event('hangup', { call: leg.index, uuid: leg.uuid }, `call ${leg.index + 1}: server hung up`));
          void client.closed.then((c) => (leg.close = c));
          output.event('connected', { call: leg.index, uuid: leg.uuid }, `call ${leg.index + 1} ${leg.uuid} connected to ${host}:${port}`);
        } catch (err) {
          leg.error = (err as Error).message;
          output.error(`call ${leg.index + 1}: ${leg.error}`);
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
        const frame = audio.subarray(leg.offset, leg.offset + frameBytes);
        leg.offset += frameBytes;
        if (frame.length > 0) {
          client.sendAudio(frame.length % 2 ? frame.subarray(0, frame.length - 1) : frame, kind);
          leg.framesSent++;
        }
      }
      k = Math.max(k + 1, Math.floor((performance.now() - start) / frameMs));
      setTimeout(tick, Math.max(0, start + k * frameMs - performance.now()));
    };
    tick();
  });

  // Hang up the calls still up (like a caller hanging up), then finalise recordings.
  await Promise.all(legs.map((leg) => (leg.client?.connected ? leg.client.close() : leg.client?.closed)));
  await new Promise((r) => setTimeout(r, 50));
  const recorded = await Promise.all(
    legs.map((leg) =>
      (leg.recorder?.close() ?? Promise.resolve(false)).catch((err: Error) => {
        output.error(`call ${leg.index + 1}: recording to ${leg.recorder!.path} failed: ${err.message}`);
        return false;
      }),
    ),
  );
  const elapsed = (performance.now() - t0) / 1000;

  let violations = 0;
  let failed = 0;
  for (const leg of legs) {
    const v2 = leg.client?.violations.length ?? 0;
    violations += v2;
    if (leg.error) failed++;
    const t = leg.arrivals.summary();
    output.event(
      'summary',
      {
        call: leg.index,
        uuid: leg.uuid,
        framesSent: leg.framesSent,
        audioFramesReceived: leg.audioIn,
        silenceFramesReceived: leg.silenceIn,
        interArrival: t,
        endedBy: leg.close?.by ?? (leg.error ? 'error' : 'unknown'),
        violations: v2,
        error: leg.error,
        record: recorded[leg.index] ? recordPath(leg.index) : undefined,
      },
      `call ${leg.index + 1} ${leg.uuid}: sent ${leg.framesSent} frames, received ${leg.audioIn} audio + ${leg.silenceIn} silence; ` +
        `inter-arrival p50 ${t.p50Ms} p99 ${t.p99Ms} max ${t.maxMs} ms; ended by ${leg.close?.by ?? leg.error ?? 'unknown'}` +
        (v2 ? `; ${v2} violation(s)` : ''),
    );
  }
  if (calls > 1 || v.quiet) {
    process.stderr.write(
      `${calls} call(s) in ${elapsed.toFixed(1)} s: ${calls - failed} connected, ${failed} failed, ${violations} violation(s)\n`,
    );
  }
  process.exitCode = failed > 0 ? 1 : violations > 0 ? 3 : 0;
}
