/**
 * The gateway over real sockets: simulated Asterisk (both transports) -> server -> bridgeCall ->
 * a Twilio-protocol bot (test/twilio-bot.ts, written from Twilio's message reference).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { createServer as createHttpsServer } from 'node:https';
import { WebSocketServer } from 'ws';
import { encodeWav, type CallWarning } from '#lib/index.js';
import { slinToUlaw, ulawToSlin } from '#lib/audio/g711.js';
import { signal, until } from './helpers.js';
import { startTwilioBot } from './twilio-bot.js';
import { gateway } from './gateway-harness.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../test/fixtures/tls/${name}`, import.meta.url));

/** Frames that carry sound (keep-alive silence is all zeros). */
const audible = (frames: readonly Buffer[]): Buffer[] => frames.filter((f) => f.some((b) => b !== 0));

for (const transport of ['audiosocket', 'websocket'] as const) {
  test(`gateway on ${transport}: connected, start, media chunks with counters, dtmf, then stop and close when the caller hangs up`, async (t) => {
    const bot = await startTwilioBot();
    t.after(() => bot.close());
    const { caller, bridge, call } = await gateway(t, transport, { url: bot.url }, {}, true, '/media?lang=fr');
    const stream = await bot.nextStream();
    const speech = signal(320 * 25, 7);
    for (let i = 0; i < 25; i++) caller.send(speech.subarray(i * 320, (i + 1) * 320));
    caller.dtmf('5');
    await until(() => stream.dtmf.length === 1 && stream.audio.length >= 25, '25 chunks and the digit at the bot');
    assert.deepEqual(stream.violations, []);
    assert.equal(stream.messages[0]!.event, 'connected');
    assert.equal(stream.messages[1]!.event, 'start');
    const params = stream.start!.start.customParameters as Record<string, string>;
    assert.equal(params.uuid, call.uuid);
    assert.equal(params.transport, transport);
    if (transport === 'websocket') assert.equal(params.lang, 'fr', 'URL parameters reach customParameters');
    assert.deepEqual(Buffer.concat(stream.audio.slice(0, 25)), slinToUlaw(speech), 'the caller audio, as mu-law, chunk for chunk');
    assert.equal(stream.dtmf[0], '5');
    assert.equal(bridge.ids.streamSid, stream.streamSid);

    await caller.hangup();
    const end = await bridge.closed;
    assert.equal(end.reason, 'caller-hangup');
    await stream.next((m) => m.event === 'stop');
    assert.equal(await stream.closed(), 1000);
    assert.deepEqual(stream.violations, []);
    assert.equal(stream.messages.at(-1)!.event, 'stop');
  });

  test(`gateway on ${transport}: the bot's audio is heard whole, and its mark comes back once it has played`, async (t) => {
    const bot = await startTwilioBot();
    t.after(() => bot.close());
    const { caller, bridge } = await gateway(t, transport, { url: bot.url });
    const stream = await bot.nextStream();
    const reply = slinToUlaw(signal(16000, 3)); // 1 s, one message: faster than real time
    stream.sendMedia(reply);
    stream.mark('reply-1');
    const echo = await stream.next((m) => m.event === 'mark');
    const heardAtEcho = audible(caller.heard).length;
    assert.equal(echo.mark.name, 'reply-1');
    assert.ok(heardAtEcho >= 50, `the mark came back when the caller had heard ${heardAtEcho} of 50 frames`);
    assert.deepEqual(Buffer.concat(audible(caller.heard).slice(0, 50)), ulawToSlin(reply), 'the reply, whole and in order');
    assert.equal(bridge.stats.marksEchoed, 1);
    assert.equal(bridge.stats.botAudioMs, 1000);
    assert.deepEqual(stream.violations, []);
  });

  test(`gateway on ${transport}: clear stops the bot's audio and echoes every pending mark`, async (t) => {
    const bot = await startTwilioBot();
    t.after(() => bot.close());
    const { caller, bridge, call } = await gateway(t, transport, { url: bot.url });
    const stream = await bot.nextStream();
    stream.sendMedia(slinToUlaw(signal(16000 * 5, 4))); // 5 s
    stream.mark('a');
    stream.sendMedia(slinToUlaw(signal(16000, 5)));
    stream.mark('b');
    await until(() => audible(caller.heard).length >= 5, 'the caller hears the reply');
    stream.clear();
    await until(() => stream.marks.length === 2, 'both marks echoed');
    assert.deepEqual(
      stream.marks.map((m) => m.name),
      ['a', 'b'],
    );
    await until(() => call.stats.queuedMs === 0 && bridge.stats.clears === 1, 'the clear reached the call');
    const heard = audible(caller.heard).length;
    assert.ok(heard < 250, `the caller heard ${heard} frames of 300, not the whole reply`);
    assert.ok(bridge.stats.clearedMs > 0);
  });

  test(`gateway on ${transport}: the bot closing its socket ends the call after what it sent has played`, async (t) => {
    const bot = await startTwilioBot();
    t.after(() => bot.close());
    const { caller, bridge } = await gateway(t, transport, { url: bot.url });
    const stream = await bot.nextStream();
    stream.sendMedia(slinToUlaw(signal(8000, 6))); // 0.5 s of goodbye
    stream.ws.close(1000, 'bye');
    const end = await bridge.closed;
    assert.equal(end.reason, 'bot-closed');
    assert.deepEqual(end.botClose, { code: 1000, reason: 'bye' });
    await caller.closed;
    assert.equal(audible(caller.heard).length, 25, 'the goodbye played whole before the hangup');
  });
}

test('gateway: caller audio that arrives while the bot connects is sent after start, in order, and beyond connectBufferMs is dropped and reported', async (t) => {
  let release!: () => void;
  const accepted = new Promise<void>((resolve) => (release = resolve));
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (_info, done) => void accepted.then(() => done(true)),
  });
  await once(wss, 'listening');
  t.after(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  const messages: Record<string, any>[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
  wss.on('connection', (ws) => ws.on('message', (d) => messages.push(JSON.parse(d.toString()))));
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
  const { caller, call, warnings } = await gateway(t, 'audiosocket', { url, connectBufferMs: 200 });
  const speech = signal(320 * 15, 9);
  for (let i = 0; i < 15; i++) caller.send(speech.subarray(i * 320, (i + 1) * 320));
  await until(() => call.stats.audioIn === 15, 'the 15 frames reached the call while the bot is still connecting');
  assert.equal(messages.length, 0);
  release();
  await until(() => messages.filter((m) => m.event === 'media').length === 10, 'the kept 200 ms at the bot');
  assert.deepEqual(
    messages.slice(0, 2).map((m) => m.event),
    ['connected', 'start'],
  );
  const media = messages.filter((m) => m.event === 'media');
  assert.deepEqual(
    media.map((m) => m.media.chunk),
    ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'],
  );
  // The newest 200 ms were kept: the caller's last words before the bot answered.
  assert.deepEqual(Buffer.from(media[0]!.media.payload, 'base64'), slinToUlaw(speech.subarray(5 * 320, 6 * 320)));
  await until(() => warnings.some((w) => w.code === 'CALLER_AUDIO_DROPPED'), 'the drop is reported');
  assert.equal(warnings.find((w) => w.code === 'CALLER_AUDIO_DROPPED')!.droppedMs, 100);
});

test('gateway: a bot that refuses the upgrade: the caller hears the fallback, then the call is hung up', async (t) => {
  const http = createHttpServer((_req, res) => res.writeHead(404).end());
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  t.after(() => http.close());
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/bot`;
  const dir = await mkdtemp(join(tmpdir(), 'gateway-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const fallbackFile = join(dir, 'sorry.wav');
  await writeFile(fallbackFile, encodeWav('slin16', signal(6400, 11)));
  const { caller, bridge } = await gateway(t, 'audiosocket', { url, fallbackFile });
  const end = await bridge.closed;
  assert.equal(end.reason, 'bot-unreachable');
  assert.match(end.detail, /HTTP 404 \(nothing at \/bot: check the path of the bot's URL\)/);
  await caller.closed;
  assert.ok(audible(caller.heard).length > 0, 'the fallback was heard');
});

test('gateway: an unreachable bot ends the call with bot-unreachable and a line that says why', async (t) => {
  const http = createHttpServer();
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const port = (http.address() as AddressInfo).port;
  await new Promise((resolve) => http.close(resolve));
  const { caller, bridge } = await gateway(t, 'websocket', { url: `ws://127.0.0.1:${port}/` });
  const end = await bridge.closed;
  assert.equal(end.reason, 'bot-unreachable');
  assert.match(end.detail, /ECONNREFUSED/);
  await caller.closed;
});

test('gateway: malformed JSON, an unknown event, a wrong streamSid and bad base64 each warn; the call goes on', async (t) => {
  const bot = await startTwilioBot();
  t.after(() => bot.close());
  const { caller, bridge, warnings } = await gateway(t, 'audiosocket', { url: bot.url });
  const stream = await bot.nextStream();
  stream.send('{not json');
  stream.send({ event: 'dance', streamSid: stream.streamSid });
  stream.send({ event: 'media', streamSid: 'MZ' + '1'.repeat(32), media: { payload: 'AAAA' } });
  stream.send({ event: 'media', streamSid: stream.streamSid, media: { payload: '***' } });
  stream.ws.send(Buffer.from([1, 2, 3]));
  stream.sendMedia(slinToUlaw(signal(3200, 2)));
  await until(() => audible(caller.heard).length >= 10, 'the valid audio after them plays');
  assert.deepEqual(
    warnings.map((w) => w.code),
    ['BAD_JSON', 'UNKNOWN_COMMAND', 'WRONG_STREAM', 'BAD_MESSAGE', 'BAD_JSON'],
  );
  assert.equal(bridge.stats.invalidFromBot, 5);
  assert.ok(warnings.every((w) => w.message.length > 20));
});

test('gateway: headers and custom parameters reach the bot over wss with a private CA', async (t) => {
  const https = createHttpsServer({ cert: readFileSync(fixture('cert.pem')), key: readFileSync(fixture('key.pem')) });
  const wss = new WebSocketServer({ server: https });
  https.listen(0, '127.0.0.1');
  await once(https, 'listening');
  t.after(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    https.close();
  });
  const seen: { auth?: string; start?: Record<string, any> } = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
  wss.on('connection', (ws, req) => {
    seen.auth = req.headers.authorization;
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      if (m.event === 'start') seen.start = m;
    });
  });
  const url = `wss://localhost:${(https.address() as AddressInfo).port}/media`;
  await gateway(t, 'audiosocket', {
    url,
    headers: { Authorization: 'Bearer t0k3n' },
    tls: { ca: readFileSync(fixture('cert.pem')) },
    parameters: (call) => ({ caller: 'alice', id: call.uuid }),
  });
  await until(() => seen.start !== undefined, 'start over wss');
  assert.equal(seen.auth, 'Bearer t0k3n');
  assert.equal(seen.start!.start.customParameters.caller, 'alice');
});

test('gateway: a bot that queues more than maxQueuedMs gets QUEUE_FULL on the call, as write() does', async (t) => {
  const bot = await startTwilioBot();
  t.after(() => bot.close());
  const { call } = await gateway(t, 'audiosocket', { url: bot.url }, { maxQueuedMs: 1000 });
  const warned: CallWarning[] = [];
  call.on('warning', (w) => warned.push(w));
  const stream = await bot.nextStream();
  stream.sendMedia(slinToUlaw(signal(16000 * 2, 8)));
  await until(() => warned.some((w) => w.code === 'QUEUE_FULL'), 'QUEUE_FULL');
  assert.ok(call.stats.droppedMs >= 900);
});

test('gateway: a bot that stops reading: caller audio beyond maxBotBacklogMs is dropped and reported, then the call ends', async (t) => {
  const bot = await startTwilioBot();
  t.after(() => bot.close());
  const { caller, bridge, warnings } = await gateway(t, 'audiosocket', {
    url: bot.url,
    maxBotBacklogMs: 1000,
    botNotReadingTimeoutMs: 300,
  });
  const stream = await bot.nextStream();
  stream.ws.pause();
  // Faster than real time, so the kernel's socket buffers fill and ours grows: 20 minutes of audio.
  const frame = signal(320, 2);
  for (let i = 0; i < 60_000; i++) caller.send(frame);
  const end = await bridge.closed;
  assert.equal(end.reason, 'bot-not-reading');
  assert.equal(end.error?.code, 'ERR_AUDIOSOCKET_PEER_NOT_READING');
  assert.ok(end.stats.callerDroppedMs > 0);
  assert.ok(warnings.some((w) => w.code === 'PEER_NOT_READING'));
  const dropped = warnings.find((w) => w.code === 'CALLER_AUDIO_DROPPED');
  assert.equal(dropped?.droppedMs, end.stats.callerDroppedMs, 'the drop is reported with its amount');
  await caller.closed;
});
