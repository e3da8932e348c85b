/**
 * The monitor page over HTTP: one HTML page with its script and style (plain files in
 * `src/monitor/page/`, shipped as they are), a live feed over Server-Sent Events, and a call's
 * events as JSON. {@link createMonitor} gives a request handler to mount in your own HTTP server;
 * {@link serveMonitor} listens on its own port.
 */
import http from 'node:http';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP, type AddressInfo } from 'node:net';
import { isLoopback } from '../admission.js';
import { loadResampler, resamplerReady } from '../audio/resample.js';
import type { AudioSocketServer } from '../server.js';
import { MonitorState, type MonitorStateOptions } from './state.js';

/** Browsers listening in at once, over all calls. */
const MAX_LISTENERS = 8;

/** Options of {@link createMonitor}. */
export interface MonitorOptions extends MonitorStateOptions {
  /**
   * Required on every request but the script and style (`?token=...` in the URL, or
   * `Authorization: Bearer ...`); others get HTTP 401. Default: none (then only requests whose
   * `Host` is an IP address or `localhost` are served, against DNS rebinding).
   */
  token?: string;
  /** Where the monitor is mounted in your server, ending in `/`. Default `/`. */
  basePath?: string;
  /** A browser with more than this many feed bytes unsent (it stopped reading) is dropped. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** A browser whose feed stayed blocked this long is dropped, ms. Default 10000. */
  stallTimeoutMs?: number;
  /** Browsers connected to the feed at once; more get HTTP 503. Default 32. */
  maxClients?: number;
  /**
   * Listen-in: a call's detail view can play the call's audio, both directions (for debugging
   * a bot). Off by default; off loopback it needs the token like everything else.
   */
  listen?: boolean;
}

/** The monitor of one server: a request handler and its live feed. */
export interface Monitor {
  /**
   * Serves a request if its path is under `basePath` and returns `true`; returns `false`
   * (and leaves `res` alone) otherwise, so it can sit in front of your own routes.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse): boolean;
  /** The token the monitor requires, if any. */
  readonly token: string | undefined;
  /** Browsers on the live feed now. */
  readonly clients: number;
  /** Browsers dropped because they stopped reading the feed. */
  readonly droppedClients: number;
  /** Ends every feed, stops the timer and detaches from the server. */
  close(): void;
}

/** Options of {@link serveMonitor}. */
export interface ServeMonitorOptions extends MonitorOptions {
  /** Default 127.0.0.1. On any other address a token is required: `token`, or one generated. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
}

/** A monitor on its own HTTP listener. */
export interface MonitorServer extends Omit<Monitor, 'close'> {
  readonly address: AddressInfo;
  /** The page's URL, with `?token=` when a token is required. */
  readonly url: string;
  close(): Promise<void>;
}

const PAGE_DIR = new URL('../../src/monitor/page/', import.meta.url);

const FILES: Record<string, { file: string; type: string; open: boolean }> = {
  '': { file: 'index.html', type: 'text/html; charset=utf-8', open: false },
  'app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8', open: true },
  'app.css': { file: 'app.css', type: 'text/css; charset=utf-8', open: true },
};

const cache = new Map<string, Buffer>();
function pageFile(name: string): Buffer {
  let b = cache.get(name);
  if (b === undefined) cache.set(name, (b = readFileSync(new URL(name, PAGE_DIR))));
  return b;
}

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; media-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** JSON that stays data wherever it lands: no `<`, `>` or `&`, no line separators. */
const json = (value: unknown): string =>
  JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** A token for the monitor: 24 random bytes, URL-safe. */
export function generateMonitorToken(): string {
  return randomBytes(24).toString('base64url');
}

interface Client {
  res: http.ServerResponse;
  blockedSince: number | undefined;
}

function send(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS }).end(`${text}\n`);
}

/**
 * The monitor of `server`, as a request handler to mount in an HTTP server you run:
 *
 * ```ts
 * const monitor = createMonitor(server, { token: process.env.MONITOR_TOKEN });
 * http.createServer((req, res) => monitor.handle(req, res) || res.writeHead(404).end()).listen(8080);
 * ```
 *
 * It listens to the server's calls from now on (and those already up). It never runs per frame:
 * a monitored call checks one flag more per frame, counts frames that left late, and takes the
 * peak of one frame each way per update (docs/monitor.md, "What it costs").
 * A browser that stops reading is dropped, never buffered without bound.
 */
export function createMonitor(server: AudioSocketServer, options: MonitorOptions = {}): Monitor {
  const base = options.basePath ?? '/';
  if (!base.startsWith('/') || !base.endsWith('/')) throw new TypeError(`basePath must start and end with /, got ${JSON.stringify(base)}`);
  const token = options.token === '' ? undefined : options.token;
  const tokenDigest = token === undefined ? undefined : digest(token);
  const maxBuffered = options.maxBufferedBytes ?? 1 << 20;
  const stallMs = options.stallTimeoutMs ?? 10_000;
  const maxClients = options.maxClients ?? 32;
  const state = new MonitorState(server, options);
  const clients = new Set<Client>();
  let dropped = 0;
  let listening = 0;
  let closed = false;

  const drop = (c: Client): void => {
    clients.delete(c);
    dropped++;
    c.res.destroy();
  };
  const write = (c: Client, chunk: string, now: number): void => {
    if (c.res.writableLength > maxBuffered || (c.blockedSince !== undefined && now - c.blockedSince > stallMs)) {
      drop(c);
      return;
    }
    if (!c.res.write(chunk) && c.blockedSince === undefined) {
      c.blockedSince = now;
      c.res.once('drain', () => (c.blockedSince = undefined));
    }
  };
  let lastTick = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    // With no page open, the state still moves on (totals, ended calls) but once a second.
    if (clients.size === 0 && now - lastTick < 1000) return;
    lastTick = now;
    const tick = state.tick(now);
    if (clients.size === 0) return;
    const chunk = `event: tick\ndata: ${json(tick)}\n\n`;
    for (const c of clients) write(c, chunk, now);
  }, state.intervalMs);
  timer.unref();

  const authorized = (req: http.IncomingMessage, url: URL): boolean => {
    if (tokenDigest === undefined) {
      // No token: only a browser that reached us by address or as localhost, never through a
      // DNS name an attacker's page could rebind to 127.0.0.1.
      const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
      return isIP(host) !== 0 || host === 'localhost' || host.endsWith('.localhost');
    }
    const auth = req.headers.authorization;
    const given = url.searchParams.get('token') ?? (auth?.startsWith('Bearer ') ? auth.slice(7) : undefined);
    return given !== undefined && timingSafeEqual(digest(given), tokenDigest);
  };

  /** A call's audio as Server-Sent Events: slin 8 kHz mono, base64, each direction, every tick. */
  const listenIn = (req: http.IncomingMessage, res: http.ServerResponse, id: number): void => {
    if (options.listen !== true) return send(res, 403, 'listen-in is off: start the monitor with --monitor-listen (listen: true)');
    if (listening >= MAX_LISTENERS) return send(res, 503, `too many listeners (${MAX_LISTENERS})`);
    if (!resamplerReady()) {
      // Listen-in converts every call to slin 8 kHz: it needs the resampler, which a server
      // created with `preloadWasm: false` has not loaded.
      loadResampler()
        .then(
          () => {
            if (!res.destroyed && res.socket?.destroyed === false) listenIn(req, res, id);
          },
          (err: unknown) => send(res, 503, `listen-in needs the resampler, which could not be loaded: ${String(err)}`),
        )
        .catch(() => res.destroy());
      return;
    }
    const handle = state.listen(id);
    if (handle === undefined) return send(res, 404, 'no such live call');
    listening++;
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no' });
    res.socket?.setNoDelay(true);
    const every = setInterval(() => {
      if (handle.ended) {
        res.end('event: end\ndata: {}\n\n');
        return stop();
      }
      // A listener that does not read is dropped, not buffered without bound.
      if (res.writableLength > maxBuffered) return (res.destroy(), stop());
      res.write(`event: audio\ndata: ${json(handle.take())}\n\n`);
    }, state.intervalMs);
    let stopped = false;
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      listening--;
      clearInterval(every);
      handle.stop();
    };
    req.once('close', stop);
    res.once('close', stop);
    res.on('error', stop);
  };

  const feed = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (clients.size >= maxClients) return send(res, 503, `too many monitor clients (${maxClients})`);
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    const c: Client = { res, blockedSince: undefined };
    clients.add(c);
    const forget = (): void => void clients.delete(c);
    req.once('close', forget);
    res.once('close', forget);
    res.on('error', forget);
    write(c, `retry: 2000\nevent: hello\ndata: ${json({ ...state.hello(), listen: options.listen === true })}\n\n`, Date.now());
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://monitor.invalid');
    } catch {
      send(res, 400, 'bad request URL');
      return true;
    }
    const path = url.pathname;
    if (path === base.slice(0, -1) && base !== '/') {
      res.writeHead(308, { location: `${base}${url.search}` }).end();
      return true;
    }
    if (!path.startsWith(base)) return false;
    try {
      if (closed) return (send(res, 503, 'monitor closed'), true);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return (send(res, 405, 'the monitor only answers GET'), true);
      }
      const rest = path.slice(base.length);
      const file = FILES[rest];
      if (file !== undefined && file.open) {
        res.writeHead(200, { 'content-type': file.type, ...SECURITY_HEADERS }).end(pageFile(file.file));
        return true;
      }
      if (!authorized(req, url)) {
        if (tokenDigest === undefined) send(res, 403, 'the monitor answers requests to an IP address or localhost only');
        else send(res, 401, 'the monitor needs its token: add ?token=... to the URL');
        return true;
      }
      if (file !== undefined) {
        res.writeHead(200, { 'content-type': file.type, ...SECURITY_HEADERS }).end(pageFile(file.file));
        return true;
      }
      if (rest === 'events') return (feed(req, res), true);
      const l = /^listen\/(\d{1,9})$/.exec(rest);
      if (l) return (listenIn(req, res, Number(l[1])), true);
      const m = /^calls\/(\d{1,9})\.json$/.exec(rest);
      if (m) {
        const events = state.eventsOf(Number(m[1]));
        if (events === undefined) return (send(res, 404, 'no such live call'), true);
        res.writeHead(200, { 'content-type': 'application/json', ...SECURITY_HEADERS }).end(json({ events }));
        return true;
      }
      send(res, 404, 'not found');
    } catch (err) {
      if (!res.headersSent) send(res, 500, `monitor: ${(err as Error).message}`);
      else res.destroy();
    }
    return true;
  };

  return {
    handle,
    token,
    get clients() {
      return clients.size;
    },
    get droppedClients() {
      return dropped;
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      state.close();
      for (const c of clients) c.res.end();
      clients.clear();
    },
  };
}

/**
 * The monitor of `server` on its own HTTP listener (default 127.0.0.1, a free port). On an
 * address other than loopback a token is always required: `options.token`, or a generated one
 * (see `token` and `url` on the result).
 */
export async function serveMonitor(server: AudioSocketServer, options: ServeMonitorOptions = {}): Promise<MonitorServer> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token || (isLoopback(host) ? undefined : generateMonitorToken());
  const monitor = createMonitor(server, { ...options, token, basePath: '/' });
  const listener = http.createServer((req, res) => {
    if (!monitor.handle(req, res)) send(res, 404, 'not found');
  });
  listener.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(options.port ?? 0, host, () => {
        listener.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    monitor.close();
    throw err;
  }
  const address = listener.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    handle: (req, res) => monitor.handle(req, res),
    token,
    address,
    url: `http://${shown}:${address.port}/${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`,
    get clients() {
      return monitor.clients;
    },
    get droppedClients() {
      return monitor.droppedClients;
    },
    close: () =>
      new Promise<void>((resolve) => {
        monitor.close();
        listener.close(() => resolve());
        listener.closeAllConnections();
      }),
  };
}
