/** IPv4 and IPv6 routes of one namespace. */
import { call, invalid, isNotFound } from './errors';
import { AF, familyFromAf, parseAddress, parseCidr, type Family } from './ip';
import { native, type NativeRoute, type NativeRouteChange } from './native';
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
  validate.knownKeys(o, 'route', ['to', 'via', 'dev', 'metric', 'table', 'scope', 'src', 'family', 'type', 'protocol']);
  let family: Family | undefined = o.family === undefined ? undefined : (Number(validate.oneOf(String(o.family), 'family', ['4', '6'])) as Family);
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
  if (o.metric !== undefined) change.metric = validate.integer(o.metric, 'metric', 0, 2 ** 32 - 1);
  if (o.table !== undefined) {
    change.table = typeof o.table === 'string' ? TABLES[validate.oneOf(o.table, 'table', ['main', 'local', 'default'])] : validate.integer(o.table, 'table', 1, 2 ** 32 - 1);
  }
  const type = o.type === undefined ? 'unicast' : validate.oneOf(o.type, 'route type', Object.keys(TYPE_NUM) as RouteType[]);
  // A delete matches any type, protocol and scope unless the caller names one (as `ip route del`).
  change.type = forDelete && o.type === undefined ? 0 : TYPE_NUM[type];
  if (!forDelete && type === 'unicast' && change.gateway === undefined && change.dev === undefined) {
    throw invalid('ERR_NETNS_INVALID_ARG', `route to ${String(o.to)} needs "via" or "dev"`);
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
    change.scope = change.gateway === undefined && type === 'unicast' ? SCOPE_NUM.link : SCOPE_NUM.universe;
  }
  if (o.protocol !== undefined) change.protocol = validate.integer(o.protocol, 'protocol', 0, 255);
  else change.protocol = forDelete ? 0 : 3;
  return change;
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
  if (r.gateway) route.via = r.gateway;
  if (dev) route.dev = dev;
  if (r.src) route.src = r.src;
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

  /** Adds a route; EEXIST if one with the same key exists. Equivalent to: `ip route add TO via GW dev DEV metric M table T scope S src SRC` */
  async add(spec: RouteSpec): Promise<void> {
    const change = toNativeRoute(spec);
    await call(this.ctx('add route', change), () => native.routeAdd(this.ns.path, change));
  }

  /** Adds or replaces a route. Equivalent to: `ip route replace ...` */
  async replace(spec: RouteSpec): Promise<void> {
    const change = toNativeRoute(spec);
    await call(this.ctx('replace route', change), () => native.routeReplace(this.ns.path, change));
  }

  /** Deletes a route. Equivalent to: `ip route del TO [via GW] [dev DEV] [metric M] [table T]` */
  async delete(spec: RouteSpec, options: { missingOk?: boolean } = {}): Promise<void> {
    const change = toNativeRoute(spec, true);
    try {
      await call(this.ctx('delete route', change), () => native.routeDelete(this.ns.path, change));
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
      call(ctx, () => native.routeList(this.ns.path, filter.family ? AF[filter.family] : 0)),
      call(ctx, () => native.linkList(this.ns.path)),
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

  private ctx(syscall: string, c: NativeRouteChange) {
    return { netns: this.ns.label, ifname: c.dev, syscall };
  }
}
