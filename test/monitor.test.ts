/**
 * The monitor over real sockets: its Server-Sent Events feed (calls appear, levels follow the
 * audio and sit at zero in silence, ended calls carry their reason), its token, its answers to
 * bad requests, a browser that stops reading, and `--monitor` on the CLI.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { connect, createMonitor, createServer, serveMonitor, type CallHandler, type MonitorHello, type MonitorTick } from '#lib/index.js';
import { connectWebSocket } from '#lib/websocket/client.js';
import { runCli, signal, spawnCli, until } from './helpers.js';

async function setup(t: TestContext, handler: CallHandler, monitorOptions: Parameters<typeof serveMonitor>[1] = {}) {
  const server = createServer(handler, { websocket: { port: 0 } });
  const { port } = await server.listen({ port: 0 });
  const monitor = await serveMonitor(server, { intervalMs: 50, ...monitorOptions });
  t.after(async () => {
    await monitor.close();
    await server.close();
  });
  const wsUrl = `ws://127.0.0.1:${server.websocketAddress()!.port}/media`;
  return { server, port, monitor, wsUrl, base: `http://127.0.0.1:${monitor.address.port}` };
}

interface Feed {
  hello: MonitorHello | undefined;
  ticks: MonitorTick[];
  raw: string;
  close(): void;
}

/** Reads Server-Sent Events at `url`: `onEvent` gets each message's event and data; `onStatus` the response. */
function readSse(
  t: TestContext,
  url: string,
  onEvent: (event: string | undefined, data: string | undefined) => void,
  onStatus: (res: http.IncomingMessage) => void = () => {},
): http.ClientRequest {
  let buf = '';
  const req = http.get(url, (res) => {
    onStatus(res);
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const msg = buf.slice(0, i);
        buf = buf.slice(i + 2);
        onEvent(/^event: (.*)$/m.exec(msg)?.[1], /^data: (.*)$/m.exec(msg)?.[1]);
      }
    });
  });
  req.on('error', () => {});
  t.after(() => req.destroy());
  return req;
}

/** Reads the monitor's feed at `url`, parsing its messages. */
function readFeed(t: TestContext, url: string): Feed {
  const feed: Feed = { hello: undefined, ticks: [], raw: '', close: () => req.destroy() };
  const req = readSse(
    t,
    url,
    (event, data) => {
      if (data === undefined) return;
      if (event === 'hello') feed.hello = JSON.parse(data) as MonitorHello;
      else if (event === 'tick') feed.ticks.push(JSON.parse(data) as MonitorTick);
      else assert.fail(`unexpected event ${event}`);
    },
    (res) => {
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      res.on('data', (d: string) => (feed.raw += d)); // the bytes as sent, for checks on the raw stream
    },
  );
  return feed;
}

function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  return new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

const rowsOf = (feed: Feed, id: number) => feed.ticks.flatMap((t) => t.rows.filter((r) => r.id === id));
const lastRow = (feed: Feed, id: number) => rowsOf(feed, id).at(-1);
/** The levels of call `id` in each of `ticks` that carries them: [in, out], 0..1 (the feed carries thousandths, integers). */
function levelsOf(ticks: MonitorTick[], id: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const t of ticks) {
    for (let i = 0; i + 2 < t.levels.length; i += 3) {
      if (t.levels[i] !== id) continue;
      const [lin, lout] = [t.levels[i + 1]!, t.levels[i + 2]!];
      assert.ok(Number.isInteger(lin) && Number.isInteger(lout) && lin <= 1000 && lout <= 1000, `levels in thousandths: ${lin}, ${lout}`);
      out.push([lin / 1000, lout / 1000]);
    }
  }
  return out;
}

test('the feed shows a call with its UUID and format; levels move with audio and sit at zero in silence; the end carries its reason', async (t) => {
  const { port, base } = await setup(t, (call) => call.on('audio', (f) => call.write(f.payload, f.format)));
  const feed = readFeed(t, `${base}/events`);
  await until(() => feed.hello !== undefined, 'hello');
  const client = await connect({ port });
  const added = () => feed.ticks.flatMap((x) => x.added).find((a) => a.uuid === client.uuid);
  await until(() => added() !== undefined, 'the call in the feed');
  const info = added()!;
  assert.equal(info.transport, 'audiosocket');
  assert.match(info.remote, /^127\.0\.0\.1:\d+$/);

  const loud = setInterval(() => client.sendAudio(signal(320)), 20);
  // Levels every tick; the row (each second) carries them too.
  const moving = (l: [number, number] | undefined): boolean => l !== undefined && l[0] > 0.1 && l[1] > 0.1;
  await until(() => moving(levelsOf(feed.ticks, info.id).at(-1)), 'levels move both ways');
  await until(() => (lastRow(feed, info.id)?.in ?? 0) > 0.1 && (lastRow(feed, info.id)?.out ?? 0) > 0.1, 'a row with the levels');
  clearInterval(loud);
  const quiet = setInterval(() => client.sendAudio(Buffer.alloc(320)), 20);
  const before = feed.ticks.length;
  await until(() => feed.ticks.length > before + 6, 'a few ticks of silence');
  const silent = levelsOf(feed.ticks.slice(before + 3), info.id);
  assert.ok(silent.length >= 3);
  for (const [lin] of silent) assert.equal(lin, 0, 'inbound level at zero in silence');
  clearInterval(quiet);
  // Two rates: levels every tick, the calls' numbers (rows) each second.
  assert.ok(
    feed.ticks.every((x) => x.rows.length === 0 || x.totals !== undefined),
    'rows come with the totals',
  );
  const rowTimes = feed.ticks.filter((x) => x.rows.length > 0).map((x) => x.at);
  for (let i = 1; i < rowTimes.length; i++) assert.ok(rowTimes[i]! - rowTimes[i - 1]! >= 1000, 'rows at most once a second');
  assert.ok(feed.ticks.filter((x) => x.levels.length > 0).length > 2 * rowTimes.length, 'levels every tick');
  await client.hangup();
  const endOf = () => feed.ticks.flatMap((x) => x.ended).find((e) => e.id === info.id);
  await until(() => endOf() !== undefined, 'the ended call');
  assert.equal(endOf()!.reason, 'remote-hangup');
  assert.equal(endOf()!.uuid, client.uuid);
  assert.ok(endOf()!.stats.framesIn > 10);
  // A browser that connects now gets it in the ended list.
  const late = readFeed(t, `${base}/events`);
  await until(() => late.hello !== undefined, 'hello');
  assert.ok(late.hello!.ended.some((e) => e.id === info.id && e.reason === 'remote-hangup'));
  assert.ok(!late.hello!.calls.some((c) => c.id === info.id));
});

test('a call goes silent in the feed when its audio stops, and a play shows what is playing', async (t) => {
  const { port, base } = await setup(
    t,
    (call) => {
      void call.play(signal(16000 * 2), { format: 'slin' });
    },
    { silentAfterMs: 300 },
  );
  const feed = readFeed(t, `${base}/events`);
  const client = await connect({ port });
  t.after(() => client.hangup());
  const info = () => feed.ticks.flatMap((x) => x.added).find((a) => a.uuid === client.uuid);
  await until(() => info() !== undefined, 'the call');
  await until(() => lastRow(feed, info()!.id)?.playing === '32000 bytes of audio', 'the play shown');
  await until(() => lastRow(feed, info()!.id)?.silent === true, 'shown silent: nothing comes from the caller');
  const res = await get(`${base}/calls/${info()!.id}.json`);
  assert.equal(res.status, 200);
  const events = (JSON.parse(res.body) as { events: { kind: string }[] }).events;
  assert.ok(events.some((e) => e.kind === 'play'));
});

test('a call whose frames left late shows as late, with its lateness p99', async (t) => {
  const { port, base } = await setup(t, (call) => {
    void call.play(signal(16000 * 8), { format: 'slin' }); // 8 s of audio, paced
  });
  const feed = readFeed(t, `${base}/events`);
  const a = await connect({ port });
  t.after(() => a.hangup());
  const infoOf = (uuid: string) => feed.ticks.flatMap((x) => x.added).find((i) => i.uuid === uuid);
  await until(() => infoOf(a.uuid) !== undefined, 'the call');
  const id = infoOf(a.uuid)!.id;
  await until(() => lastRow(feed, id)?.playing != null, 'playing');
  // Our event loop is held for 150 ms: the frames due meanwhile leave late.
  const end = Date.now() + 150;
  while (Date.now() < end) {
    // busy: nothing else runs
  }
  await until(() => lastRow(feed, id)?.late === true, 'shown late');
  const row = lastRow(feed, id)!;
  assert.ok(row.lateP99 >= 1, `lateness p99 ${row.lateP99} ms`);
});

test('chan_websocket calls: channel variables pass as data (escaped JSON, one SSE message each), never as markup or SSE lines', async (t) => {
  const { wsUrl, base } = await setup(t, () => {});
  const feed = readFeed(t, `${base}/events`);
  const evil = '<script>window.__pwned = 1</script>\n\nevent: hello\ndata: {}';
  const ws = await connectWebSocket({ url: `${wsUrl}?x=<b>`, format: 'ulaw', controlFormat: 'json', channelVariables: { EVIL: evil } });
  t.after(() => ws.drop());
  await until(() => feed.ticks.some((x) => x.added.length > 0), 'the call');
  const info = feed.ticks.flatMap((x) => x.added)[0]!;
  assert.equal(info.transport, 'websocket');
  assert.equal(info.format, 'ulaw');
  assert.equal(info.variables?.EVIL, evil);
  assert.ok(!feed.raw.includes('<script>window'), 'no raw markup in the feed');
  // The page itself is static: nothing from a call is ever templated into HTML.
  const page = await get(`${base}/`);
  assert.equal(page.status, 200);
  assert.ok(!page.body.includes('EVIL'));
  assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
  for (let i = 0; i < 10; i++) ws.sendAudio(Buffer.alloc(160, 0xff));
  await until(() => (lastRow(feed, info.id)?.framesIn ?? 0) >= 10, 'frames counted');
  assert.ok(
    rowsOf(feed, info.id).every((r) => r.in === 0) && levelsOf(feed.ticks, info.id).every(([lin]) => lin === 0),
    'u-law silence (0xFF) is level 0',
  );
});

test('with a token, the page, the feed and the call details need it; the script and style do not', async (t) => {
  const { base } = await setup(t, () => {}, { token: 's3cret' });
  for (const path of ['/', '/events', '/calls/1.json']) {
    assert.equal((await get(`${base}${path}`)).status, 401, `${path} without a token`);
    assert.equal((await get(`${base}${path}?token=wrong`)).status, 401, `${path} with a wrong token`);
  }
  assert.equal((await get(`${base}/?token=s3cret`)).status, 200);
  assert.equal((await get(`${base}/`, { authorization: 'Bearer s3cret' })).status, 200);
  assert.equal((await get(`${base}/calls/1.json?token=s3cret`)).status, 404);
  assert.equal((await get(`${base}/app.js`)).status, 200);
  assert.equal((await get(`${base}/app.css`)).status, 200);
  const feed = readFeed(t, `${base}/events?token=s3cret`);
  await until(() => feed.hello !== undefined, 'the feed with the token');
});

test('off loopback a token is generated; on loopback without one, a DNS name in Host is refused (DNS rebinding)', async (t) => {
  const server = createServer(() => {});
  const open = await serveMonitor(server, { host: '0.0.0.0' });
  t.after(() => open.close());
  assert.ok(open.token !== undefined && open.token.length >= 24);
  assert.ok(open.url.includes(`?token=${open.token}`));
  const at = `http://127.0.0.1:${open.address.port}`;
  assert.equal((await get(`${at}/`)).status, 401);
  assert.equal((await get(`${at}/?token=${open.token}`)).status, 200);

  const { base } = await setup(t, () => {});
  assert.equal((await get(`${base}/`, { host: 'attacker.example' })).status, 403);
  assert.equal((await get(`${base}/`, { host: 'localhost:1234' })).status, 200);
});

test('bad requests get 4xx and the monitor goes on', async (t) => {
  const { base, monitor } = await setup(t, () => {});
  assert.equal((await get(`${base}/`, {}, 'POST')).status, 405);
  assert.equal((await get(`${base}/nope`)).status, 404);
  assert.equal((await get(`${base}/calls/abc.json`)).status, 404);
  assert.equal((await get(`${base}/calls/99999999999999999999.json`)).status, 404);
  assert.equal((await get(`${base}/../../etc/passwd`)).status, 404);
  assert.equal((await get(`${base}/index.html`)).status, 404);
  // Garbage instead of HTTP.
  const answer = await new Promise<string>((resolve) => {
    const s = net.connect(monitor.address.port, '127.0.0.1', () => s.write('\x00\x01 not http\r\n\r\n'));
    let text = '';
    s.on('data', (d) => (text += d.toString()));
    s.on('close', () => resolve(text));
    s.on('error', () => resolve(text));
  });
  assert.match(answer, /^HTTP\/1\.1 400/);
  assert.equal((await get(`${base}/`)).status, 200);
});

test('a browser that stops reading the feed is dropped, not buffered without bound', async (t) => {
  const server = createServer((call) => call.on('audio', (f) => call.write(f.payload, f.format)));
  const { port } = await server.listen({ port: 0 });
  const monitor = createMonitor(server, { intervalMs: 5, maxBufferedBytes: 64 * 1024, stallTimeoutMs: 200 });
  const listener = http.createServer((req, res) => void monitor.handle(req, res));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    monitor.close();
    listener.closeAllConnections();
    await new Promise((resolve) => listener.close(resolve));
    await server.close();
  });
  // Enough calls that each tick is a few hundred bytes.
  const clients = await Promise.all(Array.from({ length: 30 }, () => connect({ port })));
  t.after(() => Promise.all(clients.map((c) => c.hangup())));
  // The stalled browser: a connection that takes nothing it is sent, as a real socket once its
  // kernel buffers are full. Over loopback those hold megabytes, so how many seconds of ticks a
  // real one took to stall was the machine's (its buffers, its load), not the monitor's; this one
  // is stalled from the start, and the monitor must drop it within 64 kB or 200 ms blocked.
  const stalled = Object.assign(
    new Duplex({
      read() {},
      write() {}, // never done: what follows waits in the stream, unsent
    }),
    { setNoDelay: () => {}, setKeepAlive: () => {}, setTimeout: () => {} },
  );
  t.after(() => stalled.destroy());
  listener.emit('connection', stalled);
  stalled.push('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const reader = readFeed(t, `http://127.0.0.1:${(listener.address() as AddressInfo).port}/events`);
  await until(() => monitor.clients === 2, 'two browsers');
  await until(() => monitor.droppedClients === 1, 'the stalled browser dropped', 60_000);
  assert.equal(stalled.destroyed, true, 'its connection is closed');
  const n = reader.ticks.length;
  await until(() => reader.ticks.length > n + 5, 'the reading browser still fed');
  assert.equal(monitor.clients, 1);
});

test('CLI: --monitor serves the page next to the server; off loopback it prints a generated token; mistakes are usage errors', async (t) => {
  const cli = await spawnCli(['echo', '--port', '0', '--monitor', '0']);
  t.after(() => cli.child.kill());
  await until(() => cli.lines.some((l) => l.startsWith('monitor on ')), 'the monitor line');
  const url = /monitor on (\S+)/.exec(cli.lines.find((l) => l.startsWith('monitor on '))!)![1]!;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const page = await get(url);
  assert.equal(page.status, 200);
  assert.match(page.body, /audiosocket monitor/);
  const client = await connect({ port: cli.port });
  const snapshot = await new Promise<string>((resolve) => {
    http.get(`${url}events`, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes(client.uuid)) {
          res.destroy();
          resolve(text);
        }
      });
    });
  });
  assert.ok(snapshot.includes(client.uuid));
  await client.hangup();

  const open = await spawnCli(['echo', '--port', '0', '--monitor', '0.0.0.0:0']);
  t.after(() => open.child.kill());
  await until(() => open.lines.some((l) => l.startsWith('monitor on ')), 'the monitor line');
  assert.match(
    open.lines.find((l) => l.startsWith('monitor on '))!,
    /\?token=[\w-]{32} \(token generated for this run\)$/,
  );

  const bad = await runCli(['echo', '--monitor', 'x:y']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--monitor/);
  const workers = await runCli(['echo', '--workers', '2', '--monitor', '0']);
  assert.equal(workers.code, 2);
  assert.match(workers.err, /--monitor works with one worker only/);
});

/** Reads a listen-in stream: the audio of each direction, decoded. */
function readListen(t: TestContext, url: string): { in: Buffer[]; out: Buffer[]; ended: boolean; status?: number } {
  const got: { in: Buffer[]; out: Buffer[]; ended: boolean; status?: number } = { in: [], out: [], ended: false };
  readSse(
    t,
    url,
    (event, data) => {
      if (event === 'end') got.ended = true;
      if (event !== 'audio' || data === undefined) return;
      const a = JSON.parse(data) as { in: string; out: string };
      got.in.push(Buffer.from(a.in, 'base64'));
      got.out.push(Buffer.from(a.out, 'base64'));
    },
    (res) => (got.status = res.statusCode),
  );
  return got;
}

test("listen-in: off by default (403); on, a call's audio both ways as slin 8 kHz, and the end; off loopback it needs the token", async (t) => {
  const off = await setup(t, () => {});
  const c0 = await connect({ port: off.port });
  t.after(() => c0.hangup());
  const feed0 = readFeed(t, `${off.base}/events`);
  await until(() => (feed0.hello?.calls.length ?? 0) + feed0.ticks.reduce((n, x) => n + x.added.length, 0) > 0, 'the call in the feed');
  assert.equal(feed0.hello?.listen, false);
  const refused = await get(`${off.base}/listen/1`);
  assert.equal(refused.status, 403);
  assert.match(refused.body, /--monitor-listen/);

  const { port, base } = await setup(t, (call) => call.on('audio', (f) => call.write(f.payload, f.format)), { listen: true });
  const client = await connect({ port });
  t.after(() => client.hangup());
  const feed = readFeed(t, `${base}/events`);
  await until(() => feed.hello !== undefined, 'hello');
  assert.equal(feed.hello!.listen, true);
  const idOf = (): number | undefined => feed.hello!.calls[0]?.id ?? feed.ticks.find((x) => x.added.length > 0)?.added[0]?.id;
  await until(() => idOf() !== undefined, 'the call in the feed');
  const id = idOf()!;
  assert.equal((await get(`${base}/listen/999`)).status, 404);
  const heard = readListen(t, `${base}/listen/${id}`);
  await until(() => heard.status === 200, 'the listen stream');
  const speech = signal(320 * 25, 5);
  await client.stream(speech);
  const inbound = (): Buffer => Buffer.concat(heard.in);
  await until(
    () => inbound().includes(speech.subarray(0, 640)) && Buffer.concat(heard.out).includes(speech.subarray(0, 640)),
    'both directions heard',
  );
  await client.hangup();
  await until(() => heard.ended, 'the end of the call on the listen stream');

  const remote = await serveMonitor(createServer(), { host: '0.0.0.0', port: 0, listen: true, token: 'tok3n' });
  t.after(() => remote.close());
  assert.equal((await get(`http://127.0.0.1:${remote.address.port}/listen/1`)).status, 401);
  assert.equal((await get(`http://127.0.0.1:${remote.address.port}/listen/1?token=tok3n`)).status, 404);
});
