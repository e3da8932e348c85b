/**
 * The floor: the smallest correct AudioSocket echo server we know how to write in Node.
 *
 * Plain `net`, `setNoDelay(true)`, a stream decoder that survives any TCP chunking, and each
 * audio message (kinds 0x10..0x18) written back as ONE write of header + payload (a zero-copy
 * view of the received chunk when the message arrived whole). Everything else (UUID, DTMF,
 * unknown kinds) is ignored. No keep-alive silence, no pacing, no limits: this is the cost
 * floor a real server is compared against, not a server to deploy.
 *
 * CLI: node build/bench/floor-echo.js --host 127.0.0.1 --port 9092
 * Prints "listening host:port" on stdout once bound. Stops on SIGINT/SIGTERM.
 */
import net from 'node:net';
import { Decoder, isAudioKind } from './lib/wire.js';
import { listenFloor, runFloorCli, type ListeningFloor } from './lib/floor-server.js';

export type FloorEcho = ListeningFloor;

export interface FloorEchoOptions {
  host?: string;
  port?: number;
  /**
   * Test hook: transform each echoed message before writing it (e.g. flip a byte to prove the
   * load generator notices). Not used by the CLI.
   */
  mutate?: (frame: Buffer) => Buffer | null;
}

export function handleConnection(socket: net.Socket, mutate?: FloorEchoOptions['mutate']): void {
  socket.setNoDelay(true);
  const decoder = new Decoder(
    mutate === undefined
      ? (kind, frame) => {
          if (isAudioKind(kind) && frame.length > 3) socket.write(frame);
        }
      : (kind, frame) => {
          if (!isAudioKind(kind) || frame.length <= 3) return;
          const out = mutate(frame);
          if (out !== null) socket.write(out);
        },
  );
  socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  // A reset peer is a normal end of call for a bench server; never crash on it.
  socket.on('error', () => socket.destroy());
}

export function startFloorEcho(opts: FloorEchoOptions = {}): Promise<FloorEcho> {
  const host = opts.host ?? '127.0.0.1';
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    handleConnection(socket, opts.mutate);
  });
  return listenFloor(server, sockets, host, opts.port ?? 0);
}

runFloorCli(import.meta.url, 'floor-echo', (host, port) => startFloorEcho({ host, port }));
