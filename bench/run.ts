/**
 * `npm run bench`: netns-kit against `ip` (once per operation), `ip -batch`, pyroute2 (NetNS and
 * pushns+IPRoute styles) and a hand-written C program over libnl, on issue 4's scenario:
 * N namespaces, each with a veth into a shared bridge of a namespace playing the host, an address,
 * lo and eth0 up, a default route; then teardown, timed until the kernel has finished.
 *
 * Everything happens inside throwaway namespaces (names nkb<run id>...): the machine's own network
 * is never touched, and everything is removed at the end, on failure and on Ctrl-C too.
 *
 * Configuration (environment or NAME=value arguments):
 *   BENCH_N=100,1000      namespace counts
 *   BENCH_RUNS=5          runs per peer and setting, alternating between peers
 *   BENCH_SYSCTLS=default,ipv6off
 *   BENCH_PEERS=kit-bulk,kit-topology,kit-perop,kit-perop8,c-libnl,ip,ip-batch,pyroute2-netns,pyroute2-pushns
 *   BENCH_CNI_RUNS=10     CNI ADD and DEL: netns-kit-cni's native client served by the resident
 *                         helper, the same client standalone (it starts Node), and the reference
 *                         bridge plugin, order rotated each run (0: skip). Needs
 *                         build/Release/netns-kit-cni (the native client).
 *   BENCH_OUT=bench/last-run   where the markdown table and the JSON samples go
 *   BENCH_REPORT=file.json     only print the table of an earlier run's samples
 *   BENCH_CONNECT=1            the connection set-up line (ns.net.connect vs a client spawned with
 *                              `ip netns exec`); 0 skips it. BENCH_N= (empty) runs only that line.
 * Quick run: `npm run bench -- BENCH_N=50 BENCH_RUNS=1`
 */
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { bulk, netns, type Netns } from '../lib/index';

for (const arg of process.argv.slice(2)) {
  const m = /^(BENCH_[A-Z_]+)=(.*)$/.exec(arg);
  if (m) process.env[m[1]] = m[2];
}
const ROOT = path.resolve(__dirname, '..', '..');
const NS_LIST = (process.env.BENCH_N ?? '100,1000').split(',').map(Number).filter((n) => n > 0); // BENCH_N=0: the CNI figures only
const CONNECT = process.env.BENCH_CONNECT !== '0';
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const MODES = (process.env.BENCH_SYSCTLS ?? 'default,ipv6off').split(',') as Array<'default' | 'ipv6off'>;
const ALL_PEERS = ['kit-bulk', 'kit-topology', 'kit-perop', 'kit-perop8', 'c-libnl', 'ip', 'ip-batch', 'pyroute2-netns', 'pyroute2-pushns'] as const;
type Peer = (typeof ALL_PEERS)[number];
const PEERS = (process.env.BENCH_PEERS ?? ALL_PEERS.join(',')).split(',') as Peer[];
const OUT = path.resolve(ROOT, process.env.BENCH_OUT ?? 'bench/last-run');
const RUN_ID = randomBytes(2).toString('hex');
const PREFIX = `nkb${RUN_ID}`;
const GATEWAY = '10.10.255.254';
const GROUP = 4242;
const PYTHON = '/usr/bin/python3'; // Debian's, where python3-pyroute2 lives
const PEER_C = path.join(ROOT, 'build', 'bench', 'peer-libnl');
const TMP = path.join(os.tmpdir(), `netns-kit-bench-${RUN_ID}`);

let current: ChildProcess | undefined;
let stopping = false;

interface Measured {
  ms: number;
  wallMs: number;
  rssKb: number;
  fds: number;
}

interface Sample {
  peer: Peer;
  n: number;
  mode: 'default' | 'ipv6off';
  run: number;
  setup: Measured;
  teardown: Measured;
}

function buildPeerC(): void {
  mkdirSync(path.dirname(PEER_C), { recursive: true });
  const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'libnl-3.0', 'libnl-route-3.0'], { encoding: 'utf8' }).trim().split(/\s+/);
  execFileSync('cc', ['-O2', '-Wall', '-o', PEER_C, path.join(ROOT, 'bench', 'peer-libnl.c'), ...flags], { stdio: 'inherit' });
}

/** Descriptors open in `pid` right now (0 if it is gone). */
function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Runs `cmd` under /usr/bin/time (peak RSS of the largest process in the tree) while sampling the
 * open descriptors of the command every 5 ms. Rejects on a non-zero exit.
 */
function measure(cmd: string, args: string[], input?: string): Promise<Measured & { stdout: string }> {
  const rssFile = path.join(TMP, `rss-${randomBytes(4).toString('hex')}`);
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%M', '-o', rssFile, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    current = child;
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin!.end(input ?? '');
    let fds = 0;
    const timer = setInterval(() => {
      for (const pid of childrenOf(child.pid!)) fds = Math.max(fds, fdCount(pid));
    }, 5);
    child.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      clearInterval(timer);
      current = undefined;
      let rssKb = 0;
      try {
        rssKb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
        rmSync(rssFile, { force: true });
      } catch {
        /* time did not write it: the command failed */
      }
      if (code !== 0) {
        reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
        return;
      }
      resolve({ ms: wallMs, wallMs, rssKb, fds, stdout });
    });
  });
}

function names(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, k) => `${prefix}${k + 1}`);
}

function address(i: number): string {
  return `10.10.${i >> 8}.${i & 255}/16`;
}

function ipLoopSetup(host: string, prefix: string, n: number, ipv6off: boolean): string {
  const lines = ['set -e', `for i in $(seq 1 ${n}); do`, `  ns=${prefix}$i`, '  ip netns add $ns'];
  if (ipv6off) lines.push('  nsenter --net=/run/netns/$ns sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1');
  lines.push(
    `  ip -n ${host} link add $ns master br0 up type veth peer name eth0 netns $ns`,
    '  ip -n $ns link set lo up',
    '  ip -n $ns link set eth0 up',
    '  ip -n $ns addr add 10.10.$((i >> 8)).$((i & 255))/16 dev eth0',
    `  ip -n $ns route add default via ${GATEWAY}`,
    'done',
  );
  return lines.join('\n');
}

function ipBatchSetup(host: string, prefix: string, n: number, ipv6off: boolean): string {
  // iproute2 6.1 batch lines take no -n, so: one batch of `netns add`, one batch in the host for
  // the veths, and one `ip -n NAME -b -` per namespace for what happens inside it.
  const dir = path.join(TMP, prefix);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'add'), names(prefix, n).map((ns) => `netns add ${ns}\n`).join(''));
  writeFileSync(path.join(dir, 'host'), names(prefix, n).map((ns) => `link add ${ns} master br0 up type veth peer name eth0 netns ${ns}\n`).join(''));
  const inside = (i: number) => `link set lo up\nlink set eth0 up\naddr add ${address(i)} dev eth0\nroute add default via ${GATEWAY}\n`;
  for (let i = 1; i <= n; i++) writeFileSync(path.join(dir, `in${i}`), inside(i));
  const lines = ['set -e', `ip -b ${dir}/add`];
  if (ipv6off) {
    lines.push(`for i in $(seq 1 ${n}); do nsenter --net=/run/netns/${prefix}$i sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; done`);
  }
  lines.push(`ip -n ${host} -b ${dir}/host`, `for i in $(seq 1 ${n}); do ip -n ${prefix}$i -b ${dir}/in$i; done`);
  return lines.join('\n');
}

async function setup(peer: Peer, host: string, prefix: string, n: number, ipv6off: boolean): Promise<Measured> {
  const v6 = ipv6off ? '1' : '0';
  const kit = path.join(ROOT, 'dist', 'bench', 'kit-peer.js');
  switch (peer) {
    case 'kit-bulk':
    case 'kit-topology':
    case 'kit-perop':
    case 'kit-perop8': {
      const m = await measure(process.execPath, [kit, peer.slice(4), 'setup', host, prefix, String(n), GATEWAY, v6, String(GROUP)]);
      return { ...m, ms: (JSON.parse(m.stdout) as { ms: number }).ms };
    }
    case 'c-libnl':
      return measure(PEER_C, ['setup', host, prefix, String(n), GATEWAY, v6]);
    case 'ip':
      return measure('bash', ['-c', ipLoopSetup(host, prefix, n, ipv6off)]);
    case 'ip-batch':
      return measure('bash', ['-c', ipBatchSetup(host, prefix, n, ipv6off)]);
    case 'pyroute2-netns':
    case 'pyroute2-pushns':
      return measure(PYTHON, [path.join(ROOT, 'bench', 'peer-pyroute2.py'), peer === 'pyroute2-netns' ? 'netns' : 'pushns', 'setup', host, prefix, String(n), GATEWAY, v6]);
  }
}

async function teardown(peer: Peer, host: string, prefix: string, n: number): Promise<Measured> {
  const kit = path.join(ROOT, 'dist', 'bench', 'kit-peer.js');
  if (peer === 'kit-bulk' || peer === 'kit-topology' || peer === 'kit-perop' || peer === 'kit-perop8') {
    // These wait for the kernel themselves (deleteMany; watchCleanup for the others).
    const m = await measure(process.execPath, [kit, peer.slice(4), 'teardown', host, prefix, String(n), String(GROUP)]);
    return { ...m, ms: (JSON.parse(m.stdout) as { ms: number }).ms };
  }
  // The others return as soon as the names are gone; the harness then waits, the same way
  // deleteMany does, until the kernel has finished (watch started before, untimed).
  const watch = await bulk.watchCleanup(names(prefix, n));
  const t0 = process.hrtime.bigint();
  let m: Measured;
  try {
    if (peer === 'c-libnl') m = await measure(PEER_C, ['teardown', prefix, String(n)]);
    else if (peer === 'ip') m = await measure('bash', ['-c', `set -e; for i in $(seq 1 ${n}); do ip netns del ${prefix}$i; done`]);
    else if (peer === 'ip-batch') m = await measure('ip', ['-b', '-'], names(prefix, n).map((ns) => `netns del ${ns}\n`).join(''));
    else m = await measure(PYTHON, [path.join(ROOT, 'bench', 'peer-pyroute2.py'), 'any', 'teardown', prefix, String(n)]);
  } catch (e) {
    watch.close();
    throw e;
  }
  await watch.wait(600000);
  return { ...m, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

/** Untimed sanity check: every namespace exists, the first and the last are configured. */
function verify(prefix: string, n: number): void {
  const present = readdirSync('/run/netns').filter((e) => e.startsWith(prefix) && /^\d+$/.test(e.slice(prefix.length)));
  if (present.length !== n) throw new Error(`${prefix}: expected ${n} namespaces, found ${present.length}`);
  for (const i of [1, n]) {
    const addrs = JSON.parse(execFileSync('ip', ['-j', '-n', `${prefix}${i}`, 'addr', 'show', 'eth0'], { encoding: 'utf8' })) as Array<{ operstate: string; addr_info: Array<{ local: string }> }>;
    const want = address(i).split('/')[0];
    if (!addrs[0]?.addr_info.some((a) => a.local === want)) throw new Error(`${prefix}${i}: eth0 lacks ${want}`);
    const routes = execFileSync('ip', ['-n', `${prefix}${i}`, 'route', 'show', 'default'], { encoding: 'utf8' });
    if (!routes.includes(GATEWAY)) throw new Error(`${prefix}${i}: no default route via ${GATEWAY}`);
    const lo = JSON.parse(execFileSync('ip', ['-j', '-n', `${prefix}${i}`, 'link', 'show', 'lo'], { encoding: 'utf8' })) as Array<{ flags: string[] }>;
    if (!lo[0].flags.includes('UP')) throw new Error(`${prefix}${i}: lo is down`);
  }
}

let counter = 0;

async function oneRun(peer: Peer, n: number, mode: 'default' | 'ipv6off', run: number): Promise<Sample> {
  const prefix = `${PREFIX}${(counter++).toString(36)}n`;
  const hostName = `${prefix}host`;
  const host = await netns.create(hostName, { loopbackUp: true, ipv6: mode !== 'ipv6off' });
  try {
    await host.links.add({ kind: 'bridge', name: 'br0', up: true });
    await host.addresses.add('br0', `${GATEWAY}/16`);
    const s = await setup(peer, hostName, prefix, n, mode === 'ipv6off');
    verify(prefix, n);
    const t = await teardown(peer, hostName, prefix, n);
    return { peer, n, mode, run, setup: s, teardown: t };
  } finally {
    // Untimed: the host too must be gone from the kernel before the next run starts.
    await cleanupPrefix(prefix);
  }
}

async function cleanupPrefix(prefix: string): Promise<void> {
  let left: string[] = [];
  try {
    left = readdirSync('/run/netns').filter((e) => e.startsWith(prefix));
  } catch {
    /* no /run/netns */
  }
  if (left.length) await bulk.deleteMany(left, { missingOk: true, timeoutMs: 300000 });
}

/**
 * Connection set-up latency from inside a namespace: `ns.net.connect` (a socket made on an addon
 * thread inside the namespace, the connect awaited on this event loop) against what a program
 * needs without it, a client started with `ip netns exec NS python3 -c 'connect'`. One namespace,
 * a listener on its loopback (in this process); per run the median of KIT_N connects and of
 * EXEC_N spawned clients, the two alternating which goes first; the ratio is taken per run.
 */
async function connectBench(): Promise<string> {
  const KIT_N = 50;
  const EXEC_N = 5;
  const name = `${PREFIX}conn`;
  const ns = await netns.create(name, { loopbackUp: true });
  const server = net.createServer((s) => s.destroy());
  try {
    const { port } = await ns.net.listen(server, { host: '127.0.0.1', port: 0 });
    const script = `import socket; socket.create_connection(("127.0.0.1", ${port})).close()`;
    const kitOnce = async (): Promise<number> => {
      const t0 = process.hrtime.bigint();
      const s = await ns.net.connect({ host: '127.0.0.1', port });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      s.destroy();
      return ms;
    };
    const execOnce = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const t0 = process.hrtime.bigint();
        execFile('ip', ['netns', 'exec', name, PYTHON, '-c', script], (err) => (err ? reject(err) : resolve(Number(process.hrtime.bigint() - t0) / 1e6)));
      });
    const series = async (f: () => Promise<number>, n: number) => {
      const xs: number[] = [];
      for (let i = 0; i < n; i++) xs.push(await f());
      return median(xs);
    };
    await kitOnce(); // the first call pays for the addon's thread wake-up and the JIT
    const runs: Array<{ kit: number; exec: number }> = [];
    for (let run = 0; run < RUNS && !stopping; run++) {
      let kit: number;
      let exec: number;
      if (run % 2 === 0) {
        kit = await series(kitOnce, KIT_N);
        exec = await series(execOnce, EXEC_N);
      } else {
        exec = await series(execOnce, EXEC_N);
        kit = await series(kitOnce, KIT_N);
      }
      runs.push({ kit, exec });
      console.log(`connect run ${run + 1}/${RUNS}: ns.net.connect ${kit.toFixed(3)} ms, ip netns exec python3 ${exec.toFixed(1)} ms`);
    }
    const kitMed = median(runs.map((r) => r.kit));
    const execMed = median(runs.map((r) => r.exec));
    const ratio = median(runs.map((r) => r.exec / r.kit));
    return `Connection set-up from inside a namespace (loopback, ${runs.length} alternating runs, medians of ${KIT_N} / ${EXEC_N}): ns.net.connect ${kitMed.toFixed(3)} ms, \`ip netns exec NS python3 -c connect\` ${execMed.toFixed(1)} ms: ${ratio.toFixed(0)}x faster in-process.`;
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    await ns.delete({ missingOk: true });
  }
}

// ---- CNI: one ADD and one DEL per run and side: netns-kit-cni with and without its resident
// helper, against the reference `bridge` plugin ----

/**
 * `resident`: the native client installed as the plugin, handing each call to a helper the bench
 * started; `standalone`: the same client with NETNS_KIT_CNI_STANDALONE=1, so it starts Node itself
 * (what a user without a helper gets); `ref`: Debian's bridge plugin.
 */
const CNI_SIDES = ['resident', 'standalone', 'ref'] as const;
type CniSide = (typeof CNI_SIDES)[number];

interface CniSample {
  /** `kit` in reports saved before the resident helper: the JS plugin run directly, shown as standalone */
  side: CniSide | 'kit';
  cmd: 'ADD' | 'DEL';
  run: number;
  ms: number;
}

const CNI_RUNS = Number(process.env.BENCH_CNI_RUNS ?? 10);
const REFERENCE_BRIDGE = '/usr/lib/cni/bridge';
const CNI_CLIENT = path.join(ROOT, 'build', 'Release', 'netns-kit-cni');
const CNI_PLUGIN_JS = path.join(ROOT, 'dist', 'bin', 'netns-kit-cni.js');

/** Throws a clear error when the native client (the plugin a user installs) has not been built. */
function requireCniClient(): void {
  if (!existsSync(CNI_CLIENT)) {
    throw new Error(
      `the CNI benchmark needs the native client ${CNI_CLIENT}, which is missing: build it with ` +
        '`node /usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js build --nodedir=/usr` (or skip the CNI part with BENCH_CNI_RUNS=0)',
    );
  }
}

/** The resident helper the bench runs for the `resident` side, and what it logged. */
interface Helper {
  /** stderr lines so far (`--verbose`: one `served ...` or `declined ...` per call) */
  readonly lines: string[];
  /** SIGTERM, then waits for the process and its output streams to end */
  stop(): Promise<void>;
}

let helperProc: ChildProcess | undefined;

/**
 * Starts `node dist/bin/netns-kit-cni.js --serve --verbose` inside the namespace file `netnsPath`
 * on `<runDir>/resident.sock`; resolves once it says it is listening there.
 */
function startHelper(runDir: string, netnsPath: string): Promise<Helper> {
  const socketPath = path.join(runDir, 'resident.sock');
  const child = spawn('nsenter', [`--net=${netnsPath}`, '--', process.execPath, CNI_PLUGIN_JS, '--serve', '--verbose'], {
    env: { ...process.env, NETNS_KIT_CNI_RUN_DIR: runDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  helperProc = child;
  const lines: string[] = [];
  let partial = '';
  child.stderr!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  const closed = new Promise<void>((resolve) =>
    child.on('close', () => {
      if (partial) lines.push(partial);
      partial = '';
      if (helperProc === child) helperProc = undefined;
      resolve();
    }),
  );
  const helper: Helper = {
    lines,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await closed;
    },
  };
  return new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      void helper.stop().then(() => reject(new Error(`the resident helper did not say it was listening within 30 s: ${stdout}${lines.join('\n')}`)));
    }, 30000);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes(`resident helper listening on ${socketPath}\n`)) {
        clearTimeout(timer);
        resolve(helper);
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start the resident helper: ${e.message}`));
    });
    void closed.then(() => {
      clearTimeout(timer);
      reject(new Error(`the resident helper exited before listening (code ${child.exitCode}, signal ${child.signalCode}): ${stdout}${lines.join('\n')}`));
    });
  });
}

/**
 * All three sides get the same configuration shape (bridge, isGateway, ipMasq, host-local IPAM:
 * the reference's own IPAM everywhere), the same environment (but the standalone switch) and are
 * started the way a runtime starts a plugin, as a process in the runtime's namespace (here a
 * throwaway "host" namespace, entered with nsenter, for every side alike). The helper runs in that
 * same "host" namespace: the set-up users have (runtime and helper both in the machine's
 * namespace), kept off the machine's own namespace here. (Callers in another namespace than the
 * helper's cost one nsenter more per delegated IPAM call; tests cover that path.) Timed: from spawn to exit, the whole call (for the standalone
 * side, Node's start-up included).
 */
async function cniBench(runs: number): Promise<CniSample[]> {
  requireCniClient();
  const prefix = `${PREFIX}cni`;
  const dir = path.join(TMP, 'cni');
  const bin = path.join(dir, 'bin');
  const runDir = path.join(dir, 'run');
  mkdirSync(bin, { recursive: true });
  mkdirSync(runDir, { recursive: true });
  symlinkSync(CNI_CLIENT, path.join(bin, 'netns-kit-cni'));
  const own: Record<CniSide, { bridge: string; subnet: string; ifname: string }> = {
    resident: { bridge: 'nkbh0', subnet: '10.89.1.0/24', ifname: 'eth1' },
    standalone: { bridge: 'nkbs0', subnet: '10.89.2.0/24', ifname: 'eth2' },
    ref: { bridge: 'nkbr0', subnet: '10.89.3.0/24', ifname: 'eth3' },
  };
  const conf = (side: CniSide) =>
    JSON.stringify({
      cniVersion: '1.0.0',
      name: `bench-${side}`,
      type: side === 'ref' ? 'bridge' : 'netns-kit-cni',
      bridge: own[side].bridge,
      isGateway: true,
      ipMasq: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: own[side].subnet }]], dataDir: path.join(dir, `ipam-${side}`) },
    });
  let host: Netns | undefined;
  let ctr: Netns | undefined;
  const invoke = (side: CniSide, cmd: 'ADD' | 'DEL') =>
    new Promise<number>((resolve, reject) => {
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        CNI_COMMAND: cmd,
        CNI_CONTAINERID: `bench-${side}`,
        CNI_NETNS: ctr!.path,
        CNI_IFNAME: own[side].ifname,
        CNI_PATH: `${bin}:/usr/lib/cni`,
        NETNS_KIT_CNI_RUN_DIR: runDir,
      };
      if (side === 'standalone') env.NETNS_KIT_CNI_STANDALONE = '1';
      const plugin = side === 'ref' ? REFERENCE_BRIDGE : path.join(bin, 'netns-kit-cni');
      const t0 = process.hrtime.bigint();
      const child = spawn('nsenter', [`--net=${host!.path}`, plugin], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      current = child;
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      child.stdin!.end(conf(side));
      child.on('close', (code) => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        current = undefined;
        if (code !== 0) reject(new Error(`${side} ${cmd} exited ${code}: ${out.slice(-2000)}`));
        else resolve(ms);
      });
    });
  const samples: CniSample[] = [];
  let helper: Helper | undefined;
  let residentCalls = 0; // warm-up included: every one must be served by the helper
  // The resident figures mean something only if the helper served every one of those calls: a call
  // it declined, or one that never reached it, ran as standalone (the client's fallback) instead.
  const checkHelper = async (final: boolean): Promise<number> => {
    const lines = helper!.lines;
    const served = () => lines.filter((l) => /\bserved (ADD|DEL) bench-resident\b/.test(l)).length;
    const declined = () => lines.filter((l) => /\bdeclined\b|internal error/.test(l));
    // Its log lines come through a pipe: give the last ones a moment (final: the helper has exited).
    for (let waited = 0; !final && waited < 2000 && served() < residentCalls && !declined().length; waited += 20) await new Promise((r) => setTimeout(r, 20));
    const bad = declined();
    if (bad.length || served() !== residentCalls) {
      throw new Error(
        `the resident side is not valid: the helper served ${served()} of ${residentCalls} resident calls so far (warm-up included) and declined ${bad.length}; ` +
          `the client ran the others standalone, so the resident figures would be wrong.\n  ${(bad.length ? bad : ['helper log:', ...lines]).join('\n  ')}`,
      );
    }
    return served();
  };
  try {
    host = await netns.create(`${prefix}h`, { loopbackUp: true });
    helper = await startHelper(runDir, host.path);
    ctr = await netns.create(`${prefix}c`, { loopbackUp: true });
    // Warm-up, untimed: bridges created, page cache, IPAM directories and the helper's code paths in place.
    for (const side of CNI_SIDES) {
      for (const cmd of ['ADD', 'DEL'] as const) {
        if (side === 'resident') residentCalls++;
        await invoke(side, cmd);
      }
    }
    await checkHelper(false); // fail now rather than after all the runs
    for (let run = 0; run < runs && !stopping; run++) {
      // Rotated: each side goes first (and last) equally often over every 3 runs.
      const order = CNI_SIDES.map((_, k) => CNI_SIDES[(k + run) % CNI_SIDES.length]);
      for (const side of order) {
        for (const cmd of ['ADD', 'DEL'] as const) {
          if (side === 'resident') residentCalls++;
          samples.push({ side, cmd, run, ms: await invoke(side, cmd) });
        }
      }
      const last = samples.slice(-2 * CNI_SIDES.length);
      console.log(`CNI run ${run + 1}/${runs} ${last.map((x) => `${x.side} ${x.cmd} ${x.ms.toFixed(1)} ms`).join('  ')}`);
    }
  } finally {
    await helper?.stop();
    if (ctr) await netns.delete(ctr.name!, { missingOk: true });
    if (host) await netns.delete(host.name!, { missingOk: true });
  }
  const served = await checkHelper(true);
  console.log(`CNI: the resident helper served all ${served} resident calls (${samples.filter((x) => x.side === 'resident').length} timed), declined none`);
  return samples;
}

function cniReport(saved: CniSample[]): string {
  // Reports saved before the resident helper have `kit` (the JS plugin run directly): shown as standalone.
  const legacy = saved.some((s) => s.side === 'kit');
  const samples = saved.map((s) => (s.side === 'kit' ? { ...s, side: 'standalone' as const } : s)).filter((s) => (CNI_SIDES as readonly string[]).includes(s.side));
  if (!samples.length) return '';
  const out: string[] = [];
  const runs = Math.max(...samples.map((s) => s.run + 1));
  out.push(`### CNI: one ADD and one DEL, netns-kit-cni (resident helper / standalone) vs the reference bridge plugin (${runs} ${legacy ? 'alternating' : 'rotated'} runs)`);
  out.push('');
  out.push(
    'Same configuration for all (bridge, isGateway, ipMasq, host-local IPAM), each plugin started as a runtime starts it. ' +
      'resident: the native client handing the call to a running `netns-kit-cni --serve`; standalone: the same client with ' +
      'NETNS_KIT_CNI_STANDALONE=1, which starts Node for the call (no helper); reference: Debian\'s `bridge`.',
  );
  if (legacy) out.push('', 'An earlier report: its netns-kit-cni side (the JS plugin run directly, no native client) is shown as standalone; it had no resident side.');
  out.push('');
  out.push('| command | resident ms | standalone ms | reference ms | resident / reference (paired) | standalone / reference (paired) |');
  out.push('|---|---:|---:|---:|---:|---:|');
  for (const cmd of ['ADD', 'DEL'] as const) {
    const of = (side: CniSide) => samples.filter((s) => s.side === side && s.cmd === cmd);
    const ms = (side: CniSide) => {
      const xs = of(side).map((s) => s.ms);
      return xs.length ? median(xs).toFixed(1) : '-';
    };
    // Paired: each run's time over the reference's in the same run, then the median of those.
    const paired = (side: CniSide) => {
      const rs: number[] = [];
      for (const s of of(side)) {
        const r = of('ref').find((x) => x.run === s.run);
        if (r) rs.push(s.ms / r.ms);
      }
      return rs.length ? `${median(rs).toFixed(2)}x` : '-';
    };
    out.push(`| ${cmd} | ${ms('resident')} | ${ms('standalone')} | ${ms('ref')} | ${paired('resident')} | ${paired('standalone')} |`);
  }
  out.push('');
  out.push('Target: ≤ 1.2x for ADD and DEL (the resident helper; a plugin process that starts Node cannot get there: see docs/cni.md).');
  out.push('');
  return out.join('\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function report(samples: Sample[]): string {
  const out: string[] = [];
  if (!samples.length) return ''; // BENCH_N=0: the CNI figures only
  const kernel = os.release();
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  out.push(`Machine: ${cpu}, ${os.cpus().length} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB; kernel ${kernel}; node ${process.version}; ${new Date().toISOString()}`);
  out.push(`Runs per cell: up to ${Math.max(...samples.map((s) => s.run + 1))} (peers alternating, order rotated each run). ms/ns = median milliseconds per namespace.`);
  out.push('');
  for (const n of NS_LIST) {
    for (const mode of MODES) {
      const cell = samples.filter((s) => s.n === n && s.mode === mode);
      if (!cell.length) continue;
      const med = (peer: Peer, k: 'setup' | 'teardown') => median(cell.filter((s) => s.peer === peer).map((s) => s[k].ms / n));
      const have = PEERS.filter((p) => cell.some((s) => s.peer === p));
      const base = have.includes('kit-bulk') ? 'kit-bulk' : have[0];
      const runs = Math.min(...have.map((p) => cell.filter((s) => s.peer === p).length));
      out.push(`### N=${n}, sysctls: ${mode === 'ipv6off' ? 'IPv6 off' : 'default (IPv6 on)'} (${runs}+ runs per peer)`);
      out.push('');
      out.push('| peer | set-up ms/ns | teardown ms/ns | set-up vs kit-bulk | teardown vs kit-bulk | peak RSS MB | peak fds |');
      out.push('|---|---:|---:|---:|---:|---:|---:|');
      for (const p of have) {
        const su = med(p, 'setup');
        const td = med(p, 'teardown');
        const rows = cell.filter((s) => s.peer === p);
        const rss = Math.max(...rows.map((s) => Math.max(s.setup.rssKb, s.teardown.rssKb))) / 1024;
        const fds = Math.max(...rows.map((s) => Math.max(s.setup.fds, s.teardown.fds)));
        // Paired: each run's peer time over kit-bulk's time in the same run (they ran back to back,
        // so a busy moment of the shared machine weighs on both), then the median of those.
        const paired = (k: 'setup' | 'teardown') => {
          const rs: number[] = [];
          for (const s of rows) {
            const b = cell.find((x) => x.peer === base && x.run === s.run);
            if (b) rs.push(s[k].ms / b[k].ms);
          }
          return p === base ? '1' : rs.length ? `${median(rs).toFixed(2)}x` : '-';
        };
        out.push(`| ${p} | ${su.toFixed(3)} | ${td.toFixed(3)} | ${paired('setup')} | ${paired('teardown')} | ${rss.toFixed(1)} | ${fds} |`);
      }
      out.push('');
      out.push('"vs kit-bulk" = median over runs of (peer time / kit-bulk time in the same run); above 1: kit-bulk is that many times faster.');
      out.push('');
      // Issue 17's figure: the plain per-operation loop against the C floor, paired run by run.
      const floor = (p: Peer) => {
        const rs: number[] = [];
        for (const s of cell.filter((x) => x.peer === p)) {
          const c = cell.find((x) => x.peer === 'c-libnl' && x.run === s.run);
          if (c) rs.push(s.setup.ms / c.setup.ms);
        }
        return rs.length ? `${median(rs).toFixed(2)}x` : undefined;
      };
      const loops = (['kit-perop', 'kit-perop8'] as Peer[]).map((p) => [p, floor(p)] as const).filter(([, r]) => r !== undefined);
      if (loops.length) {
        out.push(`**Per-operation loop vs the C floor (c-libnl), set-up, paired:** ${loops.map(([p, r]) => `${p} ${r}`).join(', ')} (target ≤ 1.3x)`);
        out.push('');
      }
    }
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  if (process.env.BENCH_REPORT) {
    // Re-print the table of an earlier (possibly interrupted) run from its JSON samples.
    const saved = JSON.parse(readFileSync(process.env.BENCH_REPORT, 'utf8')) as Sample[] | { namespaces: Sample[]; cni: CniSample[] };
    const samples = Array.isArray(saved) ? saved : saved.namespaces;
    console.log(report(samples));
    if (!Array.isArray(saved) && saved.cni?.length) console.log(cniReport(saved.cni));
    return;
  }
  if (process.getuid?.() !== 0) throw new Error('the benchmark creates namespaces: run it as root');
  if (CNI_RUNS > 0) requireCniClient(); // before the namespace part, not after it
  mkdirSync(TMP, { recursive: true });
  const connectLine = CONNECT ? await connectBench() : '';
  if (connectLine) console.log(connectLine);
  if (!NS_LIST.length) {
    // BENCH_N=0 (or empty): the connection line and the CNI figures only.
    await writeReport([], connectLine);
    return;
  }
  buildPeerC();
  const samples: Sample[] = [];
  for (const n of NS_LIST) {
    for (const mode of MODES) {
      for (let run = 0; run < RUNS; run++) {
        const order = PEERS.map((_, k) => PEERS[(k + run) % PEERS.length]);
        for (const peer of order) {
          if (stopping) return;
          const s = await oneRun(peer, n, mode, run);
          samples.push(s);
          console.log(`N=${n} ${mode} run ${run + 1}/${RUNS} ${peer.padEnd(16)} setup ${(s.setup.ms / n).toFixed(3)} ms/ns  teardown ${(s.teardown.ms / n).toFixed(3)} ms/ns  rss ${(s.setup.rssKb / 1024).toFixed(1)} MB  fds ${s.setup.fds}`);
          writeFileSync(`${OUT}.json`, JSON.stringify({ namespaces: samples, cni: [] }, null, 1));
        }
      }
      const table = report(samples);
      writeFileSync(`${OUT}.md`, `${table}\n${connectLine}\n`);
    }
  }
  await writeReport(samples, connectLine);
}

/** The namespace table, the connection line and (unless BENCH_CNI_RUNS=0) the CNI figures, printed and written. */
async function writeReport(samples: Sample[], connectLine: string): Promise<void> {
  let table = `${report(samples)}\n${connectLine}\n`;
  if (CNI_RUNS > 0 && !stopping) {
    const cni = await cniBench(CNI_RUNS);
    writeFileSync(`${OUT}.json`, JSON.stringify({ namespaces: samples, cni }, null, 1));
    table += `\n${cniReport(cni)}`;
  }
  writeFileSync(`${OUT}.md`, table);
  console.log(`\n${table}\nwritten to ${OUT}.md and ${OUT}.json`);
}

async function finish(code: number): Promise<never> {
  if (current) current.kill('SIGKILL');
  if (helperProc) {
    // Interrupted during the CNI part: the resident helper stops on SIGTERM and removes its socket.
    const h = helperProc;
    const gone = new Promise<void>((resolve) => {
      h.once('close', () => resolve());
      setTimeout(resolve, 5000).unref();
    });
    h.kill('SIGTERM');
    await gone;
  }
  try {
    await cleanupPrefix(PREFIX);
  } catch (e) {
    console.error('cleanup failed:', e);
    code = code || 1;
  }
  rmSync(TMP, { recursive: true, force: true });
  process.exit(code);
}

process.on('SIGINT', () => {
  stopping = true;
  console.error('\ninterrupted: removing everything this run created...');
  void finish(130);
});
process.on('SIGTERM', () => {
  stopping = true;
  void finish(143);
});

main().then(
  () => finish(0),
  (e) => {
    console.error(e);
    return finish(1);
  },
);
