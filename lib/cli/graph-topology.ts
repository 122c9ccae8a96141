/**
 * The graph of a topology file, drawn from the file alone (the kernel is not asked): declared
 * namespaces with their bridges and veth ends, and each template as one box standing for its
 * `count` members, joined to its bridge by the uplink pattern ("veth{i}").
 */
import { topology } from '../index';
import type { Topology } from '../topology/schema';
import { natRuleText, type GraphModel, type GraphNamespace } from './graph-model';

export function modelOfTopology(t: Topology): GraphModel {
  const model: GraphModel = { namespaces: [], links: [] };
  const byName = new Map<string, GraphNamespace>();
  const nsFor = (name: string, note?: string): GraphNamespace => {
    let n = byName.get(name);
    if (!n) {
      n = { name, interfaces: [], nat: [], ...(note ? { note } : {}) };
      byName.set(name, n);
      model.namespaces.push(n);
    }
    return n;
  };
  for (const ns of t.namespaces ?? []) {
    const n = nsFor(ns.name, ns.existing ? 'existing' : undefined);
    for (const b of ns.bridges ?? []) n.interfaces.push({ name: b.name, kind: 'bridge', addresses: b.addresses ?? [] });
    n.nat.push(...(ns.nat ?? []).map((r) => natRuleText(r)));
  }
  for (const ns of t.namespaces ?? []) {
    for (const l of ns.links ?? []) {
      nsFor(ns.name).interfaces.push({ name: l.name, kind: 'veth', addresses: l.addresses ?? [], ...(l.master ? { master: l.master } : {}) });
      nsFor(l.peer.netns).interfaces.push({ name: l.peer.name, kind: 'veth', addresses: l.peer.addresses ?? [], ...(l.peer.master ? { master: l.peer.master } : {}) });
      model.links.push({ a: { netns: ns.name, ifname: l.name }, b: { netns: l.peer.netns, ifname: l.peer.name } });
    }
  }
  for (const tpl of t.templates ?? []) {
    const start = tpl.start ?? 0;
    const member = nsFor(tpl.name, `× ${tpl.count}, i = ${start}..${start + tpl.count - 1}`);
    if (!tpl.uplink) continue;
    const addresses = (tpl.addresses ?? []).map((a) => (typeof a === 'string' ? a : `from pool ${a.pool}`));
    member.interfaces.push({ name: tpl.uplink.name, kind: 'veth', addresses });
    nsFor(tpl.uplink.netns).interfaces.push({ name: tpl.uplink.peerName, kind: 'veth', addresses: [], master: tpl.uplink.bridge });
    model.links.push({ a: { netns: tpl.name, ifname: tpl.uplink.name }, b: { netns: tpl.uplink.netns, ifname: tpl.uplink.peerName } });
  }
  return model;
}

export async function topologyModel(file: string): Promise<{ model: GraphModel; title: string }> {
  const t = await topology.load(file);
  return { model: modelOfTopology(t), title: `topology ${t.name} (${file})` };
}
