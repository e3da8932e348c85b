/**
 * Voice-bot skeleton: energy-based speech detection with barge-in.
 *
 * - While the bot talks, the caller starting to speak stops the bot at once (call.flush()).
 * - When the caller has spoken and then been quiet for 700 ms, the bot "answers".
 * Replace `answer()` with your speech-to-text -> LLM -> text-to-speech pipeline: feed
 * `utterance` (16 kHz slin) to STT and stream TTS audio into `call.play()` or
 * `call.createWriteStream()`; pass `call.signal` to every request so it stops on hangup.
 *
 *   npm run build && node build/examples/voice-bot.js
 */
import { createServer, type Call } from 'audiosocket';

const SPEECH_DBFS = -35; // a 20 ms frame louder than this is speech
const SPEECH_FRAMES = 3; // this many in a row start an utterance (60 ms)
const SILENCE_MS = 700; // this much quiet ends it

/** Level of a frame of 16-bit samples, in dB relative to full scale. */
function dbfs(pcm: Buffer): number {
  let sum = 0;
  const n = pcm.length >> 1;
  for (let i = 0; i < n; i++) {
    const s = pcm.readInt16LE(i * 2);
    sum += s * s;
  }
  return 10 * Math.log10(sum / Math.max(1, n) / (32768 * 32768) + 1e-12);
}

/** Stand-in for TTS: a short two-tone chime at 16 kHz. */
function answer(seconds = 1.5): Buffer {
  const rate = 16000;
  const out = Buffer.alloc(Math.round(rate * seconds) * 2);
  for (let i = 0; i < out.length / 2; i++) {
    const f = i < out.length / 4 ? 660 : 880;
    out.writeInt16LE(Math.round(6000 * Math.sin((2 * Math.PI * f * i) / rate)), i * 2);
  }
  return out;
}

async function handle(call: Call): Promise<void> {
  let loudFrames = 0;
  let speaking = false;
  let lastSpeech = 0;
  let utterance: Buffer[] = [];
  const bot = { talking: false };

  const reply = (): void => {
    const audio = Buffer.concat(utterance);
    utterance = [];
    console.log(`${call.uuid}: heard ${(audio.length / 32).toFixed(0)} ms, answering`);
    bot.talking = true;
    const done = (): boolean => (bot.talking = false);
    call.play(answer()).then(done, done);
  };

  bot.talking = true;
  const greeted = (): boolean => (bot.talking = false);
  call.play(answer(0.8)).then(greeted, greeted); // greeting

  for await (const frame of call) {
    const loud = dbfs(frame.payload) > SPEECH_DBFS;
    loudFrames = loud ? loudFrames + 1 : 0;
    const now = performance.now();
    if (loudFrames >= SPEECH_FRAMES) {
      if (!speaking) {
        speaking = true;
        if (bot.talking) {
          const dropped = call.flush(); // barge-in
          console.log(`${call.uuid}: barge-in, dropped ${dropped.toFixed(0)} ms of bot audio`);
        }
      }
      lastSpeech = now;
    }
    if (speaking) {
      utterance.push(Buffer.from(frame.payload));
      if (now - lastSpeech > SILENCE_MS) {
        speaking = false;
        reply();
      }
    }
  }
}

// Receive 16 kHz for STT, send 16 kHz from TTS; Asterisk still gets 8 kHz slin, which it always accepts.
// WS_PORT=8765 serves chan_websocket calls too, with the same handler.
const wsPort = process.env.WS_PORT;
const server = createServer(handle, {
  receive: 'slin16',
  send: 'slin16',
  ...(wsPort === undefined ? {} : { websocket: { port: Number(wsPort) } }),
});
const { port } = await server.listen({ port: Number(process.env.PORT ?? 9092) });
console.log(`voice bot listening on 127.0.0.1:${port}`);
const ws = server.websocketAddress();
if (ws !== null) console.log(`chan_websocket listening on ws://${ws.address}:${ws.port}`);
process.once('SIGINT', () => void server.close());
