/**
 * The public API's promises (issue 13): one name per thing (playFile, flush), Symbol.asyncDispose,
 * every rejection an AudioSocketError with its cause, one code vocabulary, subpath exports, and
 * the simulated Asterisk's close attribution under `strict`.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AbortError,
  AudioSocketError,
  connect,
  createServer,
  encodeMessage,
  encodeWav,
  ErrorCodes,
  WarningCodes,
  type AsteriskClient,
  type CallWarning,
  type CallWarningCode,
  type ClientViolation,
  type ClientViolationCode,
  type MediaWarning,
  type WarningCode,
  type WebSocketViolation,
  type WebSocketViolationCode,
  type Call,
  type ServerOptions,
} from '#lib/index.js';
import { connectWebSocket, type AsteriskWebSocketClient } from '#lib/websocket/client.js';
import { until } from './helpers.js';

/** 20 ms frames of a non-silent signal at 8 kHz. */
function signal(frames: number): Buffer {
  const b = Buffer.alloc(frames * 320);
  for (let i = 0; i < b.length / 2; i++) b.writeInt16LE(((i * 37) % 20000) - 10000 || 1, i * 2);
  return b;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'audiosocket-api-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** One AudioSocket call: the server's side and the simulated Asterisk's. */
async function audioSocketCall(t: TestContext, options: ServerOptions = {}): Promise<{ call: Call; client: AsteriskClient }> {
  let call: Call | undefined;
  const server = createServer((c) => void (call = c), { keepAlive: false, ...options });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  const client = await connect({ port });
  t.after(() => client.hangup());
  await until(() => call !== undefined, 'the call');
  return { call: call!, client };
}

/** One chan_websocket call. */
async function webSocketCall(t: TestContext): Promise<{ call: Call; client: AsteriskWebSocketClient }> {
  let call: Call | undefined;
  const server = createServer((c) => void (call = c), { websocket: { port: 0 } } as ServerOptions);
  await server.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  const client = await connectWebSocket({ url: `ws://127.0.0.1:${server.websocketAddress()!.port}/media`, format: 'slin' });
  t.after(() => client.drop());
  await until(() => call !== undefined, 'the call');
  return { call: call!, client };
}

test('playFile() plays a WAV file on both transports; play(path) and clear() are deprecated aliases', async (t) => {
  const dir = await tempDir(t);
  const audio = signal(5);
  const path = join(dir, 'prompt.wav');
  await writeFile(path, encodeWav('slin', audio));

  const a = await audioSocketCall(t);
  const got: Buffer[] = [];
  a.client.on('audio', (f) => got.push(Buffer.from(f.payload)));
  assert.equal((await a.call.playFile(path)).status, 'done');
  await until(() => got.length >= 5, 'five frames');
  assert.deepEqual(Buffer.concat(got), audio);

  const w = await webSocketCall(t);
  const played = await w.call.playFile(path);
  assert.equal(played.status, 'done');
  assert.equal(played.framesSent, 5);
  await until(() => w.client.played.length >= 5, 'five frames played');
  assert.deepEqual(Buffer.concat(w.client.played.slice(0, 5)), audio);
});

test('await using: a Call hangs up and waits for its end; the simulated clients close and wait', async (t) => {
  const a = await audioSocketCall(t);
  {
    await using call = a.call;
    assert.equal(call.connected, true);
  }
  assert.equal(a.call.endReason, 'local-hangup');
  assert.equal((await a.client.closed).by, 'server-hangup');

  let serverCall: Call | undefined;
  const server = createServer((c) => void (serverCall = c), { keepAlive: false });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  let closed: Promise<unknown> | undefined;
  {
    await using client = await connect({ port });
    closed = client.closed;
    await until(() => serverCall !== undefined, 'the call');
  }
  assert.equal(((await closed) as { by: string }).by, 'client', 'disposed: the client closed and the close has happened');
  assert.equal((await serverCall!.closed).reason, 'remote-hangup');

  const w = await webSocketCall(t);
  {
    await using call = w.call;
    assert.equal(call.transport, 'websocket');
  }
  assert.equal(w.call.endReason, 'local-hangup');
  assert.equal(w.call.connected, false);

  const w2 = await webSocketCall(t);
  {
    await using client = w2.client;
    assert.equal(client.connected, true);
  }
  assert.equal(w2.client.connected, false);
  assert.equal((await w2.call.closed).reason, 'remote-hangup');
});

/** Asserts `promise` rejects with an AudioSocketError of `code` whose message matches and whose cause is set. */
async function rejectsWith(promise: Promise<unknown>, code: string, message: RegExp): Promise<AudioSocketError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail(`expected a rejection with ${code}`),
    (err: unknown) => (caught = err),
  );
  assert.ok(caught instanceof AudioSocketError, `an AudioSocketError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.match(caught.message, message);
  assert.notEqual(caught.cause, undefined, 'the original error is the cause');
  return caught;
}

test('every rejection is an AudioSocketError with its cause: missing file, unreadable file, failing source', async (t) => {
  const dir = await tempDir(t);
  for (const { call } of [await audioSocketCall(t), await webSocketCall(t)]) {
    const missing = join(dir, 'missing.wav');
    const err = await rejectsWith(call.playFile(missing), ErrorCodes.FILE_NOT_FOUND, /missing\.wav/);
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
    await rejectsWith(call.playFile(dir), ErrorCodes.FILE_READ, /cannot read WAV file/);
    await rejectsWith(call.playFile(missing), ErrorCodes.FILE_NOT_FOUND, /missing\.wav/);
    const failing = (async function* () {
      yield Buffer.alloc(320);
      throw new Error('tts went away');
    })();
    const failed = await rejectsWith(call.play(failing), ErrorCodes.SOURCE, /tts went away/);
    assert.equal((failed.cause as Error).message, 'tts went away');
    assert.equal(call.connected, true, 'a failed play leaves the call up');
  }
});

test('connect(): a timeout is CONNECT_TIMEOUT; an abort rejects like Node core: AbortError, the reason as cause', async () => {
  // 192.0.2.0/24 (TEST-NET-1) is never routed: the SYN goes unanswered (or fails at once where
  // there is no route, which is SOCKET: both are AudioSocketErrors with a cause).
  const err = await connect({ host: '192.0.2.1', port: 9, connectTimeout: 50 }).then(
    () => assert.fail('connected to TEST-NET-1'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof AudioSocketError);
  if (err.code === ErrorCodes.SOCKET) assert.notEqual(err.cause, undefined);
  else assert.equal(err.code, ErrorCodes.CONNECT_TIMEOUT);

  const reason = new Error('user gave up');
  const isAbort = (e: unknown): boolean => {
    assert.ok(e instanceof AbortError);
    assert.equal(e.name, 'AbortError');
    assert.equal(e.code, 'ABORT_ERR');
    assert.equal(e.cause, reason);
    assert.match(e.message, /aborted: user gave up/);
    return true;
  };
  await assert.rejects(connect({ port: 9, signal: AbortSignal.abort(reason) }), isAbort);
  const server = createServer();
  await assert.rejects(server.listen({ port: 0, signal: AbortSignal.abort(reason) }), isAbort);
  await server.close();
  // The same shape as Node's own AbortError.
  const node = await import('node:timers/promises')
    .then((t) => t.setTimeout(1, undefined, { signal: AbortSignal.abort(reason) }))
    .catch((e: unknown) => e);
  assert.equal((node as Error).name, 'AbortError');
  assert.equal((node as { code: string }).code, 'ABORT_ERR');
  assert.equal((node as Error).cause, reason);
});

/** Compiles only when `A` and `B` are the same type. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

test('one code vocabulary: warnings and violations are WarningCodes, named like ErrorCodes', async (t) => {
  const typesAgree: [
    Same<CallWarning['code'], CallWarningCode>,
    Same<ClientViolation['code'], ClientViolationCode>,
    Same<WebSocketViolation['code'], WebSocketViolationCode>,
    Same<MediaWarning['code'] | CallWarningCode, CallWarningCode>,
  ] = [true, true, true, true];
  assert.deepEqual(typesAgree, [true, true, true, true]);
  for (const [name, value] of Object.entries(WarningCodes)) assert.equal(value, name);
  // A condition that is a warning first and an error once fatal keeps its name.
  assert.equal(ErrorCodes.PEER_NOT_READING, `ERR_AUDIOSOCKET_${WarningCodes.PEER_NOT_READING}`);
  assert.equal(ErrorCodes.TRUNCATED, `ERR_AUDIOSOCKET_${WarningCodes.TRUNCATED}`);

  // What a call really emits is in the set: a write over maxQueuedMs is QUEUE_FULL.
  const { call } = await audioSocketCall(t, { maxQueuedMs: 100 });
  const codes: WarningCode[] = [];
  call.on('warning', (w) => codes.push(w.code));
  call.write(Buffer.alloc(320 * 20));
  await until(() => codes.length > 0, 'a warning');
  assert.equal(codes[0], WarningCodes.QUEUE_FULL);
});

test('subpath exports: audiosocket/audio and audiosocket/protocol resolve; the root is slimmer', async () => {
  const load = (specifier: string): Promise<Record<string, unknown>> => import(specifier) as Promise<Record<string, unknown>>;
  const root = await load('audiosocket');
  const audio = await load('audiosocket/audio');
  const protocol = await load('audiosocket/protocol');
  for (const name of [
    'ulawToSlin',
    'slinToUlaw',
    'createResampler',
    'stereoToMono',
    'parseWav',
    'decodeWav',
    'readSlin',
    'createConverter',
  ]) {
    assert.equal(typeof audio[name], 'function', `audiosocket/audio exports ${name}`);
  }
  for (const name of ['MessageParser', 'encodeMessage', 'formatUuid', 'parseEvent', 'encodeCommand', 'optimalFrameSizeOf']) {
    assert.equal(typeof protocol[name], 'function', `audiosocket/protocol exports ${name}`);
  }
  for (const name of ['ulawToSlin', 'createResampler', 'stereoToMono', 'parseWav', 'readSlin', 'parseEvent', 'encodeCommand']) {
    assert.equal(root[name], undefined, `the root no longer exports ${name}`);
  }
  for (const name of [
    'createServer',
    'connect',
    'AudioSocketError',
    'ErrorCodes',
    'WarningCodes',
    'Kind',
    'parseFormat',
    'readWavFile',
    'createConverter',
  ]) {
    assert.notEqual(root[name], undefined, `the root exports ${name}`);
  }
  assert.equal(root.createConverter, audio.createConverter, 'one module instance behind both entry points');
});

/** A broken AudioSocket server: `onUuid` runs on each connection's first bytes. */
async function rawServer(t: TestContext, onUuid: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => onUuid(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as net.AddressInfo).port;
}

test("strict: closing on a violation is the client's close, with the violation; a cut by the server is not", async (t) => {
  // Answers the UUID with a DTMF message, which current Asterisk ends the call on.
  const dtmf = await rawServer(t, (s) => s.write(encodeMessage(0x03, Buffer.from('1'))));
  const strict = await connect({ port: dtmf, strict: true });
  const closed = await strict.closed;
  assert.equal(closed.by, 'client');
  assert.equal(closed.violation?.code, 'FORBIDDEN_KIND');

  // Without strict the violation is reported and the call goes on until the server closes.
  const lenient = await connect({ port: dtmf });
  await until(() => lenient.violations.length > 0, 'the violation');
  assert.equal(lenient.connected, true);
  assert.equal((await lenient.hangup()).violation, undefined);

  // The server closes in the middle of a message: under strict too, that is the server's close.
  const cut = await rawServer(t, (s) => s.end(encodeMessage(0x10, Buffer.alloc(320)).subarray(0, 100)));
  const truncated = await connect({ port: cut, strict: true });
  const info = await truncated.closed;
  assert.equal(info.by, 'server-close');
  assert.equal(info.violation, undefined);
  assert.deepEqual(
    truncated.violations.map((v) => v.code),
    ['TRUNCATED'],
  );
});

test('a failed handler takes one route: reported once, the call ends with HANDLER and the error as cause', async (t) => {
  const boom = new Error('handler boom');
  for (const websocket of [false, true]) {
    const server = createServer(
      async () => {
        await Promise.resolve();
        throw boom;
      },
      websocket ? ({ websocket: { port: 0 } } as ServerOptions) : {},
    );
    await server.listen({ host: '127.0.0.1', port: 0 });
    t.after(() => server.close());
    const reported: unknown[] = [];
    const ended: Call[] = [];
    server.on('handlerError', (error) => reported.push(error));
    server.on('callEnd', (call) => ended.push(call));
    if (websocket) {
      const client = await connectWebSocket({ url: `ws://127.0.0.1:${server.websocketAddress()!.port}/media`, format: 'slin' });
      t.after(() => client.drop());
    } else {
      const client = await connect({ port: server.address()!.port });
      t.after(() => client.hangup());
    }
    await until(() => ended.length === 1, 'the call to end');
    const end = await ended[0]!.closed;
    assert.equal(end.reason, 'handler-error');
    assert.equal(end.error?.code, ErrorCodes.HANDLER);
    assert.equal(end.error?.cause, boom);
    assert.deepEqual(reported, [boom], 'reported once, with the original error');
  }
});

test("a call's uuid and startTime are read-only", async (t) => {
  const { call } = await audioSocketCall(t);
  assert.match(call.uuid, /^[0-9a-f]{8}-/);
  assert.ok(call.startTime.getTime() > 0);
  assert.throws(() => ((call as { uuid: string }).uuid = 'other'), TypeError);
  assert.throws(() => ((call as { startTime: Date }).startTime = new Date(0)), TypeError);
});

test("the handshake hands over mid-chunk: audio in the UUID's own chunk reaches the call, bytes counted", async (t) => {
  const frames: Buffer[] = [];
  let call: Call | undefined;
  const server = createServer(
    (c) => {
      call = c;
      c.on('audio', (f) => frames.push(Buffer.from(f.payload)));
    },
    { keepAlive: false },
  );
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  const uuid = '0123abcd-0000-4000-8000-000000000001';
  const audio = encodeMessage(0x10, signal(1));
  const chunk = Buffer.concat([encodeMessage(0x01, Buffer.from(uuid.replaceAll('-', ''), 'hex')), audio, audio]);
  const socket = net.connect({ host: '127.0.0.1', port });
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  socket.write(chunk);
  await until(() => frames.length === 2, 'both frames');
  assert.equal(call!.uuid, uuid);
  assert.deepEqual(frames, [signal(1), signal(1)]);
  assert.equal(call!.stats.bytesIn, chunk.length);
  assert.equal(call!.stats.audioIn, 2);
});

test('listen() on a port in use rejects with SOCKET, the EADDRINUSE error as cause', async (t) => {
  const first = createServer();
  const { port } = await first.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => first.close());
  const second = createServer();
  t.after(() => second.close());
  const err = await rejectsWith(
    second.listen({ host: '127.0.0.1', port }),
    ErrorCodes.SOCKET,
    new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`),
  );
  assert.equal((err.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
});

test('removeAllListeners() keeps the call working: audio and sent listeners added afterwards are served', async (t) => {
  const { call, client } = await audioSocketCall(t);
  const tone = (seed: number): Buffer => {
    const b = Buffer.alloc(320);
    for (let k = 0; k < 160; k++) b.writeInt16LE(Math.round(8000 * Math.sin((k * seed) / 7)), k * 2);
    return b;
  };
  const before: Buffer[] = [];
  call.on('audio', (f) => before.push(f.payload));
  client.sendAudio(tone(3));
  await until(() => before.length === 1, 'the first frame');
  call.removeAllListeners();
  const after: Buffer[] = [];
  let sent = 0;
  call.on('audio', (f) => after.push(f.payload));
  call.on('sent', () => sent++);
  client.sendAudio(tone(4));
  call.write(tone(5));
  await until(() => after.length === 1 && sent >= 1, 'a frame each way after removeAllListeners()');
  assert.deepEqual(after[0], tone(4));
  assert.equal(before.length, 1, 'the removed listener heard nothing more');
  call.removeAllListeners('audio');
  client.sendAudio(tone(6));
  await until(() => call.stats.audioIn === 3, 'the third frame counted');
  assert.equal(after.length, 1, 'no audio listener, no audio event');
});

test('audio listeners are served as EventEmitter serves them: once, several, this, added and removed mid-stream', async (t) => {
  const { call, client } = await audioSocketCall(t);
  const frame = (n: number): Buffer => Buffer.alloc(320, n);
  const heard: string[] = [];
  let thisWasCall = true;
  call.once('audio', function (this: unknown, f) {
    thisWasCall &&= this === call;
    heard.push(`once:${f.payload[0]}`);
  });
  const every = function (this: unknown, f: { payload: Buffer }): void {
    thisWasCall &&= this === call;
    heard.push(`every:${f.payload[0]}`);
    // Added by a listener: hears the frames after this one.
    if (f.payload[0] === 2) call.on('audio', (g) => heard.push(`late:${g.payload[0]}`));
    if (f.payload[0] === 3) call.off('audio', every);
  };
  call.on('audio', every);
  for (let n = 1; n <= 4; n++) {
    client.sendAudio(frame(n));
    await until(() => call.stats.audioIn === n, `frame ${n} counted`);
  }
  assert.deepEqual(heard, ['once:1', 'every:1', 'every:2', 'every:3', 'late:3', 'late:4']);
  assert.ok(thisWasCall, 'listeners are called with the call as this');
});
