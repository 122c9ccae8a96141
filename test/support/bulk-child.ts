// Run by test/bulk.test.ts under `ulimit -n 256`: creates N namespaces with bulk.createMany into
// the bridge br0 of HOST, counts descriptors before and after, deletes them, and prints a summary.
//   node bulk-child.js HOST PREFIX N GATEWAY
import { readdirSync, readlinkSync } from 'node:fs';
import { bulk, netns } from '../../lib/index';
import { native } from '../../lib/native';

/** What each open descriptor is (so a failing count says what was left open). */
function fdTargets(): Map<string, string> {
  const m = new Map<string, string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      m.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // the directory's own descriptor, closed by now
    }
  }
  return m;
}

async function main(): Promise<void> {
  const [hostName, prefix, nText, gw] = process.argv.slice(2);
  const n = Number(nText);
  const host = await netns.open(hostName);
  const names = Array.from({ length: n }, (_, k) => `${prefix}-${k}`);
  const before = native.bulkFdBudget();
  const targetsBefore = fdTargets();
  let newFds: string[] = [];
  let created = 0;
  let fdsAfter = 0;
  let group = 0;
  try {
    const r = await bulk.createMany(
      names.map((name, k) => ({
        name,
        veth: { name: `bu${process.pid % 1000}x${k}`, bridge: 'br0' },
        addresses: [`10.77.${(k + 1) >> 8}.${(k + 1) & 255}/16`],
        routes: [{ to: 'default', via: gw }],
      })),
      { hostNs: host, ipv6: false },
    );
    group = r.group;
    created = readdirSync('/run/netns').filter((e) => e.startsWith(`${prefix}-`)).length;
    fdsAfter = native.bulkFdBudget().open;
    newFds = [...fdTargets()].filter(([fd, t]) => targetsBefore.get(fd) !== t).map(([fd, t]) => `${fd} -> ${t}`);
  } finally {
    await bulk.deleteMany(names, { hostNs: host, group: group || undefined, missingOk: true });
  }
  const left = readdirSync('/run/netns').filter((e) => e.startsWith(`${prefix}-`)).length;
  process.stdout.write(JSON.stringify({ limit: before.limit, created, fdsBefore: before.open, fdsAfter, newFds, left }));
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e));
  process.exit(1);
});
