// Traffic control against the real kernel: links.shape() measured with real TCP traffic between two
// sandbox namespaces, `tc -j` and `ip -s -j` as witnesses, kinds this kernel lacks (probed with
// the tc binary first, so both branches are honest), bad input refused before anything changes.
import { execFileSync } from 'node:child_process';
import type { Netns } from '../lib/netns';
import { isNotFound, NetnsError } from '../lib/errors';
import { Sandbox, errorCode, ipJson, witnessEnv } from './support/sandbox';
import { PYTHON, peerEnv } from './support/peers';

const sb = new Sandbox();
let a: Netns; // sender: 10.77.0.1 on v0
let b: Netns; // receiver: 10.77.0.2 on v1
afterAll(() => sb.cleanup());

beforeAll(async () => {
  a = await sb.ns('tca', { ipv6: false, loopbackUp: true });
  b = await sb.ns('tcb', { ipv6: false, loopbackUp: true });
  await a.links.add({ kind: 'veth', name: 'v0', up: true, peer: { name: 'v1', netns: b, up: true } });
  await a.addresses.add('v0', '10.77.0.1/24');
  await b.addresses.add('v1', '10.77.0.2/24');
});

/** `tc -j ARGS` inside `ns`, parsed. */
function tcJson(ns: Netns, ...args: string[]): Array<Record<string, unknown>> {
  const out = execFileSync('tc', ['-j', '-n', ns.name!, ...args], { encoding: 'utf8', env: witnessEnv });
  return out.trim() ? (JSON.parse(out) as Array<Record<string, unknown>>) : [];
}

/**
 * `tc -s class show dev DEV` as { handle: { rate, ceil, bytes, packets } }: iproute2 6.1 prints htb
 * classes as text even with -j, so the witness parses the text.
 */
function tcClasses(ns: Netns, dev: string): Record<string, { rate: string; ceil: string; bytes: number; packets: number }> {
  const out = execFileSync('tc', ['-s', '-n', ns.name!, 'class', 'show', 'dev', dev], { encoding: 'utf8', env: witnessEnv });
  const res: Record<string, { rate: string; ceil: string; bytes: number; packets: number }> = {};
  for (const block of out.split(/^(?=class )/m)) {
    const m = /^class htb (\S+) .*?rate (\S+) ceil (\S+)[\s\S]*?Sent (\d+) bytes (\d+) pkt/.exec(block);
    if (m) res[m[1]] = { rate: m[2], ceil: m[3], bytes: Number(m[4]), packets: Number(m[5]) };
  }
  return res;
}

/** Whether the tc binary can add a qdisc of `kind` here (the probe for kernel features). */
function kernelHas(ns: Netns, dev: string, ...qdisc: string[]): boolean {
  try {
    execFileSync('tc', ['-n', ns.name!, 'qdisc', 'add', 'dev', dev, 'root', 'handle', '9:', ...qdisc], { stdio: 'ignore', env: witnessEnv });
  } catch {
    return false;
  }
  execFileSync('tc', ['-n', ns.name!, 'qdisc', 'del', 'dev', dev, 'root'], { stdio: 'ignore', env: witnessEnv });
  return true;
}

const RECEIVER = `
import socket, sys, time, json
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('10.77.0.2', int(sys.argv[1])))
s.listen(1)
print('ready', flush=True)
c, _ = s.accept()
total = 0
first = None
while True:
    d = c.recv(1 << 16)
    if not d:
        break
    if first is None:
        first = time.monotonic()
    total += len(d)
end = time.monotonic()
print(json.dumps({'bytes': total, 'seconds': end - first}), flush=True)
`;

const SENDER = `
import socket, sys
n = int(sys.argv[2])
s = socket.create_connection(('10.77.0.2', int(sys.argv[1])), timeout=120)
chunk = b'x' * 65536
sent = 0
while sent < n:
    k = min(len(chunk), n - sent)
    s.sendall(chunk[:k])
    sent += k
s.shutdown(socket.SHUT_WR)
s.recv(1)
s.close()
`;

let port = 7000;

/** Sends `bytes` over TCP from a to b; returns the goodput the receiver saw, in bits/s. */
async function measure(bytes: number): Promise<number> {
  const p = port++;
  const server = b.spawn(PYTHON, ['-u', '-c', RECEIVER, String(p)], { stdio: ['ignore', 'pipe', 'inherit'], env: peerEnv() });
  let out = '';
  const lines: string[] = [];
  server.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const parts = out.split('\n');
    out = parts.pop()!;
    lines.push(...parts);
  });
  const exited = new Promise<void>((resolve) => server.on('exit', () => resolve()));
  try {
    // Event-driven: the bound only stops a hung start from hanging the run.
    for (let i = 0; i < 2400 && !lines.includes('ready') && server.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
    expect(lines).toContain('ready');
    await a.exec(PYTHON, ['-c', SENDER, String(p), String(bytes)], { env: peerEnv(), timeout: 180_000 });
    await exited;
    const result = JSON.parse(lines.find((l) => l.startsWith('{'))!) as { bytes: number; seconds: number };
    expect(result.bytes).toBe(bytes);
    return (result.bytes * 8) / result.seconds;
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
}

const MB = 1024 * 1024;

describe('links.shape: rate limits measured with real TCP traffic', () => {
  test('egress on the sender: tbf at the set rate; removal restores full speed', async () => {
    await a.links.shape('v0', { rate: '16mbit' });
    const [q] = tcJson(a, 'qdisc', 'show', 'dev', 'v0');
    expect(q).toMatchObject({ kind: 'tbf', handle: '1:', root: true, options: { rate: 2_000_000 } });
    expect(await a.links.getShape('v0')).toEqual({ rate: 16_000_000, burst: 20_000, limit: 120_000 });

    const shaped = await measure(3 * MB);
    expect(shaped / 16e6).toBeGreaterThanOrEqual(0.75);
    expect(shaped / 16e6).toBeLessThanOrEqual(1.15);

    await a.links.shape('v0', null);
    expect(tcJson(a, 'qdisc', 'show', 'dev', 'v0').map((x) => x.kind)).toEqual(['noqueue']);
    expect(await a.links.getShape('v0')).toBeNull();
    const full = await measure(3 * MB);
    expect(full).toBeGreaterThan(shaped * 5);
  });

  test('ingress on the receiver: ifb + u32 match-all + mirred redirect + tbf; removed on shape(null)', async () => {
    const v1 = await b.links.get('v1');
    const ifb = `nkifb${v1.index}`;
    await b.links.shape('v1', { ingress: { rate: '12mbit' } });

    // Witnesses: the ifb exists and is up, the ingress qdisc redirects everything to it, the tbf sits on it.
    const [ifbLink] = ipJson<Array<{ ifname: string; flags: string[] }>>(b, '-d', 'link', 'show', 'dev', ifb);
    expect(ifbLink.flags).toContain('UP');
    const qd = tcJson(b, 'qdisc', 'show');
    expect(qd.find((x) => x.dev === 'v1' && x.kind === 'ingress')).toBeDefined();
    expect(qd.find((x) => x.dev === ifb && x.kind === 'tbf')).toMatchObject({ root: true, options: { rate: 1_500_000 } });
    const filters = tcJson(b, 'filter', 'show', 'dev', 'v1', 'parent', 'ffff:');
    const node = filters.find((f) => (f.options as { fh?: string } | undefined)?.fh === '800::800') as { options: { actions: Array<Record<string, unknown>> } };
    expect(node.options.actions[0]).toMatchObject({ kind: 'mirred', mirred_action: 'redirect', direction: 'egress', to_dev: ifb });
    // Our own list agrees.
    const ours = await b.tc.filters.list({ dev: 'v1', parent: 'ingress' });
    expect(ours.find((f) => f.handle === '800::800')?.actions).toEqual([{ kind: 'mirred', action: 'redirect', direction: 'egress', dev: ifb, ifindex: expect.any(Number) }]);
    expect(await b.links.getShape('v1')).toEqual({ ingress: { rate: 12_000_000, burst: 15_000, limit: 90_000 } });

    const shaped = await measure(3 * MB);
    expect(shaped / 12e6).toBeGreaterThanOrEqual(0.75);
    expect(shaped / 12e6).toBeLessThanOrEqual(1.15);
    // The ifb's tbf saw the traffic.
    const [tbf] = (await b.tc.qdiscs.list({ dev: ifb })).filter((x) => x.kind === 'tbf');
    expect(tbf.stats.bytes).toBeGreaterThan(3 * MB);

    await b.links.shape('v1', null);
    expect(ipJson(b, 'link', 'show').map((l) => l.ifname)).not.toContain(ifb);
    expect(tcJson(b, 'qdisc', 'show', 'dev', 'v1').map((x) => x.kind)).toEqual(['noqueue']);
    expect(await b.links.getShape('v1')).toBeNull();
    expect(await measure(3 * MB)).toBeGreaterThan(shaped * 5);
  });

  test('re-shaping changes the same qdisc in place (no delete, no gap); a foreign root is swapped in one graft', async () => {
    await a.links.shape('v0', { rate: '16mbit' });
    // `tc monitor` would print "deleted qdisc" for a delete-then-add; an in-place change sends none.
    const monitor = a.spawn('tc', ['monitor'], { stdio: ['ignore', 'pipe', 'ignore'], env: witnessEnv });
    let events = '';
    monitor.stdout!.on('data', (d: Buffer) => (events += d.toString()));
    try {
      // The monitor's subscription has no "ready" signal: re-shape until it has seen one (each
      // re-shape is the same in-place change), so its start-up time under load does not matter.
      for (let i = 0; i < 200 && !events.includes('qdisc tbf'); i++) {
        await a.links.shape('v0', { rate: '8mbit', burst: '16kb', latency: '20ms' });
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      monitor.kill();
    }
    expect(events).toContain('qdisc tbf 1:');
    expect(events).not.toContain('deleted');
    const [q] = tcJson(a, 'qdisc', 'show', 'dev', 'v0');
    expect(q).toMatchObject({ kind: 'tbf', handle: '1:', options: { rate: 1_000_000 } });
    expect(await a.links.getShape('v0')).toMatchObject({ rate: 8_000_000 });

    // An htb someone else put at 1: cannot be changed into a tbf in place: shape() grafts a tbf at 11:.
    await a.links.shape('v0', null);
    await a.tc.qdiscs.add({ dev: 'v0', kind: 'htb', handle: '1:', defaultClass: 0x10 });
    await expect(a.links.getShape('v0')).rejects.toMatchObject({ code: 'ERR_NETNS_CONFLICT' });
    await a.links.shape('v0', { rate: '8mbit' });
    expect(tcJson(a, 'qdisc', 'show', 'dev', 'v0')).toEqual([expect.objectContaining({ kind: 'tbf', handle: '11:', root: true })]);
    await a.links.shape('v0', null);
    expect(tcJson(a, 'qdisc', 'show', 'dev', 'v0').map((x) => x.kind)).toEqual(['noqueue']);
  });
});

describe('kernel features: probed with tc, both branches covered', () => {
  test('netem: delay seen by ping where the kernel has it; EOPNOTSUPP and no change where it does not', async () => {
    const hasNetem = kernelHas(a, 'v0', 'netem', 'delay', '1ms');
    await a.links.shape('v0', { rate: '16mbit' });
    const before = tcJson(a, 'qdisc', 'show');
    const shapeBefore = await a.links.getShape('v0');
    if (hasNetem) {
      await a.links.shape('v0', { delay: '40ms', rate: '16mbit' });
      expect(await a.links.getShape('v0')).toMatchObject({ delay: 40, rate: 16_000_000 });
      const ping = await a.exec('ping', ['-c', '3', '-i', '0.2', '10.77.0.2']);
      const avg = Number(/= [\d.]+\/([\d.]+)\//.exec(ping.stdout)![1]);
      expect(avg).toBeGreaterThanOrEqual(40);
      await a.links.shape('v0', null);
      return;
    }
    // Egress netem: the first kernel step is refused; nothing changed.
    let err: unknown;
    await a.links.shape('v0', { rate: '16mbit', delay: '40ms', jitter: '5ms', loss: 1 }).catch((e) => (err = e));
    expect(err).toBeInstanceOf(NetnsError);
    const e = err as NetnsError;
    expect(e.code).toBe('EOPNOTSUPP');
    expect(e.errno).toBe(-95);
    expect(e.message).toContain('netem');
    expect(isNotFound(e)).toBe(false);
    expect(tcJson(a, 'qdisc', 'show')).toEqual(before);
    expect(await a.links.getShape('v0')).toEqual(shapeBefore);
    // Ingress netem (egress rate-only): refused before the egress changes and before an ifb exists.
    expect(await errorCode(a.links.shape('v0', { rate: '4mbit', ingress: { loss: '1%' } }))).toBe('EOPNOTSUPP');
    expect(tcJson(a, 'qdisc', 'show')).toEqual(before);
    expect(ipJson(a, 'link', 'show').map((l) => l.ifname)).toEqual(['lo', 'v0']);
    // The lower level says the same.
    expect(await errorCode(a.tc.qdiscs.add({ dev: 'v0', kind: 'netem', delay: '40ms' }))).toBe('EOPNOTSUPP');
    expect(tcJson(a, 'qdisc', 'show')).toEqual(before);
    await a.links.shape('v0', null);
  });

  test.each([
    ['fq_codel', ['fq_codel'], { kind: 'fq_codel' as const, limit: 1000 }],
    ['sfq', ['sfq'], { kind: 'sfq' as const }],
    ['prio', ['prio'], { kind: 'prio' as const }],
    ['tbf', ['tbf', 'rate', '1mbit', 'burst', '16kb', 'latency', '50ms'], { kind: 'tbf' as const, rate: '1mbit', burst: '16kb', latency: '50ms' }],
    ['pfifo', ['pfifo', 'limit', '100'], { kind: 'pfifo' as const, limit: 100 }],
  ])('qdisc %s: works exactly where the tc binary works, EOPNOTSUPP (naming it) elsewhere', async (kind, tcArgs, spec) => {
    const has = kernelHas(a, 'v0', ...tcArgs);
    const before = tcJson(a, 'qdisc', 'show', 'dev', 'v0');
    const p = a.tc.qdiscs.replace({ dev: 'v0', handle: '5:', ...spec });
    if (has) {
      await p;
      expect(tcJson(a, 'qdisc', 'show', 'dev', 'v0')).toEqual([expect.objectContaining({ kind, handle: '5:', root: true })]);
      expect((await a.tc.qdiscs.list({ dev: 'v0' }))[0]).toMatchObject({ kind, handle: '5:', parent: 'root' });
      await a.tc.qdiscs.delete({ dev: 'v0' });
    } else {
      await expect(p).rejects.toMatchObject({ code: 'EOPNOTSUPP', message: expect.stringContaining(`qdisc kind ${kind}`) });
    }
    expect(tcJson(a, 'qdisc', 'show', 'dev', 'v0')).toEqual(before);
  });

  test('filters: matchall/flower classifiers and gact actions probed the same way; u32 + mirred work', async () => {
    await a.links.add({ kind: 'bridge', name: 'tcbr0', up: true });
    try {
      await a.tc.qdiscs.add({ dev: 'v0', kind: 'ingress' });
      const tcOk = (...args: string[]) => {
        try {
          execFileSync('tc', ['-n', a.name!, 'filter', 'add', 'dev', 'v0', 'parent', 'ffff:', 'prio', '9', ...args], { stdio: 'ignore', env: witnessEnv });
          execFileSync('tc', ['-n', a.name!, 'filter', 'del', 'dev', 'v0', 'parent', 'ffff:', 'prio', '9'], { stdio: 'ignore', env: witnessEnv });
          return true;
        } catch {
          return false;
        }
      };
      const cases: Array<[string[], Parameters<typeof a.tc.filters.add>[0], string]> = [
        [['matchall', 'action', 'mirred', 'egress', 'mirror', 'dev', 'tcbr0'], { dev: 'v0', parent: 'ingress', prio: 9, kind: 'matchall', actions: [{ kind: 'mirred', action: 'mirror', dev: 'tcbr0' }] }, 'filter kind matchall'],
        [['flower'], { dev: 'v0', parent: 'ingress', prio: 9, kind: 'flower' }, 'filter kind flower'],
        [['u32', 'match', 'u32', '0', '0', 'action', 'gact', 'drop'], { dev: 'v0', parent: 'ingress', prio: 9, kind: 'u32', actions: [{ kind: 'gact', verdict: 'drop' }] }, 'tc action gact'],
        [['u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'mirror', 'dev', 'tcbr0'], { dev: 'v0', parent: 'ingress', prio: 9, kind: 'u32', actions: [{ kind: 'mirred', action: 'mirror', dev: 'tcbr0' }] }, ''],
      ];
      for (const [tcArgs, spec, missing] of cases) {
        const has = tcOk(...tcArgs);
        const before = tcJson(a, 'filter', 'show', 'dev', 'v0', 'parent', 'ffff:');
        if (has) {
          await a.tc.filters.add(spec);
          const listed = await a.tc.filters.list({ dev: 'v0', parent: 'ingress' });
          expect(listed.some((f) => f.prio === 9 && f.kind === spec.kind)).toBe(true);
          await a.tc.filters.delete({ dev: 'v0', parent: 'ingress', prio: 9 });
        } else {
          await expect(a.tc.filters.add(spec)).rejects.toMatchObject({ code: 'EOPNOTSUPP', message: expect.stringContaining(missing) });
        }
        expect(tcJson(a, 'filter', 'show', 'dev', 'v0', 'parent', 'ffff:')).toEqual(before);
      }
    } finally {
      await a.tc.qdiscs.delete({ dev: 'v0', kind: 'ingress' }, { missingOk: true });
      await a.links.delete('tcbr0');
    }
  });
});

describe('htb classes and u32 filters (the lower level)', () => {
  test('classes and filters list what tc shows, with statistics after traffic', async () => {
    await a.tc.qdiscs.add({ dev: 'v0', kind: 'htb', handle: '1:', defaultClass: 0x20 });
    try {
      await a.tc.classes.add({ dev: 'v0', parent: '1:', classid: '1:10', kind: 'htb', rate: '20mbit', ceil: '40mbit' });
      await a.tc.classes.add({ dev: 'v0', parent: '1:', classid: '1:20', kind: 'htb', rate: '1gbit' });
      // 10.77.0.2 is the IPv4 destination at offset 16 of the IP header.
      await a.tc.filters.add({ dev: 'v0', parent: '1:', kind: 'u32', prio: 1, protocol: 'ip', match: [{ value: 0x0a4d0002, mask: 0xffffffff, at: 16 }], flowid: '1:10' });
      const classes = await a.tc.classes.list({ dev: 'v0' });
      const c10 = classes.find((c) => c.classid === '1:10')!;
      expect(c10.options).toMatchObject({ rate: 20_000_000, ceil: 40_000_000 });
      expect(tcClasses(a, 'v0')['1:10']).toMatchObject({ rate: '20Mbit', ceil: '40Mbit' });
      const filters = await a.tc.filters.list({ dev: 'v0', parent: '1:' });
      expect(filters.find((f) => f.handle === '800::800')).toMatchObject({ flowid: '1:10', match: [{ value: 0x0a4d0002, mask: 0xffffffff, at: 16 }], protocol: 0x0800 });

      await a.exec('ping', ['-c', '5', '-i', '0.05', '-s', '1000', '10.77.0.2']);
      const after = (await a.tc.classes.list({ dev: 'v0' })).find((c) => c.classid === '1:10')!;
      const witness = tcClasses(a, 'v0')['1:10'];
      expect(after.stats.packets).toBeGreaterThanOrEqual(5);
      expect(after.stats.packets).toBe(witness.packets);
      expect(after.stats.bytes).toBe(witness.bytes);

      await a.tc.classes.change({ dev: 'v0', parent: '1:', classid: '1:10', kind: 'htb', rate: '10mbit' });
      expect(tcClasses(a, 'v0')['1:10']).toMatchObject({ rate: '10Mbit' });
      await a.tc.filters.delete({ dev: 'v0', parent: '1:', prio: 1 });
      await a.tc.classes.delete({ dev: 'v0', classid: '1:10' });
      expect(await errorCode(a.tc.classes.delete({ dev: 'v0', classid: '1:10' }))).toBe('ENOENT');
      await a.tc.classes.delete({ dev: 'v0', classid: '1:10' }, { missingOk: true });
    } finally {
      await a.tc.qdiscs.delete({ dev: 'v0' }, { missingOk: true });
    }
    expect(tcJson(a, 'qdisc', 'show', 'dev', 'v0').map((x) => x.kind)).toEqual(['noqueue']);
    // Deleting the default root is "nothing there" for missingOk.
    await a.tc.qdiscs.delete({ dev: 'v0' }, { missingOk: true });
  });
});

describe('counters', () => {
  test('links.stats and list({ stats: true }) equal `ip -s -j link` after traffic', async () => {
    await measure(256 * 1024);
    type IpStats = { ifname: string; stats64: { rx: Record<string, number>; tx: Record<string, number> } };
    const witness = () => ipJson<IpStats[]>(a, '-s', 'link', 'show', 'dev', 'v0')[0].stats64;
    // Counters may move between two reads (an ARP probe): take a read that agrees with a witness
    // read right before and right after it.
    let ours = await a.links.stats('v0');
    for (let i = 0; i < 5; i++) {
      const w1 = witness();
      ours = await a.links.stats('v0');
      const w2 = witness();
      if (JSON.stringify(w1) === JSON.stringify(w2)) {
        expect(ours).toEqual({
          rxBytes: w1.rx.bytes,
          rxPackets: w1.rx.packets,
          rxErrors: w1.rx.errors,
          rxDropped: w1.rx.dropped,
          txBytes: w1.tx.bytes,
          txPackets: w1.tx.packets,
          txErrors: w1.tx.errors,
          txDropped: w1.tx.dropped,
          multicast: w1.rx.multicast,
          collisions: w1.tx.collisions,
        });
        break;
      }
    }
    expect(ours.txBytes).toBeGreaterThan(256 * 1024);
    const listed = await a.links.list({ stats: true });
    expect(listed.find((l) => l.name === 'v0')!.stats!.txBytes).toBeGreaterThanOrEqual(ours.txBytes);
    expect(listed.every((l) => l.stats !== undefined)).toBe(true);
    expect((await a.links.list()).every((l) => l.stats === undefined)).toBe(true);
    expect(await errorCode(a.links.stats('nosuch0'))).toBe('ENOENT');
    expect(await errorCode(a.links.list({ stats: 'yes' } as never))).toBe('ERR_NETNS_INVALID_ARG');
  });
});

describe('bad input: typed, and nothing changed', () => {
  test.each([
    [{ rate: -10 }],
    [{ rate: '-10mbit' }],
    [{ rate: '10 megabananas' }],
    [{ rate: '10mbit', latency: '5 fortnights' }],
    [{ loss: 101 }],
    [{ loss: '150%' }],
    [{ delay: '40ms', corrupt: -1 }],
    [{ rate: '10mbit', colour: 'blue' }],
    [{ ingress: { rate: '10mbit', speed: 1 } }],
    [{ ingress: 'fast' }],
    [{ burst: '32kb' }],
  ])('shape(%p) is ERR_NETNS_INVALID_ARG', async (spec) => {
    await a.links.shape('v0', { rate: '16mbit', ingress: { rate: '8mbit' } });
    const before = [tcJson(a, 'qdisc', 'show'), ipJson(a, 'link', 'show').map((l) => l.ifname)];
    expect(await errorCode(a.links.shape('v0', spec as never))).toBe('ERR_NETNS_INVALID_ARG');
    expect([tcJson(a, 'qdisc', 'show'), ipJson(a, 'link', 'show').map((l) => l.ifname)]).toEqual(before);
    await a.links.shape('v0', null);
  });

  test('bad device names and missing devices', async () => {
    expect(await errorCode(a.links.shape('no/such', { rate: '1mbit' }))).toBe('ERR_NETNS_INVALID_IFNAME');
    expect(await errorCode(a.links.shape('nosuch0', { rate: '1mbit' }))).toBe('ENOENT');
    expect(await errorCode(a.tc.qdiscs.add({ dev: 'v0', kind: 'tbf', rate: '1mbit' } as never))).toBe('ERR_NETNS_INVALID_ARG');
    expect(await errorCode(a.tc.qdiscs.add({ dev: 'v0', kind: 'cake' } as never))).toBe('ERR_NETNS_INVALID_ARG');
    expect(tcJson(a, 'qdisc', 'show', 'dev', 'v0').map((x) => x.kind)).toEqual(['noqueue']);
  });
});
