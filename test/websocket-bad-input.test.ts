/**
 * Bad input on chan_websocket calls, at the Call level (createServer({ websocket })), over real
 * WebSockets on 127.0.0.1: each fault gives that one call a typed AudioSocketError with a stable
 * code, and a second call on the same server keeps echoing.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import WebSocket from 'ws';
import { createServer, ErrorCodes, type Call, type CallWarning, type ServerOptions } from '#lib/index.js';
import { connectWebSocket, type AsteriskWebSocketClient, type WebSocketConnectOptions } from '#lib/websocket/client.js';
import { signal, until } from './helpers.js';

/** An echo server; `onCall` sees every call first (keyed by its channel id). */
async function serve(
  t: TestContext,
  websocket: Partial<NonNullable<ServerOptions['websocket']>> = {},
  onCall?: (call: Call) => void,
  options: Omit<ServerOptions, 'websocket'> = {},
) {
  const calls = new Map<string, Call>();
  const server = createServer(
    (call) => {
      calls.set(call.uuid, call);
      call.on('audio', (f) => call.write(f.payload, f.format));
      onCall?.(call);
    },
    { ...options, websocket: { port: 0, ...websocket } as ServerOptions['websocket'] },
  );
  await server.listen({ port: 0 });
  t.after(() => server.close());
  const url = `ws://127.0.0.1:${server.websocketAddress()!.port}/media`;
  const dial = async (o: Partial<WebSocketConnectOptions> = {}): Promise<{ client: AsteriskWebSocketClient; call: Call }> => {
    const client = await connectWebSocket({ url, ...o });
    t.after(() => client.drop());
    await until(() => calls.has(client.channelId), 'the call');
    return { client, call: calls.get(client.channelId)! };
  };
  return { server, url, dial, calls };
}

/** The other call on the server still echoes: 5 frames in, 5 more frames played. */
async function stillEchoes(client: AsteriskWebSocketClient): Promise<void> {
  const before = client.stats.framesPlayed;
  for (let i = 0; i < 5; i++) client.sendAudio(signal(640, i + 1));
  await until(() => client.stats.framesPlayed >= before + 5, 'the other call echoes');
}

function collect(call: Call): { warnings: CallWarning[]; errors: Error[] } {
  const warnings: CallWarning[] = [];
  const errors: Error[] = [];
  call.on('warning', (w) => warnings.push(w));
  call.on('error', (e) => errors.push(e));
  return { warnings, errors };
}

test('malformed JSON control messages: MALFORMED_CONTROL warnings with ERR_AUDIOSOCKET_PROTOCOL; the call and another go on', async (t) => {
  const { dial } = await serve(t);
  const other = await dial({ controlFormat: 'json' });
  const bad = await dial({ controlFormat: 'json' });
  const { warnings, errors } = collect(bad.call);
  bad.client.sendText('{"event":"DTMF_END",');
  bad.client.sendText('{not json at all}');
  bad.client.sendText('DTMF_END digit:1'); // plain text on a JSON channel
  const digit = once(bad.call, 'dtmf');
  bad.client.sendDtmf('7');
  assert.deepEqual(await digit, ['7']);
  assert.deepEqual(
    warnings.map((w) => w.code),
    ['MALFORMED_CONTROL', 'MALFORMED_CONTROL', 'MALFORMED_CONTROL'],
  );
  assert.ok(
    warnings.every((w) => w.error?.code === ErrorCodes.PROTOCOL),
    JSON.stringify(warnings),
  );
  assert.equal(errors.length, 0);
  assert.equal(bad.call.connected, true);
  await stillEchoes(bad.client);
  await stillEchoes(other.client);
});

test('valid JSON that is not a valid event: wrong shapes are MALFORMED_CONTROL, unknown events a counted UNEXPECTED_EVENT', async (t) => {
  const { dial } = await serve(t);
  const other = await dial({ controlFormat: 'json' });
  const bad = await dial({ controlFormat: 'json' });
  const { warnings, errors } = collect(bad.call);
  for (const text of [
    '[1,2,3]',
    '{"event":5}',
    '{"channel_id":"x"}',
    '{"event":"DTMF_END","channel_id":"x","digit":"xyz"}',
    '{"event":"STATUS","channel_id":"x","queue_length":-1}',
    '{"event":"MEDIA_FROM_THE_FUTURE","channel_id":"x"}',
    '{"event":"MEDIA_FROM_THE_FUTURE","channel_id":"x"}',
  ]) {
    bad.client.sendText(text);
  }
  const digit = once(bad.call, 'dtmf');
  bad.client.sendDtmf('1');
  await digit;
  assert.deepEqual(
    warnings.map((w) => w.code),
    [
      'MALFORMED_CONTROL',
      'MALFORMED_CONTROL',
      'MALFORMED_CONTROL',
      'MALFORMED_CONTROL',
      'MALFORMED_CONTROL',
      'UNEXPECTED_EVENT', // once per unknown name; every one is counted
    ],
  );
  assert.ok(warnings.slice(0, 5).every((w) => w.error?.code === ErrorCodes.PROTOCOL));
  assert.match(warnings[5]!.message, /MEDIA_FROM_THE_FUTURE/);
  assert.equal(bad.call.stats.otherIn, 2);
  assert.equal(errors.length, 0);
  await stillEchoes(bad.client);
  await stillEchoes(other.client);
});

test('odd-length slin audio: the last byte is dropped, counted and reported; an echo handler is not broken by it', async (t) => {
  const { dial } = await serve(t);
  const bad = await dial({ format: 'slin16' });
  const { warnings, errors } = collect(bad.call);
  const odd = Buffer.concat([signal(640), Buffer.from([1])]);
  bad.client.sendAudio(odd);
  bad.client.sendAudio(odd);
  await stillEchoes(bad.client);
  assert.equal(bad.call.stats.oddAudioIn, 2);
  assert.deepEqual(
    warnings.map((w) => w.code),
    ['UNEXPECTED_MESSAGE'],
  );
  assert.equal(errors.length, 0);
});

for (const kind of ['binary', 'text'] as const) {
  test(`an oversized ${kind} message ends that call with ERR_AUDIOSOCKET_PAYLOAD_TOO_LARGE (1009); another call goes on`, async (t) => {
    const { dial, server } = await serve(t, { maxPayload: 4096 });
    const other = await dial();
    const bad = await dial();
    const { errors } = collect(bad.call);
    const ended = bad.call.closed;
    if (kind === 'binary') bad.client.sendAudio(Buffer.alloc(4097));
    else bad.client.sendText(`DTMF_END digit:1 ${'x'.repeat(4096)}`);
    const end = await ended;
    assert.equal(end.reason, 'protocol-error');
    assert.equal(end.error?.code, ErrorCodes.PAYLOAD_TOO_LARGE);
    assert.deepEqual(
      errors.map((e) => (e as { code?: string }).code),
      [ErrorCodes.PAYLOAD_TOO_LARGE],
    );
    assert.equal((await bad.client.closed).code, 1009);
    // Exactly the limit is fine.
    await stillEchoes(other.client);
    other.client.sendAudio(Buffer.alloc(4096));
    await until(() => other.call.stats.audioIn >= 6, 'a 4096-byte message accepted');
    assert.equal(other.call.connected, true);
    assert.equal(server.calls.size, 1);
    const again = await dial();
    await stillEchoes(again.client);
  });
}

test('the default maxPayload is 262144 bytes', async (t) => {
  const { dial } = await serve(t);
  const ok = await dial();
  ok.client.sendAudio(Buffer.alloc(262144));
  await until(() => ok.call.stats.audioIn === 1, 'a 256 KiB message accepted');
  const bad = await dial();
  const ended = bad.call.closed;
  bad.client.sendAudio(Buffer.alloc(262145));
  assert.equal((await ended).error?.code, ErrorCodes.PAYLOAD_TOO_LARGE);
  assert.equal(ok.call.connected, true);
});

test('a peer that never reads: that call ends with ERR_AUDIOSOCKET_PEER_NOT_READING; another goes on', async (t) => {
  const warnings: string[] = [];
  const { dial, url, calls } = await serve(
    t,
    { leadMs: 15000 },
    (call) => {
      // 15 s of slin192 (5.8 MB) goes to Asterisk's buffer at once: more than the kernel holds.
      if (call.uuid !== 'stuck') return;
      call.on('warning', (w) => warnings.push(w.code));
      void call.play(Buffer.alloc(192000 * 2 * 15));
    },
    { peerNotReadingTimeout: 300 }, // the server's option, for both transports
  );
  const other = await dial();
  const ws = new WebSocket(url, ['media']);
  t.after(() => ws.terminate());
  await once(ws, 'open');
  ws.pause(); // read nothing: the kernel buffers fill, then ws's
  ws.send('MEDIA_START connection_id:stuck channel:WebSocket/stuck/0x1 channel_id:stuck format:slin192 optimal_frame_size:7680 ptime:20');
  await until(() => calls.has('stuck'), 'the stuck call');
  const stuck = calls.get('stuck')!;
  const end = await stuck.closed;
  assert.equal(end.reason, 'peer-not-reading');
  assert.equal(end.error?.code, ErrorCodes.PEER_NOT_READING);
  // The buffered policy stops at the socket's high-water mark, so nothing was dropped: what was
  // never sent is reported as unsent when the call ends.
  assert.deepEqual(warnings, []);
  assert.equal(end.stats.droppedOut, 0);
  assert.ok(end.stats.unsentMs > 0, `${end.stats.unsentMs} ms unsent`);
  await stillEchoes(other.client);
});

test('what is not a WebSocket on the chan_websocket port is a failed handshake: plain HTTP gets 426, an AudioSocket client 400; a call goes on', async (t) => {
  const { server, url, dial } = await serve(t);
  const { client } = await dial();
  const port = server.websocketAddress()!.port;
  const failures: Array<{ reason: string; url?: string; error?: Error }> = [];
  server.on('handshakeFailed', (f) => failures.push(f));

  const res = await fetch(url.replace('ws:', 'http:'));
  assert.equal(res.status, 426);
  await res.text();
  await until(() => failures.length === 1, 'the plain request reported');
  assert.equal(failures[0]!.reason, 'not-websocket');
  assert.equal(failures[0]!.url, '/media');
  assert.match(failures[0]!.error!.message, /without a WebSocket upgrade/);

  // AudioSocket() pointed at this port: its UUID message, then audio.
  const socket = net.connect({ host: '127.0.0.1', port });
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  const received: Buffer[] = [];
  socket.on('data', (d: Buffer) => received.push(d));
  socket.write(Buffer.concat([Buffer.from([0x01, 0x00, 0x10]), Buffer.alloc(16, 7), Buffer.from([0x10, 0x01, 0x40]), Buffer.alloc(320)]));
  await once(socket, 'close');
  assert.match(Buffer.concat(received).toString('latin1'), /^HTTP\/1\.1 400 /);
  await until(() => failures.length === 2, 'the AudioSocket client reported');
  assert.equal(failures[1]!.reason, 'not-websocket');
  assert.equal(failures[1]!.url, '');
  assert.match(failures[1]!.error!.message, /AudioSocket port/);

  // One request is one failure, even when its body then breaks the HTTP parser.
  const post = net.connect({ host: '127.0.0.1', port });
  t.after(() => post.destroy());
  await once(post, 'connect');
  post.on('data', () => {});
  post.write('POST /media HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
  await once(post, 'close');
  assert.deepEqual(
    failures.slice(2).map((f) => [f.reason, f.url]),
    [['not-websocket', '/media']],
  );
  assert.equal(server.stats.handshakeFailures, 3);
  await stillEchoes(client);
});

test('a write shorter than a sample into a queue over maxQueuedMs drops nothing and counts nothing', async (t) => {
  let call!: Call;
  const { dial } = await serve(t, {}, (c) => (call = c), { maxQueuedMs: 100, writeHighWaterMarkMs: 50 });
  await dial();
  const warnings = collect(call).warnings;
  // Plays are not capped by maxQueuedMs: the queue is over it.
  void call.play(Buffer.alloc(640 * 25));
  assert.ok(call.stats.queuedMs > 100, `${call.stats.queuedMs} ms queued`);
  assert.equal(call.write(Buffer.from([1])), false, 'half a sample, held back; the queue is still over the mark');
  assert.equal(call.write(Buffer.alloc(0)), false);
  const s = call.stats;
  assert.equal(s.droppedWrites, 0);
  assert.equal(s.droppedMs, 0);
  assert.deepEqual(warnings, []);
});

test('a MEDIA_START in a codec no call carries (g722): closed 1003 and a handshakeFailed unsupported-format, not a handler error', async (t) => {
  const { server, url } = await serve(t);
  const failures: Array<{ reason: string; url?: string; error?: Error }> = [];
  const handlerErrors: unknown[] = [];
  server.on('handshakeFailed', (f) => failures.push(f));
  server.on('handlerError', (e) => handlerErrors.push(e));
  const ws = new WebSocket(`${url}?x=1`, ['media']);
  t.after(() => ws.terminate());
  await once(ws, 'open');
  ws.send('MEDIA_START connection_id:c1 channel:WebSocket/c1/0x1 channel_id:1.1 format:g722 optimal_frame_size:160 ptime:20');
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
  assert.equal(code, 1003);
  assert.equal(reason.toString(), 'unsupported format');
  await until(() => failures.length === 1, 'the refusal reported');
  assert.equal(failures[0]!.reason, 'unsupported-format');
  assert.equal(failures[0]!.url, '/media?x=1');
  assert.match(failures[0]!.error!.message, /format g722 is not supported .*c\(slin16\)/);
  assert.deepEqual(handlerErrors, []);
  assert.equal(server.stats.handshakeFailures, 1);

  // Nobody listening: a process warning, once per format however many calls come.
  server.removeAllListeners('handshakeFailed');
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  for (let i = 0; i < 2; i++) {
    const again = new WebSocket(url, ['media']);
    t.after(() => again.terminate());
    await once(again, 'open');
    again.send(
      `MEDIA_START connection_id:c${i + 2} channel:WebSocket/c/0x${i + 2} channel_id:1.${i + 2} format:g722 optimal_frame_size:160 ptime:20`,
    );
    await once(again, 'close');
  }
  await until(() => server.stats.handshakeFailures === 3, 'both refused');
  await until(() => warnings.length > 0, 'the warning');
  assert.equal(warnings.filter((w) => /format g722 is not supported/.test(w.message)).length, 1);
});
