/**
 * `audiosocket call --websocket`: the simulated chan_websocket channel (src/websocket/client.ts)
 * dials a chan_websocket server the way `Dial(WebSocket/<connection>)` does, streams audio in
 * real time, sends DTMF, records what the app plays to the channel and prints a summary per call.
 */
import { createConverter, type AudioFormat } from '../../index.js';
import { connectWebSocket, type AsteriskWebSocketClient, type WebSocketClientClose } from '../../websocket/client.js';
import { parseHostPort, UsageError } from '../options.js';
import type { Output } from '../output.js';
import { IntervalStats } from '../stats.js';
import { finishRecordings, LazyWavRecorder } from '../recorder.js';

/** Where to call and in which control format. */
export interface WebSocketTarget {
  url: string;
  controlFormat: 'plain-text' | 'json';
}

/**
 * Reads `--websocket [HOST:]PORT|URL` with `--websocket-path` and `--control-format`, and refuses
 * the AudioSocket-only options next to it.
 */
export function parseWebSocketTarget(
  text: string,
  o: { host?: string; path?: string; controlFormat?: string; positional?: string; port?: string; strict: boolean },
): WebSocketTarget {
  if (o.positional !== undefined) {
    throw new UsageError(
      `both a HOST:PORT argument (${JSON.stringify(o.positional)}) and --websocket given; give the address to --websocket only`,
    );
  }
  if (o.port !== undefined)
    throw new UsageError('--port is the AudioSocket port; with --websocket give the port there: --websocket HOST:PORT');
  if (o.strict)
    throw new UsageError('--strict is for AudioSocket calls; the chan_websocket summary always lists what Asterisk would drop or refuse');
  const controlFormat = o.controlFormat ?? 'plain-text';
  if (controlFormat !== 'plain-text' && controlFormat !== 'json') {
    throw new UsageError(`--control-format must be plain-text or json, got ${JSON.stringify(controlFormat)}`);
  }
  if (/^wss?:\/\//i.test(text)) {
    if (o.path !== undefined) throw new UsageError('--websocket-path is for --websocket [HOST:]PORT; put the path in the URL instead');
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new UsageError(`--websocket: not a valid URL: ${JSON.stringify(text)}; write ws://HOST:PORT/PATH`);
    }
    if (url.port === '')
      throw new UsageError(`--websocket: the URL ${JSON.stringify(text)} has no port; write ws://${url.hostname}:8765${url.pathname}`);
    return { url: url.href, controlFormat };
  }
  if (/^[a-z][\w+.-]*:\/\//i.test(text)) throw new UsageError(`--websocket: only ws:// and wss:// URLs, got ${JSON.stringify(text)}`);
  if (o.host === '') throw new UsageError('--host is empty; give a host name or address such as 127.0.0.1');
  const { host, port } = parseHostPort('websocket', text, false, o.host ?? '127.0.0.1', 8765);
  const path = o.path ?? '/media';
  if (!path.startsWith('/')) throw new UsageError(`--websocket-path must start with /, got ${JSON.stringify(path)}`);
  return { url: `ws://${host.includes(':') ? `[${host}]` : host}:${port}${path}`, controlFormat };
}

interface Leg {
  number: number;
  client?: AsteriskWebSocketClient;
  offset: number;
  framesSent: number;
  arrivals: IntervalStats;
  nextDigit: number;
  recorder?: LazyWavRecorder;
  close?: WebSocketClientClose;
  error?: string;
  refused?: string;
}

/** Runs the calls; resolves with the exit status (0 clean, 1 failed or refused, 3 violations). */
export async function callWebSocket(o: {
  target: WebSocketTarget;
  format: string;
  sendFormat: AudioFormat;
  audio: Buffer;
  loop: boolean;
  frameBytes: number;
  durationMs: number;
  digits: { digit: string; atMs: number }[];
  calls: number;
  channelId: string | undefined;
  record: string | undefined;
  quiet: boolean;
  output: Output;
}): Promise<number> {
  const { output, audio, frameBytes, digits } = o;
  const url = o.target.url;
  const legs: Leg[] = Array.from({ length: o.calls }, (_, i) => ({
    number: i + 1,
    offset: 0,
    framesSent: 0,
    arrivals: new IntervalStats(),
    nextDigit: 0,
  }));
  const recordPath = (n: number): string => (o.calls === 1 ? o.record! : o.record!.replace(/(\.wav)?$/i, (ext) => `-${n}${ext || '.wav'}`));
  // What the app plays is in the channel's format; recordings are slin.
  const g711 = o.sendFormat.encoding !== 'slin';
  const t0 = performance.now();
  for (let i = 0; i < legs.length; i += 50) {
    await Promise.all(
      legs.slice(i, i + 50).map(async (leg) => {
        try {
          const client = await connectWebSocket({
            url,
            format: o.format,
            controlFormat: o.target.controlFormat,
            ...(o.channelId !== undefined && leg.number === 1 ? { channelId: o.channelId } : {}),
          });
          leg.client = client;
          if (o.record !== undefined) {
            const recorder = new LazyWavRecorder(recordPath(leg.number));
            leg.recorder = recorder;
            const decode = g711 ? createConverter(o.sendFormat, { encoding: 'slin', sampleRate: 8000, channels: 1 }) : undefined;
            client.on('played', (frame) => recorder.push(decode ? decode.push(frame) : frame, o.sendFormat.sampleRate));
            void client.closed.then(() => decode?.dispose());
          }
          client.on('played', () => leg.arrivals.arrival(performance.now()));
          client.on('violation', (viol) =>
            output.event(
              'violation',
              { call: leg.number, channelId: client.channelId, ...viol },
              `call ${leg.number}: ${viol.code}: ${viol.message}`,
            ),
          );
          void client.closed.then((c) => (leg.close = c));
          output.event(
            'connected',
            { call: leg.number, channelId: client.channelId, url, controlFormat: o.target.controlFormat },
            `call ${leg.number} ${client.channelId} connected to ${url} (chan_websocket, ${o.target.controlFormat})`,
          );
        } catch (err) {
          leg.error = (err as Error).message;
          output.error(`call ${leg.number}: ${leg.error}`, { call: leg.number });
        }
      }),
    );
  }

  // One drift-free timer sends frame k of every call at start + k * 20 ms, as Asterisk's core does.
  const frameMs = 20;
  const start = performance.now();
  let stopped = false;
  await new Promise<void>((resolve) => {
    const onSignal = (): void => {
      stopped = true;
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let k = 0;
    const tick = (): void => {
      const elapsed = performance.now() - start;
      const live = legs.filter((l) => l.client?.connected);
      if (stopped || elapsed >= o.durationMs || live.length === 0) {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        resolve();
        return;
      }
      for (const leg of live) {
        const client = leg.client!;
        while (leg.nextDigit < digits.length && digits[leg.nextDigit]!.atMs <= elapsed) client.sendDtmf(digits[leg.nextDigit++]!.digit);
        if (leg.offset >= audio.length) {
          if (!o.loop) continue;
          leg.offset = 0;
        }
        const frame = audio.subarray(leg.offset, leg.offset + frameBytes);
        leg.offset += frameBytes;
        if (frame.length > 0) {
          client.sendAudio(frame);
          leg.framesSent++;
        }
      }
      k = Math.max(k + 1, Math.floor((performance.now() - start) / frameMs));
      setTimeout(tick, Math.max(0, start + k * frameMs - performance.now()));
    };
    tick();
  });

  // Legs that never connected contribute undefined, which Promise.all passes through.
  // eslint-disable-next-line @typescript-eslint/await-thenable
  const closes = await Promise.all(legs.map((leg) => (leg.client?.connected ? leg.client.hangup() : leg.client?.closed)));
  legs.forEach((leg, i) => (leg.close = closes[i] ?? leg.close));
  const recorded = await finishRecordings(legs, output);
  const elapsed = (performance.now() - t0) / 1000;

  let violations = 0;
  let failed = 0;
  let refused = 0;
  const byText: Record<string, string> = {
    client: 'us (the caller hung up)',
    'app-hangup': 'the server (HANGUP command)',
    'app-close': 'the server (closed the WebSocket)',
    error: 'a protocol or socket error',
  };
  for (const leg of legs) {
    const client = leg.client;
    const played = client?.stats.framesPlayed ?? 0;
    const v = client?.violations.length ?? 0;
    violations += v;
    const by = leg.error ? 'error' : (leg.close?.by ?? 'client');
    if (leg.error) failed++;
    else if (played === 0 && by !== 'client') {
      refused++;
      leg.refused = `the server ended the call before playing any audio (${byText[by]}, close code ${leg.close?.code ?? '?'}${leg.close?.error ? `; ${leg.close.error.message}` : ''})`;
    }
    const t = leg.arrivals.summary();
    const detail = leg.error ? `: ${leg.error}` : leg.close?.error ? `: ${leg.close.error.message}` : '';
    output.event(
      'summary',
      {
        call: leg.number,
        channelId: client?.channelId,
        transport: 'websocket',
        framesSent: leg.framesSent,
        framesPlayed: played,
        gaps: client?.stats.gaps ?? 0,
        marks: client?.marks.length ?? 0,
        interArrival: t,
        endedBy: by,
        closeCode: leg.close?.code,
        refused: leg.refused,
        violations: v,
        error: leg.error,
        record: recorded[leg.number - 1] ? recordPath(leg.number) : undefined,
      },
      `call ${leg.number}${client ? ` ${client.channelId}` : ''}: sent ${leg.framesSent} frames, played ${played} from the server` +
        ` (${client?.stats.gaps ?? 0} gaps, ${client?.marks.length ?? 0} marks); inter-play p50 ${t.p50Ms} p99 ${t.p99Ms} max ${t.maxMs} ms;` +
        ` ended by ${byText[by]}${detail}` +
        (v ? `; ${v} violation(s)` : ''),
    );
    if (leg.refused) output.error(`call ${leg.number}: ${leg.refused}`, { call: leg.number });
    else if (!leg.error && played === 0) output.warn(`call ${leg.number}: the server played no audio to the channel`, { call: leg.number });
  }
  if (o.calls > 1 || o.quiet) {
    process.stderr.write(
      `${o.calls} call(s) in ${elapsed.toFixed(1)} s: ${o.calls - failed - refused} connected, ${failed} failed, ${refused} refused, ${violations} violation(s)\n`,
    );
  }
  return failed > 0 || refused > 0 ? 1 : violations > 0 ? 3 : 0;
}
