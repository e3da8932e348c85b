/**
 * Streaming sample-rate conversion: a typed wrapper over the SpeexDSP resampler compiled to WASM
 * (`@echogarden/speex-resampler-wasm`).
 *
 * Call {@link loadResampler} once (it is async because WASM compiles asynchronously), then
 * {@link createResampler} synchronously for every call and direction. Each resampler owns its
 * filter state in WASM memory, so two streams never share state; {@link Resampler.dispose} frees it.
 * @module
 */

import type { SpeexResamplerModule } from '@echogarden/speex-resampler-wasm';
import { audioSocketError, ErrorCodes } from '../errors.js';
import { MAX_SAMPLE_RATE, MIN_SAMPLE_RATE } from './format.js';

/**
 * Default SpeexDSP quality (0..10). Quality 5 is the lowest level that meets this library's
 * targets on every tested pair: passband within 0.01 dB up to 3.4 kHz, aliases and images that
 * land in the telephone band at or below -100 dB (quality 4 reaches only about -89 dB and
 * quality 3 also droops 1.1 dB at 3.4 kHz when decimating). It costs about 4 us per 20 ms frame
 * for 8 kHz -> 16 kHz with the SIMD build. Figures from test/audio-resample.test.ts and bench/resample.ts.
 */
export const DEFAULT_RESAMPLER_QUALITY = 5;

/** Options for {@link createResampler}. */
export interface ResamplerOptions {
  /** Input sample rate in Hz, integer 8000..192000. */
  readonly inputRate: number;
  /** Output sample rate in Hz, integer 8000..192000. */
  readonly outputRate: number;
  /** 1 (default) or 2; stereo input and output are interleaved. */
  readonly channels?: 1 | 2;
  /** SpeexDSP quality 0..10, default {@link DEFAULT_RESAMPLER_QUALITY}. Higher is sharper and slower. */
  readonly quality?: number;
}

/**
 * A streaming resampler for one stream. Not shareable between calls or directions.
 *
 * Timing: output is aligned with input (the filter's leading zeros are skipped), so the first
 * `process()` returns about {@link Resampler.inputLatency} input samples' worth less than the
 * rate ratio suggests; {@link Resampler.flush} returns that remainder at the end.
 */
export interface Resampler {
  /** Input rate in Hz. */
  readonly inputRate: number;
  /** Output rate in Hz. */
  readonly outputRate: number;
  /** Channels (interleaved). */
  readonly channels: 1 | 2;
  /** SpeexDSP quality in use. */
  readonly quality: number;
  /** Filter delay in input samples per channel: how much input is held back until more arrives or `flush()`. */
  readonly inputLatency: number;
  /** True after {@link Resampler.dispose}. */
  readonly disposed: boolean;
  /**
   * Resample a chunk of any length (a whole number of frames: even for stereo). State carries over,
   * so chunk borders leave no trace: the concatenated output equals one-shot output.
   * @returns a fresh array the caller owns.
   */
  process(input: Int16Array): Int16Array;
  /**
   * Like {@link Resampler.process} but returns a view into WASM memory instead of a copy. The view
   * is valid only until the next call on any resampler (WASM memory may grow and detach it);
   * use it immediately or copy it.
   */
  processView(input: Int16Array): Int16Array;
  /**
   * End of stream: drain the filter delay. Guarantee: the total number of frames returned by all
   * `process()` calls plus this one equals `Math.round(totalInputFrames * outputRate / inputRate)`
   * exactly (the tail is computed by feeding zeros and trimmed to that length). The resampler is
   * then reset and can take a new stream.
   */
  flush(): Int16Array;
  /** Forget all buffered input and start a new stream. */
  reset(): void;
  /** Free the WASM memory. Safe to call more than once; any other method throws afterwards. */
  dispose(): void;
}

type Build = 'simd' | 'nonsimd';

let loading: Promise<void> | undefined;
let wasm: SpeexResamplerModule | undefined;
let wasmBuild: Build | undefined;

/**
 * Load and instantiate the WASM resampler. Idempotent: later calls return the same promise.
 * Prefers the SIMD build (3-4x faster; Node 20 supports WASM SIMD) and falls back to the portable one.
 * If both fail the promise rejects with the error of the portable build, and a later call retries.
 */
export function loadResampler(): Promise<void> {
  loading ??= (async () => {
    let mod: SpeexResamplerModule;
    let build: Build;
    try {
      const factory = (await import('@echogarden/speex-resampler-wasm/simd')).default;
      mod = await factory();
      build = 'simd';
    } catch {
      const factory = (await import('@echogarden/speex-resampler-wasm')).default;
      mod = await factory();
      build = 'nonsimd';
    }
    wasm = mod;
    wasmBuild = build;
  })().catch((err: unknown) => {
    loading = undefined;
    throw err;
  });
  return loading;
}

/** True once {@link loadResampler} has completed, i.e. {@link createResampler} will work for any pair of rates. */
export function resamplerReady(): boolean {
  return wasm !== undefined;
}

/** Which WASM build was loaded: `'simd'`, `'nonsimd'`, or `undefined` before {@link loadResampler} completes. */
export function resamplerBuild(): 'simd' | 'nonsimd' | undefined {
  return wasmBuild;
}

/** The WASM-side resources of one resampler; kept apart from the wrapper so the finalizer can free them. */
interface NativeState {
  readonly mod: SpeexResamplerModule;
  state: number;
  /** 8 bytes: in_len and out_len (uint32) passed by pointer to speex. */
  lenPtr: number;
  inPtr: number;
  /** Input capacity in samples (all channels). */
  inCap: number;
  outPtr: number;
  /** Output capacity in samples (all channels). */
  outCap: number;
}

function freeNative(n: NativeState): void {
  if (n.state === 0) return;
  n.mod._speex_resampler_destroy(n.state);
  n.mod._free(n.lenPtr);
  if (n.inPtr !== 0) n.mod._free(n.inPtr);
  if (n.outPtr !== 0) n.mod._free(n.outPtr);
  n.state = n.lenPtr = n.inPtr = n.outPtr = n.inCap = n.outCap = 0;
}

// Safety net for resamplers dropped without dispose(): WASM memory is invisible to the GC otherwise.
const finalizer = new FinalizationRegistry<NativeState>(freeNative);

const SPEEX_ERRORS = [
  'success',
  'memory allocation failed',
  'bad resampler state',
  'invalid argument',
  'input and output buffers overlap',
  'overflow',
];

function speexError(op: string, code: number): Error {
  return audioSocketError(ErrorCodes.INVALID_ARGUMENT, `speex resampler ${op} failed: ${SPEEX_ERRORS[code] ?? `error ${code}`}`);
}

function disposedError(): Error {
  return audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'resampler has been disposed');
}

function checkInput(input: Int16Array, channels: number): void {
  if (!(input instanceof Int16Array)) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'resampler input must be an Int16Array');
  }
  if (input.length % channels !== 0) {
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      `stereo resampler input must hold whole frames (an even length), got ${input.length}`,
    );
  }
}

const EMPTY = new Int16Array(0);

class SpeexResampler implements Resampler {
  readonly inputLatency: number;
  private readonly native: NativeState;
  private totalIn = 0;
  private totalOut = 0;
  private isDisposed = false;

  constructor(
    mod: SpeexResamplerModule,
    readonly inputRate: number,
    readonly outputRate: number,
    readonly channels: 1 | 2,
    readonly quality: number,
  ) {
    const lenPtr = mod._malloc(8);
    const state = mod._speex_resampler_init(channels, inputRate, outputRate, quality, lenPtr);
    if (state === 0) {
      const code = mod.HEAPU32[lenPtr >> 2]!;
      mod._free(lenPtr);
      throw speexError('init', code);
    }
    // Skip the filter's leading zeros so output sample k lines up with input time k / outputRate.
    mod._speex_resampler_skip_zeros(state);
    this.inputLatency = mod._speex_resampler_get_input_latency(state);
    this.native = { mod, state, lenPtr, inPtr: 0, inCap: 0, outPtr: 0, outCap: 0 };
    finalizer.register(this, this.native, this);
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  process(input: Int16Array): Int16Array {
    return this.processView(input).slice();
  }

  processView(input: Int16Array): Int16Array {
    if (this.isDisposed) throw disposedError();
    checkInput(input, this.channels);
    if (input.length === 0) return EMPTY;
    this.ensureInput(input.length);
    const n = this.native;
    n.mod.HEAP16.set(input, n.inPtr >> 1);
    const frames = input.length / this.channels;
    const produced = this.run(frames);
    this.totalIn += frames;
    this.totalOut += produced;
    return n.mod.HEAP16.subarray(n.outPtr >> 1, (n.outPtr >> 1) + produced * this.channels);
  }

  flush(): Int16Array {
    if (this.isDisposed) throw disposedError();
    const ch = this.channels;
    // Integer rounding of totalIn * out / in (exact while the product stays below 2^53).
    const target = Math.floor((2 * this.totalIn * this.outputRate + this.inputRate) / (2 * this.inputRate));
    const missing = target - this.totalOut;
    if (missing <= 0) {
      this.reset();
      return EMPTY;
    }
    const result = new Int16Array(missing * ch);
    let have = 0;
    // Feed zeros until the filter has released everything; in practice one round does it.
    const zeroFrames = this.inputLatency + 2;
    for (let round = 0; round < 4 && have < missing; round++) {
      this.ensureInput(zeroFrames * ch);
      const n = this.native;
      n.mod.HEAP16.fill(0, n.inPtr >> 1, (n.inPtr >> 1) + zeroFrames * ch);
      const produced = Math.min(this.run(zeroFrames), missing - have);
      const heapStart = n.outPtr >> 1;
      result.set(n.mod.HEAP16.subarray(heapStart, heapStart + produced * ch), have * ch);
      have += produced;
    }
    // Anything still missing stays zero: the exact length is part of the contract.
    this.reset();
    return result;
  }

  reset(): void {
    if (this.isDisposed) throw disposedError();
    const { mod, state } = this.native;
    mod._speex_resampler_reset_mem(state);
    mod._speex_resampler_skip_zeros(state);
    this.totalIn = 0;
    this.totalOut = 0;
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    finalizer.unregister(this);
    freeNative(this.native);
  }

  /** Resample `frames` frames already copied to inPtr into outPtr; returns frames produced. */
  private run(frames: number): number {
    const n = this.native;
    const ch = this.channels;
    // Speex never emits more than ceil(frames * ratio) + 1 per call; keep a little slack anyway.
    this.ensureOutput((Math.ceil((frames * this.outputRate) / this.inputRate) + 4) * ch, 0);
    let consumed = 0;
    let produced = 0;
    while (consumed < frames) {
      const lens = n.lenPtr >> 2;
      n.mod.HEAPU32[lens] = frames - consumed;
      n.mod.HEAPU32[lens + 1] = n.outCap / ch - produced;
      const err = n.mod._speex_resampler_process_interleaved_int(
        n.state,
        n.inPtr + consumed * ch * 2,
        n.lenPtr,
        n.outPtr + produced * ch * 2,
        n.lenPtr + 4,
      );
      if (err !== 0) throw speexError('process', err);
      const c = n.mod.HEAPU32[lens];
      const p = n.mod.HEAPU32[lens + 1]!;
      consumed += c;
      produced += p;
      if (consumed < frames) {
        // Input left over should only mean the output buffer filled up: grow it, keeping what is there.
        if (c === 0 && p === 0 && produced * ch < n.outCap) throw speexError('process', 2);
        this.ensureOutput(n.outCap * 2, produced * ch);
      }
    }
    return produced;
  }

  private ensureInput(samples: number): void {
    const n = this.native;
    if (samples <= n.inCap) return;
    const cap = Math.max(samples, 2 * n.inCap, 1024);
    if (n.inPtr !== 0) n.mod._free(n.inPtr);
    n.inPtr = 0;
    n.inPtr = allocOrThrow(n.mod, cap * 2);
    n.inCap = cap;
  }

  /** Make room for `samples` output samples, preserving the first `keep` samples already written. */
  private ensureOutput(samples: number, keep: number): void {
    const n = this.native;
    if (samples <= n.outCap) return;
    const cap = Math.max(samples, 2 * n.outCap, 1024);
    const ptr = allocOrThrow(n.mod, cap * 2);
    if (n.outPtr !== 0) {
      if (keep > 0) n.mod.HEAPU8.copyWithin(ptr, n.outPtr, n.outPtr + keep * 2);
      n.mod._free(n.outPtr);
    }
    n.outPtr = ptr;
    n.outCap = cap;
  }
}

function allocOrThrow(mod: SpeexResamplerModule, bytes: number): number {
  const ptr = mod._malloc(bytes);
  if (ptr === 0) throw speexError('allocation', 1);
  return ptr;
}

/** Same-rate "resampler": no filtering at all (speex would low-pass even at ratio 1). */
class PassThrough implements Resampler {
  readonly inputLatency = 0;
  readonly quality: number;
  private isDisposed = false;

  constructor(
    readonly inputRate: number,
    readonly outputRate: number,
    readonly channels: 1 | 2,
    quality: number,
  ) {
    this.quality = quality;
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  process(input: Int16Array): Int16Array {
    return this.processView(input).slice();
  }

  processView(input: Int16Array): Int16Array {
    if (this.isDisposed) throw disposedError();
    checkInput(input, this.channels);
    return input;
  }

  flush(): Int16Array {
    if (this.isDisposed) throw disposedError();
    return EMPTY;
  }

  reset(): void {
    if (this.isDisposed) throw disposedError();
  }

  dispose(): void {
    this.isDisposed = true;
  }
}

function checkRate(name: string, rate: unknown): number {
  if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < MIN_SAMPLE_RATE || rate > MAX_SAMPLE_RATE) {
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      `${name} must be an integer from ${MIN_SAMPLE_RATE} to ${MAX_SAMPLE_RATE} Hz, got ${String(rate)}`,
    );
  }
  return rate;
}

/**
 * Create a streaming resampler for one stream.
 *
 * Equal input and output rates give a pass-through that needs no WASM. Otherwise
 * {@link loadResampler} must have completed first.
 * @throws AudioSocketError `INVALID_ARGUMENT` for bad options or when the WASM module is not loaded yet.
 */
export function createResampler(options: ResamplerOptions): Resampler {
  const inputRate = checkRate('inputRate', options.inputRate);
  const outputRate = checkRate('outputRate', options.outputRate);
  const channels = options.channels ?? 1;
  if (channels !== 1 && channels !== 2) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `channels must be 1 or 2, got ${String(channels)}`);
  }
  const quality = options.quality ?? DEFAULT_RESAMPLER_QUALITY;
  if (!Number.isInteger(quality) || quality < 0 || quality > 10) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `quality must be an integer from 0 to 10, got ${String(quality)}`);
  }
  if (inputRate === outputRate) return new PassThrough(inputRate, outputRate, channels, quality);
  if (wasm === undefined) {
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      `cannot resample ${inputRate} Hz -> ${outputRate} Hz yet: await loadResampler() once before creating resamplers or ` +
        'converters (a server does it in listen() unless created with preloadWasm: false)',
    );
  }
  return new SpeexResampler(wasm, inputRate, outputRate, channels, quality);
}
