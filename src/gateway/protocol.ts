/**
 * The bot-protocol adapter contract: what the gateway needs to know of a voice bot's WebSocket
 * protocol. Types only. The gateway ({@link bridgeCall}, `./bridge.ts`) owns the sockets, the
 * call, the audio conversion, the buffering and the timing; an adapter only turns the call's
 * events into the protocol's messages and the bot's messages into {@link BotCommand}s. Twilio
 * Media Streams (`./twilio.ts`) is the first; another protocol is one file like it
 * (docs/gateway.md, "Adding a protocol").
 */
import type { AudioFormat } from '../audio/format.js';

/** What the gateway knows of a stream when it opens, handed to {@link BotProtocol.open}. */
export interface StreamInfo {
  /** The call's id (AudioSocket UUID, or chan_websocket channel id). */
  readonly callId: string;
  /** The transport that carries the call. */
  readonly transport: 'audiosocket' | 'websocket';
  /** Per-call values for the bot (Twilio: `start.customParameters`). */
  readonly parameters: Readonly<Record<string, string>>;
}

/** A message to the bot: a string goes as a text frame, a Buffer as a binary frame. */
export type BotMessage = string | Buffer;

/** What one message from the bot asks for, decoded by {@link BotSession.decode}. */
export type BotCommand =
  /** Audio to play, in {@link BotProtocol.botFormat}, any length. */
  | { readonly type: 'media'; readonly audio: Buffer }
  /** Echo `name` back ({@link BotSession.markPlayed}) once everything queued before it has played. */
  | { readonly type: 'mark'; readonly name: string }
  /** Drop all queued audio at once; every pending mark is echoed. */
  | { readonly type: 'clear' }
  /** A valid message the gateway has nothing to do for. */
  | { readonly type: 'ignore' }
  /** A message that breaks the protocol: reported as a warning, the call goes on. */
  | { readonly type: 'invalid'; readonly code: BotMessageProblem; readonly message: string };

/**
 * Why a bot's message was not used (the gateway's `warning` codes for them):
 * - `BAD_JSON`: not JSON, or not the JSON object the protocol sends (a binary frame to a text protocol);
 * - `UNKNOWN_COMMAND`: an event the protocol does not define;
 * - `WRONG_STREAM`: addressed to another stream (Twilio: `streamSid`);
 * - `BAD_MESSAGE`: a known event with missing or invalid fields (e.g. a payload that is not base64).
 */
export type BotMessageProblem = 'BAD_JSON' | 'UNKNOWN_COMMAND' | 'WRONG_STREAM' | 'BAD_MESSAGE';

/** One stream's encoder and decoder: sequence counters and ids live here. */
export interface BotSession {
  /** Ids for log lines, e.g. `{ streamSid, callSid }`. */
  readonly ids: Readonly<Record<string, string>>;
  /** The messages that open the stream, sent before any audio. */
  start(): BotMessage[];
  /**
   * One chunk of the caller's audio: {@link BotProtocol.callerFormat}, exactly
   * {@link BotProtocol.chunkMs} long, starting `timestampMs` after the stream started (the media
   * clock: it moves on over caller audio the gateway had to drop, so a bot sees the gap).
   */
  media(chunk: Buffer, timestampMs: number): BotMessage;
  /** A key the caller pressed. */
  dtmf(digit: string): BotMessage;
  /** The echo of the bot's mark `name`: its audio has played, or was cleared. */
  markPlayed(name: string): BotMessage;
  /** The message that ends the stream (the caller hung up); the gateway then closes the socket. */
  stop(): BotMessage;
  /** Decodes one message from the bot. Never throws. */
  decode(data: Buffer, isBinary: boolean): BotCommand;
}

/** A bot protocol: its audio formats and how to open a stream. */
export interface BotProtocol {
  /** Short name for logs, e.g. `twilio`. */
  readonly name: string;
  /** What the bot hears: the caller's audio is converted to it and cut into {@link chunkMs} chunks. */
  readonly callerFormat: AudioFormat;
  /** Duration of one chunk of caller audio, ms. */
  readonly chunkMs: number;
  /** What the bot's audio is in; the gateway converts it to the call's format. */
  readonly botFormat: AudioFormat;
  /** WebSocket subprotocols to offer when connecting (none for Twilio). */
  readonly subprotocols?: readonly string[];
  /** A new stream for one call. */
  open(info: StreamInfo): BotSession;
}
