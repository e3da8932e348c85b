/**
 * UUIDs on the wire are 16 raw bytes in RFC 4122 order (libuuid `uuid_parse` in
 * `res/res_audiosocket.c` `ast_audiosocket_init`; docs/protocol.md#uuid).
 * Asterisk accepts either case in the dialplan; we always present lower case 8-4-4-4-12.
 */
import { audioSocketError, ErrorCodes } from '../errors.js';

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Formats 16 bytes as a canonical lower-case hyphenated UUID. */
export function formatUuid(bytes: Uint8Array): string {
  if (bytes.length !== 16) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `a UUID is 16 bytes, got ${bytes.length}`);
  }
  let s = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
    s += HEX[bytes[i]!];
  }
  return s;
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
