// Issue 18, CLI conventions: Ctrl-C to the whole process group during demo (exit 130, nothing
// left, no false check failure); one exit code for EPERM across commands; `up -` / `down -` read
// stdin; validation reports every error (up to 20) at once; status shows NAT without a file;
// exec without nsenter says so.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, cli } from './support/cli';
import { leftoverNamespaces, NS_PREFIX, nsName, RUN, Sandbox } from './support/sandbox';

const dir = mkdtempSync(path.join(os.tmpdir(), 'nk-conv-'));
const env = { ...process.env, NETNS_KIT_RUN_DIR: path.join(dir, 'registry') };
const sb = new Sandbox();
afterEach(() => sb.cleanup());
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI with `input` on stdin. */
function withStdin(args: string[], input: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('SIGINT to the whole process group during demo: rollback, exit 130, no false check failure', async () => {
  const prefix = `${NS_PREFIX}dg1`;
  let sent = false;
  // detached: the CLI leads a process group of its own, as a shell job does; the terminal's Ctrl-C
  // goes to every process in it (the demo's TCP servers and pings included).
  const r = await cli(['demo', '--prefix', prefix], {
    env,
    detached: true,
    onStdout: (text, child) => {
      if (!sent && text.includes('11/12')) {
        sent = true;
        process.kill(-child.pid!, 'SIGINT');
      }
    },
  });
  expect(sent).toBe(true);
  expect(r.stderr).toBe('netns-kit demo: ERR_NETNS_ABORTED: interrupted by SIGINT\n');
  expect(r.code).toBe(130);
  expect(r.stdout).not.toContain('✗');
  expect(r.stdout).toMatch(/✓ removed 6 namespaces/);
  expect(leftoverNamespaces().filter((n) => n.startsWith(`${prefix}-`))).toEqual([]);
  expect(execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' })).not.toContain(`/run/netns/${prefix}-`);
});

test('without privileges every command exits 5 with one EPERM line, and changes nothing', async () => {
  const target = await sb.ns('perm');
  const name = nsName('permup');
  const file = path.join(dir, 'perm.yaml');
  writeFileSync(file, `name: nkt-${RUN}-perm\nnamespaces:\n  - name: ${name}\n`);
  const commands = [
    ['list'],
    ['status'],
    ['status', '--match', target.name],
    ['graph', '--format', 'dot'],
    ['exec', target.name, '--', 'true'],
    ['up', file],
    ['down', file],
    ['gc'],
    ['demo', '--prefix', `${NS_PREFIX}dperm`],
  ];
  for (const args of commands) {
    // root without capabilities (what `sudo` without the right to them amounts to)
    const r = spawnSync('setpriv', ['--inh-caps=-all', '--bounding-set=-all', process.execPath, BIN, ...args], { encoding: 'utf8', env });
    expect({ args, code: r.status }).toEqual({ args, code: 5 });
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^netns-kit \w+: EPERM: operation not permitted, .*hint: .*run it as root/);
  }
  expect(leftoverNamespaces().filter((n) => n === name || n.startsWith(`${NS_PREFIX}dperm`))).toEqual([]);
});

test('up - and down - read the topology from stdin (YAML or JSON)', () => {
  const ns = nsName('stdin');
  const yaml = `name: nkt-${RUN}-stdin\nnamespaces:\n  - name: ${ns}\n    bridges: [{ name: br0, addresses: [10.91.0.1/24] }]\n`;
  try {
    const up = withStdin(['up', '-'], yaml);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(new RegExp(`^topology nkt-${RUN}-stdin is up: \\d+ changes`));
    const addrs = JSON.parse(execFileSync('ip', ['-j', '-n', ns, 'addr', 'show', 'br0'], { encoding: 'utf8' })) as Array<{ addr_info: Array<{ local: string }> }>;
    expect(addrs[0].addr_info.map((a) => a.local)).toContain('10.91.0.1');
    const json = JSON.stringify({ name: `nkt-${RUN}-stdin`, namespaces: [{ name: ns, bridges: [{ name: 'br0', addresses: ['10.91.0.1/24'] }] }] });
    const again = withStdin(['up', '-', '--json'], json);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ changed: false });
    const down = withStdin(['down', '-'], yaml);
    expect(down.code).toBe(0);
    expect(leftoverNamespaces()).not.toContain(ns);
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
});

test('validation reports every error at once (the first 20), before anything changes', () => {
  const bad = `name: nkt-${RUN}-many
namespaces:
  - name: ${nsName('v1')}
    bridges: [{ name: "this-name-is-far-too-long" }]
  - name: "bad/name"
  - name: ${nsName('v3')}
    routes: [{ to: "10.0.0.0/99" }]
    bogus: 1
`;
  const r = withStdin(['up', '-'], bad);
  expect(r.code).toBe(3);
  const lines = r.stderr.trim().split('\n');
  expect(lines[0]).toBe('netns-kit up: ERR_NETNS_INVALID_TOPOLOGY: (stdin): 3 errors:');
  expect(lines[1]).toMatch(/^ {2}namespaces\[0\]\.bridges\[0\]\.name: /);
  expect(lines[2]).toMatch(/^ {2}namespaces\[1\]\.name: /);
  expect(lines[3]).toMatch(/^ {2}namespaces\[2\]\.bogus: unknown key/);
  expect(lines[4]).toMatch(/^hint: /);
  expect(lines).toHaveLength(5);
  expect(leftoverNamespaces().filter((n) => n.startsWith(nsName('v').slice(0, -4)))).toEqual([]);

  const many = `name: nkt-${RUN}-many\nnamespaces:\n${Array.from({ length: 25 }, (_, i) => `  - name: "bad/${i}"\n`).join('')}`;
  const r2 = withStdin(['up', '-'], many);
  expect(r2.code).toBe(3);
  const l2 = r2.stderr.trim().split('\n');
  expect(l2[0]).toBe('netns-kit up: ERR_NETNS_INVALID_TOPOLOGY: (stdin): 25 errors (the first 20 shown):');
  expect(l2.filter((l) => /^ {2}namespaces\[\d+\]\.name: /.test(l))).toHaveLength(20);
  expect(l2).toContain('  ... and 5 more');
});

test('status shows the NAT rules of any namespace, without a topology file', async () => {
  const ns = await sb.ns('statnat');
  const { id } = await ns.nat.masquerade({ source: '10.92.0.0/24' });
  const r = await cli(['status', '--match', ns.name, '--json'], { env });
  expect(r.code).toBe(0);
  const st = JSON.parse(r.stdout) as { namespaces: Array<{ name: string; nat: Array<{ id: string; kind: string }> }> };
  expect(st.namespaces.map((n) => n.name)).toEqual([ns.name]);
  expect(st.namespaces[0].nat).toEqual([expect.objectContaining({ id, kind: 'masquerade' })]);
  const text = await cli(['status', '--match', ns.name], { env });
  expect(text.stdout).toMatch(new RegExp(`\\nNAT\\nNAMESPACE +ID +RULE\\n${ns.name} +${id} +masquerade`));
});

test('exec without nsenter: a typed error naming util-linux, not one blaming the namespace', async () => {
  const ns = await sb.ns('nonsenter');
  const r = spawnSync(process.execPath, [BIN, 'exec', ns.name, '--', 'true'], { encoding: 'utf8', env: { ...env, PATH: path.join(dir, 'empty-path') } });
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/^netns-kit exec: ENOENT: nsenter not found in PATH, spawn nsenter: .*install util-linux/);
  expect(r.stderr).not.toContain('no such namespace');
});

test('netns-kit-cni --help prints usage, not a CNI error', () => {
  const cniBin = path.join(path.dirname(BIN), 'netns-kit-cni.js');
  for (const flag of ['--help', '-h']) {
    const r = spawnSync(process.execPath, [cniBin, flag], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: netns-kit-cni/);
  }
  // Without arguments it is still the plugin: a runtime's VERSION call answers JSON.
  const v = spawnSync(process.execPath, [cniBin], { encoding: 'utf8', input: '', env: { ...process.env, CNI_COMMAND: 'VERSION' } });
  expect(JSON.parse(v.stdout)).toMatchObject({ supportedVersions: expect.arrayContaining(['1.1.0']) });
});
