/**
 * Paced playback at scale: N concurrent calls each hearing a looped prompt from
 * `audiosocket play`, while the load generator (its own codec, no library code) records per call
 * the inter-arrival time of audio frames and the drift over the run. Reports the server's CPU
 * and RSS. Server on core 0, this process on core 1 where taskset exists.
 *
 *   npm run build && node build/bench/pacing.js [--calls 100,500,1000] [--duration 60]
 *
 * The callers are muted (UUID only) so that the generator spends its time measuring arrivals.
 */
import { parseArgs } from 'node:util';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad } from './loadgen.js';
import { writeToneWav } from './lib/tone.js';
import { freePort, pinPid, spawnServer } from './lib/proc.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '100,500,1000' },
    duration: { type: 'string', default: '60' },
    out: { type: 'string' },
  },
});
const CALLS = values.calls!.split(',').map(Number);
const DURATION = Number(values.duration);

const dir = mkdtempSync(join(tmpdir(), 'audiosocket-pacing-'));
const wav = join(dir, 'tone.wav');
writeToneWav(wav, 440);
pinPid(process.pid, 1);
const rows: string[] = [];
const results: unknown[] = [];
try {
  for (const calls of CALLS) {
    const port = await freePort();
    const server = await spawnServer({
      argv: [
        process.execPath,
        'dist/cli/main.js',
        'play',
        wav,
        '--loop',
        '--then',
        'silence',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--quiet',
      ],
      port,
      core: 0,
    });
    let s0: ReturnType<typeof server.sample> = null;
    let s1: ReturnType<typeof server.sample> = null;
    const result = await runLoad({
      port,
      calls,
      durationS: DURATION,
      mode: 'play',
      mute: true,
      onEvent: (e) => {
        if (e === 'steady') s0 = server.sample();
        if (e === 'stop-sending') s1 = server.sample();
      },
    });
    await server.stop();
    const cpu =
      s0 && s1
        ? ((s1 as { cpuSec: number }).cpuSec - (s0 as { cpuSec: number }).cpuSec) /
          (((s1 as { t: number }).t - (s0 as { t: number }).t) / 1000)
        : NaN;
    const p = result.play!;
    const line =
      `| ${calls} | ${p.interArrivalMs.p50.toFixed(2)} | ${p.interArrivalMs.p99.toFixed(2)} | ${p.interArrivalMs.max.toFixed(1)} | ` +
      `${p.driftMs.min.toFixed(1)} / ${p.driftMs.max.toFixed(1)} | ${(cpu * 100).toFixed(1)} % | ${(s1 as { rssMB: number } | null)?.rssMB ?? '?'} MB | ${result.loadgen.cpuPercentOfCore.toFixed(0)} % |`;
    console.log(line);
    rows.push(line);
    results.push({
      calls,
      durationS: DURATION,
      serverCpuPercent: cpu * 100,
      serverRssMB: (s1 as { rssMB: number } | null)?.rssMB,
      play: p,
      loadgen: result.loadgen,
    });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\nPaced playback, ${DURATION} s per run (frames every 20 ms expected):\n`);
console.log('| calls | gap p50 ms | gap p99 ms | gap max ms | drift min / max ms | server CPU (one core) | server RSS | loadgen CPU |');
console.log('|---|---|---|---|---|---|---|---|');
console.log(rows.join('\n'));
if (values.out) writeFileSync(values.out, `${JSON.stringify(results, null, 2)}\n`);
