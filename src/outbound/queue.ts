/**
 * The outbound queue of one call: everything waiting to be sent, in order (written audio,
 * played sources, marks), and the frame cutter. No clock and no I/O: the {@link Outbound} asks
 * for the next frame when the pacer lets one leave.
 *
 * Written bytes go straight into the byte FIFO (behind any play still being read). Played
 * sources are read ahead by `prefetchMs` (streams) or in one piece (buffers), converted, and
 * appended with odd bytes carried over so samples stay whole. Frames are cut from the head:
 * up to one frame of the head's format, across entries of the same format, never across a mark
 * or a change of format. Format-neutral: the transport's outbound policy decides what a frame
 * becomes on the wire.
 */
import { audioSocketError, ErrorCodes } from '../errors.js';
import type { AudioFormat } from '../audio/format.js';
import { durationMs, frameBytes, sampleBytes } from './frames.js';

/** A streaming byte converter (see the audio module); `flush` drains its internal delay. */
export interface ByteConverter {
  push(chunk: Uint8Array): Uint8Array;
  flush(): Uint8Array;
  dispose?(): void;
}

/** Anything `play()` takes: bytes in the play's format, in one piece or streamed. */
export type AudioSource = Uint8Array | Int16Array | AsyncIterable<Uint8Array | Int16Array | string> | Iterable<Uint8Array | Int16Array>;

/** How a play ended. `interrupted` is not an error: it is what barge-in, abort and hangup do. */
export interface PlayResult {
  /** `done`: every byte was sent and its time has passed; `interrupted`: the rest was dropped. */
  status: 'done' | 'interrupted';
  /** Why it was interrupted: `barge-in` (the caller spoke or pressed a key, see `bargeIn`), `flush`, `abort` or `hangup`. */
  reason?: 'barge-in' | 'flush' | 'abort' | 'hangup';
  /** What interrupted a play started with a `bargeIn` option. */
  bargeIn?: BargeIn;
  /** Frames of this play that were sent (a frame shared with the next play counts for both). */
  framesSent: number;
  /** Milliseconds of this play's audio that were sent. */
  sentMs: number;
}

/** What stopped a play that the caller could interrupt (`bargeIn` of play options). */
export interface BargeIn {
  /** The caller's speech (its start, as the speech detector saw it) or a key. */
  by: 'speech' | 'dtmf';
  /** Where it happened on the call's timeline (ms since the call started): the speech's first voiced frame, or the key's arrival. */
  atMs: number;
  /** When it was detected; the audio was flushed at that instant. */
  detectedAtMs: number;
  /** The key, for `dtmf`. */
  digit?: string;
}

/** Why queued audio was interrupted. */
export type InterruptReason = NonNullable<PlayResult['reason']>;

/**
 * Something that completes once the audio before it has played: `done()` then, or `cancel()`
 * if the call ends first.
 */
export interface Completion {
  done(): void;
  cancel(reason: InterruptReason): void;
}

interface PlayItem extends Completion {
  readonly type: 'play';
  readonly format: AudioFormat;
  source: AudioSource;
  convert: ByteConverter | undefined;
  settle: (result: PlayResult) => void;
  reject: (error: unknown) => void;
  /** Source fully read (or failed/aborted). */
  exhausted: boolean;
  /** Settled, or handed out as a completion. */
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

interface MarkItem extends Completion {
  readonly type: 'mark';
  readonly name: string;
  /** An internal mark (a play's start, for barge-in): no `mark` event. */
  readonly quiet: boolean;
  resolve: (reached: boolean) => void;
}

interface WriteItem {
  readonly type: 'write';
  readonly format: AudioFormat;
  readonly bytes: Buffer;
}

type Entry = PlayItem | MarkItem | WriteItem;

/**
 * An entry of the byte FIFO: bytes of a play or a write (`owner` null), or, with `bytes` null, a
 * marker that completes once everything before it has played: a mark, or the end of a play
 * whose bytes had all been sent when its source ended.
 */
interface Segment {
  bytes: Buffer | null;
  offset: number;
  format: AudioFormat;
  owner: PlayItem | MarkItem | null;
}

/** One frame cut from the head of the queue. */
export interface Frame {
  /** The frame's bytes, in `format`: a view of the bytes as written, or a copy across entries. */
  bytes: Buffer;
  format: AudioFormat;
  durationMs: number;
  /** Plays whose last byte is in this frame and marks right after it: done once it has played. */
  completed: Completion[];
}

export interface QueueOptions {
  frameMs: number;
  /** How far ahead (ms) streamed sources are read and converted. */
  prefetchMs: number;
  /** Called when bytes or marks became ready at the head (after a pump step). */
  onReady: () => void;
  /** A mark was reached (`true`) or flushed (`false`). */
  onMark: (name: string, reached: boolean) => void;
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

const EMPTY: Completion[] = [];
const NO_BYTES = Buffer.alloc(0);
/** The format field of a marker segment, which holds no audio. */
const MARKER_FORMAT: AudioFormat = Object.freeze({ encoding: 'slin', sampleRate: 8000, channels: 1 });

export class OutboundQueue {
  // Fields read per frame come first, together (see PacedOutbound).
  /**
   * Nothing at all is queued ({@link empty}): kept as a field, set wherever the FIFO's head or
   * the pending entries change, because it is asked before every write and at every tick, and
   * an echo's queue is empty at both (its frames leave as they are written): the FIFO's array
   * and the pending entries are then not read at all.
   */
  #empty = true;
  /**
   * The head cursor. The head segment when it holds audio (`#fifo[#head]`), else null; its
   * bytes, format and one frame of that format in bytes; and how far it has been cut. The steady
   * state of a play (frames cut from the middle of one segment) reads and writes only these
   * fields of the queue: not the FIFO's array, not the segment, not its play. What was cut
   * since (`#headCut` bytes, `#headCutFrames` frames) is written back to the segment and its play
   * by {@link #syncCut}, which every other reader of those runs first.
   */
  #headSeg: Segment | null = null;
  #headBytes: Buffer = NO_BYTES;
  #headOffset = 0;
  #headFrameBytes = 0;
  #headFormat: AudioFormat = MARKER_FORMAT;
  #headCut = 0;
  #headCutFrames = 0;
  #fifoMs = 0;
  #roomWaiter: (() => void) | null = null;
  readonly #frameMs: number;
  /** Entries not yet in the FIFO (behind a play being read), in order. */
  #pending: Entry[] = [];
  #pendingMs = 0;
  #pumping = false;
  #fifo: Segment[] = [];
  #head = 0;
  readonly #prefetchMs: number;
  readonly #onReady: () => void;
  readonly #onMark: (name: string, reached: boolean) => void;
  #closed = false;

  constructor(options: QueueOptions) {
    this.#frameMs = options.frameMs;
    this.#prefetchMs = options.prefetchMs;
    this.#onReady = options.onReady;
    this.#onMark = options.onMark;
  }

  /** Milliseconds of audio waiting: the FIFO, written audio behind a play, and buffers not yet read. */
  get queuedMs(): number {
    let ms = this.#fifoMs + this.#pendingMs;
    for (const e of this.#pending) {
      if (e.type === 'play' && !e.exhausted && ArrayBuffer.isView(e.source)) ms += durationMs(e.format, e.source.byteLength);
    }
    return ms;
  }

  /** True when nothing at all is queued (no bytes, no marks, no play being read). */
  get empty(): boolean {
    return this.#empty;
  }

  #refreshEmpty(): void {
    this.#empty = this.#headSeg === null && this.#head >= this.#fifo.length && this.#pending.length === 0;
  }

  /** True when a play being read may still deliver bytes (a partial frame at the head may grow). */
  get moreMayCome(): boolean {
    if (this.#pending.length > 0) return true;
    for (let i = this.#head; i < this.#fifo.length; i++) {
      const owner = this.#fifo[i]!.owner;
      if (owner !== null && owner.type === 'play' && !owner.exhausted) return true;
    }
    return false;
  }

  /** Queues written audio (whole samples, validated by the caller) behind everything queued. */
  write(bytes: Buffer, format: AudioFormat): void {
    if (this.#pending.length > 0) {
      this.#pending.push({ type: 'write', format, bytes });
      this.#pendingMs += durationMs(format, bytes.length);
      return;
    }
    this.#push({ bytes, offset: 0, format, owner: null });
    this.#fifoMs += durationMs(format, bytes.length);
  }

  /** Queues a source for playback in `format`, converted to it by `convert` on the way. */
  play(source: AudioSource, convert: ByteConverter | undefined, format: AudioFormat, signal?: AbortSignal): Promise<PlayResult> {
    return new Promise<PlayResult>((resolve, reject) => {
      const item: PlayItem = {
        type: 'play',
        format,
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
        done: () => this.#finish(item, undefined),
        cancel: (reason) => this.#finish(item, reason),
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
      this.#empty = false;
      this.#pump();
    });
  }

  /** Queues a mark: resolves `true` once everything before it has played, `false` if flushed. `quiet`: no `mark` event. */
  mark(name: string, quiet = false): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const mark: MarkItem = {
        type: 'mark',
        name,
        quiet,
        resolve,
        done: () => this.#fireMark(mark, true),
        cancel: () => this.#fireMark(mark, false),
      };
      if (this.#pending.length > 0) this.#pending.push(mark);
      else this.#push({ bytes: null, offset: 0, format: MARKER_FORMAT, owner: mark });
    });
  }

  /** Marks at the head: nothing queued before them is left to send. */
  takeLeadingMarks(): Completion[] {
    if (this.#headSeg !== null) return EMPTY;
    let out: Completion[] | undefined;
    const fifo = this.#fifo;
    while (this.#head < fifo.length && fifo[this.#head]!.bytes === null) {
      (out ??= []).push(fifo[this.#head++]!.owner!);
    }
    this.#compact();
    return out ?? EMPTY;
  }

  /** Format of the audio at the head (meaningful when {@link peek} is not 0). */
  get headFormat(): AudioFormat {
    if (this.#headSeg !== null) return this.#headFormat;
    return this.#head < this.#fifo.length ? this.#fifo[this.#head]!.format : MARKER_FORMAT;
  }

  /**
   * The next frame's size in bytes, in {@link headFormat} (0: no audio at the head). Call
   * {@link takeLeadingMarks} first: a mark at the head hides the bytes behind it.
   */
  peek(): number {
    if (this.#headSeg !== null && this.#headBytes.length - this.#headOffset >= this.#headFrameBytes) return this.#headFrameBytes;
    this.#syncCut();
    const fifo = this.#fifo;
    if (this.#head >= fifo.length) return 0;
    const first = fifo[this.#head]!;
    if (first.bytes === null) return 0;
    const format = first.format;
    const size = frameBytes(format, this.#frameMs);
    let n = 0;
    for (let i = this.#head; i < fifo.length && n < size; i++) {
      const seg = fifo[i]!;
      if (seg.bytes === null || seg.format !== format) break;
      n += seg.bytes.length - seg.offset;
    }
    return Math.min(n, size);
  }

  /**
   * Cuts the next frame (see {@link peek}); `null` when there are no bytes at the head. A view
   * of the bytes as written when they lie in one entry, else a copy.
   */
  take(): Frame | null {
    const n = this.peek();
    if (n === 0) return null;
    const format = this.headFormat;
    const ms = durationMs(format, n);
    this.#syncCut();
    const seg = this.#fifo[this.#head]!;
    const bytes = seg.bytes!;
    let out: Buffer;
    let completed: Completion[];
    if (bytes.length - seg.offset >= n) {
      out = seg.offset === 0 && bytes.length === n ? bytes : bytes.subarray(seg.offset, seg.offset + n);
      completed = this.#cut(n, null, 0);
    } else {
      out = Buffer.allocUnsafe(n);
      completed = this.#cut(n, out, 0);
    }
    return { bytes: out, format, durationMs: ms, completed };
  }

  /**
   * Cuts the next frame (see {@link peek}) into `target` at `at` (room for {@link peek} bytes
   * there): a transport that writes its header in front of the frame sends one buffer, copied
   * once. Returns what completes once the frame has played ({@link Frame.completed}).
   */
  takeInto(target: Buffer, at: number): Completion[] {
    const n = this.peek();
    return n === 0 ? EMPTY : this.#cut(n, target, at);
  }

  /**
   * Takes the next `n` bytes (a frame, see {@link peek}) off the head, copied into `target` at
   * `at` unless `target` is null, and counts them to their plays.
   */
  #cut(n: number, target: Buffer | null, at: number): Completion[] {
    const from = this.#headOffset;
    if (this.#headSeg !== null && this.#headBytes.length - from > n) {
      // Inside the head segment (the steady state of a play): nothing behind it can complete
      // and the head stays, so only the head cursor moves (see #headSeg).
      if (target !== null) this.#headBytes.copy(target, at, from, from + n);
      this.#headOffset = from + n;
      this.#headCut += n;
      this.#headCutFrames++;
      this.#fifoMs -= durationMs(this.#headFormat, n);
      if (this.#fifoMs < 1e-9) this.#fifoMs = 0;
      if (this.#roomWaiter !== null) this.#wakePump();
      return EMPTY;
    }
    this.#syncCut();
    const format = this.headFormat;
    const fifo = this.#fifo;
    let touched: PlayItem | null = null;
    let touched2: PlayItem[] | null = null;
    for (let done = 0; done < n;) {
      const seg = fifo[this.#head]!;
      const k = Math.min(n - done, seg.bytes!.length - seg.offset);
      if (target !== null) seg.bytes!.copy(target, at + done, seg.offset, seg.offset + k);
      done += k;
      const owner = seg.owner as PlayItem | null;
      this.#consume(seg, k);
      if (owner !== null && owner !== touched && !touched2?.includes(owner)) {
        if (touched === null) touched = owner;
        else (touched2 ??= []).push(owner);
      }
    }
    this.#fifoMs -= durationMs(format, n);
    if (this.#fifoMs < 1e-9) this.#fifoMs = 0;
    let completed: Completion[] | undefined;
    if (touched !== null) completed = this.#countFrame(touched, completed);
    if (touched2 !== null) for (const p of touched2) completed = this.#countFrame(p, completed);
    // Marks right behind this frame are reached when it has played.
    while (this.#head < fifo.length && fifo[this.#head]!.bytes === null) {
      (completed ??= []).push(fifo[this.#head++]!.owner!);
    }
    this.#compact();
    this.#wakePump();
    return completed ?? EMPTY;
  }

  /** A frame of `p` was cut: count it; a play whose last byte it held completes once it has played. */
  #countFrame(p: PlayItem, completed: Completion[] | undefined): Completion[] | undefined {
    p.framesSent++;
    if (p.exhausted && p.queuedBytes === 0 && !p.finished) {
      p.finished = true;
      (completed ??= []).push(p);
    }
    return completed;
  }

  /** Appends a segment; it becomes the head if nothing was queued before it. */
  #push(seg: Segment): void {
    this.#fifo.push(seg);
    if (this.#head === this.#fifo.length - 1) this.#syncHead();
  }

  /** Sets the head cursor after the head moved or the FIFO was replaced (what was cut is written back: {@link #syncCut}). */
  #syncHead(): void {
    this.#syncCut();
    const seg = this.#head < this.#fifo.length ? this.#fifo[this.#head]! : null;
    if (seg !== null && seg.bytes !== null) {
      this.#headSeg = seg;
      this.#headBytes = seg.bytes;
      this.#headOffset = seg.offset;
      this.#headFormat = seg.format;
      this.#headFrameBytes = frameBytes(seg.format, this.#frameMs);
    } else {
      this.#headSeg = null;
      this.#headBytes = NO_BYTES;
      this.#headOffset = 0;
    }
    this.#refreshEmpty();
  }

  /** Writes what the head cursor cut back to the head segment and its play (see #headSeg). */
  #syncCut(): void {
    if (this.#headCut === 0) return;
    const seg = this.#headSeg!;
    seg.offset = this.#headOffset;
    const owner = seg.owner as PlayItem | null;
    if (owner !== null) {
      owner.queuedBytes -= this.#headCut;
      owner.sentBytes += this.#headCut;
      owner.framesSent += this.#headCutFrames;
    }
    this.#headCut = 0;
    this.#headCutFrames = 0;
  }

  #consume(seg: Segment, n: number): void {
    seg.offset += n;
    const owner = seg.owner as PlayItem | null;
    if (owner !== null) {
      owner.queuedBytes -= n;
      owner.sentBytes += n;
    }
    if (seg.offset === seg.bytes!.length) {
      seg.bytes = null;
      seg.owner = null;
      this.#head++;
    }
  }

  /** After the head moved: drops what is behind it, and sets the head cache. */
  #compact(): void {
    if (this.#head === this.#fifo.length) {
      this.#fifo.length = 0;
      this.#head = 0;
    } else if (this.#head > 64) {
      this.#fifo = this.#fifo.slice(this.#head);
      this.#head = 0;
    }
    this.#syncHead();
  }

  /**
   * Drops everything queued: plays settle `interrupted` with `reason`, marks resolve `false`.
   * Plays whose audio had all been sent are not interrupted: they are returned, to complete
   * once that audio has played. Returns the milliseconds of audio dropped.
   */
  flush(reason: InterruptReason): { droppedMs: number; completions: Completion[] } {
    const droppedMs = this.queuedMs;
    const items = new Set<PlayItem | MarkItem>();
    const completions: Completion[] = [];
    for (let i = this.#head; i < this.#fifo.length; i++) {
      const seg = this.#fifo[i]!;
      if (seg.owner === null) continue;
      if (seg.bytes === null && seg.owner.type === 'play') completions.push(seg.owner);
      else items.add(seg.owner);
    }
    for (const e of this.#pending) if (e.type !== 'write') items.add(e);
    this.#fifo = [];
    this.#head = 0;
    this.#fifoMs = 0;
    this.#pending = [];
    this.#pendingMs = 0;
    this.#syncHead(); // writes back what the head cursor cut, before the plays below settle
    for (const item of items) {
      if (item.type === 'mark') this.#fireMark(item, false);
      else this.#finish(item, reason);
    }
    this.#wakePump();
    return { droppedMs, completions };
  }

  /** Stops for good: flushes with `hangup`; later calls are refused by the owner. */
  close(): { droppedMs: number; completions: Completion[] } {
    const result = this.flush('hangup');
    this.#closed = true;
    return result;
  }

  #fireMark(mark: MarkItem, reached: boolean): void {
    mark.resolve(reached);
    if (!mark.quiet) this.#onMark(mark.name, reached);
  }

  #finish(item: PlayItem, reason: InterruptReason | undefined): void {
    this.#syncCut();
    item.stop();
    item.cleanup?.();
    item.cleanup = undefined;
    item.convert?.dispose?.();
    item.convert = undefined;
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
    item.finished = true;
    const sentMs = durationMs(item.format, item.sentBytes);
    item.settle(
      reason === undefined
        ? { status: 'done', framesSent: item.framesSent, sentMs }
        : { status: 'interrupted', reason, framesSent: item.framesSent, sentMs },
    );
  }

  /** Interrupts one play (abort signal): drops its queued bytes wherever they are. */
  #interrupt(item: PlayItem, reason: InterruptReason): void {
    if (item.finished) return;
    const p = this.#pending.indexOf(item);
    if (p >= 0) this.#pending.splice(p, 1);
    this.#dropBytes(item);
    this.#finish(item, reason);
    this.#wakePump();
    this.#onReady();
  }

  #dropBytes(item: PlayItem): void {
    this.#syncCut();
    const kept: Segment[] = [];
    for (let i = this.#head; i < this.#fifo.length; i++) {
      const seg = this.#fifo[i]!;
      if (seg.owner === item) {
        if (seg.bytes !== null) this.#fifoMs -= durationMs(seg.format, seg.bytes.length - seg.offset);
      } else kept.push(seg);
    }
    if (this.#fifoMs < 1e-9) this.#fifoMs = 0;
    this.#fifo = kept;
    this.#head = 0;
    this.#syncHead();
    item.queuedBytes = 0;
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
    if (sampleBytes(item.format) === 2 && bytes.length % 2 === 1) {
      item.heldByte = bytes[bytes.length - 1]!;
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    if (bytes.length === 0) return;
    this.#push({ bytes, offset: 0, format: item.format, owner: item });
    this.#fifoMs += durationMs(item.format, bytes.length);
    item.queuedBytes += bytes.length;
  }

  #fifoFull(): boolean {
    return this.#fifoMs >= this.#prefetchMs;
  }

  #wakePump(): void {
    const w = this.#roomWaiter;
    if (w !== null && !this.#fifoFull()) {
      this.#roomWaiter = null;
      w();
    }
  }

  /** Moves pending entries into the FIFO in order, reading streamed sources ahead by `prefetchMs`. */
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
      const entry = this.#pending[0]!;
      if (entry.type !== 'play') {
        this.#pending.shift();
        if (entry.type === 'mark') {
          this.#push({ bytes: null, offset: 0, format: MARKER_FORMAT, owner: entry });
        } else {
          this.#pendingMs -= durationMs(entry.format, entry.bytes.length);
          if (this.#pendingMs < 1e-9) this.#pendingMs = 0;
          this.#push({ bytes: entry.bytes, offset: 0, format: entry.format, owner: null });
          this.#fifoMs += durationMs(entry.format, entry.bytes.length);
        }
        this.#onReady();
        continue;
      }
      try {
        await this.#pumpPlay(entry);
      } catch (error) {
        // A failing source rejects its own play; the queue goes on with the next one.
        if (!entry.finished) {
          entry.finished = true;
          entry.stop();
          entry.exhausted = true;
          entry.cleanup?.();
          entry.convert?.dispose?.();
          this.#dropBytes(entry);
          entry.reject(error);
        }
      }
      if (this.#pending[0] === entry) this.#pending.shift();
      this.#refreshEmpty();
      this.#onReady();
    }
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
        while (this.#fifoFull() && !item.finished) {
          this.#onReady();
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
        this.#onReady();
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
    this.#syncCut();
    if (item.queuedBytes === 0) {
      // Everything was sent before the source said it had ended: done once that has played.
      item.finished = true;
      this.#push({ bytes: null, offset: 0, format: item.format, owner: item });
    }
  }
}
