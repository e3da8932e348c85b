/**
 * Runs a server command: listens, prints one line per call and per DTMF digit (plus a live status
 * line on a terminal), optionally serves metrics, and shuts down gracefully on SIGINT/SIGTERM (live calls get a
 * hangup, commands finalise their files); a second signal exits at once.
 */
import cluster from 'node:cluster';
import net from 'node:net';
import {
  AudioSocketError,
  createServer,
  type AudioSocketServer,
  type Call,
  type CallEnd,
  type CallWarning,
  type CallHandler,
  type SpeechEvent,
} from '../index.js';
import { createAllowList, isLoopback } from '../admission.js';
import { serveMetrics, type MetricsEndpoint } from './metrics.js';
import { serveMonitor, type MonitorServer } from '../monitor/http.js';
import { readTlsFiles, UsageError, type CommonServerArgs } from './options.js';
import { createOutput, type Output } from './output.js';
import { isWorker, runPrimary, type ListeningMessage } from './cluster.js';
import { lateSlotsOf } from './stats.js';

export interface RunningServer {
  server: AudioSocketServer;
  output: Output;
  /** Resolves after a signal, once every call is closed and `beforeExit` hooks have run. */
  done: Promise<void>;
}

export interface RunOptions {
  /** Print the generic call/end lines (default true). */
  callLines?: boolean;
  /** Awaited after the server has closed, before the process exits (finalise files). */
  beforeExit?: () => Promise<void>;
  /** The output to use, when the command prints events of its own (one status line for all). */
  output?: Output;
}

export function peer(call: Call): string {
  return call.remoteAddress.includes(':') ? `[${call.remoteAddress}]:${call.remotePort}` : `${call.remoteAddress}:${call.remotePort}`;
}

/** The live status text: active calls, frames per second each way, drops, late slots. */
function startStatusLine(server: AudioSocketServer, output: Output): () => void {
  let ended = { in: 0, out: 0, drops: 0, late: 0 };
  server.on('callEnd', (_c, end) => {
    ended = {
      in: ended.in + end.stats.audioIn,
      out: ended.out + end.stats.framesSent,
      drops: ended.drops + end.stats.droppedIn + end.stats.droppedOut,
      late: ended.late + lateSlotsOf(end.stats),
    };
  });
  let last = { in: 0, out: 0, t: performance.now() };
  const timer = setInterval(() => {
    let framesIn = ended.in;
    let framesOut = ended.out;
    let drops = ended.drops;
    let late = ended.late;
    for (const call of server.calls) {
      const s = call.stats;
      framesIn += s.audioIn;
      framesOut += s.framesSent;
      drops += s.droppedIn + s.droppedOut;
      late += lateSlotsOf(s);
    }
    const now = performance.now();
    const dt = (now - last.t) / 1000;
    output.status(
      `calls ${server.calls.size} active, ${server.stats.totalCalls} total | ` +
        `frames/s in ${Math.round((framesIn - last.in) / dt)} out ${Math.round((framesOut - last.out) / dt)} | ` +
        `drops ${drops} | late slots ${late}`,
    );
    last = { in: framesIn, out: framesOut, t: now };
  }, 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    output.status(null);
  };
}

/** Why a listen failed, and what to do about it, in one line. */
function listenProblem(err: NodeJS.ErrnoException, port: number, option: string): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return `port ${port} is already in use (is another audiosocket running?); pick another with ${option}`;
    case 'EACCES':
      return `permission denied for port ${port} (ports below 1024 need privileges); pick another with ${option}`;
    case 'EADDRNOTAVAIL':
      return 'that address is not on this machine; use 127.0.0.1, 0.0.0.0, :: or one of its addresses';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host name; use an IP address such as 127.0.0.1';
    default:
      return err.message;
  }
}

/** The usage error for a failed listen on the AudioSocket port. */
function cannotListen(host: string, port: number, err: unknown): UsageError {
  return new UsageError(`cannot listen on ${host}:${port}: ${listenProblem(err as NodeJS.ErrnoException, port, '--port')}`);
}

/** Listens on `host:port` and closes again: a usage error if it cannot. Port 0 always can. */
async function probeListen(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ host, port, exclusive: true }, resolve);
    });
  } catch (err) {
    throw cannotListen(host, port, err);
  }
  await new Promise((resolve) => probe.close(resolve));
}

export async function runServer(
  name: string,
  args: CommonServerArgs,
  handler: CallHandler,
  options: RunOptions = {},
): Promise<RunningServer> {
  const output = options.output ?? createOutput(args);
  if (args.workers > 1 && !isWorker) {
    // The primary only supervises; the workers run this same command and serve the calls. A port
    // the workers cannot have is said once, here, before any starts.
    await probeListen(args.host, args.port);
    const server = createServer(args.server);
    return { server, output, done: runPrimary(name, args, args.workers) };
  }
  const server = createServer(handler, args.server);
  // The per-call listeners below are made once and shared by every call (a listener is called
  // with its call as `this`): a server holds thousands of calls. Each call's start, on the
  // monotonic clock, for the time of its DTMF lines.
  const startedAt = new WeakMap<Call, number>();
  function onDtmf(this: Call, digit: string): void {
    const atMs = Math.round(performance.now() - startedAt.get(this)!);
    output.event('dtmf', { uuid: this.uuid, digit, atMs }, `dtmf ${this.uuid} ${digit} at ${(atMs / 1000).toFixed(2)}s`);
  }
  function onWarning(this: Call, w: CallWarning): void {
    output.event('warning', { uuid: this.uuid, code: w.code, message: w.message }, `warn ${this.uuid} ${w.message}`);
  }
  // Speech, on calls that detect it (record, inspect, play --barge-in-speech).
  const speech = (call: Call, type: 'start' | 'end', e: SpeechEvent): void =>
    output.event(
      `speech-${type}`,
      { uuid: call.uuid, atMs: Math.round(e.atMs), detectedAtMs: Math.round(e.detectedAtMs) },
      `speech ${call.uuid} ${type === 'start' ? 'starts' : 'ends'} at ${(e.atMs / 1000).toFixed(2)}s`,
    );
  function onSpeechStart(this: Call, e: SpeechEvent): void {
    speech(this, 'start', e);
  }
  function onSpeechEnd(this: Call, e: SpeechEvent): void {
    speech(this, 'end', e);
  }
  // One line per event, on a terminal too (the status line stays below them).
  if (options.callLines !== false) {
    server.on('call', (call) => {
      startedAt.set(call, performance.now());
      output.event('call', { uuid: call.uuid, peer: peer(call) }, `call ${call.uuid} from ${peer(call)}`);
      call.on('dtmf', onDtmf);
    });
    server.on('callEnd', (call: Call, end: CallEnd) => {
      const s = end.stats;
      output.event(
        'callEnd',
        {
          uuid: call.uuid,
          peer: peer(call),
          durationMs: Math.round(end.durationMs),
          reason: end.reason,
          error: end.error?.message,
          messagesIn: s.messagesIn,
          messagesOut: s.messagesOut,
          dtmf: s.dtmfIn,
          droppedIn: s.droppedIn,
          droppedOut: s.droppedOut,
          lateSlots: lateSlotsOf(s),
        },
        `end  ${call.uuid} ${peer(call)} ${(end.durationMs / 1000).toFixed(1)}s in=${s.messagesIn} out=${s.messagesOut}` +
          `${s.dtmfIn ? ` dtmf=${s.dtmfIn}` : ''} reason=${end.reason}${end.error ? ` (${end.error.message})` : ''}`,
      );
    });
  }
  server.on('handshakeFailed', (f) => {
    const hint = f.reason === 'closed-before-uuid' ? ' (normal if a Dial was abandoned; for AudioSocket() put Answer() before it)' : '';
    const what = f.transport === 'websocket' ? `chan_websocket ${f.url === '' ? '' : `${f.url} `}` : '';
    output.event(
      'handshakeFailed',
      { ...f, error: f.error?.message },
      `no call from ${what}${f.remoteAddress}:${f.remotePort}: ${f.reason}${hint}${f.error ? `: ${f.error.message}` : ''}`,
    );
  });
  server.on('connectionRejected', (r) => {
    const what = r.transport === 'websocket' ? 'chan_websocket ' : '';
    output.event('connectionRejected', { ...r }, `rejected ${what}${r.remoteAddress}:${r.remotePort}: ${r.reason}`);
  });
  server.on('handlerError', (err, call) => {
    output.error(`call ${call.uuid}: ${(err as Error)?.message ?? String(err)}`, { uuid: call.uuid });
  });
  server.on('call', (call) => {
    call.on('warning', onWarning);
    call.on('speechStart', onSpeechStart);
    call.on('speechEnd', onSpeechEnd);
  });

  // Metrics first: a metrics port in use stops the command before it takes any call.
  let metrics: MetricsEndpoint | undefined;
  if (args.metrics) {
    try {
      metrics = await serveMetrics(server, args.metrics.host, args.metrics.port);
    } catch (err) {
      throw new UsageError(
        `--metrics ${args.metrics.host}:${args.metrics.port}: ${listenProblem(err as NodeJS.ErrnoException, args.metrics.port, '--metrics HOST:PORT')}`,
      );
    }
  }
  // The monitor too: attached before the first call, so it sees every one.
  let monitor: MonitorServer | undefined;
  if (args.monitor) {
    try {
      monitor = await serveMonitor(server, {
        host: args.monitor.host,
        port: args.monitor.port,
        listen: args.monitor.listen,
        ...(args.monitor.token === undefined ? {} : { token: args.monitor.token }),
      });
    } catch (err) {
      await metrics?.close();
      throw new UsageError(
        `--monitor ${args.monitor.host}:${args.monitor.port}: ${listenProblem(err as NodeJS.ErrnoException, args.monitor.port, '--monitor [HOST:]PORT')}`,
      );
    }
  }
  let address;
  try {
    address = await server.listen({ host: args.host, port: args.port });
  } catch (err) {
    await metrics?.close();
    await monitor?.close();
    const cause = err instanceof AudioSocketError && err.cause instanceof Error ? err.cause : err;
    const ws = args.server.websocket;
    if (ws?.port !== undefined && err instanceof Error && err.message.startsWith('cannot listen for chan_websocket')) {
      throw new UsageError(
        `cannot listen for chan_websocket on ${ws.host ?? args.host}:${ws.port}: ${listenProblem(cause as NodeJS.ErrnoException, ws.port, '--websocket')}`,
      );
    }
    throw cannotListen(args.host, args.port, cause);
  }
  // Said before the listening line, so whoever waits for that line has seen it; by one worker.
  // On a loopback listener every caller comes from the very address it listens on.
  const allow = args.server.allow;
  if (allow !== undefined && (!isWorker || cluster.worker?.id === 1)) {
    const list = createAllowList(allow);
    const listeners = [address, server.websocketAddress()].filter((a): a is net.AddressInfo => a !== null);
    const shut = listeners.filter((a) => isLoopback(a.address) && !list.check(a.address, a.family === 'IPv6' ? 'ipv6' : 'ipv4'));
    if (shut.length === listeners.length) {
      const at = shut[0]!.address;
      output.warn(
        `--allow ${String(allow)} can match no caller: the server listens on ${at}, so every caller comes from ${at}; ` +
          `add ${at} to --allow, or listen on another address with --host`,
      );
    }
  }
  const shown = address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
  if (isWorker) {
    const msg: ListeningMessage = { type: 'audiosocket:listening', host: address.address, port: address.port, family: address.family };
    process.send?.(msg);
  } else {
    output.event('listening', { command: name, host: address.address, port: address.port }, `audiosocket ${name} listening on ${shown}`);
    const ws = server.websocketAddress();
    if (ws !== null) {
      output.event(
        'listening',
        { command: name, transport: 'websocket', host: ws.address, port: ws.port },
        `audiosocket ${name} listening for chan_websocket on ${args.tlsFiles ? 'wss' : 'ws'}://${ws.family === 'IPv6' ? `[${ws.address}]` : ws.address}:${ws.port}${args.server.websocket?.path ?? ''}` +
          (args.server.websocket?.credentials ? ' (credentials required)' : ''),
      );
    }
  }
  if (metrics) {
    const m = metrics.address;
    const mShown = m.family === 'IPv6' ? `[${m.address}]` : m.address;
    output.event('metrics', { host: m.address, port: m.port }, `metrics on http://${mShown}:${m.port}/metrics`);
  }
  if (monitor) {
    const m = monitor.address;
    // A generated token is printed in the URL (the only way to learn it); a given one is not.
    const given = args.monitor?.token !== undefined;
    const url = given ? monitor.url.replace(/\?token=.*$/, '') : monitor.url;
    output.event(
      'monitor',
      { host: m.address, port: m.port, url, token: monitor.token === undefined ? 'none' : given ? 'given' : 'generated' },
      `monitor on ${url}${given ? ' (add ?token= with AUDIOSOCKET_MONITOR_TOKEN)' : monitor.token !== undefined ? ' (token generated for this run)' : ''}`,
    );
  }
  const stopStatus = output.live ? startStatusLine(server, output) : () => {};

  const done = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        output.error(`${signal} again: exiting now`);
        process.exit(130);
      }
      stopping = true;
      stopStatus();
      const count = server.calls.size;
      // A worker's signal comes from its primary, whatever the user sent the primary (said there).
      const who = isWorker ? `worker ${process.pid}` : signal;
      output.event('closing', { signal, activeCalls: count }, `${who}: closing, hanging up ${count} call(s)`);
      void (async () => {
        await server.close();
        await metrics?.close();
        await monitor?.close();
        await options.beforeExit?.();
        output.event('closed', { totalCalls: server.stats.totalCalls }, `closed after ${server.stats.totalCalls} call(s)`);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        process.off('SIGHUP', reload);
        resolve();
      })();
    };
    // SIGHUP: a renewed certificate (certbot and friends) is served to new connections.
    const tlsFiles = args.tlsFiles;
    const reload = (): void => {
      if (tlsFiles === undefined) return;
      try {
        server.setSecureContext(readTlsFiles(tlsFiles));
        output.event('tlsReloaded', { cert: tlsFiles.cert }, `SIGHUP: reloaded ${tlsFiles.cert} and its key`);
      } catch (err) {
        output.error(`SIGHUP: kept the old certificate: ${(err as Error).message}`);
      }
    };
    if (tlsFiles !== undefined) process.on('SIGHUP', reload);
    // A worker takes orders from its primary (SIGTERM); the terminal's Ctrl-C reaches the whole
    // process group, and the primary turns it into one SIGTERM per worker.
    if (isWorker) process.on('SIGINT', () => {});
    else process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return { server, output, done };
}
