/**
 * `preloadWasm: false`: the server leaves out the two WebAssembly modules its options do not
 * need, a conversion between rates says what to do, and the monitor's listen-in loads the
 * resampler itself. Its own file: node --test runs each file in a process of its own, and the
 * modules, once loaded, stay loaded for the process: the tests that need them unloaded come first,
 * and the options are checked each in a child process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { connect, createServer, serveMonitor, type Call } from '#lib/index.js';
import { resamplerReady } from '#lib/audio/resample.js';
import { vadReady } from '#lib/speech/vad.js';
import { Kind } from '#lib/protocol/kinds.js';
import { signal, until } from './helpers.js';

const run = promisify(execFile);

test('preloadWasm: false loads neither module; a write that needs the resampler says how to load it', async (t) => {
  let failure: unknown;
  const server = createServer(
    (call) => {
      try {
        call.write(Buffer.alloc(882), { encoding: 'slin', sampleRate: 22050, channels: 1 });
      } catch (err) {
        failure = err;
      }
    },
    { preloadWasm: false },
  );
  const { port } = await server.listen({ port: 0 });
  t.after(() => server.close());
  assert.equal(resamplerReady(), false);
  assert.equal(vadReady(), false);
  const client = await connect({ port });
  t.after(() => client.hangup());
  await until(() => failure !== undefined, 'the write');
  assert.match(String(failure), /await loadResampler\(\).*preloadWasm: false/);
});

test('listen-in on a server without the modules loads the resampler and hears a 16 kHz call', async (t) => {
  let call: Call | undefined;
  const server = createServer((c) => void (call = c), { preloadWasm: false });
  const { port } = await server.listen({ port: 0 });
  const monitor = await serveMonitor(server, { intervalMs: 50, listen: true });
  t.after(async () => {
    await monitor.close();
    await server.close();
  });
  const client = await connect({ port });
  t.after(() => client.hangup());
  await until(() => call !== undefined, 'the call');
  assert.equal(resamplerReady(), false);
  const heard: Buffer[] = [];
  let status: number | undefined;
  const req = http.get(`http://127.0.0.1:${monitor.address.port}/listen/1`, (res) => {
    status = res.statusCode;
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      text += d;
      let end: number;
      while ((end = text.indexOf('\n\n')) !== -1) {
        const message = text.slice(0, end);
        text = text.slice(end + 2);
        const data = /^data: (.*)$/m.exec(message)?.[1];
        if (message.startsWith('event: audio') && data !== undefined)
          heard.push(Buffer.from((JSON.parse(data) as { in: string }).in, 'base64'));
      }
    });
  });
  req.on('error', () => {});
  t.after(() => req.destroy());
  await until(() => status === 200, 'the listen stream');
  assert.equal(resamplerReady(), true);
  // 16 kHz audio from the caller reaches the listener converted to 8 kHz: not silence.
  const sent = signal(640 * 25, 3);
  await client.stream(sent, { kind: Kind.SLIN16 });
  await until(() => Buffer.concat(heard).some((b) => b !== 0), 'the caller heard through listen-in');
});

test('preloadWasm: false loads what the options need, each in a fresh process; anything but a boolean is refused', async () => {
  assert.throws(() => createServer({ preloadWasm: 'no' as unknown as boolean }), /preloadWasm must be true or false, got "no"/);
  const cases: Array<[string, [resampler: boolean, vad: boolean]]> = [
    ['{ preloadWasm: false }', [false, false]],
    ["{ preloadWasm: false, receive: 'slin16' }", [true, false]],
    ['{ preloadWasm: false, speech: true }', [true, true]],
    ["{ preloadWasm: false, inbound: 'ulaw', outboundKind: 0x12 }", [true, false]],
    ["{ preloadWasm: false, inbound: 'ulaw' }", [false, false]],
    ['{}', [true, true]],
  ];
  for (const [options, want] of cases) assert.deepEqual(await loadedAfterListen(options), want, options);
});

/** [resamplerReady(), vadReady()] after `listen()` of a server with `options`, in a process of its own. */
async function loadedAfterListen(options: string): Promise<[boolean, boolean]> {
  const code = [
    "import { createServer } from '#lib/index.js';",
    "import { resamplerReady } from '#lib/audio/resample.js';",
    "import { vadReady } from '#lib/speech/vad.js';",
    `const server = createServer(${options});`,
    'await server.listen({ port: 0 });',
    'console.log(JSON.stringify([resamplerReady(), vadReady()]));',
    'await server.close();',
  ].join('\n');
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code]);
  return JSON.parse(stdout) as [boolean, boolean];
}
