/**
 * Records what each caller says to `<uuid>.wav` at 16 kHz (the rate most speech-to-text engines
 * want), converted per call from whatever Asterisk sends.
 *
 *   npm run build && node build/examples/record-to-wav.js
 */
import { createServer, createWavWriter } from 'audiosocket';

const server = createServer(
  async (call) => {
    // Attach the consumer before the first await; the iterator buffers from here on.
    const frames = call.frames();
    const wav = await createWavWriter(`${call.uuid}.wav`, 'slin16');
    for await (const frame of frames) await wav.write(frame.payload);
    await wav.close(); // the loop ends when the call does; the header gets its final sizes
    console.log(`saved ${call.uuid}.wav (${call.endReason})`);
  },
  { receive: 'slin16' },
);

await server.listen({ port: Number(process.env.PORT ?? 9092) });
process.once('SIGINT', () => void server.close());
