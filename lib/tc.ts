/**
 * Traffic control in one namespace: qdiscs, classes and filters (`tc qdisc|class|filter`), and the
 * one-call link shaping behind links.shape() / links.getShape().
 *
 * Units are the same as links.shape()'s (lib/shape.ts): rates `'10mbit'` or bits/s, sizes `'32kb'`
 * or bytes, times `'40ms'` or ms, probabilities `'1%'` or percent. list() returns numbers in
 * those units (bits/s, bytes, ms, percent), so what comes back can be passed in again.
 *
 * A kind this kernel was built without (netem, fq_codel, flower, matchall, gact, ...) fails with
 * EOPNOTSUPP naming it — never ENOENT, which `missingOk` would swallow — and changes nothing.
 */
import { call, invalid, isNotFound, NetnsError } from './errors';
import { describe } from './ip';
import { native, type NativeTcAction, type NativeTcEntry, type NativeTcFilterSpec, type NativeTcOptions, type NativeTcSpec } from './native';
import type { Netns } from './netns';
import {
  handle as mkHandle,
  ifbName,
  INGRESS_HANDLE,
  needsNetem,
  parsePercent,
  parseRate,
  parseSize,
  parseTime,
  planDirection,
  shapeFromQdiscs,
  TC_H_INGRESS,
  TC_H_ROOT,
  validateShape,
  type CurrentRoot,
  type LinkShape,
  type PlannedQdisc,
  type Shape,
} from './shape';
import * as validate from './validate';

export type QdiscKind = 'tbf' | 'htb' | 'netem' | 'fq_codel' | 'sfq' | 'prio' | 'pfifo' | 'bfifo' | 'ingress' | 'clsact';
export type FilterKind = 'u32' | 'matchall' | 'flower';

type Rate = string | number;
type Size = string | number;
type Time = string | number;
type Percent = string | number;

interface QdiscBase {
  dev: string;
  /** `'root'` (default), `'ingress'`, `'clsact'`, or a class `'1:10'` */
  parent?: string;
  /** `'1:'` (the kernel picks one when omitted) */
  handle?: string;
}

/** A qdisc as add/replace take it: `tc qdisc add dev DEV parent P handle H KIND options...` */
export type QdiscSpec =
  | (QdiscBase & { kind: 'tbf'; rate: Rate; burst: Size; limit?: Size; latency?: Time; peakrate?: Rate; mtu?: Size })
  | (QdiscBase & { kind: 'htb'; /** minor of the default class */ defaultClass?: number; r2q?: number })
  | (QdiscBase & {
      kind: 'netem';
      delay?: Time;
      jitter?: Time;
      loss?: Percent;
      lossCorrelation?: Percent;
      duplicate?: Percent;
      corrupt?: Percent;
      reorder?: Percent;
      reorderCorrelation?: Percent;
      gap?: number;
      /** packets */
      limit?: number;
    })
  | (QdiscBase & { kind: 'fq_codel'; /** packets */ limit?: number; target?: Time; interval?: Time; flows?: number; quantum?: Size; ecn?: boolean })
  | (QdiscBase & { kind: 'sfq'; quantum?: Size; /** packets */ limit?: number; /** seconds */ perturb?: number })
  | (QdiscBase & { kind: 'prio'; bands?: number; priomap?: number[] })
  | (QdiscBase & { kind: 'pfifo'; /** packets */ limit?: number })
  | (QdiscBase & { kind: 'bfifo'; limit?: Size })
  | (QdiscBase & { kind: 'ingress' | 'clsact' });

/** An HTB class: `tc class add dev DEV parent 1: classid 1:10 htb rate R ceil C ...` */
export interface ClassSpec {
  dev: string;
  /** `'1:'` or a parent class `'1:1'` */
  parent: string;
  classid: string;
  kind: 'htb';
  rate: Rate;
  ceil?: Rate;
  burst?: Size;
  cburst?: Size;
  prio?: number;
  quantum?: Size;
}

/** `action mirred egress redirect dev X` / `action gact drop` */
export type ActionSpec =
  | { kind: 'mirred'; action: 'redirect' | 'mirror'; direction?: 'egress' | 'ingress'; dev: string }
  | { kind: 'gact'; verdict: 'drop' | 'pass' | 'ok' | 'continue' | 'pipe' | 'reclassify' };

/** One u32 key: `match u32 VALUE MASK at OFFSET` */
export interface U32Match {
  value: number;
  mask: number;
  /** byte offset from the network header */
  at: number;
}

/** `tc filter add dev DEV parent P prio N protocol PROTO KIND ... [flowid C] [action ...]` */
export interface FilterSpec {
  dev: string;
  /** `'ingress'`, `'1:'`, `'clsact'`-side `'ingress'`/`'egress'` are the usual ones */
  parent: string;
  kind: FilterKind;
  prio?: number;
  /** `'all'` (default), `'ip'`, `'ipv6'`, `'arp'` or an EtherType number */
  protocol?: 'all' | 'ip' | 'ipv6' | 'arp' | number;
  /** u32 handle `'800::800'` (hex, htid:hash:node) or a number */
  handle?: string | number;
  /** u32 keys; `'all'` or omitted matches every packet (`match u32 0 0`) */
  match?: 'all' | U32Match[];
  /** the class packets go to (`flowid`/`classid`) */
  flowid?: string;
  actions?: ActionSpec[];
}

export interface TcStats {
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
  requeues: number;
  backlog: number;
  qlen: number;
}

export interface Qdisc {
  dev: string;
  kind: string;
  /** `'1:'` */
  handle: string;
  /** `'root'`, `'ingress'` or `'1:1'` */
  parent: string;
  /** kind-specific, in list units (bits/s, bytes, ms, percent) */
  options: Record<string, number | number[]>;
  stats: TcStats;
}

export interface TcClass {
  dev: string;
  kind: string;
  classid: string;
  parent: string;
  options: Record<string, number>;
  stats: TcStats;
}

export interface Filter {
  dev: string;
  kind: string;
  parent: string;
  prio: number;
  protocol: number;
  /** u32: `'800::800'`; others: the number */
  handle: string;
  match?: U32Match[];
  flowid?: string;
  actions: Array<{ kind: string; action?: 'redirect' | 'mirror'; direction?: 'egress' | 'ingress'; dev?: string; ifindex?: number }>;
  stats: TcStats;
}

// ---- handles ------------------------------------------------------------------------------------

/** `'1:'`, `'1:10'`, `'ffff:'` (hex, as tc writes them), `'root'`, `'ingress'`, `'clsact'`, `'none'` -> number. */
export function parseHandle(v: unknown, what = 'handle'): number {
  if (typeof v !== 'string') throw invalid('ERR_NETNS_INVALID_ARG', `${what} must be a string like '1:' or '1:10', got ${describe(v)}`);
  const s = v.trim().toLowerCase();
  if (s === 'root') return TC_H_ROOT;
  if (s === 'ingress' || s === 'clsact') return TC_H_INGRESS;
  if (s === 'none') return 0;
  // clsact's two hooks, as tc names them for filters
  if (s === 'egress') return 0xfffffff3;
  const m = /^([0-9a-f]{1,4})?:([0-9a-f]{1,4})?$/.exec(s);
  if (!m || (m[1] === undefined && m[2] === undefined)) throw invalid('ERR_NETNS_INVALID_ARG', `${what} must look like '1:' or '1:10' (hex), got ${describe(v)}`);
  return mkHandle(parseInt(m[1] ?? '0', 16), parseInt(m[2] ?? '0', 16));
}

/** The number -> `'1:'`, `'1:10'`, `'root'`, `'ingress'`. */
export function formatHandle(h: number, parent = false): string {
  if (parent && h === TC_H_ROOT) return 'root';
  if (parent && h === TC_H_INGRESS) return 'ingress';
  if (parent && h === 0xfffffff3) return 'egress';
  const major = (h >>> 16).toString(16);
  const minor = h & 0xffff;
  return minor ? `${major}:${minor.toString(16)}` : `${major}:`;
}

/** u32 handles: `'800::800'` (htid:hash:node, hex) <-> number. */
export function parseU32Handle(v: unknown): number {
  if (typeof v === 'number') return validate.integer(v, 'filter handle', 0, 0xffffffff);
  if (typeof v !== 'string') throw invalid('ERR_NETNS_INVALID_ARG', `filter handle must be '800::800' or a number, got ${describe(v)}`);
  const m = /^([0-9a-f]{0,3}):([0-9a-f]{0,2}):([0-9a-f]{0,3})$/i.exec(v.trim());
  if (!m) throw invalid('ERR_NETNS_INVALID_ARG', `filter handle must look like '800::800' (htid:hash:node, hex), got ${describe(v)}`);
  const n = (x: string) => (x ? parseInt(x, 16) : 0);
  return ((n(m[1]) << 20) | (n(m[2]) << 12) | n(m[3])) >>> 0;
}

export function formatU32Handle(h: number): string {
  const htid = (h >>> 20) & 0xfff;
  const hash = (h >>> 12) & 0xff;
  const node = h & 0xfff;
  return `${htid.toString(16)}:${hash ? hash.toString(16) : ''}:${node ? node.toString(16) : ''}`;
}

// ---- option conversion (user units <-> kernel units) --------------------------------------------

type Category = 'rate' | 'size' | 'time' | 'percent' | 'int' | 'packets' | 'bool' | 'priomap';

const QDISC_OPTIONS: Record<QdiscKind, Record<string, Category>> = {
  tbf: { rate: 'rate', burst: 'size', limit: 'size', latency: 'time', peakrate: 'rate', mtu: 'size' },
  htb: { defaultClass: 'int', r2q: 'int' },
  netem: {
    delay: 'time', jitter: 'time', loss: 'percent', lossCorrelation: 'percent', duplicate: 'percent', corrupt: 'percent',
    reorder: 'percent', reorderCorrelation: 'percent', gap: 'int', limit: 'packets',
  },
  fq_codel: { limit: 'packets', target: 'time', interval: 'time', flows: 'int', quantum: 'size', ecn: 'bool' },
  sfq: { quantum: 'size', limit: 'packets', perturb: 'int' },
  prio: { bands: 'int', priomap: 'priomap' },
  pfifo: { limit: 'packets' },
  bfifo: { limit: 'size' },
  ingress: {},
  clsact: {},
};
const CLASS_OPTIONS: Record<string, Category> = { rate: 'rate', ceil: 'rate', burst: 'size', cburst: 'size', prio: 'int', quantum: 'size' };
const QDISC_KINDS = Object.keys(QDISC_OPTIONS) as QdiscKind[];
const PROB_MAX = 0xffffffff;

function toKernel(cat: Category, v: unknown, what: string): number | boolean | number[] {
  switch (cat) {
    case 'rate': {
      const bits = parseRate(v, what);
      return Math.round(bits / 8);
    }
    case 'size':
      return parseSize(v, what);
    case 'time':
      return Math.round(parseTime(v, what) * 1000);
    case 'percent':
      return Math.min(PROB_MAX, Math.round((parsePercent(v, what) / 100) * PROB_MAX));
    case 'int':
      return validate.integer(v, what, 0, 2 ** 32 - 1);
    case 'packets':
      return validate.integer(v, what, 1, 2 ** 31 - 1);
    case 'bool':
      return validate.bool(v, what);
    case 'priomap': {
      if (!Array.isArray(v) || v.length === 0 || v.length > 16) throw invalid('ERR_NETNS_INVALID_ARG', `${what} must be an array of 1-16 band numbers, got ${describe(v)}`);
      return v.map((b, i) => validate.integer(b, `${what}[${i}]`, 0, 15));
    }
  }
}

function fromKernel(cat: Category | undefined, v: number): number {
  switch (cat) {
    case 'rate':
      return v * 8;
    case 'time':
      return v / 1000;
    case 'percent':
      return Math.round((v / PROB_MAX) * 100 * 1e4) / 1e4;
    default:
      return v;
  }
}

function convertOptions(o: Record<string, unknown>, table: Record<string, Category>, what: string, skip: readonly string[]): NativeTcOptions {
  validate.knownKeys(o, what, [...skip, ...Object.keys(table)]);
  const out: Record<string, unknown> = {};
  for (const [k, cat] of Object.entries(table)) {
    if (o[k] !== undefined) out[k] = toKernel(cat, o[k], `${what} ${k}`);
  }
  return out as NativeTcOptions;
}

const BASE_KEYS = ['dev', 'parent', 'handle', 'kind'];

/** Validates a qdisc spec into the addon's shape. */
export function toNativeQdisc(spec: QdiscSpec, forDelete = false): NativeTcSpec {
  const o = validate.object(spec, 'qdisc');
  const dev = validate.ifname(o.dev, 'qdisc dev');
  const kind = forDelete && o.kind === undefined ? undefined : validate.oneOf(o.kind, 'qdisc kind', QDISC_KINDS);
  const special = kind === 'ingress' || kind === 'clsact';
  const parent = o.parent === undefined ? (special ? TC_H_INGRESS : TC_H_ROOT) : parseHandle(o.parent, 'qdisc parent');
  const out: NativeTcSpec = { dev, parent };
  if (kind) out.kind = kind;
  if (o.handle !== undefined) out.handle = parseHandle(o.handle, 'qdisc handle');
  else if (special) out.handle = INGRESS_HANDLE;
  if (forDelete) {
    validate.knownKeys(o, 'qdisc', BASE_KEYS);
    return out;
  }
  const opts = convertOptions(o, QDISC_OPTIONS[kind!], `${kind} qdisc`, BASE_KEYS);
  out.options = opts;
  if ((kind === 'pfifo' || kind === 'bfifo') && opts.limit === undefined) {
    // tc would take the device's txqueuelen; libnl 3.7 cannot send a fifo without a limit.
    throw invalid('ERR_NETNS_INVALID_ARG', `${kind} qdisc needs a limit`);
  }
  if (kind === 'prio' && opts.priomap && opts.priomap.some((b) => b >= (opts.bands ?? 3))) {
    throw invalid('ERR_NETNS_INVALID_ARG', `prio priomap names a band beyond bands (${opts.bands ?? 3})`);
  }
  if (kind === 'tbf') {
    if (opts.rate === undefined || opts.burst === undefined) throw invalid('ERR_NETNS_INVALID_ARG', 'tbf qdisc needs rate and burst (as tc does)');
    if ((opts.limit === undefined) === (opts.latency === undefined)) throw invalid('ERR_NETNS_INVALID_ARG', 'tbf qdisc needs exactly one of limit and latency (as tc does)');
  }
  return out;
}

export function toNativeClass(spec: ClassSpec, forDelete = false): NativeTcSpec {
  const o = validate.object(spec, 'class');
  const dev = validate.ifname(o.dev, 'class dev');
  const out: NativeTcSpec = { dev, parent: o.parent === undefined ? TC_H_ROOT : parseHandle(o.parent, 'class parent'), handle: parseHandle(o.classid, 'classid') };
  if (forDelete) {
    validate.knownKeys(o, 'class', ['dev', 'parent', 'classid', 'kind']);
    return out;
  }
  out.kind = validate.oneOf(o.kind, 'class kind', ['htb'] as const);
  out.options = convertOptions(o, CLASS_OPTIONS, 'htb class', ['dev', 'parent', 'classid', 'kind']);
  if (out.options.rate === undefined) throw invalid('ERR_NETNS_INVALID_ARG', 'htb class needs a rate (as tc does)');
  return out;
}

const PROTOCOLS: Record<string, number> = { all: 0x0003, ip: 0x0800, ipv6: 0x86dd, arp: 0x0806 };
const GACT: Record<string, number> = { ok: 0, pass: 0, reclassify: 1, drop: 2, pipe: 3, continue: -1 };
const MIRRED = { 'egress:redirect': 1, 'egress:mirror': 2, 'ingress:redirect': 3, 'ingress:mirror': 4 } as const;
const TC_ACT_PIPE = 3;
const TC_ACT_STOLEN = 4;

function toNativeAction(a: unknown, i: number): NativeTcAction {
  const o = validate.object(a, `action ${i}`);
  const kind = validate.oneOf(o.kind, `action ${i} kind`, ['mirred', 'gact'] as const);
  if (kind === 'mirred') {
    validate.knownKeys(o, 'mirred action', ['kind', 'action', 'direction', 'dev']);
    const action = validate.oneOf(o.action, 'mirred action', ['redirect', 'mirror'] as const);
    const direction = o.direction === undefined ? 'egress' : validate.oneOf(o.direction, 'mirred direction', ['egress', 'ingress'] as const);
    return { kind, mirredAction: MIRRED[`${direction}:${action}`], policy: action === 'redirect' ? TC_ACT_STOLEN : TC_ACT_PIPE, dev: validate.ifname(o.dev, 'mirred dev') };
  }
  validate.knownKeys(o, 'gact action', ['kind', 'verdict']);
  const verdict = validate.oneOf(o.verdict, 'gact verdict', Object.keys(GACT));
  return { kind, gactAction: GACT[verdict] };
}

export function toNativeFilter(spec: FilterSpec, forDelete = false): NativeTcFilterSpec {
  const o = validate.object(spec, 'filter');
  validate.knownKeys(o, 'filter', ['dev', 'parent', 'kind', 'prio', 'protocol', 'handle', 'match', 'flowid', 'actions']);
  const dev = validate.ifname(o.dev, 'filter dev');
  const out: NativeTcFilterSpec = { dev, parent: parseHandle(o.parent, 'filter parent') };
  if (o.kind !== undefined || !forDelete) out.kind = validate.oneOf(o.kind, 'filter kind', ['u32', 'matchall', 'flower'] as const);
  if (o.prio !== undefined) out.prio = validate.integer(o.prio, 'filter prio', 1, 0xffff);
  if (o.protocol !== undefined) {
    out.protocol = typeof o.protocol === 'number' ? validate.integer(o.protocol, 'filter protocol', 0, 0xffff) : PROTOCOLS[validate.oneOf(o.protocol, 'filter protocol', Object.keys(PROTOCOLS))];
  }
  if (o.handle !== undefined) out.handle = out.kind === 'u32' || out.kind === undefined ? parseU32Handle(o.handle) : validate.integer(o.handle, 'filter handle', 0, 0xffffffff);
  if (forDelete) return out;
  if (o.match !== undefined && o.match !== 'all') {
    if (out.kind !== 'u32') throw invalid('ERR_NETNS_INVALID_ARG', `match keys belong to u32 filters, not ${out.kind}`);
    if (!Array.isArray(o.match) || o.match.length > 128) throw invalid('ERR_NETNS_INVALID_ARG', `filter match must be 'all' or an array of { value, mask, at }, got ${describe(o.match)}`);
    out.keys = o.match.map((m: unknown, i: number) => {
      const k = validate.object(m, `match ${i}`);
      validate.knownKeys(k, `match ${i}`, ['value', 'mask', 'at']);
      const at = validate.integer(k.at, `match ${i} at`, -0x8000, 0x7fff);
      if (at % 4 !== 0) throw invalid('ERR_NETNS_INVALID_ARG', `match ${i} at must be a multiple of 4 (u32 keys are 32-bit words), got ${at}`);
      return { value: validate.integer(k.value, `match ${i} value`, 0, 0xffffffff), mask: validate.integer(k.mask, `match ${i} mask`, 0, 0xffffffff), off: at };
    });
  } else if (out.kind === 'u32') {
    out.keys = [{ value: 0, mask: 0, off: 0 }];
  }
  if (o.flowid !== undefined) out.classid = parseHandle(o.flowid, 'filter flowid');
  if (o.actions !== undefined) {
    if (!Array.isArray(o.actions) || o.actions.length > 32) throw invalid('ERR_NETNS_INVALID_ARG', `filter actions must be an array, got ${describe(o.actions)}`);
    if (out.kind === 'flower' && o.actions.length) throw invalid('ERR_NETNS_INVALID_ARG', 'actions on flower filters are not supported by netns-kit (libnl 3.7); use u32 or matchall');
    out.actions = o.actions.map(toNativeAction);
  }
  return out;
}

// ---- list conversion ----------------------------------------------------------------------------

function optionsOut(e: NativeTcEntry, table: Record<string, Category> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(e.options)) out[k] = fromKernel(table?.[k], v);
  return out;
}

const MIRRED_NAMES: Record<number, { action: 'redirect' | 'mirror'; direction: 'egress' | 'ingress' }> = {
  1: { action: 'redirect', direction: 'egress' },
  2: { action: 'mirror', direction: 'egress' },
  3: { action: 'redirect', direction: 'ingress' },
  4: { action: 'mirror', direction: 'ingress' },
};

async function deviceNames(ns: Netns): Promise<Map<number, string>> {
  const links = await call({ netns: ns.label, syscall: 'list links' }, () => native.linkList(ns.ref));
  return new Map(links.map((l) => [l.index, l.name]));
}

function isZeroHandleDelete(e: unknown): boolean {
  return e instanceof NetnsError && e.code === 'EINVAL' && (e.extack ?? '').includes('handle of zero');
}

// ---- the API -------------------------------------------------------------------------------------

class Qdiscs {
  constructor(private readonly ns: Netns) {}

  /** Equivalent to: `tc qdisc add dev DEV parent P handle H KIND ...` (EEXIST when one is there). */
  async add(spec: QdiscSpec): Promise<void> {
    const s = toNativeQdisc(spec);
    await call({ netns: this.ns.label, ifname: s.dev, syscall: 'add qdisc' }, () => native.tcQdisc(this.ns.ref, 'add', s));
  }

  /**
   * Equivalent to: `tc qdisc replace dev DEV parent P handle H KIND ...`. Atomic: a qdisc of the same
   * kind and handle is changed in place; otherwise the new one is built and grafted in one step.
   */
  async replace(spec: QdiscSpec): Promise<void> {
    const s = toNativeQdisc(spec);
    await call({ netns: this.ns.label, ifname: s.dev, syscall: 'replace qdisc' }, () => native.tcQdisc(this.ns.ref, 'replace', s));
  }

  /** Equivalent to: `tc qdisc change dev DEV parent P handle H KIND ...` (the qdisc must exist). */
  async change(spec: QdiscSpec): Promise<void> {
    const s = toNativeQdisc(spec);
    await call({ netns: this.ns.label, ifname: s.dev, syscall: 'change qdisc' }, () => native.tcQdisc(this.ns.ref, 'change', s));
  }

  /**
   * Equivalent to: `tc qdisc del dev DEV parent P [handle H]`. `missingOk`: no error when there is no
   * such qdisc (the device's default root counts as none).
   */
  async delete(spec: { dev: string; parent?: string; handle?: string; kind?: QdiscKind }, options: { missingOk?: boolean } = {}): Promise<void> {
    const s = toNativeQdisc(spec as QdiscSpec, true);
    try {
      await call({ netns: this.ns.label, ifname: s.dev, syscall: 'delete qdisc' }, () => native.tcQdisc(this.ns.ref, 'delete', s));
    } catch (e) {
      if (options.missingOk && (isNotFound(e) || isZeroHandleDelete(e))) return;
      throw e;
    }
  }

  /** Equivalent to: `tc -s qdisc show [dev DEV]` */
  async list(filter: { dev?: string } = {}): Promise<Qdisc[]> {
    const dev = filter.dev === undefined ? undefined : validate.ifname(filter.dev, 'dev');
    const raw = await call({ netns: this.ns.label, ifname: dev, syscall: 'list qdiscs' }, () => native.tcList(this.ns.ref, 'qdisc', dev));
    const names = await deviceNames(this.ns);
    return raw.map((e) => {
      const options: Record<string, number | number[]> = optionsOut(e, QDISC_OPTIONS[e.kind as QdiscKind]);
      if (e.priomap) options.priomap = e.priomap;
      return { dev: names.get(e.ifindex) ?? String(e.ifindex), kind: e.kind, handle: formatHandle(e.handle), parent: formatHandle(e.parent, true), options, stats: e.stats };
    });
  }
}

class Classes {
  constructor(private readonly ns: Netns) {}

  /** Equivalent to: `tc class add dev DEV parent P classid C htb rate R ...` */
  async add(spec: ClassSpec): Promise<void> {
    const s = toNativeClass(spec);
    await call({ netns: this.ns.label, ifname: s.dev, syscall: 'add class' }, () => native.tcClass(this.ns.ref, 'add', s));
  }

  /** Equivalent to: `tc class replace dev DEV parent P classid C htb rate R ...` */
  async replace(spec: ClassSpec): Promise<void> {
    const s = toNativeClass(spec);
    await call({ netns: this.ns.label, ifname: s.dev, syscall: 'replace class' }, () => native.tcClass(this.ns.ref, 'replace', s));
  }

  /** Equivalent to: `tc class change dev DEV parent P classid C htb rate R ...` */
  async change(spec: ClassSpec): Promise<void> {
    const s = toNativeClass(spec);
    await call({ netns: this.ns.label, ifname: s.dev, syscall: 'change class' }, () => native.tcClass(this.ns.ref, 'change', s));
  }

  /** Equivalent to: `tc class del dev DEV classid C` */
  async delete(spec: { dev: string; classid: string; parent?: string }, options: { missingOk?: boolean } = {}): Promise<void> {
    const s = toNativeClass(spec as ClassSpec, true);
    try {
      await call({ netns: this.ns.label, ifname: s.dev, syscall: 'delete class' }, () => native.tcClass(this.ns.ref, 'delete', s));
    } catch (e) {
      if (options.missingOk && isNotFound(e)) return;
      throw e;
    }
  }

  /** Equivalent to: `tc -s class show dev DEV` */
  async list(filter: { dev: string }): Promise<TcClass[]> {
    const dev = validate.ifname(validate.object(filter, 'class filter').dev, 'dev');
    const raw = await call({ netns: this.ns.label, ifname: dev, syscall: 'list classes' }, () => native.tcList(this.ns.ref, 'class', dev));
    return raw.map((e) => ({ dev, kind: e.kind, classid: formatHandle(e.handle), parent: formatHandle(e.parent, true), options: optionsOut(e, CLASS_OPTIONS), stats: e.stats }));
  }
}

class Filters {
  constructor(private readonly ns: Netns) {}

  /** Equivalent to: `tc filter add dev DEV parent P prio N protocol all u32 match ... action ...` */
  async add(spec: FilterSpec): Promise<void> {
    const s = toNativeFilter(spec);
    await call({ netns: this.ns.label, ifname: s.dev, syscall: 'add filter' }, () => native.tcFilter(this.ns.ref, 'add', s));
  }

  /** Equivalent to: `tc filter replace dev DEV parent P prio N handle H ...` */
  async replace(spec: FilterSpec): Promise<void> {
    const s = toNativeFilter(spec);
    await call({ netns: this.ns.label, ifname: s.dev, syscall: 'replace filter' }, () => native.tcFilter(this.ns.ref, 'replace', s));
  }

  /** Equivalent to: `tc filter del dev DEV parent P [prio N [handle H KIND]]` */
  async delete(spec: { dev: string; parent: string; prio?: number; protocol?: FilterSpec['protocol']; handle?: string | number; kind?: FilterKind }, options: { missingOk?: boolean } = {}): Promise<void> {
    const s = toNativeFilter(spec as FilterSpec, true);
    try {
      await call({ netns: this.ns.label, ifname: s.dev, syscall: 'delete filter' }, () => native.tcFilter(this.ns.ref, 'delete', s));
    } catch (e) {
      if (options.missingOk && isNotFound(e)) return;
      throw e;
    }
  }

  /** Equivalent to: `tc -s filter show dev DEV parent P` */
  async list(filter: { dev: string; parent: string }): Promise<Filter[]> {
    const f = validate.object(filter, 'filter list');
    const dev = validate.ifname(f.dev, 'dev');
    const parent = parseHandle(f.parent, 'parent');
    const raw = await call({ netns: this.ns.label, ifname: dev, syscall: 'list filters' }, () => native.tcList(this.ns.ref, 'filter', dev, parent));
    const names = raw.some((e) => e.actions?.some((a) => a.ifindex)) ? await deviceNames(this.ns) : new Map<number, string>();
    return raw.map((e) => {
      const out: Filter = {
        dev,
        kind: e.kind,
        parent: formatHandle(parent, true),
        prio: e.prio ?? 0,
        protocol: e.protocol ?? 0,
        handle: e.kind === 'u32' ? formatU32Handle(e.handle) : String(e.handle),
        actions: (e.actions ?? []).map((a) => {
          if (a.kind !== 'mirred') return { kind: a.kind };
          return { kind: a.kind, ...MIRRED_NAMES[a.mirredAction ?? 0], ifindex: a.ifindex, dev: names.get(a.ifindex ?? 0) };
        }),
        stats: e.stats,
      };
      if (e.keys?.length) out.match = e.keys.map((k) => ({ value: k.value, mask: k.mask, at: k.off }));
      if (e.classid) out.flowid = formatHandle(e.classid);
      return out;
    });
  }
}

/** `ns.tc`: `tc qdisc`, `tc class` and `tc filter` in this namespace. */
export class Tc {
  readonly qdiscs: Qdiscs;
  readonly classes: Classes;
  readonly filters: Filters;
  constructor(ns: Netns) {
    this.qdiscs = new Qdiscs(ns);
    this.classes = new Classes(ns);
    this.filters = new Filters(ns);
  }
}

// ---- links.shape() / links.getShape() ------------------------------------------------------------

/** What is on one device now, as far as shaping is concerned. */
interface DeviceState {
  root?: NativeTcEntry;
  child?: NativeTcEntry;
  ingress?: NativeTcEntry;
}

function deviceState(all: NativeTcEntry[], ifindex: number): DeviceState {
  const mine = all.filter((e) => e.ifindex === ifindex);
  // A handle of 0 is the kernel's default (noqueue, pfifo_fast, mq): no shape.
  const root = mine.find((e) => e.parent === TC_H_ROOT && e.handle !== 0);
  const st: DeviceState = { ingress: mine.find((e) => e.parent === TC_H_INGRESS) };
  if (root) {
    st.root = root;
    st.child = mine.find((e) => e.parent === ((root.handle | 1) >>> 0) && e.kind === 'tbf');
  }
  return st;
}

function currentRoot(st: DeviceState): CurrentRoot | undefined {
  return st.root ? { kind: st.root.kind, handle: st.root.handle, hasChild: st.child !== undefined } : undefined;
}

function directionShape(st: DeviceState, dev: string, ns: Netns): Shape | undefined {
  if (!st.root) return undefined;
  const s = shapeFromQdiscs(st.root, st.child);
  if (!s) {
    throw new NetnsError('ERR_NETNS_CONFLICT', `ERR_NETNS_CONFLICT: the root qdisc of ${dev} is ${st.root.kind}, which links.shape() did not set; read it with ns.tc.qdiscs.list()`, {
      netns: ns.label,
      ifname: dev,
    });
  }
  return s;
}

function qdiscSpec(dev: string, q: PlannedQdisc): NativeTcSpec {
  return { dev, kind: q.kind, parent: q.parent, handle: q.handle, options: q.options };
}

/** Everything shape() and getShape() read: the device, its qdiscs and its ifb (if any), in one call. */
async function readLinkState(ns: Netns, dev: string) {
  const st = await call({ netns: ns.label, ifname: dev, syscall: 'get qdisc' }, () => native.tcLinkState(ns.ref, dev));
  const egress: DeviceState = { root: st.root, child: st.child, ingress: st.ingress };
  const ifbState: DeviceState | undefined = st.ifbIndex ? { root: st.ifbRoot, child: st.ifbChild } : undefined;
  return { index: st.index, ifb: ifbName(st.index), ifbExists: st.ifbIndex !== 0, egress, ingress: st.ingress, ifbState };
}

/** Reads back a shape as links.getShape() reports it; null when the link has the kernel's default. */
export async function getShape(ns: Netns, dev: string): Promise<LinkShape | null> {
  validate.ifname(dev);
  return getShapeFromState(ns, dev, await readLinkState(ns, dev));
}

/** Applies one direction's plan on `dev` (a link, or the ifb that carries its ingress). */
async function applyDirection(ns: Netns, dev: string, want: Shape | undefined, st: DeviceState): Promise<void> {
  const ctx = { netns: ns.label, ifname: dev };
  if (!want) {
    if (st.root) await call({ ...ctx, syscall: 'delete qdisc' }, () => native.tcQdisc(ns.ref, 'delete', { dev, parent: TC_H_ROOT, handle: st.root!.handle }));
    return;
  }
  const plan = planDirection(want, currentRoot(st));
  await call({ ...ctx, syscall: 'replace qdisc' }, () => native.tcQdisc(ns.ref, 'replace', qdiscSpec(dev, plan.root)));
  if (plan.child) await call({ ...ctx, syscall: 'replace qdisc' }, () => native.tcQdisc(ns.ref, 'replace', qdiscSpec(dev, plan.child!)));
}

/** The u32 filter that sends everything arriving on a link to its ifb: one fixed handle, so replace is idempotent. */
const INGRESS_FILTER_PRIO = 1;
const INGRESS_FILTER_HANDLE = 0x80000800;

async function applyIngress(ns: Netns, dev: string, want: Shape | undefined, st: Awaited<ReturnType<typeof readLinkState>>): Promise<void> {
  const ctx = { netns: ns.label, ifname: dev };
  if (!want) {
    if (!st.ifbExists) return;
    // Deleting the ingress qdisc takes its filters with it; then the ifb goes.
    if (st.ingress) await call({ ...ctx, syscall: 'delete qdisc' }, () => native.tcQdisc(ns.ref, 'delete', { dev, parent: TC_H_INGRESS, handle: INGRESS_HANDLE }));
    await call({ ...ctx, ifname: st.ifb, syscall: 'delete link' }, () => native.linkDelete(ns.ref, st.ifb));
    return;
  }
  const created = !st.ifbExists;
  if (created) await call({ ...ctx, ifname: st.ifb, syscall: 'add link' }, () => native.linkAdd(ns.ref, { kind: 'ifb', name: st.ifb, up: true }));
  try {
    // The ifb's qdisc first: once the redirect exists, traffic meets the shape at once.
    await applyDirection(ns, st.ifb, want, created ? {} : st.ifbState ?? {});
    if (!st.ingress) await call({ ...ctx, syscall: 'add qdisc' }, () => native.tcQdisc(ns.ref, 'add', { dev, kind: 'ingress', parent: TC_H_INGRESS, handle: INGRESS_HANDLE }));
    await call({ ...ctx, syscall: 'replace filter' }, () =>
      native.tcFilter(ns.ref, 'replace', {
        dev,
        kind: 'u32',
        parent: INGRESS_HANDLE,
        prio: INGRESS_FILTER_PRIO,
        protocol: PROTOCOLS.all,
        handle: INGRESS_FILTER_HANDLE,
        keys: [{ value: 0, mask: 0, off: 0 }],
        actions: [{ kind: 'mirred', mirredAction: MIRRED['egress:redirect'], policy: TC_ACT_STOLEN, dev: st.ifb }],
      }),
    );
  } catch (e) {
    if (created) {
      if (!st.ingress) await native.tcQdisc(ns.ref, 'delete', { dev, parent: TC_H_INGRESS, handle: INGRESS_HANDLE }).catch(() => undefined);
      await native.linkDelete(ns.ref, st.ifb).catch(() => undefined);
    }
    throw e;
  }
}

/**
 * Sets a link's whole shape (egress fields, and `ingress`); null returns it to the kernel default.
 * Validation comes first. A kernel without netem refuses the first qdisc that needs it, so the
 * direction that needs netem is applied first and the refusal (EOPNOTSUPP) comes before anything
 * changed; any other failure part-way puts the previous shape back.
 */
export async function shape(ns: Netns, dev: string, spec: unknown): Promise<void> {
  validate.ifname(dev);
  const want = validateShape(spec);
  const st = await readLinkState(ns, dev);
  // undefined: a root qdisc shape() did not make; it is replaced, but cannot be put back.
  const before = await getShapeFromState(ns, dev, st).catch(() => undefined);
  const egress = want ? stripIngress(want) : undefined;
  const ingress = want?.ingress;
  const steps = [() => applyDirection(ns, dev, egress, st.egress), () => applyIngress(ns, dev, ingress, st)];
  if (ingress && needsNetem(ingress) && !(egress && needsNetem(egress))) steps.reverse();
  let done = 0;
  try {
    for (const step of steps) {
      await step();
      done++;
    }
  } catch (e) {
    if (done > 0 && before !== undefined) await restore(ns, dev, before).catch(() => undefined);
    throw e;
  }
}

async function restore(ns: Netns, dev: string, before: LinkShape | null): Promise<void> {
  const now = await readLinkState(ns, dev);
  await applyDirection(ns, dev, before ? stripIngress(before) : undefined, now.egress);
  await applyIngress(ns, dev, before?.ingress, now);
}

function stripIngress(s: LinkShape): Shape | undefined {
  const { ingress: _ingress, ...rest } = s;
  return Object.keys(rest).length ? rest : undefined;
}

async function getShapeFromState(ns: Netns, dev: string, st: Awaited<ReturnType<typeof readLinkState>>): Promise<LinkShape | null> {
  const out: LinkShape = directionShape(st.egress, dev, ns) ?? {};
  if (st.ifbExists && st.ingress && st.ifbState) {
    const ing = directionShape(st.ifbState, st.ifb, ns);
    if (ing) out.ingress = ing;
  }
  return Object.keys(out).length ? out : null;
}

/**
 * The shapes of many links of one namespace from one qdisc dump (`netns-kit status`): link name ->
 * shape, only for links that have one. A root qdisc shape() did not make is skipped, not an error.
 */
export async function linkShapes(ns: Netns, links: ReadonlyArray<{ index: number; name: string }>): Promise<Record<string, LinkShape>> {
  const qdiscs = await call({ netns: ns.label, syscall: 'list qdiscs' }, () => native.tcList(ns.ref, 'qdisc'));
  const out: Record<string, LinkShape> = {};
  if (qdiscs.every((q) => q.handle === 0)) return out;
  const byName = new Map(links.map((l) => [l.name, l.index]));
  for (const l of links) {
    if (l.name.startsWith('nkifb')) continue;
    const eg = deviceState(qdiscs, l.index);
    const s: LinkShape = (eg.root && shapeFromQdiscs(eg.root, eg.child)) || {};
    const ifbIndex = byName.get(ifbName(l.index));
    if (eg.ingress && ifbIndex !== undefined) {
      const ib = deviceState(qdiscs, ifbIndex);
      const ing = ib.root && shapeFromQdiscs(ib.root, ib.child);
      if (ing) s.ingress = ing;
    }
    if (Object.keys(s).length) out[l.name] = s;
  }
  return out;
}

/**
 * Shapes a link that was just created and so has no shape yet (bulk.createMany, topology up):
 * the same qdiscs as shape(), without reading the state first. `s` is validated (validateShape).
 */
export async function shapeNewLink(ns: Netns, dev: string, s: LinkShape): Promise<void> {
  const egress = stripIngress(s);
  if (egress) await applyDirection(ns, dev, egress, {});
  if (!s.ingress) return;
  const [link] = await call({ netns: ns.label, ifname: dev, syscall: 'get link' }, () => native.linkList(ns.ref, dev));
  await applyIngress(ns, dev, s.ingress, { index: link.index, ifb: ifbName(link.index), ifbExists: false, egress: {}, ingress: undefined, ifbState: undefined });
}

/**
 * Whether a link's shape (as getShape() reads it) is the one asked for: the fields given match
 * (rates to the byte per second, bursts to the kernel's rounding), and no direction is shaped that
 * was not asked for. Used by topology up to leave a matching link alone.
 */
export function shapeMatches(want: LinkShape | null, have: LinkShape | null): boolean {
  const dir = (w: Shape | undefined, h: Shape | undefined): boolean => {
    if (!w || Object.keys(w).length === 0) return !h || Object.keys(h).length === 0;
    if (!h) return false;
    if (w.rate !== undefined && Math.round(w.rate / 8) * 8 !== h.rate) return false;
    if ((w.rate === undefined) !== (h.rate === undefined)) return false;
    // tc keeps the bucket as a time: it reads back within a few bytes.
    if (w.burst !== undefined && Math.abs(w.burst - (h.burst ?? 0)) > 8 + w.burst / 1000) return false;
    if (w.limit !== undefined && w.limit !== h.limit) return false;
    for (const k of ['delay', 'jitter', 'loss', 'duplicate', 'corrupt', 'reorder'] as const) {
      if (Math.abs((w[k] ?? 0) - (h[k] ?? 0)) > 0.001) return false;
    }
    return true;
  };
  const w = want ?? {};
  const h = have ?? {};
  return dir(stripIngress(w), stripIngress(h)) && dir(w.ingress, h.ingress);
}
