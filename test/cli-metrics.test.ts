/**
 * `--metrics`: Prometheus naming (the rules `promtool check metrics` applies, checked in code so
 * the suite needs no Prometheus install), real counters for calls, handshake failures and
 * rejections, the call-duration histogram and the build-info gauge.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect } from '#lib/index.js';
import { spawnCli, until } from './helpers.js';

interface Family {
  name: string;
  type: string;
  samples: string[];
}

function families(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, { name: m[1]!, type: m[2]!, samples: [] });
  }
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0];
    const family = out.get(name) ?? out.get(name.replace(/_(bucket|sum|count)$/, ''));
    assert.ok(family, `sample without a # TYPE: ${line}`);
    family.samples.push(line);
  }
  return out;
}

/** The naming rules of https://prometheus.io/docs/practices/naming/ that promtool also checks. */
function namingProblems(all: Map<string, Family>): string[] {
  const problems: string[] = [];
  for (const f of all.values()) {
    if (f.type === 'counter' && !f.name.endsWith('_total')) problems.push(`counter ${f.name} does not end in _total`);
    if (f.type !== 'counter' && f.name.endsWith('_total')) problems.push(`${f.type} ${f.name} ends in _total`);
    const parts = f.name.replace(/_total$/, '').split('_');
    for (const unit of ['bytes', 'seconds']) {
      const i = parts.indexOf(unit);
      if (i >= 0 && i !== parts.length - 1) problems.push(`${f.name}: the unit ${unit} is not last`);
    }
    if (/_(ms|milliseconds)(_|$)/.test(f.name)) problems.push(`${f.name}: use seconds as the time unit`);
    if (!f.name.startsWith('audiosocket_')) continue;
    if (/_(in|out)(_|$)/.test(f.name)) problems.push(`${f.name}: direction as in/out mid-name (use received/sent)`);
  }
  return problems;
}

test('--metrics: naming, counters, histogram, build info', async (t) => {
  const echo = await spawnCli(['echo', '--port', '0', '--max-calls', '1', '--metrics', '127.0.0.1:0']);
  t.after(async () => {
    if (echo.child.exitCode === null) {
      echo.child.kill('SIGKILL');
      await once(echo.child, 'exit');
    }
  });
  await until(() => echo.lines.some((l) => l.includes('/metrics')), 'the metrics line');
  const metricsPort = Number(/:(\d+)\/metrics/.exec(echo.lines.find((l) => l.includes('/metrics'))!)![1]);
  const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();

  // One call, one connection rejected by --max-calls while it lasts, then one that closes before its UUID.
  const call = await connect({ port: echo.port });
  for (let i = 0; i < 10; i++) call.sendAudio(Buffer.alloc(320, 1));
  await until(() => echo.lines.some((l) => l.startsWith(`call ${call.uuid}`)), 'the call line');
  const rejected = await connect({ port: echo.port });
  await rejected.closed;
  await call.hangup();
  await until(() => echo.lines.some((l) => l.startsWith(`end  ${call.uuid}`)), 'the end line');
  const bare = net.connect({ host: '127.0.0.1', port: echo.port });
  await once(bare, 'connect');
  bare.end();
  await until(() => echo.lines.some((l) => l.includes('closed-before-uuid')), 'the handshake failure line');

  const text = await scrape();
  const all = families(text);
  assert.deepEqual(namingProblems(all), []);
  for (const name of [
    'audiosocket_calls_total',
    'audiosocket_handshake_failures_total',
    'audiosocket_connections_rejected_total',
    'audiosocket_calls_ended_total',
    'audiosocket_received_bytes_total',
    'audiosocket_sent_bytes_total',
    'audiosocket_received_frames_total',
    'audiosocket_sent_frames_total',
  ]) {
    assert.equal(all.get(name)?.type, 'counter', name);
  }
  assert.equal(all.get('audiosocket_calls_active')?.type, 'gauge');
  assert.equal(all.get('audiosocket_call_duration_seconds')?.type, 'histogram');
  assert.equal(all.get('audiosocket_build_info')?.type, 'gauge');
  assert.match(text, /^audiosocket_calls_total 1$/m);
  assert.match(text, /^audiosocket_calls_active 0$/m);
  assert.match(text, /^audiosocket_handshake_failures_total\{reason="closed-before-uuid"\} 1$/m);
  assert.match(text, /^audiosocket_connections_rejected_total\{transport="audiosocket",reason="max-calls"\} 1$/m);
  assert.match(text, /^audiosocket_connections_rejected_total\{transport="audiosocket",reason="not-allowed"\} 0$/m);
  assert.match(text, /^audiosocket_calls_ended_total\{reason="remote-hangup"\} 1$/m);
  assert.match(text, /^audiosocket_received_frames_total 10$/m);
  assert.match(text, /^audiosocket_call_duration_seconds_count 1$/m);
  assert.match(text, /^audiosocket_call_duration_seconds_bucket\{le="\+Inf"\} 1$/m);
  // every frame the call sent is one lateness observation
  assert.equal(all.get('audiosocket_send_lateness_seconds')?.type, 'histogram');
  const sentFrames = Number(/^audiosocket_sent_frames_total (\d+)$/m.exec(text)?.[1]);
  assert.ok(sentFrames >= 1, `sent frames ${sentFrames}`);
  assert.match(text, new RegExp(`^audiosocket_send_lateness_seconds_count ${sentFrames}$`, 'm'));
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };
  assert.match(
    text,
    new RegExp(`^audiosocket_build_info\\{version="${pkg.version.replace(/\./g, '\\.')}",node_version="${process.version}"\\} 1$`, 'm'),
  );
  assert.match(text, /^process_cpu_seconds_total /m);
});
