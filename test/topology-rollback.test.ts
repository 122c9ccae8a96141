// A failed or aborted `up` removes everything it created — and nothing else — and says which
// step failed, with the kernel's error as `cause`.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { netns, topology, NetnsError, TopologyError, type Topology } from '../lib/index';
import { registryDir } from '../lib/registry';
import { ipJson, nsName, RUN, Sandbox } from './support/sandbox';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

const topoName = (tag: string) => `t${RUN}${tag}${randomBytes(2).toString('hex')}`;

async function expectNothingLeft(t: Topology, names: string[], outer?: { name?: string }): Promise<void> {
  const live = (await netns.list()).map((n) => n.name);
  for (const n of names) {
    expect(live).not.toContain(n);
    expect(existsSync(`${registryDir()}/netns/${n}`)).toBe(false);
  }
  expect(existsSync(`${registryDir()}/topologies/${t.name}.json`)).toBe(false);
  if (outer) {
    expect(ipJson<Array<{ ifname: string }>>(outer as never, 'link', 'show').map((l) => l.ifname).sort()).toEqual(['decoy0', 'lo']);
    expect(existsSync(`${registryDir()}/links/${outer.name}`)).toBe(false);
  }
}

test('a route the kernel refuses half-way through a template rolls back everything this up created', async () => {
  const outer = await sb.ns('outer');
  await outer.links.add({ kind: 'bridge', name: 'decoy0', up: true });
  const hub = nsName('hub');
  const t: Topology = {
    name: topoName('rb'),
    options: { concurrency: 1 },
    namespaces: [
      { name: hub, bridges: [{ name: 'br0', addresses: ['10.0.0.1/24'] }], links: [{ name: 'out0', peer: { netns: outer.name!, name: 'hub-out' } }] },
      { name: outer.name!, existing: true, bridges: [{ name: 'obr' }] },
    ],
    templates: [
      {
        count: 5,
        name: `${hub}-m{i}`,
        uplink: { name: 'eth0', peerName: 'm{i}', netns: hub, bridge: 'br0' },
        addresses: ['10.0.0.{i+2}/24'],
        // 10.0.0.1 is on-link for members 0-2; 10.1.0.1 (members 3, 4) is not: ENETUNREACH.
        routes: [{ to: 'default', via: '10.{i/3}.0.1' }],
      },
    ],
  };
  const progress: string[] = [];
  const err = await topology.up(t, { onProgress: (p) => progress.push(p.step) }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TopologyError);
  const e = err as TopologyError;
  expect(e.code).toBe('ENETUNREACH');
  expect(e.step).toBe(`create namespace ${hub}-m3`);
  expect(e.message).toContain(`failed at step "create namespace ${hub}-m3"`);
  expect(e.cause).toBeInstanceOf(NetnsError);
  expect((e.cause as NetnsError).syscall).toBe('add route');
  expect(e.rollbackErrors).toEqual([]);
  // It really got half-way: the hub and the outer links were made first, and the members' bulk
  // call (one chunk: all five namespaces, then veths, then routes) had made all five namespaces.
  expect(progress).toContain(`add bridge obr (${outer.name})`);
  expect(progress).not.toContain(`create namespace ${hub}-m2`);
  // Undone: the hub, the bridge and veth in the outer namespace, and the five members.
  expect(e.rolledBack).toBe(1 + 1 + 1 + 5);
  await expectNothingLeft(t, [hub, ...[0, 1, 2, 3, 4].map((i) => `${hub}-m${i}`)], outer);
});

test('a namespace name taken by someone else while up runs: EEXIST, rollback, the other namespace untouched', async () => {
  const names = [0, 1, 2, 3, 4].map((i) => nsName(`race${i}`));
  const t: Topology = { name: topoName('race'), options: { concurrency: 1 }, namespaces: names.map((name) => ({ name })) };
  let decoyMade = false;
  const err = await topology
    .up(t, {
      onProgress: (p) => {
        if (p.done === 2 && !decoyMade) {
          execFileSync('ip', ['netns', 'add', names[3]]);
          decoyMade = true;
        }
      },
    })
    .catch((e: unknown) => e);
  try {
    expect(err).toMatchObject({ code: 'EEXIST', step: `create namespace ${names[3]}` });
    expect(((err as TopologyError).cause as NetnsError).code).toBe('EEXIST');
    const live = (await netns.list()).map((n) => n.name);
    expect(live).toContain(names[3]); // the decoy stays
    await expectNothingLeft(t, [names[0], names[1], names[2], names[4]]);
    expect(existsSync(`${registryDir()}/netns/${names[3]}`)).toBe(false); // never marked as ours
  } finally {
    execFileSync('ip', ['netns', 'del', names[3]]);
  }
});

test('AbortSignal mid-way stops up and rolls back cleanly', async () => {
  const hub = nsName('ahub');
  const t: Topology = {
    name: topoName('ab'),
    options: { concurrency: 2 },
    namespaces: [{ name: hub, bridges: [{ name: 'br0' }] }],
    templates: [{ count: 12, name: `${hub}-{i}`, uplink: { name: 'eth0', peerName: 'p{i}', netns: hub, bridge: 'br0' }, addresses: [{ pool: '10.7.0.0/24', start: 10 }] }],
  };
  const ac = new AbortController();
  const err = await topology
    .up(t, {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.done === 5) ac.abort();
      },
    })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TopologyError);
  expect((err as TopologyError).code).toBe('ERR_NETNS_ABORTED');
  expect((err as TopologyError).rolledBack).toBeGreaterThanOrEqual(5);
  await expectNothingLeft(t, [hub, ...Array.from({ length: 12 }, (_, i) => `${hub}-${i}`)]);
  // An already aborted signal changes nothing at all.
  await expect(topology.up(t, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_NETNS_ABORTED' });
  await expectNothingLeft(t, [hub]);
});
