/**
 * Network namespaces: create, open, list and delete them, compatible both ways with `ip netns`.
 *
 * A named namespace is an empty file under /run/netns with the namespace bind-mounted onto it
 * (iproute2's layout), so `ip netns list` and `ip -n NAME ...` see ours and we open theirs.
 */
import { existsSync, promises as fs, statfsSync, statSync } from 'node:fs';
import path from 'node:path';
import { call, invalid, isNotFound, NetnsError, type SystemErrorCode } from './errors';
import { Addresses } from './addresses';
import { Links } from './links';
import { Neighbors } from './neighbors';
import { native } from './native';
import { Routes } from './routes';
import { Rules } from './rules';
import { Nexthops } from './nexthops';
import { Fdb } from './fdb';
import { Sysctl } from './sysctl';
// NAT (libnftables rule model), processes and watching are loaded on first use: a short-lived
// program (the CNI plugin, started once per container) pays only for what it calls.
import type { Nat } from './nat';
import type { ExecOptions, ExecResult, SpawnOptions } from './process';
import type { ChildProcess } from 'node:child_process';
import * as validate from './validate';
import * as registry from './registry';
import { namespaceNames, RUN_DIR } from './run-dir';
import { PhaseTrace, traceOn } from './op-trace';
import type { NamespaceWatch, NamespaceWatchOptions, NetworkWatch, WatchOptions } from './watch';

/* eslint-disable @typescript-eslint/no-require-imports */
const lazy = {
  nat: () => require('./nat') as typeof import('./nat'),
  process: () => require('./process') as typeof import('./process'),
  watch: () => require('./watch') as typeof import('./watch'),
};
/* eslint-enable @typescript-eslint/no-require-imports */
import { Firewall, DEFAULT_FIREWALL_TABLE, type FirewallOptions } from './firewall';
import { Tc } from './tc';
import { NetnsDgram, NetnsNet, rawSocket, type RawSocketOptions } from './sockets';
import type { DefaultPools, NetnsDispatcherOptions, NetnsHttpAgent, NetnsHttpAgentOptions, NetnsHttpsAgent, NetnsHttpsAgentOptions } from './http-agent';
import type { Agent as UndiciAgent, RequestInfo, RequestInit, Response } from 'undici';

/** lib/http-agent.ts (http, https and, for fetch, undici) is loaded on first use: most users never need it, and it doubles the load time. */
function httpAgents(): typeof import('./http-agent') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./http-agent') as typeof import('./http-agent');
}

/** Where named namespaces live (iproute2's NETNS_RUN_DIR). */
export { RUN_DIR };

export interface CreateOptions {
  /** Bring `lo` up right away (`ip netns add` leaves it down). Default false. */
  loopbackUp?: boolean;
  /** Switch IPv6 off in the new namespace before any interface exists (net.ipv6.conf.{all,default}.disable_ipv6=1). */
  ipv6?: boolean;
  /** Further net.* sysctls written inside the namespace at creation, e.g. { 'net.ipv4.ip_forward': '1' }. */
  sysctls?: Record<string, string | number>;
  /**
   * Opt into being collected: the namespace is recorded as this process's, and once this process
   * has ended without deleting it, `gc()` (and `netns-kit gc`) removes it. For scratch namespaces
   * of tests and scripts, usually together with `await using` (which deletes it at the end of the
   * scope; `temporary` covers the crash in between). Default false: the namespace persists like
   * one made by `ip netns add` (recorded as persistent; `gc()` never removes it).
   */
  temporary?: boolean;
  /**
   * @deprecated Namespaces persist by default since 0.2.0. `persist: false` is the same as
   * `temporary: true`; `persist: true` is the default.
   */
  persist?: boolean;
}

export interface DeleteOptions {
  /** Succeed quietly when the namespace is already gone (CNI DEL semantics). */
  missingOk?: boolean;
  /**
   * Resolve only once the kernel has really destroyed the namespace: the veth peers it had in
   * other named namespaces are gone. The kernel frees a namespace asynchronously, and not at all
   * while a process or an open file still holds it; then this rejects with EBUSY after
   * `waitTimeoutMs` (default 10 s) instead of hanging. Default false (like `ip netns delete`).
   */
  wait?: boolean;
  waitTimeoutMs?: number;
}

export type OpenTarget = string | { path: string } | { pid: number };

/** Which namespace a handle was made for: the namespace file's (st_dev, st_ino), as `ip netns identify` compares them. */
export interface NamespaceIdentity {
  dev: number;
  ino: number;
}

/**
 * A network namespace. Holds no file descriptor of its own; operations find it by path.
 *
 * A handle made by {@link create} or {@link open} is bound to the namespace it was made for: when
 * its path later holds another namespace (deleted and re-created by another tool), every call
 * fails with `ESTALE` and nothing is done in the new one.
 *
 * `Name` is `string` for a namespace known by its /run/netns name (what `create`, `list` and
 * `open(name)` return: `ns.name` needs no `!`), `undefined` for one opened by pid or `current()`.
 */
export class Netns<Name extends string | undefined = string | undefined> implements AsyncDisposable {
  /** ip link / ip link add / ip link set / ip link del */
  readonly links: Links;
  /** ip address */
  readonly addresses: Addresses;
  /** ip route */
  readonly routes: Routes;
  /** ip neigh */
  readonly neighbors: Neighbors;
  /** sysctl -w net.* inside the namespace (ip netns exec NAME sysctl ...) */
  readonly sysctl: Sysctl;
  /** tc qdisc / tc class / tc filter (links.shape() is the one-call form) */
  readonly tc: Tc;
  private natDefault?: Nat;
  /**
   * How the addon is handed this namespace: the path, and for a bound handle "\0DEV:INO" after it,
   * which the addon compares where it opens the namespace (no extra system call per call).
   * @internal
   */
  readonly ref: string;
  private firewallDefault?: Firewall;

  // ---- routing beyond one table (issue 16) ----
  /** ip rule */
  readonly rules: Rules = new Rules(this);
  /** ip nexthop */
  readonly nexthops: Nexthops = new Nexthops(this);
  /** bridge fdb (bridge and vxlan forwarding entries) */
  readonly fdb: Fdb = new Fdb(this);

  /**
   * @param name  the /run/netns name, or undefined for a namespace opened by path or pid
   * @param path  the namespace file
   * @param owned true when this object created the namespace: disposing it deletes it
   * @param identity the namespace this handle is bound to (ESTALE when `path` holds another one)
   */
  constructor(readonly name: Name, readonly path: string, readonly owned = false, readonly identity?: NamespaceIdentity) {
    this.ref = identity ? `${path}\0${identity.dev}:${identity.ino}` : path;
    this.links = new Links(this);
    this.addresses = new Addresses(this);
    this.routes = new Routes(this);
    this.neighbors = new Neighbors(this);
    this.sysctl = new Sysctl(this);
    this.tc = new Tc(this);
  }

  /** NAT in this namespace's `inet netns_kit` table (nft ... inet netns_kit ...). */
  get nat(): Nat {
    const { Nat, DEFAULT_TABLE } = lazy.nat();
    this.natDefault ??= new Nat(this, DEFAULT_TABLE);
    return this.natDefault;
  }

  /** NAT in a table of another name, `inet NAME` (e.g. one per tool). Other tables are never touched. */
  natTable(name: string): Nat {
    return new (lazy.nat().Nat)(this, name);
  }

  // ---- firewall (lib/firewall.ts) ----

  /** Filtering in this namespace's `inet netns_kit_fw` table (nft ... inet netns_kit_fw ...). */
  get firewall(): Firewall {
    this.firewallDefault ??= new Firewall(this, DEFAULT_FIREWALL_TABLE);
    return this.firewallDefault;
  }

  /** Filtering in a table of another name, `inet NAME`, or with options (`{ bridgeNetfilter: false }`). */
  firewallTable(name: string = DEFAULT_FIREWALL_TABLE, options: FirewallOptions = {}): Firewall {
    return new Firewall(this, name, options);
  }

  /** Name for messages: the /run/netns name, else the path. */
  get label(): string {
    return this.name ?? this.path;
  }

  /**
   * Starts `cmd` inside this namespace (no shell). Equivalent to: `ip netns exec NAME cmd args...`
   * (through nsenter(1), which does not remount /sys).
   */
  spawn(cmd: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    this.checkIdentitySync('spawn');
    return lazy.process().spawn(this.path, cmd, args, options);
  }

  /** Runs `cmd` inside this namespace and collects its output. Rejects (ERR_NETNS_EXEC_FAILED) on a non-zero exit unless `check: false`. */
  async exec(cmd: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    await this.checkIdentity('exec');
    return lazy.process().exec(this.path, cmd, args, options);
  }

  // nsenter opens the path itself, after this check; the window between the two is a stat long.
  private checkIdentitySync(syscall: string): void {
    if (!this.identity) return;
    let st: { dev: number; ino: number } | undefined;
    try {
      st = statSync(this.path);
    } catch {
      st = undefined;
    }
    this.assertSame(st, syscall);
  }

  private async checkIdentity(syscall: string): Promise<void> {
    if (!this.identity) return;
    this.assertSame(await fs.stat(this.path).catch(() => undefined), syscall);
  }

  private assertSame(st: { dev: number; ino: number } | undefined, syscall: string): void {
    // Gone altogether: nsenter reports that itself (as it does for an unbound handle).
    if (!st || !this.identity || (st.dev === this.identity.dev && st.ino === this.identity.ino)) return;
    throw staleError(this, syscall);
  }

  /**
   * Deletes the namespace: unmounts and removes its /run/netns entry. Its links go with it once no
   * process and no open file keeps it alive. Equivalent to: `ip netns delete NAME`
   */
  async delete(options: DeleteOptions = {}): Promise<void> {
    if (this.name === undefined) {
      throw invalid('ERR_NETNS_INVALID_ARG', `namespace ${this.path} has no name under ${RUN_DIR}; only named namespaces can be deleted`);
    }
    await deleteByName(this.name, options, this.ref);
  }

  /**
   * Changes to this namespace's links, addresses, routes and neighbours as typed events, in the
   * shapes the list calls return. Equivalent to: `ip -n NAME monitor link address route neigh`
   * ```ts
   * for await (const e of ns.watch({ addresses: true })) if (e.type === 'address') console.log(e.action, e.address.cidr);
   * ```
   */
  watch(options: WatchOptions = {}): NetworkWatch {
    return lazy.watch().watchNetwork(this.ref, this.label, options);
  }

  // ---- sockets inside this namespace (lib/sockets.ts, lib/http-agent.ts, docs/sockets.md) ----
  private netApi?: NetnsNet;
  private dgramApi?: NetnsDgram;
  private pools?: DefaultPools;

  /** TCP inside this namespace with Node's net classes: `connect()` (ip netns exec NS nc HOST PORT), `listen(server)` (nc -l). */
  get net(): NetnsNet {
    this.netApi ??= new NetnsNet(this);
    return this.netApi;
  }

  /** UDP inside this namespace: `createSocket()` gives a bound dgram.Socket (ip netns exec NS nc -u -l ADDRESS PORT). */
  get dgram(): NetnsDgram {
    this.dgramApi ??= new NetnsDgram(this);
    return this.dgramApi;
  }

  /**
   * A descriptor (tcp, udp or raw) created inside this namespace, owned by the caller.
   * Equivalent to: `ip netns exec NAME` followed by the program's own socket(2)
   */
  socket(options: RawSocketOptions): Promise<number> {
    return rawSocket(this, options);
  }

  /**
   * An `http.Agent` (or `https.Agent` with `tls: true`) whose connections start inside this
   * namespace, keep-alive like Node's. Without options, the same agent each time.
   * Equivalent to: `ip netns exec NAME curl URL`
   */
  agent(options?: NetnsHttpAgentOptions): NetnsHttpAgent;
  agent(options: NetnsHttpsAgentOptions): NetnsHttpsAgent;
  agent(options?: NetnsHttpAgentOptions | NetnsHttpsAgentOptions): NetnsHttpAgent | NetnsHttpsAgent {
    const h = httpAgents();
    if (options !== undefined) return h.createAgent(this, options);
    this.pools ??= new h.DefaultPools();
    this.pools.http ??= new h.NetnsHttpAgent(this);
    return this.pools.http;
  }

  /** `agent({ tls: true, ...options })`: an https.Agent. Equivalent to: `ip netns exec NAME curl https://...` */
  httpsAgent(options?: Omit<NetnsHttpsAgentOptions, 'tls'>): NetnsHttpsAgent {
    const h = httpAgents();
    if (options !== undefined) return new h.NetnsHttpsAgent(this, options);
    this.pools ??= new h.DefaultPools();
    this.pools.https ??= new h.NetnsHttpsAgent(this);
    return this.pools.https;
  }

  /** An undici Agent (a fetch dispatcher) whose connections start inside this namespace; close() it when done. */
  dispatcher(options?: NetnsDispatcherOptions): UndiciAgent {
    return httpAgents().createDispatcher(this, options);
  }

  /**
   * fetch() with its connections made inside this namespace (one keep-alive pool per handle).
   * Equivalent to: `ip netns exec NAME curl URL`
   */
  fetch(input: RequestInfo, init?: RequestInit): Promise<Response> {
    const h = httpAgents();
    this.pools ??= new h.DefaultPools();
    this.pools.dispatcher ??= h.createDispatcher(this);
    return h.fetchWith(this.pools.dispatcher, input, init);
  }

  /** Closes the idle keep-alive connections of `agent()`, `httpsAgent()` and `fetch()` (sockets keep a namespace alive). */
  async closeConnections(): Promise<void> {
    await this.pools?.close();
  }

  /** Closes this namespace's cached netlink socket (it is reopened on the next call). */
  release(): void {
    native.releaseSockets(this.path);
  }

  /** `await using ns = await netns.create(...)`: deletes what we created, releases what we opened. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.closeConnections();
    if (this.owned) await this.delete({ missingOk: true });
    else this.release();
  }

  toString(): string {
    return `Netns(${this.label})`;
  }
}

/** ESTALE: `ns.path` now holds another namespace than the one `ns` was made for. */
function staleError(ns: Netns, syscall: string): NetnsError {
  const e = new NetnsError('ESTALE', `ESTALE: stale file handle, ${syscall} ${ns.path} now holds another namespace than the one this handle was made for (netns ${ns.label})`, {
    errno: -116,
    syscall,
    netns: ns.label,
    detail: `${ns.path} now holds another namespace than the one this handle was made for`,
  });
  Error.captureStackTrace(e, staleError);
  return e;
}

function pathOf(name: string): string {
  return path.join(RUN_DIR, validate.netnsName(name));
}

function sysctlList(options: CreateOptions): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (options.ipv6 === false) {
    out.push(['net/ipv6/conf/all/disable_ipv6', '1'], ['net/ipv6/conf/default/disable_ipv6', '1']);
  } else if (options.ipv6 !== undefined) {
    validate.bool(options.ipv6, 'ipv6');
  }
  for (const [k, v] of Object.entries(options.sysctls ?? {})) {
    if (typeof v !== 'string' && typeof v !== 'number') throw invalid('ERR_NETNS_INVALID_ARG', `sysctl ${k} must be a string or number`);
    out.push([validate.sysctlKey(k), String(v)]);
  }
  return out;
}

/**
 * Creates a named namespace. Equivalent to: `ip netns add NAME`
 * Fails with EEXIST when the name is taken; a failure half-way leaves no file in /run/netns.
 *
 * Like `ip netns add`, the namespace persists: it stays when this process ends, and `gc()` never
 * removes it (it is recorded in the registry as persistent, so `netns-kit status` can say who
 * made it). With `{ temporary: true }` it is recorded as this process's instead, before it is
 * created, so `gc()` removes it once this process has died without deleting it.
 *
 * ```ts
 * const red = await netns.create('red');                                   // stays, like ip netns add
 * await using tmp = await netns.create('scratch', { temporary: true });    // deleted at scope end; gc collects it after a crash
 * ```
 */
export async function create(name: string, options: CreateOptions = {}): Promise<Netns<string>> {
  pathOf(name);
  validate.knownKeys(validate.object(options, 'create options'), 'create options', CREATE_OPTION_KEYS);
  return createOwned(name, options, createOwner(options));
}

const CREATE_OPTION_KEYS = ['loopbackUp', 'ipv6', 'sysctls', 'temporary', 'persist'];

/**
 * Who a plain `create()` records as the owner: persistent by default, this process with
 * `temporary: true` (or the deprecated `persist: false`). Contradicting both ways is refused.
 */
export function createOwner(options: Pick<CreateOptions, 'temporary' | 'persist'>): registry.Owner {
  if (options.temporary !== undefined) validate.bool(options.temporary, 'temporary');
  if (options.persist !== undefined) validate.bool(options.persist, 'persist');
  if (options.temporary !== undefined && options.persist !== undefined && options.temporary === options.persist) {
    throw invalid('ERR_NETNS_INVALID_ARG', `create options: temporary: ${options.temporary} contradicts persist: ${options.persist} (persist is deprecated: use temporary alone)`);
  }
  const temporary = options.temporary ?? (options.persist === false);
  return temporary ? registry.processOwner() : { persist: true };
}

/**
 * A creator killed between making the /run/netns file and bind-mounting the namespace onto it
 * leaves an empty, unmounted file (as `ip netns add` would). If the registry says that attempt was
 * ours — this same owner, or a process that is gone — the file is removed so the name can be used
 * again. A file nobody recorded, or one whose creator is still running, is left alone (EEXIST).
 */
export async function reclaimStaleEntry(name: string, p: string, owner: registry.Owner): Promise<void> {
  if (!existsSync(p)) return;
  const m = await registry.readNamespaceMarker(name).catch(() => undefined);
  if (!m) return;
  if (registry.sameOwner(m.owner, owner) || ('pid' in m.owner && registry.processGone(m.owner))) {
    await fs.unlink(p).catch(() => undefined);
  }
}

/** create() with an explicit registry owner (the topology planner passes `{ topology: NAME }`). */
export async function createOwned(name: string, options: CreateOptions, owner: registry.Owner): Promise<Netns<string>> {
  const p = pathOf(name);
  validate.knownKeys(validate.object(options, 'create options'), 'create options', CREATE_OPTION_KEYS);
  const sysctls = sysctlList(options);
  const loopbackUp = options.loopbackUp === undefined ? false : validate.bool(options.loopbackUp, 'loopbackUp');
  const trace = traceOn ? new PhaseTrace(`netns.create ${name}`) : undefined;
  // A live namespace of that name keeps its marker (whoever made it): the create below fails with
  // EEXIST. Otherwise a marker left there is stale and is replaced by ours.
  // A registry this process may not write (no permission, read-only /run) never blocks the
  // operation: it goes ahead unrecorded, and gc will simply never collect that namespace.
  // Checked synchronously: a statfs costs microseconds, a trip through libuv's pool a wake-up.
  const live = isNamespaceFileSync(p);
  if (!live) await reclaimStaleEntry(name, p, owner);
  const marked = !live && (await registry.markNamespace(name, owner).then(() => true, () => false));
  trace?.mark('mark');
  let identity: NamespaceIdentity;
  try {
    // lo comes up in the same job, through the socket the job opens inside the new namespace.
    identity = await call({ netns: name, syscall: 'create netns' }, () => native.netnsCreate(RUN_DIR, p, sysctls, loopbackUp));
  } catch (e) {
    if (marked) await registry.unmarkNamespace(name);
    throw e;
  }
  trace?.mark('native');
  const ns = new Netns(name, p, true, identity);
  const inode = identity.ino;
  try {
    // 0: the job could not stat what it had just mounted; the entry then stays unconfirmed,
    // which gc reads as "ours unless a newer marker names it" (never as somebody else's).
    if (marked && inode > 0) await registry.confirmNamespace(name, inode);
  } catch (e) {
    await deleteByName(name, { missingOk: true });
    throw e;
  }
  trace?.mark('confirm');
  trace?.print();
  return ns;
}

/**
 * Opens an existing namespace: a /run/netns name (made by us or by `ip netns add`), a namespace
 * file path, or a process id. Equivalent to: `ip netns exec NAME ...` / `nsenter --net=PATH`
 */
export async function open(name: string): Promise<Netns<string>>;
export async function open(target: { pid: number }): Promise<Netns<undefined>>;
export async function open(target: OpenTarget): Promise<Netns>;
export async function open(target: OpenTarget): Promise<Netns> {
  let name: string | undefined;
  let p: string;
  if (typeof target === 'string') {
    name = target;
    p = pathOf(target);
  } else if (typeof target === 'object' && target !== null && 'pid' in target) {
    p = `/proc/${validate.integer(target.pid, 'pid', 1, 2 ** 22)}/ns/net`;
  } else if (typeof target === 'object' && target !== null && 'path' in target && typeof target.path === 'string' && target.path.length > 0) {
    p = target.path;
  } else {
    throw invalid('ERR_NETNS_INVALID_ARG', 'netns.open takes a name, { path } or { pid }');
  }
  await assertNamespaceFile(p, name ?? p);
  const st = await fs.stat(p).catch(() => undefined);
  return new Netns(name, p, false, st && { dev: st.dev, ino: st.ino });
}

const NSFS_MAGIC = 0x6e736673;

/** True when `p` is a live namespace file. */
export async function isNamespaceFile(p: string): Promise<boolean> {
  try {
    return Number((await fs.statfs(p)).type) === NSFS_MAGIC;
  } catch {
    return false;
  }
}

function isNamespaceFileSync(p: string): boolean {
  try {
    return Number(statfsSync(p).type) === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/** ENOENT unless `p` is a live namespace file (an unmounted /run/netns entry is not). */
async function assertNamespaceFile(p: string, label: string): Promise<void> {
  let type: number | bigint | undefined;
  try {
    type = (await fs.statfs(p)).type;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new NetnsError((err.code ?? 'EIO') as SystemErrorCode, `${err.code}: no such namespace, open netns ${p}`, { errno: err.errno, syscall: 'open netns', netns: label });
  }
  if (Number(type) !== NSFS_MAGIC) {
    throw new NetnsError('ENOENT', `ENOENT: not a network namespace, open netns ${p}`, { errno: -2, syscall: 'open netns', netns: label });
  }
}

/**
 * Closes the cached netlink socket of the namespace at path `p`, if there is one (a socket keeps
 * its namespace alive). For long-running processes that touch namespaces they hold no handle of,
 * such as the CNI resident helper with each call's container namespace.
 * @internal
 */
export function releaseSocketsOf(p: string): void {
  native.releaseSockets(p);
}

/** The namespace this process runs in (the machine's own, usually): handle with care. */
export function current(): Netns<undefined> {
  return new Netns(undefined, `/proc/${process.pid}/ns/net`, false);
}

/** Named namespaces in /run/netns, ours and iproute2's. Equivalent to: `ip netns list` */
export async function list(): Promise<Netns<string>[]> {
  return (await namespaceNames()).map((n) => new Netns(n, path.join(RUN_DIR, n), false));
}

/** `ref`: a bound handle's (ESTALE instead of deleting another namespace that took the name). */
async function deleteByName(name: string, options: DeleteOptions, ref?: string): Promise<void> {
  const p = pathOf(name);
  validate.knownKeys(validate.object(options, 'delete options'), 'delete options', ['missingOk', 'wait', 'waitTimeoutMs']);
  const timeout = options.waitTimeoutMs === undefined ? 10_000 : validate.integer(options.waitTimeoutMs, 'waitTimeoutMs', 0, 3_600_000);
  let peers: Array<{ ns: Netns; index: number }> = [];
  if (options.wait) {
    const links = await new Netns(name, p).links.list().catch(() => []);
    peers = links.filter((l) => l.peer?.netns !== undefined).map((l) => ({ ns: new Netns(l.peer!.netns, path.join(RUN_DIR, l.peer!.netns!)), index: l.peer!.index }));
  }
  try {
    await call({ netns: name, syscall: 'delete netns' }, () => native.netnsDelete(ref ?? p));
  } catch (e) {
    // A bound handle whose namespace was replaced: ours is gone, and the new one (and its
    // registry marker) belongs to someone else.
    if (options.missingOk && e instanceof NetnsError && e.code === 'ESTALE') return;
    if (!(options.missingOk && isNotFound(e))) throw e;
  }
  // After the object is gone, never before: a crash in between leaves a marker without a
  // namespace, which gc drops, rather than a namespace nobody knows about.
  await registry.unmarkNamespace(name).catch(() => undefined);
  if (peers.length) await waitForPeersGone(name, peers, timeout);
}

/** Polls (with backoff) until the given links in other namespaces have disappeared. */
async function waitForPeersGone(name: string, peers: Array<{ ns: Netns; index: number }>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    const remaining: typeof peers = [];
    for (const peer of peers) {
      const links = await native.linkList(peer.ns.path).catch(() => []);
      if (links.some((l) => l.index === peer.index)) remaining.push(peer);
    }
    if (remaining.length === 0) return;
    if (Date.now() >= deadline) {
      throw new NetnsError('EBUSY', `EBUSY: namespace ${name} was unmounted but is still alive after ${timeoutMs} ms (a process or an open file holds it), delete netns`, {
        errno: -16,
        syscall: 'delete netns',
        netns: name,
      });
    }
    peers = remaining;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
}

/** Deletes a named namespace. Equivalent to: `ip netns delete NAME` */
export function remove(name: string, options: DeleteOptions = {}): Promise<void> {
  return deleteByName(name, options);
}

/**
 * Named namespaces appearing and disappearing under /run/netns, made by us or any other tool.
 * Equivalent to: `ip netns monitor`
 */
export function watch(options: NamespaceWatchOptions = {}): NamespaceWatch {
  return lazy.watch().watchNamespaces(RUN_DIR, options);
}

export { NetnsError };
