/**
 * Property tests of MessageParser beyond test/protocol.test.ts: mutated valid streams (bit flips,
 * inserted and deleted bytes), truncated streams with end(), odd chunkings and views, throwing
 * callbacks. Every result is compared with a simple one-shot reference parser.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AudioSocketError, encodeMessage, ErrorCodes, MessageParser } from '#lib/index.js';
import { cut } from './helpers.js';

type Msg = { kind: number; payload: Buffer };

/** What a correct parser must produce for `bytes` as a whole: messages, bytes consumed, and why it stopped. */
function reference(bytes: Buffer, max: number): { messages: Msg[]; consumed: number; tooLarge: boolean; rest: number } {
  const messages: Msg[] = [];
  let off = 0;
  for (;;) {
    if (bytes.length - off < 3) return { messages, consumed: off, tooLarge: false, rest: bytes.length - off };
    const kind = bytes[off]!;
    const len = bytes.readUInt16BE(off + 1);
    if (len > max) return { messages, consumed: off, tooLarge: true, rest: bytes.length - off };
    if (bytes.length - off - 3 < len) return { messages, consumed: off, tooLarge: false, rest: bytes.length - off };
    messages.push({ kind, payload: bytes.subarray(off + 3, off + 3 + len) });
    off += 3 + len;
  }
}

/** Copies each chunk into a larger ArrayBuffer at an odd offset and hands the parser a plain Uint8Array view. */
function asViews(chunks: Buffer[]): Uint8Array[] {
  return chunks.map((c, i) => {
    const pad = 1 + (i % 5);
    const backing = new Uint8Array(c.length + pad * 2).fill(0xee);
    backing.set(c, pad);
    return backing.subarray(pad, pad + c.length);
  });
}

const arbMessage = fc.record({
  kind: fc.oneof(fc.constantFrom(0x00, 0x01, 0x03, 0x10, 0x12, 0x18, 0xff), fc.integer({ min: 0, max: 255 })),
  payload: fc.oneof(
    { weight: 6, arbitrary: fc.uint8Array({ maxLength: 400 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 65535 }).map((n) => new Uint8Array(n).fill(n & 0xff)) },
  ),
});

type Mutation =
  { op: 'flip'; at: number; bit: number } | { op: 'insert'; at: number; bytes: Uint8Array } | { op: 'delete'; at: number; n: number };

const arbMutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
);

function mutate(input: Buffer, mutations: Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % (b.length + (m.op === 'insert' ? 1 : 0));
    if (m.op === 'flip') {
      if (b.length > 0) b[at % b.length]! ^= 1 << m.bit;
    } else if (m.op === 'insert') {
      b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    } else {
      b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
    }
  }
  return b;
}

const arbMax = fc.oneof(fc.constant(65535), fc.constant(0), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 400 }));

/**
 * Feeds `chunks` to a fresh parser and checks it against the reference after every push and at end().
 * Only AudioSocketError may escape, bufferedBytes stays within 3 + maxPayload and equals the bytes of
 * the message in progress, messageCount matches what was delivered.
 */
function checkStream(input: Buffer, chunks: Uint8Array[], max: number): void {
  const got: Msg[] = [];
  const parser = new MessageParser(
    (kind, payload) => {
      assert.ok(payload.length <= max, 'payload within maxPayload');
      got.push({ kind, payload: Buffer.from(payload) });
    },
    { maxPayload: max },
  );
  let fed = 0;
  let failed: AudioSocketError | null = null;
  for (const chunk of chunks) {
    try {
      parser.push(chunk);
    } catch (err) {
      assert.ok(err instanceof AudioSocketError, `only AudioSocketError escapes, got ${String(err)}`);
      assert.equal(err.code, ErrorCodes.PAYLOAD_TOO_LARGE);
      assert.equal(failed, null, 'push throws once; a failed parser ignores further input');
      assert.equal(parser.error, err);
      failed = err;
    }
    fed += chunk.length;
    assert.equal(parser.messageCount, got.length, 'messageCount counts deliveries');
    assert.ok(parser.bufferedBytes <= 3 + max, `bufferedBytes ${parser.bufferedBytes} <= 3 + ${max}`);
    if (failed === null) {
      const ref = reference(input.subarray(0, fed), max);
      assert.equal(ref.tooLarge, false, 'the parser fails exactly when the reference does');
      assert.equal(parser.bufferedBytes, ref.rest, 'holds exactly the bytes of the message in progress');
      assert.equal(parser.midMessage, ref.rest > 0);
    }
  }
  const ref = reference(input, max);
  assert.equal(got.length, ref.messages.length);
  got.forEach((m, i) => {
    assert.equal(m.kind, ref.messages[i]!.kind, `kind of message ${i}`);
    assert.ok(m.payload.equals(ref.messages[i]!.payload), `payload of message ${i}`);
  });
  assert.equal(failed !== null, ref.tooLarge);
  const end = parser.end();
  if (failed !== null) {
    assert.equal(end, failed, 'end() reports the error that stopped the parser');
  } else if (ref.rest > 0) {
    assert.ok(end instanceof AudioSocketError && end.code === ErrorCodes.TRUNCATED, 'a cut stream is TRUNCATED');
    assert.equal(parser.error, end);
  } else {
    assert.equal(end, null);
  }
  // Input after a failed end() is ignored, without throwing.
  if (end !== null) {
    parser.push(Buffer.from([0x10, 0x00, 0x02, 1, 2]));
    assert.equal(parser.messageCount, got.length);
    assert.equal(parser.bufferedBytes, 0, 'end() released the partial message');
  }
}

describe('MessageParser fuzz (properties)', () => {
  test('mutated valid streams (bit flips, inserted and deleted bytes), any chunking: matches the reference', () => {
    fc.assert(
      fc.property(
        fc.array(arbMessage, { maxLength: 12 }),
        fc.array(arbMutation, { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 24 }),
        arbMax,
        fc.boolean(),
        (msgs, mutations, points, max, views) => {
          const valid = Buffer.concat(msgs.map((m) => encodeMessage(m.kind, m.payload)));
          const input = mutate(valid, mutations);
          const chunks = cut(input, points);
          checkStream(input, views ? asViews(chunks) : chunks, max);
        },
      ),
      { numRuns: 400 },
    );
  });

  test('valid streams truncated anywhere: whole messages before the cut, TRUNCATED at end() unless cut on a boundary', () => {
    fc.assert(
      fc.property(
        fc.array(arbMessage, { minLength: 1, maxLength: 10 }),
        fc.nat(),
        fc.array(fc.nat(), { maxLength: 10 }),
        (msgs, at, points) => {
          const encoded = msgs.map((m) => encodeMessage(m.kind, m.payload));
          const whole = Buffer.concat(encoded);
          const cutAt = at % (whole.length + 1);
          const input = whole.subarray(0, cutAt);
          checkStream(input, cut(input, points), 65535);
          // The messages delivered are exactly those that ended before the cut.
          let boundary = 0;
          let complete = 0;
          for (const e of encoded) {
            if (boundary + e.length > cutAt) break;
            boundary += e.length;
            complete++;
          }
          const parser = new MessageParser(() => {});
          parser.push(input);
          assert.equal(parser.messageCount, complete);
          const end = parser.end();
          if (boundary === cutAt) assert.equal(end, null);
          else {
            assert.equal(end?.code, ErrorCodes.TRUNCATED);
            const left = cutAt - boundary;
            assert.match(end!.message, left < 3 ? new RegExp(`header \\(${left} of 3`) : new RegExp(`\\(${left - 3} of \\d+ bytes`));
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  test('pure garbage, including empty chunks: never anything but typed errors, state always bounded', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constant(new Uint8Array(0))), { maxLength: 30 }),
        arbMax,
        (chunks, max) => {
          const input = Buffer.concat(chunks);
          checkStream(input, chunks, max);
        },
      ),
      { numRuns: 400 },
    );
  });

  test('a payload of exactly maxPayload is accepted and one more byte is refused, at every maxPayload', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65534 }), fc.integer({ min: 0, max: 255 }), (max, kind) => {
        const ok = new MessageParser(() => {}, { maxPayload: max });
        ok.push(encodeMessage(kind, new Uint8Array(max)));
        assert.equal(ok.messageCount, 1);
        const bad = new MessageParser(() => {}, { maxPayload: max });
        // Only the header is needed to refuse: the parser must not wait for (or buffer) the payload.
        assert.throws(
          () => bad.push(Uint8Array.of(kind, (max + 1) >> 8, (max + 1) & 0xff)),
          (e: unknown) => e instanceof AudioSocketError && e.code === ErrorCodes.PAYLOAD_TOO_LARGE,
        );
        assert.equal(bad.bufferedBytes, 0);
      }),
      { numRuns: 200 },
    );
  });

  test('a callback that throws does not corrupt the parser: with chunks on message boundaries, every later message is exact', () => {
    fc.assert(
      fc.property(
        fc.array(arbMessage, { minLength: 1, maxLength: 15 }),
        fc.array(fc.boolean(), { minLength: 15, maxLength: 15 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        (msgs, throwOn, points) => {
          const got: Msg[] = [];
          let n = 0;
          const parser = new MessageParser((kind, payload) => {
            got.push({ kind, payload: Buffer.from(payload) });
            if (throwOn[n++]) throw new TypeError('listener bug');
          });
          for (const m of msgs) {
            // Each message alone, itself cut anywhere: a throw can only lose bytes of its own chunk, and there are none after it.
            for (const piece of cut(encodeMessage(m.kind, m.payload), points)) {
              try {
                parser.push(piece);
              } catch (err) {
                assert.ok(err instanceof TypeError, "the callback's own error propagates unchanged");
              }
            }
          }
          assert.equal(parser.messageCount, msgs.length);
          assert.equal(parser.midMessage, false);
          assert.equal(parser.error, null, 'a callback error is not a parser error');
          assert.deepEqual(
            got.map((m) => [m.kind, m.payload.toString('hex')]),
            msgs.map((m) => [m.kind, Buffer.from(m.payload).toString('hex')]),
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
