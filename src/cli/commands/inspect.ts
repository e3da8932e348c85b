/**
 * `audiosocket inspect`: a field diagnostic. Answers every call with silence and reports what
 * Asterisk really sends, and the classic mistakes with their fixes.
 */
import { formatName, kindName, type Call, type CallEnd } from '../../index.js';
import { parseServerArgs, serverOptions, serverOptionsHelp } from '../options.js';
import { runServer } from '../run-server.js';
import { createOutput } from '../output.js';
import { IntervalStats } from '../stats.js';

/** What `inspect` takes: the server options. */
export const inspectOptions = serverOptions;

export const inspectHelp = `Usage: audiosocket inspect [options]

Diagnostic server: answers each call with silence and prints, per call, the UUID, peer, message
kinds and frame sizes seen, the inferred audio format, frame timing (inter-arrival p50/p99/max),
DTMF digits and the end reason. Recognises the channel-driver codec trap (u-law/a-law labelled as
slin, 160-byte frames) and connections closed before the UUID (usually a missing Answer()), and
says how to fix each.

${serverOptionsHelp}`;

interface Seen {
  kinds: Map<string, Map<number, number>>;
  intervals: IntervalStats;
  digits: Array<{ digit: string; atMs: number }>;
  warnings: string[];
  /** The caller's speech segments, ms on the call's timeline. */
  speech: Array<{ startMs: number; endMs: number | null }>;
  start: number;
}

export async function inspectCommand(argv: string[]): Promise<void> {
  const { common } = parseServerArgs(argv, inspectOptions);
  common.server.speech = true; // the report shows when the caller spoke
  if (common.help) {
    process.stdout.write(`${inspectHelp}\n`);
    return;
  }
  const seen = new WeakMap<Call, Seen>();
  const output = createOutput(common);
  const running = await runServer(
    'inspect',
    common,
    (call) => {
      const s: Seen = { kinds: new Map(), intervals: new IntervalStats(), digits: [], warnings: [], speech: [], start: performance.now() };
      seen.set(call, s);
      call.on('audio', (frame) => {
        const name = 'kind' in frame ? kindName(frame.kind) : formatName(frame.format);
        let sizes = s.kinds.get(name);
        if (sizes === undefined) s.kinds.set(name, (sizes = new Map<number, number>()));
        sizes.set(frame.payload.length, (sizes.get(frame.payload.length) ?? 0) + 1);
        s.intervals.arrival(performance.now());
      });
      call.on('message', (kind, payload) => {
        const name = kindName(kind);
        let sizes = s.kinds.get(name);
        if (sizes === undefined) s.kinds.set(name, (sizes = new Map<number, number>()));
        sizes.set(payload.length, (sizes.get(payload.length) ?? 0) + 1);
      });
      call.on('dtmf', (digit) => {
        const atMs = Math.round(performance.now() - s.start);
        s.digits.push({ digit, atMs });
        output.event('dtmf', { uuid: call.uuid, digit, atMs }, `dtmf ${call.uuid} ${digit} at ${(atMs / 1000).toFixed(2)}s`);
      });
      call.on('warning', (w) => s.warnings.push(w.message));
      call.on('speechStart', (e) => s.speech.push({ startMs: Math.round(e.atMs), endMs: null }));
      call.on('speechEnd', (e) => {
        const last = s.speech.at(-1);
        if (last !== undefined) last.endMs = Math.round(e.atMs);
      });
      call.on('end', (end) => report(call, end));
      output.event(
        'call',
        { uuid: call.uuid, peer: `${call.remoteAddress}:${call.remotePort}` },
        `call ${call.uuid} from ${call.remoteAddress}:${call.remotePort}`,
      );
    },
    { callLines: false, output },
  );

  function report(call: Call, end: CallEnd): void {
    const s = seen.get(call)!;
    const kinds = Object.fromEntries([...s.kinds].map(([k, sizes]) => [k, Object.fromEntries(sizes)]));
    const guess = call.transport === 'audiosocket' ? call.inboundFormatGuess : undefined;
    const inbound = call.transport === 'audiosocket' ? call.inboundKind : undefined;
    const format =
      guess === undefined
        ? end.stats.audioIn === 0 || call.inboundFormat === undefined
          ? 'no audio received'
          : inbound !== undefined
            ? inbound === 0x10
              ? `${kindName(inbound)} (not enough audio to measure)`
              : `${kindName(inbound)} (${call.inboundSampleRate} Hz by its kind; only 0x10 can hide G.711)`
            : `${formatName(call.inboundFormat)} (chan_websocket ${call.transport === 'websocket' ? call.mediaStart.format : ''})`
        : guess.verdict === 'g711'
          ? `G.711 ${guess.law} labelled as 0x10 (${guess.bytesPerSecond} B/s)`
          : guess.verdict === 'slin'
            ? `slin ${call.inboundSampleRate} Hz (${guess.bytesPerSecond} B/s)`
            : `unknown (${guess.bytesPerSecond} B/s under 0x10)`;
    const advice: string[] = [];
    if (guess?.verdict === 'g711') {
      advice.push(
        `Asterisk is sending ${guess.law} under kind 0x10. Dial AudioSocket/host:port/uuid/c(slin) (or c(slin16)), or run with --inbound ${guess.law}.`,
      );
    }
    if (end.stats.audioIn === 0 && end.durationMs > 2500) {
      advice.push(
        'No audio arrived: is the caller sending media (hold, NAT)? The AudioSocket() app hangs up after 2 s of silence both ways.',
      );
    }
    const t = s.intervals.summary();
    const fields = {
      uuid: call.uuid,
      peer: `${call.remoteAddress}:${call.remotePort}`,
      durationMs: Math.round(end.durationMs),
      reason: end.reason,
      error: end.error?.message,
      kinds,
      format,
      interArrival: t,
      dtmf: s.digits,
      speech: s.speech,
      warnings: s.warnings,
      advice,
      messagesIn: end.stats.messagesIn,
      messagesOut: end.stats.messagesOut,
    };
    const lines = [
      `call ${call.uuid} ended: ${end.reason}${end.error ? ` (${end.error.message})` : ''} after ${(end.durationMs / 1000).toFixed(1)}s`,
      `  peer        ${fields.peer}`,
      `  messages    in=${end.stats.messagesIn} out=${end.stats.messagesOut}`,
      `  kinds       ${
        Object.entries(kinds)
          .map(
            ([k, sizes]) =>
              `${k}: ${Object.entries(sizes)
                .map(([size, n]) => `${n}x${size}B`)
                .join(', ')}`,
          )
          .join('; ') || 'none'
      }`,
      `  format      ${format}`,
      `  timing      ${t.count ? `inter-arrival mean ${t.meanMs} ms, p50 ${t.p50Ms}, p99 ${t.p99Ms}, max ${t.maxMs}` : 'n/a'}`,
      `  dtmf        ${s.digits.map((d) => `${d.digit}@${(d.atMs / 1000).toFixed(2)}s`).join(' ') || 'none'}`,
      `  speech      ${
        s.speech
          .map((p) => `${(p.startMs / 1000).toFixed(2)}-${p.endMs === null ? 'end' : `${(p.endMs / 1000).toFixed(2)}s`}`)
          .join(', ') || 'none detected'
      }`,
      ...advice.map((a) => `  fix         ${a}`),
    ];
    output.event('report', fields, lines.join('\n'));
  }

  await running.done;
}
