/**
 * What NAT (lib/nat.ts) and the firewall (lib/firewall.ts) share on their way to libnftables: the
 * per-namespace queue their changes run in, and finding the tables of one kind that netns-kit owns.
 */
import { call, NetnsError } from './errors';
import { native } from './native';
import { document, listTable, parseListing, type KernelTable, type NftCommand } from './nat-rules';
import type { Netns } from './netns';

// One queue per namespace (keyed by its path): changes and the reads they depend on never
// interleave, whichever object (NAT or firewall, any table) they come through.
const queues = new Map<string, Promise<unknown>>();

export function serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return next;
}

/**
 * Names of the inet tables of `ns` that `owned` recognises (by the static rules netns-kit puts in
 * each). Equivalent to: `nft list tables inet` and a look into each.
 */
export async function ownedInetTables(ns: Netns, syscall: string, owned: (t: KernelTable) => boolean): Promise<string[]> {
  const run = (cmds: NftCommand[]) => call({ netns: ns.label, syscall }, () => native.nftRun(ns.ref, document(cmds)));
  const doc = JSON.parse((await run([{ list: { tables: { family: 'inet' } } }])) || '{"nftables":[]}') as { nftables: { table?: { family: string; name: string } }[] };
  const names = doc.nftables.flatMap((x) => (x.table && x.table.family === 'inet' ? [x.table.name] : []));
  const out: string[] = [];
  for (const name of names) {
    try {
      if (owned(parseListing(await run([listTable(name)])))) out.push(name);
    } catch (e) {
      if (!(e instanceof NetnsError && e.code === 'ENOENT')) throw e; // deleted meanwhile
    }
  }
  return out;
}
