/**
 * A voice bot that speaks Twilio Media Streams (the bot's side: a WebSocket server), written from
 * Twilio's published "Media Streams - WebSocket Messages" reference, for the gateway's tests and
 * benchmark. It checks every message it receives against that reference and records what breaks
 * it in `violations`; `echo: true` sends every caller chunk straight back as bot audio.
 */
import { EventEmitter, once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** A message as the bot received it (parsed JSON). */
export type TwilioMessage = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SID = { MZ: /^MZ[0-9a-f]{32}$/, CA: /^CA[0-9a-f]{32}$/, AC: /^AC[0-9a-f]{32}$/ };
const DIGITS = /^[1-9]\d*$/;

/** One stream, as the bot sees it. */
export class BotStream extends EventEmitter<{ message: [TwilioMessage]; close: [code: number] }> {
  readonly messages: TwilioMessage[] = [];
  readonly violations: string[] = [];
  /** Caller audio received, mu-law, in chunk order. */
  readonly audio: Buffer[] = [];
  readonly dtmf: string[] = [];
  /** Mark echoes received, with the performance.now() of their arrival. */
  readonly marks: { name: string; at: number }[] = [];
  streamSid = '';
  start: TwilioMessage | undefined;
  stopped = false;
  closedCode: number | undefined;
  readonly ws: WebSocket;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly url: string;
  #expectSeq = 1;
  #expectChunk = 1;
  #lastTimestamp = -20;

  constructor(ws: WebSocket, headers: Record<string, string | string[] | undefined>, url: string, echo: boolean) {
    super();
    this.ws = ws;
    this.headers = headers;
    this.url = url;
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.violations.push('binary message');
        return;
      }
      let msg: TwilioMessage;
      try {
        msg = JSON.parse(data.toString()) as TwilioMessage;
      } catch {
        this.violations.push('not JSON');
        return;
      }
      this.#check(msg);
      this.messages.push(msg);
      if (msg.event === 'media' && echo) this.sendMedia(Buffer.from(msg.media.payload as string, 'base64'));
      this.emit('message', msg);
    });
    ws.on('close', (code) => {
      this.closedCode = code;
      this.emit('close', code);
    });
  }

  #check(msg: TwilioMessage): void {
    const v = (what: string): number => this.violations.push(`${String(msg.event)} #${this.messages.length + 1}: ${what}`);
    if (this.messages.length === 0) {
      if (msg.event !== 'connected' || msg.protocol !== 'Call' || msg.version !== '1.0.0') v('the first message must be connected');
      return;
    }
    if (this.stopped) v('after stop');
    if (msg.sequenceNumber !== String(this.#expectSeq)) v(`sequenceNumber ${msg.sequenceNumber}, expected "${this.#expectSeq}"`);
    this.#expectSeq++;
    if (this.messages.length === 1) {
      if (msg.event !== 'start') v('the second message must be start');
      const s = msg.start ?? {};
      if (!SID.MZ.test(s.streamSid) || msg.streamSid !== s.streamSid) v('streamSid');
      if (!SID.CA.test(s.callSid) || !SID.AC.test(s.accountSid)) v('callSid/accountSid');
      if (JSON.stringify(s.tracks) !== '["inbound"]') v('tracks');
      if (typeof s.customParameters !== 'object' || s.customParameters === null) v('customParameters');
      const f = s.mediaFormat ?? {};
      if (f.encoding !== 'audio/x-mulaw' || f.sampleRate !== 8000 || f.channels !== 1) v('mediaFormat');
      this.streamSid = s.streamSid as string;
      this.start = msg;
      return;
    }
    if (msg.streamSid !== this.streamSid) v('streamSid differs from start');
    switch (msg.event) {
      case 'media': {
        const m = msg.media ?? {};
        if (m.track !== 'inbound') v('track');
        if (m.chunk !== String(this.#expectChunk)) v(`chunk ${m.chunk}, expected "${this.#expectChunk}"`);
        // The media clock: 0 for chunk 1, then at least 20 ms more per chunk (more over dropped audio).
        const ts = Number(m.timestamp);
        if (this.#expectChunk === 1 ? ts !== 0 : ts < this.#lastTimestamp + 20)
          v(`timestamp ${m.timestamp} for chunk ${this.#expectChunk}`);
        this.#lastTimestamp = ts;
        if (typeof m.timestamp !== 'string' || !/^\d+$/.test(m.timestamp)) v('timestamp not a digit string');
        this.#expectChunk++;
        const payload = Buffer.from(String(m.payload), 'base64');
        if (payload.length !== 160) v(`payload of ${payload.length} bytes, not 160 (20 ms of mu-law)`);
        this.audio.push(payload);
        return;
      }
      case 'dtmf':
        if (msg.dtmf?.track !== 'inbound_track' || typeof msg.dtmf?.digit !== 'string') v('dtmf fields');
        this.dtmf.push(String(msg.dtmf?.digit));
        return;
      case 'mark':
        if (typeof msg.mark?.name !== 'string') v('mark.name');
        this.marks.push({ name: String(msg.mark?.name), at: performance.now() });
        return;
      case 'stop':
        if (msg.stop?.callSid !== this.start?.start?.callSid || msg.stop?.accountSid !== this.start?.start?.accountSid) v('stop ids');
        this.stopped = true;
        return;
      default:
        v('unknown event');
    }
    if (!DIGITS.test(String(msg.sequenceNumber))) v('sequenceNumber not a digit string');
  }

  /** Sends `audio` (mu-law 8 kHz) as one media message. */
  sendMedia(audio: Buffer): void {
    this.send({ event: 'media', streamSid: this.streamSid, media: { payload: audio.toString('base64') } });
  }

  mark(name: string): void {
    this.send({ event: 'mark', streamSid: this.streamSid, mark: { name } });
  }

  clear(): void {
    this.send({ event: 'clear', streamSid: this.streamSid });
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** Resolves once a message satisfying `predicate` has arrived (checks the past ones first). */
  async next(predicate: (m: TwilioMessage) => boolean): Promise<TwilioMessage> {
    const seen = this.messages.find(predicate);
    if (seen) return seen;
    return new Promise((resolve) => {
      const on = (m: TwilioMessage): void => {
        if (!predicate(m)) return;
        this.off('message', on);
        resolve(m);
      };
      this.on('message', on);
    });
  }

  /** Resolves with the close code once the gateway has closed the socket. */
  async closed(): Promise<number> {
    if (this.closedCode !== undefined) return this.closedCode;
    const [code] = (await once(this, 'close')) as [number];
    return code;
  }
}

export interface TwilioBot {
  /** `ws://127.0.0.1:PORT/media` */
  url: string;
  streams: BotStream[];
  /** Resolves with the next stream whose `start` has arrived. */
  nextStream(): Promise<BotStream>;
  close(): Promise<void>;
}

/** Starts a Twilio-protocol bot on 127.0.0.1 (a free port). */
export async function startTwilioBot(options: { echo?: boolean; path?: string } = {}): Promise<TwilioBot> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(wss, 'listening');
  const streams: BotStream[] = [];
  const started = new EventEmitter();
  wss.on('connection', (ws, req) => {
    const stream = new BotStream(ws, req.headers, req.url ?? '', options.echo === true);
    streams.push(stream);
    stream.on('message', (m) => {
      if (m.event === 'start') started.emit('start', stream);
    });
  });
  let taken = 0;
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}${options.path ?? '/media'}`,
    streams,
    async nextStream() {
      const ready = streams.filter((s) => s.start !== undefined);
      if (ready.length > taken) return ready[taken++]!;
      const [stream] = (await once(started, 'start')) as [BotStream];
      taken++;
      return stream;
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
