/** `netns-kit graph [FILE]`: a picture of the live or described topology, as SVG, Mermaid or DOT. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { invalid } from '../errors';
import { requireNetworkPrivileges } from '../privileges';
import { expectPositionals, parseArgs } from './args';
import type { Command } from './command';
import { EXIT, UsageError } from './cli-errors';
import { liveModel, type GraphModel } from './graph-model';
import { renderSvg } from './graph-svg';
import { renderDot, renderMermaid } from './graph-text';
import { topologyModel } from './graph-topology';

const FORMATS = ['svg', 'mermaid', 'dot'] as const;
type Format = (typeof FORMATS)[number];

function formatFor(explicit: string | undefined, out: string | undefined): Format {
  if (explicit) return explicit as Format;
  const ext = out ? path.extname(out).toLowerCase() : '';
  if (ext === '.mmd' || ext === '.mermaid' || ext === '.md') return 'mermaid';
  if (ext === '.dot' || ext === '.gv') return 'dot';
  return 'svg';
}

export function render(model: GraphModel, format: Format, title: string): string {
  if (format === 'mermaid') return renderMermaid(model);
  if (format === 'dot') return renderDot(model, title);
  return renderSvg(model, title);
}

export const graphCommand: Command = {
  name: 'graph',
  summary: 'Draw the live or described topology as SVG, Mermaid or DOT.',
  usage: ['graph [FILE] [--format svg|mermaid|dot] [-o OUT] [--match PREFIX]'],
  description: `
Without FILE, draws what is live now: every named namespace (or those starting with PREFIX), its
bridges and veth ends with their addresses, the veth pairs between namespaces, and the NAT rules of
netns-kit's table. With FILE (a JSON or YAML topology), draws what the file describes, without
touching the kernel. Namespaces are boxes; veth pairs are lines; bridge ports hang on their bridge.
The format follows -o's extension (.svg, .mmd, .dot) unless --format says otherwise; without -o
the drawing goes to stdout.`,
  options: [
    { name: 'format', short: 'f', type: 'string', value: 'FORMAT', choices: FORMATS, description: 'output format (default: from -o, else svg)' },
    { name: 'output', short: 'o', type: 'string', value: 'OUT', description: 'write to this file instead of stdout' },
    { name: 'match', type: 'string', value: 'PREFIX', description: 'live: only namespaces whose name starts with PREFIX' },
  ],
  examples: ['netns-kit graph lab.yaml -o lab.svg', 'netns-kit graph --match nkdemo- -o demo.svg', 'netns-kit graph lab.yaml --format mermaid', 'netns-kit graph --format dot | dot -Tpng > net.png'],
  async run(argv, ctx) {
    const a = parseArgs(argv, this.options, this.name);
    expectPositionals(a, 0, 1, 'FILE', this.name);
    const file = a.positionals[0];
    const out = a.options.output as string | undefined;
    if (file && a.options.match !== undefined) throw new UsageError('--match selects live namespaces; it cannot be used with FILE', this.name);
    const format = formatFor(a.options.format as string | undefined, out);
    if (!file) requireNetworkPrivileges('netns-kit graph');
    const { model, title } = file
      ? await topologyModel(file)
      : { model: await liveModel((a.options.match as string | undefined) ?? ''), title: `live network namespaces${a.options.match ? ` ${a.options.match}*` : ''}` };
    const text = render(model, format, title);
    if (out) {
      await fs.writeFile(out, text).catch((e: NodeJS.ErrnoException) => {
        throw invalid('ERR_NETNS_INVALID_ARG', `cannot write ${out}: ${e.code ?? e.message} (check the path and that its directory exists)`, { detail: out });
      });
      ctx.io.stderr.write(`wrote ${out} (${format}: ${model.namespaces.length} namespaces, ${model.links.length} veth pairs)\n`);
    } else {
      ctx.io.stdout.write(text);
    }
    return EXIT.OK;
  },
};
