/**
 * Shared test helpers (not a test file: the runner only picks up *.test.js).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import type { AudioSocketCall, Call } from '#lib/index.js';

export const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface Running {
  child: ChildProcessWithoutNullStreams;
  port: number;
  lines: string[];
  /** Everything the process wrote to stderr so far (from its start). */
  stderr: () => string;
}

/** Spawns the CLI and waits for its "listening" line; port 0 lets the OS pick. */
export async function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: 'pipe', env: { ...process.env, ...env } });
  const lines: string[] = [];
  let buf = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        const m = /listening on .*:(\d+)$/.exec(line) ?? /"port":(\d+)/.exec(line);
        if (m && line.includes('listening')) resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`CLI exited with ${code}: ${stderr}`)));
  });
  return { child, port, lines, stderr: () => stderr };
}

/** Runs the CLI to completion and returns its exit code and output. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: 'pipe', env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = await once(child, 'exit');
  return { code: code as number, out, err };
}

/** Cuts `bytes` at the given points (taken modulo the length + 1): arbitrary TCP chunking. */
export function cut(bytes: Buffer, points: number[]): Buffer[] {
  const sorted = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of sorted) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

/** The real clock, kept even if a test replaces performance.now. */
const monotonic = performance.now.bind(performance);

/**
 * Waits until `predicate` holds, checking it every few milliseconds (a bounded poll, not a
 * sleep: it returns as soon as the condition is true). Rejects naming `what` after `timeoutMs`,
 * which is generous: it bounds a failure, it is not a timing check, and the suite must pass on
 * a loaded machine.
 */
export async function until(predicate: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  if (predicate()) return;
  const t0 = monotonic();
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      let ok: boolean;
      try {
        ok = predicate();
      } catch (e) {
        reject(e as Error);
        return;
      }
      if (ok) resolve();
      else if (monotonic() - t0 > timeoutMs) reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      else setTimeout(check, 2);
    };
    setTimeout(check, 2);
  });
}

/** Resolves once `predicate()` holds, re-checking whenever `emitter` emits one of `events` (no polling). */
export function untilEmitted(emitter: NodeJS.EventEmitter, events: string[], predicate: () => boolean): Promise<void> {
  if (predicate()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = (): void => {
      if (!predicate()) return;
      for (const e of events) emitter.off(e, check);
      resolve();
    };
    for (const e of events) emitter.on(e, check);
  });
}

/**
 * A distinctive slin test signal of `bytes` bytes (a sine whose pitch depends on `seed`), so a
 * test can tell its audio from silence and from another call's.
 */
export function signal(bytes: number, seed = 1): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes >> 1; i++) b.writeInt16LE(Math.round(8000 * Math.sin((i * seed) / 7)), i * 2);
  return b;
}

/** `events.once` with a deadline: resolves with the event's arguments or rejects naming the event. */
export async function onceWithin(emitter: NodeJS.EventEmitter, event: string, timeoutMs = 10_000): Promise<unknown[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`)), timeoutMs);
  try {
    return await once(emitter, event, { signal: ac.signal });
  } catch (e) {
    throw ac.signal.aborted ? (ac.signal.reason as Error) : e;
  } finally {
    clearTimeout(timer);
  }
}

/** Bytes received on a raw socket, collected so a test can wait for a count. */
export function collect(s: NodeJS.ReadableStream): Buffer[] {
  const got: Buffer[] = [];
  s.on('data', (d: Buffer) => got.push(d));
  return got;
}

/** Total length of collected chunks. */
export const total = (chunks: readonly Uint8Array[]): number => chunks.reduce((n, c) => n + c.length, 0);

/** The call as an AudioSocket call (narrowed by its `transport`; fails the test otherwise). */
export function audioSocketCall(call: Call): AudioSocketCall {
  assert.ok(call.transport === 'audiosocket', `expected an AudioSocket call, got ${call.transport}`);
  return call;
}
