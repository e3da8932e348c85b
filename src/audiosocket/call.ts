/**
 * One AudioSocket call: the call core over an {@link AudioSocketConnection}, with the paced
 * outbound policy (Asterisk's AudioSocket plays what arrives when it arrives: we pace).
 *
 * What is AudioSocket's own: message kinds (a kind per sample rate, 0x10-0x18), what kind 0x10
 * really carries (`inbound`: slin, or G.711 from a channel driver dialled with c(ulaw)), the
 * detection of G.711 mislabelled as slin, keep-alive silence, and the hangup message.
 */
import type { SpeechOptions } from '../speech/detector.js';
import type { Socket } from 'node:net';
import type { FormatSpec } from '../audio/format.js';
import { parseFormat, type AudioFormat } from '../audio/format.js';
import { CallCore, audioBytes, type CallHooks } from '../call/core.js';
import type { AudioFrame, CallStats, EndReason } from '../call/types.js';
import { audioSocketError, ErrorCodes, type AudioSocketError } from '../errors.js';
import { formatOfKind, kindOfFormat, PacedOutbound, type OutboundOptions, type PacedStats } from '../outbound/paced.js';
import type { PacingParameters } from '../outbound/pacer.js';
import type { FrameScheduler } from '../outbound/scheduler.js';
import { DTMF_DIGITS } from '../protocol/encoder.js';
import { isAudioKind, Kind, type AudioKind } from '../protocol/kinds.js';
import { AudioSocketConnection, type AudioSocketConnectionEvents, type AudioSocketConnectionSettings } from './connection.js';
import { InboundFormatMeter, type InboundFormatGuess } from './detect.js';
import type { ParserHandover } from './handshake.js';

/** Audio received on an AudioSocket call. */
export interface AudioSocketFrame extends AudioFrame {
  /** Message kind on the wire, 0x10-0x18. */
  kind: AudioKind;
}

/** Counters of an AudioSocket call: those of every call, and the pacer's. */
export interface AudioSocketCallStats extends CallStats {
  /** Keep-alive silence frames sent (counted in `framesSent` too). */
  silenceFrames: number;
  /** Frames that left more than half a frame after their place on the timeline. */
  lateSlots: number;
  /** Frames sent while more than a frame late: making up lateness, faster than real time. */
  caughtUpFrames: number;
  /** Frames' worth of lateness beyond `maxLatenessMs`, forgiven instead of made up (audio later, not lost). */
  droppedSlots: number;
  /** Slots that came due while a streamed play had less than a frame ready. */
  underruns: number;
}

/** @internal Options of one AudioSocket call, resolved by the server. */
export interface AudioSocketCallSettings {
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
  speech: SpeechOptions | undefined;
}

const G711 = { ulaw: parseFormat('ulaw'), alaw: parseFormat('alaw') } as const;

/** What every call of a server passes to its connection and its outbound side, built once per server. */
interface SharedOptions {
  connection: AudioSocketConnectionSettings;
  outbound: OutboundOptions;
}

const sharedOptions = new WeakMap<AudioSocketCallSettings, SharedOptions>();

/** The options derived from a server's settings, built on its first call and shared by the rest. */
function optionsOf(settings: AudioSocketCallSettings): SharedOptions {
  let shared = sharedOptions.get(settings);
  if (shared === undefined) {
    const outboundFrameBytes = (formatOfKind(settings.outboundKind).sampleRate * settings.frameMs * 2) / 1000;
    shared = {
      connection: {
        maxBufferedBytes: Math.max(outboundFrameBytes * 2, Math.round((settings.maxBufferedMs / settings.frameMs) * outboundFrameBytes)),
        peerNotReadingTimeout: settings.peerNotReadingTimeout,
        hangupTimeout: settings.hangupTimeout,
      },
      outbound: {
        kind: settings.outboundKind,
        keepAliveKind: settings.keepAliveKind,
        keepAlive: settings.keepAlive,
        prefetchMs: settings.prefetchMs,
        pacing: { frameMs: settings.frameMs, ...settings.pacing },
        highWaterMarkMs: settings.writeHighWaterMarkMs,
        maxQueuedMs: settings.maxQueuedMs,
      },
    };
    sharedOptions.set(settings, shared);
  }
  return shared;
}

/**
 * One AudioSocket call. Created by the server when a connection's UUID arrives; never
 * constructed by users. Listen to `audio`/`dtmf`/`end`, or iterate: `for await (const frame of call)`.
 */
export class AudioSocketCall extends CallCore<AudioSocketFrame, AudioSocketCallStats> {
  // Read per frame received, first (see CallCore).
  readonly #outbound: PacedOutbound;
  readonly #inbound: 'slin' | 'ulaw' | 'alaw';
  /** Measures 0x10 audio until it has a guess; `undefined` before the first message, `null` once done or not needed. */
  #meter: InboundFormatMeter | null | undefined;
  /** Which channel driver carries this call. */
  readonly transport = 'audiosocket' as const;
  readonly #conn: AudioSocketConnection;
  #guess: InboundFormatGuess | undefined;

  /** @internal Constructed by the server once the connection's handshake has read the UUID. */
  constructor(
    socket: Socket,
    uuid: string,
    handover: ParserHandover,
    settings: AudioSocketCallSettings,
    scheduler: FrameScheduler,
    hooks: CallHooks,
  ) {
    const clock = scheduler.clock;
    super({ uuid, remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0, clock, settings, hooks });
    this.#inbound = settings.inbound;
    // Declared G.711 needs no guessing; slin under 0x10 is checked for the channel-driver trap
    // (the meter is made with the first such message).
    this.#meter = settings.inbound === 'slin' ? undefined : null;
    const shared = optionsOf(settings);
    this.#conn = new AudioSocketConnection(
      socket,
      handover,
      clock,
      shared.connection,
      new AudioSocketCall.#ConnectionEvents(this),
      AudioSocketCall.#onMessage,
      this,
    );
    this.#outbound = this._attachOutbound((events) => new PacedOutbound(shared.outbound, scheduler, events, this.#conn));
    this.#outbound.start();
  }

  /**
   * What the connection tells this call: an object with shared methods and one field, not eight
   * closures (a server holds thousands of calls). Declared in the class body to reach its privates.
   */
  static readonly #ConnectionEvents = class implements AudioSocketConnectionEvents {
    readonly #call: AudioSocketCall;
    constructor(call: AudioSocketCall) {
      this.#call = call;
    }
    protocolError(error: AudioSocketError): void {
      this.#call._beginEnd('protocol-error', error, true);
    }
    listenerError(error: unknown): void {
      this.#call._listenerFailed(error);
    }
    blocked(bytes: number): void {
      this.#call._warn('PEER_NOT_READING', `peer is not reading: ${bytes} bytes waiting; dropping outbound audio`);
    }
    notReading(error: AudioSocketError): void {
      this.#call._beginEnd('peer-not-reading', error, false);
    }
    remoteEnd(): void {
      this.#call._beginEnd('remote-hangup', undefined, false);
    }
    socketError(error: AudioSocketError): void {
      this.#call._beginEnd('socket-error', error, false);
    }
    close(): void {
      this.#call._closed();
    }
  };

  /** Kind of the last audio message received (0x10-0x18), `undefined` before the first. */
  get inboundKind(): AudioKind | undefined {
    const f = this._inboundFormat;
    return f === undefined ? undefined : (kindOfFormat(f) ?? Kind.SLIN);
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

  get stats(): AudioSocketCallStats {
    const c = this.#conn;
    const p: PacedStats = this.#outbound.stats;
    // Built field by field, no spreads: stats are read per tick by monitors and status lines.
    const s = this._commonStats(
      { messagesOut: c.messagesOut, bytesIn: c.bytesIn, bytesOut: c.bytesOut, droppedOut: c.droppedOut },
      p,
    ) as AudioSocketCallStats;
    s.silenceFrames = p.silenceFrames;
    s.lateSlots = p.lateSlots;
    s.caughtUpFrames = p.caughtUpFrames;
    s.droppedSlots = p.droppedSlots;
    s.underruns = p.underruns;
    return s;
  }

  /**
   * Queues audio to send (see {@link CallBase.write}). `format` may also be an AudioSocket kind
   * (0x10-0x18: slin at its rate), so an echo can write `frame.payload` back in `frame.kind`.
   * Anything Asterisk would reject throws `ERR_AUDIOSOCKET_INVALID_MESSAGE`.
   */
  override write(payload: Uint8Array | Int16Array, format?: FormatSpec | AudioKind): boolean {
    if (typeof format === 'number') {
      if (this._ending) return super.write(payload); // refused: the call has ended
      if (!isAudioKind(format)) throw audioSocketError(ErrorCodes.INVALID_MESSAGE, `not an audio kind: ${format}`);
      return super.write(audioBytes(payload), formatOfKind(format));
    }
    return super.write(payload, format);
  }

  protected override _frame(format: AudioFormat, payload: Buffer, wire: AudioFormat): AudioSocketFrame {
    return { kind: kindOfFormat(wire) ?? Kind.SLIN, sampleRate: format.sampleRate, format, payload };
  }

  protected override _onAudio(wire: AudioFormat, payload: Buffer): void {
    const now = this._clock.now();
    const kind = kindOfFormat(wire) ?? Kind.SLIN;
    this.#outbound.noteInbound(kind, (payload.length / (wire.encoding === 'slin' ? 2 : 1) / wire.sampleRate) * 1000, now);
    if (this.#meter !== null && kind === Kind.SLIN) this.#measure(payload, now);
  }

  protected override _closeTransport(_reason: EndReason, sayHangup: boolean): void {
    this.#conn.end(sayHangup);
  }

  /** What a message of `kind` really carries: slin at the kind's rate, or declared G.711 under 0x10. */
  #wireFormat(kind: AudioKind): AudioFormat {
    if (kind === Kind.SLIN && this.#inbound !== 'slin') return G711[this.#inbound];
    return formatOfKind(kind);
  }

  /** Each message received, called by the parser with the call as `this` (one function for every call). */
  static readonly #onMessage = function (this: AudioSocketCall, kind: number, payload: Buffer): void {
    this.#message(kind, payload);
  };

  #message(kind: number, payload: Buffer): void {
    if (this._ending) return;
    if (isAudioKind(kind)) {
      this._audioIn(this.#wireFormat(kind), payload);
      return;
    }
    if (kind === Kind.DTMF && payload.length === 1 && DTMF_DIGITS.includes(String.fromCharCode(payload[0]!))) {
      this._dtmfIn(String.fromCharCode(payload[0]!));
      return;
    }
    this._messagesIn++;
    if (kind === Kind.HANGUP) {
      // Asterisk never sends it, but a peer that does clearly means "hang up".
      this._beginEnd('remote-hangup', undefined, false);
      return;
    }
    this._in.otherIn++;
    if (this.listenerCount('message') > 0) this._emitSafe('message', kind, payload);
  }

  /** Watches the first second of 0x10 audio for G.711 mislabelled as slin (channel driver without c()). */
  #measure(payload: Buffer, now: number): void {
    const guess = (this.#meter ??= new InboundFormatMeter(8000)).push(payload, now);
    if (guess === null) return;
    this.#meter = null;
    this.#guess = guess;
    if (guess.verdict === 'g711') {
      this._warn(
        'INBOUND_FORMAT',
        `kind 0x10 audio arrives at ${guess.bytesPerSecond} bytes/s (${guess.typicalFrameBytes}-byte frames): that is ` +
          `G.711 (${guess.law === 'alaw' ? 'a-law' : 'u-law'} by its byte values), not slin. The channel driver sends the ` +
          "caller's codec unless told: dial AudioSocket/host:port/uuid/c(slin), or declare it with the server option " +
          `inbound: '${guess.law ?? 'ulaw'}' (CLI: --inbound ${guess.law ?? 'ulaw'}).`,
      );
    }
  }
}
