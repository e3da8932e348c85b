/**
 * AudioSocket's outbound policy: the {@link OutboundQueue} (what waits to be sent) drained
 * through the {@link Pacer} (when it may leave) on the server's shared {@link FrameScheduler}.
 * Asterisk's AudioSocket plays each message the moment it arrives (no jitter buffer), so
 * everything this call sends is paced here.
 *
 * Audio leaves from two places, under the same pacer: at once when it is written, if nothing
 * waits before it and the pacer admits it (so an echo adds no delay), and from the queue just
 * in time: at the last wake-up before its place on the timeline (docs/pacing.md).
 * Keep-alive is a policy of the pacer: a tick that finds the call idle and its slot empty sends
 * one frame of silence, of the kind of the call's audio. Plays and marks complete when their
 * audio has played (the wall clock has passed its end on the timeline), not when it was sent.
 *
 * I/O-free: messages leave through `wire`, time comes from the scheduler's clock.
 */
import { audioSocketError, ErrorCodes } from '../errors.js';
import { messageFor, silenceMessage, writeHeader } from '../protocol/encoder.js';
import { audioKindForRate, HEADER_SIZE, sampleRateOfKind, type AudioKind } from '../protocol/kinds.js';
import { parseFormat, type AudioFormat } from '../audio/format.js';
import { EVERY_PASS, type FrameScheduler, type Paced } from './scheduler.js';
import { durationMs, frameBytes } from './frames.js';
import { Pacer, type PacingParameters } from './pacer.js';
import { OutboundQueue, type AudioSource, type ByteConverter, type Completion, type PlayResult } from './queue.js';
import type { OutboundCounters, OutboundEvents, OutboundPolicy } from './policy.js';
import type { SendMeter } from './send-meter.js';
import { WriteGate } from './write-gate.js';

/** Counters of paced output (AudioSocket), beside those every call has. */
export interface PacedStats extends OutboundCounters {
  /** Keep-alive silence frames sent (counted in `framesSent` too). */
  silenceFrames: number;
  /** Messages that left more than half a frame after their place on the timeline. */
  lateSlots: number;
  /** Messages sent while more than a frame late: making up lateness, faster than real time. */
  caughtUpFrames: number;
  /** Frames' worth of lateness beyond `maxLatenessMs`, forgiven instead of made up (audio later, not lost). */
  droppedSlots: number;
  /** Slots that came due while a streamed play had less than a frame ready. */
  underruns: number;
}

/** Options of {@link Outbound}. */
export interface OutboundOptions {
  /** Kind of plays, and of writes without a kind. */
  kind: AudioKind;
  /**
   * Kind of keep-alive silence before any audio is sent. `undefined`: the kind of the first audio
   * received ({@link Outbound.noteInbound}), or `kind` if none came within the grace period.
   */
  keepAliveKind: AudioKind | undefined;
  /** Send silence in every empty slot while the call is idle. */
  keepAlive: boolean;
  /** How far ahead (ms) streamed sources are read and converted. */
  prefetchMs: number;
  /** The pacing model (frame duration included). */
  pacing: PacingParameters;
  /** Queued audio (ms) from which {@link Outbound.write} returns `false`: slow down, wait for `drain`. */
  highWaterMarkMs: number;
  /** Most audio (ms) queued; written audio beyond it is dropped, counted and reported. */
  maxQueuedMs: number;
}

/**
 * Where messages go: the transport's connection itself (an object with a method, not a closure:
 * one object fewer to reach per frame).
 */
export interface WireWriter {
  /**
   * Memory for the next message, `size` bytes, to be filled and passed to {@link write} at once.
   * It may be the memory of an earlier message that the wire no longer holds, of this call or of
   * another (it reuses it): nothing may read it after the next message of any call is built.
   */
  messageMemory(size: number): Buffer;
  /** Writes one whole message; returns whether it was written (a peer that does not read gets its output dropped). */
  write(message: Buffer): boolean;
}

interface Due {
  at: number;
  completion: Completion;
}

const EPS = 1e-6;

/**
 * `sent` events running, in any call. Their payload is a view of the wire's message memory,
 * which the wire shares between calls, and a listener may make any call send: a message built
 * meanwhile gets memory of its own, so the payload stays what was sent for the whole event.
 */
let sentEventsRunning = 0;

const FORMAT_OF_KIND: Array<AudioFormat | undefined> = [];

/** The slin format of an AudioSocket audio kind (shared objects: compared by identity). */
export function formatOfKind(kind: AudioKind): AudioFormat {
  // Asked per frame received and per keep-alive frame: made once per kind, not per call.
  return (FORMAT_OF_KIND[kind - 0x10] ??= parseFormat({ encoding: 'slin', sampleRate: sampleRateOfKind(kind)!, channels: 1 }));
}

/** The AudioSocket kind that carries `format` as it is, if any (slin mono at one of the kinds' rates). */
export function kindOfFormat(format: AudioFormat): AudioKind | undefined {
  return format.encoding === 'slin' && format.channels === 1 ? audioKindForRate(format.sampleRate) : undefined;
}

export class PacedOutbound implements Paced, OutboundPolicy<PacedStats> {
  // Fields read per frame come first, together: a frame reads the few cache lines they fill,
  // not every line of the object (docs/architecture.md, "One outbound frame").
  #closed = false;
  readonly #queue: OutboundQueue;
  readonly #pacer: Pacer;
  readonly #wire: WireWriter;
  readonly #scheduler: FrameScheduler;
  readonly frameMs: number;
  readonly format: AudioFormat;
  #draining = false;
  /** The gate owes a `drain` (a write returned `false`): only then is it asked after a pass. */
  #drainOwed = false;
  /** Completions in `#due` not yet settled: checked per frame without touching the array. */
  #unsettled = 0;
  /** Callers of {@link drained} still waiting (null: none, checked per frame). */
  #drainWaiters: Array<() => void> | null = null;
  /** Counted per frame: fields of this object, not of a stats object (one cache line fewer per frame). */
  #framesSent = 0;
  reportSent = false;
  meter: SendMeter | null = null;
  samplePeak = false;
  #lastKind: AudioKind | undefined;
  #inboundKind: AudioKind | undefined;
  /** When the last received audio message ends: until then its successor is not late. */
  #inputUntil = -Infinity;
  /** Where the last audio of the user (not silence) ends on the timeline. */
  #userEnd = -Infinity;
  // Read per frame only when late, or once per call, or on events.
  #stats = {
    silenceFrames: 0,
    lateSlots: 0,
    caughtUpFrames: 0,
    delayedWrites: 0,
    underruns: 0,
    flushedMs: 0,
    unsentMs: 0,
  };
  readonly #kind: AudioKind;
  readonly #opts: OutboundOptions;
  readonly #events: OutboundEvents;
  readonly #gate: WriteGate;
  readonly frameBytes: number;
  /** Completions of audio already sent, in timeline order: settled once the clock passes `at`. */
  #due: Due[] = [];
  #dueHead = 0;
  #startedAt = Infinity;
  /** The scheduler's slot of this call while registered, else -1. */
  #slot = -1;

  constructor(options: OutboundOptions, scheduler: FrameScheduler, events: OutboundEvents, wire: WireWriter) {
    const frameMs = options.pacing.frameMs;
    if (!Number.isInteger(frameMs) || frameMs < 10 || frameMs > 60 || frameMs % 10 !== 0) {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `frameMs must be 10, 20, 30, 40, 50 or 60, got ${frameMs}`);
    }
    this.frameMs = frameMs;
    this.#kind = options.kind;
    this.#opts = options;
    this.#scheduler = scheduler;
    this.#events = events;
    this.#wire = wire;
    this.format = formatOfKind(options.kind);
    this.frameBytes = frameBytes(this.format, frameMs);
    this.#pacer = new Pacer(options.pacing);
    this.#queue = new OutboundQueue({
      frameMs,
      prefetchMs: options.prefetchMs,
      onReady: () => this.#pump(this.#scheduler.clock.now(), undefined),
      onMark: (name, reached) => this.#events.mark(name, reached),
    });
    this.#gate = new WriteGate(options, events, this.#queue);
  }

  /** The kind of plays and of writes without a kind. */
  get kind(): AudioKind {
    return this.#kind;
  }

  get stats(): PacedStats {
    const s = this.#stats;
    return {
      framesSent: this.#framesSent,
      silenceFrames: s.silenceFrames,
      lateSlots: s.lateSlots,
      caughtUpFrames: s.caughtUpFrames,
      delayedWrites: s.delayedWrites,
      underruns: s.underruns,
      flushedMs: s.flushedMs,
      unsentMs: s.unsentMs,
      droppedWrites: this.#gate.droppedWrites,
      droppedMs: this.#gate.droppedMs,
      droppedSlots: Math.round(this.#pacer.forgottenMs / this.frameMs),
      queuedMs: this.#queue.queuedMs,
    };
  }

  /** slin mono at one of the AudioSocket kinds' rates goes out as that kind, unconverted. */
  accepts(format: AudioFormat): boolean {
    return kindOfFormat(format) !== undefined;
  }

  /** Milliseconds of audio waiting to be sent. */
  get queuedMs(): number {
    return this.#queue.queuedMs;
  }

  /** True when nothing is queued and everything sent has played. */
  get idle(): boolean {
    return this.#queue.empty && this.#unsettled === 0;
  }

  /** Starts pacing (keep-alive begins at the next tick). */
  start(): void {
    if (this.#slot !== -1 || this.#closed) return;
    this.#startedAt = this.#scheduler.clock.now();
    this.#slot = this.#scheduler.add(this);
  }

  /** Something happened between passes that the next pass must serve (see {@link onTick}). */
  #wake(): void {
    if (this.#slot !== -1) this.#scheduler.wake(this.#slot);
  }

  /**
   * Reports received audio: its kind (keep-alive uses the first until the call sends audio of
   * its own) and duration. Asterisk sends in real time, so while input is late the writer's
   * silence is lateness it owes, not quiet time (see the pacer).
   */
  noteInbound(kind: AudioKind, ms: number, now: number): void {
    this.#inboundKind ??= kind;
    this.#inputUntil = now + ms;
    // A talk spurt moved back on the timeline may run dry sooner than the last pass worked out.
    if (this.#pacer.noteInput(ms, now)) this.#wake();
  }

  /**
   * Queues audio behind everything queued and sends what the pacer allows at once. Returns
   * `false` once the queue holds `highWaterMarkMs` or more (the audio is still queued: wait for
   * `drain`), or when some of it was dropped because `maxQueuedMs` was reached.
   */
  write(payload: Buffer, format: AudioFormat): boolean {
    if (this.#closed) throw audioSocketError(ErrorCodes.CALL_ENDED, 'cannot write: the call has ended');
    const kind = kindOfFormat(format);
    if (kind === undefined) throw audioSocketError(ErrorCodes.INVALID_MESSAGE, 'AudioSocket carries slin mono only');
    // A write is any length of whole samples: the queue cuts it into frames, each a valid message.
    if ((payload.length & 1) === 1) {
      throw audioSocketError(ErrorCodes.INVALID_MESSAGE, `slin audio must be whole samples, got ${payload.length} bytes`);
    }
    if (payload.length === 0) return this.#writeResult(false);
    const now = this.#scheduler.clock.now();
    const ms = durationMs(format, payload.length);
    if (this.#queue.empty && payload.length <= frameBytes(format, this.frameMs) && this.#pacer.admits(ms, now)) {
      // The common case of an echo: nothing waits, the message may leave now.
      this.#emit(messageFor(kind, payload), format, ms, now, now, false);
      this.#settleDue(now);
      return true;
    }
    const admitted = this.#gate.admit(payload, format);
    if (admitted.length > 0) {
      this.#queue.write(admitted, format);
      this.#wake();
      this.#pump(now, undefined);
      if (!this.#queue.empty) this.#stats.delayedWrites++;
    }
    return this.#writeResult(admitted !== payload);
  }

  #writeResult(dropped: boolean): boolean {
    const ok = this.#gate.result(dropped);
    if (!ok) this.#drainOwed = true;
    return ok;
  }

  /** Queues a source for paced playback; see {@link PlayResult}. */
  play(source: AudioSource, convert: ByteConverter | undefined, signal?: AbortSignal): Promise<PlayResult> {
    if (this.#closed) {
      convert?.dispose?.();
      return Promise.reject(audioSocketError(ErrorCodes.CALL_ENDED, 'cannot play: the call has ended'));
    }
    this.#wake();
    return this.#queue.play(source, convert, this.format, signal);
  }

  /** Queues a mark: resolves `true` once everything queued before it has played, `false` if flushed. */
  mark(name: string, quiet = false): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    // Reached at the next tick at the earliest, so a `mark` listener added right after sees it.
    this.#wake();
    return this.#queue.mark(name, quiet);
  }

  /** Drops everything queued; plays settle `interrupted` with `reason`, marks resolve `false`. Returns ms dropped. */
  flush(): number {
    if (this.#closed) return 0;
    const { droppedMs, completions } = this.#queue.flush('flush');
    this.#stats.flushedMs += droppedMs;
    for (const c of completions) this.#schedule(c);
    const now = this.#scheduler.clock.now();
    this.#settleDue(now);
    if (this.#drainOwed) this.#drainOwed = this.#gate.check();
    return droppedMs;
  }

  /** Resolves once everything queued so far has been sent and played (or flushed). */
  drained(): Promise<void> {
    if (this.idle || this.#closed) return Promise.resolve();
    this.#wake();
    return new Promise((resolve) => (this.#drainWaiters ??= []).push(resolve));
  }

  /** Stops for good: leaves the scheduler; what was queued is counted in `unsentMs`, plays settle interrupted by hangup. */
  close(): void {
    if (this.#closed) return;
    const { droppedMs, completions } = this.#queue.close();
    this.#closed = true;
    this.#gate.close();
    this.#stats.unsentMs += droppedMs;
    for (const c of completions) c.cancel('hangup');
    const due = this.#due;
    for (let i = this.#dueHead; i < due.length; i++) due[i]!.completion.cancel('hangup');
    this.#due = [];
    this.#dueHead = 0;
    this.#unsettled = 0;
    if (this.#slot !== -1) this.#scheduler.delete(this);
    this.#slot = -1;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = null;
    if (waiters !== null) for (const w of waiters) w();
  }

  /**
   * A pass of the shared timer: sends what is due, keep-alive silence into an idle call's empty
   * slot, settles what has played. Returns when the next pass could find work here: at once while
   * anything is queued or waits to settle, or while idle with keep-alive; else, for a call whose
   * audio left as it was written (an echo), the instant its timeline could have run dry for the
   * grace period (until then {@link Pacer.rest} cannot turn it idle). Whatever happens in between
   * that needs a pass sooner wakes the call (`#wake`).
   */
  onTick(gridTime: number, now: number, observedUntil: number): number {
    if (this.#closed) return Infinity;
    // Most calls of an echo have nothing queued at a tick: their audio left as it was written.
    const sent = !this.#queue.empty && this.#pump(now, gridTime);
    if (!sent && !this.#closed && this.#pacer.rest(this.#quietUntil(observedUntil)) && this.#opts.keepAlive) {
      this.#keepAlive(gridTime, now);
    }
    this.#settleDue(now);
    if (!this.#queue.empty || this.#unsettled > 0 || this.#drainWaiters !== null) return EVERY_PASS;
    const pacer = this.#pacer;
    if (pacer.idle) return this.#opts.keepAlive ? EVERY_PASS : Infinity;
    return pacer.restsFrom;
  }

  /**
   * How far quiet time reaches: as far as the event loop has seen, but no further than the
   * input was expected, and that limit for at most `inputWaitMs` (input that stops for good).
   */
  #quietUntil(observedUntil: number): number {
    if (this.#inputUntil === -Infinity) return observedUntil;
    return Math.max(Math.min(observedUntil, this.#inputUntil), observedUntil - this.#pacer.inputWaitMs);
  }

  /** One frame of silence into an empty slot of an idle call. */
  #keepAlive(gridTime: number, now: number): void {
    if (!this.#pacer.dueBy(gridTime)) return;
    const kind =
      this.#lastKind ??
      this.#opts.keepAliveKind ??
      this.#inboundKind ??
      (gridTime - this.#startedAt >= this.#pacer.graceMs - EPS ? this.#kind : undefined);
    if (kind === undefined) return; // the kind of the call's audio is not known yet
    const F = this.frameMs;
    if (!this.#pacer.admits(F, now, gridTime, true)) return;
    this.#stats.silenceFrames++;
    const format = formatOfKind(kind);
    const message = silenceMessage(kind, frameBytes(format, F));
    this.#emit(message, format, F, now, gridTime, true);
  }

  /**
   * Sends queued frames while the pacer admits them. `gridTime`: the slot a tick stands for,
   * `undefined` between ticks (a short frame of a play still being read leaves only at a tick).
   * The call's own audio starts from idle on the wall clock, not on a late tick's slot, so it is
   * never more than the lead ahead of its first message. Returns whether anything was sent.
   */
  #pump(now: number, gridTime: number | undefined): boolean {
    if (this.#draining || this.#closed) return false;
    this.#draining = true;
    let sent = false;
    try {
      const queue = this.#queue;
      const pacer = this.#pacer;
      // The lead is measured from the timer's grid: the slot a pass stands for, or between
      // passes the latest slot passed. A pass that runs late (a busy tick) must not turn its
      // lateness into an extra frame back to back with the due one, and audio that starts
      // between passes must not open a hole before the next pass (docs/pacing.md).
      // A tick runs no earlier than its slot, to the timer's resolution (see the scheduler).
      const horizon = gridTime === undefined ? this.#lastSlot(now) : gridTime;
      // Queued audio leaves just in time: at the last wake-up before its place on the timeline
      // begins, never a pass earlier (docs/pacing.md). Written audio that leaves on arrival is
      // only held to the lead. Checked first: in steady state it is what ends the loop, and it
      // needs only the pacer (marks at the head could not complete before the next pass anyway).
      const nextWake = gridTime === undefined ? this.#nextSlot(now) : gridTime + this.#scheduler.period;
      while (!this.#closed && pacer.startAt(now) < nextWake - EPS) {
        const marks = queue.takeLeadingMarks();
        for (const m of marks) this.#schedule(m);
        const bytes = queue.peek();
        if (bytes === 0) break;
        const format = queue.headFormat;
        if (bytes < frameBytes(format, this.frameMs) && queue.moreMayCome) {
          // A frame of a play still being read leaves short only at a tick whose slot is due:
          // a source slower than real time plays what it has instead of leaving a gap.
          if (gridTime === undefined || !pacer.dueBy(now)) break;
          this.#stats.underruns++;
        }
        const ms = durationMs(format, bytes);
        if (!pacer.admits(ms, now, now, false, horizon)) break;
        // Cut behind room for the header, into memory the wire gives: the message, one copy.
        const size = HEADER_SIZE + bytes;
        const message = sentEventsRunning === 0 ? this.#wire.messageMemory(size) : Buffer.allocUnsafe(size);
        const completed = queue.takeInto(message, HEADER_SIZE);
        writeHeader(message, 0, kindOfFormat(format)!, bytes);
        this.#emit(message, format, ms, now, now, false);
        sent = true;
        for (const c of completed) this.#schedule(c);
      }
    } finally {
      this.#draining = false;
    }
    if (this.#drainOwed) this.#drainOwed = this.#gate.check();
    if (sent || this.#unsettled > 0) this.#settleDue(now);
    return sent;
  }

  /** The next instant of the timer's grid after `now` (no limit before the timer runs). */
  #nextSlot(now: number): number {
    if (this.#scheduler.period === 0) return Infinity;
    const next = this.#scheduler.nextGridTime(now);
    return next - now < EPS ? next + this.#scheduler.period : next;
  }

  /** The latest instant of the timer's grid at or before `now` (`now` itself before the timer runs). */
  #lastSlot(now: number): number {
    const period = this.#scheduler.period;
    if (period === 0) return now;
    const next = this.#scheduler.nextGridTime(now);
    return next - now < EPS ? now : next - period;
  }

  /**
   * Sends one message (header and payload) and accounts for it. The payload's view is made only
   * for whoever reads it (the level meter, `sent` listeners, which must copy what they keep: the
   * wire reuses the memory once the event is over, see {@link sentEventsRunning}); none is made
   * per frame otherwise.
   */
  #emit(message: Buffer, format: AudioFormat, ms: number, now: number, anchor: number, silence: boolean): void {
    // Audio from idle: the last pass found nothing to do until woken (see onTick).
    if (!silence && this.#pacer.idle) this.#wake();
    const lateness = this.#pacer.commit(ms, now, anchor, silence);
    if (!silence) {
      this.#userEnd = this.#pacer.end;
      this.#lastKind = message[0] as AudioKind;
      if (lateness > this.frameMs / 2) this.#stats.lateSlots++;
      if (lateness > this.frameMs) this.#stats.caughtUpFrames++;
    }
    if (!this.#wire.write(message)) return;
    this.#framesSent++;
    if (lateness >= 1 && this.meter !== null) this.meter.noteLate(lateness);
    if (this.samplePeak && !silence) {
      this.samplePeak = false;
      this.meter?.sample(message.subarray(HEADER_SIZE), format);
    }
    if (this.reportSent) {
      const late = lateness > 0 ? lateness : 0;
      sentEventsRunning++;
      try {
        this.#events.sent(message.subarray(HEADER_SIZE), format, now - late, late, silence);
      } finally {
        sentEventsRunning--;
      }
    }
  }

  /** Completes `c` once the user's audio sent so far has played. */
  #schedule(c: Completion): void {
    this.#due.push({ at: this.#userEnd, completion: c });
    if (this.#unsettled++ === 0) this.#wake();
  }

  #settleDue(now: number): void {
    if (this.#unsettled === 0 && this.#drainWaiters === null) return;
    const due = this.#due;
    // A completion can run user code that closes the call (a mark listener hanging up), which
    // replaces #due: stop walking the old array then.
    while (this.#due === due && this.#dueHead < due.length && due[this.#dueHead]!.at <= now + EPS) {
      const d = due[this.#dueHead]!;
      due[this.#dueHead++] = undefined as unknown as Due;
      this.#unsettled--;
      d.completion.done();
    }
    if (this.#dueHead === due.length && due.length > 0) {
      due.length = 0;
      this.#dueHead = 0;
    }
    if (this.#drainWaiters !== null && this.idle) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = null;
      for (const w of waiters) w();
    }
  }
}
