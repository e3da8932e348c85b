/**
 * A simulated Asterisk: connects to an AudioSocket server the way Asterisk does (UUID first,
 * then audio and DTMF), and checks what the server sends against what a real Asterisk accepts
 * (docs/protocol.md#from-the-server and #split-messages). Use it to test a bot without a PBX.
 */
import net, { type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { AudioSocketFrame as AudioFrame } from './call.js';
import { abortedError, audioSocketError, ErrorCodes, type AbortError, type AudioSocketError, type ClientViolationCode } from '../errors.js';
import { encodeDtmfMessage, encodeMessage, encodeUuidMessage } from '../protocol/encoder.js';
import { isAudioKind, Kind, kindName, sampleRateOfKind, type AudioKind } from '../protocol/kinds.js';
import { MessageParser } from '../protocol/parser.js';
import { parseFormat } from '../audio/format.js';
import { SimulatedAsterisk } from '../simulated-asterisk.js';

/** Options of {@link connect}. */
export interface ConnectOptions {
  host?: string;
  port?: number;
  /** UUID to send; default a random v4. */
  uuid?: string;
  /** Send the UUID on connect (default true). `false` lets tests misbehave on purpose. */
  sendUuid?: boolean;
  /**
   * Behave like current Asterisk (20.17+/22.7+/23.1+): close the connection on the first message
   * that would end a real call (see {@link ClientViolation}). Default false: report and go on.
   */
  strict?: boolean;
  /** Give up connecting after this many ms (Asterisk uses 2000). Default 2000. */
  connectTimeout?: number;
  signal?: AbortSignal;
}

/** Something the server sent that a real Asterisk would not accept; `code` is one of {@link WarningCodes}, documented there. */
export interface ClientViolation {
  code: ClientViolationCode;
  message: string;
}

/** How the simulated call ended. */
export interface ClientClose {
  /**
   * - `server-hangup`: the server sent the hangup message.
   * - `server-close`: the server closed without a hangup message (old Asterisk would spin at 100% CPU).
   * - `client`: we closed ({@link AsteriskClient.hangup} / {@link AsteriskClient.reset}), or, under
   *   `strict`, on a violation (see `violation`).
   * - `error`: a socket error; see `error`.
   */
  by: 'server-hangup' | 'server-close' | 'client' | 'error';
  error?: Error;
  /** Under `strict`: the violation we closed the connection on, as current Asterisk would. */
  violation?: ClientViolation;
}

/** Events of an {@link AsteriskClient}. */
export interface ClientEvents {
  audio: [frame: AudioFrame];
  /** The server sent `00 00 00`. */
  hangup: [];
  /** A message of another kind (always also a violation). */
  message: [kind: number, payload: Buffer];
  violation: [violation: ClientViolation];
  close: [info: ClientClose];
}

/** Counters of a simulated call. */
export interface ClientStats {
  messagesIn: number;
  audioIn: number;
  bytesIn: number;
  audioBytesIn: number;
  messagesOut: number;
  bytesOut: number;
  violations: number;
}

/**
 * Asterisk polls 5 ms for the rest of a message before ending the call (`res/res_audiosocket.c`
 * `ast_audiosocket_receive_frame_with_hangup`; docs/protocol.md#split-messages).
 */
const PAYLOAD_GAP_MS = 5;

/** One simulated Asterisk call. Create with {@link connect}. */
export class AsteriskClient extends SimulatedAsterisk<ClientEvents, ClientViolation, ClientClose, ClientStats> {
  readonly uuid: string;
  readonly #socket: Socket;
  readonly #parser: MessageParser;
  readonly #strict: boolean;
  #gotHangup = false;
  #closedByUs = false;
  #strictClose: ClientViolation | undefined;
  #error: Error | undefined;
  #midSince = 0;
  #httpAnswer: string | undefined;

  /** @internal */
  constructor(socket: Socket, uuid: string, strict: boolean) {
    super({ messagesIn: 0, audioIn: 0, bytesIn: 0, audioBytesIn: 0, messagesOut: 0, bytesOut: 0, violations: 0 });
    this.#socket = socket;
    this.uuid = uuid;
    this.#strict = strict;
    this.#parser = new MessageParser((kind, payload) => this.#onMessage(kind, payload));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => {
      const cut = this.#parser.end();
      if (cut) this.#violation('TRUNCATED', `server closed in the middle of a message: ${cut.message}`);
      socket.end();
    });
    socket.on('error', (err) => {
      this.#error ??= err;
    });
    socket.on('close', () => {
      const info: ClientClose = {
        by: this.#gotHangup ? 'server-hangup' : this.#closedByUs ? 'client' : this.#error ? 'error' : 'server-close',
      };
      if (this.#error && info.by === 'error') info.error = this.#error;
      if (this.#strictClose !== undefined && info.by === 'client') info.violation = this.#strictClose;
      this._closed(info);
    });
  }

  /** True once the server sent the hangup message. */
  get hungUp(): boolean {
    return this.#gotHangup;
  }

  /**
   * The status line (e.g. `HTTP/1.1 400 Bad Request`) when the server answered our UUID in HTTP:
   * the address is a WebSocket or web port, not AudioSocket. Also a `FORBIDDEN_KIND` violation.
   */
  get httpAnswer(): string | undefined {
    return this.#httpAnswer;
  }

  /** True until the socket is closed or ending. */
  get connected(): boolean {
    return !this.#socket.destroyed && this.#socket.writable;
  }

  /** Sends one audio message (default kind 0x10), as Asterisk does: one write per message. */
  sendAudio(payload: Uint8Array, kind: AudioKind = Kind.SLIN): boolean {
    if (!isAudioKind(kind)) {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `sendAudio needs an audio kind 0x10-0x18, got ${kindName(kind)}`);
    }
    return this.sendRaw(encodeMessage(kind, payload));
  }

  /** Sends a DTMF digit (`0-9 * # A-D a-d X`), as Asterisk does at the end of a key press. */
  sendDtmf(digit: string): boolean {
    return this.sendRaw(encodeDtmfMessage(digit));
  }

  /** Sends arbitrary bytes (for fault tests: split messages, garbage, unknown kinds). */
  sendRaw(bytes: Uint8Array): boolean {
    if (!this.connected) return false;
    this._stats.messagesOut++;
    this._stats.bytesOut += bytes.length;
    return this.#socket.write(bytes);
  }

  /**
   * Sends `audio` in real time: frames of `frameMs` (default 20) of `kind`, frame k at
   * start + k x frameMs (no drift). The last frame may be shorter. Resolves when all are sent.
   */
  stream(audio: Uint8Array, options: { kind?: AudioKind; frameMs?: number; signal?: AbortSignal } = {}): Promise<number> {
    const kind = options.kind ?? Kind.SLIN;
    const frameMs = options.frameMs ?? 20;
    const size = Math.round((sampleRateOfKind(kind)! * frameMs) / 1000) * 2;
    return this._stream(audio, size, frameMs, options.signal, (frame) => void this.sendAudio(frame, kind));
  }

  /** The caller hangs up: closes like Asterisk does (FIN, no message). Resolves when closed. */
  hangup(): Promise<ClientClose> {
    this.#closedByUs = !this.#gotHangup;
    this.#socket.end();
    return this._killAfter2s(() => this.#socket.destroy());
  }

  /** Closes with a TCP reset (what Asterisk's close looks like when our audio is unread). */
  reset(): Promise<ClientClose> {
    this.#closedByUs = !this.#gotHangup;
    this.#socket.resetAndDestroy();
    return this.closed;
  }

  #onData(chunk: Buffer): void {
    if (this._stats.bytesIn === 0 && chunk.subarray(0, 5).toString('latin1') === 'HTTP/') {
      // An HTTP server answering our UUID as a bad request: the address is not an AudioSocket port.
      const status = chunk.toString('latin1', 0, Math.min(chunk.length, 80)).split('\r\n')[0]!;
      this.#httpAnswer = status;
      this._stats.bytesIn += chunk.length;
      // Reported, and the connection dropped, whatever `strict` says: an HTTP server closes it
      // anyway, and the close is the server's (it is not an AudioSocket server at all).
      this._violation({
        code: 'FORBIDDEN_KIND',
        message: `the server answered in HTTP ("${status}"): this port speaks HTTP or WebSocket, not AudioSocket`,
      });
      this.#socket.destroy();
      return;
    }
    this._stats.bytesIn += chunk.length;
    const now = performance.now();
    // Asterisk polls up to 5 ms for each further piece of a started message (docs/protocol.md#split-messages).
    if (this.#midSince !== 0 && now - this.#midSince > PAYLOAD_GAP_MS) {
      this.#violation(
        'SPLIT_MESSAGE',
        `the next piece of a message arrived ${(now - this.#midSince).toFixed(1)} ms after the previous one; Asterisk waits ${PAYLOAD_GAP_MS} ms and then ends the call`,
      );
    }
    try {
      this.#parser.push(chunk);
    } catch (err) {
      this.#violation('FORBIDDEN_KIND', (err as AudioSocketError).message);
      this.#socket.destroy();
      return;
    }
    this.#midSince = this.#parser.midMessage ? now : 0;
  }

  #onMessage(kind: number, payload: Buffer): void {
    this._stats.messagesIn++;
    if (this.#gotHangup) {
      this.#violation('AFTER_HANGUP', `received ${kindName(kind)} after the hangup message; Asterisk never reads it`);
      return;
    }
    if (kind === Kind.HANGUP) {
      this.#gotHangup = true;
      this.emit('hangup');
      // Asterisk closes as soon as it reads the hangup.
      this.#socket.end();
      return;
    }
    if (isAudioKind(kind)) {
      if (payload.length === 0) {
        this.#violation('ZERO_LENGTH_AUDIO', 'received zero-length audio; Asterisk 20.14+/21.9+/22.4+/23.0+ ends the call');
        return;
      }
      if (payload.length % 2 !== 0) {
        this.#violation('ODD_LENGTH', `received ${payload.length} bytes of audio; an odd length misaligns the samples`);
      }
      this._stats.audioIn++;
      this._stats.audioBytesIn += payload.length;
      const sampleRate = sampleRateOfKind(kind)!;
      this.emit('audio', { kind, sampleRate, format: parseFormat({ encoding: 'slin', sampleRate, channels: 1 }), payload });
      return;
    }
    this.emit('message', kind, payload);
    this.#violation('FORBIDDEN_KIND', `received ${kindName(kind)}; Asterisk accepts only audio and hangup and ends the call`);
  }

  #violation(code: ClientViolation['code'], message: string): void {
    const v = { code, message };
    this._violation(v);
    if (!this.#strict || code === 'ODD_LENGTH' || code === 'AFTER_HANGUP' || this.#socket.destroyed) return;
    // We close, as current Asterisk does, so the close is ours: unless the server had already
    // closed (a message cut by its close) or hung up.
    if (code !== 'TRUNCATED' && !this.#gotHangup) {
      this.#closedByUs = true;
      this.#strictClose = v;
    }
    this.#socket.destroy();
  }
}

/** Connects a simulated Asterisk call to `host:port` (default 127.0.0.1:9092) and sends the UUID. */
export function connect(options: ConnectOptions = {}): Promise<AsteriskClient> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 9092;
  const uuid = options.uuid ?? randomUUID();
  const uuidMessage = options.sendUuid === false ? null : encodeUuidMessage(uuid);
  return new Promise((resolve, reject) => {
    const aborted = (): AbortError => abortedError(`connecting to ${host}:${port}`, options.signal!);
    if (options.signal?.aborted) {
      reject(aborted());
      return;
    }
    const socket = net.connect({ host, port, noDelay: true });
    const timeout = options.connectTimeout ?? 2000;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(audioSocketError(ErrorCodes.CONNECT_TIMEOUT, `could not connect to ${host}:${port} within ${timeout} ms`));
    }, timeout);
    const onAbort = (): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(aborted());
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const fail = (err: Error): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(audioSocketError(ErrorCodes.SOCKET, `could not connect to ${host}:${port}: ${err.message}`, err));
    };
    socket.once('error', fail);
    socket.once('connect', () => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('error', fail);
      const client = new AsteriskClient(socket, uuid, options.strict ?? false);
      if (uuidMessage) client.sendRaw(uuidMessage);
      resolve(client);
    });
  });
}
