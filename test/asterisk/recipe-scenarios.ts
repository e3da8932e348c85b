/**
 * The recipe users copy (examples/asterisk/) end to end: the private Asterisk runs on it (see
 * recipe.ts), and these scenarios call its extensions with the server under test at the
 * addresses the recipe names (replaced by this run's ports, the dialplan reloaded). Each call
 * echoes 100 tagged frames bit-exact, then the server hangs up and the recipe's dialplan must go
 * on (its `Log(NOTICE, ...)` line after AudioSocket() or Dial(..., g)).
 */
import { randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { createServer, type Call, type ConnectionRejection } from '#lib/index.js';
import { FarLeg, type FarCall } from './legs.js';
import { recipeModules, wssSection } from './recipe.js';
import type { Ctx, Scenario } from './scenarios.js';
import { pct, taggedFrames } from './signals.js';
import { check, until } from './util.js';
import { checkMatch, playAndCollect, TLS_CERT, TLS_KEY, type Match } from './websocket-scenarios.js';

interface RecipeSut {
  calls: Call[];
  rejections: ConnectionRejection[];
  /** what the handler got: `encoding/rate/bytes` of every frame */
  formats: Set<string>;
}

/**
 * The server under test, serving AudioSocket and chan_websocket with an echo, and the recipe
 * pointed at it. `wss`: the recipe's commented wss:// section instead of its ws:// one, with the
 * server requiring that section's username and password over TLS (the test certificate, issued
 * for localhost: the section's host becomes `localhost`, so Asterisk checks the name too).
 */
async function recipeServer(ctx: Ctx, wss = false): Promise<RecipeSut> {
  const calls: Call[] = [];
  const rejections: ConnectionRejection[] = [];
  const formats = new Set<string>();
  const section = wss ? wssSection() : undefined;
  // Asterisk connects to the first address `localhost` resolves to; listen on that one.
  const wsHost = wss ? (await lookup('localhost')).address : '127.0.0.1';
  const server = createServer(
    async (call) => {
      calls.push(call);
      for await (const frame of call) {
        formats.add(`${frame.format.encoding}/${frame.sampleRate}/${frame.payload.length}B`);
        call.write(frame.payload, frame.format);
      }
    },
    {
      websocket: {
        port: 0,
        host: wsHost,
        ...(section
          ? {
              credentials: { username: section.username!, password: section.password! },
              tls: { cert: readFileSync(TLS_CERT), key: readFileSync(TLS_KEY) },
            }
          : {}),
      },
    },
  );
  server.on('handlerError', () => undefined);
  server.on('connectionRejected', (r) => rejections.push(r));
  const addr = await server.listen({ host: '127.0.0.1', port: 0 });
  ctx.defer(() => server.close());
  const asPort = await ctx.expose(addr.port);
  const wsPort = server.websocketAddress()!.port;
  await ctx.ast.useRecipe({
    audiosocket: `127.0.0.1:${asPort}`,
    websocket: `127.0.0.1:${wsPort}`,
    ...(wss ? { wss: { host: `localhost:${wsPort}`, caFile: TLS_CERT } } : {}),
  });
  return { calls, rejections, formats };
}

async function farLeg(ctx: Ctx, kind: number, frameBytes: number): Promise<FarLeg> {
  const far = await new FarLeg(kind, frameBytes).listen();
  ctx.defer(() => far.close());
  return far;
}

interface RecipeCase {
  exten: string;
  /** what the extension is, in the scenario's name */
  what: string;
  /** 8 kHz: the caller is a Local pair whose other half runs AudioSocket() to the far leg; 16 kHz: an originated AudioSocket/…/c(slin16) channel */
  rate: 8000 | 16000;
  /** the log line the recipe's dialplan writes once the server has hung up */
  after: RegExp;
  transport?: 'websocket';
  wss?: boolean;
  checks: string;
}

const CASES: RecipeCase[] = [
  {
    exten: '100',
    what: 'AudioSocket() app',
    rate: 8000,
    after: /AudioSocket\(\) returned on Local\/100@audiosocket/,
    checks:
      'extension 100 (Answer(), AudioSocket(${UUID()},127.0.0.1:9092)): slin echo bit-exact; after our hangup AudioSocket() returns and the dialplan goes on',
  },
  {
    exten: '101',
    what: 'Dial(AudioSocket/…/c(slin),,g)',
    rate: 8000,
    after: /the bot hung up: DIALSTATUS=ANSWER/,
    checks: 'extension 101: slin echo bit-exact; after our hangup Dial() returns (g) with DIALSTATUS=ANSWER',
  },
  {
    exten: '102',
    what: 'Dial(AudioSocket/…/c(slin16),,g)',
    rate: 16000,
    after: /the bot hung up: DIALSTATUS=ANSWER/,
    checks: 'extension 102: slin16 (kind 0x12, 640 B) echo bit-exact; after our hangup Dial() returns (g) with DIALSTATUS=ANSWER',
  },
  {
    exten: '200',
    what: 'Dial(WebSocket/bot/c(slin16),,g)',
    rate: 16000,
    after: /the bot hung up: DIALSTATUS=ANSWER/,
    transport: 'websocket',
    checks:
      'extension 200 through websocket_client.conf [bot] (ws://): slin16 echo bit-exact; after our hangup Dial() returns (g) with DIALSTATUS=ANSWER',
  },
  {
    exten: '200',
    what: 'Dial(WebSocket/bot) over the commented wss:// section',
    rate: 16000,
    after: /the bot hung up: DIALSTATUS=ANSWER/,
    transport: 'websocket',
    wss: true,
    checks:
      "extension 200 with websocket_client.conf's commented wss:// [bot] in place of the ws:// one (host localhost, ca_list_file the test certificate; verify_server_cert and verify_server_hostname yes, its username and password required by the server): no rejection, slin16 echo bit-exact, Dial() returns (g)",
  },
];

export const recipeScenarios: Scenario[] = [
  {
    name: 'recipe modules',
    checks:
      'every module examples/asterisk/modules.conf loads is running (a module that is missing or fails to load does not stop Asterisk)',
    noServer: true,
    async run(ctx) {
      const shown = await ctx.ast.rx('module show');
      const missing = recipeModules().filter((m) => !new RegExp(`^${m.replace('.', '\\.')}\\s.*\\bRunning\\b`, 'm').test(shown));
      ctx.metrics['recipe modules'] = recipeModules().length;
      check(missing.length === 0, `not running: ${missing.join(', ')}`);
    },
  },
  ...CASES.map((c, k): Scenario => ({
    name: `recipe ${c.exten}: ${c.what}`,
    checks: c.checks,
    ...(c.transport ? { transport: c.transport } : {}),
    async run(ctx) {
      const sut = await recipeServer(ctx, c.wss);
      const far = await farLeg(ctx, c.rate === 8000 ? 0x10 : 0x12, c.rate === 8000 ? 320 : 640);
      const farUuid = randomUUID();
      const from = ctx.ast.log.length;
      if (c.rate === 8000) {
        await ctx.ast.originate(`Local/${c.exten}@audiosocket application AudioSocket ${farUuid},127.0.0.1:${far.port}`);
      } else {
        await ctx.ast.originate(`AudioSocket/127.0.0.1:${far.port}/${farUuid}/c(slin16) extension ${c.exten}@audiosocket`);
      }
      const call = await until(() => sut.calls[0], 5000, `a call from extension ${c.exten}`).catch((e: Error) => {
        const rejected = sut.rejections.map((r) => r.reason).join(', ');
        throw new Error(`${e.message}${rejected ? ` (rejected: ${rejected})` : ''}`);
      });
      const fc: FarCall = await far.call(farUuid);
      const frames = taggedFrames(40 + k, 100, 500 + 50 * k, c.rate);
      const r: Match = await playAndCollect(fc, frames);
      await call.hangup();
      const after = await ctx.ast.waitForLog(c.after, 3000, from).catch(() => undefined);
      ctx.metrics['bit-exact'] = `${r.returned}/${r.sent}`;
      ctx.metrics['server got'] = `${call.transport} ${call.stats.audioIn} frames ${[...sut.formats].join(' ')}`;
      ctx.timing('rtt p50', pct(r.rtts, 50), { max: c.transport ? 45 : 25 });
      ctx.timing('rtt p99', pct(r.rtts, 99), { max: c.transport ? 65 : 80 });
      ctx.metrics['dialplan went on'] = after?.text.replace(/^.*?: (?=AudioSocket|the bot)/, '') ?? 'no';
      check(call.transport === (c.transport ?? 'audiosocket'), `the call came in over ${call.transport}`);
      check(sut.rejections.length === 0, `rejections: ${JSON.stringify(sut.rejections)}`);
      check(sut.calls.length === 1, `${sut.calls.length} calls reached the server (want 1)`);
      const want = `slin/${c.rate}/${c.rate / 25}B`;
      check(sut.formats.size === 1 && sut.formats.has(want), `the handler got ${[...sut.formats].join(', ')} (want ${want})`);
      checkMatch(r, `extension ${c.exten} echo`);
      check(after !== undefined, `the recipe's dialplan did not go on after our hangup (no log line ${c.after})`);
    },
  })),
];
