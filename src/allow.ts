/**
 * Allow-lists of addresses and CIDR ranges, on Node's own `net.BlockList` (no dependency).
 */
import net from 'node:net';
import { audioSocketError, ErrorCodes } from './errors.js';

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
