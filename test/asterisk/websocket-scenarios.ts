/**
 * The chan_websocket scenarios of `npm run test:asterisk`: the same library server, this time
 * dialled by Asterisk's WebSocket channel driver (`Dial(WebSocket/<connection>/c(CODEC))`), with
 * the far end of the bridge an AudioSocket channel (or a Local pair) that records what the caller
 * would hear.
 *
 * How a call is found: the dialplan sets `__WSTAG=TAG` on the caller, which Dial passes on to the
 * WebSocket channel, and MEDIA_START (JSON) lists it in `channel_variables`. Every server gets its
 * own `websocket_client.conf` section, `ws<PORT>`.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  createServer,
  type WebSocketCall,
  type Call,
  type CallEnd,
  type ConnectionRejection,
  type ServerOptions,
  type AudioSocketServer,
} from '#lib/index.js';
import type { WebsocketClientOptions } from './asterisk.js';
import { FarLeg, type FarCall } from './legs.js';
import { gaps, isSilence, ms, pct, readTag, rms, taggedFrames, tone, toneFraction, ulawToSlinBuf } from './signals.js';
import type { Ctx, Scenario } from './scenarios.js';
import { check, eventLoopDelay, spawnJsonLines, until } from './util.js';

/**
 * Dialplan for the scenarios below. EXTEN = PORT*CODEC*TAG[*OPTS]: Set(__WSTAG=TAG), then
 * Dial(WebSocket/wsPORT/c(CODEC)v(tag=TAG)OPTS). The tag also travels as a URI parameter (`v()`)
 * because the plain-text MEDIA_START has no channel variables; see tagOf() for why the channel
 * variable comes first.
 */
export const WEBSOCKET_DIALPLAN = `
[ws-dial]
exten => _X.,1,Set(PORT=\${CUT(EXTEN,*,1)})
 same => n,Set(CODEC=\${CUT(EXTEN,*,2)})
 same => n,Set(__WSTAG=\${CUT(EXTEN,*,3)})
 same => n,Set(OPTS=\${CUT(EXTEN,*,4)})
 same => n,Log(NOTICE,TEST ws-dial-start \${WSTAG} \${CHANNEL} \${CODEC})
 same => n,Dial(WebSocket/ws\${PORT}/c(\${CODEC})v(tag=\${WSTAG})\${OPTS},,g)
 same => n,Log(NOTICE,TEST ws-dial-return \${WSTAG} \${DIALSTATUS})
 same => n,Hangup()
`;

export interface WsSut {
  server: AudioSocketServer;
  port: number;
  calls: Call[];
  /** the server's connectionRejected events */
  rejections: ConnectionRejection[];
  ends: Map<Call, { end: CallEnd; at: number }>;
  /** the server's call whose MEDIA_START carries WSTAG = tag */
  call(tag: string, timeoutMs?: number): Promise<WebSocketCall>;
  ended(call: Call, timeoutMs: number): Promise<{ end: CallEnd; at: number }>;
}

/**
 * The call's tag: the channel variable WSTAG when MEDIA_START has channel variables (JSON), else
 * the URL's `tag` (plain text). The URL is not reliable with calls dialled at the same moment
 * through the same websocket_client.conf section: chan_websocket stores the `v()` parameters on
 * that shared client object (`ast_websocket_client_add_uri_params()` in `webchan_call()`) just
 * before it connects, so one call can connect with another call's parameters.
 */
const tagOf = (call: WebSocketCall): string | null =>
  call.mediaStart.channelVariables['__WSTAG'] ?? new URLSearchParams(call.url.split('?')[1] ?? '').get('tag');

let tags = 0;
export const newTag = (): string => `t${process.pid}x${++tags}`;

/**
 * The server under test, serving chan_websocket on its own port, and the websocket_client.conf
 * section `ws<PORT>` that dials it (by default `ws://127.0.0.1:PORT/media`; `client` gives another).
 */
export async function wsServerUnderTest(
  ctx: Ctx,
  handler: (call: Call) => unknown,
  options: ServerOptions = {},
  client: (port: number) => WebsocketClientOptions = (port) => ({ uri: `ws://127.0.0.1:${port}/media` }),
): Promise<WsSut> {
  const calls: WebSocketCall[] = [];
  const rejections: ConnectionRejection[] = [];
  const ends = new Map<Call, { end: CallEnd; at: number }>();
  const server = createServer(
    (call) => {
      if (call.transport === 'websocket') calls.push(call);
      call.on('end', (end) => ends.set(call, { end, at: performance.now() }));
      return handler(call);
    },
    { ...options, websocket: { port: 0, host: '127.0.0.1', ...(options.websocket ?? {}) } as ServerOptions['websocket'] },
  );
  server.on('handlerError', () => undefined);
  server.on('connectionRejected', (r) => rejections.push(r));
  await server.listen({ host: '127.0.0.1', port: 0 });
  ctx.defer(() => server.close());
  const port = server.websocketAddress()!.port;
  await ctx.ast.addWebsocketClient(`ws${port}`, client(port));
  return {
    server,
    port,
    calls,
    rejections,
    ends,
    call: (tag, timeoutMs = 5000) =>
      until(() => calls.find((c) => tagOf(c) === tag), timeoutMs, `server call with WSTAG ${tag}`).catch((e: Error) => {
        const seen = calls.map((c) => `${c.url} ${JSON.stringify(c.mediaStart)}`);
        throw new Error(`${e.message}; the server has ${calls.length} calls${seen.length ? `: ${seen.join('; ')}` : ''}`);
      }),
    ended: (call, timeoutMs) => until(() => ends.get(call), timeoutMs, `end of call ${call.uuid}`),
  };
}

/** An echo written for AudioSocket, unchanged. */
const echo = async (call: Call): Promise<void> => {
  for await (const frame of call) call.write(frame.payload, frame.format);
};

async function farLeg(ctx: Ctx, kind: number, frameBytes: number): Promise<FarLeg> {
  const far = await new FarLeg(kind, frameBytes).listen();
  ctx.defer(() => far.close());
  return far;
}

/**
 * One call: an AudioSocket channel to the far leg (c(CODEC)), answered into ws-dial, which dials
 * the server under test over chan_websocket with the same codec.
 */
async function wsCall(
  ctx: Ctx,
  sut: WsSut,
  far: FarLeg,
  codec: string,
  opts = '',
): Promise<{ call: WebSocketCall; fc: FarCall; tag: string }> {
  const tag = newTag();
  const farUuid = randomUUID();
  await ctx.ast.originate(
    `AudioSocket/127.0.0.1:${far.port}/${farUuid}/c(${codec}) extension ${sut.port}*${codec}*${tag}${opts ? `*${opts}` : ''}@ws-dial`,
  );
  const call = await sut.call(tag);
  const fc = await far.call(farUuid);
  return { call, fc, tag };
}

export interface Match {
  sent: number;
  returned: number;
  corrupt: number;
  disorder: number;
  rtts: number[];
  gaps: number[];
  firstMissing: number[];
}

/**
 * Matches the far leg's frames against the frames it sent, by exact payload. Incremental: each
 * update() looks only at what arrived since the last, so polling it for 20 calls at once costs
 * the event loop (which the far legs' clocks share) next to nothing.
 */
class FrameMatcher {
  readonly #index: Map<string, number>;
  readonly #seen = new Set<number>();
  readonly #rtts: number[] = [];
  readonly #arrivals: number[] = [];
  #corrupt = 0;
  #disorder = 0;
  #last = -1;
  #next = 0;

  constructor(
    readonly fc: FarCall,
    readonly frames: Buffer[],
  ) {
    this.#index = new Map(frames.map((f, i) => [f.toString('latin1'), i]));
  }

  update(): Match {
    const { fc } = this;
    for (; this.#next < fc.frames.length; this.#next++) {
      const f = fc.frames[this.#next]!;
      if (isSilence(f.payload) || f.payload.every((b) => b === 0xff || b === 0x7f)) continue; // slin or u-law silence
      const i = this.#index.get(f.payload.toString('latin1'));
      if (i === undefined) {
        this.#corrupt++;
        continue;
      }
      if (this.#seen.has(i) || i < this.#last) this.#disorder++;
      this.#last = i;
      this.#seen.add(i);
      this.#arrivals.push(f.at);
      const sentAt = fc.sentAt[i];
      if (sentAt !== undefined) this.#rtts.push(f.at - sentAt);
    }
    return {
      sent: this.frames.length,
      returned: this.#seen.size,
      corrupt: this.#corrupt,
      disorder: this.#disorder,
      rtts: [...this.#rtts],
      gaps: gaps(this.#arrivals),
      firstMissing: this.frames
        .map((_, i) => i)
        .filter((i) => !this.#seen.has(i))
        .slice(0, 5),
    };
  }
}

/**
 * What came back, and how fast. chan_websocket queues what we send and plays it on its own 20 ms
 * timer, so a frame waits for the next tick (0-20 ms) plus any frames standing in the queue before
 * it. Timing: reported, not asserted.
 */
function matchMetrics(ctx: Ctx, r: Match): void {
  ctx.metrics['bit-exact'] = `${r.returned}/${r.sent}`;
  ctx.metrics['corrupt'] = r.corrupt;
  ctx.timing('rtt p50', pct(r.rtts, 50), { max: 45 });
  ctx.timing('rtt p99', pct(r.rtts, 99), { max: 65 });
  ctx.timing('gap p50', pct(r.gaps, 50), { min: 17, max: 23 });
  ctx.timing('gap p99', pct(r.gaps, 99), {});
}

/** The echo is correct: every frame back bit-exact (at most one missing), once, in order. */
export function checkMatch(r: Match, what: string): void {
  check(r.corrupt === 0, `${what}: ${r.corrupt} frames came back different from every frame sent (not bit-exact)`);
  check(r.disorder === 0, `${what}: ${r.disorder} frames duplicated or out of order`);
  check(r.returned >= r.sent - 1, `${what}: only ${r.returned}/${r.sent} frames came back (first missing: ${r.firstMissing.join(',')})`);
}

/**
 * Plays `frames` from the far leg and waits until `expected` (by default the frames themselves)
 * is back, or 500 ms after the last was sent. First the far leg is quiet for 200 ms: whatever
 * stands in chan_websocket's queue by then (silence the far leg sent back to back after a stall of
 * the test's event loop, echoed by the server) is played out, and does not delay the frames.
 */
export async function playAndCollect(fc: FarCall, frames: Buffer[], expected: Buffer[] = frames): Promise<Match> {
  const matcher = new FrameMatcher(fc, expected);
  await fc.quiet(200);
  await fc.play(frames);
  const lastSent = fc.sentAt.at(-1) ?? performance.now();
  await until(
    () => matcher.update().returned === expected.length || performance.now() > lastSent + 500 || fc.closedAt !== undefined,
    5000,
    'echo',
  );
  return matcher.update();
}

/** 100 distinct u-law frames of a 440 Hz tone: bytes 0-1 number the frame (values that survive a u-law -> slin -> u-law round trip). */
function ulawFrames(count: number): Buffer[] {
  const pcm = tone(440, count * 20, 8000);
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const u = Buffer.alloc(160);
    for (let s = 0; s < 160; s++) {
      const x = pcm.readInt16LE((i * 160 + s) * 2);
      u[s] = linToUlawSafe(x);
    }
    u[0] = 0x10 + (i >> 6);
    u[1] = 0x10 + (i & 63);
    out.push(u);
  }
  return out;
}

// G.711 u-law of a sample; never 0x7f (negative zero, which decodes to 0 and comes back as 0xff)
function linToUlawSafe(sample: number): number {
  let s = Math.max(-32635, Math.min(32635, sample));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const u = ~(sign | (exponent << 4) | ((s >> (exponent + 3)) & 0x0f)) & 0xff;
  return u === 0x7f ? 0xff : u;
}

/** Tone frames (of `hz`) seen at the far leg, with their arrival times. slin at `rate`. */
function toneArrivals(fc: FarCall, hz: number, rate: number, after = 0): number[] {
  return fc.frames.filter((f) => f.at >= after && rms(f.payload) > 1000 && toneFraction(f.payload, hz, rate) > 0.8).map((f) => f.at);
}

function maxIn10ms(times: number[]): number {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! > 10) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

const MAIN = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

/** The test certificate (self-signed, CN localhost, SANs DNS:localhost and IP:127.0.0.1) and its key; Asterisk trusts it as its CA list. */
export const TLS_CERT = fileURLToPath(new URL('../../../test/fixtures/tls/cert.pem', import.meta.url));
export const TLS_KEY = fileURLToPath(new URL('../../../test/fixtures/tls/key.pem', import.meta.url));
const CREDENTIALS = { username: 'asterisk', password: 'pw-for-the-test' };

/** `wss://127.0.0.1:PORT/media` with username/password, the server's certificate checked against TLS_CERT (not its host name: see below). */
const wssClient =
  (password: string, extra: Record<string, string> = {}) =>
  (port: number): WebsocketClientOptions => ({
    uri: `wss://127.0.0.1:${port}/media`,
    extra: {
      username: CREDENTIALS.username,
      password,
      tls_enabled: 'yes',
      ca_list_file: TLS_CERT,
      verify_server_cert: 'yes',
      // Asterisk matches the host name against the certificate's common name and DNS
      // subjectAltNames only, never an IP address SAN (main/tcptls.c), so with an IP in the URI
      // it must be off (docs/testing-with-asterisk.md, section 8); wss://localhost passes it.
      verify_server_hostname: 'no',
      ...extra,
    },
  });

const tlsServerOptions = (): ServerOptions => ({
  websocket: {
    port: 0,
    host: '127.0.0.1',
    credentials: CREDENTIALS,
    tls: { cert: readFileSync(TLS_CERT), key: readFileSync(TLS_KEY) },
  },
});

// ---------------------------------------------------------------------------------------------

export const websocketScenarios: Scenario[] = [
  {
    name: 'ws echo slin16',
    checks:
      'Dial(WebSocket/…/c(slin16)) to an echo handler written for AudioSocket, unchanged: MEDIA_START (slin16, 640 B, 20 ms), 100 tagged 640 B frames come back bit-exact, in order (round trip and gaps reported)',
    transport: 'websocket',
    async run(ctx) {
      const sut = await wsServerUnderTest(ctx, echo);
      const far = await farLeg(ctx, 0x12, 640);
      const { call, fc } = await wsCall(ctx, sut, far, 'slin16');
      const frames = taggedFrames(7, 100, 1000, 16000);
      const r = await playAndCollect(fc, frames);
      fc.hangup();
      matchMetrics(ctx, r);
      const ms0 = call.mediaStart;
      ctx.metrics['MEDIA_START'] = `${ms0.format} ${ms0.optimalFrameSize} B ${ms0.ptime} ms`;
      ctx.metrics['uuid'] = call.uuid;
      ctx.metrics['url'] = (call as WebSocketCall).url;
      ctx.metrics['channel_variables'] = Object.keys(ms0.channelVariables).join(' ');
      check(call.transport === 'websocket', `transport ${call.transport}`);
      check(ms0.format === 'slin16' && ms0.optimalFrameSize === 640 && ms0.ptime === 20, `MEDIA_START ${JSON.stringify(ms0)}`);
      check(call.uuid !== '' && call.uuid === ms0.channelId, `uuid ${call.uuid} (channel_id ${ms0.channelId})`);
      check(readTag(frames[0]!)?.callId === 7, 'tagged frames');
      checkMatch(r, 'slin16 echo');
    },
  },
  {
    name: 'ws wss + credentials echo',
    checks:
      'Asterisk dials wss://127.0.0.1:PORT/media with username/password (tls_enabled, ca_list_file = the test certificate, verify_server_cert = yes) a server that requires both: the call is accepted, no rejection, and 100 tagged slin16 frames come back bit-exact, in order',
    transport: 'websocket',
    async run(ctx) {
      const sut = await wsServerUnderTest(ctx, echo, tlsServerOptions(), wssClient(CREDENTIALS.password));
      const far = await farLeg(ctx, 0x12, 640);
      const { call, fc } = await wsCall(ctx, sut, far, 'slin16');
      const frames = taggedFrames(8, 100, 1000, 16000);
      const r = await playAndCollect(fc, frames);
      fc.hangup();
      matchMetrics(ctx, r);
      ctx.metrics['MEDIA_START'] = `${call.mediaStart.format} ${call.mediaStart.optimalFrameSize} B`;
      ctx.metrics['rejected'] = sut.server.stats.rejected;
      check(call.mediaStart.format === 'slin16', `MEDIA_START ${JSON.stringify(call.mediaStart)}`);
      check(sut.rejections.length === 0, `rejections: ${JSON.stringify(sut.rejections)}`);
      checkMatch(r, 'wss slin16 echo');
    },
  },
  {
    name: 'ws wss wrong password',
    checks:
      'the same wss:// section with a wrong password (reconnect_attempts = 1): the server answers HTTP 401 and counts one `unauthorized` rejection (transport websocket) and no call; Asterisk logs the failed connection as Unauthorized, Dial() fails with DIALSTATUS CHANUNAVAIL and the dialplan continues',
    transport: 'websocket',
    async run(ctx) {
      const sut = await wsServerUnderTest(ctx, echo, tlsServerOptions(), wssClient('not-the-password', { reconnect_attempts: '1' }));
      const from = ctx.ast.log.length;
      const tag = newTag();
      await ctx.ast.originate(`Local/${sut.port}*slin16*${tag}@ws-dial application Wait 3`);
      const returned = await ctx.ast.waitForLog(new RegExp(`TEST ws-dial-return ${tag}`), 10000, from);
      const status = /ws-dial-return \S+ (\S*)/.exec(returned.text)?.[1] ?? '';
      // what Asterisk logged between the Dial and its return
      const failed = ctx.ast
        .logMatching(/WebSocket connection failed|Websocket connection to .* failed/, from)
        .map((l) => l.text.replace(/^.*?(WARNING|ERROR)/, '$1'));
      await until(() => sut.rejections.length > 0, 2000, 'the rejection').catch(() => undefined);
      ctx.metrics['DIALSTATUS'] = status;
      ctx.metrics['rejections'] = sut.rejections.map((r) => `${r.transport}/${r.reason}`).join(' ') || 'none';
      ctx.metrics['Asterisk says'] = failed.join(' | ') || 'nothing';
      check(
        sut.rejections.length === 1 && sut.rejections[0]!.transport === 'websocket' && sut.rejections[0]!.reason === 'unauthorized',
        `rejections ${JSON.stringify(sut.rejections)} (want one websocket/unauthorized)`,
      );
      check(sut.server.stats.rejected === 1, `stats.rejected ${sut.server.stats.rejected}`);
      check(sut.calls.length === 0 && sut.server.stats.totalCalls === 0, `the server has ${sut.calls.length} calls (want none)`);
      check(sut.server.stats.activeCalls === 0, `${sut.server.stats.activeCalls} call slots held`);
      check(status === 'CHANUNAVAIL', `DIALSTATUS ${status} (want CHANUNAVAIL)`);
      check(
        failed.some((l) => /Unauthorized/.test(l)),
        `Asterisk logged no Unauthorized connection failure: ${failed.join(' | ')}`,
      );
    },
  },
  {
    name: 'ws echo ulaw',
    checks:
      'Dial(WebSocket/…/c(ulaw)): 160 B u-law messages both ways; the unchanged echo handler gets the frames as Asterisk sent them (frame.format ulaw, as on AudioSocket) and its echo reaches the caller as the same u-law bytes, not transcoded',
    transport: 'websocket',
    async run(ctx) {
      const formats = new Set<string>();
      const sut = await wsServerUnderTest(ctx, async (call) => {
        for await (const f of call) {
          formats.add(`${f.format.encoding}/${f.sampleRate}/${f.payload.length}B`);
          call.write(f.payload, f.format);
        }
      });
      // The far leg is AudioSocket/…/c(ulaw): it reads our 0x10 messages as slin and writes u-law
      // (160 B under 0x10) to us. It sends dec(U) for distinct u-law frames U, so Asterisk codes U
      // towards the server, and U must come back.
      const far = await farLeg(ctx, 0x10, 320);
      const { call, fc } = await wsCall(ctx, sut, far, 'ulaw');
      const ulaw = ulawFrames(100);
      const r = await playAndCollect(
        fc,
        ulaw.map((u) => ulawToSlinBuf(u)),
        ulaw,
      );
      fc.hangup();
      matchMetrics(ctx, r);
      ctx.metrics['MEDIA_START'] = `${call.mediaStart.format} ${call.mediaStart.optimalFrameSize} B`;
      ctx.metrics['handler got'] = [...formats].join(' ');
      const wireIn = call.stats.bytesIn / Math.max(1, call.stats.audioIn);
      ctx.metrics['wire bytes/msg in'] = wireIn.toFixed(1);
      check(
        call.mediaStart.format === 'ulaw' && call.mediaStart.optimalFrameSize === 160,
        `MEDIA_START ${JSON.stringify(call.mediaStart)}`,
      );
      check(wireIn === 160, `${wireIn.toFixed(1)} bytes per audio message from Asterisk (want 160: 20 ms of u-law)`);
      check(
        formats.size === 1 && formats.has('ulaw/8000/160B'),
        `the handler got ${[...formats].join(', ')} (want ulaw/8000/160B: the channel's format, with frame.format saying so)`,
      );
      checkMatch(r, 'ulaw echo');
    },
  },
  {
    name: 'ws DTMF',
    checks: 'SendDTMF(0123456789*#ABCD) on the caller half reaches the server as DTMF_END events, one dtmf per digit, in order',
    transport: 'websocket',
    async run(ctx) {
      const digits: string[] = [];
      const sut = await wsServerUnderTest(ctx, (call) => call.on('dtmf', (d) => digits.push(d)));
      const tag = newTag();
      await ctx.ast.originate(`Local/${sut.port}*slin16*${tag}@ws-dial extension s@src-dtmf`);
      const call = await sut.call(tag);
      const want = '0123456789*#ABCD';
      await until(() => digits.length >= want.length || sut.ends.has(call), 10000, 'digits');
      const got = digits.join('');
      ctx.metrics['digits'] = got;
      ctx.metrics['dtmf events'] = call.stats.dtmfIn;
      check(got === want, `digits ${JSON.stringify(got)} (want ${want})`);
    },
  },
  ...(['json', 'plain-text'] as const).map((format): Scenario => ({
    name: `ws play() and mark() complete when played (${format})`,
    checks: `control format ${format}: play() of a 2 s tone resolves when the caller has heard the last of it (MEDIA_MARK_PROCESSED), not when it was sent; a mark() after it resolves true; the tone arrives whole; we stay at most leadMs (1 s) ahead of playout (how evenly: reported)`,
    transport: 'websocket',
    async run(ctx) {
      let playedAt = 0;
      let markedAt = 0;
      let marked: boolean | undefined;
      let sentAt = 0;
      let sentMs = -1;
      const sut = await wsServerUnderTest(ctx, async (call) => {
        const start = performance.now();
        const p = call.play(tone(1000, 2000, 16000));
        const m = call.mark('after-tone');
        // everything is handed to Asterisk's buffer at once (it holds ~1000 frames)
        await until(() => call.stats.framesSent >= 100, 5000, 'frames handed over', 5);
        sentAt = performance.now() - start;
        sentMs = (await p).sentMs;
        playedAt = performance.now();
        marked = await m;
        markedAt = performance.now();
      });
      const far = await farLeg(ctx, 0x12, 640);
      const { call, fc } = await wsCall(ctx, sut, far, 'slin16', format === 'json' ? '' : 'f(plain-text)');
      await until(() => markedAt > 0 || sut.ends.has(call), 8000, 'play() and mark()');
      await until(() => performance.now() > markedAt + 200, 1000, 'tail');
      fc.hangup();
      const tones = toneArrivals(fc, 1000, 16000);
      const last = tones.at(-1) ?? NaN;
      const g = gaps(tones);
      ctx.metrics['control format'] = (call as { controlFormat?: string }).controlFormat ?? '?';
      ctx.metrics['tone at far leg'] = `${tones.length * 20} ms`;
      ctx.timing('tone over', last - tones[0]!, { min: 1900, max: 2100 });
      ctx.timing('handed over after', sentAt, { max: 1300 });
      ctx.timing('play() resolved after last tone frame', playedAt - last, { max: 150 });
      ctx.timing('mark() resolved after last tone frame', markedAt - last, { max: 150 });
      ctx.timing('gap p50', pct(g, 50), { min: 17, max: 23 });
      ctx.timing('gap p99', pct(g, 99), {});
      ctx.timing('most frames in 10 ms', maxIn10ms(tones), { max: 3 }, '');
      ctx.metrics['sentMs'] = sentMs;
      check(
        (call as { controlFormat?: string }).controlFormat === format,
        `control format ${(call as { controlFormat?: string }).controlFormat}`,
      );
      check(tones.length >= 99 && tones.length <= 101, `${tones.length * 20} ms of the 2000 ms tone reached the far leg`);
      // the default leadMs (1000): at most 1 s of audio in Asterisk's buffer ahead of playout, so
      // the last of 2 s is handed over no sooner than ~1 s after play() (a load can only delay it)
      check(sentAt > 900, `the 2 s tone was handed over ${ms(sentAt)} after play() (want ~1000 ms: leadMs 1000 ahead of playout)`);
      // play() resolves when the caller has heard the tone, not when it was sent; mark() after it
      check(playedAt > last - 30, `play() resolved ${ms(last - playedAt)} before the last tone frame reached the caller`);
      check(
        marked === true && markedAt >= playedAt,
        `mark() resolved ${String(marked)} ${ms(markedAt - playedAt)} after play() (want true, not before play())`,
      );
      check(sentMs === 2000, `play() reports ${sentMs} ms sent (want 2000)`);
    },
  })),
  {
    name: 'ws flush',
    checks:
      "flush() 1 s into a 4 s prompt: FLUSH_MEDIA empties Asterisk's buffer, the caller hears only part of the prompt, and play() reports sentMs = what the caller heard (±60 ms)",
    transport: 'websocket',
    async run(ctx) {
      let flushAt = 0;
      let result: { status: string; sentMs: number } | undefined;
      const sut = await wsServerUnderTest(ctx, async (call) => {
        const p = call.play(tone(1000, 4000, 16000));
        const t0 = performance.now();
        await until(() => performance.now() > t0 + 1000, 2000, 'one second of the prompt', 5);
        flushAt = performance.now();
        call.flush();
        result = await p;
      });
      const far = await farLeg(ctx, 0x12, 640);
      const { call, fc } = await wsCall(ctx, sut, far, 'slin16');
      await until(() => result !== undefined || sut.ends.has(call), 8000, 'flushed play()');
      await until(() => performance.now() > flushAt + 500, 1000, 'after the flush');
      fc.hangup();
      const tones = toneArrivals(fc, 1000, 16000);
      const heardMs = tones.length * 20;
      const lastAfterFlush = (tones.at(-1) ?? 0) - flushAt;
      ctx.metrics['play()'] = `${result?.status} sentMs ${result?.sentMs}`;
      ctx.timing('caller heard', heardMs, { min: 800, max: 1400 });
      ctx.timing('last tone frame after flush()', lastAfterFlush, { max: 100 });
      check(result?.status === 'interrupted', `play() ${result?.status}`);
      // the flush cut the prompt: the caller heard some of it, not all (1 s of it was in
      // Asterisk's queue when flush() was called)
      check(heardMs >= 200 && heardMs <= 3000, `the caller heard ${heardMs} ms of the 4000 ms prompt (flushed after ~1000 ms)`);
      // flush accounting: what play() reports as sent is what the caller heard
      check(Math.abs(result!.sentMs - heardMs) <= 60, `sentMs ${result!.sentMs} but the caller heard ${heardMs} ms`);
    },
  },
  {
    name: 'ws server hangup',
    checks:
      'the server hangs up after 0.5 s: Asterisk hangs up the WebSocket channel and closes at once, Dial returns (g) and the dialplan continues',
    transport: 'websocket',
    async run(ctx) {
      let hangupAt = 0;
      const sut = await wsServerUnderTest(ctx, async (call) => {
        const t0 = performance.now();
        await until(() => performance.now() > t0 + 500, 2000, 'half a second', 5);
        hangupAt = performance.now();
        await call.hangup();
      });
      const from = ctx.ast.log.length;
      const tag = newTag();
      await ctx.ast.originate(`Local/${sut.port}*slin16*${tag}@ws-dial application Wait 5`);
      const call = await sut.call(tag);
      const { end, at } = await sut.ended(call, 5000);
      const returned = await ctx.ast.waitForLog(new RegExp(`TEST ws-dial-return ${tag}`), 2000, from).catch(() => undefined);
      ctx.metrics['reason'] = end.reason;
      ctx.timing('hangup -> closed', at - hangupAt, { max: 300 });
      ctx.metrics['dialplan continued'] = returned?.text.replace(/^.*TEST /, '') ?? 'no';
      check(end.reason === 'local-hangup', `end reason ${end.reason} (${end.error?.message ?? ''})`);
      check(hangupAt > 0 && at >= hangupAt, `the call ended ${ms(hangupAt - at)} before our hangup`);
      check(returned !== undefined, 'the dialplan did not continue after Dial() (no "ws-dial-return" log line)');
    },
  },
  {
    name: 'ws Asterisk hangs up',
    checks: 'the caller hangs up after 1.5 s: Asterisk closes the WebSocket (code 1000) and the server ends the call as remote-hangup',
    transport: 'websocket',
    async run(ctx) {
      const sut = await wsServerUnderTest(ctx, () => undefined);
      const tag = newTag();
      const originatedAt = performance.now();
      await ctx.ast.originate(`Local/${sut.port}*slin16*${tag}@ws-dial application Wait 1.5`);
      const call = await sut.call(tag);
      const { end, at } = await sut.ended(call, 5000);
      ctx.metrics['reason'] = end.reason;
      ctx.timing('originate -> closed', at - originatedAt, { min: 1450, max: 2500 });
      ctx.metrics['error'] = end.error?.code ?? 'none';
      check(end.reason === 'remote-hangup', `end reason ${end.reason} (${end.error?.message ?? ''})`);
      check(end.error === undefined, `the call ended with an error: ${end.error?.message}`);
      // the call lasted until the caller hung up (a load can delay the end, never bring it forward)
      check(at - originatedAt > 1450, `call closed ${ms(at - originatedAt)} after the originate (caller hangs up after 1.5 s)`);
    },
  },
  {
    name: 'ws CLI echo --websocket',
    checks:
      '`audiosocket echo --websocket 127.0.0.1:0 --json` serves a chan_websocket slin16 call: 100 tagged frames come back bit-exact, and the CLI reports the call and its end',
    transport: 'websocket',
    async run(ctx) {
      const { child, lines, events } = spawnJsonLines(MAIN, [
        'echo',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--websocket',
        '127.0.0.1:0',
        '--json',
      ]);
      ctx.defer(() => child.exitCode === null && child.kill('SIGKILL'));
      const listening = await until(
        () => events().find((e) => e.event === 'listening' && e.transport === 'websocket'),
        10000,
        'echo listening for chan_websocket',
      );
      const port = Number(listening.port);
      await ctx.ast.addWebsocketClient(`ws${port}`, { uri: `ws://127.0.0.1:${port}/media` });
      const far = await farLeg(ctx, 0x12, 640);
      const farUuid = randomUUID();
      await ctx.ast.originate(`AudioSocket/127.0.0.1:${far.port}/${farUuid}/c(slin16) extension ${port}*slin16*cli@ws-dial`);
      const fc = await far.call(farUuid);
      const frames = taggedFrames(9, 100, 700, 16000);
      const r = await playAndCollect(fc, frames);
      fc.hangup();
      const ended = await until(() => events().find((e) => e.event === 'callEnd'), 5000, 'the CLI end line').catch(() => undefined);
      child.kill('SIGINT');
      matchMetrics(ctx, r);
      ctx.metrics['end'] = ended ? `${String(ended.reason)}` : 'none';
      checkMatch(r, 'CLI echo');
      check(ended !== undefined, `the CLI reported no end of the call:\n${lines.slice(-5).join('\n')}`);
    },
  },
  {
    name: 'ws 20 concurrent calls',
    checks:
      '20 slin16 echo calls over chan_websocket at once, each with its own tag and tone: every frame comes back bit-exact to its own call',
    transport: 'websocket',
    async run(ctx) {
      const sut = await wsServerUnderTest(ctx, echo);
      const far = await farLeg(ctx, 0x12, 640);
      const n = 20;
      // the audio is made before the calls start: made after, it held up the event loop that the
      // far legs' 20 ms clocks share, and what they then sent back to back stood in chan_websocket's
      // queue ahead of the tagged frames (docs/testing-with-asterisk.md, section 7)
      const frameSets = Array.from({ length: n }, (_, k) => taggedFrames(200 + k, 100, 300 + 40 * k, 16000));
      const loop = eventLoopDelay();
      const legs = await Promise.all(Array.from({ length: n }, () => wsCall(ctx, sut, far, 'slin16')));
      const results = await Promise.all(legs.map(({ fc }, k) => playAndCollect(fc, frameSets[k]!)));
      for (const { fc } of legs) fc.hangup();
      const windows = legs.map(({ fc }) => [fc.sentAt[0] ?? 0, fc.sentAt.at(-1) ?? 0] as const);
      const overlap = Math.max(...windows.map(([start]) => windows.filter(([a, b]) => a <= start && start <= b).length));
      const rtts = results.flatMap((r) => r.rtts);
      ctx.metrics['streaming at once'] = overlap;
      ctx.metrics['bit-exact'] = `${results.reduce((s, r) => s + r.returned, 0)}/${n * 100}`;
      ctx.metrics['corrupt or cross-talk'] = results.reduce((s, r) => s + r.corrupt, 0);
      ctx.timing('rtt p50', pct(rtts, 50), { max: 45 });
      ctx.timing('rtt p99', pct(rtts, 99), { max: 65 });
      ctx.timing('worst call rtt p50', Math.max(...results.map((r) => pct(r.rtts, 50))), {});
      ctx.metrics['worst call'] = `${Math.min(...results.map((r) => r.returned))}/100`;
      ctx.timing('test event loop delay max', loop.stop().max, { max: 50 });
      results.forEach((r, k) => checkMatch(r, `call ${k + 1}/${n}`));
      check(overlap === n, `only ${overlap} of the ${n} calls were streaming at the same time`);
    },
  },
];
