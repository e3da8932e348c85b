/**
 * `--workers N`: runs a server command in N processes that share the listening socket through
 * Node's `cluster` module (the primary accepts and hands connections round-robin to workers).
 * A call lives in one worker from start to end. The primary prints the listening line, forwards
 * SIGINT/SIGTERM so every worker hangs up its calls, and replaces a worker that crashes.
 */
import cluster, { type Worker } from 'node:cluster';
import type { CommonServerArgs } from './options.js';
import { createOutput } from './output.js';

/** True inside a worker started by {@link runPrimary}. */
export const isWorker = cluster.isWorker;

/** Message a worker sends the primary once it listens. */
export interface ListeningMessage {
  type: 'audiosocket:listening';
  host: string;
  port: number;
  family: string;
}

export async function runPrimary(name: string, args: CommonServerArgs, workers: number): Promise<void> {
  const output = createOutput(args);
  let stopping = false;
  let announced = false;
  let ready = 0;
  const live = new Set<Worker>();
  const listening = new WeakSet<Worker>();
  let restarts: number[] = [];
  let failure: (() => void) | null = null;
  const fork = (): Worker => {
    const worker = cluster.fork();
    live.add(worker);
    worker.on('message', (msg: ListeningMessage) => {
      if (msg?.type !== 'audiosocket:listening') return;
      listening.add(worker);
      // Announce once every worker is ready, so the first calls are spread over all of them.
      if (announced || ++ready < workers) return;
      announced = true;
      const shown = msg.family === 'IPv6' ? `[${msg.host}]:${msg.port}` : `${msg.host}:${msg.port}`;
      output.event(
        'listening',
        { command: name, host: msg.host, port: msg.port, workers },
        `audiosocket ${name} listening on ${shown} (${workers} workers)`,
      );
    });
    worker.on('exit', (code, signal) => {
      live.delete(worker);
      if (stopping) return;
      const now = Date.now();
      restarts = restarts.filter((t) => now - t < 10_000);
      if (!listening.has(worker) || restarts.length >= 5) {
        // It could not even start (port in use, bad option), or it keeps crashing: restarting
        // would loop forever. Stop everything and say so.
        // A worker that could not start printed why (a usage error, exit 2): that status stands.
        const usageError = !listening.has(worker) && code === 2;
        if (!usageError) {
          output.error(
            `worker ${worker.process.pid} exited (${signal ?? code}) ${listening.has(worker) ? 'too often' : 'before listening'}; stopping`,
          );
        }
        process.exitCode = usageError ? 2 : 1;
        failure?.();
        return;
      }
      restarts.push(now);
      output.error(`worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
      fork();
    });
    return worker;
  };
  for (let i = 0; i < workers; i++) fork();

  await new Promise<void>((resolve) => {
    /** Stops every worker: on a signal (said), or on a failure already reported (`undefined`). */
    const stop = (signal: NodeJS.Signals | undefined): void => {
      if (stopping) {
        for (const w of live) w.process.kill('SIGKILL');
        process.exit(130);
      }
      stopping = true;
      if (signal !== undefined) output.event('closing', { signal, workers: live.size }, `${signal}: closing ${live.size} worker(s)`);
      for (const w of live) w.process.kill('SIGTERM');
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    failure = () => stop(undefined);
    if (live.size === 0) resolve();
    cluster.on('exit', () => {
      if (stopping && live.size === 0) {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        if (process.exitCode === undefined || process.exitCode === 0) output.event('closed', {}, 'all workers closed');
        resolve();
      }
    });
  });
}
