// `netns-kit` as a user runs it: help and version, bad arguments and their exit codes, list, exec
// (exit codes passed through, runs in the namespace), one-line errors and --debug.
import { execFileSync } from 'node:child_process';
import { netns } from '../lib/index';
import { COMMANDS } from '../lib/cli/commands';
import { cli, PACKAGE_VERSION } from './support/cli';
import { NS_PREFIX, Sandbox } from './support/sandbox';
import { execFileSync as execFileSyncChild, spawn as spawnChild } from 'node:child_process';
import { join as pathJoin } from 'node:path';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

test('--version prints the package version', async () => {
  const r = await cli(['--version']);
  expect(r).toMatchObject({ code: 0, stdout: `netns-kit ${PACKAGE_VERSION}\n` });
});

test('--help lists every command and the exit codes; each command has help with examples', async () => {
  const r = await cli(['--help']);
  expect(r.code).toBe(0);
  for (const c of COMMANDS) expect(r.stdout).toContain(`  ${c.name} `);
  expect(r.stdout).toContain('Exit codes:');
  const helps = await Promise.all(COMMANDS.map((c) => cli([c.name, '--help'])));
  helps.forEach((h, i) => {
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(new RegExp(`^Usage: netns-kit ${COMMANDS[i].name}`));
    expect(h.stdout).toContain('Examples:\n  ');
  });
  expect((await cli(['help', 'graph'])).stdout).toContain('--format FORMAT');
});

test.each([
  [[], 2, 'Usage: netns-kit COMMAND'],
  [['frobnicate'], 2, 'netns-kit: unknown command "frobnicate" (see `netns-kit --help`)'],
  [['--frob'], 2, 'netns-kit: unknown option --frob'],
  [['up'], 2, 'netns-kit up: missing topology FILE (see `netns-kit up --help`)'],
  [['up', 'a.yaml', 'b.yaml'], 2, 'netns-kit up: unexpected argument "b.yaml"'],
  [['graph', '--format', 'png'], 2, 'netns-kit graph: option --format must be one of svg, mermaid, dot, got "png"'],
  [['graph', 'x.yaml', '--match', 'p'], 2, '--match selects live namespaces; it cannot be used with FILE'],
  [['list', '--json=yes'], 2, 'option --json takes no value'],
  [['exec'], 2, 'netns-kit exec: missing namespace NAME'],
  [['exec', 'red'], 2, 'netns-kit exec: missing COMMAND after the namespace name'],
  [['demo', '--prefix', 'a/b'], 3, 'ERR_NETNS_INVALID_NAME'],
  [['up', 'lab.txt'], 3, 'netns-kit up: ERR_NETNS_INVALID_TOPOLOGY: lab.txt: topology files end in .json, .yaml or .yml'],
  [['status', '/nonexistent/lab.yaml'], 3, 'ERR_NETNS_INVALID_TOPOLOGY: /nonexistent/lab.yaml: cannot read: ENOENT'],
  [['graph', '--match', `${NS_PREFIX}none-`, '-o', '/nonexistent/dir/x.svg'], 3, 'netns-kit graph: ERR_NETNS_INVALID_ARG: cannot write /nonexistent/dir/x.svg: ENOENT'],
])('netns-kit %j exits %d: %s', async (args, code, message) => {
  const r = await cli(args as string[]);
  expect(r.code).toBe(code);
  expect(r.stdout + r.stderr).toContain(message);
  if (code !== 2 || (args as string[]).length) expect(r.stderr.trim().split('\n')).toHaveLength(1); // one line
});

test('an error is one line; --debug adds the stack', async () => {
  const plain = await cli(['exec', `${NS_PREFIX}missing`, '--', 'true']);
  expect(plain.code).toBe(1);
  expect(plain.stderr).toBe(`netns-kit exec: ENOENT: no such namespace, open netns /run/netns/${NS_PREFIX}missing — hint: it does not exist (yet): check the name with \`netns-kit list\` or \`ip -n NAME link\`\n`);
  const debug = await cli(['--debug', 'exec', `${NS_PREFIX}missing`, '--', 'true']);
  expect(debug.code).toBe(1);
  expect(debug.stderr.split('\n')[0]).toBe(plain.stderr.trim());
  expect(debug.stderr).toMatch(/\n {4}at /);
});

test('exec runs the command inside the namespace and passes its exit code through', async () => {
  const ns = await sb.ns('cliexec');
  await ns.links.add({ kind: 'bridge', name: 'brexec0' });
  const ok = await cli(['exec', ns.name!, '--', 'ip', '-j', 'link', 'show']);
  expect(ok.code).toBe(0);
  expect((JSON.parse(ok.stdout) as Array<{ ifname: string }>).map((l) => l.ifname).sort()).toEqual(['brexec0', 'lo']);
  // without `--` too, options belong to the command
  const noDash = await cli(['exec', ns.name!, 'ip', '-br', 'link', 'show', 'brexec0']);
  expect(noDash.stdout).toMatch(/^brexec0 /);
  expect((await cli(['exec', ns.name!, '--', 'sh', '-c', 'exit 7'])).code).toBe(7);
  expect((await cli(['exec', ns.name!, '--', 'sh', '-c', 'kill -TERM $$'])).code).toBe(128 + 15);
  expect((await cli(['exec', ns.name!, '--', 'no-such-command-nk'])).code).toBe(127);
});

test('list shows namespaces with their links and addresses, as a table and as JSON', async () => {
  const a = await sb.ns('clilist', { loopbackUp: true });
  const b = await sb.ns('clilist');
  await a.links.add({ kind: 'veth', name: 'va', up: true, peer: { name: 'vb', netns: b, up: true } });
  await a.addresses.add('va', '198.51.100.1/24');
  const prefix = a.name!.replace(/-\d+$/, '-');
  const json = await cli(['list', '--match', prefix, '--json']);
  expect(json.code).toBe(0);
  const rows = JSON.parse(json.stdout) as Array<{ name: string; links: Array<{ name: string; peer?: string }>; addresses: string[] }>;
  const mine = rows.filter((r) => r.name === a.name || r.name === b.name);
  expect(mine).toHaveLength(2);
  const ra = mine.find((r) => r.name === a.name)!;
  expect(ra.addresses).toEqual(['198.51.100.1/24 va']);
  expect(ra.links.find((l) => l.name === 'va')?.peer).toBe(b.name);
  const text = await cli(['list', '--match', prefix]);
  expect(text.stdout).toMatch(/^NAMESPACE +LINKS +ADDRESSES\n/);
  expect(text.stdout).toMatch(new RegExp(`${a.name} +va +198\\.51\\.100\\.1/24`));
  // independent witness: ip netns list knows them too
  // (stderr ignored: ip complains about other runs' namespaces that vanish while it reads them)
  const listed = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  expect(listed).toContain(a.name!);
  expect((await cli(['list', '--match', `${NS_PREFIX}nothing-here-`])).stdout).toBe(`no namespace starts with ${NS_PREFIX}nothing-here-\n`);
  expect((await netns.list()).some((n) => n.name === b.name)).toBe(true);
});

const execIp = (args: string[]) => execFileSyncChild('ip', args);

test('status --watch redraws on namespace and link changes (while unrelated namespaces churn), and Ctrl-C ends it with exit 0', async () => {
  const prefix = `nkt-${process.env.NK_TEST_RUN ?? 'x'}-sw${process.pid % 1000}-`;
  const a = `${prefix}a`;
  const b = `${prefix}b`;
  execIp(['netns', 'add', a]);
  let running: { kill(signal: NodeJS.Signals): boolean } | undefined;
  // A busy machine: namespaces that --match does not select appear and vanish every few ms. They
  // must neither postpone the redraw forever (a debounce reset by every event did) nor be shown.
  let churning = true;
  const churn = (async () => {
    const alive: Array<Awaited<ReturnType<typeof netns.create>>> = [];
    for (let k = 0; churning; k++) {
      alive.push(await netns.create(`nkt-${process.env.NK_TEST_RUN ?? 'x'}-churn${process.pid % 1000}-${k}`));
      if (alive.length > 4) await alive.shift()!.delete();
      await new Promise((r) => setTimeout(r, 40));
    }
    for (const other of alive) await other.delete();
  })();
  try {
    const child = spawnChild(process.execPath, [pathJoin(__dirname, '..', 'bin', 'netns-kit.js'), 'status', '--match', prefix, '--watch', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    running = child;
    const docs: Array<{ namespaces: Array<{ name: string; links: Array<{ name: string }> }> }> = [];
    let buf = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const seen = (pred: () => boolean) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(docs.map((d) => d.namespaces.map((n) => [n.name, n.links.map((l) => l.name)])))} ${err}`)), 20_000);
        const check = () => {
          if (pred()) {
            clearTimeout(t);
            child.stdout.off('data', onData);
            resolve();
          }
        };
        const onData = (d: Buffer) => {
          buf += d.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            docs.push(JSON.parse(buf.slice(0, nl)));
            buf = buf.slice(nl + 1);
          }
          check();
        };
        child.stdout.on('data', onData);
        check();
      });
    await seen(() => docs.length >= 1);
    expect(docs[0].namespaces.map((n) => n.name)).toEqual([a]);
    execIp(['netns', 'add', b]);
    await seen(() => docs.some((d) => d.namespaces.some((n) => n.name === b)));
    execIp(['-n', a, 'link', 'add', 'watched0', 'type', 'bridge']);
    await seen(() => docs.some((d) => d.namespaces.some((n) => n.name === a && n.links.some((l) => l.name === 'watched0'))));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(0);
  } finally {
    churning = false;
    await churn;
    running?.kill('SIGKILL'); // a failed assertion must not leave the watcher running
    execIp(['netns', 'del', a]);
    try {
      execIp(['netns', 'del', b]);
    } catch {
      /* not created */
    }
  }
});
