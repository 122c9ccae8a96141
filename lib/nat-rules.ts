/**
 * The NAT rule model: validation, stable ids, and translation to libnftables JSON (and back).
 *
 * Pure functions, no kernel access, so all of it is unit-testable without root. lib/nat.ts runs
 * what these build through libnftables inside the namespace.
 *
 * Every kernel rule we make carries the comment `nk:<id>:<kind>:<role>:<tag>`, so `list()` can
 * group the kernel's rules back into the specs they came from. A spec becomes one "primary" rule
 * that holds everything needed to read it back (role `snat` or `dnat`) plus helper rules (roles
 * `dnat-local`, `localhost`, `localhost-masq`, `accept`, `accept-reply`).
 *
 * Table layout (default `inet netns_kit`):
 *   prerouting  nat    hook prerouting  priority dstnat  DNAT of traffic arriving from outside
 *   output      nat    hook output      priority dstnat  DNAT of traffic the namespace itself sends
 *   postrouting nat    hook postrouting priority srcnat  masquerade / SNAT, hairpin and localhost SNAT
 *   forward     filter hook forward     priority filter  accepts for what we NAT, hairpin marking
 * Every chain's policy is accept: this table only ever rewrites or accepts, it never drops.
 */
import { createHash } from 'node:crypto';
import { invalid } from './errors';
import { describe, familyOf, networkOf, parseAddress, parseCidr, type Family } from './ip';
import * as validate from './validate';

export type NatProtocol = 'tcp' | 'udp' | 'sctp';
export const NAT_PROTOCOLS: readonly NatProtocol[] = ['tcp', 'udp', 'sctp'];
/** IPPROTO_* numbers, as conntrack reports them */
export const IPPROTO: Record<NatProtocol, number> = { tcp: 6, udp: 17, sctp: 132 };

export type PortSpec = number | { from: number; to: number };

export interface MasqueradeSpec {
  /** source prefix, e.g. '192.168.15.0/24' (a bare address means that one host) */
  source: string;
  /** only traffic leaving through this interface */
  outInterface?: string;
  /** destination prefixes that keep their source address (e.g. the bridge's own subnet) */
  exclude?: string[];
  tag?: string;
}

export interface SnatSpec {
  source: string;
  /** the source address to write */
  to: string;
  outInterface?: string;
  tag?: string;
}

export interface PortForwardSpec {
  protocol: NatProtocol;
  /** one port, or a range that is forwarded port for port */
  port: PortSpec;
  /** only traffic to this address of the namespace (default: any local address) */
  hostAddress?: string;
  /** only traffic arriving on this interface */
  inInterface?: string;
  /** where to send it; `port` defaults to the same port (and must be left out for a range) */
  to: { address: string; port?: number };
  /** also forward 127.0.0.1:port from the namespace itself (route_localnet, as CNI portmap does); IPv4 only */
  localhost?: boolean;
  tag?: string;
}

export interface ServiceBackend {
  address: string;
  port: number;
}

export interface ServiceSpec {
  vip: string;
  port: number;
  protocol: NatProtocol;
  backends: ServiceBackend[];
  tag?: string;
}

export type NatRuleSpec =
  | ({ kind: 'masquerade' } & MasqueradeSpec)
  | ({ kind: 'snat' } & SnatSpec)
  | ({ kind: 'portForward' } & PortForwardSpec)
  | ({ kind: 'service' } & ServiceSpec);

export type NatKind = NatRuleSpec['kind'];
export const NAT_KINDS: readonly NatKind[] = ['masquerade', 'snat', 'portForward', 'service'];

/** A rule as it is in the kernel: the normalised spec plus its id. */
export type NatRule = NatRuleSpec & { id: string };

/** The owned table's name rules: what `nft` itself accepts for an identifier, at most 64 bytes. */
export function tableName(name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    throw invalid('ERR_NETNS_INVALID_NAME', `nftables table name must be 1-64 characters of letters, digits, '_', '.', '-' starting with a letter or '_', got ${describe(name)}`);
  }
  return name;
}

/**
 * Tags are stored in rule comments, which nftables caps at 128 characters; our longest prefix
 * ("nk:<16 hex>:portForward:localhost-masq:") takes 47, which leaves 81.
 */
export const TAG_MAX = 80;

/** Tags are plain, short text: a container id, or "cni:<network>:<container id>". */
export function tag(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > TAG_MAX || !/^[A-Za-z0-9_.:@/+=-]+$/.test(v)) {
    throw invalid('ERR_NETNS_INVALID_ARG', `tag must be 1-${TAG_MAX} characters of letters, digits and _ . : @ / + = -, got ${describe(v)}`);
  }
  return v;
}

/**
 * Interface names for rules: what the kernel accepts, minus '*' and '\' — libnftables reads a
 * trailing '*' as a wildcard and '\' as an escape, so such a name would not match literally.
 */
export function natIfname(v: unknown, what: string): string {
  const name = validate.ifname(v, what);
  if (/[*\\]/.test(name)) {
    throw invalid('ERR_NETNS_INVALID_IFNAME', `${what} ${JSON.stringify(name)} may not contain '*' or '\\' (nftables would read them as a wildcard or escape)`, { ifname: name });
  }
  return name;
}

export function port(v: unknown, what: string): number {
  return validate.integer(v, what, 1, 65535, 'ERR_NETNS_INVALID_PORT');
}

/** A port or a range, normalised: a range of one port is that port. */
export function portSpec(v: unknown, what: string): PortSpec {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    validate.knownKeys(o, what, ['from', 'to']);
    const from = port(o.from, `${what}.from`);
    const to = port(o.to, `${what}.to`);
    if (from > to) throw invalid('ERR_NETNS_INVALID_PORT', `${what} range starts after it ends (${from} > ${to})`);
    return from === to ? from : { from, to };
  }
  return port(v, what);
}

function protocol(v: unknown, what: string): NatProtocol {
  if (typeof v !== 'string' || !(NAT_PROTOCOLS as readonly string[]).includes(v)) {
    throw invalid('ERR_NETNS_INVALID_RULE', `${what} must be one of ${NAT_PROTOCOLS.join(', ')}, got ${describe(v)}`);
  }
  return v as NatProtocol;
}

/** Prefix in canonical network form ("192.168.15.7/24" -> "192.168.15.0/24"). */
function prefix(v: unknown, what: string, family?: Family): { text: string; family: Family } {
  const c = parseCidr(v, what, { family, prefixRequired: false });
  return { text: `${networkOf(c)}/${c.prefix}`, family: c.family };
}

function optional<T>(o: Record<string, unknown>, key: string, f: (v: unknown) => T): T | undefined {
  return o[key] === undefined ? undefined : f(o[key]);
}

/**
 * Validates a spec and returns its normalised form (canonical addresses, defaults filled in,
 * keys in a fixed order), which is also what `list()` reads back from the kernel.
 */
export function normalize(input: unknown): NatRuleSpec {
  const o = validate.object(input, 'NAT rule');
  const kind = o.kind;
  if (typeof kind !== 'string' || !(NAT_KINDS as readonly string[]).includes(kind)) {
    throw invalid('ERR_NETNS_INVALID_RULE', `NAT rule kind must be one of ${NAT_KINDS.join(', ')}, got ${describe(kind)}`);
  }
  const t = optional(o, 'tag', tag);
  switch (kind as NatKind) {
    case 'masquerade': {
      validate.knownKeys(o, 'masquerade', ['kind', 'source', 'outInterface', 'exclude', 'tag']);
      const src = prefix(o.source, 'masquerade source');
      const outInterface = optional(o, 'outInterface', (v) => natIfname(v, 'outInterface'));
      let exclude: string[] | undefined;
      if (o.exclude !== undefined) {
        if (!Array.isArray(o.exclude)) throw invalid('ERR_NETNS_INVALID_ARG', `masquerade exclude must be an array of prefixes, got ${describe(o.exclude)}`);
        if (o.exclude.length > 256) throw invalid('ERR_NETNS_INVALID_ARG', 'masquerade exclude holds at most 256 prefixes');
        exclude = [...new Set(o.exclude.map((x, i) => prefix(x, `masquerade exclude[${i}]`, src.family).text))].sort();
        if (exclude.length === 0) exclude = undefined;
      }
      return clean({ kind: 'masquerade', source: src.text, outInterface, exclude, tag: t });
    }
    case 'snat': {
      validate.knownKeys(o, 'snat', ['kind', 'source', 'to', 'outInterface', 'tag']);
      const src = prefix(o.source, 'snat source');
      const to = parseAddress(o.to, 'snat to', src.family).address;
      const outInterface = optional(o, 'outInterface', (v) => natIfname(v, 'outInterface'));
      return clean({ kind: 'snat', source: src.text, to, outInterface, tag: t });
    }
    case 'portForward': {
      validate.knownKeys(o, 'portForward', ['kind', 'protocol', 'port', 'hostAddress', 'inInterface', 'to', 'localhost', 'tag']);
      const proto = protocol(o.protocol, 'portForward protocol');
      const p = portSpec(o.port, 'portForward port');
      const to = validate.object(o.to, 'portForward to');
      validate.knownKeys(to, 'portForward to', ['address', 'port']);
      const dest = parseAddress(to.address, 'portForward to.address');
      const hostAddress = optional(o, 'hostAddress', (v) => parseAddress(v, 'portForward hostAddress', dest.family).address);
      const inInterface = optional(o, 'inInterface', (v) => natIfname(v, 'inInterface'));
      let toPort = optional(to, 'port', (v) => port(v, 'portForward to.port'));
      if (typeof p === 'number') {
        toPort = toPort ?? p;
      } else if (toPort !== undefined) {
        throw invalid('ERR_NETNS_INVALID_RULE', 'a port range is forwarded port for port: leave to.port out');
      }
      const localhost = optional(o, 'localhost', (v) => validate.bool(v, 'portForward localhost'));
      if (localhost && dest.family === 6) {
        throw invalid('ERR_NETNS_INVALID_RULE', 'localhost forwarding is IPv4 only: the kernel never routes ::1 off the loopback device (IPv6 has no route_localnet)');
      }
      if (localhost && hostAddress !== undefined) {
        throw invalid('ERR_NETNS_INVALID_RULE', 'localhost: true forwards 127.0.0.1; it cannot be combined with hostAddress');
      }
      return clean({
        kind: 'portForward',
        protocol: proto,
        port: p,
        hostAddress,
        inInterface,
        to: clean({ address: dest.address, port: toPort }),
        localhost: localhost ? true : undefined,
        tag: t,
      });
    }
    case 'service': {
      validate.knownKeys(o, 'service', ['kind', 'vip', 'port', 'protocol', 'backends', 'tag']);
      const vip = parseAddress(o.vip, 'service vip');
      const p = port(o.port, 'service port');
      const proto = protocol(o.protocol, 'service protocol');
      if (!Array.isArray(o.backends) || o.backends.length === 0 || o.backends.length > 1024) {
        throw invalid('ERR_NETNS_INVALID_RULE', `service backends must be an array of 1-1024 { address, port }, got ${describe(o.backends)}`);
      }
      const seen = new Set<string>();
      const backends = o.backends.map((b, i) => {
        const bo = validate.object(b, `service backends[${i}]`);
        validate.knownKeys(bo, `service backends[${i}]`, ['address', 'port']);
        const address = parseAddress(bo.address, `service backends[${i}].address`, vip.family).address;
        const bp = port(bo.port, `service backends[${i}].port`);
        const key = `${address} ${bp}`;
        if (seen.has(key)) throw invalid('ERR_NETNS_INVALID_RULE', `service backends[${i}] ${address}:${bp} is listed twice`);
        seen.add(key);
        return { address, port: bp };
      });
      backends.sort((a, b) => compareAddr(a.address, b.address) || a.port - b.port);
      return clean({ kind: 'service', vip: vip.address, port: p, protocol: proto, backends, tag: t });
    }
  }
}

function compareAddr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Drops undefined members so normalised specs compare and hash by content only. */
export function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/** JSON with sorted keys: the content a rule's id is derived from. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The stable id of a normalised spec: the same content (tag included) always gives the same id. */
export function ruleId(spec: NatRuleSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex').slice(0, 16);
}

export function familyOfSpec(spec: NatRuleSpec): Family {
  switch (spec.kind) {
    case 'masquerade':
    case 'snat':
      return familyOf(spec.source.split('/')[0])!;
    case 'portForward':
      return familyOf(spec.to.address)!;
    case 'service':
      return familyOf(spec.vip)!;
  }
}

// ---------------------------------------------------------------------------------------------
// Overlaps

function range(p: PortSpec): [number, number] {
  return typeof p === 'number' ? [p, p] : [p.from, p.to];
}

/** What incoming traffic a DNAT spec claims: family, protocol, address (undefined = any local), ports, interface. */
function claim(spec: NatRuleSpec): { family: Family; protocol: NatProtocol; address?: string; ports: [number, number]; inInterface?: string } | undefined {
  if (spec.kind === 'portForward') {
    return { family: familyOfSpec(spec), protocol: spec.protocol, address: spec.hostAddress, ports: range(spec.port), inInterface: spec.inInterface };
  }
  if (spec.kind === 'service') return { family: familyOfSpec(spec), protocol: spec.protocol, address: spec.vip, ports: [spec.port, spec.port] };
  return undefined;
}

/**
 * True when two DNAT specs would both match some packet: same family and protocol, overlapping
 * ports, the same address (or either one on every local address) and no two different inInterfaces.
 */
export function overlaps(a: NatRuleSpec, b: NatRuleSpec): boolean {
  const x = claim(a);
  const y = claim(b);
  if (!x || !y) return false;
  if (x.family !== y.family || x.protocol !== y.protocol) return false;
  if (x.ports[1] < y.ports[0] || y.ports[1] < x.ports[0]) return false;
  if (x.address !== undefined && y.address !== undefined && x.address !== y.address) return false;
  if (x.inInterface !== undefined && y.inInterface !== undefined && x.inInterface !== y.inInterface) return false;
  return true;
}

export function describeSpec(s: NatRuleSpec): string {
  switch (s.kind) {
    case 'masquerade':
      return `masquerade ${s.source}${s.outInterface ? ` out ${s.outInterface}` : ''}`;
    case 'snat':
      return `snat ${s.source} to ${s.to}`;
    case 'portForward': {
      const [a, b] = range(s.port);
      const ports = a === b ? `${a}` : `${a}-${b}`;
      const to = s.to.address.includes(':') ? `[${s.to.address}]` : s.to.address;
      return `portForward ${s.protocol} ${s.hostAddress ?? '*'}:${ports} -> ${to}${s.to.port ? `:${s.to.port}` : ''}`;
    }
    case 'service':
      return `service ${s.protocol} ${s.vip}:${s.port} -> ${s.backends.map((b) => `${b.address}:${b.port}`).join(', ')}`;
  }
}

// ---------------------------------------------------------------------------------------------
// libnftables JSON (see libnftables-json(5)); everything below is plain data for JSON.stringify.

export type NftExpr = Record<string, unknown>;
export interface NftRule {
  family: 'inet';
  table: string;
  chain: ChainName;
  expr: NftExpr[];
  comment?: string;
  handle?: number;
}
export type NftCommand = Record<string, unknown>;

export type ChainName = 'prerouting' | 'output' | 'postrouting' | 'forward';
export const CHAINS: Record<ChainName, { type: 'nat' | 'filter'; hook: string; prio: number }> = {
  prerouting: { type: 'nat', hook: 'prerouting', prio: -100 },
  output: { type: 'nat', hook: 'output', prio: -100 },
  postrouting: { type: 'nat', hook: 'postrouting', prio: 100 },
  forward: { type: 'filter', hook: 'forward', prio: 0 },
};

/**
 * Packet mark bit set (on a connection's first packet only) in our forward chain when a DNATed
 * packet leaves through the interface it came in on — a neighbour on the same bridge reaching a
 * service through the host's address. Our postrouting chain masquerades such packets and clears
 * the bit again, so the backend answers through us instead of straight to the neighbour.
 */
export const HAIRPIN_MARK = 0x00200000;

export type Role = 'snat' | 'dnat' | 'dnat-local' | 'localhost' | 'localhost-masq' | 'accept' | 'accept-reply';
const COMMENT_RE = /^nk:([0-9a-f]{16}):(masquerade|snat|portForward|service):([a-z-]+):(.*)$/;
const STATIC_RE = /^nk:static:([a-z-]+)$/;

export function comment(id: string, kind: NatKind, role: Role, t?: string): string {
  return `nk:${id}:${kind}:${role}:${t ?? ''}`;
}

export function parseComment(c: unknown): { id: string; kind: NatKind; role: Role; tag?: string } | undefined {
  if (typeof c !== 'string') return undefined;
  const m = COMMENT_RE.exec(c);
  if (!m) return undefined;
  return { id: m[1], kind: m[2] as NatKind, role: m[3] as Role, tag: m[4] === '' ? undefined : m[4] };
}

export const ipProto = (f: Family) => (f === 4 ? 'ip' : 'ip6');
export const payload = (protocol: string, field: string): NftExpr => ({ payload: { protocol, field } });
export const meta = (key: string): NftExpr => ({ meta: { key } });
export const match = (left: NftExpr, right: unknown, op = '=='): NftExpr => ({ match: { op, left, right } });

/** A prefix as nftables JSON takes it: the bare address for a host, `{ prefix }` otherwise. */
export function cidrValue(text: string): unknown {
  const [addr, len] = text.split('/');
  const full = addr.includes(':') ? 128 : 32;
  return len === undefined || Number(len) === full ? addr : { prefix: { addr, len: Number(len) } };
}

function portValue(p: PortSpec): unknown {
  return typeof p === 'number' ? p : { range: [p.from, p.to] };
}

const ctStatusDnat = match({ ct: { key: 'status' } }, 'dnat', 'in');

/** The kernel rules of one normalised spec, in the order they are added. */
export function buildRules(table: string, spec: NatRuleSpec, id: string): NftRule[] {
  const f = familyOfSpec(spec);
  const ip = ipProto(f);
  const rule = (chain: ChainName, role: Role, expr: NftExpr[]): NftRule => ({ family: 'inet', table, chain, expr, comment: comment(id, spec.kind, role, spec.tag) });
  switch (spec.kind) {
    case 'masquerade':
    case 'snat': {
      const from = match(payload(ip, 'saddr'), cidrValue(spec.source));
      const out = spec.outInterface ? [match(meta('oifname'), spec.outInterface)] : [];
      const excl = spec.kind === 'masquerade' && spec.exclude ? [match(payload(ip, 'daddr'), { set: spec.exclude.map(cidrValue) }, '!=')] : [];
      const stmt = spec.kind === 'masquerade' ? { masquerade: null } : { snat: { family: ip, addr: spec.to } };
      return [
        rule('postrouting', 'snat', [from, ...out, ...excl, stmt]),
        rule('forward', 'accept', [from, ...out, { accept: null }]),
        rule('forward', 'accept-reply', [match(payload(ip, 'daddr'), cidrValue(spec.source)), match({ ct: { key: 'state' } }, ['established', 'related'], 'in'), { accept: null }]),
      ];
    }
    case 'portForward': {
      const dport = match(payload(spec.protocol, 'dport'), portValue(spec.port));
      const dnat = { dnat: { family: ip, addr: spec.to.address, ...(spec.to.port !== undefined ? { port: spec.to.port } : {}) } };
      const anyLocal = [match(meta('nfproto'), f === 4 ? 'ipv4' : 'ipv6'), match({ fib: { result: 'type', flags: ['daddr'] } }, 'local')];
      const dest = spec.hostAddress !== undefined ? [match(payload(ip, 'daddr'), spec.hostAddress)] : anyLocal;
      const backendPort = match(payload(spec.protocol, 'dport'), portValue(spec.to.port ?? spec.port));
      const rules = [rule('prerouting', 'dnat', [...(spec.inInterface ? [match(meta('iifname'), spec.inInterface)] : []), ...dest, dport, dnat])];
      if (spec.inInterface === undefined) {
        // The namespace's own connections to its own address (not to loopback: that is `localhost`).
        const notLoopback = spec.hostAddress !== undefined ? [] : [match(payload(ip, 'daddr'), f === 4 ? { prefix: { addr: '127.0.0.0', len: 8 } } : '::1', '!=')];
        rules.push(rule('output', 'dnat-local', [...dest, ...notLoopback, dport, dnat]));
      }
      if (spec.localhost) {
        rules.push(rule('output', 'localhost', [match(payload('ip', 'daddr'), '127.0.0.1'), dport, dnat]));
        // Source 127.0.0.1 cannot leave the loopback device: rewrite it to the outgoing address.
        rules.push(
          rule('postrouting', 'localhost-masq', [
            match(payload('ip', 'saddr'), { prefix: { addr: '127.0.0.0', len: 8 } }),
            match(payload('ip', 'daddr'), spec.to.address),
            backendPort,
            ctStatusDnat,
            { masquerade: null },
          ]),
        );
      }
      rules.push(rule('forward', 'accept', [match(payload(ip, 'daddr'), spec.to.address), backendPort, ctStatusDnat, { accept: null }]));
      return rules;
    }
    case 'service': {
      const match1 = [match(payload(ip, 'daddr'), spec.vip), match(payload(spec.protocol, 'dport'), spec.port)];
      const dnat =
        spec.backends.length === 1
          ? { dnat: { family: ip, addr: spec.backends[0].address, port: spec.backends[0].port } }
          : {
              dnat: {
                family: ip,
                addr: {
                  map: {
                    key: { numgen: { mode: 'random', mod: spec.backends.length, offset: 0 } },
                    data: { set: spec.backends.map((b, i) => [i, { concat: [b.address, b.port] }]) },
                  },
                },
              },
            };
      return [
        rule('prerouting', 'dnat', [...match1, dnat]),
        rule('output', 'dnat-local', [...match1, dnat]),
        rule('forward', 'accept', [
          ctStatusDnat,
          match({ concat: [payload(ip, 'daddr'), payload(spec.protocol, 'dport')] }, { set: spec.backends.map((b) => ({ concat: [b.address, b.port] })) }),
          { accept: null },
        ]),
      ];
    }
  }
}

/** Rules every owned table has once: the hairpin mark and the masquerade it triggers. */
export function staticRules(table: string): NftRule[] {
  const mark = meta('mark');
  return [
    {
      family: 'inet',
      table,
      chain: 'forward',
      comment: 'nk:static:hairpin-mark',
      expr: [
        match({ ct: { key: 'state' } }, 'new', 'in'),
        ctStatusDnat,
        match({ fib: { result: 'oif', flags: ['daddr', 'iif'] } }, true),
        { mangle: { key: mark, value: { '|': [mark, HAIRPIN_MARK] } } },
      ],
    },
    {
      family: 'inet',
      table,
      chain: 'postrouting',
      comment: 'nk:static:hairpin-masq',
      expr: [
        match({ '&': [mark, HAIRPIN_MARK] }, HAIRPIN_MARK),
        { mangle: { key: mark, value: { '&': [mark, ~HAIRPIN_MARK >>> 0] } } },
        { masquerade: null },
      ],
    },
  ];
}

/** `add table` and `add chain` for the owned table: no-ops when they already exist, so every change can start with them. */
export function skeleton(table: string): NftCommand[] {
  const cmds: NftCommand[] = [{ add: { table: { family: 'inet', name: table } } }];
  for (const [name, c] of Object.entries(CHAINS)) {
    cmds.push({ add: { chain: { family: 'inet', table, name, type: c.type, hook: c.hook, prio: c.prio, policy: 'accept' } } });
  }
  return cmds;
}

export const addRule = (r: NftRule): NftCommand => ({ add: { rule: r } });
export const deleteRule = (table: string, chain: string, handle: number): NftCommand => ({ delete: { rule: { family: 'inet', table, chain, handle } } });
export const listTable = (table: string): NftCommand => ({ list: { table: { family: 'inet', name: table } } });
export const deleteTable = (table: string): NftCommand => ({ delete: { table: { family: 'inet', name: table } } });

export function document(cmds: NftCommand[]): string {
  return JSON.stringify({ nftables: cmds });
}

// ---------------------------------------------------------------------------------------------
// Reading the kernel's answer back

export interface KernelRule {
  chain: string;
  handle: number;
  comment?: string;
  expr: NftExpr[];
}

export interface KernelChain {
  family: string;
  table: string;
  name: string;
  hook?: string;
  policy?: string;
  type?: string;
}

export interface KernelTable {
  exists: boolean;
  chains: KernelChain[];
  rules: KernelRule[];
}

/** libnftables' JSON output of `list table` / `list chains` into chains and rules. */
export function parseListing(output: string): KernelTable {
  const t: KernelTable = { exists: false, chains: [], rules: [] };
  if (!output.trim()) return t;
  const doc = JSON.parse(output) as { nftables?: Record<string, Record<string, unknown>>[] };
  for (const item of doc.nftables ?? []) {
    if (item.table) t.exists = true;
    if (item.chain) t.chains.push(item.chain as unknown as KernelChain);
    if (item.rule) {
      const r = item.rule;
      t.rules.push({ chain: String(r.chain), handle: Number(r.handle), comment: typeof r.comment === 'string' ? r.comment : undefined, expr: (r.expr as NftExpr[]) ?? [] });
    }
  }
  return t;
}

export interface OwnedRule {
  id: string;
  kind: NatKind;
  tag?: string;
  /** every kernel rule of this spec */
  parts: { chain: string; handle: number; role: Role }[];
  /** decoded from the primary rule (undefined when it is missing or unreadable) */
  spec?: NatRuleSpec;
}

/** Groups the owned table's rules by id and reads each spec back from its primary rule. */
export function ownedRules(t: KernelTable): { rules: OwnedRule[]; statics: { chain: string; handle: number; role: string }[] } {
  const byId = new Map<string, OwnedRule>();
  const statics: { chain: string; handle: number; role: string }[] = [];
  for (const r of t.rules) {
    const s = STATIC_RE.exec(r.comment ?? '');
    if (s) {
      statics.push({ chain: r.chain, handle: r.handle, role: s[1] });
      continue;
    }
    const c = parseComment(r.comment);
    if (!c) continue;
    let o = byId.get(c.id);
    if (!o) {
      o = { id: c.id, kind: c.kind, tag: c.tag, parts: [] };
      byId.set(c.id, o);
    }
    o.parts.push({ chain: r.chain, handle: r.handle, role: c.role });
    const primary = (c.kind === 'masquerade' || c.kind === 'snat') ? c.role === 'snat' : c.role === 'dnat';
    if (primary) o.spec = decode(c.kind, r.expr, c.tag);
  }
  for (const o of byId.values()) {
    if (o.spec?.kind === 'portForward' && o.parts.some((p) => p.role === 'localhost')) o.spec.localhost = true;
    if (o.spec) o.spec = normalizeOrUndefined(o.spec);
  }
  return { rules: [...byId.values()], statics };
}

function normalizeOrUndefined(s: NatRuleSpec): NatRuleSpec | undefined {
  try {
    return normalize(s);
  } catch {
    return undefined;
  }
}

interface Facts {
  saddr?: string;
  daddr?: string;
  daddrNot?: string[];
  iifname?: string;
  oifname?: string;
  proto?: NatProtocol;
  dport?: PortSpec;
  masquerade?: boolean;
  snat?: string;
  dnat?: { addr: string; port?: number } | { backends: ServiceBackend[] };
}

function cidrText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && 'prefix' in v) {
    const p = (v as { prefix: { addr: string; len: number } }).prefix;
    return `${p.addr}/${p.len}`;
  }
  return undefined;
}

function isPayload(e: unknown, field: string): string | undefined {
  const p = (e as { payload?: { protocol?: string; field?: string } } | undefined)?.payload;
  return p && p.field === field ? p.protocol : undefined;
}

/** Reads our own rule shapes back; anything else in the rule is ignored. */
function decode(kind: NatKind, expr: NftExpr[], t?: string): NatRuleSpec | undefined {
  const f: Facts = {};
  for (const e of expr) {
    const m = e.match as { op: string; left: unknown; right: unknown } | undefined;
    if (m) {
      const left = m.left as Record<string, unknown>;
      const metaKey = (left.meta as { key?: string } | undefined)?.key;
      if (metaKey === 'iifname' && typeof m.right === 'string') f.iifname = m.right;
      else if (metaKey === 'oifname' && typeof m.right === 'string') f.oifname = m.right;
      else if (isPayload(left, 'saddr') && m.op === '==') f.saddr = cidrText(m.right);
      else if (isPayload(left, 'daddr') && m.op === '==') f.daddr = cidrText(m.right);
      else if (isPayload(left, 'daddr') && m.op === '!=') {
        const r = m.right as { set?: unknown[] };
        f.daddrNot = (Array.isArray(r.set) ? r.set : [m.right]).map(cidrText).filter((x): x is string => x !== undefined);
      } else {
        const proto = isPayload(left, 'dport');
        if (proto && (NAT_PROTOCOLS as readonly string[]).includes(proto)) {
          f.proto = proto as NatProtocol;
          const r = m.right as number | { range?: [number, number] };
          f.dport = typeof r === 'number' ? r : r.range ? { from: r.range[0], to: r.range[1] } : undefined;
        }
      }
      continue;
    }
    if ('masquerade' in e) f.masquerade = true;
    if (e.snat) f.snat = (e.snat as { addr?: string }).addr;
    if (e.dnat) {
      const d = e.dnat as { addr?: unknown; port?: number };
      if (typeof d.addr === 'string') f.dnat = { addr: d.addr, port: d.port };
      else {
        const data = (d.addr as { map?: { data?: { set?: [number, { concat: [string, number] }][] } } } | undefined)?.map?.data?.set;
        if (Array.isArray(data)) {
          f.dnat = { backends: [...data].sort((a, b) => a[0] - b[0]).map(([, v]) => ({ address: v.concat[0], port: v.concat[1] })) };
        }
      }
    }
  }
  const tagPart = t !== undefined ? { tag: t } : {};
  switch (kind) {
    case 'masquerade':
      if (!f.saddr || !f.masquerade) return undefined;
      return clean({ kind, source: f.saddr, outInterface: f.oifname, exclude: f.daddrNot, ...tagPart });
    case 'snat':
      if (!f.saddr || !f.snat) return undefined;
      return clean({ kind, source: f.saddr, to: f.snat, outInterface: f.oifname, ...tagPart });
    case 'portForward':
      if (!f.proto || f.dport === undefined || !f.dnat || !('addr' in f.dnat)) return undefined;
      return clean({ kind, protocol: f.proto, port: f.dport, hostAddress: f.daddr, inInterface: f.iifname, to: clean({ address: f.dnat.addr, port: f.dnat.port }), ...tagPart });
    case 'service': {
      if (!f.proto || typeof f.dport !== 'number' || !f.daddr || !f.dnat) return undefined;
      const backends = 'addr' in f.dnat ? [{ address: f.dnat.addr, port: f.dnat.port ?? f.dport }] : f.dnat.backends;
      return clean({ kind, vip: f.daddr, port: f.dport, protocol: f.proto, backends, ...tagPart });
    }
  }
}

/** Base chains hooked into forward, with policy drop, in tables other than ours. */
export function droppingForwardChains(chains: KernelChain[], ownTable: string): KernelChain[] {
  return chains.filter((c) => c.hook === 'forward' && c.policy === 'drop' && !(c.family === 'inet' && c.table === ownTable));
}
