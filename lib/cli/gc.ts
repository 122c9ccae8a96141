/** `netns-kit gc`: removes what netns-kit created and lost track of (and nothing it did not create). */
import { gc } from '../index';
import { expectPositionals, parseArgs } from './args';
import type { Command } from './command';
import { EXIT } from './cli-errors';
import { printJson, table } from './output';

export const gcCommand: Command = {
  name: 'gc',
  summary: 'Remove namespaces, links and NAT tables netns-kit created and lost track of.',
  usage: ['gc [--dry-run] [--json]'],
  description: `
netns-kit records what it creates under /run/netns-kit. gc removes what was lost: temporary
namespaces (\`netns.create(name, { temporary: true })\`) whose creating process died without deleting them, and everything of a topology whose \`up\` was killed
half-way. It keeps what is still owned (a running process, a completed topology, a persistent namespace
— plain \`netns.create()\`, like \`ip netns add\` —, a kept demo) and never touches anything it did not create (\`ip netns add\`, Docker, ...). --dry-run only
lists what would go.`,
  options: [
    { name: 'dry-run', short: 'n', type: 'boolean', description: 'only list what would be removed' },
    { name: 'json', type: 'boolean', description: 'print the report as JSON on stdout' },
  ],
  examples: ['sudo netns-kit gc --dry-run', 'sudo netns-kit gc', 'sudo netns-kit gc --json | jq ".namespaces | length"'],
  async run(argv, ctx) {
    const a = parseArgs(argv, this.options, this.name);
    expectPositionals(a, 0, 0, '', this.name);
    const dryRun = a.options['dry-run'] === true;
    const r = await gc({ dryRun });
    if (a.options.json) {
      printJson(ctx.io, { dryRun, ...r });
      return r.errors.length ? EXIT.FAILED : EXIT.OK;
    }
    const rows: string[][] = [
      ...r.namespaces.map((n) => ['namespace', n, '']),
      ...r.links.map((l) => ['link', l.name, l.netns]),
      ...r.natTables.map((t) => ['nat table', t.table, t.netns]),
      ...r.firewallTables.map((t) => ['firewall table', t.table, t.netns]),
      ...r.topologies.map((t) => ['topology', t, '(up never completed)']),
    ];
    const verb = dryRun ? 'would remove' : 'removed';
    if (rows.length === 0) ctx.io.stdout.write(`nothing to collect: everything netns-kit created is still owned\n`);
    else ctx.io.stdout.write(`gc ${verb}:\n${table(['WHAT', 'NAME', 'IN'], rows)}`);
    if (r.staleMarkers) ctx.io.stdout.write(`${dryRun ? 'would drop' : 'dropped'} ${r.staleMarkers} stale registry markers\n`);
    for (const e of r.errors) ctx.io.stderr.write(`netns-kit gc: could not remove: ${e}\n`);
    return r.errors.length ? EXIT.FAILED : EXIT.OK;
  },
};
