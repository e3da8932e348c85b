/**
 * audiosocket: an Asterisk AudioSocket (and chan_websocket) server for Node.js and a simulated
 * Asterisk client for testing without a PBX. The pure layers under them have their own entry
 * points: `audiosocket/audio` (formats, G.711, resampling, WAV) and `audiosocket/protocol` (the
 * wire codecs).
 *
 * ```ts
 * import { createServer } from 'audiosocket';
 * const server = createServer((call) => {
 *   call.on('audio', (frame) => call.write(frame.payload, frame.format)); // echo
 *   call.on('dtmf', (digit) => console.log(call.uuid, 'pressed', digit));
 * });
 * await server.listen({ host: '127.0.0.1', port: 9092 });
 * ```
 * @packageDocumentation
 */

// Server and calls
export {
  AudioSocketServer,
  createServer,
  type CallHandler,
  type ServerOptions,
  type ListenOptions,
  type ServerEvents,
  type ServerStats,
  type PacingOptions,
  type HandshakeFailure,
  type AudioSocketHandshakeFailure,
  type ConnectionRejection,
  type WebSocketServeOptions,
  type Call,
} from './server.js';
export type { RefusalReason } from './admission.js';
export type {
  CallBase,
  AudioFrame,
  SentFrame,
  CallEnd,
  CallEvents,
  CallStats,
  CallWarning,
  EndReason,
  PlayOptions,
  PlayFileOptions,
  WriteStreamOptions,
  BargeInOn,
} from './call/types.js';
export { AudioSocketCall, type AudioSocketFrame, type AudioSocketCallStats } from './audiosocket/call.js';
export type { PlayResult, AudioSource, BargeIn } from './outbound/queue.js';
export { InboundFormatMeter, type InboundFormatGuess } from './audiosocket/detect.js';

// Simulated Asterisk
export {
  AsteriskClient,
  connect,
  type ConnectOptions,
  type ClientClose,
  type ClientEvents,
  type ClientStats,
  type ClientViolation,
} from './audiosocket/client.js';

// The AudioSocket codec: message kinds (the `kind` of write() and of audio frames), parser and
// encoders. Also in 'audiosocket/protocol', with chan_websocket's protocol core.
export {
  Kind,
  type AudioKind,
  isAudioKind,
  sampleRateOfKind,
  audioKindForRate,
  kindName,
  MAX_PAYLOAD,
  HEADER_SIZE,
} from './protocol/kinds.js';
export { MessageParser, type MessageCallback, type ParserOptions } from './protocol/parser.js';
export {
  encodeAudio,
  encodeMessage,
  encodeUuidMessage,
  encodeDtmfMessage,
  assertServerAudio,
  HANGUP_MESSAGE,
  DTMF_DIGITS,
} from './protocol/encoder.js';
export { formatUuid, parseUuid, isUuid } from './protocol/uuid.js';

// The audio helpers a call needs (formats, WAV prompts and recordings, conversion); the whole
// audio layer (G.711, resampling, mixing, PCM, WAV parsing): 'audiosocket/audio'.
export { type Encoding, type AudioFormat, type FormatName, type FormatSpec, parseFormat, formatName, sameFormat } from './audio/format.js';
export { type DecodedWav, WavWriter, readWavFile, encodeWav, createWavWriter } from './audio/wav.js';
export { type Converter, type ConverterOptions, createConverter } from './audio/convert.js';
export { loadResampler } from './audio/resample.js';

// Clocks (inject a ManualClock to test pacing without waiting)
export { ManualClock, systemClock, type Clock, type TimerHandle } from './clock.js';

// Errors
export {
  AbortError,
  AudioSocketError,
  ErrorCodes,
  WarningCodes,
  type ErrorCode,
  type WarningCode,
  type CallWarningCode,
  type ClientViolationCode,
  type WebSocketViolationCode,
} from './errors.js';

// WebSocket (chan_websocket): the Call API over it, transport, simulated Asterisk and protocol core.
export { WebSocketCall, type WebSocketCallStats } from './websocket/call.js';
export type { BufferedOutboundOptions, CompletionMode } from './outbound/buffered.js';
export {
  WebSocketMediaServer,
  createWebSocketMediaServer,
  connectIncoming,
  type MediaHandler,
  type MediaServerOptions,
  type MediaListenOptions,
  type MediaHandshakeFailure,
  type MediaRejection,
  type MediaServerEvents,
  type MediaServerStats,
  type ConnectIncomingOptions,
} from './websocket/server.js';
export {
  MediaConnection,
  type MediaConnectionOptions,
  type MediaConnectionEvents,
  type MediaConnectionStats,
  type MediaClose,
  type MediaWarning,
  type MediaPeer,
} from './websocket/connection.js';
export {
  AsteriskWebSocketClient,
  connectWebSocket,
  type WebSocketConnectOptions,
  type WebSocketClientEvents,
  type WebSocketClientStats,
  type WebSocketClientClose,
  type WebSocketViolation,
  type PlayedMark,
} from './websocket/client.js';
// chan_websocket's protocol core (events, commands, frame sizes): 'audiosocket/protocol'.
export type { ControlFormat, MediaDirection, MediaStart, MediaStatus } from './protocol/websocket.js';

// The gateway: a call bridged to a voice bot in the bot's WebSocket protocol (Twilio Media Streams first).
export {
  BotBridge,
  bridgeCall,
  callParameters,
  type BridgeOptions,
  type BridgeEnd,
  type BridgeEndReason,
  type BridgeEvents,
  type BridgeStats,
  type BridgeWarning,
} from './gateway/bridge.js';
export { twilioProtocol, callSidOf, type TwilioOptions } from './gateway/twilio.js';
export type { BotProtocol, BotSession, BotCommand, BotMessage, BotMessageProblem, StreamInfo } from './gateway/protocol.js';

// Speech detection (docs/speech.md): the per-call detector and WebRTC's VAD under it.
export { SpeechDetector, SPEECH_DEFAULTS, levelDb, tonalityDb, type SpeechOptions, type SpeechEvent } from './speech/detector.js';
export { loadVad, createVad, type Vad } from './speech/vad.js';

// The live monitor page (docs/monitor.md): a request handler to mount, or its own listener.
export {
  createMonitor,
  serveMonitor,
  generateMonitorToken,
  type Monitor,
  type MonitorOptions,
  type MonitorServer,
  type ServeMonitorOptions,
} from './monitor/http.js';
export type {
  MonitorStateOptions,
  MonitorCallInfo,
  MonitorCallRow,
  MonitorEndedCall,
  MonitorEvent,
  MonitorTotals,
  MonitorHello,
  MonitorTick,
} from './monitor/state.js';
