/**
 * The outbound side of one call: a queue of audio cut into exact frames and sent one frame per
 * slot on the shared {@link FrameScheduler} grid.
 *
 * Paced audio follows a timeline: `busyUntil` is the instant up to which the slots are taken
 * (by paced frames, silence or immediate writes). A tick sends a frame when the timeline has
 * reached the tick (paced audio first, else one frame of silence when keep-alive is on).
 * Immediate writes ({@link Outbound.write}, an echo) keep a timeline of their own, so
 * keep-alive silence sent while their input was late is not charged to them, and go out at
 * once when two guards allow it, else wait in a short queue:
 * - the writer's audio never runs ahead of real time by more than its credit (the time it
 *   left unused, remembered up to `maxQueuedMs`, at least ten frames) plus one frame: a writer
 *   faster than real time is held to real time once its credit is spent;
 * - the writes pass a burst guard that counts everything sent, silence and paced frames
 *   included: at most three frames' worth back to back (one message when it is longer) and at
 *   most 1.25 x real time while catching up, so a backlog left by late input drains within
 *   seconds instead of delaying the echo for good.
 * Paced frames catch up after an event-loop stall by at most `maxCatchUpFrames` extra frames
 * per tick, also within the burst guard. Keep-alive silence is not held by it (one frame per
 * slot at most). Asterisk neither buffers nor paces
 * (asterisk-observed.md, "Audio sent faster than real time"), and a lead of a frame or two is
 * harmless there; bursts are not.
 *
 * I/O-free: messages leave through the `send` callback, time comes from the scheduler's clock.
 */
import { audioSocketError, ErrorCodes } from './errors.js';
import { HEADER_SIZE, sampleRateOfKind, type AudioKind } from './protocol/kinds.js';
import { assertServerAudio, writeHeader } from './protocol/encoder.js';
import type { FrameScheduler, Paced } from './scheduler.js';

/** A streaming byte converter (see the audio module); `flush` drains its internal delay. */
export interface ByteConverter {
  push(chunk: Uint8Array): Uint8Array;
  flush(): Uint8Array;
  dispose?(): void;
}

/** Anything {@link Outbound.play} can take: bytes in the play's format, in one piece or streamed. */
export type OutboundSource =
  | Uint8Array
  | Int16Array
  | AsyncIterable<Uint8Array | Int16Array | string>
  | Iterable<Uint8Array | Int16Array>;

/** How a play ended. `interrupted` is not an error: it is what barge-in, abort and hangup do. */
export interface PlayResult {
  /** `done`: every byte was sent; `interrupted`: the rest was dropped. */
  status: 'done' | 'interrupted';
  /** Why it was interrupted. */
  reason?: 'flush' | 'abort' | 'hangup';
  /** Frames of this play that were sent (a frame shared with the next play counts for both). */
  framesSent: number;
  /** Milliseconds of this play's audio that were sent. */
  sentMs: number;
}

/** Outbound counters. */
export interface OutboundStats {
  /** Paced and immediate audio messages sent, silence included. */
  framesSent: number;
  /** Keep-alive silence frames sent. */
  silenceFrames: number;
  /** Frames sent later than half a frame after their slot (timer lateness). */
  lateSlots: number;
  /** Extra frames sent in one tick to catch up after a stall. */
  caughtUpFrames: number;
  /** Slots skipped after a stall longer than the catch-up budget (audio shifted later, not lost). */
  droppedSlots: number;
  /** Immediate writes dropped: more than `maxQueuedMs` of them were waiting, or a play held the slots. */
  droppedWrites: number;
  /** Immediate writes that could not go out at once (the writer ran ahead, or a burst) and waited. */
  delayedWrites: number;
  /** Ticks when a streamed play had not delivered a full frame in time. */
  underruns: number;
  /** Milliseconds of audio waiting to be sent (paced queue plus waiting immediate writes). */
  queuedMs: number;
}

/** Options of {@link Outbound}. */
export interface OutboundOptions {
  /** Kind of paced frames and keep-alive silence. */
  kind: AudioKind;
  /** Frame duration in ms, 10-60 in steps of 10 (Asterisk's slin framing range). */
  frameMs: number;
  /** Send a silence frame in every slot where nothing else is sent. */
  keepAlive: boolean;
  /** Extra frames a tick may send to catch up after a stall. */
  maxCatchUpFrames: number;
  /** Most milliseconds of immediate writes allowed to wait; older ones are dropped beyond it. */
  maxQueuedMs: number;
  /** How far ahead (ms) streamed sources are read and converted. */
  prefetchMs: number;
}

type Settle = (result: PlayResult) => void;

interface PlayItem {
  readonly type: 'play';
  source: OutboundSource;
  convert: ByteConverter | undefined;
  settle: Settle;
  reject: (error: unknown) => void;
  /** Source fully read (or failed/aborted). */
  exhausted: boolean;
  /** Settled. */
  finished: boolean;
  /** Bytes of this item still in the FIFO. */
  queuedBytes: number;
  framesSent: number;
  sentBytes: number;
  /** A trailing odd byte held back until the next chunk completes its sample, or -1. */
  heldByte: number;
  iterator: AsyncIterator<unknown> | Iterator<unknown> | undefined;
  cleanup: (() => void) | undefined;
  /** Resolves when the item is settled, so a pump waiting on a slow source can move on. */
  stopped: Promise<void>;
  stop: () => void;
}

interface MarkItem {
  readonly type: 'mark';
  name: string;
  resolve: (reached: boolean) => void;
}

type QueueItem = PlayItem | MarkItem;

/** An entry of the byte FIFO: bytes of a play, or a mark to fire once everything before it is sent. */
interface Segment {
  bytes: Buffer | null;
  offset: number;
  item: PlayItem | MarkItem;
}

interface Waiting {
  message: Buffer;
  durationMs: number;
}

const EPS = 1e-6;
/** An immediate write may start up to one frame ahead of the writer's real-time timeline. */
const WRITE_LEAD_FRAMES = 1;
/**
 * Writes that come late (input jitter, an event-loop stall, a call's first frame arriving while
 * the server accepts a thousand others) keep their unused time as credit, spent through the
 * burst guard, for as long as a write may wait (`maxQueuedMs`, at least ten frames). Lateness
 * forgotten would hold every later frame back for good: an echo's input comes at exactly
 * real-time rate, so a backlog could never drain (measured at 1000 calls: with ten frames of
 * credit, one 300 ms pause left a tenth of the calls 260 ms behind for the rest of the run).
 * In token-bucket terms the writer's bucket refills at real time and starts full. (Capping the
 * credit after a gap, so that a talk spurt written at once runs less far ahead, was tried too:
 * every event-loop stall then looked like a gap: echo RTT p50 315 ms.)
 */
const WRITE_CREDIT_MIN_FRAMES = 10;
/** Burst guard: the most audio per unit of time while catching up (1.25 x real time)... */
const BURST_RATE = 1.25;
/**
 * ...and the most sent back to back: three frames' worth (the frame due and a lead of two,
 * which asterisk-observed.md finds harmless), or one message when it is longer. Three, not
 * two: input merged three frames per TCP write (a busy peer, a proxy) then goes straight back.
 */
const BURST_FRAMES = 3;
const silenceCache = new Map<string, Buffer>();

/** A shared, never-mutated silence message of `frameMs` at `kind`'s rate. */
function silenceMessage(kind: AudioKind, frameMs: number): Buffer {
  const key = `${kind}:${frameMs}`;
  let msg = silenceCache.get(key);
  if (msg === undefined) {
    const size = frameBytes(kind, frameMs);
    msg = Buffer.alloc(HEADER_SIZE + size);
    writeHeader(msg, 0, kind, size);
    silenceCache.set(key, msg);
  }
  return msg;
}

/** Bytes of slin per frame for an audio kind (44.1 kHz: 882 samples per 20 ms). */
export function frameBytes(kind: AudioKind, frameMs: number): number {
  return Math.round((sampleRateOfKind(kind)! * frameMs) / 1000) * 2;
}

function toBuffer(chunk: Uint8Array | Int16Array | string): Buffer {
  if (typeof chunk === 'string') {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'audio chunks must be bytes (Buffer, Uint8Array or Int16Array), got a string');
  }
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Int16Array || chunk instanceof Uint8Array) {
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `audio chunks must be bytes, got ${Object.prototype.toString.call(chunk)}`);
}

export class Outbound implements Paced {
  readonly frameMs: number;
  readonly #kind: AudioKind;
  readonly #frameBytes: number;
  readonly #bytesPerMs: number;
  /** How long a writer's unused time is remembered (see WRITE_CREDIT_MIN_FRAMES). */
  readonly #creditMs: number;
  readonly #opts: OutboundOptions;
  readonly #scheduler: FrameScheduler;
  readonly #send: (message: Buffer) => void;
  readonly #onMark: (name: string, reached: boolean) => void;

  #busyUntil = -Infinity;
  /** The writer's own timeline: where its audio would end if sent at real-time pace. */
  #writerUntil = -Infinity;
  /** Burst guard (a GCRA): the instant at which everything sent so far is paid for at BURST_RATE. */
  #burstAt = -Infinity;
  /** Last immediate write (clock ms): keep-alive stays out of a live stream of writes. */
  #lastWriteAt = -Infinity;
  /** The last tick found nothing to send: the next audio starts at its own slot, no catch-up. */
  #idle = true;
  #silenceKind: AudioKind;
  #closed = false;
  #registered = false;

  /** Plays and marks not yet moved into the FIFO, in order. */
  #pending: QueueItem[] = [];
  #pumping = false;
  /** Bytes ready to be framed, with marks interleaved. */
  #fifo: Segment[] = [];
  #fifoHead = 0;
  #fifoBytes = 0;
  #roomWaiter: (() => void) | null = null;
  #underrunTicks = 0;
  #waiting: Waiting[] = [];
  #waitingMs = 0;
  #drainWaiters: Array<() => void> = [];

  #stats = {
    framesSent: 0,
    silenceFrames: 0,
    lateSlots: 0,
    caughtUpFrames: 0,
    droppedSlots: 0,
    droppedWrites: 0,
    delayedWrites: 0,
    underruns: 0,
  };

  constructor(
    options: OutboundOptions,
    scheduler: FrameScheduler,
    send: (message: Buffer) => void,
    onMark: (name: string, reached: boolean) => void,
  ) {
    if (!Number.isInteger(options.frameMs) || options.frameMs < 10 || options.frameMs > 60 || options.frameMs % 10 !== 0) {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `frameMs must be 10, 20, 30, 40, 50 or 60, got ${options.frameMs}`);
    }
    this.#opts = options;
    this.frameMs = options.frameMs;
    this.#kind = options.kind;
    this.#silenceKind = options.kind;
    this.#frameBytes = frameBytes(options.kind, options.frameMs);
    this.#bytesPerMs = this.#frameBytes / options.frameMs;
    this.#creditMs = Math.max(WRITE_CREDIT_MIN_FRAMES * options.frameMs, options.maxQueuedMs);
    this.#scheduler = scheduler;
    this.#send = send;
    this.#onMark = onMark;
  }

  /** The kind of paced frames. */
  get kind(): AudioKind {
    return this.#kind;
  }

  /** Bytes per paced frame. */
  get frameBytes(): number {
    return this.#frameBytes;
  }

  get stats(): OutboundStats {
    return { ...this.#stats, queuedMs: this.queuedMs };
  }

  /** Milliseconds of audio waiting (paced FIFO, not-yet-read buffers, immediate writes). */
  get queuedMs(): number {
    let bytes = this.#fifoBytes;
    for (const item of this.#pending) {
      if (item.type === 'play' && !item.exhausted && (Buffer.isBuffer(item.source) || ArrayBuffer.isView(item.source))) {
        bytes += (item.source as Uint8Array).byteLength;
      }
    }
    return bytes / this.#bytesPerMs + this.#waitingMs;
  }

  /** True when nothing is queued or waiting. */
  get idle(): boolean {
    return this.#fifoBytes === 0 && this.#pending.length === 0 && this.#waiting.length === 0 && this.#fifoHead >= this.#fifo.length;
  }

  /** Starts pacing (keep-alive begins at the next tick). */
  start(): void {
    if (this.#registered || this.#closed) return;
    this.#registered = true;
    this.#scheduler.add(this);
  }

  /**
   * Sends one audio message now, or as soon as the writer's timeline and the burst guard allow
   * (so an echo adds no delay in steady state and never doubles the rate).
   */
  write(audio: Uint8Array | Int16Array, kind: AudioKind): boolean {
    if (this.#closed) throw audioSocketError(ErrorCodes.CALL_ENDED, 'cannot write: the call has ended');
    const payload = toBuffer(audio); // an Int16Array is its bytes, not its values truncated
    assertServerAudio(kind, payload.length);
    if (payload.length > frameBytes(kind, 60)) {
      // Longer than any frame Asterisk makes (60 ms): cut into frames (the first go out now,
      // the rest through the guards), never sent as one burst that Asterisk would drop.
      const max = frameBytes(kind, this.frameMs);
      let accepted = true;
      for (let off = 0; off < payload.length; off += max) accepted = this.write(payload.subarray(off, off + max), kind) && accepted;
      return accepted;
    }
    if (this.#fifoBytes > 0 || this.#pending.length > 0) {
      // A play owns the slots until it ends or is flushed: sending both would exceed real time,
      // and queueing writes behind it would replay stale audio afterwards.
      this.#stats.droppedWrites++;
      return false;
    }
    const message = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
    writeHeader(message, 0, kind, payload.length);
    message.set(payload, HEADER_SIZE);
    const durationMs = (payload.length / 2 / sampleRateOfKind(kind)!) * 1000;
    const now = this.#scheduler.clock.now();
    this.#lastWriteAt = now;
    if (this.#waiting.length === 0 && this.#writeAllowed(now, durationMs)) {
      this.#sendWrite(message, durationMs, now);
      return true;
    }
    const entry: Waiting = { message, durationMs };
    this.#waiting.push(entry);
    this.#waitingMs += durationMs;
    while (this.#waitingMs > this.#opts.maxQueuedMs && this.#waiting.length > 1) {
      const dropped = this.#waiting.shift()!;
      this.#waitingMs -= dropped.durationMs;
      this.#stats.droppedWrites++;
    }
    this.#releaseWrites(now); // time has passed since the last tick: earlier ones may be due
    if (this.#waiting.at(-1) === entry) this.#stats.delayedWrites++;
    return true;
  }

  /** Both guards of an immediate write: the writer's own lead, and the burst guard. */
  #writeAllowed(now: number, durationMs: number): boolean {
    const F = this.frameMs;
    if (Math.max(this.#writerUntil, now - this.#creditMs) > now + WRITE_LEAD_FRAMES * F + EPS) return false;
    // Anything may go when nothing is owed; otherwise the owed time and this message together
    // stay within three frames' worth.
    return this.#burstAt <= now + EPS || this.#burstAt + durationMs / BURST_RATE <= now + (BURST_FRAMES * F) / BURST_RATE + EPS;
  }

  #sendWrite(message: Buffer, durationMs: number, now: number): void {
    this.#writerUntil = Math.max(this.#writerUntil, now - this.#creditMs) + durationMs;
    // The slots the write's audio covers: no silence or paced frame in them. (Several writes
    // arriving together cover several slots.)
    this.#busyUntil = Math.max(this.#busyUntil, now) + durationMs;
    this.#silenceKind = message[0] as AudioKind;
    this.#emit(message, now, durationMs);
  }

  /** Sends the waiting writes the guards allow now. */
  #releaseWrites(now: number): void {
    if (this.#waiting.length === 0) return;
    while (this.#waiting.length > 0 && !this.#closed) {
      const w = this.#waiting[0]!;
      if (!this.#writeAllowed(now, w.durationMs)) return;
      this.#waiting.shift();
      this.#waitingMs -= w.durationMs;
      this.#sendWrite(w.message, w.durationMs, now);
    }
    this.#checkDrained();
  }

  /** Queues a source for paced playback; see {@link PlayResult}. */
  play(source: OutboundSource, convert: ByteConverter | undefined, signal?: AbortSignal): Promise<PlayResult> {
    if (this.#closed) {
      convert?.dispose?.();
      return Promise.reject(audioSocketError(ErrorCodes.CALL_ENDED, 'cannot play: the call has ended'));
    }
    return new Promise<PlayResult>((resolve, reject) => {
      const item: PlayItem = {
        type: 'play',
        source,
        convert,
        settle: resolve,
        reject,
        exhausted: false,
        finished: false,
        queuedBytes: 0,
        framesSent: 0,
        sentBytes: 0,
        heldByte: -1,
        iterator: undefined,
        cleanup: undefined,
        stopped: undefined as unknown as Promise<void>,
        stop: () => {},
      };
      item.stopped = new Promise<void>((r) => (item.stop = r));
      if (signal !== undefined) {
        if (signal.aborted) {
          convert?.dispose?.();
          resolve({ status: 'interrupted', reason: 'abort', framesSent: 0, sentMs: 0 });
          return;
        }
        const onAbort = (): void => this.#interrupt(item, 'abort');
        signal.addEventListener('abort', onAbort, { once: true });
        item.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      this.#pending.push(item);
      this.#pump();
    });
  }

  /** Queues a mark: resolves `true` once everything queued before it has been sent, `false` if flushed. */
  mark(name: string): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      this.#pending.push({ type: 'mark', name, resolve });
      this.#pump();
    });
  }

  /** Drops everything queued; plays settle `interrupted` with `reason`, marks resolve `false`. Returns ms dropped. */
  flush(reason: 'flush' | 'hangup' = 'flush'): number {
    const dropped = this.queuedMs;
    const items = new Set<QueueItem>();
    for (let i = this.#fifoHead; i < this.#fifo.length; i++) items.add(this.#fifo[i]!.item);
    for (const item of this.#pending) items.add(item);
    this.#fifo = [];
    this.#fifoHead = 0;
    this.#fifoBytes = 0;
    this.#pending = [];
    this.#waiting = [];
    this.#waitingMs = 0;
    this.#underrunTicks = 0;
    for (const item of items) {
      if (item.type === 'mark') this.#fireMark(item, false);
      else this.#finish(item, reason);
    }
    this.#wakePump();
    this.#checkDrained();
    return dropped;
  }

  /** Resolves once everything queued so far has been sent (or flushed). */
  drained(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Stops for good: leaves the scheduler, settles everything as interrupted by hangup. */
  close(): void {
    if (this.#closed) return;
    this.flush('hangup');
    this.#closed = true;
    if (this.#registered) this.#scheduler.delete(this);
    this.#registered = false;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  onTick(gridTime: number, now: number, lastTickAt: number = -Infinity): void {
    if (this.#closed) return;
    const F = this.frameMs;
    // How long the writer has been quiet, as far as we can tell. After a stall of our own event
    // loop the timer runs before the input that arrived meanwhile is read, so only the time up
    // to the previous tick counts: silence sent now would be followed by a backlog of writes.
    const stalled = Number.isFinite(lastTickAt) && now - lastTickAt > 1.5 * F;
    const seenUntil = stalled ? lastTickAt : now;
    const writerQuiet = seenUntil - this.#lastWriteAt >= 2 * F;
    if (this.#waiting.length > 0) {
      // Waiting writes own the slots (they are a backlog, not a gap) until they are all out.
      this.#releaseWrites(now);
      return;
    }
    if (writerQuiet && this.#busyUntil > gridTime + WRITE_CREDIT_MIN_FRAMES * F + EPS) {
      // Writes that caught up at 1.25 x real time can leave the timeline up to maxQueuedMs
      // ahead. Once they stop, do not stay quiet that long (asterisk #2089) or hold a queued
      // play back: at most ten frames. (Less would put silence inside a backlog still being
      // echoed: input merged five frames per write covers 100 ms.)
      this.#busyUntil = gridTime + WRITE_CREDIT_MIN_FRAMES * F;
    }
    if (this.#busyUntil > gridTime + EPS) {
      this.#checkDrained();
      return;
    }
    if (this.#idle && writerQuiet) {
      // Time spent with nothing to send is not a backlog: start from this slot.
      this.#busyUntil = Math.max(this.#busyUntil, gridTime);
      this.#idle = false;
    }
    const budgetStart = gridTime - this.#opts.maxCatchUpFrames * F;
    if (this.#busyUntil < budgetStart - EPS) {
      // Behind by more than the catch-up budget. With audio ready that was a stall: skip the
      // schedule forward and count the slots; otherwise it was idle time, which is no loss.
      const ready = this.#fifoBytes > 0;
      if (ready && Number.isFinite(this.#busyUntil)) {
        this.#stats.droppedSlots += Math.round((budgetStart - this.#busyUntil) / F);
        this.#busyUntil = budgetStart;
      } else if (writerQuiet) {
        this.#busyUntil = gridTime;
      }
    }
    let framesThisTick = 0;
    while (this.#busyUntil <= gridTime + EPS && !this.#closed) {
      // Catching up after a stall obeys the burst guard too: a tick that sent three frames
      // just before the next tick's instant must not let that tick add a fourth.
      if (this.#fifoBytes > 0 && this.#burstAt + F / BURST_RATE > now + (BURST_FRAMES * F) / BURST_RATE + EPS) break;
      const slot = this.#busyUntil;
      const sent = this.#sendNext(now);
      if (!sent) {
        // Nothing queued. While immediate writes flow, an empty slot is only their jitter: no
        // silence, which would double the audio in the slot the late write then takes.
        // Otherwise keep-alive fills the slot.
        if (!writerQuiet) {
          this.#idle = true;
          break;
        }
        this.#busyUntil = Math.max(this.#busyUntil, gridTime);
        if (this.#opts.keepAlive) {
          this.#stats.silenceFrames++;
          this.#busyUntil += F;
          this.#emit(silenceMessage(this.#silenceKind, F), now, F);
        } else {
          this.#idle = true;
        }
        break;
      }
      if (framesThisTick++ > 0) this.#stats.caughtUpFrames++;
      if (now - Math.max(slot, gridTime) > F / 2) this.#stats.lateSlots++;
    }
    this.#checkDrained();
  }

  /** Sends the next paced frame; false if there is none. */
  #sendNext(now: number): boolean {
    this.#fireLeadingMarks();
    const size = this.#frameBytes;
    if (this.#fifoBytes === 0) return false;
    if (this.#fifoBytes < size) {
      // Partial frame: wait one slot for more if more may come, then pad with silence.
      const moreMayCome = this.#pending.length > 0 || this.#fifoHasUnexhausted();
      if (moreMayCome && this.#underrunTicks === 0) {
        this.#underrunTicks++;
        this.#stats.underruns++;
        return false;
      }
    }
    this.#underrunTicks = 0;
    const message = Buffer.allocUnsafe(HEADER_SIZE + size);
    writeHeader(message, 0, this.#kind, size);
    let filled = 0;
    const touched: PlayItem[] = [];
    const fifo = this.#fifo;
    while (filled < size && this.#fifoHead < fifo.length) {
      const seg = fifo[this.#fifoHead]!;
      if (seg.bytes === null) {
        if (filled > 0) break; // a mark after partial data: fire it after this frame
        this.#fifoHead++;
        this.#fireMark(seg.item as MarkItem, true);
        continue;
      }
      const item = seg.item as PlayItem;
      const n = Math.min(size - filled, seg.bytes.length - seg.offset);
      seg.bytes.copy(message, HEADER_SIZE + filled, seg.offset, seg.offset + n);
      seg.offset += n;
      filled += n;
      item.queuedBytes -= n;
      item.sentBytes += n;
      if (touched[touched.length - 1] !== item) touched.push(item);
      if (seg.offset === seg.bytes.length) {
        seg.bytes = null;
        this.#fifoHead++;
      }
    }
    this.#fifoBytes -= filled;
    if (filled < size) message.fill(0, HEADER_SIZE + filled);
    this.#compactFifo();
    this.#busyUntil += this.frameMs;
    // Played audio is the writer's too: writes after a prompt get no credit for its time.
    this.#writerUntil = Math.max(this.#writerUntil, this.#busyUntil);
    this.#silenceKind = this.#kind;
    this.#emit(message, now, this.frameMs);
    for (const item of touched) {
      item.framesSent++;
      if (item.exhausted && item.queuedBytes === 0) this.#finish(item, undefined);
    }
    this.#fireLeadingMarks();
    this.#wakePump();
    return true;
  }

  #emit(message: Buffer, now: number, durationMs: number): void {
    this.#burstAt = Math.max(this.#burstAt, now) + durationMs / BURST_RATE;
    this.#stats.framesSent++;
    this.#send(message);
  }

  #fifoHasUnexhausted(): boolean {
    for (let i = this.#fifoHead; i < this.#fifo.length; i++) {
      const item = this.#fifo[i]!.item;
      if (item.type === 'play' && !item.exhausted) return true;
    }
    return false;
  }

  /** Marks at the head of the FIFO have nothing before them left to send. */
  #fireLeadingMarks(): void {
    const fifo = this.#fifo;
    while (this.#fifoHead < fifo.length) {
      const seg = fifo[this.#fifoHead]!;
      if (seg.item.type !== 'mark') break;
      this.#fifoHead++;
      this.#fireMark(seg.item, true);
    }
    this.#compactFifo();
  }

  #compactFifo(): void {
    if (this.#fifoHead === this.#fifo.length) {
      this.#fifo.length = 0;
      this.#fifoHead = 0;
    } else if (this.#fifoHead > 64) {
      this.#fifo = this.#fifo.slice(this.#fifoHead);
      this.#fifoHead = 0;
    }
  }

  #fireMark(mark: MarkItem, reached: boolean): void {
    mark.resolve(reached);
    this.#onMark(mark.name, reached);
  }

  #finish(item: PlayItem, reason: 'flush' | 'abort' | 'hangup' | undefined): void {
    if (item.finished) return;
    item.finished = true;
    item.stop();
    item.cleanup?.();
    item.convert?.dispose?.();
    if (!item.exhausted) {
      item.exhausted = true;
      const it = item.iterator;
      if (it !== undefined && typeof it.return === 'function') {
        try {
          const r = it.return();
          if (r instanceof Promise) r.catch(() => {});
        } catch {
          // The source's own cleanup failed; nothing more to do for it.
        }
      }
    }
    const sentMs = item.sentBytes / this.#bytesPerMs;
    item.settle(
      reason === undefined
        ? { status: 'done', framesSent: item.framesSent, sentMs }
        : { status: 'interrupted', reason, framesSent: item.framesSent, sentMs },
    );
  }

  /** Interrupts one play (abort signal): drops its queued bytes wherever they are. */
  #interrupt(item: PlayItem, reason: 'abort'): void {
    if (item.finished) return;
    const p = this.#pending.indexOf(item);
    if (p >= 0) this.#pending.splice(p, 1);
    for (let i = this.#fifoHead; i < this.#fifo.length; i++) {
      const seg = this.#fifo[i]!;
      if (seg.item === item && seg.bytes !== null) {
        this.#fifoBytes -= seg.bytes.length - seg.offset;
        seg.offset = seg.bytes.length;
      }
    }
    this.#fifo = this.#fifo.filter((seg, i) => i >= this.#fifoHead && !(seg.item === item));
    this.#fifoHead = 0;
    item.queuedBytes = 0;
    this.#finish(item, reason);
    this.#wakePump();
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#drainWaiters.length === 0 || !this.idle) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  /** Appends converted bytes of `item` to the FIFO, keeping whole samples. */
  #append(item: PlayItem, chunk: Uint8Array): void {
    let bytes = toBuffer(chunk);
    if (item.heldByte >= 0 && bytes.length > 0) {
      // The byte held back from the previous chunk completes the first sample of this one.
      const joined = Buffer.allocUnsafe(bytes.length + 1);
      joined[0] = item.heldByte;
      bytes.copy(joined, 1);
      bytes = joined;
      item.heldByte = -1;
    }
    if (bytes.length % 2 === 1) {
      item.heldByte = bytes[bytes.length - 1]!;
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    if (bytes.length === 0) return;
    this.#fifo.push({ bytes, offset: 0, item });
    this.#fifoBytes += bytes.length;
    item.queuedBytes += bytes.length;
  }

  #wakePump(): void {
    const w = this.#roomWaiter;
    if (w !== null && this.#fifoBytes < this.#opts.prefetchMs * this.#bytesPerMs) {
      this.#roomWaiter = null;
      w();
    }
  }

  /** Moves pending items into the FIFO in order, reading streamed sources ahead by `prefetchMs`. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    void this.#pumpLoop().finally(() => {
      this.#pumping = false;
      if (this.#pending.length > 0 && !this.#closed) this.#pump();
    });
  }

  async #pumpLoop(): Promise<void> {
    while (this.#pending.length > 0 && !this.#closed) {
      const item = this.#pending[0]!;
      if (item.type === 'mark') {
        this.#pending.shift();
        this.#fifo.push({ bytes: null, offset: 0, item });
        continue;
      }
      try {
        await this.#pumpPlay(item);
      } catch (error) {
        // A failing source rejects its own play; the queue goes on with the next one.
        if (!item.finished) {
          item.finished = true;
          item.stop();
          item.exhausted = true;
          item.cleanup?.();
          item.convert?.dispose?.();
          this.#dropItemBytes(item);
          item.reject(error);
        }
      }
      if (this.#pending[0] === item) this.#pending.shift();
    }
  }

  #dropItemBytes(item: PlayItem): void {
    for (let i = this.#fifoHead; i < this.#fifo.length; i++) {
      const seg = this.#fifo[i]!;
      if (seg.item === item && seg.bytes !== null) {
        this.#fifoBytes -= seg.bytes.length - seg.offset;
        seg.offset = seg.bytes.length;
      }
    }
    this.#fifo = this.#fifo.filter((seg, i) => i >= this.#fifoHead && seg.item !== item);
    this.#fifoHead = 0;
    item.queuedBytes = 0;
  }

  async #pumpPlay(item: PlayItem): Promise<void> {
    const src = item.source;
    const feed = (chunk: Uint8Array | Int16Array | string): void => {
      const bytes = toBuffer(chunk);
      this.#append(item, item.convert ? item.convert.push(bytes) : bytes);
    };
    if (ArrayBuffer.isView(src)) {
      feed(src);
    } else if (typeof (src as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
      const it = (src as AsyncIterable<Uint8Array | Int16Array | string>)[Symbol.asyncIterator]();
      item.iterator = it;
      for (;;) {
        if (item.finished) return;
        while (this.#fifoBytes >= this.#opts.prefetchMs * this.#bytesPerMs && !item.finished) {
          await new Promise<void>((resolve) => (this.#roomWaiter = resolve));
        }
        if (item.finished) return;
        const next = it.next();
        // A source stuck on the network (a TTS stream) must not hold the queue after a flush.
        const r = await Promise.race([next, item.stopped.then(() => null)]);
        if (r === null || item.finished) {
          next.then(undefined, () => {});
          return;
        }
        if (r.done) break;
        feed(r.value);
      }
    } else if (typeof (src as Iterable<unknown>)[Symbol.iterator] === 'function') {
      for (const chunk of src as Iterable<Uint8Array | Int16Array>) feed(chunk);
    } else {
      throw audioSocketError(
        ErrorCodes.INVALID_ARGUMENT,
        'play() takes a Buffer, Uint8Array, Int16Array, Readable stream or (async) iterable of chunks',
      );
    }
    if (item.finished) return;
    if (item.convert) {
      const tail = item.convert.flush();
      if (tail.length > 0) this.#append(item, tail);
    }
    // A dangling half sample at the very end is dropped: it would shift every later sample.
    item.heldByte = -1;
    item.exhausted = true;
    if (item.queuedBytes === 0) this.#finish(item, undefined);
  }
}
