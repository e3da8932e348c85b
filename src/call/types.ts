/**
 * The call contract: what a handler sees of a call, whichever channel driver carries it.
 * Types only. The one implementation of this contract is {@link CallCore} (`./core.ts`); the
 * transports (`src/audiosocket/`, `src/websocket/`) narrow it with what only they have.
 */
import type { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';
import type { AudioSocketError, CallWarningCode } from '../errors.js';
import type { AudioFormat, FormatSpec } from '../audio/format.js';
import type { AudioSource, PlayResult } from '../outbound/queue.js';
import type { SpeechEvent, SpeechOptions } from '../speech/detector.js';

/** One piece of audio received from Asterisk. */
export interface AudioFrame {
  /** Sample rate of `payload`. */
  sampleRate: number;
  /** Format of `payload`: what Asterisk sent, or the call's receive format when one is set ({@link CallBase.receiveAs}). */
  format: AudioFormat;
  /**
   * The audio. Without conversion it is the received bytes themselves, a view into the
   * received chunk: copy it if you keep it long.
   */
  payload: Buffer;
}

/** Audio the caller hears about now: what a `sent` event carries. */
export interface SentFrame {
  /** The frame's bytes in `format`: read-only, and valid during the event only (the memory is reused for the next frame; keep-alive silence is one buffer for every call). Copy them to keep them. */
  payload: Buffer;
  /** Format of `payload`: what went on the wire. */
  format: AudioFormat;
  /** Where the frame starts on the call's timeline: ms since the call started, on the call's clock. */
  atMs: number;
  /**
   * How much later than its place on the timeline this frame reaches the caller, ms (0 on
   * time). AudioSocket: how late it left (see docs/pacing.md). chan_websocket: Asterisk plays
   * its queue in real time, so the frame is late only by how late our notification ran.
   */
  latenessMs: number;
  /** Keep-alive silence (AudioSocket) rather than audio the application queued. */
  silence: boolean;
}

/**
 * Why a call ended.
 * - `remote-hangup`: Asterisk closed or reset the connection (AudioSocket never sends a hangup message).
 * - `local-hangup`: {@link CallBase.hangup} or {@link CallBase.end} was called.
 * - `protocol-error`: the peer sent something that breaks the protocol (see `error.code`).
 * - `handler-error`: the server's call handler or one of the call's listeners threw or rejected.
 * - `server-close`: the server was closed.
 * - `peer-not-reading`: our output stayed blocked for `peerNotReadingTimeout`.
 * - `socket-error`: another socket error (see `error.cause`).
 */
export type EndReason =
  'remote-hangup' | 'local-hangup' | 'protocol-error' | 'handler-error' | 'server-close' | 'peer-not-reading' | 'socket-error';

/** Counters every call has, whichever transport carries it. Each field means the same on both. */
export interface CallStats {
  /** Messages received (audio, DTMF, control; AudioSocket's UUID not included). */
  messagesIn: number;
  /** Bytes received: AudioSocket messages with headers; chan_websocket audio payloads. */
  bytesIn: number;
  /** Audio messages received. */
  audioIn: number;
  /** Zero-length audio messages received (ignored). */
  emptyAudioIn: number;
  /** Odd-length slin messages received; the last byte was dropped to keep whole samples. */
  oddAudioIn: number;
  /** DTMF digits received. */
  dtmfIn: number;
  /** Messages of unknown or unexpected kinds or events received. */
  otherIn: number;
  /** Audio frames dropped because an async iterator did not keep up. */
  droppedIn: number;
  /** Messages sent: audio frames and control (hangup, commands). */
  messagesOut: number;
  /** Audio bytes sent (AudioSocket: with headers). */
  bytesOut: number;
  /** Outbound messages dropped because the peer was not reading (send buffer over its bound). */
  droppedOut: number;
  /** Audio frames sent. */
  framesSent: number;
  /** Writes of which some audio was dropped: more than `maxQueuedMs` was queued. */
  droppedWrites: number;
  /** Milliseconds of written audio dropped for that reason. */
  droppedMs: number;
  /** Writes that could not leave at once and waited in the queue. */
  delayedWrites: number;
  /** Milliseconds of audio waiting to be sent. */
  queuedMs: number;
  /**
   * Milliseconds of audio dropped by {@link CallBase.flush}: our queue, and audio already sent
   * that had not played yet (chan_websocket: Asterisk's queue, exact once Asterisk has answered
   * GET_STATUS).
   */
  flushedMs: number;
  /** Milliseconds of audio still queued when the call ended (never sent). */
  unsentMs: number;
}

/** What {@link CallBase.closed} resolves with and the `end` event carries. */
export interface CallEnd {
  reason: EndReason;
  /** Set for the error reasons. */
  error?: AudioSocketError;
  /** From the start of the call to its close, in ms. */
  durationMs: number;
  /** The call's counters at its end (narrow the call by `transport` for the transport's own). */
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

/** Events of a call. `F` is the transport's frame type, `S` its stats. */
export interface CallEvents<F extends AudioFrame = AudioFrame> {
  /** Received audio. */
  audio: [frame: F];
  /** A DTMF digit (sent by Asterisk once per key press, at its end). */
  dtmf: [digit: string];
  /** The caller started speaking (speech detection on: {@link CallBase.detectSpeech}). */
  speechStart: [event: SpeechEvent];
  /** The caller stopped speaking. */
  speechEnd: [event: SpeechEvent];
  /** A message of an unknown or unexpected kind (AudioSocket; never fatal). */
  message: [kind: number, payload: Buffer];
  /** Audio reaches the caller about now (paced audio, echoes, keep-alive silence): e.g. for recording. */
  sent: [frame: SentFrame];
  /** A mark queued with {@link CallBase.mark} was reached (its audio has played, `true`) or flushed (`false`). */
  mark: [name: string, reached: boolean];
  /** Queued audio fell back under the high-water mark after {@link CallBase.write} returned `false`: write on. */
  drain: [];
  /** Something non-fatal the application may want to log. */
  warning: [warning: CallWarning];
  /**
   * A fatal error, just before the call ends. Emitted only if someone listens: a call never
   * throws an unhandled `error` event; the error is also in the `end` event.
   */
  error: [error: AudioSocketError];
  /** The call is over and its connection closed. Emitted once. */
  end: [end: CallEnd];
}

/**
 * Who may interrupt a play: `speech` (the caller starts speaking; turns speech detection on),
 * `dtmf` (a key) or `any`. The play then stops within a frame (everything queued is flushed, as
 * by {@link CallBase.flush}) and settles `interrupted` with reason `barge-in` and `bargeIn`.
 */
export type BargeInOn = 'speech' | 'dtmf' | 'any';

/** Options of {@link CallBase.play}. */
export interface PlayOptions {
  /** Aborting settles the play as `interrupted` with reason `abort` and drops its queued audio. */
  signal?: AbortSignal;
  /** Let the caller interrupt the play; see {@link BargeInOn}. */
  bargeIn?: BargeInOn;
  /**
   * Format of the source's bytes, converted on the fly to what the call sends. Default: the
   * call's send format ({@link CallBase.sendAs}), else {@link CallBase.outboundFormat}.
   */
  format?: FormatSpec;
}

/** Options of {@link CallBase.playFile}. The file's header says what format it holds. */
export interface PlayFileOptions {
  /** Aborting settles the play as `interrupted` with reason `abort` and drops its queued audio. */
  signal?: AbortSignal;
  /** Let the caller interrupt the play; see {@link BargeInOn}. */
  bargeIn?: BargeInOn;
}

/** Options of {@link CallBase.createWriteStream}. */
export interface WriteStreamOptions extends PlayOptions {
  /** Audio (ms) the stream buffers before `write()` returns false. Default 400. */
  highWaterMarkMs?: number;
}

/**
 * What every call has, whichever channel driver carries it: AudioSocket ({@link AudioSocketCall})
 * or chan_websocket ({@link WebSocketCall}). See {@link Call}.
 */
export interface CallBase<F extends AudioFrame = AudioFrame, S extends CallStats = CallStats> extends EventEmitter<CallEvents<F>> {
  /** The call's id: AudioSocket's UUID, or chan_websocket's `channel_id` (`connection_id` before 20.17/22.7). */
  readonly uuid: string;
  /** Peer address (Asterisk's), e.g. `127.0.0.1` or `::1`. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** When the call started (wall clock). */
  readonly startTime: Date;
  /** Aborts when the call starts ending; hand it to fetch, STT or TTS clients. */
  readonly signal: AbortSignal;
  /** Resolves once the call has ended and its connection is closed. Never rejects. */
  readonly closed: Promise<CallEnd>;
  /** True from the start until the call starts ending. */
  readonly connected: boolean;
  /**
   * Format of the last audio received as it arrived. On chan_websocket it is known from the
   * start (MEDIA_START's); on AudioSocket it is `undefined` before the first audio.
   */
  readonly inboundFormat: AudioFormat | undefined;
  /** Sample rate of {@link inboundFormat}. */
  readonly inboundSampleRate: number | undefined;
  /** Duration in ms of one outbound frame. */
  readonly frameMs: number;
  /** Bytes of one outbound frame in {@link outboundFormat}. */
  readonly frameBytes: number;
  /** Why the call ended, once it is ending. */
  readonly endReason: EndReason | undefined;
  /** A snapshot of the call's counters. */
  readonly stats: S;
  /** Format received audio is delivered in (`undefined`: as received). */
  readonly receiveFormat: AudioFormat | undefined;
  /** Format of audio handed to play()/write() without a format (`undefined`: {@link outboundFormat}). */
  readonly sendFormat: AudioFormat | undefined;
  /** slin at the rate the call sends: the format play() and write() assume when told nothing else. */
  readonly outboundFormat: AudioFormat;
  /**
   * Queues audio to send, paced in real time like everything else the call sends. Audio
   * written as it arrives (an echo, a bridge) leaves at once; audio written faster than real
   * time waits in the queue. Writes and plays share one queue, in order; {@link flush} drops both.
   *
   * `payload` is any length in `format` (default: the send format, else {@link outboundFormat});
   * an echo writes `frame.payload` in `frame.format`. Written audio is a byte stream, as read
   * from a socket or an HTTP body: a write that ends inside a sample keeps its bytes of that
   * sample back until the next write, which must then be in the same format (else it throws
   * `ERR_AUDIOSOCKET_INVALID_ARGUMENT`); {@link flush} and the end of the call drop them, so a
   * source that goes on after a flush must go on from a sample boundary. The buffer is held,
   * not copied, until it is sent: do not modify it after writing.
   *
   * Returns `false` once `writeHighWaterMarkMs` (default 1 s) or more is queued: the audio is
   * still queued, but slow down and write on at the `drain` event, as with a Node stream. Audio
   * is dropped only beyond `maxQueuedMs` (default 30 s): counted in `stats.droppedMs` and
   * reported by a `QUEUE_FULL` warning, and `false` is returned.
   */
  write(payload: Uint8Array | Int16Array, format?: FormatSpec): boolean;
  /** Sets the format `audio` events and iterators deliver (converted per call); `null`: as received. */
  receiveAs(format: FormatSpec | null): this;
  /** Sets the format of audio handed to {@link play} and {@link write} without a format; `null`: {@link outboundFormat}. */
  sendAs(format: FormatSpec | null): this;
  /**
   * Queues audio for playback behind everything queued. Resolves when its audio has played
   * (not merely been sent), or as `interrupted` with reason `flush`, `abort` or `hangup`
   * (also when called after the call ended); rejects only if the source itself fails
   * (`ERR_AUDIOSOCKET_SOURCE`). `source` is raw audio in `options.format`. A buffer (or a
   * stream's chunk) is held, not copied, until it is sent: do not modify it before the play
   * settles. The same buffer may be played by any number of calls at once.
   */
  play(source: AudioSource, options?: PlayOptions): Promise<PlayResult>;
  /**
   * Plays a WAV file (any rate, channels, PCM/float/G.711), read and converted as it plays.
   * Settles as {@link play} does; rejects with `FILE_NOT_FOUND`, `FILE_READ`, `WAV_MALFORMED`
   * or `WAV_UNSUPPORTED` if the file cannot be played.
   */
  playFile(path: string, options?: PlayFileOptions): Promise<PlayResult>;
  /**
   * A Writable for playback with backpressure in ms of audio. On barge-in (flush, abort,
   * hangup) it emits `interrupted` with the {@link PlayResult}, sets `interrupted` on itself and
   * discards what is written from then on, so a pipeline ends normally.
   */
  createWriteStream(options?: WriteStreamOptions): Writable & { interrupted?: PlayResult };
  /** Resolves `true` (and emits `mark`) once everything queued before it has played; `false` if flushed. */
  mark(name: string): Promise<boolean>;
  /**
   * Turns speech detection on (with these options; see docs/speech.md) or off (`false`): the
   * call then emits `speechStart` and `speechEnd` with their instants on its timeline, and
   * {@link speaking} says whether the caller is speaking. On for every call with the server
   * option `speech`; turned on by a play with `bargeIn: 'speech'`.
   */
  detectSpeech(options?: SpeechOptions | false): this;
  /** True while the caller is speaking (speech detection on). */
  readonly speaking: boolean;
  /**
   * Barge-in: drops everything queued, and what was sent but has not played where the
   * transport allows (chan_websocket: Asterisk's queue). Plays settle `interrupted`, marks
   * `false`. Returns the ms of audio dropped (chan_websocket: Asterisk's part estimated by the
   * playout clock; `stats.flushedMs` is corrected when Asterisk answers GET_STATUS).
   */
  flush(): number;
  /** Resolves when everything queued so far has been sent and played (or flushed). */
  drained(): Promise<void>;
  /** Lets the queued audio finish, then hangs up. Resolves when the call is closed. */
  end(): Promise<CallEnd>;
  /** Hangs up now (queued audio is dropped). Idempotent; resolves when the call is closed. */
  hangup(): Promise<CallEnd>;
  /** Received audio as an async iterable, bounded (`iteratorQueueFrames`): the oldest frames are dropped when it falls behind. */
  frames(options?: { signal?: AbortSignal }): AsyncIterable<F>;
  [Symbol.asyncIterator](): AsyncIterator<F>;
  /** `await using call = ...`: hangs up at the end of the scope and waits until the call has ended. */
  [Symbol.asyncDispose](): Promise<void>;
}
