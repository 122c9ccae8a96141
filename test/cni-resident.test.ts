/**
 * The resident helper and the native client (issue 17): calls handed to a running
 * `netns-kit-cni --serve` give exactly what a plugin process gives, act in the caller's network
 * namespace (not the helper's), and every way the helper can be missing or unable to serve a call
 * ends in the plugin running by itself: no helper, a dead helper's socket, a declined call
 * (another mount namespace), a helper that breaks the connection or answers garbage.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Sandbox, ipJson } from './support/sandbox';
import { invoke, pluginDir, startHelper, CLIENT, REFERENCE_DIR, type Helper, type PluginRun } from './support/cni';
import { decodeRequest } from '../lib/cni/resident';
import type { Netns } from '../lib/index';

const sb = new Sandbox();
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nk-cni-res-'));
let bin: ReturnType<typeof pluginDir>;
let helper: Helper | undefined;
let host: Netns;
/** The helper's own namespace: a sandbox too, so nothing here can reach the machine's. */
let helperNs: Netns;

beforeAll(async () => {
  bin = pluginDir({ client: true });
  host = await sb.ns('cres-h', { loopbackUp: true });
  helperNs = await sb.ns('cres-x', { loopbackUp: true });
  helper = await startHelper(bin.runDir, { inNetns: helperNs.path });
});
afterAll(async () => {
  await helper?.stop();
  await sb.cleanup();
  bin.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

const conf = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'resnet',
    type: 'netns-kit-cni',
    bridge: 'nkres0',
    isDefaultGateway: true,
    ipMasq: true,
    ipam: { type: 'netns-kit-ipam', subnet: '10.57.0.0/24', dataDir },
    ...extra,
  });
function plugin(): string {
  return path.join(bin.dir, 'netns-kit-cni');
}
const served = (cmd: string, id: string) => helper!.log().filter((l) => l.includes(`served ${cmd} ${id} `)).length;
const declined = () => helper!.log().filter((l) => l.includes('declined')).length;

async function call(cmd: string, ctr: Netns | undefined, id: string, stdin: string, env: Record<string, string | undefined> = {}, onHost = host): Promise<PluginRun> {
  return invoke(onHost, plugin(), { command: cmd, containerId: id, ...(ctr ? { netns: ctr.path } : {}), ifname: 'eth0', cniPath: bin.cniPath, env }, stdin);
}

/** The Result with what differs between any two containers (names, MACs, the address) taken out. */
function shape(r: Record<string, unknown>): unknown {
  return JSON.parse(
    JSON.stringify(r)
      .replace(/"mac":"[0-9a-f:]+"/g, '"mac":"M"')
      .replace(/veth[0-9a-f]{8}/g, 'vethX')
      .replace(/\/run\/netns\/[^"]+/g, 'NS')
      .replace(/10\.57\.0\.\d+\/24/g, 'A/24'),
  );
}

test('the socket is root-only, and a second helper refuses to start on it', async () => {
  const st = statSync(helper!.socket);
  expect(st.isSocket()).toBe(true);
  expect(st.mode & 0o777).toBe(0o600);
  expect(st.uid).toBe(0);
  await expect(startHelper(bin.runDir, { inNetns: helperNs.path })).rejects.toThrow(/already answers/);
});

test('ADD, CHECK and DEL through the client are served by the helper, in the caller\'s namespace', async () => {
  const ctr = await sb.ns('cres-c');
  const add = await call('ADD', ctr, 'r1', conf());
  expect(add.stderr).toBe('');
  expect(add.exitCode).toBe(0);
  expect(served('ADD', 'r1')).toBe(1);
  const result = add.json!;
  const ips = result.ips as Array<{ address: string; gateway: string }>;
  expect(ips[0].address).toMatch(/^10\.57\.0\.\d+\/24$/);
  // The bridge and the host veth are in the caller's namespace (the sandbox "host"), not the helper's.
  const hostLinks = ipJson(host, 'link').map((l) => l.ifname as string);
  expect(hostLinks).toContain('nkres0');
  expect(hostLinks.some((n) => /^veth[0-9a-f]{8}$/.test(n))).toBe(true);
  expect(ipJson(helperNs, 'link').map((l) => l.ifname)).toEqual(['lo']);
  expect(execFileSync('nsenter', [`--net=${helperNs.path}`, 'nft', 'list', 'tables'], { encoding: 'utf8' })).toBe('');
  expect(ipJson(ctr, 'addr', 'show', 'dev', 'eth0').flatMap((l) => (l.addr_info as Array<{ local: string }>).map((a) => a.local))).toContain(ips[0].address.split('/')[0]);
  // The NAT rules too: in the caller's namespace.
  const rules = execFileSync('nsenter', [`--net=${host.path}`, 'nft', 'list', 'table', 'inet', 'netns_kit_cni'], { encoding: 'utf8' });
  expect(rules).toContain(`ip saddr ${ips[0].address.split('/')[0]}`);

  const check = await call('CHECK', ctr, 'r1', conf({ prevResult: result }));
  expect([check.exitCode, check.stdout]).toEqual([0, '']);
  expect(served('CHECK', 'r1')).toBe(1);

  const del = await call('DEL', ctr, 'r1', conf());
  expect([del.exitCode, del.stdout]).toEqual([0, '']);
  expect(served('DEL', 'r1')).toBe(1);
  expect(ipJson(host, 'link').map((l) => l.ifname)).toEqual(['lo', 'nkres0']);
  expect(ipJson(ctr, 'link').map((l) => l.ifname)).toEqual(['lo']);
  expect(declined()).toBe(0);
});

test('a caller in the helper\'s own namespace (the usual set-up: runtime and helper on the machine) is served there', async () => {
  const ctr = await sb.ns('cres-c');
  const own = conf({ name: 'resown', bridge: 'nkown0', ipam: { type: 'netns-kit-ipam', subnet: '10.57.2.0/24', dataDir } });
  const add = await call('ADD', ctr, 'own1', own, {}, helperNs);
  expect(add.exitCode).toBe(0);
  expect(served('ADD', 'own1')).toBe(1);
  expect((add.json!.ips as Array<{ address: string }>)[0].address).toBe('10.57.2.2/24');
  const hostVeth = (add.json!.interfaces as Array<{ name: string }>)[1].name;
  expect(ipJson(helperNs, 'link').map((l) => l.ifname)).toEqual(expect.arrayContaining(['nkown0', hostVeth]));
  expect(ipJson(host, 'link').map((l) => l.ifname)).not.toContain('nkown0');
  expect((await call('DEL', ctr, 'own1', own, {}, helperNs)).exitCode).toBe(0);
  expect(served('DEL', 'own1')).toBe(1);
  await helperNs.links.delete('nkown0');
});

test('a served call answers exactly as a plugin process: Result, errors, VERSION', async () => {
  const [a, b] = [await sb.ns('cres-c'), await sb.ns('cres-c')];
  const viaHelper = await call('ADD', a, 'same1', conf());
  const standalone = await call('ADD', b, 'same2', conf(), { NETNS_KIT_CNI_STANDALONE: '1' });
  expect(served('ADD', 'same1')).toBe(1);
  expect(served('ADD', 'same2')).toBe(0);
  expect([viaHelper.exitCode, standalone.exitCode]).toEqual([0, 0]);
  expect(shape(viaHelper.json!)).toEqual(shape(standalone.json!));

  // Errors, byte for byte: a configuration without ipam, a missing variable, bad JSON.
  for (const [stdin, env] of [
    [JSON.stringify({ cniVersion: '1.0.0', name: 'resnet', type: 'netns-kit-cni' }), {}],
    [conf(), { CNI_IFNAME: undefined }],
    ['{not json', {}],
  ] as Array<[string, Record<string, string | undefined>]>) {
    const h = await call('ADD', a, 'err1', stdin, env);
    const s = await call('ADD', a, 'err1', stdin, { ...env, NETNS_KIT_CNI_STANDALONE: '1' });
    expect(h.exitCode).toBe(1);
    expect([h.exitCode, h.stdout]).toEqual([s.exitCode, s.stdout]);
  }
  // As libcni asks: placeholders in CNI_NETNS/CNI_IFNAME/CNI_PATH, served all the same.
  const v = await call('VERSION', undefined, 'v', '{"cniVersion":"0.4.0"}', { CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: 'dummy' });
  expect(served('VERSION', 'v')).toBe(1);
  const vs = await call('VERSION', undefined, 'v', '{"cniVersion":"0.4.0"}', { NETNS_KIT_CNI_STANDALONE: '1' });
  expect([v.exitCode, v.stdout]).toEqual([vs.exitCode, vs.stdout]);
  expect(JSON.parse(v.stdout).cniVersion).toBe('0.4.0');

  for (const [ctr, id] of [[a, 'same1'], [b, 'same2']] as const) expect((await call('DEL', ctr, id, conf())).exitCode).toBe(0);
});

test('linked as netns-kit-ipam, the client is served in the IPAM role (reference bridge delegating to it)', async () => {
  const ctr = await sb.ns('cres-c');
  const refConf = JSON.stringify({
    cniVersion: '1.0.0',
    name: 'resref',
    type: 'bridge',
    bridge: 'nkresr0',
    isGateway: true,
    ipam: { type: 'netns-kit-ipam', subnet: '10.57.1.0/24', dataDir },
  });
  const add = await invoke(host, path.join(REFERENCE_DIR, 'bridge'), { command: 'ADD', containerId: 'ipam1', netns: ctr.path, ifname: 'eth0', cniPath: bin.cniPath }, refConf);
  expect(add.exitCode).toBe(0);
  expect((add.json!.ips as Array<{ address: string }>)[0].address).toBe('10.57.1.2/24');
  expect(helper!.log().filter((l) => /served ADD ipam1 as netns-kit-ipam /.test(l))).toHaveLength(1);
  const leases = JSON.parse(readFileSync(path.join(dataDir, 'resref', 'leases.json'), 'utf8')) as { leases: Record<string, unknown> };
  expect(Object.keys(leases.leases)).toEqual(['10.57.1.2']);
  const del = await invoke(host, path.join(REFERENCE_DIR, 'bridge'), { command: 'DEL', containerId: 'ipam1', netns: ctr.path, ifname: 'eth0', cniPath: bin.cniPath }, refConf);
  expect(del.exitCode).toBe(0);
  expect(helper!.log().filter((l) => /served DEL ipam1 as netns-kit-ipam /.test(l))).toHaveLength(1);
  await host.links.delete('nkresr0', { missingOk: true });
});

test('a caller in another mount namespace is declined, and the client runs the plugin itself with the same stdin', async () => {
  const ctr = await sb.ns('cres-c');
  const before = declined();
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'mnt1', CNI_NETNS: ctr.path, CNI_IFNAME: 'eth0', CNI_PATH: bin.cniPath, NETNS_KIT_CNI_RUN_DIR: bin.runDir };
  const r = await host.exec('unshare', ['--mount', '--propagation', 'unchanged', '--', plugin()], { env, input: conf(), check: false });
  expect(r.exitCode).toBe(0);
  expect(JSON.parse(r.stdout).ips[0].address).toMatch(/^10\.57\.0\.\d+\/24$/);
  expect(declined()).toBe(before + 1);
  expect(helper!.log().at(-1)).toMatch(/declined ADD .*another mount namespace/);
  expect(served('ADD', 'mnt1')).toBe(0);
  expect((await call('DEL', ctr, 'mnt1', conf())).exitCode).toBe(0);
});

test('no helper, or a dead helper\'s socket: the client runs the plugin itself', async () => {
  const ctr = await sb.ns('cres-c');
  // No socket at all (another run directory).
  const empty = mkdtempSync(path.join(os.tmpdir(), 'nk-cni-nohelper-'));
  try {
    const r = await call('ADD', ctr, 'gone1', conf(), { NETNS_KIT_CNI_RUN_DIR: empty });
    expect(r.exitCode).toBe(0);
    expect(served('ADD', 'gone1')).toBe(0);
    expect((await call('DEL', ctr, 'gone1', conf(), { NETNS_KIT_CNI_RUN_DIR: empty })).exitCode).toBe(0);

    // A helper killed with SIGKILL leaves its socket file; nobody accepts on it any more.
    const dead = await startHelper(empty, { inNetns: helperNs.path });
    dead.child.kill('SIGKILL');
    await dead.stop();
    expect(existsSync(dead.socket)).toBe(true);
    const r2 = await call('ADD', ctr, 'gone2', conf(), { NETNS_KIT_CNI_RUN_DIR: empty });
    expect(r2.exitCode).toBe(0);
    expect((await call('DEL', ctr, 'gone2', conf(), { NETNS_KIT_CNI_RUN_DIR: empty })).exitCode).toBe(0);
    // ...and a new helper replaces the stale socket.
    const again = await startHelper(empty, { inNetns: helperNs.path });
    const r3 = await call('VERSION', undefined, 'v2', '{}', { NETNS_KIT_CNI_RUN_DIR: empty });
    expect(r3.exitCode).toBe(0);
    expect(again.log().some((l) => l.includes('served VERSION'))).toBe(true);
    expect(await again.stop()).toBe(0);
    expect(existsSync(again.socket)).toBe(false);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

/** A fake helper on its own run directory that misbehaves after reading a whole request. */
async function fakeHelper(dir: string, misbehave: (sock: net.Socket, body: Buffer) => void): Promise<{ close(): Promise<void>; requests: Buffer[] }> {
  mkdirSync(dir, { recursive: true });
  const requests: Buffer[] = [];
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('error', () => undefined);
    sock.on('data', (b: Buffer) => {
      buf = Buffer.concat([buf, b]);
      if (buf.length >= 8 && buf.length >= 8 + buf.readUInt32LE(4)) {
        const body = buf.subarray(8, 8 + buf.readUInt32LE(4));
        requests.push(body);
        misbehave(sock, body);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path.join(dir, 'resident.sock'), resolve));
  return { requests, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('a helper that breaks the connection or answers garbage: the client runs the plugin itself', async () => {
  const ctr = await sb.ns('cres-c');
  for (const [what, misbehave] of [
    ['closes mid-call', (s: net.Socket) => s.destroy()],
    ['answers garbage', (s: net.Socket) => s.end('?garbage')],
    ['truncates its answer', (s: net.Socket) => s.end(Buffer.from([0x52, 0, 0, 0, 0, 100, 0, 0, 0, 0x7b]))],
  ] as Array<[string, (s: net.Socket, b: Buffer) => void]>) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nk-cni-fake-'));
    const fake = await fakeHelper(dir, misbehave);
    try {
      const r = await call('ADD', ctr, 'fake1', conf(), { NETNS_KIT_CNI_RUN_DIR: dir });
      expect([what, r.exitCode]).toEqual([what, 0]);
      expect(JSON.parse(r.stdout).ips[0].address).toMatch(/^10\.57\.0\.\d+\/24$/);
      // The request the fake saw is what the real helper decodes: caller identity, env, stdin.
      expect(fake.requests).toHaveLength(1);
      const req = decodeRequest(fake.requests[0]);
      expect(req.stdin).toBe(conf());
      expect(req.argv0).toBe('netns-kit-cni');
      expect(req.env.CNI_CONTAINERID).toBe('fake1');
      expect(req.netns).toBe(`${host.identity!.dev}:${host.identity!.ino}`);
      expect((await call('DEL', ctr, 'fake1', conf(), { NETNS_KIT_CNI_RUN_DIR: dir })).exitCode).toBe(0);
    } finally {
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('20 ADDs and 20 DELs at once through the helper: unique addresses, the leases match, nothing left', async () => {
  const n = 20;
  const ctrs = await Promise.all(Array.from({ length: n }, () => sb.ns('cres-m')));
  // The helper keeps nothing per call: no descriptor (a netlink socket in a container's namespace
  // would keep that namespace alive after the runtime deleted it).
  const fds = () => readdirSync(`/proc/${helper!.child.pid}/fd`).length;
  const fdsBefore = fds();
  const adds = await Promise.all(ctrs.map((c, i) => call('ADD', c, `many${i}`, conf())));
  expect(adds.filter((r) => r.exitCode !== 0).map((r) => r.stdout)).toEqual([]);
  const addrs = adds.map((r) => (r.json!.ips as Array<{ address: string }>)[0].address.split('/')[0]);
  expect(new Set(addrs).size).toBe(n);
  const leases = JSON.parse(readFileSync(path.join(dataDir, 'resnet', 'leases.json'), 'utf8')) as { leases: Record<string, unknown> };
  expect(Object.keys(leases.leases).sort()).toEqual([...addrs].sort());
  expect(ctrs.map((_, i) => served('ADD', `many${i}`))).toEqual(Array(n).fill(1));
  const dels = await Promise.all(ctrs.map((c, i) => call('DEL', c, `many${i}`, conf())));
  expect(dels.map((r) => r.exitCode)).toEqual(Array(n).fill(0));
  expect(ipJson(host, 'link').map((l) => l.ifname)).toEqual(['lo', 'nkres0']);
  const after = JSON.parse(readFileSync(path.join(dataDir, 'resnet', 'leases.json'), 'utf8')) as { leases: Record<string, unknown> };
  expect(after.leases).toEqual({});
  expect(fds()).toBe(fdsBefore);
});

test('a malformed request is refused by the decoder', () => {
  expect(() => decodeRequest(Buffer.from([1, 0, 0]))).toThrow(/truncated/);
  expect(() => decodeRequest(Buffer.alloc(0))).toThrow(/no pid/);
  expect(CLIENT).toMatch(/build\/Release\/netns-kit-cni$/);
});
