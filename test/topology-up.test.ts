// topology.up / status / down on the tutorial's network, checked with our list calls and with
// `ip -j` as the independent witness; ping for real traffic; decoys prove down's precision.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { netns, topology, type Topology } from '../lib/index';
import { registryDir } from '../lib/registry';
import { Netns } from '../lib/netns';

const natTableOf = (ns: string, topo: string) => new Netns(ns, `/run/netns/${ns}`).natTable(natTableName(topo));
import { natTableName } from '../lib/topology/validate';
import { ipJson, ip, nsName, RUN, Sandbox } from './support/sandbox';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

function topoName(tag: string): string {
  return `t${RUN}${tag}${randomBytes(2).toString('hex')}`;
}

/** The tutorial: a host with bridge v-net-0 (192.168.15.5/24) and four namespaces on it. */
function tutorial(name: string, host: string, colours: Record<string, string>, outer?: string): Topology {
  const ips: Record<string, number> = { red: 1, blue: 2, orange: 3, gray: 4 };
  const t: Topology = {
    name,
    namespaces: [
      { name: host, sysctls: { 'net.ipv4.ip_forward': 1 }, bridges: [{ name: 'v-net-0', addresses: ['192.168.15.5/24'] }] },
      ...Object.entries(colours).map(([c, ns]) => ({
        name: ns,
        links: [{ name: `veth-${c}`, addresses: [`192.168.15.${ips[c]}/24`], peer: { netns: host, name: `veth-${c}-br`, master: 'v-net-0' } }],
        routes: [{ to: 'default', via: '192.168.15.5' }],
      })),
    ],
  };
  if (outer) {
    // A namespace the topology does not own: it adds a bridge and one veth end there, nothing else.
    t.namespaces!.push({ name: outer, existing: true, bridges: [{ name: 'obr', addresses: ['198.51.100.1/24'] }] });
    t.namespaces![1].links!.push({ name: 'up0', addresses: ['198.51.100.2/24'], peer: { netns: outer, name: 'red-up', master: 'obr' } });
  }
  return t;
}

type IpLink = { ifname: string; ifindex: number; master?: string; flags: string[] };
type IpAddr = { ifname: string; addr_info: Array<{ local: string; prefixlen: number }> };

test('up creates the tutorial network, a second up changes nothing, down removes exactly it', async () => {
  const name = topoName('tut');
  const host = nsName('host');
  const colours = { red: nsName('red'), blue: nsName('blue'), orange: nsName('orange'), gray: nsName('gray') };
  const outer = await sb.ns('outer');
  const decoy = await sb.ns('decoy');
  await outer.links.add({ kind: 'bridge', name: 'decoy0', up: true });
  await decoy.links.add({ kind: 'bridge', name: 'decoy0' });
  const t = tutorial(name, host, colours, outer.name);
  const steps: string[] = [];

  const handle = await topology.up(t, { onProgress: (p) => steps.push(`${p.done}/${p.total}`) });
  try {
    // 5 namespaces, 1+1 bridges, 5 veths, 7 addresses, 4 routes, 1 sysctl of the host is set at creation.
    expect(handle.changes.length).toBe(5 + 2 + 5 + 7 + 4);
    expect(steps[steps.length - 1]).toBe(`${handle.changes.length}/${handle.changes.length}`);
    const names = (await netns.list()).map((n) => n.name);
    for (const n of [host, ...Object.values(colours)]) expect(names).toContain(n);

    // Our list calls.
    const hostNs = handle.netns(host);
    const ports = (await hostNs.links.list()).filter((l) => l.master === 'v-net-0').map((l) => l.name).sort();
    expect(ports).toEqual(['veth-blue-br', 'veth-gray-br', 'veth-orange-br', 'veth-red-br']);
    expect((await hostNs.addresses.list({ dev: 'v-net-0', family: 4 })).map((a) => a.cidr)).toEqual(['192.168.15.5/24']);
    expect(await hostNs.sysctl.get('net.ipv4.ip_forward')).toBe('1');
    const red = handle.netns(colours.red);
    expect((await red.routes.list()).find((r) => r.to === 'default')?.via).toBe('192.168.15.5');

    // The witness.
    const hostLinks = ipJson<IpLink[]>(hostNs, 'link', 'show');
    expect(hostLinks.filter((l) => l.master === 'v-net-0').length).toBe(4);
    expect(hostLinks.every((l) => l.flags.includes('UP'))).toBe(true);
    const redAddr = ipJson<IpAddr[]>(red, 'addr', 'show', 'dev', 'veth-red');
    expect(redAddr[0].addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toContain('192.168.15.1/24');
    const outerLinks = ipJson<IpLink[]>(outer, 'link', 'show');
    expect(outerLinks.find((l) => l.ifname === 'red-up')?.master).toBe('obr');
    // Links in a namespace we do not own are recorded with the index we gave them.
    const obr = outerLinks.find((l) => l.ifname === 'obr')!;
    expect(obr.ifindex).toBeGreaterThanOrEqual(0x100000);
    expect(readdirSync(`${registryDir()}/links/${outer.name}`).sort()).toEqual(['obr', 'red-up']);

    // Real traffic: across the bridge, to the host's bridge address, and over the outer link.
    await red.exec('ping', ['-c1', '-W2', '192.168.15.2']);
    await handle.netns(colours.gray).exec('ping', ['-c1', '-W2', '192.168.15.5']);
    await red.exec('ping', ['-c1', '-W2', '198.51.100.1']);

    // Idempotent: nothing to do the second time.
    const again = await topology.up(t);
    expect(again.changes).toEqual([]);
    const st = await topology.status(t);
    expect(st.matches).toBe(true);
    expect(st.state).toBe('up');
    expect(st.namespaces.find((n) => n.name === host)?.createdBy).toBe(`topology ${name}`);
    expect(st.namespaces.find((n) => n.name === outer.name)).toMatchObject({ existing: true, createdBy: `process ${process.pid}` });
    expect(st.namespaces.find((n) => n.name === colours.red)?.routes.find((r) => r.to === 'default')?.via).toBe('192.168.15.5');
    // Links as links.list() reports them, peers named.
    const redLinks = st.namespaces.find((n) => n.name === colours.red)!.links;
    expect(redLinks.map((l) => l.name).sort()).toEqual(['lo', 'up0', 'veth-red']);
    expect(redLinks.find((l) => l.name === 'veth-red')?.peer?.netns).toBe(host);
    // status adds the counters (they move between two reads, so they are compared for presence only)
    expect(redLinks.every((l) => l.stats !== undefined)).toBe(true);
    expect(redLinks.map(({ stats: _stats, ...l }) => l)).toEqual(await red.links.list());
    const everything = await topology.status();
    expect(everything.matches).toBeUndefined();
    expect(everything.namespaces.find((n) => n.name === decoy.name)?.links.map((l) => l.name).sort()).toEqual(['decoy0', 'lo']);

    // Drift is seen and repaired, and only the drift (deleting blue's address also made the
    // kernel drop blue's default route through it).
    ip('-n', colours.blue, 'addr', 'del', '192.168.15.2/24', 'dev', 'veth-blue');
    ip('-n', host, 'link', 'set', 'veth-orange-br', 'nomaster');
    const drift = await topology.status(t);
    expect(drift.matches).toBe(false);
    const expected = [
      `add address 192.168.15.2/24 to veth-blue (${colours.blue})`,
      `add route default via 192.168.15.5 (${colours.blue})`,
      `set link veth-orange-br (${host}) master v-net-0`,
    ];
    expect(drift.differences!.sort()).toEqual(expected);
    const repair = await topology.up(t);
    expect(repair.changes.sort()).toEqual(expected);
    await handle.netns(colours.blue).exec('ping', ['-c1', '-W2', '192.168.15.3']);
    expect((await topology.up(t)).changes).toEqual([]);
  } finally {
    const result = await topology.down(t);
    expect(result.namespaces.sort()).toEqual([host, ...Object.values(colours)].sort());
    expect(result.links.map((l) => l.name).sort()).toEqual(['obr', 'red-up']);
    expect(result.kept).toEqual([]);
  }
  // Exactly the topology is gone: decoys, the outer namespace and its own link stay.
  const after = (await netns.list()).map((n) => n.name);
  for (const n of [host, ...Object.values(colours)]) expect(after).not.toContain(n);
  expect(after).toContain(outer.name);
  expect(after).toContain(decoy.name);
  expect(ipJson<IpLink[]>(outer, 'link', 'show').map((l) => l.ifname).sort()).toEqual(['decoy0', 'lo']);
  expect(ipJson<IpLink[]>(decoy, 'link', 'show').map((l) => l.ifname).sort()).toEqual(['decoy0', 'lo']);
  expect(existsSync(`${registryDir()}/topologies/${name}.json`)).toBe(false);
  expect(existsSync(`${registryDir()}/links/${outer.name}`)).toBe(false);
  for (const n of [host, ...Object.values(colours)]) expect(existsSync(`${registryDir()}/netns/${n}`)).toBe(false);
});

test('up refuses a namespace of the same name that the topology did not create, before changing anything', async () => {
  const taken = await sb.ns('taken');
  const other = nsName('other');
  const t: Topology = { name: topoName('tk'), namespaces: [{ name: other }, { name: taken.name! }] };
  await expect(topology.up(t)).rejects.toMatchObject({ code: 'ERR_NETNS_CONFLICT', message: expect.stringContaining('namespaces[1].name') });
  expect((await netns.list()).map((n) => n.name)).not.toContain(other);
  // Declared existing, it is used as it is, and down leaves it.
  t.namespaces![1].existing = true;
  await topology.up(t);
  const r = await topology.down(t);
  expect(r.namespaces).toEqual([other]);
  expect((await netns.list()).map((n) => n.name)).toContain(taken.name);
});

test('NAT rules: the table inet nk_NAME holds exactly the declared rules, changed in one transaction', async () => {
  const host = nsName('nathost');
  const red = nsName('natred');
  const t: Topology = {
    name: topoName('nat'),
    namespaces: [
      {
        name: host,
        bridges: [{ name: 'br0', addresses: ['192.168.15.5/24'] }],
        nat: [
          { kind: 'masquerade', source: '192.168.15.0/24' },
          { kind: 'portForward', protocol: 'tcp', port: 8080, to: { address: '192.168.15.1', port: 80 } },
        ],
      },
      { name: red, links: [{ name: 'veth-red', addresses: ['192.168.15.1/24'], peer: { netns: host, name: 'veth-red-br', master: 'br0' } }] },
    ],
  };
  const rules = () => {
    const table = JSON.parse(execFileSync('ip', ['netns', 'exec', host, 'nft', '-j', 'list', 'table', 'inet', natTableName(t.name)], { encoding: 'utf8' })) as { nftables: Array<{ rule?: { expr: unknown[] } }> };
    return JSON.stringify(table.nftables.filter((x) => x.rule));
  };
  await topology.up(t);
  try {
    expect(rules()).toContain('masquerade');
    expect(rules()).toContain('dnat');
    expect(await natTableOf(host, t.name).list()).toHaveLength(2);
    expect((await topology.up(t)).changes).toEqual([]);
    // The file changes: one rule replaced. One step, one transaction, the new set exactly.
    const changed: Topology = JSON.parse(JSON.stringify(t)) as Topology;
    changed.namespaces![0].nat![1] = { kind: 'portForward', protocol: 'udp', port: 5353, to: { address: '192.168.15.1', port: 53 } };
    const again = await topology.up(changed);
    expect(again.changes).toEqual([expect.stringMatching(/^apply 2 NAT rule\(s\) to .*1 no longer declared.*one transaction$/)]);
    const now = await natTableOf(host, t.name).list();
    expect(now.map((r) => r.kind).sort()).toEqual(['masquerade', 'portForward']);
    expect(now.find((r) => r.kind === 'portForward')).toMatchObject({ protocol: 'udp', port: 5353 });
    expect(rules()).not.toContain('8080');
  } finally {
    await topology.down(t);
  }
});
