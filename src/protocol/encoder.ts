/**
 * Message encoders: pure, no I/O. Each returns one Buffer holding header and payload, so the
 * socket layer can write every message with a single write (Asterisk kills the call when a
 * message arrives in pieces more than 5 ms apart: docs/protocol.md#split-messages,
 * `res/res_audiosocket.c` `ast_audiosocket_receive_frame_with_hangup`).
 *
 * Two directions, two sets of rules:
 * - server → Asterisk ({@link encodeAudio}, {@link HANGUP_MESSAGE}): only non-empty, even-length
 *   audio of kinds 0x10-0x18 and hangup. Anything else makes current Asterisk end the call
 *   (docs/protocol.md#from-the-server), so it is refused with `ERR_AUDIOSOCKET_INVALID_MESSAGE`.
 * - Asterisk → server ({@link encodeUuidMessage}, {@link encodeDtmfMessage}, {@link encodeMessage}):
 *   used by the simulated Asterisk client and by tests.
 */
import { audioSocketError, ErrorCodes } from '../errors.js';
import { HEADER_SIZE, isAudioKind, Kind, kindName, MAX_PAYLOAD, type AudioKind } from './kinds.js';
import { parseUuid } from './uuid.js';

/** The hangup message `00 00 00`. Shared: never mutate it. */
export const HANGUP_MESSAGE: Buffer = Buffer.from([Kind.HANGUP, 0, 0]);

/** Writes a header for `kind`/`length` at `offset` of `target`. */
export function writeHeader(target: Uint8Array, offset: number, kind: number, length: number): void {
  target[offset] = kind;
  target[offset + 1] = length >>> 8;
  target[offset + 2] = length & 0xff;
}

/**
 * Encodes any message without checking what Asterisk accepts (only the length limit).
 * For the Asterisk side (simulator, tests); servers should use {@link encodeAudio}.
 */
export function encodeMessage(kind: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  if (!Number.isInteger(kind) || kind < 0 || kind > 0xff) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `kind must be a byte 0..255, got ${kind}`);
  }
  if (payload.length > MAX_PAYLOAD) {
    throw audioSocketError(ErrorCodes.INVALID_MESSAGE, `payload of ${payload.length} bytes exceeds the protocol maximum of ${MAX_PAYLOAD}`);
  }
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  writeHeader(out, 0, kind, payload.length);
  out.set(payload, HEADER_SIZE);
  return out;
}

/**
 * Checks that an audio message is one Asterisk accepts from a server: kind 0x10-0x18, payload
 * non-empty, even length (whole 16-bit samples), at most 65535 bytes. Throws otherwise.
 */
export function assertServerAudio(kind: number, length: number): asserts kind is AudioKind {
  if (!isAudioKind(kind)) {
    const why =
      kind === Kind.UUID || kind === Kind.DTMF || kind === Kind.ERROR
        ? 'Asterisk only accepts audio and hangup from a server and ends the call on anything else'
        : 'not an audio kind (0x10-0x18)';
    throw audioSocketError(ErrorCodes.INVALID_MESSAGE, `refusing to send kind ${kindName(kind)}: ${why}`);
  }
  if (length === 0) {
    throw audioSocketError(
      ErrorCodes.INVALID_MESSAGE,
      'refusing to send empty audio: Asterisk 20.14+/21.9+/22.4+/23.0+ ends the call on a zero-length message',
    );
  }
  if (length % 2 !== 0) {
    throw audioSocketError(
      ErrorCodes.INVALID_MESSAGE,
      `refusing to send ${length} bytes of audio: slin samples are 2 bytes, an odd length misaligns the stream`,
    );
  }
  if (length > MAX_PAYLOAD) {
    throw audioSocketError(
      ErrorCodes.INVALID_MESSAGE,
      `audio payload of ${length} bytes exceeds the protocol maximum of ${MAX_PAYLOAD}; send frames of 10-60 ms`,
    );
  }
}

/** Encodes one audio message for Asterisk, refusing what Asterisk would treat as fatal. */
export function encodeAudio(payload: Uint8Array, kind: AudioKind = Kind.SLIN): Buffer {
  assertServerAudio(kind, payload.length);
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  writeHeader(out, 0, kind, payload.length);
  out.set(payload, HEADER_SIZE);
  return out;
}

/** Encodes the UUID message Asterisk sends first (`01 00 10` + 16 bytes). */
export function encodeUuidMessage(uuid: string): Buffer {
  return encodeMessage(Kind.UUID, parseUuid(uuid));
}

/** Digits Asterisk can send: `0-9 * # A-D`, lower-case `a-d` (SendDTMF), `X` (RFC 4733 flash). */
export const DTMF_DIGITS = '0123456789*#ABCDabcdX';

/** Encodes a DTMF message as Asterisk sends it (one ASCII byte). */
export function encodeDtmfMessage(digit: string): Buffer {
  if (digit.length !== 1 || !DTMF_DIGITS.includes(digit)) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `not a DTMF digit: ${JSON.stringify(digit)} (expected one of ${DTMF_DIGITS})`);
  }
  return encodeMessage(Kind.DTMF, Buffer.from(digit, 'latin1'));
}

const silenceCache = new Map<number, Buffer>();

/** A shared, never-mutated message of `bytes` bytes of silence of `kind` (slin: zeros). */
export function silenceMessage(kind: AudioKind, bytes: number): Buffer {
  const key = kind * 1_000_000 + bytes;
  let msg = silenceCache.get(key);
  if (msg === undefined) {
    msg = Buffer.alloc(HEADER_SIZE + bytes);
    writeHeader(msg, 0, kind, bytes);
    silenceCache.set(key, msg);
  }
  return msg;
}

/**
 * The message for `payload` of `kind`: header and payload in one buffer. When the three bytes
 * before `payload` in its memory already are that header (audio received from Asterisk and
 * written straight back), they are reused with no copy. (Frames the outbound queue cuts go
 * behind room for the header, into memory the connection gives: `OutboundQueue.takeInto`.)
 */
export function messageFor(kind: AudioKind, payload: Buffer): Buffer {
  const n = payload.length;
  const off = payload.byteOffset;
  if (off >= HEADER_SIZE) {
    // The candidate message itself is read: one view made, not one per check and one to send.
    const whole = Buffer.from(payload.buffer, off - HEADER_SIZE, n + HEADER_SIZE);
    if (whole[0] === kind && whole[1] === n >>> 8 && whole[2] === (n & 0xff)) return whole;
  }
  const message = Buffer.allocUnsafe(HEADER_SIZE + n);
  writeHeader(message, 0, kind, n);
  payload.copy(message, HEADER_SIZE);
  return message;
}
