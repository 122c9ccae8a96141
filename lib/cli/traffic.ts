/**
 * Real traffic for the demo's checks: ping, and a tiny TCP server/client pair. Both ends live in
 * this process, on sockets created inside their namespaces (ns.net, lib/sockets.ts): no process is
 * started for them. The server answers each connection with the peer address it saw, which is how
 * the demo shows what masquerade and port forwarding did to a connection.
 */
import net from 'node:net';
import { NetnsError } from '../errors';
import type { Netns } from '../netns';

export interface PingResult {
  ok: boolean;
  /** the reply line ("64 bytes from 192.168.15.2: icmp_seq=1 ttl=64 time=0.065 ms") or ping's error */
  line: string;
}

/** One ICMP echo with a 1 s wait. Equivalent to: `ip netns exec NS ping -c1 -W1 -n ADDRESS` */
export async function ping(ns: Netns, address: string): Promise<PingResult> {
  const r = await ns.exec('ping', ['-c1', '-W1', '-n', address], { check: false });
  const text = `${r.stdout}\n${r.stderr}`;
  const reply = text.split('\n').find((l) => /bytes from/.test(l));
  if (r.exitCode === 0 && reply) return { ok: true, line: reply.trim() };
  const err = r.stderr.trim().split('\n').pop() || text.split('\n').find((l) => /received/.test(l))?.trim() || `exit code ${r.exitCode}`;
  return { ok: false, line: err };
}

export class TcpServer {
  /** peer addresses ("10.0.2.15:40312") the server has seen, in order */
  readonly peers: string[] = [];
  private readonly open = new Set<net.Socket>();
  private readonly server: net.Server;

  private constructor(greeting: string) {
    this.server = net.createServer((s) => {
      const peer = `${s.remoteAddress}:${s.remotePort}`;
      this.peers.push(peer);
      this.open.add(s);
      s.on('close', () => this.open.delete(s));
      s.on('error', () => undefined); // a client that resets: nothing to report
      s.end(`${greeting}, you are ${peer}\n`);
    });
  }

  /** Starts the server in `ns` and resolves once it listens. Equivalent to: `ip netns exec NS nc -l ADDRESS PORT` */
  static async start(ns: Netns, address: string, port: number, greeting: string): Promise<TcpServer> {
    const server = new TcpServer(greeting);
    await ns.net.listen(server.server, { host: address, port });
    return server;
  }

  /** Stops the server and closes its connections (an open socket would keep its namespace alive). */
  async stop(): Promise<void> {
    if (!this.server.listening) return;
    for (const s of this.open) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface TcpAnswer {
  ok: boolean;
  /** what the server sent, or the error (ETIMEDOUT, ECONNREFUSED, ENETUNREACH ...) */
  text: string;
}

/** Connects from `ns` to address:port and reads the answer. Equivalent to: `ip netns exec NS nc ADDRESS PORT` */
export async function tcpAsk(ns: Netns, address: string, port: number, timeoutMs: number): Promise<TcpAnswer> {
  const deadline = Date.now() + timeoutMs;
  let sock: net.Socket;
  try {
    sock = await ns.net.connect({ host: address, port, timeout: timeoutMs });
  } catch (e) {
    return { ok: false, text: e instanceof NetnsError ? e.message : String(e) };
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => done({ ok: false, text: `ETIMEDOUT no answer within ${timeoutMs} ms` }), Math.max(0, deadline - Date.now()));
    function done(a: TcpAnswer): void {
      clearTimeout(timer);
      sock.destroy();
      resolve(a);
    }
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('end', () => done({ ok: true, text: Buffer.concat(chunks).toString().trim() }));
    sock.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, text: `${e.code ?? 'EIO'} ${e.message}` }));
  });
}
