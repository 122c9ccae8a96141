/**
 * The built-in allocator's rules without the kernel: host-local's configuration and order,
 * exhaustion, wrap-around, duplicate allocation, GC, and the result layout per spec version.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as allocator from '../lib/cni/allocator';
import { CniError, decodeResult, encodeResult, parseArgs } from '../lib/cni/spec';

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nk-cni-alloc-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function conf(ipam: Record<string, unknown>) {
  return allocator.parseAllocatorConf({ type: 'netns-kit-ipam', dataDir, ...ipam });
}

async function codeOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(CniError);
    return (e as CniError).code;
  }
}

test('a /29 hands out .2-.6 (gateway .1 and broadcast skipped), then reports exhaustion; release makes room, round robin continues', async () => {
  const c = conf({ subnet: '192.0.2.0/29' });
  const got: string[] = [];
  for (let i = 0; i < 5; i++) got.push((await allocator.allocate(c, 'n29', `c${i}`, 'eth0')).ips![0].address);
  expect(got).toEqual(['192.0.2.2/29', '192.0.2.3/29', '192.0.2.4/29', '192.0.2.5/29', '192.0.2.6/29']);
  await expect(allocator.allocate(c, 'n29', 'c5', 'eth0')).rejects.toThrow(/no IP addresses available/);
  expect(await allocator.release(c, 'n29', 'c1', 'eth0')).toBe(1);
  expect(await allocator.release(c, 'n29', 'c1', 'eth0')).toBe(0); // idempotent
  expect((await allocator.allocate(c, 'n29', 'c6', 'eth0')).ips![0].address).toBe('192.0.2.3/29'); // wrapped around
  expect(await codeOf(allocator.allocate(c, 'n29', 'c6', 'eth0'))).toBe(999); // duplicate allocation
  expect(readdirSync(path.join(dataDir, 'n29')).sort()).toEqual(['leases.json', 'lock']); // no temporary file left
});

test('concurrent allocations in one process never share an address; GC keeps only valid attachments', async () => {
  const c = conf({ ranges: [[{ subnet: '198.51.100.0/24', rangeStart: '198.51.100.100', rangeEnd: '198.51.100.140', gateway: '198.51.100.254' }]] });
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => allocator.allocate(c, 'conc', `k${i}`, 'eth0')));
  const addrs = results.map((r) => r.ips![0].address);
  expect(new Set(addrs).size).toBe(30);
  expect(results[0].ips![0].gateway).toBe('198.51.100.254');
  const gone = await allocator.collect(c, 'conc', [{ containerID: 'k3', ifname: 'eth0' }]);
  expect(gone).toHaveLength(29);
  expect(Object.values(await allocator.leases(c, 'conc'))).toEqual([{ containerID: 'k3', ifname: 'eth0' }]);
});

test('invalid ipam configuration is code 7 before any file is touched', () => {
  for (const bad of [{}, { subnet: '10.0.0.0' }, { subnet: '10.0.0.0/31' }, { subnet: '10.0.0.0/24', rangeStart: '10.0.1.1' }, { subnet: '10.0.0.0/24', gateway: 'x' }, { subnet: '10.0.0.0/24', dataDir: 'relative' }, { ranges: [] }]) {
    let code: number | undefined;
    try {
      allocator.parseAllocatorConf({ type: 'netns-kit-ipam', ...bad } as never);
    } catch (e) {
      code = (e as CniError).code;
    }
    expect({ bad, code }).toEqual({ bad, code: 7 });
  }
});

test('results per spec version; CNI_ARGS pairs', () => {
  const r = decodeResult({ cniVersion: '0.4.0', ips: [{ version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 2 }], dns: {} }, 'r');
  expect(encodeResult(r, '1.0.0')).toEqual({ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 2 }] });
  expect(encodeResult(r, '0.4.0')).toEqual({ cniVersion: '0.4.0', ips: [{ version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 2 }], dns: {} });
  expect(encodeResult({ cniVersion: '', interfaces: [{ name: 'eth0', mtu: 1400 }] }, '1.1.0').interfaces).toEqual([{ name: 'eth0', mtu: 1400 }]);
  expect(encodeResult({ cniVersion: '', interfaces: [{ name: 'eth0', mtu: 1400 }] }, '1.0.0').interfaces).toEqual([{ name: 'eth0' }]);
  expect(parseArgs('IgnoreUnknown=1;K8S_POD_NAME=web;EMPTY=')).toEqual({ IgnoreUnknown: '1', K8S_POD_NAME: 'web', EMPTY: '' });
});
