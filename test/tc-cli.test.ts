// `netns-kit shape` and the shape/counter columns of `netns-kit status`, run as a user runs them,
// with `tc -j` as the witness.
import { execFileSync } from 'node:child_process';
import type { Netns } from '../lib/netns';
import { cli } from './support/cli';
import { Sandbox, witnessEnv } from './support/sandbox';

const sb = new Sandbox();
let a: Netns;
afterAll(() => sb.cleanup());
beforeAll(async () => {
  a = await sb.ns('tccli', { ipv6: false });
  const b = await sb.ns('tccli', { ipv6: false });
  await a.links.add({ kind: 'veth', name: 'eth0', up: true, peer: { name: 'eth0', netns: b, up: true } });
  await a.addresses.add('eth0', '10.78.0.1/24');
  await b.addresses.add('eth0', '10.78.0.2/24');
});

const tcQdiscs = (ns: Netns, dev: string) =>
  JSON.parse(execFileSync('tc', ['-j', '-n', ns.name!, 'qdisc', 'show', 'dev', dev], { encoding: 'utf8', env: witnessEnv })) as Array<{ kind: string; handle: string; options?: Record<string, number> }>;

test('shape NS DEV --rate, --ingress-rate, show, --json, --clear', async () => {
  const r = await cli(['shape', a.name!, 'eth0', '--rate', '10mbit', '--burst', '16kb', '--ingress-rate', '4mbit']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('rate 10mbit | in: rate 4mbit');
  expect(tcQdiscs(a, 'eth0')[0]).toMatchObject({ kind: 'tbf', handle: '1:', options: { rate: 1_250_000 } });

  const shown = await cli(['shape', a.name!, 'eth0', '--json']);
  const got = JSON.parse(shown.stdout) as { burst: number };
  expect(got).toMatchObject({ rate: 10_000_000, ingress: { rate: 4_000_000 } });
  // The kernel keeps the bucket as a time (tc rounds the same way: `burst 16k` reads back as 16383b).
  expect(Math.abs(got.burst - 16384)).toBeLessThanOrEqual(8);

  await a.exec('ping', ['-c', '2', '-i', '0.2', '10.78.0.2']);
  const st = await cli(['status', '--match', a.name!]);
  expect(st.code).toBe(0);
  const row = st.stdout.split('\n').find((l) => l.startsWith(a.name!) && l.includes(' eth0 '))!;
  expect(row).toMatch(/\d+ B\/\d+ pkt/);
  expect(row).toContain('rate 10mbit | in: rate 4mbit');
  const json = JSON.parse((await cli(['status', '--match', a.name!, '--json'])).stdout) as { namespaces: Array<{ shapes: Record<string, unknown>; links: Array<{ name: string; stats: { txPackets: number } }> }> };
  expect(json.namespaces[0].shapes.eth0).toMatchObject({ rate: 10_000_000, ingress: { rate: 4_000_000 } });
  expect(json.namespaces[0].links.find((l) => l.name === 'eth0')!.stats.txPackets).toBeGreaterThanOrEqual(2);

  const cleared = await cli(['shape', a.name!, 'eth0', '--clear']);
  expect(cleared.code).toBe(0);
  expect(cleared.stdout).toMatch(/eth0\s+-\n/);
  expect(tcQdiscs(a, 'eth0').map((q) => q.kind)).toEqual(['noqueue']);
});

test('bad values and usage errors: nothing changes', async () => {
  const bad = await cli(['shape', a.name!, 'eth0', '--rate', '10 megabananas']);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toContain('rate');
  const loss = await cli(['shape', a.name!, 'eth0', '--loss', '150']);
  expect(loss.code).not.toBe(0);
  const usage = await cli(['shape', a.name!, 'eth0', '--rate', '1mbit', '--clear']);
  expect(usage.code).toBe(2);
  expect((await cli(['shape', a.name!])).code).toBe(2);
  expect(tcQdiscs(a, 'eth0').map((q) => q.kind)).toEqual(['noqueue']);
});
