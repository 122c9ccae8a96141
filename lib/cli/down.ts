/** `netns-kit down FILE`: removes exactly what a topology created, and nothing else. */
import { performance } from 'node:perf_hooks';
import { topology, type Progress } from '../index';
import { loadAnyTopologyArg } from './topology-file';
import { expectPositionals, parseArgs } from './args';
import type { Command } from './command';
import { EXIT, UsageError } from './cli-errors';
import { duration, printJson, ProgressReporter } from './output';

export const downCommand: Command = {
  name: 'down',
  summary: 'Remove what a topology file created (namespaces, links, NAT tables), and nothing else.',
  usage: ['down FILE [--wait] [--json]', 'down FILE --host NAME [--wait] [--json]', 'down - [--wait] [--json]   (the topology on stdin)'],
  description: `
Deletes the namespaces the topology created (their links, bridges and NAT rules go with them), and in
namespaces it does not own (\`existing: true\`) only the links and NAT table it added. Namespaces of
the same name that the topology did not create are left alone and listed as kept. Running it when
nothing is up is not an error. Like \`ip netns del\`, it returns once the names are gone and the kernel
finishes tearing the namespaces down in the background; with --wait it returns only once the kernel
has finished (a namespace a process still holds then fails it, naming the namespace). For a multi-host
topology, --host NAME removes only that host's part (its own namespace stays).`,
  options: [
    { name: 'host', type: 'string', value: 'NAME', description: "multi-host topology: remove this host's part only" },
    { name: 'wait', type: 'boolean', description: 'return only once the kernel has finished tearing the namespaces down' },
    { name: 'json', type: 'boolean', description: 'print the result as JSON on stdout' },
  ],
  examples: ['sudo netns-kit down lab.yaml', 'sudo netns-kit down lab.yaml --wait', 'sudo netns-kit down lab.yaml --json'],
  async run(argv, ctx) {
    const a = parseArgs(argv, this.options, this.name);
    expectPositionals(a, 1, 1, 'topology FILE', this.name);
    const file = await loadAnyTopologyArg(a.positionals[0]);
    const host = typeof a.options.host === 'string' ? a.options.host : undefined;
    if (host !== undefined && !('multiHost' in file)) throw new UsageError(`--host needs a multi-host topology (with "hosts"); ${a.positionals[0]} has none`, this.name);
    const t = 'multiHost' in file ? file.multiHost : file.topology;
    const progress = new ProgressReporter(ctx.io.stderr, 'down');
    const t0 = performance.now();
    let r;
    try {
      const options = { onProgress: (p: Progress) => progress.update(p), signal: ctx.signal, wait: a.options.wait === true };
      r = 'multiHost' in file ? await topology.downMultiHost(file.multiHost, { ...options, host }) : await topology.down(file.topology, options);
    } finally {
      progress.finish();
    }
    const ms = performance.now() - t0;
    if (a.options.json) {
      printJson(ctx.io, { name: t.name, ...r, ms: Math.round(ms) });
      return EXIT.OK;
    }
    const parts = [`${r.namespaces.length} namespaces`];
    if (r.links.length) parts.push(`${r.links.length} links`);
    if (r.natTables.length) parts.push(`${r.natTables.length} NAT tables`);
    if (r.firewallTables.length) parts.push(`${r.firewallTables.length} firewall tables`);
    ctx.io.stdout.write(`topology ${t.name} is down: removed ${parts.join(', ')} in ${duration(ms)}\n`);
    if (r.kept.length) ctx.io.stdout.write(`kept (not created by this topology): ${r.kept.join(' ')}\n`);
    return EXIT.OK;
  },
};
