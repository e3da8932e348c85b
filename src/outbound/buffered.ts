/**
 * chan_websocket's outbound policy. Asterisk buffers what we send and plays one frame per
 * `ptime` from its own queue (`channels/chan_websocket.c`: XOFF at 900 queued frames, XON
 * below 800), so this policy does not pace frame by frame: it keeps Asterisk's buffer fed,
 * at most `leadMs` ahead of playout, as fast as XOFF/XON and the socket allow.
 *
 * The model: a playout estimate. At `anchorAt` Asterisk had played `anchorFrames` of the frames
 * we sent, and it plays one more every `ptime` while it has any. Every answer from Asterisk
 * re-anchors the estimate: MEDIA_MARK_PROCESSED (a progress mark every `markEveryFrames`, and
 * one after each play and mark), QUEUE_DRAINED, the STATUS answer of a flush. What the
 * estimate decides:
 * - how far ahead we may send (`leadMs`);
 * - when a `sent` event fires (when the frame plays, not when Asterisk received it);
 * - in `clock` completion (Asterisk without MARK_MEDIA), when plays and marks complete.
 * With MARK_MEDIA (20.18/22.8/23.2 and later), plays and marks complete on Asterisk's answers.
 *
 * `flush()` sends GET_STATUS, then FLUSH_MEDIA: the STATUS answer (its queue length, just
 * before the flush) says exactly how much audio Asterisk dropped, and so how much of an
 * interrupted play the caller heard. See docs/websocket.md.
 */
import { createConverter, type Converter } from '../audio/convert.js';
import { parseFormat, type AudioFormat } from '../audio/format.js';
import type { Clock, TimerHandle } from '../clock.js';
import { audioSocketError, ErrorCodes } from '../errors.js';
import type { MediaStatus } from '../protocol/websocket.js';
import { frameBytes } from './frames.js';
import type { OutboundCounters, OutboundEvents, OutboundPolicy } from './policy.js';
import type { SendMeter } from './send-meter.js';
import { OutboundQueue, type AudioSource, type ByteConverter, type Completion, type PlayResult } from './queue.js';
import { WriteGate } from './write-gate.js';

/** What the policy needs of a chan_websocket connection (a `MediaConnection` is one). */
export interface MediaSink {
  /** Whole frames of the channel's format; a partial frame is carried until it is complete. */
  sendAudio(audio: Uint8Array): boolean;
  /** Sends the carried partial frame (padded with silence when `pad`) or discards it. */
  flushPending(options: { pad?: boolean }): boolean;
  readonly pendingBytes: number;
  readonly stats: { framesOut: number };
  readonly xoff: boolean;
  readonly writable: boolean;
  markMedia(correlationId: string): void;
  reportQueueDrained(): void;
  getStatus(): Promise<MediaStatus>;
  flushMedia(): void;
}

/** Options of the chan_websocket outbound policy (server option `websocket`). */
export interface BufferedOutboundOptions {
  /** Most audio (ms) kept in Asterisk's buffer ahead of playout. Default 1000 (bounded to 100..15000). */
  leadMs?: number;
  /** A progress mark (MARK_MEDIA) every this many frames sent. Default 10 (200 ms at 20 ms). */
  markEveryFrames?: number;
  /** How long flush() waits for the STATUS answer before keeping its estimate. Default 1000. */
  statusTimeoutMs?: number;
  /**
   * How plays and marks complete:
   * - `auto` (default): by MARK_MEDIA answers. If a mark is not answered `markTimeoutMs` after
   *   the estimate says it has played, the peer has no MARK_MEDIA (Asterisk before
   *   20.18/22.8/23.2): the call switches to `clock` and says so with a `MARKS_UNSUPPORTED` warning.
   * - `clock`: never send MARK_MEDIA; complete by the playout estimate, and settle everything
   *   when Asterisk reports QUEUE_DRAINED.
   */
  completion?: 'auto' | 'clock';
  /** See `completion`. Default 2000. */
  markTimeoutMs?: number;
}

/** See `completion` in the stats of a chan_websocket call. */
export type CompletionMode = 'probing' | 'marks' | 'clock';

/** Counters of buffered output (chan_websocket), beside those every call has. */
export interface BufferedStats extends OutboundCounters {
  /** MARK_MEDIA commands sent. */
  marksSent: number;
  /**
   * How plays and marks complete now: `probing` (MARK_MEDIA sent, Asterisk has not answered one
   * yet), `marks` (by Asterisk's MARK_MEDIA answers) or `clock` (by the playout estimate).
   */
  completion: CompletionMode;
}

interface MarkEntry {
  /** Frames sent when the mark was sent. */
  frames: number;
  /** When the playout estimate says the frames before the mark have played. */
  dueAt: number;
  completions: Completion[];
}

interface SentEntry {
  payload: Buffer;
  /** Index of the frame among those sent. */
  frame: number;
}

/** What a {@link BufferedOutbound} is built with (declared: its constructor, in the published types, names it). */
export interface BufferedSettings extends BufferedOutboundOptions {
  /** The channel's format (MEDIA_START). */
  wire: AudioFormat;
  ptime: number;
  prefetchMs: number;
  highWaterMarkMs: number;
  maxQueuedMs: number;
}

export class BufferedOutbound implements OutboundPolicy<BufferedStats> {
  reportSent = false;
  /**
   * No frame counts as late here: Asterisk plays them from its own buffer at its own pace, and a
   * frame sent enters that buffer ahead of its time (an empty buffer restarts playout).
   */
  meter: SendMeter | null = null;
  samplePeak = false;
  /** slin at the channel's rate. */
  readonly format: AudioFormat;
  readonly frameMs: number;
  readonly frameBytes: number;
  readonly #wire: AudioFormat;
  readonly #sink: MediaSink;
  readonly #clock: Clock;
  readonly #events: OutboundEvents;
  readonly #queue: OutboundQueue;
  readonly #gate: WriteGate;
  readonly #encoder: Converter | undefined;
  readonly #leadFrames: number;
  readonly #markEvery: number;
  readonly #statusTimeoutMs: number;
  readonly #markTimeoutMs: number;
  #completion: CompletionMode;
  #framesOut = 0;
  #sinceMark = 0;
  #markSeq = 0;
  #marks = new Map<string, MarkEntry>();
  #anchorFrames = 0;
  #anchorAt: number;
  #clockTimer: TimerHandle | undefined;
  #wakeTimer: TimerHandle | undefined;
  #sentTimer: TimerHandle | undefined;
  #sent: SentEntry[] = [];
  #pumping = false;
  #closed = false;
  #drainWaiters: Array<() => void> = [];
  /** Frames heard when the last flush happened: exact once the STATUS answer came. */
  #lastFlush: Promise<number> | undefined;
  #stats = { framesSent: 0, delayedWrites: 0, flushedMs: 0, unsentMs: 0, marksSent: 0 };

  constructor(settings: BufferedSettings, sink: MediaSink, clock: Clock, events: OutboundEvents) {
    this.#wire = settings.wire;
    this.#sink = sink;
    this.#clock = clock;
    this.#events = events;
    this.format = parseFormat({ encoding: 'slin', sampleRate: settings.wire.sampleRate, channels: 1 });
    this.frameMs = settings.ptime;
    this.frameBytes = frameBytes(this.format, settings.ptime);
    const leadMs = Math.min(15000, Math.max(100, settings.leadMs ?? 1000));
    this.#leadFrames = Math.max(2, Math.round(leadMs / settings.ptime));
    this.#markEvery = Math.max(1, Math.round(settings.markEveryFrames ?? 10));
    this.#statusTimeoutMs = settings.statusTimeoutMs ?? 1000;
    this.#markTimeoutMs = Math.max(0, settings.markTimeoutMs ?? 2000);
    this.#completion = settings.completion === 'clock' ? 'clock' : 'probing';
    this.#anchorAt = clock.now();
    if (settings.wire.encoding !== 'slin') this.#encoder = createConverter(this.format, settings.wire);
    this.#queue = new OutboundQueue({
      frameMs: settings.ptime,
      prefetchMs: settings.prefetchMs,
      onReady: () => this.#pump(),
      onMark: (name, reached) => this.#events.mark(name, reached),
    });
    this.#gate = new WriteGate(settings, events, this.#queue);
  }

  get queuedMs(): number {
    return this.#queue.queuedMs;
  }

  get stats(): BufferedStats {
    return {
      ...this.#stats,
      droppedWrites: this.#gate.droppedWrites,
      droppedMs: this.#gate.droppedMs,
      queuedMs: this.#queue.queuedMs,
      completion: this.#completion,
    };
  }

  /** slin at the channel's rate, and the channel's own format (an echo of G.711 goes back byte for byte). */
  accepts(format: AudioFormat): boolean {
    return format === this.format || format === this.#wire;
  }

  write(bytes: Buffer, format: AudioFormat): boolean {
    if (this.#closed) throw audioSocketError(ErrorCodes.CALL_ENDED, 'cannot write: the call has ended');
    if (format.encoding === 'slin' && (bytes.length & 1) === 1) {
      throw audioSocketError(ErrorCodes.INVALID_MESSAGE, `slin audio must be whole samples, got ${bytes.length} bytes`);
    }
    const admitted = this.#gate.admit(bytes, format);
    if (admitted.length > 0) {
      this.#queue.write(admitted, format);
      this.#pump();
      if (!this.#queue.empty) this.#stats.delayedWrites++;
    }
    return this.#gate.result(admitted !== bytes);
  }

  play(source: AudioSource, convert: ByteConverter | undefined, signal?: AbortSignal): Promise<PlayResult> {
    if (this.#closed) {
      convert?.dispose?.();
      return Promise.reject(audioSocketError(ErrorCodes.CALL_ENDED, 'cannot play: the call has ended'));
    }
    // Where this play starts among the frames sent: what the caller heard of it, on a flush.
    const startMs = this.#framesOut * this.frameMs + this.#queue.queuedMs;
    return this.#queue.play(source, convert, this.format, signal).then(async (r) => {
      if (r.status !== 'interrupted' || r.reason !== 'flush' || this.#lastFlush === undefined) return r;
      const heardMs = await this.#lastFlush;
      return { ...r, sentMs: Math.max(0, Math.min(r.sentMs, heardMs - startMs)) };
    });
  }

  mark(name: string, quiet = false): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    const p = this.#queue.mark(name, quiet);
    this.#pump();
    return p;
  }

  /**
   * Drops our queue and Asterisk's (FLUSH_MEDIA). Marks and plays waiting in Asterisk's queue
   * settle at once (Asterisk forgets them silently). Returns the ms dropped: ours, plus
   * Asterisk's by the playout estimate; `flushedMs` is corrected by the STATUS answer.
   */
  flush(): number {
    if (this.#closed) return 0;
    const sink = this.#sink;
    sink.flushPending({ pad: false });
    const now = this.#clock.now();
    const heard = this.#heardFrames(now);
    const framesOut = this.#framesOut;
    const estimatedMs = (framesOut - heard) * this.frameMs;
    const status: Promise<MediaStatus | undefined> = sink.getStatus().catch(() => undefined);
    sink.flushMedia();
    const heardMs = new Promise<number>((resolve) => {
      const timer = this.#clock.setTimer(() => resolve(heard * this.frameMs), this.#statusTimeoutMs);
      void status.then((s) => {
        this.#clock.clearTimer(timer);
        if (s === undefined) return resolve(heard * this.frameMs);
        // STATUS answered GET_STATUS, sent just before FLUSH_MEDIA: its queue is what was dropped.
        const exactMs = Math.min(s.queueLength, framesOut) * this.frameMs;
        this.#stats.flushedMs += exactMs - estimatedMs;
        resolve((framesOut - Math.min(s.queueLength, framesOut)) * this.frameMs);
      });
    });
    this.#lastFlush = heardMs;
    // Asterisk's queue is empty now.
    this.#anchorFrames = this.#framesOut;
    this.#anchorAt = now;
    this.#sent = [];
    const inAsterisk = [...this.#marks.values()];
    this.#marks.clear();
    this.#cancelTimer('clock');
    const { droppedMs, completions } = this.#queue.flush('flush');
    for (const e of inAsterisk) for (const c of e.completions) c.cancel('flush');
    for (const c of completions) c.cancel('flush');
    this.#stats.flushedMs += droppedMs + estimatedMs;
    this.#gate.check();
    this.#checkIdle();
    return droppedMs + estimatedMs;
  }

  drained(): Promise<void> {
    if (this.#closed || this.#idle()) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
    this.#pump();
    return p;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#gate.close();
    this.#cancelTimer('wake');
    this.#cancelTimer('clock');
    this.#cancelTimer('sent');
    this.#sent = [];
    const { droppedMs, completions } = this.#queue.close();
    this.#stats.unsentMs += droppedMs;
    for (const c of completions) c.cancel('hangup');
    for (const e of this.#marks.values()) for (const c of e.completions) c.cancel('hangup');
    this.#marks.clear();
    this.#encoder?.dispose();
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  /** XON from Asterisk, or the socket drained: send on. */
  resume(): void {
    this.#pump();
  }

  /** MEDIA_MARK_PROCESSED: everything sent before mark `id` has played. */
  markProcessed(id: string): void {
    const entry = this.#marks.get(id);
    if (entry === undefined || this.#closed) return; // a mark of a flush, or not ours
    if (this.#completion === 'probing') {
      this.#completion = 'marks';
      this.#cancelTimer('clock');
    }
    // Marks come back in order: any older one still here is reached too.
    const reached: MarkEntry[] = [];
    for (const [k, e] of this.#marks) {
      reached.push(e);
      this.#marks.delete(k);
      if (k === id) break;
    }
    this.#anchorFrames = entry.frames;
    this.#anchorAt = this.#clock.now();
    for (const e of reached) for (const c of e.completions) c.done();
    this.#pump();
    this.#checkIdle();
  }

  /** QUEUE_DRAINED: Asterisk's queue ran empty. */
  queueDrained(): void {
    if (this.#completion === 'clock' && !this.#closed) this.#settleByClock(true);
  }

  /** Frames Asterisk has played by `now`, by the last anchor and one frame per ptime. */
  #heardFrames(now: number): number {
    const est = this.#anchorFrames + Math.floor((now - this.#anchorAt) / this.frameMs);
    return Math.min(this.#framesOut, est);
  }

  #sendMark(completions: Completion[]): void {
    // Audio carried in the sink (less than a frame) is not padded out for a mark: the mark
    // covers the whole frames sent, and the carry plays within the next frame.
    const sink = this.#sink;
    const id = `as${++this.#markSeq}`;
    const now = this.#clock.now();
    const dueAt = Math.max(now, this.#anchorAt + (this.#framesOut - this.#anchorFrames) * this.frameMs);
    this.#marks.set(id, { frames: this.#framesOut, dueAt, completions });
    this.#sinceMark = 0;
    if (this.#completion === 'clock') {
      // QUEUE_DRAINED (every Asterisk version) settles everything sent once the queue is empty.
      if (completions.length > 0) sink.reportQueueDrained();
    } else {
      this.#stats.marksSent++;
      sink.markMedia(id);
    }
    if (this.#completion !== 'marks') this.#armClock();
  }

  /** In `probe`: wakes when the oldest mark is overdue; in `clock`: when it is due. */
  #armClock(): void {
    if (this.#clockTimer !== undefined) return;
    const first = this.#marks.values().next().value;
    if (first === undefined) return;
    const at = first.dueAt + (this.#completion === 'probing' ? this.#markTimeoutMs : 0);
    this.#clockTimer = this.#clock.setTimer(
      () => {
        this.#clockTimer = undefined;
        if (this.#closed) return;
        if (this.#completion === 'probing' && this.#marks.size > 0) {
          this.#completion = 'clock';
          this.#events.warning(
            'MARKS_UNSUPPORTED',
            `MARK_MEDIA was not answered within ${this.#markTimeoutMs} ms of its playout (Asterisk before 20.18/22.8/23.2?); plays and marks now complete by the playout estimate`,
          );
          if (this.#closed) return;
        }
        if (this.#completion === 'clock') this.#settleByClock(false);
      },
      Math.max(1, at - this.#clock.now()),
    );
  }

  /** Settles the marks the estimate says have played (all of them after QUEUE_DRAINED). */
  #settleByClock(drained: boolean): void {
    const now = this.#clock.now();
    const reached: MarkEntry[] = [];
    for (const [k, e] of this.#marks) {
      if (!drained && e.dueAt > now) break;
      reached.push(e);
      this.#marks.delete(k);
    }
    if (drained) {
      this.#anchorFrames = this.#framesOut;
      this.#anchorAt = now;
    } else if (reached.length > 0) {
      const last = reached[reached.length - 1]!;
      this.#anchorFrames = last.frames;
      this.#anchorAt = last.dueAt;
    }
    for (const e of reached) for (const c of e.completions) c.done();
    this.#armClock();
    this.#pump();
    this.#checkIdle();
  }

  /** Feeds Asterisk's buffer while XOFF, the socket and the lead allow. */
  #pump(): void {
    if (this.#pumping || this.#closed) return;
    this.#pumping = true;
    const sink = this.#sink;
    const queue = this.#queue;
    try {
      for (;;) {
        const marks = queue.takeLeadingMarks();
        if (marks.length > 0) this.#sendMark([...marks]);
        const bytes = queue.peek();
        if (bytes === 0) break;
        if (bytes < frameBytes(queue.headFormat, this.frameMs)) {
          if (queue.moreMayCome) break; // a streamed play: wait for the rest
          // A write's tail shorter than a frame waits for the next write while Asterisk has
          // audio to play before it; it is padded only when Asterisk would otherwise run dry.
          if (this.#tailCanWait()) break;
        }
        if (sink.xoff || !sink.writable) break; // resume() wakes us
        const now = this.#clock.now();
        const heard = this.#heardFrames(now);
        if (heard >= this.#framesOut) {
          // Asterisk's queue is (about) empty: playout restarts with this frame.
          this.#anchorFrames = this.#framesOut;
          this.#anchorAt = now;
        } else if (this.#framesOut - heard >= this.#leadFrames) {
          this.#wakeIn((this.#framesOut - heard - this.#leadFrames + 1) * this.frameMs);
          break;
        }
        const frame = queue.take()!;
        const wire = frame.format === this.#wire ? frame.bytes : Buffer.from(this.#encoder!.push(frame.bytes));
        const index = this.#framesOut;
        sink.sendAudio(wire);
        this.#framesOut = sink.stats.framesOut;
        this.#stats.framesSent++;
        if (this.samplePeak) {
          this.samplePeak = false;
          this.meter?.sample(wire, this.#wire);
        }
        if (this.reportSent) this.#noteSent(wire, index);
        if (frame.completed.length > 0) this.#sendMark([...frame.completed]);
        else if (++this.#sinceMark >= this.#markEvery) this.#sendMark([]);
      }
      if (queue.empty && sink.pendingBytes > 0 && !queue.moreMayCome && !this.#tailCanWait()) {
        sink.flushPending({ pad: true });
        this.#framesOut = sink.stats.framesOut;
      }
      if (this.#drainWaiters.length > 0 && queue.empty && this.#marks.size === 0 && this.#framesOut > this.#anchorFrames) {
        this.#sendMark([]); // so drained() learns when the last frames have played
      }
    } finally {
      this.#pumping = false;
    }
    this.#gate.check();
    this.#checkIdle();
  }

  /**
   * Whether audio shorter than a frame (a write's tail, or the resampler's carry in the sink)
   * may wait for more: yes while Asterisk has more than one frame left to play, and then the
   * pump is woken when it has one left. Padding it at once would put silence between two
   * writes whose sizes are not whole frames (a bot's messages), heard as a click each time.
   */
  #tailCanWait(): boolean {
    const ahead = this.#framesOut - this.#heardFrames(this.#clock.now());
    if (ahead <= 1) return false;
    this.#wakeIn((ahead - 1) * this.frameMs);
    return true;
  }

  /** Remembers a sent frame until the estimate says it plays: then `sent` fires. */
  #noteSent(payload: Buffer, frame: number): void {
    this.#sent.push({ payload, frame });
    if (this.#sentTimer === undefined) this.#armSent();
  }

  #armSent(): void {
    const head = this.#sent[0];
    if (head === undefined || this.#closed) return;
    const at = this.#anchorAt + (head.frame - this.#anchorFrames) * this.frameMs;
    this.#sentTimer = this.#clock.setTimer(() => this.#emitSent(), Math.max(0, at - this.#clock.now()));
  }

  #emitSent(): void {
    this.#sentTimer = undefined;
    const now = this.#clock.now();
    let n = 0;
    for (const e of this.#sent) {
      const at = this.#anchorAt + (e.frame - this.#anchorFrames) * this.frameMs;
      if (at > now + 1e-6) break;
      n++;
      this.#events.sent(e.payload, this.#wire, at, Math.max(0, now - at), false);
      if (this.#closed) return;
    }
    this.#sent.splice(0, n);
    this.#armSent();
  }

  #wakeIn(ms: number): void {
    if (this.#wakeTimer !== undefined) return;
    this.#wakeTimer = this.#clock.setTimer(
      () => {
        this.#wakeTimer = undefined;
        this.#pump();
      },
      Math.max(1, ms),
    );
  }

  #cancelTimer(which: 'wake' | 'clock' | 'sent'): void {
    const t = which === 'wake' ? this.#wakeTimer : which === 'clock' ? this.#clockTimer : this.#sentTimer;
    if (t !== undefined) this.#clock.clearTimer(t);
    if (which === 'wake') this.#wakeTimer = undefined;
    else if (which === 'clock') this.#clockTimer = undefined;
    else this.#sentTimer = undefined;
  }

  #idle(): boolean {
    return (
      this.#queue.empty &&
      this.#marks.size === 0 &&
      this.#sink.pendingBytes === 0 &&
      this.#heardFrames(this.#clock.now()) >= this.#framesOut
    );
  }

  #checkIdle(): void {
    if (this.#drainWaiters.length === 0) return;
    if (!(this.#queue.empty && this.#marks.size === 0)) return;
    if (this.#heardFrames(this.#clock.now()) < this.#framesOut && this.#framesOut > this.#anchorFrames) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }
}
