/**
 * Admission: who may open a call, decided in one place for every listener (AudioSocket and
 * chan_websocket) before any byte of a call is processed.
 *
 * The rules, in order: a closing server takes nobody (`server-closing`); a peer outside the
 * allow-list is refused (`not-allowed`); then, once the peer has proved who it is where the
 * transport can (chan_websocket credentials), it needs a call slot: at most `maxCalls` slots
 * are held at once, over both listeners (`max-calls`). A slot is held from the moment a peer
 * is admitted as a call (an AudioSocket UUID, an authenticated chan_websocket upgrade) until
 * the call ends; a connection that has not got that far (no UUID yet, no upgrade yet, bad
 * credentials) holds none, and is cut by its own timeout.
 *
 * Allow-lists are Node's own `net.BlockList` (no dependency).
 */
import net from 'node:net';
import { audioSocketError, ErrorCodes } from './errors.js';

/** Whether `host` (an address to listen on or to call) is the loopback interface. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || h === '::ffff:127.0.0.1';
}

/** Why a connection was turned away. */
export type RefusalReason = 'not-allowed' | 'unauthorized' | 'max-calls' | 'server-closing';

/** The admission rules of one server, shared by its listeners. */
export class Admission {
  readonly maxCalls: number;
  readonly #allow: net.BlockList | undefined;
  #held = 0;
  /** Set when the server starts closing: nobody is admitted from then on. */
  closing = false;

  constructor(options: { allow?: string | readonly string[] | undefined; maxCalls?: number | undefined }) {
    this.#allow = options.allow === undefined ? undefined : createAllowList(options.allow);
    this.maxCalls = options.maxCalls ?? Infinity;
  }

  /** Call slots held now. */
  get held(): number {
    return this.#held;
  }

  /** The refusal for a new connection from `remoteAddress`, before it sends anything; `undefined` lets it in. */
  screen(remoteAddress: string): RefusalReason | undefined {
    if (this.closing) return 'server-closing';
    if (this.#allow !== undefined && !isAllowed(this.#allow, remoteAddress)) return 'not-allowed';
    if (this.#held >= this.maxCalls) return 'max-calls'; // full now: no need to wait for its handshake
    return undefined;
  }

  /** Takes a call slot; `false` when none is free (or the server is closing). Give it back with {@link release}. */
  reserve(): boolean {
    if (this.closing || this.#held >= this.maxCalls) return false;
    this.#held++;
    return true;
  }

  release(): void {
    if (this.#held > 0) this.#held--;
  }
}

/** Whether `address` is on `list`; a dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d. */
export function isAllowed(list: net.BlockList, address: string): boolean {
  const v4 = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  return net.isIPv4(v4) ? list.check(v4, 'ipv4') : list.check(v4, 'ipv6');
}

/**
 * Builds a list from entries such as `127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`; a string
 * may hold several entries separated by commas or spaces.
 */
export function createAllowList(entries: string | readonly string[]): net.BlockList {
  const list = new net.BlockList();
  const items = (typeof entries === 'string' ? [entries] : entries).flatMap((e) => String(e).split(/[\s,]+/)).filter((e) => e.length > 0);
  if (items.length === 0) {
    throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, 'allow list is empty: nobody could connect');
  }
  for (const item of items) {
    const slash = item.indexOf('/');
    const address = slash < 0 ? item : item.slice(0, slash);
    const family = net.isIP(address);
    if (family === 0) {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `allow entry ${JSON.stringify(item)} is not an IP address or CIDR range`);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (slash < 0) {
      list.addAddress(address, type);
      continue;
    }
    const prefixText = item.slice(slash + 1);
    const prefix = Number(prefixText);
    const max = family === 4 ? 32 : 128;
    if (!/^\d+$/.test(prefixText) || prefix > max) {
      throw audioSocketError(ErrorCodes.INVALID_ARGUMENT, `allow entry ${JSON.stringify(item)} has a bad prefix length (0-${max})`);
    }
    list.addSubnet(address, prefix, type);
  }
  return list;
}
