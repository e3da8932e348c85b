/**
 * The simulated Asterisk client (connect()): what it measures about the server's byte stream.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { connect, encodeMessage, type AsteriskClient, type ClientViolation } from '#lib/index.js';
import { until } from './helpers.js';

/**
 * The client stamps reads with performance.now() and takes no clock, so the test sets the time
 * by hand: each read sees exactly the time the test chose, however loaded the machine is.
 */
function handClock(t: { after(fn: () => void): void }): { set(ms: number): void } {
  const real = performance.now.bind(performance);
  let now = real();
  performance.now = () => now;
  t.after(() => {
    performance.now = real;
  });
  return {
    set(ms: number) {
      now = ms;
    },
  };
}

/** A raw TCP peer standing in for our server, and the client connected to it. */
async function peer(t: { after(fn: () => unknown): void }): Promise<{ s: net.Socket; client: AsteriskClient }> {
  let serverSide: net.Socket | undefined;
  const server = net.createServer((s) => {
    s.on('error', () => {});
    serverSide = s;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const client = await connect({ port: (server.address() as net.AddressInfo).port });
  t.after(async () => {
    await client.hangup();
    serverSide?.destroy();
    await new Promise((r) => server.close(r));
  });
  while (serverSide === undefined) await once(server, 'connection');
  return { s: serverSide, client };
}

/** Writes `msg` in pieces of `size` bytes, piece i read by the client at time `at(i)`. */
async function sendInPieces(
  s: net.Socket,
  client: AsteriskClient,
  clock: { set(ms: number): void },
  msg: Buffer,
  size: number,
  at: (i: number) => number,
): Promise<void> {
  const base = client.stats.bytesIn;
  for (let i = 0; i * size < msg.length; i++) {
    clock.set(at(i));
    s.write(msg.subarray(i * size, (i + 1) * size));
    const want = base + Math.min(msg.length, (i + 1) * size);
    await until(() => client.stats.bytesIn >= want, `the client to read piece ${i}`);
  }
}

describe('simulated Asterisk (connect)', () => {
  test('the 5 ms limit is measured per gap, not per message', async (t) => {
    const { s, client } = await peer(t);
    const clock = handClock(t);
    const msg = encodeMessage(0x10, Buffer.alloc(320, 1));
    // Eight pieces 1 ms apart: 7 ms in all, but no gap near 5 ms.
    await sendInPieces(s, client, clock, msg, 41, (i) => 1000 + i);
    assert.deepEqual(client.violations, []);
    // The same message with one 6 ms gap is a violation (so the clock above was the one measured).
    await sendInPieces(s, client, clock, msg, 41, (i) => 2000 + i + (i >= 4 ? 5 : 0));
    const violations = client.violations as readonly ClientViolation[]; // (the assertion above narrowed the type)
    assert.deepEqual(
      violations.map((v) => v.code),
      ['SPLIT_MESSAGE'],
    );
    assert.match(violations[0]!.message, /6\.0 ms after the previous one/);
    assert.equal(client.connected, true);
  });
});
