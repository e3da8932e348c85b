/**
 * Gateway benchmark: N calls through `audiosocket gateway` to a local Twilio echo bot, side by
 * side in the same run (ABBA) with the same N calls to `audiosocket echo` directly. Both carry
 * the load generator's G.711-exact payload (`--g711`), so every frame that went caller -> gateway
 * (u-law) -> bot -> gateway (back to slin) -> caller is verified byte for byte, and lost frames
 * are counted. Reports the gateway's CPU per call against the direct echo's, and the round trip
 * the gateway and the bot add.
 *
 * Cores (2-core machine): the server under test on core 0; the load generator and the bot on
 * core 1, so the server's CPU is its own. The bot's CPU is reported apart.
 *
 *   node build/bench/gateway-compare.js --calls 200 --duration 20 --rounds 2
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { compare, formatCompare, sideBySide, SIDE_BY_SIDE_ARGS } from './echo-compare.js';
import { freePort, spawnServer } from './lib/proc.js';

const BOT_JS = fileURLToPath(new URL('./twilio-echo-bot.js', import.meta.url));
const CLI_JS = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: SIDE_BY_SIDE_ARGS });
  const pin = !values['no-pin'];
  const botPort = await freePort();
  const bot = await spawnServer({
    argv: [process.execPath, BOT_JS, '--port', String(botPort)],
    port: botPort,
    ...(pin ? { core: 1 } : {}),
  });
  const botCpu0 = bot.sample()?.cpuSec ?? 0;
  try {
    const result = await compare(
      sideBySide(values, {
        floor: `node ${CLI_JS} echo --quiet --host 127.0.0.1 --port {port}`,
        target: `node ${CLI_JS} gateway --quiet --bot ws://127.0.0.1:${botPort}/media --host 127.0.0.1 --port {port}`,
        targetName: 'gateway',
        g711: true,
        // Callers speak 1 s after connecting, once the bot's connection is up: an echo bot would
        // return the audio kept while it connects as a standing delay (the caller's input never
        // pauses), which is not the gateway's round trip. Both servers get the same load.
        audioDelayMs: 1000,
      }),
    );
    const botCpu = (bot.sample()?.cpuSec ?? 0) - botCpu0;
    const s = result.summary;
    process.stdout.write(
      formatCompare(result).replace('ratio gateway/floor', 'ratio gateway/direct echo') +
        `\nround trip the gateway and the bot add: p50 ${(s.target.rttMs.p50 - s.floor.rttMs.p50).toFixed(2)} ms, ` +
        `p99 ${(s.target.rttMs.p99 - s.floor.rttMs.p99).toFixed(2)} ms over the direct echo` +
        `\nbot (core 1, not in the ratio): ${botCpu.toFixed(1)} cpu-s over the whole run\n`,
    );
    if (values.out !== undefined) writeFileSync(values.out, JSON.stringify({ ...result, botCpuSec: botCpu }, null, 2) + '\n');
    return s.ok ? 0 : 1;
  } finally {
    await bot.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`gateway-compare: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(2);
    },
  );
}
