/**
 * Edge cases of speech detection and barge-in (docs/speech.md; src/speech/*; bargeIn of
 * play/playFile in src/call/core.ts), from an adversarial review, over real sockets with the
 * simulated Asterisks.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { connect, createServer, readWavFile, type Call, type PlayResult, type ServerOptions } from '#lib/index.js';
import { connectWebSocket } from '#lib/websocket/client.js';
import { slinToUlaw } from '#lib/audio/g711.js';
import type { SpeechEvent } from '#lib/speech/detector.js';
import { until } from './helpers.js';

const DIR = fileURLToPath(new URL('../../test/fixtures/speech/', import.meta.url));
const pcm = async (file: string): Promise<Buffer> => (await readWavFile(`${DIR}${file}`)).data;

async function serve(t: TestContext, handler: (call: Call) => unknown, options: ServerOptions = {}) {
  const server = createServer(handler, { ...options, websocket: { port: 0 } });
  const { port } = await server.listen({ port: 0 });
  t.after(() => server.close());
  return { port, wsPort: server.websocketAddress()!.port };
}

/** Sends `audio` in real time, `bytesPerTick` per `tickMs`. */
function realtime(t: TestContext, send: (b: Buffer) => void, audio: Buffer, bytesPerTick: number, tickMs: number): void {
  const t0 = performance.now();
  let k = 0;
  const timer = setInterval(() => {
    while ((k + 1) * tickMs <= performance.now() - t0 && k * bytesPerTick < audio.length) {
      send(audio.subarray(k * bytesPerTick, (k + 1) * bytesPerTick));
      k++;
    }
    if (k * bytesPerTick >= audio.length) clearInterval(timer);
  }, 5);
  t.after(() => clearInterval(timer));
}

const scale = (slin: Buffer, gain: number, dc = 0): Buffer => {
  const out = Buffer.alloc(slin.length);
  for (let i = 0; i + 1 < slin.length; i += 2)
    out.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(slin.readInt16LE(i) * gain + dc))), i);
  return out;
};

/** 8 kHz slin -> 48 kHz slin by sample repetition (crude, but the band below 4 kHz is kept). */
const upsample6 = (slin: Buffer): Buffer => {
  const out = Buffer.alloc(slin.length * 6);
  for (let i = 0, o = 0; i + 1 < slin.length; i += 2) for (let r = 0; r < 6; r++, o += 2) out.writeInt16LE(slin.readInt16LE(i), o);
  return out;
};

// docs/speech.md: "lets any play stop on it"; PlayOptions.bargeIn belongs to that
// play. A play queued with bargeIn behind one without it attaches its speechStart/dtmf listeners
// when it is *queued* (#withBargeIn in src/call/core.ts calls this.on(...) before run() starts),
// and interrupting calls this.flush(): a key (or speech) during the FIRST play, which did not ask
// for barge-in, kills it. Expected: the first play plays whole (status 'done'); the barge-in
// applies only once the second play is the one playing. Fix: src/call/core.ts #withBargeIn: arm
// the listeners when the play starts (or only flush when this play is the one sounding).
test('barge-in: a key during a play without bargeIn does not stop it because a bargeIn play is queued behind it', async (t) => {
  const results: (PlayResult | undefined)[] = [undefined, undefined];
  const { port } = await serve(t, (call) => {
    const a = call.play(Buffer.alloc(16000 * 3)).then((r) => (results[0] = r)); // 3 s, no barge-in
    const b = call.play(Buffer.alloc(16000 * 3), { bargeIn: 'dtmf' }).then((r) => (results[1] = r));
    return Promise.all([a, b]);
  });
  const client = await connect({ port });
  t.after(() => client.hangup());
  await until(() => client.stats.messagesIn > 10, 'the first play sounding');
  client.sendDtmf('5');
  await until(() => results[0] !== undefined, 'the first play settles', 10_000);
  assert.equal(results[0]!.status, 'done', `the first play (no bargeIn) was stopped: ${JSON.stringify(results[0])}`);
});

// The same on speech: the caller talks over prompt 1 (no bargeIn)
// while prompt 2 (bargeIn: 'speech') waits behind it.
test('barge-in: speech during a play without bargeIn does not stop it because a bargeIn play is queued behind it', async (t) => {
  const speech = await pcm('speech-gb.wav'); // speech from 1 s
  const results: (PlayResult | undefined)[] = [undefined, undefined];
  const { port } = await serve(t, (call) => {
    const a = call.play(Buffer.alloc(16000 * 4)).then((r) => (results[0] = r));
    const b = call.play(Buffer.alloc(16000 * 4), { bargeIn: 'speech' }).then((r) => (results[1] = r));
    return Promise.all([a, b]);
  });
  const client = await connect({ port });
  t.after(() => client.hangup());
  realtime(t, (f) => client.sendAudio(f), speech, 320, 20);
  await until(() => results[0] !== undefined, 'the first play settles', 10_000);
  assert.equal(results[0]!.status, 'done', `the first play (no bargeIn) was stopped: ${JSON.stringify(results[0])}`);
});

// Inputs that should trigger: loud and clipped, quiet, with a DC offset, G.711 inbound, 48 kHz,
// odd-sized frames. Each over real sockets; the fixture's speech starts 1 s in.
interface Case {
  name: string;
  transport: 'audiosocket' | 'websocket';
  audio: (s: Buffer) => Buffer;
  bytesPer20ms: number;
  tick?: { bytes: number; ms: number };
  server?: ServerOptions;
  wsFormat?: string;
  /** Speech placed before this instant (default 2400: within 400 ms of the onset at 2 s). */
  placedBy?: number;
}
const cases: Case[] = [
  { name: 'loud speech clipped (+20 dB)', transport: 'audiosocket', audio: (s) => scale(s, 10), bytesPer20ms: 320 },
  // 20 dB down (-33..-41 dBFS): the voice-band filter leaves too little of this voice's first
  // word ("No") for the VAD, and speech starts at its next word, a second later (docs/speech.md,
  // Limits). It must still start once, within the utterance.
  { name: 'quiet speech (-20 dB)', transport: 'audiosocket', audio: (s) => scale(s, 0.1), bytesPer20ms: 320, placedBy: 3300 },
  { name: 'speech on a large DC offset (+8000)', transport: 'audiosocket', audio: (s) => scale(s, 1, 8000), bytesPer20ms: 320 },
  {
    name: 'G.711 u-law inbound (server inbound: ulaw)',
    transport: 'audiosocket',
    audio: (s) => slinToUlaw(s),
    bytesPer20ms: 160,
    server: { inbound: 'ulaw' },
  },
  { name: 'odd-sized inbound frames (7 ms)', transport: 'audiosocket', audio: (s) => s, bytesPer20ms: 320, tick: { bytes: 112, ms: 7 } },
  { name: 'slin48 over chan_websocket', transport: 'websocket', audio: upsample6, bytesPer20ms: 1920, wsFormat: 'slin48' },
  { name: 'u-law over chan_websocket', transport: 'websocket', audio: (s) => slinToUlaw(s), bytesPer20ms: 160, wsFormat: 'ulaw' },
];
for (const c of cases) {
  test(`speech: ${c.name}: speech starts once, placed near 2 s`, async (t) => {
    const speech = await pcm('speech-gb.wav');
    const events: SpeechEvent[] = [];
    const { port, wsPort } = await serve(
      t,
      async (call) => {
        call.on('speechStart', (e) => events.push(e));
        await call.closed;
      },
      { ...c.server, speech: {} },
    );
    // 1 s of the line's own silence (or DC) first.
    const lead = c.audio(Buffer.alloc(16000)).subarray(0, c.bytesPer20ms * 50);
    const audio = Buffer.concat([lead, c.audio(speech)]);
    const tick = c.tick ?? { bytes: c.bytesPer20ms, ms: 20 };
    if (c.transport === 'audiosocket') {
      const client = await connect({ port });
      t.after(() => client.hangup());
      realtime(t, (f) => client.sendAudio(f), audio, tick.bytes, tick.ms);
    } else {
      const client = await connectWebSocket({ url: `ws://127.0.0.1:${wsPort}/`, format: c.wsFormat! });
      t.after(() => client.drop());
      realtime(t, (f) => client.sendAudio(f), audio, tick.bytes, tick.ms);
    }
    await until(() => events.length > 0, 'speech start', 6000);
    assert.equal(events.length, 1);
    assert.ok(events[0]!.atMs > 1800 && events[0]!.atMs < (c.placedBy ?? 2400), `speech placed at ${events[0]!.atMs} ms`);
  });
}

test('speech: a DC step and a steady loud DC offset alone never start speech', async (t) => {
  const events: SpeechEvent[] = [];
  const { port } = await serve(
    t,
    async (call) => {
      call.on('speechStart', (e) => events.push(e));
      await call.closed;
    },
    { speech: {} },
  );
  const client = await connect({ port });
  t.after(() => client.hangup());
  const audio = Buffer.concat([Buffer.alloc(320 * 25), scale(Buffer.alloc(320 * 75), 1, 20000)]);
  realtime(t, (f) => client.sendAudio(f), audio, 320, 20);
  await new Promise((r) => setTimeout(r, 2300));
  assert.deepEqual(events, []);
});

test('speech: detectSpeech on an ended call and detectSpeech(false) mid-play do not throw; bargeIn after false re-arms', async (t) => {
  let ended: Call | undefined;
  let result: PlayResult | undefined;
  const { port } = await serve(t, async (call) => {
    call.detectSpeech();
    call.detectSpeech(false);
    assert.equal(call.speaking, false);
    result = await call.play(Buffer.alloc(16000), { bargeIn: 'any' });
    await call.closed;
    ended = call;
  });
  const client = await connect({ port });
  await until(() => result !== undefined, 'the play settles');
  await client.hangup();
  await until(() => ended !== undefined, 'the call ends');
  assert.doesNotThrow(() => ended!.detectSpeech());
  assert.equal(ended!.speaking, false);
});
