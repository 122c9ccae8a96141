/**
 * Side by side with Debian's reference plugins (containernetworking-plugins: bridge + host-local +
 * portmap) on the same configuration, each in its own sandbox "host" namespace with a container
 * and an "outside" namespace: the container ends up with the same addresses and routes, reaches
 * the same places, and the port mapping answers from outside (and by hairpin from the container
 * itself) in the same way. Only `type` differs between the two configurations (our plugin takes
 * the portMappings capability itself, where the reference chains `portmap`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Sandbox, ipJson } from './support/sandbox';
import { pluginDir, Runtime, type ConfList } from './support/cni';
import type { Netns } from '../lib/index';

const sb = new Sandbox();
let bin: ReturnType<typeof pluginDir>;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'nk-cni-ref-'));
const servers: ChildProcess[] = [];
beforeAll(() => {
  bin = pluginDir();
});
afterEach(async () => {
  for (const s of servers.splice(0)) s.kill('SIGKILL');
  await sb.cleanup();
});
afterAll(() => {
  bin.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

const SUBNET = '10.88.7.0/24';
const HOST_OUT = '203.0.113.1';
const OUTSIDE = '203.0.113.2';

function bridgeKeys(side: string): Record<string, unknown> {
  return {
    bridge: 'cmp0',
    isGateway: true,
    isDefaultGateway: true,
    ipMasq: true,
    hairpinMode: true,
    ipam: { type: 'host-local', ranges: [[{ subnet: SUBNET }]], dataDir: path.join(dataDir, side) },
  };
}

const reference: ConfList = {
  cniVersion: '1.0.0',
  name: 'cmpnet',
  plugins: [{ type: 'bridge', ...bridgeKeys('ref') }, { type: 'portmap', capabilities: { portMappings: true }, snat: true }],
};
const ours: ConfList = {
  cniVersion: '1.0.0',
  name: 'cmpnet',
  plugins: [{ type: 'netns-kit-cni', capabilities: { portMappings: true }, ...bridgeKeys('ours') }],
};

interface Side {
  host: Netns;
  container: Netns;
  outside: Netns;
  runtime: Runtime;
}

async function side(tag: string): Promise<Side> {
  const host = await sb.ns(`${tag}-h`, { loopbackUp: true });
  const container = await sb.ns(`${tag}-c`, { loopbackUp: true });
  const outside = await sb.ns(`${tag}-o`, { loopbackUp: true });
  await host.links.add({ kind: 'veth', name: 'up0', up: true, peer: { name: 'down0', netns: outside, up: true } });
  await host.addresses.add('up0', `${HOST_OUT}/24`);
  await outside.addresses.add('down0', `${OUTSIDE}/24`);
  return { host, container, outside, runtime: new Runtime(host, bin.cniPath) };
}

const portMappings = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }];

/** The container's view: global addresses of eth0 and its routes, as `ip -j` reports them. */
function view(c: Netns) {
  const addrs = ipJson<Array<{ addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string }> }>>(c, 'addr', 'show', 'dev', 'eth0')[0]
    .addr_info.filter((a) => a.scope === 'global')
    .map((a) => `${a.local}/${a.prefixlen}`)
    .sort();
  const routes = ipJson<Array<{ dst: string; gateway?: string; dev: string; scope?: string }>>(c, '-4', 'route', 'show')
    .map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev} scope ${r.scope ?? 'global'}`)
    .sort();
  return { addrs, routes };
}

/** A TCP server in the container answering every connection with one line. */
async function serve(c: Netns, text: string): Promise<void> {
  const s = c.spawn('socat', ['TCP-LISTEN:80,reuseaddr,fork', `SYSTEM:echo ${text}`], { stdio: 'ignore' });
  servers.push(s);
  for (let i = 0; i < 100; i++) {
    const out = await c.exec('ss', ['-ltnH', 'sport = :80']);
    if (out.stdout.includes(':80')) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('server did not start');
}

/** A TCP client: what the server at address:port answers, or '' when nothing does. */
async function ask(ns: Netns, address: string, port: number): Promise<string> {
  const r = await ns.exec('socat', ['-T5', '-t4', '-', `TCP:${address}:${port},connect-timeout=3`], { check: false });
  return r.stdout.trim();
}

async function pings(ns: Netns, address: string): Promise<boolean> {
  return (await ns.exec('ping', ['-c1', '-W2', address], { check: false })).exitCode === 0;
}

async function behaviour(s: Side, text: string) {
  await serve(s.container, text);
  return {
    view: view(s.container),
    containerToGateway: await pings(s.container, '10.88.7.1'),
    hostToContainer: await pings(s.host, '10.88.7.2'),
    // through ipMasq: the outside namespace has no route back to the container subnet
    containerToOutside: await pings(s.container, OUTSIDE),
    outsideToMappedPort: await ask(s.outside, HOST_OUT, 8080),
    hostToMappedPort: await ask(s.host, HOST_OUT, 8080),
    hairpinToMappedPort: await ask(s.container, HOST_OUT, 8080),
    unmappedPort: await ask(s.outside, HOST_OUT, 8081),
  };
}

test('same addresses, routes, reachability and port mappings as bridge + host-local + portmap', async () => {
  const ref = await side('cref');
  const our = await side('cour');
  const attach = (s: Side) => ({ containerId: 'cmp1', netns: s.container.path, ifname: 'eth0', capabilities: { portMappings } });

  const refResult = await ref.runtime.add(reference, attach(ref));
  const ourResult = await our.runtime.add(ours, attach(our));
  // The Result: same IP configuration and routes; interfaces named the same way in the container.
  expect(ourResult.ips).toEqual(refResult.ips);
  expect(ourResult.routes).toEqual(refResult.routes);
  expect((ourResult.interfaces as Array<{ name: string }>).map((i) => i.name.replace(/^veth.*/, 'veth*'))).toEqual(
    (refResult.interfaces as Array<{ name: string }>).map((i) => i.name.replace(/^veth.*/, 'veth*')),
  );

  const refSeen = await behaviour(ref, 'hello');
  const ourSeen = await behaviour(our, 'hello');
  expect(ourSeen).toEqual(refSeen);
  // ... and what both saw is the working network, not two identical failures.
  expect(ourSeen).toEqual({
    view: {
      addrs: ['10.88.7.2/24'],
      routes: ['10.88.7.0/24 via - dev eth0 scope link', 'default via 10.88.7.1 dev eth0 scope global'],
    },
    containerToGateway: true,
    hostToContainer: true,
    containerToOutside: true,
    outsideToMappedPort: 'hello',
    hostToMappedPort: 'hello',
    hairpinToMappedPort: 'hello',
    unmappedPort: '',
  });

  // CHECK passes on both (Debian's portmap 1.1.1 fails its own CHECK on an IPv4-only network,
  // "could not check ipv6 dnat: chain CNI-DN-... not found", so the reference side checks `bridge`).
  const refCheck = await ref.runtime.check({ ...reference, plugins: [reference.plugins[0]] }, attach(ref), refResult);
  expect(refCheck).toEqual(expect.objectContaining({ exitCode: 0 }));
  expect((await our.runtime.check(ours, attach(our), ourResult)).exitCode).toBe(0);
  await ref.runtime.del(reference, attach(ref), refResult);
  await our.runtime.del(ours, attach(our), ourResult);
  for (const s of [ref, our]) {
    expect(ipJson<Array<{ ifname: string }>>(s.container, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
    expect(ipJson<Array<{ ifname: string }>>(s.host, 'link', 'show').map((l) => l.ifname).sort()).toEqual(['cmp0', 'lo', 'up0']);
    expect(await ask(s.outside, HOST_OUT, 8080)).toBe('');
  }
});

test('the built-in allocator hands out what host-local does for the same range', async () => {
  const ref = await side('aref');
  const our = await side('aour');
  const builtin: ConfList = {
    ...ours,
    plugins: [{ ...ours.plugins[0], ipam: { type: 'netns-kit-ipam', ranges: [[{ subnet: SUBNET, rangeStart: '10.88.7.20', rangeEnd: '10.88.7.30' }]], dataDir: path.join(dataDir, 'builtin') } }],
  };
  const refList: ConfList = {
    ...reference,
    plugins: [{ ...reference.plugins[0], ipam: { type: 'host-local', ranges: [[{ subnet: SUBNET, rangeStart: '10.88.7.20', rangeEnd: '10.88.7.30' }]], dataDir: path.join(dataDir, 'ref2') } }],
  };
  const results = [];
  for (const id of ['al1', 'al2']) {
    const extra = await Promise.all([sb.ns('aref-c'), sb.ns('aour-c')]);
    const r = await ref.runtime.add(refList, { containerId: id, netns: extra[0].path, ifname: 'eth0' });
    const o = await our.runtime.add(builtin, { containerId: id, netns: extra[1].path, ifname: 'eth0' });
    results.push([r.ips, o.ips]);
    expect(view(extra[1])).toEqual(view(extra[0]));
  }
  for (const [r, o] of results) expect(o).toEqual(r);
  expect(results.map(([, o]) => (o as Array<{ address: string }>)[0].address)).toEqual(['10.88.7.20/24', '10.88.7.21/24']);
});
