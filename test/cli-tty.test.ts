/**
 * The live status line, shown only on a terminal: run the CLI under `script` (a pseudo-TTY) in a
 * 60-column pane. Event lines (calls, DTMF digits, ends) still appear, each after an erase of the
 * status line, and the status line is cut to the width.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from '#lib/index.js';
import { MAIN, until } from './helpers.js';

const CLEAR = '\r\x1b[2K';
const COLUMNS = 60;

test('on a TTY, echo shows per-call and DTMF lines, each clearing the status line, which is cut to the width', async (t) => {
  const child = spawn('script', ['-qc', `stty cols ${COLUMNS} rows 20; exec ${process.execPath} ${MAIN} echo --port 0`, '/dev/null'], {
    stdio: 'pipe',
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
  await until(() => /listening on 127\.0\.0\.1:(\d+)/.test(out), 'the listening line');
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(out)![1]);
  const uuid = '0123abcd-1111-4222-8333-444455556666';
  const client = await connect({ port, uuid });
  const streaming = client.stream(Buffer.alloc(320 * 125, 1)); // 2.5 s of audio in real time
  await until(() => out.includes('frames/s in'), 'a status line');
  client.sendDtmf('7');
  await until(() => out.includes(`dtmf ${uuid} 7`), 'the DTMF line');
  // Let a status line be drawn after the DTMF line, so it must have been cleared before.
  const statusLines = (): number => out.split(CLEAR).filter((s) => s.startsWith('calls ')).length;
  const before = statusLines();
  await until(() => statusLines() > before, 'a status line after the DTMF line');
  await streaming;
  await client.hangup();
  await until(() => out.includes(`end  ${uuid}`), 'the end line');

  // Every event line starts right after an erase: never glued to the status line.
  for (const line of [`call ${uuid} from`, `dtmf ${uuid} 7 at`, `end  ${uuid}`]) {
    const at = out.indexOf(line);
    assert.ok(at > 0, `${line} shown on a terminal:\n${JSON.stringify(out)}`);
    assert.equal(
      out.slice(at - CLEAR.length, at),
      CLEAR,
      `${line} comes right after \\r\\e[2K: ${JSON.stringify(out.slice(Math.max(0, at - 80), at + 20))}`,
    );
  }
  // The status line: present, counting, never wider than the pane.
  const segments = out
    .split(CLEAR)
    .map((s) => s.split(/\r|\n/)[0]!)
    .filter((s) => s.startsWith('calls '));
  assert.ok(segments.length >= 2, JSON.stringify(out));
  for (const s of segments)
    assert.ok(s.length <= COLUMNS - 1, `status line of ${s.length} columns in a ${COLUMNS}-column pane: ${JSON.stringify(s)}`);
  assert.ok(
    segments.some((s) => s.endsWith('…')),
    'the status line was cut',
  );
  const rates = segments.map((l) => Number(/frames\/s in (\d+)/.exec(l)?.[1] ?? NaN));
  assert.ok(
    rates.some((r) => r >= 35 && r <= 60),
    `frames/s in: ${rates.join(', ')}`,
  );
  assert.ok(segments.some((s) => s.startsWith('calls 1 active')));
});
