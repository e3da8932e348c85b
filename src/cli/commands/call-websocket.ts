/**
 * `audiosocket call --websocket`: the simulated chan_websocket channel (src/websocket/client.ts)
 * dials a chan_websocket server the way `Dial(WebSocket/<connection>)` does, streams audio in
 * real time (call-run.ts), sends DTMF, records what the app plays to the channel and prints a
 * summary per call.
 */
import { connectWebSocket, type AsteriskWebSocketClient } from '../../websocket/client.js';
import { parseHostPort, UsageError } from '../options.js';
import { newLeg, recordingDecoder, refusedHint, runCalls, reportTotals, type CallPlan, type Leg } from './call-run.js';

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
    if (o.host !== undefined) throw new UsageError('--host with a --websocket URL: put the host in the URL only');
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
  if (o.host !== undefined && host !== o.host) {
    throw new UsageError(`--websocket ${text} names host ${host} but --host says ${o.host}; give the host once`);
  }
  const path = o.path ?? '/media';
  if (!path.startsWith('/')) throw new UsageError(`--websocket-path must start with /, got ${JSON.stringify(path)}`);
  return { url: `ws://${host.includes(':') ? `[${host}]` : host}:${port}${path}`, controlFormat };
}

/** Runs the calls; resolves with the exit status (0 clean, 1 failed or refused, 3 violations). */
export async function callWebSocket(plan: CallPlan, o: { target: WebSocketTarget; channelId: string | undefined }): Promise<number> {
  const { calls, output, sendFormat } = plan;
  const url = o.target.url;
  const legs = Array.from({ length: calls }, (_, i): Leg<AsteriskWebSocketClient> => newLeg(i + 1));
  const { recorded, seconds, interrupted } = await runCalls(plan, legs, {
    dial: async (leg) => {
      const client = await connectWebSocket({
        url,
        format: plan.format,
        controlFormat: o.target.controlFormat,
        ...(o.channelId !== undefined && leg.number === 1 ? { channelId: o.channelId } : {}),
      });
      leg.client = client;
      const recorder = leg.recorder;
      if (recorder) {
        // What the app plays is in the channel's format; recordings are slin.
        const decode = recordingDecoder(plan);
        client.on('played', (frame) => recorder.push(decode ? decode.push(frame) : frame, sendFormat.sampleRate));
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
      output.event(
        'connected',
        { call: leg.number, channelId: client.channelId, url, controlFormat: o.target.controlFormat },
        `call ${leg.number} ${client.channelId} connected to ${url} (chan_websocket, ${o.target.controlFormat})`,
      );
    },
    send: (leg, frame) => leg.client!.sendAudio(frame),
    hint: (err) => {
      const cause = (err as Error & { cause?: NodeJS.ErrnoException }).cause;
      if (cause?.code === 'ECONNREFUSED') {
        const { hostname, port } = new URL(url);
        return refusedHint(hostname, Number(port || 80), 'websocket');
      }
      if (cause?.code === 'ENOTFOUND' || cause?.code === 'EAI_AGAIN') {
        return '; unknown host name, use an IP address such as 127.0.0.1';
      }
      if (cause?.code === 'EPROTO') {
        return '; use ws:// instead of wss://';
      }
      if (/Unexpected server response: 404/.test(cause?.message ?? '')) {
        return `; nothing serves the path ${new URL(url).pathname} there: check the path (a server run with --websocket-path accepts that path only)`;
      }
      // An AudioSocket server reads the HTTP request as a bad message and closes.
      if (cause?.code === 'ECONNRESET' || cause?.message === 'socket hang up') {
        return '; the server closed without answering the WebSocket handshake: is it an AudioSocket port? (then call it without --websocket: audiosocket call HOST:PORT)';
      }
      return '';
    },
  });

  let violations = 0;
  let failed = 0;
  let refused = 0;
  const byText: Record<string, string> = {
    client: interrupted ? `us (interrupted by ${interrupted}: the caller hung up)` : 'us (the caller hung up)',
    'app-hangup': 'the server (HANGUP command)',
    'app-close': 'the server (closed the WebSocket)',
    error: 'a protocol or socket error',
  };
  for (const leg of legs) {
    if (leg.skipped) continue; // counted in the totals
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
        interrupted: by === 'client' ? interrupted : undefined,
        closeCode: leg.close?.code,
        refused: leg.refused,
        violations: v,
        error: leg.error,
        record: recorded[leg.number - 1] ? leg.recorder!.path : undefined,
      },
      // A call that never connected has said why already, in one line (as on AudioSocket).
      client === undefined
        ? ''
        : `call ${leg.number} ${client.channelId}: sent ${leg.framesSent} frames, played ${played} from the server` +
            ` (${client.stats.gaps} gaps, ${client.marks.length} marks); inter-play p50 ${t.p50Ms} p99 ${t.p99Ms} max ${t.maxMs} ms;` +
            ` ended by ${byText[by]}${detail}` +
            (v ? `; ${v} violation(s)` : ''),
    );
    if (leg.refused) output.error(`call ${leg.number}: ${leg.refused}`, { call: leg.number });
    else if (!leg.error && played === 0) output.warn(`call ${leg.number}: the server played no audio to the channel`, { call: leg.number });
  }
  return reportTotals(plan, { calls, seconds, failed, refused, violations, interrupted }, legs);
}
