// Links: every kind the issue names, set/get/list/delete, peers in other namespaces, rollback,
// refused input. Our list calls and `ip -j -d link` both check each result.
import { netns, NetnsError, type Netns } from '../lib/index';
import { errorCode as code, ipJson, ifName, Sandbox } from './support/sandbox';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

interface IpLink {
  ifindex: number;
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  master?: string;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind: string; info_data?: Record<string, unknown> };
}

function ipLinks(ns: Netns): IpLink[] {
  return ipJson<IpLink[]>(ns, '-d', 'link', 'show');
}

function ipLink(ns: Netns, name: string): IpLink | undefined {
  return ipLinks(ns).find((l) => l.ifname === name);
}

test('bridge: add, set mtu/mac/down/up, rename, delete', async () => {
  const ns = await sb.ns('br');
  await ns.links.add({ kind: 'bridge', name: 'v-net-0', up: true, mtu: 1400 });
  let l = await ns.links.get('v-net-0');
  expect(l).toMatchObject({ name: 'v-net-0', kind: 'bridge', mtu: 1400, up: true });
  expect(ipLink(ns, 'v-net-0')).toMatchObject({ mtu: 1400, linkinfo: { info_kind: 'bridge' } });

  await ns.links.set('v-net-0', { mtu: 1300, mac: '02:00:00:00:aa:01', up: false });
  l = await ns.links.get('v-net-0');
  expect(l).toMatchObject({ mtu: 1300, mac: '02:00:00:00:aa:01', up: false });
  expect(ipLink(ns, 'v-net-0')).toMatchObject({ mtu: 1300, address: '02:00:00:00:aa:01' });
  expect(ipLink(ns, 'v-net-0')!.flags).not.toContain('UP');

  await ns.links.set('v-net-0', { name: 'v-net-1' });
  expect(ipLink(ns, 'v-net-0')).toBeUndefined();
  expect((await ns.links.get('v-net-1')).index).toBe(l.index);

  await ns.links.delete('v-net-1');
  expect(ipLink(ns, 'v-net-1')).toBeUndefined();
  expect(await code(ns.links.delete('v-net-1'))).toBe('ENOENT');
  await ns.links.delete('v-net-1', { missingOk: true });
  expect(await code(ns.links.get('v-net-1'))).toBe('ENOENT');
});

test('veth: peer created directly in another namespace, master and up at creation', async () => {
  const host = await sb.ns('vhost');
  const red = await sb.ns('vred');
  await host.links.add({ kind: 'bridge', name: 'br0', up: true });
  await host.links.add({ kind: 'veth', name: 'veth-red-br', master: 'br0', up: true, peer: { name: 'veth-red', netns: red, up: true, mtu: 1450 } });

  const hostEnd = await host.links.get('veth-red-br');
  const peerEnd = await red.links.get('veth-red');
  expect(hostEnd).toMatchObject({ kind: 'veth', master: 'br0', up: true });
  expect(peerEnd).toMatchObject({ kind: 'veth', up: true, mtu: 1450 });
  expect(hostEnd.peer).toEqual({ index: peerEnd.index, netns: red.name, netnsId: expect.any(Number) });
  expect(peerEnd.peer).toEqual({ index: hostEnd.index, netns: host.name, netnsId: expect.any(Number) });

  const w = ipLink(host, 'veth-red-br')!;
  expect(w.master).toBe('br0');
  expect(w.flags).toContain('UP');
  expect(w.link_index).toBe(peerEnd.index);
  expect(ipLink(red, 'veth-red')!.flags).toContain('UP');
  // The peer never existed in the host namespace.
  expect(ipLink(host, 'veth-red')).toBeUndefined();

  // hairpin on the bridge port (ip link set ... type bridge_slave hairpin on)
  await host.links.set('veth-red-br', { hairpin: true });
  expect(ipJson<Array<{ linkinfo: { info_slave_data: { hairpin: boolean } } }>>(host, '-d', 'link', 'show', 'veth-red-br')[0].linkinfo.info_slave_data.hairpin).toBe(true);
  await host.links.set('veth-red-br', { hairpin: false, mtu: 1400 });
  expect(ipJson<Array<{ mtu: number; linkinfo: { info_slave_data: { hairpin: boolean } } }>>(host, '-d', 'link', 'show', 'veth-red-br')[0]).toMatchObject({ mtu: 1400, linkinfo: { info_slave_data: { hairpin: false } } });

  // nomaster, then master again
  await host.links.set('veth-red-br', { master: null });
  expect(ipLink(host, 'veth-red-br')!.master).toBeUndefined();
  await host.links.set('veth-red-br', { master: 'br0' });
  expect((await host.links.get('veth-red-br')).master).toBe('br0');

  // deleting one end removes the other
  await host.links.delete('veth-red-br');
  expect(ipLink(red, 'veth-red')).toBeUndefined();
});

test('veth in one namespace, chosen index and group', async () => {
  const ns = await sb.ns('vsame');
  await ns.links.add({ kind: 'veth', name: 'a0', index: 4242, group: 7, peer: { name: 'b0', index: 4243 } });
  const [a, b] = [await ns.links.get('a0'), await ns.links.get('b0')];
  expect(a).toMatchObject({ index: 4242, group: 7 });
  expect(b.index).toBe(4243);
  expect(a.peer).toEqual({ index: 4243 });
  expect(ipLink(ns, 'a0')!.ifindex).toBe(4242);
});

test('a veth whose peer cannot be created leaves no host end', async () => {
  const host = await sb.ns('rbhost');
  const red = await sb.ns('rbred');
  await red.links.add({ kind: 'bridge', name: 'taken' });
  const e = await code(host.links.add({ kind: 'veth', name: 'half', peer: { name: 'taken', netns: red } }));
  expect(e).toBe('EEXIST');
  expect(ipLink(host, 'half')).toBeUndefined();
  expect((await host.links.list()).map((l) => l.name)).toEqual(['lo']);
});

test('move a link to another namespace', async () => {
  const a = await sb.ns('mva');
  const b = await sb.ns('mvb');
  await a.links.add({ kind: 'veth', name: 'm0', peer: { name: 'm1' } });
  await a.links.set('m1', { netns: b });
  expect(ipLink(a, 'm1')).toBeUndefined();
  expect((await b.links.get('m1')).peer?.netns).toBe(a.name);
});

test('macvlan and vxlan; dummy is missing on this kernel and says so', async () => {
  const ns = await sb.ns('kinds');
  await ns.links.add({ kind: 'bridge', name: 'lower', up: true });
  await ns.links.add({ kind: 'macvlan', name: 'mv0', parent: 'lower', mode: 'bridge', up: true });
  expect(await ns.links.get('mv0')).toMatchObject({ kind: 'macvlan', up: true });
  expect(ipLink(ns, 'mv0')!.linkinfo).toMatchObject({ info_kind: 'macvlan', info_data: { mode: 'bridge' } });

  await ns.links.add({ kind: 'vxlan', name: 'vx0', id: 42, remote: '192.0.2.9', local: '192.0.2.1', port: 4789 });
  const vx = ipLink(ns, 'vx0')!.linkinfo!;
  expect(vx.info_kind).toBe('vxlan');
  expect(vx.info_data).toMatchObject({ id: 42, remote: '192.0.2.9', local: '192.0.2.1', port: 4789 });

  // This kernel is built without dummy: the user gets the kernel's answer, typed.
  const err = await host_dummy(ns);
  expect(err.code).toBe('EOPNOTSUPP');
  expect(err.extack).toMatch(/Unknown device type/);
  expect(err.message).toMatch(/add link d0/);
  expect(ipLink(ns, 'd0')).toBeUndefined();

  expect(await code(ns.links.add({ kind: 'macvlan', name: 'mv1', parent: 'no-such-dev' }))).toBe('ENOENT');
});

async function host_dummy(ns: Netns): Promise<NetnsError> {
  try {
    await ns.links.add({ kind: 'dummy', name: 'd0' });
  } catch (e) {
    return e as NetnsError;
  }
  throw new Error('dummy link unexpectedly created');
}

test('bad input never reaches the kernel', async () => {
  const ns = await sb.ns('badlink');
  const before = ipLinks(ns);
  const cases: Array<[Promise<unknown>, string]> = [
    [ns.links.add({ kind: 'bridge', name: '' }), 'ERR_NETNS_INVALID_IFNAME'],
    [ns.links.add({ kind: 'bridge', name: 'x'.repeat(16) }), 'ERR_NETNS_INVALID_IFNAME'],
    [ns.links.add({ kind: 'bridge', name: 'ü'.repeat(8) }), 'ERR_NETNS_INVALID_IFNAME'],
    [ns.links.add({ kind: 'bridge', name: 'a:b' }), 'ERR_NETNS_INVALID_IFNAME'],
    [ns.links.add({ kind: 'bridge', name: 'a b' }), 'ERR_NETNS_INVALID_IFNAME'],
    [ns.links.add({ kind: 'bridge', name: 'a/b' }), 'ERR_NETNS_INVALID_IFNAME'],
    [ns.links.add({ kind: 'bridge', name: 'eth%d' }), 'ERR_NETNS_INVALID_IFNAME'],
    [ns.links.add({ kind: 'bridge', name: 'ok', mtu: 67 }), 'ERR_NETNS_INVALID_MTU'],
    [ns.links.add({ kind: 'bridge', name: 'ok', mtu: 70000 }), 'ERR_NETNS_INVALID_MTU'],
    [ns.links.add({ kind: 'veth', name: 'ok', peer: { name: 'x'.repeat(16) } }), 'ERR_NETNS_INVALID_IFNAME'],
    [ns.links.add({ kind: 'veth', name: 'ok', peer: { name: 'p', netns: {} as Netns } }), 'ERR_NETNS_INVALID_ARG'],
    [ns.links.set('lo', { mtu: 0 }), 'ERR_NETNS_INVALID_MTU'],
    [ns.links.set('lo', { name: 'bad name' }), 'ERR_NETNS_INVALID_IFNAME'],
    [ns.links.set('lo', { mac: 'zz:00:00:00:00:00' }), 'ERR_NETNS_INVALID_MAC'],
    [ns.links.delete('../lo'), 'ERR_NETNS_INVALID_IFNAME'],
  ];
  for (const [p, expected] of cases) expect(await code(p)).toBe(expected);
  expect(ipLinks(ns)).toEqual(before);
});

test('kernel refusals keep errno and extended ack', async () => {
  const ns = await sb.ns('kref');
  await ns.links.add({ kind: 'bridge', name: 'br0' });
  const e = (await ns.links.add({ kind: 'bridge', name: 'br0' }).catch((x: unknown) => x)) as NetnsError;
  expect(e).toMatchObject({ code: 'EEXIST', errno: -17, syscall: 'add link', ifname: 'br0', netns: ns.name });
  expect(e.stack).toMatch(/03-links\.test/); // points at the caller's line, not at the addon
  // bridge MTU above its maximum: the kernel says why
  const big = (await ns.links.set('br0', { mtu: 65536 }).catch((x: unknown) => x)) as NetnsError;
  expect(big.code).toBe('EINVAL');
  expect(big.extack).toMatch(/MTU/i);
});

test('many links listed with correct masters and peers (names unique per test)', async () => {
  const host = await sb.ns('many');
  const peers = await Promise.all([0, 1, 2].map((i) => sb.ns(`peer${i}`)));
  await host.links.add({ kind: 'bridge', name: 'brm', up: true });
  for (const [i, p] of peers.entries()) {
    await host.links.add({ kind: 'veth', name: ifName(`h${i}-`), master: 'brm', up: true, peer: { name: 'eth0', netns: p, up: true } });
  }
  const links = await host.links.list();
  const ports = links.filter((l) => l.master === 'brm');
  expect(ports).toHaveLength(3);
  expect(new Set(ports.map((l) => l.peer?.netns))).toEqual(new Set(peers.map((p) => p.name)));
  for (const p of peers) expect((await p.links.get('eth0')).peer?.netns).toBe(host.name);
  void netns;
});
