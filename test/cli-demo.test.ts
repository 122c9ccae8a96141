// `netns-kit demo`: the whole tutorial runs, verifies itself and leaves nothing; with --keep its
// claims are checked independently (ip -j, nft -j, ping, TCP through the forwarded port) before
// `demo --clean` removes it; Ctrl-C half-way removes everything too.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cli } from './support/cli';
import { PYTHON } from './support/peers';
import { NS_PREFIX, leftoverNamespaces } from './support/sandbox';

const ROLES = ['red', 'blue', 'orange', 'gray', 'host', 'internet'];
const dir = mkdtempSync(path.join(os.tmpdir(), 'nk-demo-'));
const env = { ...process.env, NETNS_KIT_RUN_DIR: path.join(dir, 'registry') };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const live = (prefix: string) => leftoverNamespaces().filter((n) => n.startsWith(`${prefix}-`));
const noMounts = (prefix: string) => expect(execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' })).not.toContain(`/run/netns/${prefix}-`);
function ipj<T = Array<Record<string, unknown>>>(ns: string, ...args: string[]): T {
  return JSON.parse(execFileSync('ip', ['-j', '-n', ns, ...args], { encoding: 'utf8' }) || '[]') as T;
}

test('demo runs every step of the tutorial, says what it verified, and removes everything', async () => {
  const prefix = `${NS_PREFIX}dm1`;
  const r = await cli(['demo', '--prefix', prefix], { env });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const out = r.stdout;
  expect(out).toMatch(/\n 1\/12 {2}Create the namespaces red, blue, orange and gray\n/);
  expect(out).toMatch(/✓ red -> 192\.168\.15\.2: 64 bytes from 192\.168\.15\.2: icmp_seq=1 ttl=64 time=[\d.]+ ms/);
  expect(out).toMatch(/✓ red: {2}192\.168\.15\.2 at ([0-9a-f]{2}:){5}[0-9a-f]{2} \(veth-blue's MAC\)/);
  expect(out).toContain('✓ v-net-0 has 4 ports: veth-blue-br, veth-gray-br, veth-orange-br, veth-red-br');
  expect(out).toContain('✓ before the route: red -> 10.0.2.15: ping: connect: Network is unreachable');
  expect(out).toContain('✓ red -> 203.0.113.10:80 (a TCP server in the internet): ETIMEDOUT');
  expect(out).toMatch(/✓ the server in the internet saw the connection come from 10\.0\.2\.15:\d+: the host's address/);
  expect(out).toMatch(/✓ internet -> 10\.0\.2\.15:8080 answered: "hello from red, you are 10\.0\.2\.2:\d+"/);
  expect(out.match(/ {7}(done in [\d.]+ m?s, verified|verified) in [\d.]+ m?s\n/g)).toHaveLength(12);
  expect(out).not.toContain('✗');
  expect(out).toMatch(/✓ removed 6 namespaces .*nothing of the demo is left\n\nAll 12 steps verified in [\d.]+ m?s\.\n$/);
  expect(live(prefix)).toEqual([]);
  noMounts(prefix);
});

test('demo --keep leaves a network whose claims hold when checked independently; gc keeps it; demo --clean removes it', async () => {
  const prefix = `${NS_PREFIX}dk1`;
  const n = Object.fromEntries(ROLES.map((r) => [r, `${prefix}-${r}`]));
  try {
    const r = await cli(['demo', '--keep', '--prefix', prefix], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`netns-kit exec ${n.red} -- ping -c1 192.168.15.2`);
    expect(r.stdout).toContain(`ip -n ${n.red} addr`);
    expect(r.stdout).toContain(`netns-kit demo --clean ${prefix}`);
    expect(live(prefix).sort()).toEqual(Object.values(n).sort());

    // the bridge and its four ports; the host's addresses; the namespaces' addresses and routes
    const ports = ipj<Array<{ ifname: string; master?: string }>>(n.host, 'link', 'show', 'master', 'v-net-0').map((l) => l.ifname).sort();
    expect(ports).toEqual(['veth-blue-br', 'veth-gray-br', 'veth-orange-br', 'veth-red-br']);
    const hostAddrs = ipj<Array<{ ifname: string; addr_info: Array<{ local: string; prefixlen: number; family: string }> }>>(n.host, 'addr', 'show');
    const v4 = (ifname: string, list = hostAddrs) => list.find((l) => l.ifname === ifname)?.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
    expect(v4('v-net-0')).toEqual(['192.168.15.5/24']);
    expect(v4('eth0')).toEqual(['10.0.2.15/24']);
    for (const [role, addr] of [['red', '192.168.15.1'], ['blue', '192.168.15.2'], ['orange', '192.168.15.3'], ['gray', '192.168.15.4']]) {
      expect(v4(`veth-${role}`, ipj(n[role], 'addr', 'show'))).toEqual([`${addr}/24`]);
      const routes = ipj<Array<{ dst: string; gateway?: string }>>(n[role], 'route', 'show');
      expect(routes).toEqual(expect.arrayContaining([expect.objectContaining({ dst: 'default', gateway: '192.168.15.5' }), expect.objectContaining({ dst: '10.0.2.0/24', gateway: '192.168.15.5' })]));
    }
    // NAT: masquerade and the 8080 -> 192.168.15.1:80 DNAT, as nft sees them
    const nft = execFileSync('ip', ['netns', 'exec', n.host, 'nft', '-j', 'list', 'table', 'inet', 'netns_kit'], { encoding: 'utf8' });
    expect(nft).toContain('"masquerade"');
    expect(nft).toMatch(/"dnat": \{[^}]*"addr": "192\.168\.15\.1", "port": 80/);

    // real traffic: a ping out to the internet, and TCP from the internet through the host's port 8080
    execFileSync('ip', ['netns', 'exec', n.orange, 'ping', '-c1', '-W2', '-n', '203.0.113.10']);
    const server = spawn('ip', ['netns', 'exec', n.red, PYTHON, '-c', 'import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(("0.0.0.0", 80))\ns.listen()\nprint("ready", flush=True)\nc, a = s.accept()\nc.sendall(("red sees " + a[0] + "\\n").encode())\nc.close()'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => server.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
      const answer = execFileSync('ip', ['netns', 'exec', n.internet, 'nc', '-w', '3', '10.0.2.15', '8080'], { encoding: 'utf8', input: '' });
      expect(answer).toBe('red sees 10.0.2.2\n');
    } finally {
      server.kill();
      await once(server, 'close').catch(() => undefined);
    }

    // a kept demo is not "lost": gc leaves it
    const gc = JSON.parse((await cli(['gc', '--dry-run', '--json'], { env })).stdout) as { namespaces: string[] };
    expect(gc.namespaces.filter((x) => x.startsWith(prefix))).toEqual([]);
    // the same prefix again is refused (nothing is touched)
    const again = await cli(['demo', '--prefix', prefix], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`namespaces with prefix ${prefix} exist already`);
    expect(live(prefix)).toHaveLength(6);

    const clean = await cli(['demo', '--clean', prefix], { env });
    expect(clean.code).toBe(0);
    expect(clean.stdout).toBe(`removed 6 namespaces: ${Object.values(n).sort().join(' ')}\n`);
  } finally {
    await cli(['demo', '--clean', prefix], { env });
  }
  expect(live(prefix)).toEqual([]);
  noMounts(prefix);
});

test('Ctrl-C during the demo removes everything it made and exits 130', async () => {
  const prefix = `${NS_PREFIX}dc1`;
  let sent = false;
  const r = await cli(['demo', '--prefix', prefix], {
    env,
    onStdout: (text, child) => {
      if (!sent && text.includes(' 3/12')) {
        sent = true;
        child.kill('SIGINT');
      }
    },
  });
  expect(sent).toBe(true);
  expect(r.code).toBe(130);
  expect(r.stdout).toMatch(/✓ removed 6 namespaces/);
  expect(r.stdout).not.toContain('All 12 steps verified');
  expect(r.stderr).toBe('netns-kit demo: ERR_NETNS_ABORTED: interrupted by SIGINT\n');
  expect(live(prefix)).toEqual([]);
  noMounts(prefix);
});

test('demo | head: the reader going away does not stop the clean-up', async () => {
  const prefix = `${NS_PREFIX}dp1`;
  const child = spawn(process.execPath, [path.resolve(__dirname, '..', 'bin', 'netns-kit.js'), 'demo', '--prefix', prefix], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.once('data', () => child.stdout.destroy()); // like `head -1` exiting
  const [code] = (await once(child, 'close')) as [number | null];
  expect(stderr).toBe('');
  expect(code).toBe(0);
  expect(live(prefix)).toEqual([]);
  noMounts(prefix);
});
