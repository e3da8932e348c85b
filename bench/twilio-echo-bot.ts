/**
 * The bench's voice bot: a Twilio Media Streams server that sends every caller chunk straight
 * back as its own audio, doing nothing else, so what the gateway benchmark measures is the
 * gateway. (The tests' bot, test/twilio-bot.ts, also checks every message; this one is lean.)
 *
 *   node build/bench/twilio-echo-bot.js --port 5050
 */
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({ options: { host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' } } });
const wss = new WebSocketServer({ host: values.host, port: Number(values.port), perMessageDeflate: false });
wss.on('connection', (ws) => {
  let streamSid = '';
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString()) as { event: string; streamSid?: string; media?: { payload: string } };
    if (msg.event === 'start') streamSid = msg.streamSid ?? '';
    else if (msg.event === 'media') ws.send(JSON.stringify({ event: 'media', streamSid, media: { payload: msg.media!.payload } }));
  });
});
wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(`twilio echo bot listening on ${typeof a === 'string' || a === null ? String(a) : `${a.address}:${a.port}`}\n`);
});
