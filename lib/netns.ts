/**
 * Network namespaces: create, open, list and delete them, compatible both ways with `ip netns`.
 *
 * A named namespace is an empty file under /run/netns with the namespace bind-mounted onto it
 * (iproute2's layout), so `ip netns list` and `ip -n NAME ...` see ours and we open theirs.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { call, invalid, isNotFound, NetnsError } from './errors';
import { Addresses } from './addresses';
import { Links } from './links';
import { Neighbors } from './neighbors';
import { native } from './native';
import { Routes } from './routes';
import { Sysctl } from './sysctl';
import { Nat, DEFAULT_TABLE } from './nat';
import { exec, spawn, type ExecOptions, type ExecResult, type SpawnOptions } from './process';
import type { ChildProcess } from 'node:child_process';
import * as validate from './validate';
import * as registry from './registry';
import { namespaceNames, RUN_DIR } from './run-dir';
import { watchNamespaces, watchNetwork, type NamespaceWatch, type NamespaceWatchOptions, type NetworkWatch, type WatchOptions } from './watch';

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
   * Keep the namespace when this process ends: `gc()` never collects it (it is recorded as
   * persistent in the registry). Without it, a namespace whose creating process has died
   * without deleting it counts as lost and `gc()` removes it. Default false.
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

/** A network namespace. Holds no file descriptor of its own; operations find it by path. */
export class Netns implements AsyncDisposable {
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
  private natDefault?: Nat;

  /**
   * @param name  the /run/netns name, or undefined for a namespace opened by path or pid
   * @param path  the namespace file
   * @param owned true when this object created the namespace: disposing it deletes it
   */
  constructor(readonly name: string | undefined, readonly path: string, readonly owned = false) {
    this.links = new Links(this);
    this.addresses = new Addresses(this);
    this.routes = new Routes(this);
    this.neighbors = new Neighbors(this);
    this.sysctl = new Sysctl(this);
  }

  /** NAT in this namespace's `inet netns_kit` table (nft ... inet netns_kit ...). */
  get nat(): Nat {
    this.natDefault ??= new Nat(this, DEFAULT_TABLE);
    return this.natDefault;
  }

  /** NAT in a table of another name, `inet NAME` (e.g. one per tool). Other tables are never touched. */
  natTable(name: string): Nat {
    return new Nat(this, name);
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
    return spawn(this.path, cmd, args, options);
  }

  /** Runs `cmd` inside this namespace and collects its output. Rejects (ERR_NETNS_EXEC_FAILED) on a non-zero exit unless `check: false`. */
  exec(cmd: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    return exec(this.path, cmd, args, options);
  }

  /**
   * Deletes the namespace: unmounts and removes its /run/netns entry. Its links go with it once no
   * process and no open file keeps it alive. Equivalent to: `ip netns delete NAME`
   */
  async delete(options: DeleteOptions = {}): Promise<void> {
    if (this.name === undefined) {
      throw invalid('ERR_NETNS_INVALID_ARG', `namespace ${this.path} has no name under ${RUN_DIR}; only named namespaces can be deleted`);
    }
    await deleteByName(this.name, options);
  }

  /**
   * Changes to this namespace's links, addresses, routes and neighbours as typed events, in the
   * shapes the list calls return. Equivalent to: `ip -n NAME monitor link address route neigh`
   * ```ts
   * for await (const e of ns.watch({ addresses: true })) if (e.type === 'address') console.log(e.action, e.address.cidr);
   * ```
   */
  watch(options: WatchOptions = {}): NetworkWatch {
    return watchNetwork(this.path, this.label, options);
  }

  /** Closes this namespace's cached netlink socket (it is reopened on the next call). */
  release(): void {
    native.releaseSockets(this.path);
  }

  /** `await using ns = await netns.create(...)`: deletes what we created, releases what we opened. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.owned) await this.delete({ missingOk: true });
    else this.release();
  }

  toString(): string {
    return `Netns(${this.label})`;
  }
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
 * The namespace is recorded in the registry (lib/registry.ts) before it is created, owned by this
 * process (or persistent with `persist: true`), so `gc()` can find it if this process dies
 * without deleting it.
 */
export async function create(name: string, options: CreateOptions = {}): Promise<Netns> {
  pathOf(name);
  validate.knownKeys(validate.object(options, 'create options'), 'create options', ['loopbackUp', 'ipv6', 'sysctls', 'persist']);
  if (options.persist !== undefined) validate.bool(options.persist, 'persist');
  return createOwned(name, options, options.persist ? { persist: true } : registry.processOwner());
}

/**
 * A creator killed between making the /run/netns file and bind-mounting the namespace onto it
 * leaves an empty, unmounted file (as `ip netns add` would). If the registry says that attempt was
 * ours — this same owner, or a process that is gone — the file is removed so the name can be used
 * again. A file nobody recorded, or one whose creator is still running, is left alone (EEXIST).
 */
export async function reclaimStaleEntry(name: string, p: string, owner: registry.Owner): Promise<void> {
  if (!(await fs.stat(p).then(() => true, () => false))) return;
  const m = await registry.readNamespaceMarker(name).catch(() => undefined);
  if (!m) return;
  if (registry.sameOwner(m.owner, owner) || ('pid' in m.owner && registry.processGone(m.owner))) {
    await fs.unlink(p).catch(() => undefined);
  }
}

/** create() with an explicit registry owner (the topology planner passes `{ topology: NAME }`). */
export async function createOwned(name: string, options: CreateOptions, owner: registry.Owner): Promise<Netns> {
  const p = pathOf(name);
  validate.knownKeys(validate.object(options, 'create options'), 'create options', ['loopbackUp', 'ipv6', 'sysctls', 'persist']);
  const sysctls = sysctlList(options);
  // A live namespace of that name keeps its marker (whoever made it): the create below fails with
  // EEXIST. Otherwise a marker left there is stale and is replaced by ours.
  // A registry this process may not write (no permission, read-only /run) never blocks the
  // operation: it goes ahead unrecorded, and gc will simply never collect that namespace.
  const live = await isNamespaceFile(p);
  if (!live) await reclaimStaleEntry(name, p, owner);
  const marked = !live && (await registry.markNamespace(name, owner).then(() => true, () => false));
  try {
    await call({ netns: name, syscall: 'create netns' }, () => native.netnsCreate(RUN_DIR, p, sysctls));
  } catch (e) {
    if (marked) await registry.unmarkNamespace(name);
    throw e;
  }
  const ns = new Netns(name, p, true);
  try {
    if (marked) await registry.confirmNamespace(name, (await fs.stat(p)).ino);
    if (options.loopbackUp) await ns.links.set('lo', { up: true });
  } catch (e) {
    await deleteByName(name, { missingOk: true });
    throw e;
  }
  return ns;
}

/**
 * Opens an existing namespace: a /run/netns name (made by us or by `ip netns add`), a namespace
 * file path, or a process id. Equivalent to: `ip netns exec NAME ...` / `nsenter --net=PATH`
 */
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
  return new Netns(name, p, false);
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

/** ENOENT unless `p` is a live namespace file (an unmounted /run/netns entry is not). */
async function assertNamespaceFile(p: string, label: string): Promise<void> {
  let type: number | bigint | undefined;
  try {
    type = (await fs.statfs(p)).type;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new NetnsError(err.code ?? 'EIO', `${err.code}: no such namespace, open netns ${p}`, { errno: err.errno, syscall: 'open netns', netns: label });
  }
  if (Number(type) !== NSFS_MAGIC) {
    throw new NetnsError('ENOENT', `ENOENT: not a network namespace, open netns ${p}`, { errno: -2, syscall: 'open netns', netns: label });
  }
}

/** The namespace this process runs in (the machine's own, usually): handle with care. */
export function current(): Netns {
  return new Netns(undefined, `/proc/${process.pid}/ns/net`, false);
}

/** Named namespaces in /run/netns, ours and iproute2's. Equivalent to: `ip netns list` */
export async function list(): Promise<Netns[]> {
  return (await namespaceNames()).map((n) => new Netns(n, path.join(RUN_DIR, n), false));
}

async function deleteByName(name: string, options: DeleteOptions): Promise<void> {
  const p = pathOf(name);
  validate.knownKeys(validate.object(options, 'delete options'), 'delete options', ['missingOk', 'wait', 'waitTimeoutMs']);
  const timeout = options.waitTimeoutMs === undefined ? 10_000 : validate.integer(options.waitTimeoutMs, 'waitTimeoutMs', 0, 3_600_000);
  let peers: Array<{ ns: Netns; index: number }> = [];
  if (options.wait) {
    const links = await new Netns(name, p).links.list().catch(() => []);
    peers = links.filter((l) => l.peer?.netns !== undefined).map((l) => ({ ns: new Netns(l.peer!.netns, path.join(RUN_DIR, l.peer!.netns!)), index: l.peer!.index }));
  }
  try {
    await call({ netns: name, syscall: 'delete netns' }, () => native.netnsDelete(p));
  } catch (e) {
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
  return watchNamespaces(RUN_DIR, options);
}

export { NetnsError };
