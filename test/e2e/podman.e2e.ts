/**
 * End to end through a real container engine: Podman 4 with its CNI backend runs a container on
 * a netns-kit-cni network, publishes a port, and removes the container again. Not part of
 * `npm test` (it needs `apt-get install podman runc busybox-static` and takes a few seconds per
 * container); run it with `npm run test:podman`.
 *
 * The scenario runs twice, each time with its own engine, storage and namespaces:
 *   - standalone: the plugin directory links netns-kit-cni to the Node plugin (dist/bin), which
 *     Podman starts for every call;
 *   - resident: it links the native client (build/Release/netns-kit-cni) instead, and a resident
 *     helper (`netns-kit-cni --serve`) listens on the run directory Podman's plugin calls use; the
 *     helper's log must show it served the container's ADD and DEL, and declined nothing.
 * The helper runs in a sandbox namespace of its own, neither the machine's nor Podman's: it serves
 * calls in the caller's namespace, so a step acting on its own namespace instead shows up here as
 * a failure (and never touches the machine's network).
 *
 * The engine's host side stays in a sandbox namespace (nsenter --net, not `ip netns exec`, which
 * remounts /sys and hides the cgroup mounts runc needs); its storage lives in a temporary
 * directory (vfs driver, no mounts) and the image is built locally from busybox-static, since
 * no registry is reachable. See /work/shared/podman-cni.md for the settings and why.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandbox, ipJson } from '../support/sandbox';
import { CLIENT, PLUGIN, startHelper, type Helper } from '../support/cni';
import type { Netns } from '../../lib/index';

type Mode = 'standalone' | 'resident';

/** One mode's engine: its own temporary directory, namespaces, image store and (resident) helper. */
class PodmanWorld {
  readonly sb = new Sandbox();
  /** made in setUp: a mode a test filter skips makes nothing */
  tmp = '';
  host!: Netns;
  outside!: Netns;
  helper?: Helper;

  constructor(readonly mode: Mode) {}

  /** the plugins' run directory: the helper's socket, the NAT lock */
  get runDir(): string {
    return path.join(this.tmp, 'run');
  }

  podman(...args: string[]): string {
    return execFileSync('nsenter', [`--net=${this.host.path}`, 'podman', '--root', path.join(this.tmp, 'root'), '--runroot', path.join(this.tmp, 'runroot'), '--storage-driver', 'vfs', ...args], {
      encoding: 'utf8',
      env: { ...process.env, CONTAINERS_CONF: path.join(this.tmp, 'containers.conf') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  leases(): Record<string, unknown> {
    return (JSON.parse(readFileSync(path.join(this.tmp, 'ipam', 'nkpod', 'leases.json'), 'utf8')) as { leases: Record<string, unknown> }).leases;
  }

  async setUp(): Promise<void> {
    const tmp = (this.tmp = mkdtempSync(path.join(os.tmpdir(), 'nk-podman-')));
    // A busybox image without a registry.
    const rootfs = path.join(tmp, 'rootfs');
    mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
    mkdirSync(path.join(rootfs, 'www'));
    copyFileSync('/usr/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
    for (const a of ['sh', 'ip', 'ping', 'nc', 'httpd', 'printf', 'tail']) symlinkSync('busybox', path.join(rootfs, 'bin', a));
    writeFileSync(path.join(rootfs, 'www', 'index.html'), 'hello-from-podman\n');
    execFileSync('tar', ['-C', rootfs, '-cf', path.join(tmp, 'bb.tar'), '.']);

    // The plugin Podman runs: the Node plugin itself, or the native client that hands calls to the helper.
    const target = this.mode === 'resident' ? CLIENT : PLUGIN;
    if (!existsSync(target)) throw new Error(`${target} is missing: build it first (npm run build; node-gyp build for the native client)`);
    const binDir = path.join(tmp, 'bin');
    mkdirSync(binDir);
    symlinkSync(target, path.join(binDir, 'netns-kit-cni'));
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
        // Podman's per-boot state (events log, exit files) stays in the temporary directory too.
        `tmp_dir = "${path.join(tmp, 'libpod')}"`,
        // Every Podman process gets the run directory from here, including the `podman container
        // cleanup` conmon starts when the container exits: conmon passes CONTAINERS_CONF on but not
        // the rest of the environment, and that process may be the one that runs DEL.
        `env = ["NETNS_KIT_CNI_RUN_DIR=${this.runDir}"]`,
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

    this.host = await this.sb.ns('pod-h', { loopbackUp: true });
    this.outside = await this.sb.ns('pod-o', { loopbackUp: true });
    await this.host.links.add({ kind: 'veth', name: 'up0', up: true, peer: { name: 'down0', netns: this.outside, up: true } });
    await this.host.addresses.add('up0', '203.0.113.1/24');
    await this.outside.addresses.add('down0', '203.0.113.2/24');
    if (this.mode === 'resident') this.helper = await startHelper(this.runDir, { inNetns: (await this.sb.ns('pod-r')).path });
    this.podman('import', path.join(tmp, 'bb.tar'), 'localhost/nkbb:1');
  }

  /** Whatever happened: no container, no helper, no namespace, no directory is left. */
  async tearDown(): Promise<void> {
    try {
      if (this.host) {
        this.podman('rm', '-f', '-t', '0', '--all');
        this.podman('rmi', '-a', '-f');
      }
    } catch {
      // best effort: the namespaces and the storage directory go anyway
    }
    try {
      await this.helper?.stop();
    } finally {
      await this.sb.cleanup();
      if (this.tmp) rmSync(this.tmp, { recursive: true, force: true });
    }
  }
}

/** The scenario both modes run; returns the container's ID. */
async function runScenario(w: PodmanWorld): Promise<string> {
  const { host, outside } = w;
  const id = w.podman('run', '-d', '--name', 'nkweb', '--network', 'nkpod', '-p', '8080:80', 'localhost/nkbb:1', 'httpd', '-f', '-p', '80', '-h', '/www').trim();
  expect(id).toMatch(/^[0-9a-f]{64}$/);
  expect(w.leases()).toEqual({ '10.89.3.2': { containerID: id, ifname: 'eth0' } });
  expect(w.podman('exec', 'nkweb', 'ip', '-4', 'addr', 'show', 'eth0')).toContain('10.89.3.2/24');
  expect(w.podman('exec', 'nkweb', 'ip', 'route')).toContain('default via 10.89.3.1 dev eth0');
  w.podman('exec', 'nkweb', 'ping', '-c1', '-W2', '10.89.3.1');
  // The bridge and the NAT rules are in the sandbox host namespace only.
  expect(ipJson<Array<{ ifname: string }>>(host, 'link', 'show', 'master', 'nkpod0')).toHaveLength(1);

  // Published port from the outside namespace, and hairpin from the container to the host address.
  const fromOutside = await outside.exec('socat', ['-T5', '-t4', '-', 'TCP:203.0.113.1:8080,connect-timeout=3'], { input: 'GET / HTTP/1.0\r\n\r\n' });
  expect(fromOutside.stdout).toContain('hello-from-podman');
  expect(w.podman('exec', 'nkweb', 'sh', '-c', "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc 203.0.113.1 8080")).toContain('hello-from-podman');

  w.podman('rm', '-f', '-t', '0', 'nkweb');
  expect(w.leases()).toEqual({});
  expect(ipJson<Array<{ ifname: string }>>(host, 'link', 'show').map((l) => l.ifname).sort()).toEqual(['lo', 'nkpod0', 'up0']);
  const rules = execFileSync('nsenter', [`--net=${host.path}`, 'nft', 'list', 'ruleset'], { encoding: 'utf8' });
  expect(rules).not.toContain(':cni-');
  const outsideAfter = await outside.exec('socat', ['-T2', '-', 'TCP:203.0.113.1:8080,connect-timeout=2'], { check: false });
  expect(outsideAfter.stdout).toBe('');
  return id;
}

describe.each<Mode>(['standalone', 'resident'])('%s plugin', (mode) => {
  const w = new PodmanWorld(mode);

  beforeAll(() => w.setUp());
  afterAll(() => w.tearDown());

  test('podman run on a netns-kit-cni network: address, gateway, published port, hairpin; podman rm cleans up', async () => {
    const id = await runScenario(w);
    if (mode !== 'resident') return;

    // SIGTERM stops the helper cleanly and takes the socket away.
    const helper = w.helper!;
    expect(existsSync(helper.socket)).toBe(true);
    expect(await helper.stop()).toBe(0);
    expect(existsSync(helper.socket)).toBe(false);
    const log = helper.log();
    const served = log.filter((l) => /^netns-kit-cni: served /.test(l));
    const declined = log.filter((l) => /^netns-kit-cni: declined /.test(l));
    expect(helper.stdout()).toContain(`stopped after ${served.length} calls served, ${declined.length} declined`);

    // Podman's calls went to the helper: it served the container's ADD and DEL, and declined
    // nothing (a declined call still works, the client runs Node itself: only the log tells).
    // Podman also asks VERSION before each ADD and DEL, with libcni's placeholder CNI_NETNS=dummy.
    expect(served).toContainEqual(expect.stringMatching(new RegExp(`^netns-kit-cni: served ADD ${id} as netns-kit-cni for pid \\d+: exit 0, `)));
    expect(served).toContainEqual(expect.stringMatching(new RegExp(`^netns-kit-cni: served DEL ${id} as netns-kit-cni for pid \\d+: exit 0, `)));
    expect(declined).toEqual([]);
  });
});
