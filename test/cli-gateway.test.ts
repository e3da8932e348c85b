/**
 * `audiosocket gateway` spawned as a real process: a simulated Asterisk call on each driver,
 * bridged to a Twilio-protocol echo bot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from '#lib/index.js';
import { connectWebSocket } from '#lib/websocket/client.js';
import { runCli, signal, spawnCli, until } from './helpers.js';
import { startTwilioBot } from './twilio-bot.js';

test('gateway CLI: each driver reaches the echo bot, hears itself back, and gets one line per call, bot connection and end', async (t) => {
  const bot = await startTwilioBot({ echo: true });
  t.after(() => bot.close());
  const cli = await spawnCli([
    'gateway',
    '--bot',
    bot.url,
    '--port',
    '0',
    '--websocket',
    '0',
    '--param',
    'tenant=acme',
    '--header',
    'X-Key: k1',
  ]);
  t.after(async () => {
    if (cli.child.exitCode === null) {
      cli.child.kill('SIGKILL');
      await once(cli.child, 'exit');
    }
  });
  await until(() => cli.lines.some((l) => l.includes('listening for chan_websocket')), 'the chan_websocket listening line');
  const wsPort = Number(/:(\d+)$/.exec(cli.lines.find((l) => l.includes('listening for chan_websocket'))!)![1]);

  const speech = signal(320 * 20, 3);
  const as = await connect({ port: cli.port });
  const asHeard: Buffer[] = [];
  as.on('audio', (f) => f.payload.some((b) => b !== 0) && asHeard.push(Buffer.from(f.payload)));
  const ws = await connectWebSocket({ url: `ws://127.0.0.1:${wsPort}/media`, format: 'ulaw' });
  const wsHeard: Buffer[] = [];
  ws.on('played', (f) => wsHeard.push(Buffer.from(f)));
  for (let i = 0; i < 20; i++) as.sendAudio(speech.subarray(i * 320, (i + 1) * 320));
  const ulaw = Buffer.from(speech.subarray(0, 1600)).fill(0x55);
  for (let i = 0; i < 10; i++) ws.sendAudio(ulaw.subarray(i * 160, (i + 1) * 160));
  await until(() => asHeard.length >= 20 && wsHeard.filter((f) => f.some((b) => b !== 0xff)).length >= 10, 'both callers hear the bot');
  // u-law to the bot and back: the chan_websocket caller hears its own bytes.
  assert.deepEqual(Buffer.concat(wsHeard.filter((f) => f.some((b) => b !== 0xff))).subarray(0, 1600), ulaw);
  assert.equal(bot.streams.length, 2);
  for (const s of bot.streams) {
    assert.equal(s.start!.start.customParameters.tenant, 'acme');
    assert.equal(s.headers['x-key'], 'k1');
    assert.deepEqual(s.violations, []);
  }
  await as.hangup();
  await ws.hangup();
  await until(() => cli.lines.filter((l) => /^bot {2}\S+ caller-hangup: call ended/.test(l)).length === 2, 'two bot end lines');
  assert.equal(
    cli.lines.filter((l) => /^bot {2}\S+ connected to ws:\/\/127\.0\.0\.1:\d+\/media in \d+ ms \(streamSid=MZ/.test(l)).length,
    2,
  );
  cli.child.kill('SIGINT');
  const [code] = await once(cli.child, 'exit');
  assert.equal(code, 0);
});

test('gateway CLI: mistakes get one line', async () => {
  const cases: [string[], RegExp][] = [
    [['gateway'], /no bot given: audiosocket gateway --bot ws:\/\/HOST:PORT\/PATH/],
    [['gateway', '--bot', 'https://bot.example.com/media'], /a bot is reached over WebSocket; use wss:\/\/bot\.example\.com\/media/],
    [['gateway', '--bot', 'bot.example.com'], /is not a URL/],
    [['gateway', '--bot', 'ws://x/', '--header', 'nocolon'], /--header "nocolon": write it as "NAME: VALUE"/],
    [['gateway', '--bot', 'ws://x/', '--bot-ca', '/nonexistent.pem'], /--bot-ca \/nonexistent\.pem: cannot read it \(ENOENT\)/],
    [['gateway', '--bot', 'ws://x/', '--fallback', '/nonexistent.wav'], /--fallback: cannot play \/nonexistent\.wav/],
  ];
  for (const [args, pattern] of cases) {
    const { code, err } = await runCli(args);
    assert.equal(code, 2, args.join(' '));
    assert.match(err, pattern);
    assert.equal(err.trim().split('\n').length, 2, `one line and the --help pointer: ${err}`);
  }
});
