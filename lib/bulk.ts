/**
 * The bulk fast path: many alike namespaces, each with a veth into a bridge of a "host" namespace,
 * addresses and routes, at close to the kernel's own price; and their teardown, awaited until the
 * kernel has really finished. See native/bulk.cc for how the kernel is driven.
 *
 * ```ts
 * const host = await netns.create('lab-host', { loopbackUp: true });
 * await host.links.add({ kind: 'bridge', name: 'br0', up: true });
 * const items = Array.from({ length: 1000 }, (_, i) => ({
 *   name: `lab-${i}`,
 *   veth: { name: `lab-${i}`, peerName: 'eth0', bridge: 'br0' },
 *   addresses: [`10.10.${i >> 8}.${(i & 255) + 1}/16`],
 *   routes: [{ to: 'default', via: '10.10.255.254' }],
 * }));
 * const { group } = await bulk.createMany(items, { hostNs: host, ipv6: false });
 * await bulk.deleteMany(items.map((i) => i.name), { hostNs: host, group });
 * ```
 */
import { randomInt } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { call, fromNative, invalid, NetnsError } from './errors';
import { AF, parseCidr } from './ip';
import path from 'node:path';
import { native, type NativeBulkItem } from './native';
import * as registry from './registry';
import { existsSync, promises as fs, statSync } from 'node:fs';
import { isNamespaceFile, Netns, reclaimStaleEntry, RUN_DIR } from './netns';
import { toNativeRoute, type RouteSpec } from './routes';
import * as validate from './validate';
import { validateShape, type LinkShape, type LinkShapeSpec } from './shape';
import { shapeNewLink } from './tc';

export interface BulkVeth {
  /** host end, in `hostNs`, enslaved to `bridge` and up from its creation */
  name: string;
  /** the end inside the new namespace (default "eth0"), created there directly */
  peerName?: string;
  /** a bridge in `hostNs` */
  bridge: string;
  /** the peer's interface index inside the new namespace (default 2; lo is 1) */
  index?: number;
  /** the host end's interface index (default: the kernel picks one) */
  hostIndex?: number;
  /** interface group of the host end (default: the call's group) */
  group?: number;
  mtu?: number;
}

export interface BulkNamespace {
  /** /run/netns name */
  name: string;
  veth?: BulkVeth;
  /** CIDRs on the veth peer (on lo when there is no veth) */
  addresses?: string[];
  /** add IPv6 addresses without duplicate address detection, usable at once (`ip addr add ... nodad`) */
  noDad?: boolean;
  /** routes inside the namespace; `dev` may name the veth peer or "lo" */
  routes?: RouteSpec[];
  /** bring lo up (default true) */
  loopbackUp?: boolean;
  /** net.* sysctls written inside the namespace before any interface exists */
  sysctls?: Record<string, string | number>;
  /**
   * links.shape() of the veth's end inside the namespace (needs `veth`), applied as soon as the
   * namespace's chunk exists, in the same call; a failure rolls the whole call back.
   */
  shape?: LinkShapeSpec;
}

export interface BulkProgress {
  done: number;
  total: number;
  step: 'create' | 'rollback' | 'release' | 'settle';
}

export interface CreateManyOptions {
  /** the namespace holding the bridges (the host ends of the veths go there); required when an item has a veth */
  hostNs?: Netns;
  /** false switches IPv6 off in every new namespace before any interface exists */
  ipv6?: boolean;
  /**
   * Keep the namespaces when this process exits: `gc()` never collects them (as
   * `netns.create(name, { persist: true })`). Default false: they are recorded as this process's,
   * and `gc()` removes them once it has exited without deleting them.
   */
  persist?: boolean;
  /** interface group for the host ends (default: a fresh random one, returned in the result) */
  group?: number;
  onProgress?: (p: BulkProgress) => void;
  /** aborting stops the work and removes everything this call created, then rejects ERR_NETNS_ABORTED */
  signal?: AbortSignal;
  /**
   * chunks in flight at once (default: the CPU count, at most the addon's 4 worker threads; the work
   * is mostly the kernel's, and more threads than CPUs only add lock contention)
   */
  concurrency?: number;
}

export interface BulkResult {
  namespaces: Netns<string>[];
  /** interface group of the host ends: pass it to deleteMany for a batched teardown */
  group: number;
}

export interface DeleteManyOptions {
  /** where `group` lives; required with `group` */
  hostNs?: Netns;
  /**
   * Deletes every link of this interface group in `hostNs` first, in one request (all host ends
   * created by createMany carry it). Only pass a group that belongs to these namespaces.
   */
  group?: number;
  onProgress?: (p: BulkProgress) => void;
  /** checked before anything is changed; a started teardown is not interrupted */
  signal?: AbortSignal;
  /** succeed quietly for names that do not exist (default false: ENOENT before anything is changed) */
  missingOk?: boolean;
  /**
   * how long to wait for the kernel to finish (default 60 s + 100 ms per namespace: on a loaded
   * machine the kernel's cleanup of 1000 namespaces took over a minute); ETIMEDOUT names who is still alive
   */
  timeoutMs?: number;
}

/** Ports a Linux bridge accepts (BR_MAX_PORTS - 1). */
export const BRIDGE_MAX_PORTS = 1023;

const WORKERS = 4;

function abortError(signal: AbortSignal): NetnsError {
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted');
  return new NetnsError('ERR_NETNS_ABORTED', `ERR_NETNS_ABORTED: operation aborted (${reason}); what it created was removed`);
}

function group(v: unknown, what: string): number {
  // Group 0 is every link's default: deleting it would delete everything.
  return validate.integer(v, what, 1, 2 ** 32 - 1);
}

/** Validates everything into the addon's plain shape; throws before anything reaches the kernel. */
function plan(items: BulkNamespace[], options: CreateManyOptions, callGroup: number, shapes?: Map<string, { dev: string; shape: LinkShape }>): NativeBulkItem[] {
  if (!Array.isArray(items)) throw invalid('ERR_NETNS_INVALID_ARG', 'bulk.createMany takes an array of namespaces');
  const common: Array<[string, string]> = [];
  if (options.ipv6 === false) common.push(['net/ipv6/conf/all/disable_ipv6', '1'], ['net/ipv6/conf/default/disable_ipv6', '1']);
  const names = new Set<string>();
  const hostEnds = new Set<string>();
  const ports = new Map<string, number>();
  return items.map((raw, i) => {
    const where = `namespaces[${i}]`;
    const o = validate.object(raw, where);
    validate.knownKeys(o, where, ['name', 'veth', 'addresses', 'noDad', 'routes', 'loopbackUp', 'sysctls', 'shape']);
    const name = validate.netnsName(o.name);
    if (names.has(name)) throw invalid('ERR_NETNS_CONFLICT', `${where}.name ${JSON.stringify(name)} appears twice`, { netns: name });
    names.add(name);
    const item: NativeBulkItem = {
      path: `${RUN_DIR}/${name}`,
      name,
      loopbackUp: o.loopbackUp === undefined ? true : validate.bool(o.loopbackUp, `${where}.loopbackUp`),
      addresses: [],
      routes: [],
      sysctls: [...common],
    };
    let peerName: string | undefined;
    let peerIndex = 1;
    if (o.veth !== undefined) {
      if (options.hostNs === undefined) throw invalid('ERR_NETNS_INVALID_ARG', `${where}.veth needs options.hostNs, the namespace with the bridge`);
      const v = validate.object(o.veth, `${where}.veth`);
      validate.knownKeys(v, `${where}.veth`, ['name', 'peerName', 'bridge', 'index', 'hostIndex', 'group', 'mtu']);
      const host = validate.ifname(v.name, `${where}.veth.name`);
      if (hostEnds.has(host)) throw invalid('ERR_NETNS_CONFLICT', `${where}.veth.name ${JSON.stringify(host)} appears twice`, { ifname: host });
      hostEnds.add(host);
      peerName = v.peerName === undefined ? 'eth0' : validate.ifname(v.peerName, `${where}.veth.peerName`);
      if (peerName === 'lo') throw invalid('ERR_NETNS_CONFLICT', `${where}.veth.peerName may not be "lo"`);
      const bridge = validate.ifname(v.bridge, `${where}.veth.bridge`);
      const n = (ports.get(bridge) ?? 0) + 1;
      if (n > BRIDGE_MAX_PORTS) {
        throw invalid('ERR_NETNS_INVALID_ARG', `bridge ${bridge} would get more than ${BRIDGE_MAX_PORTS} ports (the Linux bridge limit): spread the namespaces over several bridges`);
      }
      ports.set(bridge, n);
      peerIndex = v.index === undefined ? 2 : validate.integer(v.index, `${where}.veth.index`, 2, 2 ** 31 - 1);
      item.veth = {
        name: host,
        peerName,
        bridge,
        index: peerIndex,
        group: v.group === undefined ? callGroup : group(v.group, `${where}.veth.group`),
      };
      if (v.mtu !== undefined) item.veth.mtu = validate.mtu(v.mtu);
      if (v.hostIndex !== undefined) item.veth.hostIndex = validate.integer(v.hostIndex, `${where}.veth.hostIndex`, 1, 2 ** 31 - 1);
    }
    if (o.shape !== undefined) {
      if (peerName === undefined) throw invalid('ERR_NETNS_INVALID_ARG', `${where}.shape shapes the veth's inside end: it needs ${where}.veth`);
      const sh = validateShape(o.shape);
      if (sh && Object.keys(sh).length) shapes?.set(name, { dev: peerName, shape: sh });
    }
    const noDad = o.noDad === undefined ? false : validate.bool(o.noDad, `${where}.noDad`);
    if (o.addresses !== undefined) {
      if (!Array.isArray(o.addresses)) throw invalid('ERR_NETNS_INVALID_ARG', `${where}.addresses must be an array of CIDRs`);
      for (const [k, a] of o.addresses.entries()) {
        const c = parseCidr(a, `${where}.addresses[${k}]`);
        item.addresses.push({ family: AF[c.family], address: c.address, prefixlen: c.prefix, ...(noDad && c.family === 6 ? { noDad: true } : {}) });
      }
    }
    if (o.routes !== undefined) {
      if (!Array.isArray(o.routes)) throw invalid('ERR_NETNS_INVALID_ARG', `${where}.routes must be an array of routes`);
      for (const [k, r] of o.routes.entries()) {
        const change = toNativeRoute(r as RouteSpec);
        // The bulk path's own route builder (native/bulk.cc) writes single-path routes only.
        if (change.nexthops !== undefined || change.nhid !== undefined) {
          throw invalid('ERR_NETNS_INVALID_ARG', `${where}.routes[${k}]: multipath ("nexthops") and "nhid" routes are not supported for namespaces made in bulk; add them with ns.routes.add afterwards`);
        }
        let devIndex = 0;
        if (change.dev !== undefined) {
          if (change.dev === 'lo') devIndex = 1;
          else if (change.dev === peerName) devIndex = peerIndex;
          else throw invalid('ERR_NETNS_INVALID_ARG', `${where}.routes[${k}].dev must be the veth peer (${peerName ?? 'none'}) or lo, got ${JSON.stringify(change.dev)}`);
          delete change.dev;
        }
        item.routes.push({ ...change, devIndex });
      }
    }
    if (o.sysctls !== undefined) {
      for (const [k, v] of Object.entries(validate.object(o.sysctls, `${where}.sysctls`))) {
        if (typeof v !== 'string' && typeof v !== 'number') throw invalid('ERR_NETNS_INVALID_ARG', `${where}.sysctls.${k} must be a string or number`);
        const value = String(v);
        if (/[\n\0]/.test(value)) throw validate.invalidValue(k);
        item.sysctls.push([validate.sysctlKey(k), value]);
      }
    }
    return item;
  });
}

/** Namespaces per chunk such that every chunk in flight fits in RLIMIT_NOFILE (2 fds per namespace while it is set up). */
function chunkSize(concurrency: number): number {
  const { limit, open } = native.bulkFdBudget();
  const spare = limit - open - 64;
  return Math.max(1, Math.min(32, Math.floor(spare / (2 * concurrency)) - 1));
}

/**
 * Creates many namespaces at once, each optionally with a veth whose host end joins a bridge in
 * `hostNs`, addresses, routes, lo up and sysctls. If anything fails, or `signal` aborts, everything
 * this call created is removed again (and the kernel has finished removing it) before it rejects.
 *
 * Equivalent to, per namespace: `ip netns add NAME; ip -n HOST link add VETH group G master BR up
 * type veth peer name eth0 index 2 netns NAME; ip -n NAME link set lo up; ip -n NAME link set eth0 up;
 * ip -n NAME addr add ADDR dev eth0; ip -n NAME route add ...` (and `sysctl -w
 * net.ipv6.conf.{all,default}.disable_ipv6=1` inside it first, for `ipv6: false`).
 */
export async function createMany(items: BulkNamespace[], options: CreateManyOptions): Promise<BulkResult> {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, createMany);
  const o = validate.object(options, 'createMany options');
  validate.knownKeys(o, 'createMany options', ['hostNs', 'ipv6', 'persist', 'group', 'onProgress', 'signal', 'concurrency']);
  if (options.persist !== undefined) validate.bool(options.persist, 'persist');
  return createManyOwned(items, options, options.persist ? { persist: true } : registry.processOwner(), { stack: holder.stack });
}

/** What a caller inside the library learns from createManyOwned beyond the public result. */
export interface CreateManyHooks {
  /** the caller's stack, for the frames of errors */
  stack?: string;
  /** the names of each chunk, once it is complete */
  onChunk?: (names: string[]) => void;
  /** how many namespaces a failed or aborted call removed again, before it rejects */
  onRolledBack?: (count: number) => void;
  /** host ends in a namespace the owner does not own (their `hostIndex` chosen), recorded with the set */
  links?: registry.SetLink[];
}

/**
 * createMany() for an explicit registry owner (topology templates pass `{ topology: NAME }`).
 * Not part of the public API.
 */
export async function createManyOwned(items: BulkNamespace[], options: CreateManyOptions, owner: registry.Owner, hooks: CreateManyHooks = {}): Promise<BulkResult> {
  const { onChunk, onRolledBack } = hooks;
  let stack = hooks.stack;
  if (stack === undefined) {
    const holder: { stack?: string } = {};
    Error.captureStackTrace(holder, createManyOwned);
    stack = holder.stack;
  }
  validate.object(options, 'createMany options');
  if (options.hostNs !== undefined && !(options.hostNs instanceof Netns)) throw invalid('ERR_NETNS_INVALID_ARG', 'createMany options.hostNs must be a Netns');
  if (options.ipv6 !== undefined) validate.bool(options.ipv6, 'ipv6');
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw invalid('ERR_NETNS_INVALID_ARG', 'onProgress must be a function');
  const concurrency = options.concurrency === undefined ? Math.min(WORKERS, availableParallelism()) : validate.integer(options.concurrency, 'concurrency', 1, 64);
  const callGroup = options.group === undefined ? randomInt(0x4e4b0000, 0x4e4bffff) : group(options.group, 'group');
  const shapes = new Map<string, { dev: string; shape: LinkShape }>();
  const planned = plan(items, options, callGroup, shapes);
  const signal = options.signal;
  if (signal?.aborted) throw abortError(signal);
  await refuseTaken(planned, owner);
  // Recorded before anything is created, one file for the whole call (lib/registry.ts, "sets"). A
  // registry this process may not write never blocks the work: it goes ahead unrecorded.
  let set: string | undefined;
  try {
    set = registry.markNamespaceSet(planned.map((p) => p.name), owner, hooks.links);
  } catch {
    set = undefined;
  }

  const size = chunkSize(concurrency);
  const chunks: NativeBulkItem[][] = [];
  for (let i = 0; i < planned.length; i += size) chunks.push(planned.slice(i, i + size));
  const total = planned.length;
  const created: string[] = [];
  let next = 0;
  let done = 0;
  let failure: Error | undefined;
  const frames = stack?.split('\n').slice(1).join('\n');
  const lane = async (): Promise<void> => {
    while (next < chunks.length && failure === undefined && !signal?.aborted) {
      const chunk = chunks[next++];
      try {
        const r = await native.bulkCreateChunk(RUN_DIR, options.hostNs?.path ?? '', chunk);
        created.push(...r.created);
        if (set !== undefined && r.created.length) confirmInodes(set, r.created);
        if (r.error) {
          failure ??= fromNative(r.error, { netns: r.error.netns, syscall: 'bulk create' }, frames);
          return;
        }
        // Shapes in the same pass, per namespace through its own socket (native/bulk.cc is not
        // involved): a link made a moment ago has none, so no state is read first.
        if (shapes.size) {
          await Promise.all(
            chunk.map(async (c) => {
              const sh = shapes.get(c.name);
              if (sh) await shapeNewLink(new Netns(c.name, c.path), sh.dev, sh.shape);
            }),
          );
        }
      } catch (e) {
        failure ??= fromNative(e, { syscall: 'bulk create' }, frames);
        return;
      }
      done += chunk.length;
      onChunk?.(chunk.map((c) => c.name));
      options.onProgress?.({ done, total, step: 'create' });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, chunks.length) }, lane));
  if (failure === undefined && signal?.aborted) failure = abortError(signal);
  if (failure !== undefined) {
    if (created.length) {
      options.onProgress?.({ done: 0, total: created.length, step: 'rollback' });
      await removePaths(created, { missingOk: true, timeoutMs: 120000 }, (n) => options.onProgress?.({ done: n, total: created.length, step: 'rollback' }));
      onRolledBack?.(created.length);
    }
    // Only once nothing of it is left: a rollback that failed keeps the set for gc().
    if (set !== undefined) registry.unmarkNamespaceSet(set);
    throw failure;
  }
  if (set !== undefined) registry.settleNamespaceSet(set);
  return { namespaces: planned.map((p) => new Netns(p.name, p.path, true)), group: callGroup };
}

/**
 * EEXIST, before anything is created, for a name that is taken. An unmounted /run/netns entry left
 * by a creator killed half-way is removed first when the registry says it was ours (this owner, or
 * a process that is gone), as netns.create() does. A name taken by somebody else during the call
 * still fails half-way, and is rolled back.
 */
async function refuseTaken(planned: NativeBulkItem[], owner: registry.Owner): Promise<void> {
  const entries = new Set(await fs.readdir(RUN_DIR).catch(() => [] as string[]));
  for (const item of planned) {
    if (!entries.has(item.name)) continue;
    if (!(await isNamespaceFile(item.path))) await reclaimStaleEntry(item.name, item.path, owner);
    if (existsSync(item.path)) {
      throw new NetnsError('EEXIST', `EEXIST: namespace ${item.name} exists already, bulk create ${item.path}`, { errno: -17, syscall: 'bulk create', netns: item.name });
    }
  }
}

/** Appends the inodes of freshly created namespaces to their set. */
function confirmInodes(set: string, paths: string[]): void {
  const inodes: Record<string, number> = {};
  for (const p of paths) {
    try {
      inodes[path.basename(p)] = statSync(p).ino;
    } catch {
      // Gone again already (a rollback elsewhere): nothing to record.
    }
  }
  try {
    registry.confirmNamespaceSet(set, inodes);
  } catch {
    // Unrecorded inodes only widen gc's view to "whatever has that name"; never fail the work.
  }
}

async function removePaths(paths: string[], options: DeleteManyOptions, progress: (done: number) => void): Promise<void> {
  const { handle, missing } = await call({ syscall: 'bulk delete' }, () => native.bulkWatchBegin(paths));
  let waited = false;
  try {
    if (missing.length && !options.missingOk) {
      const name = missing[0].slice(RUN_DIR.length + 1);
      throw new NetnsError('ENOENT', `ENOENT: no such namespace, bulk delete ${missing[0]}${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`, {
        errno: -2,
        syscall: 'bulk delete',
        netns: name,
      });
    }
    if (options.group !== undefined) {
      const host = options.hostNs!;
      await call({ netns: host.label, syscall: 'delete link group' }, () => native.bulkDeleteGroup(host.path, options.group!));
    }
    const live = missing.length ? paths.filter((p) => !missing.includes(p)) : paths;
    const size = 64;
    let next = 0;
    let done = 0;
    const lane = async (): Promise<void> => {
      while (next < live.length) {
        const chunk = live.slice(next, next + size);
        next += size;
        await call({ syscall: 'delete netns' }, () => native.bulkRelease(chunk));
        // Namespaces made by netns.create() (e.g. the host of a benchmark) carry a registry marker:
        // forget it once the namespace is gone, as ns.delete() does.
        await Promise.all(chunk.map((p) => registry.unmarkNamespace(path.basename(p)).catch(() => undefined)));
        done += chunk.length;
        progress(done);
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, lane));
    waited = true;
    await call({ syscall: 'wait for netns cleanup' }, () => native.bulkWatchWait(handle, options.timeoutMs ?? 60000 + 100 * paths.length));
  } finally {
    if (!waited) native.bulkWatchClose(handle);
  }
}

/**
 * Deletes many named namespaces and resolves only once the kernel has finished tearing them down
 * (their devices unregistered, their memory freed), so the next run starts from a clean kernel.
 * With `group`, the host ends are first removed in one request.
 *
 * Equivalent to: `ip -n HOST link del group G; ip netns del NAME...` and then waiting for the
 * kernel's netns cleanup (which `ip` does not do).
 */
export async function deleteMany(names: string[], options: DeleteManyOptions = {}): Promise<void> {
  const o = validate.object(options, 'deleteMany options');
  validate.knownKeys(o, 'deleteMany options', ['hostNs', 'group', 'onProgress', 'signal', 'missingOk', 'timeoutMs']);
  if (!Array.isArray(names)) throw invalid('ERR_NETNS_INVALID_ARG', 'bulk.deleteMany takes an array of namespace names');
  const paths = [...new Set(names.map((n) => `${RUN_DIR}/${validate.netnsName(n)}`))];
  if (options.group !== undefined) {
    group(options.group, 'group');
    if (!(options.hostNs instanceof Netns)) throw invalid('ERR_NETNS_INVALID_ARG', 'deleteMany: `group` needs `hostNs`, the namespace the group lives in');
  }
  if (options.missingOk !== undefined) validate.bool(options.missingOk, 'missingOk');
  if (options.timeoutMs !== undefined) validate.integer(options.timeoutMs, 'timeoutMs', 1, 3600000);
  if (options.signal?.aborted) throw abortError(options.signal);
  await removePaths(paths, options, (n) => options.onProgress?.({ done: n, total: paths.length, step: 'release' }));
  // Sets whose namespaces are all gone now are forgotten: this process's, persistent ones, and
  // those of processes that have exited (a harness that creates in one process and deletes in
  // another). Those of other live processes stay theirs; topologies' go with `down`.
  try {
    await registry.pruneNamespaceSets(
      // (a persistent set records no owner process: its writer must be done, or it may be in flight)
      (set) => registry.ownedByThisProcess(set) || ('persist' in set.owner && registry.setWriterDone(set)) || ('pid' in set.owner && registry.processGone(set.owner)),
    );
  } catch {
    // A registry we may not read or write: nothing of ours is recorded there.
  }
  options.onProgress?.({ done: paths.length, total: paths.length, step: 'settle' });
}

/**
 * Low-level pieces for harnesses that tear namespaces down by other means (the benchmark waits
 * for `ip netns del` the same way): watch before, then wait until the kernel has finished.
 */
export async function watchCleanup(names: string[]): Promise<{ wait: (timeoutMs?: number) => Promise<void>; close: () => void }> {
  const paths = names.map((n) => `${RUN_DIR}/${validate.netnsName(n)}`);
  const { handle } = await call({ syscall: 'watch netns' }, () => native.bulkWatchBegin(paths));
  return {
    wait: (timeoutMs = 60000 + 100 * paths.length) => call({ syscall: 'wait for netns cleanup' }, () => native.bulkWatchWait(handle, timeoutMs)),
    close: () => native.bulkWatchClose(handle),
  };
}
