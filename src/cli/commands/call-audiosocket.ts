/**
 * `audiosocket call HOST:PORT`: the simulated Asterisk (src/audiosocket/client.ts) sends a UUID,
 * then the run's audio and DTMF; this file tells echoed audio from keep-alive, records what the
 * server sends and prints a summary per call.
 */
import { randomUUID } from 'node:crypto';
import { connect, type AsteriskClient, type AudioKind } from '../../index.js';
import { newLeg, refusedHint, runCalls, reportTotals, type CallPlan, type Leg } from './call-run.js';

function allZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** How long an all-zero frame we sent may take to come back and still count as its echo. */
const ECHO_WINDOW_MS = 1000;

interface AudioSocketLeg extends Leg<AsteriskClient> {
  uuid: string;
  audioIn: number;
  keepAliveIn: number;
  /** When we sent all-zero frames not yet matched by an all-zero frame coming back. */
  zeroSent: number[];
  /** Under --strict: the violation we closed the connection on. */
  strictClose?: string;
}

const FATAL_UNDER_STRICT = new Set(['ZERO_LENGTH_AUDIO', 'FORBIDDEN_KIND', 'SPLIT_MESSAGE', 'TRUNCATED']);

/** Runs the calls; resolves with the exit status (0 clean, 1 failed or refused, 3 violations). */
export async function callAudioSocket(
  plan: CallPlan,
  o: { host: string; port: number; uuid: string | undefined; strict: boolean; kind: AudioKind },
): Promise<number> {
  const { calls, output } = plan;
  const { host, port, strict } = o;
  const legs: AudioSocketLeg[] = Array.from({ length: calls }, (_, i) => ({
    ...newLeg(i + 1),
    uuid: i === 0 && o.uuid !== undefined ? o.uuid : randomUUID(),
    audioIn: 0,
    keepAliveIn: 0,
    zeroSent: [],
  }));

  const { recorded, seconds, interrupted } = await runCalls(plan, legs, {
    dial: async (leg) => {
      const client = await connect({ host, port, uuid: leg.uuid, strict });
      leg.client = client;
      // Under --format ulaw/alaw we send G.711 under 0x10, as Asterisk's channel driver does
      // without c(); what comes back is recorded as Asterisk plays it: every 0x10 message as
      // slin 8 kHz, whatever the channel's codec (res/res_audiosocket.c gives received audio the
      // slin format; docs/protocol.md#kinds). A server that echoes the G.711 bytes is heard as noise.
      client.on('audio', (frame) => {
        const now = performance.now();
        leg.arrivals.arrival(now);
        if (allZero(frame.payload)) {
          // An all-zero frame is the echo of one of ours (quiet speech, digital silence) when
          // we sent one recently; otherwise it is the server's keep-alive.
          while (leg.zeroSent.length > 0 && leg.zeroSent[0]! < now - ECHO_WINDOW_MS) leg.zeroSent.shift();
          if (leg.zeroSent.length > 0) {
            leg.zeroSent.shift();
            leg.audioIn++;
          } else leg.keepAliveIn++;
        } else leg.audioIn++;
        leg.recorder?.push(frame.payload, frame.sampleRate);
      });
      client.on('violation', (viol) => {
        // An HTTP answer is not a strict close: the address is not AudioSocket at all.
        if (strict && leg.strictClose === undefined && FATAL_UNDER_STRICT.has(viol.code) && client.httpAnswer === undefined) {
          leg.strictClose = viol.code;
        }
        // An HTTP answer gets its one line at the end (see `refused`), not a violation line besides.
        const text = client.httpAnswer === undefined ? `call ${leg.number}: ${viol.code}: ${viol.message}` : '';
        output.event('violation', { call: leg.number, uuid: leg.uuid, ...viol }, text);
      });
      client.on('hangup', () => output.event('hangup', { call: leg.number, uuid: leg.uuid }, `call ${leg.number}: server hung up`));
      output.event('connected', { call: leg.number, uuid: leg.uuid }, `call ${leg.number} ${leg.uuid} connected to ${host}:${port}`);
    },
    send: (leg, frame) => {
      if (allZero(frame)) leg.zeroSent.push(performance.now());
      leg.client!.sendAudio(frame, o.kind);
    },
    hint: (err) => {
      const cause = (err as Error & { cause?: NodeJS.ErrnoException }).cause?.code;
      return cause === 'ECONNREFUSED'
        ? refusedHint(host, port, 'audiosocket')
        : cause === 'ENOTFOUND' || cause === 'EAI_AGAIN'
          ? '; unknown host name, use an IP address such as 127.0.0.1'
          : '';
    },
  });

  let violations = 0;
  let failed = 0;
  let refused = 0;
  for (const leg of legs) {
    if (leg.skipped) continue; // counted in the totals
    const v2 = leg.client?.violations.length ?? 0;
    violations += v2;
    const by = leg.error
      ? 'error'
      : leg.strictClose !== undefined && leg.close?.by !== 'server-hangup'
        ? 'client-strict'
        : (leg.close?.by ?? 'unknown');
    const received = leg.audioIn + leg.keepAliveIn;
    if (leg.error) failed++;
    else if (received === 0 && (by === 'server-hangup' || by === 'server-close' || by === 'error')) {
      refused++;
      const http = leg.client?.httpAnswer;
      leg.refused =
        http !== undefined
          ? `the address answered in HTTP ("${http}"): it is a WebSocket or web port, not AudioSocket (if it serves chan_websocket, call it with --websocket ws://${host}:${port}/)`
          : by === 'server-hangup'
            ? 'the server hung up before sending any audio (refused: --max-calls reached, or its handler ended the call at once)'
            : `the server closed the connection before sending any audio (refused: not in its --allow list, or shutting down${leg.close?.error ? `; ${leg.close.error.message}` : ''})`;
    }
    const byText: Record<string, string> = {
      client: interrupted ? `us (interrupted by ${interrupted}: the caller hung up)` : 'us (the caller hung up)',
      'client-strict': `us, --strict: closed on ${leg.strictClose} as Asterisk would`,
      'server-hangup': 'the server (hangup message)',
      'server-close': 'the server (closed without a hangup message)',
      error: `a socket error${leg.error ? `: ${leg.error}` : leg.close?.error ? `: ${leg.close.error.message}` : ''}`,
      unknown: 'unknown',
    };
    const t = leg.arrivals.summary();
    output.event(
      'summary',
      {
        call: leg.number,
        uuid: leg.uuid,
        framesSent: leg.framesSent,
        audioFramesReceived: leg.audioIn,
        keepAliveFramesReceived: leg.keepAliveIn,
        interArrival: t,
        endedBy: by === 'client-strict' ? 'client' : by,
        interrupted: by === 'client' ? interrupted : undefined,
        strictClose: leg.strictClose,
        refused: leg.refused,
        violations: v2,
        error: leg.error,
        record: recorded[leg.number - 1] ? leg.recorder!.path : undefined,
      },
      // A call that never connected has said why already, in one line; one answered in HTTP says it below.
      leg.client === undefined || leg.client.httpAnswer !== undefined
        ? ''
        : `call ${leg.number} ${leg.uuid}: sent ${leg.framesSent} frames, received ${leg.audioIn} audio + ${leg.keepAliveIn} keep-alive; ` +
            `inter-arrival p50 ${t.p50Ms} p99 ${t.p99Ms} max ${t.maxMs} ms; ended by ${byText[by]}` +
            (v2 ? `; ${v2} violation(s)` : ''),
    );
    if (leg.refused) output.error(`call ${leg.number}: ${leg.refused}`, { call: leg.number });
    else if (!leg.error && received === 0)
      output.warn(`call ${leg.number}: the server sent no audio at all (is its keep-alive off?)`, { call: leg.number });
  }
  return reportTotals(plan, { calls, seconds, failed, refused, violations, interrupted }, legs);
}
