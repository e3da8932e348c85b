/**
 * One call, two transports: the behaviours the call contract promises mean the same on
 * AudioSocket and chan_websocket, over real sockets with the simulated Asterisks.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Call, type CallHandler, type SentFrame, type ServerOptions } from '#lib/index.js';
import { connectWebSocket, type AsteriskWebSocketClient, type WebSocketConnectOptions } from '#lib/websocket/client.js';
import { signal, until } from './helpers.js';
import { slinToUlaw } from '#lib/audio/g711.js';

async function serve(t: TestContext, handler: CallHandler, options: ServerOptions = {}) {
  const server = createServer(handler, { ...options, websocket: { port: 0, ...(options.websocket ?? {}) } as ServerOptions['websocket'] });
  const { port } = await server.listen({ port: 0 });
  t.after(() => server.close());
  const url = `ws://127.0.0.1:${server.websocketAddress()!.port}/media`;
  const dial = async (o: Partial<WebSocketConnectOptions> = {}): Promise<AsteriskWebSocketClient> => {
    const c = await connectWebSocket({ url, ...o });
    t.after(() => c.drop());
    return c;
  };
  return { server, port, dial };
}

/** A call placed on `transport` by a caller that keeps everything it hears (slin 8 kHz), once the server has it. */
async function answeredCall(t: TestContext, transport: 'audiosocket' | 'websocket'): Promise<{ call: Call; heard: Buffer[] }> {
  let call: Call | undefined;
  const { port, dial } = await serve(t, (c) => void (call = c));
  const heard: Buffer[] = [];
  if (transport === 'audiosocket') {
    const client = await connect({ port });
    t.after(() => client.hangup());
    client.on('audio', (f) => heard.push(Buffer.from(f.payload)));
  } else {
    const client = await dial({ format: 'slin' });
    client.on('played', (f) => heard.push(Buffer.from(f)));
  }
  await until(() => call !== undefined, 'the call');
  return { call: call!, heard };
}

test('chan_websocket echo of u-law gives back the same bytes (no decode and re-encode), 0x7F included', async (t) => {
  const { dial } = await serve(t, (call) => call.on('audio', (f) => call.write(f.payload, f.format)));
  const client = await dial({ format: 'ulaw' });
  const frames = Array.from({ length: 20 }, (_, k) =>
    Buffer.from(Array.from({ length: 160 }, (_, i) => ((i + k) % 2 === 0 ? 0x7f : (i * 7 + k) & 0xff))),
  );
  for (const f of frames) client.sendAudio(f);
  await until(() => client.stats.framesPlayed >= 20, '20 echoed frames played');
  assert.deepEqual(Buffer.concat(client.played.slice(0, 20)), Buffer.concat(frames));
});

test('AudioSocket and chan_websocket stats have the same common fields, and no transport-foreign field', async (t) => {
  const calls: Call[] = [];
  const { port, dial } = await serve(t, (call) => {
    calls.push(call);
    call.on('audio', (f) => call.write(f.payload, f.format));
  });
  const as = await connect({ port });
  t.after(() => as.hangup());
  const ws = await dial({ format: 'slin' });
  for (let i = 0; i < 5; i++) {
    as.sendAudio(signal(320));
    ws.sendAudio(signal(320));
  }
  await until(() => calls.length === 2 && calls.every((c) => c.stats.audioIn === 5), 'five frames on each call');
  const a = calls.find((c) => c.transport === 'audiosocket')!;
  const w = calls.find((c) => c.transport === 'websocket')!;
  const common = ['messagesIn', 'bytesIn', 'audioIn', 'framesSent', 'queuedMs', 'flushedMs', 'droppedMs', 'unsentMs', 'droppedOut'];
  for (const key of common) {
    assert.ok(key in a.stats, `AudioSocket stats has ${key}`);
    assert.ok(key in w.stats, `chan_websocket stats has ${key}`);
  }
  for (const key of ['silenceFrames', 'lateSlots', 'droppedSlots', 'caughtUpFrames', 'underruns']) {
    assert.ok(key in a.stats, `AudioSocket stats has ${key}`);
    assert.ok(!(key in w.stats), `chan_websocket stats has no pacer field ${key}`);
  }
  assert.equal(a.stats.audioIn, w.stats.audioIn);
  assert.equal(w.stats.bytesIn, 5 * 320, 'chan_websocket bytesIn counts the audio payloads');
});

test('chan_websocket sent events follow playout: their instants are a frame apart, not the instant of the burst to Asterisk', async (t) => {
  const sent: SentFrame[] = [];
  let played: Promise<unknown> | undefined;
  const { dial } = await serve(t, (call) => {
    call.on('sent', (f) => sent.push(f));
    played = call.play(signal(16000));
  });
  const client = await dial({ format: 'slin' });
  await until(() => played !== undefined, 'the play');
  await played;
  assert.equal(sent.length, 50);
  // Everything was handed to Asterisk at once (the lead is 1 s); the caller hears it frame by
  // frame. The instants come from the playout estimate, re-anchored on Asterisk's mark answers,
  // so they are in order and span the prompt, give or take the estimate's error.
  for (let i = 1; i < sent.length; i++) {
    assert.ok(sent[i]!.atMs >= sent[i - 1]!.atMs, `frame ${i} at ${sent[i]!.atMs} before ${sent[i - 1]!.atMs}`);
  }
  const span = sent[49]!.atMs - sent[0]!.atMs;
  assert.ok(span >= 49 * 20 - 60, `the 50 frames span ${span} ms of playout`);
  assert.ok(client.stats.framesPlayed >= 50);
  assert.deepEqual(Buffer.concat(sent.map((f) => f.payload)), Buffer.concat(client.played.slice(0, 50)));
});

for (const transport of ['audiosocket', 'websocket'] as const) {
  test(`flush() on ${transport}: what it drops plus what the caller heard is the whole prompt`, async (t) => {
    const { call, heard } = await answeredCall(t, transport);
    const prompt = signal(48000);
    const result = call.play(prompt);
    const audible = (): number => heard.filter((f) => f.some((b) => b !== 0)).length;
    await until(() => audible() >= 10, 'ten frames of the prompt heard');
    const dropped = call.flush();
    const r = await result;
    assert.equal(r.status, 'interrupted');
    assert.ok(dropped > 0 && dropped <= 3000 - 100, `flush() returned ${dropped} ms`);
    // Give what was already on its way time to arrive (AudioSocket: at most the pacer's lead).
    await until(() => call.stats.queuedMs === 0, 'an empty queue');
    const flushed = call.stats.flushedMs;
    if (transport === 'websocket') {
      // Exact once Asterisk has answered GET_STATUS: played + dropped in Asterisk + dropped here = the prompt.
      const playedMs = audible() * 20;
      assert.ok(Math.abs(playedMs + flushed - 3000) <= 20, `heard ${playedMs} ms + flushed ${flushed} ms`);
      assert.ok(Math.abs(r.sentMs - playedMs) <= 20, `play result says ${r.sentMs} ms heard; the caller heard ${playedMs} ms`);
    } else {
      assert.ok(flushed >= dropped - 1e-6 && flushed <= 3000, `flushed ${flushed} ms`);
    }
  });
}

for (const transport of ['audiosocket', 'websocket'] as const) {
  test(`write() on ${transport} takes any length: 3 s in one write (over one message's 65535 bytes) plays whole; an empty write sends nothing`, async (t) => {
    const { call, heard } = await answeredCall(t, transport);
    assert.equal(call.write(Buffer.alloc(0)), true);
    const prompt = signal(96000, 5);
    call.write(prompt);
    await call.drained();
    const audible = (): Buffer[] => heard.filter((f) => f.some((b) => b !== 0));
    await until(() => audible().length >= 300, 'the 300 frames at the caller');
    assert.deepEqual(Buffer.concat(audible()), prompt);
    assert.equal(call.stats.droppedMs, 0);
  });
}

test('chan_websocket: writes whose sizes are not whole frames join without silence between them (a bot sending 125 ms messages)', async (t) => {
  let call: Call | undefined;
  const { dial } = await serve(t, (c) => void (call = c));
  const client = await dial({ format: 'ulaw' });
  await until(() => call !== undefined, 'the call');
  const part = Buffer.from(Array.from({ length: 1000 }, (_, i) => 0x10 + (i % 0x40)));
  call!.write(part, 'ulaw');
  // The second write comes after the first has been handed to Asterisk, its tail still short of a frame.
  await until(() => client.played.length >= 1, 'the first write playing');
  call!.write(part, 'ulaw');
  await call!.drained();
  const heard = client.playedAudio();
  const start = heard.findIndex((b) => b !== 0xff);
  assert.deepEqual(
    heard.subarray(start, start + 2000),
    Buffer.concat([part, part]),
    'the two writes back to back, no silence between them',
  );
});

test('chan_websocket slin16: u-law writes of any size (resampled) play without a dropout', async (t) => {
  let call: Call | undefined;
  const { dial } = await serve(t, (c) => void (call = c));
  const client = await dial({ format: 'slin16' });
  await until(() => call !== undefined, 'the call');
  // A 400 Hz tone as u-law, sent as a bot would: 125 ms messages, a little faster than real time.
  const tone = Buffer.alloc(8000 * 2);
  for (let i = 0; i < 8000; i++) tone.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 400 * i) / 8000)), 2 * i);
  const ulaw = slinToUlaw(tone);
  for (let at = 0; at < ulaw.length; at += 1000) {
    call!.write(ulaw.subarray(at, at + 1000), 'ulaw');
    await until(() => client.played.length >= Math.floor(at / 160) - 20, 'Asterisk playing along');
  }
  await call!.drained();
  const audio = client.playedAudio();
  const samples = new Int16Array(audio.buffer, audio.byteOffset, audio.length >> 1);
  const first = samples.findIndex((v) => Math.abs(v) > 1000);
  // Inside the tone no 4 samples in a row are near zero (the sine moves ~1250 per sample there).
  let run = 0;
  for (let i = first; i < first + 15_500; i++) {
    run = Math.abs(samples[i]!) < 300 ? run + 1 : 0;
    assert.ok(run < 4, `a dropout at sample ${i - first} of the tone`);
  }
});
