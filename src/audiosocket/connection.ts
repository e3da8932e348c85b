/**
 * One AudioSocket call on the wire, after its UUID: the socket, the parser, and the send-buffer
 * policy. Transport only: it turns bytes into messages and messages into single socket writes;
 * what they mean is the call's business (`./call.ts`).
 *
 * The socket is read continuously whatever the application does: Asterisk drops the call when
 * its own writes block (docs/protocol.md#backpressure). Every message leaves in one socket write
 * (a message split more than 5 ms apart ends the call). A peer that stops reading gets its
 * output dropped beyond `maxBufferedMs`, counted, and after `peerNotReadingTimeout` the call ends.
 */
import type { Socket } from 'node:net';
import { AudioSocketError, audioSocketError, ErrorCodes } from '../errors.js';
import type { Clock, TimerHandle } from '../clock.js';
import { HANGUP_MESSAGE } from '../protocol/encoder.js';
import type { MessageParser } from '../protocol/parser.js';
import type { ParserHandover } from './handshake.js';

/**
 * What the connection tells its call, but its messages: those go from the parser straight to
 * the call (see {@link AudioSocketConnection}'s constructor).
 */
export interface AudioSocketConnectionEvents {
  /** The stream broke the protocol (a payload too large, a message cut by the close). */
  protocolError(error: AudioSocketError): void;
  /** A listener run from the parser callback threw: the rest of the chunk is unparsed. */
  listenerError(error: unknown): void;
  /** The peer's output is being dropped (first time only until it reads again). */
  blocked(bufferedBytes: number): void;
  /** The peer read nothing for `peerNotReadingTimeout`. */
  notReading(error: AudioSocketError): void;
  /** The peer closed its side (FIN) or reset the connection. */
  remoteEnd(): void;
  socketError(error: AudioSocketError): void;
  /** The socket is closed. */
  close(): void;
}

/** @internal */
export interface AudioSocketConnectionSettings {
  /** Output bytes allowed in Node's send buffer before messages are dropped. */
  maxBufferedBytes: number;
  peerNotReadingTimeout: number;
  hangupTimeout: number;
}

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * Memory for outbound messages, shared by every connection of the process: a message is built
 * in it and written at once, and a socket write the kernel takes whole (the steady state of a
 * peer that reads) holds nothing of it after, so the next message, of any call, is built in the
 * same memory. A frame's copy so writes to memory already in the CPU's cache instead of to
 * memory of its own call. One buffer per message size, for the first {@link MAX_SHARED_SIZES}
 * sizes asked (a server's calls use one full-frame size per rate and frame duration); the rare
 * others (the short last frame of a play) get memory of their own.
 */
const messageMemories = new Map<number, Buffer>();
const MAX_SHARED_SIZES = 16;
const NO_MEMORY = Buffer.alloc(0);
let lastMemory: Buffer = NO_MEMORY;

function sharedMessageMemory(size: number): Buffer {
  if (lastMemory.length === size) return lastMemory;
  let memory = messageMemories.get(size);
  if (memory === undefined) {
    // Its own memory, not a slice of Node's shared pool, which it would keep alive.
    memory = Buffer.allocUnsafeSlow(size);
    if (messageMemories.size >= MAX_SHARED_SIZES) return memory;
    messageMemories.set(size, memory);
  }
  lastMemory = memory;
  return memory;
}

/** A socket keeps `message` (a write it could not send at once): later messages get new memory. */
function releaseMessageMemory(message: Buffer): void {
  if (messageMemories.get(message.length) !== message) return;
  messageMemories.delete(message.length);
  if (lastMemory === message) lastMemory = NO_MEMORY;
}

/** `R`: what receives the messages (the call). */
export class AudioSocketConnection<R = unknown> {
  // Fields read per message come first, together (see PacedOutbound).
  readonly #socket: Socket;
  #ended = false;
  /** From the settings, kept here: read on every write. */
  readonly #maxBufferedBytes: number;
  #blockedSince: number | undefined;
  messagesOut = 0;
  bytesOut = 0;
  readonly #parser: MessageParser;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly #clock: Clock;
  readonly #settings: AudioSocketConnectionSettings;
  readonly #events: AudioSocketConnectionEvents;
  #hangupTimer: TimerHandle | undefined;
  droppedOut = 0;

  /**
   * Messages go to `onMessage` called with `receiver` as `this`: from the parser to the call in
   * one step, with no object between (a message's path crosses as few objects as it can, see
   * docs/architecture.md, "One outbound frame").
   */
  constructor(
    socket: Socket,
    handover: ParserHandover,
    clock: Clock,
    settings: AudioSocketConnectionSettings,
    events: AudioSocketConnectionEvents,
    onMessage: (this: R, kind: number, payload: Buffer) => void,
    receiver: R,
  ) {
    this.#socket = socket;
    this.#parser = handover.parser;
    this.#clock = clock;
    this.#settings = settings;
    this.#maxBufferedBytes = settings.maxBufferedBytes;
    this.#events = events;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    // A chunk goes to the parser itself, which counts its bytes: the connection is not read per chunk.
    const parser = handover.parser;
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch (err) {
        this.#onParseFailure(err);
      }
    });
    socket.on('end', () => this.#onEof());
    socket.on('error', (err: NodeJS.ErrnoException) => this.#onSocketError(err));
    socket.on('close', () => {
      if (this.#hangupTimer !== undefined) this.#clock.clearTimer(this.#hangupTimer);
      this.#hangupTimer = undefined;
      events.close();
    });
    handover.attach(onMessage, receiver, (err) => this.#onParseFailure(err));
  }

  /** Bytes received, the UUID message included. */
  get bytesIn(): number {
    return this.#parser.bytesPushed;
  }

  /**
   * Memory for the next message (see `WireWriter`): {@link sharedMessageMemory}, lent to every
   * connection in turn until a socket keeps it.
   */
  messageMemory(size: number): Buffer {
    return sharedMessageMemory(size);
  }

  /**
   * Writes one whole message. Returns `false` when it was dropped: the peer has not read what
   * we sent (over `maxBufferedBytes` waiting), or the connection is going away.
   */
  write(message: Buffer): boolean {
    const socket = this.#socket;
    // `writable` reads only the write side's state, which the write touches anyway.
    if (this.#ended || !socket.writable) return false;
    if (socket.writableLength > this.#maxBufferedBytes) {
      this.droppedOut++;
      const now = this.#clock.now();
      if (this.#blockedSince === undefined) {
        this.#blockedSince = now;
        this.#events.blocked(socket.writableLength);
      } else if (this.#settings.peerNotReadingTimeout > 0 && now - this.#blockedSince > this.#settings.peerNotReadingTimeout) {
        this.#events.notReading(
          audioSocketError(
            ErrorCodes.PEER_NOT_READING,
            `peer read nothing for ${Math.round(now - this.#blockedSince)} ms; ${this.droppedOut} messages dropped`,
          ),
        );
      }
      return false;
    }
    this.#blockedSince = undefined;
    this.messagesOut++;
    this.bytesOut += message.length;
    socket.write(message);
    // Bytes the kernel could not take at once stay counted in `writableLength` until sent: the
    // socket keeps this memory until then, so the next message gets other memory.
    if (socket.writableLength !== 0) releaseMessageMemory(message);
    return true;
  }

  /**
   * Ends the connection: with `sayHangup`, the hangup message `00 00 00` and a half-close, then
   * at most `hangupTimeout` for the peer to close; else at once.
   */
  end(sayHangup: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    const socket = this.#socket;
    if (sayHangup && socket.writable) {
      this.messagesOut++;
      this.bytesOut += HANGUP_MESSAGE.length;
      socket.end(HANGUP_MESSAGE);
      const ms = this.#settings.hangupTimeout;
      if (ms !== Infinity) this.#hangupTimer = this.#clock.setTimer(() => socket.destroy(), ms);
    } else {
      socket.destroy();
    }
  }

  #onParseFailure(err: unknown): void {
    if (err instanceof AudioSocketError && err === this.#parser.error) this.#events.protocolError(err);
    else this.#events.listenerError(err);
  }

  #onEof(): void {
    const truncated = this.#parser.end();
    if (truncated && !this.#ended) this.#events.protocolError(truncated);
    else this.#events.remoteEnd();
  }

  #onSocketError(err: NodeJS.ErrnoException): void {
    // Asterisk closes with RST when our audio is still unread in its buffer: a normal hangup.
    if (err.code !== undefined && RESET_CODES.has(err.code)) this.#events.remoteEnd();
    else this.#events.socketError(audioSocketError(ErrorCodes.SOCKET, `socket error: ${err.message}`, err));
    this.#socket.destroy();
  }
}
