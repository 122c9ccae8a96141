/** `netns-kit up FILE`: creates what a topology file describes (what already matches is left alone). */
import { performance } from 'node:perf_hooks';
import { topology, type Progress } from '../index';
import { loadAnyTopologyArg } from './topology-file';
import { expectPositionals, parseArgs } from './args';
import type { Command } from './command';
import { EXIT, UsageError } from './cli-errors';
import { duration, printJson, ProgressReporter } from './output';

export const upCommand: Command = {
  name: 'up',
  summary: 'Create the namespaces, bridges, veth links, addresses, routes and NAT rules of a topology file.',
  usage: ['up FILE [--json]', 'up FILE --host NAME [--json]', 'up - [--json]   (the topology on stdin, JSON or YAML)'],
  description: `
Reads FILE (.json, .yaml or .yml; the schema is in docs/topology.md), validates it completely before
touching anything, and creates what is missing; what already matches is left alone, so running it
twice changes nothing the second time. If a step fails, or on Ctrl-C, everything this run created
is removed again and the error names the failed step. On a terminal a progress bar shows the steps
(on stderr); otherwise plain progress lines. --json prints the result for scripts on stdout.
A multi-host topology (with \`hosts\`, docs/topology.md) is simulated whole on this machine, or with
--host NAME only that host's part is applied here (its namespace must be named NAME under /run/netns;
on a real machine \`ip netns attach NAME 1\` names the machine's own).`,
  options: [
    { name: 'json', type: 'boolean', description: 'print the result as JSON on stdout' },
    { name: 'host', type: 'string', value: 'NAME', description: "multi-host topology: apply this host's part only" },
  ],
  examples: ['sudo netns-kit up lab.yaml', 'generate-lab | sudo netns-kit up -', 'sudo netns-kit up lab.json --json | jq .changes', 'sudo netns-kit up lab.yaml && sudo netns-kit status lab.yaml'],
  async run(argv, ctx) {
    const a = parseArgs(argv, this.options, this.name);
    expectPositionals(a, 1, 1, 'topology FILE', this.name);
    const file = await loadAnyTopologyArg(a.positionals[0]);
    const host = typeof a.options.host === 'string' ? a.options.host : undefined;
    if (host !== undefined && !('multiHost' in file)) throw new UsageError(`--host needs a multi-host topology (with "hosts"); ${a.positionals[0]} has none`, this.name);
    const progress = new ProgressReporter(ctx.io.stderr, 'up');
    const t0 = performance.now();
    let handle;
    try {
      const options = { onProgress: (p: Progress) => progress.update(p), signal: ctx.signal };
      handle = 'multiHost' in file ? await topology.upMultiHost(file.multiHost, { ...options, host }) : await topology.up(file.topology, options);
    } finally {
      progress.finish();
    }
    const ms = performance.now() - t0;
    if (a.options.json) {
      printJson(ctx.io, { name: handle.name, changed: handle.changes.length > 0, changes: handle.changes, namespaces: handle.namespaces, ms: Math.round(ms) });
    } else if (handle.changes.length === 0) {
      ctx.io.stdout.write(`topology ${handle.name} is up: it already matched ${a.positionals[0]}, nothing changed (${handle.namespaces.length} namespaces)\n`);
    } else {
      ctx.io.stdout.write(`topology ${handle.name} is up: ${handle.changes.length} changes in ${duration(ms)} (${handle.namespaces.length} namespaces)\n`);
    }
    return EXIT.OK;
  },
};
