/**
 * The planner: looks at what exists (namespaces, links, addresses, routes, sysctls, NAT rules, and
 * the registry's record of who made what) and turns a resolved topology into the list of steps
 * that make the machine match it — nothing for what already matches. Conflicts (a namespace of
 * that name made by somebody else, a link in the way) are found here, before anything changes.
 *
 * Template members that do not exist yet are not planned step by step: each becomes one
 * `MemberWork` item, and `createMembers()` (apply.ts) sets them all up through the bulk fast path
 * (lib/bulk.ts).
 */
import { AF, networkOf, parseCidr } from '../ip';
import { randomLocalMac, type Link } from '../links';
import type { Route } from '../routes';
import { RUN_DIR, Netns, createOwned, isNamespaceFile, list as listNamespaces } from '../netns';
import * as registry from '../registry';
import type { Nat } from '../nat';
import { applyRules, restoreRules, ruleTag } from './nat';
import type { NatRuleSpec } from './schema';
import * as fw from '../firewall-rules';
import { ruleId as fwRuleId } from '../firewall-rules';
import type { FirewallState } from '../firewall';
import type { ResolvedEnd, ResolvedNamespace, ResolvedRoute, ResolvedTopology } from './validate';
import { formatShape, type LinkShape } from '../shape';
import { getShape, shapeMatches } from '../tc';

/** Phases run in this order; the steps of one phase run concurrently. */
export const enum Phase {
  Namespaces = 0,
  Settings = 1,
  Bridges = 2,
  Veths = 3,
  Addresses = 4,
  Routes = 5,
  Members = 6,
  Nat = 7,
  Shapes = 8,
  Firewall = 9,
}

/** Records how to revert something this `up` call made; called as soon as the object exists. */
export type Created = (undo: () => Promise<void>) => void;

export interface Step {
  phase: Phase;
  /** what the step does, as a person reads it: "create namespace red", "add address 10.0.0.1/24 to br0 (host)" */
  what: string;
  run(created: Created): Promise<void>;
  /** one template member set up in one go (phase Members) */
  member?: MemberWork;
}

/** Everything one new template member needs: the unit of the bulk fast path. */
export interface MemberWork {
  name: string;
  loopbackUp: boolean;
  sysctls: Array<[string, string]>;
  uplink?: {
    /** end inside the member */
    name: string;
    /** end in the bridge's namespace, enslaved to `bridge` */
    peerName: string;
    netns: string;
    bridge: string;
    mtu?: number;
  };
  /** on the uplink's inside end */
  addresses: string[];
  /** links.shape() of the uplink's inside end */
  shape?: LinkShape;
  routes: ResolvedRoute[];
}

export interface Plan {
  topology: ResolvedTopology;
  steps: Step[];
  /** problems that stop `up` before it changes anything */
  conflicts: string[];
  /** namespaces that exist now (before the plan runs) */
  present: Set<string>;
}

/** What exists in one namespace, as the list calls report it. */
interface Seen {
  links: Map<string, Link>;
  /** "index address/prefix" */
  addresses: Set<string>;
  /** every table */
  routes: Route[];
  sysctls: Map<string, string>;
  natTags: Map<string, string>;
  nat?: Nat;
  /** the topology's firewall table here, when the namespace declares one */
  firewall?: FirewallState;
}

export function nsObject(name: string): Netns<string> {
  return new Netns(name, `${RUN_DIR}/${name}`, false);
}

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        if (failed === undefined) failed = e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

async function observe(ns: ResolvedNamespace, t: ResolvedTopology): Promise<Seen> {
  const handle = nsObject(ns.name);
  // Peers' namespaces are not needed here: no look-ups among the whole of /run/netns.
  const [links, addrs, routes] = await Promise.all([handle.links.list({ peerCandidates: [] }), handle.addresses.list(), handle.routes.list({ table: 'all' })]);
  const seen: Seen = {
    links: new Map(links.map((l) => [l.name, l])),
    addresses: new Set(addrs.map((a) => `${a.index} ${a.cidr}`)),
    routes,
    sysctls: new Map(),
    natTags: new Map(),
  };
  for (const [key] of ns.sysctls) {
    seen.sysctls.set(key, (await handle.sysctl.get(key).catch(() => '')).trim());
  }
  if (ns.firewall) seen.firewall = await nsObject(ns.name).firewallTable(t.firewallTable).state();
  if (ns.nat.length) {
    seen.nat = nsObject(ns.name).natTable(t.natTable);
    for (const r of await seen.nat.list().catch(() => [])) if (r.tag) seen.natTags.set(r.tag, r.id);
  }
  return seen;
}

const TABLE_NUMBER: Record<string, number> = { default: 253, main: 254, local: 255 };

function routeMatches(r: ResolvedRoute, seen: Seen): boolean {
  const c = r.change;
  const family = c.family === AF[6] ? 6 : 4;
  const to = c.dstLen === 0 ? 'default' : `${networkOf({ address: c.dst, prefix: c.dstLen, family })}/${c.dstLen}`;
  const table = c.table ?? 254;
  return seen.routes.some(
    (o) =>
      o.family === family &&
      o.to === to &&
      (typeof o.table === 'number' ? o.table : TABLE_NUMBER[o.table]) === table &&
      (c.metric === undefined || o.metric === c.metric) &&
      (c.nhid !== undefined
        ? o.nhid === c.nhid
        : c.nexthops !== undefined
          ? // multipath: the same hops with the same weights, in order
            o.nexthops?.length === c.nexthops.length &&
            c.nexthops.every(
              (h, i) => (h.gateway === undefined || o.nexthops![i].via === h.gateway) && (h.dev === undefined || o.nexthops![i].dev === h.dev) && o.nexthops![i].weight === h.weight,
            )
          : !o.nexthops && (c.gateway === undefined ? !o.via : o.via === c.gateway) && (c.dev === undefined || o.dev === c.dev)),
  );
}

/** Looks at the machine and plans what `up` must do. Reads only. */
export async function plan(t: ResolvedTopology): Promise<Plan> {
  // Only live namespaces count as present: an unmounted entry left by a creator killed half-way
  // is created again (createOwned reclaims it when the registry says it was ours).
  const entries = await listNamespaces();
  const live = await Promise.all(entries.map((n) => isNamespaceFile(n.path)));
  const present = new Set(entries.filter((_, i) => live[i]).map((n) => n.name!));
  const conflicts: string[] = [];
  const steps: Step[] = [];
  const byName = new Map(t.namespaces.map((n) => [n.name, n]));
  const ownerOfT: registry.Owner = { topology: t.name };

  // Which declared namespaces may be used: ours (made by this topology) or declared existing.
  const usable = new Set<string>();
  await pool(
    t.namespaces.filter((n) => present.has(n.name)),
    32,
    async (n) => {
      if (n.existing) {
        usable.add(n.name);
        return;
      }
      const m = await registry.readNamespaceMarker(n.name);
      if (m && registry.sameOwner(m.owner, ownerOfT)) usable.add(n.name);
      else conflicts.push(`${n.path}.name: namespace "${n.name}" already exists and was not created by topology "${t.name}" (declare it "existing: true" to use it as it is)`);
    },
  );
  for (const n of t.namespaces) {
    if (n.existing && !present.has(n.name)) conflicts.push(`${n.path}.name: namespace "${n.name}" is declared existing but does not exist`);
  }

  // Observe every usable namespace (cheap for new topologies: nothing exists yet).
  const seen = new Map<string, Seen>();
  await pool([...usable], t.concurrency * 2, async (name) => {
    seen.set(name, await observe(byName.get(name)!, t));
  });
  const isNew = (ns: string) => !present.has(ns);
  const foreign = (ns: string) => byName.get(ns)!.existing;

  // Links in namespaces the topology does not own must carry our registry marker.
  const linkMarkers = new Map<string, registry.LinkMarker | undefined>();
  const checkOwnedLink = async (netns: string, name: string, where: string): Promise<boolean> => {
    const l = seen.get(netns)?.links.get(name);
    if (!l) return false;
    if (!foreign(netns)) return true;
    const m = await registry.readLinkMarker(netns, name);
    linkMarkers.set(`${netns}/${name}`, m);
    if (m && registry.sameOwner(m.owner, ownerOfT) && m.index === l.index) return true;
    conflicts.push(`${where}: interface "${name}" already exists in namespace "${netns}" and does not belong to topology "${t.name}"`);
    return true;
  };

  // Members that do not exist go to the fast path whole.
  const fast = new Set(t.namespaces.filter((n) => n.template && isNew(n.name)).map((n) => n.name));

  // Namespaces and their settings.
  for (const n of t.namespaces) {
    if (fast.has(n.name)) continue;
    if (isNew(n.name)) {
      steps.push({
        phase: Phase.Namespaces,
        what: `create namespace ${n.name}`,
        run: async (created) => {
          await createOwned(n.name, { loopbackUp: n.loopbackUp, sysctls: Object.fromEntries(n.sysctls) }, ownerOfT);
          created(() => nsObject(n.name).delete({ missingOk: true }));
        },
      });
      continue;
    }
    if (!usable.has(n.name)) continue;
    const s = seen.get(n.name)!;
    for (const [key, value] of n.sysctls) {
      const old = s.sysctls.get(key);
      if (old === value) continue;
      steps.push({
        phase: Phase.Settings,
        what: `set sysctl ${key.replace(/\//g, '.')}=${value} in ${n.name} (is ${old || 'unset'})`,
        run: async (created) => {
          await nsObject(n.name).sysctl.set(key, value);
          if (old) created(() => nsObject(n.name).sysctl.set(key, old));
        },
      });
    }
    const lo = s.links.get('lo');
    if (n.loopbackUp && lo && !lo.up) {
      steps.push({
        phase: Phase.Settings,
        what: `set lo up in ${n.name}`,
        run: async (created) => {
          await nsObject(n.name).links.set('lo', { up: true });
          created(() => nsObject(n.name).links.set('lo', { up: false }));
        },
      });
    }
  }

  // Fixes to an existing link: up, mtu, master.
  const fixLink = (e: ResolvedEnd, l: Link) => {
    const isUp = l.up;
    const master = l.master;
    const changes: { up?: boolean; mtu?: number; master?: string } = {};
    if (e.up && !isUp) changes.up = true;
    if (e.mtu !== undefined && l.mtu !== e.mtu) changes.mtu = e.mtu;
    if (e.master !== undefined && master !== e.master) changes.master = e.master;
    if (Object.keys(changes).length === 0) return;
    const undo: { up?: boolean; mtu?: number; master?: string | null } = {};
    if (changes.up) undo.up = false;
    if (changes.mtu !== undefined) undo.mtu = l.mtu;
    if (changes.master !== undefined) undo.master = master ?? null;
    steps.push({
      phase: e.master !== undefined ? Phase.Veths : Phase.Bridges,
      what: `set link ${e.name} (${e.netns}) ${Object.entries(changes).map(([k, v]) => `${k} ${v}`).join(' ')}`,
      run: async (created) => {
        await nsObject(e.netns).links.set(e.name, changes);
        created(() => nsObject(e.netns).links.set(e.name, undo));
      },
    });
  };
  const deleteLinkUndo = (netns: string, name: string) => async () => {
    await nsObject(netns).links.delete(name, { missingOk: true });
    if (foreign(netns)) await registry.unmarkLink(netns, name);
  };
  const owner = ownerOfT;
  /** A fresh index (and registry marker, written by the step before creating) for a link in a namespace we do not own. */
  const indexFor = (netns: string) => (foreign(netns) ? registry.chooseIfIndex() : undefined);

  // Bridges.
  for (const b of t.bridges) {
    if (!isNew(b.netns) && !usable.has(b.netns)) continue;
    const l = isNew(b.netns) ? undefined : seen.get(b.netns)!.links.get(b.name);
    if (l && (await checkOwnedLink(b.netns, b.name, `${b.path}.name`))) {
      if (l.kind !== 'bridge') conflicts.push(`${b.path}.name: "${b.name}" in namespace "${b.netns}" is a ${l.kind || 'device'}, not a bridge`);
      else fixLink(b, l);
      continue;
    }
    steps.push({
      phase: Phase.Bridges,
      what: `add bridge ${b.name} (${b.netns})`,
      run: async (created) => {
        const index = indexFor(b.netns);
        if (index !== undefined) await registry.markLink(b.netns, b.name, index, owner);
        try {
          // A MAC of its own, set at creation: it stays fixed as ports come and go (see randomLocalMac).
          await nsObject(b.netns).links.add({ kind: 'bridge', name: b.name, up: b.up, mac: randomLocalMac(), ...(b.mtu !== undefined ? { mtu: b.mtu } : {}), ...(index !== undefined ? { index } : {}) });
        } catch (e) {
          if (index !== undefined) await registry.unmarkLink(b.netns, b.name);
          throw e;
        }
        if (!isNew(b.netns)) created(deleteLinkUndo(b.netns, b.name));
      },
    });
  }

  // Veth pairs (template members' uplinks included when the member exists already).
  for (const v of t.veths) {
    if (v.member && fast.has(v.member)) continue;
    const usableEnd = (e: ResolvedEnd) => isNew(e.netns) || usable.has(e.netns);
    if (!usableEnd(v.a) || !usableEnd(v.b)) continue;
    const la = isNew(v.a.netns) ? undefined : seen.get(v.a.netns)!.links.get(v.a.name);
    const lb = isNew(v.b.netns) ? undefined : seen.get(v.b.netns)!.links.get(v.b.name);
    const endPath = (e: ResolvedEnd) => (e === v.a ? `${v.path}.name` : `${v.path}.peer.name`);
    if (la) await checkOwnedLink(v.a.netns, v.a.name, endPath(v.a));
    if (lb) await checkOwnedLink(v.b.netns, v.b.name, endPath(v.b));
    if (la && lb) {
      if (la.kind !== 'veth' || lb.kind !== 'veth' || la.peer?.index !== lb.index || lb.peer?.index !== la.index) {
        conflicts.push(`${v.path}: "${v.a.name}" (${v.a.netns}) and "${v.b.name}" (${v.b.netns}) exist but are not the two ends of one veth pair`);
        continue;
      }
      fixLink(v.a, la);
      fixLink(v.b, lb);
      continue;
    }
    if (la || lb) {
      const [have, miss] = la ? [v.a, v.b] : [v.b, v.a];
      conflicts.push(`${endPath(have)}: "${have.name}" exists in namespace "${have.netns}" but its peer "${miss.name}" (${miss.netns}) does not (run down first)`);
      continue;
    }
    // Create from the side that has a master, so the master travels in the creating message.
    const [own, peer] = v.b.master !== undefined && v.a.master === undefined ? [v.b, v.a] : [v.a, v.b];
    steps.push({
      phase: Phase.Veths,
      what: `add veth ${own.name} (${own.netns}) <-> ${peer.name} (${peer.netns})`,
      run: async (created) => {
        const ownIndex = indexFor(own.netns);
        const peerIndex = indexFor(peer.netns);
        if (ownIndex !== undefined) await registry.markLink(own.netns, own.name, ownIndex, owner);
        if (peerIndex !== undefined) await registry.markLink(peer.netns, peer.name, peerIndex, owner);
        try {
          await nsObject(own.netns).links.add({
            kind: 'veth',
            name: own.name,
            up: own.up,
            ...(own.mtu !== undefined ? { mtu: own.mtu } : {}),
            ...(own.master !== undefined ? { master: own.master } : {}),
            ...(ownIndex !== undefined ? { index: ownIndex } : {}),
            peer: {
              name: peer.name,
              // Same namespace: no netns (the peer is created next to its twin).
              ...(peer.netns !== own.netns ? { netns: nsObject(peer.netns) } : {}),
              up: peer.up,
              ...(peer.mtu !== undefined ? { mtu: peer.mtu } : {}),
              ...(peerIndex !== undefined ? { index: peerIndex } : {}),
            },
          });
        } catch (e) {
          if (ownIndex !== undefined) await registry.unmarkLink(own.netns, own.name);
          if (peerIndex !== undefined) await registry.unmarkLink(peer.netns, peer.name);
          throw e;
        }
        if (!isNew(own.netns) || !isNew(peer.netns)) {
          created(async () => {
            await deleteLinkUndo(own.netns, own.name)();
            if (foreign(peer.netns)) await registry.unmarkLink(peer.netns, peer.name);
          });
        }
        if (peer.master !== undefined) await nsObject(peer.netns).links.set(peer.name, { master: peer.master });
      },
    });
  }

  // Addresses on bridges and veth ends.
  const addressOwners: ResolvedEnd[] = [...t.bridges];
  for (const v of t.veths) if (!(v.member && fast.has(v.member))) addressOwners.push(v.a, v.b);
  for (const e of addressOwners) {
    if (!isNew(e.netns) && !usable.has(e.netns)) continue;
    const s = seen.get(e.netns);
    const l = s?.links.get(e.name);
    for (const cidr of e.addresses) {
      if (l && s!.addresses.has(`${l.index} ${cidr}`)) continue;
      steps.push({
        phase: Phase.Addresses,
        what: `add address ${cidr} to ${e.name} (${e.netns})`,
        run: async (created) => {
          await nsObject(e.netns).addresses.add(e.name, cidr, parseCidr(cidr, 'address').family === 6 ? { noDad: true } : {});
          if (!isNew(e.netns)) created(() => nsObject(e.netns).addresses.delete(e.name, cidr, { missingOk: true }));
        },
      });
    }
  }

  // Routes.
  for (const n of t.namespaces) {
    if (fast.has(n.name) || (!isNew(n.name) && !usable.has(n.name))) continue;
    const s = seen.get(n.name);
    for (const r of n.routes) {
      if (s && routeMatches(r, s)) continue;
      steps.push({
        phase: Phase.Routes,
        what: `add route ${r.spec.to}${r.spec.via ? ` via ${r.spec.via}` : ''}${r.spec.dev ? ` dev ${r.spec.dev}` : ''} (${n.name})`,
        run: async (created) => {
          await nsObject(n.name).routes.add(r.spec);
          if (!isNew(n.name)) created(() => nsObject(n.name).routes.delete(r.spec, { missingOk: true }));
        },
      });
    }
  }

  // New template members: one unit of work each.
  for (const n of t.namespaces) {
    if (!fast.has(n.name)) continue;
    const uplink = t.veths.find((v) => v.member === n.name);
    const work: MemberWork = { name: n.name, loopbackUp: n.loopbackUp, sysctls: n.sysctls, addresses: uplink?.b.addresses ?? [], routes: n.routes };
    if (uplink) {
      if (!isNew(uplink.a.netns) && !usable.has(uplink.a.netns)) continue;
      if (seen.get(uplink.a.netns)?.links.has(uplink.a.name)) {
        conflicts.push(`${uplink.path}.peerName: interface "${uplink.a.name}" already exists in namespace "${uplink.a.netns}"`);
        continue;
      }
      work.uplink = { name: uplink.b.name, peerName: uplink.a.name, netns: uplink.a.netns, bridge: uplink.a.master!, ...(uplink.a.mtu !== undefined ? { mtu: uplink.a.mtu } : {}) };
      if (uplink.b.shape) work.shape = uplink.b.shape;
    }
    steps.push({ phase: Phase.Members, what: `create namespace ${n.name} (${describeMember(work)})`, member: work, run: async () => undefined });
  }

  // Shapes (links.shape()) of veth ends, after the links and members exist. A link whose shape
  // already matches is left alone (the shapes of existing links are read concurrently); rolling
  // back an existing namespace puts its old shape back.
  const shapeEnds: Array<{ e: ResolvedEnd; want: LinkShape; exists: boolean; before?: LinkShape | null }> = [];
  for (const v of t.veths) {
    // A new member's own end is shaped by the bulk path that creates it; its bridge end here.
    const ends = v.member && fast.has(v.member) ? [v.a] : [v.a, v.b];
    for (const e of ends) {
      if (!e.shape || (!isNew(e.netns) && !usable.has(e.netns))) continue;
      shapeEnds.push({ e, want: e.shape, exists: seen.get(e.netns)?.links.has(e.name) === true });
    }
  }
  await pool(
    shapeEnds.filter((x) => x.exists),
    t.concurrency,
    async (x) => {
      // undefined: a root qdisc shape() did not make (it is replaced, and removed on rollback).
      x.before = await getShape(nsObject(x.e.netns), x.e.name).catch(() => undefined);
    },
  );
  for (const { e, want, exists, before } of shapeEnds) {
    if (exists && before !== undefined && shapeMatches(want, before)) continue;
    steps.push({
      phase: Phase.Shapes,
      what: `shape ${e.name} (${e.netns}): ${formatShape(want)}`,
      run: async (created) => {
        const ns = nsObject(e.netns);
        await ns.links.shape(e.name, want);
        if (!isNew(e.netns)) created(() => ns.links.shape(e.name, before ?? null));
      },
    });
  }

  // NAT rules: each namespace's table `inet nk_TOPOLOGY` is set to exactly the declared rules in ONE
  // nftables transaction (Nat.apply), so a crash or a failure leaves it wholly old or wholly new,
  // never half. Rules carry a tag derived from their content: when the tags in the kernel are the
  // declared ones, the namespace is left alone.
  for (const n of t.namespaces) {
    if (!isNew(n.name) && !usable.has(n.name)) continue;
    const s = seen.get(n.name);
    const have = s?.natTags ?? new Map<string, string>();
    if (n.nat.length === 0 && have.size === 0) continue;
    const wanted = new Map<string, NatRuleSpec>(n.nat.map((r) => [ruleTag(r.spec), r.spec]));
    if (wanted.size === have.size && [...wanted.keys()].every((tag) => have.has(tag))) continue;
    const dropped = [...have.keys()].filter((tag) => !wanted.has(tag)).length;
    steps.push({
      phase: Phase.Nat,
      what: `apply ${wanted.size} NAT rule(s) to ${n.name} (table inet ${t.natTable}${dropped ? `, ${dropped} no longer declared` : ''}), one transaction`,
      run: async (created) => {
        const api = nsObject(n.name).natTable(t.natTable);
        if (n.existing && !(await registry.readNatMarker(n.name, t.natTable))) {
          await registry.markNat(n.name, t.natTable, owner);
          created(() => registry.unmarkNat(n.name, t.natTable));
        }
        const before = isNew(n.name) ? [] : await api.list();
        await applyRules(api, [...wanted.values()]);
        // A namespace this up created takes its table along when rolled back.
        if (!isNew(n.name)) created(() => (before.length ? restoreRules(api, before) : api.flush()));
      },
    });
  }
  // Firewall: each namespace's table `inet nkfw_TOPOLOGY` is replaced by exactly the declared
  // policies and rules in ONE nftables transaction (Firewall.apply), like NAT above; left alone when
  // the kernel already holds them (same policies, same rule ids in the same order).
  for (const n of t.namespaces) {
    const declared = n.firewall;
    if (!declared) continue;
    if (!isNew(n.name) && !usable.has(n.name)) continue;
    const have = seen.get(n.name)?.firewall;
    const ids = [...new Set(declared.rules.map(fwRuleId))];
    const pol = declared.policy;
    if (have?.exists && fw.FIREWALL_CHAINS.every((c) => have.policy[c] === pol[c]) && have.rules.length === ids.length && have.rules.every((r, i) => r.id === ids[i])) continue;
    steps.push({
      phase: Phase.Firewall,
      what: `apply firewall to ${n.name} (table inet ${t.firewallTable}: policy input ${pol.input}, forward ${pol.forward}, output ${pol.output}; ${ids.length} rule(s)), one transaction`,
      run: async (created) => {
        const api = nsObject(n.name).firewallTable(t.firewallTable, { bridgeNetfilter: declared.bridgeNetfilter });
        if (n.existing && !(await registry.readFirewallMarker(n.name, t.firewallTable))) {
          await registry.markFirewall(n.name, t.firewallTable, owner);
          created(() => registry.unmarkFirewall(n.name, t.firewallTable));
        }
        const before = isNew(n.name) ? undefined : await api.state();
        await api.apply({ policy: pol, rules: declared.rules });
        // A namespace this up created takes its table along when rolled back.
        if (before) {
          created(async () => {
            if (before.exists) await api.apply({ policy: before.policy, rules: before.rules.map(({ id: _id, ...spec }) => spec) });
            else await api.flush();
          });
        }
      },
    });
  }
  return { topology: t, steps, conflicts, present };
}

function describeMember(w: MemberWork): string {
  const parts: string[] = [];
  if (w.uplink) parts.push(`veth ${w.uplink.name} <-> ${w.uplink.peerName} master ${w.uplink.bridge} (${w.uplink.netns})`);
  if (w.addresses.length) parts.push(w.addresses.join(' '));
  if (w.routes.length) parts.push(`${w.routes.length} route${w.routes.length > 1 ? 's' : ''}`);
  return parts.join(', ') || 'no links';
}
