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

/**
 * Every code of a non-fatal report: a call's `warning` event ({@link CallWarningCode}) and the
 * simulated Asterisk clients' `violation` events ({@link ClientViolationCode},
 * {@link WebSocketViolationCode}). One vocabulary with {@link ErrorCodes}: a condition that can
 * be a warning or an error has one name, e.g. warning `PEER_NOT_READING` and, once fatal, error
 * `ERR_AUDIOSOCKET_PEER_NOT_READING`. The values are the names, stable across versions.
 */
export const WarningCodes = {
  // A call's `warning` event (both transports).
  /** An async iterator over received audio fell behind; its oldest frames were dropped (`stats.droppedIn`). */
  ITERATOR_OVERFLOW: 'ITERATOR_OVERFLOW',
  /**
   * The peer does not read: our send buffer is over its bound (AudioSocket `maxBufferedMs`,
   * chan_websocket `maxBufferedBytes`) and outbound audio is being dropped (`stats.droppedOut`).
   * After `peerNotReadingTimeout` the call ends with `ERR_AUDIOSOCKET_PEER_NOT_READING`.
   */
  PEER_NOT_READING: 'PEER_NOT_READING',
  /**
   * A queue was full and audio was dropped whole. On a call: written audio beyond `maxQueuedMs`
   * (`droppedMs`). From the chan_websocket client: a message Asterisk would drop with 1000 frames queued.
   */
  QUEUE_FULL: 'QUEUE_FULL',
  /** AudioSocket: kind 0x10 audio looks like G.711, not slin (a channel driver without `c()`). */
  INBOUND_FORMAT: 'INBOUND_FORMAT',
  /** A received message that cannot be used as it is, e.g. odd-length slin over chan_websocket (its last byte dropped, `stats.oddAudioIn`). */
  UNEXPECTED_MESSAGE: 'UNEXPECTED_MESSAGE',
  /** chan_websocket: a text message that is not a valid control message (skipped). */
  MALFORMED_CONTROL: 'MALFORMED_CONTROL',
  /** chan_websocket: a valid event that makes no sense now (a second MEDIA_START). */
  UNEXPECTED_EVENT: 'UNEXPECTED_EVENT',
  /** chan_websocket: Asterisk answered a command with an ERROR event. */
  REMOTE_ERROR: 'REMOTE_ERROR',
  /** chan_websocket: Asterisk never answered MARK_MEDIA (before 20.18/22.8); plays and marks now complete by our clock. */
  MARKS_UNSUPPORTED: 'MARKS_UNSUPPORTED',

  // The simulated AudioSocket Asterisk's `violation` event (res/res_audiosocket.c's rules).
  /** Zero-length audio: Asterisk 20.14+/21.9+/22.4+/23.0+ ends the call. */
  ZERO_LENGTH_AUDIO: 'ZERO_LENGTH_AUDIO',
  /** A kind Asterisk does not accept from the server (only audio and hangup): it ends the call. */
  FORBIDDEN_KIND: 'FORBIDDEN_KIND',
  /** A message split over writes more than 5 ms apart: Asterisk ends the call. */
  SPLIT_MESSAGE: 'SPLIT_MESSAGE',
  /** Odd-length slin audio: the samples are misaligned. */
  ODD_LENGTH: 'ODD_LENGTH',
  /** Something sent after the hangup message: Asterisk never reads it. */
  AFTER_HANGUP: 'AFTER_HANGUP',
  /** The server closed in the middle of a message. */
  TRUNCATED: 'TRUNCATED',

  // The simulated chan_websocket Asterisk's `violation` event (channels/chan_websocket.c's rules).
  /** Bytes at the end of a binary message that are not a whole frame: Asterisk drops them. */
  PARTIAL_FRAME: 'PARTIAL_FRAME',
  /** Over Asterisk's 65535-byte frame buffer: it closes with 1009 and hangs up. */
  MESSAGE_TOO_BIG: 'MESSAGE_TOO_BIG',
  /** Audio sent while the media direction is `in`: dropped. */
  MEDIA_DIRECTION_IN: 'MEDIA_DIRECTION_IN',
  /** An empty text message: ignored with a log warning. */
  TEXT_EMPTY: 'TEXT_EMPTY',
  /** A text message over 128 bytes: ignored with a log warning. */
  TEXT_TOO_LONG: 'TEXT_TOO_LONG',
  /** An unknown command: ignored with a log warning. */
  UNKNOWN_COMMAND: 'UNKNOWN_COMMAND',
  /** A JSON command that does not parse: answered with ERROR. */
  BAD_JSON: 'BAD_JSON',
  /** A command Asterisk refuses now: answered with ERROR. */
  COMMAND_REFUSED: 'COMMAND_REFUSED',
  /** A WebSocket frame type Asterisk does not support. */
  BAD_OPCODE: 'BAD_OPCODE',
} as const;

/** Any code of {@link WarningCodes}. */
export type WarningCode = keyof typeof WarningCodes;

/** Codes of a call's `warning` event. */
export type CallWarningCode = Extract<
  WarningCode,
  | 'ITERATOR_OVERFLOW'
  | 'PEER_NOT_READING'
  | 'QUEUE_FULL'
  | 'INBOUND_FORMAT'
  | 'UNEXPECTED_MESSAGE'
  | 'MALFORMED_CONTROL'
  | 'UNEXPECTED_EVENT'
  | 'REMOTE_ERROR'
  | 'MARKS_UNSUPPORTED'
>;

/** Codes of the simulated AudioSocket Asterisk's `violation` event. */
export type ClientViolationCode = Extract<
  WarningCode,
  'ZERO_LENGTH_AUDIO' | 'FORBIDDEN_KIND' | 'SPLIT_MESSAGE' | 'ODD_LENGTH' | 'AFTER_HANGUP' | 'TRUNCATED'
>;

/** Codes of the simulated chan_websocket Asterisk's `violation` event. */
export type WebSocketViolationCode = Extract<
  WarningCode,
  | 'PARTIAL_FRAME'
  | 'QUEUE_FULL'
  | 'MESSAGE_TOO_BIG'
  | 'MEDIA_DIRECTION_IN'
  | 'TEXT_EMPTY'
  | 'TEXT_TOO_LONG'
  | 'UNKNOWN_COMMAND'
  | 'BAD_JSON'
  | 'COMMAND_REFUSED'
  | 'BAD_OPCODE'
>;

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

/**
 * What an operation aborted by its `signal` rejects with, the way Node core does (`events.once`,
 * `timers/promises`, `fs.promises`): name `AbortError`, code `ABORT_ERR`, the signal's reason as
 * `cause`. Check `err.name === 'AbortError'` as with Node's own.
 */
export class AbortError extends Error {
  override readonly name = 'AbortError';
  readonly code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The AbortError of an operation (`what`) aborted by `signal`, naming the reason. */
export function abortedError(what: string, signal: AbortSignal): AbortError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : String(reason);
  return new AbortError(`${what} was aborted: ${why}`, { cause: reason });
}

/** The error a call ends with when the user's handler or a listener failed with `cause`. */
export function handlerError(cause: unknown): AudioSocketError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return audioSocketError(ErrorCodes.HANDLER, `call handler failed: ${message}`, cause);
}

/** Shorthand used across the library. */
export function audioSocketError(code: ErrorCode, message: string, cause?: unknown): AudioSocketError {
  return new AudioSocketError(code, message, cause === undefined ? undefined : { cause });
}

/**
 * Why a connection failed, in one line: OpenSSL's own text for a failed TLS handshake spans
 * lines and names its source files, so only its reason is kept ("unknown ca", ...).
 */
export function connectErrorText(err: NodeJS.ErrnoException): string {
  if (err.code === 'EPROTO') {
    if (/wrong version number/.test(err.message)) return 'the TLS handshake failed (the server answered without TLS)';
    const reason = /SSL routines:(?:[^:\n]*:)?([^:\n]+)/.exec(err.message)?.[1];
    return `the TLS handshake failed${reason === undefined ? '' : ` (${reason.trim()})`}`;
  }
  return err.message.split('\n')[0]!;
}
