/**
 * Shared frame scheduler vs one timer per call, side by side in the same process.
 *
 * Each "call" does what a paced call does per 20 ms slot, minus the socket: build one 323-byte
 * message. We measure CPU time per call-second and how late each call's slot runs relative to its
 * grid instant (p50/p99/max), for N = 100, 1000, 5000 (or --calls a,b,c), alternating the two
 * strategies so machine noise hits both alike.
 *
 *   node build/bench/scheduler.js [--calls 100,1000,5000] [--seconds 5] [--rounds 2]
 */
import { parseArgs } from 'node:util';
import { EVERY_PASS, FrameScheduler, type Paced } from '#lib/outbound/scheduler.js';
import { systemClock } from '#lib/clock.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '100,1000,5000' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '2' },
  },
});
const CALLS = values.calls!.split(',').map(Number);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const FRAME_MS = 20;

interface Result {
  cpuMsPerCallSecond: number;
  late: number[];
  slots: number;
}

function work(): number {
  const b = Buffer.allocUnsafe(323);
  b[0] = 0x10;
  b[1] = 1;
  b[2] = 64;
  return b.length;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function runShared(n: number): Promise<Result> {
  const scheduler = new FrameScheduler(systemClock);
  const late: number[] = [];
  let slots = 0;
  const members: Paced[] = [];
  for (let i = 0; i < n; i++) {
    members.push({
      frameMs: FRAME_MS,
      onTick(gridTime) {
        late.push(performance.now() - gridTime);
        slots += work() > 0 ? 1 : 0;
        return EVERY_PASS;
      },
    });
  }
  const cpu0 = process.cpuUsage();
  for (const m of members) scheduler.add(m);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  for (const m of members) scheduler.delete(m);
  const cpu = process.cpuUsage(cpu0);
  return { cpuMsPerCallSecond: (cpu.user + cpu.system) / 1000 / n / SECONDS, late, slots };
}

async function runPerCall(n: number): Promise<Result> {
  const late: number[] = [];
  let slots = 0;
  let stop = false;
  const timers = new Set<NodeJS.Timeout>();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    // Each call starts at its own phase, like calls arriving at random times, and re-arms a
    // drift-free timer to its own next grid instant.
    const t0 = performance.now() + Math.random() * FRAME_MS;
    let k = 0;
    const arm = (): void => {
      const due = t0 + k * FRAME_MS;
      const t = setTimeout(
        () => {
          timers.delete(t);
          if (stop) return;
          late.push(performance.now() - due);
          slots += work() > 0 ? 1 : 0;
          k = Math.max(k + 1, Math.ceil((performance.now() - t0) / FRAME_MS));
          arm();
        },
        Math.max(0, due - performance.now()),
      );
      timers.add(t);
    };
    arm();
  }
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  stop = true;
  for (const t of timers) clearTimeout(t);
  const cpu = process.cpuUsage(cpu0);
  return { cpuMsPerCallSecond: (cpu.user + cpu.system) / 1000 / n / SECONDS, late, slots };
}

function summary(r: Result): string {
  const s = r.late.sort((a, b) => a - b);
  return `cpu ${(r.cpuMsPerCallSecond * 1000).toFixed(1)} µs/call-s  late p50 ${percentile(s, 50).toFixed(2)} p99 ${percentile(s, 99).toFixed(2)} max ${s.at(-1)!.toFixed(2)} ms  slots ${r.slots}`;
}

console.log(`shared scheduler vs per-call timers: ${SECONDS} s per run, ${ROUNDS} round(s), 20 ms frames`);
const rows: string[] = [];
for (const n of CALLS) {
  const shared: Result[] = [];
  const perCall: Result[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    shared.push(await runShared(n));
    perCall.push(await runPerCall(n));
  }
  const cpuS = shared.reduce((a, x) => a + x.cpuMsPerCallSecond, 0) / ROUNDS;
  const cpuP = perCall.reduce((a, x) => a + x.cpuMsPerCallSecond, 0) / ROUNDS;
  const merge = (rs: Result[]): Result => ({
    cpuMsPerCallSecond: rs.reduce((a, x) => a + x.cpuMsPerCallSecond, 0) / rs.length,
    late: rs.flatMap((x) => x.late),
    slots: rs.reduce((a, x) => a + x.slots, 0),
  });
  console.log(`N=${n}`);
  console.log(`  shared   ${summary(merge(shared))}`);
  console.log(`  per-call ${summary(merge(perCall))}`);
  console.log(`  per-call / shared CPU = ${(cpuP / cpuS).toFixed(2)}x`);
  rows.push(`| ${n} | ${(cpuS * 1000).toFixed(1)} | ${(cpuP * 1000).toFixed(1)} | ${(cpuP / cpuS).toFixed(2)} |`);
}
console.log('\n| calls | shared µs/call-s | per-call µs/call-s | ratio |\n|---|---|---|---|');
console.log(rows.join('\n'));
