/**
 * The memory AudioSocket connections give for their messages (shared by all of them), over real
 * sockets on 127.0.0.1: reused only once the socket has taken everything written before, so a
 * message the kernel could not take at once is never overwritten by the next, of any call.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { AudioSocketConnection, type AudioSocketConnectionEvents } from '#lib/audiosocket/connection.js';
import { MessageParser } from '#lib/protocol/parser.js';
import { ManualClock, systemClock } from '#lib/clock.js';
import { FrameScheduler } from '#lib/outbound/scheduler.js';
import { PacedOutbound, type OutboundOptions } from '#lib/outbound/paced.js';
import { DEFAULT_PACING } from '#lib/outbound/pacer.js';
import type { OutboundEvents } from '#lib/outbound/policy.js';
import { until } from './helpers.js';

const MESSAGE = 323;

const noEvents: AudioSocketConnectionEvents = {
  protocolError() {},
  listenerError() {},
  blocked() {},
  notReading() {},
  remoteEnd() {},
  socketError() {},
  close() {},
};

/** Our side of a connection (wrapped in an AudioSocketConnection) and the peer's socket, collecting what it reads. */
async function connection(): Promise<{ conn: AudioSocketConnection; ours: net.Socket; received: () => Buffer; close: () => void }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = once(server, 'connection');
  const peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [[ours]] = (await Promise.all([accepted, once(peer, 'connect')])) as [[net.Socket], unknown];
  server.close();
  const chunks: Buffer[] = [];
  peer.on('data', (c: Buffer) => chunks.push(c));
  const handover = { parser: new MessageParser(() => {}), attach() {} };
  const conn = new AudioSocketConnection(
    ours,
    handover,
    systemClock,
    { maxBufferedBytes: 1 << 30, peerNotReadingTimeout: 0, hangupTimeout: 1000 },
    noEvents,
    () => {},
    undefined,
  );
  return {
    conn,
    ours,
    received: () => Buffer.concat(chunks),
    close: () => {
      ours.destroy();
      peer.destroy();
    },
  };
}

/** Message `i`: the header of a 320-byte slin message, then 320 bytes of `i`. */
function fill(memory: Buffer, i: number): Buffer {
  memory[0] = 0x10;
  memory.writeUInt16BE(MESSAGE - 3, 1);
  memory.fill(i, 3);
  return memory;
}

function assertMessages(bytes: Buffer, n: number): void {
  assert.equal(bytes.length, n * MESSAGE);
  for (let i = 0; i < n; i++) {
    const m = bytes.subarray(i * MESSAGE, (i + 1) * MESSAGE);
    assert.deepEqual(m, fill(Buffer.alloc(MESSAGE), i), `message ${i} as it was written`);
  }
}

test('while the socket holds bytes it has not sent, each message gets new memory, and each arrives as written', async () => {
  const { conn, ours, received, close } = await connection();
  try {
    // Corked, the socket keeps every write unsent: what a peer that reads slowly leaves behind.
    ours.cork();
    const memories: Buffer[] = [];
    for (let i = 0; i < 10; i++) {
      const m = fill(conn.messageMemory(MESSAGE), i);
      memories.push(m);
      assert.equal(conn.write(m), true);
      assert.ok(ours.writableLength > 0, 'the message is still held by the socket');
    }
    assert.equal(new Set(memories).size, 10, 'no memory handed out twice while it was held');
    ours.uncork();
    await until(() => received().length >= 10 * MESSAGE, 'the ten messages');
    assertMessages(received(), 10);
  } finally {
    close();
  }
});

test('once the socket has taken everything, the memory is reused for the next message', async () => {
  const { conn, ours, received, close } = await connection();
  try {
    const first = fill(conn.messageMemory(MESSAGE), 0);
    conn.write(first);
    // An idle loopback socket takes a message at once.
    assert.equal(ours.writableLength, 0);
    const second = conn.messageMemory(MESSAGE);
    assert.equal(second, first, 'the same memory');
    conn.write(fill(second, 1));
    assert.notEqual(conn.messageMemory(MESSAGE + 2), second, 'a message of another size gets memory of its size');
    await until(() => received().length >= 2 * MESSAGE, 'both messages');
    assertMessages(received(), 2);
  } finally {
    close();
  }
});

test('the memory is shared by every connection, and one whose socket keeps a message takes it from the others', async () => {
  const a = await connection();
  const b = await connection();
  try {
    const first = fill(a.conn.messageMemory(MESSAGE), 0);
    a.conn.write(first);
    assert.equal(b.conn.messageMemory(MESSAGE), first, 'what a took at once, b gets next');
    a.ours.cork();
    const held = fill(a.conn.messageMemory(MESSAGE), 1);
    a.conn.write(held);
    const other = b.conn.messageMemory(MESSAGE);
    assert.notEqual(other, held, 'not the memory a still holds');
    b.conn.write(fill(other, 7));
    a.ours.uncork();
    await until(() => a.received().length >= 2 * MESSAGE && b.received().length >= MESSAGE, 'the messages');
    assertMessages(a.received(), 2);
    assert.deepEqual(b.received(), fill(Buffer.alloc(MESSAGE), 7));
  } finally {
    a.close();
    b.close();
  }
});

test("a call's `sent` listener that makes another call send still reads its own call's audio", async () => {
  const a = await connection();
  const b = await connection();
  const options: OutboundOptions = {
    kind: 0x10,
    keepAliveKind: 0x10,
    keepAlive: false,
    prefetchMs: 200,
    highWaterMarkMs: 1000,
    maxQueuedMs: 30_000,
    pacing: { frameMs: 20, ...DEFAULT_PACING },
  };
  const quiet: OutboundEvents = { sent() {}, mark() {}, drain() {}, dropped() {}, warning() {} };
  const scheduler = new FrameScheduler(new ManualClock(1000));
  const outB = new PacedOutbound(options, scheduler, quiet, b.conn);
  const seen: Buffer[] = [];
  const outA = new PacedOutbound(
    options,
    scheduler,
    {
      ...quiet,
      sent(payload) {
        // Two frames from b: the second is cut from its queue into the shared message memory.
        if (seen.length === 0) outB.write(Buffer.alloc(640, 0xbb), outB.format);
        seen.push(Buffer.from(payload));
      },
    },
    a.conn,
  );
  outA.reportSent = true;
  try {
    outA.write(Buffer.alloc(640, 0xaa), outA.format);
    assert.ok(seen.length > 0, 'a sent a frame');
    for (const payload of seen)
      assert.ok(
        payload.every((x) => x === 0xaa),
        "a's listener sees a's audio",
      );
  } finally {
    outA.close();
    outB.close();
    a.close();
    b.close();
  }
});

test('memory is shared for a bounded number of message sizes; other sizes get memory of their own', async () => {
  const { conn, close } = await connection();
  try {
    let shared = 0;
    for (let size = 1001; size < 1001 + 2 * 40; size += 2) {
      if (conn.messageMemory(size) === conn.messageMemory(size)) shared++;
    }
    assert.ok(shared < 40, `some of 40 sizes are not kept (${shared} were)`);
    assert.ok(shared <= 16, `at most 16 sizes kept, got ${shared}`);
  } finally {
    close();
  }
});
