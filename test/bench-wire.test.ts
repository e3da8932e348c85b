import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Decoder, encode, encodeUuid, writeHeader, HEADER_BYTES } from '../bench/lib/wire.js';
import { Histogram } from '../bench/lib/hist.js';
import { splitCommand } from '../bench/lib/proc.js';
import { startFloorEcho } from '../bench/floor-echo.js';
import { startFloorPacedEcho } from '../bench/floor-paced-echo.js';
import { runLoad } from '../bench/loadgen.js';
import { prng } from './audio-helpers.js';

function sampleMessages(rand: () => number, n: number): Array<{ kind: number; payload: Buffer }> {
  const kinds = [0x00, 0x01, 0x03, 0x10, 0x12, 0x18, 0xff, 0x42];
  const out: Array<{ kind: number; payload: Buffer }> = [];
  for (let i = 0; i < n; i++) {
    const kind = kinds[Math.floor(rand() * kinds.length)]!;
    const r = rand();
    const len = r < 0.1 ? 0 : r < 0.2 ? 1 : r < 0.9 ? Math.floor(rand() * 700) : r < 0.97 ? 256 * Math.floor(rand() * 256) : 65535;
    const payload = Buffer.allocUnsafe(len);
    for (let j = 0; j < len; j++) payload[j] = Math.floor(rand() * 256);
    out.push({ kind, payload });
  }
  return out;
}

test('decoder: header bytes are kind + big-endian length', () => {
  const b = encode(0x10, Buffer.alloc(320));
  assert.deepEqual([...b.subarray(0, 3)], [0x10, 0x01, 0x40]);
  const h = Buffer.alloc(3);
  writeHeader(h, 0, 0x12, 65535);
  assert.deepEqual([...h], [0x12, 0xff, 0xff]);
  assert.throws(() => writeHeader(h, 0, 0x10, 65536), RangeError);
});

test('decoder: same messages out for any chunking (incl. 1-byte chunks)', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rand = prng(seed);
    const msgs = sampleMessages(rand, 60);
    const stream = Buffer.concat(msgs.map((m) => encode(m.kind, m.payload)));
    const got: Array<{ kind: number; frame: Buffer }> = [];
    const d = new Decoder((kind, frame) => got.push({ kind, frame: Buffer.from(frame) }));
    const mode = seed % 4; // 0: random sizes, 1: single bytes, 2: sizes 1..3, 3: whole stream
    let off = 0;
    while (off < stream.length) {
      const size = mode === 0 ? 1 + Math.floor(rand() * 900) : mode === 1 ? 1 : mode === 2 ? 1 + Math.floor(rand() * 3) : stream.length;
      d.push(stream.subarray(off, off + size));
      off += size;
    }
    assert.equal(got.length, msgs.length, `seed ${seed}`);
    assert.equal(d.pendingBytes, 0);
    assert.equal(d.messages, msgs.length);
    for (let i = 0; i < msgs.length; i++) {
      assert.equal(got[i]!.kind, msgs[i]!.kind, `seed ${seed} message ${i}`);
      assert.equal(got[i]!.frame.length, HEADER_BYTES + msgs[i]!.payload.length);
      assert.ok(got[i]!.frame.subarray(HEADER_BYTES).equals(msgs[i]!.payload), `seed ${seed} message ${i} payload`);
      assert.ok(got[i]!.frame.equals(encode(msgs[i]!.kind, msgs[i]!.payload)), `seed ${seed} message ${i} frame`);
    }
  }
});

test('decoder: incomplete message is held, not emitted', () => {
  let n = 0;
  const d = new Decoder(() => n++);
  const m = encode(0x10, Buffer.alloc(10, 7));
  d.push(m.subarray(0, 2));
  assert.equal(d.pendingBytes, 2);
  d.push(m.subarray(2, 12));
  assert.equal(n, 0);
  assert.equal(d.pendingBytes, 12);
  d.push(m.subarray(12));
  assert.equal(n, 1);
  assert.equal(d.pendingBytes, 0);
});

test('decoder: a header-only message (hangup) is emitted as soon as its 3rd byte arrives', () => {
  const kinds: number[] = [];
  const d = new Decoder((kind) => kinds.push(kind));
  for (const byte of [0x00, 0x00, 0x00]) d.push(Buffer.from([byte]));
  assert.deepEqual(kinds, [0x00]);
  d.push(Buffer.from([0x10, 0x00]));
  d.push(Buffer.from([0x00]));
  assert.deepEqual(kinds, [0x00, 0x10]);
  assert.equal(d.pendingBytes, 0);
});

test('histogram: percentiles within bucket precision', () => {
  const h = new Histogram();
  for (let i = 1; i <= 10000; i++) h.record(i / 100); // 0.01 .. 100 ms
  const s = h.summary();
  assert.equal(s.count, 10000);
  assert.equal(s.min, 0.01);
  assert.equal(s.max, 100);
  assert.ok(Math.abs(s.p50 - 50) / 50 < 0.02, `p50 ${s.p50}`);
  assert.ok(Math.abs(s.p99 - 99) / 99 < 0.02, `p99 ${s.p99}`);
});

test('splitCommand keeps quoted words together', () => {
  assert.deepEqual(splitCommand(`node a.js --x "b c" --y='d e' {port}`), ['node', 'a.js', '--x', 'b c', '--y=d e', '{port}']);
});

test('floor echo: byte-exact over TCP, 20 calls x 2 s, split writes', async () => {
  const floor = await startFloorEcho({ host: '127.0.0.1', port: 0 });
  try {
    const r = await runLoad({ port: floor.port, calls: 20, durationS: 2, rampS: 0.1, style: 'split', graceMs: 300, dtmfEveryMs: 500 });
    assert.deepEqual(r.problems, []);
    assert.equal(r.calls.connected, 20);
    assert.ok(r.frames.sent >= 20 * 90, `sent ${r.frames.sent}`);
    assert.equal(r.frames.verified, r.frames.sent);
    assert.equal(r.frames.lost, 0);
    assert.equal(r.frames.corrupted, 0);
    assert.equal(r.frames.outOfOrder, 0);
    assert.equal(r.frames.otherKinds, 0, 'DTMF must not be echoed');
    assert.ok(r.frames.dtmfSent > 0);
    assert.equal(r.calls.closedBy.client, 20);
    assert.ok(r.rttMs.count === r.frames.verified && r.rttMs.p50 > 0);
    assert.ok(r.ok);
  } finally {
    await floor.close();
  }
});

test('paced floor echo: byte-exact over TCP, 20 calls x 2 s, coalesced input', async () => {
  const floor = await startFloorPacedEcho({ host: '127.0.0.1', port: 0 });
  try {
    const r = await runLoad({ port: floor.port, calls: 20, durationS: 2, rampS: 0.1, style: 'coalesce', graceMs: 300, dtmfEveryMs: 500 });
    assert.deepEqual(r.problems, []);
    assert.equal(r.calls.connected, 20);
    assert.ok(r.frames.sent >= 20 * 90, `sent ${r.frames.sent}`);
    assert.equal(r.frames.verified, r.frames.sent);
    assert.equal(r.frames.lost, 0);
    assert.equal(r.frames.outOfOrder, 0);
    assert.equal(r.frames.otherKinds, 0, 'DTMF must not be echoed');
    assert.ok(r.ok);
  } finally {
    await floor.close();
  }
});

test('paced floor echo holds a burst to the lead: the fourth of six frames sent at once waits for a later pass', async () => {
  const floor = await startFloorPacedEcho({ host: '127.0.0.1', port: 0 });
  const socket = net.connect({ host: '127.0.0.1', port: floor.port, noDelay: true });
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const frames = Array.from({ length: 6 }, (_, i) => encode(0x10, Buffer.alloc(320, i + 1)));
    const arrivals: Array<{ at: number; frame: Buffer }> = [];
    const all = new Promise<void>((resolve) => {
      const decoder = new Decoder((_kind, frame) => {
        arrivals.push({ at: performance.now(), frame: Buffer.from(frame) });
        if (arrivals.length === frames.length) resolve();
      });
      socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    });
    socket.write(Buffer.concat([encodeUuid(Buffer.alloc(16, 7)), ...frames]));
    await all;
    assert.deepEqual(
      arrivals.map((a) => a.frame),
      frames,
    );
    // Three frames (the lead, 60 ms) may leave at once; the fourth starts 60 ms after the first,
    // so it leaves at the first pass whose slot is more than 40 ms after the first frame left.
    const wait = arrivals[3]!.at - arrivals[0]!.at;
    assert.ok(wait >= 30, `fourth echo ${wait.toFixed(1)} ms after the first`);
  } finally {
    socket.destroy();
    await floor.close();
  }
});

test('load generator with --audio-delay: the window starts once every call sends audio', async () => {
  const floor = await startFloorEcho({ host: '127.0.0.1', port: 0 });
  try {
    const r = await runLoad({ port: floor.port, calls: 3, durationS: 0.4, rampS: 0, audioDelayMs: 300, graceMs: 200 });
    assert.deepEqual(r.problems, []);
    assert.ok(r.window.steadyAtMs >= 300, `window from ${r.window.steadyAtMs} ms`);
    assert.ok(r.frames.sent > 0 && r.frames.verified === r.frames.sent);
  } finally {
    await floor.close();
  }
});

test('load generator notices corruption, loss and silence', async () => {
  let n = 0;
  const floor = await startFloorEcho({
    host: '127.0.0.1',
    port: 0,
    mutate: (frame) => {
      n++;
      if (n % 10 === 0) return null; // drop
      if (n % 10 === 5) {
        const c = Buffer.from(frame);
        c[c.length - 1]! ^= 0x01; // flip one filler bit
        return c;
      }
      if (n % 10 === 7) return encode(0x10, Buffer.alloc(320)); // keep-alive style silence instead of echo
      return frame;
    },
  });
  try {
    const r = await runLoad({ port: floor.port, calls: 5, durationS: 0.6, rampS: 0, style: 'coalesce', graceMs: 200 });
    assert.equal(r.ok, false);
    assert.ok(r.frames.corrupted > 0, 'corruption detected');
    assert.ok(r.frames.silence > 0, 'silence counted');
    // lost = dropped + corrupted + replaced by silence
    assert.equal(r.frames.lost, r.frames.sent - r.frames.verified);
    assert.ok(r.frames.lost >= r.frames.corrupted + r.frames.silence);
    assert.equal(r.frames.unexpected, 0);
  } finally {
    await floor.close();
  }
});

test('load generator play mode measures pacing of received audio', async () => {
  // A tiny "player": after the UUID, sends 320 B of non-zero audio every 20 ms (via one timer).
  const sockets = new Set<net.Socket>();
  const frame = encode(0x10, Buffer.alloc(320, 0x11));
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.resume();
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const t = setInterval(() => {
    for (const s of sockets) s.write(frame);
  }, 20);
  try {
    const { port } = server.address() as net.AddressInfo;
    const r = await runLoad({ port, calls: 3, durationS: 0.6, rampS: 0, mode: 'play', graceMs: 100 });
    assert.ok(r.play !== null);
    assert.equal(r.play.callsWithAudio, 3);
    assert.ok(r.play.framesReceived >= 3 * 20, `frames ${r.play.framesReceived}`);
    assert.ok(r.play.interArrivalMs.p50 > 10 && r.play.interArrivalMs.p50 < 40, `p50 ${r.play.interArrivalMs.p50}`);
    assert.equal(r.frames.unexpected, 0);
  } finally {
    clearInterval(t);
    for (const s of sockets) s.destroy();
    await new Promise<void>((res) => server.close(() => res()));
  }
});
