/**
 * Typed errors with stable `code` strings.
 *
 * Every error this library creates is an {@link AudioSocketError}; check `err.code` (stable across
 * versions) rather than the message. `instanceof` works across duplicate copies of the package
 * because the check uses a global symbol brand, as undici does.
 */

const kBrand = Symbol.for('audiosocket.error');

/** Every error code this library uses. */
export const ErrorCodes = {
  /** The peer broke the protocol: first message not a UUID, bad UUID length, ... */
  PROTOCOL: 'ERR_AUDIOSOCKET_PROTOCOL',
  /** A message header announced a payload larger than `maxPayload`. */
  PAYLOAD_TOO_LARGE: 'ERR_AUDIOSOCKET_PAYLOAD_TOO_LARGE',
  /** The connection ended in the middle of a message. */
  TRUNCATED: 'ERR_AUDIOSOCKET_TRUNCATED',
  /** No UUID arrived within `handshakeTimeout`. */
  HANDSHAKE_TIMEOUT: 'ERR_AUDIOSOCKET_HANDSHAKE_TIMEOUT',
  /** We were asked to send something Asterisk would treat as fatal (empty/odd audio, UUID, DTMF, error kind). */
  INVALID_MESSAGE: 'ERR_AUDIOSOCKET_INVALID_MESSAGE',
  /** An argument had the wrong type or range. */
  INVALID_ARGUMENT: 'ERR_AUDIOSOCKET_INVALID_ARGUMENT',
  /** An audio format description could not be understood or is unsupported. */
  INVALID_FORMAT: 'ERR_AUDIOSOCKET_INVALID_FORMAT',
  /** The operation needs a live call, but the call has ended. */
  CALL_ENDED: 'ERR_AUDIOSOCKET_CALL_ENDED',
  /** The user's call handler threw or rejected; the original error is `cause`. */
  HANDLER: 'ERR_AUDIOSOCKET_HANDLER',
  /** A socket-level error (other than a reset by the peer); the original error is `cause`. */
  SOCKET: 'ERR_AUDIOSOCKET_SOCKET',
  /** A connection attempt ({@link connect}) got no answer within `connectTimeout`. */
  CONNECT_TIMEOUT: 'ERR_AUDIOSOCKET_CONNECT_TIMEOUT',
  /** The operation was aborted by its `signal`; the signal's reason is `cause`. */
  ABORTED: 'ERR_AUDIOSOCKET_ABORTED',
  /** A play source (stream or iterator) threw or emitted an error; the original is `cause`. */
  SOURCE: 'ERR_AUDIOSOCKET_SOURCE',
  /** A file to play does not exist; the file system's error is `cause`. */
  FILE_NOT_FOUND: 'ERR_AUDIOSOCKET_FILE_NOT_FOUND',
  /** A file to play exists but could not be read (permissions, a directory, ...); the file system's error is `cause`. */
  FILE_READ: 'ERR_AUDIOSOCKET_FILE_READ',
  /** The peer stopped reading and our output buffer stayed full for too long. */
  PEER_NOT_READING: 'ERR_AUDIOSOCKET_PEER_NOT_READING',
  /** A WAV file is malformed (bad RIFF structure, missing chunks, truncated). */
  WAV_MALFORMED: 'ERR_AUDIOSOCKET_WAV_MALFORMED',
  /** A WAV file is well formed but uses an encoding we cannot read. */
  WAV_UNSUPPORTED: 'ERR_AUDIOSOCKET_WAV_UNSUPPORTED',
  /** The server is closed or closing. */
  SERVER_CLOSED: 'ERR_AUDIOSOCKET_SERVER_CLOSED',
  /**
   * chan_websocket: the peer did not offer the WebSocket subprotocol `media` that Asterisk's
   * `websocket_client.conf` (`protocols = media`) sends, or the server did not accept it.
   */
  SUBPROTOCOL: 'ERR_AUDIOSOCKET_SUBPROTOCOL',
} as const;

/** A stable error code, e.g. `'ERR_AUDIOSOCKET_PROTOCOL'`. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base class of every error this library throws or reports. */
export class AudioSocketError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  override get name(): string {
    return 'AudioSocketError';
  }

  get [kBrand](): true {
    return true;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true;
  }
}

/** Shorthand used across the library. */
export function audioSocketError(code: ErrorCode, message: string, cause?: unknown): AudioSocketError {
  return new AudioSocketError(code, message, cause === undefined ? undefined : { cause });
}
