/**
 * `audiosocket inspect` as a real process: diagnosis of the u-law trap and of connect-and-close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '#lib/index.js';
import { connectWebSocket } from '#lib/websocket/client.js';
import { spawnCli, until } from './helpers.js';

test('inspect --json: u-law under 0x10 and a connection closed before the UUID are diagnosed with their fixes', async () => {
  const cli = await spawnCli(['inspect', '--host', '127.0.0.1', '--port', '0', '--json']);
  try {
    const client = await connect({ port: cli.port, uuid: '12345678-1234-4234-8234-123456789abc' });
    let silence = 0;
    client.on('audio', (f) => (silence += f.payload.every((b) => b === 0) ? 1 : 0));
    const t0 = performance.now();
    for (let k = 0; k < 60; k++) {
      client.sendAudio(Buffer.alloc(160, k % 2 ? 0xfe : 0x7e));
      if (k === 25) client.sendDtmf('9');
      const wait = t0 + (k + 1) * 20 - performance.now();
      if (wait > 0) await sleep(wait);
    }
    await client.hangup();
    const bare = net.connect({ host: '127.0.0.1', port: cli.port });
    await once(bare, 'connect');
    bare.end();
    await until(
      () => cli.lines.some((l) => l.includes('"event":"report"')) && cli.lines.some((l) => l.includes('"event":"handshakeFailed"')),
      'the report and the handshake failure',
    );
    const events = cli.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const report = events.find((e) => e.event === 'report')!;
    assert.ok(report, cli.lines.join('\n'));
    assert.equal(report.uuid, '12345678-1234-4234-8234-123456789abc');
    assert.deepEqual(report.kinds, { '0x10 (slin)': { '160': 60 } });
    assert.match(report.format as string, /G\.711 ulaw/);
    assert.match((report.advice as string[])[0]!, /c\(slin\)/);
    assert.deepEqual(
      (report.dtmf as Array<{ digit: string }>).map((d) => d.digit),
      ['9'],
    );
    assert.equal(report.reason, 'remote-hangup');
    const p50 = (report.interArrival as { p50Ms: number }).p50Ms;
    assert.ok(p50 > 15 && p50 < 25, `p50 ${p50}`);
    assert.ok(silence > 30, 'inspect answers with keep-alive silence');
    const failed = events.find((e) => e.event === 'handshakeFailed')!;
    assert.equal(failed.reason, 'closed-before-uuid');
    assert.ok(events.every((e) => typeof e.time === 'string'));
  } finally {
    cli.child.kill('SIGINT');
    await once(cli.child, 'exit');
  }
});

test('inspect: a chan_websocket call that sends no audio is reported as such, though its format is known from the start', async () => {
  const cli = await spawnCli(['inspect', '--host', '127.0.0.1', '--port', '0', '--websocket', '0', '--json']);
  try {
    await until(() => cli.lines.some((l) => l.includes('"transport":"websocket"')), 'the chan_websocket listener');
    const listening = cli.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.transport === 'websocket')!;
    const url = `ws://127.0.0.1:${String(listening.port)}`;
    const client = await connectWebSocket({ url: `${url}/media`, format: 'slin16' });
    await client.hangup();
    await until(() => cli.lines.some((l) => l.includes('"event":"report"')), 'the report');
    const report = cli.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.event === 'report')!;
    assert.equal(report.format, 'no audio received');
  } finally {
    cli.child.kill('SIGINT');
    await once(cli.child, 'exit');
  }
});
