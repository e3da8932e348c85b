/**
 * The floor for paced playback: the smallest correct AudioSocket prompt player we know how to
 * write in Node, to compare `audiosocket play` with in the same run (bench/play-compare).
 *
 * One shared timer on a deadline grid (origin + k x 20 ms, computed from the clock each time, so
 * it never drifts); the prompt (a WAV file of slin 8 kHz, looped) framed ONCE into one buffer of
 * header + 320-byte payload messages, each frame sent as a zero-copy slice of it; per call only a
 * start index and a count of frames sent. A late tick sends the frames that are due, at most
 * three at once; beyond that the call skips ahead. No keep-alive, no marks, no conversion, no
 * limits: a cost floor, not a server to deploy.
 *
 * CLI: node build/bench/floor-play.js --wav tone.wav [--host 127.0.0.1] [--port 9092]
 * Prints "listening host:port" on stdout once bound. Stops on SIGINT/SIGTERM.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { listenFloor, portOption, runIfMain, serveUntilSignal, type ListeningFloor } from './lib/floor-server.js';

const FRAME_MS = 20;
const PAYLOAD = 320;
const MESSAGE = 3 + PAYLOAD;
const MAX_CATCH_UP = 3;

/** The data chunk of a WAV file (assumed slin 8 kHz mono, as bench/lib/tone.ts writes). */
function wavData(file: Buffer): Buffer {
  let off = 12;
  while (off + 8 <= file.length) {
    const id = file.toString('latin1', off, off + 4);
    const size = file.readUInt32LE(off + 4);
    if (id === 'data') return file.subarray(off + 8, Math.min(file.length, off + 8 + size));
    off += 8 + size + (size & 1);
  }
  throw new Error('no data chunk in the WAV file');
}

/** The prompt as one buffer of whole messages (the last frame padded with silence). */
export function framePrompt(pcm: Buffer): { framed: Buffer; frames: number } {
  const frames = Math.max(1, Math.ceil(pcm.length / PAYLOAD));
  const framed = Buffer.alloc(frames * MESSAGE);
  for (let i = 0; i < frames; i++) {
    const at = i * MESSAGE;
    framed[at] = 0x10;
    framed[at + 1] = PAYLOAD >>> 8;
    framed[at + 2] = PAYLOAD & 0xff;
    pcm.copy(framed, at + 3, i * PAYLOAD, Math.min(pcm.length, (i + 1) * PAYLOAD));
  }
  return { framed, frames };
}

interface Listener {
  socket: net.Socket;
  /** Grid index of this call's first frame. */
  first: number;
  sent: number;
}

export type FloorPlay = ListeningFloor;

export function startFloorPlay(pcm: Buffer, opts: { host?: string; port?: number } = {}): Promise<FloorPlay> {
  const { framed, frames } = framePrompt(pcm);
  const host = opts.host ?? '127.0.0.1';
  const origin = performance.now();
  const live = new Set<Listener>();
  const sockets = new Set<net.Socket>();
  let timer: NodeJS.Timeout | null = null;
  let next = 1;

  const tick = (): void => {
    const k = Math.floor((performance.now() - origin) / FRAME_MS);
    for (const l of live) {
      let due = k - l.first + 1 - l.sent;
      if (due > MAX_CATCH_UP) {
        l.sent += due - MAX_CATCH_UP; // too late: skip ahead rather than burst
        due = MAX_CATCH_UP;
      }
      for (; due > 0; due--) {
        const i = l.sent++ % frames;
        l.socket.write(framed.subarray(i * MESSAGE, (i + 1) * MESSAGE));
      }
    }
    next = k + 1;
    timer = live.size > 0 ? setTimeout(tick, origin + next * FRAME_MS - performance.now()) : null;
  };

  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    let got = 0;
    let listener: Listener | null = null;
    socket.on('data', (chunk: Buffer) => {
      if (listener !== null) return; // everything after the UUID is ignored
      got += chunk.length;
      if (got < 19) return;
      listener = { socket, first: Math.floor((performance.now() - origin) / FRAME_MS) + 1, sent: 0 };
      live.add(listener);
      if (timer === null) timer = setTimeout(tick, origin + listener.first * FRAME_MS - performance.now());
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      if (listener !== null) live.delete(listener);
    });
  });
  return listenFloor(server, sockets, host, opts.port ?? 0, () => {
    if (timer !== null) clearTimeout(timer);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      wav: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '9092' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || values.wav === undefined) {
    process.stdout.write('usage: node build/bench/floor-play.js --wav FILE [--host 127.0.0.1] [--port 9092]\n');
    return;
  }
  const floor = await startFloorPlay(wavData(readFileSync(values.wav)), { host: values.host, port: portOption(values.port) });
  serveUntilSignal(floor);
}

runIfMain(import.meta.url, 'floor-play', main);
