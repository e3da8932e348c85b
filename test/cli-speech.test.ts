/**
 * Speech in the CLI: `play --barge-in-speech`, `record`'s sidecar, `inspect`'s report and the
 * `--json` events, each spawned as a real process and called by the simulated Asterisk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, readWavFile } from '#lib/index.js';
import { spawnCli, until, type Running } from './helpers.js';

const fixture = (name: string): string => fileURLToPath(new URL(`../../test/fixtures/speech/${name}`, import.meta.url));

async function stopped(r: Running): Promise<void> {
  if (r.child.exitCode !== null) return;
  r.child.kill('SIGKILL');
  await once(r.child, 'exit');
}

/** A simulated call that says the fixture (its speech starts 1 s in), in real time. */
async function say(port: number, file: string): Promise<void> {
  const client = await connect({ port });
  const speech = (await readWavFile(fixture(file))).data;
  await client.stream(speech);
  await client.hangup();
}

test('play --barge-in-speech: the caller speaking stops the prompt, with a barge-in line; --json carries speech-start', async (t) => {
  const cli = await spawnCli(['play', fixture('prompt.wav'), '--barge-in-speech', '--then', 'silence', '--port', '0', '--json']);
  t.after(() => stopped(cli));
  await say(cli.port, 'speech-us.wav');
  await until(() => cli.lines.some((l) => l.includes('"event":"bargeIn"')), 'the barge-in event');
  const barge = JSON.parse(cli.lines.find((l) => l.includes('"event":"bargeIn"'))!) as { by: string; atMs: number; playedMs: number };
  assert.equal(barge.by, 'speech');
  assert.ok(barge.atMs > 900 && barge.atMs < 1300, `speech at ${barge.atMs} ms (the fixture speaks at 1000)`);
  assert.ok(barge.playedMs < 2000, `the prompt stopped after ${barge.playedMs} ms`);
  assert.ok(cli.lines.some((l) => l.includes('"event":"speech-start"')));
});

test('record: the sidecar lists the speech segments; inspect reports them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'audiosocket-speech-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const rec = await spawnCli(['record', '--port', '0', '--dir', dir]);
  t.after(() => stopped(rec));
  await say(rec.port, 'speech-gb.wav');
  await until(() => rec.lines.some((l) => l.startsWith('saved ')), 'the recording saved');
  const json = (await readdir(dir)).find((f) => f.endsWith('.json'))!;
  const sidecar = JSON.parse(await readFile(join(dir, json), 'utf8')) as { speech: Array<{ startMs: number; endMs: number | null }> };
  assert.equal(sidecar.speech.length, 1, JSON.stringify(sidecar.speech));
  assert.ok(Math.abs(sidecar.speech[0]!.startMs - 1000) < 150, `speech from ${sidecar.speech[0]!.startMs} ms`);
  assert.ok(Math.abs(sidecar.speech[0]!.endMs! - 2980) < 300, `speech to ${sidecar.speech[0]!.endMs} ms (the fixture ends at 2980)`);

  const inspect = await spawnCli(['inspect', '--port', '0']);
  t.after(() => stopped(inspect));
  await say(inspect.port, 'speech-gb.wav');
  const reportLine = (): string | undefined => inspect.lines.find((l) => l.startsWith('  speech      '));
  await until(() => reportLine() !== undefined, 'the report');
  assert.match(reportLine()!, /^ {2}speech {6}(0\.9|1\.0|1\.1)\d-(2|3)\.\d\ds$/);
});
