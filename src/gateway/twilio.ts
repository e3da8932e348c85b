/**
 * Twilio Media Streams, bidirectional (`<Connect><Stream>`), as Twilio's "Media Streams -
 * WebSocket Messages" reference publishes it: we play Twilio's part, the bot is the server.
 *
 * Every message is a JSON text frame; counters are digit strings, `mediaFormat`'s are numbers.
 * To the bot: `connected`, `start` (sequenceNumber "1"), then `media` (20 ms of mu-law 8 kHz,
 * `chunk` from "1", `timestamp` = ms from the stream's start to the chunk, on the media clock:
 * it jumps over caller audio that was dropped, as Twilio's presentation timestamp does), `dtmf`,
 * `mark` (echoes) and `stop`; `sequenceNumber` counts every message after `connected`.
 * From the bot: `media` (any length), `mark`, `clear`. See docs/gateway.md.
 */
import { randomBytes } from 'node:crypto';
import { parseFormat } from '../audio/format.js';
import type { BotCommand, BotProtocol, BotSession, StreamInfo } from './protocol.js';

/** Options of {@link twilioProtocol}. */
export interface TwilioOptions {
  /** `accountSid` of `start` and `stop` (default `AC` and 32 zeros: there is no account). */
  accountSid?: string;
}

const ULAW_8K = parseFormat('ulaw');
const CHUNK_MS = 20;
/** Standard base64; the padding may be left out (some encoders do). */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const UUID_HEX = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** A Twilio-style id: two letters and 32 lowercase hex digits. */
function sid(prefix: string, hex32 = randomBytes(16).toString('hex')): string {
  return prefix + hex32;
}

/**
 * The `callSid` of a call: `CA` + the call's UUID as 32 hex digits, so a log line on either side
 * finds the other; a random one when the id is not a UUID (chan_websocket before 20.17/22.7).
 */
export function callSidOf(callId: string): string {
  return UUID_HEX.test(callId) ? sid('CA', callId.replace(/-/g, '').toLowerCase()) : sid('CA');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Twilio Media Streams: what bots built for Twilio (Pipecat, OpenAI Agents SDK, Vocode, ...) speak. */
export function twilioProtocol(options: TwilioOptions = {}): BotProtocol {
  const accountSid = options.accountSid ?? sid('AC', '0'.repeat(32));
  return {
    name: 'twilio',
    callerFormat: ULAW_8K,
    botFormat: ULAW_8K,
    chunkMs: CHUNK_MS,
    open: (info) => new TwilioSession(info, accountSid),
  };
}

class TwilioSession implements BotSession {
  readonly ids: Readonly<Record<string, string>>;
  readonly #streamSid = sid('MZ');
  readonly #callSid: string;
  readonly #accountSid: string;
  readonly #parameters: Readonly<Record<string, string>>;
  #sequence = 0;
  #chunk = 0;

  constructor(info: StreamInfo, accountSid: string) {
    this.#callSid = callSidOf(info.callId);
    this.#accountSid = accountSid;
    this.#parameters = info.parameters;
    this.ids = { streamSid: this.#streamSid, callSid: this.#callSid };
  }

  #next(): string {
    return String(++this.#sequence);
  }

  start(): string[] {
    const streamSid = this.#streamSid;
    return [
      JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }),
      JSON.stringify({
        event: 'start',
        sequenceNumber: this.#next(),
        streamSid,
        start: {
          streamSid,
          accountSid: this.#accountSid,
          callSid: this.#callSid,
          tracks: ['inbound'],
          customParameters: this.#parameters,
          mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
        },
      }),
    ];
  }

  media(chunk: Buffer, timestampMs: number): string {
    const n = ++this.#chunk;
    return JSON.stringify({
      event: 'media',
      sequenceNumber: this.#next(),
      streamSid: this.#streamSid,
      media: { track: 'inbound', chunk: String(n), timestamp: String(Math.round(timestampMs)), payload: chunk.toString('base64') },
    });
  }

  dtmf(digit: string): string {
    return JSON.stringify({
      event: 'dtmf',
      streamSid: this.#streamSid,
      sequenceNumber: this.#next(),
      dtmf: { track: 'inbound_track', digit },
    });
  }

  markPlayed(name: string): string {
    return JSON.stringify({ event: 'mark', sequenceNumber: this.#next(), streamSid: this.#streamSid, mark: { name } });
  }

  stop(): string {
    return JSON.stringify({
      event: 'stop',
      sequenceNumber: this.#next(),
      streamSid: this.#streamSid,
      stop: { accountSid: this.#accountSid, callSid: this.#callSid },
    });
  }

  decode(data: Buffer, isBinary: boolean): BotCommand {
    if (isBinary)
      return { type: 'invalid', code: 'BAD_JSON', message: `a binary message (${data.length} bytes): Twilio takes JSON text only` };
    let msg: unknown;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      return { type: 'invalid', code: 'BAD_JSON', message: `not JSON: ${JSON.stringify(data.toString('utf8', 0, 60))}` };
    }
    if (!isRecord(msg) || typeof msg.event !== 'string') {
      return { type: 'invalid', code: 'BAD_JSON', message: 'not a message object with an "event" string' };
    }
    const event = msg.event;
    if (event !== 'media' && event !== 'mark' && event !== 'clear') {
      return { type: 'invalid', code: 'UNKNOWN_COMMAND', message: `unknown event ${JSON.stringify(event).slice(0, 40)} (ignored)` };
    }
    if (msg.streamSid !== this.#streamSid) {
      return {
        type: 'invalid',
        code: 'WRONG_STREAM',
        message: `${event} for streamSid ${JSON.stringify(msg.streamSid)?.slice(0, 40)}, not ${this.#streamSid} (ignored)`,
      };
    }
    if (event === 'clear') return { type: 'clear' };
    if (event === 'mark') {
      const name = isRecord(msg.mark) ? msg.mark.name : undefined;
      if (typeof name !== 'string') return { type: 'invalid', code: 'BAD_MESSAGE', message: 'mark without a mark.name string (ignored)' };
      return { type: 'mark', name };
    }
    const payload = isRecord(msg.media) ? msg.media.payload : undefined;
    if (typeof payload !== 'string')
      return { type: 'invalid', code: 'BAD_MESSAGE', message: 'media without a media.payload string (ignored)' };
    if (!BASE64.test(payload) || payload.replace(/=+$/, '').length % 4 === 1) {
      return { type: 'invalid', code: 'BAD_MESSAGE', message: `media.payload is not base64 (${payload.length} characters, ignored)` };
    }
    return { type: 'media', audio: Buffer.from(payload, 'base64') };
  }
}
