/** Small helpers of the Asterisk suite that must not depend on the library under test. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Runs `node script ...args` and collects its stdout lines; `events()` parses the JSON ones (the CLI's `--json`). */
export function spawnJsonLines(
  script: string,
  args: string[],
): { child: ChildProcessWithoutNullStreams; lines: string[]; events: () => Array<Record<string, unknown>> } {
  const child = spawn(process.execPath, [script, ...args], { stdio: 'pipe' });
  const lines: string[] = [];
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  const events = (): Array<Record<string, unknown>> =>
    lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  return { child, lines, events };
}

export function formatUuidBytes(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Bounded wait for a predicate, polled every `everyMs`. */
export async function until<T>(predicate: () => T | undefined | false, timeoutMs: number, what: string, everyMs = 10): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = predicate();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** monitorEventLoopDelay's sampling interval, in ms */
export const LOOP_SAMPLE_MS = 10;

/**
 * How late an event loop ran, in ms, from monitorEventLoopDelay's histogram: Node (20) records
 * the time between two samples, the interval itself included (an idle loop shows 9-11 ms at a
 * resolution of 10), so the interval is taken off.
 */
export function loopLateness(h: { max: number; percentile(p: number): number }): { max: number; p99: number } {
  return { max: Math.max(0, h.max / 1e6 - LOOP_SAMPLE_MS), p99: Math.max(0, h.percentile(99) / 1e6 - LOOP_SAMPLE_MS) };
}

/**
 * Measures how late this process's event loop runs from now until `stop()` (max and p99, in ms).
 * The far legs and the server under test share it: a stall delays what they send and when they
 * see what arrives.
 */
export function eventLoopDelay(): { stop(): { max: number; p99: number } } {
  const h = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS });
  h.enable();
  return {
    stop() {
      h.disable();
      return loopLateness(h);
    },
  };
}

export class AssertionFailure extends Error {}

export function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new AssertionFailure(message);
}
