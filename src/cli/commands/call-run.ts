/**
 * What `audiosocket call` does the same on both transports: dial N calls in batches, send frame k
 * of every call (and its DTMF digits) at start + k x 20 ms on one drift-free timer until the
 * duration ends, hang up the calls still up and finish the recordings. The transports
 * (call-audiosocket.ts, call-websocket.ts) dial, send a frame and summarise.
 */
import { constants as osConstants } from 'node:os';
import { createConverter, type AudioFormat, type Converter } from '../../index.js';
import { isLoopback } from '../../admission.js';
import type { Output } from '../output.js';
import { IntervalStats } from '../stats.js';
import { finishRecordings, LazyWavRecorder } from '../recorder.js';

/** Where call `n` of `calls` records for `--record FILE`: FILE itself for one call, else FILE-n.wav. */
export function recordingPath(record: string, n: number, calls: number): string {
  return calls === 1 ? record : record.replace(/(\.wav)?$/i, (ext) => `-${n}${ext || '.wav'}`);
}

/** A DTMF digit and when to send it, ms after the calls start. */
export interface Digit {
  digit: string;
  atMs: number;
}

/** What every call of a run sends, and how the run is reported; checked before anything is dialled. */
export interface CallPlan {
  calls: number;
  /** The `--format` name. */
  format: string;
  /** What `audio` is in. */
  sendFormat: AudioFormat;
  /** The audio to send, in `sendFormat`. */
  audio: Buffer;
  /** Start `audio` again when it ends (a tone); otherwise stay on the line silent. */
  loop: boolean;
  /** Bytes of `audio` per 20 ms frame. */
  frameBytes: number;
  durationMs: number;
  digits: Digit[];
  /** `--record`: where to save what each call hears. */
  record: string | undefined;
  json: boolean;
  quiet: boolean;
  output: Output;
}

/** A simulated client of either transport, as the run drives it. */
interface Dialled {
  readonly connected: boolean;
  readonly closed: Promise<unknown>;
  sendDtmf(digit: string): boolean;
  hangup(): Promise<unknown>;
}

/** One call of a run. */
export interface Leg<C extends Dialled> {
  /** 1-based, in the text and in JSON. */
  number: number;
  client?: C;
  offset: number;
  framesSent: number;
  arrivals: IntervalStats;
  nextDigit: number;
  recorder?: LazyWavRecorder;
  close?: Awaited<C['closed']>;
  error?: string;
  /** Set when the server refused the call or ended it before sending any audio. */
  refused?: string;
  /** Not dialled: the run was interrupted before its turn. */
  skipped?: boolean;
}

/**
 * What to say when nothing listens at `host:port`: the command that starts a server there, when
 * that is this machine (a server listens on 127.0.0.1 unless told otherwise), else where to look.
 */
export function refusedHint(host: string, port: number, transport: 'audiosocket' | 'websocket'): string {
  const h = host.replace(/^\[|\]$/g, '');
  const listen = (at: string | undefined): string =>
    transport === 'audiosocket'
      ? `audiosocket echo${at === undefined ? '' : ` --host ${at}`} --port ${port}`
      : `audiosocket echo --websocket ${at === undefined ? '' : `${at.includes(':') ? `[${at}]` : at}:`}${port}`;
  // Where a server started with no --host is reached from (0.0.0.0 and :: connect to this machine).
  if (['127.0.0.1', 'localhost', '0.0.0.0', '::'].includes(h)) return `; is a server listening there? (try: ${listen(undefined)})`;
  if (isLoopback(h)) return `; is a server listening there? (try: ${listen(h)})`;
  return '; is a server listening there, on an address reachable from here? (a server listens on 127.0.0.1 unless started with --host)';
}

/**
 * For a G.711 chan_websocket channel (`--format ulaw|alaw`, G.711 both ways), a converter of what
 * the channel hears to the slin 8 kHz recordings are written in; `undefined` for slin. One per
 * recorded call. (AudioSocket's replies are slin whatever the codec: see call-audiosocket.ts.)
 */
export function recordingDecoder(plan: Pick<CallPlan, 'sendFormat'>): Converter | undefined {
  if (plan.sendFormat.encoding === 'slin') return undefined;
  return createConverter(plan.sendFormat, { encoding: 'slin', sampleRate: 8000, channels: 1 });
}

/** A leg not yet dialled. */
export function newLeg(number: number): Leg<never> {
  return { number, offset: 0, framesSent: 0, arrivals: new IntervalStats(), nextDigit: 0 };
}

/**
 * Dials every leg (`dial` sets `leg.client` and listens to it; a throw is that call's failure,
 * reported with `hint`), with `leg.recorder` ready under `--record` (FILE, or FILE-n.wav for
 * several calls; written only once audio comes). Streams until the duration ends, a signal
 * arrives or no call is up, then hangs up and finishes the recordings.
 */
export async function runCalls<C extends Dialled, L extends Leg<C>>(
  plan: CallPlan,
  legs: L[],
  o: {
    dial: (leg: L) => Promise<void>;
    /** Sends one frame (never empty) of `plan.audio`. */
    send: (leg: L, frame: Buffer) => void;
    hint?: (err: Error) => string;
  },
): Promise<{ recorded: boolean[]; seconds: number; interrupted: NodeJS.Signals | undefined }> {
  const { audio, frameBytes, digits, output, record } = plan;
  // Ctrl-C or SIGTERM, from here on: stop dialling and streaming, hang up, finish the files. Once
  // the streaming is over, one only lets the hangups finish; a second one exits at once.
  let interrupted: NodeJS.Signals | undefined;
  let streaming = true;
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) process.exit(128 + osConstants.signals[signal]);
    signalled = true;
    if (streaming) interrupted = signal;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Connect everyone (in batches, so a thousand calls do not all hit the accept queue at once).
  const t0 = performance.now();
  for (let i = 0; i < legs.length; i += 50) {
    if (interrupted !== undefined) {
      for (const leg of legs.slice(i)) leg.skipped = true;
      break;
    }
    await Promise.all(
      legs.slice(i, i + 50).map(async (leg) => {
        if (record !== undefined) {
          leg.recorder = new LazyWavRecorder(recordingPath(record, leg.number, plan.calls));
        }
        try {
          await o.dial(leg);
          void leg.client?.closed.then((c) => (leg.close = c as L['close']));
        } catch (err) {
          leg.error = (err as Error).message;
          output.error(`call ${leg.number}: ${leg.error}${o.hint?.(err as Error) ?? ''}`, { call: leg.number });
        }
      }),
    );
  }

  // One drift-free timer sends frame k of every call at start + k * 20 ms, as Asterisk's core does.
  const frameMs = 20;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    let k = 0;
    const tick = (): void => {
      const elapsed = performance.now() - start;
      const live = legs.filter((l) => l.client?.connected);
      if (interrupted !== undefined || elapsed >= plan.durationMs || live.length === 0) {
        resolve();
        return;
      }
      for (const leg of live) {
        const client = leg.client!;
        while (leg.nextDigit < digits.length && digits[leg.nextDigit]!.atMs <= elapsed) client.sendDtmf(digits[leg.nextDigit++]!.digit);
        if (leg.offset >= audio.length) {
          if (!plan.loop) continue; // the file is over: stay on the line until the duration ends
          leg.offset = 0;
        }
        const frame = audio.subarray(leg.offset, leg.offset + frameBytes);
        leg.offset += frameBytes;
        if (frame.length > 0) {
          o.send(leg, frame);
          leg.framesSent++;
        }
      }
      k = Math.max(k + 1, Math.floor((performance.now() - start) / frameMs));
      setTimeout(tick, Math.max(0, start + k * frameMs - performance.now()));
    };
    tick();
  });

  streaming = false;
  // Hang up the calls still up (like a caller hanging up), then finalise recordings.
  // Legs that never connected contribute undefined, which Promise.all passes through.
  // eslint-disable-next-line @typescript-eslint/await-thenable
  const closes = await Promise.all(legs.map((leg) => (leg.client?.connected ? leg.client.hangup() : leg.client?.closed)));
  legs.forEach((leg, i) => (leg.close = (closes[i] as L['close']) ?? leg.close));
  const recorded = await finishRecordings(legs, output);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return { recorded, seconds: (performance.now() - t0) / 1000, interrupted };
}

/**
 * Reports the result of a run (several calls, or `-q`): one line on stdout, so
 * `x=$(audiosocket call -q ...)` gets it, or a `totals` event with `--json`. Returns the exit
 * status: 0 clean, 1 failed or refused, 3 violations.
 */
export function reportTotals(
  plan: Pick<CallPlan, 'quiet' | 'json' | 'output'>,
  run: { calls: number; seconds: number; failed: number; refused: number; violations: number; interrupted: NodeJS.Signals | undefined },
  legs: ReadonlyArray<{ skipped?: boolean }>,
): number {
  const { calls, seconds, failed, refused, violations, interrupted } = run;
  const skipped = legs.filter((l) => l.skipped).length;
  const connected = calls - failed - refused - skipped;
  if (calls > 1 || plan.quiet) {
    const line =
      `${calls} call(s) in ${seconds.toFixed(1)} s: ${connected} connected, ${failed} failed, ${refused} refused, ${violations} violation(s)` +
      (interrupted ? `; interrupted by ${interrupted}${skipped > 0 ? `, ${skipped} not dialled` : ''}` : '');
    const fields = {
      calls,
      seconds: Number(seconds.toFixed(1)),
      connected,
      failed,
      refused,
      violations,
      interrupted,
      notDialled: skipped,
    };
    if (plan.json) plan.output.event('totals', fields, line);
    else process.stdout.write(`${line}\n`);
  }
  if (failed > 0 || refused > 0) return 1;
  if (violations > 0) return 3;
  // Interrupted: the shell's convention, 128 + the signal's number (130 for Ctrl-C).
  return interrupted !== undefined ? 128 + osConstants.signals[interrupted] : 0;
}
