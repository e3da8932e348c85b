/**
 * The frames() iterator of a call over real TCP: ending a waiting next(), and the bounded
 * queue that keeps the newest frames.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { createServer, connect, type AudioFrame, type Call, type ServerOptions } from '#lib/index.js';
import { until } from './helpers.js';

async function oneCall(t: TestContext, options: ServerOptions) {
  const server = createServer({ keepAlive: false, ...options });
  t.after(() => server.close());
  const { port } = await server.listen({ port: 0 });
  const callP = once(server, 'call');
  const client = await connect({ port });
  t.after(() => client.hangup());
  const [call] = (await callP) as [Call];
  return { client, call };
}

describe('call.frames()', () => {
  test('return() on a frames iterator ends a next() that is waiting', async (t) => {
    const { call } = await oneCall(t, {});
    const it = call.frames()[Symbol.asyncIterator]();
    const pending = it.next();
    await it.return!();
    assert.deepEqual(await pending, { value: undefined, done: true });
  });

  test('the iterator drops old frames without keeping them in memory, and counts them', async (t) => {
    const { client, call } = await oneCall(t, { iteratorQueueFrames: 10 });
    const it = call.frames()[Symbol.asyncIterator]();
    t.after(() => it.return!());
    for (let i = 0; i < 3000; i++) {
      const f = Buffer.alloc(320);
      f.writeUInt32LE(i, 0);
      client.sendAudio(f);
    }
    await until(() => call.stats.audioIn === 3000, 'all 3000 frames in');
    const got: number[] = [];
    for (let i = 0; i < 10; i++) got.push(((await it.next()).value as AudioFrame).payload.readUInt32LE(0));
    assert.deepEqual(
      got,
      Array.from({ length: 10 }, (_, i) => 2990 + i),
      'the newest frames are kept',
    );
    assert.equal(call.stats.droppedIn, 2990);
  });
});
