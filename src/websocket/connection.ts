/**
 * One chan_websocket call on the wire: a `ws` WebSocket after MEDIA_START, with typed events
 * for what Asterisk sends and methods for every command.
 *
 * Transport only. It frames outbound audio the way Asterisk needs (whole `optimal_frame_size`
 * frames, one per message, so nothing is dropped by Asterisk's re-framer and passthrough mode
 * gets one frame per message too), tracks MEDIA_XOFF/MEDIA_XON and the socket's backpressure,
 * and isolates bad input to this one connection. It does not pace, queue for later, or convert
 * formats: the layer above decides what to send when (see `docs/websocket.md`).
 * @module
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import WebSocket, { type RawData } from 'ws';
import { AudioSocketError, audioSocketError, ErrorCodes } from '../errors.js';
import { silenceByte } from '../audio/format.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import {
  encodeCommand,
  maxMessagePayload,
  parseEvent,
  type AsteriskEvent,
  type ControlFormat,
  type MediaCommand,
  type MediaDirection,
  type MediaStart,
  type MediaStatus,
} from '../protocol/websocket.js';

/** Options of a {@link MediaConnection} (set through the server or {@link connectIncoming}). */
export interface MediaConnectionOptions {
  /**
   * `sendAudio()` returns false once this many bytes wait in the socket (ws `bufferedAmount`);
   * `drain` follows when they are gone. Default 65536.
   */
  highWaterMark?: number;
  /** Audio beyond this many buffered bytes is dropped and counted (a peer that never reads). Default 4 MiB. */
  maxBufferedBytes?: number;
  /**
   * End the connection (`ERR_AUDIOSOCKET_PEER_NOT_READING`) when no queued send has completed
   * for this long, ms. Default 10000; 0 (or Infinity) disables.
   */
  peerNotReadingTimeout?: number;
  /** After HANGUP or close(), ms to wait for the close handshake before destroying the socket. Default 2000. */
  hangupTimeout?: number;
  /** Clock of the peer-not-reading and hangup timers. Default: the system clock. */
  clock?: Clock;
}

/** How a connection ended. */
export interface MediaClose {
  /**
   * - `remote`: Asterisk closed (channel hung up: code 1000; or the TCP connection dropped: 1006).
   * - `local`: we asked for it ({@link MediaConnection.hangup} or {@link MediaConnection.close}).
   * - `error`: a fatal error on this connection; see `error`.
   */
  by: 'remote' | 'local' | 'error';
  /**
   * WebSocket close code: the peer's (1005 when it gave none, 1006 when the connection dropped);
   * after a fatal error, the one we closed with (1009 too large, 1002 protocol, 1011 other, 1006 destroyed).
   */
  code: number;
  reason: string;
  error?: AudioSocketError;
}

/** Something non-fatal on a connection. */
export interface MediaWarning {
  /**
   * - `MALFORMED_CONTROL`: a text message that is not a valid control message (skipped).
   * - `UNEXPECTED_EVENT`: a valid event that makes no sense now (a second MEDIA_START), or an
   *   event name this library does not know (once per name).
   * - `REMOTE_ERROR`: Asterisk answered a command with an ERROR event.
   * - `PEER_NOT_READING`: audio dropped because `maxBufferedBytes` was reached (the peer does not read).
   */
  code: 'MALFORMED_CONTROL' | 'UNEXPECTED_EVENT' | 'REMOTE_ERROR' | 'PEER_NOT_READING';
  message: string;
  error?: AudioSocketError;
}

/** Events of a {@link MediaConnection}. */
export interface MediaConnectionEvents {
  /** A binary message: audio in the channel's format (`start.format`), as Asterisk sent it. */
  audio: [payload: Buffer];
  /** DTMF_END: a key press ended. */
  dtmf: [digit: string];
  /** MEDIA_MARK_PROCESSED: everything queued before the mark has been played to the channel. */
  markProcessed: [correlationId: string];
  /** MEDIA_XOFF: Asterisk's queue reached 900 frames; stop sending until `xon`. */
  xoff: [];
  /** MEDIA_XON: the queue is below 800 frames again. */
  xon: [];
  /** QUEUE_DRAINED: the queue ran empty after REPORT_QUEUE_DRAINED (one-shot). */
  queueDrained: [];
  /** MEDIA_BUFFERING_COMPLETED: the audio sent before STOP_MEDIA_BUFFERING has been played. */
  bufferingCompleted: [correlationId: string];
  /** STATUS: the answer to GET_STATUS. */
  status: [status: MediaStatus];
  /** Every control event from Asterisk, typed (including unknown ones), before its own event. */
  event: [event: AsteriskEvent];
  /** `sendAudio()` returned false and the socket buffer and Asterisk's queue (XON) have room again. */
  drain: [];
  /** Something non-fatal. */
  warning: [warning: MediaWarning];
  /** A fatal error, just before the connection closes. Emitted only if someone listens; also in `close`. */
  error: [error: AudioSocketError];
  /** The WebSocket is closed. Emitted once. */
  close: [info: MediaClose];
}

/** Counters of a connection. */
export interface MediaConnectionStats {
  /** Binary messages received (audio from Asterisk). */
  audioIn: number;
  audioBytesIn: number;
  /** Text messages received after MEDIA_START. */
  eventsIn: number;
  /** Binary messages sent (one frame each, unless passthrough). */
  framesOut: number;
  audioBytesOut: number;
  /** Text messages (commands) sent. */
  commandsOut: number;
  /** Audio bytes dropped because `maxBufferedBytes` was reached. */
  droppedBytesOut: number;
  /** Audio bytes discarded from the partial-frame carry (flushMedia(), flushPending(false), close). */
  discardedBytesOut: number;
  /** MEDIA_XOFF events received. */
  xoffs: number;
}

/** Where a connection came from. */
export interface MediaPeer {
  remoteAddress: string;
  remotePort: number;
  /** Request path and query as Asterisk sent them (`uri` of `websocket_client.conf` plus `v()` parameters). */
  url: string;
  headers: IncomingMessage['headers'];
}

const DEFAULTS = {
  highWaterMark: 65536,
  maxBufferedBytes: 4 * 1024 * 1024,
  peerNotReadingTimeout: 10000,
  hangupTimeout: 2000,
};

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `${name} must be a non-negative number, got ${String(value)}`);
  }
  return value;
}

/** @internal Validates connection options once (the server shares the result). */
export function resolveConnectionOptions(o: MediaConnectionOptions = {}): Required<MediaConnectionOptions> {
  return {
    highWaterMark: nonNegative('highWaterMark', o.highWaterMark, DEFAULTS.highWaterMark),
    maxBufferedBytes: nonNegative('maxBufferedBytes', o.maxBufferedBytes, DEFAULTS.maxBufferedBytes),
    peerNotReadingTimeout: nonNegative('peerNotReadingTimeout', o.peerNotReadingTimeout, DEFAULTS.peerNotReadingTimeout),
    hangupTimeout: nonNegative('hangupTimeout', o.hangupTimeout, DEFAULTS.hangupTimeout),
    clock: o.clock ?? systemClock,
  };
}

/** @internal Maps a `ws` receiver error to our codes. */
export function wsError(err: Error & { code?: string }): AudioSocketError {
  if (err instanceof AudioSocketError) return err;
  if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
    return audioSocketError(ErrorCodes.PAYLOAD_TOO_LARGE, `WebSocket message too large: ${err.message}`, err);
  }
  if (typeof err.code === 'string' && err.code.startsWith('WS_ERR_')) {
    return audioSocketError(ErrorCodes.PROTOCOL, `WebSocket protocol error: ${err.message}`, err);
  }
  return audioSocketError(ErrorCodes.SOCKET, `WebSocket error: ${err.message}`, err);
}

/** @internal */
export function rawToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * One chan_websocket call. Made by {@link WebSocketMediaServer} (Asterisk connected to us) or
 * {@link connectIncoming} (we connected to Asterisk's `/media/<id>`), once MEDIA_START has
 * arrived; `start` is never pending.
 */
export class MediaConnection extends EventEmitter<MediaConnectionEvents> {
  /** What MEDIA_START said. */
  readonly start: MediaStart;
  /** The control format Asterisk uses on this channel; every command is sent in it. */
  readonly controlFormat: ControlFormat;
  /** Where the connection came from. */
  readonly peer: MediaPeer;
  /** Resolves when the WebSocket is closed. Never rejects. */
  readonly closed: Promise<MediaClose>;
  /** Aborted when the connection closes. */
  readonly signal: AbortSignal;
  readonly #ws: WebSocket;
  readonly #opts: Required<MediaConnectionOptions>;
  readonly #maxPayload: number;
  readonly #abort = new AbortController();
  #resolveClosed!: (c: MediaClose) => void;
  #xoff = false;
  #needDrain = false;
  #localClose = false;
  #error: AudioSocketError | undefined;
  #errorCloseCode: number | undefined;
  #closeInfo: MediaClose | undefined;
  #killTimer: TimerHandle | undefined;
  #watchdog: TimerHandle | undefined;
  #outstanding = 0;
  #lastProgress = 0;
  #pending: Buffer = Buffer.alloc(0);
  #held: [RawData, boolean][] | undefined;
  #droppedWarned = false;
  #unknownSeen = new Set<string>();
  #statusWaiters: { resolve: (s: MediaStatus) => void; reject: (e: Error) => void }[] = [];
  #stats: MediaConnectionStats = {
    audioIn: 0,
    audioBytesIn: 0,
    eventsIn: 0,
    framesOut: 0,
    audioBytesOut: 0,
    commandsOut: 0,
    droppedBytesOut: 0,
    discardedBytesOut: 0,
    xoffs: 0,
  };

  /**
   * @internal Use the server or {@link connectIncoming}. `masked` is true when we are the
   * WebSocket client (our frames then carry a mask and Asterisk's limit is 4 bytes lower).
   */
  constructor(
    ws: WebSocket,
    start: MediaStart,
    controlFormat: ControlFormat,
    peer: MediaPeer,
    options: Required<MediaConnectionOptions>,
    masked: boolean,
  ) {
    super();
    this.#ws = ws;
    this.start = start;
    this.controlFormat = controlFormat;
    this.peer = peer;
    this.#opts = options;
    this.#maxPayload = maxMessagePayload(masked);
    this.signal = this.#abort.signal;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    // Messages that arrive with MEDIA_START (ws emits a whole TCP chunk in one loop) are held
    // until the next macrotask, so listeners attached right after the connection is handed out
    // (also after an await) see them.
    this.#held = [];
    setImmediate(() => this.#release());
    ws.on('message', (data, isBinary) => {
      if (this.#held) this.#held.push([data, isBinary]);
      else this.#onMessage(data, isBinary);
    });
    ws.on('error', (err) => this.#fail(wsError(err)));
    ws.on('close', (code, reason) => this.#onClose(code, reason.toString()));
    if (ws.readyState === WebSocket.CLOSED) queueMicrotask(() => this.#onClose(1006, ''));
  }

  /** The channel's unique id (MEDIA_START `channel_id`; before 20.17/22.7 the connection id). */
  get id(): string {
    return this.start.channelId ?? this.start.connectionId;
  }

  /** True while the WebSocket is open. */
  get connected(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  /** True between MEDIA_XOFF and MEDIA_XON: Asterisk's queue holds 900 frames or more. */
  get xoff(): boolean {
    return this.#xoff;
  }

  /** Bytes waiting in the WebSocket for the network (ws `bufferedAmount`). */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  /** True when more audio may be sent now: open, no XOFF, socket buffer below `highWaterMark`. */
  get writable(): boolean {
    return this.connected && !this.#xoff && this.#ws.bufferedAmount < this.#opts.highWaterMark;
  }

  /** Bytes of a partial frame held back until the rest arrives (see {@link sendAudio}). */
  get pendingBytes(): number {
    return this.#pending.length;
  }

  /** A snapshot of the counters. */
  get stats(): MediaConnectionStats {
    return { ...this.#stats };
  }

  /** How the connection ended, once it has. */
  get closeInfo(): MediaClose | undefined {
    return this.#closeInfo;
  }

  /**
   * Sends audio in the channel's format. Asterisk drops the tail of every binary message that
   * is not a whole `optimal_frame_size` frame (outside START_MEDIA_BUFFERING), so the tail is
   * held here and sent with the next call; each whole frame goes out as its own message. With a
   * passthrough codec (`optimalFrameSize` 0: opus, speex, g729) each call is one message,
   * as Asterisk then plays each message as one frame.
   *
   * Never paces: everything goes to Asterisk's queue at once. Returns false when the caller
   * should wait for `drain`: Asterisk sent MEDIA_XOFF, or the socket buffer is above
   * `highWaterMark`. Audio sent regardless is not lost until Asterisk's queue holds 1000 frames.
   *
   * @throws AudioSocketError `CALL_ENDED` when closed; `INVALID_MESSAGE` for a passthrough
   *   message that is empty or larger than Asterisk reads.
   */
  sendAudio(audio: Uint8Array): boolean {
    this.#assertOpen('sendAudio');
    if (!(audio instanceof Uint8Array)) {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `sendAudio needs a Buffer or Uint8Array, got ${typeof audio}`);
    }
    const size = this.start.optimalFrameSize;
    if (size === 0) {
      if (audio.length === 0 || audio.length > this.#maxPayload) {
        throw audioSocketError(
          ErrorCodes.INVALID_MESSAGE,
          `a passthrough audio message must hold 1..${this.#maxPayload} bytes, got ${audio.length}`,
        );
      }
      this.#sendFrame(Buffer.from(audio));
      return this.#writableOrArm();
    }
    let data: Buffer;
    if (this.#pending.length > 0) {
      data = Buffer.concat([this.#pending, audio]);
    } else {
      data = Buffer.from(audio.buffer, audio.byteOffset, audio.byteLength);
    }
    let off = 0;
    for (; off + size <= data.length; off += size) {
      // A copy: the caller may reuse its buffer before the socket has written it.
      this.#sendFrame(Buffer.from(data.subarray(off, off + size)));
    }
    this.#pending = off === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(off));
    return this.#writableOrArm();
  }

  /**
   * Sends one binary message exactly as given, without frame alignment: for START_MEDIA_BUFFERING
   * (where Asterisk joins partial frames itself), codecs outside Asterisk's table, and fault tests.
   * Returns what {@link sendAudio} returns.
   * @throws AudioSocketError `CALL_ENDED` when closed; `INVALID_MESSAGE` when empty or larger than Asterisk reads.
   */
  sendRaw(payload: Uint8Array): boolean {
    this.#assertOpen('sendRaw');
    if (!(payload instanceof Uint8Array) || payload.length === 0 || payload.length > this.#maxPayload) {
      throw audioSocketError(
        ErrorCodes.INVALID_MESSAGE,
        `a binary message must hold 1..${this.#maxPayload} bytes, got ${payload instanceof Uint8Array ? payload.length : typeof payload}`,
      );
    }
    this.#sendFrame(Buffer.from(payload));
    return this.#writableOrArm();
  }

  /**
   * Sends the held partial frame now, padded with silence to a whole frame (`pad`, default
   * true; only for slin/ulaw/alaw), or discards it (`pad: false`). Call it at the end of a prompt
   * so its last milliseconds are played. Returns what {@link sendAudio} returns.
   */
  flushPending(options: { pad?: boolean } = {}): boolean {
    if (this.#pending.length === 0) return this.writable;
    const pending = this.#pending;
    this.#pending = Buffer.alloc(0);
    const encoding = this.start.audioFormat?.encoding;
    if (options.pad === false || encoding === undefined || !this.connected) {
      this.#stats.discardedBytesOut += pending.length;
      return this.writable;
    }
    const frame = Buffer.alloc(this.start.optimalFrameSize, silenceByte(encoding));
    pending.copy(frame);
    this.#sendFrame(frame);
    return this.#writableOrArm();
  }

  /**
   * Sends one command in the channel's control format.
   * @throws AudioSocketError `CALL_ENDED` when closed; `INVALID_ARGUMENT`/`INVALID_MESSAGE` from
   *   {@link encodeCommand} (too long, SET_MEDIA_DIRECTION in plain text, ...).
   */
  sendCommand(command: MediaCommand): void {
    this.#assertOpen(command?.command ?? 'sendCommand');
    const text = encodeCommand(command, this.controlFormat);
    this.#stats.commandsOut++;
    this.#ws.send(text);
  }

  /** ANSWER: answer the channel (needed only when dialled with the `n` option). */
  answer(): void {
    this.sendCommand({ command: 'ANSWER' });
  }

  /**
   * FLUSH_MEDIA: Asterisk drops every queued frame *and every queued mark*: marks sent before a
   * flush are never answered. The partial frame held here is discarded too.
   */
  flushMedia(): void {
    this.sendCommand({ command: 'FLUSH_MEDIA' });
    this.#stats.discardedBytesOut += this.#pending.length;
    this.#pending = Buffer.alloc(0);
  }

  /** PAUSE_MEDIA: stop playing the queue (nothing is played, marks wait) until CONTINUE_MEDIA. */
  pauseMedia(): void {
    this.sendCommand({ command: 'PAUSE_MEDIA' });
  }

  /** CONTINUE_MEDIA: resume playing after PAUSE_MEDIA. */
  continueMedia(): void {
    this.sendCommand({ command: 'CONTINUE_MEDIA' });
  }

  /** START_MEDIA_BUFFERING: Asterisk keeps partial frames across messages until STOP_MEDIA_BUFFERING. */
  startMediaBuffering(): void {
    this.sendCommand({ command: 'START_MEDIA_BUFFERING' });
  }

  /** STOP_MEDIA_BUFFERING: Asterisk queues its partial frame, then answers MEDIA_BUFFERING_COMPLETED when it is played. */
  stopMediaBuffering(correlationId?: string): void {
    this.sendCommand(
      correlationId === undefined ? { command: 'STOP_MEDIA_BUFFERING' } : { command: 'STOP_MEDIA_BUFFERING', correlationId },
    );
  }

  /**
   * MARK_MEDIA: Asterisk answers `markProcessed` with this id once every frame queued before
   * it has been played (20.18/22.8/23.2+). Audio held in {@link pendingBytes} is not before it:
   * call {@link flushPending} first for a mark at the very end of a prompt.
   */
  markMedia(correlationId?: string): void {
    this.sendCommand(correlationId === undefined ? { command: 'MARK_MEDIA' } : { command: 'MARK_MEDIA', correlationId });
  }

  /** REPORT_QUEUE_DRAINED: one `queueDrained` the next time Asterisk finds its queue empty. */
  reportQueueDrained(): void {
    this.sendCommand({ command: 'REPORT_QUEUE_DRAINED' });
  }

  /** GET_STATUS: resolves with the next STATUS. Rejects with `CALL_ENDED` if the connection closes first. */
  getStatus(): Promise<MediaStatus> {
    this.sendCommand({ command: 'GET_STATUS' });
    return new Promise((resolve, reject) => this.#statusWaiters.push({ resolve, reject }));
  }

  /** SET_MEDIA_DIRECTION (JSON control format, 20.19/22.9/23.3+). */
  setMediaDirection(direction: MediaDirection): void {
    this.sendCommand({ command: 'SET_MEDIA_DIRECTION', direction });
  }

  /**
   * Hangs up: sends HANGUP, after which Asterisk hangs up the channel and closes the WebSocket
   * with 1000. If it has not closed within `hangupTimeout`, we close, then destroy. Resolves when closed.
   */
  hangup(): Promise<MediaClose> {
    if (this.connected && !this.#localClose) {
      this.#localClose = true;
      this.#stats.discardedBytesOut += this.#pending.length;
      this.#pending = Buffer.alloc(0);
      this.#stats.commandsOut++;
      this.#ws.send(encodeCommand({ command: 'HANGUP' }, this.controlFormat));
      this.#armKill(() => {
        this.#ws.close(1000);
        this.#armKill(() => this.#ws.terminate());
      });
    }
    return this.closed;
  }

  /**
   * Closes the WebSocket (Asterisk then hangs up the channel). `code` defaults to 1000. Resolves
   * when closed; destroys the socket if the close handshake takes longer than `hangupTimeout`.
   */
  close(code = 1000, reason = ''): Promise<MediaClose> {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) {
      this.#localClose = true;
      this.#ws.close(code, reason);
      this.#armKill(() => this.#ws.terminate());
    }
    return this.closed;
  }

  /** Destroys the socket at once, without a close handshake. */
  terminate(): Promise<MediaClose> {
    this.#localClose = true;
    this.#ws.terminate();
    return this.closed;
  }

  #assertOpen(what: string): void {
    if (!this.connected) {
      throw audioSocketError(ErrorCodes.CALL_ENDED, `${what}: the WebSocket connection is closed`);
    }
  }

  #sendFrame(frame: Buffer): void {
    if (this.#ws.bufferedAmount + frame.length > this.#opts.maxBufferedBytes) {
      this.#stats.droppedBytesOut += frame.length;
      if (!this.#droppedWarned) {
        this.#droppedWarned = true;
        this.#warn('PEER_NOT_READING', `peer is not reading: more than ${this.#opts.maxBufferedBytes} bytes wait; dropping outbound audio`);
      }
      return;
    }
    this.#stats.framesOut++;
    this.#stats.audioBytesOut += frame.length;
    if (this.#outstanding === 0) this.#lastProgress = this.#opts.clock.now();
    this.#outstanding++;
    this.#ws.send(frame, { binary: true }, () => {
      this.#outstanding--;
      this.#lastProgress = this.#opts.clock.now();
      this.#maybeDrain();
    });
    this.#armWatchdog();
  }

  #writableOrArm(): boolean {
    const ok = this.writable;
    if (!ok) this.#needDrain = true;
    return ok;
  }

  #maybeDrain(): void {
    if (this.#needDrain && this.writable) {
      this.#needDrain = false;
      this.#emitSafe('drain');
    }
  }

  #armWatchdog(): void {
    const limit = this.#opts.peerNotReadingTimeout;
    if (limit === 0 || limit === Infinity || this.#watchdog !== undefined) return;
    const check = (): void => {
      this.#watchdog = undefined;
      if (!this.connected || this.#outstanding === 0) return;
      const idle = this.#opts.clock.now() - this.#lastProgress;
      if (idle >= limit) {
        this.#fail(
          audioSocketError(
            ErrorCodes.PEER_NOT_READING,
            `the peer has not read for ${Math.round(idle)} ms (${this.#ws.bufferedAmount} bytes waiting)`,
          ),
          true,
        );
        return;
      }
      this.#watchdog = this.#opts.clock.setTimer(check, Math.max(10, limit - idle));
    };
    this.#watchdog = this.#opts.clock.setTimer(check, limit);
  }

  #clearTimers(watchdogToo: boolean): void {
    if (this.#killTimer !== undefined) this.#opts.clock.clearTimer(this.#killTimer);
    this.#killTimer = undefined;
    if (!watchdogToo) return;
    if (this.#watchdog !== undefined) this.#opts.clock.clearTimer(this.#watchdog);
    this.#watchdog = undefined;
  }

  #armKill(fn: () => void): void {
    this.#clearTimers(false);
    this.#killTimer = this.#opts.clock.setTimer(fn, this.#opts.hangupTimeout);
  }

  #release(): void {
    const held = this.#held;
    this.#held = undefined;
    for (const [data, isBinary] of held ?? []) this.#onMessage(data, isBinary);
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#closeInfo) return;
    if (isBinary) {
      const payload = rawToBuffer(data);
      this.#stats.audioIn++;
      this.#stats.audioBytesIn += payload.length;
      this.#emitSafe('audio', payload);
      return;
    }
    this.#stats.eventsIn++;
    const text = rawToBuffer(data).toString('utf8');
    let event: AsteriskEvent;
    try {
      event = parseEvent(text, this.controlFormat);
    } catch (err) {
      this.#warn('MALFORMED_CONTROL', (err as Error).message, err as AudioSocketError);
      return;
    }
    this.#emitSafe('event', event);
    switch (event.event) {
      case 'MEDIA_START':
        this.#warn('UNEXPECTED_EVENT', 'a second MEDIA_START on the same connection was ignored');
        break;
      case 'DTMF_END':
        this.#emitSafe('dtmf', event.digit);
        break;
      case 'MEDIA_MARK_PROCESSED':
        this.#emitSafe('markProcessed', event.correlationId);
        break;
      case 'MEDIA_XOFF':
        this.#stats.xoffs++;
        this.#xoff = true;
        this.#emitSafe('xoff');
        break;
      case 'MEDIA_XON':
        this.#xoff = false;
        this.#emitSafe('xon');
        this.#maybeDrain();
        break;
      case 'QUEUE_DRAINED':
        this.#emitSafe('queueDrained');
        break;
      case 'MEDIA_BUFFERING_COMPLETED':
        this.#emitSafe('bufferingCompleted', event.correlationId);
        break;
      case 'STATUS': {
        const { event: _name, ...status } = event;
        for (const w of this.#statusWaiters.splice(0)) w.resolve(status);
        this.#emitSafe('status', status);
        break;
      }
      case 'ERROR':
        this.#warn('REMOTE_ERROR', `Asterisk: ${event.errorText.trim()}`);
        break;
      case 'UNKNOWN':
        // A newer Asterisk's event: never fatal, reported once per name.
        if (!this.#unknownSeen.has(event.name)) {
          this.#unknownSeen.add(event.name);
          this.#warn('UNEXPECTED_EVENT', `unknown event ${event.name} ignored (a newer Asterisk?)`);
        }
        break;
    }
  }

  #warn(code: MediaWarning['code'], message: string, error?: AudioSocketError): void {
    this.#emitSafe('warning', error === undefined ? { code, message } : { code, message, error });
  }

  /**
   * Emits without letting a throwing listener take the process down: the error ends this
   * connection only.
   */
  #emitSafe<K extends keyof MediaConnectionEvents>(name: K, ...args: MediaConnectionEvents[K]): void {
    try {
      (this.emit as (n: K, ...a: MediaConnectionEvents[K]) => boolean)(name, ...args);
    } catch (err) {
      this.#fail(
        audioSocketError(ErrorCodes.HANDLER, `a '${String(name)}' listener threw: ${(err as Error)?.message ?? String(err)}`, err),
      );
    }
  }

  #fail(error: AudioSocketError, destroy = false): void {
    if (this.#error !== undefined || this.#closeInfo !== undefined) return;
    this.#error = error;
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', error);
      } catch {
        // An error listener that throws changes nothing: the connection is ending anyway.
      }
    }
    if (destroy) {
      this.#errorCloseCode = 1006;
      this.#ws.terminate();
      return;
    }
    const code = error.code === ErrorCodes.PAYLOAD_TOO_LARGE ? 1009 : error.code === ErrorCodes.PROTOCOL ? 1002 : 1011;
    // ws has already sent its own close for receiver errors (same codes).
    this.#errorCloseCode = code;
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.close(code);
    this.#armKill(() => this.#ws.terminate());
  }

  #onClose(code: number, reason: string): void {
    if (this.#closeInfo) return;
    this.#release();
    this.#clearTimers(true);
    // After a fatal error, the code is the one we closed with (the peer's answer is often never read).
    const info: MediaClose = {
      by: this.#error ? 'error' : this.#localClose ? 'local' : 'remote',
      code: this.#error ? (this.#errorCloseCode ?? code) : code,
      reason,
    };
    if (this.#error) info.error = this.#error;
    this.#closeInfo = info;
    this.#pending = Buffer.alloc(0);
    const ended = audioSocketError(ErrorCodes.CALL_ENDED, 'the WebSocket connection closed');
    for (const w of this.#statusWaiters.splice(0)) w.reject(ended);
    this.#abort.abort(ended);
    this.#resolveClosed(info);
    try {
      this.emit('close', info);
    } catch {
      // Nothing left to end.
    }
  }
}
