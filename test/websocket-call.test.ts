/**
 * The Call API over chan_websocket: createServer({ websocket }) driven by the simulated Asterisk.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, parseFormat, type Call, type CallHandler, type ServerOptions, type WebSocketCall } from '#lib/index.js';
import { connectWebSocket, type AsteriskWebSocketClient, type WebSocketConnectOptions } from '#lib/websocket/client.js';
import type { PlayResult } from '#lib/outbound/queue.js';
import { signal, until } from './helpers.js';

async function serve(t: TestContext, handler: CallHandler, options: ServerOptions = {}) {
  const server = createServer(handler, { ...options, websocket: { port: 0, ...(options.websocket ?? {}) } as ServerOptions['websocket'] });
  await server.listen({ port: 0 });
  t.after(() => server.close());
  const url = `ws://127.0.0.1:${server.websocketAddress()!.port}/any/path?x=1`;
  const dial = async (o: Partial<WebSocketConnectOptions> = {}): Promise<AsteriskWebSocketClient> => {
    const c = await connectWebSocket({ url, ...o });
    t.after(() => c.drop());
    return c;
  };
  return { server, url, dial };
}

for (const [format, controlFormat] of [
  ['slin16', 'json'],
  ['ulaw', 'plain-text'],
  ['slin', 'json'],
  ['alaw', 'plain-text'],
] as const) {
  test(`echo over chan_websocket at ${format} (${controlFormat})`, async (t) => {
    let seen: Call | undefined;
    const { dial } = await serve(t, (call) => {
      seen = call;
      call.on('audio', (frame) => call.write(frame.payload, frame.format));
    });
    const client = await dial({ format, controlFormat, channelId: 'chan-1' });
    const frameBytes = format === 'slin16' ? 640 : format === 'slin' ? 320 : 160;
    const frame = format === 'ulaw' || format === 'alaw' ? Buffer.alloc(frameBytes, 0x55) : signal(frameBytes);
    for (let i = 0; i < 10; i++) client.sendAudio(frame);
    await until(() => client.stats.framesPlayed >= 10, 'echo played');
    assert.equal(seen!.transport, 'websocket');
    assert.equal(seen!.uuid, 'chan-1');
    assert.equal(seen!.mediaStart?.format, format);
    assert.equal(client.violations.length, 0, JSON.stringify(client.violations));
    if (format.startsWith('slin')) assert.deepEqual(client.played.slice(0, 10).filter((f) => f.equals(frame)).length, 10);
    else assert.ok(client.played.slice(0, 10).every((f) => f.length === frameBytes));
    assert.ok(seen!.stats.audioIn >= 10);
  });
}

test('chan_websocket: DTMF, mark and play() resolve when Asterisk has played the audio', async (t) => {
  const digits: string[] = [];
  let call!: Call;
  let formatAtStart: unknown;
  const { dial } = await serve(t, (c) => {
    call = c;
    formatAtStart = c.inboundFormat;
    c.on('dtmf', (d) => digits.push(d));
  });
  const client = await dial({ format: 'slin16', controlFormat: 'json' });
  await until(() => call !== undefined, 'call');
  // Known from MEDIA_START, before any audio.
  assert.deepEqual(formatAtStart, parseFormat('slin16'));
  assert.equal(call.inboundSampleRate, 16000);
  client.sendDtmf('5');
  client.sendDtmf('#');
  await until(() => digits.length === 2, 'digits');
  assert.deepEqual(digits, ['5', '#']);
  const t0 = performance.now();
  const played = call.play(signal(640 * 25)); // 500 ms
  const marked = call.mark('after');
  const r = await played;
  const elapsed = performance.now() - t0;
  assert.equal(r.status, 'done');
  assert.ok(client.stats.framesPlayed >= 25, `played ${client.stats.framesPlayed} frames when play() resolved`);
  assert.ok(elapsed >= 400, `play() resolved after ${elapsed.toFixed(0)} ms, before the audio played`);
  assert.equal(await marked, true);
  assert.equal(client.violations.length, 0);
});

test('chan_websocket: flush drops queued audio, settles marks, sentMs is what was heard; lead stays bounded', async (t) => {
  let call!: Call;
  const { dial } = await serve(t, (c) => (call = c), { websocket: { port: 0, leadMs: 400 } });
  const client = await dial({ format: 'slin16', controlFormat: 'plain-text' });
  await until(() => call !== undefined, 'call');
  const played = call.play(signal(640 * 150)); // 3 s
  const marked = call.mark('end');
  await until(() => client.stats.framesPlayed >= 20, '20 frames played');
  assert.ok(client.stats.maxQueueLength <= 25, `Asterisk queue reached ${client.stats.maxQueueLength}`);
  const heardBefore = client.stats.framesPlayed;
  call.flush();
  const r: PlayResult = await played;
  assert.equal(r.status, 'interrupted');
  assert.equal(r.reason, 'flush');
  assert.equal(await marked, false);
  const heardMs = heardBefore * 20;
  assert.ok(Math.abs(r.sentMs - heardMs) <= 60, `sentMs ${r.sentMs} vs heard ${heardMs}`);
  await until(() => client.queueLength === 0, 'queue empty');
  const after = client.stats.framesPlayed;
  assert.ok(after - heardBefore <= 3, `${after - heardBefore} frames played after the flush`);
  // The call goes on.
  assert.equal((await call.play(signal(640 * 5))).status, 'done');
});

test('chan_websocket: hangups both ways', async (t) => {
  const calls: Call[] = [];
  const { dial } = await serve(t, (c) => void calls.push(c));
  const a = await dial({ controlFormat: 'json' });
  await until(() => calls.length === 1, 'call a');
  const end = await calls[0]!.hangup();
  assert.equal(end.reason, 'local-hangup');
  assert.equal((await once(a, 'close'))[0]?.by ?? 'app-hangup', 'app-hangup');
  const b = await dial({ controlFormat: 'plain-text' });
  await until(() => calls.length === 2, 'call b');
  void b.hangup();
  const endB = await calls[1]!.closed;
  assert.equal(endB.reason, 'remote-hangup');
  // `signal` and `closed` first read in the `end` listener: made then, already settled with that end.
  const c = await dial({ controlFormat: 'json' });
  await until(() => calls.length === 3, 'call c');
  const callC = calls[2]!;
  const seen = new Promise<{ aborted: boolean; reason: unknown; same: boolean }>((resolve) =>
    callC.once('end', (e) => {
      const aborted = callC.signal.aborted;
      void callC.closed.then((x) => resolve({ aborted, reason: callC.signal.reason, same: x === e }));
    }),
  );
  void c.hangup();
  const r = await seen;
  assert.equal(r.aborted, true);
  assert.match((r.reason as Error).message, /call ended: remote-hangup/);
  assert.equal(r.same, true, 'closed resolves with the end the event carried');
});

test('chan_websocket: 20 concurrent echo calls beside AudioSocket on one server', async (t) => {
  const { dial, server } = await serve(t, (call) => call.on('audio', (f) => call.write(f.payload, f.format)));
  const clients = await Promise.all(
    Array.from({ length: 20 }, (_, i) => dial({ format: i % 2 ? 'slin16' : 'ulaw', controlFormat: i % 3 ? 'json' : 'plain-text' })),
  );
  for (const [i, c] of clients.entries()) for (let k = 0; k < 5; k++) c.sendAudio(i % 2 ? signal(640, i) : Buffer.alloc(160, 0x2a));
  await until(() => clients.every((c) => c.stats.framesPlayed >= 5), 'every echo');
  assert.equal(server.calls.size, 20);
  assert.ok(clients.every((c) => c.violations.length === 0));
  assert.ok(server.address() !== null); // AudioSocket listens too
});

test('chan_websocket bad input: wrong subprotocol and binary before MEDIA_START fail that connection only', async (t) => {
  const failures: string[] = [];
  const { server, url, dial } = await serve(t, (call) => call.on('audio', (f) => call.write(f.payload, f.format)));
  server.on('handshakeFailed', (f) => failures.push(`${f.transport}:${f.reason}:${f.error?.code ?? ''}`));
  const good = await dial({ format: 'slin16' });
  await assert.rejects(connectWebSocket({ url, subprotocols: ['other'] }));
  await until(() => failures.length === 1, 'subprotocol failure');
  assert.match(failures[0]!, /^websocket:subprotocol:ERR_AUDIOSOCKET_SUBPROTOCOL/);
  const { default: WebSocket } = await import('ws');
  const raw = new WebSocket(url, 'media');
  t.after(() => raw.terminate());
  await once(raw, 'open');
  raw.send(Buffer.alloc(320));
  await until(() => failures.length === 2, 'protocol failure');
  assert.match(failures[1]!, /^websocket:protocol-error:ERR_AUDIOSOCKET_PROTOCOL/);
  good.sendAudio(signal(640));
  await until(() => good.stats.framesPlayed >= 1, 'the good call goes on');
});

test('call.url is the request path and query Asterisk sent (the v() dial parameters)', async (t) => {
  let seen: WebSocketCall | undefined;
  const { dial } = await serve(t, (call) => {
    seen = call as WebSocketCall;
  });
  await dial({ format: 'slin16', controlFormat: 'json' });
  await until(() => seen !== undefined, 'the call');
  assert.equal(seen!.url, '/any/path?x=1');
  assert.equal(new URLSearchParams(seen!.url.split('?')[1]).get('x'), '1');
});
