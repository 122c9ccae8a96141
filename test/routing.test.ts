// Routing beyond one table (issue 16): policy rules, multipath routes, nexthop objects, route
// look-up, proxy ARP, FDB and a two-host VXLAN overlay. Witnesses: `ip -j`, `bridge -j`, ping.
import { execFileSync } from 'node:child_process';
import { bulk, fdbKey, netns, NetworkState, topology, type FdbEvent, type Netns, type NetworkEvent, type Route } from '../lib/index';
import { errorCode as code, ipJson, nsName, RUN, Sandbox } from './support/sandbox';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

/** A namespace with two up veths (v0 10.99.0.1/24, v1 10.98.0.1/24 and IPv6 on both). */
async function twoLinks(tag: string): Promise<Netns> {
  const ns = await sb.ns(tag, { loopbackUp: true });
  await ns.links.add({ kind: 'veth', name: 'v0', up: true, peer: { name: 'p0', up: true } });
  await ns.links.add({ kind: 'veth', name: 'v1', up: true, peer: { name: 'p1', up: true } });
  await ns.addresses.add('v0', '10.99.0.1/24');
  await ns.addresses.add('v1', '10.98.0.1/24');
  await ns.addresses.add('v0', '2001:db8:99::1/64', { noDad: true });
  await ns.addresses.add('v1', '2001:db8:98::1/64', { noDad: true });
  return ns;
}

function bridgeJson<T>(ns: Netns, ...args: string[]): T {
  return JSON.parse(execFileSync('bridge', ['-j', '-n', ns.name!, ...args], { encoding: 'utf8' }) || '[]') as T;
}

interface IpRule {
  priority: number;
  src?: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  table?: string;
  action?: string;
  iif?: string;
  oif?: string;
  fwmark?: string;
  fwmask?: string;
  tos?: string;
  ipproto?: string;
  sport_start?: number;
  sport_end?: number;
  dport?: number;
}

describe('policy rules', () => {
  test('add/list/delete v4 and v6 with every selector, visible to ip -j rule', async () => {
    const ns = await twoLinks('rules');
    await ns.rules.add({ priority: 1000, from: '10.9.0.0/24', table: 100 });
    await ns.rules.add({ priority: 1001, to: '10.8.0.0/16', iif: 'v0', fwmark: 5, mask: 0xff, table: 'main', tos: 0x10, ipProto: 'tcp', sport: [1000, 2000], dport: 80 });
    await ns.rules.add({ priority: 1002, from: '2001:db8::/32', action: 'unreachable' });
    await ns.rules.add({ priority: 1003, oif: 'v1', action: 'blackhole' });
    await ns.rules.add({ priority: 1004, family: 6, fwmark: 7, action: 'prohibit' });

    const v4 = ipJson<IpRule[]>(ns, 'rule');
    expect(v4.find((r) => r.priority === 1000)).toMatchObject({ src: '10.9.0.0', srclen: 24, table: '100' });
    expect(v4.find((r) => r.priority === 1001)).toMatchObject({
      dst: '10.8.0.0',
      dstlen: 16,
      iif: 'v0',
      fwmark: '0x5',
      fwmask: '0xff',
      tos: '0x10',
      ipproto: 'tcp',
      sport_start: 1000,
      sport_end: 2000,
      dport: 80,
      table: 'main',
    });
    expect(v4.find((r) => r.priority === 1003)).toMatchObject({ oif: 'v1', action: 'blackhole' });
    const v6 = ipJson<IpRule[]>(ns, '-6', 'rule');
    expect(v6.find((r) => r.priority === 1002)).toMatchObject({ src: '2001:db8::', srclen: 32, action: 'unreachable' });
    expect(v6.find((r) => r.priority === 1004)).toMatchObject({ fwmark: '0x7', action: 'prohibit' });

    const ours = await ns.rules.list();
    expect(ours.find((r) => r.priority === 1000)).toEqual({ family: 4, priority: 1000, from: '10.9.0.0/24', table: 100, action: 'lookup' });
    expect(ours.find((r) => r.priority === 1001)).toEqual({
      family: 4,
      priority: 1001,
      to: '10.8.0.0/16',
      iif: 'v0',
      fwmark: 5,
      mask: 0xff,
      table: 'main',
      action: 'lookup',
      tos: 0x10,
      ipProto: 6,
      sport: [1000, 2000],
      dport: [80, 80],
    });
    expect(ours.find((r) => r.priority === 1002)).toEqual({ family: 6, priority: 1002, from: '2001:db8::/32', action: 'unreachable' });
    expect((await ns.rules.list({ family: 6 })).every((r) => r.family === 6)).toBe(true);
    // The kernel's own rules come back too (local, main, default).
    expect(ours.filter((r) => r.family === 4).map((r) => r.priority)).toEqual([0, 1000, 1001, 1003, 32766, 32767]);

    expect(await code(ns.rules.add({ priority: 1000, from: '10.9.0.0/24', table: 100 }))).toBe('EEXIST');
    await ns.rules.delete({ priority: 1000, from: '10.9.0.0/24', table: 100 });
    await ns.rules.delete({ priority: 1002, from: '2001:db8::/32', action: 'unreachable' });
    expect(ipJson<IpRule[]>(ns, 'rule').map((r) => r.priority)).toEqual([0, 1001, 1003, 32766, 32767]);
    expect(ipJson<IpRule[]>(ns, '-6', 'rule').map((r) => r.priority)).toEqual([0, 1004, 32766]);
    expect(await code(ns.rules.delete({ priority: 1000, from: '10.9.0.0/24', table: 100 }))).toBe('ENOENT');
    await ns.rules.delete({ priority: 1000, from: '10.9.0.0/24', table: 100 }, { missingOk: true });
  });

  test('routes.get follows a source rule into its table; no route is ENETUNREACH', async () => {
    const ns = await twoLinks('rget');
    await ns.routes.add({ to: 'default', via: '10.99.0.2', table: 100 });
    await ns.rules.add({ priority: 1000, from: '10.98.0.0/24', table: 100 });
    expect(await ns.routes.get('203.0.113.7', { from: '10.98.0.1' })).toMatchObject({ via: '10.99.0.2', dev: 'v0', table: 100, src: '10.98.0.1' });
    // Forwarded traffic from the v1 side takes the same rule.
    await ns.sysctl.set('net.ipv4.ip_forward', '1');
    expect(await ns.routes.get('203.0.113.7', { from: '10.98.0.9', iif: 'v1' })).toMatchObject({ via: '10.99.0.2', dev: 'v0', table: 100 });
    // Without the source there is no rule to take, and main has no default route.
    expect(await code(ns.routes.get('203.0.113.7'))).toBe('ENETUNREACH');
    expect(await code(ns.routes.get('2001:db8:77::1'))).toBe('ENETUNREACH');
    // Connected destinations resolve with the chosen source address.
    expect(await ns.routes.get('10.98.0.7')).toMatchObject({ dev: 'v1', src: '10.98.0.1', table: 'main' });
    // One table only: its longest matching prefix.
    expect(await ns.routes.get('203.0.113.7', { table: 100 })).toMatchObject({ to: 'default', via: '10.99.0.2', table: 100 });
    expect(await code(ns.routes.get('203.0.113.7', { table: 101 }))).toBe('ENETUNREACH');
    // ip(8) agrees.
    const ip = ipJson<Array<{ gateway?: string; dev: string; table?: string }>>(ns, 'route', 'get', '203.0.113.7', 'from', '10.98.0.1');
    expect(ip[0]).toMatchObject({ gateway: '10.99.0.2', dev: 'v0', table: '100' });
  });
});

interface IpRouteHop {
  gateway?: string;
  dev?: string;
  weight?: number;
}

describe('multipath routes', () => {
  test('add with weights: ip -j route shows both hops, list round-trips them (v4 and v6)', async () => {
    const ns = await twoLinks('mpath');
    await ns.routes.add({ to: '10.60.0.0/16', nexthops: [{ via: '10.99.0.2', weight: 1 }, { via: '10.98.0.2', weight: 3 }] });
    await ns.routes.add({ to: '2001:db8:60::/48', nexthops: [{ via: '2001:db8:99::2', dev: 'v0', weight: 2 }, { via: '2001:db8:98::2', dev: 'v1', weight: 5 }] });
    const ip4 = ipJson<Array<{ dst: string; nexthops?: IpRouteHop[] }>>(ns, 'route', 'show', '10.60.0.0/16');
    expect(ip4[0].nexthops?.map((h) => [h.gateway, h.dev, h.weight])).toEqual([
      ['10.99.0.2', 'v0', 1],
      ['10.98.0.2', 'v1', 3],
    ]);
    const ip6 = ipJson<Array<{ dst: string; nexthops?: IpRouteHop[] }>>(ns, '-6', 'route', 'show', '2001:db8:60::/48');
    expect(ip6[0].nexthops?.map((h) => [h.gateway, h.dev, h.weight])).toEqual([
      ['2001:db8:99::2', 'v0', 2],
      ['2001:db8:98::2', 'v1', 5],
    ]);
    const all = await ns.routes.list({ table: 'all' });
    const r4 = all.find((r) => r.to === '10.60.0.0/16')!;
    expect(r4.nexthops).toEqual([
      { via: '10.99.0.2', dev: 'v0', weight: 1 },
      { via: '10.98.0.2', dev: 'v1', weight: 3 },
    ]);
    expect(r4.via).toBeUndefined();
    expect(r4.dev).toBeUndefined();
    expect(all.find((r) => r.to === '2001:db8:60::/48')!.nexthops).toEqual([
      { via: '2001:db8:99::2', dev: 'v0', weight: 2 },
      { via: '2001:db8:98::2', dev: 'v1', weight: 5 },
    ]);
    // Single-path routes keep via/dev.
    expect(all.find((r) => r.to === '10.99.0.0/24')).toMatchObject({ dev: 'v0' });

    // replace changes the weights; list is what add took.
    await ns.routes.replace({ to: '10.60.0.0/16', nexthops: [{ via: '10.99.0.2', weight: 4 }, { via: '10.98.0.2', weight: 2 }] });
    expect((await ns.routes.list()).find((r) => r.to === '10.60.0.0/16')!.nexthops!.map((h) => h.weight)).toEqual([4, 2]);
    await ns.routes.delete({ to: '10.60.0.0/16' });
    expect(ipJson(ns, 'route', 'show', '10.60.0.0/16')).toEqual([]);
  });

  test('multipath made by ip appears in routes.list and in watch()', async () => {
    const ns = await twoLinks('mpip');
    const w = ns.watch({ routes: true });
    try {
      const it = w[Symbol.asyncIterator]();
      await w.ready;
      execFileSync('ip', ['-n', ns.name!, 'route', 'add', '10.61.0.0/16', 'nexthop', 'via', '10.99.0.2', 'weight', '7', 'nexthop', 'via', '10.98.0.2', 'weight', '9']);
      let route: Route | undefined;
      while (!route) {
        const ev = (await it.next()).value as NetworkEvent;
        if (ev.type === 'route' && ev.route.to === '10.61.0.0/16') route = ev.route;
      }
      expect(route.nexthops).toEqual([
        { via: '10.99.0.2', dev: 'v0', weight: 7 },
        { via: '10.98.0.2', dev: 'v1', weight: 9 },
      ]);
    } finally {
      await w.close();
    }
    const listed = (await ns.routes.list({ table: 'all' })).find((r) => r.to === '10.61.0.0/16');
    expect(listed?.nexthops?.map((h) => h.weight)).toEqual([7, 9]);
    // Every route ip(8) shows is listed (IPv6 link-local ones, which come and go with the links' fe80:: addresses, aside).
    const ours = (await ns.routes.list({ table: 'all' })).filter((r) => !r.to.startsWith('fe80:'));
    expect(ours.length).toBe(ipJson<Array<{ dst: string }>>(ns, 'route', 'show', 'table', 'all').filter((r) => !r.dst.startsWith('fe80:')).length);
  });
});

interface IpNexthop {
  id: number;
  gateway?: string;
  dev?: string;
  blackhole?: unknown;
  group?: Array<{ id: number; weight?: number }>;
}

describe('nexthop objects', () => {
  test('objects and a group visible to ip -j nexthop; a route by nhid; a member in use is EBUSY', async () => {
    const ns = await twoLinks('nh');
    await ns.nexthops.add({ id: 10, via: '10.99.0.2', dev: 'v0' });
    await ns.nexthops.add({ id: 11, via: '10.98.0.2', dev: 'v1' });
    await ns.nexthops.add({ id: 12, dev: 'v1' });
    await ns.nexthops.add({ id: 13, blackhole: true });
    await ns.nexthops.add({ id: 14, via: '2001:db8:99::2', dev: 'v0' });
    await ns.nexthops.add({ id: 20, group: [{ id: 10, weight: 1 }, { id: 11, weight: 2 }] });
    const ip = ipJson<IpNexthop[]>(ns, 'nexthop');
    expect(ip.find((n) => n.id === 10)).toMatchObject({ gateway: '10.99.0.2', dev: 'v0' });
    expect(ip.find((n) => n.id === 12)).toMatchObject({ dev: 'v1' });
    expect(ip.find((n) => n.id === 13)?.blackhole).toBeDefined();
    expect(ip.find((n) => n.id === 14)).toMatchObject({ gateway: '2001:db8:99::2', dev: 'v0' });
    expect(ip.find((n) => n.id === 20)?.group).toEqual([{ id: 10 }, { id: 11, weight: 2 }]);

    const ours = await ns.nexthops.list();
    expect(ours.find((n) => n.id === 10)).toMatchObject({ family: 4, via: '10.99.0.2', dev: 'v0' });
    expect(ours.find((n) => n.id === 13)).toMatchObject({ blackhole: true });
    expect(ours.find((n) => n.id === 20)).toMatchObject({ group: [{ id: 10, weight: 1 }, { id: 11, weight: 2 }], type: 'mpath' });

    await ns.routes.add({ to: '10.70.0.0/16', nhid: 20 });
    const route = ipJson<Array<{ nhid?: number }>>(ns, 'route', 'show', '10.70.0.0/16');
    expect(route[0].nhid).toBe(20);
    const listed = (await ns.routes.list()).find((r) => r.to === '10.70.0.0/16')!;
    expect(listed.nhid).toBe(20);
    expect(listed.nexthops?.map((h) => [h.via, h.weight])).toEqual([
      ['10.99.0.2', 1],
      ['10.98.0.2', 2],
    ]);

    // A member of a group in use: refused, and nothing changed.
    expect(await code(ns.nexthops.delete(10))).toBe('EBUSY');
    expect(ipJson<IpNexthop[]>(ns, 'nexthop').map((n) => n.id)).toEqual([10, 11, 12, 13, 14, 20]);
    // A group naming a nexthop that does not exist: the kernel refuses it.
    expect(await code(ns.nexthops.add({ id: 21, group: [{ id: 10 }, { id: 99 }] }))).toBe('EINVAL');
    expect(await code(ns.nexthops.add({ id: 10, via: '10.99.0.3', dev: 'v0' }))).toBe('EEXIST');
    await ns.nexthops.replace({ id: 10, via: '10.99.0.3', dev: 'v0' });
    expect(ipJson<IpNexthop[]>(ns, 'nexthop').find((n) => n.id === 10)?.gateway).toBe('10.99.0.3');

    await ns.routes.delete({ to: '10.70.0.0/16' });
    await ns.nexthops.delete(20);
    await ns.nexthops.delete(10);
    expect(ipJson<IpNexthop[]>(ns, 'nexthop').map((n) => n.id)).toEqual([11, 12, 13, 14]);
    expect(await code(ns.nexthops.delete(10))).toBe('ENOENT');
    await ns.nexthops.delete(10, { missingOk: true });
  });
});

describe('proxy neighbours', () => {
  test('proxy ARP entry visible to ip neigh show proxy; list and delete', async () => {
    const ns = await twoLinks('proxy');
    await ns.neighbors.add({ dev: 'v0', address: '10.99.0.50', proxy: true });
    await ns.neighbors.add({ dev: 'v1', address: '2001:db8:98::50', proxy: true });
    const shown = execFileSync('ip', ['-n', ns.name!, 'neigh', 'show', 'proxy'], { encoding: 'utf8' });
    expect(shown).toContain('10.99.0.50 dev v0 proxy');
    expect(shown).toContain('2001:db8:98::50 dev v1 proxy');
    const ours = await ns.neighbors.list({ proxy: true });
    expect(ours.map((n) => [n.address, n.dev, n.proxy]).sort()).toEqual([
      ['10.99.0.50', 'v0', true],
      ['2001:db8:98::50', 'v1', true],
    ]);
    // Ordinary listings do not mix them in.
    expect((await ns.neighbors.list()).some((n) => n.address === '10.99.0.50')).toBe(false);
    await ns.neighbors.delete({ dev: 'v0', address: '10.99.0.50', proxy: true });
    expect(execFileSync('ip', ['-n', ns.name!, 'neigh', 'show', 'proxy'], { encoding: 'utf8' })).not.toContain('10.99.0.50');
    expect(await code(ns.neighbors.delete({ dev: 'v0', address: '10.99.0.50', proxy: true }))).toBe('ENOENT');
  });
});

describe('refused input changes nothing', () => {
  test('prefix > 32, weight 0, unknown action and friends', async () => {
    const ns = await twoLinks('rbad');
    const rulesBefore = ipJson(ns, 'rule');
    // IPv6 link-local routes appear on their own (when the links' fe80:: addresses do): not compared.
    const routes = () => ipJson<Array<{ dst: string }>>(ns, 'route', 'show', 'table', 'all').filter((r) => !r.dst.startsWith('fe80:'));
    const routesBefore = routes();
    const nhBefore = ipJson(ns, 'nexthop');
    const cases: Array<[Promise<unknown>, string]> = [
      [ns.rules.add({ priority: 10, from: '10.9.0.0/33', table: 100 }), 'ERR_NETNS_INVALID_ADDRESS'],
      [ns.rules.add({ priority: 10, from: '10.9.0.0/24', action: 'nat' as never }), 'ERR_NETNS_INVALID_ARG'],
      [ns.rules.add({ priority: 10, action: 'blackhole', table: 100 }), 'ERR_NETNS_INVALID_ARG'],
      [ns.rules.add({ priority: 10, from: '10.9.0.0/24', to: '2001:db8::/32' }), 'ERR_NETNS_FAMILY_MISMATCH'],
      [ns.rules.add({ priority: 10, dport: [90, 80] }), 'ERR_NETNS_INVALID_PORT'],
      [ns.rules.add({ priority: 10, mask: 0xff }), 'ERR_NETNS_INVALID_ARG'],
      [ns.rules.add({ priority: -1 }), 'ERR_NETNS_INVALID_ARG'],
      [ns.routes.add({ to: '10.60.0.0/33', nexthops: [{ via: '10.99.0.2' }] }), 'ERR_NETNS_INVALID_ADDRESS'],
      [ns.routes.add({ to: '10.60.0.0/16', nexthops: [{ via: '10.99.0.2', weight: 0 }, { via: '10.98.0.2' }] }), 'ERR_NETNS_INVALID_ARG'],
      [ns.routes.add({ to: '10.60.0.0/16', nexthops: [{ via: '10.99.0.2', weight: 257 }] }), 'ERR_NETNS_INVALID_ARG'],
      [ns.routes.add({ to: '10.60.0.0/16', nexthops: [] }), 'ERR_NETNS_INVALID_ARG'],
      [ns.routes.add({ to: '10.60.0.0/16', nexthops: [{ weight: 1 }] }), 'ERR_NETNS_INVALID_ARG'],
      [ns.routes.add({ to: '10.60.0.0/16', via: '10.99.0.2', nexthops: [{ via: '10.98.0.2' }] }), 'ERR_NETNS_INVALID_ARG'],
      [ns.routes.add({ to: '10.60.0.0/16', nexthops: [{ via: '2001:db8::1' }] }), 'ERR_NETNS_FAMILY_MISMATCH'],
      [ns.routes.add({ to: '10.60.0.0/16', nhid: 0 }), 'ERR_NETNS_INVALID_ARG'],
      [ns.routes.get('10.60.0.300'), 'ERR_NETNS_INVALID_ADDRESS'],
      [ns.routes.get('10.60.0.3', { from: '2001:db8::1' }), 'ERR_NETNS_FAMILY_MISMATCH'],
      [ns.routes.get('10.60.0.3', { iif: 'v0' }), 'ERR_NETNS_INVALID_ARG'],
      [ns.nexthops.add({ id: 0, via: '10.99.0.2' }), 'ERR_NETNS_INVALID_ARG'],
      [ns.nexthops.add({ id: 30, group: [{ id: 10, weight: 0 }] }), 'ERR_NETNS_INVALID_ARG'],
      [ns.nexthops.add({ id: 30, group: [{ id: 30 }] }), 'ERR_NETNS_INVALID_ARG'],
      [ns.nexthops.add({ id: 30 } as never), 'ERR_NETNS_INVALID_ARG'],
      [ns.neighbors.add({ dev: 'v0', address: '10.99.0.50', proxy: true, mac: '02:00:00:00:00:01' }), 'ERR_NETNS_INVALID_ARG'],
      [ns.fdb.add({ dev: 'v0', mac: 'zz:00:00:00:00:00' }), 'ERR_NETNS_INVALID_MAC'],
      [ns.fdb.add({ dev: 'v0', mac: '00:00:00:00:00:00', dst: '192.0.2.300' }), 'ERR_NETNS_INVALID_ADDRESS'],
      [ns.fdb.add({ dev: 'v0', mac: '00:00:00:00:00:00', vni: 2 ** 24 }), 'ERR_NETNS_INVALID_ARG'],
      [ns.fdb.add({ dev: 'v0', mac: '00:00:00:00:00:00', append: true, replace: true }), 'ERR_NETNS_INVALID_ARG'],
      [ns.links.add({ kind: 'vxlan', name: 'vxbad', id: 42, srcPortRange: [2000, 1000] }), 'ERR_NETNS_INVALID_PORT'],
    ];
    for (const [p, want] of cases) expect(await code(p)).toBe(want);
    expect(ipJson(ns, 'rule')).toEqual(rulesBefore);
    expect(routes()).toEqual(routesBefore);
    expect(ipJson(ns, 'nexthop')).toEqual(nhBefore);
    expect(execFileSync('ip', ['-n', ns.name!, 'neigh', 'show', 'proxy'], { encoding: 'utf8' }).trim()).toBe('');
    expect(ipJson(ns, 'link', 'show', 'type', 'vxlan')).toEqual([]);
  });
});

interface BridgeFdb {
  mac: string;
  ifname: string;
  dst?: string;
  vni?: number;
  flags: string[];
  master?: string;
  state?: string;
}

/**
 * Two simulated hosts joined by an underlay veth (192.0.2.1 - 192.0.2.2), a VXLAN (id 42, no
 * learning) and a bridge on each, one container per host on the bridge: the overlay a static
 * flannel-style setup builds, with the flood lists filled through fdb.add.
 */
describe('VXLAN overlay over an underlay veth', () => {
  test('a container on host 1 pings a container on host 2; bridge -j fdb as witness', async () => {
    const [h1, h2] = [await sb.ns('vxh1', { loopbackUp: true }), await sb.ns('vxh2', { loopbackUp: true })];
    await h1.links.add({ kind: 'veth', name: 'under', up: true, peer: { name: 'under', netns: h2, up: true } });
    await h1.addresses.add('under', '192.0.2.1/24');
    await h2.addresses.add('under', '192.0.2.2/24');
    const hosts: Array<[Netns, string, string, string]> = [
      [h1, '192.0.2.1', '192.0.2.2', '10.42.0.1'],
      [h2, '192.0.2.2', '192.0.2.1', '10.42.0.2'],
    ];
    const containers: Netns[] = [];
    for (const [host, local, remote, address] of hosts) {
      await host.links.add({ kind: 'bridge', name: 'br42', up: true });
      await host.links.add({ kind: 'vxlan', name: 'vx42', id: 42, local, port: 4789, parent: 'under', learning: false, l2miss: true, l3miss: true, ttl: 64, srcPortRange: [40000, 50000], master: 'br42', up: true });
      await host.fdb.add({ dev: 'vx42', mac: '00:00:00:00:00:00', dst: remote, append: true });
      const c = await sb.ns('vxc', { loopbackUp: true });
      containers.push(c);
      await host.links.add({ kind: 'veth', name: 'cport', master: 'br42', up: true, peer: { name: 'eth0', netns: c, up: true } });
      await c.addresses.add('eth0', `${address}/24`);
    }
    // The vxlan device was created with everything in one message: witness its options.
    const vx = ipJson<Array<{ master?: string; flags: string[]; linkinfo: { info_data: Record<string, unknown> } }>>(h1, '-d', 'link', 'show', 'vx42')[0];
    expect(vx.master).toBe('br42');
    expect(vx.flags).toContain('UP');
    expect(vx.linkinfo.info_data).toMatchObject({ id: 42, local: '192.0.2.1', port: 4789, learning: false, l2miss: true, l3miss: true, ttl: 64, port_range: { low: 40000, high: 50000 } });

    const flood = bridgeJson<BridgeFdb[]>(h1, 'fdb', 'show', 'dev', 'vx42').filter((e) => e.mac === '00:00:00:00:00:00');
    expect(flood.map((e) => e.dst)).toEqual(['192.0.2.2']);
    const ours = (await h1.fdb.list({ dev: 'vx42' })).filter((e) => e.mac === '00:00:00:00:00:00');
    expect(ours).toEqual([expect.objectContaining({ dev: 'vx42', dst: '192.0.2.2', self: true, state: 'permanent' })]);

    const r = await containers[0].exec('ping', ['-c1', '-W5', '10.42.0.2']);
    expect(r.exitCode).toBe(0);
    // Learning is off on the vxlan device, but the bridge learnt host 2's container behind vx42.
    const c2mac = (await containers[1].links.get('eth0')).mac;
    const learnt = bridgeJson<BridgeFdb[]>(h1, 'fdb', 'show', 'br', 'br42').find((e) => e.mac === c2mac);
    expect(learnt?.ifname).toBe('vx42');
    expect((await h1.fdb.list({ master: 'br42' })).find((e) => e.mac === c2mac)?.dev).toBe('vx42');

    // A second flood entry appended (appending one that is there changes nothing); delete one remote only.
    await h1.fdb.add({ dev: 'vx42', mac: '00:00:00:00:00:00', dst: '192.0.2.3', append: true });
    await h1.fdb.add({ dev: 'vx42', mac: '00:00:00:00:00:00', dst: '192.0.2.3', append: true });
    expect(bridgeJson<BridgeFdb[]>(h1, 'fdb', 'show', 'dev', 'vx42').filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst).sort()).toEqual(['192.0.2.2', '192.0.2.3']);
    await h1.fdb.delete({ dev: 'vx42', mac: '00:00:00:00:00:00', dst: '192.0.2.3' });
    expect(bridgeJson<BridgeFdb[]>(h1, 'fdb', 'show', 'dev', 'vx42').filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst)).toEqual(['192.0.2.2']);
    // A static unicast entry towards a VTEP with its own VNI.
    // (vxlan's own table takes permanent or dynamic entries only: 'static' is EINVAL there.)
    // (The kernel reports vni and port only where they differ from the device's.)
    await h1.fdb.add({ dev: 'vx42', mac: '02:42:00:00:00:09', dst: '192.0.2.2', vni: 43, port: 4790 });
    expect(bridgeJson<BridgeFdb[]>(h1, 'fdb', 'show', 'dev', 'vx42').find((e) => e.mac === '02:42:00:00:00:09')).toMatchObject({ dst: '192.0.2.2', vni: 43, state: 'permanent' });
    expect((await h1.fdb.list({ dev: 'vx42' })).find((e) => e.mac === '02:42:00:00:00:09')).toMatchObject({ dst: '192.0.2.2', vni: 43, port: 4790, state: 'permanent' });
    expect(await code(h1.fdb.add({ dev: 'vx42', mac: '02:42:00:00:00:0a', dst: '192.0.2.2', state: 'static' }))).toBe('EINVAL');
    // A static entry on a bridge port, in the bridge's table.
    await h1.fdb.add({ dev: 'cport', mac: '02:42:00:00:00:0b', master: true, state: 'static' });
    expect(bridgeJson<BridgeFdb[]>(h1, 'fdb', 'show', 'dev', 'cport').find((e) => e.mac === '02:42:00:00:00:0b')).toMatchObject({ master: 'br42', state: 'static' });
    expect((await h1.fdb.list({ dev: 'cport' })).find((e) => e.mac === '02:42:00:00:00:0b')).toMatchObject({ master: 'br42', self: false, state: 'static' });
    await h1.fdb.delete({ dev: 'cport', mac: '02:42:00:00:00:0b', master: true });
    await h1.fdb.delete({ dev: 'vx42', mac: '02:42:00:00:00:09', dst: '192.0.2.2', vni: 43, port: 4790 });
    expect(bridgeJson<BridgeFdb[]>(h1, 'fdb', 'show', 'dev', 'vx42').some((e) => e.mac === '02:42:00:00:00:09')).toBe(false);
    expect(await code(h1.fdb.delete({ dev: 'vx42', mac: '02:42:00:00:00:09', dst: '192.0.2.2', vni: 43, port: 4790 }))).toBe('ENOENT');
  });
});

describe('fdb in watch()', () => {
  test('fdb events (opt-in) keep a NetworkState equal to fdb.list()', async () => {
    // IPv6 off: no ND/MLD frames for the bridge to learn from while the state is compared.
    const ns = await sb.ns('fdbw', { loopbackUp: true, ipv6: false });
    await ns.links.add({ kind: 'bridge', name: 'br0', up: true });
    await ns.links.add({ kind: 'veth', name: 'v0', master: 'br0', up: true, peer: { name: 'p0', up: true } });
    await ns.addresses.add('p0', '192.0.2.1/24');
    await ns.links.add({ kind: 'vxlan', name: 'vx7', id: 7, local: '192.0.2.1', port: 4789, learning: false, up: true });
    const state = new NetworkState();
    const w = ns.watch({ fdb: true, initial: true });
    const seen: FdbEvent[] = [];
    try {
      const it = w[Symbol.asyncIterator]();
      const first = (await it.next()).value as NetworkEvent;
      expect(first.type).toBe('resync');
      state.apply(first);
      expect(first.type === 'resync' && first.links === undefined && Array.isArray(first.fdb)).toBe(true);
      await ns.fdb.add({ dev: 'vx7', mac: '00:00:00:00:00:00', dst: '192.0.2.9', append: true });
      await ns.fdb.add({ dev: 'v0', mac: '02:00:00:00:00:07', master: true, state: 'static' });
      await ns.fdb.delete({ dev: 'v0', mac: '02:00:00:00:00:07', master: true });
      while (!seen.some((e) => e.action === 'delete' && e.fdb.mac === '02:00:00:00:00:07')) {
        const ev = (await it.next()).value as NetworkEvent;
        state.apply(ev);
        if (ev.type === 'fdb') seen.push(ev);
        expect(ev.type === 'fdb' || ev.type === 'resync').toBe(true);
      }
    } finally {
      await w.close();
    }
    expect(seen.find((e) => e.fdb.dst === '192.0.2.9')).toMatchObject({ action: 'new', fdb: { dev: 'vx7', mac: '00:00:00:00:00:00', self: true } });
    expect(seen.find((e) => e.fdb.mac === '02:00:00:00:00:07' && e.action === 'new')?.fdb).toMatchObject({ dev: 'v0', master: 'br0', state: 'static' });
    const listed = await ns.fdb.list();
    expect([...state.fdb.keys()].sort()).toEqual(listed.map(fdbKey).sort());
    // Default streams do not carry fdb events.
    const w2 = ns.watch({ initial: true });
    try {
      const ev = (await w2[Symbol.asyncIterator]().next()).value as NetworkEvent;
      expect(ev.type === 'resync' && ev.fdb === undefined && ev.links !== undefined).toBe(true);
    } finally {
      await w2.close();
    }
  });
});

describe('multipath in other paths', () => {
  test('a topology route with nexthops is made once (up again matches it); bulk refuses one', async () => {
    const name = nsName('tmp');
    const t = {
      name: `rt${RUN}${process.pid % 1000}`,
      namespaces: [
        {
          name,
          bridges: [
            { name: 'b0', addresses: ['10.99.0.1/24'] },
            { name: 'b1', addresses: ['10.98.0.1/24'] },
          ],
          routes: [{ to: '10.60.0.0/16', nexthops: [{ via: '10.99.0.2', dev: 'b0', weight: 2 }, { via: '10.98.0.2', dev: 'b1', weight: 3 }] }],
        },
      ],
    };
    try {
      await topology.up(t);
      const ns = await netns.open(name);
      const ip = ipJson<Array<{ nexthops?: IpRouteHop[] }>>(ns, 'route', 'show', '10.60.0.0/16');
      expect(ip[0].nexthops?.map((h) => h.weight)).toEqual([2, 3]);
      expect((await topology.up(t)).changes).toEqual([]);
    } finally {
      await topology.down(t);
    }
    const host = await sb.ns('tmph');
    const bname = nsName('tmpb');
    const attempt = bulk.createMany([{ name: bname, routes: [{ to: '10.60.0.0/16', nexthops: [{ via: '10.99.0.2' }] }] }], { hostNs: host });
    await expect(attempt).rejects.toThrow(/multipath/);
    expect(await code(attempt)).toBe('ERR_NETNS_INVALID_ARG');
    expect((await netns.list()).map((n) => n.name)).not.toContain(bname);
  });
});
