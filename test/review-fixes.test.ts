/**
 * Regressions found in review: odd-length inbound audio, option validation, listen/close
 * races, handshake payload limits, hangup for pending handshakes, event order, iterator and
 * play semantics after the end.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import {
  createServer,
  connect,
  encodeMessage,
  ErrorCodes,
  type AudioFrame,
  type Call,
  type HandshakeFailure,
} from '#lib/index.js';
import { MAIN, spawnCli } from './helpers.js';

describe('review regressions', () => {
  test('odd-length slin (a 1-byte CNG frame from an old channel driver) keeps whole samples; the echo survives', async () => {
    const server = createServer((call) => call.on('audio', (f) => call.write(f.payload, f.kind)), { keepAlive: false });
    const { port } = await server.listen({ port: 0 });
    const calls: Call[] = [];
    server.on('call', (c) => calls.push(c));
    const client = await connect({ port });
    const echoed: Buffer[] = [];
    client.on('audio', (f) => echoed.push(Buffer.from(f.payload)));
    client.sendAudio(Buffer.from([0x42])); // CNG noise level byte
    client.sendAudio(Buffer.alloc(321, 7));
    client.sendAudio(Buffer.alloc(320, 8));
    await sleep(80);
    assert.equal(client.connected, true);
    assert.deepEqual(echoed.map((e) => e.length), [320, 320]);
    assert.equal(calls[0]!.stats.oddAudioIn, 2);
    assert.equal(calls[0]!.stats.emptyAudioIn, 1);
    await client.close();
    await server.close();
  });

  test('with receive set, an odd byte does not shift later samples', async () => {
    const server = createServer({ keepAlive: false, receive: 'slin' });
    const { port } = await server.listen({ port: 0 });
    const callP = once(server, 'call');
    const client = await connect({ port });
    const [call] = (await callP) as [Call];
    const frames: AudioFrame[] = [];
    call.on('audio', (f) => frames.push({ ...f, payload: Buffer.from(f.payload) }));
    const constant = Buffer.alloc(320);
    for (let i = 0; i < 160; i++) constant.writeInt16LE(1000, i * 2);
    client.sendAudio(Buffer.from([1]));
    client.sendAudio(constant);
    await sleep(50);
    const samples = frames.flatMap((f) => Array.from({ length: f.payload.length / 2 }, (_, i) => f.payload.readInt16LE(i * 2)));
    assert.ok(samples.every((x) => x === 1000), 'every sample intact');
    await client.close();
    await server.close();
  });

  test('bad options fail at createServer, never on the first connection', () => {
    assert.throws(() => createServer({ frameMs: 25 }), /frameMs must be one of 10, 20, 30, 40, 50, 60/);
    assert.throws(() => createServer({ handshakeTimeout: 2 ** 31 }), /handshakeTimeout must be at most/);
    assert.throws(() => createServer({ outboundKind: 22050 }), /outboundKind/);
    assert.throws(() => createServer({ inbound: 'opus' as never }), /inbound/);
    assert.throws(() => createServer({ receive: 'mp3' as never }), (e: unknown) => (e as { code: string }).code === ErrorCodes.INVALID_FORMAT);
  });

  test('44.1 kHz and above default to 10 ms frames: one message per TCP segment', async () => {
    const server = createServer({ outboundKind: 0x16, keepAlive: false });
    const { port } = await server.listen({ port: 0 });
    const callP = once(server, 'call');
    const client = await connect({ port });
    const [call] = (await callP) as [Call];
    assert.equal(call.frameMs, 10);
    assert.equal(call.frameBytes, 960);
    await client.close();
    await server.close();
  });

  test('close() or an aborted signal while listen() is starting leaves nothing listening', async () => {
    const a = createServer();
    const listening = a.listen({ port: 0 });
    await a.close();
    await assert.rejects(listening, (e: unknown) => (e as { code: string }).code === ErrorCodes.SERVER_CLOSED);
    assert.equal(a.address(), null);
    const ac = new AbortController();
    const b = createServer();
    const p = b.listen({ port: 0, signal: ac.signal });
    ac.abort(new Error('stop'));
    await assert.rejects(p, /stop/);
    assert.equal(b.address(), null);
  });

  test('before the UUID, a header announcing more than 16 bytes is a protocol error at once', async () => {
    const server = createServer({ handshakeTimeout: 5000 });
    const { port } = await server.listen({ port: 0 });
    const failed = once(server, 'handshakeFailed');
    const s = net.connect({ host: '127.0.0.1', port });
    await once(s, 'connect');
    s.on('error', () => {});
    s.write(Buffer.from([0x10, 0xff, 0xff, 1, 2, 3]));
    const [f] = (await failed) as [HandshakeFailure];
    assert.equal(f.reason, 'protocol-error');
    assert.match(f.error!.message, /expected the UUID message .* first: .*65535/);
    await server.close();
  });

  test('close() says hangup to pending handshakes too, and waits for them', async () => {
    const server = createServer();
    const { port } = await server.listen({ port: 0 });
    const s = net.connect({ host: '127.0.0.1', port });
    await once(s, 'connect');
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    await sleep(20);
    const closing = server.close();
    await once(s, 'end');
    s.end();
    await closing;
    assert.deepEqual([...Buffer.concat(got)], [0, 0, 0]);
  });

  test('call end, then callEnd, then the server close event; play after the end resolves as interrupted', async () => {
    const server = createServer({ keepAlive: false });
    const { port } = await server.listen({ port: 0 });
    const order: string[] = [];
    const callP = once(server, 'call');
    const client = await connect({ port });
    const [call] = (await callP) as [Call];
    call.on('end', () => order.push('end'));
    server.on('callEnd', () => order.push('callEnd'));
    server.on('close', () => order.push('close'));
    await server.close();
    assert.deepEqual(order, ['end', 'callEnd', 'close']);
    assert.deepEqual(await call.play(Buffer.alloc(320)), { status: 'interrupted', reason: 'hangup', framesSent: 0, sentMs: 0 });
    void client;
  });

  test('return() on a frames iterator ends a next() that is waiting', async () => {
    const server = createServer({ keepAlive: false });
    const { port } = await server.listen({ port: 0 });
    const callP = once(server, 'call');
    const client = await connect({ port });
    const [call] = (await callP) as [Call];
    const it = call.frames()[Symbol.asyncIterator]();
    const pending = it.next();
    await it.return!();
    assert.deepEqual(await pending, { value: undefined, done: true });
    await client.close();
    await server.close();
  });

  test('the iterator drops old frames without keeping them in memory', async () => {
    const server = createServer({ keepAlive: false, iteratorQueueFrames: 10 });
    const { port } = await server.listen({ port: 0 });
    const callP = once(server, 'call');
    const client = await connect({ port });
    const [call] = (await callP) as [Call];
    const it = call.frames()[Symbol.asyncIterator]();
    for (let i = 0; i < 3000; i++) {
      const f = Buffer.alloc(320);
      f.writeUInt32LE(i, 0);
      client.sendAudio(f);
    }
    await sleep(100);
    const got: number[] = [];
    for (let i = 0; i < 10; i++) got.push(((await it.next()).value as AudioFrame).payload.readUInt32LE(0));
    assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => 2990 + i), 'the newest frames are kept');
    assert.equal(call.stats.droppedIn, 2990);
    await it.return!();
    await client.close();
    await server.close();
  });

  test('--workers with the port taken exits 1 instead of restarting forever', async () => {
    const first = await spawnCli(['echo', '--port', '0']);
    const child = spawn(process.execPath, [MAIN, 'echo', '--port', String(first.port), '--workers', '2'], { stdio: 'pipe' });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = await once(child, 'exit');
    assert.equal(code, 1);
    assert.match(err, /before listening; stopping/);
    first.child.kill('SIGINT');
    await once(first.child, 'exit');
  });

  test('the simulated Asterisk measures the 5 ms limit per gap, not per message', async () => {
    const server = net.createServer(async (s) => {
      s.on('error', () => {});
      await once(s, 'data');
      const msg = encodeMessage(0x10, Buffer.alloc(320, 1));
      // Eight pieces about 1 ms apart: more than 5 ms in all, but no gap near 5 ms.
      for (let i = 0; i < 8; i++) {
        s.write(msg.subarray(i * 41, (i + 1) * 41));
        await sleep(1);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const client = await connect({ port: (server.address() as net.AddressInfo).port });
    await sleep(60);
    assert.deepEqual(client.violations, []);
    await client.close();
    server.close();
  });
});
