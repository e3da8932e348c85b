/**
 * The server: one handler for both of Asterisk's drivers. An AudioSocket listener (a thin `net`
 * wrapper that admits connections by allow-list and maxCalls and turns each into a call once its
 * UUID arrives) and, with `websocket`, a chan_websocket listener (calls once MEDIA_START arrives).
 * Options are resolved and checked here, once; both kinds of call share the clock, the handler
 * and the graceful shutdown.
 */
import { EventEmitter } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import { AudioSocketCall, type AudioSocketCallSettings as CallSettings } from './audiosocket/call.js';
import type { CallHooks } from './call/core.js';
import type { CallEnd, CallWarning } from './call/types.js';
import type { BufferedOutboundOptions } from './outbound/buffered.js';
import { WebSocketMediaServer, type MediaHandshakeFailure, type MediaServerOptions } from './websocket/server.js';
import { WebSocketCall } from './websocket/call.js';
import type { MediaConnection } from './websocket/connection.js';
import { systemClock, type Clock } from './clock.js';
import { abortedError, AudioSocketError, audioSocketError, ErrorCodes } from './errors.js';
import { HANGUP_MESSAGE } from './protocol/encoder.js';
import { audioKindForRate, isAudioKind, Kind, MAX_PAYLOAD, type AudioKind } from './protocol/kinds.js';
import { FrameScheduler } from './outbound/scheduler.js';
import { Handshake } from './audiosocket/handshake.js';
import { AsyncQueue } from './async-queue.js';
import { DEFAULT_PACING } from './outbound/pacer.js';
import { Admission, type RefusalReason } from './admission.js';
import { parseFormat, type FormatSpec } from './audio/format.js';
import { loadResampler } from './audio/resample.js';
import { loadVad } from './speech/vad.js';
import { resolveSpeechOptions, type SpeechOptions } from './speech/detector.js';

/**
 * One call, from either channel driver. `call.transport` narrows it: `'audiosocket'` is an
 * {@link AudioSocketCall}, `'websocket'` a {@link WebSocketCall}. A handler written against
 * what both have (the {@link CallBase} members) serves both.
 */
export type Call = AudioSocketCall | WebSocketCall;

/** Called once per call, when its UUID has arrived. May be async; a throw or rejection ends that call only. */
export type CallHandler = (call: Call) => unknown;

/** Server options. Every field is optional. */
/**
 * Serve chan_websocket calls too (Asterisk's WebSocket channel driver, or ARI externalMedia with
 * `transport=websocket`): on its own `port` (and `host`), or on the upgrades of an existing HTTP(S)
 * `server`. `path`: accept only this request path (default: any path and query). `credentials`:
 * require HTTP Basic credentials (`username`/`password` in `websocket_client.conf`); `tls`: serve
 * `wss://` with this certificate and key. The server's `allow` and `maxCalls` apply to both
 * listeners.
 */
export type WebSocketServeOptions = (
  { port: number; host?: string; server?: undefined } | { server: import('node:http').Server; port?: undefined; host?: undefined }
) & { path?: string } & Pick<
    MediaServerOptions,
    'maxPayload' | 'credentials' | 'authenticate' | 'tls' | 'highWaterMark' | 'maxBufferedBytes'
  > &
  BufferedOutboundOptions;

export interface ServerOptions {
  /** Also serve chan_websocket calls, with the same handler and the same {@link Call} API. */
  websocket?: WebSocketServeOptions;
  /** Default host for {@link AudioSocketServer.listen}. Default `127.0.0.1`: AudioSocket has no authentication. */
  host?: string;
  /** Default port for {@link AudioSocketServer.listen}. Default 9092. */
  port?: number;
  /**
   * Most calls at once, over both listeners; beyond it an AudioSocket connection gets a hangup
   * message and a chan_websocket upgrade HTTP 503. A connection that has not sent its UUID (or
   * upgraded) yet holds no slot. Default unlimited.
   */
  maxCalls?: number;
  /**
   * Addresses and CIDR ranges allowed to connect (IPv4 and IPv6), on both listeners, checked
   * before any byte is read (chan_websocket: HTTP 403). Default: everyone.
   */
  allow?: string | readonly string[];
  /** Milliseconds to wait for the UUID before closing the connection. Default 5000; 0 disables. */
  handshakeTimeout?: number;
  /** Largest payload accepted from the peer, bytes. Default 65535 (the protocol maximum). */
  maxPayload?: number;
  /** Duration of outbound frames in ms: 10, 20, 30, 40, 50 or 60. Default 20; 10 for 44.1 kHz and above (one TCP segment per message). */
  frameMs?: number;
  /**
   * Kind (or sample rate) of outbound paced audio and keep-alive silence. Default 0x10 (slin 8 kHz),
   * which every Asterisk accepts; 0x11-0x18 need Asterisk 20.17/21.12/22.7/23.1 or later.
   */
  outboundKind?: AudioKind | number;
  /**
   * What kind 0x10 really carries. `slin` (default) as the protocol says; `ulaw` or `alaw` for
   * a channel driver dialled with `c(ulaw)`/`c(alaw)` (or without `c()` from a G.711 caller).
   */
  inbound?: 'slin' | 'ulaw' | 'alaw';
  /**
   * Deliver received audio (events, iterators) in this format, e.g. `'slin16'` for speech-to-text
   * or `{ encoding: 'slin', sampleRate: 24000 }`. Converted per call. Default: as received.
   */
  receive?: FormatSpec;
  /**
   * Format of the audio you hand to `play()` and to `write()` without a kind, e.g. `'slin24'` from
   * a TTS engine; converted per call to `outboundKind`. Default: the outbound wire format.
   */
  send?: FormatSpec;
  /**
   * Send silence in every empty slot while the call has nothing to send, from the UUID until
   * hangup: the AudioSocket() application hangs up after 2 s without media either way, and a
   * silent server can starve a channel-driver call (see `docs/protocol.md`). Default true.
   */
  keepAlive?: boolean;
  /** The pacing model's parameters (see `docs/pacing.md`). Every field is optional. */
  pacing?: PacingOptions;
  /**
   * Queued audio (ms) from which `call.write()` returns `false` (backpressure, as in Node
   * streams: the audio is kept; write on at the call's `drain` event). Default 1000.
   */
  writeHighWaterMarkMs?: number;
  /**
   * Most audio (ms) a call may hold queued; written audio beyond it is dropped, counted in
   * `stats.droppedMs` and reported with a `QUEUE_FULL` warning. Default 30000, which costs at
   * most 480 kB per call at 8 kHz (16 bytes per ms of slin at 8 kHz, 96 at 48 kHz).
   */
  maxQueuedMs?: number;
  /** How far ahead (ms) streamed play sources are read. Default 200. */
  prefetchMs?: number;
  /** After sending hangup, ms to wait for the peer to close before destroying the socket. Default 2000. */
  hangupTimeout?: number;
  /** Most ms of audio allowed in the socket's send buffer; beyond it outbound audio is dropped and counted. Default 1000. */
  maxBufferedMs?: number;
  /**
   * End the call (`peer-not-reading`) when the peer has not read our output for this long, ms:
   * on AudioSocket the send buffer stayed over `maxBufferedMs`, on chan_websocket no queued send
   * completed. Default 10000; 0 (or Infinity) disables.
   */
  peerNotReadingTimeout?: number;
  /** Frames an async iterator may fall behind before the oldest are dropped. Default 500 (10 s at 20 ms). */
  iteratorQueueFrames?: number;
  /**
   * Detect speech on every call from its start (`speechStart`/`speechEnd` events, `call.speaking`):
   * `true` for the defaults, or the detector's parameters (docs/speech.md). Default off; a play
   * with `bargeIn: 'speech'` turns it on for its call.
   */
  speech?: boolean | SpeechOptions;
  /**
   * Load the resampler and the speech detector (two WebAssembly modules) in `listen()`, so that
   * conversion between sample rates and speech detection can start synchronously inside calls.
   * Default `true`. A process that holds them costs more CPU per message even when it never uses
   * them: 4-6 % for an echo on the machine of `bench/README.md`. `false` loads only what the
   * other options need (`receive`, `send`, or declared G.711 `inbound` with a wider
   * `outboundKind`: the resampler; `speech`: both). Then `await loadResampler()` before other
   * conversions between sample rates, and `await loadVad()` before detecting speech
   * (`detectSpeech()`, `bargeIn: 'speech'`), or those calls throw
   * `ERR_AUDIOSOCKET_INVALID_ARGUMENT` saying so. The monitor's listen-in loads the resampler
   * for the rest of the process when someone first listens.
   */
  preloadWasm?: boolean;
  /**
   * Clock for pacing and every timer of the server and its calls (handshake, hangup,
   * peer-not-reading); inject a {@link ManualClock} in tests. Default: the system clock.
   */
  clock?: Clock;
}

/**
 * Parameters of the pacing model of AudioSocket calls (see `docs/pacing.md`); each has one
 * meaning. Together they bound what the caller receives: never more than `leadMs` ahead of the
 * wall clock, and in any window at most `catchUpRate` times the window plus the lead.
 */
export interface PacingOptions {
  /**
   * Most audio (ms) sent ahead of the wall clock, the frame due now included; whole frames
   * (rounded down, at least one). Default three frames: 60 ms at 20 ms frames, 30 ms at 10 ms.
   * (chan_websocket's lead, `websocket.leadMs`, is the same measure for Asterisk's buffer.)
   */
  leadMs?: number;
  /** Fastest output, as a multiple of real time, while making up lateness. Default 1.25. */
  catchUpRate?: number;
  /**
   * Most lateness (ms) made up after an event-loop stall or late input; beyond it the timeline
   * moves on (later audio is later, nothing is dropped). Default 1000.
   */
  maxLatenessMs?: number;
  /**
   * Frames the timeline may run dry (nothing to send) and still count as lateness the writer
   * owes, e.g. an echo's input jitter. After that the call is idle: quiet time is forgotten,
   * and keep-alive silence fills the slots. Default 2.
   */
  graceFrames?: number;
  /**
   * Most time (ms) that late input excuses the writer's silence: an echo whose input pauses
   * and then comes in a burst gets no keep-alive put into the pause, so the burst goes back
   * without lasting delay. Beyond it the call counts as quiet. Default 200.
   */
  inputWaitMs?: number;
}

/** Options of {@link AudioSocketServer.listen}. */
export interface ListenOptions {
  host?: string;
  port?: number;
  backlog?: number;
  /** Aborting closes the server. */
  signal?: AbortSignal;
}

/** An AudioSocket connection that closed without becoming a call. */
export interface AudioSocketHandshakeFailure {
  transport: 'audiosocket';
  /**
   * - `closed-before-uuid`: normal for Asterisk when the app's channel is not answered or a Dial is abandoned.
   * - `timeout`: no UUID within `handshakeTimeout`.
   * - `protocol-error`: the first message was not a 16-byte UUID.
   */
  reason: 'closed-before-uuid' | 'timeout' | 'protocol-error';
  remoteAddress: string;
  remotePort: number;
  error?: AudioSocketError;
}

/**
 * A connection that did not become a call, on either listener; `transport` narrows it. A
 * chan_websocket failure has the request's `url` and the reasons of {@link MediaHandshakeFailure}.
 */
export type HandshakeFailure = AudioSocketHandshakeFailure | ({ transport: 'websocket' } & MediaHandshakeFailure);

/**
 * A connection turned away by admission (`src/admission.ts`), the same rules on both listeners:
 * - `not-allowed`: outside `allow` (AudioSocket: closed before any byte is read; chan_websocket: HTTP 403);
 * - `unauthorized`: chan_websocket only, wrong or missing `websocket.credentials` (HTTP 401);
 * - `max-calls`: `maxCalls` calls are up (AudioSocket: a hangup message; chan_websocket: HTTP 503);
 * - `server-closing`: `close()` has begun (a hangup message; HTTP 503).
 */
export interface ConnectionRejection {
  transport: 'audiosocket' | 'websocket';
  reason: RefusalReason;
  remoteAddress: string;
  remotePort: number;
  /** chan_websocket: the request path and query. */
  url?: string;
}

/** Events of an {@link AudioSocketServer}. */
export interface ServerEvents {
  listening: [address: AddressInfo];
  /** A new call (its UUID has arrived). */
  call: [call: Call];
  /** A call ended and its socket closed. */
  callEnd: [call: Call, end: CallEnd];
  /** A connection that did not become a call: no UUID (AudioSocket), no MEDIA_START or a refused upgrade (chan_websocket). */
  handshakeFailed: [failure: HandshakeFailure];
  connectionRejected: [rejection: ConnectionRejection];
  /**
   * A warning of any call (the same as the call's `warning` event). With a listener here, or on
   * the call, nothing else happens; with none, each code is a process warning once per call.
   */
  callWarning: [call: Call, warning: CallWarning];
  /**
   * A call handler or call listener threw or rejected; that call was ended with `handler-error`.
   * Without a listener the error is reported with `process.emitWarning`.
   */
  handlerError: [error: unknown, call: Call];
  /** A server-level error (e.g. the port is in use). */
  error: [error: Error];
  /** The server is closed and every connection is gone. */
  close: [];
}

/** Server counters. */
export interface ServerStats {
  activeCalls: number;
  pendingHandshakes: number;
  totalCalls: number;
  handshakeFailures: number;
  rejected: number;
}

function nonNegative(name: string, value: number | undefined, fallback: number, integer = true): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (integer && value !== Infinity && !Number.isInteger(value))) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `${name} must be a non-negative ${integer ? 'integer' : 'number'}, got ${value}`);
  }
  return value;
}

/**
 * A timer duration. `Infinity` means never (setTimeout would turn it, and anything above
 * 2^31-1 ms, into 1 ms); other values above that are refused.
 */
function timeout(name: string, value: number | undefined, fallback: number): number {
  const ms = nonNegative(name, value, fallback);
  if (ms > MAX_TIMER_MS && ms !== Infinity) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `${name} must be at most ${MAX_TIMER_MS} ms or Infinity, got ${value}`);
  }
  return ms;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
const FRAME_DURATIONS = [10, 20, 30, 40, 50, 60];

function resolveOutboundKind(value: number | undefined): AudioKind {
  if (value === undefined) return 0x10;
  if (isAudioKind(value)) return value;
  const kind = audioKindForRate(value);
  if (kind === undefined) {
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      `outboundKind must be an audio kind 0x10-0x18 or one of their rates (8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000), got ${value}`,
    );
  }
  return kind;
}

function resolvePacing(options: PacingOptions, frameMs: number): CallSettings['pacing'] {
  const leadMs = nonNegative('pacing.leadMs', options.leadMs, DEFAULT_PACING.leadFrames * frameMs, false);
  const leadFrames = Math.floor(leadMs / frameMs + 1e-9);
  if (leadFrames < 1) {
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      `pacing.leadMs must be at least one frame (${frameMs} ms, the frame due now), got ${leadMs}`,
    );
  }
  const catchUpRate = options.catchUpRate ?? DEFAULT_PACING.catchUpRate;
  if (typeof catchUpRate !== 'number' || !(catchUpRate >= 1) || !Number.isFinite(catchUpRate)) {
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      `pacing.catchUpRate must be a finite number of at least 1 (real time), got ${catchUpRate}`,
    );
  }
  return {
    leadFrames,
    catchUpRate,
    maxLatenessMs: nonNegative('pacing.maxLatenessMs', options.maxLatenessMs, DEFAULT_PACING.maxLatenessMs, false),
    graceFrames: nonNegative('pacing.graceFrames', options.graceFrames, DEFAULT_PACING.graceFrames),
    inputWaitMs: nonNegative('pacing.inputWaitMs', options.inputWaitMs, DEFAULT_PACING.inputWaitMs, false),
  };
}

/** @internal */
export function resolveCallSettings(options: ServerOptions): CallSettings {
  const maxPayload = nonNegative('maxPayload', options.maxPayload, MAX_PAYLOAD);
  if (maxPayload > MAX_PAYLOAD) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `maxPayload must be at most ${MAX_PAYLOAD}, got ${maxPayload}`);
  }
  const outboundKind = resolveOutboundKind(options.outboundKind);
  // 20 ms at 44.1 kHz and above is more than one TCP segment, and Asterisk drops a call when the
  // rest of a message is 5 ms late (docs/protocol.md#split-messages): default to 10 ms frames there.
  const frameMs = options.frameMs ?? (outboundKind >= 0x15 ? 10 : 20);
  if (!FRAME_DURATIONS.includes(frameMs)) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `frameMs must be one of ${FRAME_DURATIONS.join(', ')}, got ${frameMs}`);
  }
  const inbound = options.inbound ?? 'slin';
  if (inbound !== 'slin' && inbound !== 'ulaw' && inbound !== 'alaw') {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `inbound must be 'slin', 'ulaw' or 'alaw', got ${JSON.stringify(inbound)}`);
  }
  return {
    inbound,
    receive: options.receive === undefined ? undefined : parseFormat(options.receive),
    send: options.send === undefined ? undefined : parseFormat(options.send),
    frameMs,
    outboundKind,
    keepAliveKind: options.outboundKind === undefined ? undefined : outboundKind,
    keepAlive: options.keepAlive ?? true,
    pacing: resolvePacing(options.pacing ?? {}, frameMs),
    writeHighWaterMarkMs: nonNegative('writeHighWaterMarkMs', options.writeHighWaterMarkMs, 1000, false),
    maxQueuedMs: nonNegative('maxQueuedMs', options.maxQueuedMs, 30000, false),
    prefetchMs: nonNegative('prefetchMs', options.prefetchMs, 200, false),
    maxPayload,
    handshakeTimeout: timeout('handshakeTimeout', options.handshakeTimeout, 5000),
    hangupTimeout: timeout('hangupTimeout', options.hangupTimeout, 2000),
    maxBufferedMs: nonNegative('maxBufferedMs', options.maxBufferedMs, 1000, false),
    peerNotReadingTimeout: timeout('peerNotReadingTimeout', options.peerNotReadingTimeout, 10000),
    iteratorQueueFrames: Math.max(1, nonNegative('iteratorQueueFrames', options.iteratorQueueFrames, 500)),
    speech: resolveSpeech(options.speech),
  };
}

function resolveSpeech(speech: ServerOptions['speech']): SpeechOptions | undefined {
  if (speech === undefined || speech === false) return undefined;
  try {
    return resolveSpeechOptions(speech === true ? {} : speech);
  } catch (err) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, (err as Error).message);
  }
}

/**
 * An AudioSocket server. Create it with {@link createServer}.
 *
 * ```ts
 * const server = createServer(async (call) => {
 *   for await (const frame of call) call.write(frame.payload, frame.format); // echo
 * });
 * await server.listen({ port: 9092 });
 * ```
 */
export class AudioSocketServer extends EventEmitter<ServerEvents> {
  readonly #options: ServerOptions;
  readonly #settings: CallSettings;
  readonly #handler: CallHandler | undefined;
  readonly #net: net.Server;
  readonly #scheduler: FrameScheduler;
  readonly #admission: Admission;
  readonly #pending = new Set<Handshake>();
  readonly #calls = new Set<Call>();
  readonly #rejecting = new Set<Socket>();
  #aborting = 0;
  readonly #hooks: CallHooks;
  #closing: Promise<void> | null = null;
  #listening = false;
  #stats = { totalCalls: 0, handshakeFailures: 0, rejected: 0 };
  #iterators = new Set<AsyncQueue<Call>>();
  readonly #ws: WebSocketMediaServer | undefined;
  #wsAddress: AddressInfo | null = null;
  /** chan_websocket formats refused so far, each warned about once when nobody listens. */
  readonly #formatsRefused = new Set<string>();

  constructor(handler: CallHandler | undefined, options: ServerOptions = {}) {
    super();
    if (handler !== undefined && typeof handler !== 'function') {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'the call handler must be a function');
    }
    this.#handler = handler;
    if (options.preloadWasm !== undefined && typeof options.preloadWasm !== 'boolean') {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `preloadWasm must be true or false, got ${JSON.stringify(options.preloadWasm)}`);
    }
    this.#options = options;
    this.#settings = resolveCallSettings(options);
    this.#admission = new Admission({ allow: options.allow, maxCalls: nonNegative('maxCalls', options.maxCalls, Infinity) });
    this.#scheduler = new FrameScheduler(options.clock ?? systemClock);
    this.#scheduler.onError = (error) => this.#report(error, undefined);
    this.#hooks = {
      closed: (call, end) => {
        this.#calls.delete(call as Call);
        if ((call as Call).transport === 'audiosocket') this.#admission.release(); // the WebSocket listener releases its own
        this.#emitSafe('callEnd', call as Call, end);
        this.#maybeClosed();
      },
      listenerError: (error, call) => this.#report(error, call as Call),
      warning: (call, warning, heard) => this.#callWarning(call as Call, warning, heard),
    };
    this.#ws = options.websocket === undefined ? undefined : this.#createWebSocket(options.websocket);
    this.#net = net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => this.#onConnection(socket));
    this.#net.on('error', (err) => {
      // listen() reports its own failures; later ones (e.g. accept failing with EMFILE) are
      // emitted, or reported as a warning when nobody listens, never thrown.
      if (this.listenerCount('error') > 0) this.emit('error', err);
      else if (this.#listening) process.emitWarning(`audiosocket: server error: ${err.message}`, { code: ErrorCodes.SOCKET });
    });
  }

  /** Live calls (UUID received, not yet closed). */
  get calls(): ReadonlySet<Call> {
    return this.#calls;
  }

  /**
   * Replaces the certificate and key of the chan_websocket `tls` listener (e.g. on SIGHUP, after a
   * renewal); new connections use them, calls that are up keep theirs.
   */
  setSecureContext(options: import('node:tls').SecureContextOptions): void {
    if (this.#ws === undefined)
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'setSecureContext() needs the websocket option with tls');
    this.#ws.setSecureContext(options);
  }

  /** The chan_websocket listener's address, once listening on its own port. */
  websocketAddress(): AddressInfo | null {
    return this.#wsAddress;
  }

  #createWebSocket(o: WebSocketServeOptions): WebSocketMediaServer {
    const { port: _p, host: _h, leadMs, markEveryFrames, statusTimeoutMs, completion, markTimeoutMs, ...rest } = o;
    const pacing: BufferedOutboundOptions = {};
    if (leadMs !== undefined) pacing.leadMs = leadMs;
    if (markEveryFrames !== undefined) pacing.markEveryFrames = markEveryFrames;
    if (statusTimeoutMs !== undefined) pacing.statusTimeoutMs = statusTimeoutMs;
    if (completion !== undefined) pacing.completion = completion;
    if (markTimeoutMs !== undefined) pacing.markTimeoutMs = markTimeoutMs;
    const media: MediaServerOptions = {
      ...rest,
      peerNotReadingTimeout: this.#settings.peerNotReadingTimeout,
      clock: this.#scheduler.clock,
      admission: this.#admission,
    };
    if (this.#settings.hangupTimeout !== Infinity) media.hangupTimeout = this.#settings.hangupTimeout;
    if (this.#settings.handshakeTimeout !== Infinity) media.handshakeTimeout = this.#settings.handshakeTimeout;
    const ws = new WebSocketMediaServer((conn: MediaConnection) => {
      let call: WebSocketCall;
      try {
        call = new WebSocketCall(conn, this.#settings, this.#scheduler.clock, this.#hooks, pacing);
      } catch (error) {
        if (!(error instanceof AudioSocketError) || error.code !== ErrorCodes.INVALID_FORMAT) {
          void conn.close(1011, 'server error');
          this.#report(error, undefined);
          return;
        }
        // A codec no call can carry: the channel's dial string, not a handler, is what to fix.
        void conn.close(1003, 'unsupported format');
        const { remoteAddress, remotePort, url } = conn.peer;
        this.#stats.handshakeFailures++;
        // Unlike an abandoned dial, a misconfiguration: said even when nobody listens, once per format.
        if (this.listenerCount('handshakeFailed') === 0 && !this.#formatsRefused.has(conn.start.format)) {
          this.#formatsRefused.add(conn.start.format);
          process.emitWarning(`audiosocket: chan_websocket call from ${remoteAddress}:${remotePort} refused: ${error.message}`, {
            code: error.code,
          });
        }
        this.#emitSafe('handshakeFailed', { transport: 'websocket', reason: 'unsupported-format', remoteAddress, remotePort, url, error });
        return;
      }
      this.#onReady(call);
    }, media);
    ws.on('connectionRejected', (r) => {
      this.#stats.rejected++;
      this.#emitSafe('connectionRejected', { transport: 'websocket', ...r });
    });
    ws.on('handshakeFailed', (f) => {
      this.#stats.handshakeFailures++;
      this.#emitSafe('handshakeFailed', { transport: 'websocket', ...f });
    });
    ws.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      else process.emitWarning(`audiosocket: websocket server error: ${err.message}`, { code: ErrorCodes.SOCKET });
    });
    return ws;
  }

  get listening(): boolean {
    return this.#listening;
  }

  get stats(): ServerStats {
    return { ...this.#stats, activeCalls: this.#calls.size, pendingHandshakes: this.#pending.size, rejected: this.#stats.rejected };
  }

  /** The bound address, or `null` when not listening. */
  address(): AddressInfo | null {
    const a = this.#net.address();
    return a !== null && typeof a === 'object' ? a : null;
  }

  /**
   * The WebAssembly modules `listen()` loads: both, or with `preloadWasm: false` those the
   * options need. Speech detection resamples calls that are not at 8 or 16 kHz; an echo of
   * declared G.711 (`inbound`) into a wider outbound kind converts its rate.
   */
  #wasmToLoad(): Array<Promise<void>> {
    const settings = this.#settings;
    const all = this.#options.preloadWasm !== false;
    const speech = settings.speech !== undefined;
    const g711Widened = settings.inbound !== 'slin' && settings.outboundKind !== Kind.SLIN;
    const loads: Array<Promise<void>> = [];
    if (all || speech || g711Widened || settings.receive !== undefined || settings.send !== undefined) loads.push(loadResampler());
    if (all || speech) loads.push(loadVad());
    return loads;
  }

  /**
   * Starts listening. Defaults: host `127.0.0.1` (loopback: AudioSocket has no authentication),
   * port 9092; port 0 picks a free port. Resolves with the bound address.
   */
  listen(options: ListenOptions = {}): Promise<AddressInfo> {
    if (this.#closing) return Promise.reject(audioSocketError(ErrorCodes.SERVER_CLOSED, 'the server is closed'));
    const host = options.host ?? this.#options.host ?? '127.0.0.1';
    const port = options.port ?? this.#options.port ?? 9092;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
      return Promise.reject(
        audioSocketError(ErrorCodes.INVALID_ARGUMENT, `port must be a whole number from 0 to 65535, got ${String(port)}`),
      );
    }
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(abortedError('listen()', signal));
    // The resampler and the detector (WebAssembly) load once per process, so conversions and
    // speech detection can start synchronously inside calls (see `preloadWasm`). Without the
    // resampler only same-rate conversions work; a failed load is reported, not fatal.
    return Promise.all(this.#wasmToLoad())
      .then(
        () => this.#listen(host, port, options),
        (err: unknown) => {
          process.emitWarning(
            `audiosocket: a WebAssembly module (resampler or speech detector) could not be loaded; conversion or speech detection is unavailable: ${String(err)}`,
          );
          return this.#listen(host, port, options);
        },
      )
      .then(async (address) => {
        const wsOpts = this.#options.websocket;
        if (this.#ws !== undefined && wsOpts?.port !== undefined && this.#wsAddress === null) {
          try {
            this.#wsAddress = await this.#ws.listen({ host: wsOpts.host ?? host, port: wsOpts.port });
          } catch (err) {
            await this.close();
            // The system error (EADDRINUSE, ...) as the cause, whichever layer wrapped it.
            const cause = err instanceof AudioSocketError && err.cause instanceof Error ? err.cause : err;
            const at = `${wsOpts.host ?? host}:${wsOpts.port}`;
            throw audioSocketError(ErrorCodes.SOCKET, `cannot listen for chan_websocket on ${at}: ${(cause as Error).message}`, cause);
          }
        }
        return address;
      });
  }

  #listen(host: string, port: number, options: ListenOptions): Promise<AddressInfo> {
    const signal = options.signal;
    // close() or an abort may have come while the resampler was loading.
    if (this.#closing) return Promise.reject(audioSocketError(ErrorCodes.SERVER_CLOSED, 'the server was closed before it listened'));
    if (signal?.aborted) return Promise.reject(abortedError('listen()', signal));
    return new Promise<AddressInfo>((resolve, reject) => {
      const onError = (err: Error): void => {
        this.#net.off('listening', onListening);
        reject(audioSocketError(ErrorCodes.SOCKET, `cannot listen on ${host}:${port}: ${err.message}`, err));
      };
      const onListening = (): void => {
        this.#net.off('error', onError);
        this.#listening = true;
        const address = this.address()!;
        this.#emitSafe('listening', address);
        if (signal) signal.addEventListener('abort', () => void this.close(), { once: true });
        resolve(address);
      };
      this.#net.once('error', onError);
      this.#net.once('listening', onListening);
      this.#net.listen({ host, port, backlog: options.backlog ?? 511 });
    });
  }

  /**
   * Graceful shutdown: stops accepting, closes pending handshakes, hangs up every live call
   * (hangup message, then close), and resolves when every socket is gone. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#admission.closing = true;
    this.#closing = new Promise<void>((resolve) => {
      const finish = (): void => {
        this.#listening = false;
        for (const queue of this.#iterators) queue.end();
        this.#iterators.clear();
        resolve();
        this.#emitSafe('close');
      };
      this.#closeResolve = finish;
    });
    if (this.#net.listening) this.#net.close();
    for (const handshake of this.#pending) {
      this.#aborting++;
      void handshake.abort().then(() => {
        this.#aborting--;
        this.#maybeClosed();
      });
    }
    this.#pending.clear();
    for (const call of this.#calls) void call._terminate('server-close');
    if (this.#ws !== undefined) {
      this.#aborting++;
      void this.#ws.close().then(() => {
        this.#aborting--;
        this.#maybeClosed();
      });
    }
    this.#maybeClosed();
    return this.#closing;
  }

  #closeResolve: (() => void) | null = null;

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Calls as an async iterator (alongside the handler and `call` events); ends when the server closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Call, void, undefined> {
    const queue = new AsyncQueue<Call>();
    if (this.#closing !== null) queue.end();
    this.#iterators.add(queue);
    try {
      yield* queue;
    } finally {
      this.#iterators.delete(queue);
    }
  }

  #onConnection(socket: Socket): void {
    const remoteAddress = socket.remoteAddress ?? '';
    const remotePort = socket.remotePort ?? 0;
    const turnAway = (reason: RefusalReason): void => {
      this.#stats.rejected++;
      this.#reject(socket, reason !== 'not-allowed');
      this.#emitSafe('connectionRejected', { transport: 'audiosocket', reason, remoteAddress, remotePort });
    };
    const reason = this.#admission.screen(remoteAddress);
    if (reason !== undefined) {
      turnAway(reason);
      return;
    }
    const handshake: Handshake = new Handshake(socket, this.#settings, this.#scheduler.clock, {
      uuid: (uuid, handover) => {
        this.#pending.delete(handshake);
        // The slot is taken now, not at connect: a peer that never sends its UUID holds none.
        if (!this.#admission.reserve()) {
          turnAway(this.#admission.closing ? 'server-closing' : 'max-calls');
          this.#maybeClosed();
          return;
        }
        let call: AudioSocketCall;
        try {
          call = new AudioSocketCall(socket, uuid, handover, this.#settings, this.#scheduler, this.#hooks);
        } catch (error) {
          this.#admission.release();
          socket.destroy();
          this.#report(error, undefined);
          this.#maybeClosed();
          return;
        }
        this.#onReady(call);
      },
      failed: (reason, error) => {
        this.#pending.delete(handshake);
        this.#stats.handshakeFailures++;
        const failure: AudioSocketHandshakeFailure = { transport: 'audiosocket', reason, remoteAddress, remotePort };
        if (error !== undefined) failure.error = error;
        this.#emitSafe('handshakeFailed', failure);
        this.#maybeClosed();
      },
    });
    this.#pending.add(handshake);
    socket.resume();
  }

  /**
   * Turns a connection away. A busy or closing server says hangup, which Asterisk treats as a
   * clean end (a bare close makes Asterisk before 20.14/21.9/22.4/23.0 spin); a stranger outside
   * the allow list gets nothing.
   */
  #reject(socket: Socket, sayHangup: boolean): void {
    socket.on('error', () => {});
    if (!sayHangup) {
      socket.destroy();
      return;
    }
    this.#rejecting.add(socket);
    const clock = this.#scheduler.clock;
    const ms = this.#settings.hangupTimeout;
    const timer = ms === Infinity ? undefined : clock.setTimer(() => socket.destroy(), ms);
    socket.on('close', () => {
      if (timer !== undefined) clock.clearTimer(timer);
      this.#rejecting.delete(socket);
      this.#maybeClosed();
    });
    socket.end(HANGUP_MESSAGE);
    socket.resume(); // drain whatever it sends until it closes
  }

  #onReady(call: Call): void {
    this.#calls.add(call);
    this.#stats.totalCalls++;
    try {
      this.emit('call', call);
    } catch (error) {
      this.#handlerFailed(error, call);
      return;
    }
    for (const queue of this.#iterators) queue.push(call);
    const handler = this.#handler;
    if (handler === undefined) return;
    try {
      const result = handler(call);
      if (result !== undefined && result !== null && typeof (result as Promise<void>).then === 'function') {
        (result as Promise<void>).then(undefined, (error: unknown) => this.#handlerFailed(error, call));
      }
    } catch (error) {
      this.#handlerFailed(error, call);
    }
  }

  /** The handler (or a `call` listener) failed: the call reports it and ends, as for a failing call listener. */
  #handlerFailed(error: unknown, call: Call): void {
    void call._terminate('handler-error', error);
  }

  #report(error: unknown, call: Call | undefined): void {
    if (call !== undefined && this.listenerCount('handlerError') > 0) {
      try {
        this.emit('handlerError', error, call);
        return;
      } catch {
        // A throwing handlerError listener falls back to the warning below.
      }
    }
    const err = error instanceof Error ? error : new Error(String(error));
    process.emitWarning(`audiosocket: call ${call?.uuid ?? '-'} handler failed: ${err.stack ?? err.message}`, {
      code: ErrorCodes.HANDLER,
    });
  }

  /**
   * A call's warning goes to the server's `callWarning` listeners. When neither the call nor the
   * server listens, it is a process warning, once per call and code: a wrong codec or a full
   * queue must not pass in silence just because nobody subscribed.
   */
  #callWarning(call: Call, warning: CallWarning, heard: boolean): void {
    if (this.listenerCount('callWarning') > 0) {
      this.#emitSafe('callWarning', call, warning);
      return;
    }
    if (heard) return;
    let said = this.#warned.get(call);
    if (said === undefined) this.#warned.set(call, (said = new Set()));
    if (said.has(warning.code)) return;
    said.add(warning.code);
    process.emitWarning(
      `call ${call.uuid}: ${warning.message} (listen for 'warning' on the call or 'callWarning' on the server to handle it)`,
      { type: 'AudioSocketWarning', code: warning.code },
    );
  }

  readonly #warned = new WeakMap<Call, Set<string>>();

  #emitSafe<K extends keyof ServerEvents>(event: K, ...args: ServerEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: ServerEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      this.#report(error, undefined);
    }
  }

  #maybeClosed(): void {
    if (this.#closeResolve === null) return;
    if (this.#calls.size > 0 || this.#pending.size > 0 || this.#rejecting.size > 0 || this.#aborting > 0) return;
    const finish = this.#closeResolve;
    this.#closeResolve = null;
    if (this.#net.listening) this.#net.close(() => finish());
    else finish();
  }
}

/** Creates an AudioSocket server. `handler` is called with each call once its UUID has arrived. */
export function createServer(handler?: CallHandler, options?: ServerOptions): AudioSocketServer;
export function createServer(options?: ServerOptions): AudioSocketServer;
export function createServer(a?: CallHandler | ServerOptions, b?: ServerOptions): AudioSocketServer {
  if (typeof a === 'function' || a === undefined) return new AudioSocketServer(a, b);
  return new AudioSocketServer(undefined, a);
}
