/**
 * A simulated chan_websocket Asterisk: connects to a media server the way Asterisk's
 * `res_websocket_client` does (subprotocol `media`), sends MEDIA_START, streams audio in real
 * time and DTMF, and treats what it receives as `channels/chan_websocket.c` does: it re-frames
 * binary messages to `optimal_frame_size`, queues up to 1000 frames (MEDIA_XOFF at 900, MEDIA_XON
 * below 800), plays one frame per `ptime`, answers every command, and records what it played and
 * anything a real Asterisk would drop, ignore or log (violations). Use it to test a bot without
 * a PBX.
 * @module
 */
import WebSocket from 'ws';
import { audioSocketError, connectErrorText, ErrorCodes, type AudioSocketError, type WebSocketViolationCode } from '../errors.js';
import { rawToBuffer, wsError } from './connection.js';
import { SimulatedAsterisk } from '../simulated-asterisk.js';
import {
  encodeEvent,
  maxMessagePayload,
  MEDIA_SUBPROTOCOL,
  optimalFrameSizeOf,
  parseCommand,
  ptimeOf,
  QUEUE_LENGTH_MAX,
  QUEUE_XOFF_LEVEL,
  QUEUE_XON_LEVEL,
  type ControlFormat,
  type EventInput,
  type MediaCommand,
  type MediaDirection,
  type MediaStatus,
} from '../protocol/websocket.js';

/** Options of {@link connectWebSocket}. */
export interface WebSocketConnectOptions {
  /** The server's URL, as in `websocket_client.conf` `uri` (plus `v()` parameters), e.g. `ws://127.0.0.1:8765/media`. */
  url: string;
  /** Channel format (the `c()` dial option), an Asterisk name. Default `slin16`. */
  format?: string;
  /** Control message format. Default `plain-text`, Asterisk's default; `json` needs 20.18/22.8/23.2+. */
  controlFormat?: ControlFormat;
  /** The `websocket_client.conf` section name. Default `sim`. */
  connectionId?: string;
  /** The channel's unique id. Default a fresh `<seconds>.<n>`. */
  channelId?: string;
  /** Omit `channel_id` from MEDIA_START and DTMF_END, as 20.16/21.11/22.6/23.0 did. */
  legacyStart?: boolean;
  /**
   * Behave like Asterisk before 20.18/22.8/23.2: MARK_MEDIA is an unknown command (logged as an
   * `UNKNOWN_COMMAND` violation, never answered). Those versions speak plain text only, so this
   * needs `controlFormat: 'plain-text'`.
   */
  noMarkMedia?: boolean;
  /** Extra channel variables in MEDIA_START (JSON only, as in Asterisk). */
  channelVariables?: Record<string, string>;
  /** Subprotocols to offer. Default `['media']`; anything else lets tests misbehave on purpose. */
  subprotocols?: string[];
  /** The `p` dial option: no re-framing, every binary message is one frame, media commands refused. Forced for codecs with optimal_frame_size 0. */
  passthrough?: boolean;
  /** The `n` dial option: the channel waits for ANSWER instead of answering when connected. */
  noAutoAnswer?: boolean;
  /** The `d()` dial option (app's point of view). Default `both`. */
  mediaDirection?: MediaDirection;
  /** Override optimal_frame_size (only for codecs outside Asterisk's built-in table). */
  optimalFrameSize?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /**
   * `username` and `password` of `websocket_client.conf`: sent as HTTP Basic credentials with the
   * upgrade request, as Asterisk does (`res/res_http_websocket.c`).
   */
  username?: string;
  password?: string;
  /** For a `wss://` URL: the CA certificates to trust (`ca_list_file`). Default: Node's bundle. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** For a `wss://` URL: check the server's certificate (`verify_server_cert`). Default true. */
  verifyServerCert?: boolean;
  /** Give up connecting after this many ms (Asterisk's `connection_timeout`, default 500 there). Default 2000. */
  connectTimeout?: number;
}

/** Something the app sent that a real Asterisk would drop, ignore, refuse or log. */
export interface WebSocketViolation {
  /** What a real Asterisk would do with it is documented with each code in `WarningCodes`. */
  code: WebSocketViolationCode;
  message: string;
}

/** How the simulated call ended. */
export interface WebSocketClientClose {
  /**
   * - `app-hangup`: the app sent HANGUP; we closed with 1000, as Asterisk does.
   * - `app-close`: the app closed the WebSocket (Asterisk then hangs up the channel).
   * - `client`: we hung up ({@link AsteriskWebSocketClient.hangup}) or dropped the connection.
   * - `error`: a protocol or socket error; see `error`.
   */
  by: 'app-hangup' | 'app-close' | 'client' | 'error';
  /** The close code; after an error, the one we (as Asterisk) closed with: 1009 too big, 1002 protocol. */
  code: number;
  reason: string;
  error?: AudioSocketError;
}

/** A mark answered (MEDIA_MARK_PROCESSED sent), with how much had been played by then. */
export interface PlayedMark {
  correlationId: string;
  /** Frames played before the mark was answered. */
  framesPlayed: number;
  /** ms since MEDIA_START. */
  atMs: number;
}

/** Events of an {@link AsteriskWebSocketClient}. */
export interface WebSocketClientEvents {
  /** A binary message from the app, as received (before re-framing). */
  received: [payload: Buffer];
  /** A frame was played to the (simulated) channel: what the caller hears. */
  played: [frame: Buffer];
  /** A command was read (valid ones only). */
  command: [command: MediaCommand];
  /** We sent a control event (the text as sent). */
  sentEvent: [text: string];
  /** MEDIA_MARK_PROCESSED was sent. */
  mark: [mark: PlayedMark];
  /** The channel was answered (auto-answer on connect, or the ANSWER command). */
  answer: [];
  violation: [violation: WebSocketViolation];
  close: [info: WebSocketClientClose];
}

/** Counters of a simulated call. */
export interface WebSocketClientStats {
  /** Binary messages received from the app. */
  messagesIn: number;
  bytesIn: number;
  /** Text messages received from the app. */
  commandsIn: number;
  /** Frames played; and bytes. */
  framesPlayed: number;
  bytesPlayed: number;
  /** Timer ticks that found nothing to play after the first frame was played (underruns and trailing silence). */
  emptyTicks: number;
  /** Times playout resumed after one or more empty ticks: audible gaps inside the app's audio. */
  gaps: number;
  /** Highest queue length seen. */
  maxQueueLength: number;
  xoffsSent: number;
  xonsSent: number;
  /** Binary messages sent to the app (audio); and bytes. */
  messagesOut: number;
  bytesOut: number;
  violations: number;
}

/** A frame, or a control event that goes out when playout reaches it (`markId`: a MEDIA_MARK_PROCESSED's). */
type QueueItem = { frame: Buffer } | { option: string; markId?: string };

let channelCounter = 0;

/** One simulated chan_websocket channel. Create with {@link connectWebSocket}. */
export class AsteriskWebSocketClient extends SimulatedAsterisk<
  WebSocketClientEvents,
  WebSocketViolation,
  WebSocketClientClose,
  WebSocketClientStats
> {
  /** MEDIA_START fields as sent. */
  readonly connectionId: string;
  readonly channel: string;
  readonly channelId: string;
  readonly format: string;
  readonly optimalFrameSize: number;
  readonly ptime: number;
  readonly controlFormat: ControlFormat;
  readonly passthrough: boolean;
  readonly #ws: WebSocket;
  readonly #legacy: boolean;
  readonly #noMarkMedia: boolean;
  #queue: QueueItem[] = [];
  #queueLength = 0;
  #queueFull = false;
  #paused = false;
  #bulk = false;
  #reportDrained = false;
  #leftover: Buffer;
  #leftoverLen = 0;
  #direction: MediaDirection;
  #answered = false;
  #startTime = 0;
  #timer: NodeJS.Timeout | undefined;
  #tickIndex = 0;
  #tickBase = 0;
  #emptySincePlay = 0;
  #closeBy: WebSocketClientClose['by'] | undefined;
  #error: AudioSocketError | undefined;
  #errorCloseCode: number | undefined;
  #played: Buffer[] = [];
  #marks: PlayedMark[] = [];

  /** @internal Use {@link connectWebSocket}. */
  constructor(ws: WebSocket, o: WebSocketConnectOptions) {
    super({
      messagesIn: 0,
      bytesIn: 0,
      commandsIn: 0,
      framesPlayed: 0,
      bytesPlayed: 0,
      emptyTicks: 0,
      gaps: 0,
      maxQueueLength: 0,
      xoffsSent: 0,
      xonsSent: 0,
      messagesOut: 0,
      bytesOut: 0,
      violations: 0,
    });
    this.#ws = ws;
    this.format = o.format ?? 'slin16';
    this.connectionId = o.connectionId ?? 'sim';
    this.channelId = o.channelId ?? `${Math.floor(Date.now() / 1000)}.${++channelCounter}`;
    this.channel = `WebSocket/${this.connectionId}/0x${(0x7f0000000000 + channelCounter * 0x1000).toString(16)}`;
    this.controlFormat = o.controlFormat ?? 'plain-text';
    const size = o.optimalFrameSize ?? optimalFrameSizeOf(this.format);
    if (size === undefined) {
      throw audioSocketError(ErrorCodes.INVALID_FORMAT, `unknown Asterisk format ${JSON.stringify(this.format)}; pass optimalFrameSize`);
    }
    this.optimalFrameSize = size;
    this.ptime = ptimeOf(this.format) ?? 20;
    this.passthrough = size === 0 || o.passthrough === true;
    this.#direction = o.mediaDirection ?? 'both';
    this.#legacy = o.legacyStart === true;
    this.#noMarkMedia = o.noMarkMedia === true;
    if (this.#noMarkMedia && this.controlFormat === 'json') {
      throw audioSocketError(
        ErrorCodes.INVALID_ARGUMENT,
        'noMarkMedia imitates Asterisk before 20.18/22.8/23.2, which has no JSON control format',
      );
    }
    this.#leftover = Buffer.alloc(size);
    ws.on('message', (data, isBinary) => (isBinary ? this.#onBinary(rawToBuffer(data)) : this.#onText(rawToBuffer(data))));
    ws.on('error', (err: Error & { code?: string }) => {
      // ws has sent its close frame (1009, 1002, ...) and stops reading; report the code we sent.
      const tooBig = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';
      this.#errorCloseCode = tooBig ? 1009 : 1002;
      if (tooBig) {
        this.#violation('MESSAGE_TOO_BIG', `a message larger than Asterisk's 65535-byte frame buffer; it closes with 1009 and hangs up`);
      } else if (err.code === 'WS_ERR_INVALID_OPCODE') {
        this.#violation('BAD_OPCODE', err.message);
      }
      this.#error ??= wsError(err);
    });
    ws.on('close', (code, reason) => this.#onClose(code, reason.toString()));
    const vars = {
      MEDIA_WEBSOCKET_OPTIMAL_FRAME_SIZE: String(size),
      MEDIA_WEBSOCKET_CONNECTION_ID: this.connectionId,
      ...o.channelVariables,
    };
    this.#send({
      event: 'MEDIA_START',
      connectionId: this.connectionId,
      channel: this.channel,
      channelId: this.#legacy ? undefined : this.channelId,
      format: this.format,
      audioFormat: undefined,
      optimalFrameSize: size,
      ptime: this.ptime,
      channelVariables: vars,
    });
    this.#startTime = performance.now();
    if (!o.noAutoAnswer) this.#answer();
    if (this.#direction !== 'in') this.#startTimer();
  }

  /** True until the WebSocket closes. */
  get connected(): boolean {
    return this.#ws.readyState === WebSocket.OPEN;
  }

  /** True once answered (auto-answer or ANSWER). */
  get answered(): boolean {
    return this.#answered;
  }

  /** Frames queued now (what STATUS calls queue_length). */
  get queueLength(): number {
    return this.#queueLength;
  }

  /** Driver state, as STATUS reports it. */
  get status(): MediaStatus {
    return {
      channelId: this.channelId,
      queueLength: this.#queueLength,
      xonLevel: QUEUE_XON_LEVEL,
      xoffLevel: QUEUE_XOFF_LEVEL,
      queueFull: this.#queueFull,
      bulkMedia: this.#bulk,
      mediaPaused: this.#paused,
    };
  }

  /** Current media direction. */
  get mediaDirection(): MediaDirection {
    return this.#direction;
  }

  /** Every frame played, in order (what the caller heard; empty ticks are not in it). */
  get played(): readonly Buffer[] {
    return this.#played;
  }

  /** All played audio as one buffer. */
  playedAudio(): Buffer {
    return Buffer.concat(this.#played);
  }

  /** Marks answered so far. */
  get marks(): readonly PlayedMark[] {
    return this.#marks;
  }

  /** Sends one binary audio message to the app, as `webchan_write()` does with each frame from the core. */
  sendAudio(payload: Uint8Array): boolean {
    if (!this.connected) return false;
    this._stats.messagesOut++;
    this._stats.bytesOut += payload.length;
    this.#ws.send(payload, { binary: true });
    return true;
  }

  /** Sends DTMF_END for `digit` (`0-9 * # A-D`), as `webchan_send_dtmf_text()` does at the end of a key press. */
  sendDtmf(digit: string): boolean {
    if (!/^[0-9*#A-Da-d]$/.test(digit)) {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `not a DTMF digit: ${JSON.stringify(digit)}`);
    }
    return this.#send({ event: 'DTMF_END', channelId: this.#legacy ? undefined : this.channelId, digit });
  }

  /** Sends any text (for fault tests). */
  sendText(text: string): boolean {
    if (!this.connected) return false;
    this.#ws.send(text);
    return true;
  }

  /**
   * Streams `audio` to the app in real time: `optimal_frame_size` bytes every `ptime` ms, frame
   * k at start + k x ptime (no drift). The last frame may be shorter. Sends nothing with media
   * direction `out`. Resolves with the number of frames sent.
   */
  async stream(audio: Uint8Array, options: { signal?: AbortSignal; frameBytes?: number } = {}): Promise<number> {
    const size = options.frameBytes ?? this.optimalFrameSize;
    if (!(size > 0)) throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'passthrough codecs need frameBytes');
    // Aborted during the wait: no frame; with media direction `out`: none sent, none counted.
    const send = (frame: Uint8Array): boolean => !options.signal?.aborted && this.#direction !== 'out' && this.sendAudio(frame);
    return this._stream(audio, size, this.ptime, options.signal, send);
  }

  /**
   * The caller hangs up: Asterisk closes the WebSocket with 1000 (`webchan_hangup()`). Resolves
   * when closed; destroys the socket if the app does not complete the close within 2 s.
   */
  hangup(code = 1000): Promise<WebSocketClientClose> {
    this.#closeBy ??= 'client';
    this.#stopTimer();
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.close(code);
    return this._killAfter2s(() => this.#ws.terminate());
  }

  /** Drops the TCP connection without a close frame (a network failure). */
  drop(): Promise<WebSocketClientClose> {
    this.#closeBy ??= 'client';
    this.#ws.terminate();
    return this.closed;
  }

  // -- chan_websocket behaviour ------------------------------------------------------------------

  #send(e: EventInput): boolean {
    return this.#sendEvent(encodeEvent(e, this.controlFormat));
  }

  #sendEvent(text: string): boolean {
    if (!this.connected) return false;
    this.#ws.send(text);
    this.emit('sentEvent', text);
    return true;
  }

  #nodata(event: 'MEDIA_XON' | 'MEDIA_XOFF' | 'QUEUE_DRAINED'): void {
    this.#send({ event, channelId: this.channelId });
  }

  #errorEvent(text: string): void {
    this.#send({ event: 'ERROR', channelId: this.channelId, errorText: text });
  }

  #answer(): void {
    if (this.#answered) return;
    this.#answered = true;
    this.emit('answer');
  }

  #startTimer(): void {
    if (this.#timer !== undefined || !this.connected) return;
    this.#tickBase = performance.now();
    this.#tickIndex = 0;
    const run = (): void => {
      this.#timer = undefined;
      if (!this.connected || this.#direction === 'in') return;
      // ast_timer_ack() acks one expiry at a time: missed ticks are read back to back.
      const due = Math.floor((performance.now() - this.#tickBase) / this.ptime);
      let n = 0;
      while (this.#tickIndex <= due && n++ < 50 && this.connected) {
        this.#tickIndex++;
        this.#tick();
      }
      if (!this.connected) return;
      const next = this.#tickBase + this.#tickIndex * this.ptime - performance.now();
      this.#timer = setTimeout(run, Math.max(0, next));
    };
    this.#timer = setTimeout(run, this.ptime);
  }

  #stopTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One timer expiry: `dequeue_frame()`. */
  #tick(): void {
    if (this.#paused) return;
    if (this.#queueFull && this.#queueLength < QUEUE_XON_LEVEL) {
      this.#queueFull = false;
      this._stats.xonsSent++;
      this.#nodata('MEDIA_XON');
    }
    let item = this.#queue.shift();
    if (item === undefined) {
      if (this.#reportDrained) {
        this.#reportDrained = false;
        this.#nodata('QUEUE_DRAINED');
      }
      this.#empty();
      return;
    }
    while (item !== undefined && 'option' in item) {
      this.#sendOption(item);
      item = this.#queue.shift();
    }
    if (item === undefined) {
      this.#empty();
      return;
    }
    this.#queueLength--;
    if (this.#emptySincePlay > 0 && this._stats.framesPlayed > 0) this._stats.gaps++;
    this.#emptySincePlay = 0;
    this.#played.push(item.frame);
    this._stats.framesPlayed++;
    this._stats.bytesPlayed += item.frame.length;
    this.emit('played', item.frame);
  }

  #empty(): void {
    if (this._stats.framesPlayed > 0) {
      this._stats.emptyTicks++;
      this.#emptySincePlay++;
    }
  }

  #sendOption(item: { option: string; markId?: string }): void {
    if (!this.#sendEvent(item.option) || item.markId === undefined) return;
    const mark = { correlationId: item.markId, framesPlayed: this._stats.framesPlayed, atMs: performance.now() - this.#startTime };
    this.#marks.push(mark);
    this.emit('mark', mark);
  }

  /** `queue_frame_from_buffer()`. */
  #queueFrame(frame: Buffer): void {
    this.#queue.push({ frame });
    this.#queueLength++;
    if (this.#queueLength > this._stats.maxQueueLength) this._stats.maxQueueLength = this.#queueLength;
    if (!this.#queueFull && this.#queueLength >= QUEUE_XOFF_LEVEL) {
      this.#queueFull = true;
      this._stats.xoffsSent++;
      this.#nodata('MEDIA_XOFF');
    }
  }

  /** `queue_option_frame()`: a control event that goes out when playout reaches it. */
  #queueOption(e: EventInput): void {
    const markId = e.event === 'MEDIA_MARK_PROCESSED' ? e.correlationId : undefined;
    this.#queue.push({ option: encodeEvent(e, this.controlFormat), markId });
  }

  /** `read_from_ws_and_queue()` + `process_binary_message()`. */
  #onBinary(payload: Buffer): void {
    this._stats.messagesIn++;
    this._stats.bytesIn += payload.length;
    this.emit('received', payload);
    if (this.#direction === 'in') {
      this.#violation('MEDIA_DIRECTION_IN', `${payload.length} bytes of audio dropped: media direction is 'in'`);
      return;
    }
    if (this.#queueLength >= QUEUE_LENGTH_MAX) {
      this.#violation('QUEUE_FULL', `${payload.length} bytes dropped: ${this.#queueLength} frames queued (maximum ${QUEUE_LENGTH_MAX})`);
      return;
    }
    if (this.passthrough) {
      this.#queueFrame(Buffer.from(payload));
      return;
    }
    const size = this.optimalFrameSize;
    let data = payload;
    if (this.#bulk && this.#leftoverLen > 0) {
      const need = size - this.#leftoverLen;
      const take = Math.min(need, data.length);
      data.copy(this.#leftover, this.#leftoverLen, 0, take);
      if (take < need) {
        this.#leftoverLen += take;
        return;
      }
      this.#queueFrame(Buffer.from(this.#leftover));
      data = data.subarray(take);
      this.#leftoverLen = 0;
    }
    let off = 0;
    for (; data.length - off >= size; off += size) this.#queueFrame(Buffer.from(data.subarray(off, off + size)));
    const left = data.length - off;
    if (left > 0) {
      if (this.#bulk) {
        data.copy(this.#leftover, 0, off);
        this.#leftoverLen = left;
      } else {
        this.#violation(
          'PARTIAL_FRAME',
          `${left} bytes at the end of a ${payload.length}-byte message are not a whole ${size}-byte frame: Asterisk drops them`,
        );
      }
    }
  }

  /** `process_text_message()` + `handle_command()`. */
  #onText(payload: Buffer): void {
    this._stats.commandsIn++;
    const parsed = parseCommand(payload, this.controlFormat);
    if (!parsed.ok) {
      switch (parsed.reason) {
        case 'empty':
          this.#violation('TEXT_EMPTY', 'WebSocket TEXT message has 0 length');
          return;
        case 'too-long':
          this.#violation('TEXT_TOO_LONG', parsed.message);
          return;
        case 'bad-json':
          this.#violation('BAD_JSON', `${parsed.message}: ${payload.toString('utf8').slice(0, 60)}`);
          this.#errorEvent(parsed.message);
          return;
        case 'unknown':
          this.#violation('UNKNOWN_COMMAND', parsed.message);
          return;
        case 'json-only':
        case 'bad-direction':
          this.#refuse(this.passthrough ? `${parsed.name} not supported in passthrough mode` : parsed.message);
          return;
      }
    }
    const cmd = parsed.command;
    if (cmd.command === 'MARK_MEDIA' && this.#noMarkMedia) {
      this.#violation('UNKNOWN_COMMAND', 'MARK_MEDIA command unknown');
      return;
    }
    this.emit('command', cmd);
    const mediaCommand = cmd.command !== 'ANSWER' && cmd.command !== 'HANGUP' && cmd.command !== 'GET_STATUS';
    if (mediaCommand && this.passthrough) {
      this.#refuse(`${cmd.command} not supported in passthrough mode`);
      return;
    }
    const refusedIn = ['START_MEDIA_BUFFERING', 'STOP_MEDIA_BUFFERING', 'MARK_MEDIA', 'PAUSE_MEDIA', 'CONTINUE_MEDIA'];
    if (this.#direction === 'in' && refusedIn.includes(cmd.command)) {
      this.#refuse(`${cmd.command} not supported while media direction is 'in'`);
      return;
    }
    switch (cmd.command) {
      case 'ANSWER':
        this.#answer();
        break;
      case 'HANGUP':
        this.#closeBy ??= 'app-hangup';
        this.#stopTimer();
        this.#ws.close(1000);
        break;
      case 'START_MEDIA_BUFFERING':
        this.#bulk = true;
        break;
      case 'STOP_MEDIA_BUFFERING':
        this.#bulk = false;
        if (this.#leftoverLen > 0) this.#queueFrame(Buffer.from(this.#leftover.subarray(0, this.#leftoverLen)));
        this.#leftoverLen = 0;
        this.#queueOption({ event: 'MEDIA_BUFFERING_COMPLETED', channelId: this.channelId, correlationId: cmd.correlationId ?? '' });
        break;
      case 'MARK_MEDIA':
        this.#queueOption({ event: 'MEDIA_MARK_PROCESSED', channelId: this.channelId, correlationId: cmd.correlationId ?? '' });
        break;
      case 'FLUSH_MEDIA':
        // Marks and buffering-completed events are in the same list: they go too.
        this.#queue = [];
        this.#queueLength = 0;
        this.#bulk = false;
        this.#leftoverLen = 0;
        break;
      case 'REPORT_QUEUE_DRAINED':
        this.#reportDrained = true;
        break;
      case 'GET_STATUS':
        this.#send({ event: 'STATUS', ...this.status });
        break;
      case 'PAUSE_MEDIA':
        this.#paused = true;
        break;
      case 'CONTINUE_MEDIA':
        this.#paused = false;
        break;
      case 'SET_MEDIA_DIRECTION':
        this.#direction = cmd.direction;
        if (cmd.direction === 'in') this.#stopTimer();
        else this.#startTimer();
        break;
    }
  }

  #refuse(text: string): void {
    this.#violation('COMMAND_REFUSED', text);
    this.#errorEvent(text);
  }

  #violation(code: WebSocketViolation['code'], message: string): void {
    this._violation({ code, message });
  }

  #onClose(code: number, reason: string): void {
    this.#stopTimer();
    const by = this.#closeBy ?? (this.#error ? 'error' : 'app-close');
    const info: WebSocketClientClose = { by, code: by === 'error' ? (this.#errorCloseCode ?? code) : code, reason };
    if (this.#error && by === 'error') info.error = this.#error;
    this._closed(info);
  }
}

/**
 * Connects a simulated chan_websocket channel to `options.url` with subprotocol `media` and
 * sends MEDIA_START. Resolves once MEDIA_START is sent.
 * @throws AudioSocketError `SOCKET` when the connection or the upgrade fails (e.g. HTTP 400 for
 *   a wrong subprotocol); `SUBPROTOCOL` when the server accepted the upgrade with another
 *   subprotocol (Asterisk's client fails such a handshake).
 */
export function connectWebSocket(options: WebSocketConnectOptions): Promise<AsteriskWebSocketClient> {
  const timeout = options.connectTimeout ?? 2000;
  const protocols = options.subprotocols ?? [MEDIA_SUBPROTOCOL];
  return new Promise((resolve, reject) => {
    const headers = { ...options.headers };
    if (options.username !== undefined || options.password !== undefined) {
      headers.authorization = `Basic ${Buffer.from(`${options.username ?? ''}:${options.password ?? ''}`).toString('base64')}`;
    }
    const ws = new WebSocket(options.url, protocols, {
      perMessageDeflate: false,
      handshakeTimeout: timeout,
      // What Asterisk reads in one frame from a server (unmasked): 65535 bytes with a 4-byte header.
      maxPayload: maxMessagePayload(false),
      headers,
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.verifyServerCert === false ? { rejectUnauthorized: false } : {}),
    });
    const onError = (err: NodeJS.ErrnoException): void => {
      ws.off('open', onOpen);
      reject(audioSocketError(ErrorCodes.SOCKET, `could not connect to ${options.url}: ${connectErrorText(err)}`, err));
    };
    const onOpen = (): void => {
      ws.off('error', onError);
      if (ws.protocol !== '' && !protocols.includes(ws.protocol)) {
        ws.terminate();
        reject(audioSocketError(ErrorCodes.SUBPROTOCOL, `the server chose subprotocol ${JSON.stringify(ws.protocol)}`));
        return;
      }
      try {
        resolve(new AsteriskWebSocketClient(ws, options));
      } catch (err) {
        ws.terminate();
        reject(err);
      }
    };
    ws.once('error', onError);
    ws.once('open', onOpen);
  });
}
