/**
 * Server and calls over real TCP on 127.0.0.1, driven by the simulated Asterisk client and by
 * raw sockets.
 */
import { test, describe, afterEach } from 'node:test';
import { until } from './helpers.js';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  AudioSocketError,
  createServer,
  connect,
  encodeMessage,
  encodeUuidMessage,
  ErrorCodes,
  type AudioSocketServer,
  type Call,
  type CallEnd,
  type HandshakeFailure,
  type ServerOptions,
  type AudioFrame,
} from '#lib/index.js';

// Whatever a test does, its servers and clients are closed after it.
const toClose: AsyncDisposable[] = [];
afterEach(() => Promise.all(toClose.splice(0).map((x) => Promise.resolve(x[Symbol.asyncDispose]()).catch(() => {}))));

/** connect(), closed after the test. */
async function dial(options: Parameters<typeof connect>[0]) {
  const client = await connect(options);
  toClose.push(client);
  return client;
}

async function start(handler?: (call: Call) => unknown, options: ServerOptions = {}) {
  const server = createServer(handler, { keepAlive: false, ...options });
  toClose.push(server);
  const { port } = await server.listen({ port: 0 });
  return { server, port };
}

function nextCall(server: AudioSocketServer): Promise<Call> {
  return once(server, 'call').then(([c]) => c as Call);
}

function nextFailure(server: AudioSocketServer): Promise<HandshakeFailure> {
  return once(server, 'handshakeFailed').then(([f]) => f as HandshakeFailure);
}

function rawSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    // Reading, like Asterisk always does: a socket that never reads never sees our FIN.
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s.resume()));
    s.once('error', reject);
  });
}

const UUID = 'A1B2C3D4-E5F6-4789-9ABC-DEF012345678';

/** A server and one call on it from a raw socket that has sent its UUID. */
async function rawCall(): Promise<{ server: AudioSocketServer; sock: net.Socket; call: Call }> {
  const { server, port } = await start();
  const callP = nextCall(server);
  const sock = await rawSocket(port);
  sock.write(encodeUuidMessage(UUID));
  return { server, sock, call: await callP };
}

describe('server and calls over TCP', () => {
  test('the UUID arrives as bytes and is presented lower case; audio of every kind, DTMF, unknown kinds', async () => {
    const { server, port } = await start();
    const callP = nextCall(server);
    const client = await dial({ port, uuid: UUID });
    const call = await callP;
    assert.equal(call.uuid, UUID.toLowerCase());
    assert.equal(call.remoteAddress, '127.0.0.1');
    assert.equal(call.connected, true);

    const frames: AudioFrame[] = [];
    const digits: string[] = [];
    const others: number[] = [];
    call.on('audio', (f) => frames.push({ ...f, payload: Buffer.from(f.payload) }));
    call.on('dtmf', (d) => digits.push(d));
    call.on('message', (k) => others.push(k));
    const rates = [8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000];
    for (let kind = 0x10; kind <= 0x18; kind++) client.sendAudio(Buffer.alloc(64, kind), kind as 0x10);
    for (const d of '0123456789*#ABCDabcdX') client.sendDtmf(d);
    client.sendRaw(encodeMessage(0x02, Buffer.alloc(5)));
    client.sendRaw(encodeMessage(0xff, Buffer.from([1])));
    client.sendRaw(encodeMessage(0x03, Buffer.from('12'))); // malformed DTMF: reported, not fatal
    client.sendAudio(Buffer.alloc(2, 1));
    await until(() => call.stats.messagesIn >= 34, 'all 34 messages in');
    assert.deepEqual(
      frames.map((f) => ['kind' in f ? f.kind : -1, f.sampleRate]),
      [...rates.map((r, i) => [0x10 + i, r]), [0x10, 8000]],
    );
    assert.ok(frames.every((f, i) => i === 9 || f.payload.every((b) => 'kind' in f && b === f.kind)));
    assert.equal(digits.join(''), '0123456789*#ABCDabcdX');
    assert.deepEqual(others, [0x02, 0xff, 0x03]);
    assert.equal(call.transport === 'audiosocket' && call.inboundKind, 0x10);
    assert.equal(call.stats.audioIn, 10);
    assert.equal(call.stats.dtmfIn, 21);
    assert.equal(call.stats.otherIn, 3);
    assert.equal(call.connected, true, 'unknown kinds never end the call');
    await client.hangup();
    await server.close();
  });

  test('messages split over many writes and merged into one write are reassembled', async () => {
    const { server, port } = await start();
    const callP = nextCall(server);
    const sock = await rawSocket(port);
    const payloads = Array.from({ length: 50 }, (_, i) => Buffer.alloc(320, i + 1));
    const stream = Buffer.concat([encodeUuidMessage(UUID), ...payloads.map((p) => encodeMessage(0x10, p))]);
    // First half one byte per write, second half all at once.
    const half = Math.floor(stream.length / 2);
    const got: Buffer[] = [];
    callP.then((call) => call.on('audio', (f) => got.push(Buffer.from(f.payload))));
    for (let i = 0; i < 400; i++) {
      sock.write(stream.subarray(i, i + 1));
      if (i % 50 === 0) await nextTurn(); // separate reads on the server
    }
    sock.write(stream.subarray(400, half));
    await nextTurn();
    sock.write(stream.subarray(half));
    await until(() => got.length >= payloads.length, `${payloads.length} frames`);
    assert.deepEqual(got, payloads);
    sock.destroy();
    await server.close();
  });

  test('the chunk that carries the UUID may carry the start of the first audio: header or payload cut there', async () => {
    const { server, port } = await start();
    const audio = encodeMessage(0x10, Buffer.alloc(320, 7));
    for (const cut of [1, 2, 100]) {
      const callP = nextCall(server);
      const sock = await rawSocket(port);
      sock.write(Buffer.concat([encodeUuidMessage(UUID), audio.subarray(0, cut)]));
      const call = await callP; // the server has read that chunk: the rest comes in another
      const got = once(call, 'audio');
      sock.write(audio.subarray(cut));
      const [frame] = (await got) as [AudioFrame];
      assert.deepEqual(Buffer.from(frame.payload), Buffer.alloc(320, 7), `cut ${cut}`);
      sock.destroy();
      await call.closed;
    }
    await server.close();
  });

  test('EOF and RST from Asterisk both end the call as remote-hangup', async () => {
    const { server, port } = await start();
    for (const how of ['close', 'reset'] as const) {
      const callP = nextCall(server);
      const client = await dial({ port });
      const call = await callP;
      const ended = once(call, 'end');
      if (how === 'close') await client.hangup();
      else await client.reset();
      const [end] = (await ended) as [CallEnd];
      assert.equal(end.reason, 'remote-hangup', how);
      assert.equal(end.error, undefined);
      assert.equal(call.signal.aborted, true);
      assert.equal(call.connected, false);
      assert.equal((await call.closed).reason, 'remote-hangup');
    }
    await server.close();
  });

  test('signal and closed first read after the end: aborted with its error, resolved with its end', async () => {
    const { server, port } = await start();
    // Read before the end: the signal aborts as the call starts ending.
    const firstP = nextCall(server);
    const first = await dial({ port });
    const firstCall = await firstP;
    const aborted = once(firstCall.signal, 'abort');
    void first.hangup();
    await aborted;
    assert.equal((firstCall.signal.reason as AudioSocketError).code, ErrorCodes.CALL_ENDED);
    assert.match((firstCall.signal.reason as Error).message, /remote-hangup/);
    // Read only after the end: made then, already aborted with the end's error, `closed` settled with it.
    const callP = nextCall(server);
    const sock = await rawSocket(port);
    sock.write(encodeUuidMessage(UUID));
    const call = await callP;
    // (`events.once` would reject on the `error` event that comes first.)
    const ended = new Promise<CallEnd>((resolve) => call.once('end', resolve));
    sock.end(encodeMessage(0x10, Buffer.alloc(320)).subarray(0, 100));
    const end = await ended;
    assert.equal(end.error?.code, ErrorCodes.TRUNCATED);
    assert.equal(call.signal.aborted, true);
    assert.equal(call.signal.reason, end.error);
    assert.equal(await call.closed, end);
    await server.close();
  });

  test('signal first read in an error listener aborts after it; an iterator started there, or made before the end and started after it, ends', async () => {
    const { server, sock, call } = await rawCall();
    const early = call.frames(); // made while the call is open, iterated after its end
    const seen: { abortedInError?: boolean; fired?: boolean; iteratorDone?: Promise<boolean> } = {};
    call.on('error', () => {
      seen.abortedInError = call.signal.aborted;
      call.signal.addEventListener('abort', () => (seen.fired = true));
      const it = call.frames()[Symbol.asyncIterator]();
      seen.iteratorDone = it.next().then((r) => r.done === true);
    });
    const ended = new Promise<CallEnd>((resolve) => call.once('end', resolve));
    sock.end(encodeMessage(0x10, Buffer.alloc(320)).subarray(0, 100));
    await ended;
    assert.equal(seen.abortedInError, false, 'not aborted while the error listeners run');
    assert.equal(seen.fired, true, 'an abort listener added in the error listener fires');
    assert.equal(await seen.iteratorDone, true, 'an iterator started in the error listener ends');
    assert.equal((await early[Symbol.asyncIterator]().next()).done, true, 'an iterator made before the end ends');
    await server.close();
  });

  test('EOF in the middle of a message is a protocol error (TRUNCATED) on that call only', async () => {
    const { server, sock, call } = await rawCall();
    sock.end(encodeMessage(0x10, Buffer.alloc(320)).subarray(0, 100));
    const end = await call.closed;
    assert.equal(end.reason, 'protocol-error');
    assert.equal(end.error?.code, ErrorCodes.TRUNCATED);
    await server.close();
  });

  test('connections that close before the UUID are reported, not thrown; so are garbage and timeouts', async () => {
    const { server, port } = await start(undefined, { handshakeTimeout: 100 });
    let calls = 0;
    server.on('call', () => calls++);

    let f = nextFailure(server);
    (await rawSocket(port)).end();
    assert.equal((await f).reason, 'closed-before-uuid');

    f = nextFailure(server);
    (await rawSocket(port)).resetAndDestroy();
    assert.equal((await f).reason, 'closed-before-uuid');

    f = nextFailure(server);
    const garbage = await rawSocket(port);
    garbage.write(encodeMessage(0x10, Buffer.alloc(320)));
    const g = await f;
    assert.equal(g.reason, 'protocol-error');
    assert.equal(g.error?.code, ErrorCodes.PROTOCOL);
    assert.match(g.error!.message, /expected the UUID/);

    // A WebSocket or browser client on the AudioSocket port: its request line is named.
    f = nextFailure(server);
    const web = await rawSocket(port);
    web.write('GET /media HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\r\n');
    const h = await f;
    assert.equal(h.reason, 'protocol-error');
    assert.match(h.error!.message, /an HTTP request \("GET \/media HTTP\/1\.1"\) on the AudioSocket port/);

    // Text typed at the port (netcat, a health check) is named as text, not as a message kind.
    f = nextFailure(server);
    const typed = await rawSocket(port);
    typed.write('\r\nhello\r\n'); // netcat: Enter, then a word
    const x = await f;
    assert.equal(x.reason, 'protocol-error');
    assert.match(x.error!.message, /^text \("hello"\) on the AudioSocket port/);

    f = nextFailure(server);
    const shortUuid = await rawSocket(port);
    shortUuid.write(encodeMessage(0x01, Buffer.alloc(15)));
    assert.match((await f).error!.message, /15 bytes/);

    f = nextFailure(server);
    const t0 = performance.now();
    const idle = await rawSocket(port);
    const timedOut = await f;
    assert.equal(timedOut.reason, 'timeout');
    assert.equal(timedOut.error?.code, ErrorCodes.HANDSHAKE_TIMEOUT);
    assert.ok(performance.now() - t0 >= 90);
    await once(idle, 'close');

    assert.equal(calls, 0);
    assert.equal(server.stats.handshakeFailures, 7);
    await server.close();
  });

  test('maxCalls: a connection beyond it gets a hangup message and the others carry on', async () => {
    const { server, port } = await start((call) => call.on('audio', (f) => call.write(f.payload, f.format)), { maxCalls: 2 });
    const a = await dial({ port });
    const b = await dial({ port });
    await until(() => server.calls.size === 2, 'two calls');
    const rejected = once(server, 'connectionRejected');
    const c = await dial({ port });
    const [info] = await rejected;
    assert.equal(info.reason, 'max-calls');
    const closeC = await c.closed;
    assert.equal(closeC.by, 'server-hangup');
    const echoed = once(a, 'audio');
    a.sendAudio(Buffer.alloc(320, 3));
    const [frame] = (await echoed) as [AudioFrame];
    assert.equal(frame.payload[0], 3);
    await a.hangup();
    await b.hangup();
    await server.close();
  });

  test('allow list: refused addresses are closed before any byte is read', async () => {
    const { server, port } = await start(undefined, { allow: ['10.0.0.0/8', '::1'] });
    const rejected = once(server, 'connectionRejected');
    const client = await dial({ port });
    const [info] = await rejected;
    assert.equal(info.reason, 'not-allowed');
    assert.equal(info.remoteAddress, '127.0.0.1');
    const closed = await client.closed;
    assert.notEqual(closed.by, 'server-hangup');
    assert.equal(server.stats.activeCalls, 0);
    await server.close();

    const ok = await start(undefined, { allow: '127.0.0.0/8' });
    const callP = nextCall(ok.server);
    const allowed = await dial({ port: ok.port });
    assert.ok(await callP);
    await allowed.hangup();
    await ok.server.close();
    assert.throws(() => createServer({ allow: 'not-an-ip' }), /not an IP address/);
  });

  test('IPv6 loopback works', async () => {
    const server = createServer({ keepAlive: false });
    toClose.push(server);
    const { port, family } = await server.listen({ host: '::1', port: 0 });
    assert.equal(family, 'IPv6');
    const callP = nextCall(server);
    const client = await dial({ host: '::1', port });
    const call = await callP;
    assert.equal(call.remoteAddress, '::1');
    await client.hangup();
    await server.close();
  });

  test('a handler that throws or rejects ends only its own call, with handler-error and a hangup', async () => {
    const errors: unknown[] = [];
    let n = 0;
    const { server, port } = await start(async (call) => {
      n++;
      if (n === 1) throw new Error('sync boom');
      if (n === 2) {
        await nextTurn();
        throw new Error('async boom');
      }
      if (n === 3) {
        call.on('dtmf', () => {
          throw new Error('listener boom');
        });
      }
      call.on('audio', (f) => call.write(f.payload, f.format));
    });
    server.on('handlerError', (err) => errors.push(err));
    const ends: CallEnd[] = [];
    server.on('callEnd', (_c, end) => ends.push(end));

    const c1 = await dial({ port });
    const c2 = await dial({ port });
    const c3 = await dial({ port });
    const c4 = await dial({ port });
    await until(() => n === 4, 'four handlers to have run');
    c3.sendDtmf('1');
    assert.equal((await c1.closed).by, 'server-hangup');
    assert.equal((await c2.closed).by, 'server-hangup');
    assert.equal((await c3.closed).by, 'server-hangup');
    const echoed = once(c4, 'audio');
    c4.sendAudio(Buffer.alloc(320, 4));
    assert.equal(((await echoed)[0] as AudioFrame).payload[0], 4);
    await c4.hangup();
    await until(() => errors.length >= 3, 'three handler errors');
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ['sync boom', 'async boom', 'listener boom'],
    );
    const failed = ends.filter((e) => e.reason === 'handler-error');
    assert.equal(failed.length, 3);
    assert.ok(failed.every((e) => e.error?.code === ErrorCodes.HANDLER && e.error.cause instanceof Error));
    await server.close();
  });

  test('hangup(): sends 00 00 00, is idempotent, resolves when closed; write after hangup throws', async () => {
    const { server, port } = await start();
    const callP = nextCall(server);
    const client = await dial({ port });
    const call = await callP;
    const [e1, e2] = await Promise.all([call.hangup(), call.hangup()]);
    assert.equal(e1, e2);
    assert.equal(e1.reason, 'local-hangup');
    assert.equal((await client.closed).by, 'server-hangup');
    assert.equal(client.violations.length, 0);
    assert.throws(
      () => call.write(Buffer.alloc(320)),
      (e: unknown) => (e as { code: string }).code === ErrorCodes.CALL_ENDED,
    );
    assert.equal((await call.play(Buffer.alloc(320))).status, 'interrupted');
    await server.close();
  });

  test('end(): the queued audio is played out in real time, then hangup', async () => {
    const { server, port } = await start();
    const callP = nextCall(server);
    const client = await dial({ port });
    const call = await callP;
    let frames = 0;
    client.on('audio', () => frames++);
    const t0 = performance.now();
    void call.play(Buffer.alloc(10 * 320, 5));
    const end = await call.end();
    const elapsed = performance.now() - t0;
    assert.equal(end.reason, 'local-hangup');
    assert.equal((await client.closed).by, 'server-hangup');
    assert.equal(frames, 10);
    assert.ok(elapsed >= 170, `10 frames took ${elapsed.toFixed(0)} ms`);
    await server.close();
  });

  test('graceful close(): live calls get a hangup, pending handshakes are closed, close resolves when all are gone', async () => {
    const { server, port } = await start();
    const clients = await Promise.all([dial({ port }), dial({ port }), dial({ port })]);
    const pending = await rawSocket(port);
    toClose.push({ [Symbol.asyncDispose]: async () => void pending.destroy() });
    await until(() => server.calls.size === 3 && server.stats.pendingHandshakes === 1, 'three calls and one pending handshake');
    assert.equal(server.calls.size, 3);
    const ends: CallEnd[] = [];
    server.on('callEnd', (_c, e) => ends.push(e));
    await server.close();
    assert.equal(server.calls.size, 0);
    for (const c of clients) assert.equal((await c.closed).by, 'server-hangup');
    assert.ok(pending.destroyed || (await once(pending, 'close')));
    assert.deepEqual(
      ends.map((e) => e.reason),
      ['server-close', 'server-close', 'server-close'],
    );
    await server.close(); // idempotent
    await assert.rejects(server.listen(), /closed/);
  });

  test("calls as an async iterator and `for await` over a call's frames", async () => {
    const { server, port } = await start();
    const seen: string[] = [];
    let reading = false;
    const loop = (async () => {
      for await (const call of server) {
        let n = 0;
        reading = true; // the frames iterator is created synchronously below: frames from now on are its
        for await (const frame of call) {
          n += frame.payload.length;
        }
        seen.push(`${call.uuid}:${n}`);
      }
    })();
    const client = await dial({ port, uuid: UUID });
    await until(() => reading, 'the loop to read the call');
    client.sendAudio(Buffer.alloc(320));
    client.sendAudio(Buffer.alloc(160));
    await until(() => server.calls.size === 1 && [...server.calls][0]!.stats.audioIn === 2, 'both frames in');
    await client.hangup();
    await until(() => server.calls.size === 0, 'the call to end');
    await server.close();
    await loop;
    assert.deepEqual(seen, [`${UUID.toLowerCase()}:480`]);
  });

  test('a consumer that never reads: the socket is still drained and buffered frames stay bounded', async () => {
    const { server, port } = await start(undefined, { iteratorQueueFrames: 50 });
    const callP = nextCall(server);
    const client = await dial({ port });
    const call = await callP;
    const it = call[Symbol.asyncIterator](); // created, never read
    const warnings: string[] = [];
    call.on('warning', (w) => warnings.push(w.code));
    const frame = Buffer.alloc(320, 1);
    for (let i = 0; i < 2000; i++) client.sendAudio(frame);
    await until(() => call.stats.audioIn === 2000, '2000 frames in');
    assert.equal(call.stats.audioIn, 2000, 'everything was read off the socket');
    assert.equal(call.stats.droppedIn, 1950);
    assert.deepEqual(warnings, ['ITERATOR_OVERFLOW']);
    const first = await it.next();
    assert.equal(first.done, false);
    await it.return!();
    await client.hangup();
    await server.close();
  });

  test('payloads above maxPayload end that call with PAYLOAD_TOO_LARGE; other calls are untouched', async () => {
    const { server, port } = await start((call) => call.on('audio', (f) => call.write(f.payload, f.format)), { maxPayload: 1000 });
    const good = await dial({ port });
    const bad = await dial({ port });
    await until(() => server.calls.size === 2, 'two calls');
    const ended = once(server, 'callEnd');
    bad.sendRaw(encodeMessage(0x10, Buffer.alloc(2000)));
    const [, end] = (await ended) as [Call, CallEnd];
    assert.equal(end.reason, 'protocol-error');
    assert.equal(end.error?.code, ErrorCodes.PAYLOAD_TOO_LARGE);
    const echoed = once(good, 'audio');
    good.sendAudio(Buffer.alloc(320, 7));
    assert.equal(((await echoed)[0] as AudioFrame).payload[0], 7);
    await good.hangup();
    await server.close();
  });

  test('1000 sequential calls leave no sockets, listeners or calls behind', async () => {
    const { server, port } = await start((call) => call.on('audio', (f) => call.write(f.payload, f.format)));
    const frame = Buffer.alloc(320, 1);
    const handlesBefore = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
    for (let i = 0; i < 1000; i++) {
      const c = await dial({ port });
      const echoed = once(c, 'audio');
      c.sendAudio(frame);
      await echoed;
      if (i % 2 === 0) await c.hangup();
      else {
        const calls = [...server.calls];
        await calls[0]!.hangup();
        await c.closed;
      }
    }
    await until(() => server.calls.size === 0, 'every call to end');
    assert.equal(server.calls.size, 0);
    assert.equal(server.stats.totalCalls, 1000);
    assert.equal(server.listenerCount('call'), 0);
    const handlesAfter = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
    assert.ok(handlesAfter <= handlesBefore + 1, `handles ${handlesBefore} -> ${handlesAfter}`);
    await server.close();
  });
});

test('await using: the server is closed when the scope ends', async () => {
  let port = 0;
  {
    await using server = createServer({ keepAlive: false });
    port = (await server.listen({ port: 0 })).port;
    const client = await dial({ port });
    await until(() => server.calls.size === 1, 'the call');
    assert.equal(server.calls.size, 1);
    void client.closed;
  }
  await assert.rejects(connect({ port, connectTimeout: 500 }), /ECONNREFUSED|could not connect/);
});

describe('warnings nobody listens for', () => {
  test('are process warnings, once per call and code; a warning listener on the call or the server takes over', async () => {
    const seen: Error[] = [];
    const onWarning = (w: Error): void => {
      if (w.name === 'AudioSocketWarning') seen.push(w);
    };
    process.on('warning', onWarning);
    try {
      const { server, port } = await start();
      const odd = Buffer.from([0x10, 0x00, 0x03, 1, 2, 3]); // odd-length slin: a call warning
      const a = await dial({ port });
      await until(() => server.calls.size === 1, 'the call');
      a.sendRaw(odd);
      a.sendRaw(odd);
      await until(() => seen.length === 1, 'a process warning');
      assert.equal((seen[0] as Error & { code?: string }).code, 'UNEXPECTED_MESSAGE');
      assert.match(seen[0]!.message, new RegExp(`call ${a.uuid}: odd-length`));
      // A listener on the server: no process warning, the server's event instead.
      const heard: string[] = [];
      server.on('callWarning', (call, w) => heard.push(`${call.uuid} ${w.code}`));
      const b = await dial({ port });
      await until(() => server.calls.size === 2, 'the second call');
      b.sendRaw(odd);
      await until(() => heard.length === 1, 'the callWarning event');
      assert.deepEqual(heard, [`${b.uuid} UNEXPECTED_MESSAGE`]);
      await nextTurn();
      assert.equal(seen.length, 1, 'no process warning when the server listens');
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('options, listen and close', () => {
  test('listen() with a bad port rejects with an AudioSocketError, like every other error', async () => {
    const server = createServer();
    toClose.push(server);
    for (const port of [70000, -1, 1.5]) {
      await assert.rejects(server.listen({ port }), (e: unknown) => {
        assert.ok(e instanceof AudioSocketError);
        assert.equal(e.code, ErrorCodes.INVALID_ARGUMENT);
        assert.match(e.message, /port must be a whole number from 0 to 65535/);
        return true;
      });
    }
  });

  test('bad options fail at createServer, never on the first connection', () => {
    assert.throws(() => createServer({ frameMs: 25 }), /frameMs must be one of 10, 20, 30, 40, 50, 60/);
    assert.throws(() => createServer({ handshakeTimeout: 2 ** 31 }), /handshakeTimeout must be at most/);
    assert.throws(() => createServer({ outboundKind: 22050 }), /outboundKind/);
    assert.throws(() => createServer({ pacing: { leadMs: 10 } }), /pacing.leadMs must be at least one frame \(20 ms/);
    assert.doesNotThrow(() => createServer({ frameMs: 10, pacing: { leadMs: 10 } }));
    assert.throws(() => createServer({ inbound: 'opus' as never }), /inbound/);
    assert.throws(
      () => createServer({ receive: 'mp3' as never }),
      (e: unknown) => (e as { code: string }).code === ErrorCodes.INVALID_FORMAT,
    );
  });

  test('44.1 kHz and above default to 10 ms frames: one message per TCP segment', async (t) => {
    const server = createServer({ outboundKind: 0x16, keepAlive: false });
    t.after(() => server.close());
    const { port } = await server.listen({ port: 0 });
    const callP = nextCall(server);
    const client = await dial({ port });
    t.after(() => client.hangup());
    const call = await callP;
    assert.equal(call.frameMs, 10);
    assert.equal(call.frameBytes, 960);
  });

  test('close() or an aborted signal while listen() is starting leaves nothing listening', async (t) => {
    const a = createServer();
    t.after(() => a.close());
    const listening = a.listen({ port: 0 });
    await a.close();
    await assert.rejects(listening, (e: unknown) => (e as { code: string }).code === ErrorCodes.SERVER_CLOSED);
    assert.equal(a.address(), null);
    const ac = new AbortController();
    const b = createServer();
    t.after(() => b.close());
    const p = b.listen({ port: 0, signal: ac.signal });
    ac.abort(new Error('stop'));
    await assert.rejects(p, /stop/);
    assert.equal(b.address(), null);
  });

  test('before the UUID, a header announcing more than 16 bytes is a protocol error at once', async (t) => {
    const server = createServer({ handshakeTimeout: 5000 });
    t.after(() => server.close());
    const { port } = await server.listen({ port: 0 });
    const failed = nextFailure(server);
    const s = net.connect({ host: '127.0.0.1', port });
    t.after(() => s.destroy());
    await once(s, 'connect');
    s.on('error', () => {});
    s.write(Buffer.from([0x10, 0xff, 0xff, 1, 2, 3]));
    const f = await failed;
    assert.equal(f.reason, 'protocol-error');
    assert.match(f.error!.message, /expected the UUID message .* first: .*65535/);
  });

  test('close() says hangup to pending handshakes too, and waits for them', async (t) => {
    const server = createServer();
    t.after(() => server.close());
    const { port } = await server.listen({ port: 0 });
    const s = net.connect({ host: '127.0.0.1', port });
    t.after(() => s.destroy());
    await once(s, 'connect');
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    await until(() => server.stats.pendingHandshakes === 1, 'the server to hold the pending handshake');
    const closing = server.close();
    await once(s, 'end');
    s.end();
    await closing;
    assert.deepEqual([...Buffer.concat(got)], [0, 0, 0]);
  });

  test('call end, then callEnd, then the server close event; play after the end resolves as interrupted', async (t) => {
    const server = createServer({ keepAlive: false });
    t.after(() => server.close());
    const { port } = await server.listen({ port: 0 });
    const order: string[] = [];
    const callP = nextCall(server);
    const client = await dial({ port });
    t.after(() => client.hangup());
    const call = await callP;
    call.on('end', () => order.push('end'));
    server.on('callEnd', () => order.push('callEnd'));
    server.on('close', () => order.push('close'));
    await server.close();
    assert.deepEqual(order, ['end', 'callEnd', 'close']);
    assert.deepEqual(await call.play(Buffer.alloc(320)), { status: 'interrupted', reason: 'hangup', framesSent: 0, sentMs: 0 });
  });
});
