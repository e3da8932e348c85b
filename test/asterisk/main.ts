/**
 * `npm run test:asterisk`: the library against a real Asterisk (see docs/testing-with-asterisk.md).
 *
 *   ASTERISK_BIN=/opt/asterisk/sbin/asterisk npm run test:asterisk
 *   npm run test:asterisk -- --only "app echo,Dial echo"     run some scenarios
 *   npm run test:asterisk -- --fault split                     every scenario against a broken server (all should FAIL)
 *   npm run test:asterisk -- --faults                          the whole matrix: every scenario x split, burst, wrong-kind
 *
 * One private Asterisk per run, stopped and removed at the end, on failure and on Ctrl-C.
 */
import { PrivateAsterisk } from './asterisk.js';
import { FaultProxy, FAULTS, type Fault } from './faults.js';
import { quiesce, scenarios as audiosocketScenarios, type Ctx, type Metrics, type Scenario } from './scenarios.js';
import { ms } from './signals.js';
import { recipeScenarios } from './recipe-scenarios.js';
import { WEBSOCKET_DIALPLAN, websocketScenarios } from './websocket-scenarios.js';
import { GATEWAY_DIALPLAN, gatewayScenarios } from './gateway-scenarios.js';
import { SPEECH_DIALPLAN, speechScenarios } from './speech-scenarios.js';

const scenarios: Scenario[] = [...audiosocketScenarios, ...websocketScenarios, ...gatewayScenarios, ...speechScenarios, ...recipeScenarios];

const bin = process.env.ASTERISK_BIN;
if (!bin) {
  process.stderr.write(
    'test:asterisk: ASTERISK_BIN is not set: give the path of an Asterisk 22.10.1 binary, e.g. ASTERISK_BIN=/opt/asterisk/sbin/asterisk npm run test:asterisk (how to build one: docs/testing-with-asterisk.md)\n',
  );
  process.exit(2);
}

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = arg('--only')
  ?.split(',')
  .map((s) => s.trim().toLowerCase());
const oneFault = arg('--fault') as Fault | undefined;
if (oneFault !== undefined && !FAULTS.includes(oneFault)) {
  process.stderr.write(`test:asterisk: --fault must be one of ${FAULTS.join(', ')}\n`);
  process.exit(2);
}
const matrix = args.includes('--faults');
const SCENARIO_TIMEOUT = 30000;

let ast: PrivateAsterisk;
try {
  ast = new PrivateAsterisk({ bin, websocket: { clients: {} }, dialplan: WEBSOCKET_DIALPLAN + GATEWAY_DIALPLAN + SPEECH_DIALPLAN });
} catch (e) {
  process.stderr.write(`test:asterisk: ${(e as Error).message} (see docs/testing-with-asterisk.md)\n`);
  process.exit(2);
}

let cleaned = false;
const cleanupSync = (): void => {
  if (cleaned) return;
  cleaned = true;
  ast.stopSync();
};
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`\ntest:asterisk: ${sig}: stopping the private Asterisk and removing ${ast.dir}\n`);
    cleanupSync();
    process.exit(130);
  });
}

const fmt = (m: Metrics): string =>
  Object.entries(m)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');

interface Outcome {
  ok: boolean;
  error?: string;
  metrics: Metrics;
  /** timing figures outside their typical range (reported, not failures) */
  atypical: string[];
  ms: number;
}

async function runScenario(s: Scenario, fault: Fault | undefined): Promise<Outcome> {
  const cleanups: Array<() => unknown> = [];
  const metrics: Metrics = {};
  const atypical: string[] = [];
  const ctx: Ctx = {
    ast,
    fault,
    metrics,
    timing(label, value, typical, unit = ' ms') {
      const show = (x: number): string => (unit === ' ms' ? ms(x) : `${x}${unit}`);
      metrics[label] = show(value);
      const outside = !Number.isFinite(value) || value < (typical.min ?? -Infinity) || value > (typical.max ?? Infinity);
      if (!outside) return;
      const range =
        typical.min !== undefined && typical.max !== undefined
          ? `${typical.min}-${typical.max}${unit}`
          : typical.max !== undefined
            ? `≤ ${typical.max}${unit}`
            : `≥ ${typical.min}${unit}`;
      atypical.push(`${label} ${show(value)} (typical ${range})`);
    },
    defer: (fn) => cleanups.push(fn),
    async expose(port) {
      if (!fault) return port;
      const proxy = await new FaultProxy(port, fault).listen();
      cleanups.push(() => proxy.close());
      return proxy.port;
    },
  };
  if (!ast.running) {
    return { ok: false, error: `Asterisk is no longer running:\n${ast.console.slice(-10).join('\n')}`, metrics: {}, atypical: [], ms: 0 };
  }
  const t0 = performance.now();
  const logFrom = ast.log.length;
  let error: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      s.run(ctx),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`scenario timed out after ${SCENARIO_TIMEOUT} ms`)), SCENARIO_TIMEOUT);
      }),
    ]);
  } catch (e) {
    error = (e as Error).message;
  } finally {
    clearTimeout(timer);
  }
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch {
      // cleanup is best effort
    }
  }
  if (ast.running) await quiesce(ast);
  if (error !== undefined && (process.env.AST_LOG || !fault)) {
    const lines = ast.log
      .slice(logFrom)
      .filter((l) => !/TEST /.test(l.text))
      .slice(-12);
    if (lines.length) error += `\n     Asterisk log:\n${lines.map((l) => `       ${l.text}`).join('\n')}`;
  }
  return { ok: error === undefined, error, metrics, atypical, ms: performance.now() - t0 };
}

async function main(): Promise<number> {
  const t0 = performance.now();
  const selected = scenarios.filter((s) => !only || only.some((o) => s.name.toLowerCase().includes(o)));
  process.stdout.write(`test:asterisk: ${await ast.version()} (${ast.bin})\n`);
  await ast.start();
  process.stdout.write(`private Asterisk pid ${ast.pid}, configs in ${ast.dir}\n`);
  for (const l of ast.logMatching(/ERROR|WARNING/)) process.stdout.write(`  start-up: ${l.text}\n`);
  process.stdout.write('\n');
  let failures = 0;
  if (!matrix && !oneFault) {
    let atypical = 0;
    for (const s of selected) {
      const r = await runScenario(s, undefined);
      if (!r.ok) failures++;
      if (r.atypical.length) atypical++;
      process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'} ${s.name} (${(r.ms / 1000).toFixed(1)} s)\n`);
      if (Object.keys(r.metrics).length) process.stdout.write(`     ${fmt(r.metrics)}\n`);
      if (r.atypical.length) process.stdout.write(`     timing outside the typical range (not a failure): ${r.atypical.join(', ')}\n`);
      if (r.error) process.stdout.write(`     error: ${r.error}\n`);
    }
    process.stdout.write(
      `\n${selected.length - failures} passed, ${failures} failed, in ${((performance.now() - t0) / 1000).toFixed(1)} s` +
        `${atypical ? `; ${atypical} with timing outside the typical range (reported, not failures)` : ''}\n`,
    );
    return failures ? 1 : 0;
  }
  // Fault runs: the server is deliberately broken; a scenario "passes" this check when it FAILS.
  const faults = oneFault ? [oneFault] : FAULTS;
  const rows: string[] = [];
  let undetected = 0;
  // The fault proxy breaks AudioSocket framing; the chan_websocket scenarios are not in this matrix.
  for (const s of selected.filter((x) => !x.noServer && x.transport !== 'websocket')) {
    const cells: string[] = [];
    let caught = 0;
    for (const f of faults) {
      const r = await runScenario(s, f);
      if (!r.ok) caught++;
      // timing is reported, not asserted: a fault seen only in the timing figures is "flagged"
      const verdict = !r.ok ? 'FAILED' : r.atypical.length ? 'passed, timing flagged' : 'passed (not detected)';
      cells.push(`${f}: ${verdict}`);
      process.stdout.write(
        `${r.ok ? 'passed' : 'FAILED'} ${s.name} [${f}] (${(r.ms / 1000).toFixed(1)} s)` +
          `${r.atypical.length ? `\n     timing outside the typical range: ${r.atypical.join(', ')}` : ''}` +
          `${r.error ? `\n     error: ${r.error}` : ''}\n`,
      );
    }
    if (caught === 0) undetected++;
    rows.push(`${s.name}: ${cells.join(', ')}`);
  }
  process.stdout.write(`\nfault matrix:\n${rows.map((r) => `  ${r}`).join('\n')}\n`);
  process.stdout.write(
    `${undetected === 0 ? 'every scenario failed against at least one broken server' : `${undetected} scenario(s) never failed`}, in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  return undetected ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  process.stderr.write(`test:asterisk: ${(e as Error).stack ?? String(e)}\n`);
} finally {
  await ast.stop();
  cleaned = true;
}
process.exit(code);
