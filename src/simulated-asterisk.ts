/**
 * What the two simulated Asterisks (`audiosocket/client.ts`, `websocket/client.ts`) share: the
 * `closed` promise, violations, counters, real-time streaming, a hang-up's 2 s deadline.
 * @module
 */
import { EventEmitter } from 'node:events';

/** The base of `AsteriskClient` and `AsteriskWebSocketClient`. */
export abstract class SimulatedAsterisk<
  Events extends { violation: [V]; close: [C] } & Record<keyof Events, unknown[]>,
  V,
  C,
  Stats extends { violations: number },
> extends EventEmitter<Events> {
  /** Resolves when the connection is closed. Never rejects. */
  readonly closed: Promise<C>;
  /** @internal */
  protected readonly _stats: Stats;
  readonly #resolveClosed: (c: C) => void;
  readonly #violations: V[] = [];

  /** @internal */
  constructor(stats: Stats) {
    super();
    this._stats = stats;
    let resolve!: (c: C) => void;
    this.closed = new Promise((r) => (resolve = r));
    this.#resolveClosed = resolve;
  }

  /** True until the connection closes (on AudioSocket: or is ending). */
  abstract get connected(): boolean;

  /** The caller hangs up, as Asterisk does on this transport. Resolves when closed. */
  abstract hangup(): Promise<C>;

  /** A snapshot of the counters. */
  get stats(): Stats {
    return { ...this._stats };
  }

  /** Everything the server sent that a real Asterisk would have refused, dropped, ignored or logged. */
  get violations(): readonly V[] {
    return this.#violations;
  }

  /** Hangs up (see {@link hangup}) and waits until closed: `await using client = await connect(...)` (or `connectWebSocket`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.hangup();
  }

  /** @internal */
  protected _violation(violation: V): void {
    this.#violations.push(violation);
    this._stats.violations++;
    (this as EventEmitter).emit('violation', violation);
  }

  /** @internal */
  protected _closed(info: C): void {
    this.#resolveClosed(info);
    (this as EventEmitter).emit('close', info);
  }

  /** @internal Runs `kill` unless closed within 2 s. */
  protected _killAfter2s(kill: () => void): Promise<C> {
    const timer = setTimeout(kill, 2000);
    void this.closed.then(() => clearTimeout(timer));
    return this.closed;
  }

  /** @internal Sends piece k of `size` bytes at start + k x `frameMs` while connected; counts all but `send`'s falses. */
  protected async _stream(
    audio: Uint8Array,
    size: number,
    frameMs: number,
    signal: AbortSignal | undefined,
    send: (piece: Uint8Array) => boolean | void,
  ): Promise<number> {
    const start = performance.now();
    let sent = 0;
    for (let off = 0, k = 0; off < audio.length; off += size, k++) {
      if (signal?.aborted || !this.connected) break;
      const wait = start + k * frameMs - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (!this.connected) break;
      if (send(audio.subarray(off, Math.min(off + size, audio.length))) !== false) sent++;
    }
    return sent;
  }
}
