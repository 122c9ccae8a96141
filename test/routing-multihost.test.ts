// Multi-host topologies (issue 16): hosts joined by an underlay, a VXLAN overlay between them with
// the flood lists filled in. Simulated whole on this machine, and host by host (`--host NAME`, the
// way each real machine runs it) with namespaces playing the machines.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { netns, topology, type MultiHostTopology } from '../lib/index';
import { cli } from './support/cli';
import { errorCode as code, ipJson, nsName, RUN, Sandbox } from './support/sandbox';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

function bridgeFlood(ns: string, dev: string): string[] {
  const out = JSON.parse(execFileSync('bridge', ['-j', '-n', ns, 'fdb', 'show', 'dev', dev], { encoding: 'utf8' }) || '[]') as Array<{ mac: string; dst?: string }>;
  return out.filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst ?? '').sort();
}

function twoHosts(h1: string, h2: string, c1: string, c2: string): MultiHostTopology {
  const container = (name: string, host: string, address: string, port: string) => ({
    name,
    links: [{ name: 'eth0', addresses: [address], peer: { netns: host, name: port, master: 'br42' } }],
  });
  return {
    name: `mh${RUN}${randomBytes(2).toString('hex')}`,
    overlay: { id: 42, bridge: 'br42' },
    hosts: [
      { name: h1, underlay: '192.0.2.1/24', namespaces: [container(c1, h1, '10.42.0.1/24', 'c1p')] },
      { name: h2, underlay: '192.0.2.2/24', namespaces: [container(c2, h2, '10.42.0.2/24', 'c2p')] },
    ],
  };
}

async function ping(from: string, to: string): Promise<number | null> {
  return (await (await netns.open(from)).exec('ping', ['-c1', '-W5', to])).exitCode;
}

describe('multi-host topology', () => {
  test('simulated: hosts, underlay, overlay and containers up; a container on host 1 pings one on host 2; down removes all', async () => {
    const [h1, h2, c1, c2] = [nsName('mh1'), nsName('mh2'), nsName('mc1'), nsName('mc2')];
    const t = twoHosts(h1, h2, c1, c2);
    const dir = mkdtempSync(path.join(tmpdir(), 'nk-mh-'));
    const file = path.join(dir, 'overlay.json');
    writeFileSync(file, JSON.stringify(t));
    try {
      const up = await cli(['up', file, '--json']);
      expect(up.stderr).not.toMatch(/ERR_|Error/);
      expect(up.code).toBe(0);
      const names = (await netns.list()).map((n) => n.name);
      for (const n of [h1, h2, c1, c2, `${t.name}-underlay`]) expect(names).toContain(n);
      // Witnesses: the vxlan device enslaved to the overlay bridge, the flood list, traffic.
      const vx = ipJson<Array<{ master?: string; linkinfo: { info_data: Record<string, unknown> } }>>(await netns.open(h1), '-d', 'link', 'show', 'vx42')[0];
      expect(vx.master).toBe('br42');
      expect(vx.linkinfo.info_data).toMatchObject({ id: 42, local: '192.0.2.1', port: 4789, learning: false, link: 'underlay' });
      expect(bridgeFlood(h1, 'vx42')).toEqual(['192.0.2.2']);
      expect(bridgeFlood(h2, 'vx42')).toEqual(['192.0.2.1']);
      expect(await ping(c1, '10.42.0.2')).toBe(0);
      // Up again: nothing to do.
      const again = await topology.upMultiHost(t);
      expect(again.changes).toEqual([]);
      const down = await cli(['down', file]);
      expect(down.code).toBe(0);
      const after = (await netns.list()).map((n) => n.name);
      for (const n of [h1, h2, c1, c2, `${t.name}-underlay`]) expect(after).not.toContain(n);
    } finally {
      await topology.downMultiHost(t).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('host by host (--host NAME): each machine applies its part over an underlay it already has', async () => {
    // Two "machines": namespaces with their own underlay (a veth between them), not the topology's.
    const m1 = await sb.ns('mhm1', { loopbackUp: true });
    const m2 = await sb.ns('mhm2', { loopbackUp: true });
    await m1.links.add({ kind: 'veth', name: 'underlay', up: true, peer: { name: 'underlay', netns: m2, up: true } });
    await m1.addresses.add('underlay', '192.0.2.1/24');
    await m2.addresses.add('underlay', '192.0.2.2/24');
    const [c1, c2] = [nsName('mhc1'), nsName('mhc2')];
    const t = twoHosts(m1.name!, m2.name!, c1, c2);
    const dir = mkdtempSync(path.join(tmpdir(), 'nk-mh-'));
    const file = path.join(dir, 'overlay.yaml');
    writeFileSync(file, JSON.stringify(t)); // JSON is YAML
    try {
      for (const m of [m1, m2]) {
        const r = await cli(['up', file, '--host', m.name!]);
        expect(r.stderr).not.toMatch(/Error/);
        expect(r.code).toBe(0);
      }
      expect(bridgeFlood(m1.name!, 'vx42')).toEqual(['192.0.2.2']);
      expect(await ping(c1, '10.42.0.2')).toBe(0);
      // One machine's part down: its containers, bridge and vxlan go; the machine stays.
      const r = await cli(['down', file, '--host', m1.name!]);
      expect(r.code).toBe(0);
      expect((await netns.list()).map((n) => n.name)).not.toContain(c1);
      const left = ipJson<Array<{ ifname: string }>>(m1, 'link').map((l) => l.ifname).sort();
      expect(left).toEqual(['lo', 'underlay']);
      await topology.downMultiHost(t, { host: m2.name! });
      expect((await netns.list()).map((n) => n.name)).not.toContain(c2);
      expect(ipJson<Array<{ ifname: string }>>(m2, 'link').map((l) => l.ifname).sort()).toEqual(['lo', 'underlay']);
    } finally {
      for (const m of [m1, m2]) await topology.downMultiHost(t, { host: m.name! }).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad multi-host input is refused before anything changes', async () => {
    const [h1, h2, c1, c2] = [nsName('mb1'), nsName('mb2'), nsName('mbc1'), nsName('mbc2')];
    const good = twoHosts(h1, h2, c1, c2);
    const bad: Array<[unknown, string]> = [
      [{ ...good, hosts: [good.hosts[0]] }, 'ERR_NETNS_INVALID_TOPOLOGY'],
      [{ ...good, overlay: { ...good.overlay, id: 2 ** 24 } }, 'ERR_NETNS_INVALID_TOPOLOGY'],
      [{ ...good, hosts: [good.hosts[0], { ...good.hosts[1], underlay: '192.0.2.2/33' }] }, 'ERR_NETNS_INVALID_TOPOLOGY'],
      [{ ...good, hosts: [good.hosts[0], { ...good.hosts[1], underlay: '192.0.2.1/24' }] }, 'ERR_NETNS_INVALID_TOPOLOGY'],
      [{ ...good, hosts: [good.hosts[0], { ...good.hosts[0] }] }, 'ERR_NETNS_INVALID_TOPOLOGY'],
      [{ ...good, overlay: { ...good.overlay, bridge: 'a-bridge-name-too-long' } }, 'ERR_NETNS_INVALID_TOPOLOGY'],
      [{ ...good, extra: 1 }, 'ERR_NETNS_INVALID_TOPOLOGY'],
      // a container link whose master is not the overlay bridge: the ordinary validator on the expansion
      [{ ...good, hosts: [{ ...good.hosts[0], namespaces: [{ name: c1, links: [{ name: 'eth0', peer: { netns: h1, name: 'x', master: 'nobr' } }] }] }, good.hosts[1]] }, 'ERR_NETNS_INVALID_TOPOLOGY'],
    ];
    for (const [t, want] of bad) expect(await code(topology.upMultiHost(t as MultiHostTopology))).toBe(want);
    expect(await code(topology.upMultiHost(good, { host: 'nohost' }))).toBe('ERR_NETNS_INVALID_ARG');
    const names = (await netns.list()).map((n) => n.name);
    for (const n of [h1, h2, c1, c2]) expect(names).not.toContain(n);
    // The shipped example loads as a multi-host topology and expands to hosts, underlay and containers.
    const example = await topology.loadAny(path.resolve(__dirname, '..', '..', 'examples', 'overlay.yaml'));
    expect('multiHost' in example).toBe(true);
    if ('multiHost' in example) {
      expect(topology.expandMultiHost(example.multiHost).namespaces!.map((n) => n.name)).toEqual(['overlay-underlay', 'host1', 'c1', 'host2', 'c2']);
      expect(topology.expandMultiHost(example.multiHost, { host: 'host2' }).namespaces!.map((n) => [n.name, n.existing ?? false])).toEqual([
        ['host2', true],
        ['c2', false],
      ]);
    }
  });
});
