/**
 * NAT end to end, in namespaces only (see support/nat-lab.ts for the network): the tutorial's
 * MASQUERADE and DNAT lines, hairpin, localhost, services, atomicity, serialisation, conntrack
 * flushing and refused input. Witnesses: real TCP/UDP traffic, `nft -j` through nsenter, sysctls.
 */
import { Nat, netns, NetnsError, type NatRuleSpec, type Netns } from '../lib/index';
import { normalize, ruleId } from '../lib/nat-rules';
import { Sandbox } from './support/sandbox';
import { ADDR, ask, buildLab, killPeers, nftRuleset, nftTable, serve, sleep, udpStream, waitFor, withoutTables, type Lab, type Peer } from './support/nat-lab';

const sb = new Sandbox();
let lab: Lab;
let redUdp: Peer;
let blueUdp: Peer;

const DECOY = `
table inet decoy {
  set blocked { type ipv4_addr; elements = { 198.51.100.7 } }
  chain input { type filter hook input priority 0; policy accept; ip saddr @blocked drop; }
  chain forward { type filter hook forward priority 0; policy accept; ip saddr @blocked drop; }
}
table ip decoy_nat {
  chain postrouting { type nat hook postrouting priority 50; policy accept; ip saddr 198.51.100.0/24 masquerade comment "not ours"; }
}
`;
let decoyBefore: { inet: string; nat: string; others: string };

async function decoyState(ns: Netns): Promise<{ inet: string; nat: string; others: string }> {
  return { inet: await nftTable(ns, 'decoy'), nat: await nftTable(ns, 'decoy_nat', 'ip'), others: withoutTables(await nftRuleset(ns), ['netns_kit', 'mytool']) };
}

/** Every NAT operation in these tests goes through here: afterwards the decoy tables must be byte-identical. */
async function op<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    expect(await decoyState(lab.host)).toEqual(decoyBefore);
  }
}

/** An operation that must be refused with `code` and change nothing at all (the decoy included). */
async function refused(code: string, fn: () => Promise<unknown>): Promise<void> {
  const before = await nftRuleset(lab.host);
  expect(before).toContain('"name": "decoy"');
  await expect(fn()).rejects.toMatchObject({ code });
  expect(await nftRuleset(lab.host)).toBe(before);
}

beforeAll(async () => {
  lab = await buildLab(sb);
  await lab.host.exec('nft', ['-f', '-'], { input: DECOY });
  decoyBefore = await decoyState(lab.host);
  expect(decoyBefore.inet).toContain('198.51.100.7');
  await Promise.all([
    serve(lab.red, 'red', 4, 'tcp', 80),
    serve(lab.red, 'red6', 6, 'tcp', 80),
    serve(lab.blue, 'blue', 4, 'tcp', 80),
    serve(lab.blue, 'blue6', 6, 'tcp', 80),
    serve(lab.wan, 'wan', 4, 'tcp', 7000),
    serve(lab.wan, 'wan6', 6, 'tcp', 7000),
    serve(lab.red, 'red-udp', 4, 'udp', 80).then((p) => (redUdp = p)),
    serve(lab.blue, 'blue-udp', 4, 'udp', 80).then((p) => (blueUdp = p)),
  ]);
});

/** Set while a group of tests shares one table (the refused-input cases change nothing anyway). */
let sharedTable = false;

afterEach(async () => {
  if (sharedTable) return;
  await op(() => lab.host.nat.flush());
  expect(await nftTable(lab.host, 'netns_kit')).toBe('');
});

afterAll(async () => {
  killPeers();
  await sb.cleanup();
});

const fwd = (extra: Partial<NatRuleSpec> = {}): NatRuleSpec => ({ kind: 'portForward', protocol: 'tcp', port: 8080, to: { address: ADDR.red[4], port: 80 }, ...extra }) as NatRuleSpec;

test('masquerade: red reaches a TCP server in wan, which sees the host wan address (IPv4 and IPv6)', async () => {
  // Without the rule wan cannot answer 192.168.15.1 (and the host does not forward yet).
  expect(await ask(lab.red, 4, 'tcp', ADDR.wan[4], 7000, 1, 1)).toEqual(['ERR TimeoutError']);
  const r4 = await op(() => lab.host.nat.masquerade({ source: '192.168.15.0/24', outInterface: 'wan0' }));
  const r6 = await op(() => lab.host.nat.masquerade({ source: 'fd15::/64', outInterface: 'wan0' }));
  expect(r4.warnings).toEqual([]);
  expect(await lab.host.sysctl.get('net.ipv4.ip_forward')).toBe('1');
  expect(await lab.host.sysctl.get('net.ipv6.conf.all.forwarding')).toBe('1');
  expect(await ask(lab.red, 4, 'tcp', ADDR.wan[4], 7000)).toEqual([`wan ${ADDR.hostWan[4]}`]);
  expect(await ask(lab.red, 6, 'tcp', ADDR.wan[6], 7000)).toEqual([`wan6 ${ADDR.hostWan[6]}`]);

  // Read back from the kernel, and seen by nft itself.
  const listed = await lab.host.nat.list();
  expect(listed).toEqual(
    expect.arrayContaining([
      { kind: 'masquerade', source: '192.168.15.0/24', outInterface: 'wan0', id: r4.id },
      { kind: 'masquerade', source: 'fd15::/64', outInterface: 'wan0', id: r6.id },
    ]),
  );
  const rules = JSON.parse(await nftTable(lab.host, 'netns_kit')).nftables.filter((x: { rule?: unknown }) => x.rule);
  const masq = rules.find((x: { rule: { comment?: string } }) => x.rule.comment?.startsWith(`nk:${r4.id}:masquerade:snat`));
  expect(masq.rule.chain).toBe('postrouting');
  expect(masq.rule.expr).toContainEqual({ masquerade: null });
});

test('snat writes the given source address', async () => {
  await op(() => lab.host.nat.snat({ source: '192.168.15.0/24', to: ADDR.hostWan[4] }));
  expect(await ask(lab.blue, 4, 'tcp', ADDR.wan[4], 7000)).toEqual([`wan ${ADDR.hostWan[4]}`]);
});

test('portForward: a wan client connecting to host:8080 gets red:80, over TCP and UDP, IPv4 and IPv6', async () => {
  expect(await ask(lab.wan, 4, 'tcp', ADDR.hostWan[4], 8080, 1, 1)).toEqual(['ERR ConnectionRefusedError']);
  await op(() => lab.host.nat.portForward({ protocol: 'tcp', port: 8080, to: { address: ADDR.red[4], port: 80 } }));
  await op(() => lab.host.nat.portForward({ protocol: 'udp', port: 8080, to: { address: ADDR.red[4], port: 80 } }));
  await op(() => lab.host.nat.portForward({ protocol: 'tcp', port: 8080, hostAddress: ADDR.hostWan[6], inInterface: 'wan0', to: { address: ADDR.red[6], port: 80 } }));
  // The backend sees the real client: DNAT alone, no masquerade.
  expect(await ask(lab.wan, 4, 'tcp', ADDR.hostWan[4], 8080)).toEqual([`red ${ADDR.wan[4]}`]);
  expect(await ask(lab.wan, 4, 'udp', ADDR.hostWan[4], 8080)).toEqual([`red-udp ${ADDR.wan[4]}`]);
  expect(await ask(lab.wan, 6, 'tcp', ADDR.hostWan[6], 8080)).toEqual([`red6 ${ADDR.wan[6]}`]);
});

test('portForward with a port range keeps the port', async () => {
  await op(() => lab.host.nat.portForward({ protocol: 'tcp', port: { from: 70, to: 90 }, hostAddress: ADDR.hostWan[4], to: { address: ADDR.blue[4] } }));
  expect(await ask(lab.wan, 4, 'tcp', ADDR.hostWan[4], 80)).toEqual([`blue ${ADDR.wan[4]}`]);
  const [rule] = await lab.host.nat.list();
  expect(rule).toMatchObject({ kind: 'portForward', port: { from: 70, to: 90 }, to: { address: ADDR.blue[4] } });
});

test('hairpin: blue reaches red through the host address and port', async () => {
  await op(() => lab.host.nat.portForward({ protocol: 'tcp', port: 8080, to: { address: ADDR.red[4], port: 80 } }));
  // Masqueraded to the bridge address, so red answers through the host and not straight to blue.
  expect(await ask(lab.blue, 4, 'tcp', ADDR.hostWan[4], 8080)).toEqual([`red ${ADDR.br[4]}`]);
  expect(await ask(lab.blue, 4, 'tcp', ADDR.br[4], 8080)).toEqual([`red ${ADDR.br[4]}`]);
  await op(() => lab.host.nat.portForward({ protocol: 'tcp', port: 8080, to: { address: ADDR.red[6], port: 80 } }));
  expect(await ask(lab.blue, 6, 'tcp', ADDR.hostWan[6], 8080)).toEqual([`red6 ${ADDR.br[6]}`]);
  // red reaching its own service through the host: the bridge must send the frame back out the
  // port it came in on, which it does only with hairpin mode on that port (as CNI's hairpinMode).
  await lab.host.exec('ip', ['link', 'set', 'dev', 'veth-red-br', 'type', 'bridge_slave', 'hairpin', 'on']);
  expect(await ask(lab.red, 4, 'tcp', ADDR.hostWan[4], 8080)).toEqual([`red ${ADDR.br[4]}`]);
});

test('localhost: the host namespace reaches the forward on 127.0.0.1:8080 only when asked', async () => {
  await op(() => lab.host.nat.portForward({ protocol: 'tcp', port: 8080, to: { address: ADDR.red[4], port: 80 } }));
  // Its own addresses work without it; loopback does not.
  expect(await ask(lab.host, 4, 'tcp', ADDR.hostWan[4], 8080)).toEqual([`red ${ADDR.hostWan[4]}`]);
  expect(await ask(lab.host, 4, 'tcp', '127.0.0.1', 8080, 1, 1)).toEqual(['ERR ConnectionRefusedError']);
  // apply replaces the forward by its localhost variant in one transaction.
  // (with the longest tag there is: 80 characters, every comment stays within nftables' 128)
  const withLocalhost = fwd({ localhost: true, tag: 'c'.repeat(80) } as Partial<NatRuleSpec>);
  const { ids } = await op(() => lab.host.nat.apply([withLocalhost]));
  expect(await lab.host.sysctl.get('net.ipv4.conf.br0.route_localnet')).toBe('1');
  expect(await ask(lab.host, 4, 'tcp', '127.0.0.1', 8080)).toEqual([`red ${ADDR.br[4]}`]);
  expect(await lab.host.nat.list()).toEqual([{ ...withLocalhost, id: ids[0] }]);
});

test('service: a VIP with two backends spreads 100 connections over both', async () => {
  const { id } = await op(() =>
    lab.host.nat.service({ vip: '10.96.0.10', port: 80, protocol: 'tcp', backends: [{ address: ADDR.red[4], port: 80 }, { address: ADDR.blue[4], port: 80 }] }),
  );
  const answers = await ask(lab.wan, 4, 'tcp', '10.96.0.10', 80, 100);
  const red = answers.filter((a) => a === `red ${ADDR.wan[4]}`).length;
  const blue = answers.filter((a) => a === `blue ${ADDR.wan[4]}`).length;
  expect(answers).toHaveLength(100);
  expect(red + blue).toBe(100);
  expect(red).toBeGreaterThan(0);
  expect(blue).toBeGreaterThan(0);
  const [listed] = await lab.host.nat.list();
  expect(listed).toEqual({ kind: 'service', vip: '10.96.0.10', port: 80, protocol: 'tcp', backends: [{ address: ADDR.red[4], port: 80 }, { address: ADDR.blue[4], port: 80 }], id });
});

test('service over IPv6 reaches both backends', async () => {
  await op(() => lab.host.nat.service({ vip: 'fd96::10', port: 80, protocol: 'tcp', backends: [{ address: ADDR.red[6], port: 80 }, { address: ADDR.blue[6], port: 80 }] }));
  const answers = await ask(lab.wan, 6, 'tcp', 'fd96::10', 80, 30);
  expect(new Set(answers)).toEqual(new Set([`red6 ${ADDR.wan[6]}`, `blue6 ${ADDR.wan[6]}`]));
});

test('ids: adding a rule that is there leaves one rule; list reads back what was given; remove and removeTag', async () => {
  const nat = lab.host.nat;
  const a = await op(() => nat.masquerade({ source: '192.168.15.7/24', exclude: ['192.168.15.0/24', '10.0.0.0/8'], tag: 'ctr-1' }));
  const again = await op(() => nat.masquerade({ source: '192.168.15.0/24', exclude: ['10.0.0.0/8', '192.168.15.0/24'], tag: 'ctr-1' }));
  expect(again.id).toBe(a.id);
  const b = await op(() => nat.portForward({ protocol: 'sctp', port: 3868, to: { address: 'fd15::1' }, tag: 'ctr-1' }));
  const c = await op(() => nat.service({ vip: 'fd96::1', port: 53, protocol: 'udp', backends: [{ address: 'fd15::2', port: 5353 }], tag: 'ctr-2' }));
  const listed = await nat.list();
  expect(listed.map((r) => r.id).sort()).toEqual([a.id, b.id, c.id].sort());
  // Each id is the content's id: reading back loses nothing.
  for (const r of listed) {
    const { id, ...spec } = r;
    expect(ruleId(normalize(spec))).toBe(id);
  }
  const table = await nftTable(lab.host, 'netns_kit');
  expect(table.split(`nk:${a.id}:masquerade:snat:`).length).toBe(2);
  expect((await nat.list({ tag: 'ctr-1' })).map((r) => r.id).sort()).toEqual([a.id, b.id].sort());

  expect(await op(() => nat.removeTag('ctr-1'))).toBe(2);
  expect((await nat.list()).map((r) => r.id)).toEqual([c.id]);
  await op(() => nat.remove(c.id));
  expect(await nat.list()).toEqual([]);
  await expect(nat.remove(c.id)).rejects.toMatchObject({ code: 'ENOENT', errno: -2 });
  await op(() => nat.remove(c.id, { missingOk: true }));
  expect(await nat.removeTag('nothing-here')).toBe(0);
});

test('interface names and tags are data, never nftables syntax', async () => {
  const odd = 'x"}]{drop;#';
  const { id } = await op(() => lab.host.nat.masquerade({ source: '192.168.15.0/24', outInterface: odd, tag: 'a=b+c@d/e' }));
  expect(await lab.host.nat.list()).toEqual([{ kind: 'masquerade', source: '192.168.15.0/24', outInterface: odd, tag: 'a=b+c@d/e', id }]);
  const rules = JSON.parse(await nftTable(lab.host, 'netns_kit')).nftables.filter((x: { rule?: unknown }) => x.rule);
  const main = rules.find((x: { rule: { comment?: string } }) => x.rule.comment === `nk:${id}:masquerade:snat:a=b+c@d/e`);
  expect(main.rule.expr).toContainEqual({ match: { op: '==', left: { meta: { key: 'oifname' } }, right: odd } });
});

test('a transaction that fails leaves the owned table exactly as it was', async () => {
  const nat = lab.host.nat;
  await op(() => nat.apply([{ kind: 'masquerade', source: '192.168.15.0/24' }]));
  // Someone turns our (empty) output chain into a filter chain: a DNAT rule cannot go there.
  await lab.host.exec('nft', ['delete', 'chain', 'inet', 'netns_kit', 'output']);
  await lab.host.exec('nft', ['add', 'chain', 'inet', 'netns_kit', 'output', '{ type filter hook output priority 0; policy accept; }']);
  const before = await nftTable(lab.host, 'netns_kit');
  // This batch deletes the masquerade and adds prerouting rules (fine alone) and output rules (refused).
  const err = await op(() => nat.apply([fwd(), { kind: 'snat', source: '192.168.15.0/24', to: ADDR.hostWan[4] }])).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(NetnsError);
  expect(err).toMatchObject({ code: 'EOPNOTSUPP', errno: -95, syscall: 'apply nat rules' });
  expect((err as NetnsError).extack).toMatch(/Could not process rule: Operation not supported/);
  expect(await nftTable(lab.host, 'netns_kit')).toBe(before);
  expect((await nat.list()).map((r) => r.kind)).toEqual(['masquerade']);
});

test('concurrent apply calls do not interleave', async () => {
  const setA: NatRuleSpec[] = [fwd(), { kind: 'masquerade', source: '192.168.15.0/24' }];
  const setB: NatRuleSpec[] = [fwd({ port: 8081 } as Partial<NatRuleSpec>), { kind: 'service', vip: '10.96.0.11', port: 80, protocol: 'tcp', backends: [{ address: ADDR.blue[4], port: 80 }] }];
  // Through different objects for the same namespace, in alternation.
  const other = await netns.open(lab.host.name!);
  const results = await op(() =>
    Promise.all([lab.host.nat.apply(setA), other.nat.apply(setB), lab.host.natTable('netns_kit').apply(setA), other.nat.apply(setB), lab.host.nat.apply(setB)]),
  );
  const idsB = results[4].ids;
  expect((await lab.host.nat.list()).map((r) => r.id).sort()).toEqual([...idsB].sort());
  // Exactly the rules of set B in the kernel: one primary rule each, nothing left of set A.
  const comments = (JSON.parse(await nftTable(lab.host, 'netns_kit')).nftables as { rule?: { comment?: string } }[])
    .map((x) => x.rule?.comment)
    .filter((c): c is string => c !== undefined && !c.startsWith('nk:static:'));
  expect(comments.filter((c) => /:(dnat|snat):/.test(c)).sort()).toEqual(idsB.map((id, i) => `nk:${id}:${setB[i].kind}:dnat:`).sort());
  expect(comments.every((c) => idsB.some((id) => c.startsWith(`nk:${id}:`)))).toBe(true);
  expect(await ask(lab.wan, 4, 'tcp', ADDR.hostWan[4], 8081)).toEqual([`red ${ADDR.wan[4]}`]);
});

test('UDP: a client that keeps sending reaches a forward added after it started, and no longer reaches the old backend once the forward is changed or removed', async () => {
  // The client starts before the forward exists: its un-NATed conntrack entry must not outlive the new rule.
  // The stream's 300 s only bound a forgotten client; the test kills it in `finally`. The waits are
  // event-driven: their bounds only stop a hung step from hanging the run.
  const client = udpStream(lab.wan, 4, ADDR.hostWan[4], 9090, 0.1, 300);
  try {
    expect(await waitFor(() => client.count('sent') >= 3, 60000)).toBe(true);
    expect(client.count('reply')).toBe(0);
    const { id } = await op(() => lab.host.nat.portForward({ protocol: 'udp', port: 9090, to: { address: ADDR.red[4], port: 80 } }));
    expect(await waitFor(() => client.count('reply red-udp') >= 3, 60000)).toBe(true);
    // Change the backend: the flow's conntrack entry still points at red until we delete it.
    await op(() => lab.host.nat.apply([{ kind: 'portForward', protocol: 'udp', port: 9090, to: { address: ADDR.blue[4], port: 80 } }]));
    expect(await waitFor(() => client.count('reply blue-udp') >= 3, 60000)).toBe(true);
    const [changed] = await lab.host.nat.list();
    expect(changed.id).not.toBe(id);
    await op(() => lab.host.nat.remove(changed.id));
    await sleep(300); // datagrams already in flight
    const blueGot = blueUdp.count('got');
    const replies = client.count('reply');
    const sent = client.count('sent');
    expect(await waitFor(() => client.count('sent') >= sent + 10, 60000)).toBe(true);
    expect(client.count('reply')).toBe(replies);
    expect(blueUdp.count('got')).toBe(blueGot);
    // The old entry is gone from the kernel (independent witness: conntrack(8)).
    const ct = await lab.host.exec('conntrack', ['-L', '-p', 'udp', '--dport', '9090'], { check: false });
    expect(ct.stdout).not.toContain(`src=${ADDR.blue[4]}`);
    expect(redUdp.count('got')).toBeGreaterThan(0);
  } finally {
    client.kill();
  }
});

test('a warning names another table whose forward chain would drop the traffic', async () => {
  await lab.host.exec('nft', ['-f', '-'], { input: 'table ip strict {\n  chain fwdchain { type filter hook forward priority 0; policy drop; }\n}\n' });
  try {
    const r = await lab.host.nat.masquerade({ source: '192.168.15.0/24' });
    expect(r.warnings).toEqual([expect.stringMatching(/^table ip strict chain fwdchain \(hook forward\) has policy drop/)]);
  } finally {
    await lab.host.exec('nft', ['delete', 'table', 'ip', 'strict']);
  }
});

test('flush removes the owned table and nothing else; other tables by name are separate', async () => {
  await op(() => lab.host.nat.masquerade({ source: '192.168.15.0/24' }));
  await op(() => lab.host.natTable('mytool').masquerade({ source: '192.168.15.0/24' }));
  expect(await nftTable(lab.host, 'mytool')).not.toBe('');
  // gc's view: our tables, never the decoys
  expect((await Nat.ownedTables(lab.host)).sort()).toEqual(['mytool', 'netns_kit']);
  await op(() => lab.host.nat.flush());
  expect(await nftTable(lab.host, 'netns_kit')).toBe('');
  expect((await lab.host.natTable('mytool').list()).map((r) => r.kind)).toEqual(['masquerade']);
  await op(() => lab.host.natTable('mytool').flush());
  expect(await nftTable(lab.host, 'mytool')).toBe('');
  await op(() => lab.host.nat.flush()); // nothing there: fine
});

describe('bad input is refused with a typed error and changes nothing', () => {
  beforeAll(async () => {
    sharedTable = true;
    await op(() => lab.host.nat.apply([fwd(), { kind: 'portForward', protocol: 'udp', port: 5000, hostAddress: ADDR.hostWan[4], to: { address: ADDR.red[4] } }]));
  });

  afterAll(async () => {
    sharedTable = false;
    expect((await lab.host.nat.list()).length).toBe(2);
    await op(() => lab.host.nat.flush());
  });

  const nat = () => lab.host.nat;
  const pf = (o: Record<string, unknown>) => () => nat().portForward({ protocol: 'tcp', port: 9000, to: { address: ADDR.red[4] }, ...o } as never);

  test.each([
    ['port 0', pf({ port: 0 })],
    ['port 65536', pf({ port: 65536 })],
    ['negative port', pf({ port: -1 })],
    ['non-integer port', pf({ port: 80.5 })],
    ['port as a string', pf({ port: '80' })],
    ['target port 0', pf({ to: { address: ADDR.red[4], port: 0 } })],
    ['range start after end', pf({ port: { from: 9000, to: 8000 } })],
    ['range end 65536', pf({ port: { from: 9000, to: 65536 } })],
    ['service port 70000', () => nat().service({ vip: '10.96.0.1', port: 70000, protocol: 'tcp', backends: [{ address: ADDR.red[4], port: 80 }] })],
    ['service backend port 0', () => nat().service({ vip: '10.96.0.1', port: 80, protocol: 'tcp', backends: [{ address: ADDR.red[4], port: 0 }] })],
  ])('%s: ERR_NETNS_INVALID_PORT', async (_name, fn) => {
    await refused('ERR_NETNS_INVALID_PORT', fn);
  });

  test.each([
    ['unknown protocol', pf({ protocol: 'icmp' })],
    ['service with unknown protocol', () => nat().service({ vip: '10.96.0.1', port: 80, protocol: 'gre' as never, backends: [{ address: ADDR.red[4], port: 80 }] })],
    ['unknown kind in apply', () => nat().apply([fwd(), { kind: 'redirect' } as never])],
    ['range with a target port', pf({ port: { from: 9000, to: 9010 }, to: { address: ADDR.red[4], port: 80 } })],
    ['localhost for IPv6', pf({ to: { address: ADDR.red[6] }, localhost: true })],
    ['service without backends', () => nat().service({ vip: '10.96.0.1', port: 80, protocol: 'tcp', backends: [] })],
  ])('%s: ERR_NETNS_INVALID_RULE', async (_name, fn) => {
    await refused('ERR_NETNS_INVALID_RULE', fn);
  });

  test.each([
    ['same port on every address', pf({ port: 8080, to: { address: ADDR.blue[4], port: 80 } })],
    ['a range covering it on one address', pf({ port: { from: 8000, to: 8100 }, hostAddress: ADDR.hostWan[4], to: { address: ADDR.blue[4] } })],
    ['udp on the same address', pf({ protocol: 'udp', port: 5000, hostAddress: ADDR.hostWan[4], to: { address: ADDR.blue[4] } })],
    ['udp on every address', pf({ protocol: 'udp', port: { from: 4000, to: 6000 }, to: { address: ADDR.blue[4] } })],
    ['two overlapping forwards in one apply', () => nat().apply([fwd({ port: 7000 } as Partial<NatRuleSpec>), fwd({ port: 7000, to: { address: ADDR.blue[4], port: 80 } } as Partial<NatRuleSpec>)])],
  ])('overlapping forward (%s): ERR_NETNS_CONFLICT', async (_name, fn) => {
    await refused('ERR_NETNS_CONFLICT', fn);
  });

  test.each([
    ['hostAddress IPv6, target IPv4', pf({ hostAddress: ADDR.hostWan[6] })],
    ['snat IPv4 source to an IPv6 address', () => nat().snat({ source: '192.168.15.0/24', to: 'fd15::5' })],
    ['masquerade exclude of the other family', () => nat().masquerade({ source: '192.168.15.0/24', exclude: ['fd15::/64'] })],
    ['service backend of the other family', () => nat().service({ vip: '10.96.0.1', port: 80, protocol: 'tcp', backends: [{ address: ADDR.red[6], port: 80 }] })],
  ])('wrong family (%s): ERR_NETNS_FAMILY_MISMATCH', async (_name, fn) => {
    await refused('ERR_NETNS_FAMILY_MISMATCH', fn);
  });

  test.each([
    ['not an address', pf({ to: { address: 'red.example' } })],
    ['bad prefix', () => nat().masquerade({ source: '192.168.15.0/33' })],
  ])('%s: ERR_NETNS_INVALID_ADDRESS', async (_name, fn) => {
    await refused('ERR_NETNS_INVALID_ADDRESS', fn);
  });

  test.each([
    ['too long', pf({ inInterface: 'a-very-long-ifname' })],
    ['with a space', () => nat().masquerade({ source: '192.168.15.0/24', outInterface: 'wan 0' })],
    ['with a slash', () => nat().snat({ source: '192.168.15.0/24', to: ADDR.hostWan[4], outInterface: 'wan/0' })],
    ['empty', pf({ inInterface: '' })],
    ['an nft wildcard', pf({ inInterface: 'veth*' })],
  ])('interface name %s: ERR_NETNS_INVALID_IFNAME', async (_name, fn) => {
    await refused('ERR_NETNS_INVALID_IFNAME', fn);
  });

  test.each([
    ['too long', pf({ tag: 'x'.repeat(81) })],
    ['with a space', pf({ tag: 'ctr 1' })],
    ['with a quote', pf({ tag: 'ctr"1' })],
    ['with a newline', pf({ tag: 'ctr\n1' })],
    ['empty', pf({ tag: '' })],
    ['unknown option', pf({ toPort: 80 })],
  ])('tag or option %s: ERR_NETNS_INVALID_ARG', async (_name, fn) => {
    await refused('ERR_NETNS_INVALID_ARG', fn);
  });

  test('a bad table name: ERR_NETNS_INVALID_NAME', () => {
    expect(() => lab.host.natTable('my table')).toThrow(expect.objectContaining({ code: 'ERR_NETNS_INVALID_NAME' }));
  });
});
