/**
 * The AudioSocket handshake of one accepted connection, before it is a call: read until the UUID
 * message, then hand the socket over. The server constructs the {@link AudioSocketCall} only
 * then, with its UUID, the way `ws` does its upgrade in the server before a WebSocket exists.
 *
 * Until the UUID arrives nothing bigger than a UUID is accepted: a stranger announcing 64 KiB
 * payloads cannot make us hold 64 KiB per connection.
 */
import type { Socket } from 'node:net';
import { AudioSocketError, audioSocketError, ErrorCodes } from '../errors.js';
import { HANGUP_MESSAGE } from '../protocol/encoder.js';
import { Kind, kindName } from '../protocol/kinds.js';
import { MessageParser } from '../protocol/parser.js';
import { formatUuid } from '../protocol/uuid.js';
import type { Clock, TimerHandle } from '../clock.js';

/** The start of an HTTP request line (the first bytes of a WebSocket or browser client). */
const HTTP_REQUEST = /^(GET|POST|HEAD|PUT|OPTIONS|DELETE|PATCH) /;
/** Text typed at the port (a person with netcat, a health check): AudioSocket's first byte is 0x01. */
const PRINTABLE = /^[\x20-\x7e\r\n\t]+$/;

/** Why a connection never became a call. */
export type HandshakeFailureReason = 'closed-before-uuid' | 'timeout' | 'protocol-error';

/**
 * What a call takes over from its handshake: the socket's parser, possibly in the middle of the
 * chunk that carried the UUID (the rest of that chunk is the call's first audio).
 */
export interface ParserHandover {
  /** The socket's parser; its `bytesPushed` counts every byte received, the UUID message included. */
  readonly parser: MessageParser;
  /**
   * From now on messages go to `onMessage`, called with `receiver` as `this` (see
   * {@link MessageParser.deliverTo}), and a failure while parsing the current chunk (a protocol
   * error, or a throwing listener) to `onFailure`.
   */
  attach<R>(onMessage: (this: R, kind: number, payload: Buffer) => void, receiver: R, onFailure: (error: unknown) => void): void;
}

/** The outcome of a handshake. */
export interface HandshakeEvents {
  /** The UUID arrived: the socket is the call's now (this handshake has let go of it). */
  uuid(uuid: string, handover: ParserHandover): void;
  /** The connection closed or broke the protocol before its UUID; the socket is destroyed. */
  failed(reason: HandshakeFailureReason, error?: AudioSocketError): void;
}

/** Settings of a handshake (from the server's resolved call settings). */
export interface HandshakeSettings {
  maxPayload: number;
  handshakeTimeout: number;
  hangupTimeout: number;
}

type State = 'waiting' | 'done';

export class Handshake {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly #socket: Socket;
  readonly #settings: HandshakeSettings;
  readonly #clock: Clock;
  readonly #events: HandshakeEvents;
  readonly #parser: MessageParser;
  #state: State = 'waiting';
  #timer: TimerHandle | undefined;
  #onFailure: ((error: unknown) => void) | undefined;
  readonly #onData = (chunk: Buffer): void => this.#data(chunk);
  readonly #onEnd = (): void => this.#eof();
  readonly #onError = (): void => this.#fail('closed-before-uuid');
  readonly #onClose = (): void => this.#fail('closed-before-uuid');

  constructor(socket: Socket, settings: HandshakeSettings, clock: Clock, events: HandshakeEvents) {
    this.#socket = socket;
    this.#settings = settings;
    this.#clock = clock;
    this.#events = events;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.#parser = new MessageParser((kind, payload) => this.#message(kind, payload), {
      maxPayload: Math.min(16, settings.maxPayload),
    });
    socket.setNoDelay(true);
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    const ms = settings.handshakeTimeout;
    if (ms > 0 && ms !== Infinity) this.#timer = clock.setTimer(() => this.#timeout(), ms);
  }

  /**
   * Closes a connection that never became a call (server closing): says hangup, as a bare close
   * makes old Asterisk spin. Resolves when the socket is closed.
   */
  abort(): Promise<void> {
    const socket = this.#socket;
    if (this.#state !== 'waiting' || socket.destroyed) return Promise.resolve();
    this.#finish();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    socket.end(HANGUP_MESSAGE);
    const ms = this.#settings.hangupTimeout;
    if (ms !== Infinity) {
      const timer = this.#clock.setTimer(() => socket.destroy(), ms);
      void closed.then(() => this.#clock.clearTimer(timer));
    }
    return closed;
  }

  #data(chunk: Buffer): void {
    if (this.#parser.bytesPushed === 0 && HTTP_REQUEST.test(chunk.toString('latin1', 0, Math.min(chunk.length, 8)))) {
      const line = chunk.toString('latin1', 0, Math.min(chunk.length, 120)).split('\r\n')[0];
      this.#protocolError(
        `an HTTP request ("${line}") on the AudioSocket port: a WebSocket (chan_websocket) or browser client belongs on the server's WebSocket or monitor port`,
      );
      return;
    }
    if (this.#parser.bytesPushed === 0 && PRINTABLE.test(chunk.toString('latin1', 0, Math.min(chunk.length, 4)))) {
      const text = chunk
        .toString('latin1', 0, Math.min(chunk.length, 40))
        .trim()
        .split(/[\r\n]/)[0];
      this.#protocolError(
        `text ("${text}") on the AudioSocket port, not an AudioSocket stream (which starts with the UUID message, kind 0x01)`,
      );
      return;
    }
    try {
      this.#parser.push(chunk);
    } catch (err) {
      if (this.#onFailure !== undefined) {
        this.#onFailure(err); // the call's now: a listener threw, or its audio broke the protocol
      } else if (err instanceof AudioSocketError && err === this.#parser.error) {
        this.#protocolError(`expected the UUID message (kind 0x01, 16 bytes) first: ${err.message}`);
      } else {
        this.#socket.destroy(); // the UUID came but no call took the socket over: nobody to tell
      }
    }
  }

  #message(kind: number, payload: Buffer): void {
    if (this.#state !== 'waiting') return;
    if (kind !== Kind.UUID || payload.length !== 16) {
      const what = kind === Kind.UUID ? `a UUID of ${payload.length} bytes (expected 16)` : `a ${kindName(kind)} message`;
      this.#protocolError(`expected the UUID message (kind 0x01, 16 bytes) first, got ${what}`);
      return;
    }
    this.#finish();
    this.#parser.maxPayload = this.#settings.maxPayload;
    const handover: ParserHandover = {
      parser: this.#parser,
      attach: (onMessage, receiver, onFailure) => {
        // The parser is the call's now, and nothing of it points back here: once the current
        // chunk is parsed, this handshake (its listeners, the server's closures) can be collected.
        this.#parser.deliverTo(onMessage, receiver);
        this.#onFailure = onFailure;
        // The rest of the current chunk still arrives through our `data` listener (removed
        // already, but still running); the next chunks go to the call's own.
      },
    };
    this.#events.uuid(formatUuid(payload), handover);
  }

  #eof(): void {
    const truncated = this.#parser.end();
    if (truncated) this.#fail('protocol-error', truncated);
    else this.#fail('closed-before-uuid');
  }

  #timeout(): void {
    this.#timer = undefined;
    this.#fail(
      'timeout',
      audioSocketError(
        ErrorCodes.HANDSHAKE_TIMEOUT,
        `no UUID within ${this.#settings.handshakeTimeout} ms (for the AudioSocket() application, is the channel answered?)`,
      ),
    );
  }

  #protocolError(message: string): void {
    this.#fail('protocol-error', audioSocketError(ErrorCodes.PROTOCOL, message));
  }

  #fail(reason: HandshakeFailureReason, error?: AudioSocketError): void {
    if (this.#state !== 'waiting') return;
    this.#finish();
    this.#socket.on('error', () => {});
    this.#socket.destroy();
    this.#events.failed(reason, error);
  }

  /** Lets go of the socket: no more timer, no more listeners of ours. */
  #finish(): void {
    this.#state = 'done';
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    const socket = this.#socket;
    socket.off('data', this.#onData);
    socket.off('end', this.#onEnd);
    socket.off('error', this.#onError);
    socket.off('close', this.#onClose);
  }
}
