/**
 * Plays a prompt to every caller, waits for one key, says which one, then hangs up.
 * The WAV can be any rate, mono or stereo: it is converted and paced for you.
 *
 *   npm run build && node build/examples/prompt-player.js prompt.wav
 */
import { once } from 'node:events';
import { createServer, type Call } from 'audiosocket';

const promptPath = process.argv[2];
if (!promptPath) {
  console.error('usage: node build/examples/prompt-player.js PROMPT.wav');
  process.exit(2);
}

async function handle(call: Call): Promise<void> {
  const pressed = once(call, 'dtmf', { signal: call.signal }).then(([d]) => d as string);
  pressed.catch(() => {}); // the caller may hang up first
  call.once('dtmf', () => call.flush()); // barge-in: a key stops the prompt at once
  await call.playFile(promptPath!);
  const digit = await pressed;
  console.log(`${call.uuid} pressed ${digit}`);
  await call.mark('before-hangup');
  await call.end(); // plays out whatever is queued, then sends the hangup message
}

const server = createServer(handle);
await server.listen({ port: Number(process.env.PORT ?? 9092) });
process.once('SIGINT', () => void server.close());
