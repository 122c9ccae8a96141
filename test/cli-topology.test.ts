// up / status / graph / down / gc from the command line, on real topology files: output and exit
// codes, the progress bar on a pseudo-terminal, plain lines in a pipe, JSON for scripts, Ctrl-C
// rolling back, and the machine left as it was (checked with ip, nft and real traffic).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { netns } from '../lib/index';
import { cli, cliOnTty, svgTexts } from './support/cli';
import { NS_PREFIX, RUN, ipJson, leftoverNamespaces } from './support/sandbox';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nk-cli-'));
// Our own registry, so `gc` here sees only what this file made (never another run's objects).
const env = { ...process.env, NETNS_KIT_RUN_DIR: path.join(dir, 'registry') };
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const live = (prefix: string) => leftoverNamespaces().filter((n) => n.startsWith(prefix));

function labYaml(tag: string): { file: string; ns: Record<'host' | 'red' | 'blue' | 'wan', string>; name: string } {
  const p = `${NS_PREFIX}${tag}-`;
  const ns = { host: `${p}host`, red: `${p}red`, blue: `${p}blue`, wan: `${p}wan` };
  const name = `c${RUN}${tag}`;
  const file = path.join(dir, `${tag}.yaml`);
  writeFileSync(
    file,
    `# the tutorial as a topology file
name: ${name}
namespaces:
  - name: ${ns.host}
    sysctls: { net.ipv4.ip_forward: 1 }
    bridges:
      - { name: v-net-0, addresses: [192.168.15.5/24] }
    links:
      - { name: veth-red-br, master: v-net-0, peer: { netns: ${ns.red}, name: veth-red, addresses: [192.168.15.1/24] } }
      - { name: veth-blue-br, master: v-net-0, peer: { netns: ${ns.blue}, name: veth-blue, addresses: [192.168.15.2/24] } }
      - { name: eth0, addresses: [10.0.2.15/24], peer: { netns: ${ns.wan}, name: eth0, addresses: [10.0.2.2/24] } }
    nat:
      - { kind: masquerade, source: 192.168.15.0/24, outInterface: eth0 }
      - { kind: portForward, protocol: tcp, port: 8080, to: { address: 192.168.15.1, port: 80 } }
  - name: ${ns.red}
    routes: [{ to: default, via: 192.168.15.5 }]
  - name: ${ns.blue}
    routes: [{ to: default, via: 192.168.15.5 }]
  - name: ${ns.wan}
`,
  );
  return { file, ns, name };
}

test('up, up again, status, graph, break it, status differs, down: output, exit codes and the kernel agree', async () => {
  const { file, ns, name } = labYaml('t1');
  const up = await cli(['up', file], { env });
  expect(up.stderr).toBe(''); // not a terminal: no progress at all
  expect(up.stdout).toMatch(new RegExp(`^topology ${name} is up: \\d+ changes in [\\d.]+ m?s \\(4 namespaces\\)\\n$`));
  expect(up.code).toBe(0);
  // independent witnesses: ip and nft see what the file describes; traffic flows
  // (stderr ignored: ip complains about other runs' namespaces that vanish while it reads them)
  const listed = JSON.parse(execFileSync('ip', ['-j', 'netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as Array<{ name: string }>;
  expect(listed.map((n) => n.name)).toEqual(expect.arrayContaining(Object.values(ns)));
  const ports = (ipJson(await netns.open(ns.host), 'link', 'show', 'master', 'v-net-0') as Array<{ ifname: string }>).map((l) => l.ifname).sort();
  expect(ports).toEqual(['veth-blue-br', 'veth-red-br']);
  execFileSync('ip', ['netns', 'exec', ns.red, 'ping', '-c1', '-W2', '-n', '10.0.2.2']); // masquerade out to wan
  const nft = execFileSync('ip', ['netns', 'exec', ns.host, 'nft', '-j', 'list', 'ruleset'], { encoding: 'utf8' });
  expect(nft).toContain('"masquerade"');
  expect(nft).toContain('"dnat"');

  const again = await cli(['up', file, '--json'], { env });
  expect(again.code).toBe(0);
  expect(JSON.parse(again.stdout)).toMatchObject({ name, changed: false, changes: [], namespaces: expect.arrayContaining(Object.values(ns)) });

  const st = await cli(['status', file], { env });
  expect(st.code).toBe(0);
  expect(st.stdout).toContain(`topology ${name} (up): matches ${file}`);
  for (const header of ['NAMESPACES', 'LINKS', 'ADDRESSES', 'ROUTES', 'NAT']) expect(st.stdout).toContain(`\n${header}\n`);
  expect(st.stdout).toMatch(new RegExp(`${ns.host} +veth-red-br +veth +UP +v-net-0 +${ns.red} #\\d+`));
  expect(st.stdout).toMatch(new RegExp(`${ns.red} +veth-red +192\\.168\\.15\\.1/24 +global`));
  expect(st.stdout).toMatch(new RegExp(`${ns.red} +default +192\\.168\\.15\\.5 +veth-red`));
  expect(st.stdout).toMatch(new RegExp(`${ns.host} +[0-9a-f]+ +forward tcp \\*:8080 → 192\\.168\\.15\\.1:80`));

  // without FILE: the live namespaces (those of this test, by prefix)
  const all = await cli(['status', '--match', `${NS_PREFIX}t1-`], { env });
  expect(all.code).toBe(0);
  expect(all.stdout).toMatch(new RegExp(`^4 named namespaces starting with ${NS_PREFIX}t1-\n`));
  expect(all.stdout).toMatch(new RegExp(`${ns.wan} +eth0 +10\.0\.2\.2/24 +global`));

  // SVG of the file and of the live state: well-formed, naming every namespace and link
  for (const args of [['graph', file], ['graph', '--match', `${NS_PREFIX}t1-`]]) {
    const g = await cli(args, { env });
    expect(g.code).toBe(0);
    const texts = svgTexts(g.stdout).join('\n');
    for (const n of Object.values(ns)) expect(texts).toContain(n);
    for (const l of ['v-net-0 (bridge)', 'veth-red-br', 'veth-blue-br', 'veth-red', 'veth-blue', 'eth0', '192.168.15.5/24', 'NAT masquerade 192.168.15.0/24 out eth0']) expect(texts).toContain(l);
    expect(texts).toContain(`veth ${ns.host}/veth-red-br — ${ns.red}/veth-red`);
  }
  const out = path.join(dir, 't1.mmd');
  const mmd = await cli(['graph', file, '-o', out], { env });
  expect(mmd.stderr).toContain(`wrote ${out} (mermaid: 4 namespaces, 3 veth pairs)`);
  expect(readFileSync(out, 'utf8')).toMatch(/^flowchart TB\n/);
  const dot = await cli(['graph', file, '--format', 'dot'], { env });
  expect(dot.stdout).toMatch(/^graph netns \{/);
  expect(dot.stdout.match(/label="veth"/g)).toHaveLength(3);

  // someone removes a route by hand: status says so, with exit code 4
  execFileSync('ip', ['-n', ns.red, 'route', 'del', 'default']);
  const differs = await cli(['status', file], { env });
  expect(differs.code).toBe(4);
  expect(differs.stdout).toContain(`DIFFERS from ${file}`);
  expect(differs.stdout).toContain(`  - add route default via 192.168.15.5 (${ns.red})`);
  const differsJson = await cli(['status', file, '--json'], { env });
  expect(differsJson.code).toBe(4);
  expect(JSON.parse(differsJson.stdout)).toMatchObject({ matches: false });

  // --wait: returns once the kernel has finished tearing the namespaces down
  const down = await cli(['down', file, '--wait'], { env });
  expect(down.code).toBe(0);
  expect(down.stdout).toBe(`topology ${name} is down: removed 4 namespaces in ${/in (\S+ m?s)/.exec(down.stdout)?.[1]}\n`);
  expect(live(`${NS_PREFIX}t1-`)).toEqual([]);
  expect(execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' })).not.toContain(`${NS_PREFIX}t1-`);
  // down again: nothing to do, not an error
  expect((await cli(['down', file], { env })).code).toBe(0);
});

test('on a capable terminal, up and down draw a progress bar; with TERM=dumb or in CI nothing', async () => {
  const { file } = labYaml('t2');
  try {
    const up = await cliOnTty(['up', file], env);
    expect(up.code).toBe(0);
    expect(up.stdout).toContain('\r\x1b[2Kup [');
    expect(up.stdout).toMatch(/\[#+\] +\d+\/\d+ /);
    expect(up.stdout).toMatch(/topology \S+ is up: \d+ changes/);
    const down = await cliOnTty(['down', file], env);
    expect(down.code).toBe(0);
    expect(down.stdout).toContain('\r\x1b[2Kdown [');
    // A terminal that cannot redraw (TERM=dumb), or CI logging a pseudo-terminal: no progress at all.
    for (const terminal of [{ term: 'dumb' }, { ci: true }]) {
      const again = await cliOnTty(['up', file], env, terminal);
      expect(again.code).toBe(0);
      expect(again.stdout).not.toContain('\x1b[2K');
      expect(again.stdout).toMatch(/^topology \S+ is up: \d+ changes in [\d.]+ m?s \(4 namespaces\)\r?\n$/);
      expect((await cliOnTty(['down', file], env, terminal)).stdout).not.toContain('\x1b[2K');
    }
  } finally {
    await cli(['down', file], { env });
  }
  expect(live(`${NS_PREFIX}t2-`)).toEqual([]);
});

test('an invalid file is refused with exit code 3 and the offending path, before anything is made', async () => {
  const file = path.join(dir, 'bad.json');
  const host = `${NS_PREFIX}t3-host`;
  writeFileSync(file, JSON.stringify({ name: `c${RUN}t3`, namespaces: [{ name: host, links: [{ name: 'v0', peer: { netns: `${NS_PREFIX}t3-nowhere`, name: 'v1' } }] }] }));
  const r = await cli(['up', file], { env });
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(/^netns-kit up: ERR_NETNS_INVALID_TOPOLOGY: .*namespaces\[0\]\.links\[0\]\.peer\.netns/);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(live(`${NS_PREFIX}t3-`)).toEqual([]);
});

test('Ctrl-C during up removes what it made and exits 130', async () => {
  const p = `${NS_PREFIX}t4-`;
  const file = path.join(dir, 'many.json');
  writeFileSync(
    file,
    JSON.stringify({
      name: `c${RUN}t4`,
      options: { concurrency: 2 },
      namespaces: [{ name: `${p}hub`, bridges: [{ name: 'br0' }] }],
      templates: [{ count: 150, name: `${p}m{i}`, uplink: { name: 'eth0', peerName: 'v{i}', netns: `${p}hub`, bridge: 'br0' }, addresses: [{ pool: '10.77.0.0/16' }] }],
    }),
  );
  let sent = false;
  let poll: NodeJS.Timeout | undefined;
  const r = await cli(['up', file], {
    env,
    // Not a terminal: no progress lines. up is under way once the hub namespace exists.
    onSpawn: (child) => {
      poll = setInterval(() => {
        if (!sent && existsSync(`/run/netns/${p}hub`)) {
          sent = true;
          child.kill('SIGINT');
        }
      }, 2);
    },
  });
  clearInterval(poll);
  expect(sent).toBe(true);
  expect(r.code).toBe(130);
  expect(r.stderr).toMatch(/netns-kit up: ERR_NETNS_ABORTED: /);
  expect(live(p)).toEqual([]);
});

test('gc lists and removes what a killed netns-kit process left behind, and nothing else', async () => {
  const lost = `${NS_PREFIX}t5-lost`;
  const mine = `${NS_PREFIX}t5-ipnetns`;
  execFileSync('ip', ['netns', 'add', mine]); // not netns-kit's: gc must leave it
  try {
    // a process creates a namespace with netns-kit and is killed before deleting it
    const script = `require(${JSON.stringify(path.resolve(__dirname, '..', 'lib', 'index.js'))}).netns.create(${JSON.stringify(lost)}, { temporary: true }).then(() => { process.stdout.write('READY'); setInterval(() => {}, 1000); });`;
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
      child.stdout.on('data', (d: Buffer) => d.toString().includes('READY') && child.kill('SIGKILL'));
      child.on('exit', (_c, s) => (s === 'SIGKILL' ? resolve() : reject(new Error('child did not get to READY'))));
    });
    expect(live(`${NS_PREFIX}t5-`).sort()).toEqual([mine, lost].sort());
    const dry = await cli(['gc', '--dry-run', '--json'], { env });
    expect(dry.code).toBe(0);
    const report = JSON.parse(dry.stdout) as { dryRun: boolean; namespaces: string[] };
    expect(report.dryRun).toBe(true);
    expect(report.namespaces).toContain(lost);
    expect(report.namespaces).not.toContain(mine);
    expect(live(`${NS_PREFIX}t5-`)).toContain(lost); // a dry run changes nothing
    const text = await cli(['gc', '--dry-run'], { env });
    expect(text.stdout).toMatch(new RegExp(`gc would remove:\\nWHAT +NAME +IN\\n(.*\\n)*namespace +${lost}`));
    const real = await cli(['gc'], { env });
    expect(real.code).toBe(0);
    expect(real.stdout).toMatch(new RegExp(`gc removed:\\n(.*\\n)*namespace +${lost}`));
    expect(live(`${NS_PREFIX}t5-`)).toEqual([mine]);
    expect((await cli(['gc'], { env })).stdout).toContain('nothing to collect');
  } finally {
    execFileSync('ip', ['netns', 'delete', mine]);
    await netns.delete(lost, { missingOk: true });
  }
});
