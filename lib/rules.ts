/** Policy routing rules (`ip rule`) of one namespace: which table a packet is looked up in. */
import { call, invalid, isNotFound } from './errors';
import { AF, familyFromAf, parseCidr, type Family } from './ip';
import { native, type NativeRule } from './native';
import * as validate from './validate';
import type { Netns } from './netns';

export type RuleAction = 'lookup' | 'blackhole' | 'unreachable' | 'prohibit';
export type RuleTable = number | 'main' | 'local' | 'default';
/** a single port or an inclusive range [from, to] */
export type PortRange = number | [number, number];

export interface RuleSpec {
  /** lower runs first; the kernel picks one below the last user rule when omitted */
  priority?: number;
  /** source prefix ("10.9.0.0/24", a bare address is a host prefix); omitted: all */
  from?: string;
  /** destination prefix */
  to?: string;
  /** input device (`iif`); 'lo' matches locally generated packets */
  iif?: string;
  /** output device (`oif`, for sockets bound to a device) */
  oif?: string;
  /** firewall mark (`fwmark MARK[/MASK]`) */
  fwmark?: number;
  /** mask applied to the mark before comparing (default all ones) */
  mask?: number;
  /** table to look up in (action 'lookup'); default 'main' */
  table?: RuleTable;
  /** default 'lookup' */
  action?: RuleAction;
  /** needed only when neither `from` nor `to` says; default 4 */
  family?: Family;
  /** TOS / DSCP byte (`tos`) */
  tos?: number;
  /** IP protocol number or name ('tcp', 'udp', 'icmp', 'icmpv6', 'sctp') */
  ipProto?: number | 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'sctp';
  sport?: PortRange;
  dport?: PortRange;
}

export interface Rule {
  family: Family;
  priority: number;
  from?: string;
  to?: string;
  iif?: string;
  oif?: string;
  fwmark?: number;
  mask?: number;
  table?: RuleTable;
  action: RuleAction | number;
  tos?: number;
  ipProto?: number;
  sport?: [number, number];
  dport?: [number, number];
}

const TABLES = { default: 253, main: 254, local: 255 } as const;
const TABLE_NAME = new Map<number, RuleTable>([
  [253, 'default'],
  [254, 'main'],
  [255, 'local'],
]);
// FR_ACT_* (linux/fib_rules.h)
const ACTIONS: Record<RuleAction, number> = { lookup: 1, blackhole: 6, unreachable: 7, prohibit: 8 };
const ACTION_NAME = new Map(Object.entries(ACTIONS).map(([k, v]) => [v, k as RuleAction]));
const PROTOS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58, sctp: 132 };
const RULE_KEYS = ['priority', 'from', 'to', 'iif', 'oif', 'fwmark', 'mask', 'table', 'action', 'family', 'tos', 'ipProto', 'sport', 'dport'];

function portRange(v: unknown, what: string): [number, number] {
  if (Array.isArray(v)) {
    if (v.length !== 2) throw invalid('ERR_NETNS_INVALID_PORT', `${what} range must be [from, to]`);
    const a = validate.integer(v[0], what, 1, 65535, 'ERR_NETNS_INVALID_PORT');
    const b = validate.integer(v[1], what, 1, 65535, 'ERR_NETNS_INVALID_PORT');
    if (a > b) throw invalid('ERR_NETNS_INVALID_PORT', `${what} range ${a}-${b} is reversed`);
    return [a, b];
  }
  const p = validate.integer(v, what, 1, 65535, 'ERR_NETNS_INVALID_PORT');
  return [p, p];
}

/** Validates a rule into the addon's plain shape, with ip(8)'s defaults (`forDelete`: no defaults, match what is named). */
export function toNativeRule(spec: RuleSpec, forDelete = false): NativeRule {
  const o = validate.object(spec, 'rule');
  validate.knownKeys(o, 'rule', RULE_KEYS);
  let family: Family | undefined = o.family === undefined ? undefined : (Number(validate.oneOf(String(o.family), 'family', ['4', '6'])) as Family);
  const r: NativeRule = { family: 0 };
  if (o.from !== undefined) {
    const c = parseCidr(o.from, 'rule from', { family, prefixRequired: false });
    family = c.family;
    r.src = c.address;
    r.srcLen = c.prefix;
  }
  if (o.to !== undefined) {
    const c = parseCidr(o.to, 'rule to', { family, prefixRequired: false });
    family = c.family;
    r.dst = c.address;
    r.dstLen = c.prefix;
  }
  r.family = AF[family ?? 4];
  if (o.priority !== undefined) r.priority = validate.integer(o.priority, 'rule priority', 0, 2 ** 32 - 1);
  if (o.iif !== undefined) r.iif = validate.ifname(o.iif, 'iif');
  if (o.oif !== undefined) r.oif = validate.ifname(o.oif, 'oif');
  if (o.fwmark !== undefined) r.fwmark = validate.integer(o.fwmark, 'fwmark', 1, 2 ** 32 - 1);
  if (o.mask !== undefined) {
    if (o.fwmark === undefined) throw invalid('ERR_NETNS_INVALID_ARG', 'rule mask needs fwmark');
    r.fwmask = validate.integer(o.mask, 'mask', 0, 2 ** 32 - 1);
  }
  const action = o.action === undefined ? (forDelete ? undefined : 'lookup') : validate.oneOf(o.action, 'rule action', Object.keys(ACTIONS) as RuleAction[]);
  if (action !== undefined) r.action = ACTIONS[action];
  if (o.table !== undefined) {
    if (action !== undefined && action !== 'lookup') throw invalid('ERR_NETNS_INVALID_ARG', `rule action ${action} takes no table`);
    r.table = typeof o.table === 'string' ? TABLES[validate.oneOf(o.table, 'table', ['main', 'local', 'default'])] : validate.integer(o.table, 'table', 1, 2 ** 32 - 1);
  } else if (action === 'lookup' && !forDelete) {
    r.table = TABLES.main;
  }
  if (o.tos !== undefined) r.tos = validate.integer(o.tos, 'tos', 0, 255);
  if (o.ipProto !== undefined) {
    r.ipProto = typeof o.ipProto === 'string' ? PROTOS[validate.oneOf(o.ipProto, 'ipProto', Object.keys(PROTOS))] : validate.integer(o.ipProto, 'ipProto', 1, 255);
  }
  if (o.sport !== undefined) r.sport = portRange(o.sport, 'sport');
  if (o.dport !== undefined) r.dport = portRange(o.dport, 'dport');
  return r;
}

/** The addon's rule record as the typed Rule. */
export function toRule(n: NativeRule): Rule {
  const family = familyFromAf(n.family);
  const rule: Rule = { family, priority: n.priority ?? 0, action: ACTION_NAME.get(n.action ?? 0) ?? n.action ?? 0 };
  if (n.src !== undefined) rule.from = `${n.src}/${n.srcLen ?? (family === 4 ? 32 : 128)}`;
  if (n.dst !== undefined) rule.to = `${n.dst}/${n.dstLen ?? (family === 4 ? 32 : 128)}`;
  if (n.iif !== undefined) rule.iif = n.iif;
  if (n.oif !== undefined) rule.oif = n.oif;
  if (n.fwmark !== undefined) rule.fwmark = n.fwmark;
  if (n.fwmask !== undefined) rule.mask = n.fwmask;
  if (n.table !== undefined && n.table !== 0) rule.table = TABLE_NAME.get(n.table) ?? n.table;
  if (n.tos !== undefined) rule.tos = n.tos;
  if (n.ipProto !== undefined) rule.ipProto = n.ipProto;
  if (n.sport !== undefined) rule.sport = n.sport;
  if (n.dport !== undefined) rule.dport = n.dport;
  return rule;
}

export class Rules {
  constructor(private readonly ns: Netns) {}

  /**
   * Adds a rule; EEXIST when an identical one exists. Equivalent to:
   * `ip [-6] rule add [priority P] [from PREFIX] [to PREFIX] [iif DEV] [oif DEV] [fwmark M/MASK] [tos T]
   *  [ipproto P] [sport A-B] [dport A-B] lookup TABLE | blackhole | unreachable | prohibit`
   */
  async add(spec: RuleSpec): Promise<void> {
    const r = toNativeRule(spec);
    await call({ netns: this.ns.label, syscall: 'add rule' }, () => native.ruleAdd(this.ns.ref, r));
  }

  /**
   * Deletes the first rule matching every field named (as `ip rule del ...`). ENOENT when none does.
   * Equivalent to: `ip [-6] rule del [priority P] [from PREFIX] ... [lookup TABLE]`
   */
  async delete(spec: RuleSpec, options: { missingOk?: boolean } = {}): Promise<void> {
    const r = toNativeRule(spec, true);
    try {
      await call({ netns: this.ns.label, syscall: 'delete rule' }, () => native.ruleDelete(this.ns.ref, r));
    } catch (e) {
      if (options.missingOk && isNotFound(e)) return;
      throw e;
    }
  }

  /** Every rule, IPv4 then IPv6 (or one family), in priority order. Equivalent to: `ip [-4|-6] rule show` */
  async list(filter: { family?: Family } = {}): Promise<Rule[]> {
    if (filter.family !== undefined) validate.oneOf(String(filter.family), 'family', ['4', '6']);
    const raw = await call({ netns: this.ns.label, syscall: 'list rules' }, () => native.ruleList(this.ns.ref, filter.family ? AF[filter.family] : 0));
    return raw.map(toRule).filter((r) => filter.family === undefined || r.family === filter.family);
  }
}
