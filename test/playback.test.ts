/**
 * Paced playback over real TCP with real timers.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestContext } from 'node:test';
import { createServer, connect, systemClock, type Call, type AudioFrame, type Clock } from '#lib/index.js';
import { until } from './helpers.js';

function ramp(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 2) b.writeInt16LE(((i / 2) % 2000) - 1000 || 1, i);
  return b;
}

async function setup(t: TestContext, options = {}) {
  // The server's sends are stamped with the pacer's own last clock reading: timing is checked on
  // what the server decided, not on when this process (which also runs the client) got to read it.
  let lastReading = 0;
  const clock: Clock = { ...systemClock, now: () => (lastReading = performance.now()) };
  const server = createServer({ keepAlive: false, clock, ...options });
  t.after(() => server.close());
  const { port } = await server.listen({ port: 0 });
  const callP = once(server, 'call').then(([c]) => c as Call);
  const client = await connect({ port });
  t.after(() => client.hangup());
  const call = await callP;
  const sentAt: number[] = [];
  const sent: Buffer[] = [];
  call.on('sent', ({ payload }) => {
    sentAt.push(lastReading);
    sent.push(Buffer.from(payload));
  });
  const arrivals: number[] = [];
  const frames: Buffer[] = [];
  client.on('audio', (f: AudioFrame) => {
    arrivals.push(performance.now());
    frames.push(Buffer.from(f.payload));
  });
  return { server, client, call, arrivals, frames, sentAt, sent };
}

describe('paced playback over loopback (real time)', () => {
  test('a 5 s play arrives as 250 frames on the 20 ms grid, byte-exact', async (t) => {
    const { call, frames, sentAt } = await setup(t);
    const audio = ramp(5 * 16000);
    const t0 = performance.now();
    const result = await call.play(audio);
    const elapsed = performance.now() - t0;
    await until(() => frames.length >= 250, '250 frames at the client');
    assert.equal(result.status, 'done');
    assert.equal(result.framesSent, 250);
    assert.equal(frames.length, 250);
    assert.deepEqual(Buffer.concat(frames), audio);
    // On the pacer's clock, frame k leaves no earlier than first + 20 (k - 2) (three frames of
    // lead): strict, whatever the load.
    const first = sentAt[0]!;
    const early = sentAt.map((at, k) => first + 20 * (k - 2) - at);
    const late = sentAt.map((at, k) => at - (first + 20 * k));
    assert.ok(Math.max(...early) <= 1e-6, `a frame left ${Math.max(...early).toFixed(1)} ms before its lead allows`);
    assert.ok(elapsed > 4900, `play took ${elapsed.toFixed(0)} ms: it resolved before the audio played`);
    // Lateness depends on how busy the machine is: reported, not asserted (drift is asserted
    // under a ManualClock in outbound.test.ts; timing targets live in bench/).
    const lastSecond = late.slice(-50).sort((a, b) => a - b);
    t.diagnostic(
      `worst lateness ${Math.max(...late).toFixed(1)} ms; median in the last second ${lastSecond[25]!.toFixed(1)} ms; play took ${elapsed.toFixed(0)} ms`,
    );
  });

  test('streamed TTS-like chunks (Readable, odd sizes, irregular timing) join seamlessly', async (t) => {
    const { call, frames } = await setup(t);
    const audio = ramp(16000); // 1 s
    async function* tts() {
      let off = 0;
      let i = 0;
      while (off < audio.length) {
        const n = [777, 1, 4095, 333, 2048][i++ % 5]!;
        yield audio.subarray(off, off + n);
        off += n;
        await sleep(i % 4 === 0 ? 30 : 0); // irregular input timing is what is tested
      }
    }
    const result = await call.play(Readable.from(tts()));
    await until(() => frames.length >= 50, '50 frames at the client');
    assert.equal(result.status, 'done');
    assert.equal(frames.length, 50);
    assert.deepEqual(Buffer.concat(frames), audio);
  });

  test('createWriteStream: backpressure in ms of audio, pipeline finishes when the audio is sent', async (t) => {
    const { call, frames } = await setup(t);
    const audio = ramp(16000); // 1 s
    const stream = call.createWriteStream({ highWaterMarkMs: 100 });
    let falseSeen = 0;
    let maxBuffered = 0;
    const source = Readable.from(
      (function* () {
        for (let off = 0; off < audio.length; off += 1000) yield audio.subarray(off, off + 1000);
      })(),
    );
    const origWrite = stream.write.bind(stream);
    stream.write = ((chunk: Buffer, ...rest: unknown[]) => {
      const ok = (origWrite as (c: Buffer, ...r: unknown[]) => boolean)(chunk, ...rest);
      if (!ok) falseSeen++;
      maxBuffered = Math.max(maxBuffered, stream.writableLength);
      return ok;
    }) as typeof stream.write;
    const t0 = performance.now();
    await pipeline(source, stream);
    const elapsed = performance.now() - t0;
    await until(() => frames.length >= 50, '50 frames at the client');
    assert.ok(falseSeen > 0, 'write() returned false at least once');
    assert.ok(maxBuffered <= 1600 + 1000, `buffered ${maxBuffered} bytes`);
    assert.ok(elapsed >= 900, `finished after ${elapsed.toFixed(0)} ms: after the audio was sent`);
    assert.deepEqual(Buffer.concat(frames).subarray(0, audio.length), audio);
  });

  test('barge-in: DTMF flushes the prompt at once; a write stream ends quietly as interrupted', async (t) => {
    const { client, call, sent } = await setup(t, { keepAlive: true });
    const prompt = call.play(Buffer.alloc(10 * 16000, 0x11));
    const stream = call.createWriteStream();
    const tts = Readable.from(
      (async function* () {
        for (let i = 0; i < 100; i++) {
          yield Buffer.alloc(1600, 0x22);
          await sleep(10); // TTS arriving over time is the input under test
        }
      })(),
    );
    const piped = pipeline(tts, stream);
    const interrupted = once(stream, 'interrupted');
    let sentBeforeFlush = -1;
    call.on('dtmf', () => {
      call.flush();
      sentBeforeFlush = sent.length;
    });
    await until(() => sent.filter((f) => f[0] === 0x11).length >= 5, 'the prompt to be playing');
    client.sendDtmf('#');
    const r = await prompt;
    assert.equal(r.status, 'interrupted');
    assert.equal(r.reason, 'flush');
    const [result] = await interrupted;
    assert.equal((result as { reason: string }).reason, 'flush');
    await piped; // barge-in is not an error: the pipeline completes
    assert.equal((stream as { interrupted?: unknown }).interrupted, result);
    await until(() => sentBeforeFlush >= 0 && sent.length >= sentBeforeFlush + 3, 'three frames after the flush');
    // From the flush on (server side), only keep-alive silence leaves.
    const after = sent.slice(sentBeforeFlush);
    assert.ok(
      after.every((f) => f.every((b) => b === 0)),
      'nothing of the prompt or the stream after the flush',
    );
  });

  test('mark then hangup: the mark fires after the prompt, the hangup follows', async (t) => {
    const { client, call, frames } = await setup(t);
    // The hangup inside the mark listener closes the call while its completions are settled.
    const failures: Error[] = [];
    const onWarning = (w: Error): void => void ((w as { code?: string }).code === 'ERR_AUDIOSOCKET_HANDLER' && failures.push(w));
    process.on('warning', onWarning);
    t.after(() => process.off('warning', onWarning));
    void call.play(Buffer.alloc(5 * 320, 0x33));
    const marked = call.mark('done');
    call.on('mark', (name) => {
      if (name === 'done') void call.hangup();
    });
    assert.equal(await marked, true);
    assert.equal((await client.closed).by, 'server-hangup');
    assert.equal(frames.length, 5);
    await new Promise(setImmediate); // warnings are emitted on a later tick
    assert.deepEqual(
      failures.map((e) => e.message),
      [],
    );
  });
});
