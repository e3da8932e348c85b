/**
 * The echo path's own cost per message, without sockets: N calls of a real server (its
 * handshake, parser, call core, paced outbound, under a `ManualClock`) each fed one chunk of two
 * audio messages per 40 ms, as the load generator sends them, and echoing them; against the
 * floor's decoder and write (`floor-echo.ts`) over the same chunks, in the same process,
 * alternating. A socket here is an object that counts writes: what is measured is the
 * JavaScript a message crosses, with the CPU's caches warm (every call's state stays in cache
 * between its messages). The library's figure includes its timer passes (the clock moves 40 ms
 * per chunk: two passes, each serving only the calls it has work for, docs/pacing.md); the floor
 * has none.
 *
 *   node build/bench/echo-pass.js [--calls 500] [--slots 1000] [--rounds 4] [--first N]
 *
 * Over real sockets the same JavaScript costs several times more per message, because the
 * kernel's TCP path runs between two messages and each call's state is then read from memory
 * (bench/README.md). The server takes its connections from `net.createServer`: this bench gives
 * it objects of its own through that function (a bench-only seam, not an API).
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import { ManualClock } from '#lib/clock.js';
import { createServer } from '#lib/index.js';
import { Decoder, isAudioKind } from './lib/wire.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '500' },
    slots: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '4' },
    first: { type: 'string', default: '0' },
  },
});
const CALLS = Number(values.calls);
const SLOTS = Number(values.slots);
const ROUNDS = Number(values.rounds);
/**
 * Messages in each call's first chunk (0: none before the rounds). A first chunk of more than the
 * lead (3 frames) is a call accepted late: its echo keeps the rest as delay, so every later
 * frame of it is held in the queue and leaves at a timer pass instead of on arrival.
 */
const FIRST = Number(values.first);
const MESSAGE = 3 + 320;
const GROUP = 2;

/** What the server and the floor use of a socket, counting writes. */
class CountingSocket extends EventEmitter {
  remoteAddress = '127.0.0.1';
  remotePort = 40000;
  writable = true;
  writableLength = 0;
  destroyed = false;
  written = 0;
  setNoDelay(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  pause(): this {
    return this;
  }
  end(): this {
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
  write(message: Uint8Array): boolean {
    if (message.length === MESSAGE) this.written++;
    return true;
  }
}

/** `n` slin 8 kHz messages in one chunk (two by default), new memory each time (as a socket read gives). */
function chunk(n = GROUP): Buffer {
  const b = Buffer.allocUnsafe(MESSAGE * n);
  for (let at = 0; at < b.length; at += MESSAGE) {
    b[at] = 0x10;
    b.writeUInt16BE(320, at + 1);
    b.fill(3, at + 3, at + MESSAGE);
  }
  return b;
}

let netServer: net.Server | undefined;
const createNetServer = net.createServer;
net.createServer = ((...args: Parameters<typeof net.createServer>) => (netServer = createNetServer(...args))) as typeof net.createServer;
const clock = new ManualClock(1000);
createServer((call) => void call.on('audio', (frame) => call.write(frame.payload, frame.format)), { clock });
net.createServer = createNetServer;

const library = Array.from({ length: CALLS }, () => {
  const socket = new CountingSocket();
  netServer!.emit('connection', socket);
  socket.emit('data', Buffer.from([0x01, 0x00, 0x10, ...new Array<number>(16).fill(7)]));
  if (FIRST > 0) socket.emit('data', chunk(FIRST));
  return socket;
});
const floor = Array.from({ length: CALLS }, () => {
  const socket = new CountingSocket();
  const decoder = new Decoder((kind, frame) => {
    if (isAudioKind(kind) && frame.length > 3) socket.write(frame);
  });
  socket.on('data', (c: Buffer) => decoder.push(c));
  return socket;
});

function run(sockets: CountingSocket[], advance: boolean): number {
  const cpu0 = process.cpuUsage();
  for (let slot = 0; slot < SLOTS; slot += GROUP) {
    for (const s of sockets) s.emit('data', chunk());
    if (advance) clock.advance(20 * GROUP);
  }
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / (SLOTS * CALLS);
}

run(library, true);
run(floor, false);
const lib: number[] = [];
const flo: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  if (r % 2 === 0) {
    lib.push(run(library, true));
    flo.push(run(floor, false));
  } else {
    flo.push(run(floor, false));
    lib.push(run(library, true));
  }
}
const echoed = library.reduce((n, s) => n + s.written, 0);
const expected = CALLS * (SLOTS * (ROUNDS + 1) + FIRST);
// A first chunk stays partly queued to the end: the delay those calls keep.
const stillHeld = CALLS * FIRST;
if (echoed < expected - stillHeld || echoed > expected) {
  throw new Error(`the library echoed ${echoed} messages of ${expected}: the bench is not measuring an echo`);
}
const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
const f = mean(flo);
const l = mean(lib);
const fmt = (a: number[]): string => a.map((x) => x.toFixed(3)).join(', ');
process.stdout.write(
  `${CALLS} calls, ${SLOTS} messages each per round${FIRST > 0 ? `, a first chunk of ${FIRST}` : ''}: floor ${f.toFixed(3)} µs/message, library ${l.toFixed(3)} µs/message, ` +
    `library adds ${(l - f).toFixed(3)} µs/message (rounds: floor ${fmt(flo)}; library ${fmt(lib)})\n`,
);
process.exit(0);
