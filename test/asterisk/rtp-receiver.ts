/**
 * The RTP leg's socket, in a worker thread (started by RtpLeg in legs.ts). The worker has its own
 * event loop, busy with nothing else, so the arrival time it stamps on each packet does not move
 * with the test's event loop (the server under test, the bot simulator, the harness). It stamps
 * with process.hrtime.bigint() (CLOCK_MONOTONIC, the same clock for every thread of the process:
 * the parent converts it to its performance.now()) first thing in the 'message' handler, and
 * posts every packet to the parent as it comes. It also sends the leg's paced RTP on its own
 * clock (symmetric RTP: sent from the same socket), so that pacing does not depend on the test's
 * event loop either.
 *
 * Parent -> worker: { type: 'send', id, payloads: Uint8Array[] } | { type: 'abort', id } |
 *   { type: 'drain', id } | { type: 'close' }.
 * Worker -> parent: { type: 'listening', port, sched } | { type: 'packet', atNs, address, port, data } |
 *   { type: 'sent', id } | { type: 'drained', id, loopDelayMaxMs }.
 */
import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import { LOOP_SAMPLE_MS, loopLateness } from './util.js';

export type ToReceiver =
  | { type: 'send'; id: number; payloads: Uint8Array[]; address: string; port: number }
  | { type: 'abort'; id: number }
  | { type: 'drain'; id: number }
  | { type: 'close' };

export type FromReceiver =
  | { type: 'listening'; port: number; sched: string }
  | { type: 'packet'; atNs: bigint; address: string; port: number; data: Uint8Array }
  | { type: 'sent'; id: number }
  | { type: 'drained'; id: number; loopDelayMaxMs: number };

/**
 * Raises this thread's scheduling priority, so that it runs as soon as a packet arrives even
 * while Asterisk, the test's thread and the machine's other work keep both cores busy:
 * RTP_LEG_SCHED=fifo (SCHED_FIFO 10, with `chrt`), nice (nice -10), none. Needs root or
 * CAP_SYS_NICE (and `chrt`, from util-linux, for fifo); without, it stays as it was. Returns
 * what applied.
 */
function raisePriority(): string {
  const want = process.env.RTP_LEG_SCHED ?? 'fifo';
  if (want === 'none') return 'none';
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (want === 'fifo') {
      execFileSync('chrt', ['-f', '-p', '10', String(tid)], { stdio: 'ignore' });
      return 'SCHED_FIFO 10';
    }
    setPriority(tid, -10);
    return 'nice -10';
  } catch (e) {
    // not permitted, or no `chrt`
    return `unchanged (${(e as NodeJS.ErrnoException).code ?? (e as Error).message.split('\n')[0]})`;
  }
}

const port = parentPort;
if (port) {
  const sched = raisePriority();
  const post = (m: FromReceiver): void => port.postMessage(m);
  // how late this worker's own loop ran: the error bound of its stamps (reported by drain, since the last drain)
  const loop = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS });
  loop.enable();
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    const atNs = process.hrtime.bigint();
    // a copy of just the datagram (a clone of a view would copy all of the buffer behind it)
    post({ type: 'packet', atNs, address: rinfo.address, port: rinfo.port, data: new Uint8Array(msg) });
  });
  const aborted = new Set<number>();

  const sendPaced = async (m: Extract<ToReceiver, { type: 'send' }>): Promise<void> => {
    const ssrc = 0x1234abcd;
    const t0 = performance.now();
    for (let i = 0; i < m.payloads.length && !aborted.has(m.id); i++) {
      const h = Buffer.alloc(12);
      h[0] = 0x80;
      h[1] = i === 0 ? 0x80 : 0x00; // marker on the first packet, PT 0 (PCMU)
      h.writeUInt16BE(i & 0xffff, 2);
      h.writeUInt32BE((i * 160) >>> 0, 4);
      h.writeUInt32BE(ssrc, 8);
      socket.send(Buffer.concat([h, m.payloads[i]!]), m.port, m.address);
      const wait = t0 + (i + 1) * 20 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    aborted.delete(m.id);
    post({ type: 'sent', id: m.id });
  };

  port.on('message', (m: ToReceiver) => {
    if (m.type === 'send') void sendPaced(m);
    else if (m.type === 'abort') aborted.add(m.id);
    // messages to the parent keep their order: once it has 'drained', it has every packet before it
    else if (m.type === 'drain') {
      post({ type: 'drained', id: m.id, loopDelayMaxMs: loopLateness(loop).max });
      loop.reset();
    } else if (m.type === 'close') {
      loop.disable();
      socket.close(() => port.close());
    }
  });
  socket.bind(0, '127.0.0.1', () => post({ type: 'listening', port: socket.address().port, sched }));
}
