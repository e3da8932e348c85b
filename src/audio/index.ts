/**
 * The audio layer: formats, G.711, resampling, channel mixing, streaming conversion and WAV files.
 * Pure data transformation; nothing here touches the network.
 * @module
 */

export {
  type Encoding,
  type AudioFormat,
  type FormatName,
  type FormatSpec,
  FORMAT_NAMES,
  MIN_SAMPLE_RATE,
  MAX_SAMPLE_RATE,
  parseFormat,
  formatName,
  sameFormat,
  bytesPerSample,
  bytesPerFrame,
  durationMs,
  silenceByte,
  fillSilence,
} from './format.js';

export {
  decodeUlaw,
  encodeUlaw,
  decodeAlaw,
  encodeAlaw,
  decodeUlawSample,
  encodeUlawSample,
  decodeAlawSample,
  encodeAlawSample,
  ulawToSlin,
  alawToSlin,
  slinToUlaw,
  slinToAlaw,
} from './g711.js';

export { readSlin, writeSlin, slinSamples, slinBytes } from './pcm.js';

export {
  type Resampler,
  type ResamplerOptions,
  DEFAULT_RESAMPLER_QUALITY,
  loadResampler,
  resamplerReady,
  resamplerBuild,
  createResampler,
} from './resample.js';

export { stereoToMono, monoToStereo } from './mix.js';

export { type Converter, type ConverterOptions, createConverter } from './convert.js';

export {
  type WavSampleFormat,
  type WavFormat,
  type ParsedWav,
  type DecodedWav,
  WavWriter,
  parseWav,
  decodeWav,
  encodeWav,
  readWavFile,
  createWavWriter,
} from './wav.js';
