// gc: a process creating namespaces is SIGKILLed (one of them half-way through a topology up);
// gc removes exactly its leftovers and leaves alone what netns-kit did not create, what was
// persisted, what belongs to a completed topology and what belongs to a living process.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { bulk, gc, netns, topology, type Topology } from '../lib/index';
import { listNamespaceMarkers, registryDir } from '../lib/registry';
import { ipJson, journalsNaming, NS_PREFIX, nsName, RUN, Sandbox, setsNaming } from './support/sandbox';

const sb = new Sandbox();
// Only this file's objects: other test files (the crash tests) run gc concurrently on theirs.
const MINE = `nkt-${RUN}-gc`;
afterEach(() => sb.cleanup());

/**
 * `ip netns del NAME; ip netns add NAME`, with the old namespace held open meanwhile: the kernel
 * reuses a freed namespace's inode number at once, and a new namespace with the old one's inode
 * would be indistinguishable from it (the case gc cannot and need not tell apart).
 */
function replaceNamespace(name: string): void {
  const old = openSync(`/run/netns/${name}`, 'r');
  try {
    execFileSync('ip', ['netns', 'del', name]);
    execFileSync('ip', ['netns', 'add', name]);
  } finally {
    closeSync(old);
  }
}

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

test('gc removes what a killed process left, and nothing else', async () => {
  const outer = await sb.ns('gcouter'); // ours, alive: never collected
  await outer.links.add({ kind: 'bridge', name: 'decoy0' });
  const decoy = nsName('gcdecoy');
  execFileSync('ip', ['netns', 'add', decoy]); // not made by netns-kit
  const plain = [nsName('gcplain'), nsName('gcplain')];
  const persist = nsName('gcpersist');
  const tag = randomBytes(2).toString('hex');
  const done: Topology = { name: `nkt-${RUN}-gcdone${tag}`, namespaces: [{ name: nsName('gcdone') }] };
  const hub = nsName('gchub');
  const interrupted: Topology = {
    name: `nkt-${RUN}-gcint${tag}`,
    options: { concurrency: 1 },
    namespaces: [{ name: hub, bridges: [{ name: 'br0' }] }, { name: outer.name!, existing: true, bridges: [{ name: 'obr' }] }],
    // Members go through the bulk path in chunks of up to 32, two in flight: killed once the first
    // chunk is reported, the second is anywhere from not started to complete, the third never ran.
    templates: [{ count: 70, name: `${hub}-{i}`, uplink: { name: 'eth0', peerName: 'm{i}', netns: outer.name!, bridge: 'obr' } }],
  };
  try {
    // Steps: hub, br0, obr, then members: stop when the first members are reported.
    await runChild({ plain, persist, done, interrupted, stopAt: 4 });
    const live = new Set((await netns.list()).map((n) => n.name));
    const members = [...live].filter((n): n is string => n !== undefined && n.startsWith(`${hub}-`));
    for (const n of [...plain, persist, hub, `${hub}-0`, ...done.namespaces!.map((n) => n.name)]) expect(live).toContain(n);
    expect(live).not.toContain(`${hub}-69`);
    const outerLinks = () => ipJson<Array<{ ifname: string }>>(outer, 'link', 'show').map((l) => l.ifname).sort();
    const memberLinks = outerLinks().filter((l) => /^m\d+$/.test(l));
    expect(memberLinks).toContain('m0');
    expect(memberLinks.length).toBeLessThanOrEqual(members.length);

    const mine = (names: string[]) => names.filter((n) => n.startsWith(`nkt-${RUN}-gc`)).sort();
    const expected = [...plain, hub, ...members].sort();
    const dry = await gc({ dryRun: true, prefix: MINE });
    expect(mine(dry.namespaces)).toEqual(expected);
    // Bridge ends in the namespace the topology does not own carry link markers (their index chosen).
    expect(dry.links.filter((l) => l.netns === outer.name).map((l) => l.name).sort()).toEqual([...memberLinks, 'obr'].sort());
    expect(dry.topologies).toContain(interrupted.name);
    expect(dry.topologies).not.toContain(done.name);
    // A dry run changes nothing.
    for (const n of expected) expect((await netns.list()).map((x) => x.name)).toContain(n);
    expect(outerLinks()).toHaveLength(3 + memberLinks.length);

    const report = await gc({ prefix: MINE });
    expect(mine(report.namespaces)).toEqual(expected);
    expect(report.errors).toEqual([]);
    const after = new Set((await netns.list()).map((n) => n.name));
    for (const n of expected) expect(after).not.toContain(n);
    for (const n of [persist, decoy, outer.name, done.namespaces![0].name]) expect(after).toContain(n);
    expect(outerLinks()).toEqual(['decoy0', 'lo']);
    expect(existsSync(`${registryDir()}/topologies/${interrupted.name}.json`)).toBe(false);
    expect(existsSync(`${registryDir()}/topologies/${done.name}.json`)).toBe(true);
    // Nothing more to do the second time.
    const again = await gc({ dryRun: true, prefix: MINE });
    expect(mine(again.namespaces)).toEqual([]);
  } finally {
    await topology.down(done);
    await netns.delete(persist, { missingOk: true });
    execFileSync('ip', ['netns', 'del', decoy]);
    await gc({ prefix: MINE }); // in case an assertion failed before gc ran
  }
  expect(existsSync(`${registryDir()}/netns/${persist}`)).toBe(false);
});

test('namespaces of bulk.createMany: collected once their process died (one set file, not a file each); persist: true kept', async () => {
  const made = Array.from({ length: 40 }, () => nsName('gcbulk'));
  const kept = Array.from({ length: 3 }, () => nsName('gcbkeep'));
  const sets = () => [...setsNaming(`${NS_PREFIX}gcbulk`), ...setsNaming(`${NS_PREFIX}gcbkeep`)];
  expect(sets()).toEqual([]);
  const done: Topology = { name: `nkt-${RUN}-gcb${randomBytes(2).toString('hex')}` };
  await runChild({ plain: [], persist: nsName('gcp4'), bulk: made, bulkPersist: kept, done, interrupted: { name: `nkt-${RUN}-gcbi${randomBytes(2).toString('hex')}` }, stopAt: 0 });
  try {
    const live = new Set((await netns.list()).map((n) => n.name));
    for (const n of [...made, ...kept]) expect(live).toContain(n);
    // Two sets of the child's (one per call), no marker file per namespace.
    expect(sets()).toHaveLength(2);
    for (const n of made) expect(existsSync(path.join(registryDir(), 'netns', n))).toBe(false);
    // A same-named namespace made by somebody else after the owner died is not collected.
    replaceNamespace(made[7]);

    const report = await gc({ prefix: MINE });
    expect(report.errors).toEqual([]);
    expect(report.namespaces.filter((n) => n.includes('gcbulk')).sort()).toEqual(made.filter((_, i) => i !== 7).sort());
    const after = new Set((await netns.list()).map((n) => n.name));
    for (const n of made) expect(after.has(n)).toBe(n === made[7]);
    for (const n of kept) expect(after).toContain(n);
    // The dead process's set is gone; the persistent one stays until its namespaces are deleted.
    expect(sets()).toEqual(setsNaming(`${NS_PREFIX}gcbkeep`));
    expect(sets()).toHaveLength(1);
    await bulk.deleteMany(kept);
    expect(sets()).toEqual([]);
  } finally {
    spawnSync('ip', ['netns', 'del', made[7]]);
    await bulk.deleteMany(kept, { missingOk: true });
    await topology.down(done);
    for (const n of (await netns.list()).map((x) => x.name!).filter((n) => n.startsWith(`nkt-${RUN}-gcp4`))) await netns.delete(n);
  }
});

test('single creates of a killed process: one journal, no file per namespace; gc collects them, keeps persist, drops the journal once empty', async () => {
  const plain = Array.from({ length: 6 }, () => nsName('gcjrnl'));
  const persist = nsName('gcjkeep');
  const done: Topology = { name: `nkt-${RUN}-gcj${randomBytes(2).toString('hex')}` };
  expect(journalsNaming(`${NS_PREFIX}gcj`)).toEqual([]);
  await runChild({ plain, persist, done, interrupted: { name: `nkt-${RUN}-gcji${randomBytes(2).toString('hex')}` }, stopAt: 0 });
  try {
    const live = new Set((await netns.list()).map((n) => n.name));
    for (const n of [...plain, persist]) expect(live).toContain(n);
    // One journal for the child's seven single creates, not a marker file each.
    const journals = journalsNaming(`${NS_PREFIX}gcj`);
    expect(journals).toHaveLength(1);
    for (const n of [...plain, persist]) expect(existsSync(path.join(registryDir(), 'netns', n))).toBe(false);
    // gc sees each entry like a marker: exactly the dead process's namespaces, not the persistent one.
    const dry = await gc({ dryRun: true, prefix: MINE });
    expect(dry.namespaces.filter((n) => n.includes('gcj')).sort()).toEqual([...plain].sort());
    const report = await gc({ prefix: MINE });
    expect(report.errors).toEqual([]);
    expect(report.namespaces.filter((n) => n.includes('gcj')).sort()).toEqual([...plain].sort());
    const after = new Set((await netns.list()).map((n) => n.name));
    for (const n of plain) expect(after).not.toContain(n);
    expect(after).toContain(persist);
    // The persistent entry keeps the journal; deleting that namespace (from this process) drops it.
    expect(journalsNaming(`${NS_PREFIX}gcj`)).toEqual(journals);
    await netns.delete(persist);
    expect(journalsNaming(`${NS_PREFIX}gcj`)).toEqual([]);
  } finally {
    await netns.delete(persist, { missingOk: true });
    await topology.down(done);
    await gc({ prefix: MINE });
  }
});

test('this process records its single creates in its own journal; deleting them leaves no entry', async () => {
  const names = [nsName('gcjown'), nsName('gcjown')];
  for (const n of names) await netns.create(n);
  try {
    const [journal] = journalsNaming(`${NS_PREFIX}gcjown`);
    expect(journal).toMatch(new RegExp(`^${process.pid}-`));
    for (const n of names) expect(existsSync(path.join(registryDir(), 'netns', n))).toBe(false);
    // A live owner: gc leaves them alone.
    expect((await gc({ dryRun: true, prefix: MINE })).namespaces.filter((n) => n.includes('gcjown'))).toEqual([]);
    const entries = async () => (await listNamespaceMarkers()).filter((m) => names.includes(m.name));
    expect((await entries()).map((m) => m.marker?.journal)).toEqual([journal, journal]);
    for (const n of names) await netns.delete(n);
    // No entry names them any more; the journal itself stays while its process lives.
    expect(await entries()).toEqual([]);
    expect(existsSync(path.join(registryDir(), 'journal', journal))).toBe(true);
  } finally {
    for (const n of names) await netns.delete(n, { missingOk: true });
  }
});

test('a persistent namespace another tool deleted leaves no entry behind once gc has run (its journal can go)', async () => {
  const name = nsName('gcgone');
  const kept = nsName('gckept');
  await netns.create(name);
  await netns.create(kept);
  try {
    const entries = async () => (await listNamespaceMarkers()).filter((m) => m.name === name || m.name === kept).map((m) => m.name);
    expect((await entries()).sort()).toEqual([name, kept].sort());
    execFileSync('ip', ['netns', 'del', name]);
    const r = await gc({ prefix: MINE });
    expect(r.namespaces).toEqual([]);
    expect(r.staleMarkers).toBeGreaterThanOrEqual(1);
    // The deleted one's entry is gone; the one still there keeps its entry (and is never collected).
    expect(await entries()).toEqual([kept]);
    expect((await netns.list()).map((n) => n.name)).toContain(kept);
  } finally {
    await netns.delete(kept, { missingOk: true });
    spawnSync('ip', ['netns', 'del', name]);
  }
});

test('a namespace replaced by somebody else after its owner died is not collected', async () => {
  const name = nsName('gcswap');
  const done: Topology = { name: `nkt-${RUN}-gcs${randomBytes(2).toString('hex')}` };
  await runChild({ plain: [name], persist: nsName('gcp2'), done, interrupted: { name: `nkt-${RUN}-gci${randomBytes(2).toString('hex')}`, namespaces: [{ name: nsName('gcx') }] }, stopAt: 1 });
  const leftovers = [name, ...(await netns.list()).map((n) => n.name!).filter((n) => n.startsWith(`nkt-${RUN}-gcx`))];
  // Replace the child's namespace by one of our own making (same name, other inode).
  replaceNamespace(name);
  try {
    const r = await gc({ prefix: MINE });
    expect(r.namespaces).not.toContain(name);
    expect((await netns.list()).map((n) => n.name)).toContain(name);
    for (const n of leftovers.slice(1)) expect(r.namespaces).toContain(n);
  } finally {
    spawnSync('ip', ['netns', 'del', name]);
    await topology.down(done);
    const persisted = (await netns.list()).map((n) => n.name!).filter((n) => n.startsWith(`nkt-${RUN}-gcp2`));
    for (const n of persisted) await netns.delete(n);
  }
});

test('up again after an up that was killed half-way adopts what it made and finishes; down then leaves nothing', async () => {
  const outer = await sb.ns('gcouter2');
  const hub = nsName('gcre');
  const t: Topology = {
    name: `nkt-${RUN}-gcre${randomBytes(2).toString('hex')}`,
    options: { concurrency: 1 },
    namespaces: [{ name: hub, bridges: [{ name: 'br0', addresses: ['10.9.0.1/24'] }] }, { name: outer.name!, existing: true, bridges: [{ name: 'obr' }] }],
    templates: [{ count: 70, name: `${hub}-{i}`, uplink: { name: 'eth0', peerName: 'm{i}', netns: outer.name!, bridge: 'obr' }, addresses: ['10.9.0.{i+2}/24'] }],
  };
  // Steps: hub, br0, obr, br0's address, then the members (bulk chunks of up to 32, two in
  // flight): killed when the first chunk is reported, while the second may be half-way.
  const done: Topology = { name: `nkt-${RUN}-gcd${randomBytes(2).toString('hex')}` };
  await runChild({ plain: [], persist: nsName('gcp3'), done, interrupted: t, stopAt: 5 });
  try {
    const made = new Set((await netns.list()).map((x) => x.name!).filter((n) => n.startsWith(`${hub}-`)));
    expect(made).toContain(`${hub}-0`);
    expect(made).not.toContain(`${hub}-69`);
    const handle = await topology.up(t);
    // What the killed run made is adopted, not re-made: only the missing members are created
    // (a member made half-way gets its missing pieces as steps of their own).
    const created = handle.changes.filter((c) => c.startsWith('create namespace ')).map((c) => c.slice('create namespace '.length));
    expect(created.sort()).toEqual(Array.from({ length: 70 }, (_, i) => `${hub}-${i}`).filter((n) => !made.has(n)).sort());
    expect((await topology.status(t)).matches).toBe(true);
    for (const i of [0, 40, 69]) await handle.netns(`${hub}-${i}`).links.get('eth0');
  } finally {
    await topology.down(t);
    await topology.down(done);
    for (const n of (await netns.list()).map((x) => x.name!).filter((n) => n.startsWith(`nkt-${RUN}-gcp3`))) await netns.delete(n);
  }
  const live = (await netns.list()).map((n) => n.name!);
  expect(live.filter((n) => n.startsWith(hub))).toEqual([]);
  expect(ipJson<Array<{ ifname: string }>>(outer, 'link', 'show').map((l) => l.ifname)).toEqual(['lo']);
  expect(existsSync(`${registryDir()}/links/${outer.name}`)).toBe(false);
});
