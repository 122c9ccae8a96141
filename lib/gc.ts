/**
 * gc: finds the namespaces, links, NAT and firewall tables netns-kit created and lost track of, and removes
 * them — never anything it did not create. Equivalent to: `netns-kit gc` (`--dry-run` lists).
 *
 * "Lost" means (lib/registry.ts has the markers):
 *  - a namespace created by `netns.create(name, { temporary: true })` whose creating process has
 *    exited (or was killed) without deleting it (plain `netns.create()` persists, like `ip netns add`);
 *  - anything created by a topology whose `up` never completed: the `up` process died (or was
 *    killed) before finishing and before rolling back;
 *  - anything owned by a topology that no longer has a record (e.g. its record was removed).
 * Kept: namespaces created by plain `netns.create()` (persistent); everything of a topology whose `up` completed,
 * until `down`; everything whose owner process is still running; and everything netns-kit did not
 * create (no marker, e.g. `ip netns add`), or that was replaced since by a same-named object of
 * somebody else (a different nsfs inode or interface index than the one recorded).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { RUN_DIR, list as listNamespaces, Netns } from './netns';
import * as registry from './registry';
import { invalid } from './errors';
import { requireNetworkPrivileges } from './privileges';

export interface GcOptions {
  /** only report what would be removed */
  dryRun?: boolean;
  /**
   * Only consider namespaces (and links and NAT tables in namespaces) and topologies whose name
   * starts with this, e.g. a test harness cleaning up after its own runs. Default: everything.
   */
  prefix?: string;
}

export interface GcReport {
  namespaces: string[];
  links: Array<{ netns: string; name: string }>;
  natTables: Array<{ netns: string; table: string }>;
  /** firewall tables (lib/firewall.ts) in namespaces we do not own */
  firewallTables: Array<{ netns: string; table: string }>;
  /** topology records whose `up` never completed, dropped with their objects */
  topologies: string[];
  /** markers without an object (a crash between marker and creation, or deletion and unmarking), dropped */
  staleMarkers: number;
  /** objects that could not be removed, with the reason */
  errors: string[];
}

/** A marker that cannot be parsed may be one a live process is writing this very moment. */
const YOUNG_MS = 60_000;

/** Removes what netns-kit created and lost track of; `{ dryRun: true }` only reports it. */
export async function gc(options: GcOptions = {}): Promise<GcReport> {
  const dryRun = options.dryRun === true;
  const prefix = options.prefix ?? '';
  if (typeof prefix !== 'string') throw invalid('ERR_NETNS_INVALID_ARG', 'gc prefix must be a string');
  const mine = (name: string) => name.startsWith(prefix);
  if (!dryRun) requireNetworkPrivileges('gc');
  const report: GcReport = { namespaces: [], links: [], natTables: [], firewallTables: [], topologies: [], staleMarkers: 0, errors: [] };
  const records = new Map<string, registry.TopologyRecord | undefined>();
  const present = new Set((await listNamespaces()).map((n) => n.name!));
  const nsObject = (name: string) => new Netns(name, path.join(RUN_DIR, name), false);

  // Sets with an entry that could not be handled: kept for the next gc.
  const failedSets = new Set<string>();
  // Links and NAT tables first: they live in namespaces we keep, and must go synchronously.
  for (const m of await registry.listLinkMarkers()) {
    if (!mine(m.netns)) continue;
    if (!m.marker) {
      if (m.ageMs > YOUNG_MS && !dryRun) await registry.unmarkLink(m.netns, m.name);
      continue;
    }
    if (!(await registry.ownerLost(m.marker.owner, records))) continue;
    const index = present.has(m.netns) ? await registry.liveIfIndex(m.netns, m.name) : undefined;
    if (index !== undefined && index === m.marker.index) {
      report.links.push({ netns: m.netns, name: m.name });
      if (!dryRun) {
        try {
          await nsObject(m.netns).links.delete(m.name, { missingOk: true });
        } catch (e) {
          report.errors.push(`link ${m.name} (${m.netns}): ${(e as Error).message}`);
          if (m.marker.set) failedSets.add(m.marker.set);
          continue;
        }
      }
    } else report.staleMarkers++;
    // A set's entry goes with its set (below).
    if (!dryRun && !m.marker.set) await registry.unmarkLink(m.netns, m.name);
  }

  for (const m of await registry.listNatMarkers()) {
    if (!mine(m.netns)) continue;
    if (!m.marker) {
      if (m.ageMs > YOUNG_MS && !dryRun) await registry.unmarkNat(m.netns, m.table);
      continue;
    }
    if (!(await registry.ownerLost(m.marker.owner, records))) continue;
    if (present.has(m.netns)) {
      const api = nsObject(m.netns).natTable(m.table);
      report.natTables.push({ netns: m.netns, table: m.table });
      if (!dryRun) {
        try {
          await api.flush();
        } catch (e) {
          report.errors.push(`NAT table ${m.table} (${m.netns}): ${(e as Error).message}`);
          continue;
        }
      }
    } else report.staleMarkers++;
    if (!dryRun) await registry.unmarkNat(m.netns, m.table);
  }

  for (const m of await registry.listFirewallMarkers()) {
    if (!mine(m.netns)) continue;
    if (!m.marker) {
      if (m.ageMs > YOUNG_MS && !dryRun) await registry.unmarkFirewall(m.netns, m.table);
      continue;
    }
    if (!(await registry.ownerLost(m.marker.owner, records))) continue;
    if (present.has(m.netns)) {
      report.firewallTables.push({ netns: m.netns, table: m.table });
      if (!dryRun) {
        try {
          await nsObject(m.netns).firewallTable(m.table).flush();
        } catch (e) {
          report.errors.push(`firewall table ${m.table} (${m.netns}): ${(e as Error).message}`);
          continue;
        }
      }
    } else report.staleMarkers++;
    if (!dryRun) await registry.unmarkFirewall(m.netns, m.table);
  }

  const nsMarkers = await registry.listNamespaceMarkers();
  // The newest marker of each name speaks for it: an older one (a set entry never confirmed, then
  // the name made again by somebody else) describes a namespace that is not the one there now.
  const newest = new Map<string, string>();
  for (const m of nsMarkers) {
    if (m.marker && (newest.get(m.name) ?? '') < m.marker.created) newest.set(m.name, m.marker.created);
  }
  const collected = new Set<string>();
  for (const m of nsMarkers) {
    if (!mine(m.name)) continue;
    // A set entry is dropped with its whole set (below), never by name: the name's own marker
    // file, if any, belongs to somebody else.
    const unmark = async () => {
      if (dryRun || m.marker?.set) return;
      if (m.marker?.journal !== undefined) registry.unmarkJournalEntry(m.marker.journal, m.name);
      else await registry.unmarkNamespaceFile(m.name);
    };
    if (!m.marker) {
      // Written by a process that died between opening and writing it, before it created anything.
      if (m.ageMs > YOUNG_MS) {
        report.staleMarkers++;
        await unmark();
      }
      continue;
    }
    let inode: number | undefined;
    if (present.has(m.name)) inode = (await fs.stat(path.join(RUN_DIR, m.name)).catch(() => undefined))?.ino;
    if (!(await registry.ownerLost(m.marker.owner, records))) {
      // An owner that is not lost (a persistent namespace, a live process, a completed topology)
      // whose namespace another tool removed (`ip netns del`) or replaced: the entry speaks for
      // nothing, and would keep its journal forever. Only a finished create counts (its inode is
      // recorded after the namespace exists); one in progress has no namespace yet. Set entries
      // go with their set.
      if (!m.marker.set && m.marker.inode !== undefined && inode !== m.marker.inode) {
        report.staleMarkers++;
        await unmark();
      }
      continue;
    }
    // No inode recorded: the owner died between creating the namespace and recording its inode
    // (a window of one write). The namespace of that name is taken to be the one it made; only a
    // same-named `ip netns add` in that window and after the crash could be mistaken.
    // A newer marker of that name (another journal's entry, a set's) always speaks for it, inode
    // or not: the kernel reuses nsfs inode numbers, so an old entry's inode may match a namespace
    // made later under the same name by somebody else (after a foreign `ip netns del`).
    const superseded = newest.get(m.name)! > m.marker.created;
    const ours = inode !== undefined && !superseded && (m.marker.inode === undefined || m.marker.inode === inode);
    if (!ours) {
      report.staleMarkers++;
      await unmark();
      continue;
    }
    // Named by its own marker file and by a set, or by two sets: removed once.
    if (collected.has(m.name)) continue;
    collected.add(m.name);
    report.namespaces.push(m.name);
    if (!dryRun) {
      try {
        await nsObject(m.name).delete({ missingOk: true });
      } catch (e) {
        report.errors.push(`namespace ${m.name}: ${(e as Error).message}`);
        if (m.marker.set) failedSets.add(m.marker.set);
      }
    }
  }

  // Sets whose owner is lost have had every entry handled above: drop them, unless an entry lies
  // outside `prefix` (not looked at) or its namespace could not be removed (the next gc retries).
  for (const set of registry.listNamespaceSets()) {
    if (failedSets.has(set.id) || ![...set.names].every(mine)) continue;
    if (!(await registry.ownerLost(set.owner, records))) continue;
    if (!dryRun) registry.unmarkNamespaceSet(set.id);
  }

  // Journals of processes that are gone, with every entry handled (collected, stale or deleted).
  if (!dryRun) registry.pruneJournals();

  for (const r of await registry.listTopologies()) {
    if (!mine(r.name) || !registry.topologyLost(r)) continue;
    report.topologies.push(r.name);
    if (!dryRun) await registry.removeTopology(r.name);
  }
  report.namespaces.sort();
  return report;
}
