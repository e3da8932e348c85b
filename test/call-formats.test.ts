/**
 * Per-call audio conversion over real TCP: receive, send, declared G.711 inbound, WAV files,
 * and isolation between concurrent calls.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect, encodeWav, type AudioFrame, type Call, type ServerOptions, type AsteriskClient } from '#lib/index.js';
import { slinToUlaw } from '#lib/audio/index.js';
import { tone, goertzel } from './audio-helpers.js';
import { until } from './helpers.js';

const bytes = (x: Int16Array): Buffer => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
const samples = (b: Buffer): Int16Array => {
  const copy = Buffer.from(b);
  return new Int16Array(copy.buffer, copy.byteOffset, copy.length / 2);
};

const servers: AsyncDisposable[] = [];
// A failed assertion must not leave a server or client open and the test process hanging.
after(() => Promise.all(servers.map((s) => Promise.resolve(s[Symbol.asyncDispose]()).catch(() => {}))));

async function oneCall(options: ServerOptions) {
  const server = createServer({ keepAlive: false, ...options });
  servers.push(server);
  const { port } = await server.listen({ port: 0 });
  const callP = once(server, 'call').then(([c]) => c as Call);
  const client = await connect({ port });
  servers.push(client);
  const call = await callP;
  return { server, client, call, port };
}

function collect(call: Call): AudioFrame[] {
  const frames: AudioFrame[] = [];
  call.on('audio', (f) => frames.push({ ...f, payload: Buffer.from(f.payload) }));
  return frames;
}

function collectClient(client: AsteriskClient): Buffer[] {
  const frames: Buffer[] = [];
  client.on('audio', (f) => frames.push(Buffer.from(f.payload)));
  return frames;
}

/** Sends `pcm` as 20 ms messages as fast as the socket takes them (order is what matters here). */
function sendAll(client: AsteriskClient, pcm: Buffer, frameBytes = 320): void {
  for (let off = 0; off < pcm.length; off += frameBytes) client.sendAudio(pcm.subarray(off, off + frameBytes));
}

describe('per-call audio conversion', () => {
  test('receive: 8 kHz from Asterisk arrives as 16 kHz slin, tone preserved', async () => {
    const { server, client, call } = await oneCall({ receive: 'slin16' });
    const frames = collect(call);
    sendAll(client, bytes(tone(8000, 1000, 1.2, 8000)));
    await until(() => call.stats.audioIn === 60, '60 frames in');
    assert.ok(frames.length >= 55);
    assert.deepEqual(frames[0]!.format, { encoding: 'slin', sampleRate: 16000, channels: 1 });
    assert.equal(frames[0]!.sampleRate, 16000);
    assert.equal(frames[0]!.format.sampleRate, 16000);
    const x = samples(Buffer.concat(frames.map((f) => f.payload)));
    assert.ok(x.length >= 16000 * 1.15, `${x.length} samples`);
    const at1k = goertzel(x, 1600, 16000, 16000, 1000);
    assert.ok(Math.abs(at1k - 8000) < 100, `1 kHz amplitude ${at1k}`);
    assert.ok(goertzel(x, 1600, 16000, 16000, 7000) < 2, 'no image at 7 kHz');
    await client.hangup();
    await server.close();
  });

  test('inbound u-law declared (channel driver c(ulaw)): received as slin 8 kHz, no trap warning', async () => {
    const { server, client, call } = await oneCall({ inbound: 'ulaw', receive: 'slin' });
    const frames = collect(call);
    const warnings: string[] = [];
    call.on('warning', (w) => warnings.push(w.code));
    const pcm = tone(8000, 700, 1, 10000);
    const ulaw = slinToUlaw(bytes(pcm));
    for (let off = 0; off < ulaw.length; off += 160) client.sendAudio(ulaw.subarray(off, off + 160));
    await until(() => call.stats.audioIn === 50, '50 frames in');
    assert.equal(frames.length, 50);
    assert.equal(frames[0]!.payload.length, 320);
    const x = samples(Buffer.concat(frames.map((f) => f.payload)));
    assert.ok(Math.abs(goertzel(x, 0, 8000, 8000, 700) - 10000) < 150);
    assert.deepEqual(warnings, []);
    await client.hangup();
    await server.close();
  });

  test('without receive, declared u-law is delivered raw with its format', async () => {
    const { server, client, call } = await oneCall({ inbound: 'ulaw' });
    const frames = collect(call);
    client.sendAudio(Buffer.alloc(160, 0xff));
    await until(() => frames.length >= 1, 'the frame');
    assert.deepEqual(frames[0]!.format, { encoding: 'ulaw', sampleRate: 8000, channels: 1 });
    assert.equal(frames[0]!.payload.length, 160);
    await client.hangup();
    await server.close();
  });

  test('send: a 24 kHz TTS stream is played as 8 kHz 0x10 frames, paced and at the right pitch', async () => {
    const { server, client, call } = await oneCall({ send: 'slin24' });
    const got = collectClient(client);
    const result = await call.play(bytes(tone(24000, 440, 1, 12000)));
    await until(() => got.length >= 50, '50 frames');
    assert.equal(result.status, 'done');
    assert.equal(got.length, 50, '1 s of audio = 50 frames of 20 ms');
    assert.ok(got.every((f) => f.length === 320));
    const x = samples(Buffer.concat(got));
    assert.ok(Math.abs(goertzel(x, 0, 8000, 8000, 440) - 12000) < 300);
    await client.hangup();
    await server.close();
  });

  test('play(format) per play and write() without a kind use the declared format', async () => {
    const { server, client, call } = await oneCall({});
    const got = collectClient(client);
    await call.play(bytes(tone(48000, 1000, 0.2, 9000)), { format: 'slin48' });
    await until(() => got.length >= 10, '10 frames');
    assert.equal(got.length, 10);
    call.sendAs('slin16');
    call.write(bytes(tone(16000, 1000, 0.02, 9000)));
    await until(() => got.length >= 11, 'the written frame');
    assert.ok(got.length >= 11);
    assert.equal(call.sendFormat?.sampleRate, 16000);
    await client.hangup();
    await server.close();
  });

  test('play(path): a 44.1 kHz stereo 24-bit WAV file is converted on the fly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'audiosocket-'));
    try {
      const stereo = tone(44100, 500, 0.5, 10000, 2, 500);
      const path = join(dir, 'prompt.wav');
      await writeFile(path, encodeWav({ encoding: 'slin', sampleRate: 44100, channels: 2 }, bytes(stereo)));
      const { server, client, call } = await oneCall({});
      const got = collectClient(client);
      const result = await call.playFile(path);
      await until(() => got.length >= 25, '25 frames');
      assert.equal(result.status, 'done');
      assert.equal(got.length, 25);
      const x = samples(Buffer.concat(got));
      assert.ok(Math.abs(goertzel(x, 0, 4000, 8000, 500) - 10000) < 300);
      await assert.rejects(call.playFile(join(dir, 'missing.wav')), /ENOENT|no such file/);
      await client.hangup();
      await server.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('two concurrent calls converting different signals do not affect each other', async () => {
    const server = createServer({ keepAlive: false, receive: 'slin16' });
    servers.push(server);
    const { port } = await server.listen({ port: 0 });
    const calls: Call[] = [];
    server.on('call', (c) => calls.push(c));
    const a = await connect({ port });
    servers.push(a);
    const b = await connect({ port });
    servers.push(b);
    await until(() => calls.length === 2, 'two calls');
    const [ca, cb] = calls[0]!.uuid === a.uuid ? [calls[0]!, calls[1]!] : [calls[1]!, calls[0]!];
    const fa = collect(ca);
    const fb = collect(cb);
    const ta = bytes(tone(8000, 600, 1.2, 9000));
    const tb = bytes(tone(8000, 1500, 1.2, 9000));
    // Interleave the two calls' frames so their conversions run alternately.
    for (let off = 0; off < ta.length; off += 320) {
      a.sendAudio(ta.subarray(off, off + 320));
      b.sendAudio(tb.subarray(off, off + 320));
    }
    await until(() => ca.stats.audioIn === 60 && cb.stats.audioIn === 60, '60 frames in on each call');
    const xa = samples(Buffer.concat(fa.map((f) => f.payload)));
    const xb = samples(Buffer.concat(fb.map((f) => f.payload)));
    assert.ok(goertzel(xa, 1600, 16000, 16000, 600) > 8800);
    assert.ok(goertzel(xa, 1600, 16000, 16000, 1500) < 2, 'no trace of the other call');
    assert.ok(goertzel(xb, 1600, 16000, 16000, 1500) > 8800);
    assert.ok(goertzel(xb, 1600, 16000, 16000, 600) < 2, 'no trace of the other call');
    await a.hangup();
    await b.hangup();
    await server.close();
  });
});

test('a converted write that yields nothing yet still says slow down when the queue is over the mark', async (t) => {
  let call!: Call;
  const server = createServer((c) => void (call = c), { writeHighWaterMarkMs: 50 });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  const client = await connect({ port });
  t.after(() => client.reset());
  await until(() => call !== undefined, 'the call');
  void call.play(Buffer.alloc(8000)); // 500 ms of slin 8 kHz, over the 50 ms mark
  // Stereo is converted (AudioSocket carries mono): half a stereo sample converts to nothing yet.
  const stereo = { encoding: 'slin', sampleRate: 8000, channels: 2 } as const;
  assert.equal(call.write(Buffer.alloc(2), stereo), false);
  assert.equal(call.write(Buffer.alloc(1), stereo), false);
});
