/**
 * `netns-kit demo`: the network namespaces tutorial (red, blue, orange, gray; a veth cable; the
 * bridge v-net-0; routes; masquerade; the 8080 -> 80 port forward), done live in throwaway
 * namespaces and verified step by step with real traffic. A namespace plays "this machine" (the
 * tutorial's host) and another plays the internet, so the machine's own network is never touched.
 * Everything is removed at the end, on an error and on Ctrl-C, unless --keep asks otherwise.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { netns, type Netns } from '../index';
import { randomLocalMac } from '../links';
import { processGone, readNamespaceMarker } from '../registry';
import * as validate from '../validate';
import { expectPositionals, parseArgs } from './args';
import type { Command, Context } from './command';
import { CheckFailed, EXIT, Interrupted } from './cli-errors';
import { requireNetworkPrivileges } from '../privileges';
import { demoNatSteps } from './demo-nat';
import { LAN_ROLES, PLAN, ROLES, type DemoStep, type Role } from './demo-plan';
import { killAllIn } from './ns-processes';
import { duration } from './output';
import { ping, tcpAsk, TcpServer } from './traffic';

export const DEFAULT_PREFIX = 'nkdemo';
/** Matches the namespaces a default-prefixed demo makes: nkdemo-1a2b-red ... */
const DEMO_NAME = new RegExp(`^${DEFAULT_PREFIX}-[0-9a-f]{4}-(${ROLES.join('|')})$`);

/** One demo run: its namespaces, the servers it started, and how it prints. */
export class Demo {
  readonly names: Record<Role, string>;
  readonly ns = {} as Record<Role, Netns>;
  readonly servers: TcpServer[] = [];

  constructor(
    readonly prefix: string,
    private readonly ctx: Context,
    /** --keep: the namespaces are recorded as persistent, so `netns-kit gc` leaves a kept demo alone */
    readonly keep = false,
  ) {
    this.names = Object.fromEntries(ROLES.map((r) => [r, `${prefix}-${r}`])) as Record<Role, string>;
  }

  /** Throws Interrupted as soon as Ctrl-C was pressed, so no step starts after it. */
  checkAborted(): void {
    if (this.ctx.signal.aborted) throw this.ctx.signal.reason instanceof Error ? this.ctx.signal.reason : new Interrupted('SIGINT');
  }

  fail(message: string): never {
    throw new CheckFailed(message);
  }

  async server(role: Role, address: string, port: number, greeting: string): Promise<TcpServer> {
    const s = await TcpServer.start(this.ns[role], address, port, greeting);
    this.servers.push(s);
    return s;
  }

  /** A ping that must be answered; returns its reply line. */
  async mustPing(from: Role, address: string): Promise<string> {
    const r = await ping(this.ns[from], address);
    if (!r.ok) this.fail(`${from} -> ${address}: no ping reply (${r.line})`);
    return `${from} -> ${address}: ${r.line}`;
  }

  steps(): DemoStep[] {
    const n = this.names;
    const lan = LAN_ROLES;
    return [
      {
        title: 'Create the namespaces red, blue, orange and gray',
        commands: [...lan.map((r) => `ip netns add ${n[r]}`), `(and ${n.host} playing this machine, ${n.internet} playing the internet)`],
        run: async (t) => {
          const created = await Promise.allSettled(
            ROLES.map((r) => netns.create(n[r], { loopbackUp: r === 'host' || r === 'internet', temporary: !this.keep }).then((ns) => (this.ns[r] = ns))),
          );
          const failed = created.find((c): c is PromiseRejectedResult => c.status === 'rejected');
          if (failed) throw failed.reason;
          t.made();
          const lines: string[] = [];
          for (const r of lan) {
            const [links, routes, neigh] = await Promise.all([this.ns[r].links.list(), this.ns[r].routes.list(), this.ns[r].neighbors.list()]);
            if (links.length !== 1 || links[0].name !== 'lo' || links[0].up) this.fail(`${r} should hold only lo, down; it has ${links.map((l) => l.name).join(', ')}`);
            if (routes.length || neigh.length) this.fail(`${r} should have no routes and no ARP entries`);
          }
          lines.push('each holds only lo (DOWN), no routes, no ARP entries: isolated from the host and each other');
          return lines;
        },
      },
      {
        title: 'Connect red and blue directly with a veth pair (a virtual cable)',
        commands: [
          `ip -n ${n.red} link add veth-red type veth peer name veth-blue netns ${n.blue}`,
          `ip -n ${n.red} addr add 192.168.15.1/24 dev veth-red; ip -n ${n.red} link set veth-red up`,
          `ip -n ${n.blue} addr add 192.168.15.2/24 dev veth-blue; ip -n ${n.blue} link set veth-blue up`,
        ],
        run: async (t) => {
          const { red, blue } = this.ns;
          await red.links.add({ kind: 'veth', name: 'veth-red', up: true, peer: { name: 'veth-blue', netns: blue, up: true } });
          await Promise.all([red.addresses.add('veth-red', '192.168.15.1/24'), blue.addresses.add('veth-blue', '192.168.15.2/24')]);
          t.made();
          const link = await red.links.get('veth-red');
          if (link.kind !== 'veth' || link.peer?.netns !== n.blue) this.fail(`veth-red's peer should be in ${n.blue}, is in ${link.peer?.netns ?? '?'}`);
          return [`veth-red is in red, its peer veth-blue in blue (ip -n ${n.red} link: veth-red@if${link.peer.index} link-netns ${n.blue})`];
        },
      },
      {
        title: 'Ping across the cable, both ways',
        checkOnly: true,
        commands: [`ip netns exec ${n.red} ping 192.168.15.2`, `ip netns exec ${n.blue} ping 192.168.15.1`],
        run: async (t) => {
          t.made();
          return Promise.all([this.mustPing('red', PLAN.lanAddress.blue), this.mustPing('blue', PLAN.lanAddress.red)]);
        },
      },
      {
        title: 'Look at the ARP tables and routes',
        checkOnly: true,
        commands: [`ip -n ${n.red} neigh`, `ip -n ${n.blue} neigh`, `ip -n ${n.host} neigh`, `ip -n ${n.red} route`],
        run: async (t) => {
          t.made();
          const { red, blue, host } = this.ns;
          const [redNeigh, blueNeigh, hostNeigh, redLink, blueLink, redRoutes] = await Promise.all([
            red.neighbors.list({ family: 4 }),
            blue.neighbors.list({ family: 4 }),
            host.neighbors.list(),
            red.links.get('veth-red'),
            blue.links.get('veth-blue'),
            red.routes.list({ family: 4 }),
          ]);
          const inRed = redNeigh.find((e) => e.address === PLAN.lanAddress.blue);
          const inBlue = blueNeigh.find((e) => e.address === PLAN.lanAddress.red);
          if (!inRed || inRed.mac !== blueLink.mac) this.fail(`red's ARP table should map 192.168.15.2 to veth-blue's ${blueLink.mac}; has ${inRed?.mac ?? 'nothing'}`);
          if (!inBlue || inBlue.mac !== redLink.mac) this.fail(`blue's ARP table should map 192.168.15.1 to veth-red's ${redLink.mac}; has ${inBlue?.mac ?? 'nothing'}`);
          if (hostNeigh.length) this.fail(`the host should know nothing of red and blue, its ARP table has ${hostNeigh.length} entries`);
          const route = redRoutes.find((r) => r.to === PLAN.lan && r.dev === 'veth-red');
          if (!route) this.fail('red should have the connected route 192.168.15.0/24 dev veth-red');
          return [
            `red:  192.168.15.2 at ${inRed.mac} (veth-blue's MAC) ${inRed.state} on veth-red`,
            `blue: 192.168.15.1 at ${inBlue.mac} (veth-red's MAC) ${inBlue.state} on veth-blue`,
            'host: no ARP entries: it knows nothing of red and blue',
            `red's only route: ${route.to} dev ${route.dev} (the kernel's, from the address)`,
          ];
        },
      },
      {
        title: 'Remove the cable (the tutorial deletes red and blue; deleting one end of the pair does the same to the link)',
        commands: [`ip -n ${n.red} link del veth-red`],
        run: async (t) => {
          await this.ns.red.links.delete('veth-red');
          t.made();
          const left = (await this.ns.blue.links.list()).filter((l) => l.name !== 'lo');
          if (left.length) this.fail(`blue should have lost veth-blue with its peer, still has ${left.map((l) => l.name).join(', ')}`);
          return ['veth-blue went with veth-red: blue holds only lo again'];
        },
      },
      {
        title: `Create the bridge ${PLAN.bridge} (a virtual switch) in the host`,
        commands: [`ip -n ${n.host} link add ${PLAN.bridge} type bridge`, `ip -n ${n.host} link set dev ${PLAN.bridge} up`],
        run: async (t) => {
          await this.ns.host.links.add({ kind: 'bridge', name: PLAN.bridge, up: true, mac: randomLocalMac() });
          t.made();
          const br = await this.ns.host.links.get(PLAN.bridge);
          if (br.kind !== 'bridge' || !br.up) this.fail(`${PLAN.bridge} should be an up bridge, is ${br.kind} ${br.up ? 'up' : 'down'}`);
          return [`${PLAN.bridge}: kind bridge, UP, mac ${br.mac}, no ports yet`];
        },
      },
      {
        title: 'Plug the four namespaces into the bridge with a veth pair each',
        commands: [
          ...lan.map((r) => `ip -n ${n.host} link add veth-${r}-br master ${PLAN.bridge} up type veth peer name veth-${r} netns ${n[r]}`),
          ...lan.map((r) => `ip -n ${n[r]} addr add ${PLAN.lanAddress[r]}/24 dev veth-${r}; ip -n ${n[r]} link set veth-${r} up`),
        ],
        run: async (t) => {
          const { host } = this.ns;
          for (const r of lan) {
            this.checkAborted();
            await host.links.add({ kind: 'veth', name: `veth-${r}-br`, master: PLAN.bridge, up: true, peer: { name: `veth-${r}`, netns: this.ns[r], up: true } });
          }
          await Promise.all(lan.map((r) => this.ns[r].addresses.add(`veth-${r}`, `${PLAN.lanAddress[r]}/24`)));
          t.made();
          const ports = (await host.links.list()).filter((l) => l.master === PLAN.bridge).map((l) => l.name);
          if (ports.length !== 4) this.fail(`${PLAN.bridge} should have 4 ports, has ${ports.join(', ') || 'none'}`);
          const pings = await Promise.all((['blue', 'orange', 'gray'] as const).map((r) => this.mustPing('red', PLAN.lanAddress[r])));
          return [`${PLAN.bridge} has 4 ports: ${ports.sort().join(', ')}`, ...pings];
        },
      },
      {
        title: `Give the host an address on the bridge: ${PLAN.bridgeAddress}/24`,
        commands: [`ip -n ${n.host} addr add ${PLAN.bridgeAddress}/24 dev ${PLAN.bridge}`],
        run: async (t) => {
          await this.ns.host.addresses.add(PLAN.bridge, `${PLAN.bridgeAddress}/24`);
          t.made();
          return [await this.mustPing('red', PLAN.bridgeAddress)];
        },
      },
      {
        title: `Reach the host's own network ${PLAN.hostNet} through the host (the tutorial's enp1s0 at ${PLAN.hostAddress})`,
        commands: [
          `(the host's other link: ip -n ${n.host} link add eth0 type veth peer name eth0 netns ${n.internet}; ip -n ${n.host} addr add ${PLAN.hostAddress}/24 dev eth0)`,
          `ip netns exec ${n.red} ping ${PLAN.hostAddress}   # connect: Network is unreachable`,
          ...lan.map((r) => `ip -n ${n[r]} route add ${PLAN.hostNet} via ${PLAN.bridgeAddress}`),
        ],
        run: async (t) => {
          const { host, internet } = this.ns;
          // The host's "enp1s0": a link to the namespace playing the internet, which also holds
          // the host's gateway (the tutorial's _gateway) and a server standing for "Google".
          await host.links.add({ kind: 'veth', name: 'eth0', up: true, peer: { name: 'eth0', netns: internet, up: true } });
          await Promise.all([
            host.addresses.add('eth0', `${PLAN.hostAddress}/24`),
            internet.addresses.add('eth0', `${PLAN.gateway}/24`),
            internet.addresses.add('lo', `${PLAN.internetServer}/32`),
          ]);
          const before = await ping(this.ns.red, PLAN.hostAddress);
          if (before.ok || !/unreachable/i.test(before.line)) this.fail(`without a route, red should get "Network is unreachable" for ${PLAN.hostAddress}, got: ${before.line}`);
          await Promise.all(lan.map((r) => this.ns[r].routes.add({ to: PLAN.hostNet, via: PLAN.bridgeAddress })));
          t.made();
          const after = await Promise.all(lan.map((r) => this.mustPing(r, PLAN.hostAddress)));
          return [`before the route: red -> ${PLAN.hostAddress}: ${before.line}`, ...after.map((l) => `with the route: ${l}`)];
        },
      },
      {
        title: 'Add the default route, so the namespaces can try to go out to the internet',
        commands: [
          ...lan.map((r) => `ip -n ${n[r]} route add default via ${PLAN.bridgeAddress}`),
          `(the host routes: ip netns exec ${n.host} sysctl -w net.ipv4.ip_forward=1; ip -n ${n.host} route add default via ${PLAN.gateway})`,
        ],
        run: async (t) => {
          const { host } = this.ns;
          await Promise.all(lan.map((r) => this.ns[r].routes.add({ to: 'default', via: PLAN.bridgeAddress })));
          await host.sysctl.set('net.ipv4.ip_forward', 1);
          await host.routes.add({ to: 'default', via: PLAN.gateway });
          t.made();
          await this.server('internet', PLAN.internetServer, PLAN.servicePort, 'hello from the internet');
          const r = await tcpAsk(this.ns.red, PLAN.internetServer, PLAN.servicePort, 500);
          if (r.ok || !r.text.startsWith('ETIMEDOUT')) this.fail(`without NAT, red should get no answer from ${PLAN.internetServer}:80, got: ${r.text}`);
          return [
            `red -> ${PLAN.internetServer}:80 (a TCP server in the internet): ${r.text}`,
            `the packets leave with source ${PLAN.lanAddress.red}, a private address the internet has no route back to`,
          ];
        },
      },
      ...demoNatSteps(this),
    ];
  }

  /** Stops the servers and deletes the namespaces (their links, bridge and NAT tables go with them). */
  async remove(): Promise<string[]> {
    await Promise.all(this.servers.splice(0).map((s) => s.stop()));
    return removeNamespaces(ROLES.map((r) => this.names[r]));
  }

  exploreText(): string {
    const n = this.names;
    const node = 'node';
    return `
The demo network is still up. Explore it:
  ip netns list | grep ${this.prefix}
  ip -n ${n.red} addr                 # veth-red with 192.168.15.1/24
  ip -n ${n.red} route
  ip -n ${n.host} -d link show master ${PLAN.bridge}
  netns-kit exec ${n.red} -- ping -c1 192.168.15.2
  netns-kit exec ${n.gray} -- ping -c1 ${PLAN.internetServer}
  ip netns exec ${n.host} nft list table inet netns_kit
  netns-kit graph --match ${this.prefix}- -o demo.svg
A web server in red, reached from the internet through the host's port ${PLAN.forwardPort}:
  netns-kit exec ${n.red} -- ${node} -e "require('http').createServer((q, s) => s.end('hi from red\\n')).listen(80)" &
  netns-kit exec ${n.internet} -- ${node} -e "fetch('http://${PLAN.hostAddress}:${PLAN.forwardPort}').then((r) => r.text()).then(console.log)"
Remove it:
  netns-kit demo --clean ${this.prefix}
`;
  }
}

/** Deletes the given namespaces (stopping what runs inside them first); returns the names removed. */
export async function removeNamespaces(names: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  await Promise.all(
    names.map(async (name) => {
      const ns = await netns.open(name).catch(() => undefined);
      if (!ns) {
        // a /run/netns entry that is no longer a mounted namespace is removed too
        await netns.delete(name, { missingOk: true }).catch(() => undefined);
        return;
      }
      await killAllIn(ns.path);
      ns.release();
      await netns.delete(name, { missingOk: true });
      removed.push(name);
    }),
  );
  return removed.sort();
}

/** Names under /run/netns that a demo with this prefix (or any default-prefixed demo) made. */
export async function demoNamespaces(prefix?: string): Promise<string[]> {
  const all = (await netns.list()).map((n) => n.name!);
  if (prefix === undefined) return all.filter((n) => DEMO_NAME.test(n));
  return all.filter((n) => ROLES.some((r) => n === `${prefix}-${r}`));
}

/** True when the namespace belongs to a demo that is running right now (its process is alive). */
async function runningDemo(name: string): Promise<boolean> {
  const owner = (await readNamespaceMarker(name).catch(() => undefined))?.owner;
  return owner !== undefined && 'pid' in owner && !processGone(owner);
}

function checkPrefix(prefix: string): string {
  for (const r of ROLES) validate.netnsName(`${prefix}-${r}`);
  return prefix;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run the network namespaces tutorial live, verify every step with real traffic, and remove it.',
  usage: ['demo [--keep] [--prefix PREFIX]', 'demo --clean [PREFIX]'],
  description: `
Builds the tutorial's network in throwaway namespaces: red, blue, orange and gray; a veth pair
between red and blue (pings and ARP entries); the bridge v-net-0 with four ports; the host's address
192.168.15.5/24 on it; a route to the host's network; the default route; masquerade; and the port
forward 8080 -> 192.168.15.1:80. A namespace PREFIX-host plays this machine and PREFIX-internet
plays the internet, so the machine's own network is never changed. Each step prints what it did,
the \`ip\` commands it stands for, what it verified (ping replies, ARP entries, the source address a
TCP server in the internet sees, the answer through the forwarded port) and how long it took.
At the end everything is removed, also on an error or Ctrl-C.

Namespaces are named PREFIX-red, PREFIX-blue, ... with PREFIX = nkdemo-XXXX (random) unless given.`,
  options: [
    { name: 'keep', type: 'boolean', description: 'leave the network up and print commands to explore and remove it' },
    { name: 'prefix', type: 'string', value: 'PREFIX', description: 'name prefix of the demo namespaces (default nkdemo-XXXX)' },
    { name: 'clean', type: 'boolean', description: 'remove a kept demo (PREFIX), or every nkdemo-XXXX-* demo not running now' },
  ],
  examples: ['sudo netns-kit demo', 'sudo netns-kit demo --keep', 'sudo netns-kit demo --clean nkdemo-1a2b', 'sudo netns-kit demo --clean'],
  async run(argv, ctx) {
    const a = parseArgs(argv, this.options, this.name);
    if (a.options.clean) {
      expectPositionals(a, 0, 1, 'PREFIX', this.name);
      const prefix = a.positionals[0] ?? (a.options.prefix as string | undefined);
      if (prefix !== undefined) checkPrefix(prefix);
      // Without a PREFIX, a demo that is running right now (in another terminal) is left alone.
      let names = await demoNamespaces(prefix);
      if (prefix === undefined) names = (await Promise.all(names.map(async (n) => ((await runningDemo(n)) ? undefined : n)))).filter((n): n is string => n !== undefined);
      const removed = await removeNamespaces(names);
      ctx.io.stdout.write(removed.length ? `removed ${removed.length} namespaces: ${removed.join(' ')}\n` : 'no demo namespaces found\n');
      return EXIT.OK;
    }
    expectPositionals(a, 0, 0, '', this.name);
    const prefix = checkPrefix((a.options.prefix as string | undefined) ?? `${DEFAULT_PREFIX}-${randomBytes(2).toString('hex')}`);
    requireNetworkPrivileges('netns-kit demo');
    const taken = await demoNamespaces(prefix);
    if (taken.length) throw new CheckFailed(`namespaces with prefix ${prefix} exist already (${taken.join(' ')}); pick another --prefix or run \`netns-kit demo --clean ${prefix}\``);
    const keep = a.options.keep === true;
    return runDemo(new Demo(prefix, ctx, keep), ctx, keep);
  },
};

async function runDemo(demo: Demo, ctx: Context, keep: boolean): Promise<number> {
  const out = ctx.io.stdout;
  const n = demo.names;
  out.write(`netns-kit demo: the network namespaces tutorial, live\n`);
  out.write(`  red, blue, orange, gray are ${demo.prefix}-{red,blue,orange,gray}; ${n.host} plays this machine, ${n.internet} the internet\n\n`);
  const started = performance.now();
  const steps = demo.steps();
  let ok = false;
  let cleanupError: unknown;
  try {
    for (const [i, step] of steps.entries()) {
      demo.checkAborted();
      const t0 = performance.now();
      let t1 = NaN;
      out.write(`${String(i + 1).padStart(2)}/${steps.length}  ${step.title}\n`);
      for (const c of step.commands) out.write(`       $ ${c}\n`);
      let lines: string[];
      try {
        lines = await step.run({ made: () => (t1 = performance.now()) });
      } catch (e) {
        // After Ctrl-C a failed check only says the interrupt killed its helpers: no ✗ for it.
        if (e instanceof CheckFailed && !ctx.signal.aborted) out.write(`       ✗ ${e.message}\n`);
        throw e;
      }
      const t2 = performance.now();
      for (const l of lines) out.write(`       ✓ ${l}\n`);
      if (step.checkOnly || Number.isNaN(t1)) out.write(`       verified in ${duration(t2 - t0)}\n\n`);
      else out.write(`       done in ${duration(t1 - t0)}, verified in ${duration(t2 - t1)}\n\n`);
    }
    ok = true;
  } finally {
    const interrupted = ctx.signal.aborted;
    if (keep && !interrupted) {
      // the demo's servers would keep this process (and the namespaces) busy: stop them
      await Promise.all(demo.servers.splice(0).map((s) => s.stop()));
      if (!ok) out.write(`\nThe demo stopped at a failed step; it is left up as --keep asked.\n`);
      out.write(demo.exploreText());
    } else {
      const t0 = performance.now();
      // A clean-up failure must not hide why the demo stopped: it is reported here, and only
      // thrown when the demo itself succeeded.
      const removed = await demo.remove().catch((e: unknown) => {
        out.write(`✗ removing the demo failed: ${(e as Error).message}\n`);
        if (ok) cleanupError = e;
        return [] as string[];
      });
      const left = await demoNamespaces(demo.prefix);
      const msg = `removed ${removed.length} namespaces (with them every veth, the bridge and the NAT table) in ${duration(performance.now() - t0)}`;
      if (left.length) {
        out.write(`✗ ${msg}, but ${left.join(' ')} remain: run \`netns-kit demo --clean ${demo.prefix}\`\n`);
        if (ok && !cleanupError) cleanupError = new CheckFailed(`demo namespaces remain after clean-up: ${left.join(' ')}`);
      } else {
        out.write(`${ok ? '' : '\n'}✓ ${msg}; nothing of the demo is left\n`);
      }
    }
    if (ok && !cleanupError) out.write(`\nAll ${steps.length} steps verified in ${duration(performance.now() - started)}.\n`);
  }
  if (cleanupError) throw cleanupError;
  return EXIT.OK;
}
