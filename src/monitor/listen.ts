/**
 * Listen-in: a call's audio, both directions, for a browser debugging a bot (opt-in:
 * `--monitor-listen`, `listen: true`). While someone listens, the call hands over every frame each
 * way (and only then), converted to slin 8 kHz mono and collected; the feed takes it every tick. Nobody
 * listening costs nothing; what a slow listener does not take is bounded (the oldest is dropped).
 */
import { createConverter, type Converter } from '../audio/convert.js';
import { sameFormat, type AudioFormat } from '../audio/format.js';

const SLIN8K: AudioFormat = Object.freeze({ encoding: 'slin', sampleRate: 8000, channels: 1 });
/** Most audio kept per direction for a listener that does not take it: 2 s. */
const MAX_KEPT = 2 * 16000;

class Direction {
  #chunks: Buffer[] = [];
  #bytes = 0;
  #converter: Converter | undefined;

  push(payload: Buffer, format: AudioFormat): void {
    let bytes = payload;
    if (!sameFormat(format, SLIN8K)) {
      if (this.#converter === undefined || !sameFormat(this.#converter.from, format)) {
        this.#converter?.dispose();
        this.#converter = createConverter(format, SLIN8K);
      }
      bytes = this.#converter.push(payload);
    } else bytes = Buffer.from(payload); // the call's buffer is reused: keep a copy
    if (bytes.length === 0) return;
    this.#chunks.push(bytes);
    this.#bytes += bytes.length;
    while (this.#bytes > MAX_KEPT && this.#chunks.length > 1) this.#bytes -= this.#chunks.shift()!.length;
  }

  take(): Buffer {
    const all = Buffer.concat(this.#chunks);
    this.#chunks = [];
    this.#bytes = 0;
    return all;
  }

  dispose(): void {
    this.#converter?.dispose();
  }
}

/** The audio of one call for its listeners: caller (`in`) and what we send (`out`). */
export class CallListen {
  readonly in = new Direction();
  readonly out = new Direction();
  listeners = 0;

  /** Both directions since the last take, slin 8 kHz mono, base64. */
  take(): { in: string; out: string } {
    return { in: this.in.take().toString('base64'), out: this.out.take().toString('base64') };
  }

  dispose(): void {
    this.in.dispose();
    this.out.dispose();
  }
}
