/**
 * chan_websocket without MARK_MEDIA (Asterisk before 20.18/22.8/23.2): play(), mark() and
 * drained() still complete, by our playout clock, against the simulated old Asterisk.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Call, type CallWarning, type ServerOptions } from '#lib/index.js';
import { connectWebSocket, type AsteriskWebSocketClient, type WebSocketConnectOptions } from '#lib/websocket/client.js';
import type { WebSocketCall } from '#lib/websocket/call.js';
import type { MediaCommandName } from '#lib/protocol/websocket.js';
import { signal, until } from './helpers.js';

async function dialOne(t: TestContext, websocket: Partial<NonNullable<ServerOptions['websocket']>>, o: Partial<WebSocketConnectOptions>) {
  let call: WebSocketCall | undefined;
  const warnings: CallWarning[] = [];
  const server = createServer(
    (c: Call) => {
      call = c as WebSocketCall;
      c.on('warning', (w) => warnings.push(w));
    },
    { websocket: { port: 0, ...websocket } as ServerOptions['websocket'] },
  );
  await server.listen({ port: 0 });
  t.after(() => server.close());
  const client: AsteriskWebSocketClient = await connectWebSocket({
    url: `ws://127.0.0.1:${server.websocketAddress()!.port}/media`,
    format: 'slin16',
    ...o,
  });
  t.after(() => client.drop());
  const commands: MediaCommandName[] = [];
  client.on('command', (c) => commands.push(c.command));
  await until(() => call !== undefined, 'the call');
  return { call: call!, client, warnings, commands };
}

const markViolations = (c: AsteriskWebSocketClient): number => c.violations.filter((v) => v.message.startsWith('MARK_MEDIA')).length;

test('old Asterisk (no MARK_MEDIA): the first unanswered mark switches the call to clock completion; play() and mark() resolve', async (t) => {
  const { call, client, warnings } = await dialOne(t, { markTimeoutMs: 300 }, { controlFormat: 'plain-text', noMarkMedia: true });
  assert.equal(call.completionMode, 'probing', 'no MARK_MEDIA answered yet');
  const t0 = performance.now();
  const first = call.play(signal(640 * 25)); // 500 ms
  const marked = call.mark('after');
  const r = await first;
  assert.equal(r.status, 'done');
  assert.ok(performance.now() - t0 >= 400, 'play() waited for the audio to play');
  assert.equal(await marked, true);
  assert.equal(call.completionMode, 'clock');
  assert.deepEqual(
    warnings.map((w) => w.code),
    ['MARKS_UNSUPPORTED'],
  );
  // From now on: no more MARK_MEDIA (Asterisk would log each one), plays complete by the clock.
  const sentBefore = markViolations(client);
  assert.ok(sentBefore >= 1);
  const t1 = performance.now();
  const second = await call.play(signal(640 * 25));
  assert.equal(second.status, 'done');
  assert.ok(performance.now() - t1 >= 400, `the second play() resolved after ${(performance.now() - t1).toFixed(0)} ms`);
  await call.drained();
  await until(() => client.queueLength === 0, 'Asterisk queue empty');
  assert.ok(client.stats.framesPlayed >= 50, `${client.stats.framesPlayed} frames played`);
  assert.equal(markViolations(client), sentBefore);
  assert.ok(
    client.violations.every((v) => v.code === 'UNKNOWN_COMMAND'),
    JSON.stringify(client.violations),
  );
});

test("completion: 'clock' never sends MARK_MEDIA; QUEUE_DRAINED settles the end; flush still cancels", async (t) => {
  const { call, client, warnings, commands } = await dialOne(
    t,
    { completion: 'clock' },
    { controlFormat: 'plain-text', noMarkMedia: true },
  );
  assert.equal(call.completionMode, 'clock');
  const r = await call.play(signal(640 * 10));
  assert.equal(r.status, 'done');
  assert.equal(await call.mark('m'), true);
  await call.drained();
  assert.ok(commands.includes('REPORT_QUEUE_DRAINED'));
  assert.ok(!commands.includes('MARK_MEDIA'));
  assert.equal(client.violations.length, 0, JSON.stringify(client.violations));
  const long = call.play(signal(640 * 150)); // 3 s
  const end = call.mark('end');
  await until(() => client.stats.framesPlayed >= 20, 'some played');
  call.flush();
  assert.equal((await long).status, 'interrupted');
  assert.equal(await end, false);
  assert.equal(warnings.length, 0);
});

test('a current Asterisk answers marks: the call stays on MARK_MEDIA, no warning', async (t) => {
  for (const controlFormat of ['plain-text', 'json'] as const) {
    const { call, client, warnings } = await dialOne(t, { markTimeoutMs: 300 }, { controlFormat });
    assert.equal(call.completionMode, 'probing');
    const r = await call.play(signal(640 * 25));
    assert.equal(r.status, 'done');
    assert.ok(client.stats.framesPlayed >= 25);
    // The first progress mark was answered long before play() resolved: the probe is over for good.
    assert.equal(call.completionMode, 'marks');
    assert.equal(warnings.length, 0);
    assert.equal(client.violations.length, 0);
  }
});
