/** The pure NAT rule builder: validation, ids, overlaps, JSON shape and read-back. No root needed. */
import {
  buildRules,
  describeSpec,
  document,
  normalize,
  overlaps,
  ownedRules,
  parseComment,
  parseListing,
  ruleId,
  skeleton,
  staticRules,
  tableName,
  type NatRuleSpec,
} from '../lib/nat-rules';

const pf = (o: Record<string, unknown> = {}) => normalize({ kind: 'portForward', protocol: 'tcp', port: 8080, to: { address: '192.168.15.1', port: 80 }, ...o });

/** What the kernel would list for these specs: our rules as libnftables prints them, with handles. */
function listing(table: string, specs: NatRuleSpec[]): string {
  let handle = 10;
  const items: unknown[] = [{ metainfo: { json_schema_version: 1 } }, { table: { family: 'inet', name: table, handle: 1 } }];
  for (const r of staticRules(table)) items.push({ rule: { ...r, handle: handle++ } });
  for (const s of specs) for (const r of buildRules(table, s, ruleId(s))) items.push({ rule: { ...r, handle: handle++ } });
  return JSON.stringify({ nftables: items });
}

describe('normalize', () => {
  test('canonical addresses, network prefixes, sorted and de-duplicated lists, default target port', () => {
    expect(normalize({ kind: 'masquerade', source: '192.168.15.7/24', exclude: ['10.1.2.3/8', '192.168.15.0/24', '10.0.0.0/8'] })).toEqual({
      kind: 'masquerade',
      source: '192.168.15.0/24',
      exclude: ['10.0.0.0/8', '192.168.15.0/24'],
    });
    expect(pf({ to: { address: 'FD15:0:0::1' }, port: { from: 80, to: 80 } })).toEqual({ kind: 'portForward', protocol: 'tcp', port: 80, to: { address: 'fd15::1', port: 80 } });
    expect(normalize({ kind: 'snat', source: '2001:db8::1', to: '2001:db8::2' })).toEqual({ kind: 'snat', source: '2001:db8::1/128', to: '2001:db8::2' });
  });

  test.each([
    [{ port: 0 }, 'ERR_NETNS_INVALID_PORT'],
    [{ port: 65536 }, 'ERR_NETNS_INVALID_PORT'],
    [{ port: -5 }, 'ERR_NETNS_INVALID_PORT'],
    [{ port: 1.5 }, 'ERR_NETNS_INVALID_PORT'],
    [{ port: NaN }, 'ERR_NETNS_INVALID_PORT'],
    [{ port: { from: 10, to: 9 } }, 'ERR_NETNS_INVALID_PORT'],
    [{ port: { from: 10 } }, 'ERR_NETNS_INVALID_PORT'],
    [{ protocol: 'icmp' }, 'ERR_NETNS_INVALID_RULE'],
    [{ protocol: 'TCP' }, 'ERR_NETNS_INVALID_RULE'],
    [{ hostAddress: '2001:db8::1' }, 'ERR_NETNS_FAMILY_MISMATCH'],
    [{ hostAddress: '1.2.3' }, 'ERR_NETNS_INVALID_ADDRESS'],
    [{ inInterface: 'eth0:1' }, 'ERR_NETNS_INVALID_IFNAME'],
    [{ inInterface: 'eth\\0' }, 'ERR_NETNS_INVALID_IFNAME'],
    [{ inInterface: 'sixteen-bytes-xx' }, 'ERR_NETNS_INVALID_IFNAME'],
    [{ tag: 'x'.repeat(81) }, 'ERR_NETNS_INVALID_ARG'],
    [{ tag: 'semi;colon' }, 'ERR_NETNS_INVALID_ARG'],
    [{ localhost: 'yes' }, 'ERR_NETNS_INVALID_ARG'],
    [{ localhost: true, hostAddress: '203.0.113.1' }, 'ERR_NETNS_INVALID_RULE'],
    [{ extra: 1 }, 'ERR_NETNS_INVALID_ARG'],
  ])('portForward %j -> %s', (o, code) => {
    expect(() => pf(o)).toThrow(expect.objectContaining({ code }));
  });

  test('service backends: same family, no duplicates, at least one', () => {
    const svc = (backends: unknown) => () => normalize({ kind: 'service', vip: '10.96.0.1', port: 80, protocol: 'udp', backends });
    expect(svc([{ address: 'fd00::1', port: 80 }])).toThrow(expect.objectContaining({ code: 'ERR_NETNS_FAMILY_MISMATCH' }));
    expect(svc([{ address: '10.0.0.1', port: 80 }, { address: '10.0.0.1', port: 80 }])).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_RULE' }));
    expect(svc([])).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_RULE' }));
    expect(svc('10.0.0.1')).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_RULE' }));
  });

  test('table names', () => {
    expect(tableName('netns_kit')).toBe('netns_kit');
    for (const bad of ['', 'a b', '1abc', 'x'.repeat(65), 'a;b', 'a"b']) expect(() => tableName(bad)).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_NAME' }));
  });
});

describe('ids', () => {
  test('derived from content: equal specs share an id, any difference (tag included) changes it', () => {
    const a = normalize({ kind: 'service', vip: '10.96.0.1', port: 80, protocol: 'tcp', backends: [{ address: '10.0.0.2', port: 80 }, { address: '10.0.0.1', port: 81 }] });
    const b = normalize({ protocol: 'tcp', backends: [{ port: 81, address: '10.0.0.1' }, { address: '10.0.0.2', port: 80 }], port: 80, vip: '10.96.0.1', kind: 'service' });
    expect(ruleId(a)).toBe(ruleId(b));
    expect(ruleId(a)).toMatch(/^[0-9a-f]{16}$/);
    expect(ruleId(pf())).not.toBe(ruleId(pf({ tag: 't' })));
    expect(ruleId(pf())).not.toBe(ruleId(pf({ port: 8081 })));
    // a left-out target port is the same port: the same rule
    expect(ruleId(pf({ port: 80 }))).toBe(ruleId(pf({ port: 80, to: { address: '192.168.15.1' } })));
  });
});

describe('overlaps', () => {
  test('same family, protocol, address (or any) and intersecting ports', () => {
    expect(overlaps(pf(), pf({ to: { address: '192.168.15.2' } }))).toBe(true);
    expect(overlaps(pf(), pf({ port: { from: 8000, to: 8080 }, hostAddress: '203.0.113.1', to: { address: '192.168.15.2' } }))).toBe(true);
    expect(overlaps(pf(), pf({ port: 8081 }))).toBe(false);
    expect(overlaps(pf(), pf({ protocol: 'udp' }))).toBe(false);
    expect(overlaps(pf({ hostAddress: '203.0.113.1' }), pf({ hostAddress: '203.0.113.2' }))).toBe(false);
    expect(overlaps(pf(), pf({ to: { address: 'fd15::1', port: 80 } }))).toBe(false);
    expect(overlaps(pf({ inInterface: 'a' }), pf({ inInterface: 'b' }))).toBe(false);
    const svc = normalize({ kind: 'service', vip: '203.0.113.1', port: 8080, protocol: 'tcp', backends: [{ address: '10.0.0.1', port: 80 }] });
    expect(overlaps(svc, pf({ hostAddress: '203.0.113.1' }))).toBe(true);
    expect(overlaps(normalize({ kind: 'masquerade', source: '10.0.0.0/8' }), pf())).toBe(false);
  });
});

describe('libnftables JSON', () => {
  test('portForward: DNAT from outside and from the namespace itself, localhost, accept; comments carry id, kind, role, tag', () => {
    const s = pf({ localhost: true, tag: 'ctr-1' });
    const id = ruleId(s);
    const rules = buildRules('netns_kit', s, id);
    expect(rules.map((r) => [r.chain, parseComment(r.comment)?.role])).toEqual([
      ['prerouting', 'dnat'],
      ['output', 'dnat-local'],
      ['output', 'localhost'],
      ['postrouting', 'localhost-masq'],
      ['forward', 'accept'],
    ]);
    expect(rules[0]).toEqual({
      family: 'inet',
      table: 'netns_kit',
      chain: 'prerouting',
      comment: `nk:${id}:portForward:dnat:ctr-1`,
      expr: [
        { match: { op: '==', left: { meta: { key: 'nfproto' } }, right: 'ipv4' } },
        { match: { op: '==', left: { fib: { result: 'type', flags: ['daddr'] } }, right: 'local' } },
        { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 8080 } },
        { dnat: { family: 'ip', addr: '192.168.15.1', port: 80 } },
      ],
    });
    expect(rules[1].expr).toContainEqual({ match: { op: '!=', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: { prefix: { addr: '127.0.0.0', len: 8 } } } });
    const longest = pf({ localhost: true, tag: 't'.repeat(80) });
    for (const r of buildRules('netns_kit', longest, ruleId(longest))) expect(r.comment!.length).toBeLessThanOrEqual(128);
  });

  test('service: one rule, numgen random over a map of address . port', () => {
    const s = normalize({ kind: 'service', vip: 'fd96::1', port: 53, protocol: 'udp', backends: [{ address: 'fd15::2', port: 5353 }, { address: 'fd15::1', port: 53 }] });
    const [dnat] = buildRules('t', s, ruleId(s));
    expect(dnat.expr[2]).toEqual({
      dnat: {
        family: 'ip6',
        addr: { map: { key: { numgen: { mode: 'random', mod: 2, offset: 0 } }, data: { set: [[0, { concat: ['fd15::1', 53] }], [1, { concat: ['fd15::2', 5353] }]] } } },
      },
    });
  });

  test('an interface name or tag travels as a JSON string, whatever it holds', () => {
    const s = normalize({ kind: 'masquerade', source: '10.0.0.0/8', outInterface: 'x"}]{drop;#', tag: 'a=b' });
    const text = document(buildRules('netns_kit', s, ruleId(s)).map((r) => ({ add: { rule: r } })));
    const parsed = JSON.parse(text);
    expect(parsed.nftables[0].add.rule.expr[1]).toEqual({ match: { op: '==', left: { meta: { key: 'oifname' } }, right: 'x"}]{drop;#' } });
  });

  test('skeleton: the table and four base chains, every policy accept', () => {
    const cmds = skeleton('netns_kit') as { add: { chain?: { policy: string; hook: string } } }[];
    expect(cmds).toHaveLength(5);
    expect(cmds.slice(1).map((c) => [c.add.chain!.hook, c.add.chain!.policy])).toEqual([
      ['prerouting', 'accept'],
      ['output', 'accept'],
      ['postrouting', 'accept'],
      ['forward', 'accept'],
    ]);
  });

  test('read back: every kind and option comes back as it was normalised, grouped by id with all its kernel rules', () => {
    const specs: NatRuleSpec[] = [
      normalize({ kind: 'masquerade', source: '192.168.15.0/24', outInterface: 'wan0', exclude: ['10.0.0.0/8'], tag: 'x' }),
      normalize({ kind: 'masquerade', source: 'fd15::/64', exclude: ['fd00::/8', 'fd15::/64'] }),
      normalize({ kind: 'snat', source: '192.168.15.0/24', to: '203.0.113.1', outInterface: 'wan0' }),
      pf({ localhost: true }),
      pf({ protocol: 'udp', port: { from: 9000, to: 9010 }, hostAddress: '203.0.113.1', inInterface: 'wan0', to: { address: '192.168.15.1' } }),
      pf({ protocol: 'sctp', to: { address: 'fd15::1', port: 80 } }),
      normalize({ kind: 'service', vip: '10.96.0.1', port: 80, protocol: 'tcp', backends: [{ address: '10.0.0.1', port: 80 }, { address: '10.0.0.2', port: 80 }] }),
      normalize({ kind: 'service', vip: '10.96.0.2', port: 80, protocol: 'tcp', backends: [{ address: '10.0.0.1', port: 8080 }] }),
    ];
    const { rules, statics } = ownedRules(parseListing(listing('netns_kit', specs)));
    expect(statics.map((s) => s.role)).toEqual(['hairpin-mark', 'hairpin-masq']);
    expect(rules.map((r) => r.spec)).toEqual(specs);
    expect(rules.map((r) => r.id)).toEqual(specs.map(ruleId));
    expect(rules[3].parts).toHaveLength(5);
  });

  test('rules without our comment are not ours', () => {
    const doc = JSON.stringify({ nftables: [{ rule: { family: 'inet', table: 't', chain: 'prerouting', handle: 3, comment: 'nk:zz:portForward:dnat:', expr: [] } }] });
    expect(ownedRules(parseListing(doc)).rules).toEqual([]);
  });

  test('describeSpec names the traffic', () => {
    expect(describeSpec(pf({ to: { address: 'fd15::1', port: 80 } }))).toBe('portForward tcp *:8080 -> [fd15::1]:80');
  });
});
