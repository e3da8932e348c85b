/**
 * The {@link Call} API over one chan_websocket connection.
 *
 * The seam between the drivers: what is shared is the call API, the outbound FIFO
 * ({@link OutboundQueue}: writes, plays, marks, the frame cutter and source pump) and format
 * conversion (`src/audio`). What is per-driver is the wire and the pacing policy:
 * - AudioSocket (`src/call.ts` + `src/outbound/outbound.ts`): Asterisk plays what arrives when
 *   it arrives, so we pace against our clock and completions are settled by the clock.
 * - chan_websocket (this file): Asterisk buffers and re-times what we send (one frame per
 *   `ptime`, XOFF at 900 queued frames). We feed its buffer as fast as XOFF/XON and our own lead
 *   bound (`leadMs`) allow, and completions (play ends, marks) ride on MARK_MEDIA: they settle
 *   when Asterisk reports MEDIA_MARK_PROCESSED, i.e. when the audio has played.
 *
 * Progress marks every `markEveryFrames` frames tell us how far playout is, which bounds the
 * lead. `flush()` sends GET_STATUS then FLUSH_MEDIA: the STATUS answer (queue length before the
 * flush) says exactly how much of an interrupted play the caller heard.
 *
 * See docs/websocket.md.
 */
import { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';
import { AudioSocketError, audioSocketError, ErrorCodes, handlerError } from '../errors.js';
import { audioKindForRate, isAudioKind, sampleRateOfKind, type AudioKind } from '../protocol/kinds.js';
import { OutboundQueue, type ByteConverter, type Completion, type PlayResult } from '../outbound/queue.js';
import { createConverter, type Converter } from '../audio/convert.js';
import { parseFormat, sameFormat, type AudioFormat, type FormatSpec } from '../audio/format.js';
import { createPlayStream, receivedFrames, rejectAsSourceError, wavPlaySource } from '../call-stream.js';
import type {
  AudioFrame,
  Call,
  CallEnd,
  CallEvents,
  CallHooks,
  CallSettings,
  CallStats,
  CallWarning,
  EndReason,
  PlayFileOptions,
  PlayOptions,
  PlaySource,
} from '../call.js';
import type { AudioSource } from '../outbound/queue.js';
import type { MediaClose, MediaConnection, MediaWarning } from './connection.js';
import type { MediaStart, MediaStatus } from './protocol.js';

/** Options of the chan_websocket outbound policy. */
export interface WebSocketPacingOptions {
  /** Most audio (ms) we keep in Asterisk's buffer ahead of playout. Default 1000 (bounded to 100..15000). */
  leadMs?: number;
  /** A progress mark (MARK_MEDIA) every this many frames sent. Default 10 (200 ms at 20 ms). */
  markEveryFrames?: number;
  /** How long flush() waits for the STATUS answer before estimating `sentMs` from the marks. Default 1000. */
  statusTimeoutMs?: number;
  /**
   * How plays and marks complete:
   * - `auto` (default): by MARK_MEDIA answers. If a mark is not answered `markTimeoutMs` after
   *   our clock says it has played, the peer has no MARK_MEDIA (Asterisk before 20.18/22.8/23.2):
   *   the call switches to `clock` and says so with a `MARKS_UNSUPPORTED` warning.
   * - `clock`: never send MARK_MEDIA; complete by our playout estimate (one frame per ptime),
   *   and settle everything when Asterisk reports QUEUE_DRAINED.
   */
  completion?: 'auto' | 'clock';
  /** See `completion`. Default 2000. */
  markTimeoutMs?: number;
}

interface MarkEntry {
  /** Frames sent (Asterisk's frames) when the mark was sent. */
  frames: number;
  /** When our playout estimate says the frames before the mark have played. */
  dueAt: number;
  completions: Completion[];
}

interface FlushInfo {
  /** Frames heard when the flush happened: exact once the STATUS answer came, else estimated. */
  heardMs: Promise<number>;
}

const RESET_REASON: Record<MediaClose['by'], EndReason> = {
  remote: 'remote-hangup',
  local: 'local-hangup',
  error: 'socket-error',
};

function endReasonOf(error: AudioSocketError): EndReason {
  switch (error.code) {
    case ErrorCodes.PEER_NOT_READING:
      return 'peer-not-reading';
    case ErrorCodes.HANDLER:
      return 'handler-error';
    case ErrorCodes.PROTOCOL:
    case ErrorCodes.PAYLOAD_TOO_LARGE:
      return 'protocol-error';
    default:
      return 'socket-error';
  }
}

function toBuffer(a: Uint8Array | Int16Array): Buffer {
  if (Buffer.isBuffer(a)) return a;
  if (a instanceof Int16Array || a instanceof Uint8Array) return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  throw audioSocketError(
    ErrorCodes.INVALID_ARGUMENT,
    `audio must be a Buffer, Uint8Array or Int16Array, got ${Object.prototype.toString.call(a)}`,
  );
}

/**
 * One chan_websocket call. Created by the server once MEDIA_START has arrived; never
 * constructed by users. Same API and events as an AudioSocket call (see {@link Call}).
 */
export class WebSocketCall extends EventEmitter<CallEvents> implements Call {
  readonly transport = 'websocket' as const;
  /** What MEDIA_START said (format, frame size, ptime, channel variables, ...). */
  readonly mediaStart: MediaStart;
  /** The channel id (`channel_id`), or the connection id before 20.17/22.7. */
  readonly uuid: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /**
   * The request's path and query as Asterisk sent them: the `uri` of `websocket_client.conf`
   * plus the `v(name=value,...)` dial-option parameters, the way to pass per-call context (a
   * ticket id, a language) from the dialplan, e.g. `new URLSearchParams(call.url.split('?')[1])`.
   */
  readonly url: string;
  readonly startTime = new Date();
  readonly signal: AbortSignal;
  readonly closed: Promise<CallEnd>;
  /** The channel's control format. */
  readonly controlFormat: 'json' | 'plain-text';

  readonly #conn: MediaConnection;
  readonly #settings: CallSettings;
  readonly #hooks: CallHooks;
  readonly #queue: OutboundQueue;
  readonly #abort = new AbortController();
  readonly #kind: AudioKind;
  /** slin at the channel's rate: what the queue holds and writes are converted to. */
  readonly #slin: AudioFormat;
  /** The channel's wire format (slin, ulaw or alaw). */
  readonly #wire: AudioFormat;
  readonly #ptime: number;
  readonly #frameBytes: number;
  readonly #leadFrames: number;
  readonly #markEvery: number;
  readonly #statusTimeoutMs: number;
  readonly #markTimeoutMs: number;
  /** `probe`: MARK_MEDIA sent, no answer seen yet; `marks`: Asterisk answers them; `clock`: it does not. */
  #completion: 'probe' | 'marks' | 'clock';
  #clockTimer: NodeJS.Timeout | undefined;
  readonly #t0 = performance.now();
  #resolveClosed!: (end: CallEnd) => void;
  #state: 'open' | 'ending' | 'closed' = 'open';
  #endReason: EndReason | undefined;
  #endError: AudioSocketError | undefined;
  #receive: AudioFormat | undefined;
  #send: AudioFormat | undefined;
  #inConverter: Converter | undefined;
  #outEncoder: Converter | undefined;
  #writeConverter: Converter | undefined;
  #kindConverters = new Map<number, Converter>();
  /** Frames handed to Asterisk (whole `optimal_frame_size` messages). */
  #framesOut = 0;
  #sinceMark = 0;
  #markSeq = 0;
  #marks = new Map<string, MarkEntry>();
  /** Playout estimate: at `anchorAt` Asterisk had played `anchorFrames`, one more every ptime since. */
  #anchorFrames = 0;
  #anchorAt = 0;
  #wakeTimer: NodeJS.Timeout | undefined;
  #pumping = false;
  #needDrain = false;
  #drainWaiters: Array<() => void> = [];
  #lastFlush: FlushInfo | undefined;
  #s = {
    messagesIn: 0,
    bytesIn: 0,
    audioIn: 0,
    emptyAudioIn: 0,
    oddAudioIn: 0,
    dtmfIn: 0,
    otherIn: 0,
    droppedIn: 0,
    droppedOut: 0,
    framesSent: 0,
    droppedWrites: 0,
    droppedMs: 0,
    delayedWrites: 0,
    unsentMs: 0,
    xoffs: 0,
    marksSent: 0,
  };

  /** @internal */
  constructor(conn: MediaConnection, settings: CallSettings, hooks: CallHooks, pacing: WebSocketPacingOptions = {}) {
    super();
    const start = conn.start;
    if (start.audioFormat === undefined) {
      throw audioSocketError(
        ErrorCodes.INVALID_FORMAT,
        `chan_websocket format ${start.format} is not supported (slin at any rate, ulaw or alaw; dial with c(slin16) or similar)`,
      );
    }
    this.#conn = conn;
    this.#settings = settings;
    this.#hooks = hooks;
    this.mediaStart = start;
    this.controlFormat = conn.controlFormat;
    this.uuid = start.channelId ?? start.connectionId;
    this.remoteAddress = conn.peer.remoteAddress;
    this.remotePort = conn.peer.remotePort;
    this.url = conn.peer.url;
    this.signal = this.#abort.signal;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#wire = start.audioFormat;
    this.#kind = audioKindForRate(this.#wire.sampleRate) ?? 0x10;
    this.#slin = parseFormat({ encoding: 'slin', sampleRate: sampleRateOfKind(this.#kind)!, channels: 1 });
    this.#ptime = start.ptime > 0 ? start.ptime : 20;
    this.#frameBytes = Math.round((this.#slin.sampleRate * this.#ptime) / 1000) * 2;
    const leadMs = Math.min(15000, Math.max(100, pacing.leadMs ?? 1000));
    this.#leadFrames = Math.max(2, Math.round(leadMs / this.#ptime));
    this.#markEvery = Math.max(1, Math.round(pacing.markEveryFrames ?? 10));
    this.#statusTimeoutMs = pacing.statusTimeoutMs ?? 1000;
    this.#markTimeoutMs = Math.max(0, pacing.markTimeoutMs ?? 2000);
    this.#completion = pacing.completion === 'clock' ? 'clock' : 'probe';
    // Frames are delivered decoded to slin at the channel's rate unless `receive` says otherwise,
    // so `write(frame.payload, frame.kind)` (an AudioSocket echo) is right on G.711 channels too.
    this.#receive = settings.receive;
    this.#send = settings.send;
    if (this.#wire.encoding !== 'slin') this.#outEncoder = createConverter(this.#slin, this.#wire);
    this.#queue = new OutboundQueue({
      frameMs: this.#ptime,
      prefetchMs: settings.prefetchMs,
      onReady: () => this.#pump(),
      onMark: (name, reached) => this.#emitSafe('mark', name, reached),
    });

    conn.on('audio', (payload) => this.#onAudio(payload));
    conn.on('dtmf', (digit) => {
      this.#s.messagesIn++;
      this.#s.dtmfIn++;
      this.#emitSafe('dtmf', digit);
    });
    conn.on('markProcessed', (id) => {
      this.#s.messagesIn++;
      this.#onMarkProcessed(id);
    });
    conn.on('xoff', () => {
      this.#s.messagesIn++;
      this.#s.xoffs++;
    });
    conn.on('xon', () => {
      this.#s.messagesIn++;
      this.#pump();
    });
    conn.on('drain', () => this.#pump());
    conn.on('queueDrained', () => {
      this.#s.messagesIn++;
      if (this.#completion === 'clock') this.#settleByClock(true);
    });
    conn.on('event', (e) => {
      if (e.event === 'UNKNOWN') this.#s.otherIn++;
    });
    conn.on('warning', (w: MediaWarning) =>
      this.#emitSafe(
        'warning',
        w.error === undefined ? { code: w.code, message: w.message } : { code: w.code, message: w.message, error: w.error },
      ),
    );
    conn.on('error', (error) => {
      if (this.#state === 'open') {
        this.#endReason = endReasonOf(error);
        this.#endError = error;
      }
    });
    void conn.closed.then((info) => this.#onClose(info));
  }

  /** @internal Called by the server once listeners may be attached. */
  _start(): void {
    this.#hooks.ready(this);
  }

  get connected(): boolean {
    return this.#state === 'open';
  }

  get inboundKind(): AudioKind | undefined {
    return this.#s.audioIn > 0 ? this.#kind : undefined;
  }

  get inboundSampleRate(): number | undefined {
    return this.#s.audioIn > 0 ? this.#wire.sampleRate : undefined;
  }

  get inboundFormatGuess(): undefined {
    return undefined;
  }

  /** slin kind at the channel's rate: writes without a kind are in it (then encoded to the wire format). */
  get outboundKind(): AudioKind {
    return this.#kind;
  }

  get frameBytes(): number {
    return this.#frameBytes;
  }

  get frameMs(): number {
    return this.#ptime;
  }

  /** How plays and marks complete on this call now: by MARK_MEDIA answers, or by our clock (see `completion`). */
  get completionMode(): 'marks' | 'clock' {
    return this.#completion === 'clock' ? 'clock' : 'marks';
  }

  get endReason(): EndReason | undefined {
    return this.#endReason;
  }

  get receiveFormat(): AudioFormat | undefined {
    return this.#receive;
  }

  get sendFormat(): AudioFormat | undefined {
    return this.#send;
  }

  /** slin at the channel's rate (the channel's own encoding may be G.711: we encode on the way out). */
  get outboundFormat(): AudioFormat {
    return this.#slin;
  }

  get stats(): CallStats {
    const c = this.#conn.stats;
    return {
      messagesIn: this.#s.messagesIn,
      bytesIn: c.audioBytesIn,
      audioIn: this.#s.audioIn,
      emptyAudioIn: this.#s.emptyAudioIn,
      oddAudioIn: this.#s.oddAudioIn,
      dtmfIn: this.#s.dtmfIn,
      otherIn: this.#s.otherIn,
      droppedIn: this.#s.droppedIn,
      messagesOut: c.framesOut + c.commandsOut,
      bytesOut: c.audioBytesOut,
      droppedOut: this.#s.droppedOut,
      framesSent: this.#s.framesSent,
      silenceFrames: 0,
      lateSlots: 0,
      caughtUpFrames: 0,
      droppedSlots: 0,
      droppedWrites: this.#s.droppedWrites,
      droppedMs: this.#s.droppedMs,
      delayedWrites: this.#s.delayedWrites,
      underruns: 0,
      queuedMs: this.#queue.queuedMs,
      unsentMs: this.#s.unsentMs,
    };
  }

  write(payload: Uint8Array | Int16Array, kind?: AudioKind): boolean {
    if (this.#state !== 'open') throw audioSocketError(ErrorCodes.CALL_ENDED, `cannot write: the call has ended (${this.#endReason})`);
    let bytes = toBuffer(payload);
    if (kind !== undefined) {
      if (!isAudioKind(kind)) throw audioSocketError(ErrorCodes.INVALID_MESSAGE, `not an audio kind: ${kind}`);
      if ((bytes.length & 1) === 1)
        throw audioSocketError(ErrorCodes.INVALID_MESSAGE, `slin audio must be whole samples, got ${bytes.length} bytes`);
      if (kind !== this.#kind) {
        let conv = this.#kindConverters.get(kind);
        if (conv === undefined) {
          conv = createConverter({ encoding: 'slin', sampleRate: sampleRateOfKind(kind)!, channels: 1 }, this.#slin);
          this.#kindConverters.set(kind, conv);
        }
        bytes = Buffer.from(conv.push(bytes));
      }
    } else if (this.#send !== undefined && !sameFormat(this.#send, this.#slin)) {
      this.#writeConverter ??= createConverter(this.#send, this.#slin);
      bytes = Buffer.from(this.#writeConverter.push(bytes));
    } else if ((bytes.length & 1) === 1) {
      throw audioSocketError(ErrorCodes.INVALID_MESSAGE, `slin audio must be whole samples, got ${bytes.length} bytes`);
    }
    let dropped = false;
    const ms = (bytes.length / 2 / this.#slin.sampleRate) * 1000;
    const room = this.#settings.maxQueuedMs - this.#queue.queuedMs;
    if (ms > room + 1e-6) {
      const keep = Math.max(0, Math.floor((room * this.#slin.sampleRate) / 1000) * 2);
      const droppedMs = ms - (keep / 2 / this.#slin.sampleRate) * 1000;
      bytes = bytes.subarray(0, keep);
      dropped = true;
      this.#s.droppedWrites++;
      this.#s.droppedMs += droppedMs;
      this.#emitSafe('warning', {
        code: 'QUEUE_FULL',
        droppedMs,
        message: `dropped ${droppedMs.toFixed(1)} ms of written audio: maxQueuedMs ${this.#settings.maxQueuedMs} was already queued`,
      });
    }
    if (bytes.length > 0) {
      this.#queue.write(bytes, this.#kind);
      this.#pump();
      if (!this.#queue.empty) this.#s.delayedWrites++;
    }
    const below = this.#queue.queuedMs < this.#settings.writeHighWaterMarkMs;
    if (!below || dropped) this.#needDrain = true;
    return below && !dropped;
  }

  receiveAs(format: FormatSpec | null): this {
    this.#inConverter?.dispose();
    this.#inConverter = undefined;
    this.#receive = format === null ? undefined : parseFormat(format);
    return this;
  }

  sendAs(format: FormatSpec | null): this {
    this.#writeConverter?.dispose();
    this.#writeConverter = undefined;
    this.#send = format === null ? undefined : parseFormat(format);
    return this;
  }

  /**
   * Queues a source behind everything queued. Resolves when Asterisk reports its last frame
   * played (MEDIA_MARK_PROCESSED), not when it was sent. On a flush, `sentMs` is what the caller
   * heard (from GET_STATUS just before FLUSH_MEDIA), not what was sent.
   */
  /** @deprecated Use {@link playFile} for a WAV file path. */
  play(path: string, options?: PlayOptions): Promise<PlayResult>;
  play(source: AudioSource, options?: PlayOptions): Promise<PlayResult>;
  play(source: PlaySource, options: PlayOptions = {}): Promise<PlayResult> {
    if (this.#state !== 'open') return Promise.resolve({ status: 'interrupted', reason: 'hangup', framesSent: 0, sentMs: 0 });
    let convert: ByteConverter | undefined;
    let src = source;
    if (typeof source === 'string') src = wavPlaySource(source, this.#slin);
    else {
      try {
        const from = options.format === undefined ? this.#send : parseFormat(options.format);
        if (from !== undefined && !sameFormat(from, this.#slin)) convert = createConverter(from, this.#slin);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    // Where this play starts on the timeline of frames sent (for what the caller heard).
    const startMs = this.#framesOut * this.#ptime + this.#queue.queuedMs;
    const played = this.#queue.play(src as Exclude<PlaySource, string>, convert, this.#kind, options.signal);
    return played.then(async (r) => {
      if (r.status !== 'interrupted' || r.reason !== 'flush' || this.#lastFlush === undefined) return r;
      const heardTotal = await this.#lastFlush.heardMs;
      return { ...r, sentMs: Math.max(0, Math.min(r.sentMs, heardTotal - startMs)) };
    }, rejectAsSourceError);
  }

  /** Plays a WAV file converted to the call's format; settles as {@link play} does (see `Call.playFile`). */
  playFile(path: string, options: PlayFileOptions = {}): Promise<PlayResult> {
    return this.play(path, options);
  }

  createWriteStream(options: PlayOptions & { highWaterMarkMs?: number } = {}): Writable & { interrupted?: PlayResult } {
    return createPlayStream(this, options);
  }

  /** Queues a mark: MARK_MEDIA after the audio queued before it; `true` on MEDIA_MARK_PROCESSED, `false` if flushed. */
  mark(name: string): Promise<boolean> {
    if (this.#state !== 'open') return Promise.resolve(false);
    const p = this.#queue.mark(name);
    this.#pump();
    return p;
  }

  /**
   * Drops everything queued here and in Asterisk (FLUSH_MEDIA). Marks and plays waiting in
   * Asterisk's queue are settled at once (Asterisk forgets them silently). Returns the ms dropped
   * from our own queue (Asterisk's part is not known synchronously).
   */
  flush(): number {
    if (this.#state !== 'open') return 0;
    const conn = this.#conn;
    conn.flushPending({ pad: false });
    const estimateMs = this.#heardFrames() * this.#ptime;
    const framesOut = this.#framesOut;
    const status: Promise<MediaStatus | undefined> = conn.getStatus().catch(() => undefined);
    conn.flushMedia();
    let timer: NodeJS.Timeout | undefined;
    const heardMs = Promise.race([
      status.then((s) => (s === undefined ? estimateMs : Math.max(0, framesOut - s.queueLength) * this.#ptime)),
      new Promise<number>((resolve) => (timer = setTimeout(() => resolve(estimateMs), this.#statusTimeoutMs))),
    ]).finally(() => clearTimeout(timer));
    this.#lastFlush = { heardMs };
    // Asterisk's queue is empty now.
    this.#anchorFrames = this.#framesOut;
    this.#anchorAt = performance.now();
    const inAsterisk = [...this.#marks.values()];
    this.#marks.clear();
    clearTimeout(this.#clockTimer);
    this.#clockTimer = undefined;
    const { droppedMs, completions } = this.#queue.flush('flush');
    for (const e of inAsterisk) for (const c of e.completions) c.cancel('flush');
    for (const c of completions) c.cancel('flush');
    this.#checkDrain();
    this.#checkIdle();
    return droppedMs;
  }

  /** @deprecated Use {@link flush}. */
  clear(): number {
    return this.flush();
  }

  /** Resolves when everything queued so far has been sent and Asterisk has played it (or it was flushed). */
  drained(): Promise<void> {
    if (this.#state !== 'open' || this.#idle()) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
    this.#pump();
    return p;
  }

  async end(): Promise<CallEnd> {
    if (this.#state === 'open') await this.drained();
    return this.hangup();
  }

  /** Drops queued audio, sends HANGUP and waits for Asterisk to close (at most `hangupTimeout`). */
  hangup(): Promise<CallEnd> {
    this.#beginEnd('local-hangup', undefined);
    return this.closed;
  }

  /** Hangs up and waits until the call has ended: `await using` support. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.hangup();
  }

  [Symbol.asyncIterator](): AsyncIterator<AudioFrame> {
    return this.frames()[Symbol.asyncIterator]();
  }

  frames(options: { signal?: AbortSignal } = {}): AsyncIterable<AudioFrame> {
    let warned = false;
    const limit = this.#settings.iteratorQueueFrames;
    return receivedFrames(this, {
      limit,
      ended: this.#state !== 'open',
      signal: options.signal,
      onDrop: () => {
        this.#s.droppedIn++;
        if (warned) return;
        warned = true;
        this.#emitSafe('warning', {
          code: 'ITERATOR_OVERFLOW',
          message: `audio iterator fell ${limit} frames behind; dropping the oldest frames`,
        });
      },
    });
  }

  /** @internal */
  _terminate(reason: 'server-close' | 'handler-error', cause?: unknown): Promise<CallEnd> {
    if (reason === 'handler-error') this.#listenerFailed(cause);
    else this.#beginEnd(reason, undefined);
    return this.closed;
  }

  #onAudio(payload: Buffer): void {
    if (this.#state !== 'open') return;
    this.#s.messagesIn++;
    this.#s.bytesIn += payload.length;
    if (this.#wire.encoding === 'slin' && (payload.length & 1) === 1) {
      // Keep whole samples, as the AudioSocket call does, so nothing downstream is shifted by a byte.
      this.#s.oddAudioIn++;
      if (this.#s.oddAudioIn === 1) {
        this.#emitSafe('warning', {
          code: 'UNEXPECTED_MESSAGE',
          message: `odd-length slin audio (${payload.length} bytes): the last byte is dropped (counted in stats.oddAudioIn)`,
        });
      }
      payload = payload.subarray(0, payload.length - 1);
    }
    if (payload.length === 0) {
      this.#s.emptyAudioIn++;
      return;
    }
    this.#s.audioIn++;
    if (this.listenerCount('audio') === 0) return;
    const target = this.#receive ?? this.#slin;
    let out: Buffer = payload;
    if (!sameFormat(target, this.#wire)) {
      this.#inConverter ??= createConverter(this.#wire, target);
      out = Buffer.from(this.#inConverter.push(payload));
      if (out.length === 0) return;
    }
    this.#emitSafe('audio', { kind: this.#kind, sampleRate: target.sampleRate, format: target, payload: out });
  }

  /** Frames Asterisk has played by now, by the last mark and its clock (one frame per ptime). */
  #heardFrames(): number {
    const est = this.#anchorFrames + Math.floor((performance.now() - this.#anchorAt) / this.#ptime);
    return Math.min(this.#framesOut, est);
  }

  #sendMark(completions: Completion[]): void {
    const conn = this.#conn;
    conn.flushPending({ pad: true }); // the last partial frame goes before the mark
    this.#framesOut = conn.stats.framesOut;
    const id = `as${++this.#markSeq}`;
    const now = performance.now();
    const dueAt = Math.max(now, this.#anchorAt + (this.#framesOut - this.#anchorFrames) * this.#ptime);
    this.#marks.set(id, { frames: this.#framesOut, dueAt, completions });
    this.#sinceMark = 0;
    if (this.#completion === 'clock') {
      // QUEUE_DRAINED (every Asterisk version) settles everything sent once the queue is empty.
      if (completions.length > 0) conn.reportQueueDrained();
    } else {
      this.#s.marksSent++;
      conn.markMedia(id);
    }
    if (this.#completion !== 'marks') this.#armClock();
  }

  /** In `probe`: wakes when the oldest mark is overdue; in `clock`: when it is due. */
  #armClock(): void {
    if (this.#clockTimer !== undefined) return;
    const first = this.#marks.values().next().value;
    if (first === undefined) return;
    const at = first.dueAt + (this.#completion === 'probe' ? this.#markTimeoutMs : 0);
    this.#clockTimer = setTimeout(
      () => {
        this.#clockTimer = undefined;
        if (this.#state !== 'open') return;
        if (this.#completion === 'probe' && this.#marks.size > 0) {
          this.#completion = 'clock';
          this.#emitSafe('warning', {
            code: 'MARKS_UNSUPPORTED',
            message: `MARK_MEDIA was not answered within ${this.#markTimeoutMs} ms of its playout (Asterisk before 20.18/22.8/23.2?); plays and marks now complete by our clock estimate`,
          });
          if (this.#state !== 'open') return;
        }
        if (this.#completion === 'clock') this.#settleByClock(false);
      },
      Math.max(1, at - performance.now()),
    );
  }

  /** Settles the marks our clock says have played (all of them after QUEUE_DRAINED). */
  #settleByClock(drained: boolean): void {
    const now = performance.now();
    const reached: MarkEntry[] = [];
    for (const [k, e] of this.#marks) {
      if (!drained && e.dueAt > now) break;
      reached.push(e);
      this.#marks.delete(k);
    }
    if (drained) {
      this.#anchorFrames = this.#framesOut;
      this.#anchorAt = now;
    } else if (reached.length > 0) {
      const last = reached[reached.length - 1]!;
      this.#anchorFrames = last.frames;
      this.#anchorAt = last.dueAt;
    }
    for (const e of reached) for (const c of e.completions) c.done();
    this.#armClock();
    this.#pump();
    this.#checkIdle();
  }

  #onMarkProcessed(id: string): void {
    const entry = this.#marks.get(id);
    if (entry === undefined) return; // a mark of a flush, or not ours
    if (this.#completion === 'probe') {
      this.#completion = 'marks';
      clearTimeout(this.#clockTimer);
      this.#clockTimer = undefined;
    }
    // Marks come back in order: any older one still here is reached too.
    const reached: MarkEntry[] = [];
    for (const [k, e] of this.#marks) {
      reached.push(e);
      this.#marks.delete(k);
      if (k === id) break;
    }
    this.#anchorFrames = entry.frames;
    this.#anchorAt = performance.now();
    for (const e of reached) for (const c of e.completions) c.done();
    this.#pump();
    this.#checkIdle();
  }

  /** Feeds Asterisk's buffer while XOFF, the socket and our lead bound allow. */
  #pump(): void {
    if (this.#pumping || this.#state !== 'open') return;
    this.#pumping = true;
    const conn = this.#conn;
    const queue = this.#queue;
    try {
      for (;;) {
        const marks = queue.takeLeadingMarks();
        if (marks.length > 0) this.#sendMark([...marks]);
        const bytes = queue.peek();
        if (bytes === 0) break;
        if (bytes < this.#frameBytes && queue.moreMayCome) break; // a streamed play: wait for the rest of the frame
        if (conn.xoff || !conn.writable) break; // xon / drain wake us
        const heard = this.#heardFrames();
        if (heard >= this.#framesOut) {
          // Asterisk's queue is (about) empty: playout restarts with this frame.
          this.#anchorFrames = this.#framesOut;
          this.#anchorAt = performance.now();
        } else if (this.#framesOut - heard >= this.#leadFrames) {
          this.#wakeIn((this.#framesOut - heard - this.#leadFrames + 1) * this.#ptime);
          break;
        }
        const frame = queue.take()!;
        const slin = frame.message.subarray(3);
        const wire = this.#outEncoder === undefined ? slin : this.#outEncoder.push(slin);
        conn.sendAudio(wire);
        this.#framesOut = conn.stats.framesOut;
        this.#s.framesSent++;
        if (this.listenerCount('sent') > 0) this.#emitSafe('sent', frame.kind, slin, 0);
        if (frame.completed.length > 0) this.#sendMark([...frame.completed]);
        else if (++this.#sinceMark >= this.#markEvery) this.#sendMark([]);
      }
      if (queue.empty && conn.pendingBytes > 0 && !queue.moreMayCome) {
        conn.flushPending({ pad: true });
        this.#framesOut = conn.stats.framesOut;
      }
      if (this.#drainWaiters.length > 0 && queue.empty && this.#marks.size === 0 && this.#framesOut > this.#anchorFrames) {
        this.#sendMark([]); // so drained() learns when the last frames have played
      }
    } finally {
      this.#pumping = false;
    }
    this.#checkDrain();
    this.#checkIdle();
  }

  #wakeIn(ms: number): void {
    if (this.#wakeTimer !== undefined) return;
    this.#wakeTimer = setTimeout(
      () => {
        this.#wakeTimer = undefined;
        this.#pump();
      },
      Math.max(1, ms),
    );
  }

  #idle(): boolean {
    return this.#queue.empty && this.#marks.size === 0 && this.#conn.pendingBytes === 0 && this.#heardFrames() >= this.#framesOut;
  }

  #checkIdle(): void {
    if (this.#drainWaiters.length === 0) return;
    if (!(this.#queue.empty && this.#marks.size === 0)) return;
    if (this.#heardFrames() < this.#framesOut && this.#framesOut > this.#anchorFrames) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  #checkDrain(): void {
    if (this.#needDrain && this.#queue.queuedMs < this.#settings.writeHighWaterMarkMs) {
      this.#needDrain = false;
      this.#emitSafe('drain');
    }
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
    this.#beginEnd('handler-error', handlerError(err));
  }

  #beginEnd(reason: EndReason, error: AudioSocketError | undefined): void {
    if (this.#state !== 'open') return;
    this.#state = 'ending';
    this.#endReason = reason;
    this.#endError = error;
    this.#stopOutbound();
    if (reason === 'handler-error') void this.#conn.close(1011, 'handler error');
    else void this.#conn.hangup();
    if (error !== undefined && this.listenerCount('error') > 0) this.#emitSafe('error', error);
    this.#abort.abort(error ?? audioSocketError(ErrorCodes.CALL_ENDED, `call ended: ${reason}`));
  }

  #stopOutbound(): void {
    if (this.#wakeTimer !== undefined) clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    clearTimeout(this.#clockTimer);
    this.#clockTimer = undefined;
    const { droppedMs, completions } = this.#queue.close();
    this.#s.unsentMs += droppedMs;
    for (const c of completions) c.cancel('hangup');
    for (const e of this.#marks.values()) for (const c of e.completions) c.cancel('hangup');
    this.#marks.clear();
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  #onClose(info: MediaClose): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'open') {
      this.#state = 'ending';
      const error = this.#endError ?? info.error;
      this.#endReason ??= error !== undefined ? endReasonOf(error) : RESET_REASON[info.by];
      this.#endError = error;
      this.#stopOutbound();
      if (error !== undefined && this.listenerCount('error') > 0) this.#emitSafe('error', error);
      this.#abort.abort(error ?? audioSocketError(ErrorCodes.CALL_ENDED, `call ended: ${this.#endReason}`));
    }
    this.#state = 'closed';
    this.#inConverter?.dispose();
    this.#outEncoder?.dispose();
    this.#writeConverter?.dispose();
    for (const c of this.#kindConverters.values()) c.dispose();
    const end: CallEnd = { reason: this.#endReason!, durationMs: performance.now() - this.#t0, stats: this.stats };
    if (this.#endError !== undefined) end.error = this.#endError;
    this.#resolveClosed(end);
    this.#emitSafe('end', end);
    this.#hooks.closed(this, end);
  }
}

export type { CallWarning };
