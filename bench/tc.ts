/**
 * `npm run bench:tc`: shaping N links (a tbf `rate 10mbit burst 32kb latency 50ms` on each) in one
 * namespace, four ways, alternating, medians of the runs and ratios in one table:
 *
 * - kit-topology: `topology.up` of a topology whose N template uplinks already exist, now with
 *   `peerShape:` on their bridge-side ends (what "add shapes to my lab" costs through a topology:
 *   the planner's look at every namespace, then one shape step per link)
 * - kit-shape:    `hub.links.shape(dev, ...)` for every link, 8 in flight
 * - tc:           `tc -n HUB qdisc replace dev DEV root tbf ...` once per link
 * - tc-batch:     one `tc -n HUB -batch -` with N lines
 *
 * The links are the N bridge-side veth ends of a template in a namespace playing the host; all of
 * it lives in throwaway namespaces (nkt<run id>...) and is removed at the end, on failure too.
 * Between runs the shapes are removed untimed (one `tc -batch` of deletes).
 *
 * Configuration (environment or NAME=value arguments):
 *   BENCH_TC_N=1000     links
 *   BENCH_TC_RUNS=5     runs per peer, alternating
 * Quick run: `npm run bench:tc -- BENCH_TC_N=50 BENCH_TC_RUNS=3`
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { topology, type Topology } from '../lib/index';
import type { Netns } from '../lib/netns';

for (const arg of process.argv.slice(2)) {
  const m = /^(BENCH_TC_[A-Z]+)=(.*)$/.exec(arg);
  if (m) process.env[m[1]] = m[2];
}
const N = Number(process.env.BENCH_TC_N ?? 1000);
const RUNS = Number(process.env.BENCH_TC_RUNS ?? 5);
const RUN_ID = randomBytes(2).toString('hex');
const HUB = `nkbtc${RUN_ID}`;
const PEERS = ['kit-topology', 'kit-shape', 'tc', 'tc-batch'] as const;
type Peer = (typeof PEERS)[number];
/** the same `topology.up` again with nothing left to do: the planner's own cost, for reference */
const NOOP = 'kit-topology re-up (nothing to do)';
const SHAPE = { rate: '10mbit', burst: '32kb', latency: '50ms' };
const TC_ARGS = ['root', 'tbf', 'rate', '10mbit', 'burst', '32kb', 'latency', '50ms'];

// The uplinks' bridge ends are m0..m{N-1}; a bridge holds at most 1023 ports, so several bridges.
const PER_BRIDGE = 1000;
const bridges = Math.ceil(N / PER_BRIDGE);
const dev = (i: number) => `m${i}`;

function base(withShape: boolean): Topology {
  return {
    name: `nkbtc${RUN_ID}`,
    options: { concurrency: 8 },
    namespaces: [{ name: HUB, bridges: Array.from({ length: bridges }, (_, b) => ({ name: `br${b}` })) }],
    templates: Array.from({ length: bridges }, (_, b) => ({
      count: Math.min(PER_BRIDGE, N - b * PER_BRIDGE),
      start: b * PER_BRIDGE,
      name: `${HUB}-{i}`,
      ipv6: false,
      uplink: { name: 'eth0', peerName: 'm{i}', netns: HUB, bridge: `br${b}`, ...(withShape ? { peerShape: SHAPE } : {}) },
    })),
  };
}

function tcBatch(lines: string[]): void {
  const r = spawnSync('tc', ['-n', HUB, '-force', '-batch', '-'], { input: lines.join('\n') + '\n', encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tc -batch failed: ${r.stderr}`);
}

/** Every link carries the tbf (and nothing else does): the same end state for every peer. */
function verify(): void {
  const q = JSON.parse(execFileSync('tc', ['-j', '-n', HUB, 'qdisc', 'show'], { encoding: 'utf8' })) as Array<{ kind: string; dev: string; options?: { rate?: number } }>;
  const shaped = q.filter((x) => x.kind === 'tbf' && x.options?.rate === 1_250_000 && /^m\d+$/.test(x.dev));
  if (shaped.length !== N) throw new Error(`expected ${N} shaped links, found ${shaped.length}`);
}

function clear(): void {
  tcBatch(Array.from({ length: N }, (_, i) => `qdisc del dev ${dev(i)} root`));
}

async function runPeer(peer: Peer, hub: Netns, noop: number[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  switch (peer) {
    case 'kit-topology': {
      const h = await topology.up(base(true));
      if (h.changes.length !== N) throw new Error(`topology up made ${h.changes.length} changes, expected ${N}`);
      break;
    }
    case 'kit-shape': {
      let next = 0;
      const lane = async () => {
        while (next < N) await hub.links.shape(dev(next++), SHAPE);
      };
      await Promise.all(Array.from({ length: 8 }, lane));
      break;
    }
    case 'tc':
      for (let i = 0; i < N; i++) execFileSync('tc', ['-n', HUB, 'qdisc', 'replace', 'dev', dev(i), ...TC_ARGS]);
      break;
    case 'tc-batch':
      tcBatch(Array.from({ length: N }, (_, i) => `qdisc replace dev ${dev(i)} ${TC_ARGS.join(' ')}`));
      break;
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  verify();
  if (peer === 'kit-topology') {
    const t1 = process.hrtime.bigint();
    const again = await topology.up(base(true));
    noop.push(Number(process.hrtime.bigint() - t1) / 1e6);
    if (again.changes.length !== 0) throw new Error(`re-up changed ${again.changes.length} things`);
  }
  clear();
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  process.stderr.write(`bench:tc: N=${N}, ${RUNS} runs per peer, ${os.cpus().length} CPUs, kernel ${os.release()}\n`);
  const up = await topology.up(base(false));
  const hub = up.netns(HUB);
  const samples = new Map<Peer, number[]>(PEERS.map((p) => [p, []]));
  const noop: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      // Alternate the order so no peer always runs on a warmer (or busier) machine.
      const order = run % 2 ? [...PEERS].reverse() : [...PEERS];
      for (const p of order) {
        const ms = await runPeer(p, hub, noop);
        samples.get(p)!.push(ms);
        process.stderr.write(`  run ${run + 1} ${p}: ${ms.toFixed(0)} ms\n`);
      }
    }
  } finally {
    await topology.down(base(false));
  }
  const rows: Array<{ p: string; m: number }> = PEERS.map((p) => ({ p, m: median(samples.get(p)!) }));
  rows.push({ p: NOOP, m: median(noop) });
  const batch = rows.find((r) => r.p === 'tc-batch')!.m;
  const perLink = rows.find((r) => r.p === 'tc')!.m;
  const lines = [
    `Shaping ${N} links (tbf rate 10mbit) in one namespace, median of ${RUNS} alternating runs; ${os.cpus().length} CPUs, kernel ${os.release()}`,
    '',
    '| peer | median ms | per link ms | vs tc per link | vs tc -batch |',
    '|---|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.p} | ${r.m.toFixed(1)} | ${(r.m / N).toFixed(3)} | ${(r.m / perLink).toFixed(2)}x | ${(r.m / batch).toFixed(2)}x |`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().then(
  () => process.exit(0),
  async (e) => {
    process.stderr.write(`bench:tc failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    await topology.down(base(false)).catch(() => undefined);
    process.exit(1);
  },
);
