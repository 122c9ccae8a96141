// Embedding (issue 12): no deadlock between namespaces, worker_threads and terminated Workers,
// long waits off the workers of ordinary calls, handles bound to their namespace (ESTALE), watch
// out of descriptors, every rejection an Error.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { gc, netns, type Netns } from '../lib/index';
import { native } from '../lib/native';
import { watchCleanup } from '../lib/bulk';
import { expectRejection, assertNetnsError } from './support/errors';
import { ip, ipJson, leftoverNamespaces, nsName, Sandbox } from './support/sandbox';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

/** `p`, or a rejection naming `what` after `ms`: a deadlock fails the test instead of hanging it. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no progress within ${ms} ms (deadlock?)`)), ms);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

interface IpLink {
  ifname: string;
  flags: string[];
}

function ipLinks(ns: Netns): IpLink[] {
  return ipJson<IpLink[]>(ns, 'link', 'show');
}

/** Starts `sleep` inside `ns` and waits until it is really in there (nsenter switches first). */
async function holder(ns: Netns): Promise<ChildProcess> {
  const child = ns.spawn('sleep', ['600']);
  await new Promise((r) => child.once('spawn', r));
  const home = readlinkSync('/proc/self/ns/net');
  for (let i = 0; i < 500; i++) {
    try {
      if (readlinkSync(`/proc/${child.pid}/ns/net`) !== home) return child;
    } catch {
      // not started yet
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('sleep never entered the namespace');
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise((r) => child.once('close', r));
  child.kill('SIGKILL');
  await closed;
}

/** Tracks whether a promise has settled, without changing it. */
function track<T>(p: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const promise = p.finally(() => {
    done = true;
  });
  promise.catch(() => undefined);
  return { promise, settled: () => done };
}

describe('lock discipline: no deadlock between namespaces', () => {
  test('300 rounds of opposite-direction veth adds with both ends up', async () => {
    const a = await sb.ns('dla');
    const b = await sb.ns('dlb');
    const rounds = 300;
    await within(
      (async () => {
        for (let i = 0; i < rounds; i++) {
          await Promise.all([
            a.links.add({ kind: 'veth', name: `x${i}`, up: true, peer: { name: `px${i}`, netns: b, up: true } }),
            b.links.add({ kind: 'veth', name: `y${i}`, up: true, peer: { name: `py${i}`, netns: a, up: true } }),
          ]);
        }
      })(),
      180_000,
      'opposite-direction veth adds',
    );
    // Witness: every end exists and is up in the namespace it belongs to.
    for (const [ns, own, peer] of [
      [a, 'x', 'py'],
      [b, 'y', 'px'],
    ] as const) {
      const links = ipLinks(ns);
      for (const prefix of [own, peer]) {
        const ends = links.filter((l) => new RegExp(`^${prefix}\\d+$`).test(l.ifname));
        expect(ends).toHaveLength(rounds);
        expect(ends.every((l) => l.flags.includes('UP'))).toBe(true);
      }
    }
  }, 240_000);

  test('a ring of 14 namespaces, veths both ways round added all at once', async () => {
    const n = 14;
    const ring = await Promise.all(Array.from({ length: n }, () => sb.ns('ring')));
    const adds: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const next = ring[(i + 1) % n];
      const prev = ring[(i + n - 1) % n];
      adds.push(ring[i].links.add({ kind: 'veth', name: 'cw', up: true, peer: { name: 'cw-in', netns: next, up: true } }));
      adds.push(ring[i].links.add({ kind: 'veth', name: 'ccw', up: true, peer: { name: 'ccw-in', netns: prev, up: true } }));
      adds.push(ring[i].links.add({ kind: 'bridge', name: 'br0', up: true }));
    }
    await within(Promise.all(adds), 120_000, 'ring of veths');
    for (const ns of ring) {
      const names = ipLinks(ns)
        .filter((l) => l.flags.includes('UP'))
        .map((l) => l.ifname)
        .sort();
      expect(names).toEqual(['br0', 'ccw', 'ccw-in', 'cw', 'cw-in']);
    }
  }, 180_000);
});

describe('long waits do not hold up ordinary calls', () => {
  test('while delete({ wait: true }) waits for a namespace a process holds, other calls complete', async () => {
    const held = await netns.create(nsName('held'));
    const other = await sb.ns('heldpeer');
    await held.links.add({ kind: 'veth', name: 'hv', up: true, peer: { name: 'hv-peer', netns: other, up: true } });
    const sleeper = await holder(held);
    try {
      const deletion = track(held.delete({ wait: true, waitTimeoutMs: 120_000 }));
      // Ordinary work of every kind, started after the wait began, all finished before it ends.
      const third = await sb.ns('heldthird');
      await third.links.add({ kind: 'veth', name: 'tv', up: true, peer: { name: 'tv-peer', netns: other, up: true } });
      await other.addresses.add('tv-peer', '203.0.113.1/24');
      await other.nat.masquerade({ source: '10.8.0.0/24', outInterface: 'tv-peer' });
      expect((await other.links.list()).map((l) => l.name)).toEqual(expect.arrayContaining(['hv-peer', 'tv-peer']));
      await Promise.all(Array.from({ length: 20 }, (_, i) => third.links.add({ kind: 'bridge', name: `lb${i}` })));
      expect(deletion.settled()).toBe(false);
      // The process goes, the namespace follows, the wait ends.
      await kill(sleeper);
      await within(deletion.promise, 60_000, 'delete wait after the holder exited');
      expect(ipLinks(other).map((l) => l.ifname)).not.toContain('hv-peer');
    } finally {
      await kill(sleeper);
      await netns.delete(held.name!, { missingOk: true });
    }
  }, 180_000);

  test('more cleanup waits than workers (bulk watchCleanup) never starve ordinary calls', async () => {
    const name = nsName('bulkheld');
    const held = await netns.create(name);
    const sleeper = await holder(held);
    try {
      // Six waits for a namespace that cannot go away yet: more than the 4 workers of ordinary calls.
      const watchers = await Promise.all(Array.from({ length: 6 }, () => watchCleanup([name])));
      ip('netns', 'del', name);
      const waits = watchers.map((w) => track(w.wait(120_000)));
      const ns = await sb.ns('bulkfree');
      await Promise.all(Array.from({ length: 12 }, (_, i) => ns.links.add({ kind: 'bridge', name: `w${i}` })));
      await ns.nat.masquerade({ source: '10.7.0.0/24' });
      expect((await ns.links.list()).length).toBe(13);
      expect(waits.every((w) => !w.settled())).toBe(true);
      await kill(sleeper);
      await within(Promise.all(waits.map((w) => w.promise)), 60_000, 'cleanup waits after the holder exited');
    } finally {
      await kill(sleeper);
      await netns.delete(name, { missingOk: true });
    }
  }, 180_000);
});

describe('worker_threads', () => {
  const workerFile = path.join(__dirname, 'support', 'embed-worker.js');

  function taskCount(): number {
    return readdirSync('/proc/self/task').length;
  }
  function fds(): string[] {
    const out: string[] = [];
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        out.push(`${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`);
      } catch {
        // the directory's own descriptor, closed meanwhile
      }
    }
    return out.sort();
  }
  /** Polls `read` until it equals `want` (threads and descriptors go asynchronously after 'exit'). */
  async function settlesTo<T>(read: () => T, want: T, what: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (JSON.stringify(read()) === JSON.stringify(want)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect({ what, now: read() }).toEqual({ what, now: want });
  }

  function start(data: Record<string, unknown>): { worker: Worker; messages: Record<string, unknown>[]; exited: Promise<number> } {
    const worker = new Worker(workerFile, { workerData: data });
    const messages: Record<string, unknown>[] = [];
    worker.on('message', (m: Record<string, unknown>) => messages.push(m));
    const exited = new Promise<number>((resolve, reject) => {
      worker.once('exit', resolve);
      worker.once('error', reject);
    });
    return { worker, messages, exited };
  }

  async function message(w: { worker: Worker; messages: Record<string, unknown>[] }, key: string): Promise<Record<string, unknown>> {
    for (;;) {
      const m = w.messages.find((x) => key in x || 'error' in x);
      if (m) return m;
      await new Promise((r) => w.worker.once('message', r));
    }
  }

  test('4 Workers and the main thread at once, a fifth terminated mid-call: the process survives, nothing leaks', async () => {
    const hub = await sb.ns('hub');
    // Warm up everything the main environment owns for good (its watch thread, the NAT thread,
    // a Worker's first start), then take the baseline.
    const warm = await sb.ns('warm');
    const w0 = warm.watch({ links: true });
    await w0.ready;
    await w0.close();
    await warm.nat.masquerade({ source: '10.6.0.0/24' });
    await hub.links.list();
    const first = start({ role: 'full', name: nsName('wk'), hub: hub.name, index: 9 });
    await within(first.exited, 120_000, 'warm-up Worker');
    expect(first.messages).toEqual([expect.objectContaining({ done: true })]);
    await warm.delete();
    const baseline = { tasks: taskCount(), fds: fds() };

    const names = Array.from({ length: 7 }, () => nsName('wk'));
    const full = [0, 1, 2, 3].map((i) => start({ role: 'full', name: names[i], hub: hub.name, index: i }));
    const busy = start({ role: 'busy', name: names[4], hub: hub.name, index: 4 });

    // The main thread works alongside.
    const mine = await sb.ns('wkmain');
    await mine.links.add({ kind: 'veth', name: 'm0', up: true, peer: { name: 'hm', netns: hub, up: true } });
    await mine.nat.masquerade({ source: '10.5.0.0/24', outInterface: 'm0' });
    const w = mine.watch({ links: true });
    await w.ready;
    await mine.links.add({ kind: 'bridge', name: 'mb0' });
    for await (const e of w) if (e.type === 'link' && e.link.name === 'mb0') break;

    // Terminated while its calls are in flight.
    expect(await within(message(busy, 'inflight'), 120_000, 'busy Worker')).toEqual({ inflight: true });
    await busy.worker.terminate();
    // And at other moments: while it loads the addon; as its namespace exists and its first calls go out.
    const early = start({ role: 'busy', name: names[5], hub: hub.name, index: 5 });
    await early.worker.terminate();
    const starting = start({ role: 'busy', name: names[6], hub: hub.name, index: 6 });
    await within(message(starting, 'started'), 120_000, 'starting Worker');
    await starting.worker.terminate();

    const results = await within(Promise.all(full.map((f) => f.exited.then(() => f.messages))), 180_000, 'Workers');
    results.forEach((messages, i) => {
      expect(messages).toEqual([
        {
          done: true,
          sawBridge: true,
          failure: { isError: true, isNetnsError: true, code: 'EEXIST', errno: -17, stackHasCaller: true },
          links: ['e0', 'lo', 'wb0'],
          hubUp: true,
        },
      ]);
      expect(ipLinks(hub).map((l) => l.ifname)).not.toContain(`h${i}`);
    });
    // The main environment still works after all that.
    expect((await mine.links.list()).map((l) => l.name).sort()).toEqual(['lo', 'm0', 'mb0']);
    await mine.delete();
    // The terminated Workers' namespaces (where their create got through) are ours to remove.
    for (const name of names.slice(4)) await netns.delete(name, { missingOk: true });
    expect(leftoverNamespaces().filter((n) => names.includes(n))).toEqual([]);

    await settlesTo(taskCount, baseline.tasks, 'threads of the process');
    await settlesTo(fds, baseline.fds, 'descriptors of the process');
  }, 400_000);
});

describe('handles bound to their namespace', () => {
  test('a name deleted and re-created by another tool: every call is ESTALE and nothing happens in the new namespace', async () => {
    const name = nsName('stale');
    const old = await netns.create(name);
    const other = await sb.ns('stalepeer');
    await old.links.list();  // its socket is cached: the check must not rely on a fresh open
    ip('netns', 'del', name);
    ip('netns', 'add', name);
    try {
      const ops: Array<[string, () => Promise<unknown>]> = [
        ['links.add', () => old.links.add({ kind: 'bridge', name: 'br0' })],
        ['links.list', () => old.links.list()],
        ['addresses.add', () => old.addresses.add('lo', '192.0.2.1/32')],
        ['routes.list', () => old.routes.list()],
        ['neighbors.list', () => old.neighbors.list()],
        ['sysctl.set', () => old.sysctl.set('net.ipv4.ip_forward', '1')],
        ['nat.masquerade', () => old.nat.masquerade({ source: '10.4.0.0/24' })],
        ['exec', () => old.exec('ip', ['link', 'add', 'x0', 'type', 'bridge'])],
        ['veth peer', () => other.links.add({ kind: 'veth', name: 'sv', peer: { name: 'sv-in', netns: old } })],
        ['move link', () => other.links.add({ kind: 'bridge', name: 'mv0' }).then(() => other.links.set('mv0', { netns: old }))],
        ['delete', () => old.delete()],
      ];
      for (const [what, op] of ops) {
        const e = await expectRejection(op(), 'ESTALE');
        expect({ what, errno: e.errno, path: e.message.includes(old.path) }).toEqual({ what, errno: -116, path: true });
      }
      expect(() => old.spawn('true')).toThrow(expect.objectContaining({ code: 'ESTALE' }));
      const w = old.watch({ links: true });
      assertNetnsError(await w.ready.then(() => undefined, (e: unknown) => e), 'ESTALE');
      await w.close();
      // Witnesses: the new namespace is untouched (and still there).
      expect(ipJson<IpLink[]>(undefined, '-n', name, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
      expect(ipJson(undefined, '-n', name, 'addr', 'show').flatMap((l) => (l as { addr_info: unknown[] }).addr_info)).toEqual([]);
      expect(execFileSync('ip', ['netns', 'exec', name, 'cat', '/proc/sys/net/ipv4/ip_forward'], { encoding: 'utf8' }).trim()).toBe('0');
      expect(execFileSync('ip', ['netns', 'exec', name, 'nft', 'list', 'ruleset'], { encoding: 'utf8' }).trim()).toBe('');
      expect(ipLinks(other).map((l) => l.ifname)).toEqual(['lo', 'mv0']);
      expect(readdirSync('/run/netns')).toContain(name);
      // Disposing the stale handle does not delete the new namespace either.
      await old.delete({ missingOk: true });
      expect(readdirSync('/run/netns')).toContain(name);
      // open() on the live path works as before, on the new namespace.
      const fresh = await netns.open(name);
      await fresh.links.add({ kind: 'bridge', name: 'nb0' });
      expect(ipJson<IpLink[]>(undefined, '-n', name, 'link', 'show').map((l) => l.ifname)).toEqual(['lo', 'nb0']);
    } finally {
      spawnSync('ip', ['netns', 'del', name]);
      // The record of the persistent namespace `ip netns del` removed behind our back: gc drops
      // it, so this process's journal is empty again and goes at exit.
      await gc({ prefix: name });
    }
  }, 120_000);

  test('a handle opened by path or pid is bound too; an unbound one (netns.list) follows the name', async () => {
    const ns = await sb.ns('bound');
    const byPath = await netns.open({ path: ns.path });
    expect(byPath.identity).toEqual(ns.identity);
    expect((await byPath.links.list()).map((l) => l.name)).toEqual(['lo']);
    const listed = (await netns.list()).find((n) => n.name === ns.name)!;
    expect(listed.identity).toBeUndefined();
    expect((await listed.links.list()).map((l) => l.name)).toEqual(['lo']);
  });
});

describe('errors are Errors', () => {
  test('a native rejection is a NetnsError even without the call() wrapper; with it, the stack names the caller', async () => {
    const direct = await native.linkList('/run/netns/nkt-no-such-namespace').then(() => undefined, (e: unknown) => e);
    const e = assertNetnsError(direct, 'ENOENT');
    expect(e.syscall).toBe('open netns');
    const ns = await sb.ns('errs');
    const added = await ns.links.add({ kind: 'bridge', name: 'dup' }).then(() => ns.links.add({ kind: 'bridge', name: 'dup' })).then(() => undefined, (x: unknown) => x);
    const dup = assertNetnsError(added, 'EEXIST');
    expect(dup).toMatchObject({ errno: -17, syscall: 'add link', netns: ns.name, ifname: 'dup' });
    expect(dup.stack!.split('\n')[1]).toMatch(/Links\.add/);
    expect(dup.stack).toMatch(/11-embed\.test\.(js|ts)/);
    expect(dup.stack).not.toMatch(/nativeError|worker_pool/);
  });

  test('watch under EMFILE: a typed error, no thread left spinning, and it works again once descriptors are free', async () => {
    const ns = await sb.ns('emfile');
    const child = path.join(__dirname, 'support', 'embed-emfile-child.js');
    const out = await within(
      new Promise<string>((resolve, reject) => {
        const p = spawn('bash', ['-c', 'ulimit -n 200 && exec "$0" "$@"', process.execPath, child, ns.name!], { stdio: ['ignore', 'pipe', 'inherit'] });
        let text = '';
        p.stdout.on('data', (b: Buffer) => (text += b.toString()));
        p.once('error', reject);
        p.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`child exited ${code}: ${text}`))));
      }),
      60_000,
      'EMFILE child',
    );
    const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(r).toEqual({
      first: { isError: true, isNetnsError: true, code: 'EMFILE', errno: -24, syscall: 'watch', detail: 'epoll_create1' },
      threadsAfterFirst: 0,
      second: 'ready',
      threadsAfterSecond: 1,
      third: expect.objectContaining({ isError: true, isNetnsError: true, code: 'EMFILE', errno: -24 }),
    });
  }, 90_000);
});

test('nothing of this file is left in /run/netns', () => {
  expect(leftoverNamespaces().filter((n) => /-(held|bulkheld|stale|wk)-/.test(n))).toEqual([]);
});
