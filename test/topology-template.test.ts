// Templates: 30 alike namespaces from one description, spread over several bridges, with real
// traffic between two of them; idempotent on the second run.
import { randomBytes } from 'node:crypto';
import { netns, topology, type Topology } from '../lib/index';
import { ipJson, nsName, RUN } from './support/sandbox';

type IpLink = { ifname: string; master?: string; ifindex: number; link_type?: string; linkinfo?: { info_kind?: string } };

test('a template of 30 namespaces: names, addresses and routes from patterns and a pool, ports spread over bridges, ping between members', async () => {
  const hub = nsName('thub');
  const t: Topology = {
    name: `t${RUN}tpl${randomBytes(2).toString('hex')}`,
    options: { maxPortsPerBridge: 8, spread: true, concurrency: 8 },
    namespaces: [{ name: hub, bridges: [{ name: 'br0', addresses: ['10.20.0.1/16'] }] }],
    templates: [
      {
        count: 30,
        start: 1,
        name: `${hub}-{i:2}`,
        ipv6: false,
        uplink: { name: 'eth0', peerName: 'v{i}', netns: hub, bridge: 'br0' },
        addresses: [{ pool: '10.20.0.0/16', start: 2 }, '192.0.2.{i}/32'],
        routes: [{ to: 'default', via: '10.20.0.1' }],
      },
    ],
  };
  const progress: number[] = [];
  const handle = await topology.up(t, { onProgress: (p) => progress.push(p.done) });
  try {
    const members = Array.from({ length: 30 }, (_, k) => `${hub}-${String(k + 1).padStart(2, '0')}`);
    expect(handle.namespaces).toEqual([hub, ...members]);
    const live = (await netns.list()).map((n) => n.name);
    for (const m of members) expect(live).toContain(m);
    expect(progress[progress.length - 1]).toBe(handle.changes.length);

    // Spread: 30 ports with at most 8 per bridge -> br0 and 4 extra bridges patched to it.
    const hubNs = handle.netns(hub);
    const links = ipJson<IpLink[]>(hubNs, '-d', 'link', 'show');
    const bridges = links.filter((l) => l.linkinfo?.info_kind === 'bridge').map((l) => l.ifname).sort();
    expect(bridges).toEqual(['br0', 'br0-1', 'br0-2', 'br0-3', 'br0-4']);
    for (const b of bridges) expect(links.filter((l) => l.master === b).length).toBeLessThanOrEqual(8);
    expect(links.filter((l) => /^v\d+$/.test(l.ifname) && l.master).length).toBe(30);

    // Member 1 got the pool's first address (10.20.0.2), member 30 the 30th (10.20.0.31).
    const first = handle.netns(members[0]);
    const last = handle.netns(members[29]);
    expect((await first.addresses.list({ dev: 'eth0' })).map((a) => a.cidr).sort()).toEqual(['10.20.0.2/16', '192.0.2.1/32']);
    const lastAddr = ipJson<Array<{ addr_info: Array<{ local: string; family: string }> }>>(last, 'addr', 'show', 'dev', 'eth0');
    expect(lastAddr[0].addr_info.map((a) => a.local).sort()).toEqual(['10.20.0.31', '192.0.2.30']);
    expect(lastAddr[0].addr_info.every((a) => a.family === 'inet')).toBe(true); // IPv6 off
    expect(links.find((l) => l.ifname === 'v1')?.master).toBe('br0');
    expect(links.find((l) => l.ifname === 'v30')?.master).toBe('br0-4');

    // Across bridges (br0 <-> br0-4 through the patch pair), and to the hub's gateway address.
    await first.exec('ping', ['-c1', '-W2', '10.20.0.31']);
    await last.exec('ping', ['-c1', '-W2', '10.20.0.1']);

    expect((await topology.up(t)).changes).toEqual([]);
  } finally {
    const r = await topology.down(t);
    expect(r.namespaces.length).toBe(31);
  }
  const after = (await netns.list()).map((n) => n.name);
  expect(after.filter((n) => n!.startsWith(hub))).toEqual([]);
});
