/**
 * The built-in IPAM (`"ipam": { "type": "netns-kit-ipam", ... }`): host-local's configuration
 * (ranges / subnet, rangeStart, rangeEnd, gateway, routes, dataDir) and allocation order (round
 * robin after the last address handed out, skipping the network, broadcast and gateway addresses),
 * with its leases in a LeaseStore so concurrent ADDs never hand out one address twice.
 */
import { fromBytes, toBytes } from '../ip';
import { LeaseStore, type LeaseState } from './lease-store';
import { CODES, CniError, type CniResult, type CniRoute } from './spec';
import type { Attachment, IpamConf } from './config';

export const BUILTIN_IPAM = 'netns-kit-ipam';
export const DEFAULT_DATA_DIR = '/var/lib/cni/netns-kit-ipam';

interface Range {
  subnet: string;
  family: 4 | 6;
  prefix: number;
  start: bigint;
  end: bigint;
  gateway?: bigint;
}

export interface AllocatorConf {
  /** one address is handed out from each range set; a set's ranges are tried in order */
  rangeSets: Range[][];
  routes: CniRoute[];
  dataDir: string;
  dns?: CniResult['dns'];
}

function big(address: string): bigint {
  return toBytes(address).reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
}

function text(v: bigint, family: 4 | 6): string {
  const n = family === 4 ? 4 : 16;
  const bytes: number[] = [];
  for (let i = n - 1; i >= 0; i--) bytes.push(Number((v >> BigInt(i * 8)) & 0xffn));
  return fromBytes(bytes);
}

function bad(msg: string): CniError {
  return new CniError(CODES.INVALID_NETWORK_CONFIG, `invalid ipam configuration: ${msg}`);
}

function addressOf(v: unknown, what: string, family?: 4 | 6): { value: bigint; family: 4 | 6 } {
  if (typeof v !== 'string') throw bad(`${what} must be an IP address string`);
  const f = v.includes(':') ? 6 : 4;
  if (!/^[0-9a-fA-F.:]+$/.test(v) || (f === 4 && v.split('.').length !== 4)) throw bad(`${what} ${JSON.stringify(v)} is not an IP address`);
  if (family && f !== family) throw bad(`${what} ${v} is not IPv${family}`);
  return { value: big(v), family: f };
}

function parseRange(o: Record<string, unknown>, where: string): Range {
  if (typeof o.subnet !== 'string' || !o.subnet.includes('/')) throw bad(`${where}.subnet must be a CIDR`);
  const [addr, len] = o.subnet.split('/');
  const { value, family } = addressOf(addr, `${where}.subnet`);
  const bits = family === 4 ? 32 : 128;
  const prefix = Number(len);
  if (!/^\d+$/.test(len) || prefix > bits || prefix > bits - 2) throw bad(`${where}.subnet ${o.subnet} has no room for addresses`);
  const hostBits = BigInt(bits - prefix);
  const network = (value >> hostBits) << hostBits;
  const last = network + (1n << hostBits) - 1n;
  // As host-local: the network address is never handed out; for IPv4 neither is the broadcast.
  const first = network + 1n;
  const lastUsable = family === 4 ? last - 1n : last;
  const inSubnet = (v: bigint, what: string) => {
    if (v < first || v > lastUsable) throw bad(`${where}.${what} is outside ${o.subnet}`);
    return v;
  };
  const r: Range = {
    subnet: `${text(network, family)}/${prefix}`,
    family,
    prefix,
    start: o.rangeStart !== undefined ? inSubnet(addressOf(o.rangeStart, `${where}.rangeStart`, family).value, 'rangeStart') : first,
    end: o.rangeEnd !== undefined ? inSubnet(addressOf(o.rangeEnd, `${where}.rangeEnd`, family).value, 'rangeEnd') : lastUsable,
  };
  if (r.start > r.end) throw bad(`${where}.rangeStart is after rangeEnd`);
  // host-local's default gateway is the subnet's first address.
  r.gateway = o.gateway !== undefined ? inSubnet(addressOf(o.gateway, `${where}.gateway`, family).value, 'gateway') : first;
  return r;
}

export function parseAllocatorConf(ipam: IpamConf): AllocatorConf {
  let sets: unknown[];
  if (ipam.ranges !== undefined) {
    if (!Array.isArray(ipam.ranges) || ipam.ranges.length === 0) throw bad('"ranges" must be a non-empty array of range sets');
    sets = ipam.ranges;
  } else if (ipam.subnet !== undefined) {
    sets = [[{ subnet: ipam.subnet, rangeStart: ipam.rangeStart, rangeEnd: ipam.rangeEnd, gateway: ipam.gateway }]];
  } else {
    throw bad('needs "ranges" or "subnet"');
  }
  const rangeSets = sets.map((set, i) => {
    if (!Array.isArray(set) || set.length === 0) throw bad(`ranges[${i}] must be a non-empty array`);
    return set.map((r, j) => {
      if (typeof r !== 'object' || r === null) throw bad(`ranges[${i}][${j}] must be an object`);
      const clean = Object.fromEntries(Object.entries(r as Record<string, unknown>).filter(([, v]) => v !== undefined && v !== ''));
      return parseRange(clean, `ranges[${i}][${j}]`);
    });
  });
  const routes: CniRoute[] = [];
  if (ipam.routes !== undefined) {
    if (!Array.isArray(ipam.routes)) throw bad('"routes" must be an array');
    ipam.routes.forEach((r, i) => {
      const o = r as Record<string, unknown>;
      if (typeof o?.dst !== 'string' || !o.dst.includes('/')) throw bad(`routes[${i}].dst must be a CIDR`);
      const route: CniRoute = { dst: o.dst };
      if (o.gw !== undefined && o.gw !== '') route.gw = String(o.gw);
      routes.push(route);
    });
  }
  const dataDir = ipam.dataDir === undefined ? DEFAULT_DATA_DIR : ipam.dataDir;
  if (typeof dataDir !== 'string' || !dataDir.startsWith('/')) throw bad('"dataDir" must be an absolute path');
  const conf: AllocatorConf = { rangeSets, routes, dataDir };
  if (typeof ipam.dns === 'object' && ipam.dns !== null) conf.dns = ipam.dns as CniResult['dns'];
  return conf;
}

function owns(l: { containerID: string; ifname: string }, containerID: string, ifname: string): boolean {
  return l.containerID === containerID && l.ifname === ifname;
}

/** Picks a free address in a range set, continuing after the one handed out last. */
function pick(set: Range[], state: LeaseState, setIndex: number): { address: string; range: Range } | undefined {
  const lastText = state.last[String(setIndex)];
  // Walk the set's ranges as one ring, starting just after the last handed-out address.
  const ring: Array<{ r: Range; from: bigint }> = [];
  let startAt = 0;
  let startFrom: bigint | undefined;
  if (lastText) {
    const last = big(lastText);
    const fam = lastText.includes(':') ? 6 : 4;
    const idx = set.findIndex((r) => r.family === fam && last >= r.start && last <= r.end);
    if (idx >= 0) {
      startAt = idx;
      startFrom = last + 1n;
    }
  }
  for (let k = 0; k <= set.length; k++) {
    const i = (startAt + k) % set.length;
    const r = set[i];
    if (k === 0) ring.push({ r, from: startFrom !== undefined && startFrom <= r.end ? startFrom : r.start });
    else if (k < set.length) ring.push({ r, from: r.start });
    else if (startFrom !== undefined) ring.push({ r: set[startAt], from: set[startAt].start }); // wrap to the part before `last`
  }
  for (const { r, from } of ring) {
    for (let v = from; v <= r.end; v++) {
      if (v === r.gateway) continue;
      const a = text(v, r.family);
      if (!state.leases[a]) return { address: a, range: r };
    }
  }
  return undefined;
}

/** Allocates one address per range set for (containerID, ifname). */
export async function allocate(conf: AllocatorConf, network: string, containerID: string, ifname: string): Promise<CniResult> {
  const store = new LeaseStore(conf.dataDir, network);
  const ips = await store.update((state) => {
    const held = Object.entries(state.leases).filter(([, l]) => owns(l, containerID, ifname));
    if (held.length) {
      throw new CniError(CODES.INTERNAL, `${held[0][0]} has been allocated to ${containerID}/${ifname}, duplicate allocation is not allowed`);
    }
    const next: LeaseState = { leases: { ...state.leases }, last: { ...state.last } };
    const out: NonNullable<CniResult['ips']> = [];
    conf.rangeSets.forEach((set, i) => {
      const got = pick(set, next, i);
      if (!got) throw new CniError(CODES.INTERNAL, `no IP addresses available in range set: ${set.map((r) => `${text(r.start, r.family)}-${text(r.end, r.family)}`).join(',')}`);
      next.leases[got.address] = { containerID, ifname };
      next.last[String(i)] = got.address;
      const ip: { address: string; gateway?: string } = { address: `${got.address}/${got.range.prefix}` };
      if (got.range.gateway !== undefined) ip.gateway = text(got.range.gateway, got.range.family);
      out.push(ip);
    });
    return { state: next, value: out };
  });
  const result: CniResult = { cniVersion: '', ips };
  if (conf.routes.length) result.routes = conf.routes;
  if (conf.dns) result.dns = conf.dns;
  return result;
}

/** Releases every address held by (containerID, ifname); nothing held is fine (DEL is idempotent). */
export async function release(conf: AllocatorConf, network: string, containerID: string, ifname: string): Promise<number> {
  const store = new LeaseStore(conf.dataDir, network);
  return store.update((state) => {
    const mine = Object.keys(state.leases).filter((a) => owns(state.leases[a], containerID, ifname));
    if (!mine.length) return { value: 0 };
    const leases = { ...state.leases };
    for (const a of mine) delete leases[a];
    return { state: { ...state, leases }, value: mine.length };
  });
}

/** CHECK: the addresses of prevResult are still leased to this attachment. */
export async function verify(conf: AllocatorConf, network: string, containerID: string, ifname: string, addresses: string[]): Promise<void> {
  const state = await new LeaseStore(conf.dataDir, network).read();
  for (const cidr of addresses) {
    const a = cidr.split('/')[0];
    const l = state.leases[a];
    if (!l || !owns(l, containerID, ifname)) {
      throw new CniError(CODES.INTERNAL, `IP reservation drift: ${a} is not leased to ${containerID}/${ifname}`);
    }
  }
}

/** GC: releases leases whose attachment the runtime no longer lists. Returns the released addresses. */
export async function collect(conf: AllocatorConf, network: string, valid: Attachment[]): Promise<string[]> {
  const keep = new Set(valid.map((v) => `${v.containerID}\0${v.ifname}`));
  return new LeaseStore(conf.dataDir, network).update((state) => {
    const gone = Object.keys(state.leases).filter((a) => !keep.has(`${state.leases[a].containerID}\0${state.leases[a].ifname}`));
    if (!gone.length) return { value: gone };
    const leases = { ...state.leases };
    for (const a of gone) delete leases[a];
    return { state: { ...state, leases }, value: gone };
  });
}

/** Every (address -> holder) of a network, for tests and `status`. */
export async function leases(conf: AllocatorConf, network: string): Promise<LeaseState['leases']> {
  return (await new LeaseStore(conf.dataDir, network).read()).leases;
}
