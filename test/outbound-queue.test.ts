/**
 * The outbound queue on its own (no clock, no I/O): what `empty` says as entries come and go,
 * and what a play reports when its frames were cut from the middle of one piece of audio (the
 * head cursor writes its progress back to the play only when asked).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { OutboundQueue } from '#lib/outbound/queue.js';
import { formatOfKind } from '#lib/outbound/paced.js';

const SLIN8 = formatOfKind(0x10);
const FRAME = 320; // 20 ms of slin 8 kHz

function queue(): OutboundQueue {
  return new OutboundQueue({ frameMs: 20, prefetchMs: 200, onReady: () => {}, onMark: () => {} });
}

/** Cuts the next frame the way the paced outbound does (behind room for a header). */
function cut(q: OutboundQueue): Buffer {
  const n = q.peek();
  assert.ok(n > 0, 'a frame is ready');
  const message = Buffer.alloc(3 + n);
  for (const c of q.takeInto(message, 3)) c.done();
  return message.subarray(3);
}

test('empty: false from the first entry queued, true once the last frame or mark has been taken', async () => {
  const q = queue();
  assert.equal(q.empty, true);
  q.write(Buffer.alloc(3 * FRAME, 1), SLIN8);
  assert.equal(q.empty, false);
  cut(q);
  cut(q);
  assert.equal(q.empty, false, 'a frame is left');
  cut(q);
  assert.equal(q.empty, true);

  const reached = q.mark('m');
  assert.equal(q.empty, false, 'a mark is queued');
  const marks = q.takeLeadingMarks();
  assert.equal(marks.length, 1);
  assert.equal(q.empty, true);
  marks[0]!.done();
  assert.equal(await reached, true);

  const played = q.play(Buffer.alloc(2 * FRAME, 2), undefined, SLIN8);
  assert.equal(q.empty, false, 'a play not yet read is queued');
  await tick();
  cut(q);
  cut(q);
  for (const c of q.takeLeadingMarks()) c.done(); // the play's end, once its last frame has played
  assert.equal((await played).status, 'done');
  assert.equal(q.empty, true);

  // A streamed play still waiting for its source is queued; a flush leaves nothing.
  const stuck = q.play(
    (async function* never() {
      await new Promise(() => {});
      yield Buffer.alloc(0);
    })(),
    undefined,
    SLIN8,
  );
  assert.equal(q.empty, false);
  q.flush('flush');
  assert.equal(q.empty, true);
  assert.equal((await stuck).reason, 'flush');
});

test('a play interrupted after frames cut from the middle of its audio reports exactly those frames', async () => {
  const q = queue();
  const audio = Buffer.alloc(10 * FRAME);
  for (let i = 0; i < 10; i++) audio.fill(i + 1, i * FRAME, (i + 1) * FRAME);
  const played = q.play(audio, undefined, SLIN8);
  await tick();
  for (let i = 0; i < 4; i++) assert.equal(cut(q)[0], i + 1, `frame ${i} in order`);
  assert.equal(q.queuedMs, 120);
  const { droppedMs } = q.flush('flush');
  assert.equal(droppedMs, 120);
  assert.deepEqual(await played, { status: 'interrupted', reason: 'flush', framesSent: 4, sentMs: 80 });
});

test('a play cut whole, with a write behind it, reports every frame, and the write follows in order', async () => {
  const q = queue();
  const played = q.play(Buffer.alloc(5 * FRAME + 160, 7), undefined, SLIN8);
  await tick();
  q.write(Buffer.alloc(FRAME, 9), SLIN8);
  for (let i = 0; i < 5; i++) assert.equal(cut(q)[0], 7);
  const joined = cut(q); // the play's last half frame, then the write's first half
  assert.equal(joined[0], 7);
  assert.equal(joined[FRAME - 1], 9);
  assert.deepEqual(await played, { status: 'done', framesSent: 6, sentMs: 110 });
  assert.equal(cut(q).length, 160, 'the rest of the write');
  assert.equal(q.empty, true);
});
