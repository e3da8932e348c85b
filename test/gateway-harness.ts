/**
 * The gateway's test harness: a server whose every call is bridged to a bot, and one simulated
 * Asterisk caller on either transport, with what it hears (shared by the gateway test files).
 */
import type { TestContext } from 'node:test';
import {
  bridgeCall,
  connect,
  createServer,
  type BotBridge,
  type BridgeOptions,
  type BridgeWarning,
  type Call,
  type ServerOptions,
} from '#lib/index.js';
import { connectWebSocket } from '#lib/websocket/client.js';
import { until } from './helpers.js';

/** A caller on either transport: what it sends and what it hears, the same shape on both. */
export interface Caller {
  send(slin8k: Buffer): void;
  dtmf(digit: string): void;
  heard: Buffer[];
  hangup(): Promise<unknown>;
  closed: Promise<unknown>;
}

export async function gateway(
  t: TestContext,
  transport: 'audiosocket' | 'websocket',
  bridgeOptions: Partial<BridgeOptions> & { url: string },
  serverOptions: ServerOptions = {},
  waitBridged = true,
  wsPath = '/media',
) {
  const bridges: BotBridge[] = [];
  const calls: Call[] = [];
  const warnings: BridgeWarning[] = [];
  const server = createServer(
    (call) => {
      calls.push(call);
      const bridge = bridgeCall(call, bridgeOptions);
      bridge.on('warning', (w) => warnings.push(w));
      bridges.push(bridge);
      return bridge.closed;
    },
    { ...serverOptions, websocket: { port: 0 } },
  );
  const { port } = await server.listen({ port: 0 });
  t.after(() => server.close());
  let caller: Caller;
  if (transport === 'audiosocket') {
    const c = await connect({ port });
    t.after(() => c.hangup());
    const heard: Buffer[] = [];
    c.on('audio', (f) => heard.push(Buffer.from(f.payload)));
    caller = { send: (b) => c.sendAudio(b), dtmf: (d) => c.sendDtmf(d), heard, hangup: () => c.hangup(), closed: c.closed };
  } else {
    const c = await connectWebSocket({ url: `ws://127.0.0.1:${server.websocketAddress()!.port}${wsPath}`, format: 'slin' });
    t.after(() => c.drop());
    const heard: Buffer[] = [];
    c.on('played', (f) => heard.push(Buffer.from(f)));
    caller = { send: (b) => c.sendAudio(b), dtmf: (d) => c.sendDtmf(d), heard, hangup: () => c.hangup(), closed: c.closed };
  }
  if (waitBridged) await until(() => bridges.length === 1, 'the call is bridged');
  return {
    server,
    caller,
    bridges,
    calls,
    warnings,
    get bridge() {
      return bridges[0]!;
    },
    get call() {
      return calls[0]!;
    },
  };
}
