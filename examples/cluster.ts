/**
 * Your own handler on every core: Node's `cluster` shares the listening socket between worker
 * processes; each call lives in one worker from start to end. This is what
 * `audiosocket echo --workers N` does for the CLI commands.
 *
 *   npm run build && node build/examples/cluster.js
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { createServer, type Call } from 'audiosocket';

/** The per-call logic: the same code runs in every worker. */
function handler(call: Call): void {
  call.on('audio', (frame) => call.write(frame.payload, frame.format));
}

const WORKERS = Number(process.env.WORKERS ?? availableParallelism());

if (cluster.isPrimary) {
  for (let i = 0; i < WORKERS; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (!shuttingDown) {
      console.error(`worker ${worker.process.pid} died (${signal ?? code}), starting another`);
      cluster.fork();
    }
  });
  let shuttingDown = false;
  // Ctrl-C reaches every process of the group; workers hang up their own calls.
  process.once('SIGINT', () => (shuttingDown = true));
  process.once('SIGTERM', () => {
    shuttingDown = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
  });
} else {
  const server = createServer(handler);
  await server.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 9092) });
  const stop = async (): Promise<void> => {
    await server.close(); // every live call gets a hangup message first
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}
