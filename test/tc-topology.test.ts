// `shape:` in topologies (per veth end, and on template uplinks through the bulk path) and in
// bulk.createMany items: applied in the same call, idempotent, rolled back with the rest.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { bulk, netns, topology, type Topology } from '../lib/index';
import type { Netns } from '../lib/netns';
import { errorCode, nsName, RUN, Sandbox, witnessEnv } from './support/sandbox';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

type TcQdisc = { kind: string; handle: string; dev?: string; root?: boolean; options?: Record<string, number> };
const tcQdiscs = (ns: string | Netns, dev?: string): TcQdisc[] => {
  const name = typeof ns === 'string' ? ns : ns.name!;
  const out = execFileSync('tc', ['-j', '-n', name, 'qdisc', 'show', ...(dev ? ['dev', dev] : [])], { encoding: 'utf8', env: witnessEnv });
  return JSON.parse(out) as TcQdisc[];
};

/** Whether this kernel has netem (probed with the tc binary in a namespace of our own). */
async function kernelHasNetem(): Promise<boolean> {
  const ns = await sb.ns('tcprobe');
  await ns.links.add({ kind: 'bridge', name: 'pb0', up: true });
  try {
    execFileSync('tc', ['-n', ns.name!, 'qdisc', 'add', 'dev', 'pb0', 'root', 'netem', 'delay', '1ms'], { stdio: 'ignore', env: witnessEnv });
    return true;
  } catch {
    return false;
  }
}

test('topology: shape per veth end and on template uplinks; up again changes nothing; a changed shape is one step', async () => {
  const a = nsName('tsa');
  const b = nsName('tsb');
  const t: Topology = {
    name: `t${RUN}shape${randomBytes(2).toString('hex')}`,
    namespaces: [
      { name: a, bridges: [{ name: 'br0' }], links: [{ name: 'ab0', shape: { rate: '8mbit' }, peer: { name: 'ba0', netns: b, shape: { ingress: { rate: '4mbit' } } } }] },
      { name: b },
    ],
    templates: [{ count: 3, name: `${a}-m{i}`, ipv6: false, uplink: { name: 'eth0', peerName: 'm{i}', netns: a, bridge: 'br0', shape: { rate: '2mbit', ingress: { rate: '1mbit' } }, peerShape: { rate: '3mbit' } } }],
  };
  const h = await topology.up(t);
  try {
    expect(tcQdiscs(a, 'ab0')[0]).toMatchObject({ kind: 'tbf', root: true, options: { rate: 1_000_000 } });
    const bq = tcQdiscs(b);
    expect(bq.find((q) => q.dev === 'ba0' && q.kind === 'ingress')).toBeDefined();
    expect(bq.find((q) => q.dev?.startsWith('nkifb') && q.kind === 'tbf')).toMatchObject({ options: { rate: 500_000 } });
    for (let i = 0; i < 3; i++) {
      const m = `${a}-m${i}`;
      expect(tcQdiscs(m, 'eth0')[0]).toMatchObject({ kind: 'tbf', options: { rate: 250_000 } });
      expect(await h.netns(m).links.getShape('eth0')).toMatchObject({ rate: 2_000_000, ingress: { rate: 1_000_000 } });
      expect(tcQdiscs(a, `m${i}`)[0]).toMatchObject({ kind: 'tbf', options: { rate: 375_000 } });
    }
    expect(h.changes.filter((c) => c.startsWith('shape ')).sort()).toEqual(
      [`shape ab0 (${a}): rate 8mbit`, `shape ba0 (${b}): in: rate 4mbit`, ...[0, 1, 2].map((i) => `shape m${i} (${a}): rate 3mbit`)].sort(),
    );

    const again = await topology.up(t);
    expect(again.changes).toEqual([]);
    expect((await topology.status(t)).matches).toBe(true);

    // A changed shape is the only difference, and up applies just that.
    const t2 = structuredClone(t);
    t2.namespaces![0].links![0].shape = { rate: '16mbit' };
    const st = await topology.status(t2);
    expect(st.matches).toBe(false);
    expect(st.differences).toEqual([`shape ab0 (${a}): rate 16mbit`]);
    expect((await topology.up(t2)).changes).toEqual([`shape ab0 (${a}): rate 16mbit`]);
    expect(tcQdiscs(a, 'ab0')[0]).toMatchObject({ kind: 'tbf', handle: '1:', options: { rate: 2_000_000 } });
  } finally {
    await topology.down(t);
  }
  expect((await netns.list()).map((n) => n.name).filter((n) => n?.startsWith(a) || n === b)).toEqual([]);
});

test('topology: a bad shape is ERR_NETNS_INVALID_TOPOLOGY naming the path; nothing is created', async () => {
  const a = nsName('tsbad');
  const t = {
    name: `t${RUN}shb${randomBytes(2).toString('hex')}`,
    namespaces: [{ name: a, links: [{ name: 'x0', peer: { name: 'x1', netns: a, shape: { rate: '10mbit', loss: 150 } } }] }],
  };
  let err: unknown;
  await topology.up(t as Topology).catch((e) => (err = e));
  expect(err).toMatchObject({ code: 'ERR_NETNS_INVALID_TOPOLOGY', message: expect.stringContaining('namespaces[0].links[0].peer.shape') });
  expect((await netns.list()).map((n) => n.name)).not.toContain(a);
});

test('bulk.createMany: shape per item in the same call; bad shapes refused first; a refused kind rolls back', async () => {
  const host = await sb.ns('tsbh');
  await host.links.add({ kind: 'bridge', name: 'br0', up: true });
  const names = [nsName('tsbm'), nsName('tsbm')];
  const r = await bulk.createMany(
    names.map((name, k) => ({ name, veth: { name: `bm${k}`, bridge: 'br0' }, addresses: [`10.79.0.${k + 2}/24`], shape: { rate: `${k + 1}mbit`, ingress: { rate: '1mbit' } } })),
    { hostNs: host, ipv6: false },
  );
  try {
    expect(tcQdiscs(names[0], 'eth0')[0]).toMatchObject({ kind: 'tbf', options: { rate: 125_000 } });
    expect(tcQdiscs(names[1], 'eth0')[0]).toMatchObject({ kind: 'tbf', options: { rate: 250_000 } });
    expect(await r.namespaces[1].links.getShape('eth0')).toMatchObject({ rate: 2_000_000, ingress: { rate: 1_000_000 } });
  } finally {
    await bulk.deleteMany(names, { hostNs: host, group: r.group });
  }

  const more = [nsName('tsbx'), nsName('tsbx')];
  for (const bad of [{ rate: '-1mbit' }, { loss: 101 }, { rtae: 1 }]) {
    expect(await errorCode(bulk.createMany(more.map((name, k) => ({ name, veth: { name: `bx${k}`, bridge: 'br0' }, shape: bad as never })), { hostNs: host }))).toBe('ERR_NETNS_INVALID_ARG');
  }
  expect(await errorCode(bulk.createMany([{ name: more[0], shape: { rate: '1mbit' } }], {}))).toBe('ERR_NETNS_INVALID_ARG');
  const live = (await netns.list()).map((n) => n.name);
  for (const n of more) expect(live).not.toContain(n);

  // netem: where the kernel lacks it, EOPNOTSUPP and the whole call rolled back.
  const has = await kernelHasNetem();
  const p = bulk.createMany(more.map((name, k) => ({ name, veth: { name: `bx${k}`, bridge: 'br0' }, shape: { delay: '10ms' } })), { hostNs: host });
  if (has) {
    const made = await p;
    expect(tcQdiscs(more[0], 'eth0')[0]).toMatchObject({ kind: 'netem' });
    await bulk.deleteMany(more, { hostNs: host, group: made.group });
  } else {
    expect(await errorCode(p)).toBe('EOPNOTSUPP');
  }
  const after = (await netns.list()).map((n) => n.name);
  for (const n of more) expect(after).not.toContain(n);
  expect(JSON.parse(execFileSync('ip', ['-j', '-n', host.name!, 'link', 'show', 'master', 'br0'], { encoding: 'utf8' }))).toEqual([]);
});
