/**
 * Soak: N concurrent calls for M minutes against two real CLI servers, half echoing (every
 * frame verified byte for byte) and half hearing a looped prompt from `audiosocket play`
 * (pacing measured), with the servers' RSS sampled over time. Reports loss, corruption, end
 * reasons, pacing and RSS. Stops by itself.
 *
 *   npm run build && node build/bench/soak.js [--calls 500] [--minutes 30] [--out FILE]
 */
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLoad } from './loadgen.js';
import { writeToneWav } from './lib/tone.js';
import { freePort, spawnServer } from './lib/proc.js';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '500' },
    minutes: { type: 'string', default: '30' },
    sample: { type: 'string', default: '60' },
    out: { type: 'string' },
  },
});
const CALLS = Number(values.calls);
const SECONDS = Number(values.minutes) * 60;
const SAMPLE_S = Number(values.sample);

const dir = mkdtempSync(join(tmpdir(), 'audiosocket-soak-'));
const wav = join(dir, 'prompt.wav');
writeToneWav(wav, 523);
const [echoPort, playPort] = [await freePort(), await freePort()];
const cli = [process.execPath, 'dist/cli/main.js'];
const echo = await spawnServer({ argv: [...cli, 'echo', '--port', String(echoPort), '--quiet'], port: echoPort });
const play = await spawnServer({
  argv: [...cli, 'play', wav, '--loop', '--then', 'silence', '--port', String(playPort), '--quiet'],
  port: playPort,
});
const rss: Array<{ atS: number; echoMB: number; playMB: number }> = [];
const t0 = performance.now();
const sampler = setInterval(() => {
  const e = echo.sample();
  const p = play.sample();
  const point = { atS: Math.round((performance.now() - t0) / 1000), echoMB: e?.rssMB ?? NaN, playMB: p?.rssMB ?? NaN };
  rss.push(point);
  console.log(`t=${point.atS}s rss echo ${point.echoMB} MB, play ${point.playMB} MB`);
}, SAMPLE_S * 1000);
const half = Math.floor(CALLS / 2);
const [echoResult, playResult] = await Promise.all([
  runLoad({ port: echoPort, calls: half, durationS: SECONDS, mode: 'echo' }),
  runLoad({ port: playPort, calls: CALLS - half, durationS: SECONDS, mode: 'play', mute: true }),
]);
clearInterval(sampler);
const cpuEcho = echo.sample();
const cpuPlay = play.sample();
await echo.stop();
await play.stop();
rmSync(dir, { recursive: true, force: true });

const summary = {
  calls: CALLS,
  minutes: SECONDS / 60,
  echo: {
    calls: echoResult.calls,
    frames: echoResult.frames,
    rttMs: echoResult.rttMs,
    serverCpuSec: cpuEcho?.cpuSec,
  },
  play: { calls: playResult.calls, play: playResult.play, serverCpuSec: cpuPlay?.cpuSec },
  rss,
  ok: echoResult.ok && playResult.ok,
  problems: [...echoResult.problems, ...playResult.problems],
};
const f = echoResult.frames;
console.log(`\nsoak: ${CALLS} calls for ${SECONDS / 60} min (${half} echo, ${CALLS - half} play)`);
console.log(
  `echo: ${f.sent} frames sent, ${f.verified} verified, ${f.lost} lost, ${f.corrupted} corrupted; rtt p50 ${echoResult.rttMs.p50} p99 ${echoResult.rttMs.p99} ms; closed by ${JSON.stringify(echoResult.calls.closedBy)}`,
);
const p = playResult.play!;
console.log(
  `play: ${p.framesReceived} frames; gap p50 ${p.interArrivalMs.p50} p99 ${p.interArrivalMs.p99} max ${p.interArrivalMs.max} ms; drift ${p.driftMs.min}..${p.driftMs.max} ms; closed by ${JSON.stringify(playResult.calls.closedBy)}`,
);
console.log(`rss echo: ${rss.map((r) => r.echoMB).join(' ')} MB`);
console.log(`rss play: ${rss.map((r) => r.playMB).join(' ')} MB`);
console.log(summary.ok ? 'OK' : `PROBLEMS: ${summary.problems.join('; ')}`);
if (values.out) writeFileSync(values.out, `${JSON.stringify(summary, null, 2)}\n`);
process.exitCode = summary.ok ? 0 : 1;
