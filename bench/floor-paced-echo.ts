/**
 * The paced floor: the floor echo (`floor-echo.ts`) plus the library's own pacing model, driven by
 * hand. It answers one question: of what the library's echo costs over the floor, how much is the
 * pacing model (`src/outbound/pacer.ts`, `docs/pacing.md`) and how much is the rest of the
 * library (call objects, events, outbound queue, connection)?
 *
 * Per call it keeps what a paced echo cannot do without: a `Pacer`, a queue of held messages
 * and when the input is expected next. Each audio message (kinds 0x10..0x18) is noted as input
 * and leaves at once, as the zero-copy view of the received chunk the floor writes, when nothing
 * is queued and the pacer admits it; otherwise it waits for the shared timer. One timer on a
 * drift-free 20 ms grid serves only the calls that need it (something queued, or keep-alive
 * silence once the pacer says the call is idle), as the library's scheduler does. No events, no
 * statistics, no limits, no G.711 check: a reference point for `echo-compare --floor`, not a server
 * to deploy.
 *
 * Simpler than the library where an echo under a steady load does not need it: no keep-alive
 * before the first echo (the library sends it once `graceFrames` have passed); no pass woken when
 * `noteInput` moves a talk spurt back; quiet time counted up to the pass's slot (the library counts
 * a stalled loop's time as not seen); a late pass serves the slot it was armed for, not the latest
 * passed; a message longer than a frame is sent whole, not cut.
 *
 * CLI: node build/bench/floor-paced-echo.js --host 127.0.0.1 --port 9092
 * Prints "listening host:port" on stdout once bound. Stops on SIGINT/SIGTERM.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { DEFAULT_PACING, Pacer, type PacingParameters } from '#lib/outbound/pacer.js';
import { Decoder, HEADER_BYTES, audioRate, encode } from './lib/wire.js';
import { listenFloor, runFloorCli, type ListeningFloor } from './lib/floor-server.js';

const FRAME_MS = 20;
const PACING: PacingParameters = { ...DEFAULT_PACING, frameMs: FRAME_MS };

export type FloorPacedEcho = ListeningFloor;

/** One call: its pacer, the messages it holds back, and its slot in the timer's table. */
class PacedCall {
  readonly pacer = new Pacer(PACING);
  readonly queue: Buffer[] = [];
  /** When the input read so far ends (the pacer's quiet time stops there while input is due). */
  inputUntil = -Infinity;
  /** Kind of the last audio echoed: keep-alive silence goes out in it. */
  kind = 0;

  constructor(
    readonly socket: net.Socket,
    readonly timer: SharedTimer,
    readonly slot: number,
  ) {}

  message(kind: number, frame: Buffer): void {
    const rate = audioRate(kind);
    const bytes = frame.length - HEADER_BYTES;
    if (rate === undefined || bytes < 2) return;
    const now = performance.now();
    const ms = (bytes / 2 / rate) * 1000;
    this.inputUntil = now + ms;
    this.kind = kind;
    const pacer = this.pacer;
    pacer.noteInput(ms, now);
    if (this.queue.length === 0 && pacer.admits(ms, now)) {
      // Audio after idle: the timer's last visit found nothing to do until told.
      if (pacer.idle) this.timer.wake(this.slot);
      pacer.commit(ms, now);
      this.socket.write(frame);
      return;
    }
    this.queue.push(frame);
    this.timer.wake(this.slot);
  }

  /** A pass of the timer for the grid slot `slot`; returns when this call next needs one. */
  visit(slot: number, now: number): number {
    const pacer = this.pacer;
    const queue = this.queue;
    let sent = false;
    // Queued audio leaves just in time: while its place starts before the next pass.
    while (queue.length > 0) {
      const frame = queue[0]!;
      const ms = ((frame.length - HEADER_BYTES) / 2 / audioRate(frame[0]!)!) * 1000;
      if (pacer.startAt(now) >= slot + FRAME_MS || !pacer.admits(ms, now, now, false, slot)) break;
      queue.shift();
      pacer.commit(ms, now);
      this.socket.write(frame);
      sent = true;
    }
    const quietUntil = this.inputUntil === -Infinity ? slot : Math.max(Math.min(slot, this.inputUntil), slot - PACING.inputWaitMs);
    if (!sent && queue.length === 0 && this.kind !== 0 && pacer.rest(quietUntil) && pacer.dueBy(slot)) {
      if (pacer.admits(FRAME_MS, now, slot, true)) {
        pacer.commit(FRAME_MS, now, slot, true);
        this.socket.write(silenceOf(this.kind));
      }
    }
    return queue.length > 0 || pacer.idle ? -Infinity : pacer.restsFrom;
  }
}

const silences = new Map<number, Buffer>();
function silenceOf(kind: number): Buffer {
  let s = silences.get(kind);
  if (s === undefined) {
    s = encode(kind, Buffer.alloc(Math.round((audioRate(kind)! * FRAME_MS) / 1000) * 2));
    silences.set(kind, s);
  }
  return s;
}

/** One timer for every call, on the grid `origin + k x 20 ms`; a dense table says which calls a pass visits. */
class SharedTimer {
  readonly #calls: Array<PacedCall | undefined> = [];
  #visitAt = new Float64Array(64).fill(Infinity);
  readonly #free: number[] = [];
  readonly #origin = performance.now();
  #index = 0;
  #timer: NodeJS.Timeout | undefined;

  add(socket: net.Socket): PacedCall {
    const slot = this.#free.pop() ?? this.#calls.length;
    if (slot >= this.#visitAt.length) {
      const grown = new Float64Array(this.#visitAt.length * 2).fill(Infinity);
      grown.set(this.#visitAt);
      this.#visitAt = grown;
    }
    const call = new PacedCall(socket, this, slot);
    this.#calls[slot] = call;
    this.#visitAt[slot] = -Infinity;
    this.#timer ??= this.#arm();
    return call;
  }

  remove(call: PacedCall): void {
    this.#calls[call.slot] = undefined;
    this.#visitAt[call.slot] = Infinity;
    this.#free.push(call.slot);
  }

  wake(slot: number): void {
    if (this.#calls[slot] !== undefined) this.#visitAt[slot] = -Infinity;
  }

  stop(): void {
    clearTimeout(this.#timer);
  }

  #arm(): NodeJS.Timeout {
    const now = performance.now();
    this.#index = Math.max(this.#index + 1, Math.ceil((now - this.#origin) / FRAME_MS));
    const at = this.#origin + this.#index * FRAME_MS;
    return setTimeout(() => this.#pass(at), Math.max(0, at - now));
  }

  #pass(slot: number): void {
    const now = performance.now();
    for (let i = 0; i < this.#calls.length; i++) {
      if (this.#visitAt[i]! > now) continue;
      const call = this.#calls[i];
      if (call !== undefined) this.#visitAt[i] = call.visit(slot, now);
    }
    this.#timer = this.#arm();
  }
}

export function startFloorPacedEcho(opts: { host?: string; port?: number } = {}): Promise<FloorPacedEcho> {
  const host = opts.host ?? '127.0.0.1';
  const sockets = new Set<net.Socket>();
  const timer = new SharedTimer();
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    const call = timer.add(socket);
    const decoder = new Decoder((kind, frame) => call.message(kind, frame));
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    // A reset peer is a normal end of call for a bench server; never crash on it.
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      timer.remove(call);
    });
  });
  return listenFloor(server, sockets, host, opts.port ?? 0, () => timer.stop());
}

runFloorCli(import.meta.url, 'floor-paced-echo', (host, port) => startFloorPacedEcho({ host, port }));
