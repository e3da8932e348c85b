/**
 * Records a stream of slin chunks to a WAV file opened on the first chunk (whose rate it takes),
 * writing in batches every 200 ms rather than once per frame.
 */
import { createWavWriter, type WavWriter } from '../index.js';

export class LazyWavRecorder {
  readonly path: string;
  #chunks: Buffer[] = [];
  #writer: Promise<WavWriter> | null = null;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  /** True once the first chunk arrived and the file was started. */
  get started(): boolean {
    return this.#writer !== null;
  }

  push(payload: Uint8Array, sampleRate: number): void {
    if (this.#writer === null) {
      this.#writer = createWavWriter(this.path, { encoding: 'slin', sampleRate, channels: 1 });
      this.#writer.catch(() => {}); // reported by close()
      this.#timer = setInterval(() => void this.#flush(), 200);
    }
    this.#chunks.push(Buffer.from(payload));
  }

  #flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      const writer = await this.#writer!;
      const data = Buffer.concat(this.#chunks.splice(0));
      if (data.length > 0) await writer.write(data);
    });
    return this.#flushing;
  }

  /** Writes what is left and finalises the header. Resolves false if nothing was ever recorded. */
  async close(): Promise<boolean> {
    clearInterval(this.#timer);
    if (this.#writer === null) return false;
    await this.#flush();
    await (await this.#writer).close();
    return true;
  }
}
