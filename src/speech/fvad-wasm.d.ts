// Type declarations for @echogarden/fvad-wasm 0.2.0, which ships none: an Emscripten factory
// exporting libfvad's C API (WebRTC's voice activity detector). Only what vad.ts uses.

declare module '@echogarden/fvad-wasm' {
  /** The instantiated Emscripten module. Heap views are replaced when WASM memory grows. */
  export interface FvadModule {
    HEAP16: Int16Array;
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    _fvad_new(): number;
    _fvad_free(inst: number): void;
    _fvad_reset(inst: number): void;
    /** 0 (quality) .. 3 (very aggressive); returns 0, or -1 for a bad mode. */
    _fvad_set_mode(inst: number, mode: number): number;
    /** 8000, 16000, 32000 or 48000; returns 0, or -1. */
    _fvad_set_sample_rate(inst: number, rate: number): number;
    /** 10, 20 or 30 ms of samples; returns 1 (speech), 0 (not), -1 (bad length). */
    _fvad_process(inst: number, frame: number, length: number): number;
  }
  const factory: (moduleArg?: Record<string, unknown>) => Promise<FvadModule>;
  export default factory;
}
