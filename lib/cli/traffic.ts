/**
 * Real traffic for the demo's checks: ping, and a tiny TCP server/client pair. Both ends are Node
 * itself (process.execPath) started inside a namespace with nsenter, so the demo needs nothing
 * that a fresh Debian may lack. The server answers each connection with the peer address it saw,
 * which is how the demo shows what masquerade and port forwarding did to a connection.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
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

// Server: listens, prints "ready", answers each connection with a greeting and the peer address,
// and logs that peer address on stdout. argv: address port greeting
const SERVER = `
const net = require('node:net');
const [address, port, greeting] = process.argv.slice(1);
const server = net.createServer((s) => {
  const peer = s.remoteAddress + ':' + s.remotePort;
  process.stdout.write('peer ' + peer + '\\n');
  s.end(greeting + ', you are ' + peer + '\\n');
  s.on('error', () => {});
});
server.on('error', (e) => { process.stderr.write(e.code + ' ' + e.message + '\\n'); process.exit(1); });
server.listen(Number(port), address, () => process.stdout.write('ready\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

// Client: connects, prints what it received; exit 3 on timeout, 2 on a refused/unreachable
// connection (with the error code on stderr). argv: address port timeoutMs
const CLIENT = `
const net = require('node:net');
const [address, port, timeout] = process.argv.slice(1);
const s = net.connect({ host: address, port: Number(port) });
const chunks = [];
const timer = setTimeout(() => { process.stderr.write('ETIMEDOUT no answer within ' + timeout + ' ms\\n'); process.exit(3); }, Number(timeout));
s.on('data', (d) => chunks.push(d));
s.on('end', () => { clearTimeout(timer); process.stdout.write(Buffer.concat(chunks)); process.exit(0); });
s.on('error', (e) => { clearTimeout(timer); process.stderr.write(e.code + ' ' + e.message + '\\n'); process.exit(2); });
`;

export class TcpServer {
  /** peer addresses ("10.0.2.15:40312") the server has seen, in order */
  readonly peers: string[] = [];
  private buffered = '';

  private constructor(private readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.buffered += d;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        if (line.startsWith('peer ')) this.peers.push(line.slice(5));
      }
    });
  }

  /** Starts the server in `ns` and resolves once it listens. Equivalent to: `ip netns exec NS nc -l ADDRESS PORT` */
  static async start(ns: Netns, address: string, port: number, greeting: string): Promise<TcpServer> {
    const child = ns.spawn(process.execPath, ['-e', SERVER, address, String(port), greeting], { stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new TcpServer(child);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    await new Promise<void>((resolve, reject) => {
      const onData = (d: string) => {
        if (d.includes('ready')) {
          child.stdout!.off('data', onData);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`TCP server on ${address}:${port} in ${ns.label} exited (${code}): ${stderr.trim()}`)));
    });
    return server;
  }

  /** Stops the server and waits until it is gone (a live process would keep its namespace alive). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGKILL');
    await exited;
  }
}

export interface TcpAnswer {
  ok: boolean;
  /** what the server sent, or the error (ETIMEDOUT, ECONNREFUSED, ENETUNREACH ...) */
  text: string;
}

/** Connects from `ns` to address:port and reads the answer. Equivalent to: `ip netns exec NS nc ADDRESS PORT` */
export async function tcpAsk(ns: Netns, address: string, port: number, timeoutMs: number): Promise<TcpAnswer> {
  const r = await ns.exec(process.execPath, ['-e', CLIENT, address, String(port), String(timeoutMs)], { check: false, timeout: timeoutMs + 5000 });
  if (r.exitCode === 0) return { ok: true, text: r.stdout.trim() };
  return { ok: false, text: r.stderr.trim() || `exit code ${r.exitCode}` };
}
