/**
 * `audiosocket/protocol`: the wire formats, pure (no I/O). The AudioSocket codec (kinds, the
 * streaming parser, encoders that refuse what Asterisk would reject, UUIDs; see
 * res/res_audiosocket.c) and the chan_websocket protocol core (control events and commands,
 * formats and frame sizes; see channels/chan_websocket.c).
 * @module
 */

export { Kind, type AudioKind, isAudioKind, sampleRateOfKind, audioKindForRate, kindName, MAX_PAYLOAD, HEADER_SIZE } from './kinds.js';
export { MessageParser, type MessageCallback, type ParserOptions } from './parser.js';
export {
  encodeAudio,
  encodeMessage,
  encodeUuidMessage,
  encodeDtmfMessage,
  assertServerAudio,
  HANGUP_MESSAGE,
  DTMF_DIGITS,
} from './encoder.js';
export { formatUuid, parseUuid, isUuid } from './uuid.js';

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
} from './websocket.js';
