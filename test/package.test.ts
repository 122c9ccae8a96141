// Issue 18: the package as a user gets it. `npm pack` of this checkout (the file list checked
// against what must and must not ship), the prebuilt addon added the way `npm run prebuilds` names
// it, installed into a fresh directory with --ignore-scripts (nothing compiles): ESM, CommonJS and
// both bins work; three TypeScript consumers type-check against it; without the prebuild, or
// without a shared library it needs, the first call fails with ERR_NETNS_ADDON naming the fix.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addonFailureMessage } from '../lib/native';
import { nsName } from './support/sandbox';

const ROOT = path.resolve(__dirname, '..', '..');
// Without the npm_* variables of the `npm test` that runs us (npm_config_local_prefix would point
// the inner npm at this checkout).
const NPM_ENV: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k))),
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
};
let tmp: string;
let app: string;
let packed: string[];

interface PackResult {
  filename: string;
  files: { path: string }[];
}

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, env: NPM_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a script in the app; returns exit code, stdout and stderr. */
function node(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, args, { cwd: app, encoding: 'utf8', env: { ...process.env, NETNS_KIT_ADDON: '', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'netns-kit-pack-'));
  // The tarball as `npm pack` makes it (dist/ is built by `npm test` before jest runs).
  const [pack] = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], ROOT)) as PackResult[];
  packed = pack.files.map((f) => f.path);
  // Add the prebuilt binary under the name `npm run prebuilds` gives it, from the addon compiled in
  // build/Release (same sources, same flags: prebuildify runs the same node-gyp build).
  const unpacked = path.join(tmp, 'unpacked');
  mkdirSync(unpacked);
  execFileSync('tar', ['xzf', path.join(tmp, pack.filename), '-C', unpacked]);
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'prebuilds.js'), '--from-build', path.join(unpacked, 'package')], { stdio: 'ignore' });
  execFileSync('tar', ['czf', path.join(tmp, 'netns-kit.tgz'), '-C', unpacked, 'package']);

  app = path.join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer-app', version: '1.0.0', private: true }));
  // --ignore-scripts: nothing may compile (pnpm and npm's script approval behave alike).
  npm(['install', '--ignore-scripts', '--prefer-offline', '--no-package-lock', path.join(tmp, 'netns-kit.tgz')], app);
  // Type checks need @types/node; TypeScript itself is ours (pinned 5.9).
  mkdirSync(path.join(app, 'node_modules', '@types'), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(app, 'node_modules', '@types', 'node'));
  cpSync(path.join(ROOT, 'test', 'consumers'), path.join(app, 'consumers'), { recursive: true });
}, 300_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('npm pack', () => {
  test('ships what users need and nothing else', () => {
    const dry = (JSON.parse(npm(['pack', '--dry-run', '--ignore-scripts', '--json'], ROOT)) as PackResult[])[0].files.map((f) => f.path);
    expect(dry.sort()).toEqual([...packed].sort());
    const required = [
      'package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'binding.gyp', 'scripts/check-build-deps.js',
      'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/index.mjs', 'dist/lib/index.d.mts', 'dist/lib/native.js',
      'dist/bin/netns-kit.js', 'dist/bin/netns-kit-cni.js', 'native/addon.cc', 'native/addon.h', 'native/cni_client.c',
      'docs/topology.md', 'docs/cli.md', 'docs/nat.md', 'docs/watch.md', 'examples/tutorial.yaml',
    ];
    for (const f of required) expect(packed).toContain(f);
    const allowed = [
      /^(package\.json|README\.md|LICENSE|CHANGELOG\.md|binding\.gyp|scripts\/check-build-deps\.js)$/,
      /^dist\/(lib|bin)\/.+\.(js|mjs|d\.ts|d\.mts)$/,
      /^native\/([\w-]+\/)?[\w-]+\.(cc|h|c)$/, // the sources a compile from source needs (native/rtnl/, native/bulk/, the CNI client)
      /^docs\/[\w-]+\.(md|svg|png)$/,
      /^examples\/[\w.-]+\.(ya?ml|json|mts|mjs|ts)$/,
      /^prebuilds\/linux-x64\/([\w.-]+\.node|netns-kit-cni)$/,
    ];
    expect(packed.filter((f) => !allowed.some((re) => re.test(f)))).toEqual([]);
    expect(packed.filter((f) => f.endsWith('.map'))).toEqual([]); // no source maps without sources
  });

  test('every docs/ and examples/ path the package mentions is in it', () => {
    const unpacked = path.join(tmp, 'unpacked', 'package');
    const texts = packed.filter((f) => /\.(md|js)$/.test(f)).map((f) => readFileSync(path.join(unpacked, f), 'utf8'));
    const mentioned = new Set<string>();
    for (const t of texts) for (const m of t.matchAll(/\b(?:docs|examples)\/[\w-]+\.(?:md|ya?ml|svg|mts|json)\b/g)) mentioned.add(m[0]);
    expect(mentioned.size).toBeGreaterThan(3);
    expect([...mentioned].filter((f) => !packed.includes(f))).toEqual([]);
  });
});

describe('installed with --ignore-scripts into a fresh app', () => {
  test('the prebuilt addon is found and nothing was compiled', () => {
    const pkg = path.join(app, 'node_modules', 'netns-kit');
    expect(existsSync(path.join(pkg, 'prebuilds', 'linux-x64', 'netns-kit.glibc.node'))).toBe(true);
    expect(existsSync(path.join(pkg, 'build'))).toBe(false);
    const r = node(['-p', `require('node-gyp-build').path(${JSON.stringify(pkg)})`]);
    expect(r.stdout.trim()).toBe(path.join(pkg, 'prebuilds', 'linux-x64', 'netns-kit.glibc.node'));
  });

  test('ESM and CommonJS consumers work', () => {
    // Read-only: the links of this process's own namespace (lo is always there).
    writeFileSync(
      path.join(app, 'esm.mjs'),
      `import { netns, Netns, NetnsError, Nat, TopologyError, topology, bulk, gc } from 'netns-kit';
       const links = await netns.current().links.list();
       console.log(JSON.stringify({ lo: links.some((l) => l.name === 'lo'), classes: [Netns, NetnsError, Nat, TopologyError].every((c) => typeof c === 'function'), api: [topology.up, bulk.createMany, gc].every((f) => typeof f === 'function') }));`,
    );
    writeFileSync(
      path.join(app, 'cjs.cjs'),
      `const { netns, NetnsError } = require('netns-kit');
       netns.current().links.list().then((links) => console.log(JSON.stringify({ lo: links.some((l) => l.name === 'lo'), cls: typeof NetnsError })));`,
    );
    const esm = node(['esm.mjs']);
    expect(esm.stderr).toBe('');
    expect(JSON.parse(esm.stdout)).toEqual({ lo: true, classes: true, api: true });
    const cjs = node(['cjs.cjs']);
    expect(cjs.stderr).toBe('');
    expect(JSON.parse(cjs.stdout)).toEqual({ lo: true, cls: 'function' });
  });

  test('both bins answer --help and --version', () => {
    const bin = (name: string, ...args: string[]) => node([path.join(app, 'node_modules', '.bin', name), ...args]);
    const help = bin('netns-kit', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: netns-kit COMMAND/);
    expect(bin('netns-kit', '--version').stdout.trim()).toBe(`netns-kit ${JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}`);
    const cni = bin('netns-kit-cni', '--help');
    expect(cni.code).toBe(0);
    expect(cni.stdout).toMatch(/^Usage: netns-kit-cni/);
    expect(() => JSON.parse(cni.stdout)).toThrow(); // usage text, not a CNI JSON error
  });

  test('the prebuilt CNI client ships executable and runs the installed plugin when no helper answers', () => {
    const pkg = path.join(app, 'node_modules', 'netns-kit');
    const client = node([path.join(app, 'node_modules', '.bin', 'netns-kit-cni'), '--client-path']);
    expect(client.stdout.trim()).toBe(path.join(pkg, 'prebuilds', 'linux-x64', 'netns-kit-cni'));
    expect(statSync(client.stdout.trim()).mode & 0o111).toBe(0o111);
    // No helper on this run directory: the client execs node on the package's plugin.
    const r = spawnSync(client.stdout.trim(), [], {
      input: '{"cniVersion":"0.4.0"}',
      env: { PATH: process.env.PATH, CNI_COMMAND: 'VERSION', NETNS_KIT_CNI_RUN_DIR: path.join(tmp, 'no-helper') },
      encoding: 'utf8',
    });
    expect([r.status, JSON.parse(r.stdout).cniVersion]).toEqual([0, '0.4.0']);
  });

  test('TypeScript consumers type-check: ESM nodenext, ESM bundler, CommonJS', async () => {
    // In parallel: each is a separate program (different module settings) of a few seconds.
    const check = (fixture: string) =>
      new Promise<{ fixture: string; code: number | null; output: string }>((resolve) => {
        const child = spawn(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(app, 'consumers', fixture)], { cwd: app });
        let output = '';
        child.stdout.on('data', (d: Buffer) => (output += d.toString()));
        child.stderr.on('data', (d: Buffer) => (output += d.toString()));
        child.on('close', (code) => resolve({ fixture, code, output }));
      });
    const results = await Promise.all(['esm-nodenext', 'esm-bundler', 'cjs'].map(check));
    expect(results).toEqual([
      { fixture: 'esm-nodenext', code: 0, output: '' },
      { fixture: 'esm-bundler', code: 0, output: '' },
      { fixture: 'cjs', code: 0, output: '' },
    ]);
  }, 240_000);
});

describe('ERR_NETNS_ADDON', () => {
  const probe = `const { netns, NetnsError } = require('netns-kit');
    netns.current().links.list().then(() => console.log('loaded'), (e) => console.log(JSON.stringify({ code: e.code, isNetnsError: e instanceof NetnsError, message: e.message })));`;

  test('without the prebuild (and no compile): importing works, the first call names the fix', () => {
    const copy = path.join(tmp, 'no-prebuild');
    cpSync(app, copy, { recursive: true, verbatimSymlinks: true });
    rmSync(path.join(copy, 'node_modules', 'netns-kit', 'prebuilds'), { recursive: true });
    const r = spawnSync(process.execPath, ['-e', probe], { cwd: copy, encoding: 'utf8', env: { ...process.env, NETNS_KIT_ADDON: '' } });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { code: string; isNetnsError: boolean; message: string };
    expect(out.code).toBe('ERR_NETNS_ADDON');
    expect(out.isNetnsError).toBe(true);
    expect(out.message).toContain('npm rebuild netns-kit');
    expect(out.message).toContain('libnl-3-dev libnl-route-3-dev libnftables-dev'); // Debian
    expect(out.message).toContain('libnl3-devel nftables-devel'); // Fedora
    expect(out.message).toContain('libnl3-dev nftables-dev'); // Alpine
    // The CLI: help still works; a command fails with one line and the fix, not a stack.
    const bin = path.join(copy, 'node_modules', '.bin', 'netns-kit');
    expect(spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' }).status).toBe(0);
    // `status` needs the addon only once there is a namespace to look into: make sure there is one
    // (on a clean machine /run/netns may be empty, and other test files' namespaces come and go).
    const present = nsName('pkgaddon');
    execFileSync('ip', ['netns', 'add', present]);
    let list;
    try {
      list = spawnSync(process.execPath, [bin, 'status', '--json'], { encoding: 'utf8', env: { ...process.env, NETNS_KIT_ADDON: '' } });
    } finally {
      execFileSync('ip', ['netns', 'del', present]);
    }
    expect(list.status).toBe(1);
    expect(list.stderr.trim().split('\n')).toHaveLength(1);
    expect(list.stderr).toContain('ERR_NETNS_ADDON');
    expect(list.stderr).toContain('npm rebuild netns-kit');
  });

  test('a missing shared library names the runtime package', () => {
    // A real dlopen failure: an addon stub linked against a library that is then removed.
    const dir = path.join(tmp, 'stub');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'empty.c'), 'int netns_kit_stub_symbol;\n');
    execFileSync('gcc', ['-shared', '-fPIC', '-o', path.join(dir, 'libnl-route-3.so.200'), '-Wl,-soname,libnl-route-3.so.999', path.join(dir, 'empty.c')]);
    execFileSync('gcc', ['-shared', '-fPIC', '-o', path.join(dir, 'stub.node'), path.join(dir, 'empty.c'), '-Wl,--no-as-needed', path.join(dir, 'libnl-route-3.so.200')]);
    rmSync(path.join(dir, 'libnl-route-3.so.200'));
    const r = spawnSync(process.execPath, ['-e', probe], { cwd: app, encoding: 'utf8', env: { ...process.env, NETNS_KIT_ADDON: path.join(dir, 'stub.node') } });
    const out = JSON.parse(r.stdout) as { code: string; message: string };
    expect(out.code).toBe('ERR_NETNS_ADDON');
    expect(out.message).toContain('libnl-route-3.so* is missing');
    expect(out.message).toContain('apt-get install libnl-3-200 libnl-route-3-200 libnftables1');
    expect(out.message).toContain('dnf install libnl3 nftables');
  });

  test('the message for each runtime library', () => {
    expect(addonFailureMessage('/x.node', 'libnftables.so.1: cannot open shared object file: No such file or directory')).toContain('libnftables.so* is missing');
    expect(addonFailureMessage('/x.node', 'libnl-3.so.200: cannot open shared object file: No such file or directory')).toContain('libnl-3.so* is missing');
    expect(addonFailureMessage(undefined, "Cannot find module '/x.node'")).toContain('npm rebuild netns-kit');
  });
});

describe('build dependencies', () => {
  test('a build without libnl/libnftables stops early with one line per library and the package names', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'check-build-deps.js')], {
      encoding: 'utf8',
      env: { ...process.env, PKG_CONFIG_PATH: '', PKG_CONFIG_LIBDIR: path.join(tmp, 'no-pc-files') },
    });
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => / not found by pkg-config /.test(l))).toEqual([
      'netns-kit: libnl-3.0 not found by pkg-config (Debian/Ubuntu: libnl-3-dev, Fedora: libnl3-devel, Alpine: libnl3-dev)',
      'netns-kit: libnl-route-3.0 not found by pkg-config (Debian/Ubuntu: libnl-route-3-dev, Fedora: libnl3-devel, Alpine: libnl3-dev)',
      'netns-kit: libnftables not found by pkg-config (Debian/Ubuntu: libnftables-dev, Fedora: nftables-devel, Alpine: nftables-dev)',
    ]);
    expect(r.stderr).toContain('apt-get install build-essential python3 pkg-config libnl-3-dev libnl-route-3-dev libnftables-dev');
    // With the -dev packages present (this machine), the check passes silently.
    const ok = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'check-build-deps.js')], { encoding: 'utf8' });
    expect([ok.status, ok.stderr]).toEqual([0, '']);
  });
});
