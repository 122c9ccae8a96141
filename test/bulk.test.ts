// The bulk fast path (issue 4): what createMany makes is really there (our list calls and `ip -j`
// agree, traffic flows through the bridge), failures and aborts leave nothing of the call, it fits
// in `ulimit -n 256`, and deleteMany leaves nothing.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { bulk, netns, NetnsError, type BulkNamespace, type Netns } from '../lib/index';
import { registryDir } from '../lib/registry';
import { ifName, ipJson, NS_PREFIX, nsName, Sandbox, setsNaming } from './support/sandbox';

const sb = new Sandbox();
/** Names a test asked createMany for: removed after each test whatever happened. */
const planned: string[] = [];
afterEach(async () => {
  await bulk.deleteMany(planned.splice(0), { missingOk: true });
  await sb.cleanup();
});

const GW = '10.77.255.254';

async function hostWithBridge(): Promise<Netns> {
  const host = await sb.ns('bh', { loopbackUp: true });
  await host.links.add({ kind: 'bridge', name: 'br0', up: true });
  await host.addresses.add('br0', `${GW}/16`);
  return host;
}

function plan(n: number, tag: string): BulkNamespace[] {
  const vtag = ifName(tag).slice(0, 8);
  const items = Array.from({ length: n }, (_, k) => ({
    name: nsName(`${tag}${k}`),
    veth: { name: `${vtag}${k}`, peerName: 'eth0', bridge: 'br0' },
    addresses: [`10.77.0.${k + 1}/16`],
    routes: [{ to: 'default', via: GW }],
  }));
  planned.push(...items.map((i) => i.name));
  return items;
}

/** Set files of this file's namespaces with tag `tag` (see plan()). */
function sets(tag: string): string[] {
  return setsNaming(`${NS_PREFIX}${tag}`);
}

function existing(names: string[]): string[] {
  const present = new Set(readdirSync('/run/netns'));
  return names.filter((n) => present.has(n));
}

/** Links of the host other than lo and br0, as `ip` sees them. */
function extraHostLinks(host: Netns): string[] {
  return ipJson<Array<{ ifname: string }>>(host, 'link', 'show').map((l) => l.ifname).filter((n) => n !== 'lo' && n !== 'br0');
}

function mountsOf(names: string[]): string[] {
  const targets = execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).split('\n');
  return targets.filter((t) => names.some((n) => t === `/run/netns/${n}`));
}

describe('bulk.createMany / deleteMany', () => {
  test('creates what it says (own list calls and ip -j agree), ping crosses the bridge, teardown leaves nothing', async () => {
    const host = await hostWithBridge();
    const items = plan(20, 'bk');
    const progress: number[] = [];
    const r = await bulk.createMany(items, { hostNs: host, ipv6: false, onProgress: (p) => progress.push(p.done) });
    expect(r.namespaces.map((n) => n.name)).toEqual(items.map((i) => i.name));
    expect(progress[progress.length - 1]).toBe(20);
    expect(existing(items.map((i) => i.name))).toHaveLength(20);

    // Host ends: enslaved to br0, up, in the call's group (own API and ip agree).
    const hostLinks = await host.links.list();
    for (const it of items) {
      const l = hostLinks.find((x) => x.name === it.veth!.name)!;
      expect(l).toMatchObject({ kind: 'veth', master: 'br0', up: true, group: r.group });
    }
    const ipHost = ipJson<Array<{ ifname: string; master?: string; group: string; flags: string[] }>>(host, 'link', 'show', 'master', 'br0');
    expect(ipHost.map((l) => l.ifname).sort()).toEqual(items.map((i) => i.veth!.name).sort());

    // Inside two of them: lo and eth0 (index 2) up, the address, the default route, IPv6 off.
    for (const k of [0, 19]) {
      const ns = r.namespaces[k];
      const links = await ns.links.list();
      expect(links.find((l) => l.name === 'lo')!.up).toBe(true);
      expect(links.find((l) => l.name === 'eth0')).toMatchObject({ index: 2, up: true, kind: 'veth' });
      const addrs = await ns.addresses.list({ dev: 'eth0' });
      expect(addrs.map((a) => a.cidr)).toEqual([`10.77.0.${k + 1}/16`]);
      const routes = await ns.routes.list();
      expect(routes.find((x) => x.to === 'default')).toMatchObject({ via: GW, dev: 'eth0' });
      const ipAddr = ipJson<Array<{ ifindex: number; operstate: string; addr_info: Array<{ local: string; family: string }> }>>(ns, 'addr', 'show', 'eth0');
      expect(ipAddr[0].ifindex).toBe(2);
      expect(ipAddr[0].addr_info).toEqual([expect.objectContaining({ family: 'inet', local: `10.77.0.${k + 1}` })]);
      const ipRoute = ipJson<Array<{ dst: string; gateway: string }>>(ns, 'route', 'show', 'default');
      expect(ipRoute[0]).toMatchObject({ dst: 'default', gateway: GW });
      expect(await ns.sysctl.get('net.ipv6.conf.eth0.disable_ipv6')).toBe('1');
    }

    // Real traffic: namespace 0 to namespace 19 through the bridge, and to the host.
    await r.namespaces[0].exec('ping', ['-c1', '-W2', '10.77.0.20']);
    await r.namespaces[19].exec('ping', ['-c1', '-W2', GW]);
    expect(ipJson(host, 'netns', 'list-id').length).toBeGreaterThan(0);

    await bulk.deleteMany(items.map((i) => i.name), { hostNs: host, group: r.group });
    expect(existing(items.map((i) => i.name))).toEqual([]);
    expect(mountsOf(items.map((i) => i.name))).toEqual([]);
    expect(extraHostLinks(host)).toEqual([]);
    // The host's ids for them are dropped by the kernel's netns cleanup itself.
    expect(ipJson(host, 'netns', 'list-id')).toEqual([]);
  });

  test('a namespace name taken before the call: EEXIST up front, nothing created, nothing recorded', async () => {
    const host = await hostWithBridge();
    const items = plan(20, 'bc');
    const decoy = await netns.create(items[13].name);
    try {
      const err = await bulk.createMany(items, { hostNs: host }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(NetnsError);
      expect(err).toMatchObject({ code: 'EEXIST', netns: items[13].name });
      expect(existing(items.map((i) => i.name))).toEqual([items[13].name]);
      expect(mountsOf(items.filter((_, k) => k !== 13).map((i) => i.name))).toEqual([]);
      expect(extraHostLinks(host)).toEqual([]);
      expect(sets('bc')).toEqual([]);
      // The decoy is untouched: still only its own lo.
      expect(ipJson<Array<{ ifname: string }>>(decoy, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
    } finally {
      await decoy.delete();
    }
  });

  test('a namespace name taken by somebody else half-way: EEXIST, everything of the call rolled back, the other untouched', async () => {
    const host = await hostWithBridge();
    const items = plan(80, 'bh');
    let decoyMade = false;
    const err = await bulk
      .createMany(items, {
        hostNs: host,
        concurrency: 1,
        onProgress: ({ step }) => {
          // After the first chunk (at most 32): the last name is taken under our feet.
          if (step === 'create' && !decoyMade) {
            execFileSync('ip', ['netns', 'add', items[79].name]);
            decoyMade = true;
          }
        },
      })
      .then(() => undefined, (e: unknown) => e);
    try {
      expect(decoyMade).toBe(true);
      expect(err).toMatchObject({ code: 'EEXIST', netns: items[79].name });
      expect(existing(items.map((i) => i.name))).toEqual([items[79].name]);
      expect(mountsOf(items.slice(0, 79).map((i) => i.name))).toEqual([]);
      expect(extraHostLinks(host)).toEqual([]);
      expect(sets('bh')).toEqual([]);
    } finally {
      execFileSync('ip', ['netns', 'del', items[79].name]);
    }
  });

  test('recorded as one set file for the call (names, then inodes), forgotten by deleteMany; hostIndex, noDad, no hostNs without veths', async () => {
    const host = await hostWithBridge();
    const items = plan(5, 'bs').map((it, k) => ({ ...it, veth: { ...it.veth!, hostIndex: 4000 + k }, addresses: [...it.addresses!, `fd77::${k + 1}/64`], noDad: true }));
    const r = await bulk.createMany(items, { hostNs: host });
    const added = sets('bs');
    expect(added).toHaveLength(1);
    const lines = readFileSync(path.join(registryDir(), 'sets', added[0]), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ kind: 'netns-set', owner: { pid: process.pid }, names: items.map((i) => i.name) });
    const inodes = Object.assign({}, ...lines.slice(1).map((l) => l.inodes)) as Record<string, number>;
    for (const it of items) expect(inodes[it.name]).toBe(statSync(`/run/netns/${it.name}`).ino);
    for (const it of items) expect(existsSync(path.join(registryDir(), 'netns', it.name))).toBe(false);
    // The host ends have the indexes asked for; IPv6 addresses are usable at once (no DAD).
    const ipHost = ipJson<Array<{ ifname: string; ifindex: number }>>(host, 'link', 'show');
    items.forEach((it, k) => expect(ipHost.find((l) => l.ifname === it.veth.name)?.ifindex).toBe(4000 + k));
    const v6 = ipJson<Array<{ addr_info: Array<{ local: string; family: string; nodad?: boolean; tentative?: boolean }> }>>(r.namespaces[2], 'addr', 'show', 'eth0');
    expect(v6[0].addr_info.find((a) => a.local === 'fd77::3')).toMatchObject({ nodad: true });
    expect(v6[0].addr_info.find((a) => a.local === 'fd77::3')?.tentative).toBeUndefined();

    await bulk.deleteMany(items.map((i) => i.name), { hostNs: host, group: r.group });
    expect(sets('bs')).toEqual([]);

    // Without veths no host namespace is needed; with one it is.
    const bare = plan(2, 'bn').map((it) => ({ name: it.name, addresses: ['10.78.0.1/32'] }));
    await expect(bulk.createMany([{ ...bare[0], veth: { name: 'x0', bridge: 'br0' } }], {})).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
    const b = await bulk.createMany(bare, {});
    expect((await b.namespaces[1].addresses.list({ dev: 'lo' })).map((a) => a.cidr)).toContain('10.78.0.1/32');
    await bulk.deleteMany(bare.map((i) => i.name));
  });

  test('a host-side link name taken half-way: EEXIST with the kernel context, and everything rolled back', async () => {
    const host = await hostWithBridge();
    const items = plan(12, 'bv');
    await host.links.add({ kind: 'bridge', name: items[7].veth!.name });
    const err = await bulk.createMany(items, { hostNs: host }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'EEXIST', syscall: 'add link', netns: items[7].name });
    expect(existing(items.map((i) => i.name))).toEqual([]);
    expect(extraHostLinks(host)).toEqual([items[7].veth!.name]);
  });

  test('AbortSignal: an abort between chunks rolls back everything created; an aborted signal creates nothing', async () => {
    const host = await hostWithBridge();
    const items = plan(40, 'ba');
    const ac = new AbortController();
    const steps: string[] = [];
    const err = await bulk
      .createMany(items, {
        hostNs: host,
        concurrency: 1,
        signal: ac.signal,
        onProgress: (p) => {
          steps.push(p.step);
          if (p.step === 'create') ac.abort();
        },
      })
      .then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_NETNS_ABORTED' });
    expect(steps).toContain('rollback');
    expect(existing(items.map((i) => i.name))).toEqual([]);
    expect(extraHostLinks(host)).toEqual([]);

    const again = await bulk.createMany(items, { hostNs: host, signal: AbortSignal.abort() }).then(() => undefined, (e: unknown) => e);
    expect(again).toMatchObject({ code: 'ERR_NETNS_ABORTED' });
    expect(existing(items.map((i) => i.name))).toEqual([]);
  });

  test('bad input is refused with a typed error before anything is created', async () => {
    const host = await hostWithBridge();
    const items = plan(3, 'bi');
    const cases: Array<[BulkNamespace[], object, string]> = [
      [[items[0], { ...items[1], name: items[0].name }], {}, 'ERR_NETNS_CONFLICT'],
      [[items[0], { ...items[1], veth: { ...items[1].veth!, name: items[0].veth!.name } }], {}, 'ERR_NETNS_CONFLICT'],
      [items, { group: 0 }, 'ERR_NETNS_INVALID_ARG'],
      [[{ ...items[0], routes: [{ to: 'default', via: GW, dev: 'eth1' }] }], {}, 'ERR_NETNS_INVALID_ARG'],
      [[{ ...items[0], addresses: ['10.77.0.1'] }], {}, 'ERR_NETNS_INVALID_ADDRESS'],
      [[{ ...items[0], veth: { ...items[0].veth!, name: 'this-name-is-too-long' } }], {}, 'ERR_NETNS_INVALID_IFNAME'],
      [Array.from({ length: 1024 }, (_, k) => ({ name: `${items[0].name}-${k}`, veth: { name: `bq${k}`, bridge: 'br0' } })), {}, 'ERR_NETNS_INVALID_ARG'],
    ];
    for (const [list, extra, code] of cases) {
      await expect(bulk.createMany(list, { hostNs: host, ...extra })).rejects.toMatchObject({ code });
    }
    expect(existing(items.map((i) => i.name))).toEqual([]);
    expect(extraHostLinks(host)).toEqual([]);
    await expect(bulk.deleteMany([items[0].name], { group: 7 })).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
  });

  test('deleteMany: ENOENT up front for a missing name (nothing deleted), missingOk skips it', async () => {
    const a = await sb.ns('bd');
    const missing = nsName('bd-missing');
    await expect(bulk.deleteMany([a.name!, missing])).rejects.toMatchObject({ code: 'ENOENT', netns: missing });
    expect(existing([a.name!])).toEqual([a.name]);
    await bulk.deleteMany([a.name!, missing], { missingOk: true });
    expect(existing([a.name!])).toEqual([]);
  });

  test('300 namespaces under `ulimit -n 256` in a child process; no descriptor kept per namespace', async () => {
    const host = await hostWithBridge();
    const prefix = nsName('bu');
    const script = path.join(__dirname, 'support', 'bulk-child.js');
    const r = spawnSync('bash', ['-c', 'ulimit -n 256 && exec "$0" "$@"', process.execPath, script, host.name!, prefix, '300', GW], { encoding: 'utf8', timeout: 120000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { limit: number; created: number; fdsBefore: number; fdsAfter: number; newFds: string[]; left: number };
    expect(out.limit).toBe(256);
    expect(out.created).toBe(300);
    // One per namespace would be 300. A few come and go with the process's own life (libuv's
    // io_uring and threads, the registry's files), more of them on a loaded machine: the bound
    // leaves room for those, and a failure lists what was open.
    expect({ grew: out.fdsAfter - out.fdsBefore < 12, newFds: out.newFds }).toEqual({ grew: true, newFds: out.newFds });
    expect(out.left).toBe(0);
    expect(extraHostLinks(host)).toEqual([]);
  });
});
