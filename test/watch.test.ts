// Typed event streams (issue 8): ns.watch() against changes made with our API and with ip(8),
// bursts with and without forced overflow, socket release, and netns.watch() for /run/netns.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { netns, NetworkState, addressKey, linkKey, routeKey, neighborKey, type NetworkEvent, type Netns } from '../lib/index';
import { watchNamespaces } from '../lib/watch';
import { Sandbox, ifName, ip, ipJson, nsName } from './support/sandbox';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

/** Reads events (without closing the stream) until `stop` says so; returns what it read. */
async function readUntil<T>(it: AsyncIterator<T>, stop: (e: T) => boolean, apply?: (e: T) => void | Promise<void>): Promise<T[]> {
  const seen: T[] = [];
  for (;;) {
    const r = await it.next();
    if (r.done) throw new Error(`stream ended early after ${seen.length} events`);
    seen.push(r.value);
    await apply?.(r.value);
    if (stop(r.value)) return seen;
  }
}

function sortedValues<V>(m: Map<unknown, V>, key: (v: V) => string | number): V[] {
  return [...m.values()].sort((a, b) => String(key(a)).localeCompare(String(key(b))));
}
function sorted<V>(list: V[], key: (v: V) => string | number): V[] {
  return [...list].sort((a, b) => String(key(a)).localeCompare(String(key(b))));
}

function socketFds(): Map<string, string> {
  const out = new Map<string, string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      /* closed meanwhile (the readdir's own fd) */
    }
  }
  return out;
}

/**
 * `n` more bridges for bursts: the kernel walks a link's whole IPv4 address list on every add, so
 * thousands of addresses spread over several links keep the burst cheap for the machine.
 */
/** Runs `lines` through `ip -n NS -batch` from another process: a burst the kernel announces at once. */
function ipBatch(ns: Netns, lines: string[], tag: string): void {
  const file = path.join(os.tmpdir(), `nk-watch-${tag}-${process.pid}.txt`);
  writeFileSync(file, lines.join('\n') + '\n');
  try {
    execFileSync('ip', ['-n', ns.name!, '-batch', file]);
  } finally {
    rmSync(file, { force: true });
  }
}

async function moreBridges(ns: Netns, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, () => ifName('bb'));
  execFileSync('ip', ['-n', ns.name!, '-batch', '-'], { input: names.map((b) => `link add ${b} type bridge\nlink set ${b} up\n`).join('') });
  return names;
}

/** A namespace with a bridge in it (a bridge with no ports is a fine stand-alone link). */
async function withBridge(tag: string, options: { ipv6?: boolean } = {}): Promise<{ ns: Netns; br: string }> {
  const ns = await sb.ns(tag, { loopbackUp: true, ...options });
  const br = ifName('br');
  await ns.links.add({ kind: 'bridge', name: br, up: true });
  return { ns, br };
}

describe('ns.watch()', () => {
  test('changes made with our API and with ip arrive in order, as the list calls type them', async () => {
    const ns = await sb.ns('order', { loopbackUp: true });
    const br = ifName('br');
    const w = ns.watch();
    try {
      await w.ready;
      // A reader in the background, so the test can wait for an event before the next change.
      const events: NetworkEvent[] = [];
      let wake = () => {};
      const reader = (async () => {
        for await (const e of w) {
          events.push(e);
          wake();
        }
      })();
      const waitFor = async (pred: (e: NetworkEvent) => boolean) => {
        while (!events.some(pred)) await new Promise<void>((r) => (wake = r));
      };
      await ns.links.add({ kind: 'bridge', name: br, up: true });                       // our API
      ip('-n', ns.name!, 'addr', 'add', '192.0.2.1/24', 'dev', br);                     // ip(8)
      await ns.addresses.add(br, '2001:db8::1/64', { noDad: true });                    // our API
      // IPv6 announces a new address from a kernel work queue, after the call returned: the
      // kernel does not order it with the changes that follow, so the test waits for it.
      await waitFor((e) => e.type === 'address' && e.address.cidr === '2001:db8::1/64');
      ip('-n', ns.name!, 'link', 'set', br, 'mtu', '1400');                             // ip(8)
      await ns.routes.add({ to: '198.51.100.0/24', via: '192.0.2.9' });                 // our API
      await ns.neighbors.add({ dev: br, address: '192.0.2.7', mac: '02:00:00:00:00:07' }); // our API
      const listed = { addresses: await ns.addresses.list({ dev: br }), routes: await ns.routes.list(), neighbors: await ns.neighbors.list({ dev: br }) };
      ip('-n', ns.name!, 'neigh', 'del', '192.0.2.7', 'dev', br);                       // ip(8)
      ip('-n', ns.name!, 'route', 'del', '198.51.100.0/24');                             // ip(8)
      ip('-n', ns.name!, 'link', 'del', br);                                             // ip(8)
      await waitFor((e) => e.type === 'link' && e.action === 'delete' && e.link.name === br);
      await w.close();
      await reader;

      const mine = events
        .map((e) => {
          if (e.type === 'link' && e.link.name === br && (e.action !== 'change' || e.link.mtu === 1400)) return `link ${e.action} ${e.link.mtu}`;
          if (e.type === 'address' && e.address.dev === br && e.address.scope === 'global') return `address ${e.action} ${e.address.cidr}`;
          if (e.type === 'route' && e.route.to === '198.51.100.0/24') return `route ${e.action} ${e.route.to} via ${e.route.via}`;
          if (e.type === 'neighbor' && e.neighbor.address === '192.0.2.7') return `neighbor ${e.action} ${e.neighbor.address} ${e.neighbor.state}`;
          return undefined;
        })
        .filter((x) => x !== undefined)
        // a link reports several changes with mtu 1400 (operstate, ...): keep the first
        .filter((x, i, all) => !(x.startsWith('link change') && all.indexOf(x) !== i));
      expect(mine).toEqual([
        'link new 1500',
        'address new 192.0.2.1/24',
        'address new 2001:db8::1/64',
        'link change 1400',
        'route new 198.51.100.0/24 via 192.0.2.9',
        'neighbor new 192.0.2.7 permanent',
        // the kernel marks an entry failed before it removes it, and says both
        'neighbor change 192.0.2.7 failed',
        'neighbor delete 192.0.2.7 failed',
        'route delete 198.51.100.0/24 via 192.0.2.9',
        'address delete 2001:db8::1/64',
        'address delete 192.0.2.1/24',
        'link delete 1400',
      ]);
      // The event objects are the list calls' objects, field for field.
      const newAddr = events.filter((e) => e.type === 'address' && e.action === 'new' && e.address.scope === 'global').map((e) => (e as { address: unknown }).address);
      expect(sorted(newAddr as typeof listed.addresses, addressKey)).toEqual(sorted(listed.addresses.filter((a) => a.scope === 'global'), addressKey));
      const newRoute = events.find((e) => e.type === 'route' && e.action === 'new' && e.route.to === '198.51.100.0/24');
      expect(newRoute).toEqual({ type: 'route', action: 'new', route: listed.routes.find((r) => r.to === '198.51.100.0/24') });
      const newNeigh = events.find((e) => e.type === 'neighbor' && e.action === 'new' && e.neighbor.address === '192.0.2.7');
      expect(newNeigh).toEqual({ type: 'neighbor', action: 'new', neighbor: listed.neighbors.find((n) => n.address === '192.0.2.7') });
      // Independent witness: ip(8) agrees the link is gone.
      expect(ipJson(ns, 'link', 'show').map((l) => l.ifname)).not.toContain(br);
    } finally {
      await w.close();
    }
  });

  test('a consumer applying a 5,000-change burst ends with a map equal to a fresh list', async () => {
    // IPv4 only: IPv6 finishes DAD on the bridge's link-local address at a time of its own,
    // which would race with the final list.
    const { ns, br } = await withBridge('burst', { ipv6: false });
    const w = ns.watch({ addresses: true, initial: true });
    const state = new Map<string, unknown>();
    let resyncs = 0;
    const apply = (e: NetworkEvent) => {
      if (e.type === 'resync') {
        resyncs++;
        state.clear();
        for (const a of e.addresses!) state.set(addressKey(a), a);
      } else if (e.type === 'address') {
        if (e.action === 'delete') state.delete(addressKey(e.address));
        else state.set(addressKey(e.address), e.address);
      }
    };
    try {
      await w.ready;
      // 3,000 adds and 2,000 deletes from another process, then a fence through our API.
      const lines: string[] = [];
      const devs = [br, ...(await moreBridges(ns, 9))];
      for (let i = 0; i < 3000; i++) lines.push(`addr add 10.${(i >> 8) & 255}.${i & 255}.1/32 dev ${devs[i % 10]}`);
      for (let i = 0; i < 2000; i++) lines.push(`addr del 10.${(i >> 8) & 255}.${i & 255}.1/32 dev ${devs[i % 10]}`);
      ipBatch(ns, lines, 'burst');
      await ns.addresses.add(br, '203.0.113.254/32');
      const fence = addressKey({ index: (await ns.links.get(br)).index, cidr: '203.0.113.254/32' });
      await readUntil(w, () => state.has(fence), apply);
      const fresh = await ns.addresses.list();
      expect(resyncs).toBeGreaterThanOrEqual(1); // the initial one
      expect(state.size).toBe(fresh.length);
      expect(sorted([...state.values()] as typeof fresh, addressKey)).toEqual(sorted(fresh, addressKey));
      // Witness: ip(8) counts the same addresses (1,000 left, the fence, lo's 127.0.0.1).
      const witness = ipJson<Array<{ addr_info: unknown[] }>>(ns, 'addr', 'show').reduce((n, l) => n + l.addr_info.length, 0);
      expect(state.size).toBe(witness);
      expect([...state.keys()].filter((k) => k.includes(' 10.')).length).toBe(1000);
    } finally {
      await w.close();
    }
  });

  test('an overflow (tiny buffer, slow consumer) is answered with a resync that restores the true state', async () => {
    const { ns, br } = await withBridge('ovfl', { ipv6: false });
    // queueLimit 1: the stream stops reading after one waiting event; the 4 KiB socket buffer
    // then overflows within the burst, and the kernel reports ENOBUFS.
    const w = ns.watch({ addresses: true, initial: true, queueLimit: 1, receiveBuffer: 4096 });
    const state = new NetworkState();
    const reasons: string[] = [];
    try {
      await w.ready;
      const lines: string[] = [];
      const devs = [br, ...(await moreBridges(ns, 9))];
      for (let i = 0; i < 2500; i++) lines.push(`addr add 10.1.${(i >> 8) & 255}.${i & 255}/32 dev ${devs[i % 10]}`);
      for (let i = 0; i < 2500; i += 2) lines.push(`addr del 10.1.${(i >> 8) & 255}.${i & 255}/32 dev ${devs[i % 10]}`);
      ipBatch(ns, lines, 'ovfl');
      await ns.addresses.add(br, '203.0.113.254/32');
      const fence = addressKey({ index: (await ns.links.get(br)).index, cidr: '203.0.113.254/32' });
      await readUntil(
        w,
        () => state.addresses.has(fence),
        async (e) => {
          if (e.type === 'resync') reasons.push(e.reason);
          state.apply(e);
          await new Promise((r) => setImmediate(r)); // a slow consumer
        },
      );
      // The initial snapshot may itself be superseded (dropped unread) by an overflow's.
      expect(reasons).toContain('overflow');
      const fresh = await ns.addresses.list();
      expect(sortedValues(state.addresses, addressKey)).toEqual(sorted(fresh, addressKey));
      expect([...state.addresses.keys()].filter((k) => k.includes(' 10.1.')).length).toBe(1250);
    } finally {
      await w.close();
    }
  });

  test('IPv4 routes the kernel removes silently (link down, link deleted, source address gone) are reported', async () => {
    // IPv4 only: IPv6 configures a fresh link asynchronously, which would race with the final list.
    const { ns, br } = await withBridge('routes', { ipv6: false });
    const br2 = ifName('br');
    await ns.links.add({ kind: 'bridge', name: br2, up: true });
    const w = ns.watch({ initial: true });
    const state = new NetworkState();
    try {
      await w.ready;
      await ns.addresses.add(br, '192.0.2.1/24');
      await ns.addresses.add(br2, '198.51.100.1/24');
      await ns.routes.add({ to: '203.0.113.0/24', via: '192.0.2.9' });
      await ns.routes.add({ to: '10.9.0.0/16', dev: br2, src: '198.51.100.1', table: 100 });
      await ns.neighbors.add({ dev: br, address: '192.0.2.9', mac: '02:00:00:00:00:09' });
      await ns.links.set(br, { up: false });                 // flushes 203.0.113.0/24 and the prefix routes
      await ns.addresses.delete(br2, '198.51.100.1/24');     // flushes 10.9.0.0/16 (its source)
      await ns.links.delete(br);                              // the rest of br's routes
      const fence = ifName('fe');
      await ns.links.add({ kind: 'bridge', name: fence });
      await readUntil(w, (e) => e.type === 'link' && e.link.name === fence, (e) => state.apply(e));
      const [links, addresses, routes, neighbors] = await Promise.all([ns.links.list(), ns.addresses.list(), ns.routes.list({ table: 'all' }), ns.neighbors.list()]);
      expect(sortedValues(state.routes, routeKey)).toEqual(sorted(routes, routeKey));
      expect(sortedValues(state.addresses, addressKey)).toEqual(sorted(addresses, addressKey));
      // The kernel creates multicast entries (state noarp, e.g. 224.0.0.22 for IGMP) without a word.
      const announced = (n: { state: string }) => n.state !== 'noarp';
      expect(sortedValues(state.neighbors, neighborKey).filter(announced)).toEqual(sorted(neighbors, neighborKey).filter(announced));
      expect(sortedValues(state.links, linkKey).map((l) => l.name)).toEqual(sorted(links, linkKey).map((l) => l.name));
      expect(routes.some((r) => r.to === '203.0.113.0/24' || r.to === '10.9.0.0/16')).toBe(false);
    } finally {
      await w.close();
    }
  });

  test("a veth's link event names the namespace of its peer, as links.list() does", async () => {
    const ns = await sb.ns('peer');
    const other = await sb.ns('peer');
    const w = ns.watch({ links: true });
    try {
      await w.ready;
      const [a, b] = [ifName('va'), ifName('vb')];
      await ns.links.add({ kind: 'veth', name: a, peer: { name: b, netns: other } });
      const [created] = (await readUntil(w, (e) => e.type === 'link' && e.link.name === a)) .slice(-1);
      const listed = await ns.links.get(a);
      expect(created.type === 'link' && created.link.peer).toEqual(listed.peer);
      expect(listed.peer).toMatchObject({ netns: other.name });
    } finally {
      await w.close();
    }
  });

  test('resync and routes.list() both keep IPv6 routes to one prefix on several links (as ip does)', async () => {
    const { ns, br } = await withBridge('v6twins');
    const br2 = ifName('br');
    await ns.links.add({ kind: 'bridge', name: br2, up: true });
    await ns.addresses.add(br, '2001:db8:1::1/64', { noDad: true });
    await ns.addresses.add(br2, '2001:db8:1::2/64', { noDad: true }); // the same prefix on both links
    const w = ns.watch({ routes: true, initial: true });
    try {
      const first = await w.next();
      const listed = await ns.routes.list({ table: 'all', family: 6 });
      const twins = (routes: Array<{ to: string; dev?: string }>) => routes.filter((r) => r.to === '2001:db8:1::/64').map((r) => r.dev).sort();
      expect(twins(listed)).toEqual([br, br2].sort());
      expect(first.value.type === 'resync' && twins(first.value.routes!)).toEqual([br, br2].sort());
      // Witness: ip(8) shows the same two routes.
      const witness = ipJson<Array<{ dst: string; dev: string }>>(ns, '-6', 'route', 'show', 'table', 'all').filter((r) => r.dst === '2001:db8:1::/64');
      expect(witness.map((r) => r.dev).sort()).toEqual([br, br2].sort());
    } finally {
      await w.close();
    }
  });

  test('leaving the loop (break, return(), abort) closes the subscription and its sockets', async () => {
    const { ns, br } = await withBridge('fds');
    // Before counting: the namespace's cached socket is open, and so are the nk-watch thread's
    // epoll and eventfd descriptors (made by the first watch, kept as long as the addon).
    await ns.addresses.list();
    await ns.watch({ links: true }).close();
    const before = socketFds();

    // break
    const w1 = ns.watch({ addresses: true });
    await w1.ready;
    const during = socketFds();
    const opened = [...during.keys()].filter((fd) => !before.has(fd) && during.get(fd)!.startsWith('socket:'));
    expect(opened.length).toBe(2); // the multicast socket and the dump socket
    ip('-n', ns.name!, 'addr', 'add', '192.0.2.1/24', 'dev', br);
    for await (const e of w1) if (e.type === 'address') break;
    expect(socketFds().size).toBe(before.size);
    for (const fd of opened) expect(socketFds().get(fd)).not.toBe(during.get(fd));

    // return()
    const w2 = ns.watch({ links: true });
    await w2.ready;
    expect(socketFds().size).toBe(before.size + 2);
    await expect(w2.return()).resolves.toEqual({ value: undefined, done: true });
    expect(socketFds().size).toBe(before.size);
    await expect(w2.next()).resolves.toEqual({ value: undefined, done: true });

    // AbortSignal: the waiting next() rejects, the sockets close
    const ac = new AbortController();
    const w3 = ns.watch({ routes: true, signal: ac.signal });
    await w3.ready;
    const pending = w3.next();
    ac.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_NETNS_ABORTED' });
    await w3.close();
    expect(socketFds().size).toBe(before.size);

    // Already aborted: nothing is opened at all.
    const w4 = ns.watch({ signal: AbortSignal.abort() });
    await expect(w4.next()).rejects.toMatchObject({ code: 'ERR_NETNS_ABORTED' });
    expect(socketFds().size).toBe(before.size);
  });

  test('bad options are refused with typed errors before anything is opened', async () => {
    const ns = await sb.ns('badopt');
    const before = socketFds().size;
    expect(() => ns.watch({ links: 'yes' as unknown as boolean })).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_ARG' }));
    expect(() => ns.watch({ link: true } as unknown as { links: boolean })).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_ARG' }));
    expect(() => ns.watch({ links: false, addresses: false, routes: false, neighbors: false })).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_ARG' }));
    expect(() => ns.watch({ queueLimit: 0 })).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_ARG' }));
    expect(() => ns.watch({ receiveBuffer: 10 })).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_ARG' }));
    expect(() => ns.watch({ signal: {} as AbortSignal })).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_ARG' }));
    expect(socketFds().size).toBe(before);
    // A namespace that is gone fails the stream with ENOENT.
    const gone = await netns.open(ns.name!);
    await ns.delete();
    const w = gone.watch();
    await expect(w.next()).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open netns' });
    await expect(w.ready).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('netns.watch()', () => {
  test('namespaces added and deleted with ip netns (and with our API) are reported', async () => {
    const w = netns.watch();
    const a = nsName('mon');
    const b = nsName('mon');
    // Other test files (and other tools) add namespaces too: look at ours only.
    const about = (name: string) => async () => (await readUntil(w, (e) => e.name === name)).pop()!;
    try {
      ip('netns', 'add', a);
      expect(await about(a)()).toEqual({ type: 'netns', action: 'add', name: a, path: `/run/netns/${a}` });
      const ns = await netns.create(b);
      expect(await about(b)()).toMatchObject({ action: 'add', name: b });
      ip('netns', 'del', a);
      expect(await about(a)()).toEqual({ type: 'netns', action: 'delete', name: a, path: `/run/netns/${a}` });
      await ns.delete();
      expect(await about(b)()).toMatchObject({ action: 'delete', name: b });
      expect(ip('netns', 'list')).not.toMatch(new RegExp(`${a}|${b}`)); // witness
    } finally {
      await w.close();
      await netns.delete(a, { missingOk: true });
      await netns.delete(b, { missingOk: true });
    }
  });

  test('waits for a missing directory, and reports an entry once its namespace is mounted', async () => {
    const ns = await sb.ns('dir');
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'nk-watch-'));
    const dir = path.join(tmp, 'netns'); // does not exist yet, as /run/netns before the first `ip netns add`
    const entry = path.join(dir, 'guest');
    const w = watchNamespaces(dir);
    try {
      mkdirSync(dir);
      writeFileSync(entry, ''); // an empty file first, mounted afterwards: what ip netns add does
      execFileSync('mount', ['--bind', ns.path, entry]);
      const [added] = await readUntil(w, () => true);
      expect(added).toEqual({ type: 'netns', action: 'add', name: 'guest', path: entry });
      execFileSync('umount', [entry]);
      rmSync(entry);
      const [deleted] = await readUntil(w, () => true);
      expect(deleted).toEqual({ type: 'netns', action: 'delete', name: 'guest', path: entry });
    } finally {
      await w.close();
      try {
        execFileSync('umount', [entry], { stdio: 'ignore' });
      } catch {
        /* not mounted (the normal case) */
      }
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('initial: true reports the namespaces that exist already; an abort ends the iteration', async () => {
    const ns = await sb.ns('init');
    const ac = new AbortController();
    const w = netns.watch({ initial: true, signal: ac.signal });
    const seen = await readUntil(w, (e) => e.name === ns.name);
    expect(seen.every((e) => e.action === 'add')).toBe(true);
    ac.abort();
    await expect(w.next()).rejects.toMatchObject({ code: 'ERR_NETNS_ABORTED' });
    await expect(w.next()).resolves.toEqual({ value: undefined, done: true });
  });
});
