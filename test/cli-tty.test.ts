/**
 * The live status line, shown only on a terminal: run the CLI under `script` (a pseudo-TTY).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../src/index.js';
import { MAIN } from './helpers.js';

test('on a TTY, echo shows a live status line with active calls and frames per second', async () => {
  const child = spawn('script', ['-qc', `${process.execPath} ${MAIN} echo --port 0`, '/dev/null'], { stdio: 'pipe' });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    while (!/listening on 127\.0\.0\.1:(\d+)/.test(out)) await sleep(20);
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const client = await connect({ port });
    for (let k = 0; k < 125; k++) {
      client.sendAudio(Buffer.alloc(320, 1));
      await sleep(20);
    }
    const lines = out.split(/\r|\n/).filter((l) => l.includes('calls 1 active'));
    assert.ok(lines.length >= 1, out);
    const rates = lines.map((l) => Number(/frames\/s in (\d+)/.exec(l)?.[1] ?? NaN));
    assert.ok(rates.some((r) => r >= 35 && r <= 60), `frames/s in: ${rates.join(', ')}`);
    assert.ok(!out.includes('call ') || !/\ncall [0-9a-f-]{36} from/.test(out), 'per-call lines give way to the status line');
    await client.close();
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
});
