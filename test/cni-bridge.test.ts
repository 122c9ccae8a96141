/**
 * The bridge network through the plugin executable, command by command, as a runtime drives it
 * (subprocess in the sandbox "host" namespace, env + stdin). Witnesses: `ip -j`, `nft -j`, the
 * lease file, and real traffic.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandbox, ipJson } from './support/sandbox';
import { invoke, pluginDir, PLUGIN, type Invocation } from './support/cni';
import type { Netns } from '../lib/index';

const sb = new Sandbox();
let bin: ReturnType<typeof pluginDir>;
let dataDir: string;
afterEach(() => sb.cleanup());
beforeAll(() => {
  bin = pluginDir();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'nk-cni-br-'));
});
afterAll(() => {
  bin.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

type Json = Record<string, unknown>;

function network(name: string, extra: Json = {}): Json {
  return {
    cniVersion: '1.0.0',
    name,
    type: 'netns-kit-cni',
    bridge: 'nkbr0',
    isGateway: true,
    isDefaultGateway: true,
    ipam: { type: 'netns-kit-ipam', subnet: '10.66.0.0/24', dataDir },
    ...extra,
  };
}

function run(host: Netns, command: string, c: Netns | string | undefined, conf: Json, containerId = 'ctr1', ifname = 'eth0') {
  const inv: Invocation = { command, containerId, ifname, cniPath: bin.cniPath };
  if (c !== undefined) inv.netns = typeof c === 'string' ? c : c.path;
  return invoke(host, PLUGIN, inv, JSON.stringify(conf));
}

function leases(net: string): Record<string, { containerID: string; ifname: string }> {
  try {
    return (JSON.parse(readFileSync(path.join(dataDir, net, 'leases.json'), 'utf8')) as { leases: Record<string, { containerID: string; ifname: string }> }).leases;
  } catch {
    return {};
  }
}

function nftTags(host: Netns): string[] {
  const out = execFileSync('nsenter', [`--net=${host.path}`, 'nft', '-j', 'list', 'ruleset'], { encoding: 'utf8' });
  const items = (JSON.parse(out) as { nftables: Array<{ rule?: { comment?: string } }> }).nftables;
  return items.map((i) => i.rule?.comment ?? '').filter((c) => c.includes(':cni-'));
}

interface IpLink {
  ifname: string;
  address: string;
  mtu: number;
  flags: string[];
  master?: string;
  promiscuity?: number;
  linkinfo?: { info_kind?: string; info_slave_kind?: string; info_slave_data?: { hairpin?: boolean } };
}

test('ADD/CHECK/DEL lifecycle: veth, address, routes, gateway on the bridge, traffic; DEL idempotent', async () => {
  const host = await sb.ns('cbr-host', { loopbackUp: true });
  const c = await sb.ns('cbr-c');
  const conf = network('lifecycle', { mtu: 1400, hairpinMode: true, promiscMode: true, mac: '02:42:0a:42:00:99' });
  const add = await run(host, 'ADD', c, conf);
  expect(add.exitCode).toBe(0);
  const result = add.json!;
  expect(result.cniVersion).toBe('1.0.0');
  const ifaces = result.interfaces as Array<{ name: string; mac: string; sandbox?: string }>;
  expect(ifaces.map((i) => i.name)).toEqual(['nkbr0', expect.stringMatching(/^veth[0-9a-f]{8}$/), 'eth0']);
  expect(ifaces[2]).toEqual({ name: 'eth0', mac: '02:42:0a:42:00:99', sandbox: c.path });
  expect(result.ips).toEqual([{ address: '10.66.0.2/24', gateway: '10.66.0.1', interface: 2 }]); // 1.0.0: no "version"
  expect(result.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.66.0.1' }]);

  // Witness: ip -j in both namespaces.
  const eth0 = ipJson<IpLink[]>(c, '-d', 'link', 'show', 'eth0')[0];
  expect(eth0).toEqual(expect.objectContaining({ address: '02:42:0a:42:00:99', mtu: 1400 }));
  expect(eth0.linkinfo?.info_kind).toBe('veth');
  const addrs = ipJson<Array<{ addr_info: Array<{ local: string; prefixlen: number; family: string }> }>>(c, 'addr', 'show', 'dev', 'eth0')[0].addr_info;
  expect(addrs.filter((a) => a.family === 'inet')).toEqual([expect.objectContaining({ local: '10.66.0.2', prefixlen: 24 })]);
  expect(ipJson(c, 'route', 'show', 'default')).toEqual([expect.objectContaining({ dst: 'default', gateway: '10.66.0.1', dev: 'eth0' })]);
  const hostVeth = ipJson<IpLink[]>(host, '-d', 'link', 'show', ifaces[1].name)[0];
  expect(hostVeth.master).toBe('nkbr0');
  expect(hostVeth.mtu).toBe(1400);
  expect(hostVeth.linkinfo?.info_slave_data?.hairpin).toBe(true);
  const br = ipJson<IpLink[]>(host, '-d', 'link', 'show', 'nkbr0')[0];
  expect(br.linkinfo?.info_kind).toBe('bridge');
  expect(br.promiscuity).toBeGreaterThan(0);
  expect(ipJson<Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>>(host, '-4', 'addr', 'show', 'dev', 'nkbr0')[0].addr_info).toEqual([
    expect.objectContaining({ local: '10.66.0.1', prefixlen: 24 }),
  ]);
  expect(execFileSync('nsenter', [`--net=${host.path}`, 'sysctl', '-n', 'net.ipv4.ip_forward'], { encoding: 'utf8' }).trim()).toBe('1');
  await c.exec('ping', ['-c1', '-W2', '10.66.0.1']);
  await host.exec('ping', ['-c1', '-W2', '10.66.0.2']);
  expect(leases('lifecycle')).toEqual({ '10.66.0.2': { containerID: 'ctr1', ifname: 'eth0' } });

  // CHECK: clean, then drift is reported (code 999 with what drifted).
  const check = await run(host, 'CHECK', c, { ...conf, prevResult: result });
  expect(check.exitCode).toBe(0);
  expect(check.stdout).toBe('');
  execFileSync('ip', ['-n', c.name!, 'route', 'del', 'default']);
  const drift = await run(host, 'CHECK', c, { ...conf, prevResult: result });
  expect(drift.exitCode).toBe(1);
  expect(drift.json).toEqual(expect.objectContaining({ code: 999, msg: expect.stringContaining('route 0.0.0.0/0 via 10.66.0.1 missing') }));
  await c.addresses.delete('eth0', '10.66.0.2/24');
  const drift2 = await run(host, 'CHECK', c, { ...conf, prevResult: result });
  expect(String(drift2.json!.details)).toContain('address 10.66.0.2/24 missing');

  // ADD again without DEL: the interface exists.
  const again = await run(host, 'ADD', c, conf);
  expect(again.json).toEqual(expect.objectContaining({ code: 999, msg: 'container veth name provided (eth0) already exists' }));

  // DEL, twice: everything of this container is gone, the lease released.
  for (let i = 0; i < 2; i++) {
    const del = await run(host, 'DEL', c, { ...conf, prevResult: result });
    expect(del.exitCode).toBe(0);
    expect(del.stdout).toBe('');
  }
  expect(ipJson<IpLink[]>(c, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
  expect(ipJson<IpLink[]>(host, 'link', 'show').map((l) => l.ifname).sort()).toEqual(['lo', 'nkbr0']);
  expect(leases('lifecycle')).toEqual({});
});

test('0.4.0 and 0.3.1 results carry "version" on each IP; DEL without CNI_NETNS or with the namespace gone releases the lease', async () => {
  const host = await sb.ns('cbr-host', { loopbackUp: true });
  const c1 = await sb.ns('cbr-c');
  const c2 = await sb.ns('cbr-c');
  const conf = network('oldver', { cniVersion: '0.4.0' });
  const a1 = await run(host, 'ADD', c1, conf, 'old1');
  expect(a1.json!.cniVersion).toBe('0.4.0');
  expect(a1.json!.ips).toEqual([{ version: '4', address: '10.66.0.2/24', gateway: '10.66.0.1', interface: 2 }]);
  const a2 = await run(host, 'ADD', c2, { ...conf, cniVersion: '0.3.1' }, 'old2');
  expect(a2.json!.ips).toEqual([{ version: '4', address: '10.66.0.3/24', gateway: '10.66.0.1', interface: 2 }]);
  expect(Object.keys(leases('oldver')).sort()).toEqual(['10.66.0.2', '10.66.0.3']);

  // The runtime lost the namespace: DEL without CNI_NETNS.
  const d1 = await run(host, 'DEL', undefined, conf, 'old1');
  expect(d1.exitCode).toBe(0);
  // The namespace was deleted before DEL: its path no longer exists.
  const gonePath = c2.path;
  await c2.delete();
  const d2 = await run(host, 'DEL', gonePath, conf, 'old2');
  expect(d2.exitCode).toBe(0);
  expect(leases('oldver')).toEqual({});
  expect(ipJson<IpLink[]>(host, 'link', 'show').map((l) => l.ifname).sort()).toEqual(['lo', 'nkbr0']);
  expect(ipJson<IpLink[]>(c1, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
});

test('ipMasq and portMappings: per-container tagged NAT rules; DEL of one container leaves the other\'s', async () => {
  const host = await sb.ns('cbr-host', { loopbackUp: true });
  const c1 = await sb.ns('cbr-c');
  const c2 = await sb.ns('cbr-c');
  const base = network('natnet', { ipMasq: true, cniVersion: '1.1.0' });
  const conf1 = { ...base, runtimeConfig: { portMappings: [{ hostPort: 8081, containerPort: 80, protocol: 'tcp' }] } };
  const conf2 = { ...base, runtimeConfig: { portMappings: [{ hostPort: 8082, containerPort: 80, protocol: 'udp' }] } };
  const r1 = await run(host, 'ADD', c1, conf1, 'nat1');
  const r2 = await run(host, 'ADD', c2, conf2, 'nat2');
  expect([r1.exitCode, r2.exitCode]).toEqual([0, 0]);
  const tags = nftTags(host);
  const tagOf = (comment: string) => comment.slice(comment.lastIndexOf(':') + 1);
  const byTag = new Map<string, string[]>();
  for (const t of tags) byTag.set(tagOf(t), [...(byTag.get(tagOf(t)) ?? []), t]);
  expect(byTag.size).toBe(2);
  for (const [, rules] of byTag) {
    expect(rules.some((r) => r.includes(':masquerade:'))).toBe(true);
    expect(rules.some((r) => r.includes(':portForward:'))).toBe(true);
  }
  const check1 = await run(host, 'CHECK', c1, { ...conf1, prevResult: r1.json }, 'nat1');
  expect(check1.exitCode).toBe(0);

  const d1 = await run(host, 'DEL', c1, conf1, 'nat1');
  expect(d1.exitCode).toBe(0);
  const left = nftTags(host);
  expect(new Set(left.map(tagOf)).size).toBe(1);
  expect(left.some((r) => r.includes(':portForward:'))).toBe(true);
  // CHECK of the remaining container still passes; after its rules vanish it reports the drift.
  expect((await run(host, 'CHECK', c2, { ...conf2, prevResult: r2.json }, 'nat2')).exitCode).toBe(0);

  // GC (1.1.0): c2 is not listed as valid any more: its lease and NAT rules go.
  const gc = await invoke(host, PLUGIN, { command: 'GC', cniPath: bin.cniPath }, JSON.stringify({ ...base, 'cni.dev/valid-attachments': [{ containerID: 'other', ifname: 'eth0' }] }));
  expect(gc.exitCode).toBe(0);
  expect(gc.stdout).toBe('');
  expect(nftTags(host)).toEqual([]);
  expect(leases('natnet')).toEqual({});
  const drift = await run(host, 'CHECK', c2, { ...conf2, prevResult: r2.json }, 'nat2');
  expect(drift.json).toEqual(expect.objectContaining({ code: 999 }));
  expect(`${String(drift.json!.msg)} ${String(drift.json!.details)}`).toMatch(/NAT rule missing|not leased/);

  // STATUS (1.1.0): ready.
  const status = await invoke(host, PLUGIN, { command: 'STATUS', cniPath: bin.cniPath }, JSON.stringify(base));
  expect(status.exitCode).toBe(0);
  expect(status.stdout).toBe('');
  expect((await run(host, 'DEL', c2, conf2, 'nat2')).exitCode).toBe(0);
});

test('STATUS reports code 50 when the address store cannot be written', async () => {
  const host = await sb.ns('cbr-host', { loopbackUp: true });
  const file = path.join(dataDir, 'a-file');
  execFileSync('touch', [file]);
  const conf = network('statusnet', { cniVersion: '1.1.0', ipam: { type: 'netns-kit-ipam', subnet: '10.66.0.0/24', dataDir: path.join(file, 'below') } });
  const r = await invoke(host, PLUGIN, { command: 'STATUS', cniPath: bin.cniPath }, JSON.stringify(conf));
  expect(r.json).toEqual(expect.objectContaining({ code: 50, cniVersion: '1.1.0' }));
});

test('IPv4 + IPv6 from two range sets; forceAddress replaces a foreign gateway address', async () => {
  const host = await sb.ns('cbr-host', { loopbackUp: true });
  const c = await sb.ns('cbr-c');
  await host.links.add({ kind: 'bridge', name: 'nkbr0', up: true });
  await host.addresses.add('nkbr0', '10.66.0.200/24');
  const ipam = { type: 'netns-kit-ipam', ranges: [[{ subnet: '10.66.0.0/24', rangeStart: '10.66.0.10' }], [{ subnet: 'fd66::/64' }]], dataDir, routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }] };
  const refused = await run(host, 'ADD', c, network('dual', { isDefaultGateway: false, ipam }));
  expect(refused.json).toEqual(expect.objectContaining({ code: 999, msg: expect.stringContaining('already has an IP address') }));
  expect(ipJson<IpLink[]>(c, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
  expect(leases('dual')).toEqual({});

  const portMappings = [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
    { hostPort: 5353, containerPort: 53, protocol: 'udp' },
  ];
  const r = await run(host, 'ADD', c, network('dual', { isDefaultGateway: false, forceAddress: true, ipam, runtimeConfig: { portMappings } }));
  expect(r.exitCode).toBe(0);
  // Round robin as host-local: allocation continues after the addresses the refused ADD had (and released).
  expect(r.json!.ips).toEqual([
    { address: '10.66.0.11/24', gateway: '10.66.0.1', interface: 2 },
    { address: 'fd66::3/64', gateway: 'fd66::1', interface: 2 },
  ]);
  const v4 = ipJson<Array<{ addr_info: Array<{ local: string }> }>>(host, '-4', 'addr', 'show', 'dev', 'nkbr0')[0].addr_info.map((a) => a.local);
  expect(v4).toEqual(['10.66.0.1']);
  expect(ipJson(c, '-6', 'route', 'show', 'default')).toEqual([expect.objectContaining({ gateway: 'fd66::1', dev: 'eth0' })]);
  await c.exec('ping', ['-c1', '-W2', 'fd66::1']);
  // Port mappings in both families (TCP) and UDP, from the host to its own addresses.
  const tcp = c.spawn('socat', ['TCP6-LISTEN:80,reuseaddr,fork,ipv6only=0', 'SYSTEM:echo tcp-hello'], { stdio: 'ignore' });
  const udp = c.spawn('socat', ['UDP4-RECVFROM:53,fork', 'SYSTEM:echo udp-hello'], { stdio: 'ignore' });
  try {
    const listening = async () => (await c.exec('ss', ['-lnH', 'sport = :80 or sport = :53'])).stdout.split('\n').filter((l) => /:(80|53)\s/.test(l)).length === 2;
    for (let i = 0; i < 250 && !(await listening()); i++) await new Promise((res) => setTimeout(res, 20));
    expect(await listening()).toBe(true);
    const ask = async (addr: string) => (await host.exec('socat', ['-T3', '-t3', '-', addr], { check: false })).stdout.trim();
    expect(await ask('TCP4:10.66.0.1:8080')).toBe('tcp-hello');
    expect(await ask('TCP6:[fd66::1]:8080')).toBe('tcp-hello');
    // UDP may lose a datagram on a loaded machine: a client retries, and so does this one.
    let reply = '';
    for (let i = 0; i < 3 && reply === ''; i++) {
      reply = (await host.exec('socat', ['-T3', '-t3', '-', 'UDP4:10.66.0.1:5353'], { input: 'ping\n', check: false })).stdout.trim();
    }
    expect(reply).toBe('udp-hello');
  } finally {
    tcp.kill('SIGKILL');
    udp.kill('SIGKILL');
  }
  expect((await run(host, 'DEL', c, network('dual', { ipam, runtimeConfig: { portMappings } }))).exitCode).toBe(0);
  expect(nftTags(host)).toEqual([]);
  expect(leases('dual')).toEqual({});
});

test('DEL keeps cleaning up when one step fails, reports that failure, and a later DEL finishes the job', async () => {
  const host = await sb.ns('cbr-host', { loopbackUp: true });
  const c = await sb.ns('cbr-c');
  const conf = network('partial');
  expect((await run(host, 'ADD', c, conf, 'part1')).exitCode).toBe(0);
  // IPAM cannot be reached in this DEL: the interfaces still go.
  const broken = await run(host, 'DEL', c, { ...conf, ipam: { type: 'vanished-ipam' } }, 'part1');
  expect(broken.json).toEqual(expect.objectContaining({ code: 999, msg: expect.stringContaining('vanished-ipam') }));
  expect(ipJson<IpLink[]>(c, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
  expect(ipJson<IpLink[]>(host, 'link', 'show').map((l) => l.ifname).sort()).toEqual(['lo', 'nkbr0']);
  expect(Object.keys(leases('partial'))).toEqual(['10.66.0.2']);
  expect((await run(host, 'DEL', c, conf, 'part1')).exitCode).toBe(0);
  expect(leases('partial')).toEqual({});
});
