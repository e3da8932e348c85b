/**
 * Keep-alive over TCP: silence fills the slots of a quiet call, always in the kind of the
 * call's audio.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeMessage, encodeUuidMessage } from '#lib/index.js';
import { rawCall, startServer } from './fault-helpers.js';
import { until } from './helpers.js';

describe('keep-alive over TCP', () => {
  test('a c(slin16) call gets only 0x12 silence, never 0x10, from the UUID on', async (t) => {
    const { port } = await startServer(() => {}, {}, t);
    const raw = await rawCall(port, { sendUuid: false }, t);
    // The channel driver sends the UUID and its first slin16 frame together, then one every 20 ms.
    raw.socket.write(Buffer.concat([encodeUuidMessage(raw.uuid), encodeMessage(0x12, Buffer.alloc(640, 1))]));
    const timer = setInterval(() => raw.socket.write(encodeMessage(0x12, Buffer.alloc(640, 1))), 20);
    t.after(() => clearInterval(timer));
    await until(() => raw.messages.length >= 10, 'ten keep-alive frames');
    clearInterval(timer);
    assert.deepEqual(raw.violations, []);
    assert.deepEqual(
      [...new Set(raw.messages.map((m) => `0x${m.kind.toString(16)}/${m.length}`))],
      ['0x12/640'],
      "silence in the call's own kind and frame size only",
    );
    assert.ok(raw.messages.every((m) => m.zero));
  });

  test('with an explicit outboundKind, silence uses it from the first slot, before any audio arrives', async (t) => {
    const { port } = await startServer(() => {}, { outboundKind: 0x12 }, t);
    const raw = await rawCall(port, {}, t);
    await until(() => raw.messages.length >= 5, 'five keep-alive frames');
    assert.ok(raw.messages.every((m) => m.kind === 0x12 && m.length === 640 && m.zero));
  });

  test('without any audio from Asterisk, silence starts in the default kind after the grace period', async (t) => {
    const { port } = await startServer(() => {}, {}, t);
    const raw = await rawCall(port, {}, t);
    await until(() => raw.messages.length >= 5, 'five keep-alive frames');
    assert.ok(raw.messages.every((m) => m.kind === 0x10 && m.length === 320 && m.zero));
  });
});
