// The tutorial end to end (../shared/tutorial.txt), in namespaces only: `host` plays the machine.
// Every step is checked with our own list calls and with `ip -j` / ping as independent witnesses.
import type { Netns } from '../lib/index';
import { ipJson, Sandbox } from './support/sandbox';

const sb = new Sandbox();
afterAll(() => sb.cleanup());

async function ping(from: Netns, to: string): Promise<void> {
  const r = await from.exec('ping', ['-c1', '-W2', to]);
  expect(r.stdout).toMatch(/1 received/);
}

function ipNeigh(ns: Netns): Array<{ dst: string; lladdr?: string }> {
  return ipJson<Array<{ dst: string; lladdr?: string }>>(ns, '-4', 'neigh', 'show');
}

let host: Netns;

test('four namespaces, each with only a down loopback and empty tables', async () => {
  host = await sb.ns('host', { loopbackUp: true });
  const four = await Promise.all(['red', 'blue', 'orange', 'gray'].map((c) => sb.ns(c)));
  for (const ns of four) {
    expect((await ns.links.list()).map((l) => [l.name, l.up])).toEqual([['lo', false]]);
    expect(await ns.neighbors.list()).toEqual([]);
    expect(await ns.routes.list()).toEqual([]);
    expect(ipJson(ns, 'route', 'show')).toEqual([]);
  }
  await Promise.all(four.map((ns) => ns.delete()));
});

test('connecting two namespaces with a veth pair', async () => {
  const red = await sb.ns('red');
  const blue = await sb.ns('blue');
  await red.links.add({ kind: 'veth', name: 'veth-red', peer: { name: 'veth-blue', netns: blue } });
  await red.addresses.add('veth-red', '192.168.15.1/24');
  await blue.addresses.add('veth-blue', '192.168.15.2/24');
  await red.links.set('veth-red', { up: true });
  await blue.links.set('veth-blue', { up: true });

  const redLink = await red.links.get('veth-red');
  const blueLink = await blue.links.get('veth-blue');
  expect(redLink.peer).toMatchObject({ index: blueLink.index, netns: blue.name });
  expect(ipJson<Array<{ link_index: number }>>(red, 'link', 'show', 'veth-red')[0].link_index).toBe(blueLink.index);

  await ping(red, '192.168.15.2');
  await ping(blue, '192.168.15.1');

  // ARP: each side knows the other's MAC; the host knows neither.
  expect(await red.neighbors.list({ dev: 'veth-red', family: 4 })).toEqual([expect.objectContaining({ address: '192.168.15.2', mac: blueLink.mac })]);
  expect(await blue.neighbors.list({ dev: 'veth-blue', family: 4 })).toEqual([expect.objectContaining({ address: '192.168.15.1', mac: redLink.mac })]);
  expect(ipNeigh(red)).toEqual([expect.objectContaining({ dst: '192.168.15.2', lladdr: blueLink.mac })]);
  expect(ipNeigh(blue)).toEqual([expect.objectContaining({ dst: '192.168.15.1', lladdr: redLink.mac })]);
  expect(ipNeigh(host)).toEqual([]);

  // Routes: only the connected network.
  expect(await red.routes.list({ family: 4 })).toEqual([expect.objectContaining({ to: '192.168.15.0/24', dev: 'veth-red', protocol: 'kernel', scope: 'link' })]);
  expect(ipJson<Array<{ dst: string; dev: string }>>(blue, '-4', 'route', 'show')).toEqual([expect.objectContaining({ dst: '192.168.15.0/24', dev: 'veth-blue' })]);

  // Deleting a namespace deletes its resources: the pair goes with red.
  await red.delete({ wait: true });
  expect(ipJson<Array<{ ifname: string }>>(blue, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
  await blue.delete();
});

test('connecting many namespaces through a bridge, then the host as gateway', async () => {
  const colours = ['red', 'blue', 'orange', 'gray'];
  const all = await Promise.all(colours.map((c) => sb.ns(c)));
  await host.links.add({ kind: 'bridge', name: 'v-net-0', up: true });
  for (const [i, ns] of all.entries()) {
    await host.links.add({
      kind: 'veth',
      name: `veth-${colours[i]}-br`,
      master: 'v-net-0',
      up: true,
      peer: { name: `veth-${colours[i]}`, netns: ns, up: true },
    });
    await ns.addresses.add(`veth-${colours[i]}`, `192.168.15.${i + 1}/24`);
  }
  await host.addresses.add('v-net-0', '192.168.15.5/24');

  // Four ports on the bridge: ours and ip's view.
  expect((await host.links.list()).filter((l) => l.master === 'v-net-0').map((l) => l.name).sort()).toEqual(colours.map((c) => `veth-${c}-br`).sort());
  expect(ipJson<Array<{ ifname: string }>>(host, 'link', 'show', 'master', 'v-net-0')).toHaveLength(4);

  const [red, , orange, gray] = all;
  await ping(red, '192.168.15.4');
  await ping(gray, '192.168.15.3');
  await ping(orange, '192.168.15.5');

  // The "host network": an address on another link of the host namespace.
  await host.links.add({ kind: 'bridge', name: 'enp1s0', up: true });
  await host.addresses.add('enp1s0', '10.0.2.15/24');
  const unreachable = await red.exec('ping', ['-c1', '-W1', '10.0.2.15'], { check: false });
  expect(unreachable.exitCode).not.toBe(0);
  expect(unreachable.stderr).toMatch(/Network is unreachable/);

  for (const ns of all) await ns.routes.add({ to: '10.0.2.0/24', via: '192.168.15.5' });
  await ping(red, '10.0.2.15');
  await ping(gray, '10.0.2.15');

  for (const ns of all) await ns.routes.add({ to: 'default', via: '192.168.15.5' });
  for (const ns of all) {
    expect(await ns.routes.list({ family: 4 })).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ to: '10.0.2.0/24', via: '192.168.15.5' }),
        expect.objectContaining({ to: 'default', via: '192.168.15.5' }),
      ]),
    );
    expect(ipJson<Array<{ dst: string; gateway?: string }>>(ns, '-4', 'route', 'show', 'default')).toEqual([expect.objectContaining({ gateway: '192.168.15.5' })]);
  }
  // the host learnt its neighbours on the bridge
  expect((await host.neighbors.list({ dev: 'v-net-0', family: 4 })).map((n) => n.address)).toContain('192.168.15.3');

  // deleting the namespaces removes their veths from the host and the bridge
  await Promise.all(all.map((ns) => ns.delete({ wait: true })));
  expect(ipJson(host, 'link', 'show', 'master', 'v-net-0')).toEqual([]);
  expect((await host.links.list()).map((l) => l.name).sort()).toEqual(['enp1s0', 'lo', 'v-net-0']);
});
