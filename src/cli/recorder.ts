/**
 * Records a stream of slin chunks to a WAV file opened on the first chunk (whose rate it takes),
 * writing in batches every 200 ms rather than once per frame.
 */
import type { Output } from './output.js';
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
    if (this.error) return;
    if (this.#writer === null) {
      this.#writer = createWavWriter(this.path, { encoding: 'slin', sampleRate, channels: 1 });
      this.#writer.catch(() => {}); // reported by close()
      this.#timer = setInterval(() => void this.#flush(), 200);
    }
    this.#chunks.push(Buffer.from(payload));
  }

  /** The first write error; later chunks are dropped and close() rejects with it. */
  error: Error | undefined;

  #flush(): Promise<void> {
    this.#flushing = this.#flushing
      .then(async () => {
        const writer = await this.#writer!;
        const data = Buffer.concat(this.#chunks.splice(0));
        if (data.length > 0 && this.error === undefined) await writer.write(data);
      })
      .catch((err: Error) => {
        this.error ??= err;
        this.#chunks.length = 0;
      });
    return this.#flushing;
  }

  /** Writes what is left and finalises the header. Resolves false if nothing was ever recorded. */
  async close(): Promise<boolean> {
    clearInterval(this.#timer);
    if (this.#writer === null) return false;
    await this.#flush();
    const writer = await this.#writer;
    await writer.close();
    if (this.error) throw this.error;
    return true;
  }
}

/**
 * Finalises every leg's recording (a leg without one gives `false`); a recording that fails is
 * reported on `output` and gives `false`, so one bad file does not hide the others.
 */
export function finishRecordings(
  legs: ReadonlyArray<{ number: number; recorder?: LazyWavRecorder | undefined }>,
  output: Pick<Output, 'error'>,
): Promise<boolean[]> {
  return Promise.all(
    legs.map((leg) =>
      (leg.recorder?.close() ?? Promise.resolve(false)).catch((err: Error) => {
        output.error(`call ${leg.number}: recording to ${leg.recorder!.path} failed: ${err.message}`, { call: leg.number });
        return false;
      }),
    ),
  );
}
