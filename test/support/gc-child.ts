// Child process for the gc test: makes namespaces the ways a program does, then hangs so the test
// can SIGKILL it. argv: JSON { plain: string[] (temporary: true), persist: string (default options), bulk?: string[], bulkPersist?: string[],
// done: Topology, interrupted: Topology, stopAt: number }
import { bulk, netns, topology, type Topology } from '../../lib/index';

interface Orders {
  plain: string[];
  persist: string;
  /** made with bulk.createMany (no veths), owned by this process / persistent */
  bulk?: string[];
  bulkPersist?: string[];
  done: Topology;
  interrupted: Topology;
  stopAt: number;
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2]) as Orders;
  // Scratch namespaces opt into gc; the default persists like `ip netns add` (gc keeps it).
  for (const n of o.plain) await netns.create(n, { temporary: true });
  await netns.create(o.persist);
  if (o.bulk) await bulk.createMany(o.bulk.map((name) => ({ name })), {});
  if (o.bulkPersist) await bulk.createMany(o.bulkPersist.map((name) => ({ name })), { persist: true });
  await topology.up(o.done);
  if (o.stopAt === 0) {
    // Nothing of `interrupted`: just wait to be killed.
    process.stdout.write('READY\n');
    setInterval(() => undefined, 1000);
    return;
  }
  await topology.up(o.interrupted, {
    onProgress: (p) => {
      if (p.done === o.stopAt) {
        // Linux pipes are written synchronously: the parent sees this before we spin.
        process.stdout.write('READY\n');
        for (;;) {
          // Spin inside up(), between two steps, until SIGKILL: an up that never completes.
        }
      }
    },
  });
  process.stdout.write('FINISHED (stopAt too large)\n');
}

main().catch((e: unknown) => {
  process.stdout.write(`ERROR ${(e as Error).message}\n`);
  process.exit(1);
});
