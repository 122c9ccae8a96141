// Namespaces: create/open/list/delete, interop with `ip netns`, failure leaves nothing, EPERM.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { netns, Netns, NetnsError } from '../lib/index';
import { ip, ipJson, nsName, Sandbox } from './support/sandbox';
import { expectRejection } from './support/errors';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

function mounted(p: string): boolean {
  return spawnSync('findmnt', ['-rn', p]).status === 0;
}

// An Error, a NetnsError, with that code (and errno/syscall for kernel codes).
const rejectsWith: (p: Promise<unknown>, code: string) => Promise<NetnsError> = expectRejection;

describe('netns.create / delete', () => {
  test('persists like `ip netns add`: bind mount under /run/netns, visible to ip netns list', async () => {
    const ns = await sb.ns('basic');
    expect(ns.path).toBe(path.join('/run/netns', ns.name!));
    expect(mounted(ns.path)).toBe(true);
    expect(ip('netns', 'list')).toContain(ns.name);
    // Fresh namespace: only lo, down (as `ip netns add` leaves it).
    const links = await ns.links.list();
    expect(links.map((l) => [l.name, l.up])).toEqual([['lo', false]]);
    expect(ipJson<Array<{ ifname: string }>>(ns, 'link').map((l) => l.ifname)).toEqual(['lo']);
    // /run/netns is a shared mount, as iproute2 sets it up.
    expect(execFileSync('findmnt', ['-rn', '-o', 'PROPAGATION', '/run/netns'], { encoding: 'utf8' })).toMatch(/shared/);
    await ns.delete();
    expect(existsSync(ns.path)).toBe(false);
    expect(mounted(ns.path)).toBe(false);
    expect(ip('netns', 'list')).not.toContain(ns.name);
  });

  test('loopbackUp, ipv6 off and sysctls at creation', async () => {
    const ns = await sb.ns('opts', { loopbackUp: true, ipv6: false, sysctls: { 'net.ipv4.ip_forward': 1 } });
    expect((await ns.links.get('lo')).up).toBe(true);
    expect(await ns.sysctl.get('net.ipv6.conf.all.disable_ipv6')).toBe('1');
    expect(await ns.sysctl.get('net.ipv4.ip_forward')).toBe('1');
    expect(execFileSync('ip', ['netns', 'exec', ns.name!, 'sysctl', '-n', 'net.ipv4.ip_forward'], { encoding: 'utf8' }).trim()).toBe('1');
  });

  test('EEXIST for a taken name, and the existing namespace is untouched', async () => {
    const ns = await sb.ns('dup');
    await ns.links.add({ kind: 'bridge', name: 'keepme' });
    await rejectsWith(netns.create(ns.name!), 'EEXIST');
    expect((await ns.links.list()).map((l) => l.name)).toContain('keepme');
  });

  test('a failure half-way leaves no file in /run/netns', async () => {
    const name = nsName('half');
    // The sysctl write happens inside the new namespace after unshare, before the bind mount.
    const e = await rejectsWith(netns.create(name, { sysctls: { 'net.ipv4.no_such_setting': 1 } }), 'ENOENT');
    expect(e.syscall).toBe('write sysctl');
    expect(existsSync(path.join('/run/netns', name))).toBe(false);
  });

  test('bad names never reach the kernel', async () => {
    const before = readdirSync('/run/netns').filter((n) => n.startsWith('ok-name') || n.includes('tmp'));
    for (const bad of ['', '.', '..', 'a/b', '../../tmp/x', 'x'.repeat(256)]) {
      await rejectsWith(netns.create(bad), 'ERR_NETNS_INVALID_NAME');
    }
    await rejectsWith(netns.create('ok-name', { ipv6: 'no' as never }), 'ERR_NETNS_INVALID_ARG');
    await rejectsWith(netns.create('ok-name', { sysctls: { 'kernel.hostname': 'x' } }), 'ERR_NETNS_INVALID_ARG');
    await rejectsWith(netns.create('ok-name', { bogus: true } as never), 'ERR_NETNS_INVALID_ARG');
    expect(readdirSync('/run/netns').filter((n) => n.startsWith('ok-name') || n.includes('tmp'))).toEqual(before);
    expect(existsSync('/tmp/x')).toBe(false);
  });

  test('deleting what is gone: ENOENT, or nothing with missingOk', async () => {
    const ns = await sb.ns('gone');
    await ns.delete();
    await rejectsWith(ns.delete(), 'ENOENT');
    await expect(ns.delete({ missingOk: true })).resolves.toBeUndefined();
    await expect(netns.delete(nsName('never'), { missingOk: true })).resolves.toBeUndefined();
  });

  test('a namespace name can be reused after delete (socket cache follows the new namespace)', async () => {
    const name = nsName('reuse');
    const a = await netns.create(name);
    await a.links.add({ kind: 'bridge', name: 'first' });
    await a.delete();
    const b = await netns.create(name);
    try {
      expect((await b.links.list()).map((l) => l.name)).toEqual(['lo']);
    } finally {
      await b.delete();
    }
  });

  test('await using deletes what it created', async () => {
    const name = nsName('using');
    {
      await using ns = await netns.create(name);
      expect(existsSync(ns.path)).toBe(true);
    }
    expect(existsSync(path.join('/run/netns', name))).toBe(false);
  });
});

describe('interop with ip netns', () => {
  test('a namespace made by `ip netns add` opens with netns.open and shows in netns.list', async () => {
    const name = nsName('iproute');
    ip('netns', 'add', name);
    try {
      const ns = await netns.open(name);
      expect(ns.owned).toBe(false);
      await ns.links.add({ kind: 'bridge', name: 'br-ours', up: true });
      await ns.addresses.add('br-ours', '198.51.100.1/24');
      const witness = ipJson<Array<{ ifname: string; addr_info: Array<{ local: string }> }>>(ns, 'addr', 'show', 'dev', 'br-ours');
      expect(witness[0].addr_info.map((a) => a.local)).toContain('198.51.100.1');
      expect((await netns.list()).map((n) => n.name)).toContain(name);
      // Disposing an opened namespace does not delete it.
      await ns[Symbol.asyncDispose]();
      expect(existsSync(ns.path)).toBe(true);
    } finally {
      ip('netns', 'delete', name);
    }
  });

  test('ours are usable with ip -n, and ip netns delete removes them', async () => {
    const ns = await sb.ns('ipn');
    ip('-n', ns.name!, 'link', 'add', 'br-ip', 'type', 'bridge');
    expect((await ns.links.get('br-ip')).kind).toBe('bridge');
    ip('netns', 'delete', ns.name!);
    await expect(ns.links.list()).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('open by path and by pid; current()', async () => {
    const ns = await sb.ns('bypath');
    await ns.links.add({ kind: 'bridge', name: 'mark' });
    const byPath = await netns.open({ path: ns.path });
    expect((await byPath.links.list()).map((l) => l.name)).toContain('mark');
    const child = ns.spawn('sleep', ['30']);
    try {
      await new Promise((r) => child.once('spawn', r));
      // nsenter execs sleep in the same pid once it has entered the namespace. A handle opened
      // before that is bound to the namespace the pid had then: ESTALE once it has switched.
      let byPid: Netns | undefined;
      for (let i = 0; i < 100 && !byPid; i++) {
        const candidate = await netns.open({ pid: child.pid! });
        const links = await candidate.links.list().catch((e: unknown) => {
          if (e instanceof NetnsError && e.code === 'ESTALE') return [];
          throw e;
        });
        if (links.some((l) => l.name === 'mark')) byPid = candidate;
        else await new Promise((r) => setTimeout(r, 20));
      }
      expect(byPid).toBeDefined();
      byPid!.release();
    } finally {
      child.kill('SIGKILL');
    }
    const cur = netns.current();
    expect(cur.path).toBe(`/proc/${process.pid}/ns/net`);
    expect((await cur.links.list()).map((l) => l.name)).toContain('lo');
    await expect(netns.open(nsName('absent'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(netns.open({ path: '/etc/hostname' })).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(netns.open({ pid: 0 })).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
  });
});

describe('permissions', () => {
  // A child process without CAP_NET_ADMIN / CAP_SYS_ADMIN: every call fails with EPERM and
  // nothing is created.
  const script = (name: string, target: string) => `
    const { netns, topology, gc, bulk } = require(${JSON.stringify(path.resolve(__dirname, '../lib/index.js'))});
    (async () => {
      const out = {};
      for (const [k, fn] of Object.entries({
        create: () => netns.create(${JSON.stringify(name)}),
        linkAdd: async () => (await netns.open(${JSON.stringify(target)})).links.add({ kind: 'bridge', name: 'nope' }),
        addr: async () => (await netns.open(${JSON.stringify(target)})).addresses.add('lo', '192.0.2.9/32'),
        route: async () => (await netns.open(${JSON.stringify(target)})).routes.add({ to: '192.0.2.0/24', dev: 'lo' }),
        sysctl: async () => (await netns.open(${JSON.stringify(target)})).sysctl.set('net.ipv4.ip_forward', 1),
        del: () => netns.delete(${JSON.stringify(target)}),
        nat: async () => (await netns.open(${JSON.stringify(target)})).nat.masquerade({ source: '10.0.0.0/8' }),
        natList: async () => (await netns.open(${JSON.stringify(target)})).nat.list(),
        topologyUp: () => topology.up({ name: 'noperm', namespaces: [{ name: ${JSON.stringify(name + '-t')} }] }),
        topologyDown: () => topology.down({ name: 'noperm', namespaces: [] }),
        gc: () => gc(),
        bulk: async () => bulk.createMany([{ name: ${JSON.stringify(name + '-b')} }], { hostNs: await netns.open(${JSON.stringify(target)}) }),
      })) {
        try { await fn(); out[k] = 'ok'; } catch (e) { out[k] = e.code; }
      }
      console.log(JSON.stringify(out));
    })();`;

  test.each([
    ['root without capabilities', ['--inh-caps=-all', '--bounding-set=-all']],
    ['an unprivileged user', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all']],
  ])('%s gets EPERM and changes nothing', async (_label, setprivArgs) => {
    const target = await sb.ns('target');
    const name = nsName('noperm');
    const r = spawnSync('setpriv', [...setprivArgs, process.execPath, '-e', script(name, target.name!)], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as Record<string, string>;
    expect(Object.values(out).every((v) => v === 'EPERM')).toBe(true);
    expect(out.create).toBe('EPERM');
    expect(out.linkAdd).toBe('EPERM');
    expect(existsSync(path.join('/run/netns', name))).toBe(false);
    expect(existsSync(path.join('/run/netns', name + '-t'))).toBe(false);
    expect(existsSync(path.join('/run/netns', name + '-b'))).toBe(false);
    expect(existsSync('/run/netns-kit/topologies/noperm.json')).toBe(false);
    expect(execFileSync('ip', ['netns', 'exec', target.name!, 'nft', 'list', 'ruleset'], { encoding: 'utf8' })).toBe('');
    expect((await target.links.list()).map((l) => l.name)).toEqual(['lo']);
    expect(await target.sysctl.get('net.ipv4.ip_forward')).toBe('0');
    expect(existsSync(target.path)).toBe(true);
  });
});
