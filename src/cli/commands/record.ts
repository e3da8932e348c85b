/**
 * `audiosocket record`: one WAV per call (caller left, what we sent right; or one file per
 * direction) plus a JSON sidecar. Files are finalised when the call ends, also on SIGINT; a file
 * cut by a crash still parses (sizes left as "unknown", which readers take as "to the end").
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createConverter,
  createWavWriter,
  kindName,
  sameFormat,
  formatName,
  type AudioFormat,
  type Call,
  type CallEnd,
  type Converter,
  type WavWriter,
} from '../../index.js';
import {
  optionsHelp,
  parseIntOption,
  parseServerArgs,
  serverOptionsHelp,
  UsageError,
  withServerOptions,
  type OptionTable,
} from '../options.js';
import { peer, runServer } from '../run-server.js';
import { CallTimeline, DEFAULT_TIMELINE } from '../timeline.js';
import { checkWritableDir, why } from '../files.js';

const ownOptions = {
  dir: {
    type: 'string',
    default: '.',
    value: 'DIR',
    help: ['where to write; must exist and be writable (default: current directory)'],
  },
  split: { type: 'boolean', default: false, help: ['one file per direction instead of one stereo file'] },
  respond: { type: 'string', default: 'silence', value: 'MODE', help: ['what callers hear: silence (default) or echo'] },
  rate: { type: 'string', default: '8000', value: 'HZ', help: ['sample rate of the recording (default 8000)'] },
} as const satisfies OptionTable;

/** What `record` takes: its own options, then the server options. */
export const recordOptions = withServerOptions(ownOptions);

export const recordHelp = `Usage: audiosocket record [--dir DIR] [--split] [--respond silence|echo] [--rate HZ] [options]

Records every call: DIR/<start>_<uuid>.wav with two channels (left: the caller, right: what we
sent), or with --split two mono files <start>_<uuid>.in.wav and .out.wav, plus <start>_<uuid>.json
(uuid, peer, start, end, duration, end reason, DTMF digits with their times, formats).
Files are valid even when a call ends abruptly.

${optionsHelp(ownOptions)}

${serverOptionsHelp}`;

const FLUSH_MS = 200;

export async function recordCommand(argv: string[]): Promise<void> {
  const { common, values } = parseServerArgs(argv, recordOptions);
  common.server.speech = true; // the sidecar lists the caller's speech
  if (common.help) {
    process.stdout.write(`${recordHelp}\n`);
    return;
  }
  const respond = values.respond as string;
  if (respond !== 'silence' && respond !== 'echo')
    throw new UsageError(`--respond must be silence or echo, got ${JSON.stringify(respond)}`);
  const rate = parseIntOption('rate', values.rate as string, 8000, 192000, "the recording's sample rate in Hz")!;
  const split = values.split === true;
  // Checked before listening: a missing or read-only directory would otherwise fail every call.
  const dir = await checkWritableDir(values.dir as string, '--dir');
  const recFormat: AudioFormat = { encoding: 'slin', sampleRate: rate, channels: 1 };
  const finishing = new Set<Promise<void>>();

  const running = await runServer(
    'record',
    common,
    async (call: Call) => {
      const start = new Date();
      const t0 = performance.now();
      const base = `${start.toISOString().replace(/[:.]/g, '-')}_${call.uuid}`;
      const files = split ? [`${base}.in.wav`, `${base}.out.wav`] : [`${base}.wav`];
      const timeline = new CallTimeline(rate, t0);
      const digits: Array<{ digit: string; atMs: number }> = [];
      /** The caller's speech segments, ms on the call's timeline (`endMs` null while it speaks at the end). */
      const speech: Array<{ startMs: number; endMs: number | null }> = [];
      let outConverter: Converter | undefined;
      let outFrom: AudioFormat | undefined;
      call.receiveAs(recFormat);
      if (respond === 'echo') {
        call.sendAs(recFormat);
        call.on('audio', (frame) => call.write(frame.payload));
      }
      // Placed where it arrived; audio that arrives in a burst after a stall fills the gap before
      // it (the model is in src/cli/timeline.ts).
      call.on('audio', (frame) => timeline.push(0, frame.payload, performance.now()));
      call.on('sent', ({ payload, format: from, atMs }) => {
        // Placed where the caller hears it: the frame's instant on the call's timeline.
        const endMs = t0 + atMs + (payload.length / (from.sampleRate * (from.encoding === 'slin' ? 2 : 1))) * 1000;
        if (sameFormat(from, recFormat)) {
          timeline.push(1, Buffer.from(payload), endMs);
          return;
        }
        if (outFrom === undefined || !sameFormat(outFrom, from)) {
          outConverter?.dispose();
          outConverter = createConverter(from, recFormat);
          outFrom = from;
        }
        timeline.push(1, outConverter!.push(payload), endMs);
      });
      call.on('dtmf', (digit) => digits.push({ digit, atMs: Math.round(performance.now() - t0) }));
      call.on('speechStart', (e) => speech.push({ startMs: Math.round(e.atMs), endMs: null }));
      call.on('speechEnd', (e) => {
        const last = speech.at(-1);
        if (last !== undefined) last.endMs = Math.round(e.atMs);
      });
      // Listeners are attached before the first await so no early frame is missed.
      const opened = await Promise.allSettled(files.map((f) => createWavWriter(join(dir, f), { ...recFormat, channels: split ? 1 : 2 })));
      const notOpened = opened.find((o) => o.status === 'rejected');
      if (notOpened !== undefined) {
        // The directory was checked at start; it has gone or changed since. A recorder that
        // cannot record hangs up (the dialplan goes on), and says why once per call.
        const err = notOpened.reason as NodeJS.ErrnoException;
        const reason = err.code === 'ENOENT' ? `${dir} no longer exists` : why(err);
        running.output.error(`call ${call.uuid} not recorded, hung up: cannot create its file in ${dir} (${reason})`, {
          uuid: call.uuid,
        });
        for (const o of opened) if (o.status === 'fulfilled') await o.value.close().catch(() => {});
        await Promise.all(files.map((f) => rm(join(dir, f), { force: true }).catch(() => {})));
        await call.hangup();
        return;
      }
      const writers = opened.map((o) => (o as PromiseFulfilledResult<WavWriter>).value);
      // A disk error (full, quota, file too large) stops this recording, reported once; the call
      // and the server carry on.
      let failed: Error | undefined;
      const write = (w: WavWriter, data: Buffer): void => {
        if (failed || data.length === 0) return;
        w.write(data).catch((err: Error) => {
          if (failed) return;
          failed = err;
          running.output.error(`recording of ${call.uuid} stopped: ${err.message}`, { uuid: call.uuid });
        });
      };
      let warnedDrop = false;
      const flush = (final: boolean): void => {
        // A side without audio for a while is filled with silence, so the other is written too;
        // at the end, both sides are filled to the call's end.
        timeline.advance(performance.now(), final);
        const droppedMs = timeline.droppedMs(0) + timeline.droppedMs(1);
        if (droppedMs > 0 && !warnedDrop) {
          warnedDrop = true;
          const side = timeline.droppedMs(0) > 0 ? "the caller's audio" : 'the audio sent';
          running.output.warn(
            `recording of ${call.uuid}: ${side} ran more than ${DEFAULT_TIMELINE.maxHoldMs / 1000} s ahead of the clock (sent faster than real time, or a burst after a longer stall); ${Math.round(droppedMs)} ms dropped from the recording to keep both sides in step (the sidecar has the total)`,
            { uuid: call.uuid, droppedMs },
          );
        }
        if (split) {
          write(writers[0]!, timeline.takeMono(0, final));
          write(writers[1]!, timeline.takeMono(1, final));
        } else {
          write(writers[0]!, timeline.takeStereo(final));
        }
      };
      const timer = setInterval(() => flush(false), FLUSH_MS);
      const finished = call.closed.then(async (end: CallEnd) => {
        clearInterval(timer);
        flush(true);
        outConverter?.dispose();
        await Promise.all(writers.map((w) => w.close().catch(() => {})));
        const sidecar = {
          uuid: call.uuid,
          peer: peer(call),
          start: start.toISOString(),
          end: new Date(start.getTime() + end.durationMs).toISOString(),
          durationMs: Math.round(end.durationMs),
          endReason: end.reason,
          error: end.error?.message,
          dtmf: digits,
          // Audio left out of the recording because its side ran more than maxHoldMs ahead of the clock.
          droppedMs: { caller: Math.round(timeline.droppedMs(0)), sent: Math.round(timeline.droppedMs(1)) },
          speech,
          format: {
            inbound:
              call.transport === 'audiosocket'
                ? call.inboundKind === undefined
                  ? null
                  : kindName(call.inboundKind)
                : call.inboundFormat === undefined
                  ? null
                  : formatName(call.inboundFormat),
            inboundSampleRate: call.inboundSampleRate ?? null,
            inboundGuess: call.transport === 'audiosocket' ? (call.inboundFormatGuess?.verdict ?? null) : null,
            outbound: call.transport === 'audiosocket' ? kindName(call.outboundKind) : formatName(call.outboundFormat),
            recording: {
              encoding: 'slin',
              sampleRate: rate,
              channels: split ? 1 : 2,
              layout: split ? 'one file per direction' : 'left: caller, right: sent',
            },
          },
          files,
          recordingError: failed?.message,
          stats: end.stats,
        };
        const sidecarPath = join(dir, `${base}.json`);
        try {
          await writeFile(sidecarPath, `${JSON.stringify(sidecar, null, 2)}\n`);
        } catch (err) {
          // No half-written sidecar: a reader would take it for a broken one.
          await rm(sidecarPath, { force: true });
          throw err;
        }
        running.output.event('recorded', { uuid: call.uuid, files: [...files, `${base}.json`] }, `saved ${files.join(', ')}`);
      });
      const tracked = finished.catch((err: Error) => running.output.error(`recording of ${call.uuid} failed: ${err.message}`));
      finishing.add(tracked);
      void tracked.finally(() => finishing.delete(tracked));
    },
    { beforeExit: async () => void (await Promise.all(finishing)) },
  );
  await running.done;
}
