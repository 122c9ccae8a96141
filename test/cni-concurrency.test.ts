/**
 * 50 containers added and then deleted concurrently against one network, each ADD/DEL its own
 * plugin process as a runtime runs them: every container gets a unique address, the lease file
 * holds exactly the 50 addresses the containers really have (no lease lost or doubled), every
 * container's NAT rules carry its own tag, and after all DELs nothing is left.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandbox, ipJson } from './support/sandbox';
import { invoke, pluginDir, PLUGIN } from './support/cni';
import type { Netns } from '../lib/index';

const N = 50;
const sb = new Sandbox();
let bin: ReturnType<typeof pluginDir>;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nk-cni-many-'));
beforeAll(() => {
  bin = pluginDir();
});
afterAll(async () => {
  await sb.cleanup();
  bin.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

const conf = {
  cniVersion: '1.1.0',
  name: 'manynet',
  type: 'netns-kit-cni',
  bridge: 'nkmany0',
  isDefaultGateway: true,
  ipMasq: true,
  ipam: { type: 'netns-kit-ipam', subnet: '10.55.0.0/24', dataDir },
};

function leases(): Record<string, { containerID: string; ifname: string }> {
  try {
    return (JSON.parse(readFileSync(path.join(dataDir, 'manynet', 'leases.json'), 'utf8')) as { leases: Record<string, { containerID: string; ifname: string }> }).leases;
  } catch {
    return {};
  }
}

function natComments(host: Netns): string[] {
  const out = execFileSync('nsenter', [`--net=${host.path}`, 'nft', '-j', 'list', 'ruleset'], { encoding: 'utf8' });
  return (JSON.parse(out) as { nftables: Array<{ rule?: { comment?: string } }> }).nftables.map((i) => i.rule?.comment ?? '').filter((c) => c.includes(':cni-'));
}

test(`${N} concurrent ADDs and DELs: unique addresses, no lease lost, nothing left`, async () => {
  const host = await sb.ns('cmany-h', { loopbackUp: true });
  const containers = await Promise.all(Array.from({ length: N }, () => sb.ns('cmany-c')));
  const env = (i: number) => ({ containerId: `many${i}`, netns: containers[i].path, ifname: 'eth0', cniPath: bin.cniPath });

  const adds = await Promise.all(containers.map((_, i) => invoke(host, PLUGIN, { command: 'ADD', ...env(i) }, JSON.stringify(conf))));
  expect(adds.filter((r) => r.exitCode !== 0).map((r) => r.stdout)).toEqual([]);
  const resultAddrs = adds.map((r) => (r.json!.ips as Array<{ address: string }>)[0].address.split('/')[0]);
  expect(new Set(resultAddrs).size).toBe(N);

  // What the containers really have (ip -j), against the lease file.
  const actual = containers.map((c) => ipJson<Array<{ addr_info: Array<{ family: string; local: string }> }>>(c, 'addr', 'show', 'dev', 'eth0')[0].addr_info.find((a) => a.family === 'inet')!.local);
  expect(actual).toEqual(resultAddrs);
  const held = leases();
  expect(Object.keys(held).sort()).toEqual([...actual].sort());
  actual.forEach((a, i) => expect(held[a]).toEqual({ containerID: `many${i}`, ifname: 'eth0' }));
  // One masquerade per container, each under its own tag.
  const tags = new Set(natComments(host).map((c) => c.slice(c.lastIndexOf(':') + 1)));
  expect(tags.size).toBe(N);
  expect(ipJson<Array<{ ifname: string; master?: string }>>(host, 'link', 'show', 'master', 'nkmany0')).toHaveLength(N);
  // Neighbours reach each other over the bridge.
  await containers[0].exec('ping', ['-c1', '-W2', actual[N - 1]]);

  const dels = await Promise.all(containers.map((_, i) => invoke(host, PLUGIN, { command: 'DEL', ...env(i) }, JSON.stringify(conf))));
  expect(dels.filter((r) => r.exitCode !== 0).map((r) => r.stdout)).toEqual([]);
  expect(leases()).toEqual({});
  expect(natComments(host)).toEqual([]);
  expect(ipJson<Array<{ ifname: string }>>(host, 'link', 'show').map((l) => l.ifname).sort()).toEqual(['lo', 'nkmany0']);
  for (const c of containers) expect(ipJson<Array<{ ifname: string }>>(c, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
});
