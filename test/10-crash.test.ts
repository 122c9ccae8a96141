// Issue 6, crashes: a child bringing up a 200-namespace topology (and then changing its NAT rules)
// is killed with SIGKILL at random moments — during namespace creation, during veth creation,
// during the NAT transaction. Afterwards the NAT table is either wholly old or wholly new, and gc()
// (or `up` again followed by `down`) leaves nothing of ours: namespaces, links, bind mounts, NAT
// tables, registry records.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { gc, netns, topology, type Topology } from '../lib/index';
import { Netns } from '../lib/netns';
import { registryDir } from '../lib/registry';
import { natTableName } from '../lib/topology/validate';
import { leftoverNamespaces, NS_PREFIX, RUN } from './support/sandbox';

type Kill = { when: 'progress'; at: number } | { when: 'delay'; ms: number } | { when: 'after-first'; ms: number };

const COUNT = 200;

function topologyFor(trial: number, nat: 'v1' | 'v2'): Topology {
  const prefix = `${NS_PREFIX}crash${trial}`;
  const rules: NonNullable<NonNullable<Topology['namespaces']>[number]['nat']> =
    nat === 'v1'
      ? [
          { kind: 'masquerade', source: '10.77.0.0/16' },
          { kind: 'portForward', protocol: 'tcp', port: 8080, to: { address: '10.77.0.2', port: 80 } },
        ]
      : [
          { kind: 'masquerade', source: '10.77.0.0/16' },
          { kind: 'portForward', protocol: 'udp', port: 5353, to: { address: '10.77.0.3', port: 53 } },
          { kind: 'service', vip: '10.96.0.10', port: 80, protocol: 'tcp', backends: [{ address: '10.77.0.2', port: 80 }, { address: '10.77.0.3', port: 80 }] },
        ];
  return {
    name: `nkt-${RUN}-crash${trial}`,
    namespaces: [{ name: `${prefix}-hub`, bridges: [{ name: 'br0', addresses: ['10.77.0.1/16'] }], nat: rules }],
    templates: [
      {
        count: COUNT,
        name: `${prefix}-m{i}`,
        uplink: { name: 'eth0', peerName: 'v{i}', netns: `${prefix}-hub`, bridge: 'br0' },
        addresses: [{ pool: '10.77.0.0/16', start: 2 }],
        routes: [{ to: 'default', via: '10.77.0.1' }],
      },
    ],
  };
}

/** Runs the child and SIGKILLs it at the chosen moment; resolves with what it had reported. */
function runAndKill(first: Topology, second: Topology | undefined, kill: Kill): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'support', 'crash-child.js'), JSON.stringify({ first, second })], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let buf = '';
    let armed = false;
    const fire = (ms: number) => {
      if (armed) return;
      armed = true;
      setTimeout(() => child.kill('SIGKILL'), ms);
    };
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (kill.when === 'delay' && line === 'START') fire(kill.ms);
        if (kill.when === 'progress' && line.startsWith('P ') && Number(line.split(' ')[1]) >= kill.at) fire(0);
        if (kill.when === 'after-first' && line === 'FIRST-DONE') fire(kill.ms);
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(lines);
      else reject(new Error(`child was not killed (exit ${code}): ${lines.slice(-3).join(' | ')}`));
    });
  });
}

/** The NAT rule kinds/ports the hub's table holds, or undefined when the hub does not exist. */
async function natState(t: Topology): Promise<string | undefined> {
  const hub = t.namespaces![0].name;
  if (!existsSync(path.join('/run/netns', hub))) return undefined;
  const rules = await new Netns(hub, path.join('/run/netns', hub)).natTable(natTableName(t.name)).list().catch(() => []);
  return rules
    .map((r) => `${r.kind}:${'port' in r ? JSON.stringify(r.port) : ''}`)
    .sort()
    .join(' ');
}

const V1 = 'masquerade: portForward:8080';
const V2 = 'masquerade: portForward:5353 service:80';

function ours(trial: number): string[] {
  return leftoverNamespaces().filter((n) => n.startsWith(`${NS_PREFIX}crash${trial}-`));
}

// At least 10 trials: early (namespace creation), middle (veth + address + route of members),
// late, random delays, and during the NAT transaction of a second `up` that changes the rules.
const trials: Array<{ kill: Kill; second: boolean; cleanup: 'gc' | 'up-down' }> = [
  { kill: { when: 'progress', at: 1 }, second: false, cleanup: 'gc' },
  { kill: { when: 'progress', at: 3 + randomInt(20) }, second: false, cleanup: 'up-down' },
  { kill: { when: 'progress', at: 40 + randomInt(60) }, second: false, cleanup: 'gc' },
  { kill: { when: 'progress', at: 100 + randomInt(90) }, second: false, cleanup: 'up-down' },
  // May land after the NAT step completed the topology (then gc rightly keeps it): up + down.
  { kill: { when: 'progress', at: COUNT }, second: false, cleanup: 'up-down' },
  { kill: { when: 'delay', ms: randomInt(30) }, second: false, cleanup: 'gc' },
  // Anywhere from node's start-up to after completion, depending on the machine's speed.
  { kill: { when: 'delay', ms: 200 + randomInt(800) }, second: false, cleanup: 'up-down' },
  // The first `up` completed, so the topology is recorded as up and gc() rightly keeps it: these
  // are cleaned up by `up` again (which must converge on the new rules) and `down`.
  { kill: { when: 'after-first', ms: 0 }, second: true, cleanup: 'up-down' },
  { kill: { when: 'after-first', ms: randomInt(5) }, second: true, cleanup: 'up-down' },
  { kill: { when: 'after-first', ms: 5 + randomInt(20) }, second: true, cleanup: 'up-down' },
  { kill: { when: 'after-first', ms: randomInt(60) }, second: true, cleanup: 'up-down' },
];

// Whatever an assertion left behind (a failed trial), removed as the topology it belongs to.
afterAll(async () => {
  for (let i = 0; i < trials.length; i++) await topology.down({ name: topologyFor(i, 'v1').name!, namespaces: [] }).catch(() => undefined);
  await gc({ prefix: `${NS_PREFIX}crash` });
});

describe.each(trials.map((t, i) => [i, t] as const))('trial %i', (i, { kill, second, cleanup }) => {
  test(`SIGKILL (${JSON.stringify(kill)}), then ${cleanup}: NAT wholly old or new, nothing left`, async () => {
    const v1 = topologyFor(i, 'v1');
    const v2 = topologyFor(i, 'v2');
    const lines = await runAndKill(v1, second ? v2 : undefined, kill);
    expect(lines.filter((l) => l.startsWith('ERROR'))).toEqual([]);

    // NAT: the table is one of the two complete sets (or absent, when the kill came before the NAT step).
    const nat = await natState(v1);
    const allowed = second ? [V1, V2] : [undefined, '', V1];
    expect(allowed).toContain(nat);

    if (cleanup === 'gc') {
      // Only this file's objects: other test files run gc concurrently on their own.
      const report = await gc({ prefix: `${NS_PREFIX}crash${i}` });
      expect(report.errors).toEqual([]);
    } else {
      // The interrupted topology's own record lets `up` adopt what was made, then `down` removes it.
      const h = await topology.up(second ? v2 : v1);
      expect(await natState(v1)).toBe(second ? V2 : V1);
      await h.down();
    }
    expect(ours(i)).toEqual([]);
    const mounts = execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' }).split('\n').filter((m) => m.startsWith(`/run/netns/${NS_PREFIX}crash${i}-`));
    expect(mounts).toEqual([]);
    expect(existsSync(path.join(registryDir(), 'topologies', `${v1.name}.json`))).toBe(false);
    expect((await netns.list()).some((n) => n.name?.startsWith(`${NS_PREFIX}crash${i}-`))).toBe(false);
  }, 240_000);
});
