/**
 * The chan_websocket server: accepts Asterisk's WebSocket connections (`Dial(WebSocket/<conn>)`
 * with `websocket_client.conf`, or ARI externalMedia with `transport=websocket`), checks the
 * `media` subprotocol, waits for MEDIA_START and hands out one {@link MediaConnection} per call.
 *
 * Built on `ws` in `noServer` mode so it can own an HTTP server ({@link WebSocketMediaServer.listen}),
 * share one (`server` option) or be fed upgrades by hand ({@link WebSocketMediaServer.handleUpgrade}).
 * Also {@link connectIncoming} for `Dial(WebSocket/INCOMING)`, where the app connects to Asterisk.
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { AudioSocketError, audioSocketError, ErrorCodes } from '../errors.js';
import { Admission, type RefusalReason } from '../admission.js';
import {
  MediaConnection,
  rawToBuffer,
  resolveConnectionOptions,
  wsError,
  type MediaClose,
  type MediaConnectionOptions,
  type MediaPeer,
} from './connection.js';
import { detectFormat, MEDIA_SUBPROTOCOL, parseEvent, type ControlFormat, type MediaStart } from '../protocol/websocket.js';

/** Called once per call, when MEDIA_START has arrived. A throw or rejection ends that call only. */
export type MediaHandler = (connection: MediaConnection) => unknown;

/** Options of {@link WebSocketMediaServer}. Every field is optional. */
export interface MediaServerOptions extends MediaConnectionOptions {
  /** Default host for {@link WebSocketMediaServer.listen}. Default `127.0.0.1`. */
  host?: string;
  /** Default port for {@link WebSocketMediaServer.listen}. Default 8765 (the port in Asterisk's sample `websocket_client.conf`). */
  port?: number;
  /**
   * Accept only this request path (exact, query ignored), e.g. `/media`. Default: any path and
   * query, since the user writes the `uri` in `websocket_client.conf` and `v()` adds parameters.
   */
  path?: string;
  /**
   * Serve upgrades of this existing HTTP(S) server instead of listening ourselves. Requests for
   * another `path` are left to its other `upgrade` listeners.
   */
  server?: http.Server;
  /** Milliseconds to wait for MEDIA_START after the upgrade. Default 5000; 0 disables. */
  handshakeTimeout?: number;
  /** Largest message accepted from Asterisk, bytes (ws `maxPayload`); a larger one ends that connection. Default 262144. */
  maxPayload?: number;
  /**
   * Most calls at once (connections upgraded or live); beyond it upgrades get HTTP 503. A request
   * that has not passed `credentials`/`authenticate` holds no slot. Default unlimited.
   */
  maxConnections?: number;
  /** Addresses and CIDR ranges allowed to connect (IPv4 and IPv6); others get HTTP 403 before anything else is read. Default: everyone. */
  allow?: string | readonly string[];
  /**
   * HTTP Basic credentials every upgrade must carry, as Asterisk sends them when `username` and
   * `password` are set in `websocket_client.conf` (`res/res_http_websocket.c` sends them with the
   * first request). Compared in constant time; wrong or missing: HTTP 401.
   */
  credentials?: { username: string; password: string };
  /**
   * Checks a request before the upgrade, after `credentials` (any other scheme: a token in the
   * URL, a header). False or a throw: HTTP 401.
   */
  authenticate?: (request: IncomingMessage) => boolean;
  /**
   * Serve `wss://`: the certificate and key (and any other option of `https.createServer`) of the
   * HTTPS server {@link WebSocketMediaServer.listen} starts. A plain `ws://` request to it fails
   * its TLS handshake. Replace them while running with {@link WebSocketMediaServer.setSecureContext}.
   */
  tls?: SecureContextOptions & TlsOptions;
  /** @internal The admission shared with an AudioSocket listener (`createServer`'s `websocket`). */
  admission?: Admission;
}

/** Options of {@link WebSocketMediaServer.listen}. */
export interface MediaListenOptions {
  host?: string;
  port?: number;
  /** Aborting closes the server. */
  signal?: AbortSignal;
}

/** A connection that did not become a call. */
export interface MediaHandshakeFailure {
  /**
   * Before the upgrade (answered with an HTTP error):
   * - `subprotocol` (400): the request did not offer `media`.
   * - `path` (404): another path than the configured one.
   * - `not-websocket` (on the server's own listener): an HTTP request without a WebSocket
   *   upgrade (answered 426), or bytes that are not valid HTTP (answered 400; an AudioSocket
   *   client's, `AudioSocket()` pointed at this port, is named as such); on a `tls` listener
   *   also plain HTTP or bytes that are not TLS. `url` is empty but for the 426.
   * (Refusals by admission, 401, 403 and 503, are `connectionRejected` events.)
   *
   * After the upgrade (WebSocket closed):
   * - `closed-before-start`: the peer closed before MEDIA_START.
   * - `timeout`: no MEDIA_START within `handshakeTimeout` (closed with 1002).
   * - `protocol-error`: binary data, another event or a malformed message before MEDIA_START (closed with 1002).
   * - `unsupported-format`: MEDIA_START names a codec no call can carry (g722, opus, ...; closed
   *   with 1003). Reported by the `AudioSocketServer`, which builds the call, not by this server alone.
   */
  reason: 'subprotocol' | 'path' | 'not-websocket' | 'closed-before-start' | 'timeout' | 'protocol-error' | 'unsupported-format';
  remoteAddress: string;
  remotePort: number;
  url: string;
  error?: AudioSocketError;
}

/** A request turned away before it became a WebSocket. */
export interface MediaRejection {
  /**
   * - `not-allowed` (403): outside `allow`.
   * - `unauthorized` (401): wrong or missing `credentials`, or `authenticate` said no.
   * - `max-calls` (503): every call slot is taken (`maxConnections`, or the server's `maxCalls`).
   * - `server-closing` (503).
   */
  reason: RefusalReason;
  remoteAddress: string;
  remotePort: number;
  url: string;
}

/** Events of a {@link WebSocketMediaServer}. */
export interface MediaServerEvents {
  listening: [address: AddressInfo];
  /** A new call (MEDIA_START has arrived). */
  connection: [connection: MediaConnection];
  /** A call's WebSocket closed. */
  connectionClose: [connection: MediaConnection, info: MediaClose];
  handshakeFailed: [failure: MediaHandshakeFailure];
  /** An upgrade refused by admission (allow-list, credentials, call slots, closing). */
  connectionRejected: [rejection: MediaRejection];
  /** The handler threw or rejected; that connection was closed with 1011. Without a listener: `process.emitWarning`. */
  handlerError: [error: unknown, connection: MediaConnection];
  /** A server-level error (e.g. the port is in use). */
  error: [error: Error];
  close: [];
}

/** Server counters. */
export interface MediaServerStats {
  activeConnections: number;
  pendingHandshakes: number;
  totalConnections: number;
  handshakeFailures: number;
  /** Upgrades refused by admission. */
  rejected: number;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
};

/** The HTTP answer to each refusal by admission. */
const REFUSAL: Record<RefusalReason, { status: number; text: string }> = {
  'not-allowed': { status: 403, text: 'not allowed' },
  unauthorized: { status: 401, text: 'unauthorized' },
  'max-calls': { status: 503, text: 'too many calls' },
  'server-closing': { status: 503, text: 'server closing' },
};

function rejectUpgrade(socket: Duplex, status: number, message: string): void {
  if (socket.writable) {
    const body = `${message}\n`;
    const challenge = status === 401 ? 'WWW-Authenticate: Basic realm="audiosocket", charset="UTF-8"\r\n' : '';
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nConnection: close\r\n${challenge}Content-Type: text/plain\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** SHA-256 of a string: equal-length inputs for `timingSafeEqual`, whatever the lengths given. */
const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Checks the request's `Authorization: Basic` header against `username:password` in constant
 * time (the compared digests have one length, and both parts are always compared).
 */
export function basicAuthMatches(request: IncomingMessage, expected: { username: string; password: string }): boolean {
  const header = request.headers.authorization ?? '';
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  const given = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
  const colon = given.indexOf(':');
  const user = colon < 0 ? given : given.slice(0, colon);
  const pass = colon < 0 ? '' : given.slice(colon + 1);
  const userOk = timingSafeEqual(digest(user), digest(expected.username));
  const passOk = timingSafeEqual(digest(pass), digest(expected.password));
  return m !== null && colon >= 0 && userOk && passOk;
}

/** The subprotocols a request offers (`Sec-WebSocket-Protocol`, comma separated). */
function offeredProtocols(req: IncomingMessage): string[] {
  const h = req.headers['sec-websocket-protocol'];
  if (h === undefined) return [];
  return (Array.isArray(h) ? h.join(',') : h)
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}

function peerOf(req: IncomingMessage): MediaPeer {
  return {
    remoteAddress: req.socket.remoteAddress ?? '',
    remotePort: req.socket.remotePort ?? 0,
    url: req.url ?? '/',
    headers: req.headers,
  };
}

/** @internal The outcome of waiting for MEDIA_START on an open WebSocket. */
export type StartOutcome =
  | { ok: true; start: MediaStart; format: ControlFormat }
  | { ok: false; reason: 'closed-before-start' | 'timeout' | 'protocol-error'; error?: AudioSocketError };

/**
 * @internal Waits for MEDIA_START on `ws`. The first message must be text and parse as MEDIA_START
 * in either control format; anything else closes the WebSocket with 1002. `onOutcome` runs
 * synchronously inside the message event: `ws` emits every message of a TCP chunk in one loop, so
 * the connection's listeners must be attached before this returns, or audio right behind
 * MEDIA_START would be lost.
 */
export function awaitMediaStart(ws: WebSocket, timeoutMs: number, onOutcome: (o: StartOutcome) => void): void {
  {
    const resolve = onOutcome;
    let timer: NodeJS.Timeout | undefined;
    const done = (o: StartOutcome): void => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      ws.off('error', onError);
      if (!o.ok && o.reason !== 'closed-before-start') {
        if (ws.readyState === WebSocket.OPEN) ws.close(1002, o.reason === 'timeout' ? 'no MEDIA_START' : 'protocol error');
        setTimeout(() => ws.terminate(), 2000).unref();
      }
      resolve(o);
    };
    const fail = (reason: 'timeout' | 'protocol-error', error: AudioSocketError): void => done({ ok: false, reason, error });
    const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
      if (isBinary) {
        fail(
          'protocol-error',
          audioSocketError(ErrorCodes.PROTOCOL, `binary message (${rawToBuffer(data).length} bytes) before MEDIA_START`),
        );
        return;
      }
      const text = rawToBuffer(data).toString('utf8');
      try {
        const format = detectFormat(text);
        const event = parseEvent(text, format);
        if (event.event !== 'MEDIA_START') {
          const name = event.event === 'UNKNOWN' ? event.name : event.event;
          fail('protocol-error', audioSocketError(ErrorCodes.PROTOCOL, `expected MEDIA_START as the first message, got ${name}`));
          return;
        }
        const { event: _e, ...start } = event;
        done({ ok: true, start, format });
      } catch (err) {
        fail('protocol-error', err as AudioSocketError);
      }
    };
    const onClose = (): void => done({ ok: false, reason: 'closed-before-start' });
    const onError = (err: Error): void => fail('protocol-error', wsError(err));
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('error', onError);
    if (timeoutMs > 0 && timeoutMs !== Infinity) {
      timer = setTimeout(
        () => fail('timeout', audioSocketError(ErrorCodes.HANDSHAKE_TIMEOUT, `no MEDIA_START within ${timeoutMs} ms`)),
        timeoutMs,
      );
    }
  }
}

function checkCount(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (value !== Infinity && !Number.isInteger(value))) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `${name} must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

/**
 * Serves chan_websocket calls. Create with {@link createWebSocketMediaServer}; call
 * {@link listen}, pass `server`, or feed {@link handleUpgrade} yourself.
 */
export class WebSocketMediaServer extends EventEmitter<MediaServerEvents> {
  readonly #wss: WebSocketServer;
  readonly #handler: MediaHandler | undefined;
  readonly #options: MediaServerOptions;
  readonly #connOptions: ReturnType<typeof resolveConnectionOptions>;
  readonly #handshakeTimeout: number;
  readonly #admission: Admission;
  readonly #path: string | undefined;
  #http: http.Server | https.Server | undefined;
  #attached: http.Server | undefined;
  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.#upgrade(req, socket, head, true);
  readonly #live = new Set<MediaConnection>();
  readonly #pending = new Set<WebSocket>();
  #closing = false;
  #closePromise: Promise<void> | undefined;
  #stats = { totalConnections: 0, handshakeFailures: 0, rejected: 0 };

  constructor(handler?: MediaHandler, options: MediaServerOptions = {}) {
    super();
    this.#handler = handler;
    this.#options = options;
    this.#connOptions = resolveConnectionOptions(options);
    this.#handshakeTimeout = checkCount('handshakeTimeout', options.handshakeTimeout, 5000);
    this.#admission =
      options.admission ??
      new Admission({ allow: options.allow, maxCalls: checkCount('maxConnections', options.maxConnections, Infinity) });
    const maxPayload = checkCount('maxPayload', options.maxPayload, 262144);
    if (options.path !== undefined && (typeof options.path !== 'string' || !options.path.startsWith('/'))) {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `path must start with '/', got ${JSON.stringify(options.path)}`);
    }
    this.#path = options.path;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload,
      // Asterisk's client fails the connection on any Sec-WebSocket-Extensions header (WS_NOT_SUPPORTED).
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (protocols) => (protocols.has(MEDIA_SUBPROTOCOL) ? MEDIA_SUBPROTOCOL : false),
    });
    if (options.server) {
      this.#attached = options.server;
      options.server.on('upgrade', this.#onUpgrade);
    }
  }

  /** A snapshot of the counters. */
  get stats(): MediaServerStats {
    return {
      activeConnections: this.#live.size,
      pendingHandshakes: this.#pending.size,
      totalConnections: this.#stats.totalConnections,
      handshakeFailures: this.#stats.handshakeFailures,
      rejected: this.#stats.rejected,
    };
  }

  /** Live calls. */
  get connections(): ReadonlySet<MediaConnection> {
    return this.#live;
  }

  /** The address of the HTTP server we listen on, if any. */
  address(): AddressInfo | null {
    const a = (this.#http ?? this.#attached)?.address();
    return a && typeof a === 'object' ? a : null;
  }

  /** Starts our own HTTP server for the upgrades. Resolves with the bound address. */
  async listen(options: MediaListenOptions = {}): Promise<AddressInfo> {
    if (this.#closing) throw audioSocketError(ErrorCodes.SERVER_CLOSED, 'the server is closed');
    if (this.#http || this.#attached) throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'the server is already listening or attached');
    const host = options.host ?? this.#options.host ?? '127.0.0.1';
    const port = options.port ?? this.#options.port ?? 8765;
    const answer = (req: IncomingMessage, res: http.ServerResponse): void => {
      const peer = peerOf(req);
      this.#notWebSocket(
        peer,
        peer.url,
        `an HTTP ${req.method ?? ''} request without a WebSocket upgrade (answered 426): chan_websocket's ` +
          'client asks for "Upgrade: websocket" with subprotocol "media"',
      );
      res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket', Connection: 'Upgrade' });
      res.end('chan_websocket media server: WebSocket upgrade with subprotocol "media" required\n');
    };
    // With TLS, a peer that never completes the TLS handshake is cut by `handshakeTimeout` too.
    const tlsTimeout = this.#handshakeTimeout > 0 && this.#handshakeTimeout !== Infinity ? this.#handshakeTimeout : undefined;
    const server = this.#options.tls
      ? https.createServer({ handshakeTimeout: tlsTimeout, ...this.#options.tls }, answer)
      : http.createServer(answer);
    this.#http = server;
    server.on('upgrade', this.#onUpgrade);
    server.on('clientError', this.#onClientError);
    if (this.#options.tls) server.on('tlsClientError', this.#onTlsClientError);
    this.#cutSlowRequests(server);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        this.#http = undefined;
        reject(audioSocketError(ErrorCodes.SOCKET, `could not listen on ${host}:${port}: ${err.message}`, err));
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.emit('error', err));
        resolve();
      });
    });
    if (options.signal) {
      if (options.signal.aborted) void this.close();
      else options.signal.addEventListener('abort', () => void this.close(), { once: true });
    }
    const address = server.address() as AddressInfo;
    this.emit('listening', address);
    return address;
  }

  /** Replaces the TLS certificate and key of a `tls` listener (e.g. on SIGHUP); new connections use them. */
  setSecureContext(options: SecureContextOptions): void {
    if (!(this.#http instanceof https.Server)) {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'setSecureContext() needs a listener started with the tls option');
    }
    this.#http.setSecureContext(options);
  }

  /**
   * A connection to our own listener that has not upgraded within `handshakeTimeout` (sends
   * nothing, or its headers a byte at a time) is cut: it holds no call slot, and Node's own
   * request timeouts are checked only every 30 s. Oversized headers get Node's 431.
   */
  #cutSlowRequests(server: http.Server | https.Server): void {
    const ms = this.#handshakeTimeout;
    if (ms === 0 || ms === Infinity) return;
    const clock = this.#connOptions.clock;
    server.on(this.#options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
      const timer = clock.setTimer(() => socket.destroy(), ms);
      const done = (): void => clock.clearTimer(timer);
      socket.once('close', done);
      this.#upgrading.set(socket, done);
    });
  }

  readonly #upgrading = new WeakMap<Duplex, () => void>();

  /**
   * A TLS listener's failed handshakes that are a client's misconfiguration: plain HTTP (`ws://`
   * to a `wss://` port) or bytes that are not TLS at all (an AudioSocket client, say), reported as
   * `not-websocket`. Other TLS failures (certificates, ciphers) are the client's to report.
   */
  readonly #onTlsClientError = (err: Error & { code?: string }, socket: Socket): void => {
    const plainHttp = err.code === 'ERR_SSL_HTTP_REQUEST';
    if (!plainHttp && err.code !== 'ERR_SSL_WRONG_VERSION_NUMBER') return;
    this.#notWebSocket(
      socket,
      '',
      plainHttp
        ? 'a plain HTTP request on the TLS listener: the client must use wss:// (in Asterisk, uri = wss://... in websocket_client.conf)'
        : 'bytes that are not TLS on the TLS listener: a client without TLS, or an AudioSocket client (AudioSocket() belongs on the AudioSocket port)',
      err,
    );
  };

  /** Reports a connection to our own listener that is no WebSocket client at all (`not-websocket`). */
  #notWebSocket(
    peer: { remoteAddress?: string | undefined; remotePort?: number | undefined },
    url: string,
    message: string,
    cause?: Error,
  ): void {
    this.#failed({
      reason: 'not-websocket',
      remoteAddress: peer.remoteAddress ?? '',
      remotePort: peer.remotePort ?? 0,
      url,
      error: audioSocketError(ErrorCodes.PROTOCOL, message, cause),
    });
  }

  /**
   * Node's `clientError` on our own listener, answered as Node's default does (431 for oversized
   * headers, 413 for oversized chunk extensions, 408 for a timeout, else 400), but only before
   * anything was written on the connection: after an answer it is closed. Bytes that are not
   * valid HTTP are also reported as a failed handshake (`not-websocket`), once per connection;
   * an AudioSocket client (`AudioSocket()` pointed at this port) is named as such.
   */
  readonly #onClientError = (err: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex): void => {
    const tcp = socket as Socket;
    const code = err.code ?? '';
    const status =
      code === 'HPE_HEADER_OVERFLOW'
        ? 431
        : code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
          ? 413
          : code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? 408
            : 400;
    // Reported once per connection: not after an answer to an earlier request on it (a 426).
    if (status === 400 && code.startsWith('HPE_') && tcp.writable && tcp.bytesWritten === 0) {
      const raw = err.rawPacket;
      // The AudioSocket UUID message begins 01 00 10 (kind 0x01, length 16).
      const audioSocket = raw !== undefined && raw.length >= 3 && raw[0] === 0x01 && raw[1] === 0x00 && raw[2] === 0x10;
      this.#notWebSocket(
        tcp,
        '',
        audioSocket
          ? 'an AudioSocket client (its UUID message) on the chan_websocket port: AudioSocket() and Dial(AudioSocket/...) belong on the AudioSocket port'
          : `not a valid HTTP request (${code}): chan_websocket opens a WebSocket with an HTTP upgrade`,
        err,
      );
    }
    if (tcp.writable && tcp.bytesWritten === 0) rejectUpgrade(socket, status, STATUS_TEXT[status] ?? 'Bad Request');
    else socket.destroy();
  };

  /**
   * Handles one HTTP upgrade (for `noServer` use: call it from your server's `upgrade` event).
   * Checks path, admission (allow-list, closing), subprotocol, credentials, then takes a call
   * slot, and upgrades.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#upgrade(req, socket, head, false);
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, fromEvent: boolean): void {
    this.#upgrading.get(socket)?.();
    const peer = peerOf(req);
    const refuse = (reason: MediaHandshakeFailure['reason'], status: number, message: string, error?: AudioSocketError): void => {
      this.#failed({ reason, remoteAddress: peer.remoteAddress, remotePort: peer.remotePort, url: peer.url, ...(error ? { error } : {}) });
      rejectUpgrade(socket, status, message);
    };
    const turnAway = (reason: RefusalReason): void => {
      this.#stats.rejected++;
      this.emit('connectionRejected', { reason, remoteAddress: peer.remoteAddress, remotePort: peer.remotePort, url: peer.url });
      rejectUpgrade(socket, REFUSAL[reason].status, REFUSAL[reason].text);
    };
    if (this.#path !== undefined) {
      const pathname = new URL(peer.url, 'http://localhost').pathname;
      if (pathname !== this.#path) {
        // On a shared server, another upgrade listener may own that path.
        if (fromEvent && this.#attached && this.#attached.listenerCount('upgrade') > 1) return;
        refuse('path', 404, `no media endpoint at ${pathname}`);
        return;
      }
    }
    const refusal = this.#closing ? 'server-closing' : this.#admission.screen(peer.remoteAddress);
    if (refusal !== undefined) {
      turnAway(refusal);
      return;
    }
    if (!offeredProtocols(req).includes(MEDIA_SUBPROTOCOL)) {
      refuse(
        'subprotocol',
        400,
        'subprotocol "media" required',
        audioSocketError(
          ErrorCodes.SUBPROTOCOL,
          `the request offered subprotocols [${offeredProtocols(req).join(', ')}], not "${MEDIA_SUBPROTOCOL}" (set protocols = media in websocket_client.conf)`,
        ),
      );
      return;
    }
    if (!this.#authorized(req)) {
      turnAway('unauthorized');
      return;
    }
    if (!this.#admission.reserve()) {
      turnAway('max-calls');
      return;
    }
    // ws answers a malformed upgrade (a bad Sec-WebSocket-Key, ...) itself and never calls back:
    // the slot taken for it comes back when its socket closes.
    let upgraded = false;
    socket.once('close', () => upgraded || this.#admission.release());
    (socket as Socket).setNoDelay?.(true);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      upgraded = true;
      this.#accept(ws, peer);
    });
  }

  #authorized(req: IncomingMessage): boolean {
    const { credentials, authenticate } = this.#options;
    if (credentials !== undefined && !basicAuthMatches(req, credentials)) return false;
    if (authenticate === undefined) return true;
    try {
      return authenticate(req) === true;
    } catch {
      return false;
    }
  }

  #accept(ws: WebSocket, peer: MediaPeer): void {
    this.#pending.add(ws);
    awaitMediaStart(ws, this.#handshakeTimeout, (outcome) => this.#started(ws, peer, outcome));
  }

  #started(ws: WebSocket, peer: MediaPeer, outcome: StartOutcome): void {
    this.#pending.delete(ws);
    if (!outcome.ok) {
      this.#admission.release();
      this.#failed({
        reason: outcome.reason,
        remoteAddress: peer.remoteAddress,
        remotePort: peer.remotePort,
        url: peer.url,
        ...(outcome.error ? { error: outcome.error } : {}),
      });
      this.#checkClosed();
      return;
    }
    this.#startConnection(ws, peer, outcome.start, outcome.format);
  }

  #startConnection(ws: WebSocket, peer: MediaPeer, start: MediaStart, format: ControlFormat): void {
    const conn = new MediaConnection(ws, start, format, peer, this.#connOptions, false);
    this.#live.add(conn);
    this.#stats.totalConnections++;
    void conn.closed.then((info) => {
      this.#live.delete(conn);
      this.#admission.release();
      this.emit('connectionClose', conn, info);
      this.#checkClosed();
    });
    if (this.#closing) {
      void conn.hangup();
      return;
    }
    const onHandlerError = (err: unknown): void => {
      if (this.listenerCount('handlerError') > 0) this.emit('handlerError', err, conn);
      else process.emitWarning(`chan_websocket handler error on ${conn.id}: ${(err as Error)?.stack ?? String(err)}`);
      void conn.close(1011, 'handler error');
    };
    try {
      this.emit('connection', conn);
      const r = this.#handler?.(conn);
      if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(undefined, onHandlerError);
    } catch (err) {
      onHandlerError(err);
    }
  }

  #failed(f: MediaHandshakeFailure): void {
    this.#stats.handshakeFailures++;
    this.emit('handshakeFailed', f);
  }

  #checkClosed(): void {
    if (this.#closing && this.#live.size === 0 && this.#pending.size === 0) this.#finishClose?.();
  }

  #finishClose: (() => void) | undefined;

  /**
   * Stops accepting, hangs up every live call (HANGUP, then close), closes pending handshakes
   * and our HTTP server (not a shared one). Resolves when every connection is gone.
   */
  close(): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    this.#closing = true;
    this.#closePromise = new Promise<void>((resolve) => {
      this.#finishClose = () => {
        this.#finishClose = undefined;
        this.#wss.close();
        const httpServer = this.#http;
        this.#attached?.off('upgrade', this.#onUpgrade);
        const finish = (): void => {
          this.emit('close');
          resolve();
        };
        if (httpServer) {
          httpServer.close(() => finish());
          httpServer.closeAllConnections?.();
        } else finish();
      };
      for (const ws of this.#pending) ws.close(1001, 'server closing');
      for (const conn of this.#live) void conn.hangup();
      this.#checkClosed();
    });
    return this.#closePromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Creates a chan_websocket server; `handler` runs once per call, after MEDIA_START. */
export function createWebSocketMediaServer(handler?: MediaHandler, options: MediaServerOptions = {}): WebSocketMediaServer {
  return new WebSocketMediaServer(handler, options);
}

/** Options of {@link connectIncoming}. */
export interface ConnectIncomingOptions extends MediaConnectionOptions {
  /** Milliseconds to wait for the upgrade and then for MEDIA_START. Default 5000. */
  timeout?: number;
  /** Extra request headers (e.g. `Authorization` for Asterisk's HTTP server). */
  headers?: Record<string, string>;
  /** Largest message accepted, bytes. Default 262144. */
  maxPayload?: number;
}

/**
 * `Dial(WebSocket/INCOMING)` / ARI externalMedia with `connection_type=server`: Asterisk waits
 * for the app to connect to `ws://asterisk:8088/media/<connection id>` (the id is in the channel
 * variable `MEDIA_WEBSOCKET_CONNECTION_ID`). Connects with subprotocol `media`, waits for
 * MEDIA_START and resolves with the call.
 *
 * @throws AudioSocketError `SOCKET` when the connection or upgrade fails (Asterisk answers 404
 *   for an unknown id, 409 for an id already connected); `HANDSHAKE_TIMEOUT`/`PROTOCOL` when no
 *   valid MEDIA_START arrives.
 */
export function connectIncoming(url: string, options: ConnectIncomingOptions = {}): Promise<MediaConnection> {
  const timeout = options.timeout ?? 5000;
  const connOptions = resolveConnectionOptions(options);
  const u = new URL(url);
  const peer: MediaPeer = { remoteAddress: u.hostname, remotePort: Number(u.port) || 80, url: u.pathname + u.search, headers: {} };
  const ws = new WebSocket(url, [MEDIA_SUBPROTOCOL], {
    perMessageDeflate: false,
    handshakeTimeout: timeout,
    maxPayload: options.maxPayload ?? 262144,
    ...(options.headers ? { headers: options.headers } : {}),
  });
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      ws.off('open', onOpen);
      reject(audioSocketError(ErrorCodes.SOCKET, `could not connect to ${url}: ${err.message}`, err));
    };
    // Synchronously at 'open': MEDIA_START may be in the same TCP segment as the 101 response.
    const onOpen = (): void => {
      ws.off('error', onError);
      awaitMediaStart(ws, timeout, (outcome) => {
        if (!outcome.ok) {
          reject(outcome.error ?? audioSocketError(ErrorCodes.PROTOCOL, `${url} closed before MEDIA_START`));
          return;
        }
        resolve(new MediaConnection(ws, outcome.start, outcome.format, peer, connOptions, true));
      });
    };
    ws.once('error', onError);
    ws.once('open', onOpen);
  });
}
