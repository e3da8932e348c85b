/**
 * Memory per idle call: RSS of an `audiosocket echo` process before and after N calls that sent
 * their UUID and nothing else (keep-alive silence still flows to them).
 *
 *   npm run build && node build/bench/idle-memory.js [--calls 1000]
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { freePort, spawnServer } from './lib/proc.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '1000' } } });
const CALLS = Number(values.calls);
const port = await freePort();
const server = await spawnServer({ argv: [process.execPath, 'dist/cli/main.js', 'echo', '--port', String(port), '--quiet'], port });
await new Promise((r) => setTimeout(r, 1000));
const before = server.sample()!;
const sockets: net.Socket[] = [];
for (let i = 0; i < CALLS; i++) {
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('data', () => {}); // read (and drop) the keep-alive, as Asterisk would
  s.on('error', () => {});
  s.write(Buffer.concat([Buffer.from([1, 0, 16]), randomBytes(16)]));
  sockets.push(s);
  if (i % 100 === 99) await new Promise((r) => setTimeout(r, 50));
}
await new Promise((r) => setTimeout(r, 5000));
const after = server.sample()!;
const perCallKiB = ((after.rssMB - before.rssMB) * 1024) / CALLS;
console.log(`RSS ${before.rssMB} MB with no calls, ${after.rssMB} MB with ${CALLS} idle calls: ${perCallKiB.toFixed(1)} KiB per call`);
for (const s of sockets) s.destroy();
await server.stop();
