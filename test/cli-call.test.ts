/**
 * `audiosocket call` tells the truth: a refused call (allow list, max calls, closed at once) is
 * exit 1 with the reason; G.711 can be sent under 0x10 (--format ulaw|alaw); who ended the call is
 * reported right, also under --strict; the JSON "call" number is the text's; all-zero frames that
 * echo our own quiet audio are audio, not keep-alive.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { connect, createServer, encodeMessage, encodeWav, type ServerOptions, type CallHandler } from '#lib/index.js';
import { parseWav, slinToAlaw, slinToUlaw } from '#lib/audio/index.js';
import { MAIN, runCli, until } from './helpers.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function wavFile(name: string, slin: Buffer): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'audiosocket-cli-call-'));
  dirs.push(d);
  const path = join(d, name);
  await writeFile(path, encodeWav('slin', slin));
  return path;
}

/** A non-silent test signal at 8 kHz, never an all-zero 20 ms frame. */
function signal(frames: number): Buffer {
  const b = Buffer.alloc(frames * 320);
  for (let i = 0; i < b.length / 2; i++) b.writeInt16LE(((i * 37) % 20000) - 10000 || 1, i * 2);
  return b;
}

const echo: CallHandler = (call) => call.on('audio', (f) => call.write(f.payload, f.format));

async function server(t: { after(fn: () => unknown): void }, handler: CallHandler | undefined, options: ServerOptions = {}) {
  const s = createServer(handler, options);
  const { port } = await s.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => s.close());
  return { server: s, port };
}

async function rawServer(t: { after(fn: () => unknown): void }, onSocket: (s: net.Socket) => void): Promise<number> {
  const s = net.createServer((sock) => {
    sock.on('error', () => {});
    onSocket(sock);
  });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  t.after(() => new Promise((r) => s.close(r)));
  return (s.address() as net.AddressInfo).port;
}

interface Summary {
  event: string;
  call: number;
  framesSent: number;
  audioFramesReceived: number;
  keepAliveFramesReceived: number;
  endedBy: string;
  strictClose?: string;
  refused?: string;
  violations: number;
}

function events(out: string): Summary[] {
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Summary);
}

describe('a refused call is not a success', () => {
  test('not in the allow list: exit 1, and says why', async (t) => {
    const { port } = await server(t, echo, { allow: '10.9.9.9' });
    const r = await runCli(['call', `127.0.0.1:${port}`, '--duration', '3', '--json']);
    assert.equal(r.code, 1, r.out + r.err);
    const summary = events(r.out).find((e) => e.event === 'summary')!;
    assert.match(summary.refused!, /closed the connection before sending any audio \(refused: not in its --allow list/);
    assert.equal(summary.audioFramesReceived + summary.keepAliveFramesReceived, 0);
    assert.match(r.err, /call 1: the server closed the connection before sending any audio/);
  });

  test('--max-calls reached: the hangup before any audio is exit 1, and says why', async (t) => {
    const { port, server: s } = await server(t, echo, { maxCalls: 1 });
    const holder = await connect({ port });
    t.after(() => holder.hangup());
    await until(() => s.calls.size === 1, 'the first call to take the only slot');
    const r = await runCli(['call', `127.0.0.1:${port}`, '--duration', '3']);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.out, /ended by the server \(hangup message\)/);
    assert.match(r.err, /call 1: the server hung up before sending any audio \(refused: --max-calls reached/);
  });

  test('a server that closes right after the UUID: exit 1', async (t) => {
    const port = await rawServer(t, (s) => s.once('data', () => s.end()));
    const r = await runCli(['call', `127.0.0.1:${port}`, '--duration', '3', '--quiet']);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.err, /before sending any audio/);
    assert.match(r.out, /1 call\(s\) in [\d.]+ s: 0 connected, 0 failed, 1 refused/);
  });

  test('a server that hangs up after its prompt is a clean call, ended by the server', async (t) => {
    const { port } = await server(t, async (call) => {
      await call.play(signal(10));
      await call.end();
    });
    const r = await runCli(['call', `127.0.0.1:${port}`, '--duration', '5', '--json']);
    assert.equal(r.code, 0, r.out + r.err);
    const summary = events(r.out).find((e) => e.event === 'summary')!;
    assert.equal(summary.endedBy, 'server-hangup');
    assert.ok(summary.audioFramesReceived >= 10);
  });
});

describe('the wrong kind of port is named', () => {
  test('an HTTP or WebSocket port dialled as AudioSocket: exit 1, says so in one line and names --websocket', async (t) => {
    const web = http.createServer((_req, res) => res.end('a web page'));
    web.listen(0, '127.0.0.1');
    await once(web, 'listening');
    t.after(() => new Promise((r) => web.close(r)));
    const port = (web.address() as net.AddressInfo).port;
    for (const strict of [[], ['--strict']]) {
      const r = await runCli(['call', `127.0.0.1:${port}`, '--duration', '3', ...strict]);
      assert.equal(r.code, 1, r.out + r.err);
      // The one line on stderr; stdout says only that the TCP connection was made.
      assert.match(
        r.err,
        new RegExp(
          `answered in HTTP \\("HTTP/1\\.1 400 Bad Request"\\): it is a WebSocket or web port, not AudioSocket \\(if it serves chan_websocket, call it with --websocket ws://127\\.0\\.0\\.1:${port}/\\)`,
        ),
      );
      assert.deepEqual(r.out.trim().split('\n').length, 1, r.out);
      assert.match(r.out, /connected to 127\.0\.0\.1/);
      // --json still has every event, the violation included.
      const json = await runCli(['call', `127.0.0.1:${port}`, '--duration', '3', '--json', ...strict]);
      assert.ok(
        events(json.out).some((e) => e.event === 'violation' && (e as unknown as { code: string }).code === 'FORBIDDEN_KIND'),
        json.out,
      );
    }
  });

  test('wss:// to a plain ws:// server, and a path the server does not serve: exit 1, each says what to change', async (t) => {
    const s = createServer(echo, { websocket: { port: 0, path: '/media' } });
    await s.listen({ host: '127.0.0.1', port: 0 });
    t.after(() => s.close());
    const wsPort = s.websocketAddress()!.port;
    const tls = await runCli(['call', '--websocket', `wss://127.0.0.1:${wsPort}/media`, '--duration', '3']);
    assert.equal(tls.code, 1, tls.out + tls.err);
    assert.match(tls.err, /the TLS handshake failed \(the server answered without TLS\); use ws:\/\/ instead of wss:\/\//);
    assert.equal(tls.err.trim().split('\n').length, 1, tls.err);
    const path = await runCli(['call', '--websocket', `ws://127.0.0.1:${wsPort}/wrong`, '--duration', '3']);
    assert.equal(path.code, 1, path.out + path.err);
    assert.match(path.err, /404; nothing serves the path \/wrong there: check the path/);
  });

  test('an AudioSocket port dialled with --websocket: exit 1, asks whether it is AudioSocket', async (t) => {
    const { port } = await server(t, echo);
    const r = await runCli(['call', '--websocket', `ws://127.0.0.1:${port}/`, '--duration', '3']);
    assert.equal(r.code, 1, r.out + r.err);
    assert.match(r.err, /without answering the WebSocket handshake: is it an AudioSocket port\? \(then call it without --websocket/);
  });
});

describe('call --format ulaw|alaw sends G.711 under 0x10, as a Dial without c() does', () => {
  for (const [law, encode] of [
    ['ulaw', slinToUlaw],
    ['alaw', slinToAlaw],
  ] as const) {
    test(law, async (t) => {
      const audio = signal(25);
      const path = await wavFile('in.wav', audio);
      const got: Buffer[] = [];
      const kinds = new Set<number>();
      const { port } = await server(t, (call) =>
        call.on('audio', (f) => {
          if ('kind' in f) kinds.add(f.kind);
          got.push(Buffer.from(f.payload));
        }),
      );
      const r = await runCli(['call', `127.0.0.1:${port}`, '--play', path, '--format', law, '--duration', '1', '--json']);
      assert.equal(r.code, 0, r.out + r.err);
      assert.deepEqual([...kinds], [0x10]);
      assert.ok(
        got.every((p) => p.length === 160),
        `160-byte frames: ${[...new Set(got.map((p) => p.length))].join(', ')}`,
      );
      assert.deepEqual(Buffer.concat(got), encode(audio), `the file's samples as ${law} bytes`);
      assert.equal(events(r.out).find((e) => e.event === 'summary')!.framesSent, 25);
    });
  }

  for (const [law, encode] of [
    ['ulaw', slinToUlaw],
    ['alaw', slinToAlaw],
  ] as const) {
    test(`${law}: --record saves what comes back under 0x10 as Asterisk plays it, slin: a raw echo of the ${law} bytes is noise`, async (t) => {
      // A raw echo (no keep-alive): every byte after the UUID message goes back as it came.
      const port = await rawServer(t, (s) => {
        let skip = 3 + 16;
        s.on('data', (chunk: Buffer) => {
          const rest = chunk.subarray(Math.min(skip, chunk.length));
          skip -= chunk.length - rest.length;
          if (rest.length > 0) s.write(rest);
        });
      });
      const audio = signal(25);
      const path = await wavFile('in.wav', audio);
      const out = join(dirname(path), 'back.wav');
      const r = await runCli(['call', `127.0.0.1:${port}`, '--play', path, '--format', law, '--duration', '2', '--record', out]);
      assert.equal(r.code, 0, r.out + r.err);
      const wav = parseWav(await readFile(out));
      assert.deepEqual([wav.format.sampleFormat, wav.format.sampleRate, wav.format.channels], ['s16', 8000, 1]);
      // res/res_audiosocket.c gives every received 0x10 message the slin format: the G.711 bytes
      // echoed back are taken as samples, two bytes each.
      assert.deepEqual(wav.data, encode(audio), `the ${law} bytes themselves, as slin`);
    });
  }

  test('--record: audio back under another kind than 0x10 is slin at its rate, not decoded', async (t) => {
    const back = signal(50).subarray(0, 25 * 640);
    const port = await rawServer(t, (s) =>
      s.once('data', () => {
        for (let off = 0; off < back.length; off += 640) s.write(encodeMessage(0x12, back.subarray(off, off + 640)));
        s.end(encodeMessage(0x00, Buffer.alloc(0)));
      }),
    );
    const path = await wavFile('in.wav', signal(25));
    const out = join(dirname(path), 'back16.wav');
    const r = await runCli(['call', `127.0.0.1:${port}`, '--play', path, '--format', 'ulaw', '--duration', '2', '--record', out]);
    assert.equal(r.code, 0, r.out + r.err);
    const wav = parseWav(await readFile(out));
    assert.equal(wav.format.sampleRate, 16000);
    assert.deepEqual(wav.data, back);
  });

  test('an echo server told --inbound ulaw hears it as slin', async (t) => {
    // The library receives it as u-law and converts: the proof that the bytes are real G.711.
    const got: Buffer[] = [];
    const { port } = await server(t, (call) => call.on('audio', (f) => got.push(Buffer.from(f.payload))), {
      inbound: 'ulaw',
      receive: 'slin',
    });
    const r = await runCli(['call', `127.0.0.1:${port}`, '--tone', '1000', '--format', 'ulaw', '--duration', '0.5']);
    assert.equal(r.code, 0, r.out + r.err);
    const samples = Buffer.concat(got);
    let peak = 0;
    for (let i = 0; i + 1 < samples.length; i += 2) peak = Math.max(peak, Math.abs(samples.readInt16LE(i)));
    assert.ok(peak > 7000 && peak < 9000, `a tone of amplitude 8000 came through, peak ${peak}`);
    assert.ok(
      got.every((p) => p.length === 320),
      'decoded to 320-byte slin frames',
    );
  });
});

describe('who ended the call', () => {
  test('--strict: the client closes on a forbidden message and says so (not "server-close")', async (t) => {
    // A broken server: answers the UUID with a DTMF message, which a real Asterisk dies on.
    const port = await rawServer(t, (s) => s.once('data', () => s.write(encodeMessage(0x03, Buffer.from('1')))));
    const r = await runCli(['call', `127.0.0.1:${port}`, '--strict', '--duration', '3', '--json']);
    assert.equal(r.code, 3, r.out + r.err);
    const summary = events(r.out).find((e) => e.event === 'summary')!;
    assert.equal(summary.endedBy, 'client');
    assert.equal(summary.strictClose, 'FORBIDDEN_KIND');
    assert.equal(summary.refused, undefined);
    const text = await runCli(['call', `127.0.0.1:${port}`, '--strict', '--duration', '3']);
    assert.match(text.out, /ended by us, --strict: closed on FORBIDDEN_KIND as Asterisk would/);
  });

  test('at --duration the caller hangs up: ended by us', async (t) => {
    const { port } = await server(t, echo);
    const r = await runCli(['call', `127.0.0.1:${port}`, '--duration', '0.3']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /ended by us \(the caller hung up\)/);
  });

  test('Ctrl-C before --duration: the caller hangs up, the summary says it was interrupted, exit 130', async (t) => {
    const { server: s, port } = await server(t, echo);
    const child = spawn(process.execPath, [MAIN, 'call', `127.0.0.1:${port}`, '--duration', '60', '--json'], { stdio: 'pipe' });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => s.calls.size === 1 && out.includes('"connected"'), 'the call to be up');
    child.kill('SIGINT');
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 130, out);
    const summary = events(out).find((e) => e.event === 'summary') as Summary & { interrupted?: string };
    assert.equal(summary.endedBy, 'client');
    assert.equal(summary.interrupted, 'SIGINT');
  });
});

describe('what the summary counts', () => {
  test('the JSON "call" is the same 1-based number as the text', async (t) => {
    const { port } = await server(t, echo);
    const json = await runCli(['call', `127.0.0.1:${port}`, '--calls', '2', '--duration', '0.3', '--json']);
    assert.equal(json.code, 0, json.err);
    const all = events(json.out);
    assert.deepEqual(
      all
        .filter((e) => e.event === 'summary')
        .map((e) => e.call)
        .sort(),
      [1, 2],
    );
    assert.deepEqual(
      all
        .filter((e) => e.event === 'connected')
        .map((e) => e.call)
        .sort(),
      [1, 2],
    );
    const text = await runCli(['call', `127.0.0.1:${port}`, '--calls', '2', '--duration', '0.3']);
    assert.match(text.out, /^call 1 [0-9a-f-]{36} connected/m);
    assert.match(text.out, /^call 2 [0-9a-f-]{36}: sent/m);
    assert.doesNotMatch(text.out, /^call 0 /m);
  });

  test('quiet stretches of echoed audio (all-zero frames we sent) count as audio, not keep-alive', async (t) => {
    // 60 frames: sound and digital silence in turns of 10 frames (G.711 speech decodes its quiet
    // parts to exact zeros like this).
    const audio = signal(60);
    for (let f = 10; f < 60; f += 20) audio.fill(0, f * 320, (f + 10) * 320);
    const path = await wavFile('quiet.wav', audio);
    const { port } = await server(t, echo);
    const r = await runCli(['call', `127.0.0.1:${port}`, '--play', path, '--duration', '2', '--json']);
    assert.equal(r.code, 0, r.err);
    const summary = events(r.out).find((e) => e.event === 'summary')!;
    assert.equal(summary.framesSent, 60);
    // Every echoed frame is audio (a frame or two of slack for a keep-alive racing an echo).
    assert.ok(
      Math.abs(summary.audioFramesReceived - 60) <= 2,
      `audio ${summary.audioFramesReceived} of 60 echoed, keep-alive ${summary.keepAliveFramesReceived}`,
    );
    // After the file, until --duration, the server fills the line with keep-alive.
    assert.ok(summary.keepAliveFramesReceived >= 20, `keep-alive ${summary.keepAliveFramesReceived}`);
  });

  test("DTMF timed after the file's end stretches the default duration instead of being dropped", async (t) => {
    const digits: string[] = [];
    const { port } = await server(t, (call) => call.on('dtmf', (d) => digits.push(d)));
    const path = await wavFile('short.wav', signal(10));
    const r = await runCli(['call', `127.0.0.1:${port}`, '--play', path, '--dtmf', '5@1.8']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(digits, ['5']);
  });

  test('a truncated WAV is played with a warning', async (t) => {
    const { port } = await server(t, echo);
    const full = encodeWav('slin', signal(50)); // 1 s declared
    const d = await mkdtemp(join(tmpdir(), 'audiosocket-cli-call-'));
    dirs.push(d);
    const path = join(d, 'cut.wav');
    await writeFile(path, full.subarray(0, 44 + 320 * 10)); // 0.2 s present
    const r = await runCli(['call', `127.0.0.1:${port}`, '--play', path, '--json']);
    assert.equal(r.code, 0, r.err);
    const warning = r.err
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((e) => e.event === 'warning');
    assert.match(
      warning.message,
      /cut\.wav is truncated: its header declares 1\.00 s of audio but the file holds 0\.20 s; playing what is there/,
    );
    assert.equal(events(r.out).find((e) => e.event === 'summary')!.framesSent, 10);
    const text = await runCli(['call', `127.0.0.1:${port}`, '--play', path, '--quiet']);
    assert.match(text.err, /^audiosocket call: warning: .*cut\.wav is truncated/m);
  });
});
