/**
 * The firewall end to end, in namespaces only:
 *
 *   A 192.168.15.1 fd15::1 ─┐
 *   B 192.168.15.2 fd15::2 ─┼─ br0 192.168.15.254 fd15::fe (host)
 *   C 192.168.15.3 fd15::3 ─┘
 *
 * A, B and C share one subnet, so their traffic is bridged, never routed: the host's forward chain
 * sees it only through br_netfilter. Witnesses: real TCP/UDP traffic and ping, `nft -j` through
 * nsenter, sysctls, `ip -j -d link`.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Netns, FirewallRule } from '../lib/index';
import { normalize, ruleId } from '../lib/firewall-rules';
import { ipJson, Sandbox } from './support/sandbox';
import { PYTHON, peerEnv } from './support/peers';
import { ask, killPeers, nftRuleset, nftTable, serve, withoutTables } from './support/nat-lab';

const execFileP = promisify(execFile);
const sb = new Sandbox();
let host: Netns;
let A: Netns;
let B: Netns;
let C: Netns;

const IP = { A: { 4: '192.168.15.1', 6: 'fd15::1' }, B: { 4: '192.168.15.2', 6: 'fd15::2' }, C: { 4: '192.168.15.3', 6: 'fd15::3' } } as const;
const TABLE = 'netns_kit_fw';

const DECOY = `
table inet decoy {
  set blocked { type ipv4_addr; elements = { 198.51.100.7 } }
  chain forward { type filter hook forward priority 10; policy accept; ip saddr @blocked drop; }
}
table bridge decoy_br {
  chain forward { type filter hook forward priority 0; policy accept; ether type arp accept comment "not ours"; }
}
`;
let decoyBefore: string;
const decoyState = async () => withoutTables(await nftRuleset(host), [TABLE, 'netns_kit']);

async function ping(from: Netns, to: string): Promise<boolean> {
  return (await from.exec('ping', [to.includes(':') ? '-6' : '-4', '-c1', '-W1', to], { check: false })).exitCode === 0;
}

const UDP_CONNECTED = String.raw`
import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.connect((sys.argv[1], int(sys.argv[2])))
try:
    s.send(b'hi')
    print(s.recv(2048).decode().strip())
except Exception as e:
    print(type(e).__name__)
`;

async function udpConnected(from: Netns, to: string, port: number): Promise<string> {
  return (await from.exec(PYTHON, ['-c', UDP_CONNECTED, to, String(port)], { env: peerEnv(), timeout: 60000 })).stdout.trim();
}

/** TCP answers expected to work get a generous timeout; ones expected to be dropped a short one. */
const works = (from: Netns, f: 4 | 6, to: string, port: number) => ask(from, f, 'tcp', to, port, 1, 10);
const tryTcp = (from: Netns, f: 4 | 6, to: string, port: number) => ask(from, f, 'tcp', to, port, 1, 1);

beforeAll(async () => {
  [host, A, B, C] = await Promise.all([sb.ns('fwh', { loopbackUp: true }), sb.ns('fwa', { loopbackUp: true }), sb.ns('fwb', { loopbackUp: true }), sb.ns('fwc', { loopbackUp: true })]);
  await host.links.add({ kind: 'bridge', name: 'br0', up: true });
  await host.addresses.add('br0', '192.168.15.254/24');
  await host.addresses.add('br0', 'fd15::fe/64', { noDad: true });
  for (const [name, ns] of [['A', A], ['B', B], ['C', C]] as const) {
    await host.links.add({ kind: 'veth', name: `p${name}`, master: 'br0', up: true, peer: { name: 'eth0', netns: ns } });
    await ns.links.set('eth0', { up: true });
    await ns.addresses.add('eth0', `${IP[name][4]}/24`);
    await ns.addresses.add('eth0', `${IP[name][6]}/64`, { noDad: true });
  }
  await host.exec('nft', ['-f', '-'], { input: DECOY });
  decoyBefore = await decoyState();
  expect(decoyBefore).toContain('198.51.100.7');
  await Promise.all([serve(C, 'C', 4, 'tcp', 80), serve(C, 'C81', 4, 'tcp', 81), serve(C, 'C6', 6, 'tcp', 80), serve(C, 'Cu', 4, 'udp', 53), serve(B, 'B', 4, 'tcp', 80)]);
});

afterEach(async () => {
  await host.firewall.flush();
  await C.firewall.flush();
  expect(await nftTable(host, TABLE)).toBe('');
  // Whatever a test did, the foreign tables are byte-identical.
  expect(await decoyState()).toBe(decoyBefore);
});

afterAll(async () => {
  killPeers();
  await sb.cleanup();
});

test('host forward drop + allow A->C:80: that flow works with replies; A->C:81, B->C:80 and ping A->C are dropped', async () => {
  // Bridged traffic flows freely before: the test can fail.
  expect(await works(B, 4, IP.C[4], 80)).toEqual([`C ${IP.B[4]}`]);
  expect(await ping(A, IP.C[4])).toBe(true);

  // Whatever the machine's default, the firewall makes bridged traffic pass the forward hook.
  await host.sysctl.set('net.bridge.bridge-nf-call-iptables', '0');
  const p = await host.firewall.policy({ forward: 'drop' });
  expect(p).toEqual({ input: 'accept', forward: 'drop', output: 'accept', warnings: [] });
  expect(await host.sysctl.get('net.bridge.bridge-nf-call-iptables')).toBe('1');
  expect(await host.sysctl.get('net.bridge.bridge-nf-call-ip6tables')).toBe('1');
  const r = await host.firewall.allow({ chain: 'forward', from: `${IP.A[4]}/32`, to: `${IP.C[4]}/32`, protocol: 'tcp', port: 80 });
  expect(r).toEqual({ action: 'allow', chain: 'forward', from: ['192.168.15.1/32'], to: ['192.168.15.3/32'], protocol: 'tcp', port: 80, id: r.id });

  expect(await works(A, 4, IP.C[4], 80)).toEqual([`C ${IP.A[4]}`]);
  expect(await tryTcp(A, 4, IP.C[4], 81)).toEqual(['ERR TimeoutError']);
  expect(await tryTcp(B, 4, IP.C[4], 80)).toEqual(['ERR TimeoutError']);
  expect(await ping(A, IP.C[4])).toBe(false);

  // nft itself sees the policy and the rule.
  const doc = JSON.parse(await nftTable(host, TABLE)).nftables as Array<Record<string, { name?: string; policy?: string; comment?: string; chain?: string }>>;
  expect(doc.find((x) => x.chain?.name === 'forward')!.chain!.policy).toBe('drop');
  expect(doc.filter((x) => x.rule?.comment?.startsWith(`nkfw:${r.id}:`)).map((x) => x.rule!.chain)).toEqual(['forward']);
  expect(await host.firewall.list()).toEqual([r]);

  // remove: A->C:80 is dropped too.
  await host.firewall.remove(r.id);
  expect(await host.firewall.list()).toEqual([]);
  expect(await tryTcp(A, 4, IP.C[4], 80)).toEqual(['ERR TimeoutError']);
  await expect(host.firewall.remove(r.id)).rejects.toMatchObject({ code: 'ENOENT', errno: -2 });
  await host.firewall.remove(r.id, { missingOk: true });

  // flush: everything flows again.
  await host.firewall.flush();
  expect(await works(B, 4, IP.C[4], 80)).toEqual([`C ${IP.B[4]}`]);
  expect(await ping(A, IP.C[4])).toBe(true);

  // apply: exactly this, atomically.
  const { ids } = await host.firewall.apply({ policy: { forward: 'drop' }, rules: [{ action: 'allow', chain: 'forward', from: IP.B[4], to: IP.C[4], protocol: 'tcp', port: 80 }] });
  expect(await works(B, 4, IP.C[4], 80)).toEqual([`C ${IP.B[4]}`]);
  expect(await tryTcp(A, 4, IP.C[4], 80)).toEqual(['ERR TimeoutError']);
  expect((await host.firewall.list()).map((x) => x.id)).toEqual(ids);
});

test('a failed apply (one bad rule among good ones) changes nothing', async () => {
  await host.firewall.policy({ forward: 'drop' });
  await host.firewall.allow({ chain: 'forward', from: IP.A[4], to: IP.C[4], protocol: 'tcp', port: 80 });
  const before = await nftRuleset(host);
  const bad = [
    { action: 'allow', chain: 'forward', from: IP.B[4], to: IP.C[4], protocol: 'tcp', port: 80 },
    { action: 'allow', chain: 'forward', from: IP.B[4], to: IP.C[4], protocol: 'tcp', port: 70000 },
  ] as const;
  await expect(host.firewall.apply({ policy: { forward: 'accept' }, rules: [...bad] })).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG', message: expect.stringContaining('rules[1]') });
  expect(await nftRuleset(host)).toBe(before);
  expect(await works(A, 4, IP.C[4], 80)).toEqual([`C ${IP.A[4]}`]);
  expect(await tryTcp(B, 4, IP.C[4], 80)).toEqual(['ERR TimeoutError']);
});

test("a namespace's own input drop policy with a narrow allow; its loopback still works", async () => {
  await C.firewall.policy({ input: 'drop' });
  await C.firewall.allow({ chain: 'input', from: `${IP.A[4]}/32`, protocol: 'tcp', port: [80, 80] });
  expect(await works(A, 4, IP.C[4], 80)).toEqual([`C ${IP.A[4]}`]);
  expect(await tryTcp(A, 4, IP.C[4], 81)).toEqual(['ERR TimeoutError']);
  expect(await tryTcp(B, 4, IP.C[4], 80)).toEqual(['ERR TimeoutError']);
  expect(await ping(B, IP.C[4])).toBe(false);
  // Loopback always, on every port; C's own outgoing connections get their replies (established).
  expect(await works(C, 4, '127.0.0.1', 81)).toEqual(['C81 127.0.0.1']);
  expect(await ping(C, '127.0.0.1')).toBe(true);
  expect(await works(C, 4, IP.B[4], 80)).toEqual([`B ${IP.C[4]}`]);
  // ICMP errors about C's own flows are related to them: a port unreachable from B passes C's
  // input drop policy, so C's connected UDP socket learns of it at once (not by a timeout).
  expect(await udpConnected(C, IP.B[4], 9)).toBe('ConnectionRefusedError');
  expect(await udpConnected(C, IP.B[6], 9)).toBe('ConnectionRefusedError');
  // A range, inclusive.
  await C.firewall.allow({ chain: 'input', from: IP.B[4], protocol: 'tcp', port: { from: 81, to: 90 } });
  expect(await works(B, 4, IP.C[4], 81)).toEqual([`C81 ${IP.B[4]}`]);
  expect(await tryTcp(B, 4, IP.C[4], 80)).toEqual(['ERR TimeoutError']);
});

test('IPv6: forward drop + allow A->C:80 over v6, with real v6 traffic (neighbour discovery keeps working)', async () => {
  expect(await works(B, 6, IP.C[6], 80)).toEqual([`C6 ${IP.B[6]}`]);
  await host.firewall.policy({ forward: 'drop' });
  await host.firewall.allow({ chain: 'forward', from: IP.A[6], to: `${IP.C[6]}/128`, protocol: 'tcp', port: 80 });
  // Fresh neighbour entries: discovery itself must pass the drop policy.
  await A.exec('ip', ['-6', 'neigh', 'flush', 'all']);
  expect(await works(A, 6, IP.C[6], 80)).toEqual([`C6 ${IP.A[6]}`]);
  expect(await tryTcp(B, 6, IP.C[6], 80)).toEqual(['ERR TimeoutError']);
  expect(await ping(A, IP.C[6])).toBe(false);
  // ICMPv6 allowed explicitly: echo passes.
  await host.firewall.allow({ chain: 'forward', from: IP.A[6], protocol: 'icmpv6' });
  expect(await ping(A, IP.C[6])).toBe(true);
  // The same on C's own input chain.
  await host.firewall.flush();
  await C.firewall.policy({ input: 'drop' });
  await C.firewall.allow({ chain: 'input', from: 'fd15::1/128', protocol: 'tcp', port: 80 });
  expect(await works(A, 6, IP.C[6], 80)).toEqual([`C6 ${IP.A[6]}`]);
  expect(await tryTcp(B, 6, IP.C[6], 80)).toEqual(['ERR TimeoutError']);
});

test('reject answers: a TCP reset, an ICMP port unreachable for UDP', async () => {
  await host.firewall.reject({ chain: 'forward', from: IP.B[4], to: IP.C[4] });
  expect(await tryTcp(B, 4, IP.C[4], 80)).toEqual(['ERR ConnectionRefusedError']);
  // A connected UDP socket is told of the ICMP port unreachable (an unconnected one never is).
  expect(await udpConnected(B, IP.C[4], 53)).toBe('ConnectionRefusedError');
  expect(await udpConnected(A, IP.C[4], 53)).toBe(`Cu ${IP.A[4]}`);
  expect((await B.exec('ping', ['-c1', '-W1', IP.C[4]], { check: false })).stdout).toContain('Port Unreachable');
  expect(await works(A, 4, IP.C[4], 80)).toEqual([`C ${IP.A[4]}`]);
  // IPv6: the reset, and ICMPv6 port unreachable (icmpx picks the packet's family).
  await host.firewall.reject({ chain: 'forward', from: IP.B[6], to: IP.C[6] });
  expect(await tryTcp(B, 6, IP.C[6], 80)).toEqual(['ERR ConnectionRefusedError']);
  expect(await udpConnected(B, IP.C[6], 53)).toBe('ConnectionRefusedError');
  expect(await works(A, 6, IP.C[6], 80)).toEqual([`C6 ${IP.A[6]}`]);
  const t = await nftTable(host, TABLE);
  expect(t).toContain('"type": "tcp reset"');
  expect(t).toContain('"type": "icmpx"');
});

test('allowing an identical rule is idempotent; ids are stable across objects and processes; tags', async () => {
  const spec = { chain: 'forward' as const, from: [IP.A[4], '192.168.15.0/24', IP.A[6]], to: ['fd15::/64', '192.168.15.0/24'], protocol: 'udp' as const, port: 53, tag: 'ctr-1' };
  const a = await host.firewall.allow(spec);
  const b = await host.firewallTable().allow({ ...spec, from: ['192.168.15.9/24', IP.A[6], IP.A[4]] });
  expect(b.id).toBe(a.id);
  // Canonical: the fewest prefixes covering the same addresses (192.168.15.1 is inside the /24).
  expect(b.from).toEqual(['192.168.15.0/24', 'fd15::1/128']);
  const c = await host.firewall.deny({ chain: 'input', iif: 'br0', tag: 'ctr-2' });
  const d = await host.firewall.reject({ chain: 'input', protocol: 'tcp', port: 23 });
  const listed = await host.firewall.list();
  expect(listed).toEqual([c, d, a]); // evaluation order: input before forward
  expect((await nftTable(host, TABLE)).split(`nkfw:${a.id}:4:main:ctr-1`).length).toBe(2);
  for (const { id, ...rest } of listed) expect(ruleId(normalize(rest))).toBe(id);
  // Another process reads the same ids back from the kernel.
  const script = `require(${JSON.stringify(path.resolve(__dirname, '../lib/index.js'))}).netns.open(${JSON.stringify(host.name)}).then((ns) => ns.firewall.list()).then((r) => console.log(JSON.stringify(r)))`;
  const other = JSON.parse((await execFileP(process.execPath, ['-e', script], { encoding: 'utf8' })).stdout) as FirewallRule[];
  expect(other).toEqual(listed);
  expect(await host.firewall.list({ tag: 'ctr-1' })).toEqual([a]);
  expect(await host.firewall.list({ chain: 'input' })).toEqual([c, d]);
  expect(await host.firewall.removeTag('ctr-1')).toBe(1);
  expect(await host.firewall.list()).toEqual([c, d]);
});

test('the NAT table and foreign tables are untouched by every firewall call', async () => {
  await host.nat.masquerade({ source: '192.168.15.0/24', outInterface: 'br0' });
  const nat = await nftTable(host, 'netns_kit');
  const foreign = await decoyState();
  await host.firewall.policy({ input: 'drop', forward: 'drop', output: 'drop' });
  await host.firewall.allow({ chain: 'output', to: '10.0.0.0/8' });
  await host.firewall.apply({ rules: [{ action: 'deny', chain: 'input', from: '10.0.0.0/8' }] });
  await host.firewall.flush();
  expect(await nftTable(host, 'netns_kit')).toBe(nat);
  expect(await decoyState()).toBe(foreign);
  await host.nat.flush();
});

describe('refused input changes nothing', () => {
  const base = { chain: 'forward', from: IP.A[4], to: IP.C[4], protocol: 'tcp', port: 80 };
  const attacks = ['x" } ; flush ruleset ; { "', 'eth0\n', 'a;b', '$x', '{', 'lo*', 'a\\b', "1.2.3.4' drop", '10.0.0.0/8 accept', '@blocked', 'a b'];
  const FIELDS = ['chain', 'from', 'to', 'protocol', 'iif', 'oif', 'tag', 'port', 'from[]'];

  // Per attack string, every string field (and `port`, which must be a number): refused by allow
  // and by apply with ERR_NETNS_INVALID_ARG, and the whole ruleset is byte-identical afterwards.
  test.each(attacks)('%j in every field', async (attack) => {
    await host.firewall.policy({ forward: 'drop' });
    const before = await nftRuleset(host);
    for (const field of FIELDS) {
      const o: Record<string, unknown> = field === 'from[]' ? { ...base, from: [IP.A[4], attack] } : { ...base, [field]: attack };
      const what = `${field} = ${JSON.stringify(attack)}`;
      await expect(host.firewall.allow(o as never).then(() => what)).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
      await expect(host.firewall.apply({ rules: [{ ...o, action: 'deny' } as never] }).then(() => what)).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
    }
    expect(await nftRuleset(host)).toBe(before);
  });

  test('policy values, actions, table names, ids and options', async () => {
    const before = await nftRuleset(host);
    await expect(host.firewall.policy({ forward: 'drop; flush ruleset' as never })).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
    await expect(host.firewall.policy({ prerouting: 'drop' } as never)).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
    await expect(host.firewall.apply({ rules: [{ ...base, action: 'accept; drop' } as never] })).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
    expect(() => host.firewallTable('t; flush ruleset')).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_ARG' }));
    expect(() => host.firewallTable(TABLE, { bridgeNetfilter: 'yes' as never })).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_ARG' }));
    await expect(host.firewall.remove('1 || true')).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
    await expect(host.firewall.allow({ chain: 'input', oif: 'br0' })).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
    await expect(host.firewall.allow({ chain: 'forward', from: IP.A[4], to: IP.C[6] })).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
    await expect(host.firewall.allow({ chain: 'forward', protocol: 'icmp', port: 80 } as never)).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
    expect(await nftRuleset(host)).toBe(before);
  });
});

test('bridgeNetfilter: false leaves bridged traffic to the bridge (only routed traffic is filtered)', async () => {
  const fw = host.firewallTable(TABLE, { bridgeNetfilter: false });
  await fw.policy({ forward: 'drop' });
  expect(await host.sysctl.get('net.bridge.bridge-nf-call-iptables')).toBe('0');
  expect(await host.sysctl.get('net.bridge.bridge-nf-call-ip6tables')).toBe('0');
  expect(await works(B, 4, IP.C[4], 80)).toEqual([`C ${IP.B[4]}`]);
  await host.firewall.policy({ forward: 'drop' });
  expect(await host.sysctl.get('net.bridge.bridge-nf-call-iptables')).toBe('1');
  expect(await tryTcp(B, 4, IP.C[4], 80)).toEqual(['ERR TimeoutError']);
});

test('bridge port isolation: isolated ports cannot reach each other, but reach the others and the host', async () => {
  try {
    await host.links.set('pA', { isolated: true });
    await host.links.set('pB', { isolated: true });
    const info = (dev: string) => (ipJson<Array<{ linkinfo: { info_slave_data: { isolated: boolean } } }>>(host, '-d', 'link', 'show', 'dev', dev)[0]).linkinfo.info_slave_data.isolated;
    expect([info('pA'), info('pB'), info('pC')]).toEqual([true, true, false]);
    expect(await ping(A, IP.B[4])).toBe(false);
    expect(await ping(A, IP.C[4])).toBe(true);
    expect(await ping(B, '192.168.15.254')).toBe(true);
    await host.links.set('pB', { isolated: false });
    expect(info('pB')).toBe(false);
    expect(await ping(A, IP.B[4])).toBe(true);
    await expect(host.links.set('pA', { isolated: 'on' as never })).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
  } finally {
    await host.links.set('pA', { isolated: false });
    await host.links.set('pB', { isolated: false });
  }
});
