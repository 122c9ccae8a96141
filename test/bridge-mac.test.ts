/**
 * A bridge netns-kit creates keeps the MAC it was created with while ports come and go (issue 17):
 * left to the kernel, a bridge takes its lowest port's MAC, so the gateway's MAC behind it changed
 * when containers came and went (measured with a real engine: ADD c2, ADD c1, DEL c2 -> new MAC).
 * Witness: `ip -j link show`, before and after every step, and the containers' own neighbour view.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { netns, topology, type Netns } from '../lib/index';
import { Sandbox, ipJson, nsName, RUN } from './support/sandbox';
import { invoke, pluginDir, PLUGIN } from './support/cni';

const sb = new Sandbox();
let bin: ReturnType<typeof pluginDir>;
let dataDir: string;
beforeAll(() => {
  bin = pluginDir();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'nk-brmac-'));
});
afterEach(() => sb.cleanup());
afterAll(() => {
  bin.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

function linkMac(ns: Netns, dev: string): string {
  const [l] = ipJson<Array<{ address: string }>>(ns, 'link', 'show', 'dev', dev);
  return l.address;
}

/**
 * A port with the lowest unicast MAC there is: a bridge that follows its ports takes this one at
 * once (the kernel picks the smallest port MAC), so the test cannot pass by luck of random MACs.
 */
async function lowPort(ns: Netns, bridge: string): Promise<void> {
  await ns.links.add({ kind: 'veth', name: 'lowmac0', mac: '00:00:00:00:00:01', master: bridge, up: true, peer: { name: 'lowmac1' } });
}

/** Locally administered, unicast: what a MAC of our choosing looks like. */
function isLocalUnicast(mac: string): boolean {
  const first = parseInt(mac.slice(0, 2), 16);
  return (first & 0x02) === 0x02 && (first & 0x01) === 0;
}

test('CNI: the bridge MAC is fixed at creation and stays while containers churn (ADD c2, ADD c1, DEL c2, ...)', async () => {
  const host = await sb.ns('brmac-host', { loopbackUp: true });
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name: `brmac${randomBytes(2).toString('hex')}`,
    type: 'netns-kit-cni',
    bridge: 'nkmac0',
    isGateway: true,
    isDefaultGateway: true,
    ipam: { type: 'netns-kit-ipam', subnet: '10.67.0.0/24', dataDir },
  });
  const containers = await Promise.all([1, 2, 3, 4].map((i) => sb.ns(`brmac-c${i}`, { loopbackUp: true })));
  const add = async (i: number) => {
    const r = await invoke(host, PLUGIN, { command: 'ADD', containerId: `c${i}`, netns: containers[i - 1].path, ifname: 'eth0', cniPath: bin.cniPath }, conf);
    expect(r.exitCode).toBe(0);
    return r.json as { interfaces: Array<{ name: string; mac: string }> };
  };
  const del = async (i: number) => {
    const r = await invoke(host, PLUGIN, { command: 'DEL', containerId: `c${i}`, netns: containers[i - 1].path, ifname: 'eth0', cniPath: bin.cniPath }, conf);
    expect(r.exitCode).toBe(0);
  };
  const first = await add(2);
  const mac = linkMac(host, 'nkmac0');
  expect(isLocalUnicast(mac)).toBe(true);
  // The result names the bridge with that MAC, and it is not the port's.
  expect(first.interfaces[0]).toEqual({ name: 'nkmac0', mac });
  expect(first.interfaces[1].mac).not.toBe(mac);
  await lowPort(host, 'nkmac0');
  expect(linkMac(host, 'nkmac0')).toBe(mac);
  // Churn: ports with lower and higher MACs come and go; the MAC never moves.
  const steps: Array<[string, number]> = [['ADD', 1], ['DEL', 2], ['ADD', 3], ['ADD', 2], ['DEL', 1], ['DEL', 3], ['ADD', 4], ['DEL', 2], ['DEL', 4]];
  for (const [cmd, i] of steps) {
    if (cmd === 'ADD') await add(i);
    else await del(i);
    expect(linkMac(host, 'nkmac0')).toBe(mac);
  }
  await host.links.delete('lowmac0');
  expect(linkMac(host, 'nkmac0')).toBe(mac);
  // A container sees the gateway at that MAC.
  await add(1);
  await containers[0].exec('ping', ['-c', '1', '-W', '5', '10.67.0.1']);
  const neigh = ipJson<Array<{ dst: string; lladdr?: string }>>(containers[0], 'neigh', 'show', 'dev', 'eth0');
  expect(neigh.find((n) => n.dst === '10.67.0.1')?.lladdr).toBe(mac);
  await del(1);
  expect(linkMac(host, 'nkmac0')).toBe(mac);
});

test('topology: a declared bridge gets a MAC of its own at creation and keeps it as ports come and go', async () => {
  const hostName = nsName('brmac-th');
  const t = {
    name: `nkt-${RUN}-brmac${randomBytes(2).toString('hex')}`,
    namespaces: [{ name: hostName, bridges: [{ name: 'br0', addresses: ['10.68.0.1/24'] }] }],
    templates: [{ count: 3, name: `${hostName}-m{i}`, uplink: { name: 'eth0', peerName: 'p{i}', netns: hostName, bridge: 'br0' } }],
  };
  try {
    await topology.up(t);
    const host = await netns.open(hostName);
    const mac = linkMac(host, 'br0');
    expect(isLocalUnicast(mac)).toBe(true);
    // A member leaves (its port goes with its namespace), a port with the lowest MAC comes and goes.
    await netns.delete(`${hostName}-m0`, { wait: true });
    expect(linkMac(host, 'br0')).toBe(mac);
    await lowPort(host, 'br0');
    expect(linkMac(host, 'br0')).toBe(mac);
    await host.links.delete('lowmac0');
    expect(linkMac(host, 'br0')).toBe(mac);
  } finally {
    await topology.down(t);
  }
});
