import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MessageParser,
  encodeMessage,
  encodeAudio,
  encodeUuidMessage,
  encodeDtmfMessage,
  HANGUP_MESSAGE,
  Kind,
  formatUuid,
  parseUuid,
  sampleRateOfKind,
  audioKindForRate,
  kindName,
  AudioSocketError,
  ErrorCodes,
} from '#lib/index.js';
import { cut } from './helpers.js';

type Msg = { kind: number; payload: Buffer };

function collect(chunks: Uint8Array[], maxPayload?: number): { messages: Msg[]; parser: MessageParser } {
  const messages: Msg[] = [];
  const parser = new MessageParser((kind, payload) => messages.push({ kind, payload: Buffer.from(payload) }), { maxPayload });
  for (const c of chunks) parser.push(c);
  return { messages, parser };
}

const arbMessage = fc
  .record({
    kind: fc.integer({ min: 0, max: 255 }),
    payload: fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
  })
  .map((m): Msg => ({ kind: m.kind, payload: m.payload }));

describe('MessageParser', () => {
  test('any sequence of messages, cut anywhere and coalesced, parses back identically', () => {
    fc.assert(
      fc.property(fc.array(arbMessage, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 40 }), (msgs, points) => {
        const stream = Buffer.concat(msgs.map((m) => encodeMessage(m.kind, m.payload)));
        const { messages, parser } = collect(cut(stream, points));
        assert.deepEqual(messages, msgs);
        assert.equal(parser.midMessage, false);
        assert.equal(parser.end(), null);
      }),
      { numRuns: 500 },
    );
  });

  test('one byte at a time', () => {
    const msgs = [
      encodeUuidMessage('0B8E2C4A-1234-4ABC-8DEF-0123456789AB'),
      encodeMessage(Kind.SLIN, Buffer.alloc(320, 1)),
      encodeDtmfMessage('#'),
      encodeMessage(0x12, Buffer.alloc(640, 2)),
      encodeMessage(0x42, Buffer.from('unknown')),
      encodeMessage(Kind.SLIN, Buffer.alloc(0)),
      HANGUP_MESSAGE,
    ];
    const stream = Buffer.concat(msgs);
    const chunks = [...stream].map((b) => Uint8Array.of(b));
    const { messages } = collect(chunks);
    assert.deepEqual(
      messages.map((m) => [m.kind, m.payload.length]),
      [
        [0x01, 16],
        [0x10, 320],
        [0x03, 1],
        [0x12, 640],
        [0x42, 7],
        [0x10, 0],
        [0x00, 0],
      ],
    );
    assert.equal(formatUuid(messages[0]!.payload), '0b8e2c4a-1234-4abc-8def-0123456789ab');
  });

  test('a message inside one chunk is delivered without copying', () => {
    const chunk = Buffer.concat([encodeMessage(0x10, Buffer.alloc(320, 9)), encodeMessage(0x10, Buffer.alloc(4, 8))]);
    const seen: Buffer[] = [];
    const parser = new MessageParser((_k, p) => seen.push(p));
    parser.push(chunk);
    assert.equal(seen[0]!.buffer, chunk.buffer);
    assert.equal(seen[0]!.byteOffset, chunk.byteOffset + 3);
  });

  test('deliverTo calls one shared function with each receiver as `this`; bytesPushed counts every byte', () => {
    const seen: Array<[string, number, number]> = [];
    function onMessage(this: { name: string }, kind: number, payload: Buffer): void {
      seen.push([this.name, kind, payload.length]);
    }
    const a = new MessageParser(() => assert.fail('replaced by deliverTo'));
    const b = new MessageParser(() => assert.fail('replaced by deliverTo'));
    a.deliverTo(onMessage, { name: 'a' });
    b.deliverTo(onMessage, { name: 'b' });
    const message = encodeMessage(0x10, Buffer.alloc(320));
    a.push(message.subarray(0, 100));
    b.push(Buffer.concat([message, encodeMessage(0x03, Buffer.from('5'))]));
    a.push(message.subarray(100));
    assert.deepEqual(seen, [
      ['b', 0x10, 320],
      ['b', 0x03, 1],
      ['a', 0x10, 320],
    ]);
    assert.equal(a.bytesPushed, 323);
    assert.equal(b.bytesPushed, 327);
    // Setting onMessage again drops the receiver: a plain callback runs without `this`.
    const receivers: unknown[] = [];
    a.onMessage = function (this: unknown) {
      receivers.push(this);
    };
    a.push(message);
    assert.deepEqual(receivers, [undefined]);
  });

  test('maximum payload of 65535 bytes, and a lower maxPayload fails the parser with a typed error', () => {
    const big = Buffer.alloc(65535, 0x5a);
    const { messages } = collect([encodeMessage(0x10, big)]);
    assert.equal(messages[0]!.payload.length, 65535);

    const seen: number[] = [];
    const parser = new MessageParser((k) => seen.push(k), { maxPayload: 1000 });
    const stream = Buffer.concat([encodeMessage(0x10, Buffer.alloc(10)), encodeMessage(0x10, Buffer.alloc(1001))]);
    assert.throws(
      () => parser.push(stream),
      (err: unknown) => {
        assert.ok(err instanceof AudioSocketError);
        assert.equal(err.code, ErrorCodes.PAYLOAD_TOO_LARGE);
        assert.match(err.message, /1001/);
        return true;
      },
    );
    assert.deepEqual(seen, [0x10]);
    parser.push(encodeMessage(0x10, Buffer.alloc(2)));
    assert.deepEqual(seen, [0x10], 'a failed parser ignores further input');
  });

  test('truncated input at end of stream is reported', () => {
    const full = encodeMessage(0x10, Buffer.alloc(320));
    for (const at of [1, 2, 3, 100, 322]) {
      const { parser } = collect([full.subarray(0, at)]);
      const err = parser.end();
      assert.ok(err instanceof AudioSocketError, `cut at ${at}`);
      assert.equal(err.code, ErrorCodes.TRUNCATED);
      assert.match(err.message, at < 3 ? /header \(\d of 3/ : new RegExp(`${at - 3} of 320`));
    }
    assert.equal(collect([full]).parser.end(), null);
  });

  test('random garbage never throws anything but typed errors and keeps state consistent', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 500 }), { maxLength: 20 }), fc.integer({ min: 0, max: 65535 }), (chunks, max) => {
        let delivered = 0;
        const parser = new MessageParser(
          (_k, p) => {
            assert.ok(p.length <= max);
            delivered++;
          },
          { maxPayload: max },
        );
        for (const c of chunks) {
          try {
            parser.push(c);
          } catch (err) {
            assert.ok(err instanceof AudioSocketError);
            assert.equal(err.code, ErrorCodes.PAYLOAD_TOO_LARGE);
          }
        }
        assert.equal(parser.messageCount, delivered);
        assert.ok(parser.bufferedBytes <= 3 + max);
      }),
      { numRuns: 300 },
    );
  });
});

describe('encoders', () => {
  test('audio: every kind, header big-endian', () => {
    for (let kind = 0x10; kind <= 0x18; kind++) {
      const msg = encodeAudio(Buffer.alloc(258, 1), kind as 0x10);
      assert.deepEqual([...msg.subarray(0, 3)], [kind, 0x01, 0x02]);
      assert.equal(msg.length, 261);
    }
  });

  test('refuses what Asterisk treats as fatal, with a message that says why', () => {
    const refuse = (fn: () => unknown, re: RegExp): void =>
      assert.throws(fn, (e: unknown) => e instanceof AudioSocketError && e.code === ErrorCodes.INVALID_MESSAGE && re.test(e.message));
    refuse(() => encodeAudio(Buffer.alloc(0)), /empty audio/);
    refuse(() => encodeAudio(Buffer.alloc(321)), /odd|2 bytes/);
    refuse(() => encodeAudio(Buffer.alloc(320), Kind.UUID as never), /only accepts audio and hangup/);
    refuse(() => encodeAudio(Buffer.alloc(2), Kind.DTMF as never), /only accepts audio and hangup/);
    refuse(() => encodeAudio(Buffer.alloc(2), Kind.ERROR as never), /only accepts audio and hangup/);
    refuse(() => encodeAudio(Buffer.alloc(2), 0x19 as never), /not an audio kind/);
    refuse(() => encodeAudio(Buffer.alloc(65536)), /maximum/);
  });

  test('hangup is 00 00 00; UUID is 01 00 10 + raw bytes; DTMF is one ASCII byte', () => {
    assert.deepEqual([...HANGUP_MESSAGE], [0, 0, 0]);
    const u = encodeUuidMessage('01234567-89AB-CDEF-0123-456789abcdef');
    assert.deepEqual([...u.subarray(0, 3)], [1, 0, 16]);
    assert.equal(u.subarray(3).toString('hex'), '0123456789abcdef0123456789abcdef');
    assert.deepEqual([...encodeDtmfMessage('*')], [3, 0, 1, 0x2a]);
    assert.throws(() => encodeDtmfMessage('E'), /not a DTMF digit/);
    assert.throws(() => parseUuid('0123456789abcdef0123456789abcdef'), /not a UUID/);
  });

  test('formatUuid: any 16 bytes as lower-case 8-4-4-4-12, the inverse of parseUuid', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        const hex = Buffer.from(bytes).toString('hex');
        const text = formatUuid(bytes);
        assert.equal(text, `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`);
        assert.deepEqual([...parseUuid(text)], [...bytes]);
      }),
    );
    assert.throws(() => formatUuid(new Uint8Array(15)), /16 bytes, got 15/);
  });

  test('kinds and rates', () => {
    const rates = [8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000];
    rates.forEach((rate, i) => {
      assert.equal(sampleRateOfKind(0x10 + i), rate);
      assert.equal(audioKindForRate(rate), 0x10 + i);
    });
    assert.equal(sampleRateOfKind(0x03), undefined);
    assert.equal(audioKindForRate(22050), undefined);
    assert.equal(kindName(0x15), '0x15 (slin44)');
    assert.equal(kindName(0x10), '0x10 (slin)');
    assert.equal(kindName(0x7e), '0x7e (unknown)');
  });
});
