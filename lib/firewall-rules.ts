/**
 * The firewall rule model: validation, stable ids, and translation to libnftables JSON (and back).
 *
 * Pure functions, no kernel access, so all of it is unit-testable without root. lib/firewall.ts
 * runs what these build through libnftables inside the namespace (the same native call NAT uses).
 *
 * Table layout (default `inet netns_kit_fw`, separate from the NAT table `inet netns_kit`):
 *   input   filter hook input   priority filter  policy accept|drop
 *   forward filter hook forward priority filter  policy accept|drop
 *   output  filter hook output  priority filter  policy accept|drop
 * Each chain starts with the "static" rules (comment `nkfw:static:<role>`): established/related
 * flows (which includes ICMP errors about them), IPv6 neighbour discovery and MLD (untracked by
 * conntrack, and without them IPv6 stops working under a drop policy), and on input/output the
 * loopback device. After them come the user's rules, in the order they were added.
 *
 * One user rule is one or more kernel rules, all with the comment `nkfw:<id>:<family>:<role>:<tag>`:
 * one per address family its addresses need (4, 6, or `any` when it names no address), and for a
 * `reject` of every protocol a `reset` rule before the `main` one, so TCP gets a reset and the rest
 * an ICMP/ICMPv6 port unreachable. `list()` reads the spec back from the kernel rules' expressions
 * and checks that it hashes to the id in the comment.
 */
import { createHash } from 'node:crypto';
import { invalid, NetnsError } from './errors';
import { describe, familyOf, fromBytes, networkOf, parseCidr, toBytes, type Family } from './ip';
import { canonicalJson, cidrValue, clean, deleteTable, ipProto, match, meta, natIfname, payload, tag as natTag, tableName as natTableName, type KernelTable, type NftCommand, type NftExpr } from './nat-rules';
import * as validate from './validate';

export { parseListing, document, listTable, deleteTable } from './nat-rules';

/** The owned table's name (what `nft` accepts for an identifier, at most 64 bytes); refused as ERR_NETNS_INVALID_ARG. */
export function tableName(v: unknown): string {
  return checked(() => natTableName(v));
}

export const DEFAULT_FIREWALL_TABLE = 'netns_kit_fw';

export type FirewallChain = 'input' | 'forward' | 'output';
export const FIREWALL_CHAINS: readonly FirewallChain[] = ['input', 'forward', 'output'];
export type FirewallAction = 'allow' | 'deny' | 'reject';
export const FIREWALL_ACTIONS: readonly FirewallAction[] = ['allow', 'deny', 'reject'];
export type FirewallProtocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'any';
export const FIREWALL_PROTOCOLS: readonly FirewallProtocol[] = ['tcp', 'udp', 'icmp', 'icmpv6', 'any'];
export type ChainPolicy = 'accept' | 'drop';

/** What `allow`, `deny` and `reject` take. */
export interface FirewallMatch {
  chain: FirewallChain;
  /** source prefix(es): '192.168.15.1/32', '10.0.0.0/8', 'fd15::/64'; a bare address is one host */
  from?: string | string[];
  /** destination prefix(es) */
  to?: string | string[];
  /** default 'any' */
  protocol?: FirewallProtocol;
  /** destination port (tcp/udp only): a number, `{ from, to }` or `[from, to]` (a range) */
  port?: number | { from: number; to: number } | [number, number];
  /** input interface name (for bridged traffic seen through br_netfilter: the bridge) */
  iif?: string;
  /** output interface name */
  oif?: string;
  tag?: string;
}

/** A rule in its normalised form (canonical prefixes, sorted lists), as `list()` returns it. */
export interface FirewallRuleSpec {
  action: FirewallAction;
  chain: FirewallChain;
  from?: string[];
  to?: string[];
  protocol?: Exclude<FirewallProtocol, 'any'>;
  port?: number | { from: number; to: number };
  iif?: string;
  oif?: string;
  tag?: string;
}

export type FirewallRule = FirewallRuleSpec & { id: string };

export interface FirewallPolicy {
  input?: ChainPolicy;
  forward?: ChainPolicy;
  output?: ChainPolicy;
}

/** At most this many prefixes in one `from` or `to` (one anonymous set each). */
export const MAX_PREFIXES = 256;

/** Every refused firewall input has one code: nothing a user typed reaches libnftables unchecked. */
function refuse(message: string): NetnsError {
  return invalid('ERR_NETNS_INVALID_ARG', message);
}

/** Runs a validator of lib/validate or lib/ip and re-codes its refusal as ERR_NETNS_INVALID_ARG. */
function checked<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof NetnsError && e.code.startsWith('ERR_NETNS_')) {
      const r = refuse(e.message);
      Error.captureStackTrace(r, checked);
      throw r;
    }
    throw e;
  }
}

/** Tags as NAT takes them (lib/nat-rules.ts), starting with a letter, digit or '_'. */
export function tag(v: unknown): string {
  const t = checked(() => natTag(v));
  if (!/^[A-Za-z0-9_]/.test(t)) throw refuse(`tag must start with a letter, digit or '_', got ${JSON.stringify(t)}`);
  return t;
}

export function chain(v: unknown, what = 'chain'): FirewallChain {
  if (typeof v !== 'string' || !(FIREWALL_CHAINS as readonly string[]).includes(v)) {
    throw refuse(`${what} must be one of ${FIREWALL_CHAINS.join(', ')}, got ${describe(v)}`);
  }
  return v as FirewallChain;
}

export function action(v: unknown): FirewallAction {
  if (typeof v !== 'string' || !(FIREWALL_ACTIONS as readonly string[]).includes(v)) {
    throw refuse(`action must be one of ${FIREWALL_ACTIONS.join(', ')}, got ${describe(v)}`);
  }
  return v as FirewallAction;
}

function protocol(v: unknown): FirewallProtocol {
  if (typeof v !== 'string' || !(FIREWALL_PROTOCOLS as readonly string[]).includes(v)) {
    throw refuse(`protocol must be one of ${FIREWALL_PROTOCOLS.join(', ')}, got ${describe(v)}`);
  }
  return v as FirewallProtocol;
}

function portNumber(v: unknown, what: string): number {
  return checked(() => validate.integer(v, what, 1, 65535));
}

/** A port or a range (`{ from, to }` or `[from, to]`), normalised: a range of one port is that port. */
export function portSpec(v: unknown): number | { from: number; to: number } {
  let from: number;
  let to: number;
  if (Array.isArray(v)) {
    if (v.length !== 2) throw refuse(`port as an array is a range [from, to], got ${describe(v)}`);
    from = portNumber(v[0], 'port[0]');
    to = portNumber(v[1], 'port[1]');
  } else if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    checked(() => validate.knownKeys(o, 'port', ['from', 'to']));
    from = portNumber(o.from, 'port.from');
    to = portNumber(o.to, 'port.to');
  } else {
    return portNumber(v, 'port');
  }
  if (from > to) throw refuse(`port range starts after it ends (${from} > ${to})`);
  return from === to ? from : { from, to };
}

/**
 * Prefixes in canonical form: the fewest prefixes covering exactly the same addresses, in address
 * order, IPv4 first ('10.0.0.0/25' + '10.0.0.128/25' -> '10.0.0.0/24'; '10.0.0.1' inside
 * '10.0.0.0/24' disappears). nftables merges the elements of an anonymous set the same way, so
 * this is also what reading the kernel's rule back gives, and a rule's id does not depend on how
 * the same addresses were written.
 */
function prefixes(v: unknown, what: string): string[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || list.length > MAX_PREFIXES) throw refuse(`${what} must be a prefix or a list of 1-${MAX_PREFIXES} prefixes, got ${describe(v)}`);
  const intervals = list.map((x, i) => {
    const c = checked(() => parseCidr(x, Array.isArray(v) ? `${what}[${i}]` : what, { prefixRequired: false }));
    const start = toBig(networkOf(c));
    return { family: c.family, start, end: start + (1n << BigInt((c.family === 4 ? 32 : 128) - c.prefix)) - 1n };
  });
  return cover(intervals);
}

function toBig(address: string): bigint {
  return toBytes(address).reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
}

function fromBig(v: bigint, family: Family): string {
  const bytes: number[] = [];
  for (let i = 0; i < (family === 4 ? 4 : 16); i++) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return fromBytes(bytes);
}

/** The minimal list of prefixes covering the union of these address intervals (merged when they touch). */
export function cover(intervals: Array<{ family: Family; start: bigint; end: bigint }>): string[] {
  const out: string[] = [];
  for (const family of [4, 6] as Family[]) {
    const bits = family === 4 ? 32 : 128;
    const mine = intervals.filter((x) => x.family === family).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    const merged: Array<{ start: bigint; end: bigint }> = [];
    for (const x of mine) {
      const last = merged[merged.length - 1];
      if (last && x.start <= last.end + 1n) {
        if (x.end > last.end) last.end = x.end;
      } else merged.push({ start: x.start, end: x.end });
    }
    for (const { start, end } of merged) {
      // Largest aligned block at `cur` that does not pass `end`, repeatedly.
      let cur = start;
      while (cur <= end) {
        let size = 0;
        while (size < bits && (cur & ((1n << BigInt(size + 1)) - 1n)) === 0n && cur + (1n << BigInt(size + 1)) - 1n <= end) size++;
        out.push(`${fromBig(cur, family)}/${bits - size}`);
        cur += 1n << BigInt(size);
      }
    }
  }
  return out;
}

function familyOfPrefix(p: string): Family {
  return familyOf(p.split('/')[0])!;
}

/**
 * Interface names in rules: valid kernel names (1-15 bytes), further restricted to letters,
 * digits and _ . + = - so that nothing can be read as nftables syntax even in a text listing: a
 * leading '@' would name a set, '$' a variable, '*' a wildcard, '\\' an escape.
 */
function ifnameField(v: unknown, what: string): string {
  const name = checked(() => natIfname(v, what));
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.+=-]*$/.test(name)) {
    throw refuse(`${what} ${JSON.stringify(name)}: interface names in firewall rules may use letters, digits and _ . + = - (starting with a letter, digit or _)`);
  }
  return name;
}

/**
 * Validates a rule (with its `action`) and returns its normalised form, which is also what
 * `list()` reads back from the kernel. Every refusal is ERR_NETNS_INVALID_ARG.
 */
export function normalize(input: unknown): FirewallRuleSpec {
  const o = checked(() => validate.object(input, 'firewall rule'));
  checked(() => validate.knownKeys(o, 'firewall rule', ['action', 'chain', 'from', 'to', 'protocol', 'port', 'iif', 'oif', 'tag']));
  const act = action(o.action);
  const ch = chain(o.chain);
  const from = o.from === undefined ? undefined : prefixes(o.from, 'from');
  const to = o.to === undefined ? undefined : prefixes(o.to, 'to');
  const proto = o.protocol === undefined ? 'any' : protocol(o.protocol);
  const port = o.port === undefined ? undefined : portSpec(o.port);
  if (port !== undefined && proto !== 'tcp' && proto !== 'udp') {
    throw refuse(`port needs protocol tcp or udp, got ${describe(o.protocol ?? 'any')}`);
  }
  const iif = o.iif === undefined ? undefined : ifnameField(o.iif, 'iif');
  const oif = o.oif === undefined ? undefined : ifnameField(o.oif, 'oif');
  // The kernel has no input interface on output and no output interface on input.
  if (iif !== undefined && ch === 'output') throw refuse('iif cannot be matched in the output chain (locally sent packets have no input interface)');
  if (oif !== undefined && ch === 'input') throw refuse('oif cannot be matched in the input chain (the packet is not sent anywhere)');
  const t = o.tag === undefined ? undefined : tag(o.tag);
  const spec = clean<FirewallRuleSpec>({ action: act, chain: ch, from, to, protocol: proto === 'any' ? undefined : proto, port, iif, oif, tag: t });
  families(spec); // refuses rules that could never match
  return spec;
}

/**
 * The address families a rule's kernel rules cover: [undefined] when it names no address (and no
 * family-bound protocol), else each family both `from` and `to` (when given) have prefixes of.
 */
export function families(spec: FirewallRuleSpec): Array<Family | undefined> {
  const fam = (list?: string[]) => (list ? new Set(list.map(familyOfPrefix)) : undefined);
  const f = fam(spec.from);
  const t = fam(spec.to);
  const protoFamily: Family | undefined = spec.protocol === 'icmp' ? 4 : spec.protocol === 'icmpv6' ? 6 : undefined;
  if (!f && !t) return [protoFamily];
  const out: Family[] = [];
  for (const x of [4, 6] as Family[]) {
    if ((f && !f.has(x)) || (t && !t.has(x))) continue;
    if (protoFamily !== undefined && protoFamily !== x) continue;
    out.push(x);
  }
  const useless = [...(spec.from ?? []), ...(spec.to ?? [])].filter((p) => !out.includes(familyOfPrefix(p)));
  if (out.length > 0 && useless.length > 0) {
    throw refuse(`${useless.join(', ')} can never match: the rule's other addresses${protoFamily ? ` or protocol ${spec.protocol}` : ''} are of the other family (write one rule per family)`);
  }
  if (out.length === 0) {
    throw refuse(
      `rule can never match: ${spec.from ? `from ${spec.from.join(',')}` : ''}${spec.from && spec.to ? ' ' : ''}${spec.to ? `to ${spec.to.join(',')}` : ''}${
        protoFamily ? ` with protocol ${spec.protocol}` : ''
      } share no address family`,
    );
  }
  return out;
}

/** The stable id of a normalised rule: the same content (tag included) always gives the same id. */
export function ruleId(spec: FirewallRuleSpec): string {
  return createHash('sha256').update('firewall\n').update(canonicalJson(spec)).digest('hex').slice(0, 16);
}

export function policy(v: unknown, what = 'policy'): FirewallPolicy {
  const o = checked(() => validate.object(v, what));
  checked(() => validate.knownKeys(o, what, FIREWALL_CHAINS));
  const out: FirewallPolicy = {};
  for (const c of FIREWALL_CHAINS) {
    const p = o[c];
    if (p === undefined) continue;
    if (p !== 'accept' && p !== 'drop') throw refuse(`${what}.${c} must be 'accept' or 'drop', got ${describe(p)}`);
    out[c] = p;
  }
  return out;
}

function portText(p: number | { from: number; to: number }): string {
  return typeof p === 'number' ? String(p) : `${p.from}-${p.to}`;
}

/** One line, for messages and `netns-kit status`: "allow forward tcp 192.168.15.1/32 -> 192.168.15.3/32:80". */
export function describeRule(s: FirewallRuleSpec): string {
  const parts: string[] = [s.action, s.chain];
  if (s.protocol) parts.push(s.protocol);
  if (s.iif) parts.push(`iif ${s.iif}`);
  if (s.oif) parts.push(`oif ${s.oif}`);
  parts.push(`${s.from ? s.from.join(',') : '*'} -> ${s.to ? s.to.join(',') : '*'}${s.port !== undefined ? `:${portText(s.port)}` : ''}`);
  if (s.tag) parts.push(`[${s.tag}]`);
  return parts.join(' ');
}

// ---------------------------------------------------------------------------------------------
// libnftables JSON (see libnftables-json(5)); plain data for JSON.stringify.

export type PartFamily = '4' | '6' | 'any';
export type Role = 'main' | 'reset';

export interface FwNftRule {
  family: 'inet';
  table: string;
  chain: FirewallChain;
  expr: NftExpr[];
  comment: string;
}

const COMMENT_RE = /^nkfw:([0-9a-f]{16}):(4|6|any):(main|reset):(.*)$/;
const STATIC_RE = /^nkfw:static:([a-z0-9-]+)$/;

export function comment(id: string, fam: PartFamily, role: Role, t?: string): string {
  return `nkfw:${id}:${fam}:${role}:${t ?? ''}`;
}

export function parseComment(c: unknown): { id: string; family: PartFamily; role: Role; tag?: string } | undefined {
  if (typeof c !== 'string') return undefined;
  const m = COMMENT_RE.exec(c);
  if (!m) return undefined;
  return { id: m[1], family: m[2] as PartFamily, role: m[3] as Role, tag: m[4] === '' ? undefined : m[4] };
}

function addrMatch(f: Family, field: 'saddr' | 'daddr', list: string[]): NftExpr {
  const mine = list.filter((p) => familyOfPrefix(p) === f).map(cidrValue);
  return match(payload(ipProto(f), field), mine.length === 1 ? mine[0] : { set: mine });
}

/** libnftables' name of the protocols in `meta l4proto` (its /etc/protocols names). */
const L4: Record<Exclude<FirewallProtocol, 'any'>, string> = { tcp: 'tcp', udp: 'udp', icmp: 'icmp', icmpv6: 'ipv6-icmp' };

/** The kernel rules of one normalised rule, in chain order. */
export function buildRules(table: string, spec: FirewallRuleSpec, id: string): FwNftRule[] {
  const out: FwNftRule[] = [];
  for (const f of families(spec)) {
    const fam: PartFamily = f === undefined ? 'any' : f === 4 ? '4' : '6';
    const m: NftExpr[] = [];
    if (spec.iif) m.push(match(meta('iifname'), spec.iif));
    if (spec.oif) m.push(match(meta('oifname'), spec.oif));
    if (f !== undefined && spec.from) m.push(addrMatch(f, 'saddr', spec.from));
    if (f !== undefined && spec.to) m.push(addrMatch(f, 'daddr', spec.to));
    if (spec.protocol) m.push(match(meta('l4proto'), L4[spec.protocol]));
    if (spec.port !== undefined) m.push(match(payload(spec.protocol!, 'dport'), typeof spec.port === 'number' ? spec.port : { range: [spec.port.from, spec.port.to] }));
    const rule = (role: Role, expr: NftExpr[]): FwNftRule => ({ family: 'inet', table, chain: spec.chain, expr, comment: comment(id, fam, role, spec.tag) });
    if (spec.action === 'allow') out.push(rule('main', [...m, { accept: null }]));
    else if (spec.action === 'deny') out.push(rule('main', [...m, { drop: null }]));
    else if (spec.protocol === 'tcp') out.push(rule('main', [...m, { reject: { type: 'tcp reset' } }]));
    else {
      // What `iptables -j REJECT` does per protocol: a reset for TCP, port unreachable (ICMP or
      // ICMPv6 by the packet's family: `icmpx`) for everything else.
      if (spec.protocol === undefined) out.push(rule('reset', [...m, match(meta('l4proto'), 'tcp'), { reject: { type: 'tcp reset' } }]));
      out.push(rule('main', [...m, { reject: { type: 'icmpx', expr: 'port-unreachable' } }]));
    }
  }
  return out;
}

/** ICMPv6 types that conntrack does not track but IPv6 needs: neighbour discovery and MLD. */
export const ICMPV6_LINK_TYPES = [
  'nd-router-solicit',
  'nd-router-advert',
  'nd-neighbor-solicit',
  'nd-neighbor-advert',
  'mld-listener-query',
  'mld-listener-report',
  'mld-listener-done',
  'mld2-listener-report',
];

/** The rules every chain of the owned table starts with (see the file comment). */
export function staticRules(table: string, c: FirewallChain): FwNftRule[] {
  const rule = (role: string, expr: NftExpr[]): FwNftRule => ({ family: 'inet', table, chain: c, expr, comment: `nkfw:static:${role}` });
  const out = [rule('established', [match({ ct: { key: 'state' } }, ['established', 'related'], 'in'), { accept: null }])];
  if (c === 'input') out.push(rule('loopback', [match(meta('iifname'), 'lo'), { accept: null }]));
  if (c === 'output') out.push(rule('loopback', [match(meta('oifname'), 'lo'), { accept: null }]));
  out.push(rule('icmpv6-link', [match(meta('l4proto'), 'ipv6-icmp'), match(payload('icmpv6', 'type'), { set: ICMPV6_LINK_TYPES }), { accept: null }]));
  return out;
}

export function addTable(table: string): NftCommand {
  return { add: { table: { family: 'inet', name: table } } };
}

export function addChain(table: string, c: FirewallChain, p: ChainPolicy): NftCommand {
  return { add: { chain: { family: 'inet', table, name: c, type: 'filter', hook: c, prio: 0, policy: p } } };
}

export const addRule = (r: FwNftRule): NftCommand => ({ add: { rule: r } });
export const deleteRule = (table: string, c: string, handle: number): NftCommand => ({ delete: { rule: { family: 'inet', table, chain: c, handle } } });

/**
 * The whole owned table with exactly these policies and rules, replacing whatever it held, as
 * commands for one transaction: `add table` (so the delete cannot fail), `delete table`, then
 * table, chains, static rules and rules afresh.
 */
export function replaceTable(table: string, pol: Required<FirewallPolicy>, specs: Array<{ id: string; spec: FirewallRuleSpec }>): NftCommand[] {
  const cmds: NftCommand[] = [addTable(table), deleteTable(table), addTable(table)];
  for (const c of FIREWALL_CHAINS) {
    cmds.push(addChain(table, c, pol[c]));
    for (const r of staticRules(table, c)) cmds.push(addRule(r));
  }
  for (const { id, spec } of specs) for (const r of buildRules(table, spec, id)) cmds.push(addRule(r));
  return cmds;
}

// ---------------------------------------------------------------------------------------------
// Reading the kernel's answer back

export interface OwnedFwRule {
  id: string;
  tag?: string;
  chain: string;
  /** every kernel rule of this rule, in chain order */
  parts: { chain: string; handle: number; family: PartFamily; role: Role }[];
  /** decoded from its kernel rules; undefined when they do not read back to the id (edited by hand) */
  spec?: FirewallRuleSpec;
}

export interface OwnedFirewall {
  exists: boolean;
  /** chain policies; a chain that is missing counts as accept */
  policy: Required<FirewallPolicy>;
  /** which chains exist */
  chains: Set<string>;
  /** user rules in chain order (input, forward, output; within a chain as the kernel lists them) */
  rules: OwnedFwRule[];
  statics: { chain: string; handle: number; role: string }[];
}

/** Groups the owned table's rules by id and reads each rule back from its kernel rules. */
export function ownedFirewall(t: KernelTable): OwnedFirewall {
  const pol: Required<FirewallPolicy> = { input: 'accept', forward: 'accept', output: 'accept' };
  const chains = new Set<string>();
  for (const c of t.chains) {
    chains.add(c.name);
    if ((FIREWALL_CHAINS as readonly string[]).includes(c.name) && c.policy === 'drop') pol[c.name as FirewallChain] = 'drop';
  }
  const byId = new Map<string, OwnedFwRule & { exprs: { family: PartFamily; role: Role; expr: NftExpr[] }[] }>();
  const statics: OwnedFirewall['statics'] = [];
  const order = (c: string) => FIREWALL_CHAINS.indexOf(c as FirewallChain);
  const sorted = t.rules.map((r, i) => ({ r, i })).sort((a, b) => order(a.r.chain) - order(b.r.chain) || a.i - b.i);
  for (const { r } of sorted) {
    const s = STATIC_RE.exec(r.comment ?? '');
    if (s) {
      statics.push({ chain: r.chain, handle: r.handle, role: s[1] });
      continue;
    }
    const c = parseComment(r.comment);
    if (!c) continue;
    let o = byId.get(c.id);
    if (!o) {
      o = { id: c.id, tag: c.tag, chain: r.chain, parts: [], exprs: [] };
      byId.set(c.id, o);
    }
    o.parts.push({ chain: r.chain, handle: r.handle, family: c.family, role: c.role });
    o.exprs.push({ family: c.family, role: c.role, expr: r.expr });
  }
  const rules: OwnedFwRule[] = [];
  for (const o of byId.values()) {
    const { exprs, ...rest } = o;
    const spec = decode(o.chain, exprs, o.tag);
    rules.push({ ...rest, spec: spec && ruleId(spec) === o.id ? spec : undefined });
  }
  return { exists: t.exists, policy: pol, chains, rules, statics };
}

interface Facts {
  iif?: string;
  oif?: string;
  saddr?: string[];
  daddr?: string[];
  l4?: string;
  dport?: number | { from: number; to: number };
  verdict?: 'accept' | 'drop' | 'reject';
}

/** One element as libnftables lists it: an address, `{ prefix }` or `{ range }` (merged elements). */
function interval(v: unknown, family: Family): { family: Family; start: bigint; end: bigint } | undefined {
  const bits = family === 4 ? 32 : 128;
  try {
    if (typeof v === 'string') {
      const a = toBig(v);
      return { family, start: a, end: a };
    }
    if (typeof v === 'object' && v !== null && 'prefix' in v) {
      const p = (v as { prefix: { addr: string; len: number } }).prefix;
      const a = toBig(p.addr);
      return { family, start: a, end: a + (1n << BigInt(bits - p.len)) - 1n };
    }
    if (typeof v === 'object' && v !== null && 'range' in v) {
      const [a, b] = (v as { range: [string, string] }).range;
      return { family, start: toBig(a), end: toBig(b) };
    }
  } catch {
    return undefined;
  }
  return undefined;
}

function listOf(v: unknown, f: Family): string[] {
  const items = typeof v === 'object' && v !== null && 'set' in v ? (v as { set: unknown[] }).set : [v];
  return cover(items.map((x) => interval(x, f)).filter((x): x is { family: Family; start: bigint; end: bigint } => x !== undefined));
}

function facts(expr: NftExpr[]): Facts {
  const f: Facts = {};
  for (const e of expr) {
    const m = e.match as { op: string; left: Record<string, unknown>; right: unknown } | undefined;
    if (m) {
      if (m.op !== '==' && m.op !== 'in') continue;
      const metaKey = (m.left.meta as { key?: string } | undefined)?.key;
      const pl = m.left.payload as { protocol?: string; field?: string } | undefined;
      if (metaKey === 'iifname' && typeof m.right === 'string') f.iif = m.right;
      else if (metaKey === 'oifname' && typeof m.right === 'string') f.oif = m.right;
      else if (metaKey === 'l4proto' && typeof m.right === 'string') f.l4 = m.right;
      else if (pl && (pl.protocol === 'ip' || pl.protocol === 'ip6') && (pl.field === 'saddr' || pl.field === 'daddr')) {
        const list = listOf(m.right, pl.protocol === 'ip' ? 4 : 6);
        if (pl.field === 'saddr') f.saddr = list;
        else f.daddr = list;
      } else if (pl && pl.field === 'dport' && (pl.protocol === 'tcp' || pl.protocol === 'udp')) {
        f.l4 = pl.protocol;
        const r = m.right as number | { range?: [number, number] };
        f.dport = typeof r === 'number' ? r : r.range ? { from: r.range[0], to: r.range[1] } : undefined;
      }
      continue;
    }
    if ('accept' in e) f.verdict = 'accept';
    else if ('drop' in e) f.verdict = 'drop';
    else if ('reject' in e) {
      f.verdict = 'reject';
      // A TCP reset implies TCP: should libnftables ever list it without its protocol match.
      if ((e.reject as { type?: string } | null)?.type === 'tcp reset') f.l4 ??= 'tcp';
    }
  }
  return f;
}

/** Reads a rule back from its kernel rules (our own shapes; libnftables drops implied protocol matches when listing). */
function decode(c: string, parts: { family: PartFamily; role: Role; expr: NftExpr[] }[], t?: string): FirewallRuleSpec | undefined {
  const main = parts.filter((p) => p.role === 'main').map((p) => facts(p.expr));
  if (main.length === 0) return undefined;
  const first = main[0];
  const from = main.flatMap((x) => x.saddr ?? []);
  const to = main.flatMap((x) => x.daddr ?? []);
  const proto = first.l4 === 'ipv6-icmp' ? 'icmpv6' : first.l4;
  const act = first.verdict === 'accept' ? 'allow' : first.verdict === 'drop' ? 'deny' : first.verdict === 'reject' ? 'reject' : undefined;
  if (!act) return undefined;
  try {
    return normalize(
      clean({
        action: act,
        chain: c,
        from: first.saddr ? from : undefined,
        to: first.daddr ? to : undefined,
        protocol: proto,
        port: first.dport,
        iif: first.iif,
        oif: first.oif,
        tag: t,
      }),
    );
  } catch {
    return undefined;
  }
}
