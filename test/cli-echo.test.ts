/**
 * `audiosocket echo` spawned as a real process, driven over loopback.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, encodeMessage, type AsteriskClient } from '#lib/index.js';
import { MAIN, runCli, spawnCli, type Running, until } from './helpers.js';
import { allZero, stamped } from './fault-helpers.js';

describe('audiosocket echo (CLI process)', () => {
  let cli: Running;
  before(async () => {
    cli = await spawnCli(['echo', '--host', '127.0.0.1', '--port', '0']);
  });
  after(async () => {
    if (cli.child.exitCode === null) {
      cli.child.kill('SIGKILL');
      await once(cli.child, 'exit');
    }
  });

  test('200 concurrent calls with messages split across writes: every frame comes back byte-identical', async () => {
    const CALLS = 200;
    const FRAMES = 50;
    const clients: AsteriskClient[] = [];
    for (let c = 0; c < CALLS; c++) clients.push(await connect({ port: cli.port }));
    const received = clients.map(() => [] as Buffer[]);
    clients.forEach((client, c) =>
      client.on('audio', (f) => {
        if (allZero(f.payload)) return; // keep-alive silence
        received[c]!.push(Buffer.from(f.payload));
      }),
    );
    const t0 = performance.now();
    for (let seq = 0; seq < FRAMES; seq++) {
      const due = t0 + seq * 20;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      clients.forEach((client, c) => {
        const msg = encodeMessage(0x10, stamped(0, c, seq));
        // Split each message in three writes at varying points (header cut included).
        const a = 1 + ((c + seq) % 3);
        const b = a + 1 + ((c * 31 + seq * 7) % 300);
        client.sendRaw(msg.subarray(0, a));
        client.sendRaw(msg.subarray(a, b));
        client.sendRaw(msg.subarray(b));
      });
    }
    await until(() => received.every((r) => r.length >= FRAMES), 'every frame echoed on every call');
    for (let c = 0; c < CALLS; c++) {
      assert.equal(received[c]!.length, FRAMES, `call ${c} got ${received[c]!.length} echoes`);
      received[c]!.forEach((p, seq) => assert.deepEqual(p, stamped(0, c, seq), `call ${c} frame ${seq}`));
      assert.deepEqual(clients[c]!.violations, []);
    }
    await Promise.all(clients.map((c) => c.hangup()));
  });

  test('prints one line per call with uuid, peer, duration, counts and end reason', async () => {
    const client = await connect({ port: cli.port, uuid: '11111111-2222-4333-8444-555555555555' });
    client.sendAudio(Buffer.alloc(320, 1));
    client.sendDtmf('7');
    await client.hangup();
    await until(() => cli.lines.some((l) => l.startsWith('end  11111111-2222-4333-8444-555555555555')), 'the end line');
    assert.ok(
      cli.lines.some((l) => l.startsWith('dtmf 11111111-2222-4333-8444-555555555555 7 at ')),
      'the DTMF digit has its own line',
    );
    const line = cli.lines.find((l) => l.startsWith('end  11111111-2222-4333-8444-555555555555'));
    assert.ok(line, cli.lines.join('\n'));
    assert.match(line, /127\.0\.0\.1:\d+ \d+\.\ds in=2 out=\d+ dtmf=1 reason=remote-hangup/);
  });

  test('SIGTERM hangs up live calls with the hangup message and exits 0', async () => {
    const clients = await Promise.all([connect({ port: cli.port }), connect({ port: cli.port })]);
    await until(() => clients.every((c) => cli.lines.some((l) => l.startsWith(`call ${c.uuid} from`))), 'both calls to start');
    cli.child.kill('SIGTERM');
    const [code] = await once(cli.child, 'exit');
    assert.equal(code, 0);
    for (const c of clients) assert.equal((await c.closed).by, 'server-hangup');
    assert.ok(
      cli.lines.some((l) => l.includes('closing, hanging up 2 call(s)')),
      cli.lines.join('\n'),
    );
  });
});

describe('audiosocket echo | head -1', () => {
  test('a reader of its output that goes away ends the output, not the server: calls go on, SIGTERM exits 0', async () => {
    const cli = await spawnCli(['echo', '--port', '0']);
    // As `head -1` does after the listening line: the pipe's reading end closes.
    cli.child.stdout.destroy();
    try {
      // Each call writes its lines into the closed pipe (EPIPE); each must still be echoed.
      for (let c = 0; c < 3; c++) {
        const client = await connect({ port: cli.port });
        const back: Buffer[] = [];
        client.on('audio', (f) => {
          if (!allZero(f.payload)) back.push(Buffer.from(f.payload));
        });
        client.sendAudio(stamped(0, c, 0));
        await until(() => back.length === 1, `call ${c} echoed`);
        assert.deepEqual(back[0], stamped(0, c, 0));
        await client.hangup();
      }
      cli.child.kill('SIGTERM');
      const [code] = await once(cli.child, 'close'); // its stderr read to the end
      assert.equal(code, 0, cli.stderr());
      assert.doesNotMatch(cli.stderr(), /EPIPE|^\s+at /m);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
  });
});

describe('CLI usage', () => {
  test('--help, unknown commands and bad options', async () => {
    const run = runCli;
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /echo/);
    const echoHelp = await run(['echo', '--help']);
    assert.match(echoHelp.out, /--host HOST/);
    assert.match(echoHelp.out, /--port PORT/);
    const unknown = await run(['nope']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /unknown command "nope"/);
    const bad = await run(['echo', '--port', 'x']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--port must be a whole number from 0 to 65535/);
  });

  test('a port in use is a clear error, exit 2', async () => {
    const first = await spawnCli(['echo', '--port', '0']);
    const child = spawn(process.execPath, [MAIN, 'echo', '--port', String(first.port)], { stdio: 'pipe' });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = await once(child, 'exit');
    assert.equal(code, 2);
    assert.match(err, /already in use/);
    first.child.kill('SIGINT');
    await once(first.child, 'exit');
  });
});

describe('audiosocket echo --workers 2', () => {
  test('two processes share the port; calls are spread and all echo byte-exact; SIGTERM closes both', async () => {
    const cli = await spawnCli(['echo', '--port', '0', '--workers', '2', '--json']);
    try {
      const clients: AsteriskClient[] = [];
      for (let c = 0; c < 20; c++) clients.push(await connect({ port: cli.port }));
      const got = clients.map(() => [] as Buffer[]);
      clients.forEach((client, c) =>
        client.on('audio', (f) => {
          if (!allZero(f.payload)) got[c]!.push(Buffer.from(f.payload));
        }),
      );
      for (let seq = 0; seq < 10; seq++) {
        clients.forEach((client, c) => client.sendAudio(stamped(0, c, seq)));
        await sleep(20);
      }
      await until(() => got.every((frames) => frames.length >= 10), 'every frame echoed');
      got.forEach((frames, c) =>
        assert.deepEqual(
          frames,
          Array.from({ length: 10 }, (_, seq) => stamped(0, c, seq)),
        ),
      );
      await Promise.all(clients.map((c) => c.hangup()));
      await until(() => cli.lines.filter((l) => l.includes('"event":"callEnd"')).length >= 20, 'twenty end events');
      const events = cli.lines.map((l) => JSON.parse(l) as { event: string; pid?: number });
      const pids = new Set(events.filter((e) => e.event === 'call').map((e) => e.pid));
      assert.equal(pids.size, 2, 'calls were served by both workers');
      assert.equal(events.filter((e) => e.event === 'callEnd').length, 20);
    } finally {
      cli.child.kill('SIGTERM');
      const [code] = await once(cli.child, 'exit');
      assert.equal(code, 0);
    }
  });
});

describe('audiosocket echo --workers: the port is taken', () => {
  test('--workers with the port taken: one line, exit 2, no worker started', async (t) => {
    const first = await spawnCli(['echo', '--port', '0']);
    t.after(() => {
      if (first.child.exitCode === null) first.child.kill('SIGKILL');
    });
    const child = spawn(process.execPath, [MAIN, 'echo', '--port', String(first.port), '--workers', '2'], { stdio: 'pipe' });
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let err = '';
    let out = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = await once(child, 'exit');
    assert.equal(code, 2, err);
    assert.match(
      err,
      new RegExp(`^audiosocket echo: cannot listen on 127\\.0\\.0\\.1:${first.port}: port ${first.port} is already in use`),
    );
    assert.equal(err.match(/already in use/g)!.length, 1, err);
    assert.equal(out, '', 'no worker was started, so none is closed');
    first.child.kill('SIGINT');
    await once(first.child, 'exit');
  });
});
