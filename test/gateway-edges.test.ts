/**
 * Edge cases of the gateway (docs/gateway.md) against Twilio's "Media Streams - WebSocket
 * Messages" reference (twilio.com/docs/voice/media-streams/websocket-messages) and the bots that
 * read it (OpenAI Agents SDK TwilioRealtimeTransportLayer, Vocode, Pipecat). Over real sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as connectTcp, createServer as createNetServer, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { slinToUlaw, ulawToSlin } from '#lib/audio/g711.js';
import { signal, until } from './helpers.js';
import { startTwilioBot, type TwilioMessage } from './twilio-bot.js';
import { gateway } from './gateway-harness.js';
import { bridgeCall, createServer, type BotBridge, type Call } from '#lib/index.js';

const audible = (frames: readonly Buffer[]): Buffer[] => frames.filter((f) => f.some((b) => b !== 0));
const medias = (ms: readonly TwilioMessage[]): TwilioMessage[] => ms.filter((m) => m.event === 'media');

// Twilio: media.timestamp is the "Presentation Timestamp in Milliseconds from the start
// of the stream" and chunk counts messages; when audio is missing the timestamp jumps. Bots rely on
// it: the OpenAI Agents SDK's TwilioRealtimeTransportLayer (#sendTwilioAudio) pads
// `timestamp - nextInputTimestampMs` of silence into the model when the timestamp jumps, and
// Vocode fills gaps from `media.timestamp` the same way. The gateway drops caller audio while the
// bot is not reading (maxBotBacklogMs) and then resumes with timestamp = (chunk - 1) x 20, as if
// no time had passed: the bot's timeline silently loses the dropped seconds (its VAD / turn
// timing and any timestamp-based alignment drift). Expected: after a drop of D ms, the next
// chunk's timestamp is at least (chunk - 1) x 20 + D. Fix: src/gateway/bridge.ts (#dropped should
// advance the session's media clock; BotSession.media needs the chunk's media time) and
// src/gateway/twilio.ts (timestamp from that clock, not from the chunk counter).
test('gateway: caller audio dropped while the bot does not read shows as a jump in media.timestamp', async (t) => {
  const bot = await startTwilioBot();
  t.after(() => bot.close());
  const g = await gateway(t, 'audiosocket', { url: bot.url, maxBotBacklogMs: 200, botNotReadingTimeoutMs: 60_000 });
  const stream = await bot.nextStream();
  // The bridge sends `start` once its connection is open: audio dropped before that (while
  // connecting) is not on the media clock, and would be counted in the same warning.
  await until(() => stream.messages.some((m) => m.event === 'start'), 'start');
  stream.ws.pause();
  const frame = signal(320, 2);
  for (let i = 0; i < 60_000; i++) g.caller.send(frame);
  await until(() => g.warnings.some((w) => w.code === 'PEER_NOT_READING'), 'PEER_NOT_READING');
  await until(() => g.bridge.stats.callerDroppedMs > 0, 'some caller audio dropped');
  stream.ws.resume();
  // Keep the caller talking until the bridge sends again and reports the drop.
  const timer = setInterval(() => g.caller.send(frame), 20);
  t.after(() => clearInterval(timer));
  await until(() => g.warnings.some((w) => w.code === 'CALLER_AUDIO_DROPPED'), 'CALLER_AUDIO_DROPPED', 60_000);
  const droppedMs = g.warnings.find((w) => w.code === 'CALLER_AUDIO_DROPPED')!.droppedMs!;
  // The chunks sent before the drop may still be on their way to the bot (in the kernel's
  // buffers, which the bridge cannot see): wait for one sent after it.
  const sentBefore = g.bridge.stats.chunksToBot;
  await until(() => medias(stream.messages).some((m) => Number(m.media.chunk) > sentBefore), 'media sent after the drop', 60_000);
  clearInterval(timer);
  const last = medias(stream.messages).find((m) => Number(m.media.chunk) > sentBefore)!;
  const chunk = Number(last.media.chunk);
  const ts = Number(last.media.timestamp);
  assert.ok(droppedMs > 0);
  assert.ok(
    ts >= (chunk - 1) * 20 + droppedMs,
    `chunk ${chunk} has timestamp ${ts} ms after ${droppedMs} ms of caller audio were dropped: expected >= ${(chunk - 1) * 20 + droppedMs}`,
  );
});

test('gateway: the caller hanging up while the bot never answers the upgrade ends the bridge at once (caller-hangup)', async (t) => {
  const held: Socket[] = [];
  const tcp = createNetServer((s) => {
    held.push(s);
    s.resume();
  }); // accepts, reads the upgrade request, never answers
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  t.after(() => {
    for (const s of held) s.destroy();
    tcp.close();
  });
  const url = `ws://127.0.0.1:${(tcp.address() as AddressInfo).port}/media`;
  const g = await gateway(t, 'audiosocket', { url, connectTimeoutMs: 30_000 });
  g.caller.send(signal(320, 1));
  g.caller.dtmf('3');
  await until(() => held.length === 1, 'the bot got the connection');
  const t0 = performance.now();
  await g.caller.hangup();
  const end = await g.bridge.closed;
  assert.equal(end.reason, 'caller-hangup');
  assert.ok(performance.now() - t0 < 2000, `the bridge took ${Math.round(performance.now() - t0)} ms to end`);
  await until(() => held[0]!.destroyed || held[0]!.readableEnded, 'the half-open upgrade is closed');
});

test('gateway: DTMF and audio before the bot accepts are sent after start, in order, with consecutive sequence numbers', async (t) => {
  const wss = new WebSocketServer({ noServer: true });
  const http = createHttpServer();
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const got: TwilioMessage[] = [];
  http.on('upgrade', (req, socket, head) => {
    void gate.then(() =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('message', (d) => got.push(JSON.parse(d.toString()) as TwilioMessage));
      }),
    );
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  t.after(() => {
    for (const c of wss.clients) c.terminate();
    http.close();
  });
  const g = await gateway(t, 'websocket', { url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/` });
  const a = signal(320 * 3, 4);
  g.caller.send(a.subarray(0, 320));
  g.caller.dtmf('1');
  g.caller.send(a.subarray(320, 640));
  g.caller.dtmf('#');
  g.caller.send(a.subarray(640, 960));
  await new Promise((r) => setTimeout(r, 200));
  release();
  await until(
    () => got.filter((m) => m.event === 'media').length >= 3 && got.filter((m) => m.event === 'dtmf').length === 2,
    'all at the bot',
  );
  assert.deepEqual(
    got.slice(0, 7).map((m) => m.event + (m.dtmf ? `:${m.dtmf.digit}` : '')),
    ['connected', 'start', 'media', 'dtmf:1', 'media', 'dtmf:#', 'media'],
  );
  assert.deepEqual(
    got.slice(1, 7).map((m) => m.sequenceNumber),
    ['1', '2', '3', '4', '5', '6'],
  );
});

for (const transport of ['audiosocket', 'websocket'] as const) {
  test(`gateway on ${transport}: rapid clears: each clear echoes the marks before it, the audio after the last plays whole and its mark comes after`, async (t) => {
    const bot = await startTwilioBot();
    t.after(() => bot.close());
    const g = await gateway(t, transport, { url: bot.url });
    const stream = await bot.nextStream();
    const a = slinToUlaw(signal(16000, 5));
    const b = slinToUlaw(signal(8000, 6));
    const c = slinToUlaw(signal(4800, 7)); // 300 ms
    stream.sendMedia(a);
    stream.mark('m1');
    stream.clear();
    stream.sendMedia(b);
    stream.mark('m2');
    stream.clear();
    stream.sendMedia(c);
    stream.mark('m3');
    await until(() => stream.marks.length === 3, 'three echoes', 10_000);
    assert.deepEqual(
      stream.marks.map((m) => m.name),
      ['m1', 'm2', 'm3'],
    );
    await until(() => audible(g.caller.heard).length >= 15, 'c heard');
    const heard = Buffer.concat(audible(g.caller.heard));
    const want = ulawToSlin(c);
    assert.ok(heard.includes(want), 'the audio after the last clear is heard whole');
    assert.deepEqual(stream.violations, []);
  });

  test(`gateway on ${transport}: a mark after every 20 ms media message (as the OpenAI Agents SDK sends) comes back for each, in order, never before its audio played`, async (t) => {
    const bot = await startTwilioBot();
    t.after(() => bot.close());
    const g = await gateway(t, transport, { url: bot.url });
    const stream = await bot.nextStream();
    const n = 60;
    const audio = slinToUlaw(signal(320 * n, 9));
    const heardAt: number[] = [];
    stream.on('message', (m) => {
      if (m.event === 'mark') heardAt.push(audible(g.caller.heard).length);
    });
    for (let i = 0; i < n; i++) {
      stream.sendMedia(audio.subarray(i * 160, (i + 1) * 160));
      stream.mark(`m${i}`);
    }
    await until(() => stream.marks.length === n, `${n} echoes`, 10_000);
    assert.deepEqual(
      stream.marks.map((m) => m.name),
      Array.from({ length: n }, (_, i) => `m${i}`),
    );
    for (let i = 0; i < n; i++) assert.ok(heardAt[i]! >= i + 1, `m${i} echoed when the caller had heard ${heardAt[i]} frames`);
    assert.equal(g.bridge.stats.marksEchoed, n);
  });

  test(`gateway on ${transport}: a bot closing with 1011 mid-reply: its audio plays out, bot-closed with the code`, async (t) => {
    const bot = await startTwilioBot();
    t.after(() => bot.close());
    const g = await gateway(t, transport, { url: bot.url });
    const stream = await bot.nextStream();
    const reply = slinToUlaw(signal(8000, 3)); // 500 ms
    stream.sendMedia(reply);
    stream.ws.close(1011, 'internal error');
    const end = await g.bridge.closed;
    assert.equal(end.reason, 'bot-closed');
    assert.deepEqual(end.botClose, { code: 1011, reason: 'internal error' });
    await g.caller.closed;
    assert.ok(audible(g.caller.heard).length >= 25, `heard ${audible(g.caller.heard).length} of 25 frames`);
  });

  test(`gateway on ${transport}: server.close() with a live bridge sends stop then closes 1000, and the bridge ends caller-hangup`, async (t) => {
    const bot = await startTwilioBot();
    t.after(() => bot.close());
    const g = await gateway(t, transport, { url: bot.url });
    const stream = await bot.nextStream();
    stream.sendMedia(slinToUlaw(signal(16000 * 5, 3))); // 10 s queued
    stream.mark('pending');
    g.caller.send(signal(320, 1));
    await until(() => stream.audio.length >= 1, 'caller audio at the bot');
    await g.server.close();
    const end = await g.bridge.closed;
    assert.equal(end.reason, 'caller-hangup');
    assert.equal(await stream.closed(), 1000);
    assert.equal(stream.messages.at(-1)!.event, 'stop');
    assert.deepEqual(stream.violations, []);
    assert.equal(g.call.listenerCount('audio'), 0);
    assert.equal(g.call.listenerCount('dtmf'), 0);
  });
}

test('gateway: while the call is ending (hung up, the caller not gone yet) the bot gets stop at once, and its media and marks are not taken', async (t) => {
  const bot = await startTwilioBot();
  t.after(() => bot.close());
  let bridge: BotBridge | undefined;
  let call: Call | undefined;
  const server = createServer(
    (c) => {
      call = c;
      bridge = bridgeCall(c, { url: bot.url });
      return bridge.closed;
    },
    { hangupTimeout: 10_000 },
  );
  const { port } = await server.listen({ port: 0 });
  t.after(() => server.close());
  // A caller that reads but does not close after our hangup message: the call stays ending.
  const peer = connectTcp(port, '127.0.0.1');
  peer.on('data', () => {});
  peer.on('error', () => {});
  t.after(() => peer.destroy());
  peer.write(Buffer.concat([Buffer.from([1, 0, 16]), randomBytes(16)]));
  const stream = await bot.nextStream();
  await until(() => bridge !== undefined, 'the call is bridged');
  stream.sendMedia(slinToUlaw(signal(16000, 3))); // 1 s
  stream.mark('queued');
  // The reply and its mark at the call, most of the reply still queued: then hang up.
  await until(() => bridge!.stats.marks === 1 && call!.stats.queuedMs > 0, 'the reply and its mark queued');
  void call!.hangup();
  assert.equal(call!.connected, false);
  // The bot goes on talking, not knowing yet: none of it may reach the ending call.
  stream.sendMedia(slinToUlaw(signal(1600, 4)));
  stream.mark('late');
  await until(() => stream.messages.some((m) => m.event === 'stop'), 'stop at the bot');
  assert.equal(await stream.closed(), 1000);
  // The queued reply never played: its mark is not echoed as if it had.
  assert.deepEqual(stream.marks, []);
  assert.equal(bridge!.stats.marksEchoed, 0);
  peer.destroy();
  const end = await bridge!.closed;
  assert.equal(end.reason, 'caller-hangup');
  assert.match(end.detail, /local-hangup/);
});

test('gateway: a bot whose connection drops without a close frame (1006) ends the bridge as bot-error', async (t) => {
  const bot = await startTwilioBot();
  t.after(() => bot.close());
  const g = await gateway(t, 'audiosocket', { url: bot.url });
  const stream = await bot.nextStream();
  stream.ws.terminate();
  const end = await g.bridge.closed;
  assert.equal(end.reason, 'bot-error');
  assert.equal(end.botClose?.code, 1006);
  assert.match(end.detail, /without a close frame \(1006\)/);
});

test('gateway: wss:// to a bot that answers without TLS, and a close reason with a newline, each end in one line', async (t) => {
  const bot = await startTwilioBot();
  t.after(() => bot.close());
  const tls = await gateway(t, 'audiosocket', { url: bot.url.replace('ws://', 'wss://') });
  const refused = await tls.bridge.closed;
  assert.equal(refused.reason, 'bot-unreachable');
  assert.match(refused.detail, /^bot unreachable: the TLS handshake failed \(the server answered without TLS\)$/);
  const g = await gateway(t, 'audiosocket', { url: bot.url });
  const stream = await bot.nextStream();
  stream.ws.close(4000, 'line one\nline two');
  const end = await g.bridge.closed;
  assert.equal(end.reason, 'bot-closed');
  assert.equal(end.detail, 'bot closed the stream (4000 "line one\\nline two")');
  assert.equal(end.botClose?.reason, 'line one\nline two');
});

test('gateway: a bot that stops reading while the caller talks in real time is noticed by its unanswered pings, not once the kernel buffers fill', async (t) => {
  const bot = await startTwilioBot();
  t.after(() => bot.close());
  const g = await gateway(t, 'audiosocket', { url: bot.url, maxBotBacklogMs: 300, botNotReadingTimeoutMs: 1500 });
  const stream = await bot.nextStream();
  await until(() => stream.messages.some((m) => m.event === 'start'), 'start');
  const frame = signal(320, 2);
  const timer = setInterval(() => g.caller.send(frame), 20);
  t.after(() => clearInterval(timer));
  await until(() => g.bridge.stats.chunksToBot >= 50, 'a second of caller audio at the bot');
  stream.ws.pause();
  const end = await g.bridge.closed;
  clearInterval(timer);
  assert.equal(end.reason, 'bot-not-reading');
  assert.ok(g.warnings.some((w) => w.code === 'PEER_NOT_READING'));
  assert.ok(g.bridge.stats.callerDroppedMs > 0);
});

test('gateway: a bot that reads, behind a round trip longer than maxBotBacklogMs, loses no caller audio', async (t) => {
  const bot = await startTwilioBot();
  t.after(() => bot.close());
  // A proxy that holds every chunk 300 ms each way: a 600 ms round trip, over the 500 ms limit.
  const botPort = Number(new URL(bot.url).port);
  const held = new Set<NodeJS.Timeout>();
  const later = (fn: () => void): void => {
    const timer = setTimeout(() => {
      held.delete(timer);
      fn();
    }, 300);
    held.add(timer);
  };
  const proxy = createNetServer((client) => {
    const upstream = connectTcp(botPort, '127.0.0.1');
    client.on('data', (d) => later(() => upstream.writable && upstream.write(d)));
    upstream.on('data', (d) => later(() => client.writable && client.write(d)));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => later(() => upstream.destroy()));
    upstream.on('close', () => later(() => client.destroy()));
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  t.after(() => {
    for (const timer of held) clearTimeout(timer);
    proxy.close();
  });
  const url = bot.url.replace(`:${botPort}`, `:${(proxy.address() as AddressInfo).port}`);
  const g = await gateway(t, 'audiosocket', { url, maxBotBacklogMs: 500, botNotReadingTimeoutMs: 5000 });
  const stream = await bot.nextStream();
  const frame = signal(320, 2);
  const timer = setInterval(() => g.caller.send(frame), 20);
  t.after(() => clearInterval(timer));
  // Three seconds of caller audio at the bot, a ping answered every 600 ms meanwhile.
  await until(() => medias(stream.messages).length >= 150, 'three seconds of caller audio at the bot', 30_000);
  clearInterval(timer);
  assert.equal(g.bridge.stats.callerDroppedMs, 0);
  assert.ok(!g.warnings.some((w) => w.code === 'PEER_NOT_READING'), JSON.stringify(g.warnings));
});
