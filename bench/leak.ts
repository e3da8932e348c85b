/**
 * Leak bench: call cycles over loopback (echo, hangups from either side, resets, handshakes that
 * never finish, iterators, write streams, prompts), with heap (after full GC), RSS, active
 * handles and live calls reported at checkpoints, so a slope shows up as a trend.
 *
 *   node build/bench/leak.js [--cycles 10000] [--lanes 8] [--checkpoints 5]
 *
 * Exit code 1 if calls, handles or resources are left behind at the end, or the heap grew by more
 * than 1 kB per cycle after the warm-up.
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  getGc,
  HANDLES,
  leakHandler,
  listenerCounts,
  resourceCounts,
  runCycles,
  serverIdle,
  settledHeap,
  startServer,
} from '../test/fault-helpers.js';

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '10000' },
    lanes: { type: 'string', default: '8' },
    checkpoints: { type: 'string', default: '5' },
  },
});
const CYCLES = Number(values.cycles);
const LANES = Number(values.lanes);
const CHECKPOINTS = Math.max(1, Number(values.checkpoints));
const WARMUP = 500;

const mb = (n: number): string => (n / 1048576).toFixed(2);

const gc = getGc();
const { server, port } = await startServer(leakHandler, { handshakeTimeout: 1000, hangupTimeout: 1000 });
let handlerErrors = 0;
server.on('handlerError', () => handlerErrors++);

// The first line out opens stdout, which is a handle of its own when stdout is a pipe: before the baseline.
console.log(`leak bench: ${CYCLES} cycles on ${LANES} lanes after ${WARMUP} warm-up cycles`);
await runCycles(server, port, WARMUP, LANES);
await serverIdle(server);
await sleep(50);
const heap0 = await settledHeap(gc);
const rss0 = process.memoryUsage().rss;
const handles0 = HANDLES().length;
const resources0 = JSON.stringify(resourceCounts());
const listeners0 = JSON.stringify(listenerCounts(server));
console.log(`baseline: heap ${mb(heap0)} MB, rss ${mb(rss0)} MB, handles ${handles0}, resources ${resources0}`);

const t0 = performance.now();
let done = 0;
const step = Math.ceil(CYCLES / CHECKPOINTS);
while (done < CYCLES) {
  const n = Math.min(step, CYCLES - done);
  await runCycles(server, port, n, LANES, WARMUP + done);
  done += n;
  await serverIdle(server);
  await sleep(20);
  const heap = await settledHeap(gc);
  const m = process.memoryUsage();
  console.log(
    `after ${String(done).padStart(6)} cycles (${((performance.now() - t0) / 1000).toFixed(1)} s): heap ${mb(heap)} MB ` +
      `(${heap - heap0 >= 0 ? '+' : ''}${((heap - heap0) / 1024).toFixed(0)} kB, ${((heap - heap0) / done).toFixed(0)} B/cycle), ` +
      `rss ${mb(m.rss)} MB (${m.rss - rss0 >= 0 ? '+' : ''}${mb(m.rss - rss0)}), handles ${HANDLES().length}, live calls ${server.calls.size}`,
  );
}
const secs = (performance.now() - t0) / 1000;
const heap1 = await settledHeap(gc);
const problems: string[] = [];
if (server.calls.size !== 0 || server.stats.pendingHandshakes !== 0) problems.push('calls or handshakes left');
if (HANDLES().length > handles0) problems.push(`handles ${handles0} -> ${HANDLES().length}`);
if (JSON.stringify(resourceCounts()) !== resources0) problems.push(`resources ${resources0} -> ${JSON.stringify(resourceCounts())}`);
if (JSON.stringify(listenerCounts(server)) !== listeners0) problems.push('server listeners changed');
if (handlerErrors > 0) problems.push(`${handlerErrors} handler errors`);
if (heap1 - heap0 > CYCLES * 1024) problems.push(`heap grew ${((heap1 - heap0) / 1024).toFixed(0)} kB`);
console.log(
  `${CYCLES} cycles in ${secs.toFixed(1)} s (${(CYCLES / secs).toFixed(0)} cycles/s); calls ${server.stats.totalCalls}, ` +
    `handshake failures ${server.stats.handshakeFailures}; heap delta ${((heap1 - heap0) / 1024).toFixed(0)} kB ` +
    `(${((heap1 - heap0) / CYCLES).toFixed(0)} B/cycle), rss delta ${mb(process.memoryUsage().rss - rss0)} MB, ` +
    `handles ${handles0} -> ${HANDLES().length}`,
);
await server.close();
if (problems.length > 0) {
  console.log(`FAIL: ${problems.join('; ')}`);
  process.exitCode = 1;
} else {
  console.log('no leak detected');
}
