/** `netns-kit status [FILE]`: what is live, as tables, and whether it matches a topology file. */
import path from 'node:path';
import { netns, topology, type TopologyStatus } from '../index';
import { Netns, RUN_DIR } from '../netns';
import { liveStatus } from '../topology/status';
import { requireNetworkPrivileges } from '../privileges';
import { loadTopologyArg } from './topology-file';
import { resolve } from '../topology/validate';
import type { NetworkWatch } from '../watch';
import { expectPositionals, parseArgs } from './args';
import type { Command } from './command';
import { EXIT, UsageError } from './cli-errors';
import { natRuleText } from './graph-model';
import { formatShape } from '../shape';
import { describeRule } from '../firewall-rules';
import { printJson, table, type Io } from './output';

/** "1.2 MB/830 pkt": a link counter pair, short enough for a table. */
function counters(bytes: number, packets: number): string {
  const units: Array<[string, number]> = [['GB', 1e9], ['MB', 1e6], ['kB', 1e3]];
  const u = units.find(([, f]) => bytes >= f);
  return `${u ? `${(bytes / u[1]).toFixed(1)} ${u[0]}` : `${bytes} B`}/${packets} pkt`;
}

/** Prints the status as readable tables (namespaces, links, addresses, routes, NAT rules). */
export function printStatus(io: Io, st: TopologyStatus): void {
  const out = io.stdout;
  const section = (title: string, headers: string[], rows: string[][]) => {
    if (!rows.length) return;
    out.write(`\n${title}\n${table(headers, rows)}`);
  };
  section(
    'NAMESPACES',
    ['NAME', 'PRESENT', 'CREATED BY', 'LINKS'],
    st.namespaces.map((n) => [
      n.name,
      n.exists ? 'yes' : 'MISSING',
      n.existing ? '(existing, not owned)' : (n.createdBy ?? '-'),
      String(n.links.filter((l) => l.kind !== 'loopback').length),
    ]),
  );
  section(
    'LINKS',
    ['NAMESPACE', 'LINK', 'KIND', 'STATE', 'MASTER', 'PEER', 'RX', 'TX', 'SHAPE'],
    st.namespaces.flatMap((n) =>
      n.links
        .filter((l) => l.kind !== 'loopback')
        .map((l) => [
          n.name,
          l.name,
          l.kind,
          l.up ? (l.operstate === 'up' ? 'UP' : `up (${l.operstate})`) : 'DOWN',
          l.master ?? '-',
          l.peer ? `${l.peer.netns ?? (l.peer.netnsId === undefined ? n.name : '?')} #${l.peer.index}` : '-',
          l.stats ? counters(l.stats.rxBytes, l.stats.rxPackets) : '-',
          l.stats ? counters(l.stats.txBytes, l.stats.txPackets) : '-',
          formatShape(n.shapes?.[l.name]),
        ]),
    ),
  );
  section(
    'ADDRESSES',
    ['NAMESPACE', 'DEV', 'ADDRESS', 'SCOPE'],
    st.namespaces.flatMap((n) => n.addresses.filter((a) => a.scope !== 'host' && a.scope !== 'link').map((a) => [n.name, a.dev, a.cidr, String(a.scope)])),
  );
  section(
    'ROUTES',
    ['NAMESPACE', 'TO', 'VIA', 'DEV', 'PROTO'],
    st.namespaces.flatMap((n) => n.routes.filter((r) => r.table === 'main').map((r) => [n.name, r.to, r.via ?? '-', r.dev ?? '-', String(r.protocol)])),
  );
  section(
    'NAT',
    ['NAMESPACE', 'ID', 'RULE'],
    st.namespaces.flatMap((n) => n.nat.map((r) => [n.name, r.id, natRuleText(r as { kind: string } & Record<string, unknown>)])),
  );
  // Per table: one line with the three chain policies, then the rules in evaluation order.
  section(
    'FIREWALL',
    ['NAMESPACE', 'TABLE', 'ID', 'RULE'],
    st.namespaces.flatMap((n) =>
      (n.firewall ?? []).flatMap((f) => [
        [n.name, f.table, 'policy', `input ${f.policy.input}, forward ${f.policy.forward}, output ${f.policy.output}`],
        ...f.rules.map((r) => [n.name, f.table, r.id, describeRule(r)]),
      ]),
    ),
  );
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'Show namespaces, links, addresses, routes, NAT and firewall rules, and whether they match a topology file.',
  usage: ['status [FILE|-] [--json]', 'status --match PREFIX [--json]'],
  description: `
With FILE: the topology's namespaces as they are live, as tables, and whether they match the file
(exit code 0) or not (exit code 4, with each difference: what \`up\` would still do, what conflicts).
Without FILE: every named namespace (or those starting with PREFIX).
Equivalent to: \`ip -n NS link\`, \`ip -n NS addr\`, \`ip -n NS route\`, \`nft list table inet nk_NAME\`,
\`nft list table inet nkfw_NAME\` (without FILE: every netns-kit firewall table, e.g. inet netns_kit_fw).`,
  options: [
    { name: 'json', type: 'boolean', description: 'print the status as JSON on stdout' },
    { name: 'match', type: 'string', value: 'PREFIX', description: 'without FILE: only namespaces whose name starts with PREFIX' },
    { name: 'watch', type: 'boolean', description: 'keep showing the status, redrawn whenever a namespace, link, address or route changes (Ctrl-C ends it); with --json one JSON document per line' },
  ],
  examples: ['sudo netns-kit status lab.yaml', 'sudo netns-kit status lab.yaml --json | jq .matches', 'sudo netns-kit status --match nkdemo-', 'sudo netns-kit status lab.yaml --watch'],
  async run(argv, ctx) {
    const a = parseArgs(argv, this.options, this.name);
    expectPositionals(a, 0, 1, 'FILE', this.name);
    const file = a.positionals[0];
    if (file && a.options.match !== undefined) throw new UsageError('--match selects live namespaces; it cannot be used with FILE', this.name);
    if (!file) requireNetworkPrivileges('netns-kit status');
    const t = file ? await loadTopologyArg(file) : undefined;
    const prefix = a.options.match as string | undefined;
    const show = async (): Promise<{ code: number; names: string[] }> => {
      const st = t ? await topology.status(t) : await liveStatus(prefix === undefined ? undefined : (n) => n.startsWith(prefix));
      const code = t && !st.matches ? EXIT.MISMATCH : EXIT.OK;
      const names = st.namespaces.filter((n) => n.exists).map((n) => n.name);
      if (a.options.json) {
        if (a.options.watch) ctx.io.stdout.write(`${JSON.stringify(st)}\n`);
        else printJson(ctx.io, st);
        return { code, names };
      }
      if (a.options.watch && ctx.io.stdout.isTTY) ctx.io.stdout.write('\x1b[2J\x1b[H');
      if (a.options.watch) ctx.io.stdout.write(`${new Date().toISOString()}  `);
      if (t) ctx.io.stdout.write(`topology ${st.name} (${st.state === 'absent' ? 'not up' : st.state}): ${st.matches ? `matches ${file}` : `DIFFERS from ${file}`}\n`);
      else ctx.io.stdout.write(`${st.namespaces.length} named namespaces${prefix ? ` starting with ${prefix}` : ''}\n`);
      printStatus(ctx.io, st);
      if (t && !st.matches) {
        ctx.io.stdout.write(`\nDIFFERENCES (what \`netns-kit up ${file}\` would do, or what stops it)\n`);
        for (const d of st.differences ?? []) ctx.io.stdout.write(`  - ${d}\n`);
      }
      return { code, names };
    };
    const first = await show();
    if (!a.options.watch) return first.code;
    ctx.signalEndsNormally = true;
    // Which namespaces' appearing or disappearing matters: the topology's, or those --match selects.
    // (templates expanded: resolve() gives every member's name)
    const declared = t ? new Set(resolve(t).namespaces.map((n) => n.name)) : undefined;
    const relevant = (name: string) => (declared ? declared.has(name) : prefix === undefined || name.startsWith(prefix));
    await watchAndRedraw(show, first.names, relevant, ctx.signal);
    return EXIT.OK;
  },
};

/**
 * `status --watch`: subscribes to namespaces appearing and disappearing (`ip netns monitor`) and to
 * link, address and route events in every namespace shown (`ip -n NS monitor`), and redraws at
 * most 200 ms after a change (changes within those 200 ms share one drawing). Only namespaces
 * `relevant` accepts count: on a busy machine other namespaces come and go all the time, and a
 * redraw postponed by every such event would never happen. Ends when `signal` aborts (Ctrl-C).
 */
async function watchAndRedraw(show: () => Promise<{ names: string[] }>, initial: string[], relevant: (name: string) => boolean, signal: AbortSignal): Promise<void> {
  const subs = new Map<string, NetworkWatch>();
  let timer: NodeJS.Timeout | undefined;
  let drawing = Promise.resolve();
  const redraw = () => {
    if (timer) return; // a drawing is already due: it will show this change too
    timer = setTimeout(() => {
      timer = undefined;
      drawing = drawing.then(async () => follow((await show()).names)).catch(() => undefined);
    }, 200);
  };
  const drain = async (w: AsyncIterable<object>, filter?: (name: string) => boolean) => {
    try {
      for await (const event of w) {
        const name = 'name' in event && typeof event.name === 'string' ? event.name : undefined;
        if (!filter || name === undefined || filter(name)) redraw();
      }
    } catch {
      redraw(); // the namespace went away: the next drawing shows it
    }
  };
  const follow = (names: string[]) => {
    for (const [name, w] of subs) {
      if (!names.includes(name)) {
        void w.close();
        subs.delete(name);
      }
    }
    for (const name of names) {
      if (subs.has(name)) continue;
      const w = new Netns(name, path.join(RUN_DIR, name)).watch({ links: true, addresses: true, routes: true, signal });
      subs.set(name, w);
      void drain(w);
      // A change between the drawing that showed this namespace and the subscription becoming live
      // is never announced (nor is a namespace added before netns.watch() started): once live,
      // draw again.
      void w.ready.then(redraw, () => undefined);
    }
  };
  follow(initial);
  const namespaces = netns.watch({ signal });
  void drain(namespaces, relevant);
  void namespaces.ready.then(redraw, () => undefined);
  await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
  clearTimeout(timer);
  await Promise.all([...subs.values()].map((w) => w.close()));
  await drawing;
}
