// Topology validation: every refusal names the offending path, has code ERR_NETNS_INVALID_TOPOLOGY,
// and happens before anything reaches the kernel. Plus the pattern language and file loading.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { netns, topology, NetnsError, type Topology } from '../lib/index';
import { compile } from '../lib/topology/pattern';
import { resolve } from '../lib/topology/validate';
import { nsName } from './support/sandbox';

const ok: Topology = {
  name: 'lab',
  namespaces: [
    { name: 'host', bridges: [{ name: 'br0', addresses: ['192.168.15.5/24'] }] },
    { name: 'red', links: [{ name: 'veth-red', addresses: ['192.168.15.1/24'], peer: { netns: 'host', name: 'veth-red-br', master: 'br0' } }], routes: [{ to: 'default', via: '192.168.15.5' }] },
  ],
};

function clone(): Topology & { namespaces: NonNullable<Topology['namespaces']> } {
  return JSON.parse(JSON.stringify(ok));
}

function refused(value: unknown): string {
  try {
    topology.validate(value);
  } catch (e) {
    expect((e as { code: string }).code).toBe('ERR_NETNS_INVALID_TOPOLOGY');
    return (e as Error).message;
  }
  throw new Error('validate accepted it');
}

const tpl = (extra: object) => ({ ...clone(), templates: [{ count: 3, name: 'm{i}', uplink: { name: 'eth0', peerName: 'v{i}', netns: 'host', bridge: 'br0' }, ...extra }] });

describe('validation names the path', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['not an object', () => 'lab', /^\(topology\): must be an object/],
    ['no name', () => ({ namespaces: [] }), /^name: must be a non-empty string/],
    ['bad topology name', () => ({ name: 'a b' }), /^name: topology name "a b"/],
    ['unknown key', () => ({ ...clone(), namespaces: [{ name: 'x', martser: 'br0' }] }), /^namespaces\[0\]\.martser: unknown key/],
    ['namespaces not a list', () => ({ name: 'x', namespaces: {} }), /^namespaces: must be a list/],
    ['namespace name with /', () => ({ name: 'x', namespaces: [{ name: '../etc' }] }), /^namespaces\[0\]\.name: .*may not be/],
    ['duplicate namespace', () => ({ name: 'x', namespaces: [{ name: 'a' }, { name: 'a' }] }), /^namespaces\[1\]\.name: namespace name "a" is also namespaces\[0\]\.name/],
    [
      'peer name of 16 bytes',
      () => ({ name: 'x', namespaces: [{ name: 'a' }, { name: 'b' }, { name: 'c', links: [{ name: 'v', peer: { netns: 'a', name: 'sixteen-bytes-xx' } }] }] }),
      /^namespaces\[2\]\.links\[0\]\.peer\.name: interface name "sixteen-bytes-xx" must be 1-15 bytes long \(is 16\)/,
    ],
    ['veth to an unknown namespace', () => ({ name: 'x', namespaces: [{ name: 'a', links: [{ name: 'v', peer: { netns: 'nowhere', name: 'w' } }] }] }), /^namespaces\[0\]\.links\[0\]\.peer\.netns: unknown namespace "nowhere"/],
    ['master that does not exist', () => ({ name: 'x', namespaces: [{ name: 'a', links: [{ name: 'v', master: 'br9', peer: { netns: 'a', name: 'w' } }] }] }), /^namespaces\[0\]\.links\[0\]\.master: no bridge "br9" declared in namespace "a"/],
    ['peer master in the wrong namespace', () => { const t = clone(); t.namespaces[1].links![0].peer.netns = 'red'; return t; }, /^namespaces\[1\]\.links\[0\]\.peer\.master: no bridge "br0" declared in namespace "red"/],
    ['two interfaces of one name', () => { const t = clone(); t.namespaces[0].bridges!.push({ name: 'veth-red-br' }); return t; }, /^namespaces\[1\]\.links\[0\]\.peer\.name: interface "veth-red-br" in namespace "host" is also declared at namespaces\[0\]\.bridges\[1\]\.name/],
    ['bad address', () => { const t = clone(); t.namespaces[0].bridges![0].addresses = ['192.168.15.300/24']; return t; }, /^namespaces\[0\]\.bridges\[0\]\.addresses\[0\]: .*not an IP address/],
    ['address without prefix', () => { const t = clone(); t.namespaces[0].bridges![0].addresses = ['192.168.15.5']; return t; }, /^namespaces\[0\]\.bridges\[0\]\.addresses\[0\]: .*needs a prefix length/],
    ['bad route gateway', () => { const t = clone(); t.namespaces[1].routes = [{ to: 'default', via: 'gateway' }]; return t; }, /^namespaces\[1\]\.routes\[0\]: via is not an IP address/],
    ['route on an undeclared device', () => { const t = clone(); t.namespaces[1].routes = [{ to: '10.0.0.0/8', dev: 'eth7' }]; return t; }, /^namespaces\[1\]\.routes\[0\]\.dev: no interface "eth7" declared in namespace "red"/],
    ['sysctl outside net.*', () => { const t = clone(); t.namespaces[0].sysctls = { 'kernel.panic': 1 }; return t; }, /^namespaces\[0\]\.sysctls\.kernel\.panic: sysctl key must name a net\.\* setting/],
    ['a bridge declared as link', () => ({ name: 'x', namespaces: [{ name: 'a', links: [{ kind: 'bridge', name: 'b', peer: { netns: 'a', name: 'c' } }] }] }), /^namespaces\[0\]\.links\[0\]\.kind: only veth links/],
    ['lo declared', () => ({ name: 'x', namespaces: [{ name: 'a', bridges: [{ name: 'lo' }] }] }), /^namespaces\[0\]\.bridges\[0\]\.name: "lo" is the loopback device/],
    ['mtu out of range', () => { const t = clone(); t.namespaces[0].bridges![0].mtu = 10; return t; }, /^namespaces\[0\]\.bridges\[0\]\.mtu: mtu must be an integer from 68/],
    ['existing not boolean', () => ({ name: 'x', namespaces: [{ name: 'a', existing: 'yes' }] }), /^namespaces\[0\]\.existing: must be true or false/],
    ['template count 0', () => tpl({ count: 0 }), /^templates\[0\]\.count: count must be an integer from 1 to 100000/],
    ['template name without {i}', () => tpl({ name: 'same' }), /^templates\[0\]\.name: pattern "same" has no \{i\}/],
    ['template pattern syntax', () => tpl({ name: 'm{i+}' }), /^templates\[0\]\.name: bad pattern "m\{i\+\}": expression ends too early/],
    ['template pattern unknown variable', () => tpl({ name: 'm{j}' }), /^templates\[0\]\.name: bad pattern .*unexpected "j"/],
    ['generated name taken by a declared namespace', () => tpl({ name: 'r{i}', start: 0, count: 1, uplink: undefined }).namespaces && { ...tpl({ uplink: undefined, addresses: undefined }), templates: [{ count: 3, name: '{i}red' }], namespaces: [...clone().namespaces, { name: '1red' }] }, /^templates\[0\]\.name: generated namespace name "1red" \(i=1\) is also namespaces\[2\]\.name/],
    ['two templates overlapping', () => ({ name: 'x', templates: [{ count: 5, name: 'n{i}' }, { count: 5, start: 4, name: 'n{i}' }] }), /^templates\[1\]\.name: generated namespace name "n4" \(i=4\) is also generated by templates\[0\]\(i=4\)/],
    ['generated interface name too long', () => tpl({ count: 12, uplink: { name: 'eth0', peerName: 'veth-uplinkss-{i}', netns: 'host', bridge: 'br0' } }), /^templates\[0\]\.uplink\.peerName: interface name "veth-uplinkss-10" must be 1-15 bytes long \(is 16\) \(i=10\)$/],
    ['generated uplink name collides with a declared link', () => tpl({ uplink: { name: 'eth0', peerName: 'veth-red-b{i}', netns: 'host', bridge: 'br0' }, start: 0, count: 1, name: 'm{i}' }).templates && { ...clone(), namespaces: [{ ...clone().namespaces[0], bridges: [{ name: 'br0' }, { name: 'v1' }] }, clone().namespaces[1]], templates: [{ count: 3, name: 'm{i}', uplink: { name: 'eth0', peerName: 'v{i}', netns: 'host', bridge: 'br0' } }] }, /^templates\[0\]\.uplink\.peerName \(i=1\): interface "v1" in namespace "host" is also declared at namespaces\[0\]\.bridges\[1\]\.name/],
    ['generated address out of range', () => tpl({ count: 10, addresses: ['10.0.0.{i+250}/24'] }), /^templates\[0\]\.addresses\[0\]: .*"10\.0\.0\.256" .*\(i=6\)/],
    ['pool too small', () => tpl({ count: 300, uplink: undefined, addresses: [{ pool: '10.0.0.0/24' }] }), /^templates\[0\]\.addresses\[0\]: addresses go on the uplink/],
    ['pool too small for the count', () => tpl({ count: 300, addresses: [{ pool: '10.0.0.0/24', start: 2 }] }), /^templates\[0\]\.addresses\[0\]\.pool: 10\.0\.0\.0\/24 has room for 253 addresses from start 2; the template needs 300/],
    ['uplink to an unknown namespace', () => tpl({ uplink: { name: 'eth0', peerName: 'v{i}', netns: 'nope', bridge: 'br0' } }), /^templates\[0\]\.uplink\.netns: unknown namespace "nope"/],
    ['uplink to an unknown bridge', () => tpl({ uplink: { name: 'eth0', peerName: 'v{i}', netns: 'red', bridge: 'br0' } }), /^templates\[0\]\.uplink\.bridge: no bridge "br0" declared in namespace "red"/],
    ['template route with a bad pattern result', () => tpl({ routes: [{ to: 'default', via: '10.0.{i*200}.1' }] }), /^templates\[0\]\.routes\[0\]: via is not an IP address: "10\.0\.400\.1" \(i=2\)/],
    ['bridge port limit', () => tpl({ count: 1100 }), /^templates\[0\]\.uplink\.bridge: bridge "br0" in namespace "host" would get 1101 ports; a bridge holds at most 1023 .*options\.spread/],
    ['own port limit', () => ({ ...tpl({ count: 10 }), options: { maxPortsPerBridge: 4 } }), /^templates\[0\]\.uplink\.bridge: bridge "br0" in namespace "host" would get 11 ports; a bridge holds at most 4/],
    ['spread with too few ports per bridge', () => ({ ...tpl({ count: 10 }), options: { maxPortsPerBridge: 2, spread: true } }), /^options\.maxPortsPerBridge: spreading needs at least 3 ports/],
    ['port limit above Linux', () => ({ ...clone(), options: { maxPortsPerBridge: 2000 } }), /^options\.maxPortsPerBridge: maxPortsPerBridge must be an integer from 1 to 1023/],
    ['spread names too long', () => ({ name: 'x', options: { maxPortsPerBridge: 3, spread: true }, namespaces: [{ name: 'h', bridges: [{ name: 'bridge-fourteen' }] }], templates: [{ count: 4, name: 'n{i}', uplink: { name: 'e', peerName: 'v{i}', netns: 'h', bridge: 'bridge-fourteen' } }] }), /^namespaces\[0\]\.bridges\[0\]\.name: interface name "bridge-fourteen-1" must be 1-15 bytes/],
    ['NAT rule kind', () => { const t = clone(); t.namespaces[0].nat = [{ kind: 'dnat' } as never]; return t; }, /^namespaces\[0\]\.nat\[0\]\.kind: NAT rule kind must be one of masquerade, snat, portForward, service/],
    ['NAT port out of range', () => { const t = clone(); t.namespaces[0].nat = [{ kind: 'portForward', protocol: 'tcp', port: 70000, to: { address: '192.168.15.1', port: 80 } }]; return t; }, /^namespaces\[0\]\.nat\[0\]\.port: port must be an integer from 1 to 65535/],
    ['NAT service without backends', () => { const t = clone(); t.namespaces[0].nat = [{ kind: 'service', vip: '10.96.0.1', port: 80, protocol: 'tcp', backends: [] }]; return t; }, /^namespaces\[0\]\.nat\[0\]\.backends: needs at least one backend/],
    ['NAT masquerade source', () => { const t = clone(); t.namespaces[0].nat = [{ kind: 'masquerade', source: '192.168.15.0/33' }]; return t; }, /^namespaces\[0\]\.nat\[0\]\.source: .*bad prefix length "33"/],
    ['NAT nft syntax in an interface name', () => { const t = clone(); t.namespaces[0].nat = [{ kind: 'masquerade', source: '192.168.15.0/24', outInterface: 'eth0"; flush' }]; return t; }, /^namespaces\[0\]\.nat\[0\]\.outInterface: interface name .*must be 1-15 bytes|^namespaces\[0\]\.nat\[0\]\.outInterface: .*may not/],
  ];
  test.each(cases)('%s', (_label, make, pattern) => {
    expect(refused(make())).toMatch(pattern);
  });

  test('a valid topology passes and templates expand', () => {
    expect(topology.validate(ok)).toBe(ok);
    const r = resolve(tpl({ count: 3, addresses: [{ pool: '10.0.0.0/24', start: 2 }], routes: [{ to: 'default', via: '10.0.0.1' }] }));
    expect(r.namespaces.map((n) => n.name)).toEqual(['host', 'red', 'm0', 'm1', 'm2']);
    expect(r.veths.filter((v) => v.member).map((v) => [v.a.name, v.b.name, v.b.addresses[0]])).toEqual([
      ['v0', 'eth0', '10.0.0.2/24'],
      ['v1', 'eth0', '10.0.0.3/24'],
      ['v2', 'eth0', '10.0.0.4/24'],
    ]);
  });

  test('spread: extra bridges joined to the first, each within the limit', () => {
    const r = resolve({ ...tpl({ count: 10 }), options: { maxPortsPerBridge: 4, spread: true } });
    // 11 ports (10 members + veth-red-br): 4 extra bridges of 3 ports each, br0 holds the 4 patches.
    expect(r.bridges.map((b) => b.name)).toEqual(['br0', 'br0-1', 'br0-2', 'br0-3', 'br0-4']);
    const ports = new Map<string, number>();
    for (const v of r.veths) for (const e of [v.a, v.b]) if (e.master) ports.set(e.master, (ports.get(e.master) ?? 0) + 1);
    expect(Math.max(...ports.values())).toBeLessThanOrEqual(4);
    expect([...ports.values()].reduce((a, b) => a + b, 0)).toBe(11 + 2 * 4);
  });

  test('up refuses an invalid topology before creating anything', async () => {
    const name = nsName('never');
    await expect(topology.up({ name: 'x', namespaces: [{ name }, { name: 'b', links: [{ name: 'v', peer: { netns: 'nowhere', name: 'w' } }] }] })).rejects.toMatchObject({
      code: 'ERR_NETNS_INVALID_TOPOLOGY',
    });
    expect((await netns.list()).map((n) => n.name)).not.toContain(name);
  });
});

describe('pattern language', () => {
  test.each([
    ['n{i}', 7, 'n7'],
    ['10.0.{i/256}.{i%256}/16', 258, '10.0.1.2/16'],
    ['h{i:4}', 258, 'h0258'],
    ['{(i+1)*2}-{i-3}', 1, '4--2'],
    ['plain', 3, 'plain'],
    ['{ i / 3 * 3 }', 8, '6'],
  ])('%s at i=%d is %s', (p, i, out) => {
    expect(compile(p).render(i)).toBe(out);
  });
  test.each(['{', '}', 'a{}', '{i+}', '{x}', '{i:abc}', '{(i}'])('%s is refused', (p) => {
    expect(() => compile(p)).toThrow();
  });
  test('division by zero is reported when rendering', () => {
    expect(() => compile('{i/(i-2)}').render(2)).toThrow(/division by zero/);
  });
});

describe('files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'nk-topo-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('YAML and JSON load identically', async () => {
    const full: Topology = {
      ...clone(),
      options: { maxPortsPerBridge: 100, spread: false, concurrency: 4 },
      templates: [{ count: 2, name: 'm{i}', ipv6: false, sysctls: { 'net.ipv4.ip_forward': 1 }, uplink: { name: 'eth0', peerName: 'v{i}', netns: 'host', bridge: 'br0' }, addresses: [{ pool: '192.168.15.0/24', start: 10 }], routes: [{ to: 'default', via: '192.168.15.5' }] }],
    };
    full.namespaces![0].nat = [{ kind: 'masquerade', source: '192.168.15.0/24' }, { kind: 'portForward', protocol: 'tcp', port: 8080, to: { address: '192.168.15.1', port: 80 } }];
    const yaml = `# the tutorial, as YAML
name: lab
options: { maxPortsPerBridge: 100, spread: false, concurrency: 4 }
namespaces:
  - name: host
    bridges:
      - name: br0
        addresses: [192.168.15.5/24]
    nat:
      - kind: masquerade
        source: 192.168.15.0/24
      - { kind: portForward, protocol: tcp, port: 8080, to: { address: 192.168.15.1, port: 80 } }
  - name: red
    links:
      - name: veth-red
        addresses: ["192.168.15.1/24"]
        peer: { netns: host, name: veth-red-br, master: br0 }
    routes:
      - to: default
        via: 192.168.15.5
templates:
  - count: 2
    name: "m{i}"
    ipv6: false
    sysctls:
      net.ipv4.ip_forward: 1
    uplink: { name: eth0, peerName: "v{i}", netns: host, bridge: br0 }
    addresses:
      - pool: 192.168.15.0/24
        start: 10
    routes: [{ to: default, via: 192.168.15.5 }]
`;
    writeFileSync(path.join(dir, 'lab.yaml'), yaml);
    writeFileSync(path.join(dir, 'lab.json'), JSON.stringify(full, null, 2));
    const a = await topology.load(path.join(dir, 'lab.yaml'));
    const b = await topology.load(path.join(dir, 'lab.json'));
    expect(a).toEqual(b);
    expect(a).toEqual(full);
  });

  test('file errors: syntax with line, schema with path, extension, missing file', async () => {
    writeFileSync(path.join(dir, 'bad.yaml'), 'name: lab\nnamespaces:\n  - name: [unclosed\n');
    await expect(topology.load(path.join(dir, 'bad.yaml'))).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_TOPOLOGY', message: expect.stringMatching(/bad\.yaml:\d+:\d+: not valid YAML/) });
    writeFileSync(path.join(dir, 'dup.yaml'), 'name: lab\nname: other\n');
    await expect(topology.load(path.join(dir, 'dup.yaml'))).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_TOPOLOGY' });
    writeFileSync(path.join(dir, 'schema.json'), JSON.stringify({ name: 'lab', namespaces: [{ name: 'a', bridges: [{ name: 'way-too-long-name' }] }] }));
    await expect(topology.load(path.join(dir, 'schema.json'))).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_TOPOLOGY', message: expect.stringContaining('schema.json: namespaces[0].bridges[0].name:') });
    writeFileSync(path.join(dir, 'bad.json'), '{"name": ');
    await expect(topology.load(path.join(dir, 'bad.json'))).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_TOPOLOGY', message: expect.stringContaining('not valid JSON') });
    await expect(topology.load(path.join(dir, 'lab.toml'))).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_TOPOLOGY' });
    await expect(topology.load(path.join(dir, 'missing.yaml'))).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_TOPOLOGY', message: expect.stringContaining('ENOENT') });
  });
});

describe('example files', () => {
  test.each(['tutorial.yaml', 'fleet.yaml'])('examples/%s is a valid topology', async (file) => {
    const t = await topology.load(path.join(__dirname, '..', '..', 'examples', file));
    const r = resolve(t);
    if (file === 'tutorial.yaml') {
      expect(r.namespaces.map((n) => n.name)).toEqual(['internet', 'host', 'red', 'blue', 'orange', 'gray']);
      expect(r.veths).toHaveLength(6);
    } else {
      expect(r.namespaces).toHaveLength(1001);
      expect(r.namespaces[1000].name).toBe('fleet-0999');
      expect(r.veths.find((v) => v.member === 'fleet-0999')!.b.addresses).toEqual(['10.0.3.233/16']);
    }
  });
});

describe('property: validation never crashes', () => {
  const check = (value: unknown) => {
    try {
      topology.validate(value);
    } catch (e) {
      expect(e).toBeInstanceOf(NetnsError);
      expect((e as NetnsError).code).toBe('ERR_NETNS_INVALID_TOPOLOGY');
    }
  };
  test('arbitrary values', () => {
    fc.assert(fc.property(fc.anything(), check), { numRuns: 500 });
  });
  test('a valid topology with one field replaced by anything', () => {
    const paths: Array<Array<string | number>> = [];
    const walk = (v: unknown, at: Array<string | number>) => {
      paths.push(at);
      if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...at, Array.isArray(v) ? Number(k) : k]);
    };
    const base = { ...tpl({ addresses: [{ pool: '10.0.0.0/24', start: 2 }], routes: [{ to: 'default', via: '10.0.0.1' }] }), options: { spread: true } };
    walk(base, []);
    fc.assert(
      fc.property(fc.constantFrom(...paths.filter((p) => p.length > 0)), fc.anything(), (p, value) => {
        const copy = JSON.parse(JSON.stringify(base)) as Record<string | number, unknown>;
        let o = copy;
        for (const k of p.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
        o[p[p.length - 1]] = value;
        check(copy);
      }),
      { numRuns: 1000 },
    );
  });
});
