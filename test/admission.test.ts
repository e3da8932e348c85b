/**
 * One admission for both listeners (src/admission.ts): the allow-list, maxCalls and closing apply
 * to AudioSocket and chan_websocket alike; chan_websocket credentials (HTTP Basic, as Asterisk
 * sends them) and TLS; slow and hostile peers are cut by their timeouts, hold no call slot and
 * leave the calls that are up alone. Real sockets on 127.0.0.1.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect, createServer, type Call, type ConnectionRejection, type HandshakeFailure, type ServerOptions } from '#lib/index.js';
import { connectWebSocket, type AsteriskWebSocketClient, type WebSocketConnectOptions } from '#lib/websocket/client.js';
import { signal, until } from './helpers.js';

const fixture = (name: string): Buffer => readFileSync(fileURLToPath(new URL(`../../test/fixtures/tls/${name}`, import.meta.url)));
const TLS = { cert: fixture('cert.pem'), key: fixture('key.pem') };

/** An echo server on both listeners, with what it rejected and what failed its handshake. */
async function serve(t: TestContext, options: ServerOptions = {}, websocket: Partial<NonNullable<ServerOptions['websocket']>> = {}) {
  const server = createServer((call: Call) => call.on('audio', (f) => call.write(f.payload, f.format)), {
    ...options,
    websocket: { port: 0, ...websocket } as ServerOptions['websocket'],
  });
  const { port } = await server.listen({ port: 0 });
  t.after(() => server.close());
  const rejected: ConnectionRejection[] = [];
  const failed: HandshakeFailure[] = [];
  server.on('connectionRejected', (r) => rejected.push(r));
  server.on('handshakeFailed', (f) => failed.push(f));
  const scheme = websocket.tls ? 'wss' : 'ws';
  const wsUrl = `${scheme}://127.0.0.1:${server.websocketAddress()!.port}/media`;
  const dialWs = async (o: Partial<WebSocketConnectOptions> = {}): Promise<AsteriskWebSocketClient> => {
    const client = await connectWebSocket({ url: wsUrl, ...o });
    t.after(() => client.drop());
    return client;
  };
  return { server, port, wsPort: server.websocketAddress()!.port, wsUrl, rejected, failed, dialWs };
}

/** The other call still echoes. */
async function echoes(client: AsteriskWebSocketClient): Promise<void> {
  const before = client.stats.framesPlayed;
  for (let i = 0; i < 3; i++) client.sendAudio(signal(640, i + 2));
  await until(() => client.stats.framesPlayed >= before + 3, 'the call that is up to go on echoing');
}

test('allow applies to both listeners: chan_websocket from outside it gets 403, reported as on AudioSocket', async (t) => {
  const { server, port, rejected, dialWs } = await serve(t, { allow: '10.0.0.0/8' });
  await assert.rejects(dialWs(), { message: /403/ });
  const as = await connect({ port });
  await as.closed;
  await until(() => rejected.length === 2, 'both refusals');
  assert.deepEqual(rejected.map((r) => `${r.transport} ${r.reason} ${r.remoteAddress}`).sort(), [
    'audiosocket not-allowed 127.0.0.1',
    'websocket not-allowed 127.0.0.1',
  ]);
  assert.equal(server.stats.rejected, 2);
  assert.equal(server.calls.size, 0);
});

test('maxCalls counts calls on both listeners together', async (t) => {
  const { server, port, rejected, dialWs } = await serve(t, { maxCalls: 2 });
  const a = await connect({ port });
  const b = await dialWs({ format: 'slin16' });
  await until(() => server.calls.size === 2, 'one call on each listener');
  // Full: a third call is refused on either listener.
  await assert.rejects(dialWs(), { message: /503/ });
  const c = await connect({ port });
  assert.equal((await c.closed).by, 'server-hangup');
  await until(() => rejected.length === 2, 'both refusals');
  assert.deepEqual(rejected.map((r) => `${r.transport} ${r.reason}`).sort(), ['audiosocket max-calls', 'websocket max-calls']);
  await echoes(b);
  // A slot comes back when a call ends, whichever listener it came from.
  await a.hangup();
  await until(() => server.calls.size === 1, 'the AudioSocket call to end');
  const d = await dialWs();
  await until(() => server.calls.size === 2, 'a new chan_websocket call in the freed slot');
  assert.equal(d.connected, true);
});

test('a connection that never sends its UUID or its upgrade holds no slot, and is cut by handshakeTimeout', async (t) => {
  const { server, port, wsPort, failed, dialWs } = await serve(t, { maxCalls: 1, handshakeTimeout: 300 });
  const silentAs = net.connect(port, '127.0.0.1');
  const silentWs = net.connect(wsPort, '127.0.0.1');
  t.after(() => {
    silentAs.destroy();
    silentWs.destroy();
  });
  await Promise.all([once(silentAs, 'connect'), once(silentWs, 'connect')]);
  // Both silent peers are connected; the one slot is still free for a real call.
  const call = await dialWs();
  await until(() => server.calls.size === 1, 'the call in the only slot');
  await Promise.all([once(silentAs, 'close'), once(silentWs, 'close')]);
  assert.ok(
    failed.some((f) => f.transport === 'audiosocket' && f.reason === 'timeout'),
    JSON.stringify(failed),
  );
  await echoes(call);
});

test('chan_websocket: upgrade headers a byte at a time are cut by handshakeTimeout; oversized headers get 431; the call that is up goes on', async (t) => {
  const { server, wsPort, dialWs } = await serve(t, { handshakeTimeout: 300 });
  const call = await dialWs();
  await until(() => server.calls.size === 1, 'the call');
  const trickle = net.connect(wsPort, '127.0.0.1');
  t.after(() => trickle.destroy());
  await once(trickle, 'connect');
  const request = 'GET /media HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n';
  let i = 0;
  const drip = setInterval(() => trickle.writable && trickle.write(request[i++ % request.length]!), 50);
  t.after(() => clearInterval(drip));
  await once(trickle, 'close');
  clearInterval(drip);
  assert.ok(i < request.length, `cut after ${i} bytes, before the headers were complete`);

  const huge = net.connect(wsPort, '127.0.0.1');
  t.after(() => huge.destroy());
  let answer = '';
  huge.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  huge.on('error', () => {});
  await once(huge, 'connect');
  huge.write(`GET /media HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
  await once(huge, 'close');
  assert.match(answer, /^HTTP\/1\.1 431/);
  await echoes(call);
  assert.equal(server.calls.size, 1);
});

test('a malformed upgrade that ws answers itself (bad Sec-WebSocket-Key) gives its call slot back', async (t) => {
  const { server, wsPort, dialWs } = await serve(t, { maxCalls: 1 });
  for (let i = 0; i < 3; i++) {
    const raw = net.connect(wsPort, '127.0.0.1');
    t.after(() => raw.destroy());
    let answer = '';
    raw.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    raw.on('error', () => {});
    await once(raw, 'connect');
    raw.write(
      'GET /media HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: not-a-key\r\nSec-WebSocket-Protocol: media\r\n\r\n',
    );
    await once(raw, 'close');
    assert.match(answer, /^HTTP\/1\.1 400/);
  }
  const call = await dialWs();
  await until(() => server.calls.size === 1, 'a call in the only slot');
  await echoes(call);
});

test('tls: a peer that never starts its TLS handshake is cut by handshakeTimeout; the call that is up goes on', async (t) => {
  const { server, wsPort, dialWs } = await serve(t, { handshakeTimeout: 300 }, { tls: TLS });
  const call = await dialWs({ ca: TLS.cert });
  await until(() => server.calls.size === 1, 'the call');
  const silent = net.connect(wsPort, '127.0.0.1');
  t.after(() => silent.destroy());
  silent.on('error', () => {});
  await once(silent, 'connect');
  await once(silent, 'close');
  await echoes(call);
});

test('a flood of connections from one address is cut by the timeouts and holds no slot', async (t) => {
  const { server, port, wsPort, dialWs } = await serve(t, { maxCalls: 2, handshakeTimeout: 300 });
  const call = await dialWs();
  const flood = Array.from({ length: 100 }, (_, k) => net.connect(k % 2 ? port : wsPort, '127.0.0.1'));
  t.after(() => flood.forEach((s) => s.destroy()));
  for (const s of flood) s.on('error', () => {});
  await Promise.all(flood.map((s) => once(s, 'connect')));
  const second = await dialWs();
  await until(() => server.calls.size === 2, 'a second call while the flood waits');
  await Promise.all(flood.map((s) => (s.destroyed ? undefined : once(s, 'close'))));
  await echoes(call);
  await echoes(second);
});

test('credentials: the right Basic credentials get in, wrong or none get 401 and hold no slot; counted like any refusal', async (t) => {
  const { server, rejected, dialWs } = await serve(
    t,
    { maxCalls: 1 },
    { credentials: { username: 'asterisk', password: 's3cret:with colon' } },
  );
  await assert.rejects(dialWs(), { message: /401/ });
  await assert.rejects(dialWs({ username: 'asterisk', password: 'wrong' }), { message: /401/ });
  await assert.rejects(dialWs({ username: 'other', password: 's3cret:with colon' }), { message: /401/ });
  const ok = await dialWs({ username: 'asterisk', password: 's3cret:with colon' });
  await until(() => server.calls.size === 1, 'the authenticated call');
  await echoes(ok);
  assert.deepEqual(
    rejected.map((r) => `${r.transport} ${r.reason}`),
    ['websocket unauthorized', 'websocket unauthorized', 'websocket unauthorized'],
  );
  assert.equal(server.stats.rejected, 3);
});

test('tls: wss:// with the certificate; plain ws:// to it fails; setSecureContext serves a new certificate to new connections', async (t) => {
  const { server, wsUrl, dialWs } = await serve(t, {}, { tls: TLS });
  assert.match(wsUrl, /^wss:/);
  const secure = await dialWs({ ca: TLS.cert, format: 'slin16' });
  await echoes(secure);
  await assert.rejects(connectWebSocket({ url: wsUrl.replace('wss:', 'ws:'), connectTimeout: 5000 }));
  await assert.rejects(connectWebSocket({ url: wsUrl }), 'a certificate nobody trusts is refused by default');
  server.setSecureContext({ cert: fixture('cert2.pem'), key: fixture('key2.pem') });
  const renewed = await dialWs({ ca: fixture('cert2.pem') });
  await echoes(renewed);
  await assert.rejects(connectWebSocket({ url: wsUrl, ca: TLS.cert }), 'new connections get the new certificate');
  await echoes(secure);
});

test('tls: plain HTTP (ws:// to a wss:// port) and bytes that are not TLS (an AudioSocket client) are not-websocket failures; the call that is up goes on', async (t) => {
  const { wsPort, failed, dialWs } = await serve(t, {}, { tls: TLS });
  const secure = await dialWs({ ca: TLS.cert });
  for (const bytes of [
    Buffer.from('GET /media HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'),
    Buffer.concat([Buffer.from([0x01, 0x00, 0x10]), Buffer.alloc(16, 7)]),
  ]) {
    const raw = net.connect(wsPort, '127.0.0.1');
    t.after(() => raw.destroy());
    raw.on('error', () => {});
    await once(raw, 'connect');
    raw.write(bytes);
    await once(raw, 'close');
  }
  await until(() => failed.length === 2, 'both reported');
  assert.deepEqual(
    failed.map((f) => f.reason),
    ['not-websocket', 'not-websocket'],
  );
  assert.match(failed[0]!.error!.message, /plain HTTP request on the TLS listener: the client must use wss:\/\//);
  assert.match(failed[1]!.error!.message, /not TLS on the TLS listener/);
  await echoes(secure);
});
