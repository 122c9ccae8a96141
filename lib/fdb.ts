/**
 * Forwarding database entries of bridges and vxlan devices (`bridge fdb`) in one namespace: static
 * MAC-to-port entries, and for vxlan the remote endpoints (flood lists: the all-zeros MAC appended
 * once per remote host, as Flannel and static VXLAN overlays do).
 */
import { call, invalid, isNotFound } from './errors';
import { parseAddress } from './ip';
import { native, type NativeFdb, type NativeFdbChange } from './native';
import * as validate from './validate';
import type { Netns } from './netns';

export type FdbState = 'permanent' | 'static' | 'dynamic';

export interface FdbSpec {
  /** the bridge port or vxlan device */
  dev: string;
  /** '00:00:00:00:00:00' on a vxlan device: the flood (BUM) list */
  mac: string;
  /** vxlan: the remote VTEP's underlay address */
  dst?: string;
  /** vxlan: VNI to use towards this remote (default the device's) */
  vni?: number;
  /** vxlan: UDP port of the remote (default the device's) */
  port?: number;
  vlan?: number;
  /** the bridge's table (`master`); default: the device's own (`self`) unless `master` is set */
  master?: boolean;
  self?: boolean;
  /** default 'permanent' (bridge(8)'s default, "local" on a bridge) */
  state?: FdbState;
  /** another entry for the same MAC (a further remote): `bridge fdb append` */
  append?: boolean;
  /** `bridge fdb replace` */
  replace?: boolean;
}

export interface FdbEntry {
  dev: string;
  index: number;
  mac: string;
  dst?: string;
  vni?: number;
  port?: number;
  vlan?: number;
  /** name of the bridge the entry belongs to (NDA_MASTER) */
  master?: string;
  /** the device's own table (NTF_SELF) */
  self: boolean;
  state: FdbState | string;
  /** NTF_* bits */
  flags: number;
}

const STATE: Record<FdbState, number> = { permanent: 0x80, static: 0x40, dynamic: 0x02 };
const NTF_SELF = 0x02;

function toNativeFdb(spec: FdbSpec, forDelete: boolean): NativeFdbChange {
  const o = validate.object(spec, 'fdb entry');
  validate.knownKeys(o, 'fdb entry', ['dev', 'mac', 'dst', 'vni', 'port', 'vlan', 'master', 'self', 'state', 'append', 'replace']);
  const e: NativeFdbChange = { dev: validate.ifname(o.dev, 'dev'), mac: validate.mac(o.mac) };
  if (o.dst !== undefined) e.dst = parseAddress(o.dst, 'fdb dst').address;
  if (o.vni !== undefined) e.vni = validate.integer(o.vni, 'vni', 0, 2 ** 24 - 1);
  if (o.port !== undefined) e.port = validate.integer(o.port, 'fdb port', 1, 65535, 'ERR_NETNS_INVALID_PORT');
  if (o.vlan !== undefined) e.vlan = validate.integer(o.vlan, 'vlan', 1, 4094);
  const master = o.master === undefined ? false : validate.bool(o.master, 'master');
  const self = o.self === undefined ? !master : validate.bool(o.self, 'self');
  e.master = master;
  e.self = self;
  if (!forDelete) {
    e.state = STATE[o.state === undefined ? 'permanent' : validate.oneOf(o.state, 'fdb state', Object.keys(STATE) as FdbState[])];
    if (o.append !== undefined) e.append = validate.bool(o.append, 'append');
    if (o.replace !== undefined) e.replace = validate.bool(o.replace, 'replace');
    if (e.append && e.replace) throw invalid('ERR_NETNS_INVALID_ARG', 'fdb entry: "append" or "replace", not both');
  }
  return e;
}

function stateName(bits: number): FdbState | string {
  if (bits & STATE.permanent) return 'permanent';
  if (bits & STATE.static) return 'static';
  if (bits & STATE.dynamic) return 'dynamic';
  return 'stale';
}

/** The addon's FDB record as the typed FdbEntry, shared by list() and the event stream (lib/watch.ts). */
export function toFdbEntry(f: NativeFdb, names: ReadonlyMap<number, string>): FdbEntry {
  const e: FdbEntry = { dev: names.get(f.index) ?? String(f.index), index: f.index, mac: f.mac, self: (f.flags & NTF_SELF) !== 0, state: stateName(f.state), flags: f.flags };
  if (f.dst) e.dst = f.dst;
  if (f.vni) e.vni = f.vni;
  if (f.port) e.port = f.port;
  if (f.vlan) e.vlan = f.vlan;
  if (f.master) e.master = names.get(f.master) ?? String(f.master);
  return e;
}

export class Fdb {
  constructor(private readonly ns: Netns) {}

  /**
   * Adds an entry; EEXIST when it exists (use `append` for another remote of the same MAC).
   * Equivalent to: `bridge fdb add|append|replace MAC dev DEV [dst IP] [vni N] [port P] [vlan V] [self] [master] [permanent|static|dynamic]`
   */
  async add(spec: FdbSpec): Promise<void> {
    const e = toNativeFdb(spec, false);
    await call({ netns: this.ns.label, ifname: e.dev, syscall: e.append ? 'append fdb entry' : 'add fdb entry' }, () => native.fdbAdd(this.ns.ref, e));
  }

  /** Removes an entry (with `dst`, only that remote). Equivalent to: `bridge fdb del MAC dev DEV [dst IP] [vni N] [self] [master]` */
  async delete(spec: FdbSpec, options: { missingOk?: boolean } = {}): Promise<void> {
    const e = toNativeFdb(spec, true);
    try {
      await call({ netns: this.ns.label, ifname: e.dev, syscall: 'delete fdb entry' }, () => native.fdbDelete(this.ns.ref, e));
    } catch (err) {
      if (options.missingOk && isNotFound(err)) return;
      throw err;
    }
  }

  /** Entries, optionally of one device or of one bridge's ports. Equivalent to: `bridge fdb show [dev DEV] [br BR]` */
  async list(filter: { dev?: string; master?: string } = {}): Promise<FdbEntry[]> {
    if (filter.dev !== undefined) validate.ifname(filter.dev, 'dev');
    if (filter.master !== undefined) validate.ifname(filter.master, 'master');
    const ctx = { netns: this.ns.label, syscall: 'list fdb' };
    const [raw, links] = await Promise.all([call(ctx, () => native.fdbList(this.ns.ref)), call(ctx, () => native.linkList(this.ns.ref))]);
    const names = new Map(links.map((l) => [l.index, l.name]));
    return raw.map((f) => toFdbEntry(f, names)).filter((e) => (filter.dev === undefined || e.dev === filter.dev) && (filter.master === undefined || e.master === filter.master));
  }
}
