import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseFormat,
  formatName,
  sameFormat,
  bytesPerSample,
  bytesPerFrame,
  durationMs,
  silenceByte,
  fillSilence,
  FORMAT_NAMES,
  type FormatSpec,
} from '#lib/audio/format.js';
import { AudioSocketError, ErrorCodes } from '#lib/errors.js';

function assertCode(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AudioSocketError, `expected AudioSocketError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

test('parseFormat: Asterisk names', () => {
  const expected: Record<string, [string, number]> = {
    slin: ['slin', 8000],
    slin12: ['slin', 12000],
    slin16: ['slin', 16000],
    slin24: ['slin', 24000],
    slin32: ['slin', 32000],
    slin44: ['slin', 44100],
    slin48: ['slin', 48000],
    slin96: ['slin', 96000],
    slin192: ['slin', 192000],
    ulaw: ['ulaw', 8000],
    alaw: ['alaw', 8000],
  };
  assert.deepEqual([...FORMAT_NAMES].sort(), Object.keys(expected).sort());
  for (const [name, [encoding, sampleRate]] of Object.entries(expected)) {
    const f = parseFormat(name as FormatSpec);
    assert.deepEqual({ ...f }, { encoding, sampleRate, channels: 1 }, name);
    assert.ok(Object.isFrozen(f));
    assert.equal(formatName(f), name);
  }
});

test('parseFormat: objects, defaults, and round trip through formatName', () => {
  assert.deepEqual({ ...parseFormat({}) }, { encoding: 'slin', sampleRate: 8000, channels: 1 });
  assert.deepEqual({ ...parseFormat({ sampleRate: 22050, channels: 2 }) }, { encoding: 'slin', sampleRate: 22050, channels: 2 });
  assert.deepEqual({ ...parseFormat({ encoding: 'ulaw' }) }, { encoding: 'ulaw', sampleRate: 8000, channels: 1 });
  // A full AudioFormat is accepted as is, and matching objects map onto the shared named instance.
  assert.equal(parseFormat({ encoding: 'slin', sampleRate: 16000, channels: 1 }), parseFormat('slin16'));
  assert.equal(formatName(parseFormat({ sampleRate: 22050, channels: 2 })), 'slin 22050 Hz stereo');
  assert.equal(formatName(parseFormat({ sampleRate: 16000, channels: 2 })), 'slin 16000 Hz stereo');
  assert.equal(formatName(parseFormat({ encoding: 'alaw', sampleRate: 16000 })), 'alaw 16000 Hz mono');
});

test('parseFormat: rejects bad values naming them and the accepted ones', () => {
  assertCode(() => parseFormat('slin17' as FormatSpec), ErrorCodes.INVALID_FORMAT, /"slin17".*slin16/);
  assertCode(() => parseFormat('toString' as FormatSpec), ErrorCodes.INVALID_FORMAT, /"toString"/);
  assertCode(() => parseFormat({ sampleRate: 7999 }), ErrorCodes.INVALID_FORMAT, /7999.*8000 to 192000/);
  assertCode(() => parseFormat({ sampleRate: 192001 }), ErrorCodes.INVALID_FORMAT, /192001/);
  assertCode(() => parseFormat({ sampleRate: 16000.5 }), ErrorCodes.INVALID_FORMAT, /16000\.5/);
  assertCode(() => parseFormat({ sampleRate: Number.NaN }), ErrorCodes.INVALID_FORMAT, /NaN/);
  assertCode(() => parseFormat({ channels: 3 as 1 }), ErrorCodes.INVALID_FORMAT, /channel count 3.*1 \(mono\) or 2/);
  assertCode(() => parseFormat({ channels: 0 as 1 }), ErrorCodes.INVALID_FORMAT, /0/);
  assertCode(() => parseFormat({ encoding: 'gsm' as 'slin' }), ErrorCodes.INVALID_FORMAT, /"gsm".*slin, ulaw, alaw/);
  assertCode(() => parseFormat(null as unknown as FormatSpec), ErrorCodes.INVALID_FORMAT, /null/);
  assertCode(() => parseFormat(16000 as unknown as FormatSpec), ErrorCodes.INVALID_FORMAT, /16000/);
});

test('sameFormat', () => {
  assert.ok(sameFormat(parseFormat('slin16'), { encoding: 'slin', sampleRate: 16000, channels: 1 }));
  assert.ok(!sameFormat(parseFormat('slin16'), parseFormat({ sampleRate: 16000, channels: 2 })));
  assert.ok(!sameFormat(parseFormat('ulaw'), parseFormat('alaw')));
  assert.ok(!sameFormat(parseFormat('slin'), parseFormat('ulaw')));
});

test('bytesPerSample / bytesPerFrame / durationMs', () => {
  assert.equal(bytesPerSample(parseFormat('slin')), 2);
  assert.equal(bytesPerSample(parseFormat('ulaw')), 1);
  assert.equal(bytesPerSample(parseFormat({ channels: 2 })), 4);
  assert.equal(bytesPerSample(parseFormat({ encoding: 'alaw', channels: 2 })), 2);

  assert.equal(bytesPerFrame(parseFormat('slin'), 20), 320);
  assert.equal(bytesPerFrame(parseFormat('slin16'), 20), 640);
  assert.equal(bytesPerFrame(parseFormat('slin44'), 20), 1764);
  assert.equal(bytesPerFrame(parseFormat('slin48'), 10), 960);
  assert.equal(bytesPerFrame(parseFormat('ulaw'), 20), 160);
  assert.equal(bytesPerFrame(parseFormat({ sampleRate: 48000, channels: 2 }), 20), 3840);
  assertCode(() => bytesPerFrame(parseFormat('slin44'), 1), ErrorCodes.INVALID_ARGUMENT, /44\.1 samples/);
  assertCode(() => bytesPerFrame(parseFormat('slin'), 0), ErrorCodes.INVALID_ARGUMENT);
  assertCode(() => bytesPerFrame(parseFormat('slin'), -20), ErrorCodes.INVALID_ARGUMENT);

  assert.equal(durationMs(parseFormat('slin'), 320), 20);
  assert.equal(durationMs(parseFormat('slin'), 321), 20); // a partial sample does not count
  assert.equal(durationMs(parseFormat('ulaw'), 8000), 1000);
  assert.equal(durationMs(parseFormat('slin44'), 1764), 20);
  assert.equal(durationMs(parseFormat({ sampleRate: 16000, channels: 2 }), 640), 10);
  assertCode(() => durationMs(parseFormat('slin'), -1), ErrorCodes.INVALID_ARGUMENT);
});

test('silenceByte and fillSilence', () => {
  assert.equal(silenceByte('slin'), 0x00);
  assert.equal(silenceByte('ulaw'), 0xff);
  assert.equal(silenceByte('alaw'), 0xd5);
  const b = Buffer.alloc(7, 1);
  assert.equal(fillSilence(b, 'ulaw'), b);
  assert.deepEqual([...b], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  fillSilence(b, 'alaw');
  assert.ok(b.every((x) => x === 0xd5));
  fillSilence(b, 'slin');
  assert.ok(b.every((x) => x === 0));
  assertCode(() => silenceByte('mp3' as 'slin'), ErrorCodes.INVALID_FORMAT);
});
