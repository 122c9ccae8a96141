/**
 * nftables NAT inside one namespace: masquerade, SNAT, port forwards and ClusterIP-style
 * services, in a table the library owns (default `inet netns_kit`).
 *
 * Every change is one libnftables JSON batch (all of it applies or none does), run inside the
 * namespace on an addon thread; rules are typed objects (lib/nat-rules.ts), never rule text. No
 * other table is ever modified, flushed or rewritten. Calls on one namespace run one at a time,
 * in call order, so a read-modify-write (`apply`) never interleaves with another change.
 */
import { call, invalid, NetnsError } from './errors';
import { contains, parseCidr, type Family } from './ip';
import { native, type NativeCtEntry } from './native';
import * as rules from './nat-rules';
import type { NatRule, NatRuleSpec, MasqueradeSpec, SnatSpec, PortForwardSpec, ServiceSpec, KernelTable, OwnedRule } from './nat-rules';
import type { Netns } from './netns';
import { ownedInetTables, serialize } from './nft-run';
import * as validate from './validate';

export type { NatRule, NatRuleSpec, MasqueradeSpec, SnatSpec, PortForwardSpec, ServiceSpec, NatProtocol, PortSpec, ServiceBackend, NatKind } from './nat-rules';

export const DEFAULT_TABLE = 'netns_kit';

export interface NatResult {
  /** the rule's stable id (derived from its content) */
  id: string;
  /** things that may still stop the traffic, e.g. another table's forward chain with policy drop */
  warnings: string[];
}

export interface ApplyResult {
  /** ids of the given specs, in the given order */
  ids: string[];
  warnings: string[];
}

/** NAT in one namespace, in one table the library owns. Get it as `ns.nat` or `ns.natTable(name)`. */
export class Nat {
  readonly table: string;

  constructor(private readonly ns: Netns, table: string = DEFAULT_TABLE) {
    this.table = rules.tableName(table);
  }

  /**
   * Source NAT to the outgoing interface's address for traffic from `source`.
   * Equivalent to: `iptables -t nat -A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE`, i.e.
   * `nft add rule inet netns_kit postrouting ip saddr 192.168.15.0/24 [oifname O] [ip daddr != { EXCL }] masquerade`
   */
  async masquerade(spec: MasqueradeSpec): Promise<NatResult> {
    return this.add({ ...spec, kind: 'masquerade' });
  }

  /**
   * Source NAT to a fixed address.
   * Equivalent to: `nft add rule inet netns_kit postrouting ip saddr SRC [oifname O] snat ip to ADDR`
   */
  async snat(spec: SnatSpec): Promise<NatResult> {
    return this.add({ ...spec, kind: 'snat' });
  }

  /**
   * Forwards a port (or range) of this namespace to another address: from outside, from
   * neighbours through the namespace's own address (hairpin), from the namespace itself, and with
   * `localhost: true` from 127.0.0.1 here (sets route_localnet on the interface towards `to`).
   * Equivalent to: `iptables -t nat -A PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 192.168.15.1:80`, i.e.
   * `nft add rule inet netns_kit prerouting fib daddr type local tcp dport 8080 dnat ip to 192.168.15.1:80`
   */
  async portForward(spec: PortForwardSpec): Promise<NatResult> {
    return this.add({ ...spec, kind: 'portForward' });
  }

  /**
   * A virtual IP spread at random over several backends (kube-proxy's nftables mode, in one rule).
   * Equivalent to: `nft add rule inet netns_kit prerouting ip daddr VIP tcp dport P dnat ip to numgen random mod N map { 0 : A . PA, 1 : B . PB }`
   */
  async service(spec: ServiceSpec): Promise<NatResult> {
    return this.add({ ...spec, kind: 'service' });
  }

  /**
   * Adds one rule of any kind. Adding a rule that is already there changes nothing and returns
   * its id. Equivalent to: `nft -f` of the rule's few lines, as one transaction.
   */
  async add(spec: NatRuleSpec): Promise<NatResult> {
    const [id] = await this.addAll([spec]);
    return { id, warnings: await this.locked(() => this.forwardWarnings()) };
  }

  /**
   * add() for several rules at once, without the forward-chain warnings (which list the whole
   * ruleset): one read, one transaction for the rules not there yet, the forwarding sysctls.
   * Resolves with their ids. The CNI plugin's path (one call per container: every
   * libnftables run counts). Equivalent to: `nft -f` of all the rules' lines, as one transaction.
   */
  async addAll(specs: NatRuleSpec[]): Promise<string[]> {
    const ns = specs.map((s) => rules.normalize(s));
    const ids = ns.map((n) => rules.ruleId(n));
    return this.locked(async () => {
      const current = await this.read();
      const owned = rules.ownedRules(current);
      const fresh = ns.filter((_, i) => !owned.rules.some((r) => r.id === ids[i]) && ids.indexOf(ids[i]) === i);
      if (fresh.length) {
        this.checkConflicts(fresh, fresh.map((n) => rules.ruleId(n)), owned.rules);
        const cmds = this.setupCommands(current, owned);
        for (const n of fresh) for (const r of rules.buildRules(this.table, n, rules.ruleId(n))) cmds.push(rules.addRule(r));
        await this.run(cmds, 'add nat rule');
        await this.flushConntrack([], fresh);
      }
      await this.ensureForwarding(ns);
      return ids;
    });
  }

  /**
   * The owned table's rules, read back from the kernel. Equivalent to: `nft -j list table inet netns_kit`
   */
  async list(filter: { tag?: string } = {}): Promise<NatRule[]> {
    validate.knownKeys(validate.object(filter, 'list filter'), 'list filter', ['tag']);
    const t = filter.tag === undefined ? undefined : rules.tag(filter.tag);
    return this.locked(async () => {
      const owned = rules.ownedRules(await this.read());
      return owned.rules
        .filter((r) => r.spec !== undefined && (t === undefined || r.tag === t))
        .map((r) => ({ ...(r.spec as NatRuleSpec), id: r.id }));
    });
  }

  /**
   * Removes one rule (all its kernel rules, one transaction) and the conntrack entries of its
   * flows. Equivalent to: `nft delete rule inet netns_kit CHAIN handle H` for each, then `conntrack -D ...`
   */
  async remove(id: string, options: { missingOk?: boolean } = {}): Promise<void> {
    if (typeof id !== 'string' || !/^[0-9a-f]{16}$/.test(id)) throw invalid('ERR_NETNS_INVALID_ARG', `rule id must be 16 hex digits, got ${JSON.stringify(id)}`);
    validate.knownKeys(validate.object(options, 'remove options'), 'remove options', ['missingOk']);
    return this.locked(async () => {
      const owned = rules.ownedRules(await this.read());
      const r = owned.rules.find((x) => x.id === id);
      if (!r) {
        if (options.missingOk) return;
        throw new NetnsError('ENOENT', `ENOENT: no such NAT rule, remove ${id} (table inet ${this.table}, netns ${this.ns.label})`, {
          errno: -2,
          syscall: 'remove nat rule',
          netns: this.ns.label,
        });
      }
      await this.deleteOwned([r]);
    });
  }

  /** Removes every rule with this tag in one transaction; resolves with how many there were (CNI DEL). */
  async removeTag(tagValue: string): Promise<number> {
    const t = rules.tag(tagValue);
    return this.locked(async () => {
      const owned = rules.ownedRules(await this.read());
      const mine = owned.rules.filter((r) => r.tag === t);
      if (mine.length) await this.deleteOwned(mine);
      return mine.length;
    });
  }

  /** Removes the owned table and everything in it. Equivalent to: `nft delete table inet netns_kit` */
  async flush(): Promise<void> {
    return this.locked(async () => {
      const current = await this.read();
      if (!current.exists) return;
      const owned = rules.ownedRules(current);
      await this.run([rules.deleteTable(this.table)], 'flush nat table');
      await this.flushConntrack(specsOf(owned.rules), []);
    });
  }

  /**
   * Makes the owned table hold exactly these rules: what is missing is added, what is not listed
   * is removed, what is already there stays untouched — all in one transaction.
   * Equivalent to: `nft -f` of a file that deletes and adds those rules.
   */
  async apply(specs: NatRuleSpec[]): Promise<ApplyResult> {
    if (!Array.isArray(specs)) throw invalid('ERR_NETNS_INVALID_ARG', 'apply takes an array of NAT rules');
    const normalized = specs.map((s, i) => {
      try {
        return rules.normalize(s);
      } catch (e) {
        if (e instanceof NetnsError) e.message = `rules[${i}]: ${e.message}`;
        throw e;
      }
    });
    const ids = normalized.map(rules.ruleId);
    const unique = new Map<string, NatRuleSpec>();
    normalized.forEach((n, i) => unique.set(ids[i], n));
    this.checkConflicts([...unique.values()], [...unique.keys()], []);
    return this.locked(async () => {
      const current = await this.read();
      const owned = rules.ownedRules(current);
      const have = new Set(owned.rules.map((r) => r.id));
      const gone = owned.rules.filter((r) => !unique.has(r.id));
      const added = [...unique.entries()].filter(([id]) => !have.has(id));
      if (gone.length || added.length) {
        const cmds = this.setupCommands(current, owned);
        for (const r of gone) for (const p of r.parts) cmds.push(rules.deleteRule(this.table, p.chain, p.handle));
        for (const [id, n] of added) for (const r of rules.buildRules(this.table, n, id)) cmds.push(rules.addRule(r));
        await this.run(cmds, 'apply nat rules');
        await this.flushConntrack(specsOf(gone), added.map(([, n]) => n));
      }
      await this.ensureForwarding([...unique.values()]);
      return { ids, warnings: unique.size ? await this.forwardWarnings() : [] };
    });
  }

  /**
   * Names of the netns-kit NAT tables in a namespace (inet tables holding our hairpin rules), for
   * garbage collection. Equivalent to: `nft list tables inet` and a look into each.
   */
  static ownedTables(ns: Netns): Promise<string[]> {
    return ownedInetTables(ns, 'list nat tables', (t) => rules.ownedRules(t).statics.length > 0);
  }

  // -------------------------------------------------------------------------------------------

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return serialize(this.ns.path, fn);
  }

  private run(cmds: rules.NftCommand[], what: string): Promise<string> {
    return call({ netns: this.ns.label, syscall: what }, () => native.nftRun(this.ns.ref, rules.document(cmds)));
  }

  /** The owned table as the kernel has it; `exists: false` when there is none yet. */
  private async read(): Promise<KernelTable> {
    try {
      return rules.parseListing(await this.run([rules.listTable(this.table)], 'list nat table'));
    } catch (e) {
      if (e instanceof NetnsError && e.code === 'ENOENT') return { exists: false, chains: [], rules: [] };
      throw e;
    }
  }

  /** Table, chains and the static hairpin rules, for whatever of them is not there yet. */
  private setupCommands(current: KernelTable, owned: ReturnType<typeof rules.ownedRules>): rules.NftCommand[] {
    const cmds = rules.skeleton(this.table);
    const have = new Set(owned.statics.map((s) => s.role));
    for (const r of rules.staticRules(this.table)) {
      if (!have.has(r.comment!.slice('nk:static:'.length)) || !current.exists) cmds.push(rules.addRule(r));
    }
    return cmds;
  }

  /** ERR_NETNS_CONFLICT when a new DNAT spec claims traffic another one (new or existing) already claims. */
  private checkConflicts(specs: NatRuleSpec[], ids: string[], existing: OwnedRule[]): void {
    const others: { id: string; spec: NatRuleSpec }[] = existing.filter((r) => r.spec).map((r) => ({ id: r.id, spec: r.spec! }));
    specs.forEach((s, i) => {
      for (const o of others) {
        if (o.id !== ids[i] && rules.overlaps(s, o.spec)) {
          throw invalid('ERR_NETNS_CONFLICT', `${rules.describeSpec(s)} overlaps ${rules.describeSpec(o.spec)} (rule ${o.id}) on the same address, port and protocol`, {
            netns: this.ns.label,
          });
        }
      }
      others.push({ id: ids[i], spec: s });
    });
  }

  private async deleteOwned(gone: OwnedRule[]): Promise<void> {
    const cmds: rules.NftCommand[] = [];
    for (const r of gone) for (const p of r.parts) cmds.push(rules.deleteRule(this.table, p.chain, p.handle));
    await this.run(cmds, 'remove nat rule');
    await this.flushConntrack(specsOf(gone), []);
  }

  /**
   * Deletes the conntrack entries that would keep using a removed rule (flows DNATed to its
   * backend) and, for added UDP rules, entries made before the rule existed (un-NATed flows to
   * the forwarded port) that would otherwise keep bypassing it. Equivalent to: `conntrack -D ...`
   */
  private async flushConntrack(removed: NatRuleSpec[], added: NatRuleSpec[]): Promise<void> {
    const dnatRemoved = removed.filter((s) => s.kind === 'portForward' || s.kind === 'service');
    const udpAdded = added.filter((s) => (s.kind === 'portForward' || s.kind === 'service') && s.protocol === 'udp');
    if (!dnatRemoved.length && !udpAdded.length) return;
    for (const family of [4, 6] as Family[]) {
      const rm = dnatRemoved.filter((s) => rules.familyOfSpec(s) === family);
      const ad = udpAdded.filter((s) => rules.familyOfSpec(s) === family);
      if (!rm.length && !ad.length) continue;
      const entries = await call({ netns: this.ns.label, syscall: 'list conntrack' }, () => native.conntrackList(this.ns.ref, family, 0));
      // "Any local address" forwards: only flows to this namespace's own addresses, never its
      // outgoing flows to a remote server that happens to use the same port.
      const local = ad.length ? new Set((await this.ns.addresses.list()).map((a) => a.address)) : new Set<string>();
      const doomed = entries.filter((e) => rm.some((s) => flowOfRemoved(s, e)) || ad.some((s) => flowBypassing(s, e, local)));
      if (doomed.length) await call({ netns: this.ns.label, syscall: 'delete conntrack' }, () => native.conntrackDelete(this.ns.ref, doomed));
    }
  }

  /**
   * Makes sure what the rules NAT is forwarded: ip_forward / IPv6 forwarding on in this
   * namespace, route_localnet on the interface towards a localhost forward's backend.
   */
  private async ensureForwarding(specs: NatRuleSpec[]): Promise<void> {
    if (!specs.length) return;
    const families = new Set(specs.map(rules.familyOfSpec));
    if (families.has(4)) await this.setSysctl('net/ipv4/ip_forward');
    if (families.has(6)) await this.setSysctl('net/ipv6/conf/all/forwarding');
    for (const s of specs) {
      if (s.kind === 'portForward' && s.localhost) {
        const dev = await this.deviceTowards(s.to.address);
        await this.setSysctl(`net/ipv4/conf/${dev ?? 'all'}/route_localnet`);
      }
    }
  }

  /** A warning for each other table's forward chain whose policy would drop what our rules NAT. */
  private async forwardWarnings(): Promise<string[]> {
    const chains = rules.parseListing(await this.run([{ list: { chains: null } }], 'list chains')).chains;
    return rules.droppingForwardChains(chains, this.table).map(
      (c) => `table ${c.family} ${c.table} chain ${c.name} (hook forward) has policy drop: traffic NATed by inet ${this.table} is dropped there unless one of its rules accepts it`,
    );
  }

  private async setSysctl(key: string): Promise<void> {
    const now = await call({ netns: this.ns.label, syscall: 'read sysctl' }, () => native.sysctlGet(this.ns.ref, key));
    if (now.trim() !== '1') await call({ netns: this.ns.label, syscall: 'write sysctl' }, () => native.sysctlSet(this.ns.ref, key, '1'));
  }

  /** The interface of the most specific main-table route to `address` (what `ip route get` would pick, without policy rules). */
  private async deviceTowards(address: string): Promise<string | undefined> {
    const routes = await this.ns.routes.list({ family: 4 });
    let best: { len: number; dev?: string } | undefined;
    for (const r of routes) {
      if (r.table !== 'main' || !r.dev) continue;
      const c = r.to === 'default' ? { address: '0.0.0.0', prefix: 0, family: 4 as Family } : parseCidr(r.to, 'route', { prefixRequired: false });
      if (contains(c, address) && (!best || c.prefix > best.len)) best = { len: c.prefix, dev: r.dev };
    }
    return best?.dev;
  }
}

function specsOf(owned: OwnedRule[]): NatRuleSpec[] {
  return owned.map((r) => r.spec).filter((s): s is NatRuleSpec => s !== undefined);
}

function inPorts(p: rules.PortSpec, v: number): boolean {
  return typeof p === 'number' ? v === p : v >= p.from && v <= p.to;
}

/** A flow DNATed by this (removed) forward or service: it answers from the backend. */
function flowOfRemoved(s: NatRuleSpec, e: NativeCtEntry): boolean {
  if (s.kind === 'portForward') {
    if (e.proto !== rules.IPPROTO[s.protocol] || !inPorts(s.port, e.orig.dport)) return false;
    if (s.hostAddress !== undefined && e.orig.dst !== s.hostAddress && !(s.localhost && e.orig.dst === '127.0.0.1')) return false;
    return e.reply.src === s.to.address && e.orig.dst !== e.reply.src;
  }
  if (s.kind === 'service') {
    return e.proto === rules.IPPROTO[s.protocol] && e.orig.dst === s.vip && e.orig.dport === s.port;
  }
  return false;
}

/** A flow to the port of this (new) UDP forward that was not DNATed, because it began before the rule. */
function flowBypassing(s: NatRuleSpec, e: NativeCtEntry, local: Set<string>): boolean {
  if (s.kind === 'portForward') {
    if (e.proto !== rules.IPPROTO[s.protocol] || !inPorts(s.port, e.orig.dport)) return false;
    if (s.hostAddress !== undefined ? e.orig.dst !== s.hostAddress : !(local.has(e.orig.dst) || (s.localhost && e.orig.dst === '127.0.0.1'))) return false;
    return e.reply.src === e.orig.dst;
  }
  if (s.kind === 'service') {
    return e.proto === rules.IPPROTO[s.protocol] && e.orig.dst === s.vip && e.orig.dport === s.port && e.reply.src === e.orig.dst;
  }
  return false;
}
