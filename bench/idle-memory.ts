/**
 * Memory per idle call: RSS of an `audiosocket echo` process before and after N calls that sent
 * their UUID and nothing else (keep-alive silence still flows to them). With `--heap`, also what
 * the V8 heap holds per call, by kind of object, from heap snapshots taken before and after
 * (instead of RSS, which the snapshots themselves inflate).
 *
 *   npm run build && node build/bench/idle-memory.js [--calls 1000] [--heap]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { freePort, spawnServer, type Spawned } from './lib/proc.js';
import { censusOf, perCall, type HeapCensus } from './lib/heap-snapshot.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '1000' }, heap: { type: 'boolean', default: false } } });
const CALLS = Number(values.calls);
const port = await freePort();
const snapshotDir = values.heap ? fs.mkdtempSync(path.join(os.tmpdir(), 'idle-heap-')) : undefined;
const node = snapshotDir === undefined ? [] : ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshotDir}`];
const server = await spawnServer({
  argv: [process.execPath, ...node, 'dist/cli/main.js', 'echo', '--port', String(port), '--quiet'],
  port,
});
await new Promise((r) => setTimeout(r, 1000));
const before = server.sample()!;
const heapBefore = snapshotDir === undefined ? undefined : await snapshot(server, snapshotDir);
const sockets: net.Socket[] = [];
for (let i = 0; i < CALLS; i++) {
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('data', () => {}); // read (and drop) the keep-alive, as Asterisk would
  s.on('error', () => {});
  s.write(Buffer.concat([Buffer.from([1, 0, 16]), randomBytes(16)]));
  sockets.push(s);
  if (i % 100 === 99) await new Promise((r) => setTimeout(r, 50));
}
await new Promise((r) => setTimeout(r, 5000));
const after = server.sample()!;
const perCallKiB = ((after.rssMB - before.rssMB) * 1024) / CALLS;
if (snapshotDir === undefined) {
  console.log(`RSS ${before.rssMB} MB with no calls, ${after.rssMB} MB with ${CALLS} idle calls: ${perCallKiB.toFixed(1)} KiB per call`);
} else {
  console.log('RSS not measured: writing a heap snapshot takes memory of its own (run without --heap for RSS)');
}
if (snapshotDir !== undefined && heapBefore !== undefined) {
  const { rows, bytes } = perCall(heapBefore, await snapshot(server, snapshotDir), CALLS);
  console.log(`V8 heap: ${bytes.toFixed(0)} bytes per call (shallow sizes, after - before); the largest:`);
  for (const [kind, count, size] of rows.slice(0, 15))
    console.log(`${size.toFixed(0).padStart(8)} B ${count.toFixed(2).padStart(6)} x ${kind}`);
  fs.rmSync(snapshotDir, { recursive: true, force: true });
}
for (const s of sockets) s.destroy();
await server.stop();

/** Has the server write a heap snapshot (SIGUSR2) and reads it once written whole. */
async function snapshot(spawned: Spawned, dir: string): Promise<HeapCensus> {
  const known = new Set(fs.readdirSync(dir));
  spawned.child.kill('SIGUSR2');
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    const file = fs.readdirSync(dir).find((f) => !known.has(f) && f.endsWith('.heapsnapshot'));
    if (file === undefined) continue;
    // V8 writes the file in one go from the signal handler; it is whole once its size stops changing.
    const full = path.join(dir, file);
    let size = -1;
    while (size !== fs.statSync(full).size) {
      size = fs.statSync(full).size;
      await new Promise((r) => setTimeout(r, 500));
    }
    return censusOf(full);
  }
}
