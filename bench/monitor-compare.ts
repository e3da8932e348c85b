/**
 * What the monitor page costs: N calls to `audiosocket echo` with and without `--monitor`, the
 * two servers at the same time on the server core (each under its own load generator: the
 * difference sought is a few %, under the drift of this machine's speed between runs one after
 * the other), with a page open on the live feed of the monitored one (an SSE client in this
 * process, on core 1 with the load generators, reading every tick).
 *
 *   node build/bench/monitor-compare.js --calls 200 --duration 20 --rounds 4
 */
import http from 'node:http';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { compare, formatCompare, sideBySide, SIDE_BY_SIDE_ARGS } from './echo-compare.js';
import { freePort } from './lib/proc.js';

const CLI_JS = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** Keeps a page open on the feed whenever the monitor is up: reconnects until stopped; counts ticks. */
function openPage(port: number): { ticks: () => number; stop: () => void } {
  let ticks = 0;
  let stopped = false;
  let req: http.ClientRequest | undefined;
  const connect = (): void => {
    if (stopped) return;
    req = http.get({ host: '127.0.0.1', port, path: '/events' }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => (ticks += d.split('event: tick').length - 1));
      res.on('end', () => setTimeout(connect, 200));
    });
    req.on('error', () => setTimeout(connect, 200));
  };
  connect();
  return {
    ticks: () => ticks,
    stop: () => {
      stopped = true;
      req?.destroy();
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: SIDE_BY_SIDE_ARGS });
  const monitorPort = await freePort();
  const page = openPage(monitorPort);
  try {
    const result = await compare(
      sideBySide(
        { ...values, together: true },
        {
          floor: `node ${CLI_JS} echo --quiet --host 127.0.0.1 --port {port}`,
          target: `node ${CLI_JS} echo --quiet --monitor 127.0.0.1:${monitorPort} --host 127.0.0.1 --port {port}`,
          targetName: 'monitored',
          // Audio starts after the keep-alive has run for a while: a call whose first frames come
          // in a burst (the ramp-up's stalls, two servers on one core) keeps that delay while its
          // caller talks without a pause (docs/pacing.md), and how many calls do is luck, which
          // the monitored server's work at ramp-up tilted (per-call mean round trip p90 73-116 ms
          // against 1-27 ms without the monitor, two runs; with the audio 3 s later, 1 ms both).
          audioDelayMs: 2000,
        },
      ),
    );
    process.stdout.write(
      formatCompare(result).replace('ratio monitored/floor', 'ratio monitored/unmonitored') +
        `\npage: ${page.ticks()} feed ticks read during the monitored runs\n`,
    );
    if (values.out !== undefined) writeFileSync(values.out, JSON.stringify(result, null, 2) + '\n');
    return result.summary.ok ? 0 : 1;
  } finally {
    page.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`monitor-compare: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(2);
    },
  );
}
