// The command's pure parts, without the kernel: argument parsing, error lines and exit codes,
// progress output, and the drawings (SVG well-formed for an independent parser, text escaped).
import { Writable } from 'node:stream';
import { NetnsError, invalid } from '../lib/errors';
import { parseArgs, type OptionSpec } from '../lib/cli/args';
import { EXIT, UsageError, exitCodeFor, formatError } from '../lib/cli/cli-errors';
import type { GraphModel } from '../lib/cli/graph-model';
import { natRuleText } from '../lib/cli/graph-model';
import { renderSvg } from '../lib/cli/graph-svg';
import { renderDot, renderMermaid } from '../lib/cli/graph-text';
import { modelOfTopology } from '../lib/cli/graph-topology';
import { ProgressReporter, table } from '../lib/cli/output';
import { svgTexts } from './support/cli';

const SPECS: OptionSpec[] = [
  { name: 'json', type: 'boolean', description: '' },
  { name: 'format', short: 'f', type: 'string', choices: ['svg', 'dot'], description: '' },
  { name: 'output', short: 'o', type: 'string', description: '' },
];

describe('parseArgs', () => {
  test('long, short, inline values and positionals', () => {
    const a = parseArgs(['x.yaml', '--json', '-o', 'out.svg', '--format=dot'], SPECS, 't');
    expect(a.positionals).toEqual(['x.yaml']);
    expect(a.options).toEqual({ json: true, output: 'out.svg', format: 'dot' });
    expect(parseArgs(['-oout.svg'], SPECS, 't').options.output).toBe('out.svg');
  });

  test('everything after -- is left alone, and stopAfter keeps a command line intact', () => {
    expect(parseArgs(['--json', '--', '--format', 'x'], SPECS, 't')).toMatchObject({ rest: ['--format', 'x'], sawDashDash: true });
    const e = parseArgs(['red', 'ping', '-c1', '--json'], SPECS, 'exec', 1);
    expect(e.positionals).toEqual(['red']);
    expect(e.rest).toEqual(['ping', '-c1', '--json']);
    expect(parseArgs(['red', '--', 'ls', '-l'], SPECS, 'exec', 1).rest).toEqual(['ls', '-l']);
  });

  test.each([
    [['--nope'], 'unknown option --nope'],
    [['-x'], 'unknown option -x'],
    [['--format', 'png'], 'option --format must be one of svg, dot, got "png"'],
    [['--output'], 'option --output needs a value'],
    [['--json=1'], 'option --json takes no value'],
    [['-o', 'a', '-o', 'b'], 'option --output given twice'],
  ])('%j is a usage error: %s', (argv, message) => {
    let err: unknown;
    try {
      parseArgs(argv, SPECS, 't');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain(message);
    expect(exitCodeFor(err)).toBe(EXIT.USAGE);
  });
});

describe('error lines and exit codes', () => {
  test('a kernel error: its message, where, and a hint, on one line', () => {
    const e = new NetnsError('EEXIST', 'EEXIST: file exists, add link veth-red (dev veth-red, netns red)', { errno: -17, netns: 'red', ifname: 'veth-red' });
    const line = formatError(e, 'up');
    expect(line).toBe('netns-kit up: EEXIST: file exists, add link veth-red (dev veth-red, netns red) — hint: it already exists: pick another name, or remove the old one (netns-kit down FILE, ip netns delete NAME)');
    expect(exitCodeFor(e)).toBe(EXIT.FAILED);
  });

  test('an input error gets its code in front and exit code 3; multi-line text is folded', () => {
    const e = invalid('ERR_NETNS_INVALID_TOPOLOGY', 'lab.yaml: namespaces[2].links[0].peer.name: bad\nsecond line');
    const line = formatError(e, 'up');
    expect(line).toMatch(/^netns-kit up: ERR_NETNS_INVALID_TOPOLOGY: lab\.yaml: namespaces\[2\]\.links\[0\]\.peer\.name: bad \| second line — hint: /);
    expect(line).not.toContain('\n');
    expect(exitCodeFor(e)).toBe(EXIT.INVALID);
  });

  test('where-information missing from the message is appended', () => {
    const e = new NetnsError('ENOENT', 'ENOENT: no such device, set link', { netns: 'blue', ifname: 'eth9' });
    expect(formatError(e, undefined)).toContain('[netns blue, dev eth9]');
  });

  test('permission and interruption have their own codes', () => {
    expect(exitCodeFor(new NetnsError('EPERM', 'EPERM: operation not permitted'))).toBe(EXIT.PERMISSION);
    expect(exitCodeFor(new NetnsError('ERR_NETNS_ABORTED', 'aborted'))).toBe(EXIT.INTERRUPTED);
    expect(exitCodeFor(new Error('plain'))).toBe(EXIT.FAILED);
  });
});

class Capture extends Writable {
  text = '';
  constructor(readonly isTTY: boolean) {
    super();
  }
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

describe('progress', () => {
  test('nothing when not on a capable terminal: a pipe, TERM=dumb, CI', () => {
    for (const [tty, env] of [[false, {}], [true, { TERM: 'dumb' }], [true, { CI: 'true' }]] as const) {
      const s = new Capture(tty);
      const p = new ProgressReporter(s, 'up', env);
      for (let i = 1; i <= 1000; i++) p.update({ done: i, total: 1000, step: `create namespace n${i}` });
      p.finish();
      expect(s.text).toBe('');
    }
  });

  test('one redrawn bar on a terminal, cleared at the end', () => {
    const s = new Capture(true);
    const p = new ProgressReporter(s, 'up', { TERM: 'xterm-256color' });
    p.update({ done: 1, total: 4, step: 'a' });
    p.update({ done: 4, total: 4, step: 'b' });
    p.finish();
    expect(s.text).not.toContain('\n');
    expect(s.text).toContain('\r\x1b[2Kup [');
    expect(s.text).toMatch(/\[#+\] 4\/4 {2}b/);
    expect(s.text.endsWith('\r\x1b[2K')).toBe(true);
  });

  test('tables align columns', () => {
    expect(table(['A', 'BB'], [['xxx', 'y'], ['z', 'w']])).toBe('A    BB\nxxx  y\nz    w\n');
    expect(table(['A'], [])).toBe('');
  });
});

const NASTY = 'ns<&>"\'x';
const MODEL: GraphModel = {
  namespaces: [
    { name: 'host', interfaces: [{ name: 'br0', kind: 'bridge', addresses: ['10.0.0.1/24'] }, { name: 'p1', kind: 'veth', addresses: [], master: 'br0' }, { name: 'up0', kind: 'veth', addresses: ['192.0.2.2/24'] }], nat: ['masquerade 10.0.0.0/24 out up0'] },
    { name: NASTY, interfaces: [{ name: 'e<0>', kind: 'veth', addresses: ['10.0.0.2/24'] }], nat: [] },
    { name: 'wan', interfaces: [{ name: 'down0', kind: 'veth', addresses: ['192.0.2.1/24'] }], nat: [] },
    { name: 'alone', interfaces: [], nat: [] },
  ],
  links: [
    { a: { netns: 'host', ifname: 'p1' }, b: { netns: NASTY, ifname: 'e<0>' } },
    { a: { netns: 'host', ifname: 'up0' }, b: { netns: 'wan', ifname: 'down0' } },
  ],
};

describe('drawings', () => {
  test('SVG is well-formed and names every namespace, interface, address and NAT rule', () => {
    const svg = renderSvg(MODEL, 'title & <more>');
    const texts = svgTexts(svg).join('\n');
    for (const n of MODEL.namespaces) expect(texts).toContain(n.name);
    for (const i of ['br0 (bridge)', 'p1', 'up0', 'e<0>', 'down0', '10.0.0.1/24', 'NAT masquerade 10.0.0.0/24 out up0', 'title & <more>']) expect(texts).toContain(i);
    // every veth pair is a path with a title naming both ends
    expect(texts).toContain(`veth host/p1 — ${NASTY}/e<0>`);
    expect(texts).toContain('veth host/up0 — wan/down0');
    expect(svg).not.toContain(NASTY); // only ever escaped
  });

  test('a wide layer wraps onto more lines instead of one endless row', () => {
    const members = Array.from({ length: 80 }, (_, i) => `member-${i}`);
    const model: GraphModel = {
      namespaces: [
        { name: 'hub', interfaces: [{ name: 'br0', kind: 'bridge', addresses: [] }, ...members.map((_, i) => ({ name: `v${i}`, kind: 'veth', addresses: [], master: 'br0' }))], nat: [] },
        ...members.map((m) => ({ name: m, interfaces: [{ name: 'eth0', kind: 'veth', addresses: ['10.0.0.1/16'] }], nat: [] })),
      ],
      links: members.map((m, i) => ({ a: { netns: 'hub', ifname: `v${i}` }, b: { netns: m, ifname: 'eth0' } })),
    };
    const svg = renderSvg(model);
    const texts = svgTexts(svg).join('\n');
    for (const m of members) expect(texts).toContain(m);
    const ys = new Set([...svg.matchAll(/translate\([\d.]+ ([\d.]+)\)/g)].map((m) => m[1]));
    expect(ys.size).toBeGreaterThan(2); // the hub's row plus at least two lines of members
    // the hub's 81 pills wrap too: its bridge bus runs under each line of pills
    const bus = /<path class="bus" d="([^"]+)"><title>ports of br0<\/title>/.exec(svg)?.[1] ?? '';
    expect(bus.match(/ H /g)!.length).toBeGreaterThan(1);
    expect(Number(/<svg [^>]*width="(\d+)"/.exec(svg)?.[1])).toBeLessThan(2000);
  });

  test('an empty picture is still a picture', () => {
    expect(svgTexts(renderSvg({ namespaces: [], links: [] }))).toContain('(no namespaces)');
  });

  test('the hub sits between its uplink (above) and its bridge ports (below)', () => {
    const svg = renderSvg(MODEL);
    const yOf = (name: string) => Number(new RegExp(`translate\\(([\\d.]+) ([\\d.]+)\\)">\\n<rect[^>]*/>\\n<text class="title" x="10" y="17">${name}`).exec(svg)?.[2]);
    expect(yOf('wan')).toBeLessThan(yOf('host'));
    expect(yOf('host')).toBeLessThan(yOf('ns&lt;&amp;&gt;&quot;&apos;x'));
  });

  test('Mermaid and DOT escape names and hold every node and edge', () => {
    const m = renderMermaid(MODEL);
    expect(m).toContain('subgraph ns1["ns#lt;#amp;#gt;#quot;\'x"]');
    expect(m).toContain('ns0_if1 ---|veth| ns1_if0');
    expect(m).toContain('ns0_if1 -.-|port| ns0_if0');
    expect(m.match(/---\|veth\|/g)).toHaveLength(2);
    const d = renderDot(MODEL);
    expect(d).toContain('label="ns<&>\\"\'x"');
    expect(d).toContain('ns0_if2 -- ns2_if0');
    expect(d.match(/label="veth"/g)).toHaveLength(2);
    expect(d.trim().endsWith('}')).toBe(true);
  });

  test('a topology file becomes boxes; a template is one box standing for its members', () => {
    const model = modelOfTopology({
      name: 't',
      namespaces: [
        { name: 'h', bridges: [{ name: 'br0', addresses: ['10.0.0.1/16'] }], nat: [{ kind: 'masquerade', source: '10.0.0.0/16' }] },
        { name: 'w', links: [{ name: 'w0', addresses: ['192.0.2.1/24'], peer: { netns: 'h', name: 'h0', addresses: ['192.0.2.2/24'] } }] },
      ],
      templates: [{ count: 100, name: 'node-{i}', uplink: { name: 'eth0', peerName: 'v{i}', netns: 'h', bridge: 'br0' }, addresses: [{ pool: '10.0.0.0/16', start: 2 }] }],
    });
    expect(model.namespaces.map((n) => n.name)).toEqual(['h', 'w', 'node-{i}']);
    expect(model.namespaces[2].note).toBe('× 100, i = 0..99');
    expect(model.namespaces[0].interfaces.map((i) => i.name)).toEqual(['br0', 'h0', 'v{i}']);
    expect(model.namespaces[0].nat).toEqual(['masquerade 10.0.0.0/16']);
    expect(model.links).toHaveLength(2);
    expect(svgTexts(renderSvg(model)).join('\n')).toContain('from pool 10.0.0.0/16');
  });

  test('NAT rules read as one line each', () => {
    expect(natRuleText({ kind: 'portForward', protocol: 'tcp', port: 8080, to: { address: '192.168.15.1', port: 80 } })).toBe('forward tcp *:8080 → 192.168.15.1:80');
    expect(natRuleText({ kind: 'portForward', protocol: 'udp', port: { from: 5000, to: 5010 }, hostAddress: '10.0.2.15', to: { address: '192.168.15.2' } })).toBe('forward udp 10.0.2.15:5000-5010 → 192.168.15.2:5000-5010');
    expect(natRuleText({ kind: 'service', protocol: 'tcp', vip: '10.96.0.10', port: 80, backends: [{ address: '10.0.0.2', port: 8080 }, { address: '10.0.0.3', port: 8080 }] })).toBe(
      'service tcp 10.96.0.10:80 → 10.0.0.2:8080, 10.0.0.3:8080',
    );
    expect(natRuleText({ kind: 'snat', source: '10.0.0.0/8', to: '192.0.2.9' })).toBe('snat 10.0.0.0/8 → 192.0.2.9');
  });
});
