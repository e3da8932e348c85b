/**
 * Speech detection and barge-in: the detector against the fixtures' known boundaries
 * (test/fixtures/speech/, made by scripts/speech-fixtures.ts), then calls over real sockets with
 * the simulated Asterisks: speech events, barge-in on speech and on a key, and no barge-in on
 * the echo of our own prompt.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  connect,
  createConverter,
  createServer,
  loadResampler,
  readWavFile,
  type Call,
  type PlayResult,
  type SentFrame,
  type ServerOptions,
} from '#lib/index.js';
import { connectWebSocket } from '#lib/websocket/client.js';
import { createVad, loadVad } from '#lib/speech/vad.js';
import { levelDb, SPEECH_DEFAULTS, SpeechDetector, type SpeechEvent } from '#lib/speech/detector.js';
import { until } from './helpers.js';

const DIR = fileURLToPath(new URL('../../test/fixtures/speech/', import.meta.url));

interface Fixture {
  file: string;
  kind: 'speech' | 'speech-over-echo' | 'echo' | 'nonspeech';
  onsetMs?: number;
  echo?: { prompt: string };
}
const fixtures = (JSON.parse(readFileSync(`${DIR}manifest.json`, 'utf8')) as { fixtures: Fixture[] }).fixtures;

async function pcm(file: string): Promise<Buffer> {
  return (await readWavFile(`${DIR}${file}`)).data;
}

const samples = (b: Buffer): Int16Array => new Int16Array(Uint8Array.from(b).buffer);

/** The detector over a fixture, 20 ms at a time; the prompt's levels fed for the echo kinds. */
async function detect(f: Fixture): Promise<SpeechEvent[]> {
  await loadVad();
  const x = samples(await pcm(f.file));
  const prompt = f.echo ? samples(await pcm(f.echo.prompt)) : undefined;
  const det = new SpeechDetector(createVad(8000, SPEECH_DEFAULTS.aggressiveness));
  const events: SpeechEvent[] = [];
  for (let i = 0; i + 160 <= x.length; i += 160) {
    if (prompt && i + 160 <= prompt.length) det.noteOutbound(levelDb(prompt.subarray(i, i + 160)), i / 8);
    events.push(...det.pushInbound(x.subarray(i, i + 160), (i + 160) / 8));
  }
  det.dispose();
  return events;
}

test('speech fixtures: every onset found within 250 ms (median within 150 ms), never before it', async () => {
  const latencies: number[] = [];
  for (const f of fixtures.filter((x) => x.onsetMs !== undefined)) {
    const starts = (await detect(f)).filter((e) => e.type === 'start');
    assert.ok(starts.length > 0, `${f.file}: speech missed`);
    assert.ok(starts[0]!.atMs >= f.onsetMs! - 60, `${f.file}: a start at ${starts[0]!.atMs} ms, before the speech at ${f.onsetMs} ms`);
    const latency = starts[0]!.detectedAtMs - f.onsetMs!;
    assert.ok(latency <= 250, `${f.file}: detected ${latency} ms after the onset`);
    latencies.push(latency);
  }
  latencies.sort((a, b) => a - b);
  assert.ok(latencies[latencies.length >> 1]! <= 150, `median latency ${latencies[latencies.length >> 1]} ms`);
});

test('a wideband call carrying a narrowband leg (slin16 from 8 kHz): every onset found, no false start', async () => {
  await loadResampler();
  for (const f of fixtures.filter((x) => x.kind === 'speech' || x.kind === 'nonspeech')) {
    const conv = createConverter('slin', 'slin16');
    const wide = samples(Buffer.concat([conv.push(await pcm(f.file)), conv.flush()]));
    conv.dispose();
    const det = new SpeechDetector(createVad(16000, SPEECH_DEFAULTS.aggressiveness));
    const events: SpeechEvent[] = [];
    for (let i = 0; i + 320 <= wide.length; i += 320) events.push(...det.pushInbound(wide.subarray(i, i + 320), (i + 320) / 16));
    det.dispose();
    const starts = events.filter((e) => e.type === 'start');
    if (f.onsetMs === undefined) assert.deepEqual(starts, [], `${f.file} was taken for speech`);
    else {
      assert.ok(starts.length > 0, `${f.file}: speech missed at 16 kHz`);
      assert.ok(starts[0]!.detectedAtMs - f.onsetMs <= 250, `${f.file}: detected ${starts[0]!.detectedAtMs - f.onsetMs} ms late`);
    }
  }
});

test('non-speech and echo-alone fixtures: no speech at all', async () => {
  for (const f of fixtures.filter((x) => x.kind === 'echo' || x.kind === 'nonspeech')) {
    assert.deepEqual(await detect(f), [], `${f.file} was taken for speech`);
  }
});

test('speech options are checked: a bad one is a typed error naming it', () => {
  assert.throws(() => createServer(undefined, { speech: { aggressiveness: 5 as 3 } }), /speech\.aggressiveness must be 0, 1, 2 or 3/);
  assert.throws(
    () => createServer(undefined, { speech: { maxEchoDelayMs: 5000 } }),
    /speech\.maxEchoDelayMs must be a number from 0 to 600/,
  );
});

async function serve(t: TestContext, handler: (call: Call) => unknown, options: ServerOptions = {}) {
  const server = createServer(handler, { ...options, websocket: { port: 0 } });
  const { port } = await server.listen({ port: 0 });
  t.after(() => server.close());
  return { port, wsPort: server.websocketAddress()!.port };
}

/** A caller who says `speech` (8 kHz slin) in real time after `silenceMs`, and echoes what it hears `echoDb` down, `echoMs` late. */
function caller(send: (frame: Buffer) => void, speech: Buffer, o: { silenceMs: number; echo?: { db: number; ms: number } }) {
  const heard: { at: number; frame: Buffer }[] = [];
  const t0 = performance.now();
  let k = 0;
  const timer = setInterval(() => {
    // Catch up on the 20 ms frames due, as Asterisk sends in real time.
    while ((k + 1) * 20 <= performance.now() - t0) {
      const at = k * 20;
      const frame = Buffer.alloc(320);
      if (at >= o.silenceMs) speech.copy(frame, 0, ((at - o.silenceMs) / 20) * 320, ((at - o.silenceMs) / 20 + 1) * 320);
      if (o.echo) {
        const back = heard.find((h) => Math.abs(h.at - (at - o.echo!.ms)) < 10);
        if (back) {
          const g = 10 ** (-o.echo.db / 20);
          for (let i = 0; i < 160; i++)
            frame.writeInt16LE(
              Math.max(-32768, Math.min(32767, frame.readInt16LE(2 * i) + Math.round(back.frame.readInt16LE(2 * i) * g))),
              2 * i,
            );
        }
      }
      send(frame);
      k++;
    }
  }, 5);
  return {
    hear(frame: Buffer) {
      heard.push({ at: performance.now() - t0, frame: Buffer.from(frame) });
    },
    heard,
    stop: () => clearInterval(timer),
  };
}

for (const transport of ['audiosocket', 'websocket'] as const) {
  test(`barge-in on ${transport}: the caller speaks over the prompt, the play stops with reason barge-in`, async (t) => {
    const prompt = await pcm('prompt.wav');
    const speech = await pcm('speech-gb.wav');
    let result: PlayResult | undefined;
    const events: SpeechEvent[] = [];
    const sent: SentFrame[] = [];
    const { port, wsPort } = await serve(t, async (call) => {
      call.on('speechStart', (e) => events.push(e));
      call.on('sent', (f) => sent.push({ ...f, payload: Buffer.from(f.payload) }));
      result = await call.play(prompt, { format: 'slin', bargeIn: 'speech' });
    });
    let c: ReturnType<typeof caller>;
    if (transport === 'audiosocket') {
      const client = await connect({ port });
      t.after(() => client.hangup());
      c = caller((f) => client.sendAudio(f), speech, { silenceMs: 1000 });
      client.on('audio', (f) => c.hear(f.payload));
    } else {
      const client = await connectWebSocket({ url: `ws://127.0.0.1:${wsPort}/`, format: 'slin' });
      t.after(() => client.drop());
      c = caller((f) => client.sendAudio(f), speech, { silenceMs: 1000 });
      client.on('played', (f) => c.hear(f));
    }
    t.after(() => c.stop());
    await until(() => result !== undefined, 'the prompt settles');
    assert.equal(result!.status, 'interrupted');
    assert.equal(result!.reason, 'barge-in');
    assert.equal(result!.bargeIn?.by, 'speech');
    assert.equal(events.length, 1);
    // The speech fixture speaks from 1000 ms (its first second is silence), sent from 1000 ms here.
    assert.ok(result!.sentMs < 4000, `the prompt stopped after ${result!.sentMs} ms of its 6 s`);
    // The caller's speech starts 2 s in (1 s of silence sent, then the fixture's own 1 s lead).
    const b = result!.bargeIn!;
    assert.ok(b.atMs > 1900 && b.atMs < 2300, `speech placed at ${b.atMs} ms on the call's timeline`);
    assert.ok(b.detectedAtMs - b.atMs <= 250, `detected ${b.detectedAtMs - b.atMs} ms after its start`);
    // What the caller hears of the prompt after the detection, by the server's own stamps: at
    // most what was already on its way (AudioSocket: queued audio leaves just in time, so the
    // frame playing and the next one, 40 ms).
    const onItsWay = transport === 'audiosocket' ? 40 : 80;
    const after = sent.filter((f) => !f.silence && f.atMs >= b.detectedAtMs + onItsWay);
    assert.deepEqual(
      after.map((f) => f.atMs),
      [],
      'no prompt audio plays later than a few frames after the detection',
    );
  });
}

test('no barge-in on the echo of our own prompt (10 dB down, 60 ms late), over AudioSocket', async (t) => {
  const prompt = await pcm('prompt.wav');
  let result: PlayResult | undefined;
  const { port } = await serve(t, async (call) => {
    result = await call.play(prompt, { format: 'slin', bargeIn: 'speech' });
  });
  const client = await connect({ port });
  t.after(() => client.hangup());
  const c = caller((f) => client.sendAudio(f), Buffer.alloc(0), { silenceMs: 1e9, echo: { db: 10, ms: 60 } });
  t.after(() => c.stop());
  client.on('audio', (f) => c.hear(f.payload));
  await until(() => result !== undefined, 'the prompt settles', 30_000);
  assert.equal(result!.status, 'done', `the prompt was interrupted: ${JSON.stringify(result)}`);
});

test('barge-in on a key: reason barge-in, by dtmf, with the digit', async (t) => {
  let result: PlayResult | undefined;
  const { port } = await serve(t, async (call) => {
    result = await call.play(Buffer.alloc(16000 * 5), { bargeIn: 'any' });
  });
  const client = await connect({ port });
  t.after(() => client.hangup());
  await until(() => client.stats.messagesIn > 5, 'the prompt playing');
  client.sendDtmf('7');
  await until(() => result !== undefined, 'the prompt settles');
  assert.equal(result!.reason, 'barge-in');
  assert.equal(result!.bargeIn?.by, 'dtmf');
  assert.equal(result!.bargeIn?.digit, '7');
});
