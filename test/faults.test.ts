/**
 * Fault injection over real TCP on 127.0.0.1: each fault hits one call while 5-10 well-behaved
 * calls keep echoing stamped frames byte-exact; the faulty call must end with the expected typed
 * reason and the process must survive.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, encodeMessage, ErrorCodes, type AudioSocketServer, type Call, type CallEnd, type HandshakeFailure } from '#lib/index.js';
import {
  EchoProbe,
  echoHandler,
  rawCall,
  serverSideSocket,
  stamped,
  startServer,
  uuidWith,
  within,
  allZero,
  getGc,
} from './fault-helpers.js';
import { spawnCli, until } from './helpers.js';

const INDEX = new URL('../../dist/index.js', import.meta.url).href;

/** Ends of every call of `server`, by UUID. */
function recordEnds(server: AudioSocketServer): Map<string, CallEnd> {
  const ends = new Map<string, CallEnd>();
  server.on('callEnd', (call, end) => ends.set(call.uuid, end));
  return ends;
}

function recordFailures(server: AudioSocketServer): HandshakeFailure[] {
  const failures: HandshakeFailure[] = [];
  server.on('handshakeFailed', (f) => failures.push(f));
  return failures;
}

async function callFor(server: AudioSocketServer, uuid: string): Promise<Call> {
  let found: Call | undefined;
  await until(() => (found = [...server.calls].find((c) => c.uuid === uuid)) !== undefined, `call ${uuid}`);
  return found!;
}

/** Runs an ES module snippet in a fresh node process; resolves with its exit code and output. */
async function runNode(code: string, timeoutMs = 10000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [exit] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code: exit, stdout, stderr };
}

describe('faults on one call never disturb the others', { concurrency: true }, () => {
  test(
    'a peer that stops reading during a long prompt: output is dropped and counted, buffers stay bounded, the call ends peer-not-reading',
    { timeout: 90_000 },
    async (t) => {
      const handler = (call: Call): void => {
        if (!call.uuid.startsWith('b10cb10c')) return echoHandler(call);
        // A long prompt streamed from a generator (so the test itself holds little memory).
        const bytes = call.frameBytes * 5; // 100 ms per chunk
        async function* prompt() {
          for (let i = 0; i < 600 && call.connected; i++) yield Buffer.alloc(bytes, 0x11);
        }
        call.play(prompt()).catch(() => {});
      };
      // 0x18 (192 kHz) fills the loopback socket buffers fastest: 384 kB/s of real-time audio.
      const options = { outboundKind: 0x18, maxBufferedMs: 100, peerNotReadingTimeout: 1000 } as const;
      const { server, port } = await startServer(handler, options, t);
      const ends = recordEnds(server);
      const probe = await EchoProbe.start(port, 5, t);
      await probe.advanced(3);

      const raw = await rawCall(port, { uuid: uuidWith('b10cb10c') }, t);
      raw.socket.pause(); // never reads again
      const call = await callFor(server, raw.uuid);
      const warnings: string[] = [];
      call.on('warning', (w) => warnings.push(w.code));
      const ss = serverSideSocket(port, raw.socket);
      assert.ok(ss, 'found the server side of the connection');
      const bound =
        Math.max(2 * call.frameBytes, Math.round((options.maxBufferedMs / call.frameMs) * call.frameBytes)) + call.frameBytes + 3;

      let maxWritable = 0;
      const dropped: number[] = [];
      let memAtBlock = 0;
      let memMax = 0;
      const mem = (): number => {
        const m = process.memoryUsage();
        return m.heapUsed + m.arrayBuffers;
      };
      const sampler = setInterval(() => {
        maxWritable = Math.max(maxWritable, ss.writableLength);
        const d = call.stats.droppedOut;
        if (d > 0) {
          if (dropped.length === 0) memAtBlock = mem();
          memMax = Math.max(memMax, mem());
          if (dropped.at(-1) !== d) dropped.push(d);
        }
      }, 10);
      let end: CallEnd;
      try {
        end = await within(call.closed, 60_000, 'the call to end');
      } finally {
        clearInterval(sampler);
      }
      t.diagnostic(
        `blocked after ${end.stats.bytesOut} B sent; droppedOut ${end.stats.droppedOut}; writableLength max ${maxWritable} B (bound ${bound}); ` +
          `heap+arrayBuffers +${((memMax - memAtBlock) / 1048576).toFixed(1)} MB while blocked`,
      );
      assert.equal(end.reason, 'peer-not-reading');
      assert.equal(end.error?.code, ErrorCodes.PEER_NOT_READING);
      assert.ok(end.stats.droppedOut > 0, 'drops are counted');
      assert.ok(dropped.length >= 10, `droppedOut kept growing while blocked: ${dropped.slice(0, 5).join(',')}...`);
      assert.ok(maxWritable <= bound, `server writableLength peaked at ${maxWritable} B, bound ${bound} B`);
      assert.ok(memMax - memAtBlock < 32 * 1024 * 1024, `memory grew ${((memMax - memAtBlock) / 1048576).toFixed(1)} MB while blocked`);
      assert.deepEqual(warnings, ['PEER_NOT_READING']);
      assert.equal(ends.get(raw.uuid)?.reason, 'peer-not-reading');

      await probe.advanced(5);
      await probe.finish();
      raw.socket.destroy();
      await server.close();
    },
  );

  test('RST in the middle of a message (header or payload) ends that call as remote-hangup', async (t) => {
    const { server, port } = await startServer(echoHandler, {}, t);
    const ends = recordEnds(server);
    const probe = await EchoProbe.start(port, 6, t);
    await probe.advanced(3);
    for (const cutAt of [2, 103]) {
      const raw = await rawCall(port, {}, t);
      const call = await callFor(server, raw.uuid);
      raw.socket.write(encodeMessage(0x10, stamped(99, 0, cutAt)).subarray(0, cutAt));
      await until(() => call.stats.bytesIn >= 16 + 3 + cutAt, 'the partial message to be read');
      await sleep(30); // deliberate negative window: a timeout on partial messages would end the call within it
      assert.ok(call.connected, 'a partial message alone does not end the call');
      raw.socket.resetAndDestroy();
      const end = await within(call.closed, 3000, 'the reset call to end');
      assert.equal(end.reason, 'remote-hangup', `cut at ${cutAt}`);
      assert.equal(end.error, undefined);
      assert.equal(ends.get(raw.uuid)?.reason, 'remote-hangup');
      await probe.advanced(3);
    }
    await probe.finish();
    await server.close();
  });

  test('EOF in the middle of a payload ends that call as protocol-error TRUNCATED, without a forbidden byte sent', async (t) => {
    const { server, port } = await startServer(echoHandler, {}, t);
    const ends = recordEnds(server);
    const probe = await EchoProbe.start(port, 6, t);
    await probe.advanced(3);
    const raw = await rawCall(port, {}, t);
    const call = await callFor(server, raw.uuid);
    raw.socket.write(encodeMessage(0x10, stamped(98, 0, 0)));
    await until(() => raw.messages.some((m) => !m.zero), 'the first echo');
    raw.socket.end(encodeMessage(0x10, stamped(98, 0, 1)).subarray(0, 3 + 150));
    const end = await within(call.closed, 3000, 'the truncated call to end');
    assert.equal(end.reason, 'protocol-error');
    assert.equal(end.error?.code, ErrorCodes.TRUNCATED);
    assert.match(end.error!.message, /150 of 320/);
    assert.equal(ends.get(raw.uuid)?.error?.code, ErrorCodes.TRUNCATED);
    await raw.closed;
    assert.deepEqual(raw.violations, []);
    await probe.advanced(5);
    await probe.finish();
    await server.close();
  });

  test('EOF or RST before the UUID is a counted handshake failure, never a call', async (t) => {
    const { server, port } = await startServer(echoHandler, { handshakeTimeout: 2000 }, t);
    const failures = recordFailures(server);
    const probe = await EchoProbe.start(port, 6, t);
    await probe.advanced(3);
    const calls0 = server.stats.totalCalls;

    const empty = await rawCall(port, { sendUuid: false }, t);
    empty.socket.end();
    const partial = await rawCall(port, { sendUuid: false }, t);
    partial.socket.end(encodeMessage(0x01, Buffer.alloc(16, 7)).subarray(0, 10));
    const reset = await rawCall(port, { sendUuid: false }, t);
    reset.socket.write(encodeMessage(0x01, Buffer.alloc(16, 7)).subarray(0, 5));
    // Deliberate: lets the five bytes reach the server before the reset (a pending handshake
    // reports no event for bytes received, so there is nothing to wait on).
    await sleep(20);
    reset.socket.resetAndDestroy();
    await within(Promise.all([empty.closed, partial.closed, reset.closed]), 3000, 'the three sockets to close');
    await until(() => failures.length === 3, 'three handshake failures');

    const byPort = new Map(failures.map((f) => [f.remotePort, f]));
    assert.equal(byPort.get(empty.localPort)?.reason, 'closed-before-uuid');
    assert.equal(byPort.get(empty.localPort)?.error, undefined);
    assert.equal(byPort.get(partial.localPort)?.reason, 'protocol-error');
    assert.equal(byPort.get(partial.localPort)?.error?.code, ErrorCodes.TRUNCATED);
    assert.equal(byPort.get(reset.localPort)?.reason, 'closed-before-uuid');
    assert.equal(server.stats.handshakeFailures, 3);
    assert.equal(server.stats.totalCalls, calls0, 'no call was created');
    assert.equal(server.stats.pendingHandshakes, 0);
    for (const r of [empty, partial, reset]) assert.equal(r.messages.length, 0, 'nothing sent before the UUID');
    await probe.advanced(5);
    await probe.finish();
    await server.close();
  });

  test('a half-open peer that never sends again keeps its call; server.close() hangs it up within hangupTimeout', async (t) => {
    const { server, port } = await startServer(echoHandler, { handshakeTimeout: 200, hangupTimeout: 300 }, t);
    const ends = recordEnds(server);
    const probe = await EchoProbe.start(port, 6, t);
    const raw = await rawCall(port, { allowHalfOpen: true }, t); // never sends FIN, even when the server does
    const call = await callFor(server, raw.uuid);
    raw.socket.write(encodeMessage(0x10, stamped(97, 0, 0)));
    // Input that stops is late input for up to inputWaitMs (200 ms); then keep-alive fills the slots.
    await until(() => raw.messages.filter((m) => m.zero).length >= 30, 'keep-alive silence to flow to the silent peer');
    assert.equal(call.connected, true, 'a silent call is not a stalled handshake (handshakeTimeout is 200 ms)');
    assert.ok(server.calls.has(call));
    assert.equal(raw.messages.filter((m) => !m.zero).length, 1, 'its one frame was echoed');
    await probe.advanced(5);
    await probe.finish(false);

    // The peer never closes its side: close() resolves only because the server destroys the
    // socket once hangupTimeout has passed (a generous bound: it tells a hang from a slow machine).
    const t0 = performance.now();
    await within(server.close(), 20_000, 'server.close() (it must not wait for the peer)');
    t.diagnostic(`close took ${(performance.now() - t0).toFixed(0)} ms (hangupTimeout 300)`);
    assert.equal(ends.get(raw.uuid)?.reason, 'server-close');
    assert.equal(raw.hungUp, true, 'the silent peer got the hangup message');
    assert.equal(raw.messages.at(-1)?.kind, 0x00, 'nothing after the hangup');
    assert.deepEqual(raw.violations, []);
    for (const c of probe.clients) assert.equal((await c.closed).by, 'server-hangup');
    raw.socket.destroy();
  });

  test('a flood of connections that never send a UUID: all closed and counted; established calls keep echoing; new calls work', async (t) => {
    const { server, port } = await startServer(echoHandler, { handshakeTimeout: 300, maxCalls: 150 }, t);
    const failures = recordFailures(server);
    const rejections: string[] = [];
    server.on('connectionRejected', (r) => rejections.push(r.reason));
    const probe = await EchoProbe.start(port, 8, t);
    await probe.advanced(3);

    const flood = async (n: number): Promise<net.Socket[]> => {
      const sockets = Array.from({ length: n }, () => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.on('error', () => {});
        s.on('data', () => {}); // a rejected one gets 00 00 00
        return s;
      });
      t.after(() => sockets.forEach((s) => s.destroy()));
      await Promise.all(sockets.map((s) => once(s, 'connect')));
      return sockets;
    };

    // Wave 1: 100 idle connections; a new legitimate call still gets through.
    const wave1 = await flood(100);
    const closed1 = Promise.all(wave1.map((s) => once(s, 'close')));
    // Every one has reached the server: it is pending, or already cut by handshakeTimeout. (Not
    // "100 pending at once": a loaded server can accept the last more than 300 ms after the first.)
    await until(() => server.stats.pendingHandshakes + failures.length === 100, 'the 100 connections to reach the server');
    const legit = await connect({ port });
    legit.sendAudio(stamped(96, 0, 0));
    await within(
      new Promise<void>((resolve) => legit.on('audio', (f) => !allZero(f.payload) && resolve())),
      2000,
      'an echo on a call made during the flood',
    );
    await legit.hangup();
    await probe.advanced(5);
    await within(closed1, 5000, 'the first wave to be closed');
    assert.equal(failures.length, 100);
    assert.ok(failures.every((f) => f.reason === 'timeout' && f.error?.code === ErrorCodes.HANDSHAKE_TIMEOUT));

    // Wave 2: 200 more, beyond maxCalls: a connection without its UUID holds no call slot
    // (src/admission.ts), so none is refused; each is cut by handshakeTimeout and counted.
    const rejected0 = server.stats.rejected;
    const wave2 = await flood(200);
    await within(Promise.all(wave2.map((s) => once(s, 'close'))), 20_000, 'the second wave to be closed');
    await probe.advanced(5);
    assert.equal(failures.length - 100, 200, 'every one timed out and was counted');
    assert.equal(server.stats.rejected - rejected0, 0);
    assert.deepEqual(rejections, []);
    assert.equal(server.stats.handshakeFailures, failures.length);
    assert.equal(server.stats.pendingHandshakes, 0);

    // After the flood, a new call works.
    const after = await connect({ port });
    after.sendAudio(stamped(96, 1, 0));
    await within(
      new Promise<void>((resolve) => after.on('audio', (f) => !allZero(f.payload) && resolve())),
      2000,
      'an echo after the flood',
    );
    await after.hangup();
    await probe.finish();
    await server.close();
  });

  test('maximum-size payloads and 1000 messages of unknown kinds are counted, not fatal', async (t) => {
    const { server, port } = await startServer(echoHandler, {}, t);
    const probe = await EchoProbe.start(port, 6, t);
    await probe.advanced(3);
    const raw = await rawCall(port, {}, t);
    const call = await callFor(server, raw.uuid);
    const kindsSeen = new Set<number>();
    call.on('message', (kind) => kindsSeen.add(kind));

    const big = Buffer.alloc(65535, 0x5a);
    const unknown = [
      0x02,
      ...Array.from({ length: 12 }, (_, i) => 0x04 + i),
      ...Array.from({ length: 0xfe - 0x19 + 1 }, (_, i) => 0x19 + i),
    ];
    const parts = [encodeMessage(0x10, big), encodeMessage(0x10, big.subarray(0, 65534)), encodeMessage(0x42, big)];
    for (let i = 0; i < 1000; i++) parts.push(encodeMessage(unknown[i % unknown.length]!, Buffer.alloc((i * 37) % 301, i & 0xff)));
    const stream = Buffer.concat(parts);
    // Written in irregular slices, so headers and payloads straddle reads.
    for (let off = 0, i = 0; off < stream.length; i++) {
      const n = 1 + ((i * 7919) % 8192);
      raw.socket.write(stream.subarray(off, off + n));
      off += n;
      if (i % 16 === 0) await sleep(1);
    }
    await until(() => call.stats.messagesIn === 1003, 'all 1003 messages');
    assert.equal(call.connected, true);
    assert.equal(call.stats.audioIn, 2);
    assert.equal(call.stats.otherIn, 1001);
    assert.equal(kindsSeen.size, unknown.length);
    assert.ok(call.stats.bytesIn >= stream.length);

    // The call still works.
    raw.socket.write(encodeMessage(0x10, stamped(95, 0, 0)));
    await until(() => raw.messages.some((m) => !m.zero && m.length === 320), 'an echo after the abuse');
    assert.deepEqual(raw.violations, []);
    await probe.advanced(5);
    await probe.finish();
    raw.socket.end();
    await within(call.closed, 3000, 'the call to end');
    assert.equal((await call.closed).reason, 'remote-hangup');
    await server.close();
  });

  test('handlers that throw, reject or never return: only their own call ends; close() is not blocked', async (t) => {
    const handler = (call: Call): unknown => {
      const tag = call.uuid.slice(0, 8);
      if (tag === '5e5e5e5e') throw new Error('sync throw');
      if (tag === 'ae5e5e5e') return sleep(10).then(() => Promise.reject(new Error('async reject')));
      if (tag === 'ee5e5e5e') return Promise.reject(undefined); // not even an Error
      echoHandler(call);
      if (tag === 'f0f0f0f0') return new Promise(() => {}); // never settles
      return undefined;
    };
    const { server, port } = await startServer(handler, {}, t);
    const ends = recordEnds(server);
    const errors: unknown[] = [];
    server.on('handlerError', (err) => errors.push(err));
    const probe = await EchoProbe.start(port, 6, t);
    await probe.advanced(3);

    const bad = await Promise.all(['5e5e5e5e', 'ae5e5e5e', 'ee5e5e5e'].map((t) => connect({ port, uuid: uuidWith(t) })));
    const forever = await connect({ port, uuid: uuidWith('f0f0f0f0') });
    for (const c of bad) assert.equal((await within(c.closed, 3000, "a failing handler's call to end")).by, 'server-hangup');
    for (const c of bad) {
      const end = ends.get(c.uuid);
      assert.equal(end?.reason, 'handler-error');
      assert.equal(end?.error?.code, ErrorCodes.HANDLER);
    }
    await until(() => errors.length === 3, 'three handlerError events');
    assert.deepEqual(errors.map((e) => (e instanceof Error ? e.message : String(e))).sort(), ['async reject', 'sync throw', 'undefined']);

    // The never-returning handler's call still works.
    forever.sendAudio(stamped(94, 0, 0));
    await within(
      new Promise<void>((resolve) => forever.on('audio', (f) => !allZero(f.payload) && resolve())),
      2000,
      "an echo on the never-returning handler's call",
    );
    await probe.advanced(5);
    await probe.finish(false);
    await within(server.close(), 5000, 'server.close() with a never-settling handler');
    assert.equal((await forever.closed).by, 'server-hangup');
    assert.equal(ends.get(forever.uuid)?.reason, 'server-close');
    for (const c of probe.clients) assert.equal((await c.closed).by, 'server-hangup');
  });
});

describe('bugs found by fault injection (regressions)', { concurrency: true }, () => {
  test('a caller hanging up during createWriteStream playback (no error listener) does not crash the process', async () => {
    const r = await runNode(`
      import { createServer, connect } from ${JSON.stringify(INDEX)};
      let ended;
      const end = new Promise((resolve) => (ended = resolve));
      const server = createServer((call) => {
        const ws = call.createWriteStream();
        ws.write(Buffer.alloc(16000, 1)); // 1 s of audio; the user forgot ws.on('error')
        call.on('end', (e) => ended({ reason: e.reason, unsentMs: e.stats.unsentMs }));
      });
      const { port } = await server.listen({ port: 0 });
      const client = await connect({ port });
      // The prompt is playing: its first frame reached the caller.
      await new Promise((resolve) => client.on('audio', (f) => f.payload.some((b) => b !== 0) && resolve()));
      await client.hangup(); // the caller hangs up mid-prompt
      const e = await end;
      await server.close();
      console.log('survived', JSON.stringify(e));
    `);
    assert.equal(r.code, 0, `process exited with ${r.code}: ${r.stderr.split('\n').slice(0, 6).join('\n')}`);
    const m = /survived (.*)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    const e = JSON.parse(m[1]!) as { reason: string; unsentMs: number };
    assert.equal(e.reason, 'remote-hangup');
    assert.ok(e.unsentMs > 0, `the prompt was still playing when the caller hung up (${e.unsentMs} ms unsent)`);
  });

  test('an invalid frameMs is refused by createServer, not by the first connection (which crashes the process)', async () => {
    const r = await runNode(`
      import { createServer, connect } from ${JSON.stringify(INDEX)};
      let server;
      try {
        server = createServer({ frameMs: 15 });
      } catch (err) {
        console.log('refused', err.code);
        process.exit(0);
      }
      const { port } = await server.listen({ port: 0 });
      const client = await connect({ port });
      await new Promise((r) => setTimeout(r, 200));
      await client.hangup();
      await server.close();
      console.log('survived');
    `);
    assert.equal(r.code, 0, `process exited with ${r.code}: ${r.stderr.split('\n').slice(0, 8).join('\n')}`);
    assert.match(r.stdout, /refused ERR_AUDIOSOCKET_INVALID_ARGUMENT/);
  });

  test('handshakeTimeout: Infinity means "never", not 1 ms', async (t) => {
    const { server, port } = await startServer(undefined, { handshakeTimeout: Infinity, hangupTimeout: Infinity }, t);
    const failures = recordFailures(server);
    const raw = await rawCall(port, { sendUuid: false }, t);
    await sleep(100); // deliberate negative window: a timeout of 1 ms (Infinity misread) would fire within it
    raw.socket.write(encodeMessage(0x01, Buffer.alloc(16, 0x42)));
    await until(() => server.calls.size === 1, 'the call');
    await sleep(100); // deliberate negative window, as above, for the hangup timeout
    assert.deepEqual(
      failures.map((f) => f.reason),
      [],
    );
    assert.equal(server.calls.size, 1);
    raw.socket.destroy();
    await server.close();
  });

  test('a for-await consumer that is stuck keeps at most iteratorQueueFrames frames in memory', async (t) => {
    const gc = getGc();
    const mem = async (): Promise<number> => {
      for (let i = 0; i < 3; i++) {
        gc();
        await sleep(10);
      }
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const calls: Call[] = [];
    // The classic stuck consumer: the loop body awaits something (an STT request) that never returns.
    const handler = async (call: Call): Promise<void> => {
      calls.push(call);
      for await (const frame of call) {
        void frame;
        await new Promise(() => {});
      }
    };
    const { server, port } = await startServer(handler, { iteratorQueueFrames: 50, keepAlive: false }, t);
    const client = await connect({ port });
    t.after(() => client.reset());
    await until(() => calls.length === 1, 'the call');
    client.sendAudio(stamped(92, 0, 0));
    await until(() => calls[0]!.stats.audioIn === 1, 'the first frame');
    const before = await mem();
    const frame = encodeMessage(0x10, stamped(92, 0, 1));
    for (let i = 0; i < 60_000; i++) {
      client.sendRaw(frame); // 60,000 x 20 ms = 20 minutes of audio, 19 MB
      if (i % 2000 === 0) await sleep(1);
    }
    await until(() => calls[0]!.stats.audioIn === 60_001, 'every frame read off the socket');
    const grown = (await mem()) - before;
    assert.equal(calls[0]!.stats.droppedIn, 60_000 - 50, 'the overflow is counted');
    assert.ok(
      grown < 4 * 1048576,
      `memory grew ${(grown / 1048576).toFixed(1)} MB for a queue of 50 frames: dropped frames are still referenced`,
    );
    await client.hangup();
    await server.close();
  });

  test('a DTMF message whose byte is not a DTMF digit is reported as a message, not as a digit', async (t) => {
    const { server, port } = await startServer(undefined, { keepAlive: false }, t);
    const digits: string[] = [];
    const others: number[] = [];
    server.on('call', (call) => {
      call.on('dtmf', (d) => digits.push(d));
      call.on('message', (kind) => others.push(kind));
    });
    const client = await connect({ port });
    for (const b of [0x00, 0x0a, 0x5a, 0xff]) client.sendRaw(encodeMessage(0x03, Buffer.from([b])));
    client.sendDtmf('5');
    await until(() => digits.length + others.length === 5, 'five messages');
    assert.deepEqual(digits, ['5'], 'only real digits (0-9 * # A-D a-d X) reach dtmf listeners');
    assert.deepEqual(others, [0x03, 0x03, 0x03, 0x03]);
    await client.hangup();
    await server.close();
  });

  test('CLI echo: an odd-length audio message (old Asterisk sends 1-byte CNG as 0x10) does not end the call', async () => {
    const cli = await spawnCli(['echo', '--host', '127.0.0.1', '--port', '0', '--quiet']);
    try {
      const client = await connect({ port: cli.port });
      client.sendRaw(encodeMessage(0x10, Buffer.from([0x2a]))); // a CNG noise-level byte
      client.sendAudio(stamped(93, 0, 0));
      const echoed = await within(
        new Promise<boolean>((resolve) => {
          client.on('audio', (f) => !allZero(f.payload) && resolve(true));
          void client.closed.then(() => resolve(false));
        }),
        3000,
        'an echo or the end of the call',
      );
      assert.equal(echoed, true, `the call ended (${(await Promise.race([client.closed, sleep(0)]))?.by ?? 'open'}) instead of echoing`);
      await client.hangup();
    } finally {
      cli.child.kill('SIGKILL');
      await once(cli.child, 'exit');
    }
  });
});
