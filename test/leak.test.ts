/**
 * 2,000 call cycles over loopback (echo, hangups from either side, resets, handshakes that never
 * finish, iterators, write streams, prompts): heap, active handles, listeners and live calls
 * must come back to where they started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
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
} from './fault-helpers.js';

test('2,000 call cycles leave no heap, handles, listeners or calls behind', { timeout: 120_000 }, async (t) => {
  const gc = getGc();
  const { server, port } = await startServer(leakHandler, { handshakeTimeout: 1000, hangupTimeout: 1000 }, t);
  const warnings: unknown[] = [];
  server.on('handlerError', (err) => warnings.push(err));

  // Warm-up: JIT, pools and lazily created caches are not leaks.
  await runCycles(server, port, 300);
  await serverIdle(server);
  await sleep(50); // let the client sides finish closing before counting handles (a settle window, not a condition)
  const heap0 = await settledHeap(gc);
  const handles0 = HANDLES().length;
  const resources0 = resourceCounts();
  const listeners0 = listenerCounts(server);
  const processListeners0 = listenerCounts(process);
  const calls0 = server.stats.totalCalls;
  const failures0 = server.stats.handshakeFailures;

  const CYCLES = 2000;
  const t0 = performance.now();
  await runCycles(server, port, CYCLES, 8, 300);
  const took = performance.now() - t0;
  await serverIdle(server);
  await sleep(50); // let the client sides finish closing before counting handles (a settle window, not a condition)
  const heap1 = await settledHeap(gc);

  const handles1 = HANDLES().length;
  t.diagnostic(
    `${CYCLES} cycles in ${took.toFixed(0)} ms; heap ${(heap0 / 1048576).toFixed(2)} -> ${(heap1 / 1048576).toFixed(2)} MB ` +
      `(${((heap1 - heap0) / CYCLES).toFixed(0)} B/cycle); handles ${handles0} -> ${handles1}`,
  );
  assert.equal(server.calls.size, 0);
  assert.equal(server.stats.pendingHandshakes, 0);
  let withoutUuid = 0;
  for (let i = 300; i < 300 + CYCLES; i++) if (i % 6 === 4) withoutUuid++;
  assert.equal(server.stats.totalCalls - calls0, CYCLES - withoutUuid, 'every cycle with a UUID became a call');
  assert.equal(server.stats.handshakeFailures - failures0, withoutUuid, 'every cycle without a UUID is a handshake failure');
  assert.ok(handles1 <= handles0, `active handles ${handles0} -> ${handles1}`);
  assert.deepEqual(resourceCounts(), resources0, 'active resources (sockets, timers) are back to the baseline');
  assert.deepEqual(listenerCounts(server), listeners0, 'server listeners unchanged');
  assert.deepEqual(listenerCounts(process), processListeners0, 'process listeners unchanged');
  assert.deepEqual(warnings, []);
  // A leaked Call (socket, parser, outbound queue, closures) costs several kB; 2,000 of them would be
  // many MB. Allow 1 kB per cycle for allocator noise.
  assert.ok(heap1 - heap0 < CYCLES * 1024, `heap grew ${((heap1 - heap0) / 1024).toFixed(0)} kB over ${CYCLES} cycles`);
  await server.close();
});
