/**
 * IP addresses and prefixes as plain values: parsing, canonical text, families and subnet math.
 * Pure functions, no kernel access; every address that reaches the addon went through here.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { invalid } from './errors';

export type Family = 4 | 6;

export interface Cidr {
  /** canonical address text (IPv6 compressed, lower case) */
  address: string;
  prefix: number;
  family: Family;
}

/** AF_INET / AF_INET6, as the kernel counts them */
export const AF = { 4: 2, 6: 10 } as const;

export function familyOf(address: string): Family | undefined {
  if (isIPv4(address)) return 4;
  if (isIPv6(address)) return 6;
  return undefined;
}

export function familyFromAf(af: number): Family {
  return af === AF[6] ? 6 : 4;
}

/** The 4 or 16 bytes of an address known to be valid. */
export function toBytes(address: string): number[] {
  if (isIPv4(address)) return address.split('.').map(Number);
  let text = address;
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4tail) {
    const b = toBytes(v4tail[1]);
    text = text.slice(0, -v4tail[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const bytes: number[] = [];
  for (const g of groups) {
    const v = parseInt(g, 16);
    bytes.push(v >> 8, v & 0xff);
  }
  return bytes;
}

export function fromBytes(bytes: number[]): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function canonical(address: string): string {
  return fromBytes(toBytes(address));
}

/** Parses a bare address; `family` (when given) must match. */
export function parseAddress(text: unknown, what: string, family?: Family): { address: string; family: Family } {
  if (typeof text !== 'string' || text.length > 64) {
    throw invalid('ERR_NETNS_INVALID_ADDRESS', `${what} must be an IP address, got ${describe(text)}`);
  }
  // net.isIPv6 accepts zone ids ("fe80::1%eth0"); the kernel's address attributes have no room for one.
  const f = text.includes('%') ? undefined : familyOf(text);
  if (f === undefined) throw invalid('ERR_NETNS_INVALID_ADDRESS', `${what} is not an IP address: ${JSON.stringify(text)}`);
  if (family !== undefined && f !== family) {
    throw invalid('ERR_NETNS_FAMILY_MISMATCH', `${what} ${text} is IPv${f}, expected IPv${family}`);
  }
  return { address: canonical(text), family: f };
}

/** Parses "addr/prefix" ("addr" alone means a host prefix when `prefixRequired` is false). */
export function parseCidr(text: unknown, what: string, opts: { family?: Family; prefixRequired?: boolean } = {}): Cidr {
  if (typeof text !== 'string') throw invalid('ERR_NETNS_INVALID_ADDRESS', `${what} must be a CIDR string, got ${describe(text)}`);
  const slash = text.indexOf('/');
  if (slash < 0 && opts.prefixRequired !== false) {
    throw invalid('ERR_NETNS_INVALID_ADDRESS', `${what} needs a prefix length (e.g. 192.0.2.1/24): ${JSON.stringify(text)}`);
  }
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const { address, family } = parseAddress(addrText, what, opts.family);
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) {
      throw invalid('ERR_NETNS_INVALID_ADDRESS', `${what} has a bad prefix length "${p}" (0-${max} for IPv${family})`);
    }
    prefix = Number(p);
  }
  return { address, prefix, family };
}

/** The network part of a prefix: 192.168.15.7/24 -> 192.168.15.0. */
export function networkOf(c: Cidr): string {
  const bytes = toBytes(c.address);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, c.prefix - i * 8));
    bytes[i] &= (0xff << (8 - bits)) & 0xff;
  }
  return fromBytes(bytes);
}

export function contains(net: Cidr, address: string): boolean {
  if (familyOf(address) !== net.family) return false;
  return networkOf({ ...net, address }) === networkOf(net);
}

/** Adds `n` to an address (wrapping is the caller's problem). */
export function offset(address: string, n: number): string {
  const bytes = toBytes(address);
  let carry = n;
  for (let i = bytes.length - 1; i >= 0 && carry !== 0; i--) {
    const v = bytes[i] + carry;
    bytes[i] = ((v % 256) + 256) % 256;
    carry = Math.floor(v / 256);
  }
  return fromBytes(bytes);
}

export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : 'an object';
  return `${typeof v} ${String(v)}`;
}
