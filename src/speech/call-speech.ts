/**
 * Speech detection attached to one call: the caller's audio, in whatever format it arrives, is
 * converted to slin at a rate the VAD works at (8 kHz for narrowband calls, 16 kHz otherwise)
 * and fed to the detector with its instant on the call's timeline; every frame the call sends
 * is fed as its level at its playout instant, for the echo model. The call owns one of these
 * while detection is on (`call.detectSpeech()`, server option `speech`).
 */
import { createConverter, type Converter } from '../audio/convert.js';
import { decodeAlawSample, decodeUlawSample } from '../audio/g711.js';
import { sameFormat, type AudioFormat } from '../audio/format.js';
import { createVad } from './vad.js';
import { SPEECH_DEFAULTS, SpeechDetector, type SpeechEvent, type SpeechOptions } from './detector.js';

/** The level of a frame we sent, dBFS, from every 4th sample (enough for the echo model). */
function sentLevelDb(payload: Buffer, format: AudioFormat): number {
  let sum = 0;
  let n = 0;
  if (format.encoding === 'slin') {
    const step = 8 * format.channels; // every 4th sample, 2 bytes each
    for (let i = 0; i + 1 < payload.length; i += step, n++) {
      const v = payload.readInt16LE(i);
      sum += v * v;
    }
  } else {
    const decode = format.encoding === 'ulaw' ? decodeUlawSample : decodeAlawSample;
    for (let i = 0; i < payload.length; i += 4, n++) {
      const v = decode(payload[i]!);
      sum += v * v;
    }
  }
  return 10 * Math.log10(sum / Math.max(1, n) / (32768 * 32768));
}

export class CallSpeech {
  readonly #options: SpeechOptions;
  readonly #onEvent: (e: SpeechEvent) => void;
  /** Made at the first audio, at the rate its band needs; remade if the band changes. */
  #detector: SpeechDetector | undefined;
  #target: AudioFormat | undefined;
  #converter: Converter | undefined;
  #converterFrom: AudioFormat | undefined;

  constructor(options: SpeechOptions, onEvent: (e: SpeechEvent) => void) {
    this.#options = options;
    this.#onEvent = onEvent;
  }

  get speaking(): boolean {
    return this.#detector?.speaking ?? false;
  }

  /** The detector for audio in `wire`: 8 kHz for narrowband audio, 16 kHz for wider. */
  #detectorFor(wire: AudioFormat): SpeechDetector {
    const rate = wire.sampleRate <= 8000 ? 8000 : 16000;
    if (this.#detector !== undefined && this.#detector.sampleRate === rate) return this.#detector;
    this.#detector?.dispose();
    this.#target = { encoding: 'slin', sampleRate: rate, channels: 1 };
    const aggressiveness = this.#options.aggressiveness ?? SPEECH_DEFAULTS.aggressiveness;
    return (this.#detector = new SpeechDetector(createVad(rate, aggressiveness), this.#options));
  }

  /** The caller's audio as received (`wire`), its last sample arriving at `atMs`. */
  inbound(wire: AudioFormat, payload: Buffer, atMs: number): void {
    const detector = this.#detectorFor(wire);
    let bytes: Buffer = payload;
    if (!sameFormat(wire, this.#target!)) {
      if (this.#converterFrom !== wire) {
        this.#converter?.dispose();
        this.#converter = createConverter(wire, this.#target!);
        this.#converterFrom = wire;
      }
      bytes = this.#converter!.push(payload);
    }
    if (bytes.length < 2) return;
    // An Int16Array needs an even offset; received audio may sit anywhere in its chunk.
    const samples =
      (bytes.byteOffset & 1) === 0
        ? new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1)
        : new Int16Array(Uint8Array.from(bytes.subarray(0, bytes.length & ~1)).buffer);
    for (const e of detector.pushInbound(samples, atMs)) this.#onEvent(e);
  }

  /** A frame we sent, playing from `atMs` (none before the caller's first audio: nothing to compare yet). */
  outbound(payload: Buffer, format: AudioFormat, atMs: number): void {
    this.#detector?.noteOutbound(sentLevelDb(payload, format), atMs);
  }

  dispose(): void {
    this.#converter?.dispose();
    this.#detector?.dispose();
  }
}
