/**
 * The CNI plugin's contract with runtimes: VERSION, and every error case the spec names, each
 * asserted as the exact error code and JSON shape on stdout with a non-zero exit, and — where the
 * call could have changed something — that nothing changed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandbox, ipJson } from './support/sandbox';
import { invoke, pluginDir, PLUGIN } from './support/cni';
import type { Netns } from '../lib/index';

const sb = new Sandbox();
let host: Netns;
let container: Netns;
let bin: ReturnType<typeof pluginDir>;
let dataDir: string;

beforeAll(async () => {
  host = await sb.ns('cspec-host', { loopbackUp: true });
  container = await sb.ns('cspec-c');
  bin = pluginDir();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'nk-cni-spec-'));
});
afterAll(async () => {
  await sb.cleanup();
  bin.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

function conf(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: 'specnet',
    type: 'netns-kit-cni',
    bridge: 'nkspec0',
    isGateway: true,
    ipam: { type: 'netns-kit-ipam', subnet: '10.77.0.0/24', dataDir },
    ...extra,
  };
}

function add(stdin: string, env: Record<string, string | undefined> = {}, ifname = 'eth0') {
  return invoke(host, PLUGIN, { command: 'ADD', containerId: 'spec1', netns: container.path, ifname, cniPath: bin.cniPath, env }, stdin);
}

/** The spec's error JSON: code, msg, cniVersion, and a non-zero exit. */
function expectError(r: { exitCode: number | null; json?: Record<string, unknown> }, code: number, cniVersion = '1.0.0'): void {
  expect(r.exitCode).not.toBe(0);
  expect(r.json).toEqual(expect.objectContaining({ code, cniVersion, msg: expect.any(String) }));
}

function hostLinks(): string[] {
  return ipJson<Array<{ ifname: string }>>(host, 'link', 'show').map((l) => l.ifname).sort();
}

test('VERSION lists the supported versions, echoing the requested one', async () => {
  const r = await invoke(host, PLUGIN, { command: 'VERSION' }, JSON.stringify({ cniVersion: '1.0.0' }));
  expect(r.exitCode).toBe(0);
  expect(r.json).toEqual({ cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  const bare = await invoke(host, PLUGIN, { command: 'VERSION' }, '');
  expect(bare.json).toEqual({ cniVersion: '1.1.0', supportedVersions: expect.arrayContaining(['1.1.0', '0.4.0']) });
});

test('invalid environment variables: code 4 naming the variables', async () => {
  const noCmd = await invoke(host, PLUGIN, { command: 'ADD', env: { CNI_COMMAND: undefined } }, JSON.stringify(conf()));
  expectError(noCmd, 4);
  expect(noCmd.json!.msg).toContain('CNI_COMMAND');

  const bogus = await invoke(host, PLUGIN, { command: 'FROB' }, JSON.stringify(conf()));
  expectError(bogus, 4);

  const missing = await invoke(host, PLUGIN, { command: 'ADD', ifname: 'eth0', cniPath: bin.cniPath }, JSON.stringify(conf()));
  expectError(missing, 4);
  expect(missing.json!.msg).toContain('CNI_CONTAINERID');
  expect(missing.json!.msg).toContain('CNI_NETNS');

  const badId = await add(JSON.stringify(conf()), { CNI_CONTAINERID: '-bad id' });
  expectError(badId, 4);
  expect(badId.json!.msg).toContain('CNI_CONTAINERID');

  for (const ifname of ['a/b', 'x:y', 'sp ace', '..', 'sixteen-chars-ok']) {
    const r = await add(JSON.stringify(conf()), {}, ifname);
    expectError(r, 4);
    expect(r.json!.msg).toContain('CNI_IFNAME');
  }

  const badArgs = await add(JSON.stringify(conf()), { CNI_ARGS: 'NOEQUALS' });
  expectError(badArgs, 4);
  expect(hostLinks()).toEqual(['lo']);
});

test('undecodable configuration: code 6; unsupported cniVersion: code 1', async () => {
  const garbage = await add('{not json');
  expectError(garbage, 6, '1.1.0');
  const arr = await add('[1,2]');
  expectError(arr, 6, '1.1.0');

  const old = await add(JSON.stringify(conf({ cniVersion: '0.2.0' })));
  expectError(old, 1, '1.1.0');
  expect(old.json!.details).toContain('0.2.0');
  const future = await add(JSON.stringify(conf({ cniVersion: '9.0.0' })));
  expectError(future, 1, '1.1.0');
  expect(hostLinks()).toEqual(['lo']);
});

test('commands newer than the configuration version: code 1', async () => {
  const check = await invoke(host, PLUGIN, { command: 'CHECK', containerId: 'spec1', netns: container.path, ifname: 'eth0', cniPath: bin.cniPath }, JSON.stringify(conf({ cniVersion: '0.3.1' })));
  expectError(check, 1, '0.3.1');
  const gc = await invoke(host, PLUGIN, { command: 'GC', cniPath: bin.cniPath }, JSON.stringify(conf()));
  expectError(gc, 1);
  expect(gc.json!.msg).toContain('GC');
  const status = await invoke(host, PLUGIN, { command: 'STATUS', cniPath: bin.cniPath }, JSON.stringify(conf({ cniVersion: '0.4.0' })));
  expectError(status, 1, '0.4.0');
});

test('invalid network configuration: code 7; unsupported field: code 2 naming key and value', async () => {
  expectError(await add(JSON.stringify(conf({ name: '-net' }))), 7);
  expectError(await add(JSON.stringify(conf({ name: undefined }))), 7);
  expectError(await add(JSON.stringify(conf({ ipam: undefined }))), 7);
  expectError(await add(JSON.stringify(conf({ mtu: 20 }))), 7);
  expectError(await add(JSON.stringify(conf({ isGateway: 'yes' }))), 7);
  expectError(await add(JSON.stringify(conf({ ipam: { type: 'netns-kit-ipam', subnet: 'nonsense', dataDir } }))), 7);
  expectError(await add(JSON.stringify(conf({ runtimeConfig: { portMappings: [{ hostPort: 70000, containerPort: 80 }] } }))), 7);
  const vlan = await add(JSON.stringify(conf({ vlan: 100 })));
  expectError(vlan, 2);
  expect(vlan.json!.msg).toContain('vlan');
  expect(vlan.json!.msg).toContain('100');
  expect(hostLinks()).toEqual(['lo']);
});

test('ADD into a namespace that does not exist: code 3, nothing created', async () => {
  const r = await add(JSON.stringify(conf()), { CNI_NETNS: '/run/netns/nk-no-such-namespace' });
  expectError(r, 3);
  expect(hostLinks()).toEqual(['lo']);
});

test('IPAM plugin not on CNI_PATH: the error of the reference plugins, nothing left', async () => {
  const r = await add(JSON.stringify(conf({ ipam: { type: 'no-such-ipam' } })));
  expectError(r, 999);
  expect(r.json!.msg).toContain('no-such-ipam');
  expect(hostLinks()).toEqual(['lo']);
});

test('a delegated IPAM plugin error is passed through with its code', async () => {
  // host-local refuses a range outside its subnet with its own error JSON
  const r = await add(JSON.stringify(conf({ ipam: { type: 'host-local', subnet: '10.78.0.0/24', rangeStart: '10.79.0.5', dataDir } })));
  expect(r.exitCode).not.toBe(0);
  expect(typeof r.json!.code).toBe('number');
  expect(String(r.json!.msg)).toMatch(/range|subnet|10\.79/i);
  expect(hostLinks().filter((l) => l.startsWith('veth'))).toEqual([]);
});

test('ADD of an interface that already exists in the container fails; CHECK needs prevResult (code 7)', async () => {
  await container.links.add({ kind: 'bridge', name: 'eth0' });
  try {
    const r = await add(JSON.stringify(conf()));
    expectError(r, 999);
    expect(r.json!.msg).toBe('container veth name provided (eth0) already exists');
    expect(ipJson<Array<{ ifname: string; linkinfo?: { info_kind: string } }>>(container, '-d', 'link', 'show', 'eth0')[0].linkinfo?.info_kind).toBe('bridge');
    expect(hostLinks().filter((l) => l.startsWith('veth'))).toEqual([]);
  } finally {
    await container.links.delete('eth0');
  }
  const check = await invoke(host, PLUGIN, { command: 'CHECK', containerId: 'spec1', netns: container.path, ifname: 'eth0', cniPath: bin.cniPath }, JSON.stringify(conf()));
  expectError(check, 7);
});

test('netns-kit-ipam is also a standalone IPAM plugin: the reference bridge delegates to it', async () => {
  const ipamDir = path.join(dataDir, 'standalone');
  const refConf = {
    cniVersion: '1.0.0',
    name: 'standalone',
    type: 'bridge',
    bridge: 'nkref0',
    isGateway: true,
    // a key netns-kit-cni refuses as a main plugin (code 2) but Debian's bridge ignores: as an
    // IPAM plugin it is not ours to judge
    preserveDefaultVlan: false,
    ipam: { type: 'netns-kit-ipam', subnet: '10.76.0.0/24', dataDir: ipamDir },
  };
  const env = { containerId: 'sa1', netns: container.path, ifname: 'eth0', cniPath: bin.cniPath, args: 'IgnoreUnknown=1' };
  const r = await invoke(host, '/usr/lib/cni/bridge', { command: 'ADD', ...env }, JSON.stringify(refConf));
  expect(r).toEqual(expect.objectContaining({ exitCode: 0 }));
  expect(r.json!.ips).toEqual([{ address: '10.76.0.2/24', gateway: '10.76.0.1', interface: 2 }]);

  // Called directly, it answers with the abbreviated IPAM result (no interfaces).
  const direct = await invoke(host, PLUGIN, { command: 'ADD', ...env, containerId: 'sa2' }, JSON.stringify({ ...refConf, type: 'netns-kit-ipam' }));
  expect(direct.json).toEqual({ cniVersion: '1.0.0', ips: [{ address: '10.76.0.3/24', gateway: '10.76.0.1' }] });
  expect((await invoke(host, PLUGIN, { command: 'DEL', ...env, containerId: 'sa2' }, JSON.stringify({ ...refConf, type: 'netns-kit-ipam' }))).exitCode).toBe(0);
  expect((await invoke(host, '/usr/lib/cni/bridge', { command: 'DEL', ...env }, JSON.stringify(refConf))).exitCode).toBe(0);
  expect(ipJson<Array<{ ifname: string }>>(container, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
});
