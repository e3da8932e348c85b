/**
 * CLI commands with --websocket: chan_websocket calls beside AudioSocket, `call --websocket`
 * (the simulated chan_websocket channel), and their usage errors.
 */
import { test, type TestContext } from 'node:test';
import { copyFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { connectWebSocket } from '#lib/websocket/client.js';
import { createServer } from '#lib/index.js';
import { runCli, spawnCli, until } from './helpers.js';

test('echo --websocket serves chan_websocket calls on any path', async (t) => {
  const cli = await spawnCli(['echo', '--port', '0', '--websocket', '127.0.0.1:0']);
  t.after(async () => {
    cli.child.kill('SIGINT');
    if (cli.child.exitCode === null) await once(cli.child, 'exit');
  });
  await until(() => cli.lines.some((l) => /chan_websocket on ws:\/\/.*:\d+/.test(l)), 'websocket listening line');
  const port = Number(/chan_websocket on ws:\/\/.*:(\d+)/.exec(cli.lines.find((l) => l.includes('chan_websocket'))!)![1]);
  const client = await connectWebSocket({ url: `ws://127.0.0.1:${port}/whatever?a=b`, format: 'slin16', controlFormat: 'json' });
  t.after(() => client.drop());
  const frame = Buffer.alloc(640);
  for (let i = 0; i < 320; i++) frame.writeInt16LE(((i * 97) % 20000) - 10000, i * 2);
  for (let i = 0; i < 5; i++) client.sendAudio(frame);
  await until(() => client.stats.framesPlayed >= 5, 'echo');
  assert.ok(client.played.slice(0, 5).every((f) => f.equals(frame)));
  assert.equal(client.violations.length, 0);
  // A connection that does not become a call is logged, as on AudioSocket.
  await assert.rejects(connectWebSocket({ url: `ws://127.0.0.1:${port}/x`, subprotocols: ['other'] }));
  await until(() => cli.lines.some((l) => /no call from chan_websocket \/x .*: subprotocol/.test(l)), 'the handshake failure line');
});

const fixture = (name: string): string => fileURLToPath(new URL(`../../test/fixtures/tls/${name}`, import.meta.url));

test('echo --websocket with credentials from AUDIOSOCKET_WEBSOCKET_AUTH, TLS, SIGHUP reload and --allow on both listeners', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'as-tls-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  await copyFile(fixture('cert.pem'), cert);
  await copyFile(fixture('key.pem'), key);
  const cli = await spawnCli(
    ['echo', '--port', '0', '--websocket', '127.0.0.1:0', '--websocket-tls-cert', cert, '--websocket-tls-key', key, '--allow', '127.0.0.1'],
    { AUDIOSOCKET_WEBSOCKET_AUTH: 'asterisk:pa:ss' },
  );
  t.after(async () => {
    cli.child.kill('SIGINT');
    if (cli.child.exitCode === null) await once(cli.child, 'exit');
  });
  const re = /chan_websocket on wss:\/\/127\.0\.0\.1:(\d+) \(credentials required\)/;
  await until(() => cli.lines.some((l) => re.test(l)), 'the wss listening line');
  const url = `wss://127.0.0.1:${re.exec(cli.lines.find((l) => re.test(l))!)![1]}/media`;
  assert.ok(!cli.lines.join('\n').includes('pa:ss'), 'the password is never printed');
  const ca = await readFile(fixture('cert.pem'));
  await assert.rejects(connectWebSocket({ url, ca, username: 'asterisk', password: 'nope' }), { message: /401/ });
  await until(() => cli.lines.some((l) => /rejected chan_websocket 127\.0\.0\.1:\d+: unauthorized/.test(l)), 'the refusal line');
  const client = await connectWebSocket({ url, ca, username: 'asterisk', password: 'pa:ss', format: 'slin16' });
  t.after(() => client.drop());
  client.sendAudio(Buffer.alloc(640, 3));
  await until(() => client.stats.framesPlayed >= 1, 'the echo over wss');
  // A renewed certificate: SIGHUP makes new connections get it.
  await copyFile(fixture('cert2.pem'), cert);
  await copyFile(fixture('key2.pem'), key);
  cli.child.kill('SIGHUP');
  await until(() => cli.lines.some((l) => l.startsWith('SIGHUP: reloaded')), 'the reload line');
  const renewed = await connectWebSocket({ url, ca: await readFile(fixture('cert2.pem')), username: 'asterisk', password: 'pa:ss' });
  t.after(() => renewed.drop());
  assert.equal(renewed.connected, true);
});

test('a --websocket port in use is blamed on --websocket, not --port', async (t) => {
  const busy = net.createServer();
  busy.listen(0, '127.0.0.1');
  await once(busy, 'listening');
  t.after(() => busy.close());
  const taken = (busy.address() as net.AddressInfo).port;
  const r = await runCli(['echo', '--port', '0', '--websocket', String(taken)]);
  assert.equal(r.code, 2, r.err);
  assert.match(
    r.err.split('\n')[0]!,
    new RegExp(
      `cannot listen for chan_websocket on 127\\.0\\.0\\.1:${taken}: port ${taken} is already in use .*pick another with --websocket`,
    ),
  );
});

test('--websocket usage errors', async () => {
  for (const [args, pattern] of [
    [['echo', '--websocket', 'nope'], /--websocket/],
    [['record', '--websocket-path', '/media'], /--websocket-path needs --websocket/],
    [['echo', '--websocket', '8765', '--websocket-path', 'media'], /--websocket-path must start with \//],
    [['echo', '--websocket', '9092'], /--websocket 9092 is the AudioSocket port too \(--port 9092\); give chan_websocket its own port/],
    [['echo', '--websocket-tls-cert', 'c.pem', '--websocket-tls-key', 'k.pem'], /--websocket-tls-cert needs --websocket/],
    [['echo', '--websocket', '8765', '--websocket-tls-cert', 'c.pem'], /--websocket-tls-cert needs --websocket-tls-key too/],
    [
      ['echo', '--websocket', '8765', '--websocket-tls-cert', '/nonexistent.pem', '--websocket-tls-key', 'k.pem'],
      /--websocket-tls-cert \/nonexistent\.pem: cannot read it \(ENOENT\)/,
    ],
    [
      ['play', 'x.wav', '--websocket', '8765', '--websocket-auth-file', '/nonexistent'],
      /--websocket-auth-file \/nonexistent: cannot read it/,
    ],
    [['echo', '--websocket', '8765', '--env-bad-auth'], /AUDIOSOCKET_WEBSOCKET_AUTH must hold user:password/],
  ] as const) {
    const bad = (args as readonly string[]).includes('--env-bad-auth');
    const r = await runCli(
      args.filter((a) => a !== '--env-bad-auth'),
      bad ? { AUDIOSOCKET_WEBSOCKET_AUTH: 'no-colon' } : {},
    );
    assert.equal(r.code, 2, r.err);
    const lines = r.err.split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, 2, r.err);
    assert.match(lines[0]!, pattern);
    assert.equal(lines[1], `see 'audiosocket ${args[0]} --help'`);
  }
});

/** An in-process chan_websocket echo server; `hangUp` ends every call at once (a refusal). */
async function wsServer(t: TestContext, o: { hangUp?: boolean; path?: string } = {}) {
  const digits: string[] = [];
  const formats: string[] = [];
  const server = createServer(
    (call) => {
      assert.equal(call.transport, 'websocket');
      formats.push(`${call.mediaStart.format}/${call.controlFormat}`);
      if (o.hangUp) return void call.hangup();
      call.on('dtmf', (d) => digits.push(d));
      call.on('audio', (f) => call.write(f.payload, f.format));
    },
    { websocket: { port: 0, ...(o.path ? { path: o.path } : {}) } },
  );
  await server.listen({ port: 0 });
  t.after(() => server.close());
  return { port: server.websocketAddress()!.port, digits, formats };
}

function summaries(out: string): Record<string, unknown>[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((e) => e['event'] === 'summary');
}

test('call --websocket HOST:PORT: streams, sends DTMF, hears the echo, records it; exit 0', async (t) => {
  const { port, digits, formats } = await wsServer(t, { path: '/media' });
  const dir = await mkdtemp(join(tmpdir(), 'as-callws-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const wav = join(dir, 'echo.wav');
  const r = await runCli([
    'call',
    '--websocket',
    `127.0.0.1:${port}`,
    '--format',
    'slin16',
    '--duration',
    '1',
    '--dtmf',
    '4@0.2',
    '--record',
    wav,
    '--json',
  ]);
  assert.equal(r.code, 0, r.err);
  const [s] = summaries(r.out);
  assert.equal(s?.['transport'], 'websocket');
  assert.ok((s?.['framesSent'] as number) >= 40, JSON.stringify(s));
  assert.ok((s?.['framesPlayed'] as number) > 10, JSON.stringify(s));
  assert.equal(s?.['endedBy'], 'client');
  assert.equal(s?.['violations'], 0);
  assert.deepEqual(digits, ['4']);
  assert.deepEqual(formats, ['slin16/plain-text']);
  assert.ok((await stat(wav)).size > 44);
});

test('call --websocket URL with --control-format json and ulaw', async (t) => {
  const { port, formats } = await wsServer(t);
  const r = await runCli([
    'call',
    '--websocket',
    `ws://127.0.0.1:${port}/any/path?x=1`,
    '--control-format',
    'json',
    '--format',
    'ulaw',
    '--duration',
    '0.6',
    '-q',
  ]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(formats, ['ulaw/json']);
  // The result of the run on stdout, as over AudioSocket: `x=$(audiosocket call -q ...)` gets it.
  assert.match(r.out, /^1 call\(s\) in [\d.]+ s: 1 connected, 0 failed, 0 refused, 0 violation\(s\)\n$/);
});

test('call --websocket: exit 1 when refused, ended before audio, or nothing listens', async (t) => {
  const { port } = await wsServer(t, { hangUp: true });
  const r = await runCli(['call', '--websocket', String(port), '--duration', '1']);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /ended the call before playing any audio \(the server \(HANGUP command\)/);
  const wrongPath = await wsServer(t, { path: '/only-here' });
  const r404 = await runCli(['call', '--websocket', `127.0.0.1:${wrongPath.port}`, '--websocket-path', '/elsewhere', '--duration', '0.5']);
  assert.equal(r404.code, 1, r404.err);
  assert.match(r404.err, /404/);
  const closed = await runCli(['call', '--websocket', `127.0.0.1:${port === 1 ? 2 : 1}`, '--duration', '0.5']);
  assert.equal(closed.code, 1, closed.err);
  assert.match(closed.err, /could not connect/);
  assert.doesNotMatch(closed.out, /sent 0 frames/, 'a call that never connected gets no all-zero summary line');
  assert.ok(!/\n\s+at /.test(r.err + r404.err + closed.err), 'no stack trace');
});

test('call --websocket usage errors: one line, see --help, exit 2', async () => {
  for (const [args, pattern] of [
    [['call', '--websocket', 'nope'], /--websocket must be \[HOST:\]PORT/],
    [['call', '--websocket', 'http://127.0.0.1:8765/media'], /only ws:\/\/ and wss:\/\//],
    [['call', '--websocket', 'ws://127.0.0.1/media'], /has no port/],
    [['call', '--websocket', 'ws://127.0.0.1:8765/media', '--websocket-path', '/x'], /put the path in the URL/],
    [['call', '--websocket', '8765', '--websocket-path', 'media'], /--websocket-path must start with \//],
    [['call', '--websocket', '8765', '--control-format', 'xml'], /--control-format must be plain-text or json/],
    [['call', '--websocket', '8765', '--port', '9092'], /--port is the AudioSocket port/],
    [['call', '127.0.0.1:9092', '--websocket', '8765'], /both a HOST:PORT argument/],
    [['call', '--websocket', '8765', '--strict'], /--strict is for AudioSocket/],
    [['call', '--websocket', '8765', '--format', 'opus'], /--format must be one of/],
    [['call', '--websocket', '8765', '--duration', '0'], /--duration must be a positive number/],
    [['call', '--websocket', '8765', '--dtmf', 'Z'], /not a DTMF digit/],
    [['call', '--websocket-path', '/media'], /--websocket-path needs --websocket/],
    [['call', '--control-format', 'json'], /--control-format needs --websocket/],
  ] as const) {
    const r = await runCli([...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    const lines = r.err.split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, 2, r.err);
    assert.match(lines[0]!, pattern);
    assert.equal(lines[1], `see 'audiosocket call --help'`);
  }
});
