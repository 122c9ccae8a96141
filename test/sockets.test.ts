/**
 * Sockets inside namespaces, used from this process (lib/sockets.ts, lib/http-agent.ts): a server
 * in A and clients in B, joined by a veth, all in this one process. Witnesses: the peer addresses
 * each side sees, `ss` inside A and in the process's own namespace, /proc/self/fd, and the absence
 * of child processes.
 */
import { ChildProcess, execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, fstatSync, closeSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { fetch as undiciFetch } from 'undici';
import { NetnsError, type Netns } from '../lib/index';
import { native } from '../lib/native';
import { errorCode, Sandbox, witnessEnv } from './support/sandbox';

const sb = new Sandbox();
let A: Netns;
let B: Netns;
const A4 = '192.168.77.1';
const B4 = '192.168.77.2';
const A6 = 'fd77::1';
const B6 = 'fd77::2';
/** On the veth's subnet, but nobody has it: a SYN to it waits for ARP, then EHOSTUNREACH. */
const NOBODY4 = '192.168.77.9';
let tls: { key: string; cert: string };

/** A port unlikely to be in use anywhere, so `ss` output can be matched on it alone. */
function freshPort(): number {
  return 20000 + Math.floor(Math.random() * 40000);
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Waits (bounded, event-free: descriptors close in the event loop) until at most `n` descriptors are open. */
async function fdsBackTo(n: number): Promise<number> {
  for (let i = 0; i < 200 && fdCount() > n; i++) await new Promise((r) => setTimeout(r, 25));
  return fdCount();
}

/** Listening TCP ports `ss` shows in a namespace (ours when `ns` is undefined). */
async function listeningTcp(ns: Netns | undefined): Promise<number[]> {
  const out = ns ? (await ns.exec('ss', ['-ltnH'], { env: witnessEnv })).stdout : execFileSync('ss', ['-ltnH'], { encoding: 'utf8', env: witnessEnv });
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(/:(\d+)$/.exec(l.trim().split(/\s+/)[3])?.[1]));
}

function readAll(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let d = '';
    s.setEncoding('utf8').on('data', (x: string) => (d += x));
    s.on('end', () => resolve(d));
    s.on('error', reject);
  });
}

function greeter(): net.Server {
  return net.createServer((s) => {
    s.on('error', () => undefined);
    s.end(`hello ${s.remoteAddress} ${s.remotePort}\n`);
  });
}

async function closeServer(s: net.Server | http.Server): Promise<void> {
  if ('closeAllConnections' in s) s.closeAllConnections();
  await new Promise<void>((r) => s.close(() => r()));
}

beforeAll(async () => {
  [A, B] = await Promise.all([sb.ns('sockA', { loopbackUp: true }), sb.ns('sockB', { loopbackUp: true })]);
  await A.links.add({ kind: 'veth', name: 'va', up: true, peer: { name: 'vb', netns: B, up: true } });
  await Promise.all([
    A.addresses.add('va', `${A4}/24`),
    A.addresses.add('va', `${A6}/64`, { noDad: true }),
    B.addresses.add('vb', `${B4}/24`),
    B.addresses.add('vb', `${B6}/64`, { noDad: true }),
  ]);
  // A certificate for A's address (IP SAN), for https through agent() and the fetch dispatcher.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nk-sock-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=netns-kit test', '-addext', `subjectAltName=IP:${A4}`, '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem')], { stdio: 'ignore', env: witnessEnv });
    tls = { key: readFileSync(path.join(dir, 'k.pem'), 'utf8'), cert: readFileSync(path.join(dir, 'c.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

afterAll(async () => {
  await Promise.all([A.closeConnections(), B.closeConnections()]);
  await sb.cleanup();
});

describe('a server in A and a client in B, in one process', () => {
  test.each([
    [4, A4, B4],
    [6, A6, B6],
  ] as const)('TCP over IPv%i: both sides see the other\'s address; ss sees the listener only inside A', async (_family, serverAddr, clientAddr) => {
    const port = freshPort();
    const seen: string[] = [];
    const server = net.createServer((s) => {
      seen.push(`${s.remoteAddress} ${s.localAddress}`);
      s.end(`hello ${s.remoteAddress}\n`);
    });
    const info = await A.net.listen(server, { host: serverAddr, port });
    try {
      expect(info).toEqual({ address: serverAddr, family: _family === 4 ? 'IPv4' : 'IPv6', port });
      expect(await listeningTcp(A)).toContain(port);
      expect(await listeningTcp(B)).not.toContain(port);
      expect(await listeningTcp(undefined)).not.toContain(port);
      const sock = await B.net.connect({ host: serverAddr, port });
      expect(sock).toBeInstanceOf(net.Socket);
      expect([sock.remoteAddress, sock.remotePort, sock.localAddress]).toEqual([serverAddr, port, clientAddr]);
      expect(await readAll(sock)).toBe(`hello ${clientAddr}\n`);
      expect(seen).toEqual([`${clientAddr} ${serverAddr}`]);
    } finally {
      await closeServer(server);
    }
    expect(await listeningTcp(A)).not.toContain(port);
  });

  test('the default host is dual-stack ::, like Node; a client may bind its source port', async () => {
    const server = greeter();
    const { port, address } = await A.net.listen(server, { port: 0 });
    try {
      expect(address).toBe('::');
      expect(port).toBeGreaterThan(0);
      const v4 = await B.net.connect({ host: A4, port, localAddress: B4, localPort: 40001 });
      expect(await readAll(v4)).toBe(`hello ::ffff:${B4} 40001\n`);
      const v6 = await B.net.connect({ host: A6, port, family: 6 });
      expect(await readAll(v6)).toMatch(new RegExp(`^hello ${B6} \\d+\\n$`));
    } finally {
      await closeServer(server);
    }
  });

  test('an IPv6 zone names an interface inside the namespace (link-local addresses)', async () => {
    await A.addresses.add('va', 'fe80::77:1/64', { noDad: true });
    await B.addresses.add('vb', 'fe80::77:2/64', { noDad: true });
    const server = greeter();
    const { port } = await A.net.listen(server, { host: 'fe80::77:1%va', port: 0 });
    try {
      const s = await B.net.connect({ host: 'fe80::77:1%vb', port, localAddress: 'fe80::77:2%vb' });
      // Node names the peer's zone with if_indextoname() in *this* process's namespace, so the
      // name after % may be any interface of ours with that index (docs/sockets.md, limits).
      expect(await readAll(s)).toMatch(/^hello fe80::77:2(%\S+)? /);
      // "va" is A's interface, not B's: looked up inside B, it does not exist.
      expect(await errorCode(B.net.connect({ host: 'fe80::77:1%va', port }))).toBe('ENODEV');
    } finally {
      await closeServer(server);
    }
  });

  test('ipv6Only refuses IPv4-mapped clients', async () => {
    const server = greeter();
    const { port } = await A.net.listen(server, { host: '::', port: 0, ipv6Only: true });
    try {
      expect(await errorCode(B.net.connect({ host: A4, port }))).toBe('ECONNREFUSED');
      expect(await readAll(await B.net.connect({ host: A6, port }))).toMatch(/^hello fd77::2 /);
    } finally {
      await closeServer(server);
    }
  });

  test.each([
    ['udp4', A4, B4],
    ['udp6', A6, B6],
  ] as const)('UDP (%s): a bound dgram.Socket in A answers a client in B; each sees the other', async (type, serverAddr, clientAddr) => {
    const port = freshPort();
    const server = await A.dgram.createSocket({ type, address: serverAddr, port });
    const client = await B.dgram.createSocket({ type });
    try {
      expect(server).toBeInstanceOf(dgram.Socket);
      expect(server.address()).toMatchObject({ address: serverAddr, port });
      const ss = (await A.exec('ss', ['-ulnH'], { env: witnessEnv })).stdout;
      expect(ss).toContain(`:${port}`);
      expect(execFileSync('ss', ['-ulnH'], { encoding: 'utf8', env: witnessEnv })).not.toContain(`${serverAddr}:${port}`);
      server.on('message', (msg, rinfo) => server.send(`${msg} -> ${rinfo.address}`, rinfo.port, rinfo.address));
      const reply = once(client, 'message');
      client.send('ping', port, serverAddr);
      const [msg, rinfo] = (await reply) as [Buffer, dgram.RemoteInfo];
      expect(msg.toString()).toBe(`ping -> ${clientAddr}`);
      expect(rinfo.address).toBe(serverAddr);
    } finally {
      server.close();
      client.close();
    }
  });

  test('HTTP through agent(): the server sees B; keep-alive reuses the connection', async () => {
    const server = http.createServer((req, res) => res.end(`${req.socket.remoteAddress}:${req.socket.remotePort}`));
    const { port } = await A.net.listen(server, { host: A4, port: 0 });
    try {
      const get = () =>
        new Promise<string>((resolve, reject) => {
          http
            .get({ host: A4, port, path: '/', agent: B.agent() }, (res) => {
              let body = '';
              res.setEncoding('utf8').on('data', (d: string) => (body += d));
              res.on('end', () => resolve(body));
            })
            .on('error', reject);
        });
      const first = await get();
      const second = await get();
      expect(first).toMatch(new RegExp(`^${B4.replace(/\./g, '\\.')}:\\d+$`));
      expect(second).toBe(first); // the same source port: one connection, kept alive
      expect(B.agent()).toBe(B.agent());
      // A refusal reaches the request's 'error' event as our typed error.
      const refused = await new Promise<Error>((resolve) => http.get({ host: A4, port: freshPort(), agent: B.agent() }, () => resolve(new Error('answered'))).on('error', resolve));
      expect(refused).toBeInstanceOf(NetnsError);
      expect(refused).toMatchObject({ code: 'ECONNREFUSED', netns: B.name });
    } finally {
      await B.closeConnections();
      await closeServer(server);
    }
  });

  test('HTTPS through agent({ tls: true }): TLS over the namespace connection, the certificate checked against the IP', async () => {
    const server = https.createServer(tls, (req, res) => res.end(`secure ${req.socket.remoteAddress}`));
    const { port } = await A.net.listen(server, { host: A4, port: 0 });
    const agent = B.agent({ tls: true, ca: tls.cert });
    try {
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: A4, port, path: '/', agent }, (res) => {
            let b = '';
            res.setEncoding('utf8').on('data', (d: string) => (b += d));
            res.on('end', () => resolve(b));
          })
          .on('error', reject);
      });
      expect(body).toBe(`secure ${B4}`);
      // Without the CA the same connection fails verification: TLS is really checked.
      const strict = B.httpsAgent();
      const err = await new Promise<Error>((resolve) => https.get({ host: A4, port, agent: strict }, () => resolve(new Error('no error'))).on('error', resolve));
      expect((err as NodeJS.ErrnoException).code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO/);
    } finally {
      agent.destroy();
      await B.closeConnections();
      await closeServer(server);
    }
  });

  test('fetch() from B: http via ns.fetch, https via ns.dispatcher({ tls })', async () => {
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ from: req.socket.remoteAddress, method: req.method }));
    });
    const secure = https.createServer(tls, (req, res) => res.end(`tls ${req.socket.remoteAddress}`));
    const { port } = await A.net.listen(server, { host: A4, port: 0 });
    const { port: sport } = await A.net.listen(secure, { host: A4, port: 0 });
    const dispatcher = B.dispatcher({ tls: { ca: tls.cert } });
    try {
      const res = await B.fetch(`http://${A4}:${port}/x`, { method: 'POST', body: 'hi' });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ from: B4, method: 'POST' });
      const v6 = await B.fetch(`http://[${A6}]:${port}/`).catch((e: Error) => e);
      expect(v6).toBeInstanceOf(Error); // the server listens on A4 only: refused
      expect(((v6 as Error).cause as NetnsError).code).toBe('ECONNREFUSED');
      const s = await undiciFetch(`https://${A4}:${sport}/`, { dispatcher });
      expect(await s.text()).toBe(`tls ${B4}`);
    } finally {
      await dispatcher.close();
      await B.closeConnections();
      await closeServer(server);
      await closeServer(secure);
    }
  });
});

test('no child process is started by any of these calls', async () => {
  // Every child_process API (spawn, exec, execFile, fork) ends in ChildProcess.prototype.spawn.
  const spawnSpy = jest.spyOn(ChildProcess.prototype as unknown as { spawn: (o: unknown) => void }, 'spawn');
  // Children this process has now (a jest worker may still have one from an earlier test file).
  const children = () =>
    readdirSync('/proc/self/task')
      .flatMap((t) => readFileSync(`/proc/self/task/${t}/children`, 'utf8').trim().split(/\s+/))
      .filter(Boolean)
      .sort();
  const before = children();
  const server = http.createServer((req, res) => res.end('ok'));
  try {
    const { port } = await A.net.listen(server, { host: A4, port: 0 });
    const s = await B.net.connect({ host: A4, port });
    s.destroy();
    const u = await B.dgram.createSocket({ type: 'udp4' });
    u.close();
    const fd = await B.socket({ type: 'tcp', family: 6 });
    closeSync(fd);
    expect(await (await B.fetch(`http://${A4}:${port}/`)).text()).toBe('ok');
    await new Promise<void>((resolve, reject) => http.get({ host: A4, port, agent: B.agent() }, (r) => r.resume().on('end', resolve)).on('error', reject));
    expect(spawnSpy).not.toHaveBeenCalled();
    expect(children().filter((pid) => !before.includes(pid))).toEqual([]);
  } finally {
    spawnSpy.mockRestore();
    await B.closeConnections();
    await closeServer(server);
  }
});

test('200 concurrent connections succeed, and the descriptors return to the baseline once closed', async () => {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.end('x');
  });
  const { port } = await A.net.listen(server, { host: A4, port: 0, backlog: 512 });
  const baseline = fdCount();
  try {
    const socks = await Promise.all(Array.from({ length: 200 }, () => B.net.connect({ host: A4, port, timeout: 30000 })));
    expect(new Set(socks.map((s) => s.localPort)).size).toBe(200);
    expect(fdCount()).toBeGreaterThanOrEqual(baseline + 200);
    const answers = await Promise.all(socks.map((s) => readAll(s)));
    expect(answers.every((a) => a === 'x')).toBe(true);
    for (const s of socks) s.destroy();
  } finally {
    await closeServer(server);
  }
  expect(await fdsBackTo(baseline)).toBeLessThanOrEqual(baseline);
});

describe('refusals are typed and name the namespace', () => {
  test('a closed port: ECONNREFUSED', async () => {
    const e = (await B.net.connect({ host: A4, port: freshPort() }).catch((x: unknown) => x)) as NetnsError;
    expect(e).toBeInstanceOf(NetnsError);
    expect(e).toMatchObject({ code: 'ECONNREFUSED', errno: -os.constants.errno.ECONNREFUSED, syscall: 'connect', netns: B.name });
    expect(e.message).toMatch(new RegExp(`^ECONNREFUSED: connection refused, connect ${A4.replace(/\./g, '\\.')}:\\d+ \\(netns ${B.name}\\)$`));
    expect(e.stack).toMatch(/sockets\.test\.(js|ts)/); // points at the caller, not at the addon
  });

  test('no route: ENETUNREACH; no neighbour answering: EHOSTUNREACH', async () => {
    expect(await errorCode(B.net.connect({ host: '198.51.100.7', port: 80 }))).toBe('ENETUNREACH');
    expect(await errorCode(B.net.connect({ host: '2001:db8::7', port: 80 }))).toBe('ENETUNREACH');
    const baseline = fdCount();
    // The kernel gives up on ARP after about 3 s.
    expect(await errorCode(B.net.connect({ host: NOBODY4, port: 80 }))).toBe('EHOSTUNREACH');
    expect(fdCount()).toBeLessThanOrEqual(baseline);
  });

  test('a timeout: ETIMEDOUT, and the descriptor is closed', async () => {
    const baseline = fdCount();
    const e = (await B.net.connect({ host: NOBODY4, port: 80, timeout: 200 }).catch((x: unknown) => x)) as NetnsError;
    expect(e).toMatchObject({ code: 'ETIMEDOUT', syscall: 'connect', netns: B.name });
    expect(fdCount()).toBeLessThanOrEqual(baseline);
  });

  test('a deleted namespace: ENOENT, and no socket is made anywhere else', async () => {
    const gone = await sb.ns('sockGone');
    await gone.delete();
    const spy = jest.spyOn(native, 'socketOpen');
    const port = freshPort();
    try {
      const baseline = fdCount();
      const e = (await gone.net.listen(net.createServer(), { port }).catch((x: unknown) => x)) as NetnsError;
      expect(e).toBeInstanceOf(NetnsError);
      expect(e).toMatchObject({ code: 'ENOENT', netns: gone.name });
      expect(await errorCode(gone.net.connect({ host: A4, port }))).toBe('ENOENT');
      expect(await errorCode(gone.dgram.createSocket({ type: 'udp4', port }))).toBe('ENOENT');
      expect(await errorCode(gone.socket({ type: 'tcp', family: 4 }))).toBe('ENOENT');
      expect(spy).toHaveBeenCalledTimes(4); // refused by the addon, not by a check in between
      expect(fdCount()).toBeLessThanOrEqual(baseline);
      expect(await listeningTcp(undefined)).not.toContain(port);
    } finally {
      spy.mockRestore();
    }
  });

  test('an aborted connect rejects with ERR_NETNS_ABORTED and leaves no descriptor', async () => {
    const baseline = fdCount();
    const ac = new AbortController();
    const pending = B.net.connect({ host: NOBODY4, port: 80, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('changed my mind')), 100);
    const e = (await pending.catch((x: unknown) => x)) as NetnsError;
    expect(e).toBeInstanceOf(NetnsError);
    expect(e.code).toBe('ERR_NETNS_ABORTED');
    expect((e as Error & { cause?: Error }).cause?.message).toBe('changed my mind');
    expect(fdCount()).toBeLessThanOrEqual(baseline);
    // Already aborted: refused before anything is created.
    const spy = jest.spyOn(native, 'socketOpen');
    try {
      expect(await errorCode(B.net.connect({ host: A4, port: 80, signal: AbortSignal.abort() }))).toBe('ERR_NETNS_ABORTED');
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});

test('host names need a lookup; the lookup given is used (DNS is the caller\'s choice)', async () => {
  const server = greeter();
  const { port } = await A.net.listen(server, { host: A4, port: 0 });
  try {
    expect(await errorCode(B.net.connect({ host: 'server-a', port }))).toBe('ERR_NETNS_INVALID_ADDRESS');
    const asked: string[] = [];
    const lookup: net.LookupFunction = (name, _opts, cb) => {
      asked.push(name);
      if (name === 'server-a') cb(null, A4, 4);
      else cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' }), '', 0);
    };
    const s = await B.net.connect({ host: 'server-a', port, lookup });
    expect(await readAll(s)).toMatch(new RegExp(`^hello ${B4.replace(/\./g, '\\.')} `));
    await expect(B.net.connect({ host: 'nowhere', port, lookup })).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(asked).toEqual(['server-a', 'nowhere']);
  } finally {
    await closeServer(server);
  }
});

/** Inodes of the raw sockets a namespace's /proc/net/raw lists (read by a process inside it, or by us for our own). */
async function rawInodes(ns: Netns | undefined): Promise<string[]> {
  const text = ns ? (await ns.exec('cat', ['/proc/net/raw'])).stdout : readFileSync('/proc/self/net/raw', 'utf8');
  return text
    .split('\n')
    .slice(1)
    .filter(Boolean)
    .map((l) => l.trim().split(/\s+/)[9]);
}

test('ns.socket() returns a descriptor created inside the namespace (its inode is in A\'s /proc/net/raw, not in ours)', async () => {
  const fd = await A.socket({ type: 'raw', family: 4 });
  try {
    const ino = /socket:\[(\d+)\]/.exec(readlinkSync(`/proc/self/fd/${fd}`))![1];
    expect(fstatSync(fd).isSocket()).toBe(true);
    expect(await rawInodes(A)).toContain(ino);
    expect(await rawInodes(undefined)).not.toContain(ino);
  } finally {
    closeSync(fd);
  }
  const tcp6 = await A.socket({ type: 'tcp', family: 6 });
  closeSync(tcp6);
});

describe('bad options are refused before anything is created', () => {
  const cases: Array<[string, () => Promise<unknown>, string]> = [
    ['connect: no options', () => B.net.connect(undefined as never), 'ERR_NETNS_INVALID_ARG'],
    ['connect: no host', () => B.net.connect({ port: 80 } as never), 'ERR_NETNS_INVALID_ARG'],
    ['connect: port 0', () => B.net.connect({ host: A4, port: 0 }), 'ERR_NETNS_INVALID_PORT'],
    ['connect: port 65536', () => B.net.connect({ host: A4, port: 65536 }), 'ERR_NETNS_INVALID_PORT'],
    ['connect: port "80"', () => B.net.connect({ host: A4, port: '80' as never }), 'ERR_NETNS_INVALID_PORT'],
    ['connect: family 5', () => B.net.connect({ host: A4, port: 80, family: 5 as never }), 'ERR_NETNS_INVALID_ARG'],
    ['connect: family against the address', () => B.net.connect({ host: A4, port: 80, family: 6 }), 'ERR_NETNS_FAMILY_MISMATCH'],
    ['connect: localAddress of the other family', () => B.net.connect({ host: A4, port: 80, localAddress: B6 }), 'ERR_NETNS_FAMILY_MISMATCH'],
    ['connect: localAddress not an address', () => B.net.connect({ host: A4, port: 80, localAddress: 'eth0' }), 'ERR_NETNS_INVALID_ADDRESS'],
    ['connect: a zone on IPv4', () => B.net.connect({ host: `${A4}%vb`, port: 80 }), 'ERR_NETNS_INVALID_ADDRESS'],
    ['connect: a bad zone', () => B.net.connect({ host: 'fe80::1%a/b', port: 80 }), 'ERR_NETNS_INVALID_IFNAME'],
    ['connect: timeout 0', () => B.net.connect({ host: A4, port: 80, timeout: 0 }), 'ERR_NETNS_INVALID_ARG'],
    ['connect: signal not a signal', () => B.net.connect({ host: A4, port: 80, signal: {} as never }), 'ERR_NETNS_INVALID_ARG'],
    ['connect: lookup not a function', () => B.net.connect({ host: 'x', port: 80, lookup: 'dns' as never }), 'ERR_NETNS_INVALID_ARG'],
    ['connect: unknown option', () => B.net.connect({ host: A4, port: 80, keepalive: true } as never), 'ERR_NETNS_INVALID_ARG'],
    ['listen: not a server', () => A.net.listen({} as never, { port: 80 }), 'ERR_NETNS_INVALID_ARG'],
    ['listen: host name', () => A.net.listen(net.createServer(), { host: 'localhost', port: 80 }), 'ERR_NETNS_INVALID_ADDRESS'],
    ['listen: port -1', () => A.net.listen(net.createServer(), { port: -1 }), 'ERR_NETNS_INVALID_PORT'],
    ['listen: backlog 0', () => A.net.listen(net.createServer(), { port: 80, backlog: 0 }), 'ERR_NETNS_INVALID_ARG'],
    ['listen: ipv6Only on IPv4', () => A.net.listen(net.createServer(), { host: A4, port: 80, ipv6Only: true }), 'ERR_NETNS_INVALID_ARG'],
    ['listen: reuseAddr "yes"', () => A.net.listen(net.createServer(), { port: 80, reuseAddr: 'yes' as never }), 'ERR_NETNS_INVALID_ARG'],
    ['dgram: type udp5', () => A.dgram.createSocket({ type: 'udp5' as never }), 'ERR_NETNS_INVALID_ARG'],
    ['dgram: IPv6 address for udp4', () => A.dgram.createSocket({ type: 'udp4', address: A6 }), 'ERR_NETNS_FAMILY_MISMATCH'],
    ['dgram: ipv6Only for udp4', () => A.dgram.createSocket({ type: 'udp4', ipv6Only: true }), 'ERR_NETNS_INVALID_ARG'],
    ['socket: type sctp', () => A.socket({ type: 'sctp' as never, family: 4 }), 'ERR_NETNS_INVALID_ARG'],
    ['socket: family 10', () => A.socket({ type: 'tcp', family: 10 as never }), 'ERR_NETNS_INVALID_ARG'],
    ['socket: protocol 256', () => A.socket({ type: 'raw', family: 4, protocol: 256 }), 'ERR_NETNS_INVALID_ARG'],
    ['agent: tls "yes"', async () => A.agent({ tls: 'yes' as never }), 'ERR_NETNS_INVALID_ARG'],
    ['agent: connectTimeout -5', async () => A.agent({ connectTimeout: -5 }), 'ERR_NETNS_INVALID_ARG'],
    ['dispatcher: own connect', async () => A.dispatcher({ connect: () => undefined } as never), 'ERR_NETNS_INVALID_ARG'],
    ['fetch: own dispatcher', () => A.fetch('http://192.0.2.1/', { dispatcher: A.dispatcher() } as never), 'ERR_NETNS_INVALID_ARG'],
  ];
  let spy: jest.SpiedFunction<typeof native.socketOpen>;
  beforeAll(() => {
    spy = jest.spyOn(native, 'socketOpen');
  });
  afterAll(() => spy.mockRestore());

  test.each(cases)('%s', async (_name, fn, code) => {
    const before = fdCount();
    const listening = await listeningTcp(A);
    expect(await errorCode(fn())).toBe(code);
    expect(spy).not.toHaveBeenCalled();
    expect(fdCount()).toBeLessThanOrEqual(before);
    expect(await listeningTcp(A)).toEqual(listening);
  });

  test('a listening server is refused', async () => {
    const server = greeter();
    await A.net.listen(server, { host: A4, port: 0 });
    spy.mockClear();
    try {
      expect(await errorCode(A.net.listen(server, { port: 80 }))).toBe('ERR_NETNS_INVALID_ARG');
      expect(spy).not.toHaveBeenCalled();
    } finally {
      await closeServer(server);
    }
  });

  test('a port in use: EADDRINUSE from bind(2), and the server stays unbound', async () => {
    const first = greeter();
    const { port } = await A.net.listen(first, { host: A4, port: 0 });
    const second = greeter();
    try {
      const e = (await A.net.listen(second, { host: A4, port }).catch((x: unknown) => x)) as NetnsError;
      expect(e).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', netns: A.name });
      expect(second.listening).toBe(false);
      // The wildcard (dual-stack ::) overlaps A4:port too.
      const wild = (await A.net.listen(second, { port }).catch((x: unknown) => x)) as NetnsError;
      expect(wild.message).toBe(`EADDRINUSE: address already in use, bind *:${port} (netns ${A.name})`);
      expect(second.listening).toBe(false);
    } finally {
      await closeServer(first);
    }
  });
});
