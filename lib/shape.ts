/**
 * links.shape() input: units as tc(8) writes them, validation, and the plan of qdiscs that
 * realises a shape. Pure functions only (no kernel access): unit-tested without root.
 *
 * Units, as in tc(8) (suffixes case-insensitive):
 * - rates: `bit` (or none), `kbit` `mbit` `gbit` `tbit` (x1000), `kibit` `mibit` `gibit` `tibit`
 *   (x1024), `bps` `kbps` `mbps` `gbps` `tbps` (bytes/s, x1000), `kibps` `mibps` ...; a number is bits/s.
 * - sizes: `b` (or none), `k`/`kb` `m`/`mb` `g`/`gb` (x1024), `kbit` `mbit` `gbit` (x1024 bits);
 *   a number is bytes.
 * - times: `s` `sec` `secs`, `ms` `msec` `msecs`, `us` `usec` `usecs`; a number is milliseconds.
 *   A string without a unit is refused (tc would read it as microseconds, a number here means ms).
 * - percentages: `'1%'`, `'0.5%'` or a number (percent), 0 to 100.
 */
import { invalid } from './errors';
import { describe } from './ip';

/** One direction of a link's shape, as accepted by links.shape(). */
export interface ShapeSpec {
  /** rate limit: `'10mbit'`, or bits/s */
  rate?: string | number;
  /** token bucket size: `'32kb'`, or bytes (default: 10 ms of `rate`, at least 3028 bytes) */
  burst?: string | number;
  /** longest a packet may wait in the rate limiter's queue: `'50ms'`, or ms (default 50 ms); excludes `limit` */
  latency?: string | number;
  /** queue length: bytes for a rate-only shape (tbf), packets when impairments apply (netem) */
  limit?: string | number;
  /** added delay: `'40ms'`, or ms */
  delay?: string | number;
  /** random variation of `delay`: `'5ms'`, or ms (needs `delay`) */
  jitter?: string | number;
  /** percent of packets dropped: `1`, `'0.5%'` */
  loss?: string | number;
  /** percent of packets sent twice */
  duplicate?: string | number;
  /** percent of packets with a flipped bit */
  corrupt?: string | number;
  /** percent of packets sent at once, ahead of delayed ones (needs `delay`) */
  reorder?: string | number;
}

/** A whole link's shape: egress fields at the top, ingress below `ingress`. */
export interface LinkShapeSpec extends ShapeSpec {
  ingress?: ShapeSpec | null;
}

/**
 * A validated direction, in plain units: rate in bits/s, burst and tbf limit in bytes, times in
 * ms, probabilities in percent. getShape() returns this form.
 */
export interface Shape {
  rate?: number;
  burst?: number;
  latency?: number;
  limit?: number;
  delay?: number;
  jitter?: number;
  loss?: number;
  duplicate?: number;
  corrupt?: number;
  reorder?: number;
}

export interface LinkShape extends Shape {
  ingress?: Shape;
}

const RATE_UNITS: Record<string, number> = {
  '': 1, bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12,
  kibit: 1024, mibit: 1024 ** 2, gibit: 1024 ** 3, tibit: 1024 ** 4,
  bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9, tbps: 8e12,
  kibps: 8 * 1024, mibps: 8 * 1024 ** 2, gibps: 8 * 1024 ** 3, tibps: 8 * 1024 ** 4,
};
const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3,
  kbit: 1024 / 8, mbit: 1024 ** 2 / 8, gbit: 1024 ** 3 / 8,
};
const TIME_UNITS: Record<string, number> = {
  s: 1000, sec: 1000, secs: 1000, ms: 1, msec: 1, msecs: 1, us: 0.001, usec: 0.001, usecs: 0.001,
};

/** The largest rate libnl's tbf takes: its rate is a C int of bytes/s (about 17.18 Gbit/s). */
export const MAX_RATE_BITS = (2 ** 31 - 1) * 8;
const MAX_SIZE = 2 ** 31 - 1;
/** One hour: far beyond any queue or delay that makes sense, and within netem's 32-bit ticks. */
const MAX_TIME_MS = 3_600_000;

function bad(what: string, v: unknown, hint: string) {
  return invalid('ERR_NETNS_INVALID_ARG', `${what} ${hint}, got ${describe(v)}`);
}

function split(v: string): [number, string] | undefined {
  const m = /^\s*([0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([a-z%]*)\s*$/i.exec(v);
  return m ? [Number(m[1]), m[2].toLowerCase()] : undefined;
}

/** `'10mbit'` / 10000000 -> bits per second. Equivalent to tc's rate parsing. */
export function parseRate(v: unknown, what = 'rate'): number {
  let bits: number;
  if (typeof v === 'number') bits = v;
  else if (typeof v === 'string') {
    const p = split(v);
    if (!p || RATE_UNITS[p[1]] === undefined) throw bad(what, v, "must be a rate like '10mbit', '512kbit', '1gbit', '100kbps' or a number of bits/s");
    bits = p[0] * RATE_UNITS[p[1]];
  } else throw bad(what, v, "must be a rate like '10mbit' or a number of bits/s");
  if (!Number.isFinite(bits) || bits < 8 || bits > MAX_RATE_BITS) {
    throw bad(what, v, `must be from 8 bit/s (1 byte/s) to ${MAX_RATE_BITS} bit/s`);
  }
  return Math.round(bits);
}

/** `'32kb'` / 32768 -> bytes. Equivalent to tc's size parsing. */
export function parseSize(v: unknown, what = 'size'): number {
  let bytes: number;
  if (typeof v === 'number') bytes = v;
  else if (typeof v === 'string') {
    const p = split(v);
    if (!p || SIZE_UNITS[p[1]] === undefined) throw bad(what, v, "must be a size like '32kb', '1mb', '1500b' or a number of bytes");
    bytes = p[0] * SIZE_UNITS[p[1]];
  } else throw bad(what, v, "must be a size like '32kb' or a number of bytes");
  if (!Number.isFinite(bytes) || bytes < 1 || bytes > MAX_SIZE) throw bad(what, v, `must be from 1 to ${MAX_SIZE} bytes`);
  return Math.round(bytes);
}

/** `'40ms'` / 40 -> milliseconds (fractions kept to the microsecond). */
export function parseTime(v: unknown, what = 'time'): number {
  let ms: number;
  if (typeof v === 'number') ms = v;
  else if (typeof v === 'string') {
    const p = split(v);
    if (!p || TIME_UNITS[p[1]] === undefined) throw bad(what, v, "must be a time with a unit like '40ms', '1s', '500us', or a number of ms");
    ms = p[0] * TIME_UNITS[p[1]];
  } else throw bad(what, v, "must be a time like '40ms' or a number of ms");
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TIME_MS) throw bad(what, v, `must be from 0 to ${MAX_TIME_MS} ms`);
  return Math.round(ms * 1000) / 1000;
}

/** `'1%'` / 1 -> percent, 0 to 100. */
export function parsePercent(v: unknown, what = 'percentage'): number {
  let pct: number;
  if (typeof v === 'number') pct = v;
  else if (typeof v === 'string') {
    const p = split(v);
    if (!p || (p[1] !== '%' && p[1] !== '')) throw bad(what, v, "must be a percentage like '1%' or a number from 0 to 100");
    pct = p[0];
  } else throw bad(what, v, "must be a percentage like '1%' or a number from 0 to 100");
  if (!Number.isFinite(pct) || pct < 0 || pct > 100) throw bad(what, v, 'must be from 0 to 100 percent');
  return pct;
}

const FIELDS = ['rate', 'burst', 'latency', 'limit', 'delay', 'jitter', 'loss', 'duplicate', 'corrupt', 'reorder'] as const;
const IMPAIRMENTS = ['delay', 'jitter', 'loss', 'duplicate', 'corrupt', 'reorder'] as const;

function knownKeys(o: Record<string, unknown>, what: string, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k) && o[k] !== undefined) {
      throw invalid('ERR_NETNS_INVALID_ARG', `${what} has an unknown field "${k}" (known: ${allowed.join(', ')})`);
    }
  }
}

/** True when the direction needs netem (anything beyond a rate limit). */
export function needsNetem(s: Shape): boolean {
  return IMPAIRMENTS.some((k) => s[k] !== undefined && s[k] !== 0);
}

/** Validates one direction; `undefined` when it asks for nothing. */
export function validateDirection(v: unknown, what: string): Shape | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid('ERR_NETNS_INVALID_ARG', `${what} must be an object, got ${describe(v)}`);
  const o = v as Record<string, unknown>;
  knownKeys(o, what, FIELDS);
  const s: Shape = {};
  if (o.rate !== undefined) s.rate = parseRate(o.rate, `${what} rate`);
  if (o.burst !== undefined) s.burst = parseSize(o.burst, `${what} burst`);
  if (o.latency !== undefined) s.latency = parseTime(o.latency, `${what} latency`);
  if (o.delay !== undefined) s.delay = parseTime(o.delay, `${what} delay`);
  if (o.jitter !== undefined) s.jitter = parseTime(o.jitter, `${what} jitter`);
  for (const k of ['loss', 'duplicate', 'corrupt', 'reorder'] as const) {
    if (o[k] !== undefined) s[k] = parsePercent(o[k], `${what} ${k}`);
  }
  const netem = needsNetem(s);
  if (o.limit !== undefined) {
    // tbf counts its queue in bytes, netem in packets: the same word tc uses for both.
    s.limit = netem ? packets(o.limit, `${what} limit`) : parseSize(o.limit, `${what} limit`);
  }
  if (s.latency !== undefined && s.limit !== undefined && !netem) {
    throw invalid('ERR_NETNS_INVALID_ARG', `${what}: give latency or limit, not both (tc tbf takes one of them)`);
  }
  if ((s.burst !== undefined || s.latency !== undefined) && s.rate === undefined) {
    throw invalid('ERR_NETNS_INVALID_ARG', `${what}: burst and latency belong to a rate limit; give rate too`);
  }
  if (s.jitter !== undefined && s.jitter > 0 && !s.delay) throw invalid('ERR_NETNS_INVALID_ARG', `${what}: jitter needs a delay`);
  if (s.reorder !== undefined && s.reorder > 0 && !s.delay) throw invalid('ERR_NETNS_INVALID_ARG', `${what}: reorder needs a delay (netem reorders by sending some packets undelayed)`);
  if (Object.keys(s).length === 0) return undefined;
  return s;
}

function packets(v: unknown, what: string): number {
  if (typeof v === 'string' && /^\s*[0-9]+\s*$/.test(v)) v = Number(v);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1) {
    throw bad(what, v, 'must be a number of packets (with delay, loss and the like, netem counts its queue in packets)');
  }
  return v;
}

/** Validates links.shape() input; `null` means "back to the kernel default". */
export function validateShape(v: unknown): LinkShape | null {
  if (v === null) return null;
  if (typeof v !== 'object' || v === undefined || Array.isArray(v)) {
    throw invalid('ERR_NETNS_INVALID_ARG', `shape must be an object or null, got ${describe(v)}`);
  }
  const o = v as Record<string, unknown>;
  knownKeys(o, 'shape', [...FIELDS, 'ingress']);
  const { ingress, ...egress } = o;
  const out: LinkShape = validateDirection(egress, 'shape') ?? {};
  const inShape = validateDirection(ingress, 'shape ingress');
  if (inShape) out.ingress = inShape;
  return out;
}

// ---- the plan: which qdiscs realise a direction ------------------------------------------------

/** tc handle major:minor -> the 32-bit number (`1:` is 0x10000). */
export const handle = (major: number, minor = 0): number => ((major << 16) | minor) >>> 0;
export const TC_H_ROOT = 0xffffffff;
export const TC_H_INGRESS = 0xfffffff1;
export const INGRESS_HANDLE = handle(0xffff);

/** The handles shape() uses: tbf root 1: (or 11:), netem root 2: (or 12:), tbf below netem 3:. */
const ROOT_HANDLES: Record<'tbf' | 'netem', [number, number]> = { tbf: [handle(1), handle(0x11)], netem: [handle(2), handle(0x12)] };
export const NETEM_CHILD_HANDLE = handle(3);

const DEFAULT_LATENCY_MS = 50;
/** Two full-size Ethernet frames: a bucket smaller than a frame would hold every packet forever. */
const MIN_BURST = 3028;

/** Default bucket: 10 ms worth of the rate, at least two frames. */
export function defaultBurst(rateBits: number): number {
  return Math.max(MIN_BURST, Math.ceil(rateBits / 8 / 100));
}

/** Plain options of one qdisc, in the addon's units (bytes/s, bytes, microseconds, u32 probabilities). */
export interface QdiscOptions {
  rate?: number;
  burst?: number;
  limit?: number;
  latency?: number;
  delay?: number;
  jitter?: number;
  loss?: number;
  duplicate?: number;
  corrupt?: number;
  reorder?: number;
}

export interface PlannedQdisc {
  kind: 'tbf' | 'netem';
  parent: number;
  handle: number;
  options: QdiscOptions;
}

export interface DirectionPlan {
  root: PlannedQdisc;
  /** a tbf below netem, when impairments and a rate are asked for together */
  child?: PlannedQdisc;
}

/** The root qdisc on a device now (from a qdisc dump), as much as the plan needs. */
export interface CurrentRoot {
  kind: string;
  handle: number;
  /** a tbf child below a netem root */
  hasChild: boolean;
}

const PROB_MAX = 0xffffffff;
/** Percent -> the kernel's 32-bit probability (as tc computes it). */
export const percentToProb = (p: number): number => Math.min(PROB_MAX, Math.round((p / 100) * PROB_MAX));
/** The kernel's 32-bit probability -> percent, to 4 decimals. */
export const probToPercent = (v: number): number => Math.round((v / PROB_MAX) * 100 * 1e4) / 1e4;

function tbfOptions(s: Shape): QdiscOptions {
  const rate = s.rate!;
  const o: QdiscOptions = { rate: Math.round(rate / 8), burst: s.burst ?? defaultBurst(rate) };
  // Below netem, `limit` counted netem's packets; the tbf keeps its latency-derived queue.
  if (s.limit !== undefined && !needsNetem(s)) o.limit = s.limit;
  else o.latency = Math.round((s.latency ?? DEFAULT_LATENCY_MS) * 1000);
  return o;
}

/**
 * Qdiscs for one direction. Rate only: a tbf at the root. Impairments: a netem at the root, with a
 * tbf below it when a rate is asked for too (the layout of the netem documentation).
 *
 * Re-shaping replaces atomically: the root handle is the current one when the kind (and, for
 * netem, the presence of the tbf child) stays the same — the kernel then changes the qdisc in
 * place — and the other handle of the kind's pair otherwise, so the kernel builds the new qdisc
 * and swaps it in with one graft (`tc qdisc replace`), never passing through "no shape".
 */
export function planDirection(s: Shape, current: CurrentRoot | undefined): DirectionPlan {
  const kind = needsNetem(s) ? 'netem' : 'tbf';
  const wantsChild = kind === 'netem' && s.rate !== undefined;
  const [a, b] = ROOT_HANDLES[kind];
  let h = a;
  if (current) {
    const sameShape = current.kind === kind && (kind === 'tbf' || current.hasChild === wantsChild);
    if (sameShape) h = current.handle;
    else h = current.handle === a ? b : a;
  }
  if (kind === 'tbf') return { root: { kind, parent: TC_H_ROOT, handle: h, options: tbfOptions(s) } };
  const n: QdiscOptions = {};
  if (s.delay) n.delay = Math.round(s.delay * 1000);
  if (s.jitter) n.jitter = Math.round(s.jitter * 1000);
  if (s.loss) n.loss = percentToProb(s.loss);
  if (s.duplicate) n.duplicate = percentToProb(s.duplicate);
  if (s.corrupt) n.corrupt = percentToProb(s.corrupt);
  if (s.reorder) n.reorder = percentToProb(s.reorder);
  if (s.limit !== undefined) n.limit = s.limit;
  const plan: DirectionPlan = { root: { kind, parent: TC_H_ROOT, handle: h, options: n } };
  if (wantsChild) plan.child = { kind: 'tbf', parent: (h | 1) >>> 0, handle: NETEM_CHILD_HANDLE, options: tbfOptions(s) };
  return plan;
}

/** A qdisc as read back (addon units) -> the Shape fields it stands for. */
export function shapeFromQdiscs(root: { kind: string; options: Record<string, number> }, child?: { kind: string; options: Record<string, number> }): Shape | undefined {
  const s: Shape = {};
  const tbf = root.kind === 'tbf' ? root : child?.kind === 'tbf' ? child : undefined;
  if (root.kind === 'netem') {
    const o = root.options;
    if (o.delay) s.delay = Math.round(o.delay) / 1000;
    if (o.jitter) s.jitter = Math.round(o.jitter) / 1000;
    if (o.loss) s.loss = probToPercent(o.loss);
    if (o.duplicate) s.duplicate = probToPercent(o.duplicate);
    if (o.corrupt) s.corrupt = probToPercent(o.corrupt);
    if (o.reorder) s.reorder = probToPercent(o.reorder);
    if (o.limit > 0) s.limit = o.limit;
  } else if (root.kind !== 'tbf') {
    return undefined;
  }
  if (tbf) {
    s.rate = tbf.options.rate * 8;
    s.burst = tbf.options.burst;
    if (root.kind === 'tbf') s.limit = tbf.options.limit;
  }
  return s;
}

/** The ifb device that carries a link's ingress shaping, named from its ifindex so it is found again. */
export function ifbName(ifindex: number): string {
  return `nkifb${ifindex}`;
}

/** bits/s as tc prints rates: 10mbit, 1.5gbit, 800kbit, 96bit. */
export function formatRate(bits: number): string {
  for (const [unit, f] of [['gbit', 1e9], ['mbit', 1e6], ['kbit', 1e3]] as const) {
    if (bits >= f) return `${Math.round((bits / f) * 1000) / 1000}${unit}`;
  }
  return `${bits}bit`;
}

function formatDirection(s: Shape): string {
  const parts: string[] = [];
  if (s.rate !== undefined) parts.push(`rate ${formatRate(s.rate)}`);
  if (s.delay !== undefined) parts.push(`delay ${s.delay}ms${s.jitter ? ` ±${s.jitter}ms` : ''}`);
  for (const k of ['loss', 'duplicate', 'corrupt', 'reorder'] as const) if (s[k]) parts.push(`${k} ${s[k]}%`);
  return parts.join(' ');
}

/** One line for tables (`netns-kit status`): "rate 10mbit delay 40ms loss 1% | in: rate 4mbit"; '-' when unshaped. */
export function formatShape(s: LinkShape | null | undefined): string {
  if (!s) return '-';
  const out = formatDirection(s);
  const inText = s.ingress ? formatDirection(s.ingress) : '';
  if (out && inText) return `${out} | in: ${inText}`;
  if (inText) return `in: ${inText}`;
  return out || '-';
}
