/**
 * The test's own stand-ins for the far end of a call, written without the library so that what
 * they measure does not depend on the code under test:
 *  - FarLeg: a minimal AudioSocket server for the other half of a Local pair (or an originated
 *    AudioSocket channel). It sends known audio on an absolute 20 ms clock and records, with
 *    arrival times, everything Asterisk sends it.
 *  - RtpLeg: a UDP socket that plays the phone's RTP leg of a `UnicastRTP/127.0.0.1:PORT/c(ulaw)`
 *    channel.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { formatUuidBytes } from './util.js';

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
  at: number;
  seq: number;
  ts: number;
  pt: number;
  payload: Buffer;
}

/** The phone's side of a UnicastRTP channel: records what Asterisk sends, can send u-law back. */
export class RtpLeg {
  readonly packets: RtpPacket[] = [];
  readonly socket = dgram.createSocket('udp4');
  port = 0;
  /** Asterisk's RTP address, learnt from its first packet (symmetric RTP). */
  remote: { address: string; port: number } | undefined;
  #remoteWaiters: Array<() => void> = [];

  async bind(): Promise<this> {
    this.socket.bind(0, '127.0.0.1');
    await once(this.socket, 'listening');
    this.port = this.socket.address().port;
    this.socket.on('message', (msg, rinfo) => {
      if (msg.length < 12 || msg[0]! >> 6 !== 2) return;
      const cc = msg[0]! & 0x0f;
      this.packets.push({
        at: performance.now(),
        seq: msg.readUInt16BE(2),
        ts: msg.readUInt32BE(4),
        pt: msg[1]! & 0x7f,
        payload: Buffer.from(msg.subarray(12 + cc * 4)),
      });
      if (!this.remote) {
        this.remote = { address: rinfo.address, port: rinfo.port };
        for (const w of this.#remoteWaiters.splice(0)) w();
      }
    });
    return this;
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

  /** Sends u-law payloads as PCMU RTP, one per 20 ms on an absolute clock. */
  async sendPaced(payloads: Buffer[], signal?: AbortSignal): Promise<void> {
    const remote = await this.waitRemote();
    const ssrc = 0x1234abcd;
    const t0 = performance.now();
    for (let i = 0; i < payloads.length && !signal?.aborted; i++) {
      const h = Buffer.alloc(12);
      h[0] = 0x80;
      h[1] = i === 0 ? 0x80 : 0x00; // marker on the first packet, PT 0 (PCMU)
      h.writeUInt16BE(i & 0xffff, 2);
      h.writeUInt32BE((i * 160) >>> 0, 4);
      h.writeUInt32BE(ssrc, 8);
      this.socket.send(Buffer.concat([h, payloads[i]!]), remote.port, remote.address);
      const wait = t0 + (i + 1) * 20 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  close(): void {
    this.socket.close();
  }
}
