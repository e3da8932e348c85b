/**
 * audiosocket: an Asterisk AudioSocket server for Node.js, a simulated Asterisk client for
 * testing without a PBX, and the pure protocol codec under both.
 *
 * ```ts
 * import { createServer } from 'audiosocket';
 * const server = createServer((call) => {
 *   call.on('audio', (frame) => call.write(frame.payload, frame.kind)); // echo
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
  type ConnectionRejection,
  type WebSocketServeOptions,
} from './server.js';
export {
  AudioSocketCall,
  type Call,
  type AudioFrame,
  type CallEnd,
  type CallEvents,
  type CallStats,
  type CallWarning,
  type EndReason,
  type PlayOptions,
  type PlayFileOptions,
  type PlaySource,
} from './call.js';
export type { PlayResult, AudioSource } from './outbound/queue.js';
export type { OutboundStats } from './outbound/outbound.js';
export { InboundFormatMeter, type InboundFormatGuess } from './detect.js';

// Simulated Asterisk
export {
  AsteriskClient,
  connect,
  type ConnectOptions,
  type ClientClose,
  type ClientEvents,
  type ClientStats,
  type ClientViolation,
} from './client.js';

// Protocol codec (pure, no I/O)
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

// Audio formats, G.711, resampling, channel mixing, conversion and WAV files (no I/O but files)
export * from './audio/index.js';

// Clocks (inject a ManualClock to test pacing without waiting)
export { ManualClock, systemClock, type Clock, type TimerHandle } from './clock.js';

// Errors
export {
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
export { WebSocketCall, type WebSocketPacingOptions } from './websocket/call.js';
export {
  WebSocketMediaServer,
  createWebSocketMediaServer,
  connectIncoming,
  type MediaHandler,
  type MediaServerOptions,
  type MediaListenOptions,
  type MediaHandshakeFailure,
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
export {
  MEDIA_SUBPROTOCOL,
  QUEUE_LENGTH_MAX,
  QUEUE_XOFF_LEVEL,
  QUEUE_XON_LEVEL,
  MAX_COMMAND_BYTES,
  ASTERISK_MAX_FRAME_BYTES,
  COMMAND_NAMES,
  maxMessagePayload,
  detectFormat,
  parseEvent,
  encodeEvent,
  encodeCommand,
  parseCommand,
  optimalFrameSizeOf,
  ptimeOf,
  audioFormatOf,
  type ControlFormat,
  type MediaDirection,
  type MediaStart,
  type MediaStatus,
  type AsteriskEvent,
  type AsteriskEventName,
  type EventInput,
  type MediaCommand,
  type MediaCommandName,
  type ParsedCommand,
} from './websocket/protocol.js';
