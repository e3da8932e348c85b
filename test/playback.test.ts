/**
 * Paced playback over real TCP with real timers.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, connect, type Call, type AudioFrame } from '#lib/index.js';

function ramp(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 2) b.writeInt16LE(((i / 2) % 2000) - 1000 || 1, i);
  return b;
}

async function setup(options = {}) {
  const server = createServer({ keepAlive: false, ...options });
  const { port } = await server.listen({ port: 0 });
  const callP = once(server, 'call').then(([c]) => c as Call);
  const client = await connect({ port });
  const call = await callP;
  const arrivals: number[] = [];
  const frames: Buffer[] = [];
  client.on('audio', (f: AudioFrame) => {
    arrivals.push(performance.now());
    frames.push(Buffer.from(f.payload));
  });
  return { server, client, call, arrivals, frames };
}

describe('paced playback over loopback (real time)', () => {
  test('a 5 s play arrives as 250 frames on the 20 ms grid, byte-exact', async () => {
    const { server, client, call, arrivals, frames } = await setup();
    const audio = ramp(5 * 16000);
    const t0 = performance.now();
    const result = await call.play(audio);
    const elapsed = performance.now() - t0;
    await sleep(30);
    assert.equal(result.status, 'done');
    assert.equal(result.framesSent, 250);
    assert.equal(frames.length, 250);
    assert.deepEqual(Buffer.concat(frames), audio);
    // Drift-free: frame k leaves between first + 20 (k - 2) (three frames of lead) and first + 20 k.
    const first = arrivals[0]!;
    const errors = arrivals.map((t, k) => (t < first + 20 * (k - 2) ? t - (first + 20 * (k - 2)) : Math.max(0, t - (first + 20 * k))));
    const worst = Math.max(...errors.map(Math.abs));
    assert.ok(worst < 15, `worst deviation from the grid ${worst.toFixed(1)} ms`);
    assert.ok(Math.abs(errors.at(-1)!) < 15, `drift after 5 s: ${errors.at(-1)!.toFixed(1)} ms`);
    assert.ok(elapsed > 4900 && elapsed < 5300, `play took ${elapsed.toFixed(0)} ms`);
    await client.close();
    await server.close();
  });

  test('streamed TTS-like chunks (Readable, odd sizes, irregular timing) join seamlessly', async () => {
    const { server, client, call, frames } = await setup();
    const audio = ramp(16000); // 1 s
    async function* tts() {
      let off = 0;
      let i = 0;
      while (off < audio.length) {
        const n = [777, 1, 4095, 333, 2048][i++ % 5]!;
        yield audio.subarray(off, off + n);
        off += n;
        await sleep(i % 4 === 0 ? 30 : 0);
      }
    }
    const result = await call.play(Readable.from(tts()));
    await sleep(30);
    assert.equal(result.status, 'done');
    assert.equal(frames.length, 50);
    assert.deepEqual(Buffer.concat(frames), audio);
    await client.close();
    await server.close();
  });

  test('createWriteStream: backpressure in ms of audio, pipeline finishes when the audio is sent', async () => {
    const { server, client, call, frames } = await setup();
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
    await sleep(30);
    assert.ok(falseSeen > 0, 'write() returned false at least once');
    assert.ok(maxBuffered <= 1600 + 1000, `buffered ${maxBuffered} bytes`);
    assert.ok(elapsed >= 900, `finished after ${elapsed.toFixed(0)} ms: after the audio was sent`);
    assert.deepEqual(Buffer.concat(frames).subarray(0, audio.length), audio);
    await client.close();
    await server.close();
  });

  test('barge-in: DTMF flushes the prompt within one frame; a write stream ends quietly as interrupted', async () => {
    const { server, client, call, arrivals, frames } = await setup({ keepAlive: true });
    const prompt = call.play(Buffer.alloc(10 * 16000, 0x11));
    const stream = call.createWriteStream();
    const tts = Readable.from(
      (async function* () {
        for (let i = 0; i < 100; i++) {
          yield Buffer.alloc(1600, 0x22);
          await sleep(10);
        }
      })(),
    );
    const piped = pipeline(tts, stream);
    const interrupted = once(stream, 'interrupted');
    call.on('dtmf', () => call.flush());
    await sleep(300);
    const tDtmf = performance.now();
    client.sendDtmf('#');
    const r = await prompt;
    assert.equal(r.status, 'interrupted');
    assert.equal(r.reason, 'flush');
    const [result] = await interrupted;
    assert.equal((result as { reason: string }).reason, 'flush');
    await piped; // barge-in is not an error: the pipeline completes
    assert.equal((stream as { interrupted?: unknown }).interrupted, result);
    await sleep(100);
    // From one frame after the key press on, only keep-alive silence arrives.
    const after = frames.filter((_, i) => arrivals[i]! > tDtmf + 25);
    assert.ok(after.length >= 3, 'keep-alive continues');
    assert.ok(after.every((f) => f.every((b) => b === 0)), 'nothing of the prompt after the flush');
    assert.ok(frames.some((f) => f[0] === 0x11), 'the prompt was playing before');
    await client.close();
    await server.close();
  });

  test('mark then hangup: the mark fires after the prompt, the hangup follows', async () => {
    const { server, client, call, frames } = await setup();
    void call.play(Buffer.alloc(5 * 320, 0x33));
    const marked = call.mark('done');
    call.on('mark', (name) => {
      if (name === 'done') void call.hangup();
    });
    assert.equal(await marked, true);
    assert.equal((await client.closed).by, 'server-hangup');
    assert.equal(frames.length, 5);
    await server.close();
  });
});
