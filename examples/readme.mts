// The README's first example, exactly as printed there. Run as root: npm run example
import { netns } from 'netns-kit';

const host = await netns.create('demo-host');            // plays the machine
const [red, blue] = await Promise.all([netns.create('red'), netns.create('blue')]);

await host.links.add({ kind: 'bridge', name: 'v-net-0', up: true });
await host.addresses.add('v-net-0', '192.168.15.5/24');
for (const [ns, cidr] of [[red, '192.168.15.1/24'], [blue, '192.168.15.2/24']] as const) {
  await host.links.add({
    kind: 'veth', name: `veth-${ns.name}-br`, master: 'v-net-0', up: true,
    peer: { name: `veth-${ns.name}`, netns: ns, up: true },
  });
  await ns.addresses.add(`veth-${ns.name}`, cidr);
  await ns.routes.add({ to: 'default', via: '192.168.15.5' });
}
const ping = await red.exec('ping', ['-c1', '-W1', '192.168.15.2']);
console.log(ping.stdout);
console.log(await red.neighbors.list());                  // now holds 192.168.15.2
await Promise.all([red, blue, host].map((ns) => ns.delete()));
