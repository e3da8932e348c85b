/** The shared bounded async queue behind the frame, call and write-stream iterators. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncQueue } from '#lib/async-queue.js';

describe('AsyncQueue', () => {
  test('delivers in order, waits for the next item, ends after what is queued', async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.push(2);
    const got: number[] = [];
    const consumer = (async () => {
      for await (const n of q) got.push(n);
    })();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(got, [1, 2]);
    q.push(3);
    q.end();
    q.push(4); // after end: ignored
    await consumer;
    assert.deepEqual(got, [1, 2, 3]);
  });

  test('bounded: the oldest are dropped and reported, memory stays at the limit', async () => {
    const dropped: number[] = [];
    const q = new AsyncQueue<number>({ limit: 3, onDrop: (n) => dropped.push(n) });
    for (let i = 0; i < 10; i++) q.push(i);
    assert.equal(q.size, 3);
    assert.deepEqual(dropped, [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual([(await q.next()).value, (await q.next()).value, (await q.next()).value], [7, 8, 9]);
  });

  test('onTake fires as the consumer takes each item; return() ends a waiting consumer', async () => {
    const taken: string[] = [];
    const q = new AsyncQueue<string>({ onTake: (s) => taken.push(s) });
    q.push('a');
    const it = q[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: 'a', done: false });
    assert.deepEqual(taken, ['a']);
    const waiting = it.next();
    await it.return!();
    assert.deepEqual(await waiting, { value: undefined, done: true });
    assert.equal(q.ended, true);
  });
});
