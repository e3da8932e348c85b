/**
 * What the hand-written floors (`floor-echo.ts`, `floor-paced-echo.ts`, `floor-play.ts`) share:
 * listening, closing, and their small command line ("listening host:port" once bound, stop on
 * SIGINT/SIGTERM), so that each floor file holds only the server it measures.
 */
import type net from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export interface ListeningFloor {
  server: net.Server;
  host: string;
  port: number;
  /** Stops the floor's own timers, destroys every open connection and stops listening. */
  close(): Promise<void>;
}

/**
 * Listens on `host:port` (0: any free port). `sockets` is the floor's set of open connections;
 * `stopTimers` stops whatever the floor runs besides them.
 */
export function listenFloor(
  server: net.Server,
  sockets: Set<net.Socket>,
  host: string,
  port: number,
  stopTimers: () => void = () => {},
): Promise<ListeningFloor> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, backlog: 4096 }, () => {
      server.off('error', reject);
      const addr = server.address() as net.AddressInfo;
      resolve({
        server,
        host,
        port: addr.port,
        close: () =>
          new Promise<void>((res) => {
            stopTimers();
            for (const s of sockets) s.destroy();
            server.close(() => res());
          }),
      });
    });
  });
}

/** `--port` as given on the command line: a whole number from 0 to 65535. */
export function portOption(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad --port ${value}`);
  return port;
}

/** Says where the floor listens (echo-compare waits for this line) and closes it on SIGINT/SIGTERM. */
export function serveUntilSignal(floor: Pick<ListeningFloor, 'host' | 'port' | 'close'>): void {
  process.stdout.write(`listening ${floor.host}:${floor.port}\n`);
  const stop = (): void => {
    void floor.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** Runs `main` when `moduleUrl` is the script node was started with; a failure is one line and exit 1. */
export function runIfMain(moduleUrl: string, name: string, main: () => Promise<void>): void {
  if (moduleUrl !== pathToFileURL(process.argv[1] ?? '').href) return;
  main().catch((err: unknown) => {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

/**
 * The whole command line of a floor that takes only `--host` and `--port`: runs when `moduleUrl`
 * is the script node was started with.
 */
export function runFloorCli(
  moduleUrl: string,
  name: string,
  start: (host: string, port: number) => Promise<Pick<ListeningFloor, 'host' | 'port' | 'close'>>,
): void {
  runIfMain(moduleUrl, name, async () => {
    const { values } = parseArgs({
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '9092' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      process.stdout.write(`usage: node build/bench/${name}.js [--host 127.0.0.1] [--port 9092]\n`);
      return;
    }
    serveUntilSignal(await start(values.host, portOption(values.port)));
  });
}
