/**
 * The voice-bot example, run as users would run it, driven by the simulated Asterisk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '#lib/index.js';
import { until } from './helpers.js';
import { connectWebSocket } from '#lib/websocket/client.js';

const BOT = fileURLToPath(new URL('../examples/voice-bot.js', import.meta.url));
const ECHO = fileURLToPath(new URL('../examples/echo.js', import.meta.url));

test('voice-bot example: greets, stops talking when the caller speaks, answers after a pause', async () => {
  const child = spawn(process.execPath, [BOT], { env: { ...process.env, PORT: '0' }, stdio: 'pipe' });
  try {
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => /listening on 127\.0\.0\.1:(\d+)/.test(out), 'the bot to listen');
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const client = await connect({ port });
    const heard: Array<{ t: number; loud: boolean }> = [];
    const t0 = performance.now();
    client.on('audio', (f) =>
      heard.push({ t: performance.now() - t0, loud: f.payload.some((b, i) => i % 2 === 1 && b !== 0 && b !== 0xff) }),
    );
    await until(() => heard.some((h) => h.loud), 'the greeting');
    // The caller talks over it: a loud 500 Hz tone for 300 ms (a whole number of periods per frame).
    const noise = Buffer.alloc(320);
    for (let i = 0; i < 160; i++) noise.writeInt16LE(Math.round(12000 * Math.sin((2 * Math.PI * 500 * i) / 8000)), i * 2);
    const tSpeak = performance.now() - t0;
    for (let k = 0; k < 15; k++) {
      client.sendAudio(noise);
      await sleep(20); // the caller's audio, in real time
    }
    const afterBargeIn = heard.filter((h) => h.t > tSpeak + 150 && h.t < tSpeak + 300);
    assert.ok(afterBargeIn.length > 3 && afterBargeIn.every((h) => !h.loud), 'bot went quiet while the caller spoke');
    // Then silence: after 700 ms the bot answers.
    const quiet = Buffer.alloc(320);
    for (let k = 0; k < 60; k++) {
      client.sendAudio(quiet);
      await sleep(20); // the caller's audio, in real time
    }
    const tQuiet = tSpeak + 300;
    assert.ok(
      heard.some((h) => h.t > tQuiet + 700 && h.loud),
      'bot answered after the pause',
    );
    await client.hangup();
    await until(() => /heard \d+ ms, answering/.test(out), 'the bot to log its answer');
    assert.match(out, /barge-in, dropped \d+ ms/);
    assert.match(out, /heard \d+ ms, answering/);
  } finally {
    child.kill('SIGINT');
    await once(child, 'exit');
  }
});

test('echo example serves chan_websocket calls with the same handler (WS_PORT)', async (t) => {
  const child = spawn(process.execPath, [ECHO], { env: { ...process.env, PORT: '0', WS_PORT: '0' }, stdio: 'pipe' });
  t.after(async () => {
    child.kill('SIGINT');
    if (child.exitCode === null) await once(child, 'exit');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const re = /chan_websocket listening on ws:\/\/[^:]+:(\d+)/;
  await until(() => re.test(out), 'the example to listen');
  const client = await connectWebSocket({ url: `ws://127.0.0.1:${re.exec(out)![1]}/media`, format: 'ulaw' });
  t.after(() => client.drop());
  for (let i = 0; i < 5; i++) client.sendAudio(Buffer.alloc(160, 0x33));
  await until(() => client.stats.framesPlayed >= 5, 'five frames played');
  assert.equal(client.violations.length, 0);
  assert.match(out, /websocket call /);
});
