/**
 * The test's own stand-ins for the far end of a call, written without the library so that what
 * they measure does not depend on the code under test:
 *  - FarLeg: a minimal AudioSocket server for the other half of a Local pair (or an originated
 *    AudioSocket channel). It sends known audio on an absolute 20 ms clock and records, with
 *    arrival times, everything Asterisk sends it.
 *  - RtpLeg: a UDP socket that plays the phone's RTP leg of a `UnicastRTP/127.0.0.1:PORT/c(ulaw)`
 *    channel, served by a worker thread of its own (rtp-receiver.ts) that stamps the arrivals.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { formatUuidBytes } from './util.js';
import type { FromReceiver, ToReceiver } from './rtp-receiver.js';

export interface Received {
  kind: number;
  payload: Buffer;
  at: number;
}

export class FarCall {
  uuid = '';
  readonly frames: Received[] = [];
  readonly digits: Array<{ digit: string; at: number }> = [];
  connectedAt = performance.now();
  uuidAt = 0;
  closedAt: number | undefined;
  readonly closed: Promise<void>;
  /** send times of queued frames, by position in the queue order */
  readonly sentAt: number[] = [];
  #queue: Buffer[] = [];
  #queueWaiters: Array<{ until: number; resolve: () => void }> = [];
  #queued = 0;
  #timer: NodeJS.Timeout | undefined;
  #slot = 0;
  #t0 = 0;
  #buf: Buffer = Buffer.alloc(0);
  /** until then the clock's slots pass without a message (see quiet()) */
  #quietUntil = 0;
  #onUuid: (() => void) | undefined;
  readonly ready: Promise<void>;

  constructor(
    readonly socket: Socket,
    readonly kind: number,
    readonly frameBytes: number,
  ) {
    socket.setNoDelay(true);
    this.ready = new Promise((r) => (this.#onUuid = r));
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.closedAt = performance.now();
        clearTimeout(this.#timer);
        resolve();
      });
    });
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => this.#data(d));
  }

  #data(d: Buffer): void {
    const at = performance.now();
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
    while (this.#buf.length >= 3) {
      const len = this.#buf.readUInt16BE(1);
      if (this.#buf.length < 3 + len) break;
      const kind = this.#buf[0]!;
      const payload = Buffer.from(this.#buf.subarray(3, 3 + len));
      this.#buf = this.#buf.subarray(3 + len);
      if (kind === 0x01) {
        this.uuid = formatUuidBytes(payload);
        this.uuidAt = at;
        this.#startClock();
        this.#onUuid?.();
      } else if (kind === 0x03) this.digits.push({ digit: payload.toString('latin1'), at });
      else this.frames.push({ kind, payload, at });
    }
  }

  /**
   * From the UUID on: one message per 20 ms on an absolute clock, queued audio first, else
   * silence; nothing while quiet(). A late timer sends the slots it missed back to back.
   */
  #startClock(): void {
    this.#t0 = performance.now();
    const tick = (): void => {
      if (this.socket.destroyed || !this.socket.writable) return;
      if (performance.now() >= this.#quietUntil) this.#send();
      this.#slot++;
      this.#timer = setTimeout(tick, Math.max(0, this.#t0 + this.#slot * 20 - performance.now()));
    };
    tick();
  }

  #send(): void {
    const next = this.#queue.shift();
    const payload = next ?? Buffer.alloc(this.frameBytes);
    const header = Buffer.from([this.kind, payload.length >> 8, payload.length & 0xff]);
    this.socket.write(Buffer.concat([header, payload]));
    if (!next) return;
    this.sentAt.push(performance.now());
    for (const w of [...this.#queueWaiters]) {
      if (this.sentAt.length >= w.until) {
        this.#queueWaiters.splice(this.#queueWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  /** Queues frames (sent one per 20 ms slot); resolves once all were written, or the call closed. */
  play(frames: Buffer[]): Promise<void> {
    this.#queue.push(...frames);
    this.#queued += frames.length;
    const until = this.#queued;
    return Promise.race([new Promise<void>((resolve) => this.#queueWaiters.push({ until, resolve })), this.closed]);
  }

  /**
   * Sends nothing for `ms` (the slots of the 20 ms clock pass empty), then goes on as before;
   * resolves when the time is up, or the call closed. A receiver that plays what it queued on
   * its own timer (chan_websocket) gets the time to empty its queue: frames that piled up there
   * (e.g. silence sent back to back by this clock catching up after a stall of the test's event
   * loop) would otherwise delay every frame played after them.
   */
  quiet(ms: number): Promise<void> {
    this.#quietUntil = Math.max(this.#quietUntil, performance.now() + ms);
    return Promise.race([new Promise<void>((resolve) => setTimeout(resolve, ms)), this.closed]);
  }

  hangup(): void {
    clearTimeout(this.#timer);
    this.socket.end(Buffer.from([0, 0, 0]));
  }
}

export class FarLeg {
  readonly calls: FarCall[] = [];
  #server: net.Server;
  #waiters = new Set<() => void>();
  port = 0;

  constructor(
    readonly kind = 0x10,
    readonly frameBytes = 320,
  ) {
    this.#server = net.createServer((socket) => {
      const call = new FarCall(socket, this.kind, this.frameBytes);
      this.calls.push(call);
      void call.ready.then(() => this.#notify());
      void call.closed.then(() => this.#notify());
    });
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }

  async listen(): Promise<this> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  /** Bounded wait for the call with this UUID (lower case) to have sent its UUID. */
  async call(uuid: string, timeoutMs = 5000): Promise<FarCall> {
    const found = (): FarCall | undefined => this.calls.find((c) => c.uuid === uuid.toLowerCase());
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const c = found();
      if (c) return c;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`far leg: no call ${uuid} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.#waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, Math.min(50, left));
        this.#waiters.add(done);
      });
    }
  }

  async close(): Promise<void> {
    for (const c of this.calls) c.socket.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

export interface RtpPacket {
  /** arrival, stamped by the receiver's own thread (performance.now() time of this thread) */
  at: number;
  /** when the test's event loop got it (what `at` was before the receiver had its own thread) */
  loopAt: number;
  seq: number;
  ts: number;
  pt: number;
  payload: Buffer;
}

/**
 * The phone's side of a UnicastRTP channel: records what Asterisk sends, can send u-law back.
 * The socket lives in a worker thread (rtp-receiver.ts) with an event loop of its own, which
 * stamps each packet's arrival: the test's event loop, shared with the server under test and the
 * bot simulator, can run late by 10-40 ms, and the gaps between packets would show that delay as
 * if the audio had arrived unevenly. Packets reach `packets` as they come; `drain()` waits for
 * all that arrived before it.
 */
export class RtpLeg {
  readonly packets: RtpPacket[] = [];
  port = 0;
  /** the receiver thread's scheduling (rtp-receiver.ts, RTP_LEG_SCHED) */
  sched = '';
  /** Asterisk's RTP address, learnt from its first packet (symmetric RTP). */
  remote: { address: string; port: number } | undefined;
  #remoteWaiters: Array<() => void> = [];
  #worker: Worker | undefined;
  #replies = new Map<number, (m: FromReceiver | undefined) => void>();
  #nextId = 1;
  /** performance.now() minus process.hrtime in ms: both read CLOCK_MONOTONIC (uv_hrtime) */
  #hrOffset = 0;

  async bind(): Promise<this> {
    const worker = new Worker(new URL('./rtp-receiver.js', import.meta.url));
    this.#worker = worker;
    worker.on('error', (e) => console.error(`RTP leg receiver: ${e.message}`));
    // a receiver that died answers no request: each one gets `undefined` instead of hanging
    worker.on('exit', () => {
      for (const r of [...this.#replies.values()]) r(undefined);
    });
    const listening = new Promise<{ port: number; sched: string }>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`RTP leg receiver exited (${code}) before it was listening`)));
      worker.on('message', (m: FromReceiver) => {
        if (m.type === 'listening') resolve(m);
        else if (m.type === 'packet') this.#packet(m);
        else this.#replies.get(m.id)?.(m);
      });
    });
    ({ port: this.port, sched: this.sched } = await listening);
    this.#hrOffset = performance.now() - Number(process.hrtime.bigint()) / 1e6;
    return this;
  }

  #packet(m: Extract<FromReceiver, { type: 'packet' }>): void {
    const msg = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
    if (msg.length < 12 || msg[0]! >> 6 !== 2) return;
    const cc = msg[0]! & 0x0f;
    this.packets.push({
      at: Number(m.atNs) / 1e6 + this.#hrOffset,
      loopAt: performance.now(),
      seq: msg.readUInt16BE(2),
      ts: msg.readUInt32BE(4),
      pt: msg[1]! & 0x7f,
      payload: Buffer.from(msg.subarray(12 + cc * 4)),
    });
    if (!this.remote) {
      this.remote = { address: m.address, port: m.port };
      for (const w of this.#remoteWaiters.splice(0)) w();
    }
  }

  #request(m: ToReceiver & { id: number }): Promise<FromReceiver | undefined> {
    return new Promise((resolve) => {
      this.#replies.set(m.id, (r) => {
        this.#replies.delete(m.id);
        resolve(r);
      });
      if (this.#worker) this.#worker.postMessage(m);
      else resolve(undefined);
    });
  }

  async waitRemote(timeoutMs = 5000): Promise<{ address: string; port: number }> {
    if (this.remote) return this.remote;
    await Promise.race([
      new Promise<void>((r) => this.#remoteWaiters.push(r)),
      new Promise<void>((_, rej) =>
        setTimeout(() => rej(new Error(`RTP leg: nothing from Asterisk within ${timeoutMs} ms`)), timeoutMs).unref(),
      ),
    ]);
    return this.remote!;
  }

  /** Sends u-law payloads as PCMU RTP, one per 20 ms on an absolute clock (the receiver thread's). */
  async sendPaced(payloads: Buffer[], signal?: AbortSignal): Promise<void> {
    const remote = await this.waitRemote();
    if (signal?.aborted) return;
    const id = this.#nextId++;
    const onAbort = (): void => this.#worker?.postMessage({ type: 'abort', id } satisfies ToReceiver);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await this.#request({ type: 'send', id, payloads, address: remote.address, port: remote.port });
      if (!r) throw new Error('RTP leg: the receiver thread is gone');
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Resolves once every packet that reached the receiver before the call is in `packets`;
   * `loopDelayMaxMs`: how late the receiver's own event loop ran since the last drain() (or its
   * start): its stamps are late by at most about that much.
   */
  async drain(): Promise<{ loopDelayMaxMs: number }> {
    const r = await this.#request({ type: 'drain', id: this.#nextId++ });
    if (r?.type !== 'drained') throw new Error('RTP leg: the receiver thread is gone');
    return { loopDelayMaxMs: r.loopDelayMaxMs };
  }

  async close(): Promise<void> {
    const w = this.#worker;
    if (!w) return;
    this.#worker = undefined;
    const exited = once(w, 'exit');
    w.postMessage({ type: 'close' } satisfies ToReceiver);
    const t = setTimeout(() => void w.terminate(), 1000);
    await exited;
    clearTimeout(t);
  }
}
