/**
 * WebRTC's voice activity detector (libfvad, as WASM from `@echogarden/fvad-wasm`): is a frame of
 * slin speech? Chosen because it is small (20 kB of WASM, no dependencies, no native build),
 * maintained, well understood in telephony, and costs a few µs per frame: a detector that runs
 * on every call must cost almost nothing. It is one input of the speech detector
 * (`./detector.ts`), which adds the levels, the echo model and the timing.
 *
 * Call {@link loadVad} once (WASM compiles asynchronously); the server does it in `listen()`.
 */
import type { FvadModule } from '@echogarden/fvad-wasm';
import { audioSocketError, ErrorCodes } from '../errors.js';

/** The rates libfvad works at. */
export const VAD_RATES = [8000, 16000, 32000, 48000] as const;

let wasm: FvadModule | undefined;
let loading: Promise<void> | undefined;

/** Loads the WASM detector. Idempotent; a failed load is retried by the next call. */
export function loadVad(): Promise<void> {
  loading ??= (async () => {
    const factory = (await import('@echogarden/fvad-wasm')).default;
    wasm = await factory();
  })().catch((err: unknown) => {
    loading = undefined;
    throw err;
  });
  return loading;
}

/** True once {@link loadVad} has completed. */
export function vadReady(): boolean {
  return wasm !== undefined;
}

/** One detector instance: frames of exactly 10, 20 or 30 ms at its rate. */
export interface Vad {
  readonly sampleRate: number;
  /** True if libfvad takes `frame` for speech. */
  isSpeech(frame: Int16Array): boolean;
  /** Frees the WASM state. Idempotent. */
  dispose(): void;
}

/** A libfvad instance at `sampleRate` (one of `VAD_RATES`: 8, 16, 32 or 48 kHz) and aggressiveness 0-3. */
export function createVad(sampleRate: number, aggressiveness: number): Vad {
  const m = wasm;
  if (m === undefined) {
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      'speech detection is not loaded yet: await loadVad() (a server does it in listen() unless created with preloadWasm: false)',
    );
  }
  const inst = m._fvad_new();
  if (inst === 0 || m._fvad_set_sample_rate(inst, sampleRate) !== 0 || m._fvad_set_mode(inst, aggressiveness) !== 0) {
    if (inst !== 0) m._fvad_free(inst);
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      `speech detection: rate ${sampleRate} or aggressiveness ${aggressiveness} not supported`,
    );
  }
  // Room for the longest frame (30 ms), allocated once.
  const capacity = (sampleRate * 30) / 1000;
  const buf = m._malloc(capacity * 2);
  let alive = true;
  return {
    sampleRate,
    isSpeech(frame) {
      if (!alive) throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'speech detector used after dispose()');
      if (frame.length > capacity)
        throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `a VAD frame is 10, 20 or 30 ms, got ${frame.length} samples`);
      m.HEAP16.set(frame, buf >> 1);
      return m._fvad_process(inst, buf, frame.length) === 1;
    },
    dispose() {
      if (!alive) return;
      alive = false;
      m._free(buf);
      m._fvad_free(inst);
    },
  };
}
