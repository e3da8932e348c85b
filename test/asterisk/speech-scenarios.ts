/**
 * Barge-in on a real call: the server plays a prompt with `bargeIn: 'speech'` to a phone (an RTP
 * leg of the private Asterisk); the phone stays silent, then speaks (a speech fixture, sent in
 * real time) during the prompt. Asserted: the play settles `barge-in` by speech, and what the
 * phone hears shows it: no prompt audio reaches it a little after the speech began. Reported:
 * when the speech was detected, and how long the prompt went on at the phone after the speech
 * was sent.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Call, PlayResult } from '#lib/index.js';
import { parseWav } from '#lib/audio/index.js';
import { rtpLeg, serverUnderTest, type Scenario } from './scenarios.js';
import { hex32, randomUuidUpper, rms, slinToUlawBuf, ulawToSlinBuf } from './signals.js';
import { newTag, wsServerUnderTest } from './websocket-scenarios.js';
import { check, until } from './util.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/speech/', import.meta.url));

/** The caller's ;1 half: EXTEN = the phone's RTP port; it dials the phone and bridges it. */
export const SPEECH_DIALPLAN = `
[sp-caller]
exten => _X.,1,Dial(UnicastRTP/127.0.0.1:\${EXTEN}/c(ulaw),,g)
 same => n,Hangup()
`;

function slin8k(file: string): Buffer {
  return parseWav(readFileSync(`${FIXTURES}${file}`)).data;
}

/** The speech fixture from 200 ms before its onset (it speaks from 1.0 s), as 20 ms u-law frames. */
function speechFrames(): Buffer[] {
  const u = slinToUlawBuf(slin8k('speech-us.wav').subarray(0.8 * 16000));
  return Array.from({ length: Math.floor(u.length / 160) }, (_, i) => u.subarray(i * 160, (i + 1) * 160));
}

const ONSET_IN_SENT_MS = 200;

function handler(results: PlayResult[]): (call: Call) => Promise<void> {
  const prompt = slin8k('prompt.wav');
  return async (call) => {
    results.push(await call.play(prompt, { format: 'slin', bargeIn: 'speech' }));
    await call.hangup();
  };
}

async function bargeIn(ctx: Parameters<Scenario['run']>[0], rtp: Awaited<ReturnType<typeof rtpLeg>>, results: PlayResult[]): Promise<void> {
  // The prompt plays to the phone for a second, the phone silent; then it speaks.
  await until(
    () => rtp.packets.filter((p) => rms(ulawToSlinBuf(p.payload)) > 300).length >= 50,
    8000,
    'a second of the prompt at the phone',
  );
  const sentAt = performance.now();
  const speaking = rtp.sendPaced(speechFrames());
  const result = await until(() => results[0], 8000, 'the prompt to settle');
  await speaking.catch(() => undefined);
  const onsetAt = sentAt + ONSET_IN_SENT_MS;
  const promptAt = rtp.packets.filter((p) => p.at > sentAt && rms(ulawToSlinBuf(p.payload)) > 300).map((p) => p.at);
  const lastPrompt = promptAt.at(-1) ?? sentAt;
  const m = ctx.metrics;
  m['play'] =
    `${result.status}${result.reason ? ` (${result.reason}${result.bargeIn ? ` by ${result.bargeIn.by}` : ''})` : ''} after ${Math.round(result.sentMs)} ms`;
  if (result.bargeIn) ctx.timing('speech detected after its start', result.bargeIn.detectedAtMs - result.bargeIn.atMs, { max: 250 });
  ctx.timing('prompt at the phone after the speech began', lastPrompt - onsetAt, { max: 400 });
  check(result.reason === 'barge-in' && result.bargeIn?.by === 'speech', `the play settled ${m['play']}, not barge-in by speech`);
  check(lastPrompt - onsetAt < 1000, `the phone still heard the prompt ${Math.round(lastPrompt - onsetAt)} ms after the speech began`);
}

export const speechScenarios: Scenario[] = [
  {
    name: 'barge-in by speech over AudioSocket',
    checks:
      "Dial(AudioSocket/…/c(slin),,g) to a play with bargeIn 'speech'; the phone speaks a second into the prompt: the play settles barge-in by speech and the phone stops hearing the prompt",
    async run(ctx) {
      const results: PlayResult[] = [];
      const sut = await serverUnderTest(ctx, handler(results));
      const rtp = await rtpLeg(ctx);
      const uuid = randomUuidUpper();
      await ctx.ast.originate(`Local/${sut.port}*${hex32(uuid)}*slin@as-dial/n extension ${rtp.port}@sp-caller`);
      await sut.call(uuid);
      await bargeIn(ctx, rtp, results);
    },
  },
  {
    name: 'barge-in by speech over chan_websocket c(slin16)',
    checks: 'the same through Dial(WebSocket/…/c(slin16),,g): the detector hears the caller resampled to 16 kHz',
    transport: 'websocket',
    async run(ctx) {
      const results: PlayResult[] = [];
      const sut = await wsServerUnderTest(ctx, handler(results));
      const rtp = await rtpLeg(ctx);
      const tag = newTag();
      await ctx.ast.originate(`Local/${sut.port}*slin16*${tag}@ws-dial/n extension ${rtp.port}@sp-caller`);
      await sut.call(tag);
      await bargeIn(ctx, rtp, results);
    },
  },
];
