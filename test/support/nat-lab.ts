/**
 * The tutorial's network, in namespaces only, for the NAT tests:
 *
 *   red  192.168.15.1 fd15::1 ─┐
 *                              br0 192.168.15.5 fd15::5 ── host ── wan0 203.0.113.1 2001:db8:1::1 ── eth0 203.0.113.2 2001:db8:1::2  wan
 *   blue 192.168.15.2 fd15::2 ─┘
 *
 * "wan" plays the internet: it knows only its own subnet and the VIP range, never 192.168.15.0/24,
 * so anything from red/blue reaches it only when the host masquerades. The VIP ranges
 * (10.96.0.0/24, fd96::/64) are routed to the host.
 *
 * Peers are small python3 programs (TCP/UDP servers that answer with their name and the source
 * address they saw; clients that print the answers), started with ns.spawn / ns.exec. Every
 * wait is bounded.
 */
import type { ChildProcess } from 'node:child_process';
import type { Netns } from '../../lib/index';
import { PYTHON, peerEnv } from './peers';
import type { Sandbox } from './sandbox';

export const ADDR = {
  red: { 4: '192.168.15.1', 6: 'fd15::1' },
  blue: { 4: '192.168.15.2', 6: 'fd15::2' },
  br: { 4: '192.168.15.5', 6: 'fd15::5' },
  hostWan: { 4: '203.0.113.1', 6: '2001:db8:1::1' },
  wan: { 4: '203.0.113.2', 6: '2001:db8:1::2' },
} as const;

export interface Lab {
  host: Netns;
  red: Netns;
  blue: Netns;
  wan: Netns;
}

export async function buildLab(sb: Sandbox): Promise<Lab> {
  const [host, red, blue, wan] = await Promise.all([sb.ns('host', { loopbackUp: true }), sb.ns('red', { loopbackUp: true }), sb.ns('blue', { loopbackUp: true }), sb.ns('wan', { loopbackUp: true })]);
  await host.links.add({ kind: 'bridge', name: 'br0', up: true });
  await host.addresses.add('br0', '192.168.15.5/24');
  await host.addresses.add('br0', 'fd15::5/64', { noDad: true });
  for (const [name, ns] of [['red', red], ['blue', blue]] as const) {
    await host.links.add({ kind: 'veth', name: `veth-${name}-br`, master: 'br0', up: true, peer: { name: `veth-${name}`, netns: ns } });
    await ns.links.set(`veth-${name}`, { up: true });
    await ns.addresses.add(`veth-${name}`, `${ADDR[name][4]}/24`);
    await ns.addresses.add(`veth-${name}`, `${ADDR[name][6]}/64`, { noDad: true });
    await ns.routes.add({ to: 'default', via: ADDR.br[4] });
    await ns.routes.add({ to: 'default', via: ADDR.br[6], family: 6 });
  }
  await host.links.add({ kind: 'veth', name: 'wan0', up: true, peer: { name: 'eth0', netns: wan } });
  await wan.links.set('eth0', { up: true });
  await host.addresses.add('wan0', `${ADDR.hostWan[4]}/24`);
  await host.addresses.add('wan0', `${ADDR.hostWan[6]}/64`, { noDad: true });
  await wan.addresses.add('eth0', `${ADDR.wan[4]}/24`);
  await wan.addresses.add('eth0', `${ADDR.wan[6]}/64`, { noDad: true });
  // The VIP range of the service tests is reachable through the host, as a cluster network would be.
  await wan.routes.add({ to: '10.96.0.0/24', via: ADDR.hostWan[4] });
  await wan.routes.add({ to: 'fd96::/64', via: ADDR.hostWan[6] });
  return { host, red, blue, wan };
}

const PEER = String.raw`
import socket, sys, time
a = sys.argv[1:]
mode = a[0]
def fam(f): return socket.AF_INET6 if f == '6' else socket.AF_INET
if mode == 'serve':
    name, f, proto, port = a[1], a[2], a[3], int(a[4])
    s = socket.socket(fam(f), socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if f == '6': s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(('::' if f == '6' else '0.0.0.0', port))
    if proto == 'tcp': s.listen(256)
    print('ready', flush=True)
    while True:
        if proto == 'tcp':
            c, peer = s.accept()
            c.sendall(('%s %s\n' % (name, peer[0])).encode())
            c.close()
        else:
            d, peer = s.recvfrom(2048)
            print('got %s' % peer[0], flush=True)
            s.sendto(('%s %s\n' % (name, peer[0])).encode(), peer)
elif mode == 'ask':
    f, proto, host, port, count, timeout = a[1], a[2], a[3], int(a[4]), int(a[5]), float(a[6])
    for i in range(count):
        try:
            if proto == 'tcp':
                c = socket.create_connection((host, port), timeout=timeout)
                c.settimeout(timeout)
                line = c.makefile().readline().strip()
                c.close()
            else:
                s = socket.socket(fam(f), socket.SOCK_DGRAM)
                s.settimeout(timeout)
                s.sendto(b'hi', (host, port))
                line = s.recvfrom(2048)[0].decode().strip()
                s.close()
            print(line or 'ERR empty', flush=True)
        except Exception as e:
            print('ERR %s' % type(e).__name__, flush=True)
elif mode == 'stream':
    f, host, port, interval, total = a[1], a[2], int(a[3]), float(a[4]), float(a[5])
    s = socket.socket(fam(f), socket.SOCK_DGRAM)
    s.settimeout(interval)
    end = time.time() + total
    n = 0
    while time.time() < end:
        n += 1
        s.sendto(b'x', (host, port))
        print('sent %d' % n, flush=True)
        try:
            print('reply %s' % s.recvfrom(2048)[0].decode().strip(), flush=True)
        except OSError:
            pass
`;

/** A long-running peer whose stdout lines are collected. */
export class Peer {
  readonly lines: string[] = [];
  constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      this.lines.push(...parts);
    });
  }
  count(prefix: string): number {
    return this.lines.filter((l) => l.startsWith(prefix)).length;
  }
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

const peers: Peer[] = [];

/** Polls `pred` every 50 ms for at most `ms`; resolves whether it became true. */
export async function waitFor(pred: () => boolean, ms: number): Promise<boolean> {
  for (let waited = 0; waited <= ms; waited += 50) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return pred();
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * Starts a server in `ns` answering "<name> <source address>" and waits until it says it listens
 * (or exits). The wait is event-driven; its bound only stops a hung start from hanging the run, so
 * it is far above any start time seen under load (one start under the ASan preload took 2.8 s).
 */
export async function serve(ns: Netns, name: string, family: 4 | 6, proto: 'tcp' | 'udp', port: number): Promise<Peer> {
  const p = new Peer(ns.spawn(PYTHON, ['-u', '-c', PEER, 'serve', name, String(family), proto, String(port)], { stdio: ['ignore', 'pipe', 'inherit'], env: peerEnv() }));
  peers.push(p);
  const started = await waitFor(() => p.lines.includes('ready') || p.child.exitCode !== null || p.child.signalCode !== null, 120000);
  if (!started || !p.lines.includes('ready')) throw new Error(`server ${name} did not start (exit ${p.child.exitCode ?? p.child.signalCode ?? 'none'})`);
  return p;
}

/** Connects `count` times from `ns` and returns the answers ("red 203.0.113.2", or "ERR <why>"). */
export async function ask(ns: Netns, family: 4 | 6, proto: 'tcp' | 'udp', host: string, port: number, count = 1, timeout = 2): Promise<string[]> {
  const r = await ns.exec(PYTHON, ['-c', PEER, 'ask', String(family), proto, host, String(port), String(count), String(timeout)], { timeout: count * timeout * 1000 + 60000, env: peerEnv() });
  return r.stdout.trim().split('\n');
}

/** A UDP client that keeps sending one datagram per `interval` seconds from one socket for `total` seconds. */
export function udpStream(ns: Netns, family: 4 | 6, host: string, port: number, interval: number, total: number): Peer {
  const p = new Peer(ns.spawn(PYTHON, ['-u', '-c', PEER, 'stream', String(family), host, String(port), String(interval), String(total)], { stdio: ['ignore', 'pipe', 'inherit'], env: peerEnv() }));
  peers.push(p);
  return p;
}

export function killPeers(): void {
  for (const p of peers.splice(0)) p.kill();
}

/** `nft -j list ruleset` in `ns` through nsenter: the independent witness. */
export async function nftRuleset(ns: Netns): Promise<string> {
  return (await ns.exec('nft', ['-j', 'list', 'ruleset'])).stdout;
}

/** The ruleset without the given owned tables (inet), as canonical JSON text of the remaining objects. */
export function withoutTables(rulesetJson: string, tables: string[]): string {
  const doc = JSON.parse(rulesetJson) as { nftables: Record<string, { family?: string; table?: string; name?: string }>[] };
  return JSON.stringify(
    doc.nftables.filter((item) => {
      const v = Object.values(item)[0];
      if ('metainfo' in item) return true;
      if ('table' in item) return !(v.family === 'inet' && tables.includes(v.name!));
      return !(v.family === 'inet' && tables.includes(v.table!));
    }),
  );
}

/** `nft -j list table inet NAME` text, or '' when there is no such table. */
export async function nftTable(ns: Netns, table: string, family = 'inet'): Promise<string> {
  const r = await ns.exec('nft', ['-j', 'list', 'table', family, table], { check: false });
  return r.exitCode === 0 ? r.stdout : '';
}
