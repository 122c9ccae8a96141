/**
 * End to end through a real container engine: Podman 4 with its CNI backend runs a container on
 * a netns-kit-cni network, publishes a port, and removes the container again. Not part of
 * `npm test` (it needs `apt-get install podman runc busybox-static` and takes a few seconds per
 * container); run it with `npm run test:podman`.
 *
 * The engine's host side stays in a sandbox namespace (nsenter --net, not `ip netns exec`, which
 * remounts /sys and hides the cgroup mounts runc needs); its storage lives in a temporary
 * directory (vfs driver, no mounts) and the image is built locally from busybox-static, since
 * no registry is reachable. See /work/shared/podman-cni.md for the settings and why.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandbox, ipJson } from '../support/sandbox';
import { PLUGIN } from '../support/cni';
import type { Netns } from '../../lib/index';

const sb = new Sandbox();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'nk-podman-'));
let host: Netns;
let outside: Netns;

function podman(...args: string[]): string {
  return execFileSync('nsenter', [`--net=${host.path}`, 'podman', '--root', path.join(tmp, 'root'), '--runroot', path.join(tmp, 'runroot'), '--storage-driver', 'vfs', ...args], {
    encoding: 'utf8',
    env: { ...process.env, CONTAINERS_CONF: path.join(tmp, 'containers.conf'), NETNS_KIT_CNI_RUN_DIR: path.join(tmp, 'run') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

beforeAll(async () => {
  // A busybox image without a registry.
  const rootfs = path.join(tmp, 'rootfs');
  mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  mkdirSync(path.join(rootfs, 'www'));
  copyFileSync('/usr/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  for (const a of ['sh', 'ip', 'ping', 'nc', 'httpd', 'printf', 'tail']) symlinkSync('busybox', path.join(rootfs, 'bin', a));
  writeFileSync(path.join(rootfs, 'www', 'index.html'), 'hello-from-podman\n');
  execFileSync('tar', ['-C', rootfs, '-cf', path.join(tmp, 'bb.tar'), '.']);

  const binDir = path.join(tmp, 'bin');
  mkdirSync(binDir);
  symlinkSync(PLUGIN, path.join(binDir, 'netns-kit-cni'));
  mkdirSync(path.join(tmp, 'net.d'));
  writeFileSync(
    path.join(tmp, 'containers.conf'),
    [
      '[containers]',
      'default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]',
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'runtime = "runc"',
      'events_logger = "file"',
      '[network]',
      'network_backend = "cni"',
      `cni_plugin_dirs = ["${binDir}", "/usr/lib/cni"]`,
      `network_config_dir = "${path.join(tmp, 'net.d')}"`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(tmp, 'net.d', 'nkpod.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'nkpod',
      plugins: [
        {
          type: 'netns-kit-cni',
          bridge: 'nkpod0',
          isGateway: true,
          isDefaultGateway: true,
          ipMasq: true,
          hairpinMode: true,
          capabilities: { portMappings: true },
          ipam: { type: 'netns-kit-ipam', ranges: [[{ subnet: '10.89.3.0/24' }]], dataDir: path.join(tmp, 'ipam') },
        },
      ],
    }),
  );

  host = await sb.ns('pod-h', { loopbackUp: true });
  outside = await sb.ns('pod-o', { loopbackUp: true });
  await host.links.add({ kind: 'veth', name: 'up0', up: true, peer: { name: 'down0', netns: outside, up: true } });
  await host.addresses.add('up0', '203.0.113.1/24');
  await outside.addresses.add('down0', '203.0.113.2/24');
  podman('import', path.join(tmp, 'bb.tar'), 'localhost/nkbb:1');
});

afterAll(async () => {
  try {
    podman('rm', '-f', '-t', '0', '--all');
    podman('rmi', '-a', '-f');
  } catch {
    // best effort: the namespaces and the storage directory go anyway
  }
  await sb.cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

function leases(): Record<string, unknown> {
  return (JSON.parse(readFileSync(path.join(tmp, 'ipam', 'nkpod', 'leases.json'), 'utf8')) as { leases: Record<string, unknown> }).leases;
}

test('podman run on a netns-kit-cni network: address, gateway, published port, hairpin; podman rm cleans up', async () => {
  const id = podman('run', '-d', '--name', 'nkweb', '--network', 'nkpod', '-p', '8080:80', 'localhost/nkbb:1', 'httpd', '-f', '-p', '80', '-h', '/www').trim();
  expect(id).toMatch(/^[0-9a-f]{64}$/);
  expect(leases()).toEqual({ '10.89.3.2': { containerID: id, ifname: 'eth0' } });
  expect(podman('exec', 'nkweb', 'ip', '-4', 'addr', 'show', 'eth0')).toContain('10.89.3.2/24');
  expect(podman('exec', 'nkweb', 'ip', 'route')).toContain('default via 10.89.3.1 dev eth0');
  podman('exec', 'nkweb', 'ping', '-c1', '-W2', '10.89.3.1');
  // The bridge and the NAT rules are in the sandbox host namespace only.
  expect(ipJson<Array<{ ifname: string }>>(host, 'link', 'show', 'master', 'nkpod0')).toHaveLength(1);

  // Published port from the outside namespace, and hairpin from the container to the host address.
  const fromOutside = await outside.exec('socat', ['-T5', '-t4', '-', 'TCP:203.0.113.1:8080,connect-timeout=3'], { input: 'GET / HTTP/1.0\r\n\r\n' });
  expect(fromOutside.stdout).toContain('hello-from-podman');
  expect(podman('exec', 'nkweb', 'sh', '-c', "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 203.0.113.1 8080")).toContain('hello-from-podman');

  podman('rm', '-f', '-t', '0', 'nkweb');
  expect(leases()).toEqual({});
  expect(ipJson<Array<{ ifname: string }>>(host, 'link', 'show').map((l) => l.ifname).sort()).toEqual(['lo', 'nkpod0', 'up0']);
  const rules = execFileSync('nsenter', [`--net=${host.path}`, 'nft', 'list', 'ruleset'], { encoding: 'utf8' });
  expect(rules).not.toContain(':cni-');
  const outsideAfter = await outside.exec('socat', ['-T2', '-', 'TCP:203.0.113.1:8080,connect-timeout=2'], { check: false });
  expect(outsideAfter.stdout).toBe('');
});
