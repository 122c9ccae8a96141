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
 * Peers (TCP/UDP servers that answer with their name and the source address they saw; clients
 * that collect the answers) run in this process on sockets created inside their namespaces
 * (ns.net, ns.dgram): nothing is spawned, so no start-up wait (python under the sanitizer preload
 * took seconds). Every wait is bounded.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Netns } from '../../lib/index';
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

/** A peer's log: what it saw and did, one line each ("got 203.0.113.2", "sent 3", "reply red-udp 10.0.2.2"). */
export class Peer {
  readonly lines: string[] = [];
  constructor(private readonly stop: () => void) {}
  count(prefix: string): number {
    return this.lines.filter((l) => l.startsWith(prefix)).length;
  }
  kill(): void {
    this.stop();
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
 * A server in `ns` answering "<name> <source address>\n" (TCP: then closes; UDP: to the sender,
 * logging "got <source>"). It lives in this process, on a socket created inside `ns`
 * (lib/sockets.ts): no interpreter to start, so it is ready when this resolves.
 */
export async function serve(ns: Netns, name: string, family: 4 | 6, proto: 'tcp' | 'udp', port: number): Promise<Peer> {
  const any = family === 6 ? '::' : '0.0.0.0';
  if (proto === 'tcp') {
    const open = new Set<net.Socket>();
    const server = net.createServer((c) => {
      open.add(c);
      c.on('close', () => open.delete(c));
      c.on('error', () => undefined);
      c.end(`${name} ${c.remoteAddress}\n`);
    });
    const p = new Peer(() => {
      for (const c of open) c.destroy();
      server.close();
    });
    await ns.net.listen(server, { host: any, port, backlog: 256, ...(family === 6 ? { ipv6Only: true } : {}) });
    peers.push(p);
    return p;
  }
  const sock = await ns.dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', address: any, port, reuseAddr: true, ...(family === 6 ? { ipv6Only: true } : {}) });
  const p = new Peer(() => sock.close());
  sock.on('message', (_msg, rinfo) => {
    p.lines.push(`got ${rinfo.address}`);
    sock.send(`${name} ${rinfo.address}\n`, rinfo.port, rinfo.address);
  });
  sock.on('error', () => undefined);
  peers.push(p);
  return p;
}

/** What the python peers these tests were written against called each failure. */
function errName(e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === 'ETIMEDOUT') return 'TimeoutError';
  if (code === 'ECONNREFUSED') return 'ConnectionRefusedError';
  if (code === 'ECONNRESET') return 'ConnectionResetError';
  return 'OSError';
}

/** One TCP question: connect (within `timeoutMs`), read one line (within `timeoutMs`), close. */
async function askTcp(ns: Netns, host: string, port: number, timeoutMs: number): Promise<string> {
  const c = await ns.net.connect({ host, port, timeout: timeoutMs });
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => finish(Object.assign(new Error('read timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
    function finish(err?: Error): void {
      clearTimeout(timer);
      c.destroy();
      if (err) reject(err);
      else resolve(text.split('\n')[0].trim());
    }
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      text += d;
      if (text.includes('\n')) finish();
    });
    c.on('end', () => finish());
    c.on('error', (e) => finish(e));
  });
}

/** One UDP question from a fresh socket: send "hi", wait `timeoutMs` for the first answer. */
async function askUdp(ns: Netns, family: 4 | 6, host: string, port: number, timeoutMs: number): Promise<string> {
  const s = await ns.dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })), timeoutMs);
      s.once('message', (m) => {
        clearTimeout(timer);
        resolve(m.toString().trim());
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.send('hi', port, host);
    });
  } finally {
    s.close();
  }
}

/** Connects `count` times, one after the other, from `ns` and returns the answers ("red 203.0.113.2", or "ERR <why>"). */
export async function ask(ns: Netns, family: 4 | 6, proto: 'tcp' | 'udp', host: string, port: number, count = 1, timeout = 2): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    try {
      const line = proto === 'tcp' ? await askTcp(ns, host, port, timeout * 1000) : await askUdp(ns, family, host, port, timeout * 1000);
      out.push(line || 'ERR empty');
    } catch (e) {
      out.push(`ERR ${errName(e)}`);
    }
  }
  return out;
}

/**
 * A UDP client that sends one datagram per `interval` seconds from one socket for `total` seconds,
 * logging "sent N" and "reply <answer>". Returns at once; the socket is made in the background.
 */
export function udpStream(ns: Netns, family: 4 | 6, host: string, port: number, interval: number, total: number): Peer {
  let timer: NodeJS.Timeout | undefined;
  let sock: dgram.Socket | undefined;
  let stopped = false;
  const stop = () => {
    stopped = true;
    if (timer) clearInterval(timer);
    sock?.close();
    sock = undefined;
  };
  const p = new Peer(stop);
  peers.push(p);
  void ns.dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' }).then(
    (s) => {
      if (stopped) return s.close();
      sock = s;
      s.on('error', () => undefined);
      s.on('message', (m) => p.lines.push(`reply ${m.toString().trim()}`));
      let n = 0;
      const end = Date.now() + total * 1000;
      const tick = () => {
        if (Date.now() >= end) return stop();
        n++;
        s.send('x', port, host);
        p.lines.push(`sent ${n}`);
      };
      tick();
      timer = setInterval(tick, interval * 1000);
    },
    (e: Error) => p.lines.push(`ERR ${e.message}`),
  );
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
