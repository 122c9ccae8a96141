/** The pure firewall rule builder: validation, canonical form, ids, JSON shape and read-back. No root needed. */
import {
  buildRules,
  cover,
  describeRule,
  document,
  families,
  normalize,
  ownedFirewall,
  parseListing,
  policy,
  replaceTable,
  ruleId,
  staticRules,
  tableName,
  type FirewallRuleSpec,
} from '../lib/firewall-rules';

const rule = (o: Record<string, unknown> = {}) => normalize({ action: 'allow', chain: 'forward', from: '192.168.15.1', to: '192.168.15.3/32', protocol: 'tcp', port: 80, ...o });

/**
 * What the kernel would list for these rules: our rules as libnftables prints them, with handles,
 * and with what libnftables changes when it lists — implied protocol matches dropped, set
 * elements merged into ranges.
 */
function listing(table: string, specs: FirewallRuleSpec[], policies: Record<string, string> = {}): string {
  let handle = 10;
  const items: unknown[] = [{ metainfo: { json_schema_version: 1 } }, { table: { family: 'inet', name: table, handle: 1 } }];
  for (const c of ['input', 'forward', 'output'] as const) {
    items.push({ chain: { family: 'inet', table, name: c, handle: handle++, type: 'filter', hook: c, prio: 0, policy: policies[c] ?? 'accept' } });
    for (const r of staticRules(table, c)) items.push({ rule: { ...r, handle: handle++ } });
  }
  for (const s of specs) {
    for (const r of buildRules(table, s, ruleId(s))) {
      const expr = r.expr.filter((e) => {
        const m = e.match as { left?: { meta?: { key?: string } }; right?: unknown } | undefined;
        return !(m?.left?.meta?.key === 'l4proto' && (m.right === 'tcp' || m.right === 'udp'));
      });
      items.push({ rule: { ...r, expr, handle: handle++ } });
    }
  }
  return JSON.stringify({ nftables: items });
}

describe('normalize', () => {
  test('canonical prefixes, defaults dropped, port forms', () => {
    expect(rule()).toEqual({ action: 'allow', chain: 'forward', from: ['192.168.15.1/32'], to: ['192.168.15.3/32'], protocol: 'tcp', port: 80 });
    expect(rule({ protocol: 'any', port: undefined, from: undefined })).toEqual({ action: 'allow', chain: 'forward', to: ['192.168.15.3/32'] });
    expect(rule({ port: [8000, 8080] }).port).toEqual({ from: 8000, to: 8080 });
    expect(rule({ port: { from: 53, to: 53 } }).port).toBe(53);
    expect(rule({ from: ['FD15:0::1', '192.168.15.7/24', '10.0.0.0/25', '10.0.0.128/25', '192.168.15.1'], to: undefined }).from).toEqual([
      '10.0.0.0/24',
      '192.168.15.0/24',
      'fd15::1/128',
    ]);
  });

  test('the same addresses written differently give the same id; any change of content another', () => {
    expect(ruleId(rule({ from: ['10.0.0.0/25', '10.0.0.128/25'] }))).toBe(ruleId(rule({ from: '10.0.0.9/24' })));
    const ids = new Set([rule(), rule({ action: 'deny' }), rule({ chain: 'input', oif: undefined }), rule({ port: 81 }), rule({ tag: 'x' }), rule({ protocol: 'udp' })].map(ruleId));
    expect(ids.size).toBe(6);
    expect(ruleId(rule())).toMatch(/^[0-9a-f]{16}$/);
  });

  test('cover: the fewest prefixes for a union of intervals', () => {
    expect(cover([{ family: 4, start: 1n, end: 2n }])).toEqual(['0.0.0.1/32', '0.0.0.2/32']);
    expect(cover([{ family: 4, start: 0n, end: 2n ** 32n - 1n }])).toEqual(['0.0.0.0/0']);
    expect(cover([{ family: 6, start: 0n, end: 255n }, { family: 6, start: 256n, end: 511n }])).toEqual(['::/119']);
  });

  const bad: Array<[string, Record<string, unknown>]> = [
    ['unknown chain', { chain: 'prerouting' }],
    ['unknown action', { action: 'accept' }],
    ['unknown protocol', { protocol: 'sctp' }],
    ['protocol case', { protocol: 'TCP' }],
    ['port without tcp/udp', { protocol: 'icmp' }],
    ['port 0', { port: 0 }],
    ['port 65536', { port: 65536 }],
    ['port as text', { port: '80' }],
    ['port range backwards', { port: [90, 80] }],
    ['port array of three', { port: [1, 2, 3] }],
    ['bad prefix', { from: '10.0.0.0/33' }],
    ['empty list', { from: [] }],
    ['families that never meet', { from: '10.0.0.1', to: 'fd00::1' }],
    ['an address that can never match', { from: ['10.0.0.1', 'fd00::1'], to: '10.0.0.2' }],
    ['icmp with IPv6', { protocol: 'icmp', port: undefined, from: 'fd00::1', to: undefined }],
    ['iif on output', { chain: 'output', iif: 'eth0' }],
    ['oif on input', { chain: 'input', oif: 'eth0' }],
    ['iif wildcard', { iif: 'eth*' }],
    ['iif set reference', { iif: '@x' }],
    ['iif variable', { iif: '$x' }],
    ['iif too long', { iif: 'sixteen-bytes-xx' }],
    ['tag with ;', { tag: 'a;b' }],
    ['tag too long', { tag: 'x'.repeat(81) }],
    ['tag with a leading @', { tag: '@set' }],
    ['unknown key', { position: 1 }],
  ];
  test.each(bad)('%s -> ERR_NETNS_INVALID_ARG', (_what, o) => {
    expect(() => rule(o)).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_ARG' }));
  });

  test('policies and table names', () => {
    expect(policy({ forward: 'drop' })).toEqual({ forward: 'drop' });
    for (const p of [{ forward: 'reject' }, { nat: 'drop' }, null, { input: 'DROP' }]) expect(() => policy(p)).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_ARG' }));
    expect(tableName('netns_kit_fw')).toBe('netns_kit_fw');
    expect(() => tableName('a b')).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_ARG' }));
  });
});

describe('kernel rules', () => {
  test('one rule per address family, JSON only, comments carry id, family, role and tag', () => {
    const s = rule({ from: ['192.168.15.1', 'fd15::1'], to: undefined, tag: 'ctr-1' });
    const id = ruleId(s);
    const rules = buildRules('t', s, id);
    expect(rules.map((r) => r.comment)).toEqual([`nkfw:${id}:4:main:ctr-1`, `nkfw:${id}:6:main:ctr-1`]);
    expect(rules[0].expr).toEqual([
      { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: '192.168.15.1' } },
      { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } },
      { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: 80 } },
      { accept: null },
    ]);
    expect(rules[1].expr[0]).toEqual({ match: { op: '==', left: { payload: { protocol: 'ip6', field: 'saddr' } }, right: 'fd15::1' } });
    expect(JSON.parse(document([{ add: { rule: rules[0] } }]))).toEqual({ nftables: [{ add: { rule: rules[0] } }] });
  });

  test('reject: TCP reset for tcp, ICMP(v6) port unreachable for the rest, both for any protocol', () => {
    const verdicts = (o: Record<string, unknown>) => buildRules('t', rule({ action: 'reject', port: undefined, ...o }), 'x').map((r) => [r.comment.split(':')[3], r.expr[r.expr.length - 1]]);
    expect(verdicts({})).toEqual([['main', { reject: { type: 'tcp reset' } }]]);
    expect(verdicts({ protocol: 'udp' })).toEqual([['main', { reject: { type: 'icmpx', expr: 'port-unreachable' } }]]);
    expect(verdicts({ protocol: undefined })).toEqual([
      ['reset', { reject: { type: 'tcp reset' } }],
      ['main', { reject: { type: 'icmpx', expr: 'port-unreachable' } }],
    ]);
    expect(verdicts({ action: 'deny' })).toEqual([['main', { drop: null }]]);
  });

  test('families: none named -> one rule for both; icmp/icmpv6 bind to their family', () => {
    expect(families(normalize({ action: 'deny', chain: 'input' }))).toEqual([undefined]);
    expect(families(normalize({ action: 'deny', chain: 'input', protocol: 'icmpv6' }))).toEqual([6]);
    expect(families(normalize({ action: 'deny', chain: 'input', to: ['10.0.0.0/8', '::/0'] }))).toEqual([4, 6]);
  });

  test('every chain starts with established/related, IPv6 neighbour discovery, and on input/output loopback', () => {
    expect(staticRules('t', 'input').map((r) => r.comment)).toEqual(['nkfw:static:established', 'nkfw:static:loopback', 'nkfw:static:icmpv6-link']);
    expect(staticRules('t', 'forward').map((r) => r.comment)).toEqual(['nkfw:static:established', 'nkfw:static:icmpv6-link']);
    expect(staticRules('t', 'output')[1].expr[0]).toEqual({ match: { op: '==', left: { meta: { key: 'oifname' } }, right: 'lo' } });
  });

  test('replaceTable: add (so the delete cannot fail), delete, then everything afresh, in one document', () => {
    const cmds = replaceTable('t', { input: 'drop', forward: 'accept', output: 'accept' }, [{ id: ruleId(rule()), spec: rule() }]);
    expect(cmds.slice(0, 4)).toEqual([
      { add: { table: { family: 'inet', name: 't' } } },
      { delete: { table: { family: 'inet', name: 't' } } },
      { add: { table: { family: 'inet', name: 't' } } },
      { add: { chain: { family: 'inet', table: 't', name: 'input', type: 'filter', hook: 'input', prio: 0, policy: 'drop' } } },
    ]);
    expect(cmds.filter((c) => 'add' in c && 'rule' in (c.add as object))).toHaveLength(8 + 1);
  });
});

describe('read-back', () => {
  test('list gives back exactly the normalised rules, in evaluation order, with policies', () => {
    const specs = [
      rule({ chain: 'output', iif: undefined, oif: 'eth0', tag: 'a' }),
      rule({ from: ['10.0.0.0/25', '10.0.0.128/25', 'fd00::/8'], to: ['10.1.0.0/16', 'fd01::1'], protocol: 'udp', port: [53, 60] }),
      rule({ action: 'reject', protocol: undefined, port: undefined }),
      rule({ action: 'reject', chain: 'input', oif: undefined, port: 23, tag: 'telnet' }),
      rule({ action: 'deny', chain: 'input', protocol: 'icmpv6', port: undefined, from: undefined, to: undefined, iif: 'br0' }),
    ];
    const owned = ownedFirewall(parseListing(listing('t', specs, { forward: 'drop' })));
    expect(owned.policy).toEqual({ input: 'accept', forward: 'drop', output: 'accept' });
    expect(owned.statics).toHaveLength(8);
    const order = [specs[3], specs[4], specs[1], specs[2], specs[0]];
    expect(owned.rules.map((r) => r.spec)).toEqual(order);
    expect(owned.rules.map((r) => r.id)).toEqual(order.map(ruleId));
    expect(owned.rules[3].parts.map((p) => p.role)).toEqual(['reset', 'main']);
  });

  test('set elements merged by libnftables (ranges) read back to the same canonical prefixes', () => {
    const s = rule({ from: ['10.0.1.1', '10.0.1.2', '10.0.0.0/24'] });
    const id = ruleId(s);
    const [r] = buildRules('t', s, id);
    r.expr[0] = { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: { set: [{ prefix: { addr: '10.0.0.0', len: 24 } }, { range: ['10.0.1.1', '10.0.1.2'] }] } } };
    const t = JSON.stringify({ nftables: [{ table: { family: 'inet', name: 't' } }, { rule: { ...r, handle: 5 } }] });
    expect(ownedFirewall(parseListing(t)).rules[0].spec).toEqual(s);
  });

  test('a rule edited by hand (content no longer matches its id) is not passed off as the original', () => {
    const s = rule();
    const [r] = buildRules('t', s, ruleId(s));
    r.expr[r.expr.length - 1] = { drop: null };
    const owned = ownedFirewall(parseListing(JSON.stringify({ nftables: [{ table: { family: 'inet', name: 't' } }, { rule: { ...r, handle: 5 } }] })));
    expect(owned.rules[0].id).toBe(ruleId(s));
    expect(owned.rules[0].spec).toBeUndefined();
  });

  test('describeRule', () => {
    expect(describeRule(rule({ tag: 'web' }))).toBe('allow forward tcp 192.168.15.1/32 -> 192.168.15.3/32:80 [web]');
    expect(describeRule(normalize({ action: 'deny', chain: 'input', iif: 'eth0' }))).toBe('deny input iif eth0 * -> *');
  });
});
