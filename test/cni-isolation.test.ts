/**
 * The plugin's isolation keys through the executable: `portIsolation` (isolated bridge ports) and
 * `ingressPolicy: "same-bridge"` (no forwarding between the bridges of isolated networks).
 * Witnesses: `ip -j -d link`, `nft -j`, ping.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandbox, ipJson } from './support/sandbox';
import { invoke, pluginDir, PLUGIN, type Invocation } from './support/cni';
import { nftTable } from './support/nat-lab';
import type { Netns } from '../lib/index';

const sb = new Sandbox();
let bin: ReturnType<typeof pluginDir>;
let dataDir: string;
afterEach(() => sb.cleanup());
beforeAll(() => {
  bin = pluginDir();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'nk-cni-iso-'));
});
afterAll(() => {
  bin.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

type Json = Record<string, unknown>;

function network(name: string, bridge: string, subnet: string, extra: Json = {}): Json {
  return { cniVersion: '1.0.0', name, type: 'netns-kit-cni', bridge, isGateway: true, isDefaultGateway: true, ipam: { type: 'netns-kit-ipam', subnet, dataDir }, ...extra };
}

async function run(host: Netns, command: string, c: Netns, conf: Json, containerId: string): Promise<Json> {
  const inv: Invocation = { command, containerId, ifname: 'eth0', cniPath: bin.cniPath, netns: c.path };
  const r = await invoke(host, PLUGIN, inv, JSON.stringify(conf));
  expect({ code: r.exitCode, out: r.stdout }).toEqual({ code: 0, out: expect.anything() });
  return r.json ?? {};
}

const ping = async (from: Netns, to: string) => (await from.exec('ping', ['-c1', '-W1', to], { check: false })).exitCode === 0;

test('portIsolation: the host veth is an isolated bridge port; containers reach the gateway, not each other', async () => {
  const host = await sb.ns('ciso-h', { loopbackUp: true });
  const [c1, c2, c3] = await Promise.all([sb.ns('ciso-1'), sb.ns('ciso-2'), sb.ns('ciso-3')]);
  const iso = network('isolated', 'nkbri', '10.71.0.0/24', { portIsolation: true, hairpinMode: true });
  const r1 = await run(host, 'ADD', c1, iso, 'c1');
  await run(host, 'ADD', c2, iso, 'c2');
  // Another network on the same bridge without the key: its port is not isolated.
  await run(host, 'ADD', c3, network('open', 'nkbri', '10.71.0.0/24', { ipam: { type: 'netns-kit-ipam', subnet: '10.71.0.0/24', dataDir, rangeStart: '10.71.0.100' } }), 'c3');
  const hostVeth = (r1.interfaces as Array<{ name: string }>)[1].name;
  const info = ipJson<Array<{ linkinfo: { info_slave_data: { isolated: boolean; hairpin: boolean } } }>>(host, '-d', 'link', 'show', 'dev', hostVeth)[0].linkinfo.info_slave_data;
  expect(info).toMatchObject({ isolated: true, hairpin: true });
  expect(await ping(c1, '10.71.0.1')).toBe(true);
  expect(await ping(c1, '10.71.0.3')).toBe(false); // c2: isolated too
  expect(await ping(c1, '10.71.0.100')).toBe(true); // c3: not isolated
  const check = await invoke(host, PLUGIN, { command: 'CHECK', containerId: 'c1', ifname: 'eth0', cniPath: bin.cniPath, netns: c1.path }, JSON.stringify({ ...iso, prevResult: r1 }));
  expect(check.exitCode).toBe(0);
});

test('ingressPolicy same-bridge: no forwarding between isolated networks; each reaches its gateway; bad value is code 7', async () => {
  const host = await sb.ns('cing-h', { loopbackUp: true });
  const [a, b, o] = await Promise.all([sb.ns('cing-a'), sb.ns('cing-b'), sb.ns('cing-o')]);
  const netA = network('neta', 'nkbra', '10.72.0.0/24', { ingressPolicy: 'same-bridge' });
  const netB = network('netb', 'nkbrb', '10.73.0.0/24', { ingressPolicy: 'same-bridge' });
  const netO = network('neto', 'nkbro', '10.74.0.0/24');
  const ra = await run(host, 'ADD', a, netA, 'a');
  // Before the second isolated network exists, routing works as usual.
  await run(host, 'ADD', o, netO, 'o');
  expect(await ping(a, '10.74.0.2')).toBe(true);
  await run(host, 'ADD', b, netB, 'b');
  expect(await ping(a, '10.73.0.2')).toBe(false);
  expect(await ping(b, '10.72.0.2')).toBe(false);
  expect(await ping(a, '10.72.0.1')).toBe(true);
  expect(await ping(b, '10.73.0.1')).toBe(true);
  // A network that does not ask for isolation is not cut off (as the reference plugin's same-bridge).
  expect(await ping(a, '10.74.0.2')).toBe(true);
  const table = JSON.parse(await nftTable(host, 'netns_kit_cni_fw')).nftables as Array<{ rule?: { comment?: string } }>;
  expect(table.filter((x) => x.rule?.comment?.endsWith(':cni-isolation'))).toHaveLength(4); // 2 marks + 2 drops
  // br_netfilter on the runtime's namespace is left as it was.
  const check = await invoke(host, PLUGIN, { command: 'CHECK', containerId: 'a', ifname: 'eth0', cniPath: bin.cniPath, netns: a.path }, JSON.stringify({ ...netA, prevResult: ra }));
  expect(check.exitCode).toBe(0);
  // ADD of another container on an isolated network changes nothing (idempotent).
  const before = await nftTable(host, 'netns_kit_cni_fw');
  const a2 = await sb.ns('cing-a2');
  await run(host, 'ADD', a2, netA, 'a2');
  expect(await nftTable(host, 'netns_kit_cni_fw')).toBe(before);

  const bad = await invoke(host, PLUGIN, { command: 'ADD', containerId: 'x', ifname: 'eth0', cniPath: bin.cniPath, netns: a2.path }, JSON.stringify({ ...netA, ingressPolicy: 'closed' }));
  expect(bad.exitCode).not.toBe(0);
  expect(bad.json).toMatchObject({ code: 7, msg: expect.stringContaining('ingressPolicy') });
});
