/**
 * The paced path's own cost per frame, without sockets: N calls each playing a long prompt
 * through `PacedOutbound` on one `FrameScheduler` under a `ManualClock`, against a floor member
 * that does what the hand-written player does per frame (a slice of a pre-framed buffer), in the
 * same process, alternating. The wire is a function that counts frames, optionally after
 * sweeping `--thrash` KiB of memory per frame: what a socket write does to the CPU's caches
 * (the kernel's TCP path runs between two calls' frames), so per-call state is read cold.
 *
 *   node build/bench/outbound-pass.js [--calls 500] [--passes 600] [--thrash 0,1024] [--rounds 2]
 *
 * Hot, this is the JavaScript the library adds per frame; with thrash, the difference to the
 * floor is what reading a call's state from memory costs (bench/README.md).
 */
import { parseArgs } from 'node:util';
import { ManualClock } from '#lib/clock.js';
import { EVERY_PASS, FrameScheduler } from '#lib/outbound/scheduler.js';
import { PacedOutbound } from '#lib/outbound/paced.js';
import { DEFAULT_PACING } from '#lib/outbound/pacer.js';
import type { OutboundEvents } from '#lib/outbound/policy.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '500' },
    passes: { type: 'string', default: '600' },
    thrash: { type: 'string', default: '0,1024' },
    rounds: { type: 'string', default: '2' },
  },
});
const CALLS = Number(values.calls);
const PASSES = Number(values.passes);
const ROUNDS = Number(values.rounds);
const FRAME = 320;
const MESSAGE = FRAME + 3;

const quiet: OutboundEvents = { sent() {}, mark() {}, drain() {}, dropped() {}, warning() {} };
let sink = 0;

function wireFor(thrashKiB: number): { write(message: Buffer): boolean } {
  const memory = new Uint8Array(thrashKiB * 1024);
  return {
    write(message: Buffer): boolean {
      for (let i = 0; i < memory.length; i += 64) sink += memory[i]!;
      sink += message.length;
      return true;
    },
  };
}

async function run(which: 'library' | 'floor', thrashKiB: number): Promise<number> {
  const clock = new ManualClock(0);
  const scheduler = new FrameScheduler(clock);
  const wire = wireFor(thrashKiB);
  let frames = 0;
  // As the connection does while its socket takes every message at once: one memory, reused.
  let memory = Buffer.alloc(0);
  const counting = {
    messageMemory: (size: number): Buffer => (memory.length === size ? memory : (memory = Buffer.allocUnsafeSlow(size))),
    write: (m: Buffer): boolean => (frames++, wire.write(m)),
  };
  const prompt = Buffer.alloc(FRAME * 500, 1);
  if (which === 'library') {
    for (let i = 0; i < CALLS; i++) {
      const out = new PacedOutbound(
        {
          kind: 0x10,
          keepAliveKind: 0x10,
          keepAlive: true,
          prefetchMs: 200,
          highWaterMarkMs: 1000,
          maxQueuedMs: 30_000,
          pacing: { frameMs: 20, ...DEFAULT_PACING },
        },
        scheduler,
        quiet,
        counting,
      );
      out.start();
      void out.play(
        (async function* loop() {
          for (;;) yield prompt;
        })(),
        undefined,
      );
    }
  } else {
    const framed = Buffer.alloc(MESSAGE * 500);
    const calls = Array.from({ length: CALLS }, () => ({ sent: 0 }));
    scheduler.add({
      frameMs: 20,
      onTick() {
        for (const c of calls) {
          const k = c.sent++ % 500;
          counting.write(framed.subarray(k * MESSAGE, (k + 1) * MESSAGE));
        }
        return EVERY_PASS;
      },
    });
  }
  await new Promise((r) => setTimeout(r, 10));
  for (let p = 0; p < 50; p++) {
    clock.advance(20);
    await new Promise((r) => setImmediate(r));
  }
  const f0 = frames;
  const cpu0 = process.cpuUsage();
  for (let p = 0; p < PASSES; p++) {
    clock.advance(20);
    if (p % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / (frames - f0);
}

for (const thrash of values.thrash!.split(',').map(Number)) {
  const lib: number[] = [];
  const floor: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    floor.push(await run('floor', thrash));
    lib.push(await run('library', thrash));
  }
  const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
  const f = mean(floor);
  const l = mean(lib);
  process.stdout.write(
    `${CALLS} calls, thrash ${thrash} KiB/frame: floor ${f.toFixed(3)} µs/frame, library ${l.toFixed(3)} µs/frame, ` +
      `library adds ${(l - f).toFixed(3)} µs/frame (rounds: floor ${floor.map((x) => x.toFixed(3)).join(', ')}; library ${lib.map((x) => x.toFixed(3)).join(', ')})\n`,
  );
}
if (sink === -1) process.stdout.write('');
