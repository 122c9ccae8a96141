/** `netns-kit shape NS DEV --rate 10mbit --delay 40ms` / `--clear` / no options: show. */
import { netns } from '../index';
import { formatShape, type LinkShapeSpec, type ShapeSpec } from '../shape';
import { parseArgs, expectPositionals, type OptionSpec } from './args';
import type { Command } from './command';
import { UsageError } from './cli-errors';
import { printJson, table } from './output';

const FIELDS: Array<[keyof ShapeSpec, string, string]> = [
  ['rate', 'RATE', "rate limit, e.g. 10mbit (tc units)"],
  ['burst', 'SIZE', 'token bucket, e.g. 32kb'],
  ['latency', 'TIME', 'longest wait in the rate limiter queue, e.g. 50ms'],
  ['limit', 'N', 'queue length (bytes with a rate only, packets with impairments)'],
  ['delay', 'TIME', 'added delay, e.g. 40ms (needs netem)'],
  ['jitter', 'TIME', 'delay variation, e.g. 5ms (needs netem)'],
  ['loss', 'PCT', 'percent of packets dropped, e.g. 1 or 0.5% (needs netem)'],
  ['duplicate', 'PCT', 'percent of packets duplicated (needs netem)'],
  ['corrupt', 'PCT', 'percent of packets corrupted (needs netem)'],
  ['reorder', 'PCT', 'percent of packets sent ahead of delayed ones (needs netem)'],
];

const options: OptionSpec[] = [
  ...FIELDS.map(([k, v, d]): OptionSpec => ({ name: k, type: 'string', value: v, description: `egress: ${d}` })),
  ...FIELDS.map(([k, v, d]): OptionSpec => ({ name: `ingress-${k}`, type: 'string', value: v, description: `ingress: ${d}` })),
  { name: 'clear', type: 'boolean', description: 'remove every shape (back to the kernel default)' },
  { name: 'json', type: 'boolean', description: 'print the resulting shape as JSON' },
];

/** Numbers stay strings with units as the user typed them; a bare number means tc's default unit of the field. */
function value(v: string): string | number {
  return /^[0-9]+(\.[0-9]+)?$/.test(v) ? Number(v) : v;
}

export const shapeCommand: Command = {
  name: 'shape',
  summary: "Shape a link: rate, delay, jitter, loss, ... on egress and ingress; show or clear a link's shape.",
  usage: ['shape NAMESPACE DEV [--rate RATE] [--delay TIME] ... [--ingress-rate RATE] ...', 'shape NAMESPACE DEV --clear', 'shape NAMESPACE DEV'],
  description: `
Sets the whole shape of link DEV in NAMESPACE (what is not given is removed), clears it with
--clear, or shows it with no options. Units as tc writes them (10mbit, 32kb, 40ms, 1%); a bare
number is bits/s, bytes, ms or percent. Ingress shaping goes through an ifb device the library
makes and removes. Delay, jitter, loss, duplicate, corrupt and reorder need the kernel's netem
(CONFIG_NET_SCH_NETEM): without it the command fails with EOPNOTSUPP and nothing changes.
Equivalent to: \`tc qdisc replace dev DEV root tbf|netem ...\` (see docs/tc.md).`,
  options,
  examples: ['sudo netns-kit shape red eth0 --rate 10mbit', 'sudo netns-kit shape red eth0 --rate 10mbit --delay 40ms --loss 1', 'sudo netns-kit shape red eth0 --ingress-rate 4mbit', 'sudo netns-kit shape red eth0 --clear', 'sudo netns-kit shape red eth0 --json'],
  async run(argv, ctx) {
    const a = parseArgs(argv, this.options, this.name);
    expectPositionals(a, 2, 2, 'NAMESPACE and DEV', this.name);
    const [name, dev] = a.positionals;
    const spec: LinkShapeSpec = {};
    const ingress: ShapeSpec = {};
    for (const [k] of FIELDS) {
      const e = a.options[k];
      const i = a.options[`ingress-${k}`];
      if (typeof e === 'string') spec[k] = value(e);
      if (typeof i === 'string') ingress[k] = value(i);
    }
    if (Object.keys(ingress).length) spec.ingress = ingress;
    const given = Object.keys(spec).length > 0;
    if (a.options.clear && given) throw new UsageError('--clear takes no shape options', this.name);
    const ns = await netns.open(name);
    if (a.options.clear) await ns.links.shape(dev, null);
    else if (given) await ns.links.shape(dev, spec);
    const now = await ns.links.getShape(dev);
    if (a.options.json) printJson(ctx.io, now);
    else ctx.io.stdout.write(table(['NAMESPACE', 'DEV', 'SHAPE'], [[name, dev, formatShape(now)]]));
    return 0;
  },
};
