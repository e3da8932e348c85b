/**
 * The channel-driver trap: G.711 labelled 0x10 is recognised by its byte rate and reported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, connect, InboundFormatMeter, type Call, type CallWarning } from '#lib/index.js';

async function sendFrames(port: number, frameBytes: number, fill: (i: number) => number, ms: number) {
  const server = createServer({ keepAlive: false });
  const { port: p } = await server.listen({ port });
  const callP = once(server, 'call').then(([c]) => c as Call);
  const client = await connect({ port: p });
  const call = await callP;
  const warnings: CallWarning[] = [];
  call.on('warning', (w) => warnings.push(w));
  const t0 = performance.now();
  for (let k = 0; performance.now() - t0 < ms; k++) {
    const frame = Buffer.alloc(frameBytes);
    for (let i = 0; i < frameBytes; i++) frame[i] = fill(i + k);
    client.sendAudio(frame);
    const wait = t0 + (k + 1) * 20 - performance.now();
    if (wait > 0) await sleep(wait);
  }
  await client.close();
  await server.close();
  return { call, warnings };
}

test('160-byte 0x10 frames every 20 ms are reported as u-law, with the fix', async () => {
  // Quiet u-law speech: codes near 0xff/0x7f.
  const [ulaw, slin] = await Promise.all([
    sendFrames(0, 160, (i) => (i % 2 ? 0xfe : 0x7d), 1300),
    sendFrames(0, 320, (i) => i & 0xff, 1300),
  ]);
  assert.equal(ulaw.call.inboundFormatGuess?.verdict, 'g711');
  assert.equal(ulaw.call.inboundFormatGuess?.law, 'ulaw');
  assert.ok(Math.abs(ulaw.call.inboundFormatGuess!.bytesPerSecond - 8000) < 800);
  assert.equal(ulaw.warnings.length, 1);
  assert.equal(ulaw.warnings[0]!.code, 'INBOUND_FORMAT');
  assert.match(ulaw.warnings[0]!.message, /c\(slin\)/);
  assert.equal(slin.call.inboundFormatGuess?.verdict, 'slin');
  assert.equal(slin.warnings.length, 0);
});

test('the meter tells a-law from u-law by byte values and needs a full second', () => {
  const meter = new InboundFormatMeter(8000);
  const frame = Buffer.alloc(160, 0xd5);
  let result = null;
  for (let k = 0; k < 60 && result === null; k++) result = meter.push(frame, k * 20);
  assert.ok(result);
  assert.equal(result.verdict, 'g711');
  assert.equal(result.law, 'alaw');
  const early = new InboundFormatMeter(8000);
  for (let k = 0; k < 30; k++) assert.equal(early.push(frame, k * 20), null, 'not before 1 s');
  const odd = new InboundFormatMeter(8000);
  let r2 = null;
  for (let k = 0; k < 60 && r2 === null; k++) r2 = odd.push(Buffer.alloc(50), k * 20);
  assert.equal(r2?.verdict, 'unknown');
});
