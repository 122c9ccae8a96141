/**
 * netns-kit as a benchmark peer, in its own process like every other peer (so its RSS and file
 * descriptors are its own). Prints {"ms": ...}: the time of the library calls alone (node's own
 * start-up, ~50 ms, is not the library's cost and is excluded; the harness also records wall time).
 *
 *   node kit-peer.js bulk|perop|perop8|topology setup    HOST PREFIX N GATEWAY IPV6OFF GROUP
 *   node kit-peer.js bulk|perop|perop8|topology teardown HOST PREFIX N GROUP
 *
 * `perop` is the plain loop a user writes first (create, veth with its peer up, lo up, address,
 * default route; next namespace), one call awaited after the other; `perop8` the same loop with 8
 * namespaces in flight.
 *
 * `topology` is the same scenario as a declarative topology: a host namespace with the bridge and
 * one template of N members; `up`, then `down` and the same wait for the kernel as the other peers.
 */
import { bulk, netns, topology, type Topology } from '../lib/index';

function address(i: number): string {
  return `10.10.${i >> 8}.${i & 255}/16`;
}

function asTopology(prefix: string, n: number, gateway: string, ipv6off: boolean): Topology {
  // A declared namespace that exists already may not have its bridge claimed by a topology, so
  // the topology brings its own host (one namespace and a bridge more, within the timed window:
  // ~0.1% of the work at N=1000); the harness's host stays idle for this peer.
  const host = `${prefix}thost`;
  return {
    name: `bench-${prefix}`.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 32),
    namespaces: [{ name: host, ...(ipv6off ? { ipv6: false } : {}), bridges: [{ name: 'br0', addresses: [`${gateway}/16`] }] }],
    templates: [
      {
        count: n,
        name: `${prefix}{i+1}`,
        uplink: { name: 'eth0', peerName: `${prefix}{i+1}`, netns: host, bridge: 'br0' },
        addresses: [{ pool: '10.10.0.0/16', start: 1 }],
        routes: [{ to: 'default', via: gateway }],
        ...(ipv6off ? { ipv6: false } : {}),
      },
    ],
  };
}

async function main(argv: string[]): Promise<void> {
  const [style, action, hostName, prefix, nText] = argv;
  const n = Number(nText);
  const names = Array.from({ length: n }, (_, k) => `${prefix}${k + 1}`);
  const host = await netns.open(hostName);
  const t0 = process.hrtime.bigint();
  if (action === 'setup') {
    const gateway = argv[5];
    const ipv6off = argv[6] === '1';
    const group = Number(argv[7]);
    if (style === 'topology') {
      await topology.up(asTopology(prefix, n, gateway, ipv6off));
    } else if (style === 'bulk') {
      await bulk.createMany(
        names.map((name, k) => ({
          name,
          veth: { name, peerName: 'eth0', bridge: 'br0' },
          addresses: [address(k + 1)],
          routes: [{ to: 'default', via: gateway }],
        })),
        { hostNs: host, ipv6: !ipv6off, group, concurrency: process.env.NK_BENCH_CONCURRENCY ? Number(process.env.NK_BENCH_CONCURRENCY) : undefined },
      );
    } else {
      const one = async (k: number) => {
        const name = names[k];
        const ns = await netns.create(name, { loopbackUp: true, ipv6: !ipv6off });
        await host.links.add({ kind: 'veth', name, master: 'br0', up: true, group, peer: { name: 'eth0', netns: ns, up: true } });
        await ns.addresses.add('eth0', address(k + 1));
        await ns.routes.add({ to: 'default', via: gateway });
      };
      let next = 0;
      const lanes = style === 'perop8' ? 8 : 1;
      await Promise.all(Array.from({ length: lanes }, async () => {
        while (next < n) await one(next++);
      }));
    }
  } else {
    const group = Number(argv[5]);
    if (style === 'topology') {
      const t = asTopology(prefix, n, '10.10.255.254', false);
      const watch = await bulk.watchCleanup([...names, `${prefix}thost`]);
      await topology.down(t);
      await watch.wait(600000);
    } else if (style === 'bulk') {
      // NK_BENCH_NOGROUP=1: release the namespaces only and let the kernel's netns cleanup take the veths.
      await bulk.deleteMany(names, process.env.NK_BENCH_NOGROUP ? { timeoutMs: 600000 } : { hostNs: host, group, timeoutMs: 600000 });
    } else {
      // The plain API: one `ip netns del` equivalent each; then the same wait for the kernel.
      const watch = await bulk.watchCleanup(names);
      for (const name of names) await netns.delete(name);
      await watch.wait(600000);
    }
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(`${JSON.stringify({ ms })}\n`);
}

main(process.argv.slice(2)).catch((e) => {
  console.error(e);
  process.exit(1);
});
