/**
 * chan_websocket control protocol: pure, no I/O.
 *
 * Asterisk's WebSocket channel driver (`channels/chan_websocket.c`, Asterisk 20.16/21.11/22.6/
 * 23.0 and later) carries a call's media over one WebSocket: binary messages are raw audio in the
 * channel's format, text messages are control messages. Control messages come in two formats,
 * chosen by Asterisk (`control_message_format` in `chan_websocket.conf`, or the `f()` dial
 * option): the legacy single-line `plain-text` and, from 20.18/22.8/23.2, `json`. The app must
 * answer in the format Asterisk uses; the format is visible in the first message, MEDIA_START.
 *
 * This module turns Asterisk's text messages into typed {@link AsteriskEvent}s
 * ({@link parseEvent}), encodes our commands in either format ({@link encodeCommand}), and
 * encodes Asterisk's events (for the simulated Asterisk, {@link encodeEvent}) and parses our
 * commands ({@link parseCommand}) the way `handle_command()` does. Every limit is Asterisk's own;
 * `docs/websocket.md` cites the functions they come from.
 * @module
 */
import { audioSocketError, ErrorCodes } from '../errors.js';
import { parseFormat, type AudioFormat, type FormatName, FORMAT_NAMES } from '../audio/format.js';

/** The WebSocket subprotocol Asterisk's chan_websocket speaks (`ast_websocket_sub_protocol_alloc("media")`). */
export const MEDIA_SUBPROTOCOL = 'media';

/** Control message format: `plain-text` (Asterisk's default) or `json` (20.18/22.8/23.2+). */
export type ControlFormat = 'plain-text' | 'json';

/** Frames Asterisk queues at most; a binary message arriving at this length is dropped whole (`QUEUE_LENGTH_MAX`). */
export const QUEUE_LENGTH_MAX = 1000;
/** Queue length at which Asterisk sends MEDIA_XOFF (`QUEUE_LENGTH_XOFF_LEVEL`). */
export const QUEUE_XOFF_LEVEL = 900;
/** Asterisk sends MEDIA_XON once the queue is below this length again (`QUEUE_LENGTH_XON_LEVEL`). */
export const QUEUE_XON_LEVEL = 800;

/**
 * Longest text message Asterisk reads, bytes (`MAX_TEXT_MESSAGE_LEN`). A longer command is
 * ignored with a log warning, so {@link encodeCommand} refuses to build one.
 */
export const MAX_COMMAND_BYTES = 128;

/**
 * Asterisk reads each WebSocket frame into a fixed buffer of 65535 bytes, header included
 * (`AST_WEBSOCKET_MAX_RX_PAYLOAD_SIZE` in `ast_websocket_read()`); a larger frame closes the
 * connection with 1009 and hangs up the channel.
 */
export const ASTERISK_MAX_FRAME_BYTES = 65535;

/**
 * Largest binary payload Asterisk accepts in one message. `masked` is true when we are the
 * WebSocket client (the `INCOMING` direction, `/media/<id>`): client frames carry a 4-byte mask.
 */
export function maxMessagePayload(masked: boolean): number {
  // 2-byte header + 2-byte extended length for 126..65535; masks add 4.
  return ASTERISK_MAX_FRAME_BYTES - 4 - (masked ? 4 : 0);
}

/** Media direction, from the app's point of view (`d()` dial option, SET_MEDIA_DIRECTION). */
export type MediaDirection = 'both' | 'in' | 'out';

/** What Asterisk says in MEDIA_START. */
export interface MediaStart {
  /** The `websocket_client.conf` section, or a UUID for `WebSocket/INCOMING`. */
  readonly connectionId: string;
  /** Channel name, e.g. `WebSocket/probe/0x7f…`. */
  readonly channel: string;
  /** The channel's unique id; absent before 20.17/22.7/23.1. */
  readonly channelId: string | undefined;
  /** Asterisk's format name, e.g. `slin16`, `ulaw`, `opus`. */
  readonly format: string;
  /** The format as an {@link AudioFormat} when the audio module knows it (slin at any rate, ulaw, alaw). */
  readonly audioFormat: AudioFormat | undefined;
  /** Bytes per `ptime` of audio; Asterisk re-frames what we send to this. 0 in passthrough codecs (opus, speex, g729). */
  readonly optimalFrameSize: number;
  /** Frame duration in ms (the codec's default, 20 for every built-in audio codec). */
  readonly ptime: number;
  /** The channel's variables (JSON format only; empty in plain text). */
  readonly channelVariables: Readonly<Record<string, string>>;
}

/** Driver state reported by STATUS (answer to GET_STATUS). */
export interface MediaStatus {
  readonly channelId: string | undefined;
  readonly queueLength: number;
  readonly xonLevel: number;
  readonly xoffLevel: number;
  readonly queueFull: boolean;
  readonly bulkMedia: boolean;
  readonly mediaPaused: boolean;
}

/** A control message from Asterisk, typed. `channelId` is absent in the plain-text no-data events and before 20.17/22.7. */
export type AsteriskEvent =
  | ({ readonly event: 'MEDIA_START' } & MediaStart)
  | { readonly event: 'MEDIA_XOFF'; readonly channelId: string | undefined }
  | { readonly event: 'MEDIA_XON'; readonly channelId: string | undefined }
  | { readonly event: 'QUEUE_DRAINED'; readonly channelId: string | undefined }
  | { readonly event: 'MEDIA_MARK_PROCESSED'; readonly channelId: string | undefined; readonly correlationId: string }
  | { readonly event: 'MEDIA_BUFFERING_COMPLETED'; readonly channelId: string | undefined; readonly correlationId: string }
  | { readonly event: 'DTMF_END'; readonly channelId: string | undefined; readonly digit: string }
  | ({ readonly event: 'STATUS' } & MediaStatus)
  | { readonly event: 'ERROR'; readonly channelId: string | undefined; readonly errorText: string }
  | {
      /** An event this library does not know (a newer Asterisk); never fatal. */
      readonly event: 'UNKNOWN';
      readonly name: string;
      readonly fields: Readonly<Record<string, unknown>>;
    };

/** Names of the events {@link parseEvent} types. */
export type AsteriskEventName = Exclude<AsteriskEvent['event'], 'UNKNOWN'>;

/** A command to Asterisk (`handle_command()`). */
export type MediaCommand =
  | { readonly command: 'ANSWER' }
  | { readonly command: 'HANGUP' }
  | { readonly command: 'START_MEDIA_BUFFERING' }
  | { readonly command: 'STOP_MEDIA_BUFFERING'; readonly correlationId?: string }
  | { readonly command: 'MARK_MEDIA'; readonly correlationId?: string }
  | { readonly command: 'FLUSH_MEDIA' }
  | { readonly command: 'REPORT_QUEUE_DRAINED' }
  | { readonly command: 'GET_STATUS' }
  | { readonly command: 'PAUSE_MEDIA' }
  | { readonly command: 'CONTINUE_MEDIA' }
  /** JSON control format only; Asterisk 20.19/22.9/23.3+. */
  | { readonly command: 'SET_MEDIA_DIRECTION'; readonly direction: MediaDirection };

/** Every command name Asterisk knows. */
export type MediaCommandName = MediaCommand['command'];

/** Every command name, as Asterisk spells it (case matters: `ast_strings_equal`). */
export const COMMAND_NAMES: readonly MediaCommandName[] = Object.freeze([
  'ANSWER',
  'HANGUP',
  'START_MEDIA_BUFFERING',
  'STOP_MEDIA_BUFFERING',
  'MARK_MEDIA',
  'FLUSH_MEDIA',
  'REPORT_QUEUE_DRAINED',
  'GET_STATUS',
  'PAUSE_MEDIA',
  'CONTINUE_MEDIA',
  'SET_MEDIA_DIRECTION',
] as const);

const DIRECTIONS: readonly MediaDirection[] = ['both', 'in', 'out'];

/** DTMF digits Asterisk can report (`send_digit_end` gets one character). */
const DTMF_RE = /^[0-9*#A-Da-d]$/;

function protocolError(message: string, cause?: unknown): never {
  throw audioSocketError(ErrorCodes.PROTOCOL, message, cause);
}

function quote(s: string, max = 80): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/**
 * Which control format a text message is in: JSON messages are objects, plain-text ones start
 * with the upper-case event or command name. Leading whitespace is ignored, as Asterisk's
 * `ast_strip()` does.
 */
export function detectFormat(text: string): ControlFormat {
  return text.trimStart().startsWith('{') ? 'json' : 'plain-text';
}

// ---------------------------------------------------------------------------------------------
// Asterisk → app: events

function toInt(name: string, value: unknown, min: number): number {
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min) {
    protocolError(`${name} must be an integer >= ${min}, got ${quote(String(value))}`);
  }
  return n;
}

function toBool(name: string, value: unknown): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  return protocolError(`${name} must be true or false, got ${quote(String(value))}`);
}

function optString(name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') protocolError(`${name} must be a string, got ${typeof value}`);
  return value;
}

function reqString(name: string, value: unknown, event: string): string {
  const s = optString(name, value);
  if (s === undefined) protocolError(`${event} without ${name}`);
  return s;
}

/** The audio module's format for an Asterisk format name, if it has one. */
export function audioFormatOf(name: string): AudioFormat | undefined {
  return (FORMAT_NAMES as readonly string[]).includes(name) ? parseFormat(name as FormatName) : undefined;
}

function buildEvent(name: string, f: Record<string, unknown>): AsteriskEvent {
  const channelId = optString('channel_id', f['channel_id']);
  switch (name) {
    case 'MEDIA_START': {
      const format = reqString('format', f['format'], name);
      const vars = f['channel_variables'];
      const channelVariables: Record<string, string> = {};
      if (vars !== undefined) {
        if (typeof vars !== 'object' || vars === null || Array.isArray(vars)) {
          protocolError('MEDIA_START channel_variables must be an object');
        }
        for (const [k, v] of Object.entries(vars)) channelVariables[k] = typeof v === 'string' ? v : String(v);
      }
      return {
        event: name,
        connectionId: reqString('connection_id', f['connection_id'], name),
        channel: reqString('channel', f['channel'], name),
        channelId,
        format,
        audioFormat: audioFormatOf(format),
        optimalFrameSize: toInt('optimal_frame_size', f['optimal_frame_size'], 0),
        ptime: toInt('ptime', f['ptime'], 1),
        channelVariables: Object.freeze(channelVariables),
      };
    }
    case 'MEDIA_XOFF':
    case 'MEDIA_XON':
    case 'QUEUE_DRAINED':
      return { event: name, channelId };
    case 'MEDIA_MARK_PROCESSED':
    case 'MEDIA_BUFFERING_COMPLETED':
      return { event: name, channelId, correlationId: optString('correlation_id', f['correlation_id']) ?? '' };
    case 'DTMF_END': {
      const digit = reqString('digit', f['digit'], name);
      if (!DTMF_RE.test(digit)) protocolError(`DTMF_END digit must be one of 0-9 * # A-D, got ${quote(digit)}`);
      return { event: name, channelId, digit };
    }
    case 'STATUS':
      return {
        event: name,
        channelId,
        queueLength: toInt('queue_length', f['queue_length'], 0),
        xonLevel: toInt('xon_level', f['xon_level'], 0),
        xoffLevel: toInt('xoff_level', f['xoff_level'], 0),
        queueFull: toBool('queue_full', f['queue_full']),
        bulkMedia: toBool('bulk_media', f['bulk_media']),
        mediaPaused: toBool('media_paused', f['media_paused']),
      };
    case 'ERROR':
      return { event: name, channelId, errorText: optString('error_text', f['error_text']) ?? '' };
    default:
      return { event: 'UNKNOWN', name, fields: Object.freeze({ ...f }) };
  }
}

/**
 * Parses plain-text `NAME key:value key:value`. Values never contain spaces in what Asterisk
 * sends, except `error_text`, which is last and runs to the end of the line; a token without a
 * colon is joined to the previous value, so an odd channel name does not lose data.
 */
function parsePlainFields(rest: string): Record<string, string> {
  const fields: Record<string, string> = {};
  let last: string | undefined;
  let i = 0;
  while (i < rest.length) {
    while (rest[i] === ' ') i++;
    if (i >= rest.length) break;
    let end = rest.indexOf(' ', i);
    if (end < 0) end = rest.length;
    const token = rest.slice(i, end);
    const colon = token.indexOf(':');
    if (colon > 0 && /^[a-z_]+$/.test(token.slice(0, colon))) {
      const key = token.slice(0, colon);
      if (key === 'error_text') {
        fields[key] = rest.slice(i + colon + 1);
        break;
      }
      fields[key] = token.slice(colon + 1);
      last = key;
    } else if (last !== undefined) {
      fields[last] += ` ${token}`;
    } else {
      protocolError(`plain-text message field without a name: ${quote(token)}`);
    }
    i = end + 1;
  }
  return fields;
}

/**
 * Parses one text message from Asterisk into a typed event.
 *
 * @param text The message, as received.
 * @param format The connection's control format; default: detected from the message
 *   ({@link detectFormat}).
 * @throws AudioSocketError `ERR_AUDIOSOCKET_PROTOCOL` for malformed JSON, a JSON value that is
 *   not an object with a string `event`, a message in the other format, or a known event with a
 *   missing or ill-typed field. Unknown event names give `{ event: 'UNKNOWN' }`, not an error.
 */
export function parseEvent(text: string, format: ControlFormat = detectFormat(text)): AsteriskEvent {
  const stripped = text.trim();
  if (stripped.length === 0) protocolError('empty control message');
  if (format === 'json') {
    if (!stripped.startsWith('{')) protocolError(`expected a JSON control message, got ${quote(stripped)}`);
    let value: unknown;
    try {
      value = JSON.parse(stripped);
    } catch (err) {
      protocolError(`malformed JSON control message ${quote(stripped)}: ${(err as Error).message}`, err);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      protocolError(`JSON control message is not an object: ${quote(stripped)}`);
    }
    const obj = value as Record<string, unknown>;
    if (typeof obj['event'] !== 'string') protocolError(`JSON control message without a string "event": ${quote(stripped)}`);
    return buildEvent(obj['event'], obj);
  }
  if (stripped.startsWith('{')) protocolError(`expected a plain-text control message, got JSON ${quote(stripped)}`);
  const space = stripped.indexOf(' ');
  const name = space < 0 ? stripped : stripped.slice(0, space);
  const rest = space < 0 ? '' : stripped.slice(space + 1);
  if (!/^[A-Z][A-Z0-9_]*$/.test(name)) protocolError(`plain-text control message with a bad name: ${quote(stripped)}`);
  // MEDIA_MARK_PROCESSED and MEDIA_BUFFERING_COMPLETED carry the correlation id bare, as sent.
  if (name === 'MEDIA_MARK_PROCESSED' || name === 'MEDIA_BUFFERING_COMPLETED') {
    return { event: name, channelId: undefined, correlationId: rest };
  }
  return buildEvent(name, parsePlainFields(rest));
}

/** An event as the simulated Asterisk builds it (snake-case fields are filled from the typed ones). */
export type EventInput = Exclude<AsteriskEvent, { event: 'UNKNOWN' }>;

/**
 * Encodes an event the way chan_websocket's `_create_event_*()` functions print it. Used by
 * the simulated Asterisk and by tests; JSON objects are compact, fields in Asterisk's order.
 */
export function encodeEvent(e: EventInput, format: ControlFormat): string {
  const json = format === 'json';
  const id = e.channelId;
  switch (e.event) {
    case 'MEDIA_START':
      if (json) {
        return JSON.stringify({
          event: e.event,
          connection_id: e.connectionId,
          channel: e.channel,
          ...(e.channelId === undefined ? {} : { channel_id: e.channelId }),
          format: e.format,
          optimal_frame_size: e.optimalFrameSize,
          ptime: e.ptime,
          channel_variables: e.channelVariables,
        });
      }
      return (
        `MEDIA_START connection_id:${e.connectionId} channel:${e.channel}` +
        (e.channelId === undefined ? '' : ` channel_id:${e.channelId}`) +
        ` format:${e.format} optimal_frame_size:${e.optimalFrameSize} ptime:${e.ptime}`
      );
    case 'MEDIA_XOFF':
    case 'MEDIA_XON':
    case 'QUEUE_DRAINED':
      return json ? JSON.stringify({ event: e.event, channel_id: id ?? '' }) : e.event;
    case 'MEDIA_MARK_PROCESSED':
    case 'MEDIA_BUFFERING_COMPLETED':
      if (json) return JSON.stringify({ event: e.event, channel_id: id ?? '', correlation_id: e.correlationId });
      return e.correlationId === '' ? e.event : `${e.event} ${e.correlationId}`;
    case 'DTMF_END':
      if (json) return JSON.stringify({ event: e.event, channel_id: id ?? '', digit: e.digit });
      return `DTMF_END digit:${e.digit}${id === undefined ? '' : ` channel_id:${id}`}`;
    case 'STATUS':
      if (json) {
        return JSON.stringify({
          event: e.event,
          channel_id: id ?? '',
          queue_length: e.queueLength,
          xon_level: e.xonLevel,
          xoff_level: e.xoffLevel,
          queue_full: e.queueFull,
          bulk_media: e.bulkMedia,
          media_paused: e.mediaPaused,
        });
      }
      return (
        `STATUS channel_id:${id ?? ''} queue_length:${e.queueLength} xon_level:${e.xonLevel} xoff_level:${e.xoffLevel}` +
        ` queue_full:${e.queueFull} bulk_media:${e.bulkMedia} media_paused:${e.mediaPaused}`
      );
    case 'ERROR':
      if (json) return JSON.stringify({ event: e.event, channel_id: id ?? '', error_text: e.errorText });
      return `ERROR channel_id:${id ?? ''} error_text:${e.errorText}`;
  }
}

// ---------------------------------------------------------------------------------------------
// App → Asterisk: commands

function checkCorrelationId(id: string | undefined, format: ControlFormat, command: string): void {
  if (id === undefined) return;
  if (typeof id !== 'string') {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `${command} correlationId must be a string, got ${typeof id}`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `${command} correlationId must not contain control characters`);
  }
  if (format === 'plain-text' && id !== id.trim()) {
    // Asterisk strips the message (ast_strip), so the id would come back without them.
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      `${command} correlationId must not start or end with whitespace in plain-text format, got ${quote(id)}`,
    );
  }
}

/**
 * Encodes a command as Asterisk's `handle_command()` reads it: JSON
 * `{"command":"MARK_MEDIA","correlation_id":"m1"}` or plain text `MARK_MEDIA m1`.
 *
 * @throws AudioSocketError `ERR_AUDIOSOCKET_INVALID_ARGUMENT` for an unknown command, a bad
 *   correlation id or direction; `ERR_AUDIOSOCKET_INVALID_MESSAGE` when the encoded command is
 *   longer than {@link MAX_COMMAND_BYTES} (Asterisk would ignore it) or SET_MEDIA_DIRECTION is
 *   asked for in plain text (Asterisk answers with an ERROR).
 */
export function encodeCommand(cmd: MediaCommand, format: ControlFormat): string {
  if (typeof cmd !== 'object' || cmd === null || !COMMAND_NAMES.includes(cmd.command)) {
    throw audioSocketError(
      ErrorCodes.INVALID_ARGUMENT,
      `unknown chan_websocket command ${quote(String((cmd as { command?: unknown } | null)?.command))}; known: ${COMMAND_NAMES.join(', ')}`,
    );
  }
  if (format !== 'json' && format !== 'plain-text') {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `control format must be 'json' or 'plain-text', got ${quote(String(format))}`);
  }
  let text: string;
  if (cmd.command === 'SET_MEDIA_DIRECTION') {
    if (!DIRECTIONS.includes(cmd.direction)) {
      throw audioSocketError(
        ErrorCodes.INVALID_ARGUMENT,
        `direction must be one of ${DIRECTIONS.join(', ')}, got ${quote(String(cmd.direction))}`,
      );
    }
    if (format !== 'json') {
      throw audioSocketError(ErrorCodes.INVALID_MESSAGE, 'SET_MEDIA_DIRECTION exists only in the JSON control format');
    }
    text = JSON.stringify({ command: cmd.command, direction: cmd.direction });
  } else if (cmd.command === 'MARK_MEDIA' || cmd.command === 'STOP_MEDIA_BUFFERING') {
    checkCorrelationId(cmd.correlationId, format, cmd.command);
    const id = cmd.correlationId;
    if (format === 'json')
      text = JSON.stringify(id === undefined ? { command: cmd.command } : { command: cmd.command, correlation_id: id });
    else text = id === undefined || id === '' ? cmd.command : `${cmd.command} ${id}`;
  } else {
    text = format === 'json' ? JSON.stringify({ command: cmd.command }) : cmd.command;
  }
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_COMMAND_BYTES) {
    throw audioSocketError(
      ErrorCodes.INVALID_MESSAGE,
      `${cmd.command} encodes to ${bytes} bytes; Asterisk ignores text messages longer than ${MAX_COMMAND_BYTES} bytes (use a shorter correlation id)`,
    );
  }
  return text;
}

/** What {@link parseCommand} makes of a text message, as Asterisk's `process_text_message()` would. */
export type ParsedCommand =
  | { readonly ok: true; readonly command: MediaCommand }
  | {
      readonly ok: false;
      /**
       * - `empty`, `too-long`: ignored with a log warning.
       * - `bad-json`: Asterisk answers `ERROR` "Unable to parse JSON command".
       * - `unknown`: ignored with a log warning (also a JSON message sent to a plain-text channel).
       * - `json-only`: SET_MEDIA_DIRECTION in plain text; Asterisk answers `ERROR`.
       * - `bad-direction`: SET_MEDIA_DIRECTION without a valid direction; Asterisk answers `ERROR`.
       */
      readonly reason: 'empty' | 'too-long' | 'bad-json' | 'unknown' | 'json-only' | 'bad-direction';
      readonly name: string | undefined;
      readonly message: string;
    };

/**
 * Reads one text message the way chan_websocket does (`process_text_message()` then
 * `handle_command()`): empty and over-long messages are dropped, the rest is stripped of
 * surrounding whitespace; in plain text the command ends at the first space and the rest is its
 * argument; in JSON `command`, `correlation_id` and `direction` are read. For the simulated Asterisk.
 */
export function parseCommand(payload: Buffer | string, format: ControlFormat): ParsedCommand {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (length === 0) return { ok: false, reason: 'empty', name: undefined, message: 'text message has 0 length' };
  if (length > MAX_COMMAND_BYTES) {
    return {
      ok: false,
      reason: 'too-long',
      name: undefined,
      message: `text message of length ${length} exceeds maximum length of ${MAX_COMMAND_BYTES}`,
    };
  }
  const text = (typeof payload === 'string' ? payload : payload.toString('utf8')).trim();
  let name: string | undefined;
  let arg: string | undefined;
  let json: Record<string, unknown> | undefined;
  if (format === 'json') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return { ok: false, reason: 'bad-json', name: undefined, message: 'Unable to parse JSON command' };
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      // ast_json_load_buf accepts only objects and arrays at the top level; neither has a command.
      return {
        ok: false,
        reason: Array.isArray(value) ? 'unknown' : 'bad-json',
        name: undefined,
        message: Array.isArray(value) ? '(null) command unknown' : 'Unable to parse JSON command',
      };
    }
    json = value as Record<string, unknown>;
    name = typeof json['command'] === 'string' ? json['command'] : undefined;
  } else {
    const space = text.indexOf(' ');
    name = space < 0 ? text : text.slice(0, space);
    arg = space < 0 ? undefined : text.slice(space + 1);
  }
  const correlationId = json ? (typeof json['correlation_id'] === 'string' ? json['correlation_id'] : undefined) : arg;
  switch (name) {
    case 'ANSWER':
    case 'HANGUP':
    case 'START_MEDIA_BUFFERING':
    case 'FLUSH_MEDIA':
    case 'REPORT_QUEUE_DRAINED':
    case 'GET_STATUS':
    case 'PAUSE_MEDIA':
    case 'CONTINUE_MEDIA':
      return { ok: true, command: { command: name } };
    case 'MARK_MEDIA':
    case 'STOP_MEDIA_BUFFERING':
      return { ok: true, command: correlationId === undefined ? { command: name } : { command: name, correlationId } };
    case 'SET_MEDIA_DIRECTION': {
      if (!json) return { ok: false, reason: 'json-only', name, message: `${name} only supports JSON format.\n` };
      const direction = json['direction'];
      if (typeof direction !== 'string')
        return { ok: false, reason: 'bad-direction', name, message: `${name} requires a 'direction' parameter.\n` };
      if (!(DIRECTIONS as readonly string[]).includes(direction)) {
        return { ok: false, reason: 'bad-direction', name, message: `'${direction}' is not a valid direction for ${name}.\n` };
      }
      return { ok: true, command: { command: name, direction: direction as MediaDirection } };
    }
    default:
      return { ok: false, reason: 'unknown', name, message: `${name ?? '(null)'} command unknown` };
  }
}

// ---------------------------------------------------------------------------------------------
// Codec facts (main/codec_builtin.c) for framing

/**
 * `optimal_frame_size` as `websocket_new()` computes it: `default_ms * minimum_bytes / minimum_ms`
 * from Asterisk's built-in codec table; 0 for codecs Asterisk forces into passthrough
 * (`minimum_bytes <= 10`: opus, speex, g729, lpc10). `undefined` for a name not in the table.
 */
export function optimalFrameSizeOf(format: string): number | undefined {
  const c = CODECS[format];
  if (c === undefined) return undefined;
  return c.minimumBytes <= 10 ? 0 : (c.defaultMs * c.minimumBytes) / c.minimumMs;
}

/** ptime (the codec's `default_ms`) Asterisk reports in MEDIA_START and times its playout with. */
export function ptimeOf(format: string): number | undefined {
  return CODECS[format]?.defaultMs;
}

interface CodecFacts {
  minimumMs: number;
  defaultMs: number;
  minimumBytes: number;
}

const slin = (rate: number): CodecFacts => ({ minimumMs: 10, defaultMs: 20, minimumBytes: (rate / 100) * 2 });

const CODECS: Readonly<Record<string, CodecFacts>> = {
  slin: slin(8000),
  slin12: slin(12000),
  slin16: slin(16000),
  slin24: slin(24000),
  slin32: slin(32000),
  slin44: slin(44100),
  slin48: slin(48000),
  slin96: slin(96000),
  slin192: slin(192000),
  ulaw: { minimumMs: 10, defaultMs: 20, minimumBytes: 80 },
  alaw: { minimumMs: 10, defaultMs: 20, minimumBytes: 80 },
  g722: { minimumMs: 10, defaultMs: 20, minimumBytes: 80 },
  g726: { minimumMs: 10, defaultMs: 20, minimumBytes: 40 },
  gsm: { minimumMs: 20, defaultMs: 20, minimumBytes: 33 },
  lpc10: { minimumMs: 20, defaultMs: 20, minimumBytes: 7 },
  opus: { minimumMs: 20, defaultMs: 20, minimumBytes: 10 },
  speex: { minimumMs: 10, defaultMs: 20, minimumBytes: 10 },
  speex16: { minimumMs: 10, defaultMs: 20, minimumBytes: 10 },
  speex32: { minimumMs: 10, defaultMs: 20, minimumBytes: 10 },
  g729: { minimumMs: 10, defaultMs: 20, minimumBytes: 10 },
};
