/**
 * A deliberately broken server, for showing that each scenario can fail: a tiny raw `net` proxy
 * placed between Asterisk and the server under test. Asterisk -> server bytes pass unchanged.
 * Server -> Asterisk bytes are re-cut into whole messages (one write each, as a correct server
 * does) and, from the `at`-th audio message on, one fault is applied:
 *  - split:      that message is written as two writes 20 ms apart (header + half, then the rest)
 *  - burst:      that message and the next 49 (1 s of audio) are held and written in one write
 *  - wrong-kind: that message goes out with kind 0x03 (DTMF, which Asterisk never accepts)
 * In normal runs no proxy is used at all: Asterisk dials the server directly.
 */
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';

export type Fault = 'split' | 'burst' | 'wrong-kind';
/** `tap`: no fault, only records what Asterisk sends and how it closes. */
export type ProxyMode = Fault | 'tap';
export const FAULTS: readonly Fault[] = ['split', 'burst', 'wrong-kind'];

export class FaultProxy {
  #server: net.Server;
  #sockets = new Set<net.Socket>();
  port = 0;
  /** how many times the fault was applied */
  applied = 0;
  /** kinds of the messages Asterisk sent, per connection, and how Asterisk closed (tap data) */
  readonly fromAsterisk: Array<{ kinds: number[]; end?: 'fin' | 'rst' }> = [];

  constructor(
    readonly targetPort: number,
    readonly fault: ProxyMode,
    readonly at = 10,
  ) {
    this.#server = net.createServer((ast) => this.#connection(ast));
  }

  #connection(ast: net.Socket): void {
    ast.setNoDelay(true);
    const srv = net.connect({ host: '127.0.0.1', port: this.targetPort });
    srv.setNoDelay(true);
    this.#sockets.add(ast).add(srv);
    const closeBoth = (): void => {
      ast.destroy();
      srv.destroy();
    };
    ast.on('error', closeBoth).on('close', () => srv.end());
    srv.on('error', closeBoth).on('close', () => ast.end());
    const seen: { kinds: number[]; end?: 'fin' | 'rst' } = { kinds: [] };
    this.fromAsterisk.push(seen);
    let abuf: Buffer = Buffer.alloc(0);
    ast.on('data', (d: Buffer) => {
      srv.write(d);
      abuf = abuf.length ? Buffer.concat([abuf, d]) : d;
      while (abuf.length >= 3 && abuf.length >= 3 + abuf.readUInt16BE(1)) {
        seen.kinds.push(abuf[0]!);
        abuf = abuf.subarray(3 + abuf.readUInt16BE(1));
      }
    });
    ast.on('end', () => {
      seen.end ??= 'fin';
      srv.end();
    });
    ast.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') seen.end ??= 'rst';
    });
    let buf: Buffer = Buffer.alloc(0);
    let audio = 0;
    const held: Buffer[] = [];
    srv.on('data', (d: Buffer) => {
      if (this.fault === 'tap') {
        ast.write(d); // unchanged, so a tap never heals a broken server's output
        return;
      }
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 3) {
        const len = buf.readUInt16BE(1);
        if (buf.length < 3 + len) break;
        const msg = Buffer.from(buf.subarray(0, 3 + len));
        buf = buf.subarray(3 + len);
        const isAudio = msg[0]! >= 0x10 && msg[0]! <= 0x18;
        if (isAudio) audio++;
        if (isAudio && audio === this.at && this.fault === 'split') {
          this.applied++;
          const cut = 3 + (len >> 1);
          ast.write(msg.subarray(0, cut));
          const rest = msg.subarray(cut);
          setTimeout(() => ast.writable && ast.write(rest), 20);
          continue;
        }
        if (isAudio && audio === this.at && this.fault === 'wrong-kind') {
          this.applied++;
          msg[0] = 0x03;
        }
        if (this.fault === 'burst' && audio >= this.at && audio < this.at + 50 && (isAudio || held.length)) {
          held.push(msg);
          if (audio === this.at + 49 || !isAudio) {
            this.applied++;
            ast.write(Buffer.concat(held.splice(0)));
          }
          continue;
        }
        ast.write(msg);
      }
    });
    srv.on('end', () => {
      if (held.length) ast.write(Buffer.concat(held.splice(0)));
      ast.end();
    });
  }

  async listen(): Promise<this> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
