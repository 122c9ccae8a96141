// A worker_threads Worker using netns-kit on its own (test/11-embed.test.ts starts several at once).
//   role 'full': creates its namespace, a veth into the shared hub (both ends up), an address, a NAT
//                rule, watches its links, provokes one failure, deletes its namespace, reports.
//   role 'busy': creates its namespace, then keeps many calls in flight until it is terminated.
import { parentPort, workerData } from 'node:worker_threads';
import { netns, NetnsError } from '../../lib/index';

interface Data {
  role: 'full' | 'busy';
  name: string;
  hub: string;
  index: number;
}

const data = workerData as Data;

function post(message: Record<string, unknown>): void {
  parentPort!.postMessage(message);
}

async function full(): Promise<void> {
  const ns = await netns.create(data.name);
  try {
    const hub = await netns.open(data.hub);
    const hubEnd = `h${data.index}`;
    await ns.links.add({ kind: 'veth', name: 'e0', up: true, peer: { name: hubEnd, netns: hub, up: true } });
    await ns.addresses.add('e0', `198.51.100.${data.index + 1}/24`);
    await ns.nat.masquerade({ source: '10.9.0.0/24', outInterface: 'e0' });
    const watch = ns.watch({ links: true });
    await watch.ready;
    await ns.links.add({ kind: 'bridge', name: 'wb0' });
    let sawBridge = false;
    for await (const e of watch) {
      if (e.type === 'link' && e.action === 'new' && e.link.name === 'wb0') {
        sawBridge = true;
        break;
      }
    }
    let failure: Record<string, unknown> = {};
    try {
      await ns.links.add({ kind: 'bridge', name: 'wb0' });
    } catch (e) {
      failure = {
        isError: e instanceof Error,
        isNetnsError: e instanceof NetnsError,
        code: (e as NetnsError).code,
        errno: (e as NetnsError).errno,
        stackHasCaller: /embed-worker/.test((e as Error).stack ?? ''),
      };
    }
    const links = (await ns.links.list()).map((l) => l.name).sort();
    const hubUp = (await hub.links.get(hubEnd)).up;
    post({ done: true, sawBridge, failure, links, hubUp });
  } finally {
    // wait: the hub end goes with the namespace, and the test looks for it
    await ns.delete({ wait: true });
  }
}

async function busy(): Promise<void> {
  const ns = await netns.create(data.name);
  post({ started: true });
  let n = 0;
  const watches = [ns.watch({ links: true }), ns.watch({ addresses: true })];
  // Never awaited as a whole: calls are always in flight when the Worker is terminated.
  for (;;) {
    const batch: Promise<unknown>[] = [];
    for (let i = 0; i < 8; i++, n++) {
      batch.push(ns.links.add({ kind: 'bridge', name: `b${n}` }).catch(() => undefined));
      batch.push(ns.links.list().catch(() => undefined));
    }
    batch.push(ns.nat.masquerade({ source: `10.${n % 250}.0.0/24`, outInterface: 'lo' }).catch(() => undefined));
    if (n === 8) post({ inflight: true });
    await Promise.race(batch);
    if (n > 4000) break; // the test terminates us long before
  }
  await Promise.all(watches.map((w) => w.close()));
}

(data.role === 'full' ? full() : busy()).catch((e: unknown) => {
  post({ error: String((e as Error)?.stack ?? e) });
});
