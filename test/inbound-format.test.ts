/**
 * The channel-driver trap: G.711 labelled 0x10 is recognised by its byte rate and reported.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, connect, InboundFormatMeter, type AudioFrame, type Call, type CallWarning } from '#lib/index.js';
import { audioSocketCall, until } from './helpers.js';

async function sendFrames(port: number, frameBytes: number, fill: (i: number) => number, ms: number) {
  const server = createServer({ keepAlive: false });
  const { port: p } = await server.listen({ port });
  const callP = once(server, 'call').then(([c]) => audioSocketCall(c as Call));
  const client = await connect({ port: p });
  const call = await callP;
  const warnings: CallWarning[] = [];
  call.on('warning', (w) => warnings.push(w));
  try {
    const t0 = performance.now();
    for (let k = 0; performance.now() - t0 < ms; k++) {
      const frame = Buffer.alloc(frameBytes);
      for (let i = 0; i < frameBytes; i++) frame[i] = fill(i + k);
      client.sendAudio(frame);
      const wait = t0 + (k + 1) * 20 - performance.now();
      if (wait > 0) await sleep(wait); // the channel driver's 20 ms schedule, not synchronisation
    }
  } finally {
    await client.hangup();
    await server.close();
  }
  return { call, warnings };
}

test('160-byte 0x10 frames every 20 ms are reported as u-law, with the fix', async () => {
  // Quiet u-law speech: codes near 0xff/0x7f.
  const [ulaw, slin] = await Promise.all([
    sendFrames(0, 160, (i) => (i % 2 ? 0xfe : 0x7d), 1300),
    sendFrames(0, 320, (i) => i & 0xff, 1300),
  ]);
  assert.equal(ulaw.call.inboundFormatGuess?.verdict, 'g711');
  assert.equal(ulaw.call.inboundFormatGuess?.law, 'ulaw');
  assert.ok(Math.abs(ulaw.call.inboundFormatGuess!.bytesPerSecond - 8000) < 800);
  assert.equal(ulaw.warnings.length, 1);
  assert.equal(ulaw.warnings[0]!.code, 'INBOUND_FORMAT');
  assert.match(ulaw.warnings[0]!.message, /c\(slin\)/);
  assert.match(ulaw.warnings[0]!.message, /server option inbound: 'ulaw' \(CLI: --inbound ulaw\)/);
  assert.equal(slin.call.inboundFormatGuess?.verdict, 'slin');
  assert.equal(slin.warnings.length, 0);
});

test('the meter tells a-law from u-law by byte values and needs a full second', () => {
  const meter = new InboundFormatMeter(8000);
  const frame = Buffer.alloc(160, 0xd5);
  let result = null;
  for (let k = 0; k < 60 && result === null; k++) result = meter.push(frame, k * 20);
  assert.ok(result);
  assert.equal(result.verdict, 'g711');
  assert.equal(result.law, 'alaw');
  const early = new InboundFormatMeter(8000);
  for (let k = 0; k < 30; k++) assert.equal(early.push(frame, k * 20), null, 'not before 1 s');
  const odd = new InboundFormatMeter(8000);
  let r2 = null;
  for (let k = 0; k < 60 && r2 === null; k++) r2 = odd.push(Buffer.alloc(50), k * 20);
  assert.equal(r2?.verdict, 'unknown');
});

test('the meter is not fooled by a pause, frames read in pairs, or a stall and its burst', () => {
  const guess = (sizes: number, times: number[], fill = 0x12): ReturnType<InboundFormatMeter['push']> => {
    const meter = new InboundFormatMeter(8000);
    let result = null;
    for (const at of times) result ??= meter.push(Buffer.alloc(sizes, fill), at);
    return result;
  };
  const every20 = (fromMs: number, n: number): number[] => Array.from({ length: n }, (_, k) => fromMs + k * 20);
  // slin, 25 frames, a second of nothing (silence suppression, hold), 25 more.
  const paused = guess(320, [...every20(0, 25), ...every20(1500, 25)]);
  assert.equal(paused?.verdict, 'slin');
  assert.equal(paused?.bytesPerSecond, 16000);
  // G.711 the same way stays G.711.
  assert.equal(guess(160, [...every20(0, 25), ...every20(1500, 25)], 0xff)?.verdict, 'g711');
  // Two frames per read every 40 ms.
  const pairs = guess(
    320,
    every20(0, 60).map((t, k) => (k % 2 === 1 ? t - 20 + 0.1 : t)),
  );
  assert.equal(pairs?.verdict, 'slin');
  // A 200 ms stall, then its ten frames at once.
  const stalled = guess(320, [...every20(0, 20), ...Array.from({ length: 10 }, () => 600), ...every20(620, 30)]);
  assert.equal(stalled?.verdict, 'slin');
});

describe('odd-length inbound audio', () => {
  test('odd-length slin (a 1-byte CNG frame from an old channel driver) keeps whole samples; the echo survives', async (t) => {
    const server = createServer((call) => call.on('audio', (f) => call.write(f.payload, f.format)), { keepAlive: false });
    t.after(() => server.close());
    const { port } = await server.listen({ port: 0 });
    const calls: Call[] = [];
    server.on('call', (c) => calls.push(c));
    const client = await connect({ port });
    t.after(() => client.hangup());
    const echoed: Buffer[] = [];
    client.on('audio', (f) => echoed.push(Buffer.from(f.payload)));
    client.sendAudio(Buffer.from([0x42])); // CNG noise level byte
    client.sendAudio(Buffer.alloc(321, 7));
    client.sendAudio(Buffer.alloc(320, 8));
    await until(() => echoed.length >= 2 && calls[0]?.stats.messagesIn === 3, 'two echoes and three messages in');
    assert.equal(client.connected, true);
    assert.deepEqual(
      echoed.map((e) => e.length),
      [320, 320],
    );
    assert.equal(calls[0]!.stats.oddAudioIn, 2);
    assert.equal(calls[0]!.stats.emptyAudioIn, 1);
  });

  test('with receive set, an odd byte does not shift later samples', async (t) => {
    const server = createServer({ keepAlive: false, receive: 'slin' });
    t.after(() => server.close());
    const { port } = await server.listen({ port: 0 });
    const callP = once(server, 'call');
    const client = await connect({ port });
    t.after(() => client.hangup());
    const [call] = (await callP) as [Call];
    const frames: AudioFrame[] = [];
    call.on('audio', (f) => frames.push({ ...f, payload: Buffer.from(f.payload) }));
    const constant = Buffer.alloc(320);
    for (let i = 0; i < 160; i++) constant.writeInt16LE(1000, i * 2);
    client.sendAudio(Buffer.from([1]));
    client.sendAudio(constant);
    await until(() => call.stats.messagesIn === 2, 'both messages in');
    const samples = frames.flatMap((f) => Array.from({ length: f.payload.length / 2 }, (_, i) => f.payload.readInt16LE(i * 2)));
    assert.equal(samples.length, 160, 'the whole frame is delivered');
    assert.ok(
      samples.every((x) => x === 1000),
      'every sample intact',
    );
  });
});
