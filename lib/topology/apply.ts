/**
 * `up` and `down`: run a plan (plan.ts) phase by phase with bounded concurrency; on a failure or
 * an abort, undo everything this call created, newest first, and report which step failed and why.
 */
import { invalid, NetnsError, type NetnsErrorCode } from '../errors';
import { requireNetworkPrivileges } from '../privileges';
import { list as listNamespaces, type Netns } from '../netns';
import { createManyOwned, deleteMany, watchCleanup, type BulkNamespace } from '../bulk';
import * as validate from '../validate';
import * as registry from '../registry';
import { nsObject, plan, pool, Phase, type MemberWork, type Step } from './plan';
import type { Topology } from './schema';
import { resolve, type ResolvedTopology } from './validate';
import { status, type TopologyStatus } from './status';

export interface Progress {
  done: number;
  total: number;
  /** the step just finished (or, for down, the object just removed) */
  step: string;
}

export interface UpOptions {
  /** called after each step; for templates, once per namespace */
  onProgress?: (p: Progress) => void;
  /** aborting stops `up` between steps and rolls back what it created (error ERR_NETNS_ABORTED) */
  signal?: AbortSignal;
}

export interface DownOptions extends UpOptions {
  /**
   * Resolve only once the kernel has finished tearing down the namespaces `down` deleted (their
   * devices unregistered, their veth peers elsewhere gone, their memory freed), as
   * `bulk.deleteMany` does. Without it `down` returns when the names are gone, like `ip netns del`,
   * and the kernel cleans up in the background.
   */
  wait?: boolean;
  /** with `wait`: a namespace a process still holds fails `down` with ETIMEDOUT naming it after this long (default 60 s + 100 ms per namespace) */
  waitTimeoutMs?: number;
}

export interface TopologyHandle {
  name: string;
  topology: Topology;
  /** what this `up` call changed, in order of completion; empty when everything already matched */
  changes: string[];
  /** every namespace of the topology (templates expanded) */
  namespaces: string[];
  /** a declared namespace by name */
  netns(name: string): Netns<string>;
  down(options?: DownOptions): Promise<DownResult>;
  status(): Promise<TopologyStatus>;
}

export interface DownResult {
  /** namespaces deleted */
  namespaces: string[];
  /** links deleted in namespaces the topology does not own */
  links: Array<{ netns: string; name: string }>;
  /** NAT tables removed from namespaces the topology does not own */
  natTables: Array<{ netns: string; table: string }>;
  /** firewall tables removed from namespaces the topology does not own */
  firewallTables: Array<{ netns: string; table: string }>;
  /** declared namespaces that exist but were not created by this topology: left alone */
  kept: string[];
}

/** A failed `up`: which step failed, the underlying error as `cause`, what the rollback did. */
export class TopologyError extends NetnsError {
  /** the step that failed, e.g. "add route 10.9.0.0/16 via 10.200.0.1 (red)" */
  readonly step: string;
  /** how many creations were undone */
  readonly rolledBack: number;
  /** undo steps that failed themselves (what is left behind; `gc()` collects it after this process exits) */
  readonly rollbackErrors: Error[];
  constructor(code: NetnsErrorCode, message: string, step: string, cause: unknown, rolledBack: number, rollbackErrors: Error[]) {
    const c = cause instanceof NetnsError ? cause : undefined;
    super(code, message, { errno: c?.errno, syscall: c?.syscall, netns: c?.netns, ifname: c?.ifname, extack: c?.extack, detail: step });
    this.step = step;
    this.rolledBack = rolledBack;
    this.rollbackErrors = rollbackErrors;
    (this as Error).cause = cause;
  }
}

class StepFailed extends Error {
  constructor(readonly step: string, readonly reason: unknown) {
    super(step);
  }
}

class Aborted extends Error {
  constructor(readonly step: string, readonly reason: unknown) {
    super(step);
  }
}

interface Journal {
  /** `count`: how many creations one entry undoes (a bulk call's namespaces: one entry, many) */
  entries: Array<{ phase: Phase; undo: () => Promise<void>; count?: number }>;
}

/** Undoes journal entries, latest phase first; within a phase concurrently. Never stops early. */
async function rollback(journal: Journal, concurrency: number): Promise<{ count: number; errors: Error[] }> {
  const errors: Error[] = [];
  const phases = [...new Set(journal.entries.map((e) => e.phase))].sort((a, b) => b - a);
  let count = 0;
  for (const phase of phases) {
    const group = journal.entries.filter((e) => e.phase === phase).reverse();
    await pool(group, concurrency, async (e) => {
      try {
        await e.undo();
        count += e.count ?? 1;
      } catch (err) {
        errors.push(err as Error);
      }
    });
  }
  journal.entries.length = 0;
  return { count, errors };
}

interface MemberContext {
  topology: ResolvedTopology;
  journal: Journal;
  signal?: AbortSignal;
  checkAbort(step: string): void;
  finished(step: string): void;
  /** namespaces a failed bulk call already removed itself (counted in TopologyError.rolledBack) */
  rolledBackByBulk(count: number): void;
}

function memberStep(name: string): string {
  return `create namespace ${name}`;
}

/**
 * Sets up new template members through the bulk fast path (lib/bulk.ts): per host namespace one
 * `createMany` call — namespaces, uplink veths (bridge end created with its master and up in the
 * creating message, member end created directly inside the member with index 2), addresses,
 * routes — recorded in the registry as one namespace set owned by the topology. The call rolls
 * itself back on a failure or an abort; once it succeeded, one journal entry undoes all of it
 * (bridge ends by interface group in one request, then the namespaces, awaited until the kernel
 * has finished).
 */
async function createMembers(items: MemberWork[], ctx: MemberContext): Promise<void> {
  const t = ctx.topology;
  const owner: registry.Owner = { topology: t.name };
  const byHost = new Map<string, MemberWork[]>();
  for (const w of items) {
    const key = w.uplink?.netns ?? '';
    if (!byHost.has(key)) byHost.set(key, []);
    byHost.get(key)!.push(w);
  }
  for (const [hostName, works] of byHost) {
    ctx.checkAbort(memberStep(works[0].name));
    const host = hostName ? nsObject(hostName) : undefined;
    const hostForeign = hostName !== '' && t.namespaces.find((n) => n.name === hostName)?.existing === true;
    // Bridge ends in a namespace the topology does not own get an index chosen for them and are
    // recorded with the namespace set (not a marker file each: a file costs ~1 ms on an ext4 /run),
    // so plan, down and gc recognise them as ours, as the planner's own veths.
    const links: registry.SetLink[] = [];
    const bulkItems: BulkNamespace[] = [];
    for (const w of works) {
      const item: BulkNamespace = {
        name: w.name,
        loopbackUp: w.loopbackUp,
        sysctls: Object.fromEntries(w.sysctls),
        addresses: w.addresses,
        noDad: true,
        routes: w.routes.map((r) => r.spec),
        ...(w.shape ? { shape: w.shape } : {}),
      };
      if (w.uplink) {
        const u = w.uplink;
        item.veth = { name: u.peerName, peerName: u.name, bridge: u.bridge, ...(u.mtu !== undefined ? { mtu: u.mtu } : {}) };
        if (hostForeign) {
          const index = registry.chooseIfIndex();
          links.push({ netns: u.netns, name: u.peerName, index });
          item.veth.hostIndex = index;
        }
      }
      bulkItems.push(item);
    }
    const pending = new Set(works.map((w) => w.name));
    let group: number;
    try {
      ({ group } = await createManyOwned(bulkItems, { ...(host ? { hostNs: host } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}) }, owner, {
        onChunk: (names) => {
          for (const n of names) {
            pending.delete(n);
            ctx.finished(memberStep(n));
          }
        },
        // The call removed what it made itself; the count is reported with the rest of the rollback.
        onRolledBack: (count) => ctx.rolledBackByBulk(count),
        links,
      }));
    } catch (e) {
      const next = [...pending][0] ?? works[0].name;
      if (e instanceof NetnsError && e.code === 'ERR_NETNS_ABORTED') throw new Aborted(memberStep(next), ctx.signal ? abortReason(ctx.signal) : e);
      throw new StepFailed(memberStep(e instanceof NetnsError && e.netns ? e.netns : next), e);
    }
    const names = works.map((w) => w.name);
    ctx.journal.entries.push({
      phase: Phase.Members,
      count: names.length,
      undo: async () => {
        await deleteMany(names, { missingOk: true, ...(host ? { hostNs: host, group } : {}) });
        // deleteMany forgets emptied sets of this process; this one is the topology's.
        await registry.pruneNamespaceSets((set) => registry.sameOwner(set.owner, owner));
      },
    });
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('aborted');
}

/**
 * Brings a topology up: creates what is missing, leaves alone what matches, and returns a handle.
 * Running it again changes nothing (`handle.changes` is empty). If a step fails — or `signal`
 * aborts — everything this call created is removed again and the error (a TopologyError) names
 * the step, with the underlying NetnsError as `cause`.
 *
 * Equivalent to the `ip netns add` / `ip link add ... type veth peer ... netns` / `ip addr add` /
 * `ip route add` / `sysctl -w` / `nft add rule` sequence the topology describes.
 */
export async function up(t: Topology, options: UpOptions = {}): Promise<TopologyHandle> {
  const r = resolve(t);
  const { onProgress, signal } = options;
  if (signal?.aborted) throw new NetnsError('ERR_NETNS_ABORTED', `up "${r.name}" aborted before it started`, { syscall: 'topology up' });
  requireNetworkPrivileges('topology up');
  const p = await plan(r);
  if (p.conflicts.length) {
    throw invalid('ERR_NETNS_CONFLICT', `topology "${r.name}" cannot be brought up: ${p.conflicts.join('; ')}`, { detail: p.conflicts[0] });
  }

  const prev = await registry.readTopology(r.name);
  const self = registry.processOwner();
  if (prev && prev.state === 'applying' && prev.owner.pid !== self.pid && !registry.processGone(prev.owner)) {
    throw invalid('ERR_NETNS_CONFLICT', `topology "${r.name}" is being brought up by process ${prev.owner.pid}`);
  }
  // Recorded before anything is created: an `up` that dies half-way leaves an 'applying'
  // record with a dead owner, which is how gc() recognises its leftovers.
  if (p.steps.length > 0 && prev?.state !== 'up') {
    await registry.writeTopology({ name: r.name, state: 'applying', owner: self, updated: new Date().toISOString() });
  }

  const journal: Journal = { entries: [] };
  let undoneByBulk = 0;
  const changes: string[] = [];
  const total = p.steps.length;
  const checkAbort = (step: string) => {
    if (signal?.aborted) throw new Aborted(step, abortReason(signal));
  };
  const finished = (step: string) => {
    changes.push(step);
    onProgress?.({ done: changes.length, total, step });
  };

  try {
    const phases = [...new Set(p.steps.map((s) => s.phase))].sort((a, b) => a - b);
    for (const phase of phases) {
      const group = p.steps.filter((s) => s.phase === phase);
      if (phase === Phase.Members) {
        await createMembers(
          group.map((s) => s.member!),
          { topology: r, journal, ...(signal ? { signal } : {}), checkAbort, finished, rolledBackByBulk: (n) => (undoneByBulk += n) },
        );
        continue;
      }
      await pool(group, r.concurrency, async (s: Step) => {
        checkAbort(s.what);
        try {
          await s.run((undo) => journal.entries.push({ phase, undo }));
        } catch (e) {
          throw new StepFailed(s.what, e);
        }
        finished(s.what);
      });
    }
  } catch (e) {
    const rb = await rollback(journal, r.concurrency);
    rb.count += undoneByBulk;
    const left = rb.errors.length ? `; ${rb.errors.length} undo step(s) failed (${rb.errors.map((x) => x.message).join('; ')}): gc() collects what is left once this process exits` : '';
    if (rb.errors.length === 0 && prev === undefined) await registry.removeTopology(r.name);
    else if (prev) await registry.writeTopology(prev);
    if (e instanceof Aborted) {
      throw new TopologyError('ERR_NETNS_ABORTED', `up "${r.name}" aborted before step "${e.step}"; rolled back ${rb.count} change(s)${left}`, e.step, e.reason, rb.count, rb.errors);
    }
    if (e instanceof StepFailed) {
      const cause = e.reason;
      const code = cause instanceof NetnsError ? cause.code : 'EIO';
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new TopologyError(code, `up "${r.name}" failed at step "${e.step}": ${why}; rolled back ${rb.count} change(s)${left}`, e.step, cause, rb.count, rb.errors);
    }
    throw e;
  }

  if (prev?.state !== 'up') await registry.writeTopology({ name: r.name, state: 'up', owner: self, updated: new Date().toISOString() });
  return handleFor(t, r, changes);
}

function handleFor(t: Topology, r: ResolvedTopology, changes: string[]): TopologyHandle {
  const names = r.namespaces.map((n) => n.name);
  const declared = new Set(names);
  return {
    name: r.name,
    topology: t,
    changes,
    namespaces: names,
    netns(name: string): Netns<string> {
      if (!declared.has(name)) throw invalid('ERR_NETNS_INVALID_ARG', `topology "${r.name}" has no namespace "${name}"`);
      return nsObject(name);
    },
    down: (options) => down(t, options),
    status: () => status(t),
  };
}

/**
 * Takes a topology down: removes exactly what belongs to it — the namespaces it created, the
 * links and NAT tables it added to namespaces it does not own (all as recorded in the registry,
 * and only if the kernel object is still the one it made), and the routes declared in those
 * namespaces — and nothing else. Declared namespaces it did not create are left alone (`kept`).
 * With `wait: true` it resolves only once the kernel has finished tearing them down.
 * Equivalent to: `ip netns delete NAME` for each of its namespaces, `ip link del` for its links
 * elsewhere, `nft delete table inet nk_NAME`, `nft delete table inet nkfw_NAME`.
 */
export async function down(t: Topology, options: DownOptions = {}): Promise<DownResult> {
  const r = resolve(t);
  const { onProgress, signal } = options;
  requireNetworkPrivileges('topology down');
  const owner: registry.Owner = { topology: r.name };
  const result: DownResult = { namespaces: [], links: [], natTables: [], firewallTables: [], kept: [] };
  const present = new Set((await listNamespaces()).map((n) => n.name!));
  const foreign = new Set(r.namespaces.filter((n) => n.existing).map((n) => n.name));

  const markers = (await registry.listNamespaceMarkers()).filter((m) => m.marker && registry.sameOwner(m.marker.owner, owner));
  const ours = new Set(markers.map((m) => m.name));
  // Names known only from a namespace set: their set is pruned at the end, never unmarked by name.
  const ownFile = new Set(markers.filter((m) => !m.marker!.set).map((m) => m.name));
  for (const n of r.namespaces) if (!n.existing && present.has(n.name) && !ours.has(n.name)) result.kept.push(n.name);
  const linkMarkers = (await registry.listLinkMarkers()).filter((m) => m.marker && registry.sameOwner(m.marker.owner, owner));
  const natMarkers = (await registry.listNatMarkers()).filter((m) => m.marker && registry.sameOwner(m.marker.owner, owner));
  const firewallMarkers = (await registry.listFirewallMarkers()).filter((m) => m.marker && registry.sameOwner(m.marker.owner, owner));
  const foreignRoutes = r.namespaces.filter((n) => n.existing && present.has(n.name)).flatMap((n) => n.routes.map((rt) => ({ ns: n.name, rt })));

  const total = linkMarkers.length + natMarkers.length + firewallMarkers.length + foreignRoutes.length + [...ours].filter((n) => present.has(n)).length;
  if (options.wait !== undefined) validate.bool(options.wait, 'wait');
  if (options.waitTimeoutMs !== undefined) validate.integer(options.waitTimeoutMs, 'waitTimeoutMs', 1, 3_600_000);
  // Watched before anything is deleted, so their cleanup cannot finish unseen.
  const doomed = [...ours].filter((n) => present.has(n) && !foreign.has(n));
  const cleanup = options.wait && doomed.length ? await watchCleanup(doomed) : undefined;
  try {
    let done = 0;
    const tick = (step: string) => onProgress?.({ done: ++done, total, step });
    const checkAbort = () => {
      if (signal?.aborted) throw new NetnsError('ERR_NETNS_ABORTED', `down "${r.name}" aborted after ${done} of ${total} removals (run down again to finish)`, { syscall: 'topology down' });
    };

    // First what lives in namespaces we keep, so it is gone synchronously when down returns.
    await pool(foreignRoutes, r.concurrency, async ({ ns, rt }) => {
      checkAbort();
      await nsObject(ns).routes.delete(rt.spec, { missingOk: true });
      tick(`delete route ${rt.spec.to} (${ns})`);
    });
    await pool(linkMarkers, r.concurrency, async (m) => {
      checkAbort();
      if (present.has(m.netns)) {
        const index = await registry.liveIfIndex(m.netns, m.name);
        if (index !== undefined && index === m.marker!.index) {
          await nsObject(m.netns).links.delete(m.name, { missingOk: true });
          result.links.push({ netns: m.netns, name: m.name });
        }
      }
      if (!m.marker!.set) await registry.unmarkLink(m.netns, m.name);
      tick(`delete link ${m.name} (${m.netns})`);
    });
    await pool(natMarkers, r.concurrency, async (m) => {
      checkAbort();
      const api = present.has(m.netns) ? nsObject(m.netns).natTable(m.table) : undefined;
      if (api) {
        await api.flush();
        result.natTables.push({ netns: m.netns, table: m.table });
      }
      await registry.unmarkNat(m.netns, m.table);
      tick(`delete NAT table ${m.table} (${m.netns})`);
    });
    await pool(firewallMarkers, r.concurrency, async (m) => {
      checkAbort();
      if (present.has(m.netns)) {
        await nsObject(m.netns).firewallTable(m.table).flush();
        result.firewallTables.push({ netns: m.netns, table: m.table });
      }
      await registry.unmarkFirewall(m.netns, m.table);
      tick(`delete firewall table ${m.table} (${m.netns})`);
    });
    await pool([...ours], r.concurrency, async (name) => {
      checkAbort();
      if (foreign.has(name)) return;
      if (present.has(name)) {
        await nsObject(name).delete({ missingOk: true });
        result.namespaces.push(name);
        tick(`delete namespace ${name}`);
      } else if (ownFile.has(name)) {
        await registry.unmarkNamespace(name);
      }
    });
    // The namespace sets of its templates (bulk-created members) are empty now: forget them.
    await registry.pruneNamespaceSets((set) => registry.sameOwner(set.owner, owner));
    await registry.removeTopology(r.name);
  } catch (e) {
    cleanup?.close();
    throw e;
  }
  if (cleanup) await cleanup.wait(options.waitTimeoutMs ?? 60_000 + 100 * doomed.length);
  return result;
}
