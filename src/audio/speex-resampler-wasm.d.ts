// Type declarations for @echogarden/speex-resampler-wasm 0.3.0, which ships none.
// Only the members src/audio/resample.ts uses are declared. Both builds (default = non-SIMD,
// "/simd") are Emscripten factories exporting the same SpeexDSP C API.

declare module '@echogarden/speex-resampler-wasm' {
  /** The instantiated Emscripten module. Heap views are replaced when WASM memory grows. */
  export interface SpeexResamplerModule {
    HEAP16: Int16Array;
    HEAPU8: Uint8Array;
    HEAPU32: Uint32Array;
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    _speex_resampler_init(channels: number, inRate: number, outRate: number, quality: number, errPtr: number): number;
    _speex_resampler_destroy(state: number): void;
    _speex_resampler_process_interleaved_int(state: number, inPtr: number, inLenPtr: number, outPtr: number, outLenPtr: number): number;
    _speex_resampler_get_input_latency(state: number): number;
    _speex_resampler_get_output_latency(state: number): number;
    _speex_resampler_skip_zeros(state: number): number;
    _speex_resampler_reset_mem(state: number): number;
  }
  const factory: (moduleArg?: Record<string, unknown>) => Promise<SpeexResamplerModule>;
  export default factory;
}

declare module '@echogarden/speex-resampler-wasm/simd' {
  import type { SpeexResamplerModule } from '@echogarden/speex-resampler-wasm';
  const factory: (moduleArg?: Record<string, unknown>) => Promise<SpeexResamplerModule>;
  export default factory;
}
