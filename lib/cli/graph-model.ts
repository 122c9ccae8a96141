/**
 * What `netns-kit graph` draws, independent of where it came from (the live kernel or a topology
 * file) and of how it is drawn (SVG, Mermaid, DOT): namespaces holding interfaces (with kind,
 * addresses, bridge master) and NAT rules, and the veth pairs joining interfaces.
 */
import { netns, type Netns } from '../index';
import type { Link } from '../links';
import type { NatRule } from '../nat';
import { readNamespaceMarker } from '../registry';
import { natTableName } from '../topology/validate';
import { mapLimit } from './list';

/**
 * NAT rules of the tables netns-kit manages in `ns`: the default `inet netns_kit`, and the
 * `inet nk_NAME` of the topology that created the namespace (the registry says which).
 */
async function natRules(ns: Netns): Promise<NatRule[]> {
  const tables = [ns.nat];
  const owner = (await readNamespaceMarker(ns.name!).catch(() => undefined))?.owner;
  if (owner && 'topology' in owner) tables.push(ns.natTable(natTableName(owner.topology)));
  // no table there, or no nftables support: nothing to draw for that table
  const lists = await Promise.all(tables.map((t) => t.list().catch(() => [] as NatRule[])));
  return lists.flat();
}

export interface GraphInterface {
  name: string;
  /** veth, bridge, macvlan, ... */
  kind: string;
  addresses: string[];
  /** the bridge this interface is a port of (in the same namespace) */
  master?: string;
}

export interface GraphNamespace {
  name: string;
  interfaces: GraphInterface[];
  /** NAT rules as one-line texts */
  nat: string[];
  /** a template of many alike namespaces ("× 1000"), or a namespace outside what was drawn */
  note?: string;
}

export interface GraphEndpoint {
  netns: string;
  ifname: string;
}

export interface GraphModel {
  namespaces: GraphNamespace[];
  /** veth pairs (each once) */
  links: Array<{ a: GraphEndpoint; b: GraphEndpoint }>;
}

/** One line per NAT rule, the way people say it: "masquerade 192.168.15.0/24 out eth0". */
export function natRuleText(rule: NatRule | ({ kind: string } & Record<string, unknown>)): string {
  const r = rule as Record<string, unknown> & { kind: string };
  const port = (p: unknown) => (typeof p === 'object' && p !== null ? `${(p as { from: number }).from}-${(p as { to: number }).to}` : String(p));
  switch (r.kind) {
    case 'masquerade': {
      const out = r.outInterface ? ` out ${r.outInterface}` : '';
      const ex = Array.isArray(r.exclude) && r.exclude.length ? ` except to ${r.exclude.join(',')}` : '';
      return `masquerade ${r.source}${out}${ex}`;
    }
    case 'snat':
      return `snat ${r.source} → ${r.to}${r.outInterface ? ` out ${r.outInterface}` : ''}`;
    case 'portForward': {
      const to = r.to as { address: string; port?: number };
      const host = r.hostAddress ? `${r.hostAddress}` : '*';
      const via = r.inInterface ? ` in ${r.inInterface}` : '';
      return `forward ${r.protocol} ${host}:${port(r.port)}${via} → ${to.address}:${to.port ?? port(r.port)}${r.localhost ? ' (+localhost)' : ''}`;
    }
    case 'service': {
      const backends = (r.backends as Array<{ address: string; port: number }>).map((b) => `${b.address}:${b.port}`).join(', ');
      return `service ${r.protocol} ${r.vip}:${r.port} → ${backends}`;
    }
    default:
      return `${r.kind}`;
  }
}

/** Namespace name of a link's peer, as the live kernel reports it ('' when it is this namespace). */
function peerNamespace(link: Link, own: string): string | undefined {
  if (!link.peer) return undefined;
  if (link.peer.netns) return link.peer.netns;
  if (link.peer.netnsId === undefined) return own;
  return undefined; // a namespace without a /run/netns name (the machine's own, or a container's)
}

/**
 * Reads the live namespaces (all named ones, or those starting with `prefix`). A veth whose peer is
 * in a namespace outside the selection shows that namespace as an outside box.
 */
export async function liveModel(prefix = ''): Promise<GraphModel> {
  const all = (await netns.list()).filter((n) => n.name!.startsWith(prefix));
  const read = await mapLimit(all, 16, async (ns: Netns) => {
    try {
      const [links, addrs, nat] = await Promise.all([
        ns.links.list(),
        ns.addresses.list(),
        natRules(ns),
      ]);
      return { name: ns.name!, links, addrs, nat };
    } catch {
      return undefined; // a stale /run/netns entry: nothing to draw
    } finally {
      ns.release();
    }
  });
  const model: GraphModel = { namespaces: [], links: [] };
  const byIndex = new Map<string, Map<number, string>>();
  for (const r of read) {
    if (!r) continue;
    byIndex.set(r.name, new Map(r.links.map((l) => [l.index, l.name])));
    model.namespaces.push({
      name: r.name,
      interfaces: r.links
        .filter((l) => l.kind !== 'loopback' || r.addrs.some((a) => a.dev === l.name && a.scope !== 'host'))
        .map((l) => ({
          name: l.name,
          kind: l.kind,
          addresses: r.addrs.filter((a) => a.dev === l.name && a.scope !== 'link' && a.scope !== 'host').map((a) => a.cidr),
          ...(l.master ? { master: l.master } : {}),
        })),
      nat: r.nat.map(natRuleText),
    });
  }
  const seen = new Set<string>();
  const outside = new Map<string, GraphNamespace>();
  for (const r of read) {
    if (!r) continue;
    for (const l of r.links) {
      if (l.kind !== 'veth' || !l.peer) continue;
      const peerNs = peerNamespace(l, r.name) ?? '(unnamed namespace)';
      let peerName = byIndex.get(peerNs)?.get(l.peer.index);
      if (peerName === undefined) {
        // the other end is outside the selection: draw it as an outside namespace
        peerName = `if${l.peer.index}`;
        let o = outside.get(peerNs);
        if (!o) outside.set(peerNs, (o = { name: peerNs, interfaces: [], nat: [], note: 'not shown in full' }));
        if (!o.interfaces.some((i) => i.name === peerName)) o.interfaces.push({ name: peerName, kind: 'veth', addresses: [] });
      }
      const a = `${r.name}\0${l.name}`;
      const b = `${peerNs}\0${peerName}`;
      const key = a < b ? `${a}\0${b}` : `${b}\0${a}`;
      if (seen.has(key)) continue;
      seen.add(key);
      model.links.push({ a: { netns: r.name, ifname: l.name }, b: { netns: peerNs, ifname: peerName } });
    }
  }
  model.namespaces.push(...outside.values());
  return model;
}
