/**
 * Plays a prompt to every caller, waits for one key, says which one, then hangs up.
 * The WAV can be any rate, mono or stereo: it is converted and paced for you.
 *
 *   npm run build && node build/examples/prompt-player.js prompt.wav
 */
import { once } from 'node:events';
import { createServer, type Call } from 'audiosocket';
import { readWavFile } from 'audiosocket/audio';

const promptPath = process.argv[2];
if (!promptPath) {
  console.error('usage: node build/examples/prompt-player.js PROMPT.wav');
  process.exit(2);
}
// Read once, before any call: a missing or broken file is said here, not to every caller.
const prompt = await readWavFile(promptPath).catch((err: Error) => {
  console.error(`cannot play ${promptPath}: ${err.message}`);
  process.exit(2);
});

async function handle(call: Call): Promise<void> {
  // The first key, or undefined when the caller hangs up before pressing one.
  const pressed = once(call, 'dtmf', { signal: call.signal }).then(
    ([d]) => d as string,
    () => undefined,
  );
  call.once('dtmf', () => call.flush()); // barge-in: a key stops the prompt at once
  await call.play(prompt.data, { format: prompt.format });
  const digit = await pressed;
  if (digit === undefined) return;
  console.log(`${call.uuid} pressed ${digit}`);
  await call.mark('before-hangup');
  await call.end(); // plays out whatever is queued, then sends the hangup message
}

const server = createServer(handle);
await server.listen({ port: Number(process.env.PORT ?? 9092) });
process.once('SIGINT', () => void server.close());
