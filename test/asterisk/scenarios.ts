/**
 * The scenarios of `npm run test:asterisk`. Each one drives real calls through the private
 * Asterisk, asserts on what actually arrives (at the server under test and at the far leg) and
 * returns what it measured.
 */
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { createServer, type Call, type CallEnd, type ServerOptions, type AudioSocketServer } from '#lib/index.js';
import type { PrivateAsterisk } from './asterisk.js';
import { FaultProxy, type Fault } from './faults.js';
import { FarLeg, RtpLeg, type FarCall } from './legs.js';
import {
  gaps,
  hex32,
  isSilence,
  ms,
  pct,
  randomUuidUpper,
  readTag,
  rms,
  slinToUlawBuf,
  taggedFrames,
  tone,
  toneFraction,
  ulawToSlinBuf,
} from './signals.js';
import { check, eventLoopDelay, spawnJsonLines, until } from './util.js';

export type Metrics = Record<string, string | number | boolean>;

export interface Ctx {
  ast: PrivateAsterisk;
  /** set when the run deliberately breaks the server (the scenario is then expected to fail) */
  fault: Fault | undefined;
  /** the port Asterisk must dial to reach a server listening on `port` (through the fault proxy, if any) */
  expose(port: number): Promise<number>;
  /** cleanup, run in reverse order after the scenario */
  defer(fn: () => unknown): void;
  metrics: Metrics;
  /**
   * A real-clock figure (a latency, a gap, a duration): printed with the metrics, and listed as
   * "outside the typical range" when it is, but never a failure. How fast things happen depends
   * on how busy the machine is; what happens (bit-exact frames, order, counts, end reasons, the
   * order of events) is what the scenarios assert.
   */
  timing(label: string, value: number, typical: Typical, unit?: string): void;
}

/** The range a timing figure falls in on an idle machine (docs/testing-with-asterisk.md, section 7). */
export interface Typical {
  min?: number;
  max?: number;
}

export interface Scenario {
  name: string;
  /** what it checks, one line (also in docs/testing-with-asterisk.md) */
  checks: string;
  /** harness checks that involve no server (skipped in fault runs) */
  noServer?: boolean;
  /** `websocket`: Asterisk dials the server over chan_websocket (not part of the AudioSocket fault matrix) */
  transport?: 'websocket';
  run(ctx: Ctx): Promise<void>;
}

const MAIN = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

// ---------------------------------------------------------------------------------------------
// helpers

export interface Sut {
  server: AudioSocketServer;
  /** the port Asterisk dials */
  port: number;
  calls: Call[];
  ends: Map<Call, { end: CallEnd; at: number }>;
  call(uuid: string, timeoutMs?: number): Promise<Call>;
  ended(call: Call, timeoutMs: number): Promise<{ end: CallEnd; at: number }>;
}

/** The server under test: the library's createServer, listening on an OS-chosen port. */
export async function serverUnderTest(ctx: Ctx, handler: (call: Call) => unknown, options: ServerOptions = {}): Promise<Sut> {
  const calls: Call[] = [];
  const ends = new Map<Call, { end: CallEnd; at: number }>();
  const server = createServer((call) => {
    calls.push(call);
    call.on('end', (end) => ends.set(call, { end, at: performance.now() }));
    return handler(call);
  }, options);
  server.on('handlerError', () => undefined);
  const addr = await server.listen({ host: '127.0.0.1', port: 0 });
  ctx.defer(() => server.close());
  const port = await ctx.expose(addr.port);
  return {
    server,
    port,
    calls,
    ends,
    call: (uuid, timeoutMs = 5000) => until(() => calls.find((c) => c.uuid === uuid.toLowerCase()), timeoutMs, `server call ${uuid}`),
    ended: (call, timeoutMs) => until(() => ends.get(call), timeoutMs, `end of call ${call.uuid}`),
  };
}

const echo = async (call: Call): Promise<void> => {
  for await (const frame of call) call.write(frame.payload, frame.format);
};

async function farLeg(ctx: Ctx, kind = 0x10, frameBytes = 320): Promise<FarLeg> {
  const far = await new FarLeg(kind, frameBytes).listen();
  ctx.defer(() => far.close());
  return far;
}

export async function rtpLeg(ctx: Ctx): Promise<RtpLeg> {
  const rtp = await new RtpLeg().bind();
  ctx.defer(() => rtp.close());
  return rtp;
}

interface EchoResult {
  sent: number;
  returned: number;
  corrupt: number;
  duplicates: number;
  outOfOrder: number;
  rtts: number[];
  /** inter-arrival of the echoed frames at the far leg */
  gaps: number[];
  firstMissing: number[];
}

/** Matches what came back at the far leg against the tagged frames it sent. */
function matchEcho(fc: FarCall, frames: Buffer[], callId: number): EchoResult {
  const seen = new Set<number>();
  const rtts: number[] = [];
  const arrivals: number[] = [];
  let corrupt = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let last = -1;
  for (const f of fc.frames) {
    if (isSilence(f.payload)) continue;
    const tag = readTag(f.payload);
    if (!tag || tag.callId !== callId || tag.index >= frames.length || !f.payload.equals(frames[tag.index]!)) {
      corrupt++;
      continue;
    }
    if (seen.has(tag.index)) duplicates++;
    if (tag.index < last) outOfOrder++;
    last = tag.index;
    seen.add(tag.index);
    arrivals.push(f.at);
    const sentAt = fc.sentAt[tag.index];
    if (sentAt !== undefined) rtts.push(f.at - sentAt);
  }
  const firstMissing = frames
    .map((_, i) => i)
    .filter((i) => !seen.has(i))
    .slice(0, 5);
  return { sent: frames.length, returned: seen.size, corrupt, duplicates, outOfOrder, rtts, gaps: gaps(arrivals), firstMissing };
}

/** What came back, and how fast (the round trip and the gaps are timing: reported, not asserted). */
function echoMetrics(ctx: Ctx, r: EchoResult): void {
  ctx.metrics['bit-exact'] = `${r.returned}/${r.sent}`;
  ctx.metrics['corrupt'] = r.corrupt;
  ctx.timing('rtt p50', pct(r.rtts, 50), { max: 25 });
  ctx.timing('rtt p99', pct(r.rtts, 99), { max: 80 });
  ctx.timing('rtt max', r.rtts.length ? Math.max(...r.rtts) : NaN, {});
  ctx.timing('gap p50', pct(r.gaps, 50), { min: 17, max: 23 });
  ctx.timing('gap p99', pct(r.gaps, 99), {});
}

/** The echo is correct: every frame back bit-exact (at most one missing), once, in order. */
function checkEcho(r: EchoResult, what: string, minReturned = r.sent - 1): void {
  check(r.corrupt === 0, `${what}: ${r.corrupt} frames came back different from any frame sent (not bit-exact)`);
  check(r.duplicates === 0 && r.outOfOrder === 0, `${what}: ${r.duplicates} duplicated, ${r.outOfOrder} out of order`);
  check(r.returned >= minReturned, `${what}: only ${r.returned}/${r.sent} frames came back (first missing: ${r.firstMissing.join(',')})`);
}

/**
 * A Local pair: the ;2 half runs `dialplan` (as-app or as-dial towards the server under test), the
 * ;1 half runs AudioSocket() towards the far leg. Resolves once both calls are up.
 */
async function localCall(ctx: Ctx, mode: 'app' | 'dial', sut: Sut, far: FarLeg): Promise<{ call: Call; fc: FarCall; uuid: string }> {
  const uuid = randomUuidUpper();
  const farUuid = randomUUID();
  const exten = mode === 'app' ? `${sut.port}*${hex32(uuid)}@as-app` : `${sut.port}*${hex32(uuid)}*slin@as-dial`;
  await ctx.ast.originate(`Local/${exten} application AudioSocket ${farUuid},127.0.0.1:${far.port}`);
  const call = await sut.call(uuid);
  const fc = await far.call(farUuid);
  return { call, fc, uuid };
}

/** The far leg plays `frames`; the echo is complete once every frame is back, or 500 ms after the last was sent. */
async function collectEcho(fc: FarCall, frames: Buffer[], callId: number): Promise<EchoResult> {
  await fc.play(frames);
  const lastSent = fc.sentAt.at(-1) ?? performance.now();
  await until(
    () => matchEcho(fc, frames, callId).returned === frames.length || performance.now() > lastSent + 500 || fc.closedAt !== undefined,
    5000,
    'echo',
  );
  return matchEcho(fc, frames, callId);
}

/** One Local-pair echo call: 100 tagged frames from the far leg, matched as they come back. */
async function localEcho(ctx: Ctx, mode: 'app' | 'dial'): Promise<{ call: Call; result: EchoResult }> {
  const sut = await serverUnderTest(ctx, echo);
  const far = await farLeg(ctx);
  const frames = taggedFrames(1, 100, 440);
  const { call, fc } = await localCall(ctx, mode, sut, far);
  const result = await collectEcho(fc, frames, 1);
  fc.hangup();
  return { call, result };
}

async function quiesce(ast: PrivateAsterisk): Promise<void> {
  await ast.rx('channel request hangup all').catch(() => undefined);
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline) {
    const out = await ast.rx('core show channels count');
    if (/^0 active channels/m.test(out)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ToneStats {
  tonePackets: number;
  spanMs: number;
  gapP50: number;
  gapP99: number;
  gapMax: number;
  gapMin: number;
  maxIn10ms: number;
  seqGaps: number;
  /** gap p99 of the same packets as the test's event loop got them (RtpPacket.loopAt) */
  loopGapP99: number;
}

/** What the phone's RTP leg got of a 1 kHz tone: how much, over how long, how evenly. */
export function rtpToneStats(rtp: RtpLeg, hz: number): ToneStats {
  const isTone = rtp.packets.map((p) => {
    const pcm = ulawToSlinBuf(p.payload);
    return rms(pcm) > 1000 && toneFraction(pcm, hz) > 0.8;
  });
  const tonePk = rtp.packets.filter((_, i) => isTone[i]);
  const times = tonePk.map((p) => p.at);
  const g = gaps(times);
  let maxIn10ms = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! > 10) j++;
    maxIn10ms = Math.max(maxIn10ms, i - j + 1);
  }
  let seqGaps = 0;
  for (let i = 1; i < rtp.packets.length; i++) if (((rtp.packets[i]!.seq - rtp.packets[i - 1]!.seq) & 0xffff) !== 1) seqGaps++;
  // tone samples: count the 20 ms packets, plus partial packets by their share of tone
  return {
    tonePackets: tonePk.length,
    spanMs: times.length ? times.at(-1)! - times[0]! : 0,
    gapP50: pct(g, 50),
    gapP99: pct(g, 99),
    gapMax: g.length ? Math.max(...g) : NaN,
    gapMin: g.length ? Math.min(...g) : NaN,
    maxIn10ms,
    seqGaps,
    loopGapP99: pct(gaps(tonePk.map((p) => p.loopAt)), 99),
  };
}

/** How much of the tone arrived, and how evenly (real time: the span, the gaps, bursts; reported). */
function toneMetrics(ctx: Ctx, s: ToneStats): void {
  ctx.metrics['tone at far leg'] = `${s.tonePackets * 20} ms (${s.tonePackets} packets)`;
  ctx.timing('over', s.spanMs, { min: 1900, max: 2100 });
  ctx.timing('gap p50', s.gapP50, { min: 17, max: 23 });
  ctx.timing('gap p99', s.gapP99, { max: 40 });
  ctx.metrics['gap min/max'] = `${ms(s.gapMin)} / ${ms(s.gapMax)}`;
  ctx.timing('most packets in 10 ms', s.maxIn10ms, { max: 3 }, '');
  ctx.metrics['rtp seq gaps'] = s.seqGaps;
  ctx.metrics['gap p99 as the test loop got them'] = ms(s.loopGapP99);
}

/** All of the 2 s tone reached the phone, nothing more. */
function checkWholeTone(s: ToneStats, what: string): void {
  check(s.tonePackets >= 99 && s.tonePackets <= 101, `${what}: ${s.tonePackets * 20} ms of the 2000 ms tone reached the far leg`);
}

/** One RTP-leg call through the app; `handler` is the server's; ends with the server's hangup. */
async function rtpAppCall(ctx: Ctx, handler: (call: Call) => Promise<void>): Promise<{ rtp: RtpLeg; call: Call; sut: Sut }> {
  const rtp = await rtpLeg(ctx);
  await rtp.drain();
  const loop = eventLoopDelay();
  const sut = await serverUnderTest(ctx, async (call) => {
    await handler(call);
    await call.hangup();
  });
  const uuid = randomUuidUpper();
  await ctx.ast.originate(`UnicastRTP/127.0.0.1:${rtp.port}/c(ulaw) extension ${sut.port}*${hex32(uuid)}@as-app`);
  const call = await sut.call(uuid);
  await sut.ended(call, 10000);
  // the last packets are already out when the socket closes; allow the loopback a moment
  await until(() => performance.now() > sut.ends.get(call)!.at + 100, 1000, 'tail');
  const receiver = await rtp.drain();
  // the arrivals are stamped on the RTP leg's own thread: these two say how late each loop ran
  ctx.timing('test event loop delay max', loop.stop().max, { max: 50 });
  ctx.timing('RTP receiver loop delay max', receiver.loopDelayMaxMs, { max: 5 });
  ctx.metrics['RTP receiver thread'] = rtp.sched;
  return { rtp, call, sut };
}

// ---------------------------------------------------------------------------------------------
// scenarios

export const scenarios: Scenario[] = [
  {
    name: 'isolation',
    checks:
      'the private Asterisk listens on nothing (TCP LISTEN / bound UDP sockets of its pid, from /proc) and has AudioSocket and chan_websocket loaded',
    noServer: true,
    async run(ctx) {
      const sockets = ctx.ast.listeningSockets();
      ctx.metrics['listening sockets'] = sockets.length;
      check(sockets.length === 0, `Asterisk listens: ${sockets.join(', ')}`);
      const mods = await ctx.ast.rx('module show like audiosocket');
      check(/3 modules loaded/.test(mods), `AudioSocket modules: ${mods}`);
      const ws = await ctx.ast.rx('module show like websocket');
      check(/chan_websocket\.so/.test(ws) && /res_websocket_client\.so/.test(ws), `chan_websocket not loaded: ${ws}`);
      ctx.metrics['modules'] = (await ctx.ast.rx('module show')).match(/(\d+) modules loaded/)?.[1] ?? '?';
    },
  },
  {
    name: 'chan_websocket harness',
    checks:
      'a websocket_client.conf section added at run time (for the chan_websocket scenarios to come): WebSocket/<section>/c(slin16) makes Asterisk open a WebSocket upgrade with subprotocol media',
    noServer: true,
    async run(ctx) {
      const requests: string[] = [];
      const srv = net.createServer((s) => {
        let text = '';
        s.on('data', (d: Buffer) => {
          text += d.toString('latin1');
          if (text.includes('\r\n\r\n')) {
            requests.push(text);
            s.destroy();
          }
        });
        s.on('error', () => undefined);
      });
      srv.listen(0, '127.0.0.1');
      await once(srv, 'listening');
      ctx.defer(() => new Promise((r) => srv.close(r)));
      const port = (srv.address() as AddressInfo).port;
      await ctx.ast.addWebsocketClient('probe', { uri: `ws://127.0.0.1:${port}/media` });
      await ctx.ast.originate('WebSocket/probe/c(slin16) application Wait 1');
      const req = await until(() => requests[0], 5000, 'WebSocket upgrade request');
      ctx.metrics['request'] = req.split('\r\n')[0]!;
      check(/^GET \/media HTTP\/1\.1/.test(req), `request ${req.split('\r\n')[0]}`);
      check(/^upgrade: websocket/im.test(req) && /^sec-websocket-protocol: media/im.test(req), `headers:\n${req}`);
    },
  },
  {
    name: 'app echo',
    checks:
      'Local pair: AudioSocket() to an echo server, the other half AudioSocket() to the far leg; 100 tagged 20 ms frames come back bit-exact, in order (round trip reported)',
    async run(ctx) {
      const { result, call } = await localEcho(ctx, 'app');
      echoMetrics(ctx, result);
      ctx.metrics['server got'] = `${call.stats.audioIn} msgs`;
      checkEcho(result, 'app echo');
    },
  },
  {
    name: 'Dial echo',
    checks: 'same through Dial(AudioSocket/127.0.0.1:PORT/uuid/c(slin)) and a bridge',
    async run(ctx) {
      const { result } = await localEcho(ctx, 'dial');
      echoMetrics(ctx, result);
      checkEcho(result, 'Dial echo');
    },
  },
  {
    name: 'Dial c(slin16)',
    checks:
      'an originated AudioSocket/…/c(slin16) far leg dials the server with c(slin16): kind 0x12 with 640 B both ways, echoed bit-exact',
    async run(ctx) {
      const kinds = new Map<string, number>();
      const sut = await serverUnderTest(ctx, async (call) => {
        for await (const f of call) {
          const k = `${'kind' in f ? `0x${f.kind.toString(16)}` : f.format.encoding}/${f.payload.length}B`;
          kinds.set(k, (kinds.get(k) ?? 0) + 1);
          call.write(f.payload, f.format);
        }
      });
      const far = await farLeg(ctx, 0x12, 640);
      const frames = taggedFrames(2, 100, 1000, 16000);
      const uuid = randomUuidUpper();
      const farUuid = randomUUID();
      await ctx.ast.originate(`AudioSocket/127.0.0.1:${far.port}/${farUuid}/c(slin16) extension ${sut.port}*${hex32(uuid)}*slin16@as-dial`);
      const call = await sut.call(uuid);
      const fc = await far.call(farUuid);
      const r = await collectEcho(fc, frames, 2);
      fc.hangup();
      echoMetrics(ctx, r);
      const farKinds = new Set(fc.frames.map((f) => `0x${f.kind.toString(16)}/${f.payload.length}B`));
      ctx.metrics['server got'] = [...kinds].map(([k, n]) => `${n}x${k}`).join(' ');
      ctx.metrics['far leg got'] = [...farKinds].join(' ');
      check(call.transport === 'audiosocket' && call.inboundKind === 0x12, `server: inbound ${call.inboundFormat?.sampleRate}`);
      check(kinds.size === 1 && kinds.has('0x12/640B'), `server got ${[...kinds.keys()].join(', ')} (want only 0x12/640B)`);
      check(farKinds.size === 1 && farKinds.has('0x12/640B'), `far leg got ${[...farKinds].join(', ')} (want only 0x12/640B)`);
      checkEcho(r, 'slin16 echo');
    },
  },
  {
    name: "Dial c(ulaw), inbound: 'ulaw'",
    checks:
      "Dial with c(ulaw): 0x10 carries 160 B of u-law; with inbound 'ulaw' the server hears the far leg's 1 kHz tone and its slin echo is heard back",
    async run(ctx) {
      const heard: Buffer[] = [];
      const formats = new Set<string>();
      const sut = await serverUnderTest(
        ctx,
        async (call) => {
          for await (const f of call) {
            formats.add(`${f.format.encoding}/${f.sampleRate}/${f.payload.length}B`);
            heard.push(Buffer.from(f.payload));
            call.write(f.payload); // slin 8 kHz, sent as 0x10
          }
        },
        // 0x10 carries u-law; deliver it decoded to slin 8 kHz
        { inbound: 'ulaw', receive: 'slin' },
      );
      const far = await farLeg(ctx);
      const pcm = tone(1000, 2000);
      const frames = Array.from({ length: 100 }, (_, i) => pcm.subarray(i * 320, (i + 1) * 320));
      const uuid = randomUuidUpper();
      const farUuid = randomUUID();
      await ctx.ast.originate(`Local/${sut.port}*${hex32(uuid)}*ulaw@as-dial application AudioSocket ${farUuid},127.0.0.1:${far.port}`);
      const call = await sut.call(uuid);
      const fc = await far.call(farUuid);
      await fc.play(frames);
      const lastSent = fc.sentAt.at(-1) ?? performance.now();
      await until(() => performance.now() > lastSent + 300 || fc.closedAt !== undefined, 5000, 'echo');
      fc.hangup();
      const isTone = (b: Buffer): boolean => rms(b) > 1000 && toneFraction(b, 1000) > 0.95;
      const serverTone = heard.filter(isTone).length;
      // the tone repeats every 8 samples, so every 20 ms frame is the same: compare with G.711 of it
      const expected = ulawToSlinBuf(slinToUlawBuf(frames[0]!));
      const g711Exact = heard.filter((h) => h.equals(expected)).length;
      const farToneAt = fc.frames.filter((f) => isTone(f.payload)).map((f) => f.at);
      const farTone = farToneAt.length;
      let maxIn10ms = 0;
      for (let i = 0, j = 0; i < farToneAt.length; i++) {
        while (farToneAt[i]! - farToneAt[j]! > 10) j++;
        maxIn10ms = Math.max(maxIn10ms, i - j + 1);
      }
      const backAfter = farTone ? farToneAt[0]! - fc.sentAt[0]! : NaN;
      const span = farTone ? farToneAt.at(-1)! - farToneAt[0]! : 0;
      const wireBytes = call.stats.bytesIn / Math.max(1, call.stats.messagesIn);
      ctx.metrics['server frames'] = `${heard.length} x ${[...formats].join(' ')}`;
      ctx.metrics['wire bytes/msg'] = wireBytes.toFixed(1);
      ctx.metrics['tone at server'] = `${serverTone * 20} ms`;
      ctx.metrics['server frames = G.711(sent)'] = `${g711Exact}/${serverTone}`;
      ctx.metrics['tone back at far leg'] = `${farTone * 20} ms`;
      ctx.timing('echo back after', backAfter, { max: 60 });
      ctx.timing('echoed tone over', span, { min: 1900, max: 2100 });
      ctx.timing('most frames in 10 ms', maxIn10ms, { max: 3 }, '');
      check(call.transport === 'audiosocket' && call.inboundKind === 0x10, `inbound ${call.inboundFormat?.sampleRate}`);
      check(serverTone >= 98, `server heard ${serverTone * 20} ms of the 2000 ms tone (u-law decoded)`);
      check(g711Exact >= 98, `only ${g711Exact} server frames equal the G.711 coding of the tone sent (bit-exact u-law path)`);
      check(farTone >= 97, `far leg heard ${farTone * 20} ms of the echoed tone`);
      check(formats.size === 1 && formats.has('slin/8000/320B'), `server frames: ${[...formats].join(', ')} (want slin/8000/320B)`);
      check(wireBytes > 162 && wireBytes < 164, `${wireBytes.toFixed(1)} bytes per message on the wire (want 163: 160 B of u-law)`);
    },
  },
  {
    name: 'UUID, app and Dial',
    checks:
      'an upper-case UUID given to AudioSocket() and to Dial(AudioSocket/…) arrives first, as 16 bytes, reported lower-case; the Dial channel is named AudioSocket/127.0.0.1:PORT-uuid; both calls last until the caller hangs up',
    async run(ctx) {
      const sut = await serverUnderTest(ctx, () => undefined);
      const a = randomUuidUpper();
      const d = randomUuidUpper();
      const originatedAt = performance.now();
      await ctx.ast.originate(`Local/${sut.port}*${hex32(a)}@as-app application Wait 1`);
      await ctx.ast.originate(`Local/${sut.port}*${hex32(d)}*slin@as-dial application Wait 1`);
      const ca = await sut.call(a);
      const cd = await sut.call(d);
      const chans = await ctx.ast.channels();
      const named = chans.find((c) => c.name.startsWith('AudioSocket/'));
      ctx.metrics['app uuid'] = ca.uuid;
      ctx.metrics['dial channel'] = named?.name ?? 'none';
      check(ca.uuid === a.toLowerCase() && cd.uuid === d.toLowerCase(), `uuids ${ca.uuid} ${cd.uuid}`);
      // Asterisk names the channel with the UUID as written in the dial string (here upper case)
      check(named !== undefined && named.name.startsWith(`AudioSocket/127.0.0.1:${sut.port}-${d}`), `channel name ${named?.name}`);
      const ea = await sut.ended(ca, 5000);
      const ed = await sut.ended(cd, 5000);
      ctx.metrics['closed after originate'] = `${ms(ea.at - originatedAt)} / ${ms(ed.at - originatedAt)}`;
      for (const e of [ea, ed]) {
        check(
          e.end.reason === 'remote-hangup' && e.at - originatedAt > 950,
          `call ended ${e.end.reason} ${ms(e.at - originatedAt)} after the originate (caller hangs up after 1 s)`,
        );
      }
    },
  },
  ...(['app', 'dial'] as const).map((mode): Scenario => ({
    name: `DTMF through ${mode === 'app' ? 'the app' : 'Dial'}`,
    checks: `SendDTMF(0123456789*#ABCD) on the caller half reaches the server as one 0x03 per digit, in order${mode === 'dial' ? ', through the bridge' : ''}`,
    async run(ctx) {
      const digits: Array<{ d: string; at: number }> = [];
      const sut = await serverUnderTest(ctx, (call) => call.on('dtmf', (d) => digits.push({ d, at: performance.now() })));
      const uuid = randomUuidUpper();
      const exten = mode === 'app' ? `${sut.port}*${hex32(uuid)}@as-app` : `${sut.port}*${hex32(uuid)}*slin@as-dial`;
      await ctx.ast.originate(`Local/${exten} extension s@src-dtmf`);
      const call = await sut.call(uuid);
      const want = '0123456789*#ABCD';
      await until(() => digits.length >= want.length || sut.ends.has(call), 10000, 'digits');
      await sut.ended(call, 5000).catch(() => undefined);
      const got = digits.map((x) => x.d).join('');
      const iv = gaps(digits.map((x) => x.at));
      ctx.metrics['digits'] = got;
      ctx.metrics['interval p50'] = ms(pct(iv, 50));
      ctx.metrics['dtmf msgs'] = call.stats.dtmfIn;
      check(got === want, `digits ${JSON.stringify(got)} (want ${want})`);
      check(call.stats.dtmfIn === want.length, `${call.stats.dtmfIn} DTMF messages for ${want.length} digits`);
    },
  })),
  ...(['app', 'dial'] as const).map((mode): Scenario => ({
    name: `server hangup (${mode === 'app' ? 'app' : 'Dial'})`,
    checks:
      mode === 'app'
        ? 'the server hangs up after 0.5 s: 00 00 00 makes AudioSocket() return 0, the dialplan continues (logged), Asterisk closes at once'
        : 'the server hangs up after 0.5 s: the AudioSocket channel hangs up, Dial returns (g), Asterisk closes at once',
    async run(ctx) {
      let hangupAt = 0;
      const sut = await serverUnderTest(ctx, async (call) => {
        await new Promise((r) => setTimeout(r, 500));
        hangupAt = performance.now();
        await call.hangup();
      });
      const uuid = randomUuidUpper();
      const from = ctx.ast.log.length;
      const exten = mode === 'app' ? `${sut.port}*${hex32(uuid)}@as-app` : `${sut.port}*${hex32(uuid)}*slin@as-dial`;
      await ctx.ast.originate(`Local/${exten} application Wait 5`);
      const call = await sut.call(uuid);
      const { end, at } = await sut.ended(call, 5000);
      const returned = await ctx.ast
        .waitForLog(new RegExp(`TEST ${mode === 'app' ? 'app' : 'dial'}-return ${uuid}`, 'i'), 2000, from)
        .catch(() => undefined);
      const errors = ctx.ast.logMatching(/Failed to (receive|read)|Invalid message|other than hangup/, from);
      ctx.metrics['reason'] = end.reason;
      ctx.timing('hangup -> closed', at - hangupAt, { max: 200 });
      ctx.metrics['dialplan continued'] = returned !== undefined;
      if (returned) ctx.metrics['log'] = returned.text.replace(/^.*TEST /, '');
      check(end.reason === 'local-hangup', `end reason ${end.reason} (${end.error?.message ?? ''})`);
      check(hangupAt > 0 && at >= hangupAt, `the call ended ${ms(hangupAt - at)} before the server hung up`);
      check(
        returned !== undefined,
        `the dialplan did not continue after ${mode === 'app' ? 'AudioSocket()' : 'Dial()'} (no "${mode}-return" log line)`,
      );
      check(errors.length === 0, `Asterisk logged: ${errors.map((e) => e.text).join(' | ')}`);
    },
  })),
  ...(['app', 'dial'] as const).map((mode): Scenario => ({
    name: `Asterisk hangs up (${mode === 'app' ? 'app' : 'Dial'})`,
    checks: 'the caller hangs up after 1.5 s: the server sees EOF (no 00 00 00 from Asterisk) and ends the call as remote-hangup',
    async run(ctx) {
      const sut = await serverUnderTest(ctx, () => undefined);
      const tap = await new FaultProxy(sut.port, 'tap').listen();
      ctx.defer(() => tap.close());
      const uuid = randomUuidUpper();
      const exten = mode === 'app' ? `${tap.port}*${hex32(uuid)}@as-app` : `${tap.port}*${hex32(uuid)}*slin@as-dial`;
      const originatedAt = performance.now();
      await ctx.ast.originate(`Local/${exten} application Wait 1.5`);
      const call = await sut.call(uuid);
      const { end, at } = await sut.ended(call, 5000);
      const seen = await until(() => tap.fromAsterisk.find((c) => c.end !== undefined), 2000, 'Asterisk side closed');
      const kinds = [...new Set(seen.kinds)].map((k) => `0x${k.toString(16).padStart(2, '0')}`);
      ctx.metrics['reason'] = end.reason;
      ctx.metrics['duration'] = ms(end.durationMs);
      // measured from the originate: with the app, Answer() waits up to 500 ms for the caller's
      // first frame before the dialplan goes on to AudioSocket(), so the UUID comes late
      ctx.timing('originate -> closed', at - originatedAt, { min: 1450, max: 2500 });
      ctx.metrics['kinds from Asterisk'] = kinds.join(',');
      ctx.metrics['closed by'] = seen.end === 'fin' ? 'FIN' : 'RST';
      check(end.reason === 'remote-hangup', `end reason ${end.reason}`);
      check(!seen.kinds.includes(0x00), 'Asterisk sent a hangup message');
      // the call lasted until the caller hung up (a load can delay the end, never bring it forward)
      check(at - originatedAt > 1450, `call closed ${ms(at - originatedAt)} after the originate (caller hangs up after 1.5 s)`);
    },
  })),
  {
    name: '20 concurrent calls',
    checks: '20 app-echo calls at once, each with its own tone and tag: every frame comes back bit-exact to its own call (no cross-talk)',
    async run(ctx) {
      const sut = await serverUnderTest(ctx, echo);
      const far = await farLeg(ctx);
      const n = 20;
      // the audio is made before the calls start, and played once all of them are up
      const frameSets = Array.from({ length: n }, (_, k) => taggedFrames(100 + k, 100, 300 + 40 * k));
      const loop = eventLoopDelay();
      const legs = await Promise.all(Array.from({ length: n }, () => localCall(ctx, 'app', sut, far)));
      const all = await Promise.all(legs.map(({ fc }, k) => collectEcho(fc, frameSets[k]!, 100 + k)));
      for (const { fc } of legs) fc.hangup();
      // how many calls were streaming at the same moment
      const windows = legs.map(({ fc }) => [fc.sentAt[0] ?? 0, fc.sentAt.at(-1) ?? 0] as const);
      const overlap = Math.max(...windows.map(([start]) => windows.filter(([a, b]) => a <= start && start <= b).length));
      ctx.metrics['streaming at once'] = overlap;
      const rtts = all.flatMap((r) => r.rtts);
      const exact = all.reduce((s, r) => s + r.returned, 0);
      ctx.metrics['bit-exact'] = `${exact}/${n * 100}`;
      ctx.metrics['corrupt or cross-talk'] = all.reduce((s, r) => s + r.corrupt, 0);
      ctx.timing('rtt p50', pct(rtts, 50), { max: 25 });
      ctx.timing('rtt p99', pct(rtts, 99), { max: 80 });
      ctx.timing('rtt max', rtts.length ? Math.max(...rtts) : NaN, {});
      ctx.metrics['worst call'] = `${Math.min(...all.map((r) => r.returned))}/100`;
      ctx.timing('test event loop delay max', loop.stop().max, { max: 50 });
      all.forEach((r, k) => checkEcho(r, `call ${k + 1}/${n}`));
      check(overlap === n, `only ${overlap} of the ${n} calls were streaming at the same time`);
    },
  },
  {
    name: 'paced play() to the RTP leg',
    checks: 'the server play()s a 2 s 1 kHz tone; the phone leg (UnicastRTP u-law) gets all of it (how evenly: reported)',
    async run(ctx) {
      let playMs = 0;
      const { rtp } = await rtpAppCall(ctx, async (call) => {
        const r = await call.play(tone(1000, 2000));
        playMs = r.sentMs;
      });
      const s = rtpToneStats(rtp, 1000);
      toneMetrics(ctx, s);
      ctx.metrics['play() sentMs'] = playMs;
      checkWholeTone(s, 'play()');
    },
  },
  {
    name: 'single 2 s write() to the RTP leg',
    checks: 'the server hands a 2 s tone to one call.write(); the phone leg gets all of it, like play() (how evenly: reported)',
    async run(ctx) {
      let accepted: boolean | undefined;
      const { rtp, call } = await rtpAppCall(ctx, async (call) => {
        accepted = call.write(tone(1000, 2000));
        // wait until the call has sent that much audio (or more) past the write
        const sent0 = call.stats.framesSent;
        await until(() => call.stats.framesSent >= sent0 + 110 || !call.connected, 5000, 'audio out', 20);
      });
      const s = rtpToneStats(rtp, 1000);
      toneMetrics(ctx, s);
      ctx.metrics['write() returned'] = String(accepted);
      ctx.metrics['droppedWrites/delayedWrites/droppedSlots'] =
        `${call.stats.droppedWrites}/${call.stats.delayedWrites}/${call.transport === 'audiosocket' ? call.stats.droppedSlots : '-'}`;
      checkWholeTone(s, 'write()');
    },
  },
  {
    name: 'inspect: Dial without c() from a u-law phone',
    checks:
      '`audiosocket inspect` behind Dial(AudioSocket/…) without c(), called from a u-law RTP leg: reports 0x10 with 160 B frames, G.711 u-law, and the c(slin) fix',
    async run(ctx) {
      const { child, lines, events } = spawnJsonLines(MAIN, ['inspect', '--host', '127.0.0.1', '--port', '0', '--json']);
      ctx.defer(() => child.exitCode === null && child.kill('SIGKILL'));
      const listening = await until(() => events().find((e) => e.event === 'listening'), 10000, 'inspect listening');
      const port = await ctx.expose(Number(listening.port));
      const rtp = await rtpLeg(ctx);
      const uuid = randomUuidUpper();
      await ctx.ast.originate(`UnicastRTP/127.0.0.1:${rtp.port}/c(ulaw) extension ${port}*${hex32(uuid)}*none@as-dial`);
      await rtp.waitRemote(5000);
      const pcm = tone(1000, 2000);
      await rtp.sendPaced(Array.from({ length: 100 }, (_, i) => slinToUlawBuf(pcm.subarray(i * 320, (i + 1) * 320))));
      const chan = (await ctx.ast.channels()).find((c) => c.name.startsWith(`UnicastRTP/127.0.0.1:${rtp.port}`));
      if (chan) await ctx.ast.hangupChannel(chan.name);
      const report = await until(() => events().find((e) => e.event === 'report'), 5000, 'inspect report').catch(() => undefined);
      child.kill('SIGINT');
      check(report !== undefined, `no report from inspect:\n${lines.join('\n')}`);
      const kinds = report.kinds as Record<string, Record<string, number>>;
      ctx.metrics['kinds'] = JSON.stringify(kinds);
      ctx.metrics['format'] = String(report.format);
      ctx.metrics['fix'] = String((report.advice as string[])[0] ?? 'none');
      ctx.metrics['inter-arrival p50'] = ms((report.interArrival as { p50Ms: number }).p50Ms);
      check(report.uuid === uuid.toLowerCase(), `uuid ${String(report.uuid)}`);
      const sizes = kinds['0x10 (slin)'] ?? {};
      check(
        Object.keys(kinds).length === 1 && Object.keys(sizes).join() === '160' && sizes['160']! >= 95,
        `kinds ${JSON.stringify(kinds)} (want ~100 x 160 B under 0x10)`,
      );
      check(/G\.711 ulaw/.test(String(report.format)), `format ${String(report.format)}`);
      check(/c\(slin\)/.test((report.advice as string[])[0] ?? ''), `advice ${JSON.stringify(report.advice)}`);
    },
  },
  {
    name: 'app 2 s timeout vs keep-alive',
    checks:
      'nobody sends audio for 4 s: with keep-alive the call lasts until the caller hangs up; control: with keepAlive false Asterisk hangs up after ~2 s ("Reached timeout")',
    async run(ctx) {
      const on = await serverUnderTest(ctx, () => undefined);
      const off = await serverUnderTest(ctx, () => undefined, { keepAlive: false });
      const from = ctx.ast.log.length;
      const u1 = randomUuidUpper();
      const u2 = randomUuidUpper();
      const originatedAt = performance.now();
      await ctx.ast.originate(`Local/${on.port}*${hex32(u1)}@as-app application Wait 4`);
      await ctx.ast.originate(`Local/${off.port}*${hex32(u2)}@as-app application Wait 4`);
      const c1 = await on.call(u1);
      const c2 = await off.call(u2);
      const e1 = await on.ended(c1, 8000);
      const e2 = await off.ended(c2, 8000);
      const timeouts = ctx.ast.logMatching(/Reached timeout after 2000 ms/, from);
      ctx.metrics['keep-alive call'] =
        `${ms(e1.end.durationMs)} ${e1.end.reason} (${ms(e1.at - originatedAt)} after the originate), ${c1.transport === 'audiosocket' ? c1.stats.silenceFrames : 0} silence frames`;
      ctx.metrics['control (no keep-alive)'] = e2.end.reason;
      ctx.timing('control lasted', e2.end.durationMs, { min: 1800, max: 3000 });
      ctx.metrics['"Reached timeout" lines'] = timeouts.length;
      check(
        e1.end.reason === 'remote-hangup' && e1.at - originatedAt > 3950,
        `keep-alive call ended ${e1.end.reason} ${ms(e1.at - originatedAt)} after the originate (caller hangs up at 4 s)`,
      );
      // Asterisk's 2 s timer ended the control call: not before 2 s, and before the caller's hangup
      // ended the keep-alive call (the one "Reached timeout" line below is the control call's)
      check(
        e2.end.durationMs > 1800 && e2.at < e1.at,
        `control call lasted ${ms(e2.end.durationMs)}, ended ${ms(e2.at - e1.at)} after the keep-alive call (Asterisk's timer: 2 s)`,
      );
      check(timeouts.length === 1, `${timeouts.length} "Reached timeout" lines (want 1: the control call only)`);
    },
  },
];

export { quiesce };
