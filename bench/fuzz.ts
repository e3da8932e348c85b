/**
 * Long-run fuzzer for the AudioSocket parser, and (optionally, for a bounded time) for a live
 * server over loopback.
 *
 *   node build/bench/fuzz.js [--inputs N] [--seed S] [--server-seconds T] [--index I]
 *
 * --inputs N          parser inputs to try (default 10_000_000)
 * --seed S            base seed (default: random, printed); input i is generated from (S, i) only
 * --index I           run only input I of seed S, verbosely (the reproducer printed on failure)
 * --server-seconds T  then fuzz a live server on 127.0.0.1 for T seconds (default 5; 0 = skip)
 *
 * Parser invariants checked for every input, against the bytes fed:
 *  - push() throws nothing but AudioSocketError PAYLOAD_TOO_LARGE, at most once, and only when the
 *    header at the current message boundary announces more than maxPayload;
 *  - every delivered message is exactly the next kind/length/payload of the input, in order
 *    (re-encoding the deliveries gives back a prefix of the input), payload <= maxPayload;
 *  - messageCount counts deliveries; bufferedBytes <= 3 + maxPayload after every push and, at the
 *    end, equals the bytes of the unfinished message; end() is null exactly when that is 0,
 *    otherwise TRUNCATED.
 * Server invariants: the process survives; every byte sent back is a valid message (non-empty even
 * audio 0x10-0x18 or hangup, nothing after hangup); well-behaved calls echo byte-exact
 * throughout; at the end every connection is gone.
 * Exit code 0 when everything held, 1 otherwise. Stops by itself.
 */
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  AudioSocketError,
  connect,
  createServer,
  encodeMessage,
  encodeUuidMessage,
  ErrorCodes,
  isAudioKind,
  MessageParser,
  type AsteriskClient,
  type Call,
} from '#lib/index.js';

// ---------------------------------------------------------------------------------------------
// Deterministic randomness: input i of seed S depends on (S, i) only.

function splitmix32(a: number): () => number {
  return () => {
    a = (a + 0x9e3779b9) | 0;
    let t = a ^ (a >>> 16);
    t = Math.imul(t, 0x21f0aaad);
    t ^= t >>> 15;
    t = Math.imul(t, 0x735a2d97);
    return ((t ^ (t >>> 15)) >>> 0) / 4294967296;
  };
}

class Rng {
  readonly next: () => number;
  constructor(seed: number, index: number) {
    const mix = splitmix32((seed ^ Math.imul(index + 1, 0x85ebca6b)) | 0);
    mix();
    this.next = splitmix32((mix() * 4294967296) | 0);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

// ---------------------------------------------------------------------------------------------
// Input generators. They write into one scratch buffer to keep the fuzzer allocation-light.

const SCRATCH = Buffer.alloc(4 * 65536 + 64 * 1024);
const FAVOURED_KINDS = [0x00, 0x01, 0x03, 0x10, 0x10, 0x10, 0x11, 0x12, 0x16, 0x18, 0xff];

function payloadLength(r: Rng, max: number): number {
  const p = r.next();
  if (p < 0.6) return r.int(48);
  if (p < 0.9) return r.int(700);
  if (p < 0.97) return r.int(8000);
  if (p < 0.985) return Math.min(65535, max + r.range(-1, 1)); // at the limit
  return r.int(65536);
}

/** Valid messages into SCRATCH from `off`; returns the new end. */
function writeValid(r: Rng, off: number, count: number, max: number): number {
  for (let m = 0; m < count; m++) {
    const kind = r.chance(0.7) ? FAVOURED_KINDS[r.int(FAVOURED_KINDS.length)]! : r.int(256);
    let len = Math.min(payloadLength(r, max), 65535);
    if (r.chance(0.9)) len = Math.min(len, max); // mostly acceptable messages
    if (off + 3 + len > SCRATCH.length) break;
    SCRATCH[off] = kind;
    SCRATCH[off + 1] = len >>> 8;
    SCRATCH[off + 2] = len & 0xff;
    const fill = r.int(256);
    if (len > 64) SCRATCH.fill(fill, off + 3, off + 3 + len);
    else for (let i = 0; i < len; i++) SCRATCH[off + 3 + i] = r.int(256);
    off += 3 + len;
  }
  return off;
}

function writeRandom(r: Rng, off: number, len: number): number {
  len = Math.min(len, SCRATCH.length - off);
  for (let i = 0; i < len; i++) SCRATCH[off + i] = r.int(256);
  return off + len;
}

const GENERATORS = ['garbage', 'valid', 'mutated', 'truncated', 'headers'] as const;
type Generator = (typeof GENERATORS)[number];

/** Builds input `index` of `seed`: bytes (a view of SCRATCH), chunk cut points and maxPayload. */
function makeInput(seed: number, index: number): { gen: Generator; input: Buffer; cuts: number[]; max: number } {
  const r = new Rng(seed, index);
  const gen = GENERATORS[r.int(GENERATORS.length)]!;
  const max = r.chance(0.7) ? 65535 : r.chance(0.5) ? r.int(1024) : r.int(65536);
  let end = 0;
  switch (gen) {
    case 'garbage':
      end = writeRandom(r, 0, r.chance(0.9) ? r.int(64) : r.int(4096));
      break;
    case 'valid':
      end = writeValid(r, 0, r.range(1, 8), max);
      break;
    case 'mutated': {
      end = writeValid(r, 0, r.range(1, 6), max);
      const mutations = r.range(1, 4);
      for (let k = 0; k < mutations && end > 0; k++) {
        const at = r.int(end);
        const what = r.int(3);
        if (what === 0) {
          SCRATCH[at]! ^= 1 << r.int(8);
        } else if (what === 1 && end + 8 < SCRATCH.length) {
          const n = r.range(1, 8);
          SCRATCH.copyWithin(at + n, at, end);
          for (let i = 0; i < n; i++) SCRATCH[at + i] = r.int(256);
          end += n;
        } else {
          const n = Math.min(r.range(1, 8), end - at);
          SCRATCH.copyWithin(at, at + n, end);
          end -= n;
        }
      }
      break;
    }
    case 'truncated':
      end = writeValid(r, 0, r.range(1, 6), max);
      end = r.int(end + 1);
      break;
    case 'headers': {
      // Many headers with tiny or hostile lengths: exercises the header/partial-payload paths.
      const n = r.range(1, 40);
      for (let k = 0; k < n && end + 8 < SCRATCH.length; k++) {
        const len = r.chance(0.5) ? r.int(4) : r.chance(0.5) ? max : 65535 - r.int(3);
        SCRATCH[end] = r.int(256);
        SCRATCH[end + 1] = len >>> 8;
        SCRATCH[end + 2] = len & 0xff;
        end += 3;
        const body = Math.min(len, r.int(5));
        end = writeRandom(r, end, body);
      }
      break;
    }
  }
  const cutsN = r.chance(0.3) ? 0 : r.range(1, r.chance(0.9) ? 4 : 64);
  const cuts: number[] = [];
  for (let i = 0; i < cutsN; i++) cuts.push(r.int(end + 1));
  cuts.sort((a, b) => a - b);
  return { gen, input: SCRATCH.subarray(0, end), cuts, max };
}

// ---------------------------------------------------------------------------------------------
// The parser oracle.

class Violation extends Error {}

function check(input: Buffer, cuts: number[], max: number): number {
  let pos = 0; // next byte of input a delivery must match
  let delivered = 0;
  const parser = new MessageParser(
    (kind, payload) => {
      delivered++;
      if (pos + 3 + payload.length > input.length) throw new Violation(`delivery #${delivered} runs past the input`);
      if (input[pos] !== kind) throw new Violation(`delivery #${delivered}: kind ${kind}, input has ${input[pos]} at ${pos}`);
      const len = (input[pos + 1]! << 8) | input[pos + 2]!;
      if (len !== payload.length) throw new Violation(`delivery #${delivered}: ${payload.length} bytes, header at ${pos} says ${len}`);
      if (len > max) throw new Violation(`delivery #${delivered}: ${len} bytes above maxPayload ${max}`);
      if (!payload.equals(input.subarray(pos + 3, pos + 3 + len)))
        throw new Violation(`delivery #${delivered}: payload differs from input at ${pos + 3}`);
      pos += 3 + len;
    },
    { maxPayload: max },
  );
  let failed: AudioSocketError | null = null;
  let prev = 0;
  for (let c = 0; c <= cuts.length; c++) {
    const at = c < cuts.length ? cuts[c]! : input.length;
    const chunk = input.subarray(prev, at);
    prev = at;
    try {
      parser.push(chunk);
    } catch (err) {
      if (err instanceof Violation) throw err;
      if (!(err instanceof AudioSocketError)) throw new Violation(`push threw a non-AudioSocketError: ${String(err)}`);
      if (err.code !== ErrorCodes.PAYLOAD_TOO_LARGE) throw new Violation(`push threw ${err.code}`);
      if (failed !== null) throw new Violation('push threw twice');
      failed = err;
      const len = (input[pos + 1]! << 8) | input[pos + 2]!;
      if (pos + 3 > input.length || len <= max)
        throw new Violation(`PAYLOAD_TOO_LARGE but the header at ${pos} announces ${len} <= ${max}`);
    }
    if (parser.messageCount !== delivered) throw new Violation(`messageCount ${parser.messageCount} != ${delivered} delivered`);
    if (parser.bufferedBytes > 3 + max) throw new Violation(`bufferedBytes ${parser.bufferedBytes} > 3 + ${max}`);
  }
  const end = parser.end();
  if (failed !== null) {
    if (end !== failed) throw new Violation('end() does not report the stored error');
    return input.length;
  }
  const rest = input.length - pos;
  // Would the next header be refused? Then the parser must have thrown.
  if (rest >= 3 && ((input[pos + 1]! << 8) | input[pos + 2]!) > max)
    throw new Violation(`header at ${pos} above maxPayload was not refused`);
  if (rest > 0) {
    if (!(end instanceof AudioSocketError) || end.code !== ErrorCodes.TRUNCATED)
      throw new Violation(`${rest} bytes left but end() returned ${String(end)}`);
  } else if (end !== null) {
    throw new Violation(`stream ended on a boundary but end() returned ${end.code}`);
  }
  return input.length;
}

// ---------------------------------------------------------------------------------------------
// Live server phase.

interface ServerReport {
  connections: number;
  bytesSent: number;
  probeEchoes: number;
  reasons: Record<string, number>;
  handshakeFailures: Record<string, number>;
  failures: string[];
}

async function fuzzServer(seed: number, seconds: number): Promise<ServerReport> {
  const failures: string[] = [];
  const onUncaught = (err: unknown): void => void failures.push(`uncaught: ${String(err)}`);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  const reasons: Record<string, number> = {};
  const handshakeFailures: Record<string, number> = {};
  const server = createServer(
    (call: Call) => {
      call.on('audio', (f) => {
        if (f.payload.length > 0 && f.payload.length % 2 === 0 && f.payload.length <= 7680) call.write(f.payload, f.format);
      });
    },
    { handshakeTimeout: 200, hangupTimeout: 500, maxCalls: 400 },
  );
  server.on('callEnd', (_c, end) => void (reasons[end.reason] = (reasons[end.reason] ?? 0) + 1));
  server.on('handshakeFailed', (f) => void (handshakeFailures[f.reason] = (handshakeFailures[f.reason] ?? 0) + 1));
  server.on('handlerError', () => {});
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });

  // Well-behaved probes: one stamped frame each 20 ms, echoed byte-exact.
  const probes: AsteriskClient[] = [];
  for (let i = 0; i < 6; i++) probes.push(await connect({ port }));
  const sent: Buffer[][] = probes.map(() => []);
  const got: Buffer[][] = probes.map(() => []);
  probes.forEach((p, i) =>
    p.on('audio', (f) => {
      if (f.payload.some((b) => b !== 0)) got[i]!.push(Buffer.from(f.payload));
    }),
  );
  let seq = 0;
  const probeTimer = setInterval(() => {
    seq++;
    probes.forEach((p, i) => {
      const b = Buffer.alloc(320, (seq + i) & 0xff || 1);
      b.writeUInt32LE(seq, 0);
      b[4] = 0xa5;
      sent[i]!.push(b);
      p.sendAudio(b);
    });
  }, 20);

  let connections = 0;
  let bytesSent = 0;
  const deadline = performance.now() + seconds * 1000;
  const worker = async (w: number): Promise<void> => {
    for (let k = 0; performance.now() < deadline; k++) {
      const r = new Rng(seed ^ 0x5eed, w * 1_000_000 + k);
      connections++;
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => {});
      let hungUp = false;
      const out = new MessageParser((kind, payload) => {
        if (hungUp) failures.push(`server sent kind ${kind} after hangup`);
        else if (kind === 0) hungUp = true;
        else if (!isAudioKind(kind) || payload.length === 0 || payload.length % 2 !== 0)
          failures.push(`server sent kind ${kind} with ${payload.length} bytes`);
      });
      socket.on('data', (c: Buffer) => {
        try {
          out.push(c);
        } catch (err) {
          failures.push(`server output unparseable: ${String(err)}`);
        }
      });
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('connect', resolve);
          socket.once('error', reject);
        });
      } catch {
        continue;
      }
      if (r.chance(0.9)) socket.write(encodeUuidMessage(randomUUID()));
      const { input } = makeInput(seed ^ 0xbeef, w * 1_000_000 + k);
      const body = Buffer.from(input);
      bytesSent += body.length;
      for (let off = 0; off < body.length && !socket.destroyed;) {
        const n = 1 + r.int(2048);
        socket.write(body.subarray(off, off + n));
        off += n;
        if (r.chance(0.2)) await new Promise((res) => setTimeout(res, r.int(5)));
      }
      if (r.chance(0.3)) socket.write(encodeMessage(0x10, Buffer.alloc(320, 1)));
      const how = r.int(4);
      if (how === 0) socket.end();
      else if (how === 1) socket.resetAndDestroy();
      else if (how === 2) setTimeout(() => socket.destroy(), r.int(50));
      else setTimeout(() => socket.end(), r.int(300)); // linger, maybe past the handshake timeout
      await Promise.race([closed, new Promise((res) => setTimeout(res, 2000))]);
      socket.destroy();
    }
  };
  await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)));

  clearInterval(probeTimer);
  await new Promise((res) => setTimeout(res, 300));
  probes.forEach((p, i) => {
    const s = sent[i]!;
    const g = got[i]!;
    if (g.length < s.length - 2) failures.push(`probe ${i}: ${g.length} echoes for ${s.length} frames`);
    for (let k = 0; k < g.length; k++) if (!g[k]!.equals(s[k]!)) failures.push(`probe ${i}: echo #${k} differs`);
    if (p.violations.length > 0) failures.push(`probe ${i}: ${p.violations[0]!.message}`);
  });
  const probeEchoes = got.reduce((a, g) => a + g.length, 0);
  await Promise.all(probes.map((p) => p.hangup()));
  await server.close();
  if (server.calls.size !== 0 || server.stats.pendingHandshakes !== 0) failures.push('connections left after close()');
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
  return { connections, bytesSent, probeEchoes, reasons, handshakeFailures, failures };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      inputs: { type: 'string', default: '10000000' },
      seed: { type: 'string' },
      index: { type: 'string' },
      'server-seconds': { type: 'string', default: '5' },
    },
  });
  const inputs = Number(values.inputs!.replace(/_/g, ''));
  const seed = values.seed !== undefined ? Number(values.seed) | 0 : (Math.random() * 2 ** 31) | 0;
  const serverSeconds = Number(values['server-seconds']);
  if (!Number.isInteger(inputs) || inputs < 0 || !Number.isFinite(serverSeconds) || serverSeconds < 0) {
    console.error('usage: node build/bench/fuzz.js [--inputs N] [--seed S] [--index I] [--server-seconds T]');
    process.exit(2);
  }

  if (values.index !== undefined) {
    const index = Number(values.index);
    const { gen, input, cuts, max } = makeInput(seed, index);
    console.log(`seed ${seed} input #${index}: ${gen}, ${input.length} bytes, maxPayload ${max}, cuts [${cuts.join(', ')}]`);
    console.log(`bytes: ${input.subarray(0, 256).toString('hex')}${input.length > 256 ? '…' : ''}`);
    try {
      check(input, cuts, max);
    } catch (err) {
      console.log(`FAIL ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
      return;
    }
    console.log('all invariants hold');
    return;
  }

  console.log(`parser fuzz: ${inputs.toLocaleString('en')} inputs, seed ${seed}`);
  const byGen: Record<string, number> = {};
  let bytes = 0;
  let failure: string | null = null;
  const t0 = performance.now();
  let lastReport = t0;
  for (let i = 0; i < inputs; i++) {
    const { gen, input, cuts, max } = makeInput(seed, i);
    try {
      bytes += check(input, cuts, max);
    } catch (err) {
      failure = `input #${i} (${gen}): ${err instanceof Error ? err.message : String(err)}\n  reproduce: node build/bench/fuzz.js --seed ${seed} --index ${i}`;
      break;
    }
    byGen[gen] = (byGen[gen] ?? 0) + 1;
    if ((i & 0xffff) === 0 && performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      const s = (lastReport - t0) / 1000;
      console.log(`  ${i.toLocaleString('en')} inputs, ${(i / s / 1000).toFixed(0)}k/s, ${(bytes / s / 1e6).toFixed(0)} MB/s`);
    }
  }
  const secs = (performance.now() - t0) / 1000;
  const tried = Object.values(byGen).reduce((a, b) => a + b, 0);
  console.log(
    `parser: ${tried.toLocaleString('en')} inputs in ${secs.toFixed(1)} s: ${(tried / secs / 1000).toFixed(0)}k inputs/s, ` +
      `${(bytes / 1e6).toFixed(0)} MB at ${(bytes / secs / 1e6).toFixed(0)} MB/s; by generator ${JSON.stringify(byGen)}`,
  );
  if (failure !== null) {
    console.log(`FAIL ${failure}`);
    process.exitCode = 1;
    return;
  }
  console.log('parser: all invariants held');

  if (serverSeconds > 0) {
    console.log(`server fuzz: ${serverSeconds} s over 127.0.0.1, 16 abusive workers + 6 echo probes, seed ${seed}`);
    const t1 = performance.now();
    const rep = await fuzzServer(seed, serverSeconds);
    const s = (performance.now() - t1) / 1000;
    console.log(
      `server: ${rep.connections} connections, ${(rep.bytesSent / 1e6).toFixed(1)} MB of fuzz in ${s.toFixed(1)} s ` +
        `(${(rep.connections / s).toFixed(0)} conn/s); ${rep.probeEchoes} probe echoes byte-exact; ` +
        `call ends ${JSON.stringify(rep.reasons)}; handshake failures ${JSON.stringify(rep.handshakeFailures)}`,
    );
    if (rep.failures.length > 0) {
      console.log(`FAIL server: ${rep.failures.length} problems, first: ${rep.failures.slice(0, 5).join(' | ')} (seed ${seed})`);
      process.exitCode = 1;
      return;
    }
    console.log('server: all invariants held');
  }
}

await main();
