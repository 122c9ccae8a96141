/** What is live, and whether it matches a topology. */
import type { Address } from '../addresses';
import type { Link } from '../links';
import { isNotFound } from '../errors';
import { list as listNamespaces, type Netns } from '../netns';
import { Nat } from '../nat';
import type { NatRule } from '../nat-rules';
import * as registry from '../registry';
import type { Route } from '../routes';
import type { LinkShape } from '../shape';
import { linkShapes } from '../tc';
import { Firewall } from '../firewall';
import type { FirewallPolicy, FirewallRule } from '../firewall-rules';
import { nsObject, plan, pool } from './plan';
import type { Topology } from './schema';
import { natTableName, resolve } from './validate';

export interface NamespaceStatus {
  name: string;
  /** it is there (in /run/netns) */
  exists: boolean;
  /** declared `existing: true` (the topology does not own it) */
  existing?: boolean;
  /** who the registry says created it: "topology NAME", "process PID", "persist"; absent when netns-kit did not */
  createdBy?: string;
  /** with counters (`stats`) */
  links: Link[];
  /** link name -> what links.shape() applied, for shaped links only */
  shapes?: Record<string, LinkShape>;
  addresses: Address[];
  routes: Route[];
  /** rules of the topology's NAT table here (when NAT support is built in) */
  nat: Array<{ id: string; kind: string; tag?: string }>;
  /** firewall tables here (lib/firewall.ts): the topology's, or without a topology every netns-kit firewall table; absent when there is none */
  firewall?: Array<{ table: string; policy: Required<FirewallPolicy>; rules: FirewallRule[] }>;
}

export interface TopologyStatus {
  /** the topology's name (when one was given) */
  name?: string;
  /** the registry's record: 'up' (complete), 'applying' (an up in progress or died), 'absent' */
  state?: 'up' | 'applying' | 'absent';
  namespaces: NamespaceStatus[];
  /** with a topology: live state matches it (up would change nothing) */
  matches?: boolean;
  /** with a topology: each step `up` would take, each conflict that stops it, and objects this topology created that it no longer declares */
  differences?: string[];
}

function ownerText(o: registry.Owner | undefined): string | undefined {
  if (!o) return undefined;
  if ('topology' in o) return `topology ${o.topology}`;
  if ('persist' in o) return 'persist';
  return `process ${o.pid}`;
}


/**
 * @param firewallTables the firewall tables to show: names, or 'owned' for every netns-kit
 *   firewall table in the namespace (one more libnftables call per namespace)
 */
async function live(name: string, present: Set<string>, table: string | undefined, peers?: string[], firewallTables: string[] | 'owned' = []): Promise<NamespaceStatus> {
  const st: NamespaceStatus = { name, exists: present.has(name), links: [], addresses: [], routes: [], nat: [] };
  const marker = await registry.readNamespaceMarker(name);
  const by = ownerText(marker?.owner);
  if (by) st.createdBy = by;
  if (!st.exists) return st;
  const ns = nsObject(name);
  try {
    [st.links, st.addresses, st.routes] = await Promise.all([ns.links.list(peers ? { stats: true, peerCandidates: peers } : { stats: true }), ns.addresses.list(), ns.routes.list()]);
    const shapes = await linkShapes(ns, st.links);
    if (Object.keys(shapes).length) st.shapes = shapes;
  } catch (e) {
    // Deleted by somebody else since we listed /run/netns.
    if (!isNotFound(e)) throw e;
    st.exists = false;
    return st;
  }
  if (table) st.nat = await ns.natTable(table).list().catch(() => []);
  const fwTables = firewallTables === 'owned' ? await Firewall.ownedTables(ns).catch(() => []) : firewallTables;
  const firewall: NonNullable<NamespaceStatus['firewall']> = [];
  for (const t of fwTables) {
    const s = await ns
      .firewallTable(t)
      .state()
      .catch(() => undefined);
    if (s?.exists) firewall.push({ table: t, policy: s.policy, rules: s.rules });
  }
  if (firewall.length) st.firewall = firewall;
  return st;
}

/** The rules of every netns-kit NAT table in `ns` (`nft list tables inet` + each table). */
async function allNatRules(ns: Netns): Promise<NatRule[]> {
  try {
    const tables = await Nat.ownedTables(ns);
    const lists = await Promise.all(tables.map((t) => ns.natTable(t).list()));
    return lists.flat();
  } catch (e) {
    if (isNotFound(e)) return []; // deleted meanwhile
    throw e;
  }
}

/**
 * Live namespaces in /run/netns (those `only` accepts, default all) with their links, addresses and
 * routes: `status()` without a topology. `netns-kit status --match PREFIX` passes a filter, so a
 * busy machine's other namespaces are not even looked at.
 */
export async function liveStatus(only: (name: string) => boolean = () => true): Promise<TopologyStatus> {
  const present = new Set((await listNamespaces()).map((n) => n.name!));
  const names = [...present].filter(only).sort();
  const byName = new Map<string, NamespaceStatus>();
  await pool(names, 8, async (n) => {
    const st = await live(n, present, undefined, undefined, 'owned');
    // Without a topology file, which tables hold NAT rules is not known: every netns-kit NAT table
    // in the namespace (the default `inet netns_kit`, a topology's `inet nk_NAME`, ...) is listed.
    if (st.exists) st.nat = await allNatRules(nsObject(n));
    byName.set(n, st);
  });
  return { namespaces: names.map((n) => byName.get(n)!) };
}

/**
 * Live namespaces with their links, addresses, routes and NAT rules. With a topology: only its
 * namespaces, plus `matches` and `differences`. Without: every namespace in /run/netns.
 * Equivalent to: `ip netns list` + `ip -n NS link/addr/route` + `nft list table inet nk_NAME`.
 */
export async function status(t?: Topology): Promise<TopologyStatus> {
  if (t === undefined) return liveStatus();
  const present = new Set((await listNamespaces()).map((n) => n.name!));
  const r = resolve(t);
  const p = await plan(r);
  const record = await registry.readTopology(r.name);
  const differences = [...p.conflicts, ...p.steps.map((s) => s.what)];
  const declared = new Set(r.namespaces.map((n) => n.name));
  for (const m of await registry.listNamespaceMarkers()) {
    if (m.marker && registry.sameOwner(m.marker.owner, { topology: r.name }) && !declared.has(m.name) && present.has(m.name)) {
      differences.push(`namespace ${m.name} was created by topology "${r.name}" but is no longer declared (down removes it)`);
    }
  }
  const namespaces = new Map<string, NamespaceStatus>();
  // Which namespaces each one is wired to (veth peers), for naming the peers of its links.
  const peers = new Map<string, Set<string>>();
  for (const v of r.veths) {
    if (v.a.netns === v.b.netns) continue;
    for (const [x, y] of [[v.a.netns, v.b.netns], [v.b.netns, v.a.netns]]) {
      if (!peers.has(x)) peers.set(x, new Set());
      if (present.has(y)) peers.get(x)!.add(y);
    }
  }
  await pool(r.namespaces, r.concurrency, async (n) => {
    const st = await live(n.name, present, n.nat.length ? natTableName(r.name) : undefined, [...(peers.get(n.name) ?? [])], n.firewall ? [r.firewallTable] : []);
    if (n.existing) st.existing = true;
    namespaces.set(n.name, st);
  });
  return {
    name: r.name,
    state: record ? record.state : 'absent',
    namespaces: r.namespaces.map((n) => namespaces.get(n.name)!),
    matches: differences.length === 0,
    differences,
  };
}
