/** IPv4 and IPv6 routes of one namespace. */
import { call, invalid, isNotFound, NetnsError } from './errors';
import { AF, contains, familyFromAf, parseAddress, parseCidr, type Family } from './ip';
import { native, type NativeRoute, type NativeRouteChange, type NativeRouteQuery } from './native';
import * as validate from './validate';
import type { Netns } from './netns';

export type RouteScope = 'universe' | 'site' | 'link' | 'host' | 'nowhere';
export type RouteType = 'unicast' | 'local' | 'broadcast' | 'anycast' | 'multicast' | 'blackhole' | 'unreachable' | 'prohibit' | 'throw';

export interface RouteSpec {
  /** 'default' or a CIDR ("10.0.2.0/24", "2001:db8::/64"); a bare address means a host route */
  to: string;
  /** gateway address */
  via?: string;
  /** output interface */
  dev?: string;
  /** route priority (lower wins) */
  metric?: number;
  /** routing table: a number or 'main' | 'local' | 'default' (default 'main') */
  table?: number | 'main' | 'local' | 'default';
  /** default like ip(8): 'link' without a gateway, else 'universe' */
  scope?: RouteScope;
  /** preferred source address */
  src?: string;
  /** needed only for `to: 'default'` without `via`/`src` to pick IPv6; default 4 */
  family?: Family;
  type?: RouteType;
  /** routing protocol number; default 3 ("boot", as ip(8) uses) */
  protocol?: number;
  /**
   * Multipath (ECMP) hops instead of `via`/`dev`: `ip route add TO nexthop via A weight 1 nexthop via B weight 3`.
   * Each hop needs `via` or `dev`; `weight` is 1-256 (default 1).
   */
  nexthops?: RouteNexthop[];
  /** use a nexthop object or group (`ip route add TO nhid ID`); see ns.nexthops */
  nhid?: number;
}

/** One hop of a multipath route. */
export interface RouteNexthop {
  via?: string;
  dev?: string;
  /** relative share of flows, 1-256 (ip(8)'s `weight`); always present in listings */
  weight?: number;
}

/** Options of {@link Routes.get} (`ip route get DST from SRC iif DEV oif DEV mark M table T`). */
export interface RouteQuery {
  /** source address: selects source rules (`ip rule add from ...`) */
  from?: string;
  /** pretend the packet arrived on this device (needs `from`) */
  iif?: string;
  /** force the output device */
  oif?: string;
  /** firewall mark (fwmark rules) */
  mark?: number;
  /**
   * look up in this one table only, skipping the rules: the longest matching prefix of that table
   * (lowest metric first), as listed; the kernel's RTM_GETROUTE has no such mode
   */
  table?: number | 'main' | 'local' | 'default';
}

export interface Route {
  family: Family;
  /** 'default' or "net/len" */
  to: string;
  via?: string;
  dev?: string;
  metric: number;
  table: number | 'main' | 'local' | 'default';
  scope: RouteScope | number;
  protocol: 'kernel' | 'boot' | 'static' | 'ra' | 'dhcp' | number;
  type: RouteType | number;
  src?: string;
  /** a multipath route's hops (then `via`/`dev` are absent); each with its weight */
  nexthops?: Array<RouteNexthop & { weight: number }>;
  /** the nexthop object the route uses */
  nhid?: number;
  /**
   * Lightweight-tunnel encapsulation (`ip route ... encap seg6 ...`), by type name as ip(8) prints
   * it: 'mpls', 'ip', 'ip6', 'seg6', 'seg6local', 'bpf', 'rpl', 'ioam6', 'xfrm' (or its number).
   * Its parameters are not decoded; the route is listed either way.
   */
  encap?: { type: string };
}

const TABLES = { default: 253, main: 254, local: 255 } as const;
const SCOPE_NUM: Record<RouteScope, number> = { universe: 0, site: 200, link: 253, host: 254, nowhere: 255 };
const TYPE_NUM: Record<RouteType, number> = { unicast: 1, local: 2, broadcast: 3, anycast: 4, multicast: 5, blackhole: 6, unreachable: 7, prohibit: 8, throw: 9 };
const PROTOCOLS: Record<number, Route['protocol']> = { 2: 'kernel', 3: 'boot', 4: 'static', 9: 'ra', 16: 'dhcp' };

function reverse<T extends string>(m: Record<T, number>): Map<number, T> {
  return new Map(Object.entries(m).map(([k, v]) => [v as number, k as T]));
}
const SCOPE_NAME = reverse(SCOPE_NUM);
const TYPE_NAME = reverse(TYPE_NUM);
const TABLE_NAME = reverse(TABLES);

/** Validates a route into the addon's plain shape, with ip(8)'s defaults. Exported for the topology planner. */
export function toNativeRoute(spec: RouteSpec, forDelete = false): NativeRouteChange {
  const o = validate.object(spec, 'route');
  validate.knownKeys(o, 'route', ['to', 'via', 'dev', 'metric', 'table', 'scope', 'src', 'family', 'type', 'protocol', 'nexthops', 'nhid']);
  let family: Family | undefined = o.family === undefined ? undefined : (Number(validate.oneOf(String(o.family), 'family', ['4', '6'])) as Family);
  if (o.nexthops !== undefined && family === undefined && o.to === 'default') {
    // `default` says nothing about the family: the first hop's gateway does.
    const first = Array.isArray(o.nexthops) ? (o.nexthops[0] as { via?: unknown } | undefined) : undefined;
    if (first && typeof first === 'object' && first.via !== undefined) family = parseAddress(first.via, 'nexthop via').family;
  }
  let dst: string;
  let dstLen: number;
  if (o.to === 'default') {
    family ??= o.via !== undefined ? parseAddress(o.via, 'via').family : o.src !== undefined ? parseAddress(o.src, 'src').family : 4;
    dst = family === 4 ? '0.0.0.0' : '::';
    dstLen = 0;
  } else {
    const c = parseCidr(o.to, 'route destination', { family, prefixRequired: false });
    family = c.family;
    dst = c.address;
    dstLen = c.prefix;
  }
  const change: NativeRouteChange = { family: AF[family], dst, dstLen };
  if (o.via !== undefined) change.gateway = parseAddress(o.via, 'via', family).address;
  if (o.dev !== undefined) change.dev = validate.ifname(o.dev, 'dev');
  if (o.src !== undefined) change.src = parseAddress(o.src, 'src', family).address;
  if (o.nexthops !== undefined) {
    if (o.via !== undefined || o.dev !== undefined || o.nhid !== undefined) {
      throw invalid('ERR_NETNS_INVALID_ARG', `route to ${String(o.to)}: "nexthops" replaces "via"/"dev"/"nhid"`);
    }
    change.nexthops = toNativeHops(o.nexthops, family);
  }
  if (o.nhid !== undefined) {
    if (o.via !== undefined || o.dev !== undefined) throw invalid('ERR_NETNS_INVALID_ARG', `route to ${String(o.to)}: "nhid" replaces "via"/"dev"`);
    change.nhid = validate.integer(o.nhid, 'nhid', 1, 2 ** 32 - 1);
  }
  if (o.metric !== undefined) change.metric = validate.integer(o.metric, 'metric', 0, 2 ** 32 - 1);
  if (o.table !== undefined) {
    change.table = typeof o.table === 'string' ? TABLES[validate.oneOf(o.table, 'table', ['main', 'local', 'default'])] : validate.integer(o.table, 'table', 1, 2 ** 32 - 1);
  }
  const type = o.type === undefined ? 'unicast' : validate.oneOf(o.type, 'route type', Object.keys(TYPE_NUM) as RouteType[]);
  // A delete matches any type, protocol and scope unless the caller names one (as `ip route del`).
  change.type = forDelete && o.type === undefined ? 0 : TYPE_NUM[type];
  if (!forDelete && type === 'unicast' && change.gateway === undefined && change.dev === undefined && !change.nexthops && change.nhid === undefined) {
    throw invalid('ERR_NETNS_INVALID_ARG', `route to ${String(o.to)} needs "via", "dev", "nexthops" or "nhid"`);
  }
  if (o.scope !== undefined) {
    change.scope = SCOPE_NUM[validate.oneOf(o.scope, 'scope', Object.keys(SCOPE_NUM) as RouteScope[])];
  } else if (family === 6) {
    change.scope = SCOPE_NUM.universe;
  } else if (type === 'local') {
    change.scope = SCOPE_NUM.host;
  } else if (forDelete) {
    // no scope: the addon sends RT_SCOPE_NOWHERE, which matches any (as `ip route del`)
  } else {
    // ip(8): link scope only for a device route; a multipath or nexthop-object route is universe.
    const deviceOnly = change.gateway === undefined && !change.nexthops?.some((h) => h.gateway !== undefined) && change.nhid === undefined;
    change.scope = deviceOnly && type === 'unicast' ? SCOPE_NUM.link : SCOPE_NUM.universe;
  }
  if (o.protocol !== undefined) change.protocol = validate.integer(o.protocol, 'protocol', 0, 255);
  else change.protocol = forDelete ? 0 : 3;
  return change;
}

function toNativeHops(v: unknown, family: Family): NonNullable<NativeRouteChange['nexthops']> {
  if (!Array.isArray(v) || v.length === 0) throw invalid('ERR_NETNS_INVALID_ARG', 'route nexthops must be a non-empty array');
  if (v.length > 256) throw invalid('ERR_NETNS_INVALID_ARG', 'a route takes at most 256 nexthops');
  return v.map((h: unknown, i) => {
    const what = `nexthops[${i}]`;
    const o = validate.object(h, what);
    validate.knownKeys(o, what, ['via', 'dev', 'weight']);
    const hop: NonNullable<NativeRouteChange['nexthops']>[number] = { weight: o.weight === undefined ? 1 : validate.integer(o.weight, `${what} weight`, 1, 256) };
    if (o.via !== undefined) hop.gateway = parseAddress(o.via, `${what} via`, family).address;
    if (o.dev !== undefined) hop.dev = validate.ifname(o.dev, `${what} dev`);
    if (hop.gateway === undefined && hop.dev === undefined) throw invalid('ERR_NETNS_INVALID_ARG', `${what} needs "via" or "dev"`);
    return hop;
  });
}

/** The addon's route record as the typed Route, shared by list() and the event stream (lib/watch.ts). */
export function toRoute(r: NativeRoute, names: ReadonlyMap<number, string>): Route {
  const dev = r.index ? names.get(r.index) : undefined;
  const route: Route = {
    family: familyFromAf(r.family),
    to: r.dstLen === 0 ? 'default' : `${r.dst}/${r.dstLen}`,
    metric: r.metric,
    table: TABLE_NAME.get(r.table) ?? r.table,
    scope: SCOPE_NAME.get(r.scope) ?? r.scope,
    protocol: PROTOCOLS[r.protocol] ?? r.protocol,
    type: TYPE_NAME.get(r.type) ?? r.type,
  };
  if (r.nexthops && r.nexthops.length > 0) {
    route.nexthops = r.nexthops.map((h) => {
      const hop: RouteNexthop & { weight: number } = { weight: h.weight };
      if (h.gateway) hop.via = h.gateway;
      const hopDev = h.index ? names.get(h.index) : undefined;
      if (hopDev) hop.dev = hopDev;
      return hop;
    });
  } else {
    if (r.gateway) route.via = r.gateway;
    if (dev) route.dev = dev;
  }
  if (r.src) route.src = r.src;
  if (r.nhid) route.nhid = r.nhid;
  if (r.encap) route.encap = { type: r.encap.type };
  return route;
}

export interface RouteFilter {
  family?: Family;
  /** a table number or name, or 'all'; default 'main' */
  table?: Route['table'] | 'all';
  dev?: string;
}

export class Routes {
  constructor(private readonly ns: Netns) {}

  /**
   * Adds a route; EEXIST if one with the same key exists. Equivalent to:
   * `ip route add TO via GW dev DEV metric M table T scope S src SRC`, with `nexthops`
   * `ip route add TO nexthop via GW1 weight W1 nexthop via GW2 weight W2`, with `nhid` `ip route add TO nhid ID`
   */
  async add(spec: RouteSpec): Promise<void> {
    const change = toNativeRoute(spec);
    await call(this.ctx('add route', change), () => native.routeAdd(this.ns.ref, change));
  }

  /** Adds or replaces a route. Equivalent to: `ip route replace ...` */
  async replace(spec: RouteSpec): Promise<void> {
    const change = toNativeRoute(spec);
    await call(this.ctx('replace route', change), () => native.routeReplace(this.ns.ref, change));
  }

  /** Deletes a route. Equivalent to: `ip route del TO [via GW] [dev DEV] [metric M] [table T]` */
  async delete(spec: RouteSpec, options: { missingOk?: boolean } = {}): Promise<void> {
    const change = toNativeRoute(spec, true);
    try {
      await call(this.ctx('delete route', change), () => native.routeDelete(this.ns.ref, change));
    } catch (e) {
      if (options.missingOk && isNotFound(e)) return;
      throw e;
    }
  }

  /** Routes of the main table (or `table`). Equivalent to: `ip [-4|-6] route show [table T] [dev DEV]` */
  async list(filter: RouteFilter = {}): Promise<Route[]> {
    if (filter.family !== undefined) validate.oneOf(String(filter.family), 'family', ['4', '6']);
    const ctx = { netns: this.ns.label, syscall: 'list routes' };
    const [raw, links] = await Promise.all([
      call(ctx, () => native.routeList(this.ns.ref, filter.family ? AF[filter.family] : 0)),
      call(ctx, () => native.linkList(this.ns.ref)),
    ]);
    const names = new Map(links.map((l) => [l.index, l.name]));
    const wantTable = filter.table === undefined ? 254 : filter.table === 'all' ? undefined : typeof filter.table === 'string' ? TABLES[filter.table] : filter.table;
    const out: Route[] = [];
    for (const r of raw) {
      if (wantTable !== undefined && r.table !== wantTable) continue;
      const route = toRoute(r, names);
      if (filter.dev !== undefined && route.dev !== filter.dev) continue;
      out.push(route);
    }
    return out;
  }

  /**
   * Asks the kernel which route a packet to `dst` takes (through the policy rules and tables) and
   * returns it with the chosen `src`, `dev`, `via` and `table`; ENETUNREACH when nothing routes it.
   * Equivalent to: `ip route get DST [from SRC] [iif DEV] [oif DEV] [mark M] [table T]`
   */
  async get(dst: string, query: RouteQuery = {}): Promise<Route> {
    const { address, family } = parseAddress(dst, 'route get destination');
    const o = validate.object(query, 'route query');
    validate.knownKeys(o, 'route query', ['from', 'iif', 'oif', 'mark', 'table']);
    const q: NativeRouteQuery = { family: AF[family], dst: address };
    if (o.from !== undefined) q.from = parseAddress(o.from, 'from', family).address;
    if (o.iif !== undefined) q.iif = validate.ifname(o.iif, 'iif');
    if (o.oif !== undefined) q.oif = validate.ifname(o.oif, 'oif');
    if (o.iif !== undefined && o.from === undefined) throw invalid('ERR_NETNS_INVALID_ARG', 'route get with "iif" needs "from" (the packet\'s source)');
    if (o.mark !== undefined) q.mark = validate.integer(o.mark, 'mark', 0, 2 ** 32 - 1);
    const ctx = { netns: this.ns.label, ifname: q.oif ?? q.iif, syscall: 'get route' };
    if (o.table !== undefined) {
      if (o.from !== undefined || o.iif !== undefined || o.oif !== undefined || o.mark !== undefined) {
        throw invalid('ERR_NETNS_INVALID_ARG', 'route get in one "table" takes no from/iif/oif/mark (those select rules, which a one-table look-up skips)');
      }
      return this.lookupInTable(address, family, o.table as RouteQuery['table'] & {}, ctx);
    }
    const [raw, links] = await Promise.all([call(ctx, () => native.routeGet(this.ns.ref, q)), call(ctx, () => native.linkList(this.ns.ref))]);
    return toRoute(raw, new Map(links.map((l) => [l.index, l.name])));
  }

  // The kernel's RTM_GETROUTE always starts at the rules (it ignores RTA_TABLE), so a look-up in
  // one table is the longest-prefix match over that table, lowest metric first, as the FIB does.
  private async lookupInTable(address: string, family: Family, table: NonNullable<RouteQuery['table']>, ctx: { netns: string; syscall: string }): Promise<Route> {
    const t = typeof table === 'string' ? validate.oneOf(table, 'table', ['main', 'local', 'default']) : validate.integer(table, 'table', 1, 2 ** 32 - 1);
    const candidates = (await this.list({ family, table: t })).filter((r) => {
      const c = r.to === 'default' ? { address: family === 4 ? '0.0.0.0' : '::', prefix: 0, family } : parseCidr(r.to, 'route');
      return contains(c, address);
    });
    const prefix = (r: Route) => (r.to === 'default' ? 0 : Number(r.to.split('/')[1]));
    candidates.sort((a, b) => prefix(b) - prefix(a) || a.metric - b.metric);
    if (candidates.length === 0) {
      throw new NetnsError('ENETUNREACH', `ENETUNREACH: network is unreachable, get route ${address} table ${String(table)} (netns ${ctx.netns})`, {
        errno: -101,
        syscall: 'get route',
        netns: ctx.netns,
      });
    }
    return candidates[0];
  }

  private ctx(syscall: string, c: NativeRouteChange) {
    return { netns: this.ns.label, ifname: c.dev, syscall };
  }
}
