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
    const loud: boolean[] = []; // per frame the caller hears: is the bot talking?
    client.on('audio', (f) => loud.push(f.payload.some((b, i) => i % 2 === 1 && b !== 0 && b !== 0xff)));
    await until(() => loud.some(Boolean), 'the greeting');
    // The caller talks over it, in real time (the bot's speech detector needs real-time input):
    // a loud 500 Hz tone (a whole number of periods per frame) until the bot says it stopped.
    const noise = Buffer.alloc(320);
    for (let i = 0; i < 160; i++) noise.writeInt16LE(Math.round(12000 * Math.sin((2 * Math.PI * 500 * i) / 8000)), i * 2);
    const bargeIn = /barge-in, dropped (\d+) ms/;
    for (let k = 0; k < 200 && !bargeIn.test(out); k++) {
      client.sendAudio(noise);
      await sleep(20); // the caller's audio, in real time
    }
    await until(() => bargeIn.test(out), 'the bot to log the barge-in');
    const droppedMs = Number(bargeIn.exec(out)![1]);
    assert.ok(droppedMs > 0, 'the greeting was still playing: barge-in dropped the rest of it');
    // Then silence, in real time, until the bot answers (after 700 ms of it).
    const quiet = Buffer.alloc(320);
    const answering = /heard \d+ ms, answering/;
    for (let k = 0; k < 500 && !answering.test(out); k++) {
      client.sendAudio(quiet);
      await sleep(20);
    }
    await until(() => answering.test(out), 'the bot to answer');
    // Byte for byte what the caller heard: the greeting, cut short; quiet; the answer.
    await until(() => {
      const firstQuiet = loud.indexOf(false, loud.indexOf(true));
      return firstQuiet > 0 && loud.indexOf(true, firstQuiet) > 0;
    }, 'the answer to reach the caller');
    const greeting = loud.indexOf(false, loud.indexOf(true)) - loud.indexOf(true);
    assert.ok(greeting < 40, `the 800 ms greeting was cut: the caller heard ${greeting} frames of it`);
    await client.hangup();
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
