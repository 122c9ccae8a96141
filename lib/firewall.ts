/**
 * nftables filtering inside one namespace — the other half of NAT (lib/nat.ts): chain policies
 * and allow/deny/reject rules in a table the library owns (default `inet netns_kit_fw`).
 *
 * Every change is one libnftables JSON batch (all of it applies or none does) through the same
 * native call NAT uses (`native.nftRun`), run inside the namespace on an addon thread; rules are
 * typed objects (lib/firewall-rules.ts), never rule text. No other table — the NAT table
 * included — is ever modified, flushed or rewritten. Calls on one namespace run one at a time, in
 * call order, so a read-modify-write never interleaves with another change from this process.
 *
 * Bridged traffic: namespaces on one bridge talk through the bridge without being routed. With
 * br_netfilter's `net.bridge.bridge-nf-call-iptables` / `-ip6tables` = 1 in the namespace that
 * holds the bridge, bridged IPv4/IPv6 also passes the `inet` forward hook, with conntrack (the
 * nftables `bridge` family has no conntrack on kernels without nf_conntrack_bridge). A call that
 * sets the forward policy or adds forward rules in a namespace with a bridge sets both to 1
 * (`bridgeNetfilter: false` sets them to 0 instead: bridged traffic then bypasses this table).
 */
import { call, invalid, NetnsError } from './errors';
import { native } from './native';
import * as rules from './firewall-rules';
import type { FirewallAction, FirewallMatch, FirewallPolicy, FirewallRule, FirewallRuleSpec, FirewallChain } from './firewall-rules';
import type { KernelTable, NftCommand } from './nat-rules';
import type { Netns } from './netns';
import { ownedInetTables, serialize } from './nft-run';
import * as validate from './validate';

export type { FirewallAction, FirewallMatch, FirewallPolicy, FirewallRule, FirewallRuleSpec, ChainPolicy, FirewallChain, FirewallProtocol } from './firewall-rules';
export const DEFAULT_FIREWALL_TABLE = rules.DEFAULT_FIREWALL_TABLE;

export interface FirewallOptions {
  /**
   * In a namespace that holds a bridge, make bridged traffic pass the forward chain
   * (br_netfilter: net.bridge.bridge-nf-call-iptables and -ip6tables = 1 in this namespace) when
   * a call sets the forward policy or adds forward rules. `false` sets both to 0 instead, so only
   * routed traffic is filtered; `'keep'` never touches them. Default true.
   */
  bridgeNetfilter?: boolean | 'keep';
}

/** The policies of all three chains after a change, and what may still not be as asked. */
export interface PolicyResult extends Required<FirewallPolicy> {
  warnings: string[];
}

export interface FirewallApplySpec {
  /** chains left out get policy accept */
  policy?: FirewallPolicy;
  /** rules with their action, in evaluation order: `{ action: 'allow', chain: 'input', ... }` */
  rules: Array<FirewallMatch & { action: FirewallAction }>;
}

export interface FirewallApplyResult {
  /** ids of the given rules, in the given order */
  ids: string[];
  warnings: string[];
}

/** Everything in the owned table: the three policies and the rules in evaluation order. */
export interface FirewallState {
  exists: boolean;
  policy: Required<FirewallPolicy>;
  rules: FirewallRule[];
}

const BRIDGE_NF_KEYS = ['net/bridge/bridge-nf-call-iptables', 'net/bridge/bridge-nf-call-ip6tables'];

/** Filtering in one namespace, in one table the library owns. Get it as `ns.firewall` or `ns.firewallTable(name)`. */
export class Firewall {
  readonly table: string;
  private readonly bridgeNetfilter: boolean | 'keep';

  constructor(private readonly ns: Netns, table: string = DEFAULT_FIREWALL_TABLE, options: FirewallOptions = {}) {
    this.table = rules.tableName(table);
    const o = validate.object(options, 'firewall options');
    validate.knownKeys(o, 'firewall options', ['bridgeNetfilter']);
    this.bridgeNetfilter = o.bridgeNetfilter === undefined ? true : o.bridgeNetfilter === 'keep' ? 'keep' : validate.bool(o.bridgeNetfilter, "bridgeNetfilter (true, false or 'keep')");
  }

  /**
   * Sets the policy of the chains named (the others keep theirs; a new table starts with accept).
   * With drop, established/related flows (ICMP errors about them included), loopback and IPv6
   * neighbour discovery still pass: every chain starts with those accepts.
   * Equivalent to: `nft add chain inet netns_kit_fw forward '{ type filter hook forward priority filter; policy drop; }'`
   */
  async policy(p: FirewallPolicy): Promise<PolicyResult> {
    const pol = rules.policy(p);
    return this.locked(async () => {
      const current = await this.read();
      const cmds = this.ensureCommands(current, pol);
      for (const c of rules.FIREWALL_CHAINS) if (pol[c] !== undefined && current.chains.has(c)) cmds.push(rules.addChain(this.table, c, pol[c]!));
      await this.run(cmds, 'set firewall policy');
      const after = { ...current.policy, ...pol };
      const warnings = pol.forward !== undefined ? await this.ensureBridgeNetfilter() : [];
      return { ...after, warnings };
    });
  }

  /** The current policies (accept for a chain or table that does not exist). Equivalent to: `nft -j list table inet netns_kit_fw` */
  async getPolicy(): Promise<Required<FirewallPolicy>> {
    return this.locked(async () => (await this.read()).policy);
  }

  /**
   * Accepts matching traffic. Adding a rule that is already there changes nothing and returns it.
   * Equivalent to: `nft add rule inet netns_kit_fw forward ip saddr 192.168.15.1 ip daddr 192.168.15.2 tcp dport 80 accept`
   */
  async allow(m: FirewallMatch): Promise<FirewallRule> {
    return this.add({ ...m, action: 'allow' });
  }

  /** Drops matching traffic silently. Equivalent to: `nft add rule inet netns_kit_fw forward ip saddr 192.168.15.0/24 ip daddr 10.0.2.0/24 drop` */
  async deny(m: FirewallMatch): Promise<FirewallRule> {
    return this.add({ ...m, action: 'deny' });
  }

  /**
   * Refuses matching traffic: a TCP reset for TCP, ICMP / ICMPv6 port unreachable for the rest.
   * Equivalent to: `nft add rule inet netns_kit_fw input tcp dport 23 reject with tcp reset`
   * (`meta l4proto tcp reject with tcp reset` + `reject with icmpx port-unreachable` for every protocol)
   */
  async reject(m: FirewallMatch): Promise<FirewallRule> {
    return this.add({ ...m, action: 'reject' });
  }

  /**
   * Adds one rule with its `action`, after the rules already in its chain (idempotent by content).
   * Equivalent to: `nft add rule inet netns_kit_fw CHAIN ... accept|drop|reject`
   */
  async add(spec: FirewallMatch & { action: FirewallAction }): Promise<FirewallRule> {
    const n = rules.normalize(spec);
    const id = rules.ruleId(n);
    return this.locked(async () => {
      const current = await this.read();
      if (!current.rules.some((r) => r.id === id)) {
        const cmds = this.ensureCommands(current, {});
        for (const r of rules.buildRules(this.table, n, id)) cmds.push(rules.addRule(r));
        await this.run(cmds, 'add firewall rule');
        if (n.chain === 'forward') await this.ensureBridgeNetfilter();
      }
      return { ...n, id };
    });
  }

  /** The owned table's rules in evaluation order, read back from the kernel. Equivalent to: `nft -j list table inet netns_kit_fw` */
  async list(filter: { tag?: string; chain?: FirewallChain } = {}): Promise<FirewallRule[]> {
    const f = validate.object(filter, 'list filter');
    validate.knownKeys(f, 'list filter', ['tag', 'chain']);
    const t = f.tag === undefined ? undefined : rules.tag(f.tag);
    const c = f.chain === undefined ? undefined : rules.chain(f.chain);
    return (await this.state()).rules.filter((r) => (t === undefined || r.tag === t) && (c === undefined || r.chain === c));
  }

  /** Policies and rules in one read. Equivalent to: `nft -j list table inet netns_kit_fw` */
  async state(): Promise<FirewallState> {
    return this.locked(async () => {
      const cur = await this.read();
      return { exists: cur.exists, policy: cur.policy, rules: cur.rules.filter((r) => r.spec).map((r) => ({ ...r.spec!, id: r.id })) };
    });
  }

  /** Removes one rule (all its kernel rules, one transaction). Equivalent to: `nft delete rule inet netns_kit_fw CHAIN handle H` */
  async remove(id: string, options: { missingOk?: boolean } = {}): Promise<void> {
    if (typeof id !== 'string' || !/^[0-9a-f]{16}$/.test(id)) throw invalid('ERR_NETNS_INVALID_ARG', `rule id must be 16 hex digits, got ${JSON.stringify(id)}`);
    validate.knownKeys(validate.object(options, 'remove options'), 'remove options', ['missingOk']);
    return this.locked(async () => {
      const r = (await this.read()).rules.find((x) => x.id === id);
      if (!r) {
        if (options.missingOk) return;
        throw new NetnsError('ENOENT', `ENOENT: no such firewall rule, remove ${id} (table inet ${this.table}, netns ${this.ns.label})`, {
          errno: -2,
          syscall: 'remove firewall rule',
          netns: this.ns.label,
        });
      }
      await this.run(
        r.parts.map((p) => rules.deleteRule(this.table, p.chain, p.handle)),
        'remove firewall rule',
      );
    });
  }

  /**
   * Removes every rule with this tag in one transaction; resolves with how many there were.
   * Equivalent to: `nft delete rule inet netns_kit_fw CHAIN handle H` for each of them, in one `nft -f`
   */
  async removeTag(tagValue: string): Promise<number> {
    const t = rules.tag(tagValue);
    return this.locked(async () => {
      const mine = (await this.read()).rules.filter((r) => r.tag === t);
      if (mine.length) await this.run(mine.flatMap((r) => r.parts.map((p) => rules.deleteRule(this.table, p.chain, p.handle))), 'remove firewall rules');
      return mine.length;
    });
  }

  /** Removes the owned table: every rule, and every policy back to the kernel's accept. Equivalent to: `nft delete table inet netns_kit_fw` */
  async flush(): Promise<void> {
    return this.locked(async () => {
      if (!(await this.read()).exists) return;
      await this.run([rules.deleteTable(this.table)], 'flush firewall table');
    });
  }

  /**
   * Makes the owned table hold exactly these policies (accept where left out) and rules, in this
   * order, replacing everything it held — in one transaction: a refused rule, or a kernel error,
   * leaves the table as it was. Equivalent to: `nft -f` of a file that deletes the table and
   * declares it afresh.
   */
  async apply(spec: FirewallApplySpec): Promise<FirewallApplyResult> {
    const o = validate.object(spec, 'firewall apply');
    validate.knownKeys(o, 'firewall apply', ['policy', 'rules']);
    const pol = o.policy === undefined ? {} : rules.policy(o.policy);
    if (!Array.isArray(o.rules)) throw invalid('ERR_NETNS_INVALID_ARG', 'firewall apply takes { policy?, rules: [...] }');
    const normalized = o.rules.map((s, i) => {
      try {
        return rules.normalize(s);
      } catch (e) {
        if (e instanceof NetnsError) e.message = `rules[${i}]: ${e.message}`;
        throw e;
      }
    });
    const ids = normalized.map(rules.ruleId);
    const unique = new Map<string, FirewallRuleSpec>();
    normalized.forEach((n, i) => {
      if (!unique.has(ids[i])) unique.set(ids[i], n);
    });
    const full: Required<FirewallPolicy> = { input: pol.input ?? 'accept', forward: pol.forward ?? 'accept', output: pol.output ?? 'accept' };
    return this.locked(async () => {
      await this.run(
        rules.replaceTable(
          this.table,
          full,
          [...unique].map(([id, s]) => ({ id, spec: s })),
        ),
        'apply firewall',
      );
      const forward = full.forward === 'drop' || normalized.some((n) => n.chain === 'forward');
      return { ids, warnings: forward ? await this.ensureBridgeNetfilter() : [] };
    });
  }

  /**
   * Names of the netns-kit firewall tables in a namespace (inet tables holding our static rules).
   * Equivalent to: `nft list tables inet` and a look into each.
   */
  static ownedTables(ns: Netns): Promise<string[]> {
    return ownedInetTables(ns, 'list firewall tables', (t) => rules.ownedFirewall(t).statics.length > 0);
  }

  // -------------------------------------------------------------------------------------------

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return serialize(this.ns.path, fn);
  }

  private run(cmds: NftCommand[], what: string): Promise<string> {
    return call({ netns: this.ns.label, syscall: what }, () => native.nftRun(this.ns.ref, rules.document(cmds)));
  }

  /** The owned table as the kernel has it; `exists: false` when there is none yet. */
  private async read(): Promise<rules.OwnedFirewall> {
    let t: KernelTable;
    try {
      t = rules.parseListing(await this.run([rules.listTable(this.table)], 'list firewall table'));
    } catch (e) {
      if (!(e instanceof NetnsError && e.code === 'ENOENT')) throw e;
      t = { exists: false, chains: [], rules: [] };
    }
    return rules.ownedFirewall(t);
  }

  /**
   * Table and chains (with their static rules) that are not there yet: a new chain gets the
   * policy asked for, else accept. Static rules missing from an existing chain (deleted by hand)
   * are inserted at its head again.
   */
  private ensureCommands(current: rules.OwnedFirewall, pol: FirewallPolicy): NftCommand[] {
    const cmds: NftCommand[] = [rules.addTable(this.table)];
    for (const c of rules.FIREWALL_CHAINS) {
      const statics = rules.staticRules(this.table, c);
      if (!current.chains.has(c)) {
        cmds.push(rules.addChain(this.table, c, pol[c] ?? 'accept'));
        for (const r of statics) cmds.push(rules.addRule(r));
        continue;
      }
      const have = new Set(current.statics.filter((s) => s.chain === c).map((s) => s.role));
      for (const r of [...statics].reverse()) {
        if (!have.has(r.comment.slice('nkfw:static:'.length))) cmds.push({ insert: { rule: r } });
      }
    }
    return cmds;
  }

  /**
   * br_netfilter in this namespace, when it holds a bridge (see the file comment). Returns a
   * warning when the kernel has no br_netfilter (bridged traffic then bypasses the forward chain).
   */
  private async ensureBridgeNetfilter(): Promise<string[]> {
    if (this.bridgeNetfilter === 'keep') return [];
    const links = await call({ netns: this.ns.label, syscall: 'list links' }, () => native.linkList(this.ns.ref));
    if (!links.some((l) => l.kind === 'bridge')) return [];
    const want = this.bridgeNetfilter ? '1' : '0';
    for (const key of BRIDGE_NF_KEYS) {
      let now: string;
      try {
        now = (await native.sysctlGet(this.ns.ref, key)).trim();
      } catch {
        return this.bridgeNetfilter ? [`this kernel has no br_netfilter (${key.replace(/\//g, '.')}): traffic bridged in ${this.ns.label} bypasses the forward chain`] : [];
      }
      if (now !== want) await call({ netns: this.ns.label, syscall: 'write sysctl' }, () => native.sysctlSet(this.ns.ref, key, want));
    }
    return [];
  }
}

