/**
 * Nexthop objects and groups (`ip nexthop`) of one namespace: what routing daemons (FRR) install
 * and routes point at by id (`routes.add({ to, nhid })`).
 */
import { call, invalid, isNotFound, NetnsError } from './errors';
import { AF, familyFromAf, parseAddress, type Family } from './ip';
import { native, type NativeNexthop } from './native';
import * as validate from './validate';
import type { Netns } from './netns';

export interface NexthopGroupMember {
  id: number;
  /** relative share, 1-256 (default 1) */
  weight?: number;
}

export type NexthopSpec =
  | {
      id: number;
      /** gateway address; needs `dev` unless the gateway is reachable through a connected route */
      via?: string;
      dev?: string;
      /** for `dev` alone: the family of routes that will use it (default 4) */
      family?: Family;
      /** a nexthop for bridge FDB entries (vxlan), `ip nexthop add id N via A fdb` */
      fdb?: boolean;
      protocol?: number;
    }
  | { id: number; blackhole: true; protocol?: number }
  | { id: number; group: NexthopGroupMember[]; /** default 'mpath' */ type?: 'mpath' | 'resilient'; fdb?: boolean; protocol?: number };

export interface Nexthop {
  id: number;
  /** absent for groups */
  family?: Family;
  via?: string;
  dev?: string;
  blackhole?: boolean;
  fdb?: boolean;
  group?: Array<{ id: number; weight: number }>;
  type?: 'mpath' | 'resilient';
  protocol: number;
}

/** Validates a nexthop into the addon's plain shape. */
export function toNativeNexthop(spec: NexthopSpec): NativeNexthop {
  const o = validate.object(spec, 'nexthop');
  const id = validate.integer(o.id, 'nexthop id', 1, 2 ** 32 - 1);
  const nh: NativeNexthop = { id, family: 0 };
  if (o.protocol !== undefined) nh.protocol = validate.integer(o.protocol, 'protocol', 0, 255);
  if (o.group !== undefined) {
    validate.knownKeys(o, 'nexthop group', ['id', 'group', 'type', 'fdb', 'protocol']);
    if (!Array.isArray(o.group) || o.group.length === 0) throw invalid('ERR_NETNS_INVALID_ARG', 'nexthop group must be a non-empty array');
    const seen = new Set<number>();
    nh.group = o.group.map((m: unknown, i) => {
      const mo = validate.object(m, `group[${i}]`);
      validate.knownKeys(mo, `group[${i}]`, ['id', 'weight']);
      const mid = validate.integer(mo.id, `group[${i}] id`, 1, 2 ** 32 - 1);
      if (mid === id) throw invalid('ERR_NETNS_INVALID_ARG', `nexthop group ${id} cannot contain itself`);
      if (seen.has(mid)) throw invalid('ERR_NETNS_INVALID_ARG', `nexthop group ${id} names ${mid} twice`);
      seen.add(mid);
      return { id: mid, weight: mo.weight === undefined ? 1 : validate.integer(mo.weight, `group[${i}] weight`, 1, 256) };
    });
    nh.groupType = o.type === undefined ? 0 : validate.oneOf(o.type, 'group type', ['mpath', 'resilient']) === 'mpath' ? 0 : 1;
    if (o.fdb !== undefined) nh.fdb = validate.bool(o.fdb, 'fdb');
    return nh;
  }
  if (o.blackhole !== undefined) {
    validate.knownKeys(o, 'blackhole nexthop', ['id', 'blackhole', 'protocol']);
    if (o.blackhole !== true) throw invalid('ERR_NETNS_INVALID_ARG', 'blackhole must be true');
    nh.blackhole = true;
    nh.family = AF[4];
    return nh;
  }
  validate.knownKeys(o, 'nexthop', ['id', 'via', 'dev', 'family', 'fdb', 'protocol']);
  let family: Family | undefined = o.family === undefined ? undefined : (Number(validate.oneOf(String(o.family), 'family', ['4', '6'])) as Family);
  if (o.via !== undefined) {
    const a = parseAddress(o.via, 'nexthop via', family);
    family = a.family;
    nh.gateway = a.address;
  }
  if (o.dev !== undefined) nh.dev = validate.ifname(o.dev, 'nexthop dev');
  if (o.fdb !== undefined) nh.fdb = validate.bool(o.fdb, 'fdb');
  if (nh.gateway === undefined && nh.dev === undefined) throw invalid('ERR_NETNS_INVALID_ARG', `nexthop ${id} needs "via", "dev", "group" or "blackhole"`);
  if (nh.fdb && nh.dev !== undefined) throw invalid('ERR_NETNS_INVALID_ARG', `fdb nexthop ${id} takes no "dev"`);
  nh.family = AF[family ?? 4];
  return nh;
}

export function toNexthop(n: NativeNexthop, names: ReadonlyMap<number, string>): Nexthop {
  const out: Nexthop = { id: n.id, protocol: n.protocol ?? 0 };
  if (n.family) out.family = familyFromAf(n.family);
  if (n.gateway) out.via = n.gateway;
  if (n.index) out.dev = names.get(n.index) ?? String(n.index);
  if (n.blackhole) out.blackhole = true;
  if (n.fdb) out.fdb = true;
  if (n.group) {
    out.group = n.group.map((m) => ({ id: m.id, weight: m.weight }));
    out.type = n.groupType === 1 ? 'resilient' : 'mpath';
  }
  return out;
}

export class Nexthops {
  constructor(private readonly ns: Netns) {}

  /**
   * Adds a nexthop object; EEXIST when the id is taken. Equivalent to:
   * `ip nexthop add id ID via GW dev DEV` / `ip nexthop add id ID blackhole` /
   * `ip nexthop add id ID group A,W/B,W [type mpath|resilient]`
   */
  async add(spec: NexthopSpec): Promise<void> {
    const nh = toNativeNexthop(spec);
    await call({ netns: this.ns.label, ifname: nh.dev, syscall: 'add nexthop' }, () => native.nexthopAdd(this.ns.ref, nh, false));
  }

  /** Adds or replaces (routes using it follow). Equivalent to: `ip nexthop replace id ID ...` */
  async replace(spec: NexthopSpec): Promise<void> {
    const nh = toNativeNexthop(spec);
    await call({ netns: this.ns.label, ifname: nh.dev, syscall: 'replace nexthop' }, () => native.nexthopAdd(this.ns.ref, nh, true));
  }

  /**
   * Deletes a nexthop. The kernel would silently drop it from every group it is in (and remove a
   * group left empty, with its routes); that is refused with EBUSY naming the groups unless
   * `force` is set. Equivalent to: `ip nexthop del id ID`
   */
  async delete(id: number, options: { missingOk?: boolean; force?: boolean } = {}): Promise<void> {
    const nid = validate.integer(id, 'nexthop id', 1, 2 ** 32 - 1);
    const ctx = { netns: this.ns.label, syscall: 'delete nexthop' };
    if (!options.force) {
      const all = await call(ctx, () => native.nexthopList(this.ns.ref));
      const groups = all.filter((n) => n.group?.some((m) => m.id === nid)).map((n) => n.id);
      if (groups.length > 0) {
        throw new NetnsError('EBUSY', `EBUSY: nexthop ${nid} is a member of group${groups.length > 1 ? 's' : ''} ${groups.join(', ')}, delete nexthop (netns ${this.ns.label})`, {
          errno: -16,
          syscall: 'delete nexthop',
          netns: this.ns.label,
          detail: `member of ${groups.join(', ')}`,
        });
      }
    }
    try {
      await call(ctx, () => native.nexthopDelete(this.ns.ref, nid));
    } catch (e) {
      if (options.missingOk && isNotFound(e)) return;
      throw e;
    }
  }

  /** Every nexthop object and group. Equivalent to: `ip nexthop show` */
  async list(): Promise<Nexthop[]> {
    const ctx = { netns: this.ns.label, syscall: 'list nexthops' };
    const [raw, links] = await Promise.all([call(ctx, () => native.nexthopList(this.ns.ref)), call(ctx, () => native.linkList(this.ns.ref))]);
    const names = new Map(links.map((l) => [l.index, l.name]));
    return raw.map((n) => toNexthop(n, names));
  }
}
