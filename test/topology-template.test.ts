// Templates: 30 alike namespaces from one description, spread over several bridges, with real
// traffic between two of them; idempotent on the second run. Members go through the bulk path;
// with the bridge in an existing namespace their bridge ends are recorded in the namespace set.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { netns, topology, type Topology } from '../lib/index';
import { registryDir } from '../lib/registry';
import { ipJson, nsName, RUN, Sandbox, setsNaming } from './support/sandbox';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

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

test('a template whose bridge is in an existing namespace: members on the bulk path, their bridge ends recorded in the set, idempotent, down removes exactly them', async () => {
  const outer = await sb.ns('tout', { loopbackUp: true });
  await outer.links.add({ kind: 'bridge', name: 'keep0' }); // not the topology's: must stay
  const prefix = nsName('tmem');
  const t: Topology = {
    name: `t${RUN}tpx${randomBytes(2).toString('hex')}`,
    namespaces: [{ name: outer.name!, existing: true, bridges: [{ name: 'obr', addresses: ['10.66.0.1/24'] }] }],
    templates: [
      {
        count: 40,
        name: `${prefix}-{i}`,
        uplink: { name: 'eth0', peerName: 'o{i}', netns: outer.name!, bridge: 'obr' },
        addresses: [{ pool: '10.66.0.0/24', start: 2 }, 'fd66::{i+2}/64'],
        routes: [{ to: 'default', via: '10.66.0.1' }],
      },
    ],
  };
  const sets = () => setsNaming(prefix);
  expect(sets()).toEqual([]);
  const handle = await topology.up(t);
  try {
    const members = Array.from({ length: 40 }, (_, i) => `${prefix}-${i}`);
    expect(handle.changes.filter((c) => c.startsWith('create namespace')).length).toBe(40);
    // One set for the 40 members, holding the bridge ends with the indexes they really have; the
    // bridge itself (a planner step) has a marker file of its own, the members' ends have none.
    const added = sets();
    expect(added).toHaveLength(1);
    const head = JSON.parse(readFileSync(path.join(registryDir(), 'sets', added[0]), 'utf8').split('\n')[0]) as { owner: object; names: string[]; links: Array<{ netns: string; name: string; index: number }> };
    expect(head.owner).toEqual({ topology: t.name });
    expect(head.names).toEqual(members);
    const outerLinks = ipJson<IpLink[]>(outer, 'link', 'show');
    for (const l of head.links) expect(outerLinks.find((x) => x.ifname === l.name)).toMatchObject({ ifindex: l.index, master: 'obr' });
    expect(head.links.map((l) => l.name).sort()).toEqual(members.map((_, i) => `o${i}`).sort());
    expect(readdirSync(path.join(registryDir(), 'links', outer.name!))).toEqual(['obr']);
    // Inside: eth0 is index 2, IPv6 without DAD (usable at once), the route, and traffic.
    const m7 = handle.netns(members[7]);
    expect((await m7.links.get('eth0')).index).toBe(2);
    const v6 = ipJson<Array<{ addr_info: Array<{ local: string; nodad?: boolean }> }>>(m7, 'addr', 'show', 'eth0');
    expect(v6[0].addr_info.find((a) => a.local === 'fd66::9')).toMatchObject({ nodad: true });
    await m7.exec('ping', ['-c1', '-W2', '10.66.0.1']);
    await m7.exec('ping', ['-c1', '-W2', 'fd66::41']);

    expect((await topology.up(t)).changes).toEqual([]);
    expect((await topology.status(t)).matches).toBe(true);
    // Listing the outer namespace's links made the kernel give each member an id there.
    expect(ipJson<unknown[]>(outer, 'netns', 'list-id').length).toBeGreaterThanOrEqual(40);
  } finally {
    const r = await topology.down(t, { wait: true });
    expect(r.namespaces.length).toBe(40);
  }
  // wait: the kernel has finished: the members' ids in the outer namespace are gone already.
  expect(ipJson<unknown[]>(outer, 'netns', 'list-id')).toEqual([]);
  expect(ipJson<IpLink[]>(outer, 'link', 'show').map((l) => l.ifname).sort()).toEqual(['keep0', 'lo']);
  expect(sets()).toEqual([]);
  expect(existsSync(path.join(registryDir(), 'links', outer.name!))).toBe(false);
  expect((await netns.list()).map((n) => n.name).filter((n) => n!.startsWith(prefix))).toEqual([]);
});
