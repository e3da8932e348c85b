/**
 * Is the monitor page smooth with N live calls? `audiosocket echo --monitor` under N echo calls
 * (the load generator in this process), the page open in headless Chromium, measured in the page
 * for `--duration` seconds of steady state:
 * - the time the page spends on each feed update (its `tick` handler: parse, table, meters, strips);
 * - long tasks (the browser's own measure: main-thread tasks over 50 ms);
 * - the gaps between animation frames (`requestAnimationFrame`): what a person sees as jank;
 * - the rows shown and the updates received.
 * A screenshot of the page under that load goes to `--shots` (default test/browser/screenshots/).
 *
 *   npm run build && taskset -c 1 node build/bench/monitor-page.js [--calls 200] [--duration 20]
 *
 * Run it pinned to core 1 (as above): Chromium and the load generator inherit it, the server is
 * pinned to core 0. Chromium from `CHROMIUM_PATH`, else /usr/bin/chromium.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import puppeteer from 'puppeteer-core';
import { runLoad } from './loadgen.js';
import { Histogram } from './lib/hist.js';
import { freePort, spawnServer } from './lib/proc.js';

// The few DOM names the functions run in the page use (this project compiles without the DOM lib).
declare const document: { querySelectorAll(selector: string): ArrayLike<unknown> };
declare const window: Record<string, unknown> & { requestAnimationFrame(f: (t: number) => void): void };
declare const PerformanceObserver: new (cb: (list: { getEntries(): Array<{ duration: number }> }) => void) => {
  observe(o: { type: string; buffered: boolean }): void;
};
declare const EventSource: { prototype: { addEventListener(type: string, listener: (m: unknown) => void): void } };

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '200' },
    duration: { type: 'string', default: '20' },
    shots: { type: 'string' },
  },
});
const CALLS = Number(values.calls);
const DURATION_S = Number(values.duration);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHOTS = values.shots ?? `${ROOT}test/browser/screenshots/`;
const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (CHROMIUM === undefined) throw new Error('no Chromium: apt-get install -y chromium, or set CHROMIUM_PATH');

interface PageMeasure {
  updates: number[];
  longTasks: number[];
  frameGaps: number[];
  longFrames: Array<{ at: number; duration: number; script: number; styleLayout: number }>;
  /** When measuring began (page time). */
  since: number;
}

/** A `long-animation-frame` entry (Chromium 123+), the fields used here. */
interface LongFrame {
  startTime: number;
  duration: number;
  styleAndLayoutStart: number;
  scripts: Array<{ duration: number }>;
}

const port = await freePort();
const monitorPort = await freePort();
const server = await spawnServer({
  argv: [process.execPath, `${ROOT}dist/cli/main.js`, 'echo', '--quiet', '--port', String(port), '--monitor', `127.0.0.1:${monitorPort}`],
  port,
  core: 0,
});
const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  defaultViewport: { width: 1400, height: 1000 },
});
try {
  const page = await browser.newPage();
  // Installed before the page's own script: times every `tick` listener, records long tasks and
  // the animation frames' gaps, from the moment `window.__measure.on` is set.
  await page.evaluateOnNewDocument(() => {
    const m: PageMeasure & { on: boolean } = { on: false, since: 0, updates: [], longTasks: [], frameGaps: [], longFrames: [] };
    window.__measure = m;
    const add = EventSource.prototype.addEventListener;
    EventSource.prototype.addEventListener = function (this: unknown, type: string, listener: (e: unknown) => void) {
      if (type !== 'tick') return add.call(this, type, listener);
      return add.call(this, type, (e: unknown) => {
        const t0 = performance.now();
        listener(e);
        if (m.on) m.updates.push(performance.now() - t0);
      });
    };
    new PerformanceObserver((list) => {
      if (m.on) for (const e of list.getEntries()) m.longTasks.push(e.duration);
    }).observe({ type: 'longtask', buffered: false });
    // Long animation frames (over 50 ms): how much of each was script, and how much style and layout.
    new PerformanceObserver((list) => {
      if (!m.on) return;
      for (const e of list.getEntries() as unknown as LongFrame[]) {
        const end = e.startTime + e.duration;
        m.longFrames.push({
          at: e.startTime - m.since,
          duration: e.duration,
          script: e.scripts.reduce((a, x) => a + x.duration, 0),
          styleLayout: e.styleAndLayoutStart > 0 ? end - e.styleAndLayoutStart : 0,
        });
      }
    }).observe({ type: 'long-animation-frame', buffered: false });
    let last = 0;
    const frame = (t: number): void => {
      if (m.on && last > 0) m.frameGaps.push(t - last);
      last = t;
      window.requestAnimationFrame(frame);
    };
    window.requestAnimationFrame(frame);
  });
  await page.goto(`http://127.0.0.1:${monitorPort}/`);
  const load = runLoad({ port, calls: CALLS, durationS: DURATION_S + 10, graceMs: 500, onEvent: (name) => void onLoadEvent(name) });
  let measuring: Promise<PageMeasure> | undefined;
  let shown = 0;
  async function onLoadEvent(name: string): Promise<void> {
    if (name !== 'steady' || measuring !== undefined) return;
    measuring = (async () => {
      // The table fills within a second or two (its first layout of every row is one long
      // frame, once); measured from two seconds after.
      await page.waitForFunction((n: number) => document.querySelectorAll('#calls tbody tr').length >= n, { timeout: 10_000 }, CALLS);
      await new Promise((r) => setTimeout(r, 2000));
      await page.evaluate(() => {
        const m = window.__measure as PageMeasure & { on: boolean };
        m.since = performance.now();
        m.on = true;
      });
      await new Promise((r) => setTimeout(r, DURATION_S * 1000));
      shown = await page.evaluate(() => document.querySelectorAll('#calls tbody tr').length);
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: `${SHOTS}under-load-${CALLS}.png` });
      return page.evaluate(() => {
        const m = window.__measure as PageMeasure & { on: boolean };
        m.on = false;
        return { since: m.since, updates: m.updates, longTasks: m.longTasks, frameGaps: m.frameGaps, longFrames: m.longFrames };
      });
    })();
  }
  const result = await load;
  if (measuring === undefined) throw new Error('the load never reached steady state');
  const m = await measuring;
  const histogramOf = (xs: number[]): Histogram => {
    const h = new Histogram();
    for (const x of xs) h.record(x);
    return h;
  };
  const updates = histogramOf(m.updates);
  const gaps = histogramOf(m.frameGaps);
  const f = (x: number): string => x.toFixed(1);
  const frames = m.frameGaps.length;
  const over = (ms: number): number => m.frameGaps.filter((g) => g > ms).length;
  console.log(`monitor page, ${CALLS} echo calls (${result.calls.connected} connected), ${DURATION_S} s measured in headless Chromium`);
  console.log(`rows shown: ${shown}; feed updates handled: ${m.updates.length}`);
  console.log(`update handling ms: p50 ${f(updates.quantile(0.5))}, p99 ${f(updates.quantile(0.99))}, max ${f(updates.max)}`);
  console.log(`long tasks (> 50 ms): ${m.longTasks.length}${m.longTasks.length > 0 ? `, max ${f(Math.max(...m.longTasks))} ms` : ''}`);
  const lf = m.longFrames;
  const sum = (k: 'duration' | 'script' | 'styleLayout'): number => lf.reduce((a, x) => a + x[k], 0);
  console.log(
    `long animation frames (> 50 ms): ${lf.length}, ${f(sum('duration'))} ms in all: script ${f(sum('script'))} ms, style and layout ${f(sum('styleLayout'))} ms`,
  );
  if (lf.length > 0) {
    console.log(
      `  at s (duration / script / style+layout ms): ${lf.map((x) => `${(x.at / 1000).toFixed(1)} (${f(x.duration)}/${f(x.script)}/${f(x.styleLayout)})`).join(', ')}`,
    );
  }
  console.log(
    `animation frames: ${frames} (${f(frames / DURATION_S)}/s), gap p50 ${f(gaps.quantile(0.5))} p99 ${f(gaps.quantile(0.99))} max ${f(gaps.max)} ms; over 50 ms: ${over(50)}, over 100 ms: ${over(100)}`,
  );
  console.log(`echo: lost ${result.frames.lost}, rtt p99 ${f(result.rttMs.p99)} ms; screenshot ${SHOTS}under-load-${CALLS}.png`);
} finally {
  await browser.close();
  await server.stop();
}
