/**
 * chan_websocket control protocol (pure, no sockets): events in both formats as Asterisk prints
 * them, commands as Asterisk reads them, limits.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCodes, AudioSocketError } from '#lib/index.js';
import {
  COMMAND_NAMES,
  MAX_COMMAND_BYTES,
  detectFormat,
  encodeCommand,
  encodeEvent,
  maxMessagePayload,
  optimalFrameSizeOf,
  parseCommand,
  parseEvent,
  ptimeOf,
  type ControlFormat,
  type EventInput,
  type MediaCommand,
} from '#lib/protocol/websocket.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AudioSocketError, `expected an AudioSocketError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('did not throw');
}

// Verbatim from a real Asterisk 22.10.1 (JSON) and chan_websocket.c's format strings (plain text).
const JSON_START =
  '{"event":"MEDIA_START","connection_id":"probe","channel":"WebSocket/probe/0x7f3a2c001234","channel_id":"1733130000.42","format":"slin16","optimal_frame_size":640,"ptime":20,"channel_variables":{"MEDIA_WEBSOCKET_CONNECTION_ID":"probe","MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE":"640"}}';
const PLAIN_START =
  'MEDIA_START connection_id:probe channel:WebSocket/probe/0x7f3a2c001234 channel_id:1733130000.42 format:ulaw optimal_frame_size:160 ptime:20';

describe('events from Asterisk', () => {
  test('MEDIA_START in JSON', () => {
    const e = parseEvent(JSON_START);
    assert.equal(e.event, 'MEDIA_START');
    if (e.event !== 'MEDIA_START') return;
    assert.equal(e.connectionId, 'probe');
    assert.equal(e.channel, 'WebSocket/probe/0x7f3a2c001234');
    assert.equal(e.channelId, '1733130000.42');
    assert.equal(e.format, 'slin16');
    assert.deepEqual(e.audioFormat, { encoding: 'slin', sampleRate: 16000, channels: 1 });
    assert.equal(e.optimalFrameSize, 640);
    assert.equal(e.ptime, 20);
    assert.equal(e.channelVariables['MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE'], '640');
  });

  test('MEDIA_START in plain text, with and without channel_id (20.16/22.6 had none)', () => {
    const e = parseEvent(PLAIN_START);
    assert.equal(detectFormat(PLAIN_START), 'plain-text');
    assert.equal(e.event, 'MEDIA_START');
    if (e.event !== 'MEDIA_START') return;
    assert.equal(e.channelId, '1733130000.42');
    assert.equal(e.format, 'ulaw');
    assert.equal(e.audioFormat?.encoding, 'ulaw');
    assert.equal(e.optimalFrameSize, 160);
    assert.deepEqual(e.channelVariables, {});
    const old = parseEvent('MEDIA_START connection_id:c channel:WebSocket/c/0x1 format:opus optimal_frame_size:0 ptime:20');
    assert.equal(old.event === 'MEDIA_START' && old.channelId, undefined);
    assert.equal(old.event === 'MEDIA_START' && old.audioFormat, undefined);
    assert.equal(old.event === 'MEDIA_START' && old.optimalFrameSize, 0);
  });

  test('every event round-trips through encodeEvent in both formats', () => {
    const events: EventInput[] = [
      { event: 'MEDIA_XOFF', channelId: 'c1' },
      { event: 'MEDIA_XON', channelId: 'c1' },
      { event: 'QUEUE_DRAINED', channelId: 'c1' },
      { event: 'MEDIA_MARK_PROCESSED', channelId: 'c1', correlationId: 'prompt 1' },
      { event: 'MEDIA_MARK_PROCESSED', channelId: 'c1', correlationId: '' },
      { event: 'MEDIA_BUFFERING_COMPLETED', channelId: 'c1', correlationId: 'b7' },
      { event: 'DTMF_END', channelId: 'c1', digit: '#' },
      {
        event: 'STATUS',
        channelId: 'c1',
        queueLength: 12,
        xonLevel: 800,
        xoffLevel: 900,
        queueFull: false,
        bulkMedia: true,
        mediaPaused: false,
      },
      { event: 'ERROR', channelId: 'c1', errorText: 'MARK_MEDIA not supported in passthrough mode' },
    ];
    for (const format of ['json', 'plain-text'] as ControlFormat[]) {
      for (const e of events) {
        const text = encodeEvent(e, format);
        assert.equal(detectFormat(text), format);
        const back = parseEvent(text, format);
        // Plain text drops channel_id where Asterisk's format strings have none.
        const expected =
          format === 'plain-text' &&
          ['MEDIA_XOFF', 'MEDIA_XON', 'QUEUE_DRAINED', 'MEDIA_MARK_PROCESSED', 'MEDIA_BUFFERING_COMPLETED'].includes(e.event)
            ? { ...e, channelId: undefined }
            : e;
        assert.deepEqual(back, expected, `${format}: ${text}`);
      }
    }
  });

  test('plain-text shapes exactly as chan_websocket prints them', () => {
    assert.equal(encodeEvent({ event: 'DTMF_END', channelId: 'x', digit: '5' }, 'plain-text'), 'DTMF_END digit:5 channel_id:x');
    assert.equal(
      encodeEvent({ event: 'MEDIA_MARK_PROCESSED', channelId: 'x', correlationId: 'm1' }, 'plain-text'),
      'MEDIA_MARK_PROCESSED m1',
    );
    assert.equal(encodeEvent({ event: 'MEDIA_XOFF', channelId: 'x' }, 'plain-text'), 'MEDIA_XOFF');
    assert.equal(encodeEvent({ event: 'MEDIA_XOFF', channelId: 'x' }, 'json'), '{"event":"MEDIA_XOFF","channel_id":"x"}');
    // DTMF_END before channel_id existed (20.16/22.6): "DTMF_END digit:5"
    const old = parseEvent('DTMF_END digit:5');
    assert.deepEqual(old, { event: 'DTMF_END', channelId: undefined, digit: '5' });
    // error_text runs to the end of the line.
    const err = parseEvent("ERROR channel_id:1.2 error_text:PAUSE_MEDIA not supported while media direction is 'in'");
    assert.equal(err.event === 'ERROR' && err.errorText, "PAUSE_MEDIA not supported while media direction is 'in'");
  });

  test('unknown events are typed UNKNOWN, not errors', () => {
    assert.deepEqual(parseEvent('{"event":"NEW_THING","a":1}'), {
      event: 'UNKNOWN',
      name: 'NEW_THING',
      fields: { event: 'NEW_THING', a: 1 },
    });
    assert.deepEqual(parseEvent('NEW_THING a:1'), { event: 'UNKNOWN', name: 'NEW_THING', fields: { a: '1' } });
  });

  test('malformed messages are ERR_AUDIOSOCKET_PROTOCOL', () => {
    for (const bad of [
      '{"event":"MEDIA_START",',
      '{"event":1}',
      '["MEDIA_START"]',
      '{"no":"event"}',
      '',
      '   ',
      'lower case',
      '{"event":"MEDIA_START","connection_id":"c","channel":"x","format":"slin","optimal_frame_size":"big","ptime":20}',
      '{"event":"MEDIA_START","channel":"x","format":"slin","optimal_frame_size":320,"ptime":20}',
      '{"event":"DTMF_END","digit":"12"}',
      'STATUS queue_length:1 xon_level:800 xoff_level:900 queue_full:maybe bulk_media:false media_paused:false',
      'MEDIA_START :x',
    ]) {
      assert.equal(
        code(() => parseEvent(bad)),
        ErrorCodes.PROTOCOL,
        bad,
      );
    }
    // A message in the other format than the connection's.
    assert.equal(
      code(() => parseEvent('MEDIA_XON', 'json')),
      ErrorCodes.PROTOCOL,
    );
    assert.equal(
      code(() => parseEvent('{"event":"MEDIA_XON"}', 'plain-text')),
      ErrorCodes.PROTOCOL,
    );
  });
});

describe('commands to Asterisk', () => {
  test('every command in both formats, and parseCommand reads it back as Asterisk would', () => {
    const cmds: MediaCommand[] = [
      { command: 'ANSWER' },
      { command: 'HANGUP' },
      { command: 'START_MEDIA_BUFFERING' },
      { command: 'STOP_MEDIA_BUFFERING', correlationId: 'b1' },
      { command: 'MARK_MEDIA', correlationId: 'm 1' },
      { command: 'MARK_MEDIA' },
      { command: 'FLUSH_MEDIA' },
      { command: 'REPORT_QUEUE_DRAINED' },
      { command: 'GET_STATUS' },
      { command: 'PAUSE_MEDIA' },
      { command: 'CONTINUE_MEDIA' },
    ];
    assert.equal(new Set(cmds.map((c) => c.command)).size, COMMAND_NAMES.length - 1);
    for (const format of ['json', 'plain-text'] as ControlFormat[]) {
      for (const c of cmds) {
        const text = encodeCommand(c, format);
        const back = parseCommand(Buffer.from(` ${text} \n`), format);
        assert.deepEqual(back, { ok: true, command: c }, `${format}: ${text}`);
      }
    }
    assert.equal(encodeCommand({ command: 'MARK_MEDIA', correlationId: 'm1' }, 'json'), '{"command":"MARK_MEDIA","correlation_id":"m1"}');
    assert.equal(encodeCommand({ command: 'MARK_MEDIA', correlationId: 'm1' }, 'plain-text'), 'MARK_MEDIA m1');
    assert.equal(encodeCommand({ command: 'FLUSH_MEDIA' }, 'plain-text'), 'FLUSH_MEDIA');
    const dir = encodeCommand({ command: 'SET_MEDIA_DIRECTION', direction: 'in' }, 'json');
    assert.deepEqual(parseCommand(dir, 'json'), { ok: true, command: { command: 'SET_MEDIA_DIRECTION', direction: 'in' } });
  });

  test('limits: 128 bytes, JSON-only SET_MEDIA_DIRECTION, ids Asterisk would alter', () => {
    const fits = 'x'.repeat(MAX_COMMAND_BYTES - '{"command":"MARK_MEDIA","correlation_id":""}'.length);
    assert.equal(Buffer.byteLength(encodeCommand({ command: 'MARK_MEDIA', correlationId: fits }, 'json')), MAX_COMMAND_BYTES);
    assert.equal(
      code(() => encodeCommand({ command: 'MARK_MEDIA', correlationId: `${fits}x` }, 'json')),
      ErrorCodes.INVALID_MESSAGE,
    );
    // Multi-byte characters count as bytes.
    assert.equal(
      code(() => encodeCommand({ command: 'MARK_MEDIA', correlationId: 'é'.repeat(60) }, 'plain-text')),
      ErrorCodes.INVALID_MESSAGE,
    );
    assert.equal(
      code(() => encodeCommand({ command: 'SET_MEDIA_DIRECTION', direction: 'out' }, 'plain-text')),
      ErrorCodes.INVALID_MESSAGE,
    );
    assert.equal(
      code(() => encodeCommand({ command: 'SET_MEDIA_DIRECTION', direction: 'sideways' as 'in' }, 'json')),
      ErrorCodes.INVALID_ARGUMENT,
    );
    assert.equal(
      code(() => encodeCommand({ command: 'MARK_MEDIA', correlationId: ' padded' }, 'plain-text')),
      ErrorCodes.INVALID_ARGUMENT,
    );
    assert.equal(
      code(() => encodeCommand({ command: 'MARK_MEDIA', correlationId: 'a\nb' }, 'json')),
      ErrorCodes.INVALID_ARGUMENT,
    );
    assert.equal(
      code(() => encodeCommand({ command: 'mark_media' } as unknown as MediaCommand, 'json')),
      ErrorCodes.INVALID_ARGUMENT,
    );
    assert.equal(
      code(() => encodeCommand({ command: 'ANSWER' }, 'xml' as ControlFormat)),
      ErrorCodes.INVALID_ARGUMENT,
    );
  });

  test('parseCommand refuses what Asterisk refuses, with its reasons', () => {
    assert.equal(parseCommand('', 'json').ok, false);
    const long = parseCommand('MARK_MEDIA ' + 'x'.repeat(200), 'plain-text');
    assert.equal(!long.ok && long.reason, 'too-long');
    const bad = parseCommand('FLUSH_MEDIA', 'json'); // plain text sent to a JSON channel
    assert.equal(!bad.ok && bad.reason, 'bad-json');
    assert.equal(!bad.ok && bad.message, 'Unable to parse JSON command');
    const unknown = parseCommand('{"command":"FLUSH_MEDIA"}', 'plain-text'); // JSON sent to a plain-text channel
    assert.equal(!unknown.ok && unknown.reason, 'unknown');
    const lower = parseCommand('flush_media', 'plain-text');
    assert.equal(!lower.ok && lower.reason, 'unknown');
    const plainDir = parseCommand('SET_MEDIA_DIRECTION in', 'plain-text');
    assert.equal(!plainDir.ok && plainDir.reason, 'json-only');
    const noDir = parseCommand('{"command":"SET_MEDIA_DIRECTION"}', 'json');
    assert.equal(!noDir.ok && noDir.reason, 'bad-direction');
  });
});

describe('framing facts', () => {
  test('optimal_frame_size and ptime per codec, as websocket_new() computes them', () => {
    assert.equal(optimalFrameSizeOf('slin'), 320);
    assert.equal(optimalFrameSizeOf('slin16'), 640);
    assert.equal(optimalFrameSizeOf('slin44'), 1764);
    assert.equal(optimalFrameSizeOf('slin192'), 7680);
    assert.equal(optimalFrameSizeOf('ulaw'), 160);
    assert.equal(optimalFrameSizeOf('alaw'), 160);
    assert.equal(optimalFrameSizeOf('g722'), 160);
    assert.equal(optimalFrameSizeOf('opus'), 0);
    assert.equal(optimalFrameSizeOf('g729'), 0);
    assert.equal(optimalFrameSizeOf('nope'), undefined);
    assert.equal(ptimeOf('slin16'), 20);
  });

  test('largest binary message Asterisk reads: 65535 bytes with header', () => {
    assert.equal(maxMessagePayload(false), 65531);
    assert.equal(maxMessagePayload(true), 65527);
  });
});
