/**
 * The monitor page in a real browser (headless Chromium driven by puppeteer-core): what a person
 * sees. `npm run test:browser`; Chromium from `CHROMIUM_PATH`, else /usr/bin/chromium (Debian's
 * `chromium` package). Screenshots go to test/browser/screenshots/ (not committed);
 * `UPDATE_SCREENSHOT=1` also writes docs/monitor.png, the README's picture.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { connect, type AsteriskClient } from '#lib/index.js';
import { connectWebSocket } from '#lib/websocket/client.js';
import { signal, spawnCli, until, type Running } from '../helpers.js';

// The few DOM types the functions run in the page need (this project compiles without the DOM lib).
interface PageElement {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  hidden: boolean;
  firstChild: PageElement | null;
  style: { width: string; transform: string };
  querySelector(selector: string): PageElement | null;
  click(): void;
}
declare const document: {
  querySelectorAll(selector: string): Iterable<PageElement> & ArrayLike<PageElement>;
  getElementById(id: string): PageElement | null;
};
declare const window: Record<string, unknown>;

const CHROMIUM = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SHOTS = `${ROOT}test/browser/screenshots/`;

async function launch(t: TestContext): Promise<Browser> {
  if (CHROMIUM === undefined) throw new Error('no Chromium: apt-get install -y chromium, or set CHROMIUM_PATH');
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    defaultViewport: { width: 1400, height: 1000 },
  });
  t.after(() => browser.close());
  return browser;
}

async function startCli(t: TestContext, monitor = '0', extra: string[] = []): Promise<{ cli: Running; monitorUrl: string; wsUrl: string }> {
  const cli = await spawnCli(['echo', '--port', '0', '--websocket', '0', '--monitor', monitor, ...extra]);
  t.after(() => cli.child.kill());
  await until(() => cli.lines.some((l) => l.startsWith('monitor on ')), 'the monitor line');
  const monitorUrl = /monitor on (\S+)/.exec(cli.lines.find((l) => l.startsWith('monitor on '))!)![1]!;
  const wsPort = /chan_websocket on ws:\/\/[^:]+:(\d+)/.exec(cli.lines.find((l) => l.includes('chan_websocket on'))!)![1]!;
  return { cli, monitorUrl, wsUrl: `ws://127.0.0.1:${wsPort}/media` };
}

/** The page's problems: script errors and dialogs fail the test. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${String(err)}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  return problems;
}

const rowOf = (page: Page, uuid: string) =>
  page.evaluate((u) => {
    const tr = [...document.querySelectorAll('#calls tbody tr')].find((r) => r.querySelector('td.uuid')?.firstChild?.textContent === u);
    if (!tr) return null;
    const cell = (k: string) => tr.querySelector(`td[data-key="${k}"]`)?.textContent ?? '';
    return {
      transport: cell('transport'),
      format: cell('format'),
      in: Number(tr.querySelector('.meter.in')!.dataset.level),
      out: Number(tr.querySelector('.meter.out')!.dataset.level),
      inBar: tr.querySelector('.meter.in > div')!.style.transform,
      silent: tr.dataset.silent === 'true',
    };
  }, uuid);

test('a person sees the calls: UUIDs and formats, meters that move with audio and rest in silence, the end and its reason, a <script> variable as text', async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const { cli, monitorUrl, wsUrl } = await startCli(t);
  const browser = await launch(t);
  const page = await browser.newPage();
  const problems = watch(page);
  await page.goto(monitorUrl);
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'live');

  // Talking callers on AudioSocket, one silent chan_websocket caller with a hostile variable.
  const talkers: AsteriskClient[] = [];
  for (let i = 0; i < 12; i++) talkers.push(await connect({ port: cli.port }));
  t.after(() => Promise.all(talkers.map((c) => c.hangup())));
  // Each caller talks in turns, paced like Asterisk (frame k at start + 20k ms, no drift).
  const stop = new AbortController();
  t.after(() => stop.abort());
  talkers.forEach((c, i) => {
    const frames = 1500;
    const audio = Buffer.alloc(frames * 320);
    for (let k = 0; k < frames; k++) if (k % 50 < 10 + 3 * i) signal(320, i + 1).copy(audio, k * 320);
    c.stream(audio, { signal: stop.signal }).catch(() => {});
  });
  const evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';
  const ws = await connectWebSocket({
    url: `${wsUrl}?who=<b>bot</b>`,
    format: 'ulaw',
    controlFormat: 'json',
    channelVariables: { EVIL: evil },
  });
  t.after(() => ws.drop());
  const silence = setInterval(() => ws.sendAudio(Buffer.alloc(160, 0xff)), 20);
  t.after(() => clearInterval(silence));
  const wsUuid = ws.channelId;

  for (const c of talkers) {
    await page.waitForFunction(
      (u) => [...document.querySelectorAll('#calls td.uuid')].some((td) => td.firstChild?.textContent === u),
      {},
      c.uuid,
    );
  }
  await page.waitForFunction(
    (u) => [...document.querySelectorAll('#calls td.uuid')].some((td) => td.firstChild?.textContent === u),
    {},
    wsUuid,
  );
  const first = talkers[0]!.uuid;
  assert.equal((await rowOf(page, first))!.transport, 'AudioSocket');
  assert.equal((await rowOf(page, first))!.format, 'slin');
  assert.equal((await rowOf(page, wsUuid))!.transport, 'chan_websocket');
  assert.equal((await rowOf(page, wsUuid))!.format, 'ulaw');

  // Meters: the talker's move (in, and out with the echo); the silent caller's stay at zero.
  let moved = false;
  const deadline = Date.now() + 10_000;
  while (!moved && Date.now() < deadline) {
    const r = (await rowOf(page, talkers[11]!.uuid))!;
    moved = r.in > 0.1 && r.out > 0.1 && r.inBar !== 'scaleX(0)' && r.inBar.startsWith('scaleX(');
    if (!moved) await new Promise((res) => setTimeout(res, 100));
  }
  assert.ok(moved, 'the talking call shows its levels');
  for (let i = 0; i < 8; i++) {
    const r = (await rowOf(page, wsUuid))!;
    assert.equal(r.in, 0, 'the silent call rests at zero');
    await new Promise((res) => setTimeout(res, 100));
  }
  await page.waitForFunction(
    (u) => [...document.querySelectorAll('#calls tbody tr')].some((tr) => tr.dataset.silent === 'true' && tr.textContent?.includes(u)),
    { timeout: 10_000 },
    wsUuid,
  );
  talkers[1]!.sendDtmf('5');
  await page.screenshot({ path: `${SHOTS}calls.png`, fullPage: true });

  // The hostile channel variable, in the detail view: shown as text, never run.
  await page.evaluate((u) => {
    [...document.querySelectorAll('#calls tbody tr')].find((tr) => tr.textContent?.includes(u))!.click();
  }, wsUuid);
  await page.waitForFunction(() => !document.getElementById('detail')!.hidden);
  const detail = await page.evaluate(() => ({
    text: document.getElementById('d-info')!.textContent,
    scripts: document.querySelectorAll('#detail script, #detail img').length,
    pwned: window.__pwned,
  }));
  assert.ok(detail.text?.includes(evil), 'the variable is shown as it is');
  assert.match(detail.text ?? '', /\?who=(<b>|%3Cb%3E)bot/, 'the URL parameters too');
  assert.equal(detail.scripts, 0);
  assert.equal(detail.pwned, undefined);
  await page.screenshot({ path: `${SHOTS}detail.png`, fullPage: true });

  // A call that ends moves to the ended list with its reason.
  const gone = talkers.pop()!;
  await gone.hangup();
  await page.waitForFunction(
    (u) =>
      [...document.querySelectorAll('#ended tbody tr')].some(
        (tr) => tr.dataset.reason === 'remote-hangup' && tr.textContent?.includes(u),
      ) && ![...document.querySelectorAll('#calls td.uuid')].some((td) => td.firstChild?.textContent === u),
    { timeout: 10_000 },
    gone.uuid,
  );
  await page.waitForFunction(
    () => document.querySelectorAll('#chart').length === 1 && Number(document.getElementById('t-fin')!.textContent) > 0,
  );
  // The picture for the README: a talking call's detail, with its DTMF digit.
  await page.evaluate((u) => {
    [...document.querySelectorAll('#calls tbody tr')].find((tr) => tr.textContent?.includes(u))!.click();
  }, talkers[1]!.uuid);
  await page.waitForFunction(() => [...document.querySelectorAll('#d-events li')].some((li) => li.dataset.kind === 'dtmf'));
  await new Promise((res) => setTimeout(res, 1500));
  await page.screenshot({ path: `${SHOTS}monitor.png`, fullPage: true });
  if (process.env.UPDATE_SCREENSHOT === '1') copyFileSync(`${SHOTS}monitor.png`, `${ROOT}docs/monitor.png`);
  assert.deepEqual(problems, []);
});

test('with a token (off loopback, or given), the page without it shows nothing of the calls', async (t) => {
  const { monitorUrl } = await startCli(t, '0.0.0.0:0', ['--monitor-listen']);
  const browser = await launch(t);
  const page = await browser.newPage();
  const bare = monitorUrl.replace(/\?token=.*$/, '');
  const res = await page.goto(bare);
  assert.equal(res?.status(), 401);
  const ok = await page.goto(monitorUrl);
  assert.equal(ok?.status(), 200);
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'live');
  // Listen-in is on, and still refused without the token, even from the page itself.
  const listenStatus = await page.evaluate(async () => (await fetch('listen/1')).status);
  assert.equal(listenStatus, 401);
});
