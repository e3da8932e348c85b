/**
 * One chan_websocket call: the call core over a {@link MediaConnection}, with the buffered
 * outbound policy (Asterisk queues what we send and plays it one frame per ptime).
 *
 * What is chan_websocket's own: MEDIA_START (format, ptime, channel variables), the request's
 * URL, control events (XOFF/XON, marks, QUEUE_DRAINED, STATUS), and the WebSocket close.
 * See docs/websocket.md.
 */
import type { AudioFormat } from '../audio/format.js';
import { CallCore, type CallHooks, type CoreSettings } from '../call/core.js';
import type { AudioFrame, CallStats, EndReason } from '../call/types.js';
import { audioSocketError, ErrorCodes, type AudioSocketError } from '../errors.js';
import { BufferedOutbound, type BufferedOutboundOptions, type BufferedStats, type CompletionMode } from '../outbound/buffered.js';
import type { Clock } from '../clock.js';
import type { MediaStart } from '../protocol/websocket.js';
import type { MediaClose, MediaConnection, MediaWarning } from './connection.js';

/** Counters of a chan_websocket call: those of every call, and the buffered policy's. */
export interface WebSocketCallStats extends CallStats {
  /** MEDIA_XOFF events received (Asterisk's queue was full). */
  xoffs: number;
  /** MARK_MEDIA commands sent. */
  marksSent: number;
}

/** @internal Options of one chan_websocket call, resolved by the server. */
export interface WebSocketCallSettings extends CoreSettings {
  writeHighWaterMarkMs: number;
  maxQueuedMs: number;
  prefetchMs: number;
}

const CLOSE_REASON: Record<MediaClose['by'], EndReason> = {
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

/**
 * One chan_websocket call. Created by the server once MEDIA_START has arrived; never
 * constructed by users. Same API and events as an AudioSocket call.
 */
export class WebSocketCall extends CallCore<AudioFrame, WebSocketCallStats> {
  readonly transport = 'websocket' as const;
  /** What MEDIA_START said (format, frame size, ptime, channel variables, ...). */
  readonly mediaStart: MediaStart;
  /**
   * The request's path and query as Asterisk sent them: the `uri` of `websocket_client.conf`
   * plus the `v(name=value,...)` dial-option parameters, the way to pass per-call context (a
   * ticket id, a language) from the dialplan, e.g. `new URLSearchParams(call.url.split('?')[1])`.
   */
  readonly url: string;
  /** The channel's control format. */
  readonly controlFormat: 'json' | 'plain-text';
  readonly #conn: MediaConnection;
  readonly #outbound: BufferedOutbound;
  /** The channel's format (slin at a rate, ulaw or alaw): what Asterisk sends and expects. */
  readonly #wire: AudioFormat;
  #connFailed = false;

  /** @internal */
  constructor(
    conn: MediaConnection,
    settings: WebSocketCallSettings,
    clock: Clock,
    hooks: CallHooks,
    options: BufferedOutboundOptions = {},
  ) {
    const start = conn.start;
    if (start.audioFormat === undefined) {
      throw audioSocketError(
        ErrorCodes.INVALID_FORMAT,
        `chan_websocket format ${start.format} is not supported (slin at any rate, ulaw or alaw; dial with c(slin16) or similar)`,
      );
    }
    super({
      uuid: start.channelId ?? start.connectionId,
      remoteAddress: conn.peer.remoteAddress,
      remotePort: conn.peer.remotePort,
      clock,
      settings,
      hooks,
    });
    this.#conn = conn;
    this.mediaStart = start;
    this.controlFormat = conn.controlFormat;
    this.url = conn.peer.url;
    this.#wire = start.audioFormat;
    // Known before any audio: every frame of a chan_websocket call comes in MEDIA_START's format.
    this._inboundFormat = start.audioFormat;
    const outbound = this._attachOutbound(
      (events) =>
        new BufferedOutbound(
          {
            ...options,
            wire: start.audioFormat!,
            ptime: start.ptime > 0 ? start.ptime : 20,
            prefetchMs: settings.prefetchMs,
            highWaterMarkMs: settings.writeHighWaterMarkMs,
            maxQueuedMs: settings.maxQueuedMs,
          },
          conn,
          clock,
          events,
        ),
    );
    this.#outbound = outbound;
    conn.on('audio', (payload) => this._audioIn(this.#wire, payload));
    conn.on('dtmf', (digit) => this._dtmfIn(digit));
    conn.on('event', (e) => {
      if (this._ending || e.event === 'DTMF_END') return; // a digit is counted as one
      this._messagesIn++;
      if (e.event === 'UNKNOWN') this._in.otherIn++;
    });
    conn.on('markProcessed', (id) => outbound.markProcessed(id));
    conn.on('xon', () => outbound.resume());
    conn.on('drain', () => outbound.resume());
    conn.on('queueDrained', () => outbound.queueDrained());
    conn.on('warning', (w: MediaWarning) => this._warn(w.code, w.message, w.error === undefined ? {} : { error: w.error }));
    conn.on('error', (error) => {
      // The connection closes itself, with the close code that fits the error.
      this.#connFailed = true;
      this._beginEnd(endReasonOf(error), error, false);
    });
    void conn.closed.then((info) => this.#onClose(info));
  }

  get stats(): WebSocketCallStats {
    const c = this.#conn.stats;
    const b: BufferedStats = this.#outbound.stats;
    const s = this._commonStats(
      {
        messagesOut: c.framesOut + c.commandsOut,
        bytesIn: c.audioBytesIn,
        bytesOut: c.audioBytesOut,
        droppedOut: c.droppedBytesOut > 0 ? Math.ceil(c.droppedBytesOut / Math.max(1, this.#outbound.frameBytes)) : 0,
      },
      b,
    ) as WebSocketCallStats;
    s.xoffs = c.xoffs;
    s.marksSent = b.marksSent;
    return s;
  }

  /**
   * How plays and marks complete on this call now: `probing` until Asterisk answers the first
   * MARK_MEDIA, then `marks`; `clock` (by the playout estimate) when configured so or when
   * Asterisk never answers (see the `completion` option).
   */
  get completionMode(): CompletionMode {
    return this.#outbound.stats.completion;
  }

  protected override _frame(format: AudioFormat, payload: Buffer): AudioFrame {
    return { sampleRate: format.sampleRate, format, payload };
  }

  protected override _closeTransport(reason: EndReason, sayHangup: boolean): void {
    if (this.#connFailed) return;
    if (reason === 'handler-error') void this.#conn.close(1011, 'handler error');
    else if (sayHangup) void this.#conn.hangup();
    else void this.#conn.close(1000, '');
  }

  #onClose(info: MediaClose): void {
    const error = info.error;
    this._beginEnd(error !== undefined ? endReasonOf(error) : CLOSE_REASON[info.by], error, false);
    this._closed();
  }
}
