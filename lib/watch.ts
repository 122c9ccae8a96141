/**
 * Typed event streams: links, addresses, routes and neighbours of one namespace (`ip monitor`),
 * and named namespaces appearing and disappearing under /run/netns (`ip netns monitor`).
 *
 * How a consumer keeps an exact copy of the kernel's state (see {@link NetworkState}):
 * - `resync` events carry the complete current lists of the kinds watched: replace your state
 *   with them. The first event is one (`reason: 'initial'`) when `initial: true` is asked for;
 *   later ones (`reason: 'overflow'`) mean events were lost (the kernel's buffer overflowed, or the
 *   consumer fell `queueLimit` events behind) and the stream restarted from a fresh dump.
 * - `new` / `change` carry the whole object: store it under its key ({@link linkKey} ...);
 *   `delete`: remove that key. Applying an event twice is harmless, which is what makes the
 *   dump-then-events restart exact: events that raced with the dump may be seen again.
 */
import { readdirSync, statfsSync, watch as fsWatch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { type Address, toAddress } from './addresses';
import { AF } from './ip';
import { call, fromNative, invalid, type NetnsError } from './errors';
import { type Link, peerNamespaceNames, toLink } from './links';
import { native, type NativeLink, type NativeWatchBatch, type NativeWatchEvent } from './native';
import { type Neighbor, toNeighbor } from './neighbors';
import { type Route, toRoute } from './routes';
import { type FdbEntry, toFdbEntry } from './fdb';
import * as validate from './validate';

export type WatchAction = 'new' | 'change' | 'delete';

export interface LinkEvent {
  type: 'link';
  action: WatchAction;
  link: Link;
}
export interface AddressEvent {
  type: 'address';
  action: WatchAction;
  address: Address;
}
export interface RouteEvent {
  type: 'route';
  action: WatchAction;
  route: Route;
}
export interface NeighborEvent {
  type: 'neighbor';
  action: WatchAction;
  neighbor: Neighbor;
}
/** A bridge/vxlan forwarding entry appeared, changed or went (`bridge monitor fdb`); only with `fdb: true`. */
export interface FdbEvent {
  type: 'fdb';
  action: WatchAction;
  fdb: FdbEntry;
}
/** The complete current state of the kinds watched (the others are absent): replace yours with it. */
export interface ResyncEvent {
  type: 'resync';
  /** 'initial': the stream's start (only with `initial: true`); 'overflow': events were lost */
  reason: 'initial' | 'overflow';
  links?: Link[];
  addresses?: Address[];
  /** every table (as `routes.list({ table: 'all' })`) */
  routes?: Route[];
  neighbors?: Neighbor[];
  fdb?: FdbEntry[];
}
export type NetworkEvent = LinkEvent | AddressEvent | RouteEvent | NeighborEvent | FdbEvent | ResyncEvent;

export interface WatchOptions {
  /** Which kinds to watch. When none is set to true, every kind not set to false is watched. */
  links?: boolean;
  addresses?: boolean;
  routes?: boolean;
  neighbors?: boolean;
  /**
   * Bridge/vxlan forwarding entries (`fdb` events). Only when set to true: a bridge learns an
   * entry per frame source, which streams of the other kinds do not want.
   */
  fdb?: boolean;
  /** Start with a `resync` event (reason 'initial') carrying the current state. Default false. */
  initial?: boolean;
  /** Aborting ends the iteration: the pending and next `next()` reject with ERR_NETNS_ABORTED. */
  signal?: AbortSignal;
  /**
   * Events waiting for the consumer before the stream stops reading the kernel (default 10,000).
   * The kernel then buffers up to `receiveBuffer`; beyond that it drops, and the stream resyncs.
   */
  queueLimit?: number;
  /** Receive buffer of the subscription's socket, bytes (default 4 MiB; the kernel doubles it). */
  receiveBuffer?: number;
}

export const DEFAULT_QUEUE_LIMIT = 10_000;
export const DEFAULT_RECEIVE_BUFFER = 4 << 20;

/** Identity of a link in its namespace: the interface index. */
export function linkKey(l: Pick<Link, 'index'>): number {
  return l.index;
}
/** Identity of an address: its link and its address/prefix. */
export function addressKey(a: Pick<Address, 'index' | 'cidr'>): string {
  return `${a.index} ${a.cidr}`;
}
/**
 * Identity of a route as the kernel keys it: table, destination and metric; IPv6 keeps one route
 * per device for the same prefix (e.g. fe80::/64 on every link), so its device is part of the key.
 */
export function routeKey(r: Pick<Route, 'family' | 'table' | 'to' | 'metric' | 'dev'>): string {
  return `${r.family} ${r.table} ${r.to} ${r.metric}${r.family === 6 ? ` ${r.dev ?? ''}` : ''}`;
}
/** Identity of a neighbour entry: its link and its IP address. */
export function neighborKey(n: Pick<Neighbor, 'index' | 'address'>): string {
  return `${n.index} ${n.address}`;
}

/** Identity of an FDB entry: device, MAC, VLAN, remote (vxlan keeps one entry per remote) and table. */
export function fdbKey(f: Pick<FdbEntry, 'index' | 'mac' | 'vlan' | 'dst' | 'vni' | 'self'>): string {
  return `${f.index} ${f.mac} ${f.vlan ?? 0} ${f.dst ?? ''} ${f.vni ?? 0} ${f.self ? 'self' : 'master'}`;
}

/**
 * The state a stream describes, kept current by {@link NetworkState.apply}: after applying every
 * event its maps equal fresh `links.list()`, `addresses.list()`, `routes.list({ table: 'all' })`
 * and `neighbors.list()` (for the kinds watched).
 */
export class NetworkState {
  readonly links = new Map<number, Link>();
  readonly addresses = new Map<string, Address>();
  readonly routes = new Map<string, Route>();
  readonly neighbors = new Map<string, Neighbor>();
  readonly fdb = new Map<string, FdbEntry>();

  apply(e: NetworkEvent): void {
    switch (e.type) {
      case 'resync':
        if (e.links) replace(this.links, e.links, linkKey);
        if (e.addresses) replace(this.addresses, e.addresses, addressKey);
        if (e.routes) replace(this.routes, e.routes, routeKey);
        if (e.neighbors) replace(this.neighbors, e.neighbors, neighborKey);
        if (e.fdb) replace(this.fdb, e.fdb, fdbKey);
        return;
      case 'link':
        return update(this.links, linkKey(e.link), e.link, e.action);
      case 'address':
        return update(this.addresses, addressKey(e.address), e.address, e.action);
      case 'route':
        return update(this.routes, routeKey(e.route), e.route, e.action);
      case 'neighbor':
        return update(this.neighbors, neighborKey(e.neighbor), e.neighbor, e.action);
      case 'fdb':
        return update(this.fdb, fdbKey(e.fdb), e.fdb, e.action);
    }
  }
}

function replace<K, V>(m: Map<K, V>, values: readonly V[], key: (v: V) => K): void {
  m.clear();
  for (const v of values) m.set(key(v), v);
}
function update<K, V>(m: Map<K, V>, k: K, v: V, action: WatchAction): void {
  if (action === 'delete') m.delete(k);
  else m.set(k, v);
}

const KIND_BITS = { links: 1, addresses: 2, routes: 4, neighbors: 8, fdb: 16 } as const;
type KindName = keyof typeof KIND_BITS;
const KIND_NAMES = Object.keys(KIND_BITS) as KindName[];
/** kinds watched only when asked for by name */
const OPT_IN: ReadonlySet<KindName> = new Set<KindName>(['fdb']);
/** Names of links deleted lately, for events about their addresses that follow the link's deletion. */
const GONE_NAMES_KEPT = 1024;
const IFF_UP = 0x1;

function aborted(what: string): NetnsError {
  return invalid('ERR_NETNS_ABORTED', `${what} aborted`);
}

/** Where a stream's consumer waits: a queue of values, or the end (done / failed). */
class Mailbox<T> {
  readonly queue: T[] = [];
  private waiter?: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void };
  private failure?: unknown;
  done = false;

  push(v: T): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: v, done: false });
    } else {
      this.queue.push(v);
    }
  }

  /** Ends the stream; queued values are still handed out first, then `failure` (if any) is thrown. */
  end(failure?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.failure = failure;
    if (this.waiter && this.queue.length === 0) this.settleWaiter();
  }

  /** Ends the stream now, dropping what is queued (the consumer stopped). */
  abandon(failure?: unknown): void {
    this.queue.length = 0;
    this.end(failure);
    this.settleWaiter();
  }

  take(): Promise<IteratorResult<T>> {
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift()!, done: false });
    if (this.done) {
      const f = this.failure;
      this.failure = undefined;  // thrown once; later calls just report done
      return f === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(f);
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private settleWaiter(): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (!w) return;
    const f = this.failure;
    this.failure = undefined;
    if (f === undefined) w.resolve({ value: undefined, done: true });
    else w.reject(f);
  }
}

/** IPv4 routes by key, with look-ups by link and by preferred source address. */
class Ipv4RouteIndex {
  private readonly byKey = new Map<string, { index: number; route: Route }>();
  private readonly byIndex = new Map<number, Set<string>>();
  private readonly bySource = new Map<string, Set<string>>();

  clear(): void {
    this.byKey.clear();
    this.byIndex.clear();
    this.bySource.clear();
  }

  /** Adds/replaces (a replace may move a route to another link: the key has no link) or deletes. */
  update(index: number, route: Route, del: boolean): void {
    const key = routeKey(route);
    const old = this.byKey.get(key);
    if (old) {
      this.byKey.delete(key);
      this.byIndex.get(old.index)?.delete(key);
      if (old.route.src) this.bySource.get(old.route.src)?.delete(key);
    }
    if (del) return;
    this.byKey.set(key, { index, route });
    addTo(this.byIndex, index, key);
    if (route.src) addTo(this.bySource, route.src, key);
  }

  through(index: number): Route[] {
    return [...(this.byIndex.get(index) ?? [])].map((k) => this.byKey.get(k)!.route);
  }

  withSource(address: string): Route[] {
    return [...(this.bySource.get(address) ?? [])].map((k) => this.byKey.get(k)!.route);
  }
}

function addTo<K>(m: Map<K, Set<string>>, k: K, v: string): void {
  let set = m.get(k);
  if (!set) m.set(k, (set = new Set()));
  set.add(v);
}

/**
 * An open subscription to one namespace's link/address/route/neighbour changes. Iterate it with
 * `for await`; leaving the loop (break, return, throw) or aborting the signal closes it and its
 * sockets. It keeps the process alive while open (as fs.watch does).
 */
export class NetworkWatch implements AsyncIterableIterator<NetworkEvent>, AsyncDisposable {
  /** Resolves once the subscription is live: changes made after it are reported as events. */
  readonly ready: Promise<void>;

  private readonly box = new Mailbox<NetworkEvent>();
  private readonly kinds: Set<KindName>;
  private readonly queueLimit: number;
  private readonly initial: boolean;
  private id?: number;
  private paused = false;
  /** events delivered by the addon and not yet converted */
  private unconverted = 0;
  private chain: Promise<void> = Promise.resolve();
  private closing?: Promise<void>;
  /** resolves when the addon's last batch (sockets closed) has been handled */
  private readonly closedPromise: Promise<void>;
  private closed!: () => void;
  private readyResolve!: () => void;
  private readyReject!: (e: unknown) => void;
  private readonly signal?: AbortSignal;
  private readonly onAbort = () => this.stop(aborted('watch'));

  // What the stream has told about, for new/change and for names.
  private readonly names = new Map<number, string>();
  private readonly goneNames = new Map<number, string>();
  private readonly netnsNames = new Map<number, string>();
  private readonly netnsMisses = new Set<number>();
  private readonly known = { links: new Set<number>(), addresses: new Set<string>(), routes: new Set<string>(), neighbors: new Set<string>(), fdb: new Set<string>() };
  // For the IPv4 route removals the kernel does not announce: which links are up, how many links
  // hold each IPv4 address, and the IPv4 routes by link and by source address.
  private readonly linkUp = new Map<number, boolean>();
  private readonly ipv4Addrs = new Map<string, number>();
  private readonly ipv4Routes = new Ipv4RouteIndex();

  /** @internal use `ns.watch()` */
  constructor(private readonly nsPath: string, private readonly label: string, options: WatchOptions) {
    const o = validate.object(options, 'watch options');
    validate.knownKeys(o, 'watch options', [...KIND_NAMES, 'initial', 'signal', 'queueLimit', 'receiveBuffer']);
    for (const k of KIND_NAMES) if (o[k] !== undefined) validate.bool(o[k], k);
    const named = KIND_NAMES.filter((k) => o[k] === true);
    this.kinds = new Set(named.length ? named : KIND_NAMES.filter((k) => o[k] !== false && !OPT_IN.has(k)));
    if (this.kinds.size === 0) throw invalid('ERR_NETNS_INVALID_ARG', 'watch needs at least one of links, addresses, routes, neighbors');
    this.initial = o.initial === undefined ? false : validate.bool(o.initial, 'initial');
    this.queueLimit = o.queueLimit === undefined ? DEFAULT_QUEUE_LIMIT : validate.integer(o.queueLimit, 'queueLimit', 1, 10_000_000);
    const receiveBuffer = o.receiveBuffer === undefined ? DEFAULT_RECEIVE_BUFFER : validate.integer(o.receiveBuffer, 'receiveBuffer', 1024, 2 ** 30);
    const signal = o.signal as AbortSignal | undefined;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('ERR_NETNS_INVALID_ARG', 'signal must be an AbortSignal');
    this.signal = signal;

    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => {});  // the failure is also thrown by next(); an unawaited ready must not crash
    this.closedPromise = new Promise<void>((resolve) => (this.closed = resolve));
    if (signal?.aborted) {
      this.closing = Promise.resolve();
      this.closed();
      this.box.end(aborted('watch'));
      this.readyReject(aborted('watch'));
      return;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    let bits = 0;
    for (const k of this.kinds) bits |= KIND_BITS[k];
    call({ netns: label, syscall: 'watch' }, () => native.watchOpen(nsPath, { kinds: bits, receiveBuffer }, (b) => this.onBatch(b))).then(
      (id) => {
        this.id = id;
        if (this.closing) native.watchClose(id);  // stopped while opening
        else if (this.paused) native.watchPause(id, true);
      },
      (e: unknown) => {
        this.closed();
        this.fail(e);
      },
    );
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<NetworkEvent>> {
    const r = this.box.take();
    this.maybeResume();
    return r;
  }

  /** Closes the subscription (what `break` calls). Resolves once its sockets are closed. */
  async return(): Promise<IteratorResult<NetworkEvent>> {
    await this.close();
    return { value: undefined, done: true };
  }

  /** Closes the subscription and its sockets; pending and later `next()` calls report done. */
  close(): Promise<void> {
    return this.stop(undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private stop(failure: unknown): Promise<void> {
    this.box.abandon(failure);
    this.readyReject(failure ?? aborted('watch'));
    if (!this.closing) {
      this.signal?.removeEventListener('abort', this.onAbort);
      if (this.id !== undefined) native.watchClose(this.id);
      this.closing = this.closedPromise;
    }
    return this.closing;
  }

  private fail(e: unknown): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.box.end(e);
    this.readyReject(e);
  }

  private onBatch(b: NativeWatchBatch): void {
    if (b.closed) {
      // Sockets are closed: whoever awaits close() may go on.
      this.chain = this.chain.then(() => {
        if (b.error) this.fail(fromNative(b.error, { netns: this.label, syscall: 'watch' }, undefined));
        else this.box.end();
        this.closed();
      });
      return;
    }
    if (this.box.done) return;
    this.unconverted += b.events.length;
    this.chain = this.chain.then(() => this.convert(b)).catch((e: unknown) => {
      void this.stop(e);  // not awaited: the closing batch queues behind this very step
    });
    this.maybePause();
  }

  private backlog(): number {
    return this.box.queue.length + this.unconverted;
  }

  private maybePause(): void {
    if (this.paused || this.backlog() < this.queueLimit) return;
    this.paused = true;
    if (this.id !== undefined) native.watchPause(this.id, true);
  }

  private maybeResume(): void {
    if (!this.paused || this.box.done || this.backlog() > this.queueLimit / 2) return;
    this.paused = false;
    if (this.id !== undefined) native.watchPause(this.id, false);
  }

  private async convert(b: NativeWatchBatch): Promise<void> {
    if (this.box.done) return;
    if (b.resync) {
      const r = b.resync;
      this.names.clear();
      this.goneNames.clear();
      for (const l of r.links) this.names.set(l.index, l.name);
      this.netnsMisses.clear();
      await this.learnNetnsNames(r.links);
      const ev: ResyncEvent = { type: 'resync', reason: r.reason };
      if (this.kinds.has('links')) ev.links = r.links.map((l) => toLink(l, this.names, this.netnsNames));
      if (this.kinds.has('addresses')) ev.addresses = r.addrs.map((a) => toAddress(a, this.names));
      if (this.kinds.has('routes')) ev.routes = r.routes.map((x) => toRoute(x, this.names));
      if (this.kinds.has('neighbors')) ev.neighbors = r.neighs.map((n) => toNeighbor(n, this.names)).filter((n): n is Neighbor => n !== undefined);
      if (this.kinds.has('fdb')) ev.fdb = (r.fdb ?? []).map((f) => toFdbEntry(f, this.names));
      this.known.links = new Set((ev.links ?? []).map(linkKey));
      this.known.addresses = new Set((ev.addresses ?? []).map(addressKey));
      this.known.routes = new Set((ev.routes ?? []).map(routeKey));
      this.known.neighbors = new Set((ev.neighbors ?? []).map(neighborKey));
      this.known.fdb = new Set((ev.fdb ?? []).map(fdbKey));
      this.linkUp.clear();
      for (const l of r.links) this.linkUp.set(l.index, (l.flags & IFF_UP) !== 0);
      this.ipv4Addrs.clear();
      for (const a of r.addrs) if (a.family === AF[4]) this.ipv4Addrs.set(a.address, (this.ipv4Addrs.get(a.address) ?? 0) + 1);
      this.ipv4Routes.clear();
      if (ev.routes) r.routes.forEach((x, i) => this.ipv4Routes.update(x.index, ev.routes![i], false));
      if (r.reason === 'overflow') {
        // What is still queued predates the loss; the dump supersedes it (drop + resync).
        this.box.queue.length = 0;
        this.box.push(ev);
      } else {
        if (this.initial) this.box.push(ev);
        this.readyResolve();
      }
    }
    for (const e of b.events) {
      this.unconverted--;
      for (const out of await this.toEvents(e)) this.box.push(out);
    }
    this.maybePause();
  }

  private async toEvents(e: NativeWatchEvent): Promise<NetworkEvent[]> {
    switch (e.kind) {
      case 'link': {
        const l = e.link;
        const wasUp = this.linkUp.get(l.index) ?? false;
        const isUp = !e.del && (l.flags & IFF_UP) !== 0;
        // IPv4 drops routes through a link that goes down (all but host-scope ones) or away,
        // without RTM_DELROUTE: say it for the kernel, before the link event that caused it.
        const out: NetworkEvent[] = e.del
          ? this.dropRoutes(this.ipv4Routes.through(l.index))
          : wasUp && !isUp
            ? this.dropRoutes(this.ipv4Routes.through(l.index).filter((r) => r.scope !== 'host'))
            : [];
        if (e.del) {
          this.linkUp.delete(l.index);
          this.names.delete(l.index);
          this.goneNames.set(l.index, l.name);
          if (this.goneNames.size > GONE_NAMES_KEPT) this.goneNames.delete(this.goneNames.keys().next().value!);
        } else {
          this.linkUp.set(l.index, isUp);
          this.names.set(l.index, l.name);
          this.goneNames.delete(l.index);
          await this.learnNetnsNames([l]);
        }
        if (this.kinds.has('links')) {
          const link = toLink(l, this.names, this.netnsNames);
          out.push({ type: 'link', action: this.action(this.known.links, linkKey(link), e.del), link });
        }
        return out;
      }
      case 'addr': {
        // Delivered when routes are watched too, for the bookkeeping below.
        const address = toAddress(e.addr, this.namesWithGone(e.addr.index));
        const out: NetworkEvent[] = [];
        if (this.kinds.has('addresses')) {
          out.push({ type: 'address', action: this.action(this.known.addresses, addressKey(address), e.del), address });
        }
        if (address.family === 4) {
          const count = (this.ipv4Addrs.get(address.address) ?? 0) + (e.del ? -1 : 1);
          if (count > 0) this.ipv4Addrs.set(address.address, count);
          else this.ipv4Addrs.delete(address.address);
          // The last copy of an IPv4 address gone: the routes using it as source go silently.
          // (The kernel's own routes for the address are announced; only the others go unsaid.)
          if (e.del && count <= 0) out.push(...this.dropRoutes(this.ipv4Routes.withSource(address.address).filter((r) => r.protocol !== 'kernel')));
        }
        return out;
      }
      case 'route': {
        const route = toRoute(e.route, this.namesWithGone(e.route.index));
        if (route.family === 4) this.ipv4Routes.update(e.route.index, route, e.del);
        return [{ type: 'route', action: this.action(this.known.routes, routeKey(route), e.del), route }];
      }
      case 'neigh': {
        const neighbor = toNeighbor(e.neigh, this.namesWithGone(e.neigh.index));
        if (!neighbor) return [];
        return [{ type: 'neighbor', action: this.action(this.known.neighbors, neighborKey(neighbor), e.del), neighbor }];
      }
      case 'fdb': {
        const names = this.namesWithGone(e.fdb.index);
        const fdb = toFdbEntry(e.fdb, names === this.names ? names : new Map([...this.names, ...names]));
        return [{ type: 'fdb', action: this.action(this.known.fdb, fdbKey(fdb), e.del), fdb }];
      }
    }
  }

  /** 'delete' events for routes the kernel removed without saying so. */
  private dropRoutes(routes: Route[]): NetworkEvent[] {
    return routes.map((route) => {
      this.ipv4Routes.update(0, route, true);
      this.known.routes.delete(routeKey(route));
      return { type: 'route', action: 'delete', route };
    });
  }

  private action<K>(known: Set<K>, key: K, del: boolean): WatchAction {
    if (del) {
      known.delete(key);
      return 'delete';
    }
    if (known.has(key)) return 'change';
    known.add(key);
    return 'new';
  }

  /** The current names, or (for a link deleted just before) the name it had. */
  private namesWithGone(index: number): ReadonlyMap<number, string> {
    if (this.names.has(index) || !this.goneNames.has(index)) return this.names;
    return new Map([[index, this.goneNames.get(index)!]]);
  }

  private async learnNetnsNames(links: readonly NativeLink[]): Promise<void> {
    const unknown = links.filter((l) => l.linkNetnsId >= 0 && !this.netnsNames.has(l.linkNetnsId) && !this.netnsMisses.has(l.linkNetnsId));
    if (unknown.length === 0) return;
    const found = await peerNamespaceNames(this.nsPath, unknown);
    for (const [id, name] of found) this.netnsNames.set(id, name);
    for (const l of unknown) if (!found.has(l.linkNetnsId)) this.netnsMisses.add(l.linkNetnsId);
  }
}

// ---- Named namespaces (/run/netns) ----------------------------------------------------------------

export interface NamespaceEvent {
  type: 'netns';
  /** 'add': the namespace is mounted and can be opened; 'delete': its name is gone */
  action: 'add' | 'delete';
  name: string;
  path: string;
}

export interface NamespaceWatchOptions {
  /** Start with an 'add' event for every namespace that exists already. Default false. */
  initial?: boolean;
  /** Aborting ends the iteration: the pending and next `next()` reject with ERR_NETNS_ABORTED. */
  signal?: AbortSignal;
}

const NSFS_MAGIC = 0x6e736673;
/** How long a new /run/netns entry may stay an empty file (its bind mount not made yet). */
const MOUNT_WAIT_MS = 5000;
const MOUNT_POLL_MS = 20;
/** Names to re-examine before the watcher falls back to one rescan of the directory. */
const DIRTY_LIMIT = 10_000;

type EntryState = 'namespace' | 'file' | 'absent';

function entryState(p: string): EntryState {
  try {
    return Number(statfsSync(p).type) === NSFS_MAGIC ? 'namespace' : 'file';
  } catch {
    return 'absent';
  }
}

/**
 * Named namespaces appearing and disappearing in a directory (/run/netns), made by us or by any
 * other tool. Level-triggered: inotify only says which names to look at; what is reported is the
 * difference between what the consumer was told and what is there now, so memory stays bounded
 * however slow the consumer is, and a namespace that comes and goes before it is looked at may not
 * be reported at all.
 */
export class NamespaceWatch implements AsyncIterableIterator<NamespaceEvent>, AsyncDisposable {
  /** Resolves once changes are being watched (at once: inotify starts synchronously). */
  readonly ready: Promise<void> = Promise.resolve();
  private readonly seen = new Set<string>();
  private readonly dirty = new Set<string>();
  private rescan = false;
  /** entries that exist but are not mounted yet: name -> first seen (ms) */
  private readonly mounting = new Map<string, number>();
  private dirWatch?: FSWatcher;
  private parentWatch?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private wake?: () => void;
  private done = false;
  private failure?: unknown;
  private readonly signal?: AbortSignal;
  private readonly onAbort = () => this.stop(aborted('netns watch'));

  /** @internal use `netns.watch()` */
  constructor(private readonly dir: string, options: NamespaceWatchOptions = {}) {
    const o = validate.object(options, 'netns watch options');
    validate.knownKeys(o, 'netns watch options', ['initial', 'signal']);
    const initial = o.initial === undefined ? false : validate.bool(o.initial, 'initial');
    const signal = o.signal as AbortSignal | undefined;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('ERR_NETNS_INVALID_ARG', 'signal must be an AbortSignal');
    this.signal = signal;
    if (signal?.aborted) {
      this.stop(aborted('netns watch'));
      return;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    this.startWatching();
    if (initial) this.rescan = true;
    else for (const name of this.listNow()) if (entryState(path.join(dir, name)) === 'namespace') this.seen.add(name);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<NamespaceEvent>> {
    for (;;) {
      if (this.done) {
        const f = this.failure;
        this.failure = undefined;
        if (f !== undefined) throw f;
        return { value: undefined, done: true };
      }
      const ev = this.takeOne();
      if (ev) return { value: ev, done: false };
      this.schedulePoll();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  async return(): Promise<IteratorResult<NamespaceEvent>> {
    await this.close();
    return { value: undefined, done: true };
  }

  /** Stops watching (closes the inotify descriptors). */
  async close(): Promise<void> {
    this.stop(undefined);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private stop(failure: unknown): void {
    if (this.done) return;
    this.done = true;
    this.failure = failure;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.dirWatch?.close();
    this.parentWatch?.close();
    clearTimeout(this.timer);
    this.wakeUp();
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private mark(name: string | null): void {
    if (name === null || this.dirty.size >= DIRTY_LIMIT) this.rescan = true;
    else this.dirty.add(name);
    this.wakeUp();
  }

  /** Watches the directory, or its parent until the directory exists (`ip netns add` creates it). */
  private startWatching(): void {
    if (this.done) return;
    try {
      this.dirWatch = fsWatch(this.dir, { persistent: true }, (_event, name) => this.mark(name === null ? null : String(name)));
      this.dirWatch.on('error', () => this.lostDirectory());
      this.parentWatch?.close();
      this.parentWatch = undefined;
      this.rescan = true;
      this.wakeUp();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const parent = path.dirname(this.dir);
    const base = path.basename(this.dir);
    this.parentWatch = fsWatch(parent, { persistent: true }, (_event, name) => {
      if ((name === null || String(name) === base) && this.parentWatch) this.startWatching();
    });
    // The directory may have appeared between the failed watch and this one.
    if (entryState(this.dir) !== 'absent') this.startWatching();
  }

  private lostDirectory(): void {
    this.dirWatch?.close();
    this.dirWatch = undefined;
    this.rescan = true;
    this.startWatching();
  }

  private listNow(): string[] {
    try {
      return readdirSync(this.dir);
    } catch {
      return [];
    }
  }

  /** The next difference between what the consumer was told and what is there now. */
  private takeOne(): NamespaceEvent | undefined {
    if (this.rescan) {
      this.rescan = false;
      for (const name of this.listNow()) this.dirty.add(name);
      for (const name of this.seen) this.dirty.add(name);
    }
    const now = Date.now();
    for (const [name, since] of this.mounting) {
      if (now - since > MOUNT_WAIT_MS) this.mounting.delete(name);  // a plain file, not a namespace
      else this.dirty.add(name);
    }
    for (const name of this.dirty) {
      this.dirty.delete(name);
      const p = path.join(this.dir, name);
      const state = entryState(p);
      if (state === 'namespace' && !this.seen.has(name)) {
        this.mounting.delete(name);
        this.seen.add(name);
        return { type: 'netns', action: 'add', name, path: p };
      }
      if (state !== 'namespace' && this.seen.has(name)) {
        this.seen.delete(name);
        return { type: 'netns', action: 'delete', name, path: p };
      }
      if (state === 'file' && !this.mounting.has(name)) this.mounting.set(name, now);
      if (state === 'absent') this.mounting.delete(name);
    }
    return undefined;
  }

  /** An entry waiting for its bind mount gets no inotify event when mounted: look again shortly. */
  private schedulePoll(): void {
    if (this.mounting.size === 0 || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.wakeUp();
    }, MOUNT_POLL_MS);
  }
}

/** Used by `netns.watch()`; `dir` is /run/netns. */
export function watchNamespaces(dir: string, options: NamespaceWatchOptions = {}): NamespaceWatch {
  return new NamespaceWatch(dir, options);
}

/** Used by `ns.watch()`. */
export function watchNetwork(nsPath: string, label: string, options: WatchOptions = {}): NetworkWatch {
  return new NetworkWatch(nsPath, label, options);
}
