// Topologies with a `firewall:` section: up applies it in one transaction (and again changes
// nothing), status shows it, down removes it (also from a namespace the topology does not own), and
// a process killed after applying it leaves nothing once gc ran. Witnesses: `nft -j` through
// nsenter, real TCP traffic, the registry's marker files.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { gc, netns, topology, type Topology } from '../lib/index';
import { Netns } from '../lib/netns';
import { registryDir } from '../lib/registry';
import { firewallTableName } from '../lib/topology/validate';
import { nsName, RUN, Sandbox } from './support/sandbox';
import { ask, killPeers, nftTable, serve } from './support/nat-lab';
import { cli } from './support/cli';

const sb = new Sandbox();
afterEach(() => sb.cleanup());
afterAll(() => killPeers());

const open = (name: string) => new Netns(name, `/run/netns/${name}`);

test('firewall section: up applies it (bridged traffic obeys it), up again changes nothing, a change is one step, down removes it', async () => {
  const outer = await sb.ns('fwtout', { loopbackUp: true });
  const [host, a, b, c] = ['fwth', 'fwta', 'fwtb', 'fwtc'].map(nsName);
  const name = `t${RUN}fw${randomBytes(2).toString('hex')}`;
  const table = firewallTableName(name);
  const member = (ns: string, ip: string) => ({ name: ns, links: [{ name: 'eth0', addresses: [`${ip}/24`], peer: { netns: host, name: `p${ns.slice(-6)}`.slice(0, 15), master: 'br0' } }] });
  const t: Topology = {
    name,
    namespaces: [
      {
        name: host,
        bridges: [{ name: 'br0', addresses: ['192.168.15.254/24'] }],
        firewall: { policy: { forward: 'drop' }, rules: [{ action: 'allow', chain: 'forward', from: '192.168.15.1', to: '192.168.15.3', protocol: 'tcp', port: 80 }] },
      },
      member(a, '192.168.15.1'),
      member(b, '192.168.15.2'),
      member(c, '192.168.15.3'),
      // Not the topology's: only its firewall table is, and down removes exactly that.
      { name: outer.name!, existing: true, firewall: { policy: { input: 'drop' }, rules: [{ action: 'allow', chain: 'input', protocol: 'tcp', port: 22, tag: 'ssh' }] } },
    ],
  };
  const handle = await topology.up(t);
  try {
    expect(handle.changes.filter((s) => s.startsWith('apply firewall'))).toHaveLength(2);
    const doc = JSON.parse(await nftTable(open(host), table)).nftables as Array<{ chain?: { name: string; policy: string } }>;
    expect(doc.find((x) => x.chain?.name === 'forward')!.chain!.policy).toBe('drop');
    expect(await nftTable(outer, table)).toContain('"policy": "drop"');
    expect(existsSync(path.join(registryDir(), 'firewall', outer.name!, table))).toBe(true);

    await serve(handle.netns(c), 'C', 4, 'tcp', 80);
    expect(await ask(handle.netns(a), 4, 'tcp', '192.168.15.3', 80, 1, 10)).toEqual(['C 192.168.15.1']);
    expect(await ask(handle.netns(b), 4, 'tcp', '192.168.15.3', 80, 1, 1)).toEqual(['ERR TimeoutError']);

    expect((await topology.up(t)).changes).toEqual([]);
    const st = await topology.status(t);
    expect(st.matches).toBe(true);
    expect(st.namespaces.find((n) => n.name === host)!.firewall).toEqual([
      { table, policy: { input: 'accept', forward: 'drop', output: 'accept' }, rules: [expect.objectContaining({ action: 'allow', from: ['192.168.15.1/32'], port: 80 })] },
    ]);

    // The file changes: B instead of A. One step, one transaction, the new rule in effect.
    const changed = JSON.parse(JSON.stringify(t)) as Topology;
    changed.namespaces![0].firewall!.rules![0].from = '192.168.15.2';
    expect((await topology.status(changed)).matches).toBe(false);
    const again = await topology.up(changed);
    expect(again.changes).toEqual([expect.stringMatching(/^apply firewall to .*forward drop.*1 rule\(s\)\), one transaction$/)]);
    expect(await ask(handle.netns(b), 4, 'tcp', '192.168.15.3', 80, 1, 10)).toEqual(['C 192.168.15.2']);
    expect(await ask(handle.netns(a), 4, 'tcp', '192.168.15.3', 80, 1, 1)).toEqual(['ERR TimeoutError']);
  } finally {
    killPeers();
    const r = await topology.down(t);
    expect(r.firewallTables).toEqual([{ netns: outer.name!, table }]);
  }
  expect(await nftTable(outer, table)).toBe('');
  expect(existsSync(path.join(registryDir(), 'firewall', outer.name!))).toBe(false);
  expect((await netns.list()).map((n) => n.name)).not.toContain(host);
});

test('a bad firewall section is refused before anything is made, naming its path', async () => {
  const host = nsName('fwtbad');
  const t: Topology = { name: `t${RUN}fwbad`, namespaces: [{ name: host, firewall: { rules: [{ action: 'allow', chain: 'forward', iif: 'x;y' }] } }] };
  await expect(topology.up(t)).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_TOPOLOGY', detail: 'namespaces[0].firewall.rules[0]' });
  const t2: Topology = { name: `t${RUN}fwbad`, namespaces: [{ name: host, firewall: { policy: { forward: 'reject' as never } } }] };
  await expect(topology.up(t2)).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_TOPOLOGY', detail: 'namespaces[0].firewall.policy' });
  expect((await netns.list()).map((n) => n.name)).not.toContain(host);
});

function runChild(orders: object): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'support', 'gc-child.js'), JSON.stringify(orders)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited ${code}: ${out}`))));
  });
}

test('a process killed inside up after applying a firewall leaves no table once gc ran', async () => {
  const prefix = `nkt-${RUN}-fwgc`;
  const outer = await sb.ns('fwgc');
  const name = `${prefix}${randomBytes(2).toString('hex')}`;
  const table = firewallTableName(name);
  const interrupted: Topology = { name, namespaces: [{ name: outer.name!, existing: true, firewall: { policy: { input: 'drop', forward: 'drop' }, rules: [{ action: 'allow', chain: 'input', protocol: 'icmp' }] } }] };
  const done: Topology = { name: `${prefix}d${randomBytes(2).toString('hex')}` };
  const persist = nsName('fwgcp');
  await runChild({ plain: [], persist, done, interrupted, stopAt: 1 });
  try {
    // Killed between the firewall step and the end of up: the table is there, the topology never completed.
    expect(await nftTable(outer, table)).toContain('"policy": "drop"');
    const dry = await gc({ prefix, dryRun: true });
    expect(dry.firewallTables).toEqual([{ netns: outer.name!, table }]);
    expect(await nftTable(outer, table)).toContain('"policy": "drop"');
    const report = await gc({ prefix });
    expect(report.firewallTables).toEqual([{ netns: outer.name!, table }]);
    expect(report.topologies).toEqual([name]);
    expect(report.errors).toEqual([]);
    expect(await nftTable(outer, table)).toBe('');
    expect(existsSync(path.join(registryDir(), 'firewall', outer.name!))).toBe(false);
    // The namespace itself is not the topology's: it stays.
    expect((await netns.list()).map((n) => n.name)).toContain(outer.name);
  } finally {
    await topology.down(done);
    await netns.delete(persist, { missingOk: true });
  }
});

test('netns-kit status lists firewall policies and rules (every netns-kit firewall table), as text and JSON', async () => {
  const ns = await sb.ns('fwcli');
  await ns.firewall.policy({ input: 'drop' });
  const r = await ns.firewall.allow({ chain: 'input', from: '10.1.2.0/24', protocol: 'tcp', port: 5432, tag: 'db' });
  await ns.firewallTable('other_fw').deny({ chain: 'output', to: 'fd00::/8' });
  const text = await cli(['status', '--match', ns.name!]);
  expect(text.code).toBe(0);
  expect(text.stdout).toContain('FIREWALL');
  expect(text.stdout).toMatch(new RegExp(`${ns.name} +netns_kit_fw +policy +input drop, forward accept, output accept`));
  expect(text.stdout).toMatch(new RegExp(`${ns.name} +netns_kit_fw +${r.id} +allow input tcp 10\\.1\\.2\\.0/24 -> \\*:5432 \\[db\\]`));
  expect(text.stdout).toMatch(/other_fw +[0-9a-f]{16} +deny output \* -> fd00::\/8/);
  const json = await cli(['status', '--match', ns.name!, '--json']);
  const st = JSON.parse(json.stdout) as { namespaces: Array<{ name: string; firewall?: Array<{ table: string; rules: Array<{ id: string }> }> }> };
  const mine = st.namespaces.find((n) => n.name === ns.name)!;
  expect(mine.firewall!.map((f) => f.table).sort()).toEqual(['netns_kit_fw', 'other_fw']);
  expect(mine.firewall!.find((f) => f.table === 'netns_kit_fw')!.rules).toEqual([r]);
});

test('an up aborted after changing a firewall rolls it back to what it was (one transaction each way)', async () => {
  const outer = await sb.ns('fwtrb');
  const other = nsName('fwtrb2');
  const name = `t${RUN}fwrb${randomBytes(2).toString('hex')}`;
  const table = firewallTableName(name);
  const v1: Topology = {
    name,
    options: { concurrency: 1 },
    namespaces: [{ name: outer.name!, existing: true, firewall: { policy: { input: 'drop' }, rules: [{ action: 'allow', chain: 'input', protocol: 'tcp', port: 22 }] } }],
  };
  await topology.up(v1);
  try {
    const fw = outer.firewallTable(table);
    const before = await fw.state();
    const ruleset = await nftTable(outer, table);
    const v2 = JSON.parse(JSON.stringify(v1)) as Topology;
    v2.namespaces![0].firewall = { policy: { output: 'drop' }, rules: [{ action: 'deny', chain: 'output', to: '10.0.0.0/8' }] };
    v2.namespaces!.push({ name: other, firewall: { policy: { forward: 'drop' } } });
    const ac = new AbortController();
    await expect(
      topology.up(v2, {
        signal: ac.signal,
        onProgress: (p) => {
          if (p.step.startsWith(`apply firewall to ${outer.name}`)) ac.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'ERR_NETNS_ABORTED' });
    // Back to v1: same policies, same rules, same ids (handles may differ: the table was rebuilt).
    expect(await fw.state()).toEqual(before);
    expect(JSON.parse(await nftTable(outer, table)).nftables.length).toBe(JSON.parse(ruleset).nftables.length);
    expect((await netns.list()).map((n) => n.name)).not.toContain(other);
    expect(existsSync(path.join(registryDir(), 'firewall', outer.name!, table))).toBe(true);
  } finally {
    await topology.down(v1);
  }
  expect(await nftTable(outer, table)).toBe('');
});
