/**
 * One AudioSocket call: one TCP connection from Asterisk.
 *
 * The socket is read continuously whatever the application does (Asterisk drops the call when
 * its writes block, see docs/protocol.md#backpressure); every message is written with a single socket write;
 * outbound audio goes through the paced {@link Outbound} queue.
 */
import { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';
import type { Socket } from 'node:net';
import { AudioSocketError, audioSocketError, ErrorCodes, handlerError, type CallWarningCode } from './errors.js';
import { DTMF_DIGITS, HANGUP_MESSAGE } from './protocol/encoder.js';
import { isAudioKind, Kind, sampleRateOfKind, type AudioKind } from './protocol/kinds.js';
import type { MessageParser } from './protocol/parser.js';
import type { ParserHandover } from './handshake.js';
import { Outbound, type OutboundStats } from './outbound/outbound.js';
import type { AudioSource, ByteConverter, PlayResult } from './outbound/queue.js';
import type { PacingParameters } from './outbound/pacer.js';
import type { FrameScheduler } from './scheduler.js';
import type { Clock, TimerHandle } from './clock.js';
import { InboundFormatMeter, type InboundFormatGuess } from './detect.js';
import { createConverter, type Converter } from './audio/convert.js';
import { parseFormat, sameFormat, type AudioFormat, type FormatSpec } from './audio/format.js';
import { createPlayStream, receivedFrames, rejectAsSourceError, wavPlaySource } from './call-stream.js';
import type { MediaStart } from './websocket/protocol.js';

/** One audio message received from Asterisk. */
export interface AudioFrame {
  /** Message kind on the wire, 0x10-0x18. */
  kind: AudioKind;
  /** Sample rate of `payload` (the kind's rate, or the `receive` format's when converting). */
  sampleRate: number;
  /** Format of `payload`: what Asterisk sent, or the call's `receive` format when one is set. */
  format: AudioFormat;
  /**
   * The audio. Without conversion it is the message payload itself, a view into the received
   * chunk: copy it if you keep it long.
   */
  payload: Buffer;
}

/**
 * Why a call ended.
 * - `remote-hangup`: Asterisk closed or reset the connection (it never sends a hangup message).
 * - `local-hangup`: {@link Call.hangup} or {@link Call.end} was called.
 * - `protocol-error`: the peer sent something that breaks the protocol (see `error.code`).
 * - `handler-error`: the server's call handler threw or rejected.
 * - `server-close`: the server was closed.
 * - `peer-not-reading`: our output stayed blocked for `peerNotReadingTimeout`.
 * - `socket-error`: another socket error (see `error.cause`).
 */
export type EndReason =
  'remote-hangup' | 'local-hangup' | 'protocol-error' | 'handler-error' | 'server-close' | 'peer-not-reading' | 'socket-error';

/** Counters of one call. */
export interface CallStats extends OutboundStats {
  /** Messages received after the UUID (audio, DTMF, others). */
  messagesIn: number;
  /** Bytes received, headers included. */
  bytesIn: number;
  /** Audio messages received. */
  audioIn: number;
  /** Zero-length audio messages received (old Asterisk versions send them for CNG; ignored). */
  emptyAudioIn: number;
  /** Odd-length slin messages received; the last byte was dropped to keep whole samples. */
  oddAudioIn: number;
  /** DTMF digits received. */
  dtmfIn: number;
  /** Messages of unknown or unexpected kinds received. */
  otherIn: number;
  /** Audio frames dropped because an async iterator did not keep up. */
  droppedIn: number;
  /** Messages written to the socket, hangup included. */
  messagesOut: number;
  /** Bytes written to the socket. */
  bytesOut: number;
  /** Outbound messages dropped because the peer was not reading (socket buffer over `maxBufferedMs`). */
  droppedOut: number;
}

/** What {@link Call.closed} resolves with and the `end` event carries. */
export interface CallEnd {
  reason: EndReason;
  /** Set for the error reasons. */
  error?: AudioSocketError;
  /** From the UUID to the socket's close, in ms. */
  durationMs: number;
  stats: CallStats;
}

/** A non-fatal condition worth a log line; `code` is one of {@link WarningCodes}, documented there. */
export interface CallWarning {
  code: CallWarningCode;
  message: string;
  /** Milliseconds of audio dropped, for `QUEUE_FULL`. */
  droppedMs?: number;
  /** The typed error behind the warning, when there is one (`MALFORMED_CONTROL`: `ERR_AUDIOSOCKET_PROTOCOL`). */
  error?: AudioSocketError;
}

/** Events of a {@link Call}. */
export interface CallEvents {
  /** An audio message. */
  audio: [frame: AudioFrame];
  /** A DTMF digit (sent by Asterisk once per key press, at its end). */
  dtmf: [digit: string];
  /** A message of an unknown or unexpected kind (never fatal). */
  message: [kind: number, payload: Buffer];
  /**
   * An audio message was written to Asterisk (paced, immediate or keep-alive silence): what the
   * caller hears, e.g. for recording. `payload` is shared: copy it to keep it. `latenessMs`: how
   * long after its place on the call's timeline it left (AudioSocket: 0 when on time, see
   * docs/pacing.md; chan_websocket: always 0, as Asterisk re-times what it is sent).
   */
  sent: [kind: AudioKind, payload: Buffer, latenessMs: number];
  /** A mark queued with {@link Call.mark} was reached (its audio has played, `true`) or flushed (`false`). */
  mark: [name: string, reached: boolean];
  /** Queued audio fell back under the high-water mark after {@link Call.write} returned `false`: write on. */
  drain: [];
  /** Something non-fatal the application may want to log. */
  warning: [warning: CallWarning];
  /**
   * A fatal error, just before the call ends. Emitted only if someone listens: a call never
   * throws an unhandled `error` event; the error is also in the `end` event.
   */
  error: [error: AudioSocketError];
  /** The call is over and its socket closed. Emitted once. */
  end: [end: CallEnd];
}

/** Options of one call, resolved by the server. */
export interface CallSettings {
  inbound: 'slin' | 'ulaw' | 'alaw';
  receive: AudioFormat | undefined;
  send: AudioFormat | undefined;
  frameMs: number;
  outboundKind: AudioKind;
  /** `outboundKind` when the user set it, so keep-alive uses it from the start. */
  keepAliveKind: AudioKind | undefined;
  keepAlive: boolean;
  pacing: Omit<PacingParameters, 'frameMs'>;
  writeHighWaterMarkMs: number;
  maxQueuedMs: number;
  prefetchMs: number;
  maxPayload: number;
  handshakeTimeout: number;
  hangupTimeout: number;
  maxBufferedMs: number;
  peerNotReadingTimeout: number;
  iteratorQueueFrames: number;
}

/** Options of {@link Call.play}. */
export interface PlayOptions {
  /** Aborting settles the play as `interrupted` with reason `abort` and drops its queued audio. */
  signal?: AbortSignal;
  /**
   * Format of the source's bytes, converted on the fly to the call's outbound format. Default:
   * the call's send format (server option `send`, or {@link Call.sendAs}), else the outbound
   * wire format.
   */
  format?: FormatSpec;
}

/** Options of {@link Call.playFile}. The file's header says what format it holds. */
export interface PlayFileOptions {
  /** Aborting settles the play as `interrupted` with reason `abort` and drops its queued audio. */
  signal?: AbortSignal;
}

/**
 * @deprecated Use {@link AudioSource} for {@link Call.play}, and {@link Call.playFile} for a WAV
 * file path. Removed in the next release.
 */
export type PlaySource = AudioSource | string;

/**
 * One call, from either channel driver: AudioSocket ({@link AudioSocketCall}) or chan_websocket
 * (`WebSocketCall`). A handler written against this interface serves both.
 */
export interface Call extends EventEmitter<CallEvents> {
  /** `audiosocket` or `websocket` (chan_websocket). */
  readonly transport: 'audiosocket' | 'websocket';
  /** The call's id: AudioSocket's UUID, or chan_websocket's `channel_id` (`connection_id` before 20.17/22.7). */
  readonly uuid: string;
  /** chan_websocket's MEDIA_START (format, ptime, channel variables, ...); `undefined` on AudioSocket. */
  readonly mediaStart: MediaStart | undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly startTime: Date;
  readonly signal: AbortSignal;
  readonly closed: Promise<CallEnd>;
  readonly connected: boolean;
  readonly inboundKind: AudioKind | undefined;
  readonly inboundSampleRate: number | undefined;
  readonly inboundFormatGuess: InboundFormatGuess | undefined;
  readonly outboundKind: AudioKind;
  readonly frameBytes: number;
  readonly frameMs: number;
  readonly endReason: EndReason | undefined;
  readonly stats: CallStats;
  readonly receiveFormat: AudioFormat | undefined;
  readonly sendFormat: AudioFormat | undefined;
  readonly outboundFormat: AudioFormat;
  write(payload: Uint8Array | Int16Array, kind?: AudioKind): boolean;
  receiveAs(format: FormatSpec | null): this;
  sendAs(format: FormatSpec | null): this;
  /** @deprecated Use {@link Call.playFile} for a WAV file path. */
  play(path: string, options?: PlayOptions): Promise<PlayResult>;
  play(source: AudioSource, options?: PlayOptions): Promise<PlayResult>;
  playFile(path: string, options?: PlayFileOptions): Promise<PlayResult>;
  createWriteStream(options?: PlayOptions & { highWaterMarkMs?: number }): Writable & { interrupted?: PlayResult };
  mark(name: string): Promise<boolean>;
  flush(): number;
  /** @deprecated Use {@link Call.flush}. */
  clear(): number;
  drained(): Promise<void>;
  end(): Promise<CallEnd>;
  hangup(): Promise<CallEnd>;
  frames(options?: { signal?: AbortSignal }): AsyncIterable<AudioFrame>;
  [Symbol.asyncIterator](): AsyncIterator<AudioFrame>;
  /** `await using call = ...`: hangs up at the end of the scope and waits until the call has ended. */
  [Symbol.asyncDispose](): Promise<void>;
  /**
   * @internal Ends the call for the server: `server-close`, or `handler-error` when the handler
   * failed with `cause` (reported and ended the way a throwing listener is).
   */
  _terminate(reason: 'server-close' | 'handler-error', cause?: unknown): Promise<CallEnd>;
}

/** @internal What a call tells its server. */
export interface CallHooks {
  /** chan_websocket: MEDIA_START has come, the call is ready for its handler. */
  ready(call: Call): void;
  closed(call: Call, end: CallEnd): void;
  listenerError(error: unknown, call: Call): void;
}

type State = 'open' | 'ending' | 'closed';

// Shared, frozen format objects: no allocation per received frame.
const SLIN_FORMATS: readonly AudioFormat[] = Array.from({ length: 9 }, (_, i) =>
  parseFormat({ encoding: 'slin', sampleRate: sampleRateOfKind(Kind.SLIN + i)!, channels: 1 }),
);
const G711_FORMATS = {
  ulaw: parseFormat('ulaw'),
  alaw: parseFormat('alaw'),
} as const;

/** What a play queued after the call ended resolves with: a hangup is not an error for a prompt, so `await play(a); await play(b)` just stops. */
export function hungUpPlay(): Promise<PlayResult> {
  return Promise.resolve({ status: 'interrupted', reason: 'hangup', framesSent: 0, sentMs: 0 });
}

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * One call. Created by the server when a connection's UUID arrives; never constructed by users.
 *
 * Listen to `audio`/`dtmf`/`end`, or iterate: `for await (const frame of call)`.
 */
export class AudioSocketCall extends EventEmitter<CallEvents> implements Call {
  /** Which channel driver carries this call. */
  readonly transport = 'audiosocket' as const;
  /** MEDIA_START details: chan_websocket only. */
  readonly mediaStart: undefined = undefined;
  /** Peer address (Asterisk's), e.g. `127.0.0.1` or `::1`. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Aborts when the call starts ending; hand it to fetch, STT or TTS clients. */
  readonly signal: AbortSignal;
  /** Resolves once the call has ended and its socket is closed. Never rejects. */
  readonly closed: Promise<CallEnd>;

  readonly #socket: Socket;
  readonly #clock: Clock;
  readonly #settings: CallSettings;
  readonly #hooks: CallHooks;
  readonly #parser: MessageParser;
  readonly #outbound: Outbound;
  readonly #abort = new AbortController();
  #resolveClosed!: (end: CallEnd) => void;
  #state: State = 'open';
  readonly #uuid: string;
  readonly #startTime = new Date();
  readonly #startMono: number;
  #endReason: EndReason | undefined;
  #endError: AudioSocketError | undefined;
  #hangupTimer: TimerHandle | undefined;
  #inboundKind: AudioKind | undefined;
  #meter: InboundFormatMeter | null;
  #receive: AudioFormat | undefined;
  #send: AudioFormat | undefined;
  readonly #outboundFormat: AudioFormat;
  #inConverter: Converter | undefined;
  #inConverterKind = -1;
  #writeConverter: Converter | undefined;
  #guess: InboundFormatGuess | undefined;
  #blockedSince: number | undefined;
  #maxBufferedBytes: number;
  #s = {
    messagesIn: 0,
    bytesIn: 0,
    audioIn: 0,
    emptyAudioIn: 0,
    oddAudioIn: 0,
    dtmfIn: 0,
    otherIn: 0,
    droppedIn: 0,
    messagesOut: 0,
    bytesOut: 0,
    droppedOut: 0,
  };

  /** @internal Constructed by the server once the connection's {@link Handshake} has read the UUID. */
  constructor(socket: Socket, uuid: string, handover: ParserHandover, settings: CallSettings, scheduler: FrameScheduler, hooks: CallHooks) {
    super();
    this.#socket = socket;
    this.#uuid = uuid;
    this.#clock = scheduler.clock;
    this.#startMono = this.#clock.now();
    this.#settings = settings;
    this.#hooks = hooks;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.signal = this.#abort.signal;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#parser = handover.parser;
    this.#s.bytesIn = handover.bytesIn;
    this.#outbound = new Outbound(
      {
        kind: settings.outboundKind,
        keepAliveKind: settings.keepAliveKind,
        keepAlive: settings.keepAlive,
        prefetchMs: settings.prefetchMs,
        pacing: { frameMs: settings.frameMs, ...settings.pacing },
        highWaterMarkMs: settings.writeHighWaterMarkMs,
        maxQueuedMs: settings.maxQueuedMs,
      },
      scheduler,
      {
        send: (message, latenessMs) => this.#sendMessage(message, latenessMs),
        mark: (name, reached) => this.#emitSafe('mark', name, reached),
        drain: () => this.#emitSafe('drain'),
        dropped: (droppedMs, queuedMs) =>
          this.#emitSafe('warning', {
            code: 'QUEUE_FULL',
            droppedMs,
            message:
              `dropped ${droppedMs.toFixed(1)} ms of written audio: ${queuedMs.toFixed(0)} ms was already queued ` +
              `(maxQueuedMs ${settings.maxQueuedMs}); when write() returns false, wait for 'drain' before writing more`,
          }),
      },
    );
    this.#receive = settings.receive;
    this.#send = settings.send;
    this.#outboundFormat = parseFormat({ encoding: 'slin', sampleRate: sampleRateOfKind(settings.outboundKind)!, channels: 1 });
    // Declared G.711 needs no guessing; slin under 0x10 is checked for the channel-driver trap.
    this.#meter = settings.inbound === 'slin' ? new InboundFormatMeter(8000) : null;
    this.#maxBufferedBytes = Math.max(
      this.#outbound.frameBytes * 2,
      Math.round((settings.maxBufferedMs / settings.frameMs) * this.#outbound.frameBytes),
    );

    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEof());
    socket.on('error', (err: NodeJS.ErrnoException) => this.#onSocketError(err));
    socket.on('close', () => this.#onClose());
    handover.attach(
      (kind, payload) => this.#onMessage(kind, payload),
      (err) => this.#onParseFailure(err),
    );
    this.#outbound.start();
  }

  /** The call's UUID, lower-case 8-4-4-4-12. Not necessarily unique: Asterisk never checks. */
  get uuid(): string {
    return this.#uuid;
  }

  /** When the UUID arrived (wall clock). */
  get startTime(): Date {
    return this.#startTime;
  }

  /** True from the UUID until the call starts ending. */
  get connected(): boolean {
    return this.#state === 'open';
  }

  /** Kind of the last audio message received (0x10-0x18), `undefined` before the first. */
  get inboundKind(): AudioKind | undefined {
    return this.#inboundKind;
  }

  /** Sample rate of the last audio received, `undefined` before the first. */
  get inboundSampleRate(): number | undefined {
    return this.#inboundKind === undefined ? undefined : sampleRateOfKind(this.#inboundKind);
  }

  /**
   * What the first second of 0x10 audio looked like (byte rate, frame size, slin or G.711), once
   * measured. A `g711` verdict also emits a `warning` with code `INBOUND_FORMAT`.
   */
  get inboundFormatGuess(): InboundFormatGuess | undefined {
    return this.#guess;
  }

  /** Kind of the paced frames and keep-alive silence this call sends. */
  get outboundKind(): AudioKind {
    return this.#outbound.kind;
  }

  /** Bytes of one paced frame (e.g. 320 for 20 ms of slin 8 kHz). */
  get frameBytes(): number {
    return this.#outbound.frameBytes;
  }

  /** Frame duration in ms of paced output. */
  get frameMs(): number {
    return this.#outbound.frameMs;
  }

  /** Why the call ended, once it is ending. */
  get endReason(): EndReason | undefined {
    return this.#endReason;
  }

  /** A snapshot of the call's counters. */
  get stats(): CallStats {
    return { ...this.#s, ...this.#outbound.stats };
  }

  /**
   * Queues audio to send, paced in real time like everything else the call sends (see
   * `docs/pacing.md`). Audio written as it arrives (an echo, a bridge) leaves at once; audio
   * written faster than real time (text-to-speech) waits in the queue and leaves one frame per
   * slot, never more than `pacing.leadFrames` frames ahead of the wall clock. Writes and plays
   * share one queue, in order; {@link flush} drops both.
   *
   * `payload` is any length of whole samples of `kind` (default: the call's outbound kind),
   * cut into frames of `frameMs`; without `kind` and with a send format set ({@link sendAs}),
   * it is converted first. Anything Asterisk would reject throws
   * `ERR_AUDIOSOCKET_INVALID_MESSAGE`. The buffer is held, not copied, until it is sent: do not
   * modify it after writing.
   *
   * Returns `false` once `writeHighWaterMarkMs` (default 1 s) or more is queued: the audio is
   * still queued, but slow down and write on at the `drain` event (or after {@link drained}),
   * as with a Node stream. Audio is dropped only beyond `maxQueuedMs` (default 30 s): the part
   * that does not fit is counted in `stats.droppedMs` and reported by a `warning` event with
   * code `QUEUE_FULL`, and `false` is returned.
   */
  write(payload: Uint8Array | Int16Array, kind?: AudioKind): boolean {
    if (this.#state !== 'open') throw audioSocketError(ErrorCodes.CALL_ENDED, `cannot write: the call has ended (${this.#endReason})`);
    if (kind !== undefined || this.#send === undefined || sameFormat(this.#send, this.#outboundFormat)) {
      return this.#outbound.write(payload, kind ?? this.#outbound.kind);
    }
    this.#writeConverter ??= createConverter(this.#send, this.#outboundFormat);
    const converted = this.#writeConverter.push(
      payload instanceof Int16Array ? Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength) : payload,
    );
    return converted.length === 0 || this.#outbound.write(converted, this.#outbound.kind);
  }

  /**
   * Sets the format in which `audio` events and iterators deliver received audio (converted
   * from what Asterisk sends, per call, with its own resampler state); `null` delivers it as
   * received. Overrides the server's `receive` option for this call.
   */
  receiveAs(format: FormatSpec | null): this {
    const next = format === null ? undefined : parseFormat(format);
    this.#inConverter?.dispose();
    this.#inConverter = undefined;
    this.#inConverterKind = -1;
    this.#receive = next;
    return this;
  }

  /**
   * Sets the format of the audio you hand to {@link play} and to {@link write} without a kind;
   * it is converted to the outbound wire format. Overrides the server's `send` option.
   */
  sendAs(format: FormatSpec | null): this {
    this.#writeConverter?.dispose();
    this.#writeConverter = undefined;
    this.#send = format === null ? undefined : parseFormat(format);
    return this;
  }

  /** Format received audio is delivered in (`undefined`: as received). */
  get receiveFormat(): AudioFormat | undefined {
    return this.#receive;
  }

  /** Format of audio handed to play()/write() (`undefined`: the outbound wire format). */
  get sendFormat(): AudioFormat | undefined {
    return this.#send;
  }

  /** The wire format of paced output: slin at the outbound kind's rate. */
  get outboundFormat(): AudioFormat {
    return this.#outboundFormat;
  }

  /** @deprecated Use {@link playFile} for a WAV file path. */
  play(path: string, options?: PlayOptions): Promise<PlayResult>;
  /**
   * Queues audio for paced playback: cut into exact frames of the outbound kind and sent in
   * real time (see `docs/pacing.md`). Resolves when its audio has played (the wall clock has
   * passed its end, up to three frames after its last frame was sent), or as `interrupted` on
   * {@link flush}, abort or hangup (also when called after the call ended); rejects only if the
   * source itself fails.
   *
   * Plays (and writes) queue in order and join seamlessly when the next is queued before the
   * previous has played: `call.play(a); await call.play(b)`. Awaiting each one before queueing
   * the next (`await play(a); await play(b)`) lets the queue run empty at the join for up to a
   * frame.
   *
   * `source` is raw audio: a Buffer, Uint8Array, Int16Array, a Readable stream or an (async)
   * iterable of chunks of any size, in `options.format` (default: the send format, else the
   * outbound wire format, slin at the outbound kind's rate). For a WAV file use {@link playFile}.
   */
  play(source: AudioSource, options?: PlayOptions): Promise<PlayResult>;
  play(source: PlaySource, options: PlayOptions = {}): Promise<PlayResult> {
    if (typeof source === 'string') return this.playFile(source, options);
    if (this.#state !== 'open') return hungUpPlay();
    let convert: ByteConverter | undefined;
    try {
      const from = options.format === undefined ? this.#send : parseFormat(options.format);
      if (from !== undefined && !sameFormat(from, this.#outboundFormat)) convert = createConverter(from, this.#outboundFormat);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#outbound.play(source, convert, options.signal).catch(rejectAsSourceError);
  }

  /**
   * Plays a WAV file (any rate, channels, PCM/float/G.711; converted to the outbound format),
   * read and converted as it plays. Settles as {@link play} does; rejects with an
   * {@link AudioSocketError} (`FILE_NOT_FOUND`, `FILE_READ`, `WAV_MALFORMED`, `WAV_UNSUPPORTED`)
   * if the file cannot be played.
   */
  playFile(path: string, options: PlayFileOptions = {}): Promise<PlayResult> {
    if (this.#state !== 'open') return hungUpPlay();
    return this.#outbound.play(wavPlaySource(path, this.#outboundFormat), undefined, options.signal).catch(rejectAsSourceError);
  }

  /**
   * A Writable for paced playback with backpressure: `write()` returns false once more than
   * `highWaterMarkMs` of audio (default 400) is waiting, and `drain` fires as it plays out, so
   * `pipeline(tts, call.createWriteStream())` never grows memory. Bytes are in `options.format`
   * (default: the call's send format, else the outbound wire format). `finish` fires when the
   * last frame has been sent.
   *
   * Barge-in is not an error: if the playback is interrupted (flush, abort, hangup), the stream
   * emits `interrupted` with the {@link PlayResult}, sets `interrupted` on itself, and from then
   * on accepts and discards what is written, so a pipeline ends normally. Stop your TTS source
   * on that event (or hand it `call.signal`).
   */
  createWriteStream(options: PlayOptions & { highWaterMarkMs?: number } = {}): Writable & { interrupted?: PlayResult } {
    return createPlayStream(this, options);
  }

  /**
   * Queues a mark: the `mark` event fires and the promise resolves `true` when everything queued
   * before it has been sent (e.g. hang up after a prompt), or `false` if it is flushed first.
   */
  mark(name: string): Promise<boolean> {
    if (this.#state !== 'open') return Promise.resolve(false);
    return this.#outbound.mark(name);
  }

  /** Barge-in: drops everything queued (plays settle `interrupted`). Returns the ms of audio dropped. */
  flush(): number {
    return this.#outbound.flush('flush');
  }

  /** @deprecated Use {@link flush}; `clear()` is the same and goes in the next release. */
  clear(): number {
    return this.flush();
  }

  /** Resolves when everything queued so far has been sent or flushed. */
  drained(): Promise<void> {
    return this.#outbound.drained();
  }

  /** Lets the queued audio finish, then hangs up. Resolves when the call is closed. */
  async end(): Promise<CallEnd> {
    if (this.#state === 'open') await this.#outbound.drained();
    return this.hangup();
  }

  /**
   * Hangs up now: drops queued audio, sends the hangup message `00 00 00` (Asterisk then ends
   * AudioSocket and, on 20.14+/21.9+/22.4+/23.0+, continues the dialplan), half-closes and waits
   * for Asterisk to close (at most `hangupTimeout`). Idempotent; resolves when closed.
   */
  hangup(): Promise<CallEnd> {
    this.#beginEnd('local-hangup', undefined, true);
    return this.closed;
  }

  /** Hangs up (see {@link hangup}) and waits until the call has ended: `await using` support. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.hangup();
  }

  /** Async iteration over received audio frames; ends when the call ends. See {@link frames}. */
  [Symbol.asyncIterator](): AsyncIterator<AudioFrame> {
    return this.frames()[Symbol.asyncIterator]();
  }

  /**
   * Received audio as an async iterable. Frames are buffered from the moment this is called
   * (earlier frames are only seen by `audio` listeners); beyond `iteratorQueueFrames` the
   * oldest are dropped and counted in `stats.droppedIn`, so a slow consumer never grows memory.
   */
  frames(options: { signal?: AbortSignal } = {}): AsyncIterable<AudioFrame> {
    let warned = false;
    return receivedFrames(this, {
      limit: this.#settings.iteratorQueueFrames,
      ended: this.#state === 'closed' || this.#state === 'ending',
      signal: options.signal,
      onDrop: () => {
        this.#s.droppedIn++;
        if (warned) return;
        warned = true;
        this.#warn(
          'ITERATOR_OVERFLOW',
          `audio iterator fell ${this.#settings.iteratorQueueFrames} frames behind; dropping the oldest frames`,
        );
      },
    });
  }

  /** @internal See {@link Call._terminate}. */
  _terminate(reason: 'server-close' | 'handler-error', cause?: unknown): Promise<CallEnd> {
    if (reason === 'handler-error') this.#listenerFailed(cause);
    else this.#beginEnd(reason, undefined, true);
    return this.closed;
  }

  #onData(chunk: Buffer): void {
    this.#s.bytesIn += chunk.length;
    try {
      this.#parser.push(chunk);
    } catch (err) {
      this.#onParseFailure(err);
    }
  }

  /** Pushing a chunk failed: the stream broke the protocol, or a user listener threw. */
  #onParseFailure(err: unknown): void {
    if (err instanceof AudioSocketError && err === this.#parser.error) this.#beginEnd('protocol-error', err, true);
    // A user listener threw inside the parser callback: the rest of this chunk is unparsed, so
    // the stream cannot be trusted any more; the call ends, the server lives on.
    else this.#listenerFailed(err);
  }

  #onMessage(kind: number, payload: Buffer): void {
    if (this.#state === 'open') {
      this.#s.messagesIn++;
      if (isAudioKind(kind)) {
        if ((payload.length & 1) === 1 && (kind !== Kind.SLIN || this.#settings.inbound === 'slin')) {
          // Old channel drivers forward 1-byte CNG frames as 0x10. Keep whole samples, as
          // Asterisk itself does, so nothing downstream is shifted by a byte.
          this.#s.oddAudioIn++;
          payload = payload.subarray(0, payload.length - 1);
        }
        if (payload.length === 0) {
          this.#s.emptyAudioIn++;
          return;
        }
        this.#s.audioIn++;
        this.#outbound.noteInbound(kind, this.#inboundMs(kind, payload.length), this.#clock.now());
        this.#inboundKind = kind;
        if (this.#meter !== null && kind === Kind.SLIN) this.#measure(payload);
        if (this.listenerCount('audio') > 0) this.#emitAudio(kind, payload);
        return;
      }
      if (kind === Kind.DTMF && payload.length === 1 && DTMF_DIGITS.includes(String.fromCharCode(payload[0]!))) {
        this.#s.dtmfIn++;
        this.emit('dtmf', String.fromCharCode(payload[0]!));
        return;
      }
      if (kind === Kind.HANGUP) {
        // Asterisk never sends it, but a peer that does clearly means "hang up".
        this.#beginEnd('remote-hangup', undefined, false);
        return;
      }
      this.#s.otherIn++;
      if (this.listenerCount('message') > 0) this.emit('message', kind, payload);
      return;
    }
    // ending: drain, ignore
  }

  /** Duration of received audio: G.711 under 0x10 is one byte per sample. */
  #inboundMs(kind: AudioKind, bytes: number): number {
    const perSample = kind === Kind.SLIN && this.#settings.inbound !== 'slin' ? 1 : 2;
    return (bytes / perSample / sampleRateOfKind(kind)!) * 1000;
  }

  /** What a message of `kind` really carries: slin at the kind's rate, or declared G.711 under 0x10. */
  #wireFormat(kind: AudioKind): AudioFormat {
    if (kind === Kind.SLIN && this.#settings.inbound !== 'slin') return G711_FORMATS[this.#settings.inbound];
    return SLIN_FORMATS[kind - Kind.SLIN]!;
  }

  #emitAudio(kind: AudioKind, payload: Buffer): void {
    const target = this.#receive;
    if (target === undefined) {
      const format = this.#wireFormat(kind);
      this.emit('audio', { kind, sampleRate: format.sampleRate, format, payload });
      return;
    }
    if (this.#inConverterKind !== kind) {
      // A new kind mid-call (rare) restarts the conversion from its format.
      this.#inConverter?.dispose();
      this.#inConverter = createConverter(this.#wireFormat(kind), target);
      this.#inConverterKind = kind;
    }
    const converted = this.#inConverter!.push(payload);
    if (converted.length === 0) return;
    this.emit('audio', { kind, sampleRate: target.sampleRate, format: target, payload: converted });
  }

  /** Watches the first second of 0x10 audio for G.711 mislabelled as slin (channel driver without c()). */
  #measure(payload: Buffer): void {
    const guess = this.#meter!.push(payload, this.#clock.now());
    if (guess === null) return;
    this.#meter = null;
    this.#guess = guess;
    if (guess.verdict === 'g711') {
      this.#warn(
        'INBOUND_FORMAT',
        `kind 0x10 audio arrives at ${guess.bytesPerSecond} bytes/s (${guess.typicalFrameBytes}-byte frames): that is ` +
          `G.711 (${guess.law === 'alaw' ? 'a-law' : 'u-law'} by its byte values), not slin. The channel driver sends the ` +
          "caller's codec unless told: dial AudioSocket/host:port/uuid/c(slin), or declare the inbound format as " +
          `'${guess.law ?? 'ulaw'}'.`,
      );
    }
  }

  #sendMessage(message: Buffer, latenessMs = 0): void {
    const socket = this.#socket;
    if (this.#state !== 'open' || socket.destroyed) return;
    if (socket.writableLength > this.#maxBufferedBytes) {
      this.#s.droppedOut++;
      const now = this.#clock.now();
      if (this.#blockedSince === undefined) {
        this.#blockedSince = now;
        this.#warn('PEER_NOT_READING', `peer is not reading: ${socket.writableLength} bytes waiting; dropping outbound audio`);
      } else if (this.#settings.peerNotReadingTimeout > 0 && now - this.#blockedSince > this.#settings.peerNotReadingTimeout) {
        this.#beginEnd(
          'peer-not-reading',
          audioSocketError(
            ErrorCodes.PEER_NOT_READING,
            `peer read nothing for ${Math.round(now - this.#blockedSince)} ms; ${this.#s.droppedOut} messages dropped`,
          ),
          false,
        );
      }
      return;
    }
    this.#blockedSince = undefined;
    this.#s.messagesOut++;
    this.#s.bytesOut += message.length;
    socket.write(message);
    if (message[0] !== Kind.HANGUP && this.listenerCount('sent') > 0) {
      this.#emitSafe('sent', message[0] as AudioKind, message.subarray(3), latenessMs);
    }
  }

  #warn(code: CallWarning['code'], message: string): void {
    this.#emitSafe('warning', { code, message });
  }

  #emitSafe<K extends keyof CallEvents>(event: K, ...args: CallEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: CallEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.#listenerFailed(err);
    }
  }

  /** A user's listener or handler failed: report it and end this call (and only this call). */
  #listenerFailed(err: unknown): void {
    this.#hooks.listenerError(err, this);
    this.#beginEnd('handler-error', handlerError(err), true);
  }

  #onEof(): void {
    const truncated = this.#parser.end();
    if (truncated && this.#state === 'open') {
      this.#beginEnd('protocol-error', truncated, false);
    } else {
      this.#beginEnd('remote-hangup', undefined, false);
    }
  }

  #onSocketError(err: NodeJS.ErrnoException): void {
    const reset = err.code !== undefined && RESET_CODES.has(err.code);
    if (this.#state === 'closed') return;
    if (reset) {
      // Asterisk closes with RST when our audio is still unread in its buffer: a normal hangup.
      this.#beginEnd(this.#endReason ?? 'remote-hangup', undefined, false);
    } else {
      this.#beginEnd('socket-error', audioSocketError(ErrorCodes.SOCKET, `socket error: ${err.message}`, err), false);
    }
    this.#socket.destroy();
  }

  #beginEnd(reason: EndReason, error: AudioSocketError | undefined, sendHangup: boolean): void {
    if (this.#state !== 'open') return;
    this.#state = 'ending';
    this.#endReason = reason;
    this.#endError = error;
    this.#outbound.close();
    const socket = this.#socket;
    if (sendHangup && socket.writable) {
      this.#s.messagesOut++;
      this.#s.bytesOut += HANGUP_MESSAGE.length;
      socket.end(HANGUP_MESSAGE);
      this.#hangupTimer = this.#timer(this.#settings.hangupTimeout, () => socket.destroy());
    } else {
      socket.destroy();
    }
    if (error !== undefined && this.listenerCount('error') > 0) this.#emitSafe('error', error);
    this.#abort.abort(error ?? audioSocketError(ErrorCodes.CALL_ENDED, `call ended: ${reason}`));
  }

  /** A timer on the call's clock; `Infinity` means never. */
  #timer(ms: number, fn: () => void): TimerHandle | undefined {
    return ms === Infinity ? undefined : this.#clock.setTimer(fn, ms);
  }

  #cancel(timer: TimerHandle | undefined): void {
    if (timer !== undefined) this.#clock.clearTimer(timer);
  }

  #clearTimers(): void {
    this.#cancel(this.#hangupTimer);
    this.#hangupTimer = undefined;
  }

  #onClose(): void {
    this.#clearTimers();
    if (this.#state === 'open') this.#beginEnd('remote-hangup', undefined, false);
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#outbound.close();
    this.#inConverter?.dispose();
    this.#writeConverter?.dispose();
    this.#inConverter = this.#writeConverter = undefined;
    const end: CallEnd = {
      reason: this.#endReason!,
      durationMs: this.#clock.now() - this.#startMono,
      stats: this.stats,
    };
    if (this.#endError !== undefined) end.error = this.#endError;
    this.#resolveClosed(end);
    this.#emitSafe('end', end);
    this.#hooks.closed(this, end);
  }
}
