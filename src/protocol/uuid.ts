/**
 * UUIDs on the wire are 16 raw bytes in RFC 4122 order (libuuid `uuid_parse` in
 * `res/res_audiosocket.c` `ast_audiosocket_init`; docs/protocol.md#uuid).
 * Asterisk accepts either case in the dialplan; we always present lower case 8-4-4-4-12.
 */
import { audioSocketError, ErrorCodes } from '../errors.js';

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');
/** Where each byte's two digits go in the 36 characters: hyphens at 8, 13, 18 and 23. */
const DIGIT_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Formats 16 bytes as a canonical lower-case hyphenated UUID. */
export function formatUuid(bytes: Uint8Array): string {
  if (bytes.length !== 16) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `a UUID is 16 bytes, got ${bytes.length}`);
  }
  // Written into bytes and decoded once: a string built with `+=` is a rope of 20 pieces, kept
  // that way for the call's whole life.
  const text = Buffer.alloc(36, 0x2d);
  for (let i = 0; i < 16; i++) {
    const b = bytes[i]!;
    const at = DIGIT_AT[i]!;
    text[at] = HEX_DIGITS[b >> 4]!;
    text[at + 1] = HEX_DIGITS[b & 15]!;
  }
  return text.toString('latin1');
}

/** True if `text` is a 36-character hyphenated UUID (either case), the only form Asterisk accepts. */
export function isUuid(text: string): boolean {
  return UUID_RE.test(text);
}

/** Parses a hyphenated UUID (either case) into 16 bytes. */
export function parseUuid(text: string): Buffer {
  if (!isUuid(text)) {
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      `not a UUID: ${JSON.stringify(text)} (expected 8-4-4-4-12 hex digits, as Asterisk requires)`,
    );
  }
  return Buffer.from(text.replace(/-/g, ''), 'hex');
}
