/**
 * `audiosocket play FILE`: every caller hears the file, paced in real time and converted to the
 * call's format; then hangup, silence or echo.
 */
import type { Call } from '../../index.js';
import { optionsHelp, parseServerArgs, serverOptionsHelp, UsageError, withServerOptions, type OptionTable } from '../options.js';
import { runServer } from '../run-server.js';
import { loadWav } from '../files.js';
import { createOutput } from '../output.js';

const ownOptions = {
  loop: { type: 'boolean', default: false, help: ['repeat the file until the caller hangs up (or presses a key, see below)'] },
  then: {
    type: 'string',
    default: 'hangup',
    value: 'ACTION',
    help: ['after the file: hangup (default), silence (stay on the line) or echo'],
  },
  'barge-in-dtmf': { type: 'boolean', default: false, help: ['a key press stops the file at once and moves on to --then'] },
  'barge-in-speech': {
    type: 'boolean',
    default: false,
    help: [
      'the caller speaking stops the file at once and moves on to --then',
      "(speech detection, robust to the prompt's own echo: docs/speech.md)",
    ],
  },
} as const satisfies OptionTable;

/** What `play` takes: its own options, then the server options. */
export const playOptions = withServerOptions(ownOptions);

export const playHelp = `Usage: audiosocket play FILE [--loop] [--then hangup|silence|echo] [--barge-in-dtmf] [--barge-in-speech] [options]

Every caller hears FILE (a WAV: PCM 8/16/24/32-bit, float, u-law or a-law, mono or stereo, any
rate), converted to the call's format and paced in real time. Not a WAV (MP3, Ogg, FLAC, raw)?
The error names the format and gives the ffmpeg/sox command that converts it.

${optionsHelp(ownOptions)}

${serverOptionsHelp}`;

export async function playCommand(argv: string[]): Promise<void> {
  const { common, values, positionals } = parseServerArgs(argv, playOptions, { allowed: 1, name: 'one FILE' });
  if (common.help) {
    process.stdout.write(`${playHelp}\n`);
    return;
  }
  const then = values.then as string;
  if (!['hangup', 'silence', 'echo'].includes(then))
    throw new UsageError(`--then must be hangup, silence or echo, got ${JSON.stringify(then)}`);
  if (positionals.length !== 1) throw new UsageError('no FILE given: audiosocket play FILE.wav [options]');
  const path = positionals[0]!;
  // A bad file is a usage problem: say so before listening.
  const wav = await loadWav(path, '', (line) => createOutput(common).warn(line));
  if (then === 'echo' && common.server.inbound !== undefined && common.server.inbound !== 'slin') common.server.receive = 'slin';
  const loop = values.loop === true;
  const onKey = values['barge-in-dtmf'] === true;
  const onSpeech = values['barge-in-speech'] === true;
  const bargeIn = onKey && onSpeech ? 'any' : onKey ? 'dtmf' : onSpeech ? 'speech' : undefined;
  const output = createOutput(common);

  const running = await runServer(
    'play',
    common,
    async (call: Call) => {
      let stopped = false;
      // --loop is one play of a source that repeats the file: the repetitions join seamlessly
      // (awaiting one play before queueing the next would leave the queue empty at each join,
      // since a play resolves once its audio has played).
      const source = loop
        ? (async function* repeat() {
            while (call.connected && !stopped) yield wav.data;
          })()
        : wav.data;
      const result = await call.play(source, { format: wav.format, ...(bargeIn ? { bargeIn } : {}) });
      stopped = true;
      if (result.bargeIn !== undefined) {
        const b = result.bargeIn;
        output.event(
          'bargeIn',
          {
            uuid: call.uuid,
            by: b.by,
            digit: b.digit,
            atMs: Math.round(b.atMs),
            detectedAtMs: Math.round(b.detectedAtMs),
            playedMs: Math.round(result.sentMs),
          },
          `barge-in ${call.uuid} by ${b.by === 'dtmf' ? `key ${b.digit}` : 'speech'} at ${(b.atMs / 1000).toFixed(2)}s, after ${(result.sentMs / 1000).toFixed(2)}s of the file`,
        );
      }
      if (!call.connected) return;
      if (then === 'hangup') await call.end();
      else if (then === 'echo') call.on('audio', (frame) => call.write(frame.payload, frame.format));
      // silence: keep-alive fills the line until the caller hangs up
    },
    { output },
  );
  await running.done;
}
