/**
 * Echo server: every caller hears themselves, with no added delay in steady state.
 *
 *   npm run build && node dist/examples/echo.js
 *   (in your code: import { createServer } from 'audiosocket')
 */
import { createServer } from '../src/index.js';

const server = createServer((call) => {
  console.log(`call ${call.uuid} from ${call.remoteAddress}`);
  call.on('audio', (frame) => call.write(frame.payload, frame.kind));
  call.on('end', (end) => console.log(`call ${call.uuid} ended: ${end.reason}`));
});

const address = await server.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 9092) });
console.log(`listening on ${address.address}:${address.port}`);
process.once('SIGINT', () => void server.close());
