/**
 * Admission of written audio, the same on every transport: Node's backpressure convention
 * (`false` from a write means "slow down", the audio is kept; `drain` says when to go on) up to
 * `highWaterMarkMs`, and a hard bound, `maxQueuedMs`, beyond which written audio is dropped,
 * counted and reported (never silently).
 */
import type { AudioFormat } from '../audio/format.js';
import { durationMs, sampleBytes } from './frames.js';

export interface WriteGateLimits {
  /** Queued audio (ms) from which a write returns `false`. */
  highWaterMarkMs: number;
  /** Most audio (ms) queued; written audio beyond it is dropped. */
  maxQueuedMs: number;
}

/** What the gate reports (the outbound policy's own events: a subset of `OutboundEvents`). */
export interface WriteGateEvents {
  /** Called with what was dropped and what was queued. */
  dropped(droppedMs: number, queuedMs: number): void;
  /** Called when the queue is back under the high-water mark after a `false`. */
  drain(): void;
}

const EPS = 1e-6;

/** What the gate reads of the queue it guards. */
export interface QueuedAudio {
  /** Milliseconds of audio waiting to be sent. */
  readonly queuedMs: number;
}

export class WriteGate {
  readonly highWaterMarkMs: number;
  readonly #maxQueuedMs: number;
  readonly #events: WriteGateEvents;
  readonly #queue: QueuedAudio;
  #needDrain = false;
  #closed = false;
  droppedWrites = 0;
  droppedMs = 0;

  constructor(limits: WriteGateLimits, events: WriteGateEvents, queue: QueuedAudio) {
    this.highWaterMarkMs = limits.highWaterMarkMs;
    this.#maxQueuedMs = limits.maxQueuedMs;
    this.#events = events;
    this.#queue = queue;
  }

  /** The part of `bytes` that fits under `maxQueuedMs` (all of it, or a prefix of whole samples); the rest is counted and reported. */
  admit(bytes: Buffer, format: AudioFormat): Buffer {
    // Nothing to queue is nothing to drop, however full the queue is.
    if (bytes.length === 0) return bytes;
    const queuedMs = this.#queue.queuedMs;
    const ms = durationMs(format, bytes.length);
    const room = this.#maxQueuedMs - queuedMs;
    if (ms <= room + EPS) return bytes;
    const unit = sampleBytes(format) * format.channels;
    const keep = Math.max(0, Math.floor((room * bytes.length) / ms / unit) * unit);
    const droppedMs = durationMs(format, bytes.length - keep);
    this.droppedWrites++;
    this.droppedMs += droppedMs;
    this.#events.dropped(droppedMs, queuedMs);
    return bytes.subarray(0, keep);
  }

  /**
   * The return value of a write, once it is queued (`dropped`: {@link admit} cut it). A `drain`
   * is owed from here, when the write returns `false`, and not before: the sends the write itself
   * made must not emit a `drain` the writer has no reason yet to wait for. It is checked once the
   * writer has the `false` (a microtask: the write may have left nothing queued, and then no later
   * pass of the policy would look), and after that whenever the policy sends.
   */
  result(dropped: boolean): boolean {
    const ok = this.#queue.queuedMs < this.highWaterMarkMs && !dropped;
    if (!ok) {
      this.#needDrain = true;
      queueMicrotask(() => this.check());
    }
    return ok;
  }

  /**
   * Emits `drain` if one is owed and the queue is back under the high-water mark. Cheap when none
   * is owed. Returns whether one is still owed (a policy may skip this call until its next `false`).
   */
  check(): boolean {
    if (this.#needDrain && !this.#closed && this.#queue.queuedMs < this.highWaterMarkMs) {
      this.#needDrain = false;
      this.#events.drain();
    }
    return this.#needDrain && !this.#closed;
  }

  /** The call is ending: no `drain` any more. */
  close(): void {
    this.#closed = true;
  }
}
