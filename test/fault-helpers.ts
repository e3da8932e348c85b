/**
 * Helpers for the fault, conformance and leak tests (not a test file: the runner only picks up
 * *.test.js). Everything runs over real TCP on 127.0.0.1 with the library's real parser and timers.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  connect,
  createServer,
  encodeUuidMessage,
  isAudioKind,
  MessageParser,
  type AsteriskClient,
  type AudioSocketServer,
  type Call,
  type CallHandler,
  type ServerOptions,
} from '#lib/index.js';
import { until } from './helpers.js';

export const HANDLES = (): unknown[] => (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();

/** Starts a server on 127.0.0.1, port 0. */
export async function startServer(
  handler: CallHandler | undefined,
  options: ServerOptions = {},
  t?: Cleanup,
): Promise<{ server: AudioSocketServer; port: number }> {
  const server = createServer(handler, options);
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  // Whatever happens in the test, close the server (bounded: close() waits at most hangupTimeout).
  t?.after(() => within(server.close(), 10_000, 'server.close() in cleanup').catch(() => {}));
  return { server, port };
}

/** The part of node:test's TestContext used for cleanup, so a failing test never leaves timers or sockets behind. */
export interface Cleanup {
  after(fn: () => unknown): void;
}

/** A UUID whose first group is `prefix` (8 hex digits), so a handler can tell test calls apart. */
export function uuidWith(prefix: string): string {
  return `${prefix}${randomUUID().slice(8)}`;
}

export function allZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** The echo the fault tests run on every call: whole-sample audio up to 120 ms at 32 kHz goes back unchanged. */
export function echoHandler(call: Call): void {
  call.on('audio', (f) => {
    if (f.payload.length > 0 && f.payload.length % 2 === 0 && f.payload.length <= 7680) call.write(f.payload, f.format);
  });
}

/** Resolves with the promise's value or fails after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A deterministic, never all-zero 20 ms slin frame identifying (probe, client, seq). */
export function stamped(probe: number, client: number, seq: number, bytes = 320): Buffer {
  const b = Buffer.alloc(bytes);
  let x = (probe * 2654435761 + client * 7919 + seq * 104729 + 1) >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  b.writeUInt16LE(probe, 0);
  b.writeUInt16LE(client, 2);
  b.writeUInt32LE(seq, 4);
  b[8] = 0xa5; // never all zero, so never mistaken for keep-alive silence
  return b;
}

let probeIds = 0;

/**
 * N well-behaved simulated Asterisk calls that send one stamped frame every 20 ms and check that
 * every frame comes back, byte-exact and in order, while some other call is being abused.
 * All-zero frames (keep-alive silence) are ignored.
 */
export class EchoProbe {
  readonly id = ++probeIds;
  readonly clients: AsteriskClient[];
  readonly sent: Buffer[][];
  readonly got: Buffer[][];
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;

  private constructor(clients: AsteriskClient[]) {
    this.clients = clients;
    this.sent = clients.map(() => []);
    this.got = clients.map(() => []);
    // Echoes are compared as a byte stream, whole frames at a time: a call whose frames are
    // shorter than the probe's (10 ms at 44.1 kHz and above) sends each echo in pieces.
    const pending = clients.map(() => Buffer.alloc(0));
    clients.forEach((c, i) =>
      c.on('audio', (f) => {
        if (allZero(f.payload)) return;
        let buf = Buffer.concat([pending[i]!, f.payload]);
        const size = this.sent[i]![this.got[i]!.length]?.length ?? buf.length;
        while (buf.length >= size && size > 0) {
          this.got[i]!.push(buf.subarray(0, size));
          buf = buf.subarray(size);
        }
        pending[i] = buf;
      }),
    );
    this.#timer = setInterval(() => this.#tick(), 20);
  }

  static async start(port: number, n = 6, t?: Cleanup): Promise<EchoProbe> {
    const clients: AsteriskClient[] = [];
    for (let i = 0; i < n; i++) clients.push(await connect({ port, uuid: uuidWith('0ec00ec0') }));
    const probe = new EchoProbe(clients);
    t?.after(() => probe.abort());
    return probe;
  }

  /** Stops sending and resets every client (cleanup after a failure). */
  async abort(): Promise<void> {
    this.stop();
    await Promise.all(this.clients.map((c) => c.reset()));
  }

  #tick(): void {
    const seq = this.#seq++;
    this.clients.forEach((c, i) => {
      if (!c.connected) return;
      const p = stamped(this.id, i, seq);
      this.sent[i]!.push(p);
      c.sendAudio(p);
    });
  }

  /** Echoes received so far, per client. */
  counts(): number[] {
    return this.got.map((g) => g.length);
  }

  #checkPrefix(): void {
    this.got.forEach((got, i) => {
      const sent = this.sent[i]!;
      assert.ok(got.length <= sent.length, `probe client ${i}: more echoes (${got.length}) than frames sent (${sent.length})`);
      for (let k = 0; k < got.length; k++) {
        if (!got[k]!.equals(sent[k]!)) assert.fail(`probe client ${i}: echo #${k} differs from the frame sent`);
      }
    });
  }

  /** Asserts that every client is still connected and gets at least `min` more exact echoes. */
  async advanced(min = 5, timeoutMs = 5000): Promise<void> {
    const base = this.counts();
    await until(() => this.got.every((g, i) => g.length >= base[i]! + min), `every probe call to echo ${min} more frames`, timeoutMs);
    this.#checkPrefix();
    this.clients.forEach((c, i) => assert.ok(c.connected, `probe client ${i} still connected`));
  }

  /** Stops sending, waits for the last echoes and checks everything byte-exact; optionally closes the clients. */
  async finish(close = true): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await until(() => this.got.every((g, i) => g.length >= this.sent[i]!.length), 'the last echoes', 5000);
    this.#checkPrefix();
    this.clients.forEach((c, i) => {
      assert.equal(this.got[i]!.length, this.sent[i]!.length, `probe client ${i}: every frame echoed`);
      assert.ok(this.sent[i]!.length >= 5, `probe client ${i} sent only ${this.sent[i]!.length} frames`);
      assert.deepEqual(c.violations, [], `probe client ${i}: nothing a real Asterisk would refuse`);
      assert.ok(c.connected, `probe client ${i} still connected`);
    });
    if (close) await Promise.all(this.clients.map((c) => c.hangup()));
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** What a raw client received from the server, checked message by message. */
export interface RawCall {
  socket: net.Socket;
  /** The client's port (the server reports it as remotePort); kept because a closed socket forgets it. */
  localPort: number;
  uuid: string;
  /** Kinds and payload lengths received, in order. */
  messages: Array<{ kind: number; length: number; zero: boolean; at: number }>;
  /** Anything that breaks "only non-empty even audio 0x10-0x18 or hangup, nothing after hangup". */
  violations: string[];
  hungUp: boolean;
  closed: Promise<void>;
  ended: boolean;
}

/** Opens a raw TCP connection; sends the UUID unless `sendUuid` is false. */
export async function rawCall(
  port: number,
  options: { uuid?: string; sendUuid?: boolean; allowHalfOpen?: boolean } = {},
  t?: Cleanup,
): Promise<RawCall> {
  const uuid = options.uuid ?? randomUUID();
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: options.allowHalfOpen ?? false });
  socket.on('error', () => {});
  t?.after(() => socket.destroy());
  await once(socket, 'connect');
  const raw: RawCall = {
    socket,
    localPort: socket.localPort!,
    uuid,
    messages: [],
    violations: [],
    hungUp: false,
    closed: once(socket, 'close').then(() => {}),
    ended: false,
  };
  watchServerOutput(socket, raw);
  if (options.sendUuid !== false) socket.write(encodeUuidMessage(uuid));
  return raw;
}

/** Parses everything the server sends on `socket` and records violations of the output contract. */
export function watchServerOutput(socket: net.Socket, raw: Pick<RawCall, 'messages' | 'violations' | 'hungUp' | 'ended'>): void {
  const parser = new MessageParser((kind, payload) => {
    const at = performance.now();
    if (raw.hungUp) raw.violations.push(`kind 0x${kind.toString(16)} after the hangup message`);
    if (kind === 0x00) {
      if (payload.length !== 0) raw.violations.push(`hangup with a ${payload.length}-byte payload`);
      raw.hungUp = true;
    } else if (!isAudioKind(kind)) {
      raw.violations.push(`forbidden kind 0x${kind.toString(16)}`);
    } else if (payload.length === 0 || payload.length % 2 !== 0) {
      raw.violations.push(`audio of ${payload.length} bytes`);
    }
    raw.messages.push({ kind, length: payload.length, zero: allZero(payload), at });
  });
  socket.on('data', (chunk: Buffer) => {
    try {
      parser.push(chunk);
    } catch (err) {
      raw.violations.push(`unparseable output: ${(err as Error).message}`);
    }
  });
  socket.on('end', () => {
    raw.ended = true;
    const cut = parser.end();
    if (cut) raw.violations.push(`output truncated: ${cut.message}`);
  });
}

/** The server-side socket of a connection, found among the process's active handles. */
export function serverSideSocket(port: number, client: net.Socket): net.Socket | undefined {
  return HANDLES().find((h): h is net.Socket => h instanceof net.Socket && h.localPort === port && h.remotePort === client.localPort);
}

/** A real `gc()` even without --expose-gc (node --test does not pass it). */
export function getGc(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Full GC a few times with turns of the event loop in between, then the used heap. */
export async function settledHeap(gc: () => void): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(10);
  }
  return process.memoryUsage().heapUsed;
}

// ---------------------------------------------------------------------------------------------
// Call cycles for the leak test and bench/leak.ts.

/** Per-type counts of the process's active resources (sockets, ref'd timers, ...). */
export function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

/** Listener counts of every event of an emitter. */
export function listenerCounts(emitter: {
  eventNames(): Array<string | symbol>;
  listenerCount(e: string | symbol): number;
}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of emitter.eventNames()) out[String(e)] = emitter.listenerCount(e);
  return out;
}

/**
 * The handler the leak cycles run: echo, plus per-UUID extras that hold resources a leak would
 * keep alive (an async iterator, a write stream, a queued play).
 */
export function leakHandler(call: Call): void {
  echoHandler(call);
  const tag = call.uuid[0];
  if (tag === 'a') {
    void (async () => {
      for await (const frame of call) void frame;
    })();
  } else if (tag === 'b') {
    const ws = call.createWriteStream({ highWaterMarkMs: 200 });
    ws.on('error', () => {});
    ws.write(Buffer.alloc(8000, 3));
  } else if (tag === 'c') {
    void call.play(Buffer.alloc(3200, 4));
    void call.mark('end-of-prompt');
  }
}

const CYCLE_FRAME = (() => {
  const b = Buffer.alloc(320, 0x21);
  b[0] = 0xa5;
  return b;
})();

/**
 * One call cycle: connect, UUID, a few frames, wait for an echo, then end it one of six ways
 * (caller FIN, server hangup, caller RST, server hangup mid-prompt, no UUID at all, caller FIN
 * with a write stream playing).
 */
export async function callCycle(server: AudioSocketServer, port: number, i: number): Promise<void> {
  const how = i % 6;
  if (how === 4) {
    const c = await connect({ port, sendUuid: false });
    await c.hangup();
    return;
  }
  const prefix = ['a', '0', 'd', 'c', '', 'b'][how]!;
  const uuid = `${prefix}${randomUUID().slice(prefix.length)}`;
  const c = await connect({ port, uuid });
  const echoed = new Promise<void>((resolve) => {
    c.on('audio', (f) => {
      if (!allZero(f.payload)) resolve();
    });
  });
  for (let k = 0; k < 3; k++) c.sendAudio(CYCLE_FRAME);
  await within(echoed, 5000, `the echo of cycle ${i}`);
  if (how === 1 || how === 3) {
    const call = [...server.calls].find((x) => x.uuid === uuid);
    assert.ok(call, `cycle ${i}: the call is live`);
    await call.hangup();
    await c.closed;
  } else if (how === 2) {
    await c.reset();
  } else {
    await c.hangup();
  }
}

/** Runs `count` cycles on `lanes` concurrent lanes. */
export async function runCycles(server: AudioSocketServer, port: number, count: number, lanes = 8, offset = 0): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        await callCycle(server, port, offset + i);
      }
    }),
  );
}

/** Waits until the server holds no call or handshake. */
export async function serverIdle(server: AudioSocketServer): Promise<void> {
  await until(() => server.calls.size === 0 && server.stats.pendingHandshakes === 0, 'the server to be idle');
}
