/**
 * Echo server: every caller hears themselves, with no added delay in steady state.
 *
 *   npm run build && node build/examples/echo.js
 *   WS_PORT=8765 node build/examples/echo.js   (chan_websocket calls too, same handler)
 *   (in your code: import { createServer } from 'audiosocket')
 */
import { createServer } from 'audiosocket';

const wsPort = process.env.WS_PORT;
const server = createServer(
  (call) => {
    console.log(`${call.transport} call ${call.uuid} from ${call.remoteAddress}`);
    call.on('audio', (frame) => call.write(frame.payload, frame.format));
    call.on('end', (end) => console.log(`call ${call.uuid} ended: ${end.reason}`));
  },
  wsPort === undefined ? {} : { websocket: { port: Number(wsPort) } },
);

const address = await server.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 9092) });
console.log(`listening on ${address.address}:${address.port}`);
const ws = server.websocketAddress();
if (ws !== null) console.log(`chan_websocket listening on ws://${ws.address}:${ws.port}`);
process.once('SIGINT', () => void server.close());
