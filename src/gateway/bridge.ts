/**
 * The gateway: one call, either transport, bridged to one voice bot over a WebSocket client
 * connection, in the bot's protocol (an adapter, `./protocol.ts`; Twilio Media Streams by default).
 *
 * Caller to bot: the call's audio, in whatever format it arrives, is converted to the protocol's
 * format and cut into exact chunks; while the bot's connection opens it is kept (up to
 * `connectBufferMs`) and sent after the protocol's start messages. Bot to caller: audio of any
 * length goes to `call.write()`, so the call's outbound model converts, frames and paces it; a
 * mark goes to `call.mark()` and is echoed when its audio has played (or was cleared); clear is
 * `call.flush()`. The bot's backlog is bounded: caller audio the bot does not read is dropped
 * beyond `maxBotBacklogMs` (counted, reported), and after `botNotReadingTimeoutMs` the call ends.
 * See docs/gateway.md.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { SecureContextOptions } from 'node:tls';
import WebSocket from 'ws';
import { createConverter, type Converter } from '../audio/convert.js';
import { sameFormat, type AudioFormat } from '../audio/format.js';
import type { AudioFrame, CallEnd } from '../call/types.js';
import { audioSocketError, connectErrorText, ErrorCodes, type AudioSocketError } from '../errors.js';
import type { Call } from '../server.js';
import type { BotMessage, BotMessageProblem, BotProtocol, BotSession } from './protocol.js';
import { twilioProtocol } from './twilio.js';

/** Options of {@link bridgeCall}. */
export interface BridgeOptions {
  /** The bot's WebSocket URL, `ws://` or `wss://`. */
  url: string | URL;
  /** The bot's protocol. Default: Twilio Media Streams ({@link twilioProtocol}). */
  protocol?: BotProtocol;
  /** Extra headers of the upgrade request, e.g. `{ Authorization: 'Bearer …' }`. */
  headers?: Readonly<Record<string, string>>;
  /** TLS for `wss://`: a private CA (`ca`), a client certificate (`cert`, `key`). */
  tls?: Pick<SecureContextOptions, 'ca' | 'cert' | 'key'> & { rejectUnauthorized?: boolean };
  /**
   * Per-call values for the bot (Twilio: `start.customParameters`), or a function of the call
   * that makes them. Default: {@link callParameters}.
   */
  parameters?: Readonly<Record<string, string>> | ((call: Call) => Readonly<Record<string, string>>);
  /** How long the bot may take to accept the connection, ms. Default 10000. */
  connectTimeoutMs?: number;
  /** Caller audio kept while the bot's connection opens, ms; older audio is dropped. Default 1000. */
  connectBufferMs?: number;
  /**
   * Caller audio a bot that does not read may leave untaken, ms (in our send buffer, or sent since
   * a ping it has not answered); beyond it, caller audio is dropped. Default 1000.
   */
  maxBotBacklogMs?: number;
  /** How long the bot may not read before the call is ended (`bot-not-reading`), ms. Default 10000. */
  botNotReadingTimeoutMs?: number;
  /** A WAV file the caller hears when the bot cannot be reached, before the hangup. */
  fallbackFile?: string;
}

/**
 * Why a bridge ended:
 * - `caller-hangup`: the call ended first (Asterisk hung up, the server closed, ...; see `callEnd`); the bot got `stop`;
 * - `bot-closed`: the bot closed its socket; the audio it had sent played out, then the call was hung up;
 * - `bot-unreachable`: the bot's connection failed or was refused; the fallback played, the call was hung up;
 * - `bot-error`: the bot's connection failed mid-call; the call was hung up;
 * - `bot-not-reading`: the bot did not read for `botNotReadingTimeoutMs`; the call was hung up.
 */
export type BridgeEndReason = 'caller-hangup' | 'bot-closed' | 'bot-unreachable' | 'bot-error' | 'bot-not-reading';

/** Counters of one bridge. */
export interface BridgeStats {
  /** Messages sent to the bot (all kinds). */
  messagesToBot: number;
  /** Chunks of caller audio sent to the bot. */
  chunksToBot: number;
  /** Milliseconds of caller audio dropped, never sent to the bot (bot connecting or not reading). */
  callerDroppedMs: number;
  /** Messages received from the bot. */
  messagesFromBot: number;
  /** Milliseconds of audio the bot sent. */
  botAudioMs: number;
  /** Marks the bot sent, and how many were echoed back. */
  marks: number;
  marksEchoed: number;
  /** Clears the bot sent, and the ms of queued audio they dropped. */
  clears: number;
  clearedMs: number;
  /** Messages from the bot that were not used (each also a `warning`). */
  invalidFromBot: number;
}

/** What {@link BotBridge.closed} resolves with and the `end` event carries. */
export interface BridgeEnd {
  reason: BridgeEndReason;
  /** One line a person can act on, e.g. `bot refused the upgrade: HTTP 404`. */
  detail: string;
  /** The bot's close code and reason, when its socket closed after opening. */
  botClose?: { code: number; reason: string };
  /** The error behind `bot-unreachable`, `bot-error` and `bot-not-reading`. */
  error?: AudioSocketError;
  /** How the call ended. */
  callEnd: CallEnd;
  stats: BridgeStats;
}

/**
 * A non-fatal condition of the bridge. `code`: a bot message that was not used
 * ({@link BotMessageProblem}); `PEER_NOT_READING` (the bot stopped reading, caller audio is
 * being dropped); `CALLER_AUDIO_DROPPED` (how much was dropped, once the episode is over);
 * `FALLBACK_FAILED` (the fallback file could not be played).
 */
export interface BridgeWarning {
  code: BotMessageProblem | 'PEER_NOT_READING' | 'CALLER_AUDIO_DROPPED' | 'FALLBACK_FAILED';
  message: string;
  /** For `CALLER_AUDIO_DROPPED`: the ms of caller audio dropped. */
  droppedMs?: number;
}

/** Events of a {@link BotBridge}. */
export interface BridgeEvents {
  /** The bot accepted the connection and got the start messages; `ids` are the protocol's (`streamSid`, `callSid`). */
  botConnected: [info: { ids: Readonly<Record<string, string>>; connectMs: number }];
  warning: [warning: BridgeWarning];
  /** The bridge is over: both the bot's socket and the call are closed. Emitted once. */
  end: [end: BridgeEnd];
}

const DEFAULTS = { connectTimeoutMs: 10_000, connectBufferMs: 1000, maxBotBacklogMs: 1000, botNotReadingTimeoutMs: 10_000 };
/** How long the bot gets to answer our close before its socket is cut. */
const CLOSE_GRACE_MS = 2000;
/** The largest message taken from a bot: about 10 minutes of mu-law in base64 JSON. */
const MAX_BOT_MESSAGE = 8 * 1024 * 1024;

function bytesPerMs(format: AudioFormat): number {
  return (format.sampleRate / 1000) * format.channels * (format.encoding === 'slin' ? 2 : 1);
}

/**
 * What the bot learns of a call by default: `uuid`, `transport`, `remoteAddress`; for
 * chan_websocket also the channel variables of MEDIA_START and the query parameters of the
 * request's URL (the dial string's `v(name=value,…)`), the latter winning on a clash.
 */
export function callParameters(call: Call): Record<string, string> {
  const base = { uuid: call.uuid, transport: call.transport, remoteAddress: call.remoteAddress };
  if (call.transport !== 'websocket') return base;
  const query = call.url.includes('?') ? Object.fromEntries(new URLSearchParams(call.url.slice(call.url.indexOf('?') + 1))) : {};
  return { ...base, ...call.mediaStart.channelVariables, ...query };
}

/** What the caller sent while the bot's connection opens: encoded once it is open, so the stream's counters start there. */
type Pending = { audio: Buffer } | { digit: string };

/**
 * One call bridged to one bot. Made by {@link bridgeCall}; ends when either side does, and
 * always hangs up the call and closes the bot's socket.
 */
export class BotBridge extends EventEmitter<BridgeEvents> {
  /** The call. */
  readonly call: Call;
  /** The bot's URL. */
  readonly url: string;
  /** Resolves when the bridge is over. Never rejects. */
  readonly closed: Promise<BridgeEnd>;
  readonly #options: Required<Omit<BridgeOptions, 'fallbackFile' | 'headers' | 'tls' | 'parameters' | 'protocol' | 'url'>> &
    Pick<BridgeOptions, 'fallbackFile'>;
  readonly #protocol: BotProtocol;
  readonly #session: BotSession;
  readonly #ws: WebSocket;
  readonly #chunk: Buffer;
  readonly #started = performance.now();
  #chunkFill = 0;
  #converter: Converter | undefined;
  #pending: Pending[] = [];
  #pendingAudio = 0;
  #state: 'connecting' | 'open' | 'ending' = 'connecting';
  /** The stream's media clock: ms of caller audio since the stream started, sent or dropped. */
  #mediaMs = 0;
  /** Bytes of the first media message: how the backlog in bytes is read as ms. */
  #mediaMessageBytes = 0;
  /** The current episode of dropping caller audio: how much and why, until it is reported. */
  #dropping: { ms: number; why: string } | undefined;
  readonly #unheard = new Set<string>();
  #notReadingTimer: NodeJS.Timeout | undefined;
  /** The ping the bot has not answered yet (its payload, when it was sent), pongs counted and the shortest round trip seen (see #backlogMs). */
  #ping: { payload: Buffer; sentAt: number } | undefined;
  #pingCount = 0;
  #lastPingAt = -Infinity;
  #pongs = 0;
  #minRttMs = Infinity;
  #end: Omit<BridgeEnd, 'callEnd' | 'stats'> | undefined;
  #resolve!: (end: BridgeEnd) => void;
  readonly #stats: BridgeStats = {
    messagesToBot: 0,
    chunksToBot: 0,
    callerDroppedMs: 0,
    messagesFromBot: 0,
    botAudioMs: 0,
    marks: 0,
    marksEchoed: 0,
    clears: 0,
    clearedMs: 0,
    invalidFromBot: 0,
  };

  /** @internal Use {@link bridgeCall}. */
  constructor(call: Call, options: BridgeOptions) {
    super();
    this.call = call;
    this.url = String(options.url);
    this.#options = {
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      connectBufferMs: options.connectBufferMs ?? DEFAULTS.connectBufferMs,
      maxBotBacklogMs: options.maxBotBacklogMs ?? DEFAULTS.maxBotBacklogMs,
      botNotReadingTimeoutMs: options.botNotReadingTimeoutMs ?? DEFAULTS.botNotReadingTimeoutMs,
      fallbackFile: options.fallbackFile,
    };
    this.closed = new Promise((resolve) => (this.#resolve = resolve));
    const protocol = (this.#protocol = options.protocol ?? twilioProtocol());
    const parameters = typeof options.parameters === 'function' ? options.parameters(call) : (options.parameters ?? callParameters(call));
    this.#session = protocol.open({ callId: call.uuid, transport: call.transport, parameters });
    this.#chunk = Buffer.alloc(Math.round(bytesPerMs(protocol.callerFormat) * protocol.chunkMs));

    this.#ws = new WebSocket(this.url, protocol.subprotocols ? [...protocol.subprotocols] : [], {
      headers: options.headers ? { ...options.headers } : undefined,
      handshakeTimeout: this.#options.connectTimeoutMs,
      perMessageDeflate: false,
      maxPayload: MAX_BOT_MESSAGE,
      ...options.tls,
    });
    this.#ws.on('open', () => this.#onOpen());
    this.#ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer, isBinary));
    this.#ws.on('error', (err) => this.#onSocketError(err));
    this.#ws.on('close', (code, reason) => this.#onClose(code, reason.toString('utf8')));
    this.#ws.on('pong', (data) => this.#onPong(data));

    call.on('audio', this.#onAudio);
    call.on('dtmf', this.#onDtmf);
    // The bridge ends when the call starts ending, not once it has closed: from then on the call
    // takes no audio (a write would throw) and its marks have not played.
    const ending = call.signal;
    if (ending.aborted) queueMicrotask(() => this.#onCallEnding());
    else ending.addEventListener('abort', () => this.#onCallEnding(), { once: true });
  }

  /** A snapshot of the bridge's counters. */
  get stats(): BridgeStats {
    return { ...this.#stats };
  }

  /** The protocol's ids of this stream, e.g. `{ streamSid, callSid }`. */
  get ids(): Readonly<Record<string, string>> {
    return this.#session.ids;
  }

  // Caller to bot.

  readonly #onAudio = (frame: AudioFrame): void => {
    const target = this.#protocol.callerFormat;
    let bytes = frame.payload;
    if (!sameFormat(frame.format, target)) {
      if (this.#converter === undefined || !sameFormat(this.#converter.from, frame.format)) {
        this.#converter?.dispose();
        this.#converter = createConverter(frame.format, target);
      }
      bytes = this.#converter.push(bytes);
    }
    const chunk = this.#chunk;
    let at = 0;
    while (at < bytes.length) {
      const n = bytes.copy(chunk, this.#chunkFill, at);
      at += n;
      this.#chunkFill += n;
      if (this.#chunkFill === chunk.length) {
        this.#chunkFill = 0;
        this.#sendAudio(chunk);
      }
    }
  };

  readonly #onDtmf = (digit: string): void => {
    if (this.#state === 'connecting') this.#pending.push({ digit });
    else if (this.#state === 'open') this.#send(this.#session.dtmf(digit));
  };

  /** One chunk of caller audio (`chunk` is reused: encode or copy it now). */
  #sendAudio(chunk: Buffer): void {
    const chunkMs = this.#protocol.chunkMs;
    if (this.#state === 'connecting') {
      this.#pending.push({ audio: Buffer.from(chunk) });
      if (++this.#pendingAudio * chunkMs > this.#options.connectBufferMs) {
        // Keep the newest: the words just before the bot answers are the ones it can still use.
        this.#pending.splice(
          this.#pending.findIndex((p) => 'audio' in p),
          1,
        );
        this.#pendingAudio--;
        this.#dropped('the bot is still connecting');
      }
      return;
    }
    if (this.#state !== 'open') return;
    const now = performance.now();
    this.#sendPing(now);
    const backlogMs = this.#backlogMs(now);
    if (backlogMs > this.#options.maxBotBacklogMs) {
      if (this.#dropping === undefined) {
        this.#warn({
          code: 'PEER_NOT_READING',
          message: `the bot is not reading (${Math.round(backlogMs)} ms of caller audio waiting): caller audio is dropped until it reads`,
        });
        this.#notReadingTimer = setTimeout(() => this.#notReadingCheck(), this.#options.botNotReadingTimeoutMs);
      }
      this.#dropped('the bot is not reading');
      return;
    }
    this.#droppingOver();
    this.#sendMedia(chunk);
  }

  /**
   * Caller audio the bot has not taken, ms: what waits in our send buffer (bytes read as media
   * messages), or how much longer than the shortest round trip seen a ping has gone unanswered,
   * whichever is more. The send buffer alone shows it late: the kernel's socket buffers,
   * megabytes on Linux, fill first, minutes of media at Twilio's rate. A WebSocket peer answers a
   * ping when it reads; a bot that has never answered one is judged by the send buffer only.
   */
  #backlogMs(now: number): number {
    const buffered = this.#mediaMessageBytes === 0 ? 0 : (this.#ws.bufferedAmount / this.#mediaMessageBytes) * this.#protocol.chunkMs;
    const ping = this.#ping;
    const unanswered = this.#pongs > 0 && ping !== undefined ? now - ping.sentAt - this.#minRttMs : 0;
    return Math.max(buffered, unanswered);
  }

  /**
   * A ping every half `maxBotBacklogMs` (at least two chunks) while none is unanswered, sent with
   * the caller's audio (no timer of its own). Its payload is numbered: only its own pong answers it.
   */
  #sendPing(now: number): void {
    if (this.#ping !== undefined) return;
    if (now - this.#lastPingAt < Math.max(this.#options.maxBotBacklogMs / 2, 2 * this.#protocol.chunkMs)) return;
    this.#lastPingAt = now;
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(++this.#pingCount >>> 0);
    this.#ping = { payload, sentAt: now };
    this.#ws.ping(payload);
  }

  #onPong(data: Buffer): void {
    const ping = this.#ping;
    if (ping === undefined || !ping.payload.equals(data)) return; // a pong the bot sent on its own
    this.#ping = undefined;
    this.#pongs++;
    this.#minRttMs = Math.min(this.#minRttMs, performance.now() - ping.sentAt);
  }

  /** `botNotReadingTimeoutMs` after the bot stopped reading: still not reading ends the call. */
  #notReadingCheck(): void {
    this.#notReadingTimer = undefined;
    if (this.#state !== 'open' || this.#dropping === undefined) return;
    if (this.#backlogMs(performance.now()) <= this.#options.maxBotBacklogMs) {
      this.#droppingOver();
      return;
    }
    const detail = `the bot did not read for ${this.#options.botNotReadingTimeoutMs} ms`;
    this.#finish('bot-not-reading', detail, audioSocketError(ErrorCodes.PEER_NOT_READING, detail));
  }

  #sendMedia(chunk: Buffer): void {
    const message = this.#session.media(chunk, this.#mediaMs);
    this.#mediaMs += this.#protocol.chunkMs;
    if (this.#mediaMessageBytes === 0) this.#mediaMessageBytes = Buffer.byteLength(message);
    this.#stats.chunksToBot++;
    this.#send(message);
  }

  /** One chunk of caller audio was dropped: counted now, reported when the episode ends. */
  #dropped(why: string): void {
    (this.#dropping ??= { ms: 0, why }).ms += this.#protocol.chunkMs;
    this.#stats.callerDroppedMs += this.#protocol.chunkMs;
    // Dropped after the stream started, the audio still takes its time on the media clock.
    if (this.#state === 'open') this.#mediaMs += this.#protocol.chunkMs;
  }

  #droppingOver(): void {
    const d = this.#dropping;
    if (d === undefined) return;
    clearTimeout(this.#notReadingTimer);
    this.#notReadingTimer = undefined;
    this.#dropping = undefined;
    this.#warn({
      code: 'CALLER_AUDIO_DROPPED',
      message: `${d.ms} ms of caller audio never reached the bot: ${d.why}`,
      droppedMs: d.ms,
    });
  }

  /** Reports a warning; unheard, it becomes a process warning once per code, as a call's do. */
  #warn(warning: BridgeWarning): void {
    if (this.listenerCount('warning') > 0) {
      this.emit('warning', warning);
      return;
    }
    if (this.#unheard.has(warning.code)) return;
    this.#unheard.add(warning.code);
    process.emitWarning(`audiosocket gateway: call ${this.call.uuid}: ${warning.message}`, { code: warning.code });
  }

  #send(message: BotMessage): void {
    this.#stats.messagesToBot++;
    this.#ws.send(message);
  }

  #onOpen(): void {
    if (this.#state !== 'connecting') return;
    this.#state = 'open';
    for (const m of this.#session.start()) this.#send(m);
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingAudio = 0;
    for (const p of pending) {
      if ('digit' in p) this.#send(this.#session.dtmf(p.digit));
      else this.#sendMedia(p.audio);
    }
    this.#droppingOver();
    this.emit('botConnected', { ids: this.#session.ids, connectMs: performance.now() - this.#started });
  }

  // Bot to caller.

  #onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#state !== 'open') return;
    this.#stats.messagesFromBot++;
    const command = this.#session.decode(data, isBinary);
    const call = this.call;
    switch (command.type) {
      case 'media':
        this.#stats.botAudioMs += command.audio.length / bytesPerMs(this.#protocol.botFormat);
        if (command.audio.length > 0) call.write(command.audio, this.#protocol.botFormat);
        return;
      case 'mark': {
        this.#stats.marks++;
        const message = command.name;
        void call.mark(message).then(() => {
          // Echoed whether it played or was cleared, as Twilio does; not once the stream is over.
          if (this.#state !== 'open') return;
          this.#stats.marksEchoed++;
          this.#send(this.#session.markPlayed(message));
        });
        return;
      }
      case 'clear':
        this.#stats.clears++;
        this.#stats.clearedMs += call.flush();
        return;
      case 'ignore':
        return;
      case 'invalid':
        this.#stats.invalidFromBot++;
        this.#warn({ code: command.code, message: `bot message not used: ${command.message}` });
        return;
    }
  }

  // Ends.

  #onSocketError(err: Error): void {
    if (this.#state === 'connecting') {
      const detail = /Unexpected server response: (\d+)/.exec(err.message);
      this.#finish(
        'bot-unreachable',
        detail
          ? `bot refused the upgrade: HTTP ${detail[1]}${detail[1] === '404' ? ` (nothing at ${new URL(this.url).pathname}: check the path of the bot's URL)` : ''}`
          : `bot unreachable: ${connectErrorText(err)}`,
        audioSocketError(ErrorCodes.SOCKET, `cannot connect to the bot at ${this.url}: ${err.message}`, err),
      );
    } else if (this.#state === 'open') {
      this.#finish('bot-error', `bot connection failed: ${connectErrorText(err)}`, audioSocketError(ErrorCodes.SOCKET, err.message, err));
    }
  }

  #onClose(code: number, reason: string): void {
    if (this.#state === 'connecting') this.#finish('bot-unreachable', `bot closed before the stream opened (${code})`);
    else if (this.#state === 'open') {
      if (code === 1006) {
        // No close frame: the bot's process or its network went away (ws reports 1006), a failure, not a close.
        const message = 'the bot connection was lost without a close frame (1006)';
        this.#finish('bot-error', message, audioSocketError(ErrorCodes.SOCKET, message), { code, reason });
        return;
      }
      // 1005: the bot closed without a status code (ws sets it when the close frame has none).
      // The reason is the bot's text: quoted, so that it cannot break a log line.
      const what = code === 1005 ? '1005: no status given' : `${code}${reason ? ` ${JSON.stringify(reason)}` : ''}`;
      this.#finish('bot-closed', `bot closed the stream (${what})`, undefined, { code, reason });
    }
  }

  #onCallEnding(): void {
    if (this.#state !== 'ending') this.#finish('caller-hangup', `call ended: ${this.call.endReason ?? 'closed'}`);
  }

  /** The one close path: stop both sides, report once both are closed. */
  #finish(reason: BridgeEndReason, detail: string, error?: AudioSocketError, botClose?: BridgeEnd['botClose']): void {
    if (this.#state === 'ending') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'ending';
    this.#end = { reason, detail, ...(error ? { error } : {}), ...(botClose ? { botClose } : {}) };
    this.#droppingOver();
    this.call.off('audio', this.#onAudio);
    this.call.off('dtmf', this.#onDtmf);
    this.#converter?.dispose();
    void this.#closeBoth(reason, wasOpen);
  }

  async #closeBoth(reason: BridgeEndReason, wasOpen: boolean): Promise<void> {
    const ws = this.#ws;
    const call = this.call;
    const botClosed = new Promise<void>((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) resolve();
      else ws.once('close', () => resolve());
    });
    if (reason === 'caller-hangup') {
      if (wasOpen) {
        this.#send(this.#session.stop());
        ws.close(1000, 'caller hung up');
        const cut = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
        void botClosed.then(() => clearTimeout(cut));
      } else ws.terminate();
    } else if (reason === 'bot-closed') {
      // What the bot already sent plays out, then the dialplan goes on (as after <Connect><Stream>).
      await call.end();
    } else {
      if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
      if (reason === 'bot-unreachable' && this.#options.fallbackFile !== undefined && call.connected) {
        try {
          await call.playFile(this.#options.fallbackFile);
        } catch (err) {
          this.#warn({ code: 'FALLBACK_FAILED', message: `fallback ${this.#options.fallbackFile} not played: ${(err as Error).message}` });
        }
      }
      await call.end();
    }
    const [callEnd] = await Promise.all([call.closed, botClosed]);
    const end: BridgeEnd = { ...this.#end!, callEnd, stats: this.stats };
    this.emit('end', end);
    this.#resolve(end);
  }
}

/**
 * Bridges one call (either transport) to one voice bot: opens a WebSocket client connection
 * to `options.url` and relays in the bot's protocol (Twilio Media Streams by default) until
 * either side ends. `await bridgeCall(call, opts).closed` in a call handler serves one bot.
 *
 * @example
 * createServer((call) => bridgeCall(call, { url: 'wss://bot.example.com/media' }).closed);
 */
export function bridgeCall(call: Call, options: BridgeOptions): BotBridge {
  if (options === null || typeof options !== 'object' || options.url === undefined) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, "bridgeCall needs options.url, the bot's ws:// or wss:// URL");
  }
  let url: URL;
  try {
    url = new URL(String(options.url));
  } catch {
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      `bot URL ${JSON.stringify(String(options.url))} is not a URL; use ws://HOST:PORT/PATH or wss://…`,
    );
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `bot URL must start with ws:// or wss://, got ${url.protocol}//`);
  }
  return new BotBridge(call, options);
}
