/**
 * chan_websocket transport over real WebSockets on 127.0.0.1: WebSocketMediaServer and
 * MediaConnection driven by the simulated chan_websocket Asterisk (and by raw `ws` clients for
 * what a real Asterisk never sends).
 */
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import WebSocket, { WebSocketServer } from 'ws';
import { ErrorCodes } from '#lib/index.js';
import {
  createWebSocketMediaServer,
  connectIncoming,
  type MediaHandshakeFailure,
  type MediaServerOptions,
  type WebSocketMediaServer,
} from '#lib/websocket/server.js';
import type { MediaConnection, MediaWarning } from '#lib/websocket/connection.js';
import { connectWebSocket, type WebSocketConnectOptions } from '#lib/websocket/client.js';
import { encodeEvent, type ControlFormat } from '#lib/protocol/websocket.js';
import { until, untilEmitted } from './helpers.js';

const FORMATS: ControlFormat[] = ['json', 'plain-text'];

async function startServer(t: TestContext, options: MediaServerOptions = {}, handler?: (c: MediaConnection) => unknown) {
  const server = createWebSocketMediaServer(handler, options);
  const { port } = await server.listen({ port: 0 });
  t.after(() => server.close());
  return { server, port, url: `ws://127.0.0.1:${port}/media` };
}

async function call(t: TestContext, server: WebSocketMediaServer, options: WebSocketConnectOptions) {
  const connP = once(server, 'connection').then(([c]) => c as MediaConnection);
  const client = await connectWebSocket(options);
  t.after(() => client.drop());
  const conn = await connP;
  return { client, conn };
}

function nextFailure(server: WebSocketMediaServer): Promise<MediaHandshakeFailure> {
  return once(server, 'handshakeFailed').then(([f]) => f as MediaHandshakeFailure);
}

/** `n` distinct frames of `size` bytes (frame i filled with i % 251 + 1), as one buffer. */
function frames(n: number, size: number, seed = 0): Buffer {
  const b = Buffer.alloc(n * size);
  for (let i = 0; i < n; i++) b.fill(((seed + i) % 251) + 1, i * size, (i + 1) * size);
  return b;
}

describe('chan_websocket transport', () => {
  for (const controlFormat of FORMATS) {
    test(`${controlFormat}: MEDIA_START details, audio both ways, DTMF`, async (t) => {
      const { server, url } = await startServer(t);
      const { client, conn } = await call(t, server, {
        url: `${url}?call=1`,
        controlFormat,
        format: 'slin16',
        connectionId: 'probe',
        channelVariables: { X_LANG: 'en' },
      });
      assert.equal(conn.controlFormat, controlFormat);
      assert.equal(conn.start.connectionId, 'probe');
      assert.equal(conn.start.channelId, client.channelId);
      assert.equal(conn.id, client.channelId);
      assert.equal(conn.start.channel, client.channel);
      assert.equal(conn.start.format, 'slin16');
      assert.equal(conn.start.audioFormat?.sampleRate, 16000);
      assert.equal(conn.start.optimalFrameSize, 640);
      assert.equal(conn.start.ptime, 20);
      assert.equal(conn.peer.url, '/media?call=1');
      assert.equal(conn.peer.remoteAddress, '127.0.0.1');
      if (controlFormat === 'json') {
        assert.equal(conn.start.channelVariables['X_LANG'], 'en');
        assert.equal(conn.start.channelVariables['MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE'], '640');
      } else {
        assert.deepEqual(conn.start.channelVariables, {});
      }

      // Asterisk -> app: real-time frames.
      const inbound: Buffer[] = [];
      conn.on('audio', (p) => inbound.push(Buffer.from(p)));
      const digits: string[] = [];
      conn.on('dtmf', (d) => digits.push(d));
      const caller = frames(10, 640, 7);
      assert.equal(await client.stream(caller), 10);
      for (const d of '12#*AD') client.sendDtmf(d);
      await untilEmitted(conn, ['dtmf'], () => digits.length === 6);
      assert.equal(digits.join(''), '12#*AD');
      assert.deepEqual(Buffer.concat(inbound), caller);
      assert.ok(inbound.every((p) => p.length === 640));

      // app -> Asterisk: any chunking arrives as whole frames, played in order.
      const prompt = frames(12, 640, 50);
      for (let off = 0; off < prompt.length; off += 1000) conn.sendAudio(prompt.subarray(off, off + 1000));
      assert.equal(conn.pendingBytes, 0);
      conn.markMedia('end');
      const [mark] = (await once(conn, 'markProcessed')) as [string];
      assert.equal(mark, 'end');
      assert.deepEqual(client.playedAudio(), prompt);
      assert.equal(client.marks[0]?.framesPlayed, 12);
      assert.deepEqual(client.violations, []);
      assert.equal(conn.stats.framesOut, 12);
    });

    test(`${controlFormat}: marks follow played audio; flush drops queued audio and queued marks`, async (t) => {
      const { server, url } = await startServer(t);
      const { client, conn } = await call(t, server, { url, controlFormat, format: 'ulaw' });
      assert.equal(conn.start.optimalFrameSize, 160);
      const marks: string[] = [];
      conn.on('markProcessed', (id) => marks.push(id));
      conn.sendAudio(frames(3, 160));
      conn.markMedia('a');
      conn.sendAudio(frames(2, 160));
      conn.markMedia('b');
      await untilEmitted(conn, ['markProcessed'], () => marks.length === 2);
      assert.deepEqual(
        client.marks.map((m) => [m.correlationId, m.framesPlayed]),
        [
          ['a', 3],
          ['b', 5],
        ],
      );

      // 200 frames (4 s) queued; flush once a few have played.
      conn.sendAudio(frames(200, 160));
      conn.markMedia('lost');
      await untilEmitted(client, ['played'], () => client.stats.framesPlayed >= 8);
      conn.flushMedia();
      conn.markMedia('after');
      await untilEmitted(conn, ['markProcessed'], () => marks.includes('after'));
      assert.deepEqual(marks, ['a', 'b', 'after']);
      const played = client.stats.framesPlayed;
      assert.ok(played < 5 + 200, `played ${played}: the flush dropped the queue`);
      assert.equal(client.marks.at(-1)?.framesPlayed, played);
      const status = await conn.getStatus();
      assert.equal(status.queueLength, 0);
      assert.equal(status.xoffLevel, 900);
      assert.equal(status.xonLevel, 800);
      assert.equal(status.channelId, client.channelId);
      assert.deepEqual(client.violations, []);
    });
  }

  test('XOFF at 900 queued frames, Asterisk drops messages at 1000, XON after a flush, drain', async (t) => {
    const { server, url } = await startServer(t);
    const { client, conn } = await call(t, server, { url, controlFormat: 'json', format: 'slin' });
    // Paused, nothing is played: the queue count is exact.
    conn.pauseMedia();
    const xoff = once(conn, 'xoff');
    const burst = frames(1005, 320);
    for (let i = 0; i < 1005; i++) conn.sendAudio(burst.subarray(i * 320, (i + 1) * 320));
    // XOFF comes back while the burst is already on its way: a writer must stop at the first false.
    await xoff;
    assert.equal(conn.xoff, true);
    assert.equal(conn.writable, false);
    assert.equal(conn.sendAudio(burst.subarray(0, 320)), false);
    await untilEmitted(client, ['violation'], () => client.violations.length === 6);
    assert.ok(client.violations.every((v) => v.code === 'QUEUE_FULL'));
    assert.equal(client.stats.maxQueueLength, 1000);
    assert.equal((await conn.getStatus()).queueFull, true);
    const drain = once(conn, 'drain');
    conn.flushMedia();
    // Asterisk sends XON from the playout tick, which does not run while paused.
    conn.continueMedia();
    await once(conn, 'xon');
    await drain;
    assert.equal(conn.xoff, false);
    assert.equal(conn.writable, true);
    assert.equal(conn.stats.xoffs, 1);
    assert.equal(client.stats.xonsSent, 1);
    assert.equal(client.stats.framesPlayed, 0);
  });

  test('pause holds playout and marks; continue resumes; REPORT_QUEUE_DRAINED answers once the queue is empty', async (t) => {
    const { server, url } = await startServer(t);
    const { client, conn } = await call(t, server, { url, controlFormat: 'plain-text', format: 'slin16' });
    conn.pauseMedia();
    conn.sendAudio(frames(10, 640));
    conn.markMedia('m');
    const paused = await conn.getStatus();
    assert.equal(paused.mediaPaused, true);
    assert.equal(paused.queueLength, 10);
    assert.equal(client.stats.framesPlayed, 0);
    conn.continueMedia();
    conn.reportQueueDrained();
    await once(conn, 'queueDrained');
    assert.deepEqual(
      client.marks.map((m) => [m.correlationId, m.framesPlayed]),
      [['m', 10]],
    );
    assert.equal(client.stats.framesPlayed, 10);
  });

  test('partial frames: held until the rest arrives, flushPending pads with silence; the simulator reports what Asterisk drops', async (t) => {
    const { server, url } = await startServer(t);
    const { client, conn } = await call(t, server, { url, controlFormat: 'json', format: 'slin16' });
    conn.sendAudio(Buffer.alloc(1000, 9));
    assert.equal(conn.pendingBytes, 360);
    conn.flushPending();
    assert.equal(conn.pendingBytes, 0);
    conn.markMedia('p');
    await once(conn, 'markProcessed');
    assert.equal(client.played.length, 2);
    assert.ok(client.played[1]!.subarray(0, 360).every((b) => b === 9));
    assert.ok(client.played[1]!.subarray(360).every((b) => b === 0));
    assert.equal(client.violations.length, 0);

    // START/STOP_MEDIA_BUFFERING keeps partial frames across messages in Asterisk.
    conn.startMediaBuffering();
    const bulk = frames(3, 640, 3);
    // Partial messages, bypassing our framing: Asterisk joins them while buffering.
    conn.sendRaw(bulk.subarray(0, 500));
    conn.sendRaw(bulk.subarray(500, 1500));
    conn.sendRaw(bulk.subarray(1500));
    conn.stopMediaBuffering('bulk1');
    const [id] = (await once(conn, 'bufferingCompleted')) as [string];
    assert.equal(id, 'bulk1');
    assert.deepEqual(Buffer.concat(client.played.slice(2)), bulk);
    assert.equal(client.violations.length, 0);

    // Without buffering, Asterisk drops the tail of a message that is not a whole frame.
    conn.sendRaw(Buffer.alloc(700));
    await untilEmitted(client, ['violation'], () => client.violations.length === 1);
    assert.deepEqual(
      client.violations.map((v) => v.code),
      ['PARTIAL_FRAME'],
    );
  });

  test('hangups: ours sends HANGUP and Asterisk closes with 1000; the caller hangs up with 1000', async (t) => {
    const { server, url } = await startServer(t);
    const a = await call(t, server, { url, controlFormat: 'json' });
    const [local, remote] = await Promise.all([a.conn.hangup(), a.client.closed]);
    assert.deepEqual({ by: local.by, code: local.code }, { by: 'local', code: 1000 });
    assert.deepEqual({ by: remote.by, code: remote.code }, { by: 'app-hangup', code: 1000 });
    assert.throws(() => a.conn.sendAudio(Buffer.alloc(640)), { code: ErrorCodes.CALL_ENDED });

    const b = await call(t, server, { url, controlFormat: 'plain-text' });
    const status = b.conn.getStatus().catch((e: unknown) => e);
    const closedB = await b.client.hangup();
    const infoB = await b.conn.closed;
    assert.deepEqual({ by: infoB.by, code: infoB.code }, { by: 'remote', code: 1000 });
    assert.equal(closedB.by, 'client');
    assert.ok(b.conn.signal.aborted);
    // GET_STATUS may or may not have been answered before the hangup; never left pending.
    const s = (await status) as { code?: string; queueLength?: number };
    assert.ok(s.code === ErrorCodes.CALL_ENDED || s.queueLength === 0, JSON.stringify(s));

    // The app closing the WebSocket hangs the channel up too.
    const c = await call(t, server, { url });
    await c.conn.close();
    assert.equal((await c.client.closed).by, 'app-close');
    assert.equal(server.stats.activeConnections, 0);
  });

  test('ANSWER for a channel dialled with n; commands refused in passthrough mode come back as REMOTE_ERROR warnings', async (t) => {
    const { server, url } = await startServer(t);
    const { client, conn } = await call(t, server, { url, controlFormat: 'json', noAutoAnswer: true, passthrough: true, format: 'ulaw' });
    assert.equal(client.answered, false);
    const answered = once(client, 'answer');
    conn.answer();
    await answered;
    const warning = once(conn, 'warning');
    conn.markMedia('x');
    const [w] = (await warning) as [MediaWarning];
    assert.equal(w.code, 'REMOTE_ERROR');
    assert.match(w.message, /MARK_MEDIA not supported in passthrough mode/);
    // Passthrough plays each message as one frame; we send whole frames, one per message.
    conn.sendAudio(frames(2, 160));
    await untilEmitted(client, ['played'], () => client.stats.framesPlayed === 2);
    assert.ok(client.played.every((f) => f.length === 160));
    assert.deepEqual(
      client.violations.map((v) => v.code),
      ['COMMAND_REFUSED'],
    );
  });

  test('legacy MEDIA_START without channel_id (20.16/22.6): id falls back to the connection id', async (t) => {
    const { server, url } = await startServer(t);
    const { client, conn } = await call(t, server, { url, legacyStart: true, connectionId: 'old' });
    assert.equal(conn.start.channelId, undefined);
    assert.equal(conn.id, 'old');
    const digit = once(conn, 'dtmf');
    client.sendDtmf('9');
    assert.deepEqual(await digit, ['9']);
  });

  test('20 concurrent calls, each echoed and played back in order with its own audio', async (t) => {
    const { server, url } = await startServer(t, {}, (conn) => {
      conn.on('audio', (p) => conn.sendAudio(p));
    });
    const clients = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        connectWebSocket({ url, controlFormat: i % 2 ? 'json' : 'plain-text', format: i % 3 ? 'slin16' : 'ulaw' }),
      ),
    );
    for (const c of clients) t.after(() => c.drop());
    await untilEmitted(server, ['connection'], () => server.stats.activeConnections === 20);
    await Promise.all(
      clients.map(async (c, i) => {
        const audio = frames(15, c.optimalFrameSize, i * 10);
        await c.stream(audio);
        await untilEmitted(c, ['played'], () => c.stats.framesPlayed === 15);
        assert.deepEqual(c.playedAudio(), audio, `call ${i}`);
        assert.deepEqual(c.violations, []);
      }),
    );
    await Promise.all(clients.map((c) => c.hangup()));
    await untilEmitted(server, ['connectionClose'], () => server.stats.activeConnections === 0);
  });
});

describe('chan_websocket bad input: one connection fails, the server and other calls carry on', () => {
  test('wrong subprotocol: HTTP 400 and ERR_AUDIOSOCKET_SUBPROTOCOL; a good call still works', async (t) => {
    const { server, url } = await startServer(t);
    const failure = nextFailure(server);
    await assert.rejects(connectWebSocket({ url, subprotocols: ['ari'] }), { code: ErrorCodes.SOCKET, message: /400/ });
    const f = await failure;
    assert.equal(f.reason, 'subprotocol');
    assert.equal(f.error?.code, ErrorCodes.SUBPROTOCOL);
    const noProto = nextFailure(server);
    await assert.rejects(connectWebSocket({ url, subprotocols: [] }), { code: ErrorCodes.SOCKET });
    assert.equal((await noProto).reason, 'subprotocol');
    const { conn } = await call(t, server, { url });
    assert.equal(conn.connected, true);
  });

  test('binary before MEDIA_START, another first event, malformed first message: protocol-error, closed with 1002', async (t) => {
    const { server, url } = await startServer(t);
    for (const [first, binary] of [
      [Buffer.alloc(640), true],
      ['DTMF_END digit:1', false],
      ['{"event":"MEDIA_START",', false],
    ] as const) {
      const ws = new WebSocket(url, ['media']);
      t.after(() => ws.terminate());
      await once(ws, 'open');
      const failure = nextFailure(server);
      ws.send(first, { binary });
      const f = await failure;
      assert.equal(f.reason, 'protocol-error');
      assert.equal(f.error?.code, ErrorCodes.PROTOCOL);
      const [code] = (await once(ws, 'close')) as [number];
      assert.equal(code, 1002);
    }
    assert.equal(server.stats.handshakeFailures, 3);
  });

  test('no MEDIA_START: HANDSHAKE_TIMEOUT; closed before it: closed-before-start', async (t) => {
    const { server, url } = await startServer(t, { handshakeTimeout: 100 });
    const ws = new WebSocket(url, ['media']);
    t.after(() => ws.terminate());
    const f = await nextFailure(server);
    assert.equal(f.reason, 'timeout');
    assert.equal(f.error?.code, ErrorCodes.HANDSHAKE_TIMEOUT);
    const ws2 = new WebSocket(url, ['media']);
    await once(ws2, 'open');
    const f2 = nextFailure(server);
    ws2.close();
    assert.equal((await f2).reason, 'closed-before-start');
  });

  test('malformed control messages after MEDIA_START are warnings; the call goes on', async (t) => {
    const { server, url } = await startServer(t);
    const { client, conn } = await call(t, server, { url, controlFormat: 'json' });
    const warnings: MediaWarning[] = [];
    conn.on('warning', (w) => warnings.push(w));
    client.sendText('{"event":"DTMF_END",');
    client.sendText('DTMF_END digit:1'); // plain text on a JSON channel
    client.sendText(
      encodeEvent(
        {
          event: 'MEDIA_START',
          connectionId: 'x',
          channel: 'y',
          channelId: 'z',
          format: 'slin',
          audioFormat: undefined,
          optimalFrameSize: 320,
          ptime: 20,
          channelVariables: {},
        },
        'json',
      ),
    );
    const digit = once(conn, 'dtmf');
    client.sendDtmf('4');
    assert.deepEqual(await digit, ['4']);
    assert.deepEqual(
      warnings.map((w) => w.code),
      ['MALFORMED_CONTROL', 'MALFORMED_CONTROL', 'UNEXPECTED_EVENT'],
    );
    assert.equal(warnings[0]?.error?.code, ErrorCodes.PROTOCOL);
    assert.equal(conn.connected, true);
  });

  test('an oversized message ends that call with PAYLOAD_TOO_LARGE (1009); another call is untouched', async (t) => {
    const { server, url } = await startServer(t, { maxPayload: 4096 });
    const a = await call(t, server, { url });
    const b = await call(t, server, { url });
    const errors: unknown[] = [];
    a.conn.on('error', (e) => errors.push(e));
    a.client.sendAudio(Buffer.alloc(5000));
    const info = await a.conn.closed;
    assert.equal(info.by, 'error');
    assert.equal(info.code, 1009);
    assert.equal((await a.client.closed).code, 1009);
    assert.equal(info.error?.code, ErrorCodes.PAYLOAD_TOO_LARGE);
    assert.equal(errors.length, 1);
    const got = once(b.conn, 'audio');
    b.client.sendAudio(Buffer.alloc(640, 1));
    assert.equal(((await got) as [Buffer])[0].length, 640);
  });

  test('a peer that never reads: PEER_NOT_READING on that connection only', async (t) => {
    const { server, url } = await startServer(t, { peerNotReadingTimeout: 300, maxBufferedBytes: 64 * 1024 * 1024 });
    const other = await call(t, server, { url });
    const ws = new WebSocket(url, ['media']);
    t.after(() => ws.terminate());
    await once(ws, 'open');
    const connP = once(server, 'connection').then(([c]) => c as MediaConnection);
    ws.send('MEDIA_START connection_id:stuck channel:WebSocket/stuck/0x1 channel_id:1.1 format:slin16 optimal_frame_size:640 ptime:20');
    const conn = await connP;
    ws.pause(); // stop reading: the kernel buffers fill, then ws's
    const chunk = Buffer.alloc(640 * 500);
    const pump = setInterval(() => {
      if (conn.connected) conn.sendAudio(chunk);
    }, 5);
    t.after(() => clearInterval(pump));
    const info = await conn.closed;
    clearInterval(pump);
    assert.equal(info.by, 'error');
    assert.equal(info.error?.code, ErrorCodes.PEER_NOT_READING);
    assert.equal(other.conn.connected, true);
    const got = once(other.conn, 'audio');
    other.client.sendAudio(Buffer.alloc(640));
    await got;
  });

  test('a throwing handler or listener ends that call with 1011; others carry on', async (t) => {
    const errors: unknown[] = [];
    const { server, url } = await startServer(t, {}, (conn) => {
      if (conn.start.connectionId === 'bad') throw new Error('boom');
      if (conn.start.connectionId === 'bad-listener') {
        conn.on('dtmf', () => {
          throw new Error('listener boom');
        });
      }
    });
    server.on('handlerError', (e) => errors.push(e));
    const bad = await call(t, server, { url, connectionId: 'bad' });
    assert.equal((await bad.client.closed).code, 1011);
    assert.equal(errors.length, 1);
    const badListener = await call(t, server, { url, connectionId: 'bad-listener' });
    badListener.client.sendDtmf('1');
    const info = await badListener.conn.closed;
    assert.equal(info.error?.code, ErrorCodes.HANDLER);
    const good = await call(t, server, { url, connectionId: 'good' });
    assert.equal(good.conn.connected, true);
  });

  test('path option: 404 elsewhere, any query accepted; attach to an existing HTTP server beside another upgrade user', async (t) => {
    const { server, port } = await startServer(t, { path: '/media' });
    const failure = nextFailure(server);
    await assert.rejects(connectWebSocket({ url: `ws://127.0.0.1:${port}/other` }), { message: /404/ });
    assert.equal((await failure).reason, 'path');
    const { conn } = await call(t, server, { url: `ws://127.0.0.1:${port}/media?a=1&b=2` });
    assert.equal(conn.peer.url, '/media?a=1&b=2');

    const httpServer = http.createServer();
    const other = new WebSocketServer({ noServer: true });
    httpServer.on('upgrade', (req, socket, head) => {
      if (req.url === '/chat') other.handleUpgrade(req, socket, head, (ws) => ws.send('hi'));
    });
    const shared = createWebSocketMediaServer(undefined, { server: httpServer, path: '/ws' });
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    let chat: WebSocket | undefined;
    t.after(async () => {
      // Upgraded sockets keep an HTTP server open: end them all first.
      chat?.terminate();
      await shared.close();
      other.close();
      const closed = new Promise((r) => httpServer.close(r));
      httpServer.closeAllConnections();
      await closed;
    });
    const sharedPort = (httpServer.address() as { port: number }).port;
    chat = new WebSocket(`ws://127.0.0.1:${sharedPort}/chat`);
    const [hi] = (await once(chat, 'message')) as [Buffer];
    assert.equal(hi.toString(), 'hi');
    const c = await call(t, shared, { url: `ws://127.0.0.1:${sharedPort}/ws` });
    assert.equal(c.conn.connected, true);
  });

  test('admission: allow gives 403, credentials (Basic, as Asterisk sends them) 401, maxConnections 503; refusals hold no slot', async (t) => {
    const good = `Basic ${Buffer.from('media:secret').toString('base64')}`;
    const bad = `Basic ${Buffer.from('media:secreT').toString('base64')}`;
    const { server, url } = await startServer(t, { credentials: { username: 'media', password: 'secret' }, maxConnections: 1 });
    const rejections: string[] = [];
    server.on('connectionRejected', (r) => rejections.push(r.reason));
    await assert.rejects(connectWebSocket({ url }), { message: /401/ });
    await assert.rejects(connectWebSocket({ url, headers: { authorization: bad } }), { message: /401/ });
    assert.deepEqual(rejections, ['unauthorized', 'unauthorized']);
    assert.equal(server.stats.rejected, 2);
    assert.equal(server.stats.handshakeFailures, 0, 'a refusal is not a handshake failure');
    // The refused upgrades held no slot: the one slot is free for a good one.
    const first = await call(t, server, { url, headers: { authorization: good } });
    await assert.rejects(connectWebSocket({ url, headers: { authorization: good } }), { message: /503/ });
    assert.deepEqual(rejections.at(-1), 'max-calls');
    assert.equal(first.conn.connected, true);
    // The slot comes back when the call ends.
    await first.client.hangup();
    await until(() => server.connections.size === 0, 'the first call to end');
    const second = await call(t, server, { url, headers: { authorization: good } });
    assert.equal(second.conn.connected, true);

    const only10 = await startServer(t, { allow: '10.0.0.0/8' });
    const refused: string[] = [];
    only10.server.on('connectionRejected', (r) => refused.push(`${r.reason} ${r.remoteAddress}`));
    await assert.rejects(connectWebSocket({ url: only10.url }), { message: /403/ });
    assert.deepEqual(refused, ['not-allowed 127.0.0.1']);
  });

  test('server close hangs up live calls with HANGUP and waits for them', async (t) => {
    const server = createWebSocketMediaServer();
    const { port } = await server.listen({ port: 0 });
    const { client } = await call(t, server, { url: `ws://127.0.0.1:${port}/` });
    await server.close();
    const info = await client.closed;
    assert.equal(info.by, 'app-hangup');
    assert.equal(server.stats.activeConnections, 0);
  });

  test('connectIncoming (WebSocket/INCOMING): we connect to /media/<id>, MEDIA_START, then audio', async (t) => {
    // A stand-in for Asterisk's HTTP server side: accepts "media", sends MEDIA_START then audio at once.
    const fake = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => (p.has('media') ? 'media' : false) });
    t.after(() => fake.close());
    await once(fake, 'listening');
    fake.on('connection', (ws, req) => {
      const id = req.url?.split('/').pop() ?? '';
      ws.send(
        encodeEvent(
          {
            event: 'MEDIA_START',
            connectionId: id,
            channel: 'WebSocket/INCOMING/0x1',
            channelId: '2.2',
            format: 'slin',
            audioFormat: undefined,
            optimalFrameSize: 320,
            ptime: 20,
            channelVariables: {},
          },
          'json',
        ),
      );
      ws.send(Buffer.alloc(320, 5)); // right behind MEDIA_START, in the same TCP segment
      ws.on('message', (m) => ws.send(m)); // echo commands' presence
    });
    const { port } = fake.address() as { port: number };
    const conn = await connectIncoming(`ws://127.0.0.1:${port}/media/3f1e-uuid`);
    t.after(() => conn.terminate());
    assert.equal(conn.start.connectionId, '3f1e-uuid');
    assert.equal(conn.controlFormat, 'json');
    const [audio] = (await once(conn, 'audio')) as [Buffer];
    assert.equal(audio.length, 320);
    await assert.rejects(connectIncoming(`ws://127.0.0.1:${port + 1}/media/x`, { timeout: 500 }), { code: ErrorCodes.SOCKET });
  });
});

describe('the simulated chan_websocket enforces what Asterisk enforces', () => {
  /** A raw app side: accepts "media" and hands out the socket, so tests can send anything. */
  async function rawApp(t: TestContext) {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => (p.has('media') ? 'media' : false) });
    t.after(() => wss.close());
    await once(wss, 'listening');
    const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`;
    const next = (): Promise<[WebSocket, string]> =>
      once(wss, 'connection').then(([ws]) => {
        const sock = ws as WebSocket;
        return once(sock, 'message').then(([m]) => [sock, String(m)] as [WebSocket, string]);
      });
    return { url, next };
  }

  test('bad commands: ignored or answered with ERROR as handle_command() does', async (t) => {
    const app = await rawApp(t);
    const appSide = app.next();
    const client = await connectWebSocket({ url: app.url, controlFormat: 'json' });
    t.after(() => client.drop());
    const [ws, start] = await appSide;
    assert.match(start, /^\{"event":"MEDIA_START"/);
    const errors: string[] = [];
    ws.on('message', (m, binary) => {
      if (!binary && String(m).includes('"ERROR"')) errors.push(JSON.parse(String(m)).error_text);
    });
    ws.send('FLUSH_MEDIA'); // plain text on a JSON channel
    ws.send('x'.repeat(129));
    ws.send('');
    ws.send('{"command":"flush_media"}');
    ws.send('{"command":"SET_MEDIA_DIRECTION","direction":"up"}');
    ws.send('{"command":"GET_STATUS"}');
    await untilEmitted(client, ['violation'], () => client.violations.length === 5);
    assert.deepEqual(
      client.violations.map((v) => v.code),
      ['BAD_JSON', 'TEXT_TOO_LONG', 'TEXT_EMPTY', 'UNKNOWN_COMMAND', 'COMMAND_REFUSED'],
    );
    await untilEmitted(ws, ['message'], () => errors.length === 2);
    assert.deepEqual(errors, ['Unable to parse JSON command', "'up' is not a valid direction for SET_MEDIA_DIRECTION.\n"]);
  });

  test('a binary message larger than Asterisk reads: MESSAGE_TOO_BIG and the channel hangs up with 1009', async (t) => {
    const app = await rawApp(t);
    const appSide = app.next();
    const client = await connectWebSocket({ url: app.url });
    t.after(() => client.drop());
    const [ws] = await appSide;
    ws.send(Buffer.alloc(65531)); // the largest that fits: queued, 102 frames of 640 and a dropped tail
    ws.send(Buffer.alloc(65532));
    const info = await client.closed;
    assert.equal(info.by, 'error');
    assert.equal(info.code, 1009);
    assert.equal(info.error?.code, ErrorCodes.PAYLOAD_TOO_LARGE);
    assert.deepEqual(
      client.violations.map((v) => v.code),
      ['PARTIAL_FRAME', 'MESSAGE_TOO_BIG'],
    );
    assert.equal(client.stats.maxQueueLength, 102);
  });

  test("media direction: 'in' drops the app's audio and refuses marks; 'out' sends nothing to the app", async (t) => {
    const { server, url } = await startServer(t);
    const a = await call(t, server, { url, controlFormat: 'plain-text', mediaDirection: 'in' });
    a.conn.sendAudio(Buffer.alloc(640));
    const warning = once(a.conn, 'warning');
    a.conn.markMedia('m');
    assert.match(((await warning) as [MediaWarning])[0].message, /MARK_MEDIA not supported while media direction is 'in'/);
    assert.deepEqual(
      a.client.violations.map((v) => v.code),
      ['MEDIA_DIRECTION_IN', 'COMMAND_REFUSED'],
    );
    const b = await call(t, server, { url, mediaDirection: 'out' });
    let got = 0;
    b.conn.on('audio', () => got++);
    assert.equal(await b.client.stream(Buffer.alloc(640 * 3)), 0);
    b.conn.sendAudio(Buffer.alloc(640));
    b.conn.markMedia('played');
    await once(b.conn, 'markProcessed');
    assert.equal(got, 0);
    assert.equal(b.client.stats.framesPlayed, 1);
  });
});
