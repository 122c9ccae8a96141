// Addresses, routes, neighbours and sysctls: IPv4 and IPv6, checked with our list calls and
// with `ip -j` as witness; refused input changes nothing.
import { NetnsError, type Netns } from '../lib/index';
import { execFileSync } from 'node:child_process';
import { errorCode as code, ipJson, Sandbox, witnessEnv } from './support/sandbox';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

function ipAddrs(ns: Netns, dev: string): string[] {
  const out = ipJson<Array<{ addr_info: Array<{ local: string; prefixlen: number; scope: string }> }>>(ns, 'addr', 'show', 'dev', dev);
  return out[0].addr_info.filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`).sort();
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  scope?: string;
  prefsrc?: string;
  protocol?: string;
}

async function bridgeNs(tag: string): Promise<Netns> {
  const ns = await sb.ns(tag, { loopbackUp: true });
  await ns.links.add({ kind: 'bridge', name: 'br0', up: true });
  return ns;
}

describe('addresses', () => {
  test('IPv4 and IPv6 add, list, delete, flush', async () => {
    const ns = await bridgeNs('addr');
    await ns.addresses.add('br0', '192.168.15.5/24');
    await ns.addresses.add('br0', '192.168.16.5/24', { label: 'br0:1' });
    await ns.addresses.add('br0', '2001:db8:15::5/64', { noDad: true });
    expect(ipAddrs(ns, 'br0')).toEqual(['192.168.15.5/24', '192.168.16.5/24', '2001:db8:15::5/64']);
    const ours = await ns.addresses.list({ dev: 'br0' });
    expect(ours.filter((a) => a.scope === 'global').map((a) => a.cidr).sort()).toEqual(['192.168.15.5/24', '192.168.16.5/24', '2001:db8:15::5/64']);
    expect(ours.find((a) => a.cidr === '192.168.16.5/24')?.label).toBe('br0:1');
    expect((await ns.addresses.list({ family: 6 })).every((a) => a.family === 6)).toBe(true);
    expect((await ns.addresses.list({ dev: 'lo' })).map((a) => a.cidr)).toContain('127.0.0.1/8');

    expect(await code(ns.addresses.add('br0', '192.168.15.5/24'))).toBe('EEXIST');
    await ns.addresses.add('br0', '192.168.15.5/24', { replace: true });

    await ns.addresses.delete('br0', '2001:db8:15::5/64');
    expect(ipAddrs(ns, 'br0')).toEqual(['192.168.15.5/24', '192.168.16.5/24']);
    expect(await code(ns.addresses.delete('br0', '2001:db8:15::5/64'))).toBe('ENOENT');
    await ns.addresses.delete('br0', '2001:db8:15::5/64', { missingOk: true });

    expect(await ns.addresses.flush({ dev: 'br0', family: 4 })).toBe(2);
    expect(ipAddrs(ns, 'br0')).toEqual([]);
  });

  test('refused input changes nothing', async () => {
    const ns = await bridgeNs('addrbad');
    const cases: Array<[Promise<unknown>, string]> = [
      [ns.addresses.add('br0', '192.168.15.5'), 'ERR_NETNS_INVALID_ADDRESS'],
      [ns.addresses.add('br0', '192.168.15.300/24'), 'ERR_NETNS_INVALID_ADDRESS'],
      [ns.addresses.add('br0', '192.168.15.5/33'), 'ERR_NETNS_INVALID_ADDRESS'],
      [ns.addresses.add('br0', '2001:db8::1/129'), 'ERR_NETNS_INVALID_ADDRESS'],
      [ns.addresses.add('br0', 'banana/24'), 'ERR_NETNS_INVALID_ADDRESS'],
      [ns.addresses.add('br0', '192.168.15.5/24', { broadcast: '2001:db8::ff' }), 'ERR_NETNS_FAMILY_MISMATCH'],
      [ns.addresses.add('br 0', '192.168.15.5/24'), 'ERR_NETNS_INVALID_IFNAME'],
      [ns.addresses.add('br0', '192.168.15.5/24', { nodad: true } as never), 'ERR_NETNS_INVALID_ARG'],
      [ns.addresses.add('br0', '192.168.15.5/24', { label: 'other:1' }), 'ERR_NETNS_INVALID_ARG'],
    ];
    for (const [p, expected] of cases) expect(await code(p)).toBe(expected);
    expect(ipAddrs(ns, 'br0')).toEqual([]);
    expect(await code(ns.addresses.add('nosuch', '192.168.15.5/24'))).toBe('ENOENT');
  });
});

describe('device names resolve in the namespace they are given for', () => {
  // The addon turns a device name into an index with SIOCGIFINDEX on the namespace's own socket
  // (native/link.cc, LookupIfIndex): the answer must come from that namespace, altnames included,
  // and a missing name must stay ENOENT.
  test('the same name in two namespaces, an altname, a master by name, a missing name', async () => {
    const a = await sb.ns('ixa', { loopbackUp: true });
    const b = await sb.ns('ixb', { loopbackUp: true });
    // Different indexes for the same name: b gets two devices first. (This kernel has no dummy
    // driver; bridges and veths serve.)
    await b.links.add({ kind: 'bridge', name: 'pad0' });
    await b.links.add({ kind: 'bridge', name: 'pad1' });
    await a.links.add({ kind: 'bridge', name: 'dev0', up: true });
    await b.links.add({ kind: 'bridge', name: 'dev0', up: true });
    const indexA = ipJson<Array<{ ifindex: number }>>(a, 'link', 'show', 'dev0')[0].ifindex;
    const indexB = ipJson<Array<{ ifindex: number }>>(b, 'link', 'show', 'dev0')[0].ifindex;
    expect(indexA).not.toBe(indexB);
    await a.addresses.add('dev0', '192.168.41.1/24');
    await b.addresses.add('dev0', '192.168.42.1/24');
    expect(ipAddrs(a, 'dev0')).toEqual(['192.168.41.1/24']);
    expect(ipAddrs(b, 'dev0')).toEqual(['192.168.42.1/24']);
    await b.routes.add({ to: '10.42.0.0/16', dev: 'dev0' });
    expect(ipJson<IpRoute[]>(b, 'route', 'show', '10.42.0.0/16')[0].dev).toBe('dev0');
    expect(ipJson<IpRoute[]>(a, 'route', 'show', '10.42.0.0/16')).toEqual([]);

    // An alternative name (`ip link property add ... altname`) names the same device.
    execFileSync('ip', ['-n', a.name!, 'link', 'property', 'add', 'dev', 'dev0', 'altname', 'alt0'], { env: witnessEnv });
    await a.addresses.add('alt0', '192.168.43.1/24');
    expect(ipAddrs(a, 'dev0')).toEqual(['192.168.41.1/24', '192.168.43.1/24']);

    // A master given by name: the port lands on a's bridge, not on a same-named one in b.
    await a.links.add({ kind: 'bridge', name: 'br0', up: true });
    await b.links.add({ kind: 'bridge', name: 'br0', up: true });
    await a.links.add({ kind: 'veth', name: 'port0', master: 'br0', peer: { name: 'port0p' } });
    expect(ipJson<Array<{ master?: string }>>(a, 'link', 'show', 'port0')[0].master).toBe('br0');
    expect(ipJson<Array<{ ifname: string }>>(b, 'link', 'show', 'master', 'br0')).toEqual([]);

    // Missing in this namespace (it exists in the other one): ENOENT, and nothing changed.
    expect(await code(a.addresses.add('pad0', '192.168.44.1/24'))).toBe('ENOENT');
    expect(await code(a.links.add({ kind: 'veth', name: 'port1', master: 'nosuchbr', peer: { name: 'port1p' } }))).toBe('ENOENT');
    expect(ipJson<Array<{ ifname: string }>>(a, 'link', 'show').map((l) => l.ifname)).not.toContain('port1');
  });
});

describe('routes', () => {
  test('add, replace, delete, list with via, dev, metric, table, scope, src', async () => {
    const ns = await bridgeNs('route');
    await ns.addresses.add('br0', '192.168.15.5/24');
    await ns.addresses.add('br0', '2001:db8:15::5/64', { noDad: true });
    await ns.routes.add({ to: '10.0.2.0/24', via: '192.168.15.1', metric: 50 });
    await ns.routes.add({ to: 'default', via: '192.168.15.1', src: '192.168.15.5' });
    await ns.routes.add({ to: '198.51.100.0/24', dev: 'br0', table: 100, scope: 'link' });
    await ns.routes.add({ to: 'default', via: '2001:db8:15::1' });
    await ns.routes.add({ to: '203.0.113.0/24', type: 'blackhole' });

    const w4 = ipJson<IpRoute[]>(ns, '-4', 'route', 'show');
    expect(w4).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ dst: '10.0.2.0/24', gateway: '192.168.15.1', dev: 'br0', metric: 50 }),
        expect.objectContaining({ dst: 'default', gateway: '192.168.15.1', prefsrc: '192.168.15.5' }),
      ]),
    );
    expect(ipJson<IpRoute[]>(ns, '-4', 'route', 'show', 'table', '100')).toEqual([expect.objectContaining({ dst: '198.51.100.0/24', dev: 'br0', scope: 'link' })]);
    expect(ipJson<IpRoute[]>(ns, '-6', 'route', 'show')).toEqual(expect.arrayContaining([expect.objectContaining({ dst: 'default', gateway: '2001:db8:15::1' })]));

    const ours = await ns.routes.list();
    expect(ours).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ family: 4, to: '10.0.2.0/24', via: '192.168.15.1', dev: 'br0', metric: 50, table: 'main', scope: 'universe', protocol: 'boot' }),
        expect.objectContaining({ family: 4, to: 'default', via: '192.168.15.1', src: '192.168.15.5' }),
        expect.objectContaining({ family: 4, to: '192.168.15.0/24', dev: 'br0', protocol: 'kernel', scope: 'link' }),
        expect.objectContaining({ family: 6, to: 'default', via: '2001:db8:15::1' }),
        expect.objectContaining({ family: 4, to: '203.0.113.0/24', type: 'blackhole' }),
      ]),
    );
    expect(ours.some((r) => r.table === 100)).toBe(false);
    expect((await ns.routes.list({ table: 100 })).map((r) => r.to)).toEqual(['198.51.100.0/24']);

    expect(await code(ns.routes.add({ to: '10.0.2.0/24', via: '192.168.15.1', metric: 50 }))).toBe('EEXIST');
    await ns.routes.replace({ to: '10.0.2.0/24', via: '192.168.15.2', metric: 50 });
    expect(ipJson<IpRoute[]>(ns, '-4', 'route', 'show', '10.0.2.0/24')).toEqual([expect.objectContaining({ gateway: '192.168.15.2' })]);

    // delete by destination alone matches any scope, as `ip route del` does
    await ns.routes.delete({ to: '10.0.2.0/24' });
    await ns.routes.delete({ to: 'default', family: 6 });
    await ns.routes.delete({ to: '198.51.100.0/24', table: 100 });
    expect(ipJson<IpRoute[]>(ns, '-4', 'route', 'show', '10.0.2.0/24')).toEqual([]);
    expect(ipJson<IpRoute[]>(ns, '-6', 'route', 'show', 'default')).toEqual([]);
    expect(await code(ns.routes.delete({ to: '10.0.2.0/24' }))).toBe('ENOENT');
    await ns.routes.delete({ to: '10.0.2.0/24' }, { missingOk: true });
  });

  test('kernel refusals and refused input', async () => {
    const ns = await bridgeNs('routebad');
    await ns.addresses.add('br0', '192.168.15.5/24');
    // gateway not on any connected network
    const e = (await ns.routes.add({ to: 'default', via: '10.9.9.9' }).catch((x: unknown) => x)) as NetnsError;
    expect(e.code).toBe('ENETUNREACH');
    const before = ipJson<IpRoute[]>(ns, 'route', 'show', 'table', 'all');
    const cases: Array<[Promise<unknown>, string]> = [
      [ns.routes.add({ to: 'default' }), 'ERR_NETNS_INVALID_ARG'],
      [ns.routes.add({ to: '10.0.0.0/8', via: '2001:db8::1' }), 'ERR_NETNS_FAMILY_MISMATCH'],
      [ns.routes.add({ to: '10.0.0.0/33', via: '192.168.15.1' }), 'ERR_NETNS_INVALID_ADDRESS'],
      [ns.routes.add({ to: '10.0.0.0/8', via: 'gateway' }), 'ERR_NETNS_INVALID_ADDRESS'],
      [ns.routes.add({ to: '10.0.0.0/8', via: '192.168.15.1', metric: 1.5 }), 'ERR_NETNS_INVALID_ARG'],
      [ns.routes.add({ to: '10.0.0.0/8', dev: 'br0:0' }), 'ERR_NETNS_INVALID_IFNAME'],
    ];
    for (const [p, expected] of cases) expect(await code(p)).toBe(expected);
    expect(ipJson<IpRoute[]>(ns, 'route', 'show', 'table', 'all')).toEqual(before);
  });
});

describe('neighbors and sysctls', () => {
  test('static neighbour entries, IPv4 and IPv6', async () => {
    const ns = await bridgeNs('neigh');
    await ns.neighbors.add({ dev: 'br0', address: '192.168.15.7', mac: '02:00:00:00:00:07' });
    await ns.neighbors.add({ dev: 'br0', address: '2001:db8::7', mac: '02:00:00:00:00:08' });
    const ours = await ns.neighbors.list({ dev: 'br0' });
    // like `ip neigh show`, multicast (noarp) entries only with { all: true }
    expect(ours.some((n) => n.state === 'noarp')).toBe(false);
    expect((await ns.neighbors.list({ dev: 'br0', all: true })).length).toBeGreaterThanOrEqual(ours.length);
    expect(ours).toEqual(
      expect.arrayContaining([
        { dev: 'br0', index: expect.any(Number), family: 4, address: '192.168.15.7', mac: '02:00:00:00:00:07', state: 'permanent' },
        { dev: 'br0', index: expect.any(Number), family: 6, address: '2001:db8::7', mac: '02:00:00:00:00:08', state: 'permanent' },
      ]),
    );
    const w = ipJson<Array<{ dst: string; lladdr: string; state: string[] }>>(ns, 'neigh', 'show', 'dev', 'br0');
    expect(w).toEqual(expect.arrayContaining([expect.objectContaining({ dst: '192.168.15.7', lladdr: '02:00:00:00:00:07', state: ['PERMANENT'] })]));
    expect(await code(ns.neighbors.add({ dev: 'br0', address: '192.168.15.7', mac: '02:00:00:00:00:09' }))).toBe('EEXIST');
    await ns.neighbors.add({ dev: 'br0', address: '192.168.15.7', mac: '02:00:00:00:00:09', replace: true });
    await ns.neighbors.delete({ dev: 'br0', address: '192.168.15.7' });
    expect((await ns.neighbors.list({ dev: 'br0', family: 4 })).some((n) => n.address === '192.168.15.7')).toBe(false);
    expect(await code(ns.neighbors.delete({ dev: 'br0', address: '192.168.15.7' }))).toBe('ENOENT');
    await ns.neighbors.delete({ dev: 'br0', address: '192.168.15.7' }, { missingOk: true });
    expect(await code(ns.neighbors.add({ dev: 'br0', address: '192.168.15.8', mac: 'nope' }))).toBe('ERR_NETNS_INVALID_MAC');
  });

  test('sysctls are per namespace', async () => {
    const a = await sb.ns('sysa');
    const b = await sb.ns('sysb');
    await a.sysctl.set('net.ipv4.ip_forward', true);
    expect(await a.sysctl.get('net.ipv4.ip_forward')).toBe('1');
    expect(await b.sysctl.get('net.ipv4.ip_forward')).toBe('0');
    await a.links.add({ kind: 'bridge', name: 'br.1' });
    await a.sysctl.set('net/ipv4/conf/br.1/forwarding', 0);
    expect(await a.sysctl.get('net/ipv4/conf/br.1/forwarding')).toBe('0');
    expect(await code(a.sysctl.set('net.ipv4.no_such_key', 1))).toBe('ENOENT');
    expect(await code(a.sysctl.set('kernel.hostname', 'x'))).toBe('ERR_NETNS_INVALID_ARG');
    expect(await code(a.sysctl.set('net/../../kernel/hostname', 'x'))).toBe('ERR_NETNS_INVALID_ARG');
    expect(await code(a.sysctl.set('net.ipv4.ip_forward', '1\n0'))).toBe('ERR_NETNS_INVALID_ARG');
  });
});
