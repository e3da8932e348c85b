/**
 * CLI server commands with --websocket: chan_websocket calls beside AudioSocket, and its usage errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connectWebSocket } from '#lib/websocket/client.js';
import { runCli, spawnCli } from './helpers.js';

async function until(pred: () => boolean, what: string, ms = 10000): Promise<void> {
  const t0 = performance.now();
  while (!pred()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

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
  for (let i = 0; i < 320; i++) frame.writeInt16LE((i * 97) % 20000 - 10000, i * 2);
  for (let i = 0; i < 5; i++) client.sendAudio(frame);
  await until(() => client.stats.framesPlayed >= 5, 'echo');
  assert.ok(client.played.slice(0, 5).every((f) => f.equals(frame)));
  assert.equal(client.violations.length, 0);
});

test('--websocket usage errors', async () => {
  for (const [args, pattern] of [
    [['echo', '--websocket', 'nope'], /--websocket/],
    [['record', '--websocket-path', '/media'], /--websocket-path needs --websocket/],
    [['echo', '--websocket', '8765', '--websocket-path', 'media'], /--websocket-path must start with \//],
  ] as const) {
    const r = await runCli([...args]);
    assert.equal(r.code, 2, r.err);
    const lines = r.err.split('\n').filter((l) => l.length > 0);
    assert.equal(lines.length, 2, r.err);
    assert.match(lines[0]!, pattern);
    assert.equal(lines[1], `see 'audiosocket ${args[0]} --help'`);
  }
});
