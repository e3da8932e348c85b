/**
 * The one implementation of the call contract ({@link CallBase}): lifecycle and its single
 * close path, events, iteration, formats and conversion, plays, marks, flush, streams, and
 * `end`/`hangup`/dispose. A transport subclasses it and supplies only its connection (what it
 * receives, how it hangs up) and its outbound policy (how what is queued leaves):
 * `src/audiosocket/call.ts` and `src/websocket/call.ts`.
 *
 * The close path, one for every reason: {@link CallCore._beginEnd} (state `ending`: the
 * outbound policy stops, the transport is told to hang up or close, `signal` aborts), then the
 * transport reports its connection closed, {@link CallCore._closed} (state `closed`: `end`
 * fires once, `closed` resolves, the server forgets the call).
 */
import { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';
import { AudioSocketError, audioSocketError, ErrorCodes, handlerError, type CallWarningCode } from '../errors.js';
import { createConverter, type Converter } from '../audio/convert.js';
import { peakOf } from '../audio/peak.js';
import { bytesPerSample, formatName, parseFormat, sameFormat, type AudioFormat, type FormatSpec } from '../audio/format.js';
import type { Clock } from '../clock.js';
import type { OutboundCounters, OutboundEvents, OutboundPolicy } from '../outbound/policy.js';
import type { SendMeter } from '../outbound/send-meter.js';
import type { AudioSource, ByteConverter, PlayResult } from '../outbound/queue.js';
import { createPlayStream, receivedFrames, rejectAsSourceError, wavPlaySource } from './streams.js';
import { CallSpeech } from '../speech/call-speech.js';
import type { SpeechEvent, SpeechOptions } from '../speech/detector.js';
import type { BargeIn } from '../outbound/queue.js';
import type {
  AudioFrame,
  CallBase,
  CallEnd,
  CallEvents,
  CallStats,
  CallWarning,
  EndReason,
  PlayFileOptions,
  PlayOptions,
  WriteStreamOptions,
} from './types.js';

/** What a call tells its server. */
export interface CallHooks {
  closed(call: object, end: CallEnd): void;
  listenerError(error: unknown, call: object): void;
  /** Every warning of the call; `heard`: the call had a `warning` listener. */
  warning(call: object, warning: CallWarning, heard: boolean): void;
}

/** What the core needs of the server's settings. */
export interface CoreSettings {
  receive: AudioFormat | undefined;
  send: AudioFormat | undefined;
  iteratorQueueFrames: number;
  /** Speech detection from the start of every call (server option `speech`). */
  speech?: SpeechOptions | undefined;
}

/** How a transport builds a call on the core. */
export interface CallInit {
  uuid: string;
  remoteAddress: string;
  remotePort: number;
  clock: Clock;
  settings: CoreSettings;
  hooks: CallHooks;
}

/**
 * @internal An observer inside the library (the monitor), one per call, set with
 * `call[kCallTap](tap)`. It looks at the call at its own rate, and the call does nothing per
 * frame for it beyond a comparison: frames sent late go into the outbound side's
 * {@link SendMeter}; after `call[kCallSample]()`, the next frame each way gives its peak (into
 * `inPeak` and the meter's `peak`).
 */
export interface CallTap {
  /** Counted into by the call's outbound side. */
  readonly sendMeter: SendMeter;
  /** The peak (0..1) of the first frame received after the last `call[kCallSample]()`; the observer resets it. */
  inPeak: number;
  /** A play was queued (`play()`, `playFile()`, a write stream): what it plays, and how it ends. */
  play(what: TapPlay, result: Promise<PlayResult>): void;
}

/**
 * @internal Every frame each way, for listen-in: set with `call[kCallFrames](frames)` only while
 * someone listens (the call then reports frames sent, as for a `sent` listener).
 */
export interface CallFrames {
  /** Audio as received, before any conversion. */
  audio(wire: AudioFormat, payload: Buffer): void;
  /** A frame reaching the caller about now. */
  sent(payload: Buffer, format: AudioFormat): void;
}

/** @internal What a play plays, for {@link CallTap.play}: a file, bytes in one piece, or a stream. */
export type TapPlay = { file: string } | { bytes: number } | { stream: true };

/** @internal */
export const kCallTap = Symbol('audiosocket.callTap');
/** @internal */
export const kCallFrames = Symbol('audiosocket.callFrames');
/** @internal */
export const kCallSample = Symbol('audiosocket.callSample');

/**
 * Counters of received audio and messages, kept by the core for every transport; those counted
 * per frame (`messagesIn`, `audioIn`) are fields of the call instead.
 */
type InboundCounters = Pick<CallStats, 'emptyAudioIn' | 'oddAudioIn' | 'dtmfIn' | 'otherIn' | 'droppedIn'>;

type State = 'open' | 'ending' | 'closed';

/** An `audio` listener as the call calls it (with the call as `this`). */
type AudioListener = (this: unknown, frame: unknown) => void;

/** Delivers a frame to several `audio` listeners: EventEmitter's own `emit`. */
const emitAudioToAll: AudioListener = function (this: unknown, frame: unknown): void {
  (this as EventEmitter).emit('audio', frame);
};

/** What a play queued after the call ended resolves with: a hangup is not an error for a prompt. */
function hungUpPlay(): Promise<PlayResult> {
  return Promise.resolve({ status: 'interrupted', reason: 'hangup', framesSent: 0, sentMs: 0 });
}

/** An Int16Array is its bytes, not its values truncated. */
export function audioBytes(audio: Uint8Array | Int16Array): Buffer {
  if (Buffer.isBuffer(audio)) return audio;
  if (audio instanceof Int16Array || audio instanceof Uint8Array) return Buffer.from(audio.buffer, audio.byteOffset, audio.byteLength);
  throw audioSocketError(
    ErrorCodes.INVALID_ARGUMENT,
    `audio must be a Buffer, Uint8Array or Int16Array, got ${Object.prototype.toString.call(audio)}`,
  );
}

/** The base of both transports' calls (not constructed by users); see the module comment. */
export abstract class CallCore<F extends AudioFrame = AudioFrame, S extends CallStats = CallStats>
  extends EventEmitter<CallEvents<F>>
  implements CallBase<F, S>
{
  abstract readonly transport: 'audiosocket' | 'websocket';
  // Fields read per frame received come first, together: a frame reads the few cache lines
  // they fill, not every line of the call (see PacedOutbound).
  #state: State = 'open';
  #outbound!: OutboundPolicy;
  /**
   * Who hears `audio`, asked per frame received: `null` nobody; the listener itself when it is
   * the only one (as EventEmitter stores it: a `once` listener's wrapper), called as `emit` would
   * but without looking it up by name; {@link emitAudioToAll} when there are several; `undefined`
   * when the listeners changed since the last frame (worked out at the next).
   */
  #audioListener: AudioListener | null | undefined = null;
  #receive: AudioFormat | undefined;
  /** Speech detection, while it is on. */
  #speech: CallSpeech | undefined;
  #frames: CallFrames | undefined;
  #tap: CallTap | undefined;
  /** The tap asked for the peak of the next frame received. */
  #sampleIn = false;
  /** Counted per frame received: fields of the call, not of `_in` (one object fewer per frame). */
  protected _messagesIn = 0;
  #audioIn = 0;
  protected readonly _in: InboundCounters = {
    emptyAudioIn: 0,
    oddAudioIn: 0,
    dtmfIn: 0,
    otherIn: 0,
    droppedIn: 0,
  };
  protected _inboundFormat: AudioFormat | undefined;
  protected readonly _clock: Clock;
  readonly remoteAddress: string;
  readonly remotePort: number;

  // What a call keeps for its whole life is kept small: the `Date`, the abort controller, the
  // `closed` promise and the write converters' map are made when first asked for (most calls
  // never ask), since a server holds thousands of calls.
  readonly #uuid: string;
  readonly #startWallMs = Date.now();
  #startTime: Date | undefined;
  protected readonly _startedAt: number;
  readonly #settings: CoreSettings;
  readonly #hooks: CallHooks;
  #abort: AbortController | undefined;
  /** `signal` has been aborted (or is, once made): set by `_beginEnd` at its abort, not before its listeners ran. */
  #abortDue = false;
  #closed: Promise<CallEnd> | undefined;
  #resolveClosed: ((end: CallEnd) => void) | undefined;
  #end: CallEnd | undefined;
  #endReason: EndReason | undefined;
  #endError: AudioSocketError | undefined;
  #send: AudioFormat | undefined;
  /** Converts received audio to the receive format; keyed by the wire format it was made for. */
  #inConverter: Converter | undefined;
  #inConverterFrom: AudioFormat | undefined;
  /** Converts written audio to the outbound format, one per source format. */
  #writeConverters: Map<AudioFormat, Converter> | undefined;
  /** The first bytes of a sample the last write ended inside, waiting for the rest (see #wholeSamples). */
  #partialSample: { format: AudioFormat; bytes: Buffer } | undefined;
  #speechOptions: SpeechOptions | undefined;
  /** Someone listens to `sent` (asked per frame sent; the outbound side's `reportSent` also counts the detector and listen-in). */
  #sentListened = false;

  constructor(init: CallInit) {
    super();
    this.#uuid = init.uuid;
    this.remoteAddress = init.remoteAddress;
    this.remotePort = init.remotePort;
    this._clock = init.clock;
    this._startedAt = init.clock.now();
    this.#settings = init.settings;
    this.#hooks = init.hooks;
    this.#receive = init.settings.receive;
    this.#send = init.settings.send;
    this.#watchListeners();
    if (init.settings.speech !== undefined) this.detectSpeech(init.settings.speech);
  }

  /**
   * Keeps `#audioListener` and `#sentListened` current: asked per frame, so kept rather than
   * counted. 'newListener' comes before a listener is added, 'removeListener' after it is removed.
   * The two listeners are shared by every call (EventEmitter calls them with the call as `this`).
   */
  #watchListeners(): void {
    const emitter = this as unknown as EventEmitter;
    emitter.on('newListener', CallCore.#onNewListener);
    emitter.on('removeListener', CallCore.#onRemoveListener);
  }

  static readonly #onNewListener = function (this: CallCore, event: string | symbol): void {
    if (event === 'audio') this.#audioListener = undefined;
    if (event === 'sent' && !this.#sentListened) {
      this.#sentListened = true;
      this.#updateReportSent();
    }
  };

  static readonly #onRemoveListener = function (this: CallCore, event: string | symbol): void {
    if (event === 'audio') this.#audioListener = undefined;
    if (event === 'sent') {
      this.#sentListened = this.listenerCount('sent') > 0;
      this.#updateReportSent();
    }
  };

  /** As EventEmitter's; the call's own watch on its listeners stays (it is put back when removed). */
  override removeAllListeners(...args: Parameters<EventEmitter<CallEvents<F>>['removeAllListeners']>): this {
    super.removeAllListeners(...args);
    const emitter = this as unknown as EventEmitter;
    if (emitter.listenerCount('newListener') === 0 || emitter.listenerCount('removeListener') === 0) {
      EventEmitter.prototype.removeAllListeners.call(emitter, 'newListener');
      EventEmitter.prototype.removeAllListeners.call(emitter, 'removeListener');
      this.#watchListeners();
    }
    this.#audioListener = undefined;
    this.#sentListened = this.listenerCount('sent') > 0;
    this.#updateReportSent();
    return this;
  }

  /** Attaches the transport's outbound policy, built on the events the core hands it. */
  protected _attachOutbound<P extends OutboundPolicy>(build: (events: OutboundEvents) => P): P {
    const policy = build(new CallCore.#OutboundEvents(this));
    policy.meter = this.#tap?.sendMeter ?? null;
    this.#outbound = policy;
    this.#updateReportSent();
    return policy;
  }

  /**
   * What the outbound side tells its call: an object with shared methods and one field, not a
   * closure per event (a server holds thousands of calls). In the class body to reach its privates.
   */
  static readonly #OutboundEvents = class implements OutboundEvents {
    readonly #call: CallCore;
    constructor(call: CallCore) {
      this.#call = call;
    }
    sent(payload: Buffer, format: AudioFormat, at: number, latenessMs: number, silence: boolean): void {
      const call = this.#call;
      const atMs = at - call._startedAt;
      call.#speech?.outbound(payload, format, atMs);
      call.#frames?.sent(payload, format);
      if (call.#sentListened) call._emitSafe('sent', { payload, format, atMs, latenessMs, silence });
    }
    mark(name: string, reached: boolean): void {
      this.#call._emitSafe('mark', name, reached);
    }
    drain(): void {
      this.#call._emitSafe('drain');
    }
    dropped(droppedMs: number, queuedMs: number): void {
      this.#call._emitSafe('warning', {
        code: 'QUEUE_FULL',
        droppedMs,
        message:
          `dropped ${droppedMs.toFixed(1)} ms of written audio: ${queuedMs.toFixed(0)} ms was already queued ` +
          `(maxQueuedMs); when write() returns false, wait for 'drain' before writing more`,
      });
    }
    warning(code: CallWarningCode, message: string): void {
      this.#call._warn(code, message);
    }
  };

  /** The call's id (see {@link CallBase.uuid}); read-only. */
  get uuid(): string {
    return this.#uuid;
  }

  /** When the call started (wall clock). */
  get startTime(): Date {
    return (this.#startTime ??= new Date(this.#startWallMs));
  }

  /** Aborts when the call starts ending (see {@link CallBase.signal}). */
  get signal(): AbortSignal {
    if (this.#abort === undefined) {
      this.#abort = new AbortController();
      if (this.#abortDue) this.#abort.abort(this.#abortReason());
    }
    return this.#abort.signal;
  }

  /** Resolves once the call is closed (see {@link CallBase.closed}). */
  get closed(): Promise<CallEnd> {
    if (this.#closed === undefined) {
      this.#closed = this.#end !== undefined ? Promise.resolve(this.#end) : new Promise((resolve) => (this.#resolveClosed = resolve));
    }
    return this.#closed;
  }

  #abortReason(): AudioSocketError {
    return this.#endError ?? audioSocketError(ErrorCodes.CALL_ENDED, `call ended: ${this.#endReason}`);
  }

  get connected(): boolean {
    return this.#state === 'open';
  }

  /** True once the call has started ending. */
  protected get _ending(): boolean {
    return this.#state !== 'open';
  }

  get inboundFormat(): AudioFormat | undefined {
    return this._inboundFormat;
  }

  get inboundSampleRate(): number | undefined {
    return this._inboundFormat?.sampleRate;
  }

  get frameMs(): number {
    return this.#outbound.frameMs;
  }

  get frameBytes(): number {
    return this.#outbound.frameBytes;
  }

  get outboundFormat(): AudioFormat {
    return this.#outbound.format;
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

  abstract get stats(): S;

  /** The counters every transport has; the transport adds its own and what it measures itself. */
  protected _commonStats(
    out: {
      messagesOut: number;
      bytesIn: number;
      bytesOut: number;
      droppedOut: number;
    },
    o: OutboundCounters = this.#outbound.stats,
  ): CallStats {
    const i = this._in;
    return {
      messagesIn: this._messagesIn,
      audioIn: this.#audioIn,
      emptyAudioIn: i.emptyAudioIn,
      oddAudioIn: i.oddAudioIn,
      dtmfIn: i.dtmfIn,
      otherIn: i.otherIn,
      droppedIn: i.droppedIn,
      bytesIn: out.bytesIn,
      messagesOut: out.messagesOut,
      bytesOut: out.bytesOut,
      droppedOut: out.droppedOut,
      framesSent: o.framesSent,
      droppedWrites: o.droppedWrites,
      droppedMs: o.droppedMs,
      delayedWrites: o.delayedWrites,
      queuedMs: o.queuedMs,
      flushedMs: o.flushedMs,
      unsentMs: o.unsentMs,
    };
  }

  write(payload: Uint8Array | Int16Array, format?: FormatSpec): boolean {
    if (this.#state !== 'open') throw audioSocketError(ErrorCodes.CALL_ENDED, `cannot write: the call has ended (${this.#endReason})`);
    let bytes = audioBytes(payload);
    const policy = this.#outbound;
    // An echo writes back whole frames in the format it received, often the outbound format itself.
    if (format === policy.format && this.#partialSample === undefined && (bytes.length & 1) === 0) {
      return policy.write(bytes, policy.format);
    }
    if (format !== undefined) {
      const from = parseFormat(format);
      bytes = this.#wholeSamples(bytes, from);
      return policy.accepts(from) ? policy.write(bytes, from) : this.#writeConverted(bytes, from);
    }
    const from = this.#send ?? policy.format;
    bytes = this.#wholeSamples(bytes, from);
    return from === policy.format ? policy.write(bytes, from) : this.#writeConverted(bytes, from);
  }

  /**
   * Written audio is a stream of bytes, as from a socket or an HTTP body: a write may end inside
   * a sample, whose other bytes come first in the next write. Those bytes wait here, so the
   * outbound side only ever sees whole samples. The next write must then be in the same format.
   * They go with the next write, behind whatever was queued meanwhile (a play, a mark); `flush()`
   * and the end of the call drop them (less than a sample: nothing a caller could hear).
   */
  #wholeSamples(bytes: Buffer, format: AudioFormat): Buffer {
    const partial = this.#partialSample;
    if (partial !== undefined) {
      if (!sameFormat(partial.format, format)) {
        throw audioSocketError(
          ErrorCodes.INVALID_ARGUMENT,
          `the last write ended inside a ${formatName(partial.format)} sample (${partial.bytes.length} of its ` +
            `${bytesPerSample(partial.format)} bytes): write the rest of it before writing ${formatName(format)}`,
        );
      }
      this.#partialSample = undefined;
      bytes = Buffer.concat([partial.bytes, bytes]);
    }
    const rest = bytes.length % bytesPerSample(format);
    if (rest === 0) return bytes;
    // Copied: the caller may reuse its buffer once the write returns.
    this.#partialSample = { format, bytes: Buffer.from(bytes.subarray(bytes.length - rest)) };
    return bytes.subarray(0, bytes.length - rest);
  }

  #writeConverted(bytes: Buffer, from: AudioFormat): boolean {
    const converters = (this.#writeConverters ??= new Map<AudioFormat, Converter>());
    let converter = converters.get(from);
    if (converter === undefined) {
      converter = createConverter(from, this.#outbound.format);
      converters.set(from, converter);
    }
    // Written even when empty (a resampler holding its input back): the policy says whether to slow down.
    return this.#outbound.write(audioBytes(converter.push(bytes)), this.#outbound.format);
  }

  receiveAs(format: FormatSpec | null): this {
    const next = format === null ? undefined : parseFormat(format);
    this.#inConverter?.dispose();
    this.#inConverter = this.#inConverterFrom = undefined;
    this.#receive = next;
    return this;
  }

  sendAs(format: FormatSpec | null): this {
    this.#send = format === null ? undefined : parseFormat(format);
    return this;
  }

  play(source: AudioSource, options: PlayOptions = {}): Promise<PlayResult> {
    if (this.#state !== 'open') return hungUpPlay();
    let convert: ByteConverter | undefined;
    try {
      const from = options.format === undefined ? this.#send : parseFormat(options.format);
      if (from !== undefined && !sameFormat(from, this.#outbound.format)) convert = createConverter(from, this.#outbound.format);
    } catch (err) {
      return Promise.reject(err);
    }
    const result = this.#withBargeIn(options.bargeIn, () =>
      this.#outbound.play(source, convert, options.signal).catch(rejectAsSourceError),
    );
    this.#tap?.play(ArrayBuffer.isView(source) ? { bytes: source.byteLength } : { stream: true }, result);
    return result;
  }

  playFile(path: string, options: PlayFileOptions = {}): Promise<PlayResult> {
    if (this.#state !== 'open') return hungUpPlay();
    const result = this.#withBargeIn(options.bargeIn, () =>
      this.#outbound.play(wavPlaySource(path, this.#outbound.format), undefined, options.signal).catch(rejectAsSourceError),
    );
    this.#tap?.play({ file: path }, result);
    return result;
  }

  /**
   * Runs a play that the caller may interrupt (`on`): on speech (its start, by the detector,
   * which this turns on if it is off) or a key, everything queued is flushed at once, as
   * {@link flush} does, and the play settles `interrupted` with reason `barge-in`.
   */
  #withBargeIn(on: PlayOptions['bargeIn'], run: () => Promise<PlayResult>): Promise<PlayResult> {
    if (on === undefined) return run();
    if (on !== 'speech' && on !== 'dtmf' && on !== 'any') {
      return Promise.reject(
        audioSocketError(ErrorCodes.INVALID_ARGUMENT, `bargeIn must be 'speech', 'dtmf' or 'any', got ${JSON.stringify(on)}`),
      );
    }
    if (on !== 'dtmf' && this.#speech === undefined) this.detectSpeech(this.#speechOptions ?? {});
    // The caller may interrupt this play, not what is queued before it: listen from its start.
    const started = this.#outbound.mark('barge-in', true);
    let by: BargeIn | undefined;
    const interrupt = (b: BargeIn): void => {
      if (by !== undefined) return;
      by = b;
      this.flush();
    };
    const onSpeech = (e: SpeechEvent): void => interrupt({ by: 'speech', atMs: e.atMs, detectedAtMs: e.detectedAtMs });
    const onDtmf = (digit: string): void => {
      const atMs = this._clock.now() - this._startedAt;
      interrupt({ by: 'dtmf', digit, atMs, detectedAtMs: atMs });
    };
    let settled = false;
    void started.then(() => {
      if (settled) return;
      if (on !== 'dtmf') this.on('speechStart', onSpeech);
      if (on !== 'speech') this.on('dtmf', onDtmf);
    });
    const done = (): void => {
      settled = true;
      this.off('speechStart', onSpeech);
      this.off('dtmf', onDtmf);
    };
    return run().then(
      (result) => {
        done();
        return by !== undefined && result.status === 'interrupted' ? { ...result, reason: 'barge-in', bargeIn: by } : result;
      },
      (err: unknown) => {
        done();
        throw err;
      },
    );
  }

  /** @internal Sets (or clears) the call's tap. */
  [kCallTap](tap: CallTap | undefined): void {
    this.#tap = tap;
    if (this.#outbound !== undefined) this.#outbound.meter = tap?.sendMeter ?? null;
  }

  /** @internal Asks for the peak of the next frame each way (see {@link CallTap}). */
  [kCallSample](): void {
    this.#sampleIn = true;
    if (this.#outbound !== undefined) this.#outbound.samplePeak = true;
  }

  /** @internal Sets (or clears) the listener to every frame each way. */
  [kCallFrames](frames: CallFrames | undefined): void {
    this.#frames = frames;
    this.#updateReportSent();
  }

  /** Frames sent are reported per frame only while someone reads them: a `sent` listener, the speech detector's echo model, listen-in. */
  #updateReportSent(): void {
    if (this.#outbound !== undefined)
      this.#outbound.reportSent = this.#speech !== undefined || this.#frames !== undefined || this.#sentListened;
  }

  /** True while the caller is speaking (speech detection on). */
  get speaking(): boolean {
    return this.#speech?.speaking ?? false;
  }

  detectSpeech(options: SpeechOptions | false = {}): this {
    this.#speech?.dispose();
    this.#speech = undefined;
    this.#updateReportSent();
    if (options === false || this.#state !== 'open') return this;
    this.#speechOptions = options;
    this.#speech = new CallSpeech(options, (e) => this._emitSafe(e.type === 'start' ? 'speechStart' : 'speechEnd', e));
    this.#updateReportSent();
    return this;
  }

  createWriteStream(options: WriteStreamOptions = {}): Writable & { interrupted?: PlayResult } {
    return createPlayStream(this, options);
  }

  mark(name: string): Promise<boolean> {
    if (this.#state !== 'open') return Promise.resolve(false);
    return this.#outbound.mark(name);
  }

  flush(): number {
    if (this.#state !== 'open') return 0;
    this.#partialSample = undefined;
    return this.#outbound.flush();
  }

  drained(): Promise<void> {
    return this.#outbound.drained();
  }

  async end(): Promise<CallEnd> {
    if (this.#state === 'open') await this.#outbound.drained();
    return this.hangup();
  }

  hangup(): Promise<CallEnd> {
    this._beginEnd('local-hangup', undefined, true);
    return this.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.hangup();
  }

  [Symbol.asyncIterator](): AsyncIterator<F> {
    return this.frames()[Symbol.asyncIterator]();
  }

  frames(options: { signal?: AbortSignal } = {}): AsyncIterable<F> {
    let warned = false;
    const limit = this.#settings.iteratorQueueFrames;
    return receivedFrames<F>(this, {
      limit,
      ended: this.#state !== 'open',
      signal: options.signal,
      onDrop: () => {
        this._in.droppedIn++;
        if (warned) return;
        warned = true;
        this._warn('ITERATOR_OVERFLOW', `audio iterator fell ${limit} frames behind; dropping the oldest frames`);
      },
    });
  }

  /**
   * @internal Ends the call for the server: `server-close`, or `handler-error` when the handler
   * failed with `cause` (reported and ended the way a throwing listener is).
   */
  _terminate(reason: 'server-close' | 'handler-error', cause?: unknown): Promise<CallEnd> {
    if (reason === 'handler-error') this._listenerFailed(cause);
    else this._beginEnd(reason, undefined, true);
    return this.closed;
  }

  /**
   * Received audio in `wire` format. Odd-length slin loses its last byte (whole samples, as
   * Asterisk itself keeps them), empty audio is counted and skipped; the frame is built only
   * when someone listens, converted when a receive format is set.
   */
  protected _audioIn(wire: AudioFormat, payload: Buffer): void {
    if (this.#state !== 'open') return;
    this._messagesIn++;
    if (wire.encoding === 'slin' && (payload.length & 1) === 1) {
      if (this._in.oddAudioIn++ === 0) {
        this._warn(
          'UNEXPECTED_MESSAGE',
          `odd-length slin audio (${payload.length} bytes): the last byte is dropped (counted in stats.oddAudioIn)`,
        );
      }
      payload = payload.subarray(0, payload.length - 1);
    }
    if (payload.length === 0) {
      this._in.emptyAudioIn++;
      return;
    }
    this.#audioIn++;
    this._inboundFormat = wire;
    this.#speech?.inbound(wire, payload, this._clock.now() - this._startedAt);
    if (this.#sampleIn) {
      this.#sampleIn = false;
      if (this.#tap !== undefined) this.#tap.inPeak = peakOf(payload, wire);
    }
    this.#frames?.audio(wire, payload);
    this._onAudio(wire, payload);
    let listener = this.#audioListener;
    if (listener === undefined) listener = this.#audioListener = this.#findAudioListener();
    if (listener === null) return;
    const target = this.#receive;
    if (target === undefined || target === wire) {
      this.#emitAudio(listener, this._frame(wire, payload, wire));
      return;
    }
    if (this.#inConverterFrom !== wire) {
      // A new wire format mid-call (rare) restarts the conversion from it.
      this.#inConverter?.dispose();
      this.#inConverter = createConverter(wire, target);
      this.#inConverterFrom = wire;
    }
    const converted = this.#inConverter!.push(payload);
    if (converted.length === 0) return;
    this.#emitAudio(listener, this._frame(target, audioBytes(converted), wire));
  }

  /** `_emitSafe('audio', frame)` through {@link #audioListener}: once per frame received. */
  #emitAudio(listener: AudioListener, frame: F): void {
    try {
      listener.call(this, frame);
    } catch (err) {
      this._listenerFailed(err);
    }
  }

  #findAudioListener(): AudioListener | null {
    const listeners = this.rawListeners('audio') as AudioListener[];
    if (listeners.length === 0) return null;
    return listeners.length === 1 ? listeners[0]! : emitAudioToAll;
  }

  /** A hook for the transport, per received audio message (before any listener runs). */
  protected _onAudio(_wire: AudioFormat, _payload: Buffer): void {}

  /** The transport's frame for `payload` in `format`, received as `wire`. */
  protected abstract _frame(format: AudioFormat, payload: Buffer, wire: AudioFormat): F;

  protected _dtmfIn(digit: string): void {
    if (this.#state !== 'open') return;
    this._messagesIn++;
    this._in.dtmfIn++;
    this._emitSafe('dtmf', digit);
  }

  protected _warn(code: CallWarningCode, message: string, extra: Partial<CallWarning> = {}): void {
    const warning: CallWarning = { ...extra, code, message };
    const heard = this.listenerCount('warning') > 0;
    this._emitSafe('warning', warning);
    this.#hooks.warning(this, warning, heard);
  }

  protected _emitSafe<K extends keyof CallEvents<F>>(event: K, ...args: CallEvents<F>[K]): void {
    try {
      (this.emit as (e: K, ...a: CallEvents<F>[K]) => boolean)(event, ...args);
    } catch (err) {
      this._listenerFailed(err);
    }
  }

  /** A user's listener or handler failed: report it and end this call (and only this call). */
  protected _listenerFailed(err: unknown): void {
    this.#hooks.listenerError(err, this);
    this._beginEnd('handler-error', handlerError(err), true);
  }

  /**
   * Starts ending, once: the outbound policy stops (what was queued counts as unsent), the
   * transport hangs up (`sayHangup`: tell the peer; else just close), `error` fires if someone
   * listens, `signal` aborts. The transport calls {@link _closed} when its connection is gone.
   */
  protected _beginEnd(reason: EndReason, error: AudioSocketError | undefined, sayHangup: boolean): void {
    if (this.#state !== 'open') return;
    this.#state = 'ending';
    this.#endReason = reason;
    this.#endError = error;
    this.#outbound.close();
    this._closeTransport(reason, sayHangup);
    if (error !== undefined && this.listenerCount('error') > 0) this._emitSafe('error', error);
    this.#abortDue = true;
    this.#abort?.abort(this.#abortReason());
  }

  /** Hangs up (`sayHangup`) or closes the transport's connection; it reports back with {@link _closed}. */
  protected abstract _closeTransport(reason: EndReason, sayHangup: boolean): void;

  /** The connection is gone: the call is over. Idempotent. */
  protected _closed(): void {
    if (this.#state === 'open') this._beginEnd('remote-hangup', undefined, false);
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#inConverter?.dispose();
    if (this.#writeConverters !== undefined) for (const c of this.#writeConverters.values()) c.dispose();
    this.#inConverter = undefined;
    this.#writeConverters = undefined;
    this.#speech?.dispose();
    this.#speech = undefined;
    const end: CallEnd = { reason: this.#endReason!, durationMs: this._clock.now() - this._startedAt, stats: this.stats };
    if (this.#endError !== undefined) end.error = this.#endError;
    this.#end = end;
    this.#resolveClosed?.(end);
    this._emitSafe('end', end);
    this.#hooks.closed(this, end);
  }
}
